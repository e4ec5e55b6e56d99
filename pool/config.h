/*
 * The configuration snapshot: what conf/corral.ini says, parsed once (inih) and then
 * read-only.  It lives in pool/ because pool/ is the lowest corral-specific layer and
 * both pool/ and proxy/ read it.  A reload builds a new snapshot; nothing mutates one.
 */
#ifndef CORRAL_POOL_CONFIG_H
#define CORRAL_POOL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

enum pool_mode { POOL_MODE_SESSION, POOL_MODE_TRANSACTION, POOL_MODE_STATEMENT };
enum auth_type { AUTH_TRUST, AUTH_MD5, AUTH_SCRAM_SHA_256 };

/* One line of [databases]:  name = host=... port=... dbname=... pool_size=... */
struct db_config {
	char *name;              /* the name clients ask for */
	/* libpq connection keywords/values for server logins, NULL-terminated, in the
	 * order written; corral's own keys (pool_size, pool_mode) are not among them.
	 * user/password are included only when the line sets them. */
	char **conn_keys;
	char **conn_vals;
	size_t n_conn;
	const char *user;        /* points into conn_vals, or NULL: log in as the client's user */
	const char *password;    /* points into conn_vals, or NULL: take it from auth_file */
	int pool_size;           /* -1: default_pool_size */
	int pool_mode;           /* -1: [corral] pool_mode, else an enum pool_mode */
	int line;                /* line in the file, for messages */
};

struct corral_config {
	char *path;

	/* [corral] */
	char *listen_addr;
	int listen_port;
	int workers;
	enum auth_type auth_type;
	char *auth_file;         /* resolved relative to the current directory, as given */
	enum pool_mode pool_mode;
	int default_pool_size;
	int max_client_conn;
	int max_packet_size;     /* bytes; longer client messages get an error */
	double query_wait_timeout;     /* seconds; 0 = wait forever */
	double server_connect_timeout; /* seconds */
	double server_idle_timeout;    /* seconds; 0 = never */
	double server_lifetime;        /* seconds; 0 = never */
	double client_login_timeout;   /* seconds from connect to authenticated; 0 = never */
	char *server_reset_query;      /* "" = none */
	char *log_level;               /* debug | info | warn | error */

	/* [databases] */
	struct db_config *dbs;
	size_t n_dbs;
};

/*
 * Reads and validates path into *out (which it initialises).  On failure returns
 * false, leaves *out freed, and writes "FILE:LINE: KEY: why" (or "FILE: why" for
 * errors without a line) into err.
 */
bool config_load(const char *path, struct corral_config *out, char *err, size_t errlen) WARN_UNUSED;
void config_free(struct corral_config *cfg);

const struct db_config *config_find_db(const struct corral_config *cfg, const char *name);
int config_pool_size(const struct corral_config *cfg, const struct db_config *db);
enum pool_mode config_pool_mode(const struct corral_config *cfg, const struct db_config *db);

const char *pool_mode_name(enum pool_mode mode);
const char *auth_type_name(enum auth_type type);

#endif
