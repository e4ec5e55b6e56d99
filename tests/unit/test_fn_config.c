/*
 * functions/runner/fn_config.c: every test runs in a fresh temporary directory (Criterion
 * gives each test its own process) holding the file under test, corral-fn.ini, and the
 * shared objects the default functions_dir (bin/functions) should have.  So paths in
 * messages are short and fixed: "corral-fn.ini:3: key: why".
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "functions/runner/fn_config.h"

#define CONF "corral-fn.ini"

static char orig_dir[PATH_MAX];
static char temp_dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	close(fd);
}

/* bin/functions/NAME.so, an empty file: the loader only checks that it can be read. */
static void make_so(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "bin/functions/%s.so", name);
	touch(path);
}

static void enter_temp_dir(void)
{
	cr_assert_not_null(getcwd(orig_dir, sizeof(orig_dir)));
	strcpy(temp_dir, "/tmp/corral-fn-config-XXXXXX");
	cr_assert_not_null(mkdtemp(temp_dir), "mkdtemp: %s", strerror(errno));
	cr_assert_eq(chdir(temp_dir), 0);
	cr_assert_eq(mkdir("bin", 0755), 0);
	cr_assert_eq(mkdir("bin/functions", 0755), 0);
	make_so("f");
	make_so("g");
}

