/*
 * pool/config.c: every test writes a real file (mkstemp), because line numbers and
 * the file name in error messages are part of the contract.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/tls_protocols.h"
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

/* db's libpq keywords and values are exactly kv ("key", "value", ..., NULL), in order. */
static void expect_conns(const struct db_config *db, const char *const *kv)
{
	size_t n = 0;

	for (; kv[2 * n] != NULL; n++)
		expect_conn(db, n, kv[2 * n], kv[2 * n + 1]);
	cr_assert_eq(db->n_conn, n);
}

/* Every [corral] setting of got is the one in want (both loaded or filled in by hand). */
static void expect_settings(const struct corral_config *got, const struct corral_config *want)
{
	cr_assert_str_eq(got->listen_addr, want->listen_addr);
	cr_assert_eq(got->listen_port, want->listen_port);
	cr_assert_eq(got->workers, want->workers);
	cr_assert_eq(got->auth_type, want->auth_type);
	cr_assert_str_eq(got->auth_file, want->auth_file);
	cr_assert_eq(got->pool_mode, want->pool_mode);
	cr_assert_eq(got->default_pool_size, want->default_pool_size);
	cr_assert_eq(got->max_client_conn, want->max_client_conn);
	cr_assert_eq(got->query_wait_timeout, want->query_wait_timeout);
	cr_assert_str_eq(got->server_reset_query, want->server_reset_query);
	cr_assert_eq(got->server_connect_timeout, want->server_connect_timeout);
	cr_assert_eq(got->server_idle_timeout, want->server_idle_timeout);
	cr_assert_eq(got->server_lifetime, want->server_lifetime);
	cr_assert_eq(got->max_packet_size, want->max_packet_size);
	cr_assert_str_eq(got->log_level, want->log_level);
	cr_assert_eq(got->client_login_timeout, want->client_login_timeout);
	cr_assert_eq(got->min_pool_size, want->min_pool_size);
	cr_assert_eq(got->reserve_pool_size, want->reserve_pool_size);
	cr_assert_eq(got->reserve_pool_timeout, want->reserve_pool_timeout);
	cr_assert_eq(got->max_db_connections, want->max_db_connections);
	cr_assert_eq(got->max_user_connections, want->max_user_connections);
	cr_assert_eq(got->idle_transaction_timeout, want->idle_transaction_timeout);
	cr_assert_eq(got->client_idle_timeout, want->client_idle_timeout);
	cr_assert_eq(got->server_login_retry, want->server_login_retry);
	cr_assert_eq(got->server_login_wait, want->server_login_wait);
	cr_assert_eq(got->max_queue_depth, want->max_queue_depth);
	cr_assert_eq(got->query_wait_notify_ms, want->query_wait_notify_ms);
	cr_assert_eq(got->app_default_limit, want->app_default_limit);
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
		"client_login_timeout = 30\n"
		"min_pool_size = 3\n"
		"reserve_pool_size = 5\n"
		"reserve_pool_timeout = 0.75\n"
		"max_db_connections = 100\n"
		"max_user_connections = 50\n"
		"idle_transaction_timeout = 30\n"
		"client_idle_timeout = 300\n"
		"server_login_retry = 2.5\n"
		"server_login_wait = 1.5\n"
		"max_queue_depth = 1000\n"
		"query_wait_notify = 250\n"
		"\n"
		"[databases]\n"
		"bench = host=127.0.0.1 port=5432 dbname=bench user=bench password=secret pool_size=10 pool_mode=session\n"
		"app = host=db.internal\n"
		"\n"
		"[users]\n"
		"etl = pool_mode=session max_user_connections=4\n"
		"\n"
		"[limits]\n"
		"app.checkout = 5\n"
		"app_default = 2\n",
		&cfg);
	cr_assert_str_eq(cfg.path, conf_path);
	expect_settings(&cfg, &(struct corral_config){
		.listen_addr = "0.0.0.0", .listen_port = 7432, .workers = 4,
		.auth_type = AUTH_MD5, .auth_file = "/etc/corral/users.txt",
		.pool_mode = POOL_MODE_TRANSACTION, .default_pool_size = 30, .max_client_conn = 500,
		.query_wait_timeout = 0.5, .server_connect_timeout = 2.25, .server_idle_timeout = 0,
		.server_lifetime = 7200, .server_reset_query = "DISCARD ALL",
		.max_packet_size = 65536, .log_level = "debug", .client_login_timeout = 30,
		.min_pool_size = 3, .reserve_pool_size = 5, .reserve_pool_timeout = 0.75,
		.max_db_connections = 100, .max_user_connections = 50,
		.idle_transaction_timeout = 30, .client_idle_timeout = 300,
		.server_login_retry = 2.5, .server_login_wait = 1.5, .max_queue_depth = 1000,
		.query_wait_notify_ms = 250,
		.app_default_limit = 2});

	cr_assert_eq(cfg.n_dbs, 2);
	const struct db_config *bench = config_find_db(&cfg, "bench");
	cr_assert_not_null(bench);
	cr_assert_eq(bench->line, 32);
	expect_conns(bench, (const char *const[]){"host", "127.0.0.1", "port", "5432", "dbname", "bench",
						  "user", "bench", "password", "secret", NULL});
	cr_assert_null(bench->conn_keys[5]);
	cr_assert_null(bench->conn_vals[5]);
	cr_assert_eq(bench->user, bench->conn_vals[3]);
	cr_assert_eq(bench->password, bench->conn_vals[4]);
	cr_assert_eq(bench->pool_size, 10);
	cr_assert_eq(bench->pool_mode, POOL_MODE_SESSION);

	const struct db_config *app = config_find_db(&cfg, "app");
	cr_assert_not_null(app);
	/* dbname added: the server database is the client's name */
	expect_conns(app, (const char *const[]){"host", "db.internal", "dbname", "app", NULL});
	cr_assert_null(app->user);
	cr_assert_null(app->password);
	cr_assert_eq(app->pool_size, -1);
	cr_assert_eq(app->pool_mode, -1);
	cr_assert_eq(app->min_pool_size, -1);
	cr_assert_eq(app->reserve_pool, -1);
	cr_assert_eq(app->max_db_connections, -1);

	cr_assert_eq(cfg.n_users, 1);
	const struct user_config *etl = config_find_user(&cfg, "etl");
	cr_assert_not_null(etl);
	cr_assert_eq(etl->line, 36);
	cr_assert_eq(etl->pool_mode, POOL_MODE_SESSION);
	cr_assert_eq(etl->max_user_connections, 4);

	cr_assert_eq(cfg.n_app_limits, 1);
	cr_assert_str_eq(cfg.app_limits[0].app, "checkout");
	cr_assert_eq(cfg.app_limits[0].limit, 5);
	cr_assert_eq(cfg.app_limits[0].line, 39);
	config_free(&cfg);
	config_free(&cfg);
}

