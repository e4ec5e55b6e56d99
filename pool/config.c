/*
 * conf/corral.ini -> struct corral_config.
 *
 * inih does the INI grammar; this file does everything inih leaves open.  Debian's
 * libinih (55) is built without INI_HANDLER_LINENO, with 200-byte lines, inline
 * comments for ';' only and Python-style continuation lines, so we feed it through
 * the line reader of common/ini_load.c (shared with corral-fn), which counts lines,
 * strips ';' and '#' comments, left-trims, refuses overlong lines and stops at the
 * first error.  Here:
 *   - [section] headers are checked by the reader's section hook, because inih never
 *     reports an empty section;
 *   - the reader keeps the line (ini.line), because inih ends a key at ':' as well as
 *     '=' and names in [users] and [limits] may contain a ':'.
 * Every error is reported (see ini_load.h), one "FILE:LINE: KEY: why" line each; the
 * rules between keys (check_whole) only once every line is right, since their
 * errors would often follow from an earlier one.  PgBouncer's settings corral does not
 * have are named as such (config_unsupported.c), and a misspelt key gets "did you mean".
 */
#include "pool/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/ini_load.h"
#include "common/parse.h"
#include "common/suggest.h"
#include "common/tls_protocols.h"
#include "pool/config_tls.h"
#include "pool/config_unsupported.h"

#define MAX_WORKERS 256
#define MAX_POOL_SIZE 10000
#define MAX_CLIENT_CONN 1000000
/* PostgreSQL's own limit (MaxAllocSize - 1); below 1 KB ordinary queries would fail. */
#define MIN_PACKET_SIZE 1024
#define MAX_PACKET_SIZE 1073741823
/* query_wait_notify: one day in milliseconds. */
#define MAX_NOTIFY_MS 86400000
/* stats_period: one day in seconds. */
#define MAX_STATS_PERIOD 86400

static const char *const pool_mode_names[] = {
	[POOL_MODE_SESSION] = "session",
	[POOL_MODE_TRANSACTION] = "transaction",
	[POOL_MODE_STATEMENT] = "statement",
};

static const char *const pin_policy_names[] = {
	[PIN_POLICY_PIN] = "pin",
	[PIN_POLICY_WARN] = "warn",
	[PIN_POLICY_ERROR] = "error",
};

static const char *const client_tls_mode_names[] = {
	[CLIENT_TLS_DISABLE] = "disable",     [CLIENT_TLS_ALLOW] = "allow",
	[CLIENT_TLS_PREFER] = "prefer",       [CLIENT_TLS_REQUIRE] = "require",
	[CLIENT_TLS_VERIFY_CA] = "verify-ca", [CLIENT_TLS_VERIFY_FULL] = "verify-full",
};

static const char *const auth_type_names[] = {
	[AUTH_TRUST] = "trust",
	[AUTH_MD5] = "md5",
	[AUTH_SCRAM_SHA_256] = "scram-sha-256",
	[AUTH_HBA] = "hba",
};

/* Parsers for a struct ini_key (common/ini_load.h) of [corral], obj a struct corral_config;
 * ini_key_int, _string, _nonempty, _address and _log_level are common/ini_load.c's. */
#define PARSER(name) static INI_KEY_PARSER(name)
PARSER(parse_seconds_key);
PARSER(parse_positive_seconds_key);
PARSER(parse_millis_key);
PARSER(parse_auth_type_key);
PARSER(parse_pool_mode_key);
PARSER(parse_pin_policy_key);
PARSER(parse_listen_key);
PARSER(parse_tls_mode_key);
PARSER(parse_tls_protocols_key);

#define FIELD(f) offsetof(struct corral_config, f)

