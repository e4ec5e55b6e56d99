/*
 * The corral command line: -t (check the config and exit), errors that name file,
 * line and key, --help, --version, and SIGTERM ending the process with status 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(cli, H_SUITE);

/* The configuration contract, comments included, with every [corral] key it lists. */
#define GOOD_INI                                                                                        \
	"[corral]\n"                                                                                    \
	"listen_addr = 127.0.0.1\n"                                                                     \
	"listen_port = %d\n"                                                                            \
	"workers = 1\n"                                                                                 \
	"auth_type = scram-sha-256    ; trust | md5 | scram-sha-256\n"                                  \
	"auth_file = %s ; PgBouncer userlist format: \"user\" \"plain | md5... | SCRAM-SHA-256$...\"\n" \
	"pool_mode = session\n"                                                                         \
	"default_pool_size = 20\n"                                                                      \
	"max_client_conn = 10000\n"                                                                     \
	"query_wait_timeout = 120\n"                                                                    \
	"server_reset_query = DISCARD ALL\n"                                                            \
	"server_connect_timeout = 15\n"                                                                 \
	"server_idle_timeout = 600\n"                                                                   \
	"server_lifetime = 3600\n"                                                                      \
	"log_level = info\n"                                                                            \
	"[databases]\n"                                                                                 \
	"bench = host=127.0.0.1 port=%d dbname=bench user=bench password=secret pool_size=10\n"

/*
 * corral -t on a config (text, written to DIR/bad.ini) that is wrong at line and key:
 * a non-zero exit, and stderr names "PATH:LINE: KEY:".  what names the case.
 */
static void expect_config_error(const char *what, const char *text, int line, const char *key)
{
	char *bad = h_path("bad.ini"), *want;
	struct h_cmd r;

	h_write_file(bad, text);
	r = h_run(10, "%s -t -c %s", H.corral_bin, bad);
	want = h_printf("%s:%d: %s:", bad, line, key);
	cr_expect(r.status > 0 && r.status < 128, "%s: status %d, want a non-zero exit", what,
		  r.status);
	cr_expect(strstr(r.err, want) != NULL, "stderr should contain \"%s ...\": [%s]", want,
		  r.err);
	h_cmd_free(&r);
	free(want);
	free(bad);
}

Test(cli, config_check_mode)
{
	char *good = h_path("good.ini"), *users = h_path("userlist.txt");
	char *text = h_printf(GOOD_INI, h_free_port(), users, H.pgport);
	struct h_cmd r;

	h_write_file(users, "\"bench\" \"secret\"\n");
	h_write_file(good, text);
	free(text);
	r = h_run(10, "%s -t -c %s", H.corral_bin, good);
	cr_expect_eq(r.status, 0, "corral -t -c good.ini: status %d\nstdout: %s\nstderr: %s",
		     r.status, r.out, r.err);
	h_cmd_free(&r);

	/* An unknown key on line 3. */
	text = h_printf("[corral]\nlisten_port = %d\nbogus_key = 1\nauth_file = %s\n[databases]\n"
			"bench = host=127.0.0.1 port=%d dbname=bench\n",
			h_free_port(), users, H.pgport);
	expect_config_error("corral -t -c bad.ini", text, 3, "bogus_key");
	free(text);

	/* A bad value is named the same way (line 2 here). */
	text = h_printf("[corral]\nlisten_port = not-a-number\nauth_file = %s\n", users);
	expect_config_error("bad listen_port", text, 2, "listen_port");
	free(text);

	/* Every error is reported, each on a line of its own. */
	char *bad = h_path("bad.ini");
	h_write_file(bad, "[corral]\nlisten_prot = 1\nlogfile = x.log\nworkers = 0\n");
	r = h_run(10, "%s -t -c %s", H.corral_bin, bad);
	char *want =
		h_printf("corral: %s:2: listen_prot: unknown key in [corral]; did you mean "
			 "listen_port?\n"
			 "corral: %s:3: logfile: not supported by corral; corral logs to stderr "
			 "only (redirect it, or let systemd's journal keep it)\n"
			 "corral: %s:4: workers: must be an integer between 1 and 256, got "
			 "\"0\"\n",
			 bad, bad, bad);
	cr_expect_eq(r.status, 1, "three errors: status %d", r.status);
	cr_expect_str_eq(r.err, want);
	h_cmd_free(&r);
	free(want);

	/* An auth_file that cannot be opened: where it was set, and that a relative path is
	 * taken from the working directory (here DIR, not where corral.ini is). */
	h_write_file(bad, "[corral]\nlisten_port = 1\nauth_file = no-such-userlist.txt\n");
	r = h_run(10, "cd / && %s -t -c %s", H.corral_bin, bad);
	want = h_printf("corral: %s:3: auth_file: cannot open \"no-such-userlist.txt\" (relative "
			"to the working directory /): No such file or directory\n",
			bad);
	cr_expect_eq(r.status, 1, "missing auth_file: status %d", r.status);
	cr_expect_str_eq(r.err, want);
	h_cmd_free(&r);
	free(want);
	free(bad);

	/* A file that does not exist. */
	r = h_run(10, "%s -t -c %s/nonexistent.ini", H.corral_bin, H.dir);
	cr_expect(r.status > 0 && r.status < 128, "missing config: status %d", r.status);
	cr_expect(strstr(r.err, "nonexistent.ini") != NULL, "stderr should name the file: [%s]",
		  r.err);
	h_cmd_free(&r);
	free(good);
	free(users);
}