static void leave_temp_dir(void)
{
	if (orig_dir[0] && chdir(orig_dir) != 0)
		return;
	if (temp_dir[0])
		nftw(temp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(fn_config, .init = enter_temp_dir, .fini = leave_temp_dir);

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
}

static bool load(const char *text, struct fn_runner_config *cfg, char *err, size_t errlen)
{
	write_file(CONF, text);
	return fn_config_load(CONF, cfg, err, errlen);
}

static void load_ok(const char *text, struct fn_runner_config *cfg)
{
	char err[512] = "";
	bool ok = load(text, cfg, err, sizeof(err));
	cr_assert(ok, "fn_config_load failed: %s\n--- file:\n%s", err, text);
	cr_assert_str_eq(err, "");
}

/* Expects the load to fail with a message that starts with want ("corral-fn.ini:3: ..."). */
static void expect_error(const char *text, const char *want)
{
	struct fn_runner_config cfg;
	char err[512] = "";
	bool ok = load(text, &cfg, err, sizeof(err));
	cr_assert_not(ok, "fn_config_load accepted:\n%s", text);
	cr_assert(strncmp(err, want, strlen(want)) == 0, "got:  %s\nwant: %s...\n--- file:\n%s",
		  err, want, text);
	/* A failed load leaves nothing behind, and freeing it again is harmless. */
	cr_assert_null(cfg.listen_addr);
	cr_assert_null(cfg.functions);
	cr_assert_eq(cfg.n_functions, 0);
	fn_config_free(&cfg);
}

/* The line "[function.f]" then one line "key = value": errors are on line 2. */
static void expect_function_error(const char *line, const char *want)
{
	char text[512], full[512];
	snprintf(text, sizeof(text), "[function.f]\n%s\n", line);
	snprintf(full, sizeof(full), CONF ":2: %s", want);
	expect_error(text, full);
}

static void expect_runner_error(const char *line, const char *want)
{
	char text[512], full[512];
	snprintf(text, sizeof(text), "[runner]\n%s\n", line);
	snprintf(full, sizeof(full), CONF ":2: %s", want);
	expect_error(text, full);
}

#define SEC(s) ((usec_t)((s) * 1000000.0))

static void expect_function_defaults(const struct fn_function_config *fn, const char *name)
{
	char so[128];
	snprintf(so, sizeof(so), "bin/functions/%s.so", name);
	cr_assert_str_eq(fn->name, name);
	cr_assert_str_eq(fn->so_path, so);
	cr_assert_null(fn->database_url);
	cr_assert_eq(fn->timeout_usec, SEC(3));
	cr_assert_eq(fn->memory_mb, 128);
	cr_assert_eq(fn->reserved_concurrency, 0);
	cr_assert_eq(fn->provisioned, 0);
	cr_assert_eq(fn->idle_timeout_usec, SEC(300));
	cr_assert_eq(fn->on_limit, FN_ON_LIMIT_QUEUE);
	cr_assert_eq(fn->queue_depth, 100);
	cr_assert_eq(fn->queue_timeout_usec, SEC(10));
	cr_assert(fn->http);
	cr_assert_not(fn->has_schedule);
	cr_assert_null(fn->schedule);
	cr_assert_null(fn->queue);
	cr_assert_eq(fn->batch_size, 10);
	cr_assert_eq(fn->queue_concurrency, 2);
	cr_assert_eq(fn->max_receive_count, 3);
	cr_assert_eq(fn->visibility_timeout_usec, SEC(30));
	cr_assert_eq(fn->queue_poll_usec, SEC(1));
}

/* ---- defaults and every key ------------------------------------------------------------ */

Test(fn_config, runner_defaults)
{
	struct fn_runner_config cfg;
	load_ok("", &cfg);
	cr_assert_str_eq(cfg.listen_addr, "127.0.0.1");
	cr_assert_eq(cfg.listen_port, 9000);
	cr_assert_null(cfg.database_url);
	cr_assert_null(cfg.queue_database_url);
	cr_assert_str_eq(cfg.functions_dir, "bin/functions");
	cr_assert_eq(cfg.max_concurrency, 1000);
	cr_assert_eq(cfg.init_timeout_usec, SEC(10));
	cr_assert_eq(cfg.shutdown_grace_usec, SEC(2));
	cr_assert_str_eq(cfg.log_level, "info");
	cr_assert(cfg.log_reports);
	cr_assert_eq(cfg.n_functions, 0);
	cr_assert_null(cfg.functions);
	cr_assert_null(fn_config_find(&cfg, "f"));
	fn_config_free(&cfg);
	fn_config_free(&cfg);
}

/* An empty section is a function: inih alone would never report it. */
Test(fn_config, function_defaults_from_an_empty_section)
{
	struct fn_runner_config cfg;
	load_ok("; two functions, nothing set\n[function.f]\n\n[function.g]\n", &cfg);
	cr_assert_eq(cfg.n_functions, 2);
	expect_function_defaults(&cfg.functions[0], "f");
	expect_function_defaults(&cfg.functions[1], "g");
	fn_config_free(&cfg);
}

Test(fn_config, every_runner_key)
{
	cr_assert_eq(mkdir("lib", 0755), 0);
	touch("lib/f.so");
	struct fn_runner_config cfg;
	load_ok("[runner]\n"
		"listen_addr = ::1\n"
		"listen_port = 9100\n"
		"database_url = postgresql://bench:secret@127.0.0.1:6432/bench\n"
		"queue_database_url = host=127.0.0.1 port=6432 dbname=queues user=q\n"
		"functions_dir = lib/\n"
		"max_concurrency = 64\n"
		"init_timeout = 2.5\n"
		"shutdown_grace = 0\n"
		"log_level = DEBUG\n"
		"log_reports = off\n"
		"[function.f]\n",
		&cfg);
	cr_assert_str_eq(cfg.listen_addr, "::1");
	cr_assert_eq(cfg.listen_port, 9100);
	cr_assert_str_eq(cfg.database_url, "postgresql://bench:secret@127.0.0.1:6432/bench");
	cr_assert_str_eq(cfg.queue_database_url, "host=127.0.0.1 port=6432 dbname=queues user=q");
	cr_assert_str_eq(cfg.functions_dir, "lib/");
	cr_assert_eq(cfg.max_concurrency, 64);
	cr_assert_eq(cfg.init_timeout_usec, SEC(2.5));
	cr_assert_eq(cfg.shutdown_grace_usec, 0);
	cr_assert_str_eq(cfg.log_level, "debug");
	cr_assert_not(cfg.log_reports);
	/* The trailing '/' of functions_dir is not doubled. */
	cr_assert_str_eq(cfg.functions[0].so_path, "lib/f.so");
	fn_config_free(&cfg);
}

Test(fn_config, every_function_key)
{
	touch("custom.so");
	struct fn_runner_config cfg;
	load_ok("[runner]\n"
		"database_url = postgresql://bench:secret@127.0.0.1:6432/bench\n"
		"[function.worker-1]\n"
		"so = custom.so\n"
		"database_url = host=127.0.0.1 port=6432 dbname=bench application_name=worker\n"
		"timeout = 0.25\n"
		"memory_mb = 0\n"
		"reserved_concurrency = 8\n"
		"provisioned = 8\n"
		"idle_timeout = 60\n"
		"on_limit = Throttle\n"
		"queue_depth = 5\n"
		"queue_timeout = 0.5\n"
		"http = false\n"
		"schedule = */15 9-17 * * MON-FRI\n"
		"queue = jobs_2\n"
		"batch_size = 10000\n"
		"queue_concurrency = 7\n"
		"max_receive_count = 1\n"
		"visibility_timeout = 45\n"
		"queue_poll = .2\n",
		&cfg);
	cr_assert_eq(cfg.n_functions, 1);
	const struct fn_function_config *fn = &cfg.functions[0];
	cr_assert_str_eq(fn->name, "worker-1");
	/* A bare file name is made a path, or dlopen() would search the library path. */
	cr_assert_str_eq(fn->so_path, "./custom.so");
	cr_assert_str_eq(fn->database_url,
			 "host=127.0.0.1 port=6432 dbname=bench application_name=worker");
	cr_assert_eq(fn->timeout_usec, SEC(0.25));
	cr_assert_eq(fn->memory_mb, 0);
	cr_assert_eq(fn->reserved_concurrency, 8);
	cr_assert_eq(fn->provisioned, 8);
	cr_assert_eq(fn->idle_timeout_usec, SEC(60));
	cr_assert_eq(fn->on_limit, FN_ON_LIMIT_THROTTLE);
	cr_assert_eq(fn->queue_depth, 5);
	cr_assert_eq(fn->queue_timeout_usec, SEC(0.5));
	cr_assert_not(fn->http);
	cr_assert(fn->has_schedule);
	cr_assert_str_eq(fn->schedule, "*/15 9-17 * * MON-FRI");
	cr_assert_eq(fn->cron.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
	cr_assert_eq(fn->cron.hours, 0x3FE00u); /* 9..17 */
	cr_assert_eq(fn->cron.wdays, 0x3Eu);    /* MON..FRI */
	cr_assert_str_eq(fn->queue, "jobs_2");
	cr_assert_eq(fn->batch_size, 10000);
	cr_assert_eq(fn->queue_concurrency, 7);
	cr_assert_eq(fn->max_receive_count, 1);
	cr_assert_eq(fn->visibility_timeout_usec, SEC(45));
	cr_assert_eq(fn->queue_poll_usec, SEC(0.2));
	fn_config_free(&cfg);
}

Test(fn_config, durations_are_exact_microseconds)
{
	struct fn_runner_config cfg;
	load_ok("[runner]\ninit_timeout = 0.3\nshutdown_grace = 3.\n"
		"[function.f]\ntimeout = 0.0000015\nidle_timeout = 1000000000\n"
		"queue_timeout = 0.000001\n",
		&cfg);
	cr_assert_eq(cfg.init_timeout_usec, 300000);
	cr_assert_eq(cfg.shutdown_grace_usec, 3000000);
	cr_assert_eq(cfg.functions[0].timeout_usec, 2); /* rounded to the nearest */
	cr_assert_eq(cfg.functions[0].idle_timeout_usec, 1000000000LL * 1000000);
	cr_assert_eq(cfg.functions[0].queue_timeout_usec, 1);
	fn_config_free(&cfg);
}

Test(fn_config, booleans)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off", "0" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		char text[128];
		struct fn_runner_config cfg;
		snprintf(text, sizeof(text), "[runner]\nlog_reports = %s\n[function.f]\n"
					     "schedule = @daily\nhttp = %s\n",
			 no[i], yes[i]);
		load_ok(text, &cfg);
		cr_assert_not(cfg.log_reports, "log_reports = %s", no[i]);
		cr_assert(cfg.functions[0].http, "http = %s", yes[i]);
		fn_config_free(&cfg);
	}
}

