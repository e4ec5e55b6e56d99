/*
 * Session parameters: what a client asks for at startup (application_name,
 * client_encoding, options -c ...) is what SHOW tells it on its server connection, and
 * a client that asked for nothing sees the server's defaults, never what an earlier
 * client of the same server connection left there.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(session_params, H_SUITE);

static const char *const ONE_SERVER_DB = H_BENCH_DB_WITH(" pool_size=1");

Test(session_params, startup_parameters_reach_the_server)
{
	struct h_corral *c = h_corral_start("", ONE_SERVER_DB, NULL);
	char *base = h_conninfo(c, H.user, H.db, H.password);
	char *ci = h_printf("%s application_name=fn-orders client_encoding=LATIN1 "
			    "options='-c search_path=a,public -c work_mem=7MB'",
			    base);
	PGconn *conn = h_connect(c, ci);
	cr_expect_str_eq(PQparameterStatus(conn, "application_name"), "fn-orders");
	cr_expect_str_eq(PQparameterStatus(conn, "client_encoding"), "LATIN1");
	h_expect_show(conn, "application_name", "fn-orders");
	h_expect_show(conn, "client_encoding", "LATIN1");
	h_expect_show(conn, "search_path", "a,public"); /* as PostgreSQL shows it for -c */
	h_expect_show(conn, "work_mem", "7MB");
	PQfinish(conn);
	free(ci);
	free(base);
	h_corral_stop(c);
}

/*
 * Without a reset query, only corral's own tracking stands between two clients of the
 * one server connection: B must see the defaults for what A changed with SET.
 */
Test(session_params, next_client_sees_defaults_not_leftovers)
{
	struct h_corral *c = h_corral_start("server_reset_query =\n", ONE_SERVER_DB, NULL);
	PGconn *a = h_connect_bench(c);
	char *pid_a = h_value(a, "SELECT pg_backend_pid()");
	char *tz_default = h_value(a, "SHOW TimeZone");
	h_exec_ok(a, "SET application_name = 'leaky'");
	h_exec_ok(a, "SET TimeZone = 'Asia/Tokyo'");
	h_exec_ok(a, "SET DateStyle = 'German'");
	h_expect_show(a, "application_name", "leaky");
	PQfinish(a);

	PGconn *b = h_connect_bench(c);
	char *pid_b = h_value(b, "SELECT pg_backend_pid()");
	cr_expect_str_eq(pid_b, pid_a,
			 "B did not get A's server connection; the test proves nothing");
	h_expect_show(b, "application_name", "");
	h_expect_show(b, "TimeZone", tz_default);
	h_expect_show(b, "DateStyle", "ISO, MDY");
	PQfinish(b);
	free(pid_a);
	free(pid_b);
	free(tz_default);
	h_corral_stop(c);
}

/* PostgreSQL refuses a bad startup value with 22023; through corral the client gets
 * the same error (at its first query), and the server connection stays usable. */
Test(session_params, invalid_startup_value_is_refused)
{
	struct h_corral *c = h_corral_start("", ONE_SERVER_DB, NULL);
	char *base = h_conninfo(c, H.user, H.db, H.password);
	char *ci = h_printf("%s options='-c DateStyle=garbage'", base);
	PGconn *conn = h_connect(c, ci);
	/* The FATAL is followed by the close, which libpq reports in the same result;
	 * verbose errors keep the SQLSTATE in the text. */
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	PGresult *res = h_exec(conn, "SELECT 1");
	cr_expect_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
	const char *msg = PQerrorMessage(conn);
	cr_expect(strstr(msg, "FATAL:  22023: invalid value for parameter \"DateStyle\"") != NULL,
		  "message: %s", msg);
	PQclear(res);
	PQfinish(conn);

	PGconn *ok = h_connect_bench(c);
	h_expect_show(ok, "DateStyle", "ISO, MDY");
	PQfinish(ok);
	free(ci);
	free(base);
	h_corral_stop(c);
}
