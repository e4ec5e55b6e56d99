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
/* What transaction pooling does with SQL that leaves state on the server connection
 * corral cannot carry (proxy/pin_scan.h): keep the server for the client (pin), keep
 * pooling and say so (warn), or refuse the statement (error). */
enum pin_policy { PIN_POLICY_PIN, PIN_POLICY_WARN, PIN_POLICY_ERROR };
enum auth_type { AUTH_TRUST, AUTH_MD5, AUTH_SCRAM_SHA_256, AUTH_HBA };
/* client_tls_sslmode, PgBouncer's names and order: from DISABLE on, each is stricter. */
enum client_tls_mode {
	CLIENT_TLS_DISABLE,
	CLIENT_TLS_ALLOW,
	CLIENT_TLS_PREFER,
	CLIENT_TLS_REQUIRE,
	CLIENT_TLS_VERIFY_CA,
	CLIENT_TLS_VERIFY_FULL,
};

/* TLS on the listener (proxy/client_tls.h); the files are read when the configuration is
 * (proxy/config_store.c), so a bad one fails start, `corral -t` and RELOAD alike. */
struct client_tls_config {
	enum client_tls_mode sslmode;
	char *key_file, *cert_file, *ca_file; /* as given, relative to the working directory */
	unsigned protocols;                   /* common/tls_protocols.h; default secure */
	char *ciphers;                        /* PgBouncer's name or OpenSSL's list; NULL = OpenSSL's */
	/* where each was set (0: not set), for errors found when the files are read */
	int key_line, cert_line, ca_line, ciphers_line;
};

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
	int pin_policy;          /* -1: [corral] pin_policy, else an enum pin_policy */
	int min_pool_size;       /* -1: [corral] min_pool_size */
	int reserve_pool;        /* -1: [corral] reserve_pool_size */
	int max_db_connections;  /* -1: [corral] max_db_connections (0 = no limit) */
	char *auth_user;         /* auth_user= on the line (proxy/auth_query.h), else NULL */
	int line;                /* line in the file, for messages */
};

/* One line of [users]:  name = pool_mode=transaction max_user_connections=N */
struct user_config {
	char *name;
	int pool_mode;            /* -1: the database's or [corral]'s */
	int max_user_connections; /* -1: [corral] max_user_connections (0 = no limit) */
	int line;
};

/* One line of [limits]:  app.NAME = N  (concurrent transactions of application NAME) */
struct app_limit {
	char *app;
	int limit;
	int line;
};

struct corral_config {
	char *path;

	/* [corral] */
	char *listen_addr;
	int listen_port;
	int workers;
	bool so_reuseport;       /* other corrals may listen on the same address and port */
	enum auth_type auth_type;
	char *auth_file;         /* resolved relative to the current directory, as given */
	int auth_file_line;      /* where it was set, for errors about the file */
	char *auth_hba_file;     /* pg_hba.conf rules for auth_type = hba (proxy/hba.h) */
	int auth_hba_file_line;
	/* auth_query (proxy/auth_query.h): the secret of a user not in auth_file is asked of
	 * PostgreSQL, logged in as auth_user ("" or NULL: off), running auth_query in
	 * auth_dbname's database ("" or NULL: the client's), cached this long (seconds) */
	char *auth_user;
	char *auth_query;
	char *auth_dbname;
	double auth_query_cache_ttl;
	enum pool_mode pool_mode;
	enum pin_policy pin_policy;
	int default_pool_size;
	int max_client_conn;
	int max_packet_size;     /* bytes; longer client messages get an error */
	/* Named prepared statements kept per server connection in transaction pooling
	 * (proxy/prepared.h); 0 = named statements are refused there */
	int max_prepared_statements;
	double query_wait_timeout;     /* seconds; 0 = wait forever */
	double server_connect_timeout; /* seconds */
	double server_idle_timeout;    /* seconds; 0 = never */
	double server_lifetime;        /* seconds; 0 = never */
	double client_login_timeout;   /* seconds from connect to authenticated; 0 = never */
	/* limits on what a client can make corral hold (proxy/client_limits.h) */
	int max_logins_in_progress;    /* per worker: accepted, not yet authenticated; 0 = no cap */
	int max_pools;                 /* (database, user) pools in all; 0 = no cap */
	int auth_failure_delay;        /* failed logins per address in a minute before answers wait 1 s */
	int auth_failure_max;          /* ... before the address is refused for a minute; 0 = never */
	bool tcp_keepalive;            /* SO_KEEPALIVE on client sockets, keepalives=1 on servers */
	int tcp_keepidle, tcp_keepintvl, tcp_keepcnt; /* 0 = the kernel's default */
	char *server_reset_query;      /* "" = none */
	char *log_level;               /* debug | info | warn | error */
	/* SIGTERM waits this long (seconds) for clients to leave, then closes the rest with
	 * 57P01; 0 = wait as long as they stay */
	double shutdown_timeout;

