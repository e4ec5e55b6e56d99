/*
 * Named prepared statements in transaction pooling (proxy/prepared.h): pgbench -M
 * prepared / extended, asyncpg and psycopg 3 with their defaults (drivers/prepared.py),
 * libpq pipelines with statements evicted by a small max_prepared_statements, errors
 * that stay with the client that made them and come in the order PostgreSQL gives
 * them, DEALLOCATE / DISCARD ALL / Close, SQL PREPARE / EXECUTE after a server switch,
 * and max_prepared_statements = 0.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"
#include "tests/integration/prepared_helpers.h"

TestSuite(prepared, H_SUITE);

#define TX "pool_mode = transaction\n"

static long number_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* pgbench with 50 clients on a pool of 5.  -j 50: pgbench 15 prepares with the blocking
 * PQprepare, so one thread's client waiting for a server would stall the thread's other
 * clients, which hold the servers inside their transactions (with or without corral). */
static void pgbench_mode(const struct h_corral *c, const char *mode, const char *extra)
{
	char *pgbench = h_pgtool("pgbench");
	struct h_cmd r = h_run(
		90,
		"PGPASSWORD=%s %s -n -M %s %s -c 50 -j 50 -T 4 -h 127.0.0.1 -p %d -U %s prep_bench",
		H.password, pgbench, mode, extra, c->port, H.user);
	long done = number_after(r.out, "number of transactions actually processed: ");
	long failed = number_after(r.out, "number of failed transactions: ");
	cr_assert_eq(r.status, 0, "pgbench -M %s %s exited %d\n%s\n%.2000s\n%s", mode, extra,
		     r.status, r.out, r.err, h_corral_log_tail(c));
	cr_log_info("prepared: pgbench -M %s %s: %ld transactions, %ld failed, %.30s", mode, extra,
		    done, failed, strstr(r.out, "tps = ") ? strstr(r.out, "tps = ") : "");
	cr_expect_gt(done, 0);
	cr_expect_eq(failed, 0, "%s", r.out);
	cr_expect(strstr(r.err, "error") == NULL, "pgbench reported errors:\n%.2000s", r.err);
	h_cmd_free(&r);
	free(pgbench);
}

Test(prepared, pgbench_prepared_and_extended, .timeout = 90)
{
	struct h_corral *c = h_corral_start(TX,
					    "prep_bench = host=@PGHOST@ port=@PGPORT@ "
					    "dbname=prep_bench user=bench password=secret "
					    "pool_size=5\n",
					    NULL);
	pgbench_mode(c, "prepared", "");
	pgbench_mode(c, "prepared", "-S");
	pgbench_mode(c, "extended", "");
	h_corral_stop(c);
}

Test(prepared, asyncpg_and_psycopg, .timeout = 90)
{
	struct h_corral *c = h_corral_start(TX, H_BENCH_DB_WITH(" pool_size=5"), NULL);
	char *script = h_printf("%s/tests/integration/drivers/prepared.py",
				h_need_env("CORRAL_SRCDIR"));
	struct h_cmd r = h_run(80, "/usr/bin/python3 %s postgresql://%s:%s@127.0.0.1:%d/%s", script,
			       H.user, H.password, c->port, H.db);
	cr_assert_eq(r.status, 0, "drivers/prepared.py exited %d\nstdout:\n%s\nstderr:\n%s\n%s",
		     r.status, r.out, r.err, h_corral_log_tail(c));
	cr_assert(strstr(r.out, "all prepared statements ok") != NULL, "%s", r.out);
	cr_log_info("%s", r.out);
	h_cmd_free(&r);
	free(script);
	h_corral_stop(c);
}

/* ---- libpq ---------------------------------------------------------------------- */

