/*
 * PgBouncer's server_tls_* keys ([corral]): TLS between corral and PostgreSQL, in
 * libpq's terms.  They are defaults for every database line, which may override each
 * with libpq's own keyword (sslmode=, sslrootcert=, sslcert=, sslkey=,
 * ssl_min_protocol_version=, ssl_max_protocol_version=).  server_tls_ciphers has no
 * libpq counterpart (PostgreSQL's ssl_ciphers decides) and stays unsupported.
 */
#ifndef CORRAL_POOL_CONFIG_TLS_H
#define CORRAL_POOL_CONFIG_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct corral_config;

#define CONFIG_SERVER_TLS_PARAMS 6

/* One libpq keyword and its value from a server_tls_* key. */
struct config_tls_param {
	const char *keyword; /* libpq's */
	const char *value;
	const char *from; /* the [corral] key it comes from */
};

/*
 * The libpq keywords the server_tls_* keys set (those given), into out[0..*n).  False
 * with err (naming the key) if one is wrong: an sslmode libpq does not know, a
 * protocol list libpq cannot express (it takes a range), a file that cannot be read.
 * *bad_key names the key at fault.
 */
bool config_server_tls(const struct corral_config *cfg,
		       struct config_tls_param out[CONFIG_SERVER_TLS_PARAMS], int *n,
		       const char **bad_key, char *err, size_t errlen);

#endif