Test(config, defaults_when_keys_are_absent)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_file = conf/userlist.txt\n", &cfg);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want_workers = cpus < 1 ? 1 : cpus > 256 ? 256 : (int)cpus;
	expect_settings(&cfg, &(struct corral_config){
		.listen_addr = "127.0.0.1", .listen_port = 6432, .workers = want_workers,
		.auth_type = AUTH_SCRAM_SHA_256, .auth_file = "conf/userlist.txt",
		.pool_mode = POOL_MODE_SESSION, .default_pool_size = 20, .max_client_conn = 10000,
		.query_wait_timeout = 120, .server_connect_timeout = 15, .server_idle_timeout = 600,
		.server_lifetime = 3600, .server_reset_query = "DISCARD ALL",
		.max_packet_size = 1073741823, .log_level = "info", .client_login_timeout = 60,
		.min_pool_size = 0, .reserve_pool_size = 0, .reserve_pool_timeout = 5,
		.max_db_connections = 0, .max_user_connections = 0,
		.idle_transaction_timeout = 0, .client_idle_timeout = 0, .server_login_retry = 15,
		.server_login_wait = 5, .max_queue_depth = 0, .query_wait_notify_ms = 0, .app_default_limit = 0});
	cr_assert_eq(cfg.n_dbs, 0);
	cr_assert_null(config_find_db(&cfg, "bench"));
	cr_assert_eq(cfg.n_users, 0);
	cr_assert_null(cfg.users);
	cr_assert_null(config_find_user(&cfg, "bench"));
	cr_assert_eq(cfg.n_app_limits, 0);
	cr_assert_null(cfg.app_limits);
	cr_assert_eq(config_app_limit(&cfg, "checkout"), 0);
	cr_assert_eq(config_pool_mode(&cfg, NULL, "bench"), POOL_MODE_SESSION);
	cr_assert_eq(config_min_pool_size(&cfg, NULL), 0);
	cr_assert_eq(config_reserve_pool(&cfg, NULL), 0);
	cr_assert_eq(config_max_db_connections(&cfg, NULL), 0);
	cr_assert_eq(config_max_user_connections(&cfg, "bench"), 0);
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

Test(config, hba_needs_its_file_and_trust_stays_on_loopback)
{
	expect_error("[corral]\nauth_type = hba\n", 2,
		     "auth_hba_file: required with auth_type = hba");
	expect_error("[corral]\nlisten_addr = 0.0.0.0\nauth_type = trust\n", 3,
		     "auth_type: trust lets anyone who reaches listen_addr = 0.0.0.0 log in as any "
		     "user without a password; listen on 127.0.0.1 or ::1, or use auth_type = hba");
	expect_error("[corral]\nauth_type = trust\nlisten_addr = 10.1.2.3\n", 2,
		     "auth_type: trust lets anyone who reaches listen_addr = 10.1.2.3");
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\nlisten_addr = ::1\n", &cfg);
	config_free(&cfg);
	load_ok("[corral]\nauth_type = trust\nlisten_addr = 127.0.0.2\n", &cfg);
	config_free(&cfg);
	/* With hba the file decides, trust lines included; no auth_file is needed. */
	load_ok("[corral]\nauth_type = hba\nauth_hba_file = hba.conf\nlisten_addr = 0.0.0.0\n",
		&cfg);
	cr_expect_eq(cfg.auth_type, AUTH_HBA);
	cr_expect_str_eq(cfg.auth_hba_file, "hba.conf");
	cr_expect_eq(cfg.auth_hba_file_line, 3);
	config_free(&cfg);
}

Test(config, unknown_section)
{
	expect_error(HEAD "[user]\nbob = 1\n", 3,
		     "[user]: unknown section (corral knows [corral], [databases], [users], "
		     "[limits] and [metrics])");
	/* inih never reports a section without keys; the reader does. */
	expect_error(HEAD "\n[Limits]\n", 4, "[Limits]: unknown section");
	expect_error(HEAD "[corral\n", 3, "section header without a closing ']'");
	expect_error(HEAD "[corral] x\n", 3, "unexpected text after ']'");
}

/* The whole error text of a load that must fail, with "@" standing for the file's path. */
static void expect_errors(const char *text, const char *want_template)
{
	struct corral_config cfg;
	char err[4096] = "", want[4096] = "";
	bool ok = load(text, &cfg, err, sizeof(err));
	cr_assert_not(ok, "config_load accepted:\n%s", text);
	size_t n = 0;
	for (const char *t = want_template; *t && n + sizeof(conf_path) < sizeof(want); t++) {
		if (*t == '@')
			n += (size_t)snprintf(want + n, sizeof(want) - n, "%s", conf_path);
		else
			want[n++] = *t;
	}
	want[n] = '\0';
	cr_assert_str_eq(err, want);
	config_free(&cfg);
}

Test(config, every_error_is_reported_in_file_order)
{
	expect_errors(HEAD "listen_port = x\n"
			   "workers = 0\n"
			   "just words\n"
			   "pool_mode = sometimes\n"
			   "[databases]\n"
			   "a = pool_size=0 hots=x port=5432\n"
			   "b = host=x\n"
			   "b = host=y\n",
		      "@:3: listen_port: must be an integer between 1 and 65535, got \"x\"\n"
		      "@:4: workers: must be an integer between 1 and 256, got \"0\"\n"
		      "@:5: expected \"[section]\" or \"key = value\"\n"
		      "@:6: pool_mode: must be one of session, transaction, statement, got "
		      "\"sometimes\"\n"
		      "@:8: a: pool_size must be an integer between 1 and 10000, got \"0\"\n"
		      "@:8: a: unknown connection keyword \"hots\" (not one libpq knows); did you "
		      "mean host?\n"
		      "@:10: b: database defined twice (first on line 9)");
}

Test(config, keys_under_a_bad_section_header_are_not_reported_again)
{
	expect_errors(HEAD "[pgbouncer]\nlogfile = x\npidfile = y\n[corral]\nworkers = 0\n",
		      "@:3: [pgbouncer]: unknown section (corral knows [corral], [databases], "
		      "[users], [limits] and [metrics]); PgBouncer's settings go under [corral]\n"
		      "@:7: workers: must be an integer between 1 and 256, got \"0\"");
	expect_errors(HEAD "[corral\nworkers = 0\n[limits]\napp.x = 0\n",
		      "@:3: section header without a closing ']'\n"
		      "@:6: app.x: must be an integer between 1 and 1000000, got \"0\"");
}

