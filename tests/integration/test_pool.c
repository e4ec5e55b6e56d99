/*
 * Pooling behaviour seen from PostgreSQL: pool_size caps backends under a connection
 * storm, query_wait_timeout, server_idle_timeout and server_reset_query.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(pool, H_SUITE);

/* Reads the number after prefix in text, or -1. */
static long number_after(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);

	return p ? strtol(p + strlen(prefix), NULL, 10) : -1;
}

/*
 * pgbench -C: every transaction is a new client connection.  50 clients over a pool of
 * 10 in session mode: nobody fails, and PostgreSQL never sees more than 10 backends.
 * Database pgb is used by no other test, so the count is this test's alone.
 */
Test(pool, pgbench_connect_storm_stays_within_pool_size, .timeout = 60)
{
	struct h_corral *c = h_corral_start(
		"pool_mode = session\nquery_wait_timeout = 30\n",
		"pgb = host=@PGHOST@ port=@PGPORT@ dbname=pgb user=bench password=secret pool_size=10\n",
		NULL);
	char *pgbench = h_pgtool("pgbench");
	struct h_sampler *s = h_sampler_start(H.pgbench_db, H.user);
	struct h_cmd r = h_run(40, "PGPASSWORD=%s %s -n -C -c 50 -j 2 -T 5 -S -h 127.0.0.1 -p %d -U %s %s",
			       H.password, pgbench, c->port, H.user, H.pgbench_db);
	int samples = 0, peak = h_sampler_stop(s, &samples);
	long done = number_after(r.out, "number of transactions actually processed: ");
	long failed = number_after(r.out, "number of failed transactions: ");

	if (r.status != 0) {
		const char *tail = h_corral_log_tail(c);

		cr_assert_fail("pgbench exited %d\nstdout:\n%s\nstderr:\n%s\ncorral log:\n%s", r.status,
			       r.out, r.err, tail);
	}
	cr_expect_gt(done, 0, "no transactions processed; stdout:\n%s", r.out);
	cr_expect_eq(failed, 0, "failed transactions: %ld; stdout:\n%s\nstderr:\n%s", failed, r.out, r.err);
	cr_expect(strstr(r.err, "error") == NULL, "pgbench reported errors:\n%s", r.err);
	cr_expect_gt(samples, 20, "only %d pg_stat_activity samples", samples);
	cr_expect_gt(peak, 0, "the sampler never saw a backend of pgb");
	cr_expect_leq(peak, 10, "PostgreSQL had %d backends for pgb/bench, pool_size is 10", peak);
	h_cmd_free(&r);
	free(pgbench);
	h_corral_stop(c);
}

/*
 * pool_size = 1 in session mode: while A holds the only server connection, B's query
 * waits query_wait_timeout (1 s) and then gets 57014.  B may be refused at login or at
 * its first query, depending on when corral checks a server out; either is fine.
 */
Test(pool, query_wait_timeout)
{
	struct h_corral *c = h_corral_start(
		"pool_mode = session\nquery_wait_timeout = 1\n",
		H_BENCH_DB_WITH(" pool_size=1"),
		NULL);
	PGconn *a = h_connect_bench(c), *b;
	char *ci = h_conninfo(c, H.user, H.db, H.password), *err = NULL;
	const char *sqlstate, *message;
	PGresult *r = NULL;
	double t0, waited;

	h_expect_value(a, "select 'a has the server'", "a has the server");

	t0 = h_now();
	b = h_try_connect(ci, 15, &err);
	if (b == NULL) {
		waited = h_now() - t0;
		cr_expect(strstr(err, "57014") != NULL, "B's login: want 57014 in: %s", err);
		cr_expect(strstr(err, "query_wait_timeout") != NULL,
			  "B's login: want query_wait_timeout in: %s", err);
	} else {
		r = h_exec_t(b, "select 'b got a server'", 15);
		waited = h_now() - t0;
		sqlstate = h_sqlstate(r);
		message = h_err_field(r, PG_DIAG_MESSAGE_PRIMARY);
		cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "B's query: %s, want an error (57014)",
			     PQresStatus(PQresultStatus(r)));
		cr_expect_str_eq(sqlstate, "57014", "B's query: %s", PQresultErrorMessage(r));
		cr_expect(strstr(message, "query_wait_timeout") != NULL, "B's query: message %s", message);
		PQclear(r);
		PQfinish(b);
	}
	cr_expect(waited >= 0.9 && waited < 5.0, "B was refused after %.2f s; query_wait_timeout is 1 s",
		  waited);
	free(err);

	/* A is unaffected, and once it leaves, a new client gets the server. */
	h_expect_still_serving(c, a, ci);
	free(ci);
	h_corral_stop(c);
}

/*
 * server_idle_timeout = 1: the server connection a client used stays in the pool after
 * the client leaves, then is closed about 1 s later.  Database idle is this test's alone.
 */