Test(fn_config, comments_blanks_and_indentation)
{
	struct fn_runner_config cfg;
	load_ok("\xEF\xBB\xBF# corral-fn\n"
		"  [runner]   ; the daemon\n"
		"\tlisten_port=9001 # inline\n"
		"   max_concurrency   =   3   \n"
		"[function.f]\n"
		"  schedule = 0 2 * * * ; nightly\n",
		&cfg);
	cr_assert_eq(cfg.listen_port, 9001);
	cr_assert_eq(cfg.max_concurrency, 3);
	cr_assert_str_eq(cfg.functions[0].schedule, "0 2 * * *");
	fn_config_free(&cfg);
}

/* ---- derived defaults -------------------------------------------------------------------- */

Test(fn_config, queue_database_url_defaults_to_database_url)
{
	struct fn_runner_config cfg;
	load_ok("[function.f]\nqueue = jobs\n[runner]\ndatabase_url = postgresql://a@h/db\n", &cfg);
	cr_assert_str_eq(cfg.queue_database_url, "postgresql://a@h/db");
	cr_assert_neq(cfg.queue_database_url, cfg.database_url); /* its own copy */
	/* A function's own database_url is not filled in: NULL means the runner's. */
	cr_assert_null(cfg.functions[0].database_url);
	fn_config_free(&cfg);

	load_ok("[runner]\ndatabase_url = dbname=a\nqueue_database_url = dbname=q\n", &cfg);
	cr_assert_str_eq(cfg.database_url, "dbname=a");
	cr_assert_str_eq(cfg.queue_database_url, "dbname=q");
	fn_config_free(&cfg);
}

/* functions_dir may come after the functions: so is resolved once the file is read. */
Test(fn_config, so_defaults_to_functions_dir)
{
	cr_assert_eq(mkdir("fns", 0755), 0);
	touch("fns/f.so");
	touch("fns/g.so");
	struct fn_runner_config cfg;
	load_ok("[function.f]\n[function.g]\nso = /dev/null\n[runner]\nfunctions_dir = fns\n",
		&cfg);
	cr_assert_str_eq(cfg.functions[0].so_path, "fns/f.so");
	cr_assert_str_eq(cfg.functions[1].so_path, "/dev/null");
	fn_config_free(&cfg);
}

