/*
 * pool/config.c: every test writes a real file (mkstemp), because line numbers and
 * the file name in error messages are part of the contract.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pool/config.h"

/* Criterion runs each test in its own process, so one path per process is enough. */
static char conf_path[64];

static void remove_conf(void)
{
	if (conf_path[0])
		unlink(conf_path);
}

TestSuite(config, .fini = remove_conf);

static void write_conf(const char *text)
{
	remove_conf();
	strcpy(conf_path, "/tmp/corral-config-XXXXXX");
	int fd = mkstemp(conf_path);
	cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static bool load(const char *text, struct corral_config *cfg, char *err, size_t errlen)
{
	write_conf(text);
	return config_load(conf_path, cfg, err, errlen);
}

static void load_ok(const char *text, struct corral_config *cfg)
{
	char err[512] = "";
	bool ok = load(text, cfg, err, sizeof(err));
	cr_assert(ok, "config_load failed: %s", err);
}

/* Expects the load to fail with a message starting "PATH:LINE: " + want. */
static void expect_error(const char *text, int line, const char *want)
{
	struct corral_config cfg;
	char err[512] = "";
	bool ok = load(text, &cfg, err, sizeof(err));
	cr_assert_not(ok, "config_load accepted:\n%s", text);
	char prefix[600];
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: %s", conf_path, line, want);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s", conf_path, want);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "got:  %s\nwant: %s...", err, prefix);
	/* A failed load leaves nothing behind, and freeing it again is harmless. */
	cr_assert_null(cfg.path);
	cr_assert_null(cfg.dbs);
	cr_assert_eq(cfg.n_dbs, 0);
	config_free(&cfg);
}

/* The first two lines of most error tests; the line under test is line 3 or later. */
#define HEAD "[corral]\nauth_type = trust\n"

static void expect_conn(const struct db_config *db, size_t i, const char *key, const char *val)
{
	cr_assert_lt(i, db->n_conn);
	cr_assert_str_eq(db->conn_keys[i], key);
	cr_assert_str_eq(db->conn_vals[i], val);
}

Test(config, full_file_with_every_key)
{
	struct corral_config cfg;
	load_ok("; corral test configuration\n"
		"[corral]\n"
		"listen_addr = 0.0.0.0\n"
		"listen_port = 7432\n"
		"workers = 4\n"
		"auth_type = md5\n"
		"auth_file = /etc/corral/users.txt\n"
		"pool_mode = transaction\n"
		"default_pool_size = 30\n"
		"max_client_conn = 500\n"
		"query_wait_timeout = 0.5\n"
		"server_reset_query = DISCARD ALL\n"
		"server_connect_timeout = 2.25\n"
		"server_idle_timeout = 0\n"
		"server_lifetime = 7200\n"
		"max_packet_size = 65536\n"
		"log_level = DEBUG\n"
		"\n"
		"[databases]\n"
		"bench = host=127.0.0.1 port=5432 dbname=bench user=bench password=secret pool_size=10 pool_mode=session\n"
		"app = host=db.internal\n",
		&cfg);
	cr_assert_str_eq(cfg.path, conf_path);
	cr_assert_str_eq(cfg.listen_addr, "0.0.0.0");
	cr_assert_eq(cfg.listen_port, 7432);
	cr_assert_eq(cfg.workers, 4);
	cr_assert_eq(cfg.auth_type, AUTH_MD5);
	cr_assert_str_eq(cfg.auth_file, "/etc/corral/users.txt");
	cr_assert_eq(cfg.pool_mode, POOL_MODE_TRANSACTION);
	cr_assert_eq(cfg.default_pool_size, 30);
	cr_assert_eq(cfg.max_client_conn, 500);
	cr_assert_eq(cfg.query_wait_timeout, 0.5);
	cr_assert_str_eq(cfg.server_reset_query, "DISCARD ALL");
	cr_assert_eq(cfg.server_connect_timeout, 2.25);
	cr_assert_eq(cfg.server_idle_timeout, 0);
	cr_assert_eq(cfg.server_lifetime, 7200);
	cr_assert_eq(cfg.max_packet_size, 65536);
	cr_assert_str_eq(cfg.log_level, "debug");

	cr_assert_eq(cfg.n_dbs, 2);
	const struct db_config *bench = config_find_db(&cfg, "bench");
	cr_assert_not_null(bench);
	cr_assert_eq(bench->line, 20);
	cr_assert_eq(bench->n_conn, 5);
	expect_conn(bench, 0, "host", "127.0.0.1");
	expect_conn(bench, 1, "port", "5432");
	expect_conn(bench, 2, "dbname", "bench");
	expect_conn(bench, 3, "user", "bench");
	expect_conn(bench, 4, "password", "secret");
	cr_assert_null(bench->conn_keys[5]);
	cr_assert_null(bench->conn_vals[5]);
	cr_assert_eq(bench->user, bench->conn_vals[3]);
	cr_assert_eq(bench->password, bench->conn_vals[4]);
	cr_assert_eq(bench->pool_size, 10);
	cr_assert_eq(bench->pool_mode, POOL_MODE_SESSION);

	const struct db_config *app = config_find_db(&cfg, "app");
	cr_assert_not_null(app);
	cr_assert_eq(app->n_conn, 2);
	expect_conn(app, 0, "host", "db.internal");
	expect_conn(app, 1, "dbname", "app"); /* added: the server database is the client's name */
	cr_assert_null(app->user);
	cr_assert_null(app->password);
	cr_assert_eq(app->pool_size, -1);
	cr_assert_eq(app->pool_mode, -1);
	config_free(&cfg);
	config_free(&cfg);
}