	/* PgBouncer's limits, same names and meanings */
	int min_pool_size;             /* servers kept open per pool, also before any client */
	int reserve_pool_size;         /* extra servers for a pool whose clients waited ... */
	double reserve_pool_timeout;   /* ... this long (seconds) */
	int max_db_connections;        /* servers per database over all users; 0 = no limit */
	int max_user_connections;      /* servers per user over all databases; 0 = no limit */
	double idle_transaction_timeout; /* seconds a client may sit idle in a transaction; 0 = never */
	double client_idle_timeout;    /* seconds a logged-in client may sit idle; 0 = never */
	double server_login_retry;     /* longest wait between logins while they fail (seconds) */
	/* corral's own: while logins fail for a reason that passes (PostgreSQL
	 * unreachable, starting up or shutting down, full), clients wait this long
	 * (seconds, counted from the first failure) before they fail fast; 0 = never wait */
	double server_login_wait;

	/* load leveling */
	int max_queue_depth;           /* clients waiting in one queue before new ones are shed; 0 = no limit */
	int query_wait_notify_ms;      /* NOTICE to a client that has waited this long; 0 = never */
	int app_default_limit;         /* [limits] app_default: 0 = no limit */

	/* the admin console (proxy/admin.h) */
	char *admin_db;                /* the console's database name; "pgbouncer" is an alias */
	char *admin_users;             /* comma-separated: every console command */
	char *stats_users;             /* comma-separated: SHOW commands only */
	/* server_tls_* (pool/config_tls.h): defaults of the database lines' libpq TLS
	 * keywords, NULL when not given */
	char *server_tls_sslmode, *server_tls_ca_file, *server_tls_cert_file,
		*server_tls_key_file, *server_tls_protocols;
	int stats_period;              /* seconds between the snapshots avg_* are computed from */
	struct client_tls_config client_tls;
	/* [metrics] listen = ADDR:PORT: the HTTP endpoint (proxy/metrics_http.h); off
	 * (metrics_addr NULL) unless set */
	char *metrics_addr;            /* an IPv4 or IPv6 address, without brackets */
	int metrics_port;

	/* [databases] */
	struct db_config *dbs;
	size_t n_dbs;
	/* [users] */
	struct user_config *users;
	size_t n_users;
	/* [limits] app.NAME */
	struct app_limit *app_limits;
	size_t n_app_limits;
};

/*
 * Reads and validates path into *out (which it initialises).  On failure returns
 * false, leaves *out freed, and writes "FILE:LINE: KEY: why" (or "FILE: why" for
 * errors without a line) into err.
 */
bool config_load(const char *path, struct corral_config *out, char *err, size_t errlen) WARN_UNUSED;
void config_free(struct corral_config *cfg);
/* A deep copy of src into *dst; false when out of memory (*dst then freed). */
bool config_copy(const struct corral_config *src, struct corral_config *dst) WARN_UNUSED;
/*
 * *out = cur with [corral] key set to value, parsed and checked exactly as the same line
 * in the file would be (the rules between keys included).  On failure returns false,
 * *out freed, and err holds "SET: KEY: why" (an unknown key with "did you mean").
 */
bool config_set(const struct corral_config *cur, const char *key, const char *value,
		struct corral_config *out, char *err, size_t errlen) WARN_UNUSED;

const struct db_config *config_find_db(const struct corral_config *cfg, const char *name);
/* The auth_user for logins to db (its line's, else [corral]'s); NULL: auth_query is off. */
const char *config_auth_user(const struct corral_config *cfg, const struct db_config *db);
const struct user_config *config_find_user(const struct corral_config *cfg, const char *name);
int config_pool_size(const struct corral_config *cfg, const struct db_config *db);
/* The user's override, else the database's, else [corral]'s. */
enum pool_mode config_pool_mode(const struct corral_config *cfg, const struct db_config *db,
				const char *user);
int config_min_pool_size(const struct corral_config *cfg, const struct db_config *db);
int config_reserve_pool(const struct corral_config *cfg, const struct db_config *db);
int config_max_db_connections(const struct corral_config *cfg, const struct db_config *db);
int config_max_user_connections(const struct corral_config *cfg, const char *user);
/* Concurrent transactions allowed to application app: app.NAME, else app_default;
 * 0 = no limit. */
int config_app_limit(const struct corral_config *cfg, const char *app);
/* Whether [limits] names app (app.NAME), rather than app_default covering it. */
bool config_app_named(const struct corral_config *cfg, const char *app);

/* Whether name is one of the comma-separated names of list (blanks around names
 * ignored; exact, case-sensitive match as user names are); false for a NULL list. */
bool config_list_has(const char *list, const char *name);
/*
 * Every [corral] key with its value and default as SHOW CONFIG prints them (value and
 * default as the file would spell them).  row is called once per key in the order of
 * conf/corral.ini.  False when out of memory.
 */
bool config_show(const struct corral_config *cfg,
		 void (*row)(void *arg, const char *key, const char *value, const char *deflt),
		 void *arg) WARN_UNUSED;

const char *pool_mode_name(enum pool_mode mode);
enum pin_policy config_pin_policy(const struct corral_config *cfg, const struct db_config *db);
const char *pin_policy_name(enum pin_policy policy);
const char *auth_type_name(enum auth_type type);
/* Whether a listen_addr is 127.0.0.0/8 or ::1 (auth_type = trust is refused elsewhere). */
bool config_listen_is_loopback(const char *addr);

#endif