static const struct ini_key corral_keys[] = {
	{ "listen_addr", ini_key_address, FIELD(listen_addr), 0, 0 },
	{ "listen_port", ini_key_int, FIELD(listen_port), 1, 65535 },
	{ "workers", ini_key_int, FIELD(workers), 1, MAX_WORKERS },
	{ "so_reuseport", ini_key_bool, FIELD(so_reuseport), 0, 0 },
	{ "auth_type", parse_auth_type_key, FIELD(auth_type), 0, 0 },
	{ "auth_file", ini_key_nonempty, FIELD(auth_file), 0, 0 },
	{ "auth_hba_file", ini_key_nonempty, FIELD(auth_hba_file), 0, 0 },
	{ "auth_user", ini_key_string, FIELD(auth_user), 0, 0 },
	{ "auth_query", ini_key_nonempty, FIELD(auth_query), 0, 0 },
	{ "auth_dbname", ini_key_string, FIELD(auth_dbname), 0, 0 },
	{ "auth_query_cache_ttl", parse_seconds_key, FIELD(auth_query_cache_ttl), 0, 0 },
	{ "pool_mode", parse_pool_mode_key, FIELD(pool_mode), 0, 0 },
	{ "pin_policy", parse_pin_policy_key, FIELD(pin_policy), 0, 0 },
	{ "default_pool_size", ini_key_int, FIELD(default_pool_size), 1, MAX_POOL_SIZE },
	{ "max_client_conn", ini_key_int, FIELD(max_client_conn), 1, MAX_CLIENT_CONN },
	{ "query_wait_timeout", parse_seconds_key, FIELD(query_wait_timeout), 0, 0 },
	{ "server_reset_query", ini_key_string, FIELD(server_reset_query), 0, 0 },
	{ "server_connect_timeout", parse_positive_seconds_key, FIELD(server_connect_timeout),
	  0, 0 },
	{ "server_idle_timeout", parse_seconds_key, FIELD(server_idle_timeout), 0, 0 },
	{ "client_login_timeout", parse_seconds_key, FIELD(client_login_timeout), 0, 0 },
	{ "max_logins_in_progress", ini_key_int, FIELD(max_logins_in_progress), 0, MAX_CLIENT_CONN },
	{ "max_pools", ini_key_int, FIELD(max_pools), 0, 1000000 },
	{ "auth_failure_delay", ini_key_int, FIELD(auth_failure_delay), 0, 1000000 },
	{ "auth_failure_max", ini_key_int, FIELD(auth_failure_max), 0, 1000000 },
	{ "tcp_keepalive", ini_key_bool, FIELD(tcp_keepalive), 0, 0 },
	{ "tcp_keepidle", ini_key_int, FIELD(tcp_keepidle), 0, 86400 },
	{ "tcp_keepintvl", ini_key_int, FIELD(tcp_keepintvl), 0, 86400 },
	{ "tcp_keepcnt", ini_key_int, FIELD(tcp_keepcnt), 0, 1000 },
	{ "server_lifetime", parse_seconds_key, FIELD(server_lifetime), 0, 0 },
	{ "max_packet_size", ini_key_int, FIELD(max_packet_size),
	  MIN_PACKET_SIZE, MAX_PACKET_SIZE },
	{ "max_prepared_statements", ini_key_int, FIELD(max_prepared_statements), 0, 100000 },
	{ "log_level", ini_key_log_level, FIELD(log_level), 0, 0 },
	{ "shutdown_timeout", parse_seconds_key, FIELD(shutdown_timeout), 0, 0 },
	/* PgBouncer's limits */
	{ "min_pool_size", ini_key_int, FIELD(min_pool_size), 0, MAX_POOL_SIZE },
	{ "reserve_pool_size", ini_key_int, FIELD(reserve_pool_size), 0, MAX_POOL_SIZE },
	{ "reserve_pool_timeout", parse_seconds_key, FIELD(reserve_pool_timeout), 0, 0 },
	{ "max_db_connections", ini_key_int, FIELD(max_db_connections), 0, MAX_CLIENT_CONN },
	{ "max_user_connections", ini_key_int, FIELD(max_user_connections),
	  0, MAX_CLIENT_CONN },
	{ "idle_transaction_timeout", parse_seconds_key, FIELD(idle_transaction_timeout),
	  0, 0 },
	{ "client_idle_timeout", parse_seconds_key, FIELD(client_idle_timeout), 0, 0 },
	{ "server_login_retry", parse_positive_seconds_key, FIELD(server_login_retry), 0, 0 },
	{ "server_login_wait", parse_seconds_key, FIELD(server_login_wait), 0, 0 },
	/* load leveling */
	{ "max_queue_depth", ini_key_int, FIELD(max_queue_depth), 0, MAX_CLIENT_CONN },
	{ "query_wait_notify", parse_millis_key, FIELD(query_wait_notify_ms), 0, MAX_NOTIFY_MS },
	/* the admin console */
	{ "admin_db", ini_key_nonempty, FIELD(admin_db), 0, 0 },
	{ "admin_users", ini_key_string, FIELD(admin_users), 0, 0 },
	{ "stats_users", ini_key_string, FIELD(stats_users), 0, 0 },
	{ "stats_period", ini_key_int, FIELD(stats_period), 1, MAX_STATS_PERIOD },
	/* TLS for clients, PgBouncer's names (proxy/client_tls.h) */
	{ "client_tls_sslmode", parse_tls_mode_key, FIELD(client_tls.sslmode), 0, 0 },
	{ "client_tls_key_file", ini_key_nonempty, FIELD(client_tls.key_file), 0, 0 },
	{ "client_tls_cert_file", ini_key_nonempty, FIELD(client_tls.cert_file), 0, 0 },
	{ "client_tls_ca_file", ini_key_nonempty, FIELD(client_tls.ca_file), 0, 0 },
	{ "client_tls_protocols", parse_tls_protocols_key, FIELD(client_tls.protocols), 0, 0 },
	{ "client_tls_ciphers", ini_key_nonempty, FIELD(client_tls.ciphers), 0, 0 },
	/* TLS to PostgreSQL (pool/config_tls.h) */
	{ "server_tls_sslmode", ini_key_nonempty, FIELD(server_tls_sslmode), 0, 0 },
	{ "server_tls_ca_file", ini_key_nonempty, FIELD(server_tls_ca_file), 0, 0 },
	{ "server_tls_cert_file", ini_key_nonempty, FIELD(server_tls_cert_file), 0, 0 },
	{ "server_tls_key_file", ini_key_nonempty, FIELD(server_tls_key_file), 0, 0 },
	{ "server_tls_protocols", ini_key_nonempty, FIELD(server_tls_protocols), 0, 0 },
};

/* [metrics]: the HTTP endpoint (proxy/metrics_http.c). */
static const struct ini_key metrics_keys[] = {
	{ "listen", parse_listen_key, FIELD(metrics_addr), 0, 0 },
};

struct load_ctx {
	struct ini_load ini; /* path, line, error: common/ini_load.h */
	struct corral_config *cfg;
	int seen[ARRAY_SIZE(corral_keys)]; /* line each [corral] key was set on, 0 = not yet */
	int metrics_seen[ARRAY_SIZE(metrics_keys)];
	int app_default_line;              /* line of [limits] app_default, 0 = not yet */
	PQconninfoOption *libpq_options;   /* PQconndefaults(), fetched at the first database */
};

#define fail(ctx, key, ...) ini_fail(&(ctx)->ini, (key), __VA_ARGS__)
#define fail_line(ctx, line, key, ...) ini_fail_line(&(ctx)->ini, (line), (key), __VA_ARGS__)

static int find_name(const char *const *names, size_t n, const char *value)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(value, names[i]) == 0)
			return (int)i;
	}
	return -1;
}

PARSER(parse_seconds_key)
{
	return parse_decimal_seconds(value, PARSE_MAX_SECONDS, ini_key_field(obj, spec)) ||
	       ini_key_seconds_fail(ld, spec, value, false, 120);
}

/* For timeouts where 0 could only mean "fail at once", which nobody wants. */
PARSER(parse_positive_seconds_key)
{
	double v;
	if (!parse_decimal_seconds(value, PARSE_MAX_SECONDS, &v) || v <= 0)
		return ini_key_seconds_fail(ld, spec, value, true, 15);
	*(double *)ini_key_field(obj, spec) = v;
	return true;
}

/* Milliseconds are whole numbers: "1.5" more likely means seconds, so it is refused. */
PARSER(parse_millis_key)
{
	if (parse_uint_range(value, spec->min, spec->max, ini_key_field(obj, spec)))
		return true;
	ini_fail(ld, spec->name,
		 "must be a whole number of milliseconds between %d and %d, got \"%s\"", spec->min,
		 spec->max, value);
	return false;
}

PARSER(parse_auth_type_key)
{
	int i = find_name(auth_type_names, ARRAY_SIZE(auth_type_names), value);
	if (i < 0) {
		ini_fail(ld, spec->name, "must be one of trust, md5, scram-sha-256, hba, got \"%s\"",
			 value);
		return false;
	}
	*(enum auth_type *)ini_key_field(obj, spec) = (enum auth_type)i;
	return true;
}

PARSER(parse_pool_mode_key)
{
	int i = find_name(pool_mode_names, ARRAY_SIZE(pool_mode_names), value);
	if (i < 0) {
		ini_fail(ld, spec->name, "must be one of session, transaction, statement, got \"%s\"",
			 value);
		return false;
	}
	*(enum pool_mode *)ini_key_field(obj, spec) = (enum pool_mode)i;
	return true;
}

PARSER(parse_tls_mode_key)
{
	int i = find_name(client_tls_mode_names, ARRAY_SIZE(client_tls_mode_names), value);
	if (i < 0) {
		ini_fail(ld, spec->name,
			 "must be one of disable, allow, prefer, require, verify-ca, verify-full, "
			 "got \"%s\"",
			 value);
		return false;
	}
	*(enum client_tls_mode *)ini_key_field(obj, spec) = (enum client_tls_mode)i;
	return true;
}