Test(config, defaults_when_keys_are_absent)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_file = conf/userlist.txt\n", &cfg);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want_workers = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;
	cr_assert_str_eq(cfg.listen_addr, "127.0.0.1");
	cr_assert_eq(cfg.listen_port, 6432);
	cr_assert_eq(cfg.workers, want_workers);
	cr_assert_eq(cfg.auth_type, AUTH_SCRAM_SHA_256);
	cr_assert_str_eq(cfg.auth_file, "conf/userlist.txt");
	cr_assert_eq(cfg.pool_mode, POOL_MODE_SESSION);
	cr_assert_eq(cfg.default_pool_size, 20);
	cr_assert_eq(cfg.max_client_conn, 10000);
	cr_assert_eq(cfg.query_wait_timeout, 120);
	cr_assert_str_eq(cfg.server_reset_query, "DISCARD ALL");
	cr_assert_eq(cfg.server_connect_timeout, 15);
	cr_assert_eq(cfg.server_idle_timeout, 600);
	cr_assert_eq(cfg.server_lifetime, 3600);
	cr_assert_eq(cfg.max_packet_size, 1073741823);
	cr_assert_str_eq(cfg.log_level, "info");
	cr_assert_eq(cfg.n_dbs, 0);
	cr_assert_null(config_find_db(&cfg, "bench"));
	config_free(&cfg);
}

Test(config, trust_needs_no_auth_file_and_reset_query_may_be_empty)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\nserver_reset_query =\n", &cfg);
	cr_assert_eq(cfg.auth_type, AUTH_TRUST);
	cr_assert_null(cfg.auth_file);
	cr_assert_str_eq(cfg.server_reset_query, "");
	config_free(&cfg);
}

Test(config, auth_file_required_unless_trust)
{
	expect_error("[corral]\n", 0,
		     "auth_file: required with auth_type = scram-sha-256");
	expect_error("[corral]\nlisten_port = 7000\nauth_type = md5\n", 3,
		     "auth_file: required with auth_type = md5");
	expect_error(HEAD "auth_file =\n", 3, "auth_file: must not be empty");
}

Test(config, unknown_section)
{
	expect_error(HEAD "[users]\nbob = 1\n", 3, "[users]: unknown section");
	/* inih never reports a section without keys; the reader does. */
	expect_error(HEAD "\n[limits]\n", 4, "[limits]: unknown section");
	expect_error(HEAD "[corral\n", 3, "section header without a closing ']'");
	expect_error(HEAD "[corral] x\n", 3, "unexpected text after ']'");
}

Test(config, unknown_key)
{
	expect_error(HEAD "listen_prot = 7000\n", 3, "listen_prot: unknown key in [corral]");
	expect_error("listen_port = 7000\n[corral]\n", 1,
		     "listen_port: comes before any section");
}

Test(config, bad_int)
{
	char err[512];
	struct corral_config cfg;
	bool ok = load(HEAD "\n\n\n\nlisten_port = abc\n", &cfg, err, sizeof(err));
	cr_assert_not(ok);
	char want[600];
	snprintf(want, sizeof(want),
		 "%s:7: listen_port: must be an integer between 1 and 65535, got \"abc\"", conf_path);
	cr_assert_str_eq(err, want);

	expect_error(HEAD "listen_port = 64x\n", 3, "listen_port: must be an integer");
	expect_error(HEAD "listen_port = -1\n", 3, "listen_port: must be an integer");
	expect_error(HEAD "listen_port = +80\n", 3, "listen_port: must be an integer");
	expect_error(HEAD "listen_port = 8 0\n", 3, "listen_port: must be an integer");
	expect_error(HEAD "listen_port =\n", 3, "listen_port: must be an integer");
	expect_error(HEAD "max_client_conn = 99999999999999999999999999\n", 3,
		     "max_client_conn: must be an integer between 1 and 1000000");
}