Test(config, cross_key_rules_wait_for_clean_lines)
{
	/* auth_file is required with scram-sha-256, but that is not said while a line is
	 * wrong: the wrong line may be the auth_type. */
	expect_errors("[corral]\nauth_type = scram\n",
		      "@:2: auth_type: must be one of trust, md5, scram-sha-256, hba, got \"scram\"");
}

Test(config, pgbouncer_settings_are_not_supported_rather_than_unknown)
{
	expect_error(HEAD "logfile = /var/log/pgbouncer.log\n", 3,
		     "logfile: not supported by corral; corral logs to stderr only");
	expect_error(HEAD "pidfile = /run/pgbouncer.pid\n", 3,
		     "pidfile: not supported by corral; corral runs in the foreground");
	expect_error(HEAD "ignore_startup_parameters = extra_float_digits\n", 3,
		     "ignore_startup_parameters: not supported by corral; corral accepts every "
		     "startup parameter");
	expect_error(HEAD "unix_socket_dir = /tmp\n", 3,
		     "unix_socket_dir: not supported by corral; corral listens on TCP only");
	expect_error(HEAD "log_stats = 1\n", 3,
		     "log_stats: not supported by corral; the statistics are read");
	expect_error(HEAD "server_tls_ciphers = HIGH\n", 3,
		     "server_tls_ciphers: not supported by corral; libpq has no cipher setting");
	/* A [databases] parameter of PgBouncer's that libpq does not know either. */
	expect_error(HEAD "[databases]\nbench = host=x connect_query='select 1'\n", 4,
		     "bench: \"connect_query\" is not supported by corral");
	/* Every one of them still fails the load, as an unknown key does. */
	expect_errors(HEAD "logfile = x\nsyslog = 1\n",
		      "@:3: logfile: not supported by corral; corral logs to stderr only "
		      "(redirect it, or let systemd's journal keep it)\n"
		      "@:4: syslog: not supported by corral; corral logs to stderr only "
		      "(redirect it, or let systemd's journal keep it)");
}

Test(config, misspelt_keys_get_did_you_mean)
{
	expect_errors(HEAD "listen_prot = 7000\nMax_Client_Conn = 5\nwrkers = 2\nfrobnicate = 1\n",
		      "@:3: listen_prot: unknown key in [corral]; did you mean listen_port?\n"
		      "@:4: Max_Client_Conn: unknown key in [corral]; did you mean "
		      "max_client_conn?\n"
		      "@:5: wrkers: unknown key in [corral]; did you mean workers?\n"
		      "@:6: frobnicate: unknown key in [corral]");
	/* On a database line, corral's keys and libpq's are offered. */
	expect_error(HEAD "[databases]\nbench = pool_sise=3\n", 4,
		     "bench: unknown connection keyword \"pool_sise\" (not one libpq knows); did "
		     "you mean pool_size?");
	expect_error(HEAD "[databases]\nbench = reserve_pool_size=3\n", 4,
		     "bench: unknown connection keyword \"reserve_pool_size\" (not one libpq "
		     "knows); did you mean reserve_pool?");
	expect_error(HEAD "[databases]\nbench = sslmdoe=require\n", 4,
		     "bench: unknown connection keyword \"sslmdoe\" (not one libpq knows); did "
		     "you mean sslmode?");
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
		     "auth_type: must be one of trust, md5, scram-sha-256, hba, got \"password\"");
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
	expect_conns(q, (const char *const[]){"host", "10.0.0.1", "port", "5433", "password",
					      "it's a \\ secret", "options", "-c search_path=a,b",
					      "application_name", "my app", "user", "alice", "dbname", "q",
					      NULL});
	cr_assert_str_eq(q->user, "alice");
	cr_assert_str_eq(q->password, "it's a \\ secret");

	const struct db_config *e = config_find_db(&cfg, "e");
	cr_assert_not_null(e);
	expect_conns(e, (const char *const[]){"host", "", "sslmode", "disable", "dbname", "e", NULL});
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
	/* Errors are reported in the order of the file, the reader's and the keys' alike. */
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
	cr_assert_eq(config_pool_mode(&cfg, big, NULL), POOL_MODE_SESSION);
	cr_assert_eq(config_pool_size(&cfg, plain), 7);
	cr_assert_eq(config_pool_mode(&cfg, plain, NULL), POOL_MODE_TRANSACTION);
	cr_assert_eq(config_pool_size(&cfg, stmt), 7);
	cr_assert_eq(config_pool_mode(&cfg, stmt, NULL), POOL_MODE_STATEMENT);
	cr_assert_eq(config_pool_size(&cfg, NULL), 7);
	cr_assert_eq(config_pool_mode(&cfg, NULL, NULL), POOL_MODE_TRANSACTION);
	/* corral's keys never reach libpq */
	expect_conns(big, (const char *const[]){"host", "a", "dbname", "big", NULL});
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

Test(config, reference_config_examples_load)
{
	/* The commented examples (";name = ..." with no blank after the ';') must be
	 * valid too: uncomment them all and load the result. */
	FILE *in = fopen("conf/corral.ini", "r");
	if (!in)
		return;
	char text[32768] = "", line[512];
	size_t len = 0;
	int examples = 0;
	while (fgets(line, sizeof(line), in)) {
		const char *l = line;
		if (l[0] == ';' && l[1] != ' ' && l[1] != ';' && l[1] != '\n' && strstr(l, " = ")) {
			l++;
			examples++;
		}
		size_t n = strlen(l);
		cr_assert_lt(len + n, sizeof(text));
		memcpy(text + len, l, n + 1);
		len += n;
	}
	fclose(in);
	cr_assert_geq(examples, 4);
	struct corral_config cfg;
	load_ok(text, &cfg);
	cr_assert_not_null(config_find_user(&cfg, "batch"));
	cr_assert_eq(config_app_limit(&cfg, "checkout"), 5);
	cr_assert_eq(config_app_limit(&cfg, "someone-else"), cfg.app_default_limit);
	config_free(&cfg);
}

/* ---- PgBouncer's limits and load leveling in [corral] ---- */