PARSER(parse_tls_protocols_key)
{
	char bad[64];
	if (!tls_protocols_parse(value, ini_key_field(obj, spec), bad, sizeof(bad))) {
		if (bad[0])
			ini_fail(ld, spec->name,
				 "unknown protocol \"%s\" (known: tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, "
				 "secure, all, legacy)",
				 bad);
		else
			ini_fail(ld, spec->name, "names no protocol");
		return false;
	}
	return true;
}

PARSER(parse_pin_policy_key)
{
	int i = find_name(pin_policy_names, ARRAY_SIZE(pin_policy_names), value);
	if (i < 0) {
		ini_fail(ld, spec->name, "must be one of pin, warn, error, got \"%s\"", value);
		return false;
	}
	*(enum pin_policy *)ini_key_field(obj, spec) = (enum pin_policy)i;
	return true;
}

/*
 * ADDR:PORT (IPv6 as [ADDR]:PORT) into metrics_addr and metrics_port.  Any address is
 * taken: the endpoint shows counts and names of databases, users and applications, no
 * secrets, and where it may be reached is the operator's call (the reference file
 * suggests loopback).
 */
PARSER(parse_listen_key)
{
	struct corral_config *cfg = obj;
	const char *colon = strrchr(value, ':');
	const char *host = value;
	size_t host_len = colon ? (size_t)(colon - value) : 0;
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	} else if (colon && memchr(value, ':', host_len)) {
		colon = NULL; /* an IPv6 address without brackets: where is the port? */
	}
	char addr[64];
	unsigned char bin[16];
	int port;
	if (!colon || host_len == 0 || host_len >= sizeof(addr) ||
	    !parse_uint_range(colon + 1, 1, 65535, &port)) {
		ini_fail(ld, spec->name,
			 "must be ADDRESS:PORT (e.g. 127.0.0.1:9930, [::1]:9930), got \"%s\"", value);
		return false;
	}
	memcpy(addr, host, host_len);
	addr[host_len] = '\0';
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1) {
		ini_fail(ld, spec->name, "\"%s\" is not an IPv4 or IPv6 address", addr);
		return false;
	}
	char *copy = strdup(addr);
	if (!copy) {
		ini_fail(ld, spec->name, "out of memory");
		return false;
	}
	free(cfg->metrics_addr);
	cfg->metrics_addr = copy;
	cfg->metrics_port = port;
	return true;
}

/* The line a [corral] key was set on; 0 when it was left at its default. */
static int key_line(const struct load_ctx *ctx, const char *name)
{
	int i = ini_key_index(corral_keys, ARRAY_SIZE(corral_keys), name);
	return i >= 0 ? ctx->seen[i] : 0;
}

static void db_free(struct db_config *db)
{
	free(db->name);
	free(db->auth_user);
	for (size_t i = 0; i < db->n_conn; i++) {
		free(db->conn_keys[i]);
		free(db->conn_vals[i]);
	}
	free(db->conn_keys);
	free(db->conn_vals);
	memset(db, 0, sizeof(*db));
}

/* Appends one keyword/value pair (copied), keeping both arrays NULL-terminated. */
static bool db_add_conn(struct db_config *db, const char *key, const char *val) WARN_UNUSED;

static bool db_add_conn(struct db_config *db, const char *key, const char *val)
{
	size_t n = db->n_conn;
	char **keys = realloc(db->conn_keys, (n + 2) * sizeof(*keys));
	if (!keys)
		return false;
	keys[n] = NULL;
	db->conn_keys = keys;
	char **vals = realloc(db->conn_vals, (n + 2) * sizeof(*vals));
	if (!vals)
		return false;
	vals[n] = NULL;
	db->conn_vals = vals;
	char *k = strdup(key);
	char *v = strdup(val);
	if (!k || !v) {
		free(k);
		free(v);
		return false;
	}
	keys[n] = k;
	vals[n] = v;
	keys[n + 1] = vals[n + 1] = NULL;
	db->n_conn = n + 1;
	return true;
}

static bool db_has_conn(const struct db_config *db, const char *key)
{
	for (size_t i = 0; i < db->n_conn; i++) {
		if (strcmp(db->conn_keys[i], key) == 0)
			return true;
	}
	return false;
}

static bool is_libpq_keyword(struct load_ctx *ctx, const char *key, bool *known)
{
	if (!ctx->libpq_options) {
		ctx->libpq_options = PQconndefaults();
		if (!ctx->libpq_options)
			return false;
	}
	*known = false;
	for (const PQconninfoOption *o = ctx->libpq_options; o->keyword; o++) {
		if (strcmp(o->keyword, key) == 0) {
			*known = true;
			break;
		}
	}
	return true;
}

/*
 * corral's own keys on a [databases] or [users] line.  Each is an int in the line's
 * struct that holds -1 until the line sets it, so "given twice" needs no bookkeeping.
 */
struct line_key {
	const char *name;
	size_t offset;
	int min, max; /* min == IS_POOL_MODE: a pool mode name; IS_PIN_POLICY: a policy */
};

#define IS_POOL_MODE (-1)
#define IS_PIN_POLICY (-2)
#define DB_FIELD(f) offsetof(struct db_config, f)
#define USER_FIELD(f) offsetof(struct user_config, f)

static const struct line_key db_keys[] = {
	{ "pool_size", DB_FIELD(pool_size), 1, MAX_POOL_SIZE },
	{ "pool_mode", DB_FIELD(pool_mode), IS_POOL_MODE, 0 },
	{ "pin_policy", DB_FIELD(pin_policy), IS_PIN_POLICY, 0 },
	{ "min_pool_size", DB_FIELD(min_pool_size), 0, MAX_POOL_SIZE },
	{ "reserve_pool", DB_FIELD(reserve_pool), 0, MAX_POOL_SIZE },
	{ "max_db_connections", DB_FIELD(max_db_connections), 0, MAX_CLIENT_CONN },
};

static const struct line_key user_keys[] = {
	{ "pool_mode", USER_FIELD(pool_mode), IS_POOL_MODE, 0 },
	{ "max_user_connections", USER_FIELD(max_user_connections), 0, MAX_CLIENT_CONN },
};

static int *line_key_slot(void *obj, const struct line_key *k)
{
	return (int *)((char *)obj + k->offset);
}

static void unset_line_keys(void *obj, const struct line_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		*line_key_slot(obj, &keys[i]) = -1;
}

static const struct line_key *find_line_key(const struct line_key *keys, size_t n,
					    const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL;
}

