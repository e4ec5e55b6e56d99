/*
 * TLS between corral and PostgreSQL: a database line with sslmode=require gets a TLS
 * server connection (PostgreSQL's pg_stat_ssl says so), and ordinary traffic works
 * through it: simple queries, a 20 MB value both ways, \copy of 100k rows in and out.
 * run.sh gives the cluster a self-signed certificate (scripts/pgtmp.sh --ssl).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(server_tls, H_SUITE);

static const char *DB_LINES =
	"bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret sslmode=require\n"
	"plain = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret\n";

/* "t" or "f": whether PostgreSQL's backend pid talks TLS, as pg_stat_ssl shows it. */
static char *backend_ssl(PGconn *su, const char *pid)
{
	char *sql = h_printf("select case when ssl then 't' else 'f' end || coalesce(' ' || version, '') "
			     "from pg_stat_ssl where pid = %s",
			     pid);
	char *v = h_value(su, sql);

	free(sql);
	return v;
}

static void run_psql(const char *ci, const char *cmd, const char *want_out)
{
	char *q_ci = h_shq(ci), *q_cmd = h_shq(cmd), *psql = h_pgtool("psql");
	struct h_cmd r = h_run(60, "%s -X -v ON_ERROR_STOP=1 -d %s -c %s", psql, q_ci, q_cmd);

	cr_assert_eq(r.status, 0, "psql -c %s: status %d, stderr: %s", q_cmd, r.status, r.err);
	cr_assert_str_eq(r.out, want_out, "psql -c %s: stdout [%s], want [%s]", q_cmd, r.out, want_out);
	h_cmd_free(&r);
	free(q_ci);
	free(q_cmd);
	free(psql);
}

/* Writes n rows "id<TAB>text" and returns the file's md5. */
static void write_rows(const char *path, int n, char md5[33])
{
	size_t cap = (size_t)n * 64, len = 0;
	char *buf = malloc(cap);

	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%d\ttls row %d %08x\n", i, i,
					(unsigned)i * 2654435761u);
	h_write_file(path, buf);
	h_md5_hex(buf, len, md5);
	free(buf);
}

static char *make_text(size_t len)
{
	char *s = malloc(len + 1);
	uint64_t x = 0x243f6a8885a308d3ull;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		s[i] = (char)('a' + (x % 26));
	}
	s[len] = '\0';
	return s;
}

Test(server_tls, traffic_over_a_tls_server_connection, .timeout = 60)
{
	const size_t len = 20u * 1024 * 1024;
	PGconn *su = h_superuser(), *conn, *plain;
	char *v = h_value(su, "show ssl");
	struct h_corral *c;
	char *ci, *plain_ci, *pid, *text, md5[33], *want, *in, *out, *cmd, *data;
	const char *params[1];
	size_t out_len = 0;
	PGresult *r;

	cr_assert_str_eq(v, "on", "the test cluster has ssl = %s: run.sh starts it with pgtmp --ssl", v);
	free(v);
	c = h_corral_start("", DB_LINES, NULL);

	/* corral's server connection for "bench" is TLS; for "plain" it is not. */
	conn = h_connect_bench(c);
	pid = h_value(conn, "select pg_backend_pid()");
	v = backend_ssl(su, pid);
	cr_expect(strncmp(v, "t TLS", 5) == 0, "pg_stat_ssl for corral's sslmode=require server: [%s]", v);
	free(v);
	free(pid);
	plain_ci = h_conninfo(c, H.user, "plain", H.password);
	plain = h_connect(c, plain_ci);
	pid = h_value(plain, "select pg_backend_pid()");
	v = backend_ssl(su, pid);
	cr_expect_str_eq(v, "f", "pg_stat_ssl for the plain database line");
	free(v);
	free(pid);
	PQfinish(plain);

	/* Simple queries (psql, its own connection through corral). */
	h_psql_expect(c, "select 1 + 1, 'over tls'", "2|over tls\n");
	h_psql_expect(c, "select count(*) from generate_series(1, 100000)", "100000\n");

	/* A 20 MB value to the server (Bind) and back (DataRow). */
	text = make_text(len);
	h_md5_hex(text, len, md5);
	h_exec_ok(conn, "create temp table big (v text)");
	params[0] = text;
	r = h_exec_params(conn, "insert into big values ($1)", 1, params, 60);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "insert of 20 MB: %s", PQresultErrorMessage(r));
	PQclear(r);
	v = h_value(conn, "select length(v) || ' ' || md5(v) from big");
	want = h_printf("%zu %s", len, md5);
	cr_expect_str_eq(v, want, "PostgreSQL stored something else");
	free(v);
	free(want);
	r = h_exec_t(conn, "select v from big", 60);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	cr_assert_eq((size_t)PQgetlength(r, 0, 0), len);
	cr_expect(memcmp(PQgetvalue(r, 0, 0), text, len) == 0, "the 20 MB value came back changed");
	PQclear(r);
	free(text);

	/* \copy of 100k rows in and out. */
	ci = h_conninfo(c, H.user, H.db, H.password);
	in = h_path("in.tsv");
	out = h_path("out.tsv");
	write_rows(in, 100000, md5);
	run_psql(ci, "set client_min_messages = warning; drop table if exists tls_copy_t; "
		     "create table tls_copy_t (id int primary key, v text)",
		 "SET\nDROP TABLE\nCREATE TABLE\n");
	cmd = h_printf("\\copy tls_copy_t from '%s'", in);
	run_psql(ci, cmd, "COPY 100000\n");
	free(cmd);
	cmd = h_printf("\\copy (select id, v from tls_copy_t order by id) to '%s'", out);
	run_psql(ci, cmd, "COPY 100000\n");
	free(cmd);
	data = h_read_file(out, &out_len);
	cr_assert(data != NULL);
	want = strdup(md5);
	h_md5_hex(data, out_len, md5);
	cr_expect_str_eq(md5, want, "\\copy out (%zu bytes) differs from what went in", out_len);
	free(want);
	free(data);
	run_psql(ci, "drop table tls_copy_t", "DROP TABLE\n");

	v = h_value(conn, "select 'still fine'");
	cr_expect_str_eq(v, "still fine");
	free(v);
	PQfinish(conn);
	PQfinish(su);
	h_corral_stop(c);
	free(ci);
	free(plain_ci);
	free(in);
	free(out);
}