Test(fn_config, so_must_exist)
{
	expect_error("[function.nope]\n",
		     CONF ":1: so: cannot read \"bin/functions/nope.so\" (functions_dir/NAME.so, "
			  "the default): No such file or directory");
	expect_error("[function.f]\nhttp = yes\nso = lib/f.so\n",
		     CONF ":3: so: cannot read \"lib/f.so\": No such file or directory");
	expect_error("[runner]\nfunctions_dir = elsewhere\n[function.f]\n",
		     CONF ":3: so: cannot read \"elsewhere/f.so\"");
}

Test(fn_config, find)
{
	struct fn_runner_config cfg;
	load_ok("[function.f]\n[function.g]\n", &cfg);
	cr_assert_eq(fn_config_find(&cfg, "f"), &cfg.functions[0]);
	cr_assert_eq(fn_config_find(&cfg, "g"), &cfg.functions[1]);
	cr_assert_null(fn_config_find(&cfg, "F")); /* names are case-sensitive */
	cr_assert_null(fn_config_find(&cfg, "ff"));
	cr_assert_null(fn_config_find(&cfg, ""));
	cr_assert_null(fn_config_find(&cfg, NULL));
	fn_config_free(&cfg);
}

/* ---- sections and names -------------------------------------------------------------- */

Test(fn_config, unknown_section_or_key)
{
	expect_error("[runner]\n[functions.f]\n",
		     CONF ":2: [functions.f]: unknown section (corral-fn knows [runner] and "
			  "[function.NAME])");
	expect_error("[Runner]\n", CONF ":1: [Runner]: unknown section");
	expect_error("[corral]\nworkers = 1\n", CONF ":1: [corral]: unknown section");
	expect_error("[runner\n", CONF ":1: section header without a closing ']'");
	expect_error("[runner] x\n", CONF ":1: unexpected text after ']'");
	expect_error("[runner]\nlisten_prot = 1\n",
		     CONF ":2: listen_prot: unknown key in [runner]; did you mean listen_port?");
	expect_error("[function.f]\nreserved_concurency = 5\n",
		     CONF ":2: reserved_concurency: unknown key in [function.f]; did you mean "
			  "reserved_concurrency?");
	expect_error("[runner]\ntimeout = 3\n", CONF ":2: timeout: unknown key in [runner]");
	expect_error("[function.f]\nlisten_port = 1\n",
		     CONF ":2: listen_port: unknown key in [function.f]");
	expect_error("listen_port = 1\n[runner]\n",
		     CONF ":1: listen_port: comes before any section; put it under [runner] or "
			  "[function.NAME]");
}

Test(fn_config, bad_function_name)
{
	static const char *const bad[] = {
		"[function.]", "[function.a b]", "[function.a.b]", "[function. f]",
		"[function.f/g]", "[function.caf\xC3\xA9]",
		"[function.a234567890123456789012345678901234567890123456789012345678901234]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128], want[256];
		snprintf(text, sizeof(text), "[runner]\n%s\n", bad[i]);
		snprintf(want, sizeof(want),
			 CONF ":2: %s: a function name is 1 to 63 letters, digits, '_' or '-'",
			 bad[i]);
		expect_error(text, want);
	}
}

/* 63 characters: longer than inih's section buffer, which the loader does not rely on. */
Test(fn_config, longest_function_name)
{
	const char *name = "a23456789012345678901234567890123456789012345678901234567890123";
	cr_assert_eq(strlen(name), 63);
	make_so(name);
	char text[256];
	snprintf(text, sizeof(text), "[function.%s]\ntimeout = 7\n[function.B_-9]\n", name);
	make_so("B_-9");
	struct fn_runner_config cfg;
	load_ok(text, &cfg);
	const struct fn_function_config *fn = fn_config_find(&cfg, name);
	cr_assert_not_null(fn);
	cr_assert_eq(fn->timeout_usec, SEC(7));
	cr_assert_not_null(fn_config_find(&cfg, "B_-9"));
	fn_config_free(&cfg);
}

Test(fn_config, duplicates)
{
	expect_error("[function.f]\ntimeout = 1\n\n[function.f]\n",
		     CONF ":4: [function.f]: function defined twice (first on line 1)");
	expect_error("[function.f]\ntimeout = 1\ntimeout = 2\n",
		     CONF ":3: timeout: set twice (first on line 2)");
	expect_error("[runner]\nlisten_port = 1\n[function.f]\n[runner]\nlisten_port = 2\n",
		     CONF ":5: listen_port: set twice (first on line 2)");
	/* The same key in two functions is two settings. */
	struct fn_runner_config cfg;
	load_ok("[function.f]\ntimeout = 1\n[function.g]\ntimeout = 2\n", &cfg);
	cr_assert_eq(cfg.functions[0].timeout_usec, SEC(1));
	cr_assert_eq(cfg.functions[1].timeout_usec, SEC(2));
	fn_config_free(&cfg);
}