/* Three statements, at most two per server: every use of the third evicts one. */
Test(prepared, libpq_pipeline_with_eviction, .timeout = 60)
{
	struct h_corral *c = h_corral_start(TX "max_prepared_statements = 2\nworkers = 1\n",
					    H_BENCH_DB_WITH(" pool_size=1"), NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	const char *sql[] = {"select $1::int + 1", "select $1::int * 10", "select 'x' || $1::text"};
	const char *names[] = {"s1", "s2", "s3"};
	for (int i = 0; i < 3; i++) {
		pr_prepare_ok(a, names[i], sql[i]);
		pr_prepare_ok(b, names[i], sql[i]); /* the same text: one server statement */
	}
	pr_prepare_ok(b, "b4", "select $1::int - 1");
	for (int round = 0; round < 3; round++) {
		pr_exec_prepared(a, "s1", "4", "5", NULL);
		pr_exec_prepared(b, "b4", "4", "3", NULL);
		pr_exec_prepared(a, "s2", "4", "40", NULL);
		pr_exec_prepared(b, "s3", "4", "x4", NULL);
		pr_exec_prepared(a, "s3", "5", "x5", NULL);
	}
	/* A pipeline that needs all three on a server that keeps two. */
	cr_assert(PQenterPipelineMode(a));
	const char *want[12];
	int n = 0;
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 3; k++) {
			const char *vals[] = {"7"};
			cr_assert(PQsendQueryPrepared(a, names[k], 1, vals, NULL, NULL, 0));
			want[n++] = k == 0 ? "8" : k == 1 ? "70" : "x7";
			if (i == 1 && k == 2)
				cr_assert(PQpipelineSync(a));
		}
	cr_assert(PQpipelineSync(a));
	for (int i = 0; i < n; i++) {
		h_wait_result(a, h_now() + H_QUERY_TIMEOUT, "pipelined prepared statement");
		PGresult *res = PQgetResult(a);
		cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "result %d: %s", i,
			     PQresultErrorMessage(res));
		cr_assert_str_eq(PQgetvalue(res, 0, 0), want[i], "result %d", i);
		PQclear(res);
		h_wait_result(a, h_now() + H_QUERY_TIMEOUT, "end of result");
		cr_assert_null(PQgetResult(a));
		if (i == 5 || i == n - 1) {
			h_wait_result(a, h_now() + H_QUERY_TIMEOUT, "sync");
			res = PQgetResult(a);
			cr_assert_eq(PQresultStatus(res), PGRES_PIPELINE_SYNC);
			PQclear(res);
		}
	}
	cr_assert(PQexitPipelineMode(a));
	pr_exec_prepared(a, "s2", "1", "10", NULL);
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
}

/* The result statuses and SQLSTATEs of a pipeline, as one string. */
static char *pipeline_trace(PGconn *conn)
{
	struct h_sbuf out = {0};
	cr_assert(PQenterPipelineMode(conn));
	const char *zero[] = {"0"}, *one[] = {"1"};
	cr_assert(PQsendPrepare(conn, "p1", "select 10 / $1::int", 0, NULL));
	cr_assert(PQsendQueryPrepared(conn, "p1", 1, zero, NULL, NULL, 0)); /* 22012 */
	cr_assert(PQsendQueryPrepared(conn, "p1", 1, one, NULL, NULL, 0));  /* skipped */
	cr_assert(PQpipelineSync(conn));
	cr_assert(PQsendQueryPrepared(conn, "p1", 1, one, NULL, NULL, 0)); /* p1 exists */
	cr_assert(PQsendPrepare(conn, "p1", "select 2", 0, NULL));         /* 42P05 */
	cr_assert(PQpipelineSync(conn));
	cr_assert(PQsendPrepare(conn, "p2", "select nosuchcolumn", 0, NULL)); /* 42703 */
	cr_assert(PQpipelineSync(conn));
	cr_assert(PQsendQueryPrepared(conn, "p2", 0, NULL, NULL, NULL, 0)); /* 26000 */
	cr_assert(PQpipelineSync(conn));
	for (int syncs = 0; syncs < 4;) {
		h_wait_result(conn, h_now() + H_QUERY_TIMEOUT, "pipeline");
		PGresult *res = PQgetResult(conn);
		if (!res)
			continue;
		ExecStatusType st = PQresultStatus(res);
		h_sb_printf(&out, "%s", PQresStatus(st));
		if (st == PGRES_FATAL_ERROR)
			h_sb_printf(&out, ":%s", h_sqlstate(res));
		if (st == PGRES_TUPLES_OK)
			h_sb_printf(&out, ":%s", PQgetvalue(res, 0, 0));
		h_sb_printf(&out, " ");
		syncs += st == PGRES_PIPELINE_SYNC;
		PQclear(res);
	}
	cr_assert(PQexitPipelineMode(conn));
	return out.p;
}