Test(cli, help_and_version)
{
	struct h_cmd r = h_run(10, "%s --help", H.corral_bin);

	cr_expect_eq(r.status, 0, "--help: status %d, stderr %s", r.status, r.err);
	cr_expect(strstr(r.out, "-c") != NULL || strstr(r.err, "-c") != NULL,
		  "--help does not mention -c:\n%s%s", r.out, r.err);
	h_cmd_free(&r);

	r = h_run(10, "%s --version", H.corral_bin);
	cr_expect_eq(r.status, 0, "--version: status %d, stderr %s", r.status, r.err);
	cr_expect(strstr(r.out, "corral") != NULL, "--version output: [%s]", r.out);
	h_cmd_free(&r);
}

Test(cli, sigterm_exits_zero)
{
	/* Idle: no client ever connected. */
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	PGconn *conn;
	PGresult *r;

	h_corral_stop(c);

	/* With pooled server connections left by a client that has gone. */
	c = h_corral_start("", H_BENCH_DB, NULL);
	h_expect_new_client(c, NULL, "select 1", "1");
	h_corral_stop(c);

	/* With a client still connected: corral exits, and the client's connection ends. */
	c = h_corral_start("", H_BENCH_DB, NULL);
	conn = h_connect_bench(c);
	h_expect_value(conn, "select 1", "1");
	h_corral_stop(c);
	r = h_exec_t(conn, "select 2", 10);
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "a query after corral exited: %s",
		     PQresStatus(PQresultStatus(r)));
	PQclear(r);
	PQfinish(conn);
}

/*
 * "corral -c INI" for a corral expected to refuse the port: it exits 1 at once, and
 * stderr holds want.  Then first is still serving.
 */
static void expect_port_refused(struct h_corral *first, const char *ini, const char *want)
{
	struct h_cmd r = h_run(10, "%s -c %s", H.corral_bin, ini);

	cr_expect_eq(r.status, 1, "second corral on port %d: status %d, want 1\nstderr: %s",
		     first->port, r.status, r.err);
	cr_expect(strstr(r.err, want) != NULL, "stderr should contain \"%s\": [%s]", want, r.err);
	h_cmd_free(&r);
	h_expect_new_client(first, NULL, "select 'first'", "first");
}

/* A copy of c's configuration with its first "find" replaced by "by" (written to DIR/NAME). */
static char *copy_ini(const struct h_corral *c, const char *name, const char *find, const char *by)
{
	char *path = h_path(name), *text = h_read_file(c->ini, NULL), *copy;

	cr_assert_not_null(text, "cannot read %s", c->ini);
	char *at = strstr(text, find);
	cr_assert_not_null(at, "no \"%s\" in %s", find, c->ini);
	copy = h_printf("%.*s%s%s", (int)(at - text), text, by, at + strlen(find));
	h_write_file(path, copy);
	free(copy);
	free(text);
	return path;
}

/*
 * Workers of one corral share its port (SO_REUSEPORT); another corral on the same
 * address and port is refused, unless both say so_reuseport = yes.
 */
Test(cli, second_corral_on_the_same_port)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	char *want = h_printf("corral: could not listen on 127.0.0.1:%d: address in use "
			      "(another corral?)",
			      c->port);
	char *same = copy_ini(c, "same.ini", "[corral]\n", "[corral]\n");
	char *shared = copy_ini(c, "shared.ini", "[corral]\n", "[corral]\nso_reuseport = yes\n");

	expect_port_refused(c, same, want);
	/* One that would share is refused too: the running one did not agree. */
	char *want_shared = h_printf("corral: could not listen on 127.0.0.1:%d: address in use "
				     "by a corral without so_reuseport = yes",
				     c->port);
	expect_port_refused(c, shared, want_shared);
	h_corral_stop(c);

	/* Both with so_reuseport = yes: both start, and both serve. */
	c = h_corral_start("so_reuseport = yes\n", H_BENCH_DB, NULL);
	char *second = copy_ini(c, "second.ini", "[corral]\n", "[corral]\n");
	char *log = h_path("second.log");
	const char *argv[] = {H.corral_bin, "-c", second, NULL};
	/* static: h_fini reads them through the pointers h_track_daemon keeps. */
	static pid_t pid;
	static bool running;
	int status;

	pid = h_spawn(&(struct h_spawn){.argv = argv, .out = log, .err = log});
	running = true;
	h_track_daemon(&pid, &running);
	cr_expect(h_wait_file(log, "event=listening", 10), "the second corral did not start:\n%s",
		  h_log_tail(log));
	cr_expect(h_reap(pid, &running, &status), "the second corral exited:\n%s", h_log_tail(log));
	/* Without so_reuseport a third one is refused by the two. */
	free(same);
	same = copy_ini(c, "same.ini", "so_reuseport = yes\n", "so_reuseport = no\n");
	free(want);
	want = h_printf("could not listen on 127.0.0.1:%d: address in use (another corral?)",
			c->port);
	struct h_cmd r = h_run(10, "%s -c %s", H.corral_bin, same);
	cr_expect_eq(r.status, 1, "a third corral without so_reuseport: status %d, stderr %s",
		     r.status, r.err);
	cr_expect(strstr(r.err, want) != NULL, "stderr should contain \"%s\": [%s]", want, r.err);
	h_cmd_free(&r);
	for (int i = 0; i < 4; i++)
		h_expect_new_client(c, NULL, "select 'both'", "both");
	h_stop_process("second corral", pid, &running, log);
	h_corral_stop(c);
	free(want);
	free(want_shared);
	free(same);
	free(shared);
	free(second);
	free(log);
}