Test(fn_config, file_level_errors)
{
	struct fn_runner_config cfg;
	char err[512];
	cr_assert_not(fn_config_load("missing.ini", &cfg, err, sizeof(err)));
	cr_assert_str_eq(err, "missing.ini: cannot open: No such file or directory");
	cr_assert_null(cfg.listen_addr);

	expect_error("[runner]\nlisten_port 9000\n",
		     CONF ":2: expected \"[section]\" or \"key = value\"");

	static const char nul[] = "[runner]\nlisten_port = 1\0 0\n";
	FILE *f = fopen(CONF, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(nul, 1, sizeof(nul) - 1, f), sizeof(nul) - 1);
	fclose(f);
	cr_assert_not(fn_config_load(CONF, &cfg, err, sizeof(err)));
	cr_assert_str_eq(err, CONF ":2: line contains a NUL byte");

	/* Longer than inih's buffer: refused, not split into two lines. */
	char line[300];
	memset(line, 'x', sizeof(line));
	memcpy(line, "[runner]\nlog_level = ", 21);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	char want[128];
	snprintf(want, sizeof(want), CONF ":2: line is %zu characters long; inih reads at most 199",
		 sizeof(line) - 2 - strlen("[runner]\n"));
	expect_error(line, want);
}

/* The whole message, as a person would read it. */
Test(fn_config, message_format)
{
	struct fn_runner_config cfg;
	char err[512];
	cr_assert_not(load("[runner]\n\n\nlisten_port = http\n", &cfg, err, sizeof(err)));
	cr_assert_str_eq(err, CONF ":4: listen_port: must be an integer between 1 and 65535, "
				  "got \"http\"");
	/* A short buffer gets a cut, terminated message. */
	char small[16];
	cr_assert_not(load("[runner]\nlisten_port = 0\n", &cfg, small, sizeof(small)));
	cr_assert_str_eq(small, "corral-fn.ini:2");
	cr_assert_not(load("[runner]\nlisten_port = 0\n", &cfg, NULL, 0));
}

/* ---- bad values -------------------------------------------------------------------------- */

