/*
 * Ordinary client traffic through corral: psql queries, \copy both ways, a 20 MB value,
 * notices, and an error inside a transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(basic, H_SUITE);

Test(basic, psql_simple_queries)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	struct h_cmd r;

	h_psql_expect(c, "select 1 + 1, 'corral'", "2|corral\n");
	h_psql_expect(c, "select string_agg(g::text, ',' order by g) from generate_series(1, 5) g",
		      "1,2,3,4,5\n");
	h_psql_expect(c, "select current_user, current_database()", "bench|bench\n");
	h_psql_expect(c, "select count(*) from generate_series(1, 100000)", "100000\n");

	/* Two commands in one psql session, then an error that psql reports. */
	r = h_psql(ci, "-c 'select 41 + 1' -c \"select 'two'\"");
	cr_expect_eq(r.status, 0, "psql status %d, stderr: %s", r.status, r.err);
	cr_expect_str_eq(r.out, "42\ntwo\n");
	h_cmd_free(&r);

	r = h_psql(ci, "-v ON_ERROR_STOP=1 -c 'select 1/0'");
	cr_expect_eq(r.status, 1, "psql status %d (want 1), stdout %s", r.status, r.out);
	cr_expect(strstr(r.err, "division by zero") != NULL, "psql stderr: %s", r.err);
	h_cmd_free(&r);

	/* corral is still fine after the error. */
	h_psql_expect(c, "select 'still here'", "still here\n");
	h_corral_stop(c);
	free(ci);
}

Test(basic, copy_in_and_out_100k_rows)
{
	enum { ROWS = 100000 };
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	char *via_corral = h_conninfo(c, H.user, H.db, H.password);
	char *direct = h_pg_conninfo(H.user, H.db, H.password);
	char md5_in[33], md5_c[33], md5_d[33];
	size_t len_c, len_d;
	PGconn *pg;

	h_copy_in(via_corral, "copy_t", ROWS, md5_in);

	/* What arrived, as PostgreSQL itself sees it. */
	pg = h_connect(NULL, direct);
	h_expect_value(pg, "select count(*) || ' ' || min(id) || ' ' || max(id) from copy_t",
		       "100000 1 100000");
	PQfinish(pg);

	h_copy_out(via_corral, "copy_t", ROWS, "out-corral.tsv", md5_c, &len_c);
	h_copy_out(direct, "copy_t", ROWS, "out-direct.tsv", md5_d, &len_d);
	cr_expect_str_eq(md5_d, md5_in, "direct \\copy out differs from the input (%zu bytes)",
			 len_d);
	cr_expect_str_eq(md5_c, md5_d,
			 "\\copy out through corral (%zu bytes) differs from direct (%zu bytes)",
			 len_c, len_d);

	/* The connection that did COPY IN/OUT is reusable: a query right after works. */
	h_psql_expect(c, "select count(*) from copy_t where v like 'row 5000 %'", "1\n");
	h_psql_run(direct, "drop table copy_t", "DROP TABLE\n");
	h_corral_stop(c);
	free(via_corral);
	free(direct);
}

/* repeat('x', len) must come back as len bytes of 'x'. */
static void expect_repeat_x(PGconn *conn, size_t len)
{
	char *sql = h_printf("select repeat('x', %zu)", len), *xs = malloc(len);
	PGresult *r = h_exec_t(conn, sql, 60);

	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	cr_assert_eq((size_t)PQgetlength(r, 0, 0), len);
	memset(xs, 'x', len);
	cr_expect(memcmp(PQgetvalue(r, 0, 0), xs, len) == 0, "repeat('x', %zu) came back changed",
		  len);
	PQclear(r);
	free(xs);
	free(sql);
}

Test(basic, value_of_20mb_round_trip)
{
	const size_t len = 20u * 1024 * 1024;
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	PGconn *conn = h_connect_bench(c);

	/* Client to server: a 20 MB Bind message; server to client: a 20 MB DataRow. */
	h_big_value_round_trip(conn, len, 0x9e3779b97f4a7c15ull);
	expect_repeat_x(conn, len);
	h_expect_value(conn, "select 'after'", "after");
	PQfinish(conn);
	h_corral_stop(c);
}

struct notices {
	int n;
	char severity[4][32];
	char sqlstate[4][8];
	char message[4][128];
};

static void on_notice(void *arg, const PGresult *res)
{
	struct notices *ns = arg;

	if (ns->n < 4) {
		snprintf(ns->severity[ns->n], sizeof ns->severity[0], "%s",
			 h_err_field(res, PG_DIAG_SEVERITY_NONLOCALIZED));
		snprintf(ns->sqlstate[ns->n], sizeof ns->sqlstate[0], "%s", h_sqlstate(res));
		snprintf(ns->message[ns->n], sizeof ns->message[0], "%s",
			 h_err_field(res, PG_DIAG_MESSAGE_PRIMARY));
	}
	ns->n++;
}

Test(basic, notices_reach_the_client)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	PGconn *conn = h_connect_bench(c);
	struct notices ns = {0};

	PQsetNoticeReceiver(conn, on_notice, &ns);
	h_exec_ok(conn, "DO $$ BEGIN RAISE NOTICE 'hello from corral %', 42; "
			"RAISE WARNING 'second one' USING ERRCODE = '01000'; END $$");
	cr_assert_eq(ns.n, 2, "got %d notices, want 2", ns.n);
	cr_expect_str_eq(ns.severity[0], "NOTICE");
	cr_expect_str_eq(ns.sqlstate[0], "00000");
	cr_expect_str_eq(ns.message[0], "hello from corral 42");
	cr_expect_str_eq(ns.severity[1], "WARNING");
	cr_expect_str_eq(ns.sqlstate[1], "01000");
	cr_expect_str_eq(ns.message[1], "second one");

	/* A notice in the middle of a result: it comes between RowDescription and DataRow. */
	ns.n = 0;
	h_exec_ok(conn, "create function pg_temp.noisy() returns text language plpgsql as "
			"$$ begin raise notice 'in a row'; return 'rows'; end $$");
	h_expect_value(conn, "select pg_temp.noisy()", "rows");
	cr_expect_eq(ns.n, 1);
	cr_expect_str_eq(ns.message[0], "in a row");
	PQfinish(conn);
	h_corral_stop(c);
}

Test(basic, error_in_transaction_then_rollback)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	PGconn *conn = h_connect_bench(c);
	PGresult *r;

	h_exec_ok(conn, "BEGIN");
	cr_expect_eq(PQtransactionStatus(conn), PQTRANS_INTRANS);

	r = h_exec(conn, "SELECT 1/0");
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	cr_expect_str_eq(h_sqlstate(r), "22012", "SELECT 1/0: %s", PQresultErrorMessage(r));
	PQclear(r);
	cr_expect_eq(PQtransactionStatus(conn), PQTRANS_INERROR);

	r = h_exec(conn, "SELECT 2");
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	cr_expect_str_eq(h_sqlstate(r), "25P02", "SELECT 2 in a failed transaction: %s",
			 PQresultErrorMessage(r));
	PQclear(r);

	h_exec_ok(conn, "ROLLBACK");
	cr_expect_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	cr_expect_eq(PQstatus(conn), CONNECTION_OK);
	h_expect_value(conn, "select 41 + 1", "42");

	/* And a transaction that commits works too. */
	h_exec_ok(conn, "BEGIN");
	h_expect_value(conn, "select txid_current() > 0", "t");
	h_exec_ok(conn, "COMMIT");
	cr_expect_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	PQfinish(conn);
	h_corral_stop(c);
}