/* One of corral's keys on the line of owner (a database or user name). */
static bool set_line_key(struct load_ctx *ctx, const char *owner, void *obj,
			 const struct line_key *k, const char *val)
{
	int *slot = line_key_slot(obj, k);
	if (*slot >= 0) {
		fail(ctx, owner, "\"%s\" given twice", k->name);
		return false;
	}
	if (k->min == IS_POOL_MODE) {
		int mode = find_name(pool_mode_names, ARRAY_SIZE(pool_mode_names), val);
		if (mode >= 0) {
			*slot = mode;
			return true;
		}
		fail(ctx, owner, "%s must be one of session, transaction, statement, got \"%s\"",
		     k->name, val);
		return false;
	}
	if (k->min == IS_PIN_POLICY) {
		int policy = find_name(pin_policy_names, ARRAY_SIZE(pin_policy_names), val);
		if (policy >= 0) {
			*slot = policy;
			return true;
		}
		fail(ctx, owner, "%s must be one of pin, warn, error, got \"%s\"", k->name, val);
		return false;
	}
	if (parse_uint_range(val, k->min, k->max, slot))
		return true;
	fail(ctx, owner, "%s must be an integer between %d and %d, got \"%s\"", k->name, k->min,
	     k->max, val);
	return false;
}

/* Takes one keyword=value of a line, after unquoting; obj is the line's struct. */
typedef bool (*pair_setter)(struct load_ctx *ctx, const char *owner, void *obj, const char *key,
			    const char *val);

/* A keyword on a database line that is neither corral's nor libpq's. */
static void unknown_db_keyword(struct load_ctx *ctx, const char *owner, const char *key)
{
	const struct ini_unsupported *u = config_unsupported_db_key(key);
	if (u) {
		fail(ctx, owner, "\"%s\" is not supported by corral%s%s", key, u->hint ? "; " : "",
		     u->hint ? u->hint : "");
		return;
	}
	struct suggest s;
	suggest_begin(&s, key);
	for (size_t i = 0; i < ARRAY_SIZE(db_keys); i++)
		suggest_consider(&s, db_keys[i].name);
	for (const PQconninfoOption *o = ctx->libpq_options; o->keyword; o++)
		suggest_consider(&s, o->keyword);
	const char *best = suggest_result(&s);
	fail(ctx, owner, "unknown connection keyword \"%s\" (not one libpq knows)%s%s%s", key,
	     best ? "; did you mean " : "", best ? best : "", best ? "?" : "");
}

/* A database line: corral's keys are taken out, the rest must be libpq's. */
static bool db_set(struct load_ctx *ctx, const char *owner, void *obj, const char *key,
		   const char *val)
{
	struct db_config *db = obj;
	const struct line_key *k = find_line_key(db_keys, ARRAY_SIZE(db_keys), key);
	if (k)
		return set_line_key(ctx, owner, db, k, val);
	/* PgBouncer's per-database auth_user (proxy/auth_query.h): corral's, not libpq's. */
	if (strcmp(key, "auth_user") == 0) {
		if (db->auth_user) {
			fail(ctx, owner, "\"%s\" given twice", key);
			return false;
		}
		if (*val == '\0') {
			fail(ctx, owner, "auth_user must not be empty");
			return false;
		}
		db->auth_user = strdup(val);
		if (!db->auth_user) {
			fail(ctx, owner, "out of memory");
			return false;
		}
		return true;
	}
	if (db_has_conn(db, key)) {
		fail(ctx, owner, "\"%s\" given twice", key);
		return false;
	}
	bool known;
	if (!is_libpq_keyword(ctx, key, &known) || (known && !db_add_conn(db, key, val))) {
		fail(ctx, owner, "out of memory");
		return false;
	}
	if (!known)
		unknown_db_keyword(ctx, owner, key);
	return known;
}

static bool user_set(struct load_ctx *ctx, const char *owner, void *obj, const char *key,
		     const char *val)
{
	const struct line_key *k = find_line_key(user_keys, ARRAY_SIZE(user_keys), key);
	if (k)
		return set_line_key(ctx, owner, obj, k, val);
	fail(ctx, owner,
	     "unknown key \"%s\" (a [users] line takes pool_mode= and max_user_connections=)",
	     key);
	return false;
}

