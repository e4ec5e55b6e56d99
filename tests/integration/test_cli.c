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