Test(config, limit_keys_take_their_ranges)
{
	struct corral_config cfg;
	load_ok(HEAD "min_pool_size = 10000\ndefault_pool_size = 10000\n"
		     "reserve_pool_size = 10000\nreserve_pool_timeout = 0\n"
		     "max_db_connections = 1000000\nmax_user_connections = 1000000\n"
		     "idle_transaction_timeout = 0.5\nclient_idle_timeout = 86400\n"
		     "server_login_retry = 0.1\nmax_queue_depth = 1000000\n"
		     "query_wait_notify = 86400000\nserver_login_wait = 3600\n",
		&cfg);
	cr_assert_eq(cfg.min_pool_size, 10000);
	cr_assert_eq(cfg.reserve_pool_size, 10000);
	cr_assert_eq(cfg.reserve_pool_timeout, 0);
	cr_assert_eq(cfg.max_db_connections, 1000000);
	cr_assert_eq(cfg.max_user_connections, 1000000);
	cr_assert_eq(cfg.idle_transaction_timeout, 0.5);
	cr_assert_eq(cfg.client_idle_timeout, 86400);
	cr_assert_eq(cfg.server_login_retry, 0.1);
	cr_assert_eq(cfg.server_login_wait, 3600);
	cr_assert_eq(cfg.max_queue_depth, 1000000);
	cr_assert_eq(cfg.query_wait_notify_ms, 86400000);
	config_free(&cfg);

	/* 0 means "off" / "no limit" wherever the key allows it */
	load_ok(HEAD "min_pool_size = 0\nreserve_pool_size = 0\nmax_db_connections = 0\n"
		     "max_user_connections = 0\nidle_transaction_timeout = 0\n"
		     "client_idle_timeout = 0\nmax_queue_depth = 0\nquery_wait_notify = 0\n"
		     "server_login_wait = 0\n",
		&cfg);
	cr_assert_eq(cfg.max_queue_depth, 0);
	cr_assert_eq(cfg.server_login_wait, 0);
	cr_assert_eq(cfg.query_wait_notify_ms, 0);
	config_free(&cfg);
}

Test(config, limit_keys_refuse_bad_values)
{
	static const struct {
		const char *line, *want;
	} bad[] = {
		{ "min_pool_size = 10001",
		  "min_pool_size: must be an integer between 0 and 10000, got \"10001\"" },
		{ "min_pool_size = -1", "min_pool_size: must be an integer between 0 and 10000" },
		{ "reserve_pool_size = 10001",
		  "reserve_pool_size: must be an integer between 0 and 10000, got \"10001\"" },
		{ "reserve_pool_size = x", "reserve_pool_size: must be an integer" },
		{ "reserve_pool_timeout = -1",
		  "reserve_pool_timeout: must be a number of seconds between 0 and" },
		{ "reserve_pool_timeout = 5s", "reserve_pool_timeout: must be a number of seconds" },
		{ "max_db_connections = 1000001",
		  "max_db_connections: must be an integer between 0 and 1000000, got \"1000001\"" },
		{ "max_db_connections = 1.5", "max_db_connections: must be an integer" },
		{ "max_user_connections = 1000001",
		  "max_user_connections: must be an integer between 0 and 1000000, got \"1000001\"" },
		{ "max_user_connections =", "max_user_connections: must be an integer" },
		{ "idle_transaction_timeout = -5",
		  "idle_transaction_timeout: must be a number of seconds between 0 and" },
		{ "idle_transaction_timeout = 2000000000",
		  "idle_transaction_timeout: must be a number of seconds" },
		{ "client_idle_timeout = never",
		  "client_idle_timeout: must be a number of seconds between 0 and" },
		{ "server_login_retry = 0",
		  "server_login_retry: must be a number of seconds greater than 0" },
		{ "server_login_retry = 0.0", "server_login_retry: must be a number of seconds greater" },
		{ "server_login_retry =", "server_login_retry: must be a number of seconds greater" },
		{ "server_login_wait = -1",
		  "server_login_wait: must be a number of seconds between 0 and" },
		{ "server_login_wait = 5s", "server_login_wait: must be a number of seconds" },
		{ "max_queue_depth = 1000001",
		  "max_queue_depth: must be an integer between 0 and 1000000, got \"1000001\"" },
		{ "max_queue_depth = -1", "max_queue_depth: must be an integer" },
		{ "query_wait_notify = 86400001",
		  "query_wait_notify: must be a whole number of milliseconds between 0 and 86400000, "
		  "got \"86400001\"" },
		{ "query_wait_notify = 1.5",
		  "query_wait_notify: must be a whole number of milliseconds" },
		{ "query_wait_notify = 500ms",
		  "query_wait_notify: must be a whole number of milliseconds" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), HEAD "\n%s\n", bad[i].line);
		expect_error(text, 4, bad[i].want);
	}
	expect_error(HEAD "max_queue_depth = 5\nmax_queue_depth = 6\n", 4,
		     "max_queue_depth: set twice (first on line 3)");
	/* the key is query_wait_notify; the field's _ms is not part of its name */
	expect_error(HEAD "query_wait_notify_ms = 5\n", 3,
		     "query_wait_notify_ms: unknown key in [corral]");
}

Test(config, min_pool_size_at_most_default_pool_size)
{
	struct corral_config cfg;
	load_ok(HEAD "min_pool_size = 20\n", &cfg);
	cr_assert_eq(cfg.min_pool_size, 20);
	config_free(&cfg);

	expect_error(HEAD "min_pool_size = 21\n", 3,
		     "min_pool_size: must be at most default_pool_size (20), got 21");
	/* The message names min_pool_size's line wherever default_pool_size is. */
	expect_error(HEAD "min_pool_size = 6\n\ndefault_pool_size = 5\n", 3,
		     "min_pool_size: must be at most default_pool_size (5), got 6");
	expect_error(HEAD "default_pool_size = 5\n[databases]\nbench = host=a\n[corral]\n"
			  "min_pool_size = 8\n",
		     7, "min_pool_size: must be at most default_pool_size (5), got 8");
}

/* ---- [databases]: min_pool_size=, reserve_pool=, max_db_connections= ---- */