static char *skip_space(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static char *rstrip(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * Splits a libpq conninfo string the way libpq's conninfo_parse() does: blanks
 * around '=' are allowed, a value is either bare (ends at a blank) or in single
 * quotes, and a backslash escapes the next character in both.  Unquoting happens in
 * place in text.  Values are never echoed in messages: one may be a password.
 * [users] lines use the same syntax.  A keyword that cannot be set does not end the
 * line, so each one with an error is reported; a syntax error does.
 */
static bool parse_conninfo(struct load_ctx *ctx, const char *owner, char *text, pair_setter set,
			   void *obj)
{
	bool ok = true;
	char *cp = skip_space(text);
	while (*cp) {
		char *key = cp;
		size_t key_len = strcspn(cp, "= \t\r\n\v\f");
		cp = skip_space(cp + key_len);
		if (*cp != '=' || key_len == 0) {
			key[key_len] = '\0';
			if (key_len == 0)
				fail(ctx, owner, "expected a keyword before \"=\"");
			else
				fail(ctx, owner, "expected \"=\" after \"%s\"", key);
			return false;
		}
		cp = skip_space(cp + 1);
		key[key_len] = '\0';

		char *val = cp, *out = cp;
		if (*cp == '\'') {
			for (cp++; *cp != '\'';) {
				if (*cp == '\\')
					cp++;
				if (*cp == '\0') {
					fail(ctx, owner, "unterminated quoted value for \"%s\"",
					     key);
					return false;
				}
				*out++ = *cp++;
			}
			cp++;
		} else {
			while (*cp && !isspace((unsigned char)*cp)) {
				/* As in libpq, a backslash at the very end is dropped. */
				if (*cp == '\\' && *++cp == '\0')
					break;
				*out++ = *cp++;
			}
			/* Step past the blank before out may overwrite it. */
			if (*cp)
				cp++;
		}
		*out = '\0';
		if (!set(ctx, owner, obj, key, val))
			ok = false;
		cp = skip_space(cp);
	}
	return ok;
}

/* parse_conninfo() on a copy of value, which may be const. */
static bool parse_line_value(struct load_ctx *ctx, const char *owner, const char *value,
			     pair_setter set, void *obj)
{
	char *text = strdup(value);
	if (!text) {
		fail(ctx, owner, "out of memory");
		return false;
	}
	bool ok = parse_conninfo(ctx, owner, text, set, obj);
	free(text);
	return ok;
}

static void point_at_credentials(struct db_config *db)
{
	for (size_t i = 0; i < db->n_conn; i++) {
		if (strcmp(db->conn_keys[i], "user") == 0)
			db->user = db->conn_vals[i];
		else if (strcmp(db->conn_keys[i], "password") == 0)
			db->password = db->conn_vals[i];
	}
}

/* Fills *db from one [databases] line; on failure the caller frees it. */
static bool parse_database(struct load_ctx *ctx, struct db_config *db, const char *name,
			   const char *value)
{
	unset_line_keys(db, db_keys, ARRAY_SIZE(db_keys));
	db->line = ctx->ini.lineno;
	db->name = strdup(name);
	if (!db->name) {
		fail(ctx, name, "out of memory");
		return false;
	}
	if (!parse_line_value(ctx, name, value, db_set, db))
		return false;
	/* The server database defaults to the name clients ask for. */
	if (!db_has_conn(db, "dbname") && !db_add_conn(db, "dbname", db->name)) {
		fail(ctx, name, "out of memory");
		return false;
	}
	point_at_credentials(db);
	return true;
}

static void add_database(struct load_ctx *ctx, const char *name, const char *value)
{
	struct corral_config *cfg = ctx->cfg;
	if (*name == '\0') {
		fail(ctx, NULL, "a database entry needs a name before \"=\"");
		return;
	}
	if (strcmp(name, "*") == 0) {
		fail(ctx, name, "wildcard database entries are not supported yet; "
				"list each database by name");
		return;
	}
	const struct db_config *old = config_find_db(cfg, name);
	if (old) {
		fail(ctx, name, "database defined twice (first on line %d)", old->line);
		return;
	}
	struct db_config *dbs = realloc(cfg->dbs, (cfg->n_dbs + 1) * sizeof(*dbs));
	if (!dbs) {
		fail(ctx, name, "out of memory");
		return;
	}
	cfg->dbs = dbs;
	struct db_config *db = &dbs[cfg->n_dbs];
	memset(db, 0, sizeof(*db));
	if (parse_database(ctx, db, name, value))
		cfg->n_dbs++;
	else
		db_free(db);
}

/* One [users] line:  name = pool_mode=... max_user_connections=... */
static void add_user(struct load_ctx *ctx, const char *name, const char *value)
{
	struct corral_config *cfg = ctx->cfg;
	if (*name == '\0') {
		fail(ctx, NULL, "a [users] entry needs a user name before \"=\"");
		return;
	}
	const struct user_config *old = config_find_user(cfg, name);
	if (old) {
		fail(ctx, name, "user defined twice (first on line %d)", old->line);
		return;
	}
	struct user_config *users = realloc(cfg->users, (cfg->n_users + 1) * sizeof(*users));
	if (!users) {
		fail(ctx, name, "out of memory");
		return;
	}
	cfg->users = users;
	struct user_config *u = &users[cfg->n_users];
	memset(u, 0, sizeof(*u));
	unset_line_keys(u, user_keys, ARRAY_SIZE(user_keys));
	u->line = ctx->ini.lineno;
	u->name = strdup(name);
	if (!u->name) {
		fail(ctx, name, "out of memory");
		return;
	}
	if (parse_line_value(ctx, name, value, user_set, u))
		cfg->n_users++;
	else
		free(u->name);
}

static const struct app_limit *find_app_limit(const struct corral_config *cfg, const char *app)
{
	for (size_t i = 0; i < cfg->n_app_limits; i++) {
		if (strcmp(cfg->app_limits[i].app, app) == 0)
			return &cfg->app_limits[i];
	}
	return NULL;
}

static void set_app_default(struct load_ctx *ctx, const char *key, const char *value)
{
	if (ctx->app_default_line) {
		fail(ctx, key, "set twice (first on line %d)", ctx->app_default_line);
		return;
	}
	ctx->app_default_line = ctx->ini.lineno;
	if (!parse_uint_range(value, 0, MAX_CLIENT_CONN, &ctx->cfg->app_default_limit))
		fail(ctx, key, "must be an integer between 0 (no limit) and %d, got \"%s\"",
		     MAX_CLIENT_CONN, value);
}

/* One [limits] line:  app.NAME = N  or  app_default = N */
static void add_limit(struct load_ctx *ctx, const char *key, const char *value)
{
	struct corral_config *cfg = ctx->cfg;
	if (strcmp(key, "app_default") == 0) {
		set_app_default(ctx, key, value);
		return;
	}
	if (strncmp(key, "app.", 4) != 0) {
		fail(ctx, key,
		     "unknown key in [limits] (it takes app.NAME = N and app_default = N)");
		return;
	}
	const char *app = key + 4;
	if (*app == '\0') {
		fail(ctx, key, "needs an application name after \"app.\"");
		return;
	}
	/* inih trims the end; a blank after "app." would be invisible in the file. */
	if (isspace((unsigned char)*app)) {
		fail(ctx, key, "the application name must not start with a blank");
		return;
	}
	const struct app_limit *old = find_app_limit(cfg, app);
	if (old) {
		fail(ctx, key, "set twice (first on line %d)", old->line);
		return;
	}
	int limit;
	if (!parse_uint_range(value, 1, MAX_CLIENT_CONN, &limit)) {
		fail(ctx, key, "must be an integer between 1 and %d, got \"%s\"", MAX_CLIENT_CONN,
		     value);
		return;
	}
	struct app_limit *limits =
		realloc(cfg->app_limits, (cfg->n_app_limits + 1) * sizeof(*limits));
	if (!limits) {
		fail(ctx, key, "out of memory");
		return;
	}
	cfg->app_limits = limits;
	char *copy = strdup(app);
	if (!copy) {
		fail(ctx, key, "out of memory");
		return;
	}
	limits[cfg->n_app_limits++] = (struct app_limit){ .app = copy, .limit = limit,
							   .line = ctx->ini.lineno };
}

/*
 * inih ends a key at the first '=' or ':', but user and application names may hold
 * a ':' ("app.svc:checkout = 5").  In [users] and [limits] the key is everything
 * before the first '=' of the line the reader handed inih, blanks trimmed.
 */
typedef void (*entry_adder)(struct load_ctx *ctx, const char *key, const char *value);

static void add_split_at_equals(struct load_ctx *ctx, entry_adder add)
{
	char *line = ctx->ini.line;
	char *eq = line ? strchr(line, '=') : NULL;
	if (!eq) {
		fail(ctx, NULL, "expected \"key = value\"");
		return;
	}
	*eq = '\0';
	add(ctx, rstrip(line), skip_space(eq + 1));
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	if (!value)
		fail(ctx, name, "has no value");
	else if (strcmp(section, "corral") == 0)
		ini_key_set(&ctx->ini, corral_keys, ARRAY_SIZE(corral_keys), ctx->seen, ctx->cfg,
			    "corral", name, value);
	else if (strcmp(section, "databases") == 0)
		add_database(ctx, name, value);
	else if (strcmp(section, "users") == 0)
		add_split_at_equals(ctx, add_user);
	else if (strcmp(section, "limits") == 0)
		add_split_at_equals(ctx, add_limit);
	else if (strcmp(section, "metrics") == 0)
		ini_key_set(&ctx->ini, metrics_keys, ARRAY_SIZE(metrics_keys), ctx->metrics_seen,
			    ctx->cfg, "metrics", name, value);
	else if (*section == '\0')
		fail(ctx, name, "comes before any section; put it under [corral]");
	else
		fail(ctx, name, "in unknown section [%s]", section);
	return !ctx->ini.failed;
}

/* "[NAME]", the reader's section hook: it must be a section corral knows. */
static void check_section(struct ini_load *ld, const char *name, size_t len)
{
	struct load_ctx *ctx = container_of(ld, struct load_ctx, ini);
	static const char *const known[] = { "corral", "databases", "users", "limits", "metrics" };
	for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
		if (strlen(known[i]) == len && memcmp(name, known[i], len) == 0)
			return;
	}
	bool pgbouncer = len == strlen("pgbouncer") && memcmp(name, "pgbouncer", len) == 0;
	fail(ctx, NULL,
	     "[%.*s]: unknown section (corral knows [corral], [databases], [users], [limits] "
	     "and [metrics])%s",
	     (int)len, name, pgbouncer ? "; PgBouncer's settings go under [corral]" : "");
}

static bool set_defaults(struct load_ctx *ctx, const char *path)
{
	struct corral_config *cfg = ctx->cfg;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->workers = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
	cfg->listen_port = 6432;
	cfg->auth_type = AUTH_SCRAM_SHA_256;
	cfg->pool_mode = POOL_MODE_SESSION;
	cfg->pin_policy = PIN_POLICY_PIN;
	cfg->default_pool_size = 20;
	cfg->max_client_conn = 10000;
	cfg->max_packet_size = MAX_PACKET_SIZE;
	cfg->max_prepared_statements = 200;
	cfg->query_wait_timeout = 120;
	cfg->server_connect_timeout = 15;
	cfg->server_idle_timeout = 600;
	cfg->server_lifetime = 3600;
	cfg->client_login_timeout = 60;
	cfg->max_logins_in_progress = 1024;
	cfg->max_pools = 1000;
	cfg->auth_failure_delay = 5;
	cfg->auth_failure_max = 20;
	cfg->tcp_keepalive = true;
	cfg->reserve_pool_timeout = 5;
	cfg->server_login_retry = 15;
	cfg->server_login_wait = 5;
	cfg->shutdown_timeout = 20;
	cfg->path = strdup(path);
	cfg->listen_addr = strdup("127.0.0.1");
	cfg->server_reset_query = strdup("DISCARD ALL");
	cfg->auth_query = strdup("SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
	cfg->auth_query_cache_ttl = 60;
	cfg->log_level = strdup("info");
	cfg->stats_period = 60;
	cfg->client_tls.protocols = TLS_PROTO_SECURE;
	cfg->admin_db = strdup("corral");
	cfg->admin_users = strdup("");
	cfg->stats_users = strdup("");
	if (cfg->path && cfg->listen_addr && cfg->server_reset_query && cfg->log_level &&
	    cfg->auth_query && cfg->admin_db && cfg->admin_users && cfg->stats_users)
		return true;
	fail_line(ctx, 0, NULL, "out of memory");
	return false;
}

/* TLS on: a certificate and its key; verify-*: the CA that signs client certificates. */
static void check_client_tls(struct load_ctx *ctx)
{
	const struct client_tls_config *t = &ctx->cfg->client_tls;
	if (t->sslmode == CLIENT_TLS_DISABLE)
		return;
	int line = key_line(ctx, "client_tls_sslmode");
	const char *mode = client_tls_mode_names[t->sslmode];
	if (!t->cert_file)
		fail_line(ctx, line, "client_tls_cert_file",
			  "required with client_tls_sslmode = %s (the certificate corral presents)",
			  mode);
	if (!t->key_file)
		fail_line(ctx, line, "client_tls_key_file",
			  "required with client_tls_sslmode = %s (the certificate's private key)", mode);
	if (t->sslmode >= CLIENT_TLS_VERIFY_CA && !t->ca_file)
		fail_line(ctx, line, "client_tls_ca_file",
			  "required with client_tls_sslmode = %s (the CA that signs client "
			  "certificates)",
			  mode);
}

bool config_listen_is_loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Rules that involve more than one key, checked once the whole file is read. */
static void check_whole(struct load_ctx *ctx)
{
	struct corral_config *cfg = ctx->cfg;
	/* With hba, a file of only trust and reject lines needs no secrets. */
	if (cfg->auth_type != AUTH_TRUST && cfg->auth_type != AUTH_HBA && !cfg->auth_file)
		fail_line(ctx, key_line(ctx, "auth_type"), "auth_file",
			  "required with auth_type = %s (it holds the users' secrets)",
			  auth_type_name(cfg->auth_type));
	check_client_tls(ctx);
	if (cfg->auth_type == AUTH_HBA && !cfg->auth_hba_file)
		fail_line(ctx, key_line(ctx, "auth_type"), "auth_hba_file",
			  "required with auth_type = hba (the pg_hba.conf rules)");
	/* trust for everyone who can reach a public address is a mistake nobody means: only
	 * an hba file may open trust to other hosts, address by address. */
	if (cfg->auth_type == AUTH_TRUST && !config_listen_is_loopback(cfg->listen_addr))
		fail_line(ctx, key_line(ctx, "auth_type"), "auth_type",
			  "trust lets anyone who reaches listen_addr = %s log in as any user "
			  "without a password; listen on 127.0.0.1 or ::1, or use auth_type = hba "
			  "with trust lines for the addresses you mean",
			  cfg->listen_addr);
	/* auth_dbname names the [databases] entry whose connection the lookup uses, as in
	 * PgBouncer; one that names nothing could never answer. */
	if (cfg->auth_dbname && cfg->auth_dbname[0] && !config_find_db(cfg, cfg->auth_dbname))
		fail_line(ctx, key_line(ctx, "auth_dbname"), "auth_dbname",
			  "\"%s\" is not a database of [databases]", cfg->auth_dbname);
	if (cfg->min_pool_size > cfg->default_pool_size)
		fail_line(ctx, key_line(ctx, "min_pool_size"), "min_pool_size",
			  "must be at most default_pool_size (%d), got %d", cfg->default_pool_size,
			  cfg->min_pool_size);
	/* The console answers to admin_db whatever [databases] says: a database of that
	 * name could never be reached. */
	const struct db_config *clash = config_find_db(cfg, cfg->admin_db);
	if (clash)
		fail_line(ctx, clash->line, clash->name,
			  "is the admin console's name (admin_db); rename the database or set "
			  "admin_db to another name");
	/* A [corral] min_pool_size above one database's pool_size is capped, as in
	 * PgBouncer; one written on the database line itself is a mistake. */
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		const struct db_config *db = &cfg->dbs[i];
		if (db->min_pool_size <= config_pool_size(cfg, db))
			continue;
		fail_line(ctx, db->line, db->name, "min_pool_size must be at most %s (%d), got %d",
			  db->pool_size >= 0 ? "pool_size" : "default_pool_size",
			  config_pool_size(cfg, db), db->min_pool_size);
	}
}

/* The server_tls_* keys become each database line's libpq TLS keywords, unless the
 * line gives its own (so a reload that changes them changes the lines' login, and their
 * servers are replaced). */
static void apply_server_tls(struct load_ctx *ctx)
{
	struct corral_config *cfg = ctx->cfg;
	struct config_tls_param p[CONFIG_SERVER_TLS_PARAMS];
	int n;
	const char *bad;
	char why[300];
	if (!config_server_tls(cfg, p, &n, &bad, why, sizeof(why))) {
		fail_line(ctx, key_line(ctx, bad), bad, "%s", why);
		return;
	}
	for (size_t i = 0; i < cfg->n_dbs; i++)
		for (int k = 0; k < n; k++)
			if (!db_has_conn(&cfg->dbs[i], p[k].keyword) &&
			    !db_add_conn(&cfg->dbs[i], p[k].keyword, p[k].value)) {
				fail_line(ctx, 0, NULL, "out of memory");
				return;
			}
}

bool config_load(const char *path, struct corral_config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct load_ctx ctx = { .cfg = out };
	ini_load_begin(&ctx.ini, path, err, errlen);
	ctx.ini.section = check_section;
	ctx.ini.section_first = true; /* name a bad header even on an overlong line */
	ctx.ini.unsupported = config_unsupported_keys;
	ctx.ini.n_unsupported = config_n_unsupported_keys;
	ctx.ini.unsupported_by = "corral";
	if (set_defaults(&ctx, path))
		ini_load_parse_file(&ctx.ini, on_entry, &ctx);
	PQconninfoFree(ctx.libpq_options);
	if (!ctx.ini.failed)
		check_whole(&ctx);
	if (!ctx.ini.failed)
		apply_server_tls(&ctx);
	out->auth_file_line = key_line(&ctx, "auth_file");
	out->client_tls.key_line = key_line(&ctx, "client_tls_key_file");
	out->client_tls.cert_line = key_line(&ctx, "client_tls_cert_file");
	out->client_tls.ca_line = key_line(&ctx, "client_tls_ca_file");
	out->client_tls.ciphers_line = key_line(&ctx, "client_tls_ciphers");
	out->auth_hba_file_line = key_line(&ctx, "auth_hba_file");
	if (ctx.ini.failed) {
		config_free(out);
		return false;
	}
	return true;
}

void config_free(struct corral_config *cfg)
{
	free(cfg->path);
	free(cfg->listen_addr);
	free(cfg->auth_file);
	free(cfg->auth_hba_file);
	free(cfg->auth_user);
	free(cfg->auth_query);
	free(cfg->auth_dbname);
	free(cfg->server_reset_query);
	free(cfg->log_level);
	free(cfg->admin_db);
	free(cfg->admin_users);
	free(cfg->stats_users);
	free(cfg->server_tls_sslmode);
	free(cfg->server_tls_ca_file);
	free(cfg->server_tls_cert_file);
	free(cfg->server_tls_key_file);
	free(cfg->server_tls_protocols);
	free(cfg->metrics_addr);
	free(cfg->client_tls.key_file);
	free(cfg->client_tls.cert_file);
	free(cfg->client_tls.ca_file);
	free(cfg->client_tls.ciphers);
	for (size_t i = 0; i < cfg->n_dbs; i++)
		db_free(&cfg->dbs[i]);
	free(cfg->dbs);
	for (size_t i = 0; i < cfg->n_users; i++)
		free(cfg->users[i].name);
	free(cfg->users);
	for (size_t i = 0; i < cfg->n_app_limits; i++)
		free(cfg->app_limits[i].app);
	free(cfg->app_limits);
	memset(cfg, 0, sizeof(*cfg));
}

/* strdup that keeps NULL; *ok turns false when out of memory. */
static char *dup_or_null(const char *s, bool *ok)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*ok = false;
	return d;
}

