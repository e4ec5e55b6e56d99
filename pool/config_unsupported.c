/* PgBouncer's settings corral does not have; see config_unsupported.h. */
#include "pool/config_unsupported.h"

#include <string.h>

#include "common/macros.h"

#define STDERR_ONLY "corral logs to stderr only (redirect it, or let systemd's journal keep it)"
#define NO_STATS_LOG \
	"the statistics are read from the admin console (SHOW STATS) or with kill -USR1"
#define AUTH_FILE_ONLY "users and their secrets come from auth_file only"
#define LOG_LEVEL "log_level = info logs every login, logout and error; debug adds more"
#define SERVER_TLS "libpq has no cipher setting: PostgreSQL's ssl_ciphers chooses"
#define CLIENT_TLS \
	"corral takes client_tls_sslmode, _key_file, _cert_file, _ca_file, _protocols and _ciphers; set TLS 1.3 suites through the OpenSSL configuration"
#define KERNEL "the kernel's defaults apply"
#define NOT_NEEDED "nothing to set"

const struct ini_unsupported config_unsupported_keys[] = {
	/* generic settings */
	{"logfile", STDERR_ONLY},
	{"pidfile", "corral runs in the foreground and never daemonizes; its pid is $! or "
		    "systemd's MainPID"},
	{"unix_socket_dir", "corral listens on TCP only (listen_addr, listen_port)"},
	{"unix_socket_mode", "corral listens on TCP only (listen_addr, listen_port)"},
	{"unix_socket_group", "corral listens on TCP only (listen_addr, listen_port)"},
	{"user", "start corral as the user it is to run as"},
	{"max_db_client_connections", "max_client_conn limits clients over all databases"},
	{"max_user_client_connections", "max_client_conn limits clients over all users"},
	{"server_round_robin", "idle server connections are reused last in, first out"},
	{"track_extra_parameters",
	 "corral applies every startup parameter of a client on its server connection "
	 "(set_config()) and resets it for the next client"},
	{"ignore_startup_parameters",
	 "corral accepts every startup parameter (extra_float_digits, search_path, options "
	 "-c ...) and applies it on the server connection, so none needs ignoring"},
	{"peer_id", "a cancel request reaches the right worker of one corral; there are no "
		    "peers"},
	{"disable_pqexec", NULL},
	{"application_name_add_host", NULL},
	{"conffile", "the configuration file is given with -c"},
	{"service_name", NULL},
	{"job_name", NULL},
	{"scram_iterations", "corral checks SCRAM logins against the verifier in auth_file, "
			     "with that verifier's iteration count"},
	/* authentication */
	{"auth_ident_file", AUTH_FILE_ONLY},
	{"auth_ldap_options", AUTH_FILE_ONLY},
	/* logging */
	{"syslog", STDERR_ONLY},
	{"syslog_ident", STDERR_ONLY},
	{"syslog_facility", STDERR_ONLY},
	{"log_connections", LOG_LEVEL},
	{"log_disconnections", LOG_LEVEL},
	{"log_pooler_errors", "errors corral sends clients are always logged (log_level = info)"},
	{"log_stats", NO_STATS_LOG},
	{"verbose", "use log_level = debug"},
	/* sanity checks and timeouts */
	{"server_reset_query_always",
	 "in transaction pooling corral resets session parameters it set itself, and "
	 "server_reset_query runs when a session-pooled client leaves"},
	{"server_check_delay", "a server connection that died is noticed when it is read "
			       "and closed; no query is needed"},
	{"server_check_query", "a server connection that died is noticed when it is read "
			       "and closed; no query is needed"},
	{"server_fast_close", NULL},
	{"autodb_idle_timeout", "corral has no automatic databases; list each in [databases]"},
	{"pool_idle_timeout", "server_idle_timeout closes idle server connections"},
	{"dns_max_ttl", "libpq resolves host names at each server login"},
	{"dns_nxdomain_ttl", "libpq resolves host names at each server login"},
	{"dns_zone_check_period", "libpq resolves host names at each server login"},
	{"resolv_conf", "libpq resolves host names with the system's resolver"},
	{"login_notify_message", NULL},
	/* TLS */
	{"client_tls13_ciphers", CLIENT_TLS},
	{"client_tls_ecdhcurve", CLIENT_TLS},
	{"client_tls_dheparams", CLIENT_TLS},
	{"server_tls_ciphers", SERVER_TLS},
	{"server_tls13_ciphers", SERVER_TLS},
	/* dangerous timeouts */
	{"query_timeout", "let PostgreSQL end long queries: statement_timeout (ALTER ROLE ... "
			  "SET, or the client's options='-c statement_timeout=...')"},
	{"cancel_wait_timeout", "a cancel is sent by a thread of its own and never blocks "
				"a client"},
	{"transaction_timeout", "use PostgreSQL's transaction_timeout (17 and later) or "
				"idle_transaction_timeout"},
	{"suspend_timeout", "corral has no online restart (-R)"},
	/* low-level network settings */
	{"pkt_buf", "buffers grow as messages need; max_packet_size bounds one message"},
	{"listen_backlog", KERNEL " (corral asks for 1024)"},
	{"sbuf_loopcnt", NOT_NEEDED},
	{"tcp_defer_accept", KERNEL},
	{"tcp_socket_buffer", KERNEL},
	{"tcp_user_timeout", "for server connections use libpq's tcp_user_timeout= on the "
			     "[databases] line"},
};

const size_t config_n_unsupported_keys = ARRAY_SIZE(config_unsupported_keys);

/* [databases] line parameters of PgBouncer's that neither libpq nor corral takes
 * (reserve_pool_size is corral's reserve_pool=, which "did you mean" offers). */
static const struct ini_unsupported db_keys[] = {
	{"auth_query", "auth_query is set in [corral] for every database"},
	{"auth_dbname", "auth_dbname is set in [corral] for every database"},
	{"connect_query", NULL},
	{"query_wait_timeout", "query_wait_timeout is set in [corral] for every database"},
	{"max_db_client_connections", "max_client_conn limits clients over all databases"},
	{"server_lifetime", "server_lifetime is set in [corral] for every database"},
	{"datestyle", "a client's DateStyle startup parameter is applied on its server "
		      "connection; for a default use ALTER DATABASE ... SET DateStyle"},
	{"timezone", "a client's TimeZone startup parameter is applied on its server "
		     "connection; for a default use ALTER DATABASE ... SET TimeZone"},
};

const struct ini_unsupported *config_unsupported_db_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(db_keys); i++) {
		if (strcmp(db_keys[i].name, name) == 0)
			return &db_keys[i];
	}
	return NULL;
}