/* Errors in a pipeline come as directly from PostgreSQL, on a server that lacks the
 * statement and on one that has it; a failed Parse of one client's "s1" leaves another
 * client's "s1" alone. */
Test(prepared, errors_stay_in_order_and_with_their_client, .timeout = 60)
{
	struct h_corral *c = h_corral_start(TX "workers = 1\n", H_BENCH_DB_WITH(" pool_size=1"),
					    NULL);
	PGconn *direct = h_connect(NULL, h_pg_conninfo(H.user, H.db, H.password));
	char *want = pipeline_trace(direct);
	for (int i = 0; i < 2; i++) { /* the second client finds p1 prepared */
		PGconn *conn = h_connect_bench(c);
		char *got = pipeline_trace(conn);
		cr_assert_str_eq(got, want, "client %d through corral:\n%s\ndirectly:\n%s", i, got,
				 want);
		free(got);
		PQfinish(conn);
	}
	free(want);
	PQfinish(direct);

	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	PGresult *res = pr_prepare(a, "s1", "select from nosuchtable");
	cr_assert_str_eq(h_sqlstate(res), "42P01");
	PQclear(res);
	pr_prepare_ok(b, "s1", "select 42");
	pr_exec_prepared(b, "s1", NULL, "42", NULL);
	pr_exec_prepared(a, "s1", NULL, NULL, "26000"); /* a has none, as in PostgreSQL */
	pr_prepare_ok(a, "s1", "select 43");
	pr_exec_prepared(a, "s1", NULL, "43", NULL);
	pr_exec_prepared(b, "s1", NULL, "42", NULL);
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
}

/* Close, DEALLOCATE, DEALLOCATE ALL and DISCARD ALL forget the client's names; preparing
 * the same names again works, another client's statements are not disturbed. */
Test(prepared, close_deallocate_discard, .timeout = 60)
{
	struct h_corral *c = h_corral_start(TX "workers = 1\n", H_BENCH_DB_WITH(" pool_size=1"),
					    NULL);
	PGconn *a = h_connect_bench(c), *other = h_connect_bench(c);
	pr_prepare_ok(other, "s1", "select 1");
	const char *ways[] = {"close", "DEALLOCATE s1", "DEALLOCATE PREPARE ALL", "DISCARD ALL",
			      "deallocate \"s1\""};
	for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
		pr_prepare_ok(a, "s1", "select 1");
		pr_exec_prepared(a, "s1", NULL, "1", NULL);
		if (i == 0)
			h_exec_ok(a, "DEALLOCATE s1"); /* Close: raw_close_message below */
		else
			h_exec_ok(a, ways[i]);
		pr_exec_prepared(a, "s1", NULL, NULL, "26000");
		pr_prepare_ok(a, "s1", "select 2"); /* the name is free, with other text */
		pr_exec_prepared(a, "s1", NULL, "2", NULL);
		h_exec_ok(a, "DEALLOCATE s1");
		pr_exec_prepared(other, "s1", NULL, "1", NULL);
	}
	PGresult *res = h_exec(a, "DEALLOCATE nosuch");
	cr_assert_str_eq(h_sqlstate(res), "26000");
	PQclear(res);
	PQfinish(a);
	PQfinish(other);
	h_corral_stop(c);
}