static bool copy_db(const struct db_config *src, struct db_config *dst)
{
	*dst = (struct db_config){ .pool_size = src->pool_size, .pool_mode = src->pool_mode,
				   .pin_policy = src->pin_policy,
				   .min_pool_size = src->min_pool_size,
				   .reserve_pool = src->reserve_pool,
				   .max_db_connections = src->max_db_connections,
				   .line = src->line };
	dst->name = strdup(src->name);
	if (!dst->name)
		return false;
	if (src->auth_user && !(dst->auth_user = strdup(src->auth_user)))
		return false;
	for (size_t i = 0; i < src->n_conn; i++)
		if (!db_add_conn(dst, src->conn_keys[i], src->conn_vals[i]))
			return false;
	point_at_credentials(dst);
	return true;
}

bool config_copy(const struct corral_config *src, struct corral_config *dst)
{
	bool ok = true;
	*dst = *src;
	dst->dbs = NULL;
	dst->users = NULL;
	dst->app_limits = NULL;
	dst->n_dbs = dst->n_users = dst->n_app_limits = 0;
	dst->path = dup_or_null(src->path, &ok);
	/* Every string key of the table, so a key added later is copied too. */
	for (size_t i = 0; i < ARRAY_SIZE(corral_keys); i++) {
		const struct ini_key *k = &corral_keys[i];
		if (k->parse == ini_key_string || k->parse == ini_key_nonempty ||
		    k->parse == ini_key_address || k->parse == ini_key_log_level) {
			char **field = ini_key_field(dst, k);
			*field = dup_or_null(*field, &ok);
		}
	}
	if (ok && src->n_dbs && !(dst->dbs = calloc(src->n_dbs, sizeof(*dst->dbs))))
		ok = false;
	/* n_dbs counts a half-copied one too, so config_free frees it */
	for (size_t i = 0; ok && i < src->n_dbs; i++, dst->n_dbs++)
		ok = copy_db(&src->dbs[i], &dst->dbs[i]);
	if (ok && src->n_users && !(dst->users = calloc(src->n_users, sizeof(*dst->users))))
		ok = false;
	for (size_t i = 0; ok && i < src->n_users; i++) {
		dst->users[i] = src->users[i];
		if (!(dst->users[i].name = strdup(src->users[i].name)))
			ok = false;
		else
			dst->n_users++;
	}
	if (ok && src->n_app_limits &&
	    !(dst->app_limits = calloc(src->n_app_limits, sizeof(*dst->app_limits))))
		ok = false;
	for (size_t i = 0; ok && i < src->n_app_limits; i++) {
		dst->app_limits[i] = src->app_limits[i];
		if (!(dst->app_limits[i].app = strdup(src->app_limits[i].app)))
			ok = false;
		else
			dst->n_app_limits++;
	}
	if (!ok)
		config_free(dst);
	return ok;
}

