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

Test(cli, config_check_mode)
{
	char *good = h_path("good.ini"), *bad = h_path("bad.ini"), *users = h_path("userlist.txt");
	char *text = h_printf(GOOD_INI, h_free_port(), users, H.pgport), *want;
	struct h_cmd r;

	h_write_file(users, "\"bench\" \"secret\"\n");
	h_write_file(good, text);
	free(text);
	r = h_run(10, "%s -t -c %s", H.corral_bin, good);
	cr_expect_eq(r.status, 0, "corral -t -c good.ini: status %d\nstdout: %s\nstderr: %s", r.status, r.out,
		     r.err);
	h_cmd_free(&r);

	/* An unknown key on line 3. */
	text = h_printf("[corral]\nlisten_port = %d\nbogus_key = 1\nauth_file = %s\n[databases]\n"
			"bench = host=127.0.0.1 port=%d dbname=bench\n",
			h_free_port(), users, H.pgport);
	h_write_file(bad, text);
	free(text);
	r = h_run(10, "%s -t -c %s", H.corral_bin, bad);
	want = h_printf("%s:3: bogus_key:", bad);
	cr_expect(r.status > 0 && r.status < 128, "corral -t -c bad.ini: status %d, want a non-zero exit",
		  r.status);
	cr_expect(strstr(r.err, want) != NULL, "stderr should contain \"%s ...\": [%s]", want, r.err);
	h_cmd_free(&r);
	free(want);

	/* A bad value is named the same way (line 2 here). */
	text = h_printf("[corral]\nlisten_port = not-a-number\nauth_file = %s\n", users);
	h_write_file(bad, text);
	free(text);
	r = h_run(10, "%s -t -c %s", H.corral_bin, bad);
	want = h_printf("%s:2: listen_port:", bad);
	cr_expect(r.status > 0 && r.status < 128, "bad listen_port: status %d, want a non-zero exit",
		  r.status);
	cr_expect(strstr(r.err, want) != NULL, "stderr should contain \"%s ...\": [%s]", want, r.err);
	h_cmd_free(&r);
	free(want);

	/* A file that does not exist. */
	r = h_run(10, "%s -t -c %s/nonexistent.ini", H.corral_bin, H.dir);
	cr_expect(r.status > 0 && r.status < 128, "missing config: status %d", r.status);
	cr_expect(strstr(r.err, "nonexistent.ini") != NULL, "stderr should name the file: [%s]", r.err);
	h_cmd_free(&r);
	free(good);
	free(bad);
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

static const char *BENCH_DB_LINE =
	"bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret\n";

Test(cli, sigterm_exits_zero)
{
	/* Idle: no client ever connected. */
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	PGconn *conn;
	PGresult *r;
	char *v;

	h_corral_stop(c);

	/* With pooled server connections left by a client that has gone. */
	c = h_corral_start("", BENCH_DB_LINE, NULL);
	conn = h_connect_bench(c);
	v = h_value(conn, "select 1");
	free(v);
	PQfinish(conn);
	h_corral_stop(c);

	/* With a client still connected: corral exits, and the client's connection ends. */
	c = h_corral_start("", BENCH_DB_LINE, NULL);
	conn = h_connect_bench(c);
	v = h_value(conn, "select 1");
	free(v);
	h_corral_stop(c);
	r = h_exec_t(conn, "select 2", 10);
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "a query after corral exited: %s",
		     PQresStatus(PQresultStatus(r)));
	PQclear(r);
	PQfinish(conn);
}
