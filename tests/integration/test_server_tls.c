/*
 * TLS between corral and PostgreSQL: a database line with sslmode=require gets a TLS
 * server connection (PostgreSQL's pg_stat_ssl says so), and ordinary traffic works
 * through it: simple queries, a 20 MB value both ways, \copy of 100k rows in and out.
 * run.sh gives the cluster a self-signed certificate (scripts/pgtmp.sh --ssl).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(server_tls, H_SUITE);

/* clang-format would join the macro and the literal into one line of 117 columns. */
/* clang-format off */
static const char *DB_LINES =
	H_BENCH_DB_WITH(" sslmode=require")
	"plain = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret\n";
/* clang-format on */

/* "t TLS..." or "f": whether the server connection behind conn talks TLS (pg_stat_ssl). */
static char *server_ssl(PGconn *su, PGconn *conn)
{
	char *pid = h_value(conn, "select pg_backend_pid()");
	char *sql = h_printf(
		"select case when ssl then 't' else 'f' end || coalesce(' ' || version, '') "
		"from pg_stat_ssl where pid = %s",
		pid);
	char *v = h_value(su, sql);

	free(sql);
	free(pid);
	return v;
}

/* \copy of 100k rows in and out through corral: what comes out is what went in. */
static void copy_round_trip(const struct h_corral *c)
{
	char *ci = h_conninfo(c, H.user, H.db, H.password), md5_in[33], md5_out[33];
	size_t out_len = 0;

	h_copy_in(ci, "tls_copy_t", 100000, md5_in);
	h_copy_out(ci, "tls_copy_t", 100000, "out.tsv", md5_out, &out_len);
	cr_expect_str_eq(md5_out, md5_in, "\\copy out (%zu bytes) differs from what went in",
			 out_len);
	h_psql_run(ci, "drop table tls_copy_t", "DROP TABLE\n");
	free(ci);
}

Test(server_tls, traffic_over_a_tls_server_connection, .timeout = 60)
{
	PGconn *su = h_superuser(), *conn, *plain;
	char *v = h_value(su, "show ssl");
	struct h_corral *c;
	char *plain_ci;

	cr_assert_str_eq(v, "on",
			 "the test cluster has ssl = %s: run.sh starts it with pgtmp --ssl", v);
	free(v);
	c = h_corral_start("", DB_LINES, NULL);

	/* corral's server connection for "bench" is TLS; for "plain" it is not. */
	conn = h_connect_bench(c);
	v = server_ssl(su, conn);
	cr_expect(strncmp(v, "t TLS", 5) == 0,
		  "pg_stat_ssl for corral's sslmode=require server: [%s]", v);
	free(v);
	plain_ci = h_conninfo(c, H.user, "plain", H.password);
	plain = h_connect(c, plain_ci);
	v = server_ssl(su, plain);
	cr_expect_str_eq(v, "f", "pg_stat_ssl for the plain database line");
	free(v);
	PQfinish(plain);

	/* Simple queries (psql, its own connection through corral). */
	h_psql_expect(c, "select 1 + 1, 'over tls'", "2|over tls\n");
	h_psql_expect(c, "select count(*) from generate_series(1, 100000)", "100000\n");

	/* A 20 MB value to the server (Bind) and back (DataRow). */
	h_big_value_round_trip(conn, 20u * 1024 * 1024, 0x243f6a8885a308d3ull);
	copy_round_trip(c);

	h_expect_value(conn, "select 'still fine'", "still fine");
	PQfinish(conn);
	PQfinish(su);
	h_corral_stop(c);
	free(plain_ci);
}

/* The server_tls_* keys of [corral] as the database lines' defaults (PgBouncer's names),
 * against the cluster's real certificate (CN=localhost, self-signed: it is its own
 * root): verify-full logs in over TLS; with another root the certificate check fails,
 * the client gets an error and corral's log says why. */
Test(server_tls, server_tls_keys_verify_full, .timeout = 60)
{
	PGconn *su = h_superuser();
	char *crt = h_printf("%s/server.crt", H.sockdir);
	char *settings = h_printf("server_tls_sslmode = verify-full\nserver_tls_ca_file = %s\n"
				  "server_tls_protocols = secure\nquery_wait_timeout = 3\n",
				  crt);
	const char *dbs = "bench = host=localhost port=@PGPORT@ dbname=bench user=bench "
			  "password=secret\n";
	struct h_corral *c = h_corral_start(settings, dbs, NULL);
	PGconn *conn = h_connect_bench(c);
	char *v = server_ssl(su, conn);
	cr_expect(strncmp(v, "t TLSv1.", 8) == 0, "pg_stat_ssl of a verify-full login: [%s]", v);
	free(v);
	PQfinish(conn);
	h_corral_stop(c);

	/* another root: the login fails on the certificate */
	char *dir = h_printf("%s/other-root", h_need_env("CORRAL_TEST_DIR"));
	struct h_cmd r = h_run(30,
			       "mkdir -p %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
			       "-subj /CN=localhost -keyout %s/k.pem -out %s/c.pem 2>&1",
			       dir, dir, dir);
	cr_assert_eq(r.status, 0, "openssl: %s", r.out);
	h_cmd_free(&r);
	free(settings);
	settings = h_printf("server_tls_sslmode = verify-full\nserver_tls_ca_file = %s/c.pem\n"
			    "query_wait_timeout = 3\n",
			    dir);
	c = h_corral_start(settings, dbs, NULL);
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	conn = PQconnectdb(ci);
	PGresult *res = PQexec(conn, "select 1");
	cr_expect(PQstatus(conn) != CONNECTION_OK || PQresultStatus(res) != PGRES_TUPLES_OK,
		  "a login with the wrong root worked");
	PQclear(res);
	PQfinish(conn);
	cr_expect(h_wait_log(c, "certificate verify failed", 5),
		  "corral's log does not say why:\n%s", h_corral_log_tail(c));
	h_corral_stop(c);
	free(ci);
	free(dir);
	free(settings);
	free(crt);
	PQfinish(su);
}