bool config_set(const struct corral_config *cur, const char *key, const char *value,
		struct corral_config *out, char *err, size_t errlen)
{
	if (!config_copy(cur, out)) {
		snprintf(err, errlen, "SET: %s: out of memory", key);
		return false;
	}
	struct load_ctx ctx = { .cfg = out };
	ini_load_begin(&ctx.ini, "SET", err, errlen);
	if (strncmp(key, "server_tls_", 11) == 0) {
		/* they are the database lines' login keywords, made when the file is read */
		snprintf(err, errlen, "SET: %s takes effect with RELOAD (edit the file)", key);
		config_free(out);
		return false;
	}
	ctx.ini.unsupported = config_unsupported_keys;
	ctx.ini.n_unsupported = config_n_unsupported_keys;
	ctx.ini.unsupported_by = "corral";
	ini_key_set(&ctx.ini, corral_keys, ARRAY_SIZE(corral_keys), ctx.seen, out, "corral", key,
		    value);
	if (!ctx.ini.failed)
		check_whole(&ctx);
	if (ctx.ini.failed) {
		config_free(out);
		return false;
	}
	return true;
}

const struct db_config *config_find_db(const struct corral_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return &cfg->dbs[i];
	}
	return NULL;
}

int config_pool_size(const struct corral_config *cfg, const struct db_config *db)
{
	return db && db->pool_size >= 0 ? db->pool_size : cfg->default_pool_size;
}