Test(config, out_of_range)
{
	expect_error(HEAD "listen_port = 65536\n", 3,
		     "listen_port: must be an integer between 1 and 65535, got \"65536\"");
	expect_error(HEAD "listen_port = 0\n", 3, "listen_port: must be an integer between 1");
	expect_error(HEAD "workers = 0\n", 3,
		     "workers: must be an integer between 1 and 256, got \"0\"");
	expect_error(HEAD "workers = 257\n", 3, "workers: must be an integer between 1 and 256");
	expect_error(HEAD "default_pool_size = 0\n", 3,
		     "default_pool_size: must be an integer between 1 and");
	expect_error(HEAD "max_packet_size = 1073741824\n", 3,
		     "max_packet_size: must be an integer between 1024 and 1073741823");
}

Test(config, bad_enum)
{
	expect_error(HEAD "pool_mode = sessions\n", 3,
		     "pool_mode: must be one of session, transaction, statement, got \"sessions\"");
	expect_error("[corral]\nauth_type = password\n", 2,
		     "auth_type: must be one of trust, md5, scram-sha-256, got \"password\"");
	expect_error(HEAD "log_level = verbose\n", 3,
		     "log_level: must be one of debug, info, warn, error");
}

Test(config, listen_addr_is_numeric)
{
	expect_error(HEAD "listen_addr = localhost\n", 3,
		     "listen_addr: must be an IPv4 or IPv6 address, got \"localhost\"");
	expect_error(HEAD "listen_addr =\n", 3, "listen_addr: must be an IPv4 or IPv6 address");
	struct corral_config cfg;
	load_ok(HEAD "listen_addr = ::1\n", &cfg);
	cr_assert_str_eq(cfg.listen_addr, "::1");
	config_free(&cfg);
}

Test(config, enums_ignore_case)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = TRUST\npool_mode = Statement\nlog_level = Warn\n", &cfg);
	cr_assert_eq(cfg.auth_type, AUTH_TRUST);
	cr_assert_eq(cfg.pool_mode, POOL_MODE_STATEMENT);
	cr_assert_str_eq(cfg.log_level, "warn");
	config_free(&cfg);
}

Test(config, bad_timeout)
{
	static const char *const bad[] = { "-1", "1.5s", "1e3", ".", "abc", "nan", "0x10",
					   "1,5", "2000000000", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), HEAD "query_wait_timeout = %s\n", bad[i]);
		expect_error(text, 3,
			     "query_wait_timeout: must be a number of seconds between 0 and");
	}
	expect_error(HEAD "server_connect_timeout = 0\n", 3,
		     "server_connect_timeout: must be a number of seconds greater than 0");
}

Test(config, decimal_timeouts)
{
	struct corral_config cfg;
	load_ok(HEAD "query_wait_timeout = .25\nserver_idle_timeout = 3.\n"
		     "server_lifetime = 0.3\nserver_connect_timeout = 0.001\n",
		&cfg);
	cr_assert_eq(cfg.query_wait_timeout, 0.25);
	cr_assert_eq(cfg.server_idle_timeout, 3);
	cr_assert_eq(cfg.server_lifetime, 0.3);
	cr_assert_eq(cfg.server_connect_timeout, 0.001);
	config_free(&cfg);
}

Test(config, duplicate_key)
{
	expect_error(HEAD "listen_port = 7000\nlisten_port = 7001\n", 4,
		     "listen_port: set twice (first on line 3)");
	expect_error(HEAD "[databases]\nbench = host=a\n\nbench = host=b\n", 6,
		     "bench: database defined twice (first on line 4)");
	expect_error(HEAD "[databases]\nbench = host=a port=1 host=b\n", 4,
		     "bench: \"host\" given twice");
	expect_error(HEAD "[databases]\nbench = pool_size=1 pool_size=2\n", 4,
		     "bench: \"pool_size\" given twice");
}

Test(config, unknown_libpq_keyword)
{
	expect_error(HEAD "[databases]\nbench = host=127.0.0.1 hots=x\n", 4,
		     "bench: unknown connection keyword \"hots\"");
	/* corral's own keys are recognised only by their exact names */
	expect_error(HEAD "[databases]\nbench = poolsize=3\n", 4,
		     "bench: unknown connection keyword \"poolsize\"");
}