Test(config, database_limit_overrides)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\ndefault_pool_size = 10\nmin_pool_size = 4\n"
		"reserve_pool_size = 2\nmax_db_connections = 40\n"
		"[databases]\n"
		"big = host=a pool_size=30 min_pool_size=25 reserve_pool=0 max_db_connections=0\n"
		"small = host=b pool_size=3\n"
		"plain = host=c\n"
		"zero = min_pool_size=0 reserve_pool=7 max_db_connections=12\n",
		&cfg);
	const struct db_config *big = config_find_db(&cfg, "big");
	const struct db_config *small = config_find_db(&cfg, "small");
	const struct db_config *plain = config_find_db(&cfg, "plain");
	const struct db_config *zero = config_find_db(&cfg, "zero");
	cr_assert(big && small && plain && zero);
	cr_assert_eq(big->min_pool_size, 25);
	cr_assert_eq(big->reserve_pool, 0);
	cr_assert_eq(big->max_db_connections, 0);
	cr_assert_eq(config_min_pool_size(&cfg, big), 25);
	cr_assert_eq(config_reserve_pool(&cfg, big), 0);
	cr_assert_eq(config_max_db_connections(&cfg, big), 0);

	/* inherited from [corral], and capped at this database's pool_size */
	cr_assert_eq(small->min_pool_size, -1);
	cr_assert_eq(small->reserve_pool, -1);
	cr_assert_eq(small->max_db_connections, -1);
	cr_assert_eq(config_min_pool_size(&cfg, small), 3);
	cr_assert_eq(config_reserve_pool(&cfg, small), 2);
	cr_assert_eq(config_max_db_connections(&cfg, small), 40);

	cr_assert_eq(config_min_pool_size(&cfg, plain), 4);
	cr_assert_eq(config_min_pool_size(&cfg, zero), 0);
	cr_assert_eq(config_reserve_pool(&cfg, zero), 7);
	cr_assert_eq(config_max_db_connections(&cfg, zero), 12);
	cr_assert_eq(config_min_pool_size(&cfg, NULL), 4);
	cr_assert_eq(config_reserve_pool(&cfg, NULL), 2);
	cr_assert_eq(config_max_db_connections(&cfg, NULL), 40);
	/* corral's keys never reach libpq */
	expect_conns(big, (const char *const[]){ "host", "a", "dbname", "big", NULL });
	expect_conns(zero, (const char *const[]){ "dbname", "zero", NULL });
	config_free(&cfg);
}

Test(config, database_limit_overrides_refuse_bad_values)
{
	expect_error(HEAD "[databases]\nbench = min_pool_size=10001\n", 4,
		     "bench: min_pool_size must be an integer between 0 and 10000, got \"10001\"");
	expect_error(HEAD "[databases]\nbench = min_pool_size=-1\n", 4,
		     "bench: min_pool_size must be an integer between 0 and 10000");
	expect_error(HEAD "[databases]\nbench = reserve_pool=10001\n", 4,
		     "bench: reserve_pool must be an integer between 0 and 10000, got \"10001\"");
	expect_error(HEAD "[databases]\nbench = reserve_pool=many\n", 4,
		     "bench: reserve_pool must be an integer");
	expect_error(HEAD "[databases]\nbench = max_db_connections=1000001\n", 4,
		     "bench: max_db_connections must be an integer between 0 and 1000000, "
		     "got \"1000001\"");
	expect_error(HEAD "[databases]\nbench = max_db_connections=\n", 4,
		     "bench: max_db_connections must be an integer");
	expect_error(HEAD "[databases]\nbench = reserve_pool=1 reserve_pool=1\n", 4,
		     "bench: \"reserve_pool\" given twice");
	expect_error(HEAD "[databases]\nbench = min_pool_size=0 min_pool_size=0\n", 4,
		     "bench: \"min_pool_size\" given twice");
	expect_error(HEAD "[databases]\nbench = max_db_connections=0 max_db_connections=1\n", 4,
		     "bench: \"max_db_connections\" given twice");
	/* PgBouncer's database key is reserve_pool; the [corral] name is not taken here */
	expect_error(HEAD "[databases]\nbench = reserve_pool_size=1\n", 4,
		     "bench: unknown connection keyword \"reserve_pool_size\"");
	/* written on the line itself, min_pool_size above the pool size is a mistake */
	expect_error(HEAD "[databases]\nbench = pool_size=3 min_pool_size=4\n", 4,
		     "bench: min_pool_size must be at most pool_size (3), got 4");
	expect_error(HEAD "default_pool_size = 5\n[databases]\n\nbench = min_pool_size=6\n", 6,
		     "bench: min_pool_size must be at most default_pool_size (5), got 6");
}

/* ---- [users] ---- */

Test(config, users_section)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\nmax_user_connections = 30\n"
		"[users]\n"
		"batch = pool_mode=transaction max_user_connections=10\n"
		"web = max_user_connections = 0\n"
		"quoted = pool_mode='STATEMENT'\n"
		"plain =\n"
		"svc:api = pool_mode=session\n",
		&cfg);
	cr_assert_eq(cfg.n_users, 5);
	const struct user_config *batch = config_find_user(&cfg, "batch");
	cr_assert_not_null(batch);
	cr_assert_str_eq(batch->name, "batch");
	cr_assert_eq(batch->line, 5);
	cr_assert_eq(batch->pool_mode, POOL_MODE_TRANSACTION);
	cr_assert_eq(batch->max_user_connections, 10);

	const struct user_config *web = config_find_user(&cfg, "web");
	cr_assert_not_null(web);
	cr_assert_eq(web->pool_mode, -1);
	cr_assert_eq(web->max_user_connections, 0);
	cr_assert_eq(config_find_user(&cfg, "quoted")->pool_mode, POOL_MODE_STATEMENT);

	const struct user_config *plain = config_find_user(&cfg, "plain");
	cr_assert_not_null(plain);
	cr_assert_eq(plain->pool_mode, -1);
	cr_assert_eq(plain->max_user_connections, -1);

	/* inih alone would end the name at ':' */
	const struct user_config *svc = config_find_user(&cfg, "svc:api");
	cr_assert_not_null(svc);
	cr_assert_eq(svc->pool_mode, POOL_MODE_SESSION);
	cr_assert_null(config_find_user(&cfg, "svc"));

	cr_assert_null(config_find_user(&cfg, "Batch")); /* names are case-sensitive */
	cr_assert_null(config_find_user(&cfg, NULL));
	cr_assert_eq(config_max_user_connections(&cfg, "batch"), 10);
	cr_assert_eq(config_max_user_connections(&cfg, "web"), 0);
	cr_assert_eq(config_max_user_connections(&cfg, "plain"), 30);
	cr_assert_eq(config_max_user_connections(&cfg, "nobody"), 30);
	cr_assert_eq(config_max_user_connections(&cfg, NULL), 30);
	config_free(&cfg);
}