Test(fn_config, bad_runner_values)
{
	static const struct {
		const char *line, *want;
	} cases[] = {
		{ "listen_addr = localhost",
		  "listen_addr: must be an IPv4 or IPv6 address, got \"localhost\"" },
		{ "listen_addr =", "listen_addr: must be an IPv4 or IPv6 address" },
		{ "listen_port = 0",
		  "listen_port: must be an integer between 1 and 65535, got \"0\"" },
		{ "listen_port = 65536", "listen_port: must be an integer between 1 and 65535" },
		{ "listen_port = -1", "listen_port: must be an integer" },
		{ "listen_port = 9000 x", "listen_port: must be an integer" },
		{ "database_url =",
		  "database_url: must not be empty (leave the key out for none)" },
		{ "database_url = host=a port", "database_url: libpq cannot parse it" },
		{ "database_url = postgresql://u:pw@[::1/db",
		  "database_url: libpq cannot parse it" },
		{ "queue_database_url = x y", "queue_database_url: libpq cannot parse it" },
		{ "queue_database_url =", "queue_database_url: must not be empty" },
		{ "functions_dir =", "functions_dir: must not be empty" },
		{ "max_concurrency = 0",
		  "max_concurrency: must be an integer between 1 and 100000, got \"0\"" },
		{ "max_concurrency = 100001", "max_concurrency: must be an integer between 1 and" },
		{ "init_timeout = 0",
		  "init_timeout: must be a number of seconds greater than 0 and at most 1000000000 "
		  "(e.g. 3 or 0.5), got \"0\"" },
		{ "init_timeout = 1e3",
		  "init_timeout: must be a number of seconds greater than 0" },
		{ "shutdown_grace = -1",
		  "shutdown_grace: must be a number of seconds between 0 and 1000000000 (e.g. 3 or "
		  "0.5), got \"-1\"" },
		{ "shutdown_grace = 2s", "shutdown_grace: must be a number of seconds between" },
		{ "shutdown_grace = 1000000000.5", "shutdown_grace: must be a number of seconds" },
		{ "log_level = verbose",
		  "log_level: must be one of debug, info, warn, error, got \"verbose\"" },
		{ "log_reports = maybe",
		  "log_reports: must be yes or no (or true/false, on/off, 1/0), got \"maybe\"" },
		{ "log_reports =", "log_reports: must be yes or no" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_runner_error(cases[i].line, cases[i].want);
}

/* A connection string may hold a password: it is never repeated in a message. */
Test(fn_config, database_url_is_not_echoed)
{
	struct fn_runner_config cfg;
	char err[512];
	cr_assert_not(load("[runner]\ndatabase_url = password=hunter2 oops\n", &cfg, err,
			   sizeof(err)));
	cr_assert_null(strstr(err, "hunter2"), "%s", err);
	cr_assert_not(load("[function.f]\ndatabase_url = postgresql://u:hunter2@[::1/db\n", &cfg,
			   err, sizeof(err)));
	cr_assert_null(strstr(err, "hunter2"), "%s", err);
}

Test(fn_config, bad_function_values)
{
	char long_queue[100];
	memset(long_queue, 'q', sizeof(long_queue));
	strcpy(long_queue + 81, ""); /* 81 characters, one too many */
	char long_queue_line[128];
	snprintf(long_queue_line, sizeof(long_queue_line), "queue = %s", long_queue);

	static const struct {
		const char *line, *want;
	} cases[] = {
		{ "so =", "so: must not be empty (leave the key out for functions_dir/NAME.so)" },
		{ "database_url = 'unterminated", "database_url: libpq cannot parse it" },
		{ "database_url =", "database_url: must not be empty" },
		{ "timeout = 0", "timeout: must be a number of seconds greater than 0" },
		{ "timeout = 0.0000004", "timeout: must be a number of seconds greater than 0" },
		{ "timeout = abc",
		  "timeout: must be a number of seconds greater than 0 and at most 1000000000 "
		  "(e.g. 3 or 0.5), got \"abc\"" },
		{ "timeout = nan", "timeout: must be a number of seconds" },
		{ "memory_mb = 1048577",
		  "memory_mb: must be an integer between 0 and 1048576, got \"1048577\"" },
		{ "memory_mb = -1", "memory_mb: must be an integer between 0 and 1048576" },
		{ "memory_mb = 128MB", "memory_mb: must be an integer" },
		{ "reserved_concurrency = 100001",
		  "reserved_concurrency: must be an integer between 0 and 100000" },
		{ "provisioned = x", "provisioned: must be an integer between 0 and 100000" },
		{ "idle_timeout = 0", "idle_timeout: must be a number of seconds greater than 0" },
		{ "on_limit = drop", "on_limit: must be queue or throttle, got \"drop\"" },
		{ "queue_depth = 0",
		  "queue_depth: must be an integer between 1 and 1000000, got \"0\"" },
		{ "queue_timeout = 0",
		  "queue_timeout: must be a number of seconds greater than 0" },
		{ "http = maybe",
		  "http: must be yes or no (or true/false, on/off, 1/0), got \"maybe\"" },
		{ "schedule = 0 24 * * *", "schedule: hour: 24 is out of range 0-23" },
		{ "schedule = 0 0 30 2 *", "schedule: never fires" },
		{ "schedule =",
		  "schedule: expected 5 fields (minute hour day-of-month month day-of-week), "
		  "got 0" },
		{ "schedule = 0 2 * * * *", "schedule: expected 5 fields" },
		{ "queue =",
		  "queue: must be a queue name of 1 to 80 letters, digits, '_' or '-', got \"\"" },
		{ "queue = my jobs", "queue: must be a queue name" },
		{ "queue = jobs'", "queue: must be a queue name" },
		{ "batch_size = 0",
		  "batch_size: must be an integer between 1 and 10000, got \"0\"" },
		{ "batch_size = 10001", "batch_size: must be an integer between 1 and 10000" },
		{ "queue_concurrency = 0",
		  "queue_concurrency: must be an integer between 1 and 1000, got \"0\"" },
		{ "max_receive_count = 0",
		  "max_receive_count: must be an integer between 1 and 1000, got \"0\"" },
		{ "visibility_timeout = 0",
		  "visibility_timeout: must be a number of seconds greater than 0" },
		{ "queue_poll = 0", "queue_poll: must be a number of seconds greater than 0" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_function_error(cases[i].line, cases[i].want);
	expect_function_error(long_queue_line, "queue: must be a queue name of 1 to 80");
	/* 80 is fine */
	long_queue[80] = '\0';
	char text[256];
	snprintf(text, sizeof(text),
		 "[runner]\ndatabase_url = dbname=x\n[function.f]\nqueue = %s\n", long_queue);
	struct fn_runner_config cfg;
	load_ok(text, &cfg);
	cr_assert_str_eq(cfg.functions[0].queue, long_queue);
	fn_config_free(&cfg);
}

/* ---- rules across keys ------------------------------------------------------------------- */

Test(fn_config, provisioned_within_reserved_concurrency)
{
	expect_error("[function.f]\nreserved_concurrency = 2\nprovisioned = 3\n",
		     CONF ":3: provisioned: must be at most reserved_concurrency (2), got 3");
	expect_error("[function.f]\nprovisioned = 3\nreserved_concurrency = 2\n",
		     CONF ":2: provisioned: must be at most reserved_concurrency (2), got 3");
	/* Without reserved_concurrency only max_concurrency bounds it. */
	struct fn_runner_config cfg;
	load_ok("[function.f]\nprovisioned = 3\n[function.g]\nreserved_concurrency = 3\n"
		"provisioned = 3\n",
		&cfg);
	cr_assert_eq(cfg.functions[0].provisioned, 3);
	cr_assert_eq(cfg.functions[0].reserved_concurrency, 0);
	cr_assert_eq(cfg.functions[1].provisioned, 3);
	fn_config_free(&cfg);
}

Test(fn_config, provisioned_within_max_concurrency)
{
	expect_error("[runner]\nmax_concurrency = 4\n[function.f]\nprovisioned = 3\n"
		     "[function.g]\nprovisioned = 2\n",
		     CONF ":6: provisioned: provisioned environments of all functions add up to "
			  "5, more than max_concurrency (4)");
	expect_error("[function.f]\nprovisioned = 1001\n",
		     CONF ":2: provisioned: provisioned environments of all functions add up to "
			  "1001, more than max_concurrency (1000) (the default)");
	struct fn_runner_config cfg;
	load_ok("[runner]\nmax_concurrency = 5\n[function.f]\nprovisioned = 3\n"
		"[function.g]\nprovisioned = 2\n",
		&cfg);
	fn_config_free(&cfg);
}

Test(fn_config, a_function_needs_a_trigger)
{
	expect_error("[function.f]\n\nhttp = no\n",
		     CONF ":3: http: is no, and neither schedule nor queue is set");
	struct fn_runner_config cfg;
	load_ok("[runner]\ndatabase_url = dbname=x\n"
		"[function.f]\nhttp = no\nschedule = @hourly\n[function.g]\nhttp = 0\nqueue = q\n",
		&cfg);
	cr_assert_not(cfg.functions[0].http);
	cr_assert(cfg.functions[0].has_schedule);
	cr_assert_not(cfg.functions[1].http);
	fn_config_free(&cfg);
}

Test(fn_config, a_queue_needs_a_database)
{
	expect_error("[function.f]\nqueue = jobs\n",
		     CONF ":2: queue: needs the queue tables' database: set queue_database_url or "
			  "database_url in [runner]");
	struct fn_runner_config cfg;
	load_ok("[runner]\nqueue_database_url = dbname=q\n[function.f]\nqueue = jobs\n", &cfg);
	cr_assert_null(cfg.database_url);
	fn_config_free(&cfg);
}

Test(fn_config, visibility_timeout_covers_the_timeout)
{
	expect_error("[runner]\ndatabase_url = dbname=x\n[function.f]\ntimeout = 60\n"
		     "queue = jobs\n",
		     CONF ":5: queue: visibility_timeout (30 s) must be at least the function's "
			  "timeout (60 s)");
	expect_error("[runner]\ndatabase_url = dbname=x\n[function.f]\nqueue = jobs\n"
		     "visibility_timeout = 2.5\n",
		     CONF ":5: visibility_timeout: visibility_timeout (2.5 s) must be at least the "
			  "function's timeout (3 s)");
	/* Without a queue there are no messages to reappear. */
	struct fn_runner_config cfg;
	load_ok("[function.f]\ntimeout = 60\nvisibility_timeout = 1\n", &cfg);
	fn_config_free(&cfg);
	load_ok("[runner]\ndatabase_url = dbname=x\n[function.f]\nqueue = jobs\ntimeout = 30\n",
		&cfg);
	fn_config_free(&cfg);
}

/* ---- the shipped example ------------------------------------------------------------------ */

static char *read_whole(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
	static char text[64 * 1024];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	cr_assert(feof(f), "%s is larger than the test's buffer", path);
	fclose(f);
	text[n] = '\0';
	return text;
}

Test(fn_config, the_reference_file_loads)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/conf/corral-fn.ini", orig_dir);
	write_file(CONF, read_whole(path));
	make_so("url_shortener");
	make_so("upload_meta");
	make_so("queue_worker");
	make_so("nightly_report");
	struct fn_runner_config cfg;
	char err[512] = "";
	cr_assert(fn_config_load(CONF, &cfg, err, sizeof(err)), "%s", err);

	cr_assert_str_eq(cfg.listen_addr, "127.0.0.1");
	cr_assert_eq(cfg.listen_port, 9000);
	/* corral's defaults from conf/corral.ini: 127.0.0.1:6432, database and user bench */
	cr_assert_str_eq(cfg.database_url, "postgresql://bench:secret@127.0.0.1:6432/bench");
	cr_assert_str_eq(cfg.queue_database_url, cfg.database_url);
	cr_assert_eq(cfg.n_functions, 4);

	const struct fn_function_config *url = fn_config_find(&cfg, "url_shortener");
	cr_assert_not_null(url);
	cr_assert(url->http);
	cr_assert_str_eq(url->so_path, "bin/functions/url_shortener.so");

	const struct fn_function_config *upload = fn_config_find(&cfg, "upload_meta");
	cr_assert_not_null(upload);
	cr_assert_eq(upload->on_limit, FN_ON_LIMIT_THROTTLE);
	cr_assert_str_eq(upload->so_path, "bin/functions/upload_meta.so");

	const struct fn_function_config *worker = fn_config_find(&cfg, "queue_worker");
	cr_assert_not_null(worker);
	cr_assert_str_eq(worker->queue, "jobs");
	cr_assert_not(worker->http);

	const struct fn_function_config *report = fn_config_find(&cfg, "nightly_report");
	cr_assert_not_null(report);
	cr_assert(report->has_schedule);
	cr_assert_str_eq(report->schedule, "0 2 * * *");
	cr_assert_eq(report->cron.minutes, 1);
	cr_assert_eq(report->cron.hours, 1u << 2);
	cr_assert_not_null(report->database_url);
	fn_config_free(&cfg);
}

/* Every error of the file, one line each, in the order of the file. */
Test(fn_config, every_error_is_reported)
{
	struct fn_runner_config cfg;
	char err[2048] = "";
	bool ok = load("[runner]\nlisten_port = x\nmax_concurency = 3\n"
		       "[function.bad name]\ntimeout = 1\n"
		       "[function.f]\ntimeout = -1\non_limit = wait\n",
		       &cfg, err, sizeof(err));
	cr_assert_not(ok);
	cr_expect_str_eq(err,
			 CONF ":2: listen_port: must be an integer between 1 and 65535, got \"x\"\n"
			 CONF ":3: max_concurency: unknown key in [runner]; did you mean "
			      "max_concurrency?\n"
			 CONF ":4: [function.bad name]: a function name is 1 to 63 letters, "
			      "digits, '_' or '-'\n"
			 CONF ":7: timeout: must be a number of seconds greater than 0 and at most "
			      "1000000000 (e.g. 3 or 0.5), got \"-1\"\n"
			 CONF ":8: on_limit: must be queue or throttle, got \"wait\"");
	fn_config_free(&cfg);
}

/* ---- issue 11: env.NAME, the HTTP listener's limits, auth_token_file ------------------------ */

Test(fn_config, env_variables_of_a_function)
{
	struct fn_runner_config cfg;
	load_ok("[function.f]\nenv.API_URL = https://example.com/x?a=1\nenv._x9 = \n"
		"[function.g]\n",
		&cfg);
	cr_assert_eq(cfg.functions[0].n_env, 2);
	cr_assert_str_eq(cfg.functions[0].env[0], "API_URL=https://example.com/x?a=1");
	cr_assert_str_eq(cfg.functions[0].env[1], "_x9=");
	cr_assert_eq(cfg.functions[1].n_env, 0);
	fn_config_wipe(&cfg); /* what an environment does; the same as free otherwise */
	cr_assert_null(cfg.functions);
}

Test(fn_config, bad_env_variables)
{
	expect_function_error("env. = x", "env.: an environment variable's name is letters");
	expect_function_error("env.9LIVES = x", "env.9LIVES: an environment variable's name");
	expect_function_error("env.A-B = x", "env.A-B: an environment variable's name");
	expect_function_error("env.DATABASE_URL = x", "env.DATABASE_URL: is set by corral-fn");
	expect_function_error("env.CORRAL_FN_NAME = x", "env.CORRAL_FN_NAME: is set by corral-fn");
	expect_error("[function.f]\nenv.A = 1\nenv.A = 2\n", CONF ":3: env.A: set twice");
	expect_runner_error("env.A = 1", "env.A: unknown key in [runner]");
}

Test(fn_config, http_listener_limits)
{
	struct fn_runner_config cfg;
	load_ok("[function.f]\n", &cfg);
	cr_assert_eq(cfg.request_timeout_usec, SEC(10));
	cr_assert_eq(cfg.max_connections, 10000);
	cr_assert_null(cfg.auth_token);
	cr_assert(cfg.exec_environments);
	fn_config_free(&cfg);
	load_ok("[runner]\nexec_environments = no\n[function.f]\n", &cfg);
	cr_assert_not(cfg.exec_environments);
	fn_config_free(&cfg);
	load_ok("[runner]\nrequest_timeout = 0.5\nmax_connections = 3\n[function.f]\n", &cfg);
	cr_assert_eq(cfg.request_timeout_usec, SEC(0.5));
	cr_assert_eq(cfg.max_connections, 3);
	fn_config_free(&cfg);
	expect_runner_error("request_timeout = 0", "request_timeout: ");
	expect_runner_error("max_connections = 0", "max_connections: ");
}

Test(fn_config, auth_token_file)
{
	write_file("token", "abc.DEF-123_~ \r\nsecond line\n");
	struct fn_runner_config cfg;
	load_ok("[runner]\nauth_token_file = token\n[function.f]\n", &cfg);
	cr_assert_str_eq(cfg.auth_token, "abc.DEF-123_~");
	fn_config_free(&cfg);
	expect_runner_error("auth_token_file = missing", "auth_token_file: cannot read \"missing\"");
	write_file("empty", "\n");
	expect_runner_error("auth_token_file = empty", "auth_token_file: \"empty\": the first line");
	write_file("blank", "two words\n");
	expect_runner_error("auth_token_file = blank", "auth_token_file: \"blank\": the first line");
}