/* Close of a named statement is answered in order and only forgets the client's name. */
Test(prepared, close_message, .timeout = 30)
{
	struct h_corral *c = h_corral_start(TX "auth_type = trust\nworkers = 1\n",
					    H_BENCH_DB_WITH(" pool_size=1"), NULL);
	int fd = h_raw_login(c->port, NULL);
	const struct raw_msg prep[] = {RAW('P', "s1\0select 1\0\0\0"), RAW('S', ""), {0}};
	const struct raw_msg run[] = {RAW_RUN("s1"), {0}};
	const struct raw_msg close_run[] = {RAW('C', "Ss1\0"), RAW_RUN("s1"), {0}};
	const struct raw_msg close_only[] = {RAW('C', "Ss1\0"), RAW('S', ""), {0}};
	expect_raw(fd, prep, "1Z");
	expect_raw(fd, run, "2DCZ");
	expect_raw(fd, close_run, "3EZ"); /* 26000 */
	expect_raw(fd, close_only, "3Z"); /* no error */
	expect_raw(fd, prep, "1Z");
	expect_raw(fd, run, "2DCZ");
	close(fd);
	h_corral_stop(c);
}

static int backend_pid(PGconn *conn)
{
	char *v = h_value(conn, "select pg_backend_pid()");
	int pid = atoi(v);
	free(v);
	return pid;
}

/* SQL PREPARE and protocol statements survive a server switch: the server they were
 * prepared on is ended, the next one gets them on demand. */
Test(prepared, sql_prepare_execute_across_servers, .timeout = 60)
{
	struct h_corral *c = h_corral_start(TX "workers = 1\n", H_BENCH_DB_WITH(" pool_size=1"),
					    NULL);
	PGconn *a = h_connect_bench(c);
	h_exec_ok(a, "PREPARE q1(int) AS SELECT $1 * 2");
	h_exec_ok(a, "prepare Q2 as select 'a;b' || $1::text -- comment; not the end");
	pr_prepare_ok(a, "s1", "select $1::int + 100");
	h_expect_value(a, "EXECUTE q1(21)", "42");
	int pid = backend_pid(a);
	PGconn *su = h_superuser();
	char *kill = h_printf("select pg_terminate_backend(%d)", pid);
	h_exec_ok(su, kill);
	free(kill);
	cr_assert(h_wait_pg_backends(H.db, H.user, 0, 10) >= 0);
	h_expect_value(a, "EXECUTE q1(5)", "10");
	cr_assert_neq(backend_pid(a), pid);
	h_expect_value(a, "execute q2('c')", "a;bc");
	pr_exec_prepared(a, "s1", "1", "101", NULL);
	PGresult *res = h_exec(a, "PREPARE q1 AS SELECT 1");
	cr_assert_str_eq(h_sqlstate(res), "42P05");
	PQclear(res);
	res = h_exec(a, "EXECUTE nosuch");
	cr_assert_str_eq(h_sqlstate(res), "26000");
	PQclear(res);
	h_exec_ok(a, "DEALLOCATE q1");
	h_exec_ok(a, "PREPARE q1 AS SELECT 7");
	h_expect_value(a, "EXECUTE q1", "7");
	PQfinish(su);
	PQfinish(a);
	h_corral_stop(c);
}

Test(prepared, max_prepared_statements_zero, .timeout = 30)
{
	struct h_corral *c = h_corral_start(TX "max_prepared_statements = 0\n", H_BENCH_DB, NULL);
	PGconn *a = h_connect_bench(c);
	PGresult *res = pr_prepare(a, "P_0", "select 1");
	cr_assert_str_eq(h_sqlstate(res), "0A000");
	cr_assert(strstr(PQresultErrorMessage(res), "max_prepared_statements = 0") != NULL, "%s",
		  PQresultErrorMessage(res));
	PQclear(res);
	res = h_exec(a, "PREPARE q AS SELECT 1");
	cr_assert_str_eq(h_sqlstate(res), "0A000");
	PQclear(res);
	/* Unnamed statements still work, and so does the connection. */
	const char *vals[] = {"3"};
	res = h_exec_params(a, "select $1::int + 1", 1, vals, H_QUERY_TIMEOUT);
	cr_assert_str_eq(PQgetvalue(res, 0, 0), "4");
	PQclear(res);
	PQfinish(a);
	h_corral_stop(c);
}