Test(config, users_section_errors)
{
	expect_error(HEAD "[users]\nbob = pool_size=3\n", 4,
		     "bob: unknown key \"pool_size\" (a [users] line takes pool_mode= and "
		     "max_user_connections=)");
	expect_error(HEAD "[users]\nbob = pool_mode=sometimes\n", 4,
		     "bob: pool_mode must be one of session, transaction, statement, "
		     "got \"sometimes\"");
	expect_error(HEAD "[users]\nbob = max_user_connections=-1\n", 4,
		     "bob: max_user_connections must be an integer between 0 and 1000000");
	expect_error(HEAD "[users]\nbob = max_user_connections=1000001\n", 4,
		     "bob: max_user_connections must be an integer between 0 and 1000000, "
		     "got \"1000001\"");
	expect_error(HEAD "[users]\nbob = pool_mode=session pool_mode=transaction\n", 4,
		     "bob: \"pool_mode\" given twice");
	expect_error(HEAD "[users]\nbob = pool_mode=session\n\nbob = max_user_connections=1\n",
		     6, "bob: user defined twice (first on line 4)");
	expect_error(HEAD "[users]\nbob = pool_mode\n", 4, "bob: expected \"=\" after \"pool_mode\"");
	expect_error(HEAD "[users]\nbob = pool_mode='session\n", 4,
		     "bob: unterminated quoted value for \"pool_mode\"");
	expect_error(HEAD "[users]\n= pool_mode=session\n", 4,
		     "a [users] entry needs a user name before \"=\"");
	expect_error(HEAD "[users]\nbob: transaction\n", 4, "expected \"key = value\"");

	/* a failed [users] line leaves nothing behind (ASan checks the frees) */
	struct corral_config cfg;
	char err[512];
	bool ok = load(HEAD "[users]\na = pool_mode=session\nb = max_user_connections=x\n", &cfg,
		       err, sizeof(err));
	cr_assert_not(ok);
	cr_assert_null(cfg.users);
	cr_assert_eq(cfg.n_users, 0);
}

Test(config, pool_mode_precedence)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\npool_mode = session\n"
		"[databases]\n"
		"txdb = host=a pool_mode=transaction\n"
		"plain = host=b\n"
		"[users]\n"
		"stmt = pool_mode=statement\n"
		"sess = pool_mode=session\n"
		"limited = max_user_connections=3\n",
		&cfg);
	const struct db_config *txdb = config_find_db(&cfg, "txdb");
	const struct db_config *plain = config_find_db(&cfg, "plain");
	cr_assert(txdb && plain);
	/* the user's override wins over the database's ... */
	cr_assert_eq(config_pool_mode(&cfg, txdb, "stmt"), POOL_MODE_STATEMENT);
	cr_assert_eq(config_pool_mode(&cfg, txdb, "sess"), POOL_MODE_SESSION);
	cr_assert_eq(config_pool_mode(&cfg, plain, "stmt"), POOL_MODE_STATEMENT);
	/* ... the database's wins over [corral]'s ... */
	cr_assert_eq(config_pool_mode(&cfg, txdb, "limited"), POOL_MODE_TRANSACTION);
	cr_assert_eq(config_pool_mode(&cfg, txdb, "nobody"), POOL_MODE_TRANSACTION);
	cr_assert_eq(config_pool_mode(&cfg, txdb, NULL), POOL_MODE_TRANSACTION);
	/* ... and [corral]'s is the fallback */
	cr_assert_eq(config_pool_mode(&cfg, plain, "limited"), POOL_MODE_SESSION);
	cr_assert_eq(config_pool_mode(&cfg, plain, "nobody"), POOL_MODE_SESSION);
	cr_assert_eq(config_pool_mode(&cfg, NULL, NULL), POOL_MODE_SESSION);
	cr_assert_eq(config_pool_mode(&cfg, NULL, "stmt"), POOL_MODE_STATEMENT);
	config_free(&cfg);
}

/* ---- [limits] ---- */

Test(config, limits_section)
{
	struct corral_config cfg;
	load_ok(HEAD "[limits]\n"
		     "app.checkout = 5\n"
		     "app.Checkout = 6\n"
		     "app.svc:billing = 2\n"
		     "app.my function v2 = 3\n"
		     "app.a.b = 1000000\n"
		     "app_default = 7\n",
		&cfg);
	cr_assert_eq(cfg.n_app_limits, 5);
	cr_assert_str_eq(cfg.app_limits[0].app, "checkout");
	cr_assert_eq(cfg.app_limits[0].line, 4);
	cr_assert_eq(cfg.app_default_limit, 7);
	cr_assert_eq(config_app_limit(&cfg, "checkout"), 5);
	cr_assert_eq(config_app_limit(&cfg, "Checkout"), 6); /* case-sensitive */
	cr_assert_eq(config_app_limit(&cfg, "svc:billing"), 2);
	cr_assert_eq(config_app_limit(&cfg, "my function v2"), 3);
	cr_assert_eq(config_app_limit(&cfg, "a.b"), 1000000);
	/* anything else: app_default, exact matches only */
	cr_assert_eq(config_app_limit(&cfg, "CHECKOUT"), 7);
	cr_assert_eq(config_app_limit(&cfg, "checkout2"), 7);
	cr_assert_eq(config_app_limit(&cfg, "svc"), 7);
	cr_assert_eq(config_app_limit(&cfg, ""), 7);
	cr_assert_eq(config_app_limit(&cfg, NULL), 7);
	config_free(&cfg);

	/* app_default = 0 (its default): applications without a line have no limit */
	load_ok(HEAD "[limits]\napp_default = 0\napp.checkout = 1\n", &cfg);
	cr_assert_eq(cfg.app_default_limit, 0);
	cr_assert_eq(config_app_limit(&cfg, "checkout"), 1);
	cr_assert_eq(config_app_limit(&cfg, "other"), 0);
	config_free(&cfg);
}

Test(config, limits_section_errors)
{
	expect_error(HEAD "[limits]\napp.checkout = 0\n", 4,
		     "app.checkout: must be an integer between 1 and 1000000, got \"0\"");
	expect_error(HEAD "[limits]\napp.checkout = -1\n", 4,
		     "app.checkout: must be an integer between 1 and 1000000");
	expect_error(HEAD "[limits]\napp.checkout = five\n", 4,
		     "app.checkout: must be an integer between 1 and 1000000, got \"five\"");
	expect_error(HEAD "[limits]\napp.checkout = 1000001\n", 4,
		     "app.checkout: must be an integer between 1 and 1000000");
	expect_error(HEAD "[limits]\napp.checkout =\n", 4, "app.checkout: must be an integer");
	expect_error(HEAD "[limits]\napp.checkout = 1\n\napp.checkout = 2\n", 6,
		     "app.checkout: set twice (first on line 4)");
	expect_error(HEAD "[limits]\napp_default = -1\n", 4,
		     "app_default: must be an integer between 0 (no limit) and 1000000, got \"-1\"");
	expect_error(HEAD "[limits]\napp_default = 1000001\n", 4,
		     "app_default: must be an integer between 0 (no limit) and 1000000");
	expect_error(HEAD "[limits]\napp_default = 1\napp_default = 2\n", 5,
		     "app_default: set twice (first on line 4)");
	expect_error(HEAD "[limits]\ncheckout = 5\n", 4,
		     "checkout: unknown key in [limits] (it takes app.NAME = N and app_default = N)");
	expect_error(HEAD "[limits]\nApp.checkout = 5\n", 4, "App.checkout: unknown key in [limits]");
	expect_error(HEAD "[limits]\napp = 5\n", 4, "app: unknown key in [limits]");
	expect_error(HEAD "[limits]\napp. = 5\n", 4,
		     "app.: needs an application name after \"app.\"");
	expect_error(HEAD "[limits]\napp. checkout = 5\n", 4,
		     "app. checkout: the application name must not start with a blank");
	expect_error(HEAD "[limits]\napp.checkout: 5\n", 4, "expected \"key = value\"");

	struct corral_config cfg;
	char err[512];
	bool ok = load(HEAD "[limits]\napp.a = 1\napp.b = 2\napp.c = 0\n", &cfg, err,
		       sizeof(err));
	cr_assert_not(ok);
	cr_assert_null(cfg.app_limits);
	cr_assert_eq(cfg.n_app_limits, 0);
}