Test(config, bad_quoting_in_database_line)
{
	expect_error(HEAD "[databases]\nbench = host=a password='s3cret\n", 4,
		     "bench: unterminated quoted value for \"password\"");
	expect_error(HEAD "[databases]\nbench = password='s3cret\\'\n", 4,
		     "bench: unterminated quoted value for \"password\"");
	expect_error(HEAD "[databases]\nbench = host\n", 4, "bench: expected \"=\" after \"host\"");
	expect_error(HEAD "[databases]\nbench = host=a port\n", 4,
		     "bench: expected \"=\" after \"port\"");
	expect_error(HEAD "[databases]\nbench = =x\n", 4, "bench: expected a keyword before \"=\"");
}

Test(config, errors_never_show_database_passwords)
{
	struct corral_config cfg;
	char err[512];
	bool ok = load(HEAD "[databases]\nbench = password='s3cret hots=1\n", &cfg, err,
		       sizeof(err));
	cr_assert_not(ok);
	cr_assert_null(strstr(err, "s3cret"), "%s", err);
	ok = load(HEAD "[databases]\nbench = password=s3cret hots=1\n", &cfg, err, sizeof(err));
	cr_assert_not(ok);
	cr_assert_null(strstr(err, "s3cret"), "%s", err);
}

Test(config, missing_file)
{
	struct corral_config cfg;
	char err[512];
	bool ok = config_load("/nonexistent/corral.ini", &cfg, err, sizeof(err));
	cr_assert_not(ok);
	cr_assert_str_eq(err, "/nonexistent/corral.ini: cannot open: No such file or directory");
	config_free(&cfg);

	ok = config_load("/tmp", &cfg, err, sizeof(err));
	cr_assert_not(ok);
	cr_assert_str_eq(err, "/tmp: cannot read: Is a directory");
}

Test(config, database_line_quotes_and_escapes)
{
	struct corral_config cfg;
	load_ok(HEAD "[databases]\n"
		     "q = host = 10.0.0.1   port=5433 password='it\\'s a \\\\ secret' "
		     "options='-c search_path=a,b' application_name=my\\ app user=alice\n"
		     "e = host='' sslmode=disable\n",
		&cfg);
	const struct db_config *q = config_find_db(&cfg, "q");
	cr_assert_not_null(q);
	cr_assert_eq(q->n_conn, 7);
	expect_conn(q, 0, "host", "10.0.0.1");
	expect_conn(q, 1, "port", "5433");
	expect_conn(q, 2, "password", "it's a \\ secret");
	expect_conn(q, 3, "options", "-c search_path=a,b");
	expect_conn(q, 4, "application_name", "my app");
	expect_conn(q, 5, "user", "alice");
	expect_conn(q, 6, "dbname", "q");
	cr_assert_str_eq(q->user, "alice");
	cr_assert_str_eq(q->password, "it's a \\ secret");

	const struct db_config *e = config_find_db(&cfg, "e");
	cr_assert_not_null(e);
	expect_conn(e, 0, "host", "");
	expect_conn(e, 1, "sslmode", "disable");
	expect_conn(e, 2, "dbname", "e");
	config_free(&cfg);
}

Test(config, comments_trimming_and_indentation)
{
	struct corral_config cfg;
	load_ok("# leading comment\n"
		"[corral] ; the main section\n"
		"  auth_type = trust   ; indented keys are keys, not continuations\n"
		"\tlisten_port = 7000 # hash comment\r\n"
		"server_reset_query = RESET ALL;\n"
		"[databases]\n"
		"bench = host=a password=x#y;z ; comment\n"
		"; a comment line longer than inih's 200-byte line buffer is fine: "
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		&cfg);
	cr_assert_eq(cfg.auth_type, AUTH_TRUST);
	cr_assert_eq(cfg.listen_port, 7000);
	cr_assert_str_eq(cfg.server_reset_query, "RESET ALL;");
	const struct db_config *bench = config_find_db(&cfg, "bench");
	cr_assert_not_null(bench);
	expect_conn(bench, 1, "password", "x#y;z");
	config_free(&cfg);
}

Test(config, syntax_errors_and_long_lines)
{
	expect_error(HEAD "just some words\n", 3, "expected \"[section]\" or \"key = value\"");
	/* The first error wins even when inih finds its own later. */
	expect_error(HEAD "listen_port = x\nwords\n", 3, "listen_port:");
	expect_error(HEAD "words\nlisten_port = x\n", 3, "expected \"[section]\"");

	char text[512];
	char pad[301];
	memset(pad, 'a', 300);
	pad[300] = '\0';
	snprintf(text, sizeof(text), HEAD "[databases]\nbench = host=%s\n", pad);
	expect_error(text, 4, "line is 313 characters long; inih reads at most 199");
}