Test(pool, server_idle_timeout)
{
	struct h_corral *c = h_corral_start(
		"pool_mode = session\nserver_idle_timeout = 1\n",
		"idle = host=@PGHOST@ port=@PGPORT@ dbname=idle user=bench password=secret\n", NULL);
	char *ci = h_conninfo(c, H.user, H.idle_db, H.password);
	PGconn *conn = h_connect(c, ci);
	double secs;
	int n;

	h_expect_value(conn, "select current_database()", "idle");
	n = h_pg_backends(H.idle_db, NULL);
	cr_expect_eq(n, 1, "%d backends of database idle while the client is connected, want 1", n);
	PQfinish(conn);

	secs = h_wait_pg_backends(H.idle_db, NULL, 0, 8.0);
	cr_expect(secs >= 0, "the idle server connection was still open 8 s after the client left");
	cr_expect(secs < 0 || secs >= 0.5,
		  "the server connection closed %.2f s after the client left: pooled connections should "
		  "live until server_idle_timeout (1 s)",
		  secs);

	/* The pool opens a new one when needed. */
	h_expect_new_client(c, ci, "select 'again'", "again");
	free(ci);
	h_corral_stop(c);
}

/*
 * pool_size = 1, one worker: client B gets the same server connection client A had,
 * and server_reset_query = DISCARD ALL has removed A's session state.
 */
Test(pool, server_reset_query_clears_session_state)
{
	struct h_corral *c = h_corral_start(
		"workers = 1\npool_mode = session\nserver_reset_query = DISCARD ALL\n",
		H_BENCH_DB_WITH(" pool_size=1"),
		NULL);
	char *direct = h_pg_conninfo(H.user, H.db, H.password);
	PGconn *pg = h_connect(NULL, direct);
	char *default_work_mem = h_value(pg, "show work_mem");
	PGconn *a, *b;
	char *pid_a, *pid_b, *v;

	PQfinish(pg);
	cr_assert_str_neq(default_work_mem, "7MB");

	a = h_connect_bench(c);
	pid_a = h_value(a, "select pg_backend_pid()");
	h_exec_ok(a, "SET work_mem = '7MB'");
	h_exec_ok(a, "SET application_name = 'client-a'");
	h_exec_ok(a, "create temp table a_tmp (x int)");
	h_expect_show(a, "work_mem", "7MB");
	PQfinish(a);

	b = h_connect_bench(c);
	pid_b = h_value(b, "select pg_backend_pid()");
	cr_expect_str_eq(pid_b, pid_a, "B got backend %s, A had %s: with pool_size = 1 it must be reused",
			 pid_b, pid_a);
	v = h_value(b, "show work_mem");
	cr_expect_str_eq(v, default_work_mem, "B sees A's work_mem");
	free(v);
	v = h_value(b, "select current_setting('application_name')");
	cr_expect_str_neq(v, "client-a", "B sees A's application_name");
	free(v);
	v = h_value(b, "select to_regclass('pg_temp.a_tmp') is null");
	cr_expect_str_eq(v, "t", "B sees A's temp table");
	free(v);
	PQfinish(b);
	free(pid_a);
	free(pid_b);
	free(default_work_mem);
	free(direct);
	h_corral_stop(c);
}

/* Sets role's CONNECTION LIMIT as superuser (-1: none). */
static void set_conn_limit(PGconn *su, const char *role, int limit)
{
	char *sql = h_printf("alter role %s connection limit %d", role, limit);

	h_exec_ok(su, sql);
	free(sql);
}

/*
 * pool_size = 2: A holds one server; B's query needs a second, whose login fails (the
 * server role's CONNECTION LIMIT is full), so B waits behind A's busy server.  Once
 * logins work again, B must get a server within seconds (corral retries the login for
 * its waiter), not sit until query_wait_timeout (20 s).  Role "limited" is this test's
 * alone, so changing its limit disturbs no other test.
 */
Test(pool, waiter_stranded_by_failed_login_is_served_later)
{
	char *dbs = h_printf("bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=%s password=secret "
			     "pool_size=2\n",
			     H.limit_user);
	struct h_corral *c = h_corral_start("pool_mode = session\nquery_wait_timeout = 20\n", dbs, NULL);
	PGconn *su = h_superuser(), *a, *b;
	char *v;
	PGresult *r;
	double t0, took;
	bool retried;

	set_conn_limit(su, H.limit_user, -1);
	a = h_connect_bench(c);
	v = h_value(a, "select current_user");
	cr_assert_str_eq(v, H.limit_user);
	free(v);
	cr_assert_geq(h_wait_pg_backends(H.db, H.limit_user, 1, 5), 0, "A's server is not the only one of %s",
		      H.limit_user);
	set_conn_limit(su, H.limit_user, 1);

	b = h_connect_bench(c);
	t0 = h_now();
	cr_assert(PQsendQuery(b, "select 'b served'"), "%s", PQerrorMessage(b));
	/* B's login fails, and so does corral's retry after the backoff (250 ms): B is the
	 * stranded waiter, still waiting, when logins work again. */
	retried = h_wait_log_count(c, "event=server_login_failed", 2, 5);
	h_expect_value(a, "select 'a still has its server'", "a still has its server");
	set_conn_limit(su, H.limit_user, -1);

	r = h_results(b, "B's query", 10);
	took = h_now() - t0;
	cr_expect(retried,
		  "not two failed server logins (B's and a retry) while the role was full:\n%s",
		  h_corral_log_tail(c));
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "B's query after %.1f s: %s %s", took,
		     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		cr_expect_str_eq(PQgetvalue(r, 0, 0), "b served");
	cr_expect_lt(took, 5.0,
		     "B was served %.1f s after its query (logins worked after the retry)", took);
	PQclear(r);
	h_expect_value(b, "select current_user", H.limit_user);
	PQfinish(b);
	PQfinish(a);
	PQfinish(su);
	free(dbs);
	h_corral_stop(c);
}