Test(config, new_sections_may_repeat_and_mix)
{
	struct corral_config cfg;
	load_ok(HEAD "[limits]\napp.a = 1\n[users]\nbob = pool_mode=transaction\n"
		     "[limits]\napp.b = 2 ; a comment\n[users]\namy = max_user_connections=2\n",
		&cfg);
	cr_assert_eq(cfg.n_app_limits, 2);
	cr_assert_eq(config_app_limit(&cfg, "b"), 2);
	cr_assert_eq(cfg.n_users, 2);
	cr_assert_eq(config_max_user_connections(&cfg, "amy"), 2);
	config_free(&cfg);
}

Test(config, admin_console_keys)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\n", &cfg);
	cr_assert_str_eq(cfg.admin_db, "corral");
	cr_assert_str_eq(cfg.admin_users, "");
	cr_assert_str_eq(cfg.stats_users, "");
	cr_assert_eq(cfg.stats_period, 60);
	cr_assert_not(config_list_has(cfg.admin_users, "admin"));
	config_free(&cfg);

	load_ok("[corral]\nauth_type = trust\nadmin_db = console\n"
		"admin_users = admin, root ,ops\nstats_users = grafana\nstats_period = 10\n",
		&cfg);
	cr_assert_str_eq(cfg.admin_db, "console");
	cr_assert(config_list_has(cfg.admin_users, "admin"));
	cr_assert(config_list_has(cfg.admin_users, "root"));
	cr_assert(config_list_has(cfg.admin_users, "ops"));
	cr_assert_not(config_list_has(cfg.admin_users, "adm"));
	cr_assert_not(config_list_has(cfg.admin_users, "Admin"));
	cr_assert_not(config_list_has(cfg.admin_users, ""));
	cr_assert(config_list_has(cfg.stats_users, "grafana"));
	cr_assert_eq(cfg.stats_period, 10);
	config_free(&cfg);

	expect_error(HEAD "stats_period = 0\n", 3, "stats_period: ");
	expect_error(HEAD "admin_db =\n", 3, "admin_db: must not be empty");
	/* A database named like the console could never be reached. */
	expect_error(HEAD "[databases]\ncorral = host=x\n", 4,
		     "corral: is the admin console's name (admin_db)");
}

static void count_row(void *arg, const char *key, const char *value, const char *deflt)
{
	int *n = arg;
	(*n)++;
	if (strcmp(key, "listen_port") == 0) {
		cr_expect_str_eq(value, "7000");
		cr_expect_str_eq(deflt, "6432");
	} else if (strcmp(key, "pool_mode") == 0) {
		cr_expect_str_eq(value, "transaction");
		cr_expect_str_eq(deflt, "session");
	} else if (strcmp(key, "query_wait_timeout") == 0) {
		cr_expect_str_eq(value, "0.5");
		cr_expect_str_eq(deflt, "120");
	} else if (strcmp(key, "so_reuseport") == 0) {
		cr_expect_str_eq(value, "no");
	}
}

Test(config, show_lists_every_corral_key)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\nlisten_port = 7000\npool_mode = transaction\n"
		"query_wait_timeout = 0.5\n",
		&cfg);
	int n = 0;
	cr_assert(config_show(&cfg, count_row, &n));
	cr_expect_eq(n, 59); /* every key of conf/corral.ini's [corral] */
	config_free(&cfg);
}

Test(config, metrics_listen)
{
	struct corral_config cfg;
	load_ok(HEAD, &cfg);
	cr_expect_null(cfg.metrics_addr, "the endpoint is off unless [metrics] listen is set");
	config_free(&cfg);
	load_ok(HEAD "[metrics]\nlisten = 127.0.0.1:9930\n", &cfg);
	cr_expect_str_eq(cfg.metrics_addr, "127.0.0.1");
	cr_expect_eq(cfg.metrics_port, 9930);
	config_free(&cfg);
	load_ok(HEAD "[metrics]\nlisten = [::1]:19930\n", &cfg);
	cr_expect_str_eq(cfg.metrics_addr, "::1");
	cr_expect_eq(cfg.metrics_port, 19930);
	config_free(&cfg);
	load_ok(HEAD "[metrics]\nlisten = 0.0.0.0:80\n", &cfg);
	cr_expect_str_eq(cfg.metrics_addr, "0.0.0.0");
	config_free(&cfg);

	const char *bad[] = { "9930", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000",
			      ":9930", "::1:9930", "[::1]9930" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[200];
		snprintf(text, sizeof(text), HEAD "[metrics]\nlisten = %s\n", bad[i]);
		char want[160];
		snprintf(want, sizeof(want),
			 "listen: must be ADDRESS:PORT (e.g. 127.0.0.1:9930, [::1]:9930), got \"%s\"",
			 bad[i]);
		expect_error(text, 4, want);
	}
	expect_error(HEAD "[metrics]\nlisten = localhost:9930\n", 4,
		     "listen: \"localhost\" is not an IPv4 or IPv6 address");
	expect_error(HEAD "[metrics]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n", 5,
		     "listen: set twice");
	expect_error(HEAD "[metrics]\nlsten = 127.0.0.1:1\n", 4,
		     "lsten: unknown key in [metrics]; did you mean listen?");
}

/* ---- client TLS keys (the files themselves are read by proxy/client_tls.c) ---- */

