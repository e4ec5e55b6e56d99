/*
 * Ordinary client traffic through corral: psql queries, \copy both ways, a 20 MB value,
 * notices, and an error inside a transaction.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(basic, H_SUITE);

static const char *BENCH_DB_LINE =
	"bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret\n";

Test(basic, psql_simple_queries)
{
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	char *q_ci = h_shq(ci), *psql = h_pgtool("psql");
	struct h_cmd r;

	h_psql_expect(c, "select 1 + 1, 'corral'", "2|corral\n");
	h_psql_expect(c, "select string_agg(g::text, ',' order by g) from generate_series(1, 5) g",
		      "1,2,3,4,5\n");
	h_psql_expect(c, "select current_user, current_database()", "bench|bench\n");
	h_psql_expect(c, "select count(*) from generate_series(1, 100000)", "100000\n");

	/* Two commands in one psql session, then an error that psql reports. */
	r = h_run(H_QUERY_TIMEOUT, "%s -X -At -d %s -c 'select 41 + 1' -c \"select 'two'\"", psql, q_ci);
	cr_expect_eq(r.status, 0, "psql status %d, stderr: %s", r.status, r.err);
	cr_expect_str_eq(r.out, "42\ntwo\n");
	h_cmd_free(&r);

	r = h_run(H_QUERY_TIMEOUT, "%s -X -At -v ON_ERROR_STOP=1 -d %s -c 'select 1/0'", psql, q_ci);
	cr_expect_eq(r.status, 1, "psql status %d (want 1), stdout %s", r.status, r.out);
	cr_expect(strstr(r.err, "division by zero") != NULL, "psql stderr: %s", r.err);
	h_cmd_free(&r);

	/* corral is still fine after the error. */
	h_psql_expect(c, "select 'still here'", "still here\n");
	h_corral_stop(c);
	free(ci);
	free(q_ci);
	free(psql);
}

/* Writes n rows "id<TAB>text" (with a non-ASCII character) and returns the file's md5. */
static void write_rows(const char *path, int n, char md5[33])
{
	size_t cap = (size_t)n * 64, len = 0;
	char *buf = malloc(cap);

	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%d\trow %d caf\xc3\xa9 %08x\n", i, i,
					(unsigned)i * 2654435761u);
	FILE *f = fopen(path, "w");
	cr_assert(f != NULL);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	h_md5_hex(buf, len, md5);
	free(buf);
}

static void file_md5(const char *path, char md5[33], size_t *len)
{
	char *data = h_read_file(path, len);

	cr_assert(data != NULL, "cannot read %s", path);
	h_md5_hex(data, *len, md5);
	free(data);
}

static void run_psql(const char *ci, const char *cmd, const char *want_out)
{
	char *q_ci = h_shq(ci), *q_cmd = h_shq(cmd), *psql = h_pgtool("psql");
	struct h_cmd r =
		h_run(60, "PGCLIENTENCODING=UTF8 %s -X -v ON_ERROR_STOP=1 -d %s -c %s", psql, q_ci, q_cmd);

	cr_assert_eq(r.status, 0, "psql -c %s: status %d, stderr: %s", q_cmd, r.status, r.err);
	cr_assert_str_eq(r.out, want_out, "psql -c %s: stdout [%s], want [%s]", q_cmd, r.out, want_out);
	h_cmd_free(&r);
	free(q_ci);
	free(q_cmd);
	free(psql);
}