const struct user_config *config_find_user(const struct corral_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->n_users; i++) {
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	}
	return NULL;
}

const char *config_auth_user(const struct corral_config *cfg, const struct db_config *db)
{
	if (db && db->auth_user)
		return db->auth_user;
	return cfg->auth_user && cfg->auth_user[0] ? cfg->auth_user : NULL;
}

enum pool_mode config_pool_mode(const struct corral_config *cfg, const struct db_config *db,
				const char *user)
{
	const struct user_config *u = config_find_user(cfg, user);
	if (u && u->pool_mode >= 0)
		return (enum pool_mode)u->pool_mode;
	if (db && db->pool_mode >= 0)
		return (enum pool_mode)db->pool_mode;
	return cfg->pool_mode;
}

enum pin_policy config_pin_policy(const struct corral_config *cfg, const struct db_config *db)
{
	return db && db->pin_policy >= 0 ? (enum pin_policy)db->pin_policy : cfg->pin_policy;
}

const char *pin_policy_name(enum pin_policy policy)
{
	if ((size_t)policy < ARRAY_SIZE(pin_policy_names))
		return pin_policy_names[policy];
	return "unknown";
}

/* Capped at the pool size: min_pool_size never opens more than pool_size allows. */
int config_min_pool_size(const struct corral_config *cfg, const struct db_config *db)
{
	int min = db && db->min_pool_size >= 0 ? db->min_pool_size : cfg->min_pool_size;
	int size = config_pool_size(cfg, db);
	return min < size ? min : size;
}

int config_reserve_pool(const struct corral_config *cfg, const struct db_config *db)
{
	return db && db->reserve_pool >= 0 ? db->reserve_pool : cfg->reserve_pool_size;
}

int config_max_db_connections(const struct corral_config *cfg, const struct db_config *db)
{
	return db && db->max_db_connections >= 0 ? db->max_db_connections
						 : cfg->max_db_connections;
}

int config_max_user_connections(const struct corral_config *cfg, const char *user)
{
	const struct user_config *u = config_find_user(cfg, user);
	return u && u->max_user_connections >= 0 ? u->max_user_connections
						 : cfg->max_user_connections;
}

bool config_app_named(const struct corral_config *cfg, const char *app)
{
	return app && find_app_limit(cfg, app) != NULL;
}

int config_app_limit(const struct corral_config *cfg, const char *app)
{
	const struct app_limit *limit = app ? find_app_limit(cfg, app) : NULL;
	return limit ? limit->limit : cfg->app_default_limit;
}

const char *pool_mode_name(enum pool_mode mode)
{
	if ((size_t)mode < ARRAY_SIZE(pool_mode_names))
		return pool_mode_names[mode];
	return "unknown";
}

const char *auth_type_name(enum auth_type type)
{
	if ((size_t)type < ARRAY_SIZE(auth_type_names))
		return auth_type_names[type];
	return "unknown";
}

bool config_list_has(const char *list, const char *name)
{
	size_t len = strlen(name);
	for (const char *p = list; p && *p;) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		const char *end = p + strcspn(p, ",");
		const char *last = end;
		while (last > p && isspace((unsigned char)last[-1]))
			last--;
		if ((size_t)(last - p) == len && len > 0 && memcmp(p, name, len) == 0)
			return true;
		p = end;
	}
	return false;
}

/* One [corral] value as the file spells it, by the key's parser. */
static void format_key(const struct ini_key *k, const struct corral_config *cfg, char *out,
		       size_t len)
{
	const void *field = (const char *)cfg + k->offset;
	if (k->parse == ini_key_int || k->parse == parse_millis_key)
		snprintf(out, len, "%d", *(const int *)field);
	else if (k->parse == parse_seconds_key || k->parse == parse_positive_seconds_key)
		snprintf(out, len, "%g", *(const double *)field);
	else if (k->parse == ini_key_bool)
		snprintf(out, len, "%s", *(const bool *)field ? "yes" : "no");
	else if (k->parse == parse_auth_type_key)
		snprintf(out, len, "%s", auth_type_name(*(const enum auth_type *)field));
	else if (k->parse == parse_pool_mode_key)
		snprintf(out, len, "%s", pool_mode_name(*(const enum pool_mode *)field));
	else if (k->parse == parse_pin_policy_key)
		snprintf(out, len, "%s", pin_policy_name(*(const enum pin_policy *)field));
	else if (k->parse == parse_tls_mode_key)
		snprintf(out, len, "%s", client_tls_mode_names[*(const enum client_tls_mode *)field]);
	else if (k->parse == parse_tls_protocols_key)
		tls_protocols_format(*(const unsigned *)field, out, len);
	else /* the string parsers */
		snprintf(out, len, "%s", *(char *const *)field ? *(char *const *)field : "");
}

bool config_show(const struct corral_config *cfg,
		 void (*row)(void *arg, const char *key, const char *value, const char *deflt),
		 void *arg)
{
	/* The defaults are what set_defaults gives a file with no keys. */
	struct corral_config defaults;
	memset(&defaults, 0, sizeof(defaults));
	char err[64];
	struct load_ctx ctx = { .cfg = &defaults };
	ini_load_begin(&ctx.ini, "", err, sizeof(err));
	if (!set_defaults(&ctx, "")) {
		config_free(&defaults);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(corral_keys); i++) {
		char value[512], deflt[512];
		format_key(&corral_keys[i], cfg, value, sizeof(value));
		format_key(&corral_keys[i], &defaults, deflt, sizeof(deflt));
		row(arg, corral_keys[i].name, value, deflt);
	}
	config_free(&defaults);
	return true;
}