Test(config, client_tls_keys)
{
	struct corral_config cfg;
	load_ok(HEAD, &cfg);
	cr_expect_eq(cfg.client_tls.sslmode, CLIENT_TLS_DISABLE);
	cr_expect_eq(cfg.client_tls.protocols, TLS_PROTO_SECURE);
	cr_expect_null(cfg.client_tls.ciphers);
	config_free(&cfg);

	load_ok(HEAD "client_tls_sslmode = verify-full\nclient_tls_cert_file = s.crt\n"
		     "client_tls_key_file = s.key\nclient_tls_ca_file = ca.crt\n"
		     "client_tls_protocols = tlsv1.3\nclient_tls_ciphers = HIGH\n",
		&cfg);
	cr_expect_eq(cfg.client_tls.sslmode, CLIENT_TLS_VERIFY_FULL);
	cr_expect_str_eq(cfg.client_tls.cert_file, "s.crt");
	cr_expect_eq(cfg.client_tls.cert_line, 4);
	cr_expect_eq(cfg.client_tls.protocols, TLS_PROTO_1_3);
	cr_expect_str_eq(cfg.client_tls.ciphers, "HIGH");
	config_free(&cfg);

	expect_error(HEAD "client_tls_sslmode = on\n", 3, "client_tls_sslmode: must be one of");
	expect_error(HEAD "client_tls_protocols = tlsv1.4\n", 3,
		     "client_tls_protocols: unknown protocol \"tlsv1.4\"");
	expect_error(HEAD "client_tls_sslmode = require\nclient_tls_key_file = s.key\n", 3,
		     "client_tls_cert_file: required with client_tls_sslmode = require");
	expect_error(HEAD "client_tls_sslmode = verify-ca\nclient_tls_key_file = s.key\n"
			  "client_tls_cert_file = s.crt\n",
		     3, "client_tls_ca_file: required");
	/* Still not supported: named as such. */
	expect_error(HEAD "client_tls13_ciphers = X\n", 3, "client_tls13_ciphers: not supported by corral");
}

/* server_tls_* become the database lines' libpq keywords, unless a line has its own. */
Test(config, server_tls_keys_are_database_line_defaults)
{
	struct corral_config cfg;
	load_ok("[corral]\nauth_type = trust\nserver_tls_sslmode = verify-full\n"
		"server_tls_ca_file = conf/corral.ini\nserver_tls_protocols = tlsv1.2,tlsv1.3\n"
		"[databases]\na = host=x\nb = host=y sslmode=disable\n",
		&cfg);
	const char *want_a[][2] = {{"sslmode", "verify-full"},
				   {"sslrootcert", "conf/corral.ini"},
				   {"ssl_min_protocol_version", "TLSv1.2"},
				   {"ssl_max_protocol_version", "TLSv1.3"}};
	const struct db_config *a = config_find_db(&cfg, "a"), *b = config_find_db(&cfg, "b");
	for (size_t k = 0; k < sizeof(want_a) / sizeof(want_a[0]); k++) {
		const char *got = NULL, *got_b = NULL;
		for (size_t i = 0; i < a->n_conn; i++)
			if (strcmp(a->conn_keys[i], want_a[k][0]) == 0)
				got = a->conn_vals[i];
		for (size_t i = 0; i < b->n_conn; i++)
			if (strcmp(b->conn_keys[i], want_a[k][0]) == 0)
				got_b = b->conn_vals[i];
		cr_expect_str_eq(got ? got : "-", want_a[k][1], "%s", want_a[k][0]);
		if (k == 0)
			cr_expect_str_eq(got_b ? got_b : "-", "disable", "the line's own sslmode");
	}
	config_free(&cfg);
	expect_error(HEAD "server_tls_sslmode = sometimes\n", 3,
		     "server_tls_sslmode: unknown sslmode \"sometimes\"");
	expect_error(HEAD "server_tls_ca_file = /nonexistent/root.crt\n", 3,
		     "server_tls_ca_file: cannot read \"/nonexistent/root.crt\"");
	expect_error(HEAD "server_tls_protocols = tlsv1.0,tlsv1.3\n", 3,
		     "server_tls_protocols: libpq takes a range of TLS versions");
	expect_error(HEAD "server_tls_protocols = sslv3\n", 3,
		     "server_tls_protocols: unknown TLS protocol \"sslv3\"");
}

/* ---- auth_query (proxy/auth_query.h) ---- */

Test(config, auth_query_keys)
{
	struct corral_config cfg;
	load_ok(HEAD "[databases]\nbench = host=127.0.0.1\n", &cfg);
	cr_expect_null(config_auth_user(&cfg, config_find_db(&cfg, "bench")), "off by default");
	cr_expect_str_eq(cfg.auth_query, "SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
	cr_expect_eq(cfg.auth_query_cache_ttl, 60);
	config_free(&cfg);

	load_ok(HEAD "auth_user = corral_auth\nauth_query = SELECT u, p FROM f($1)\n"
		     "auth_dbname = other\nauth_query_cache_ttl = 1.5\n"
		     "[databases]\nbench = host=127.0.0.1 auth_user=bench_auth\n"
		     "other = host=127.0.0.1\n",
		&cfg);
	cr_expect_str_eq(cfg.auth_query, "SELECT u, p FROM f($1)");
	cr_expect_str_eq(cfg.auth_dbname, "other");
	cr_expect_eq(cfg.auth_query_cache_ttl, 1.5);
	const struct db_config *bench = config_find_db(&cfg, "bench");
	cr_expect_str_eq(config_auth_user(&cfg, bench), "bench_auth", "the line's wins");
	cr_expect_str_eq(config_auth_user(&cfg, config_find_db(&cfg, "other")), "corral_auth");
	cr_expect_str_eq(config_auth_user(&cfg, NULL), "corral_auth");
	/* auth_user= is corral's, not a libpq keyword the server login would get. */
	for (size_t i = 0; i < bench->n_conn; i++)
		cr_expect_str_neq(bench->conn_keys[i], "auth_user");
	struct corral_config copy;
	cr_assert(config_copy(&cfg, &copy));
	cr_expect_str_eq(config_auth_user(&copy, config_find_db(&copy, "bench")), "bench_auth");
	cr_expect_str_eq(copy.auth_query, "SELECT u, p FROM f($1)");
	config_free(&copy);
	config_free(&cfg);
}

Test(config, auth_query_key_errors)
{
	expect_error(HEAD "auth_dbname = nosuch\n[databases]\nbench = host=127.0.0.1\n", 3,
		     "auth_dbname: \"nosuch\" is not a database of [databases]");
	expect_error(HEAD "auth_query =\n", 3, "auth_query: must not be empty");
	expect_error(HEAD "[databases]\nbench = host=127.0.0.1 auth_user=a auth_user=b\n", 4,
		     "bench: \"auth_user\" given twice");
	expect_error(HEAD "[databases]\nbench = host=127.0.0.1 auth_query=x\n", 4,
		     "bench: \"auth_query\" is not supported by corral; auth_query is set in "
		     "[corral]");
	expect_error(HEAD "auth_query_cache_ttl = -1\n", 3, "auth_query_cache_ttl:");
}