Test(basic, copy_in_and_out_100k_rows)
{
	enum { ROWS = 100000 };
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	char *via_corral = h_conninfo(c, H.user, H.db, H.password);
	char *direct = h_pg_conninfo(H.user, H.db, H.password);
	char *in = h_path("in.tsv"), *out_c = h_path("out-corral.tsv"), *out_d = h_path("out-direct.tsv");
	char md5_in[33], md5_c[33], md5_d[33], *cmd;
	size_t len_c, len_d;

	write_rows(in, ROWS, md5_in);
	run_psql(via_corral, "drop table if exists copy_t; create table copy_t (id int primary key, v text)",
		 "DROP TABLE\nCREATE TABLE\n");

	cmd = h_printf("\\copy copy_t from '%s'", in);
	run_psql(via_corral, cmd, "COPY 100000\n");
	free(cmd);

	/* What arrived, as PostgreSQL itself sees it. */
	PGconn *pg = h_connect(NULL, direct);
	char *v = h_value(pg, "select count(*) || ' ' || min(id) || ' ' || max(id) from copy_t");
	cr_expect_str_eq(v, "100000 1 100000");
	free(v);
	PQfinish(pg);

	cmd = h_printf("\\copy (select id, v from copy_t order by id) to '%s'", out_c);
	run_psql(via_corral, cmd, "COPY 100000\n");
	free(cmd);
	cmd = h_printf("\\copy (select id, v from copy_t order by id) to '%s'", out_d);
	run_psql(direct, cmd, "COPY 100000\n");
	free(cmd);

	file_md5(out_c, md5_c, &len_c);
	file_md5(out_d, md5_d, &len_d);
	cr_expect_str_eq(md5_d, md5_in, "direct \\copy out differs from the input (%zu bytes)", len_d);
	cr_expect_str_eq(md5_c, md5_d,
			 "\\copy out through corral (%zu bytes) differs from direct (%zu bytes)", len_c,
			 len_d);

	/* The connection that did COPY IN/OUT is reusable: a query right after works. */
	h_psql_expect(c, "select count(*) from copy_t where v like 'row 5000 %'", "1\n");
	run_psql(direct, "drop table copy_t", "DROP TABLE\n");
	h_corral_stop(c);
	free(via_corral);
	free(direct);
	free(in);
	free(out_c);
	free(out_d);
}

/* Deterministic printable text, so a mismatch is reproducible. */
static char *make_text(size_t len)
{
	char *s = malloc(len + 1);
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		s[i] = (char)('a' + (x % 26));
	}
	s[len] = '\0';
	return s;
}

Test(basic, value_of_20mb_round_trip)
{
	const size_t len = 20u * 1024 * 1024;
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	PGconn *conn = h_connect_bench(c);
	char *text = make_text(len), md5[33], *v, *want;
	const char *params[1] = {text};
	PGresult *r;

	h_md5_hex(text, len, md5);
	h_exec_ok(conn, "create temp table big (v text)");

	/* Client to server: a 20 MB Bind message. */
	r = h_exec_params(conn, "insert into big values ($1)", 1, params, 60);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "insert of 20 MB: %s %s",
		     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
	PQclear(r);
	v = h_value(conn, "select length(v) || ' ' || md5(v) from big");
	want = h_printf("%zu %s", len, md5);
	cr_expect_str_eq(v, want, "PostgreSQL stored something else");
	free(v);
	free(want);

	/* Server to client: a 20 MB DataRow. */
	r = h_exec_t(conn, "select v from big", 60);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	cr_assert_eq(PQntuples(r), 1);
	cr_assert_eq((size_t)PQgetlength(r, 0, 0), len);
	cr_expect(memcmp(PQgetvalue(r, 0, 0), text, len) == 0, "the 20 MB value came back changed");
	PQclear(r);

	r = h_exec_t(conn, "select repeat('x', 20 * 1024 * 1024)", 60);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	cr_assert_eq((size_t)PQgetlength(r, 0, 0), len);
	memset(text, 'x', len);
	cr_expect(memcmp(PQgetvalue(r, 0, 0), text, len) == 0, "repeat('x', 20 MB) came back changed");
	PQclear(r);

	v = h_value(conn, "select 'after'");
	cr_expect_str_eq(v, "after");
	free(v);
	PQfinish(conn);
	h_corral_stop(c);
	free(text);
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
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	PGconn *conn = h_connect_bench(c);
	struct notices ns = {0};
	char *v;

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
	v = h_value(conn, "select pg_temp.noisy()");
	cr_expect_str_eq(v, "rows");
	free(v);
	cr_expect_eq(ns.n, 1);
	cr_expect_str_eq(ns.message[0], "in a row");
	PQfinish(conn);
	h_corral_stop(c);
}

Test(basic, error_in_transaction_then_rollback)
{
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	PGconn *conn = h_connect_bench(c);
	PGresult *r;
	char *v;

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
	v = h_value(conn, "select 41 + 1");
	cr_expect_str_eq(v, "42");
	free(v);

	/* And a transaction that commits works too. */
	h_exec_ok(conn, "BEGIN");
	v = h_value(conn, "select txid_current() > 0");
	cr_expect_str_eq(v, "t");
	free(v);
	h_exec_ok(conn, "COMMIT");
	cr_expect_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	PQfinish(conn);
	h_corral_stop(c);
}