Test(config, wildcard_and_unnamed_databases)
{
	expect_error(HEAD "[databases]\n* = host=127.0.0.1\n", 4,
		     "*: wildcard database entries are not supported yet");
	expect_error(HEAD "[databases]\n= host=127.0.0.1\n", 4,
		     "a database entry needs a name");
}

Test(config, pool_size_and_pool_mode_overrides)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\ndefault_pool_size = 7\npool_mode = transaction\n"
		"[databases]\n"
		"big = host=a pool_size=50 pool_mode=session\n"
		"plain = host=b\n"
		"stmt = pool_mode=STATEMENT\n",
		&cfg);
	const struct db_config *big = config_find_db(&cfg, "big");
	const struct db_config *plain = config_find_db(&cfg, "plain");
	const struct db_config *stmt = config_find_db(&cfg, "stmt");
	cr_assert(big && plain && stmt);
	cr_assert_eq(config_pool_size(&cfg, big), 50);
	cr_assert_eq(config_pool_mode(&cfg, big), POOL_MODE_SESSION);
	cr_assert_eq(config_pool_size(&cfg, plain), 7);
	cr_assert_eq(config_pool_mode(&cfg, plain), POOL_MODE_TRANSACTION);
	cr_assert_eq(config_pool_size(&cfg, stmt), 7);
	cr_assert_eq(config_pool_mode(&cfg, stmt), POOL_MODE_STATEMENT);
	cr_assert_eq(config_pool_size(&cfg, NULL), 7);
	cr_assert_eq(config_pool_mode(&cfg, NULL), POOL_MODE_TRANSACTION);
	/* corral's keys never reach libpq */
	cr_assert_eq(big->n_conn, 2);
	expect_conn(big, 0, "host", "a");
	expect_conn(big, 1, "dbname", "big");
	cr_assert_eq(stmt->n_conn, 1);
	config_free(&cfg);

	expect_error(HEAD "[databases]\nbench = pool_size=0\n", 4,
		     "bench: pool_size must be an integer between 1 and 10000, got \"0\"");
	expect_error(HEAD "[databases]\nbench = pool_size=ten\n", 4,
		     "bench: pool_size must be an integer");
	expect_error(HEAD "[databases]\nbench = pool_mode=sometimes\n", 4,
		     "bench: pool_mode must be one of session, transaction, statement");
}

Test(config, names)
{
	cr_assert_str_eq(pool_mode_name(POOL_MODE_SESSION), "session");
	cr_assert_str_eq(pool_mode_name(POOL_MODE_TRANSACTION), "transaction");
	cr_assert_str_eq(pool_mode_name(POOL_MODE_STATEMENT), "statement");
	cr_assert_str_eq(pool_mode_name((enum pool_mode)42), "unknown");
	cr_assert_str_eq(auth_type_name(AUTH_TRUST), "trust");
	cr_assert_str_eq(auth_type_name(AUTH_MD5), "md5");
	cr_assert_str_eq(auth_type_name(AUTH_SCRAM_SHA_256), "scram-sha-256");
	cr_assert_str_eq(auth_type_name((enum auth_type)42), "unknown");
}

Test(config, free_is_safe_on_a_zeroed_struct)
{
	struct corral_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	config_free(&cfg);
	config_free(&cfg);
}

Test(config, small_error_buffers_truncate)
{
	struct corral_config cfg;
	char err[8];
	bool ok = load(HEAD "listen_port = abc\n", &cfg, err, sizeof(err));
	cr_assert_not(ok);
	cr_assert_eq(strlen(err), sizeof(err) - 1);
	ok = load(HEAD "listen_port = abc\n", &cfg, NULL, 0);
	cr_assert_not(ok);
}

Test(config, reference_config_loads)
{
	/* conf/corral.ini is documentation; it must also stay valid.  Tests run from the
	 * repository root (make unit); elsewhere there is nothing to check. */
	if (access("conf/corral.ini", R_OK) != 0)
		return;
	struct corral_config cfg;
	char err[512] = "";
	bool ok = config_load("conf/corral.ini", &cfg, err, sizeof(err));
	cr_assert(ok, "%s", err);
	const struct db_config *bench = config_find_db(&cfg, "bench");
	cr_assert_not_null(bench);
	config_free(&cfg);
}
