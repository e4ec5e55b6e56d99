/*
 * Session parameters: what a client asks for at startup (application_name,
 * client_encoding, options -c ...) is what SHOW tells it on its server connection, and
 * a client that asked for nothing sees the server's defaults, never what an earlier
 * client of the same server connection left there.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ------------------------------------------------- what one client leaves to the next */

/* One worker, so that "pool_size=1" is one server connection that every client gets. */
static const char *const TX_ONE_WORKER = "workers = 1\npool_mode = transaction\n";
static const char *const SESSION_ONE_WORKER = "workers = 1\npool_mode = session\n";

/* A client's settings in one row: search_path|statement_timeout|work_mem|lock_timeout|
 * corral_test.tenant (a custom setting: '' once RESET, as after DISCARD ALL). */
static const char *const SETTINGS_SQL =
	"SELECT current_setting('search_path') || '|' || current_setting('statement_timeout') || '|' || "
	"current_setting('work_mem') || '|' || current_setting('lock_timeout') || '|' || "
	"coalesce(current_setting('corral_test.tenant', true), '')";

/* What PostgreSQL itself gives a new session of user in db (with options, or none),
 * as one SETTINGS_SQL row. */
static char *direct_settings(const char *user, const char *db, const char *options)
{
	char *base = h_pg_conninfo(user, db, H.password);
	char *ci = options ? h_printf("%s options='%s'", base, options) : h_printf("%s", base);
	PGconn *conn = h_connect(NULL, ci);
	char *v = h_value(conn, SETTINGS_SQL);

	PQfinish(conn);
	free(ci);
	free(base);
	return v;
}

/* conninfo for corral as bench to db, with options (NULL: none). */
static char *corral_ci(const struct h_corral *c, const char *db, const char *options)
{
	char *base = h_conninfo(c, H.user, db, H.password);
	char *ci = options ? h_printf("%s options='%s'", base, options) : h_printf("%s", base);

	free(base);
	return ci;
}

static const char *const A_OPTIONS =
	"-c search_path=evil,public -c statement_timeout=1234 -c work_mem=7MB";

/*
 * Transaction pooling, one server connection: A's startup options apply to A, and B,
 * who asked for nothing, gets PostgreSQL's defaults for all of them (as a direct session
 * shows them), whether A is still connected (idle) or gone.  B's pg_sleep(1.5) outlives
 * A's statement_timeout of 1234 ms.
 */
Test(session_params, tx_startup_options_do_not_leak_to_the_next_client)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	char *a_ci = corral_ci(c, H.db, A_OPTIONS);
	char *direct = h_pg_conninfo(H.user, H.db, H.password);
	PGconn *d = h_connect(NULL, direct);
	char *def_path = h_value(d, "SHOW search_path");
	char *def_timeout = h_value(d, "SHOW statement_timeout");
	char *def_mem = h_value(d, "SHOW work_mem");

	PQfinish(d);
	cr_assert_str_neq(def_timeout, "1234ms", "PostgreSQL's default must differ from A's value");
	for (int round = 0; round < 2; round++) {
		bool a_stays = round == 0;
		PGconn *a = h_connect(c, a_ci);
		char *pid_a = h_value(a, "SELECT pg_backend_pid()");

		h_expect_show(a, "search_path", "evil,public");
		h_expect_show(a, "statement_timeout", "1234ms");
		h_expect_show(a, "work_mem", "7MB");
		if (!a_stays)
			PQfinish(a);

		PGconn *b = h_connect_bench(c);
		char *pid_b = h_value(b, "SELECT pg_backend_pid()");

		cr_expect_str_eq(pid_b, pid_a,
				 "B did not get A's server connection; the test proves nothing");
		h_expect_show(b, "search_path", def_path);
		h_expect_show(b, "statement_timeout", def_timeout);
		h_expect_show(b, "work_mem", def_mem);
		PGresult *r = h_exec(b, "SELECT pg_sleep(1.5)");

		cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "B's pg_sleep(1.5) (A %s): %s",
			     a_stays ? "idle" : "gone", PQresultErrorMessage(r));
		PQclear(r);
		if (a_stays) {
			/* A's next transaction has its values again. */
			h_expect_show(a, "search_path", "evil,public");
			h_expect_show(a, "statement_timeout", "1234ms");
			PQfinish(a);
		}
		PQfinish(b);
		free(pid_a);
		free(pid_b);
	}
	free(def_path);
	free(def_timeout);
	free(def_mem);
	free(direct);
	free(a_ci);
	h_corral_stop(c);
}

/*
 * A, B and C take turns on the one server connection many times, each with its own
 * options (C with none); every transaction sees exactly its client's values and
 * PostgreSQL's defaults for the rest.
 */
Test(session_params, tx_interleaved_clients_see_only_their_own_values)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	const char *a_opts = "-c search_path=evil,public -c statement_timeout=1234 -c work_mem=7MB "
			     "-c corral_test.tenant=a";
	const char *b_opts = "-c work_mem=9MB -c lock_timeout=2s -c corral_test.tenant=b";
	char *want_a = direct_settings(H.user, H.db, a_opts);
	char *want_b = direct_settings(H.user, H.db, b_opts);
	char *want_c = direct_settings(H.user, H.db, NULL);
	char *a_ci = corral_ci(c, H.db, a_opts), *b_ci = corral_ci(c, H.db, b_opts);
	PGconn *a = h_connect(c, a_ci), *b = h_connect(c, b_ci), *cl = h_connect_bench(c);
	char *pid = h_value(a, "SELECT pg_backend_pid()");

	cr_assert_str_neq(want_a, want_c);
	cr_assert_str_neq(want_b, want_c);
	for (int round = 0; round < 8; round++) {
		h_expect_value(a, SETTINGS_SQL, want_a);
		h_expect_value(b, SETTINGS_SQL, want_b);
		if (round % 2)
			h_expect_value(cl, SETTINGS_SQL, want_c);
		h_expect_value(b, SETTINGS_SQL, want_b); /* the same client twice: no change */
		h_expect_value(a, "SELECT pg_backend_pid()::text", pid);
	}
	/* A new client after all that, without options. */
	h_expect_new_client(c, NULL, SETTINGS_SQL, want_c);
	PQfinish(a);
	PQfinish(b);
	PQfinish(cl);
	free(pid);
	free(a_ci);
	free(b_ci);
	free(want_a);
	free(want_b);
	free(want_c);
	h_corral_stop(c);
}

/*
 * A leaves in the middle of a transaction (corral rolls it back) or while corral is
 * still giving the server its options: the options it had set are still reset for B.
 */
Test(session_params, tx_reset_after_a_client_left_early)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	char *a_ci = corral_ci(c, H.db, A_OPTIONS);
	char *want = direct_settings(H.user, H.db, NULL);

	/* Idle in a transaction, then gone: ROLLBACK undoes nothing that corral set. */
	PGconn *a = h_connect(c, a_ci);
	h_exec_ok(a, "BEGIN");
	h_expect_show(a, "work_mem", "7MB");
	PQfinish(a);
	h_expect_new_client(c, NULL, SETTINGS_SQL, want);

	/* Its first query and Terminate together: it is gone before the server has
	 * answered corral's set_config (the client_closed line says state=preparing). */
	bool orphaned = false;
	for (int i = 0; i < 20 && !orphaned; i++) {
		a = h_connect(c, a_ci);
		cr_assert(PQsendQuery(a, "SELECT 1"));
		PQfinish(a);
		orphaned = h_wait_log(c, "state=preparing", 0.5);
		h_expect_new_client(c, NULL, SETTINGS_SQL, want);
	}
	cr_expect(orphaned, "no client left while its server was being prepared; log:\n%s",
		  h_corral_log_tail(c));
	free(want);
	free(a_ci);
	h_corral_stop(c);
}

/*
 * "Default" is the session default, not the built-in one: a role with ALTER ROLE ... SET
 * values, logged in to with options of its own (the pool's database line), gets those
 * back after a client that changed them.  The role is this test's own.
 */
Test(session_params, tx_reset_restores_role_and_login_defaults)
{
	PGconn *su = h_superuser();
	h_exec_ok(su, "SET client_min_messages = warning"); /* no NOTICE that it did not exist */
	h_exec_ok(su, "DROP ROLE IF EXISTS corral_params_role");
	h_exec_ok(su, "CREATE ROLE corral_params_role LOGIN PASSWORD 'secret'");
	h_exec_ok(su, "ALTER ROLE corral_params_role SET work_mem = '3MB'");
	h_exec_ok(su, "ALTER ROLE corral_params_role SET search_path = roles_own, public");
	h_exec_ok(su, "ALTER ROLE corral_params_role SET statement_timeout = '4321'");
	PQfinish(su);

	const char *login_opts = "-c lock_timeout=1111";
	char *dbs =
		h_printf("params = host=@PGHOST@ port=@PGPORT@ dbname=%s user=corral_params_role "
			 "password=secret pool_size=1 options='%s'\n",
			 H.db, login_opts);
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, dbs, NULL);
	char *want = direct_settings("corral_params_role", H.db, login_opts);
	char *builtin = direct_settings(H.user, H.db, NULL);

	cr_assert_str_eq(want, "roles_own, public|4321ms|3MB|1111ms|", "the role's defaults: %s",
			 want);
	cr_assert_str_neq(want, builtin);
	char *a_ci = corral_ci(c, "params",
			       "-c search_path=evil -c statement_timeout=1234 "
			       "-c work_mem=7MB -c lock_timeout=2s");
	char *b_ci = corral_ci(c, "params", NULL);
	PGconn *a = h_connect(c, a_ci), *b = h_connect(c, b_ci);
	for (int round = 0; round < 3; round++) {
		h_expect_value(a, SETTINGS_SQL, "evil|1234ms|7MB|2s|");
		h_expect_value(b, SETTINGS_SQL, want);
	}
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
	free(a_ci);
	free(b_ci);
	free(want);
	free(builtin);
	free(dbs);
}

/*
 * Session pooling is as before: A keeps its options for its whole session, and B after
 * it sees the defaults, with server_reset_query (DISCARD ALL, the default) and also
 * without one (then corral's own resets do it).
 */
Test(session_params, session_mode_clients_see_their_own_values)
{
	const char *settings[] = {SESSION_ONE_WORKER,
				  "workers = 1\npool_mode = session\nserver_reset_query =\n"};
	char *want = direct_settings(H.user, H.db, NULL);
	char *want_a = direct_settings(H.user, H.db, A_OPTIONS);

	for (size_t i = 0; i < 2; i++) {
		struct h_corral *c = h_corral_start(settings[i], ONE_SERVER_DB, NULL);
		char *a_ci = corral_ci(c, H.db, A_OPTIONS);
		for (int round = 0; round < 2; round++) {
			PGconn *a = h_connect(c, a_ci);
			char *pid_a = h_value(a, "SELECT pg_backend_pid()");
			h_expect_value(a, SETTINGS_SQL, want_a);
			h_expect_value(a, SETTINGS_SQL, want_a);
			PQfinish(a);
			PGconn *b = h_connect_bench(c);
			h_expect_value(b, "SELECT pg_backend_pid()::text", pid_a);
			h_expect_value(b, SETTINGS_SQL, want);
			PQfinish(b);
			free(pid_a);
		}
		free(a_ci);
		h_corral_stop(c);
	}
	free(want);
	free(want_a);
}

/*
 * RESET of a setting the client gave at startup (options -c, PGDATESTYLE, PGTZ) goes
 * back to that value, as PostgreSQL's own for a startup parameter; RESET ALL does it for
 * every one.  Both pool modes, and a direct connection for the same steps.
 */
#define RESET_OPTIONS "-c DateStyle=Postgres,MDY -c TimeZone=PST8PDT -c work_mem=7MB"

static void reset_goes_back_to_startup_values(PGconn *conn)
{
	for (int i = 0; i < 2; i++) {
		h_exec_ok(conn, "SET DateStyle = ISO");
		h_exec_ok(conn, "SET TimeZone = 'UTC'");
		h_exec_ok(conn, "SET work_mem = '3MB'");
		h_expect_show(conn, "DateStyle", "ISO, MDY");
		if (i == 0) {
			h_exec_ok(conn, "RESET DateStyle");
			h_exec_ok(conn, "RESET TimeZone");
			h_exec_ok(conn, "RESET work_mem");
		} else {
			h_exec_ok(conn, "RESET ALL");
		}
		h_expect_show(conn, "DateStyle", "Postgres, MDY");
		h_expect_show(conn, "TimeZone", "PST8PDT");
		h_expect_show(conn, "work_mem", "7MB");
		cr_expect_str_eq(PQparameterStatus(conn, "DateStyle"), "Postgres, MDY");
		cr_expect_str_eq(PQparameterStatus(conn, "TimeZone"), "PST8PDT");
	}
	PQfinish(conn);
}

/* steps on a direct connection with these startup options. */
static void on_direct(const char *options, void (*steps)(PGconn *))
{
	char *base = h_pg_conninfo(H.user, H.db, H.password);
	char *ci = h_printf("%s options='%s'", base, options);
	PGconn *conn = PQconnectdb(ci);
	cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
	steps(conn);
	free(ci);
	free(base);
}

/* steps through corral with these startup options, in session and in transaction
 * pooling (one server); then the next client sees the defaults. */
static void in_both_modes(const char *options, void (*steps)(PGconn *))
{
	const char *modes[] = {"workers = 1\npool_mode = session\n",
			       "workers = 1\npool_mode = transaction\n"};
	for (size_t i = 0; i < 2; i++) {
		struct h_corral *c = h_corral_start(modes[i], ONE_SERVER_DB, NULL);
		char *base = h_conninfo(c, H.user, H.db, H.password);
		char *ci = h_printf("%s options='%s'", base, options);
		steps(h_connect(c, ci));
		PGconn *b = h_connect_bench(c);
		h_expect_show(b, "work_mem", "4MB");
		h_expect_value(b, "SELECT coalesce(current_setting('corral.tenant', true), '')",
			       "");
		PQfinish(b);
		free(ci);
		free(base);
		h_corral_stop(c);
	}
}

Test(session_params, reset_goes_back_to_startup_values_direct)
{
	on_direct(RESET_OPTIONS, reset_goes_back_to_startup_values);
}

/* Found by make regress (date, timestamp, horology, guc): corral gives a server the
 * client's startup values with set_config(), after which a RESET on the server goes to
 * the server's default; corral sets the startup value back (proxy/startup_reset.h). */
Test(session_params, reset_goes_back_to_startup_values)
{
	in_both_modes(RESET_OPTIONS, reset_goes_back_to_startup_values);
}

/*
 * The same RESET with a comment after it, SET ... TO DEFAULT, a startup value with a
 * quote and a backslash, and RESET in a transaction block (ROLLBACK undoes it, COMMIT
 * keeps it, an aborted block refuses it): as on a direct connection.  The client sees
 * one result, its own statement's.
 */
#define EDGE_OPTIONS "-c work_mem=7MB -c TimeZone=PST8PDT -c corral.tenant=o\\'b\\\\\\\\r"

static void expect_tag(PGconn *conn, const char *sql, const char *tag)
{
	PGresult *res = h_exec(conn, sql);
	cr_expect_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql,
		     PQresultErrorMessage(res));
	cr_expect_str_eq(PQcmdStatus(res), tag, "%s", sql);
	PQclear(res);
}

static void reset_edges(PGconn *conn)
{
	h_exec_ok(conn, "SET work_mem = '3MB'");
	expect_tag(conn, "RESET work_mem -- back to the startup value", "RESET");
	h_expect_show(conn, "work_mem", "7MB");
	h_exec_ok(conn, "SET work_mem = '3MB'");
	expect_tag(conn, "SET work_mem TO DEFAULT;", "SET");
	h_expect_show(conn, "work_mem", "7MB");
	h_exec_ok(conn, "SET TIME ZONE 'UTC'");
	expect_tag(conn, "RESET TIME ZONE", "RESET");
	h_expect_show(conn, "TimeZone", "PST8PDT");
	cr_expect_str_eq(PQparameterStatus(conn, "TimeZone"), "PST8PDT");
	h_exec_ok(conn, "SET TimeZone = 'UTC'");
	expect_tag(conn, "set session time zone local", "SET");
	h_expect_show(conn, "TimeZone", "PST8PDT");
	h_exec_ok(conn, "SET corral.tenant = 'x'");
	expect_tag(conn, "RESET corral.tenant", "RESET");
	h_expect_show(conn, "corral.tenant", "o'b\\r");

	h_exec_ok(conn, "SET work_mem = '3MB'");
	h_exec_ok(conn, "BEGIN");
	expect_tag(conn, "RESET work_mem", "RESET");
	h_expect_show(conn, "work_mem", "7MB");
	h_exec_ok(conn, "ROLLBACK");
	h_expect_show(conn, "work_mem", "3MB");
	h_exec_ok(conn, "BEGIN");
	expect_tag(conn, "RESET ALL", "RESET");
	h_exec_ok(conn, "COMMIT");
	h_expect_show(conn, "work_mem", "7MB");

	h_exec_ok(conn, "SET work_mem = '3MB'");
	h_exec_ok(conn, "BEGIN");
	PGresult *res = h_exec(conn, "SELECT 1/0");
	PQclear(res);
	res = h_exec(conn, "RESET work_mem");
	cr_expect_str_eq(h_sqlstate(res), "25P02");
	PQclear(res);
	h_exec_ok(conn, "ROLLBACK");
	h_expect_show(conn, "work_mem", "3MB");
	PQfinish(conn);
}

Test(session_params, reset_edges_direct)
{
	on_direct(EDGE_OPTIONS, reset_edges);
}

Test(session_params, reset_edges)
{
	in_both_modes(EDGE_OPTIONS, reset_edges);
}

/* Appends a Query message of sql to buf at *n. */
static void put_query(unsigned char *buf, size_t *n, const char *sql)
{
	size_t len = strlen(sql) + 1 + 4;
	buf[(*n)++] = 'Q';
	for (int shift = 24; shift >= 0; shift -= 8)
		buf[(*n)++] = (unsigned char)(len >> shift);
	memcpy(buf + *n, sql, strlen(sql) + 1);
	*n += strlen(sql) + 1;
}

/*
 * A RESET sent behind a Query not yet answered (no wait between them) waits for its
 * answer, then goes back to the startup value; the client sees each Query's own
 * replies only: SET, RESET, then SHOW's one row.
 */
Test(session_params, reset_behind_an_unanswered_query)
{
	const char *modes[] = {"auth_type = trust\nworkers = 1\npool_mode = session\n",
			       "auth_type = trust\nworkers = 1\npool_mode = transaction\n"};
	for (size_t i = 0; i < 2; i++) {
		struct h_corral *c = h_corral_start(modes[i], ONE_SERVER_DB, NULL);
		const char *kv[] = {"user",    "bench",           "database", "bench",
				    "options", "-c work_mem=7MB", NULL};
		unsigned char pkt[256], buf[16384];
		size_t n = h_startup_packet(pkt, sizeof pkt, H_PROTOCOL_3_0, kv), len = 0;
		bool closed;
		int fd = h_tcp_connect(c->port);
		h_send_all(fd, pkt, n);
		cr_assert(h_read_until_msg(fd, buf, sizeof buf, &len, 'Z', 10.0, &closed));
		n = 0;
		put_query(pkt, &n, "SET work_mem = '3MB'");
		put_query(pkt, &n, "RESET work_mem");
		put_query(pkt, &n, "SHOW work_mem");
		h_send_all(fd, pkt, n);
		char seen[64] = "", tags[128] = "", row[32] = "";
		int ready = 0;
		len = 0;
		while (ready < 3) {
			size_t at = 0, whole;
			char type;
			const unsigned char *body;
			size_t body_len;
			cr_assert(h_read_until_msg(fd, buf, sizeof buf, &len, 'Z', 10.0, &closed),
				  "replies so far: %s", seen);
			while ((whole = h_msg(buf + at, len - at, &type, &body, &body_len)) != 0) {
				if (type != 'S' && strlen(seen) + 1 < sizeof(seen))
					strncat(seen, &type, 1);
				if (type == 'C')
					strcat(strcat(tags, (const char *)body), ",");
				if (type == 'D' && body_len > 6 && h_be32(body + 2) < sizeof(row))
					memcpy(row, body + 6, h_be32(body + 2));
				ready += type == 'Z';
				at += whole;
			}
			memmove(buf, buf + at, len - at);
			len -= at;
		}
		cr_expect_str_eq(seen, "CZCZTDCZ", "%s", modes[i]);
		cr_expect_str_eq(tags, "SET,RESET,SHOW,", "%s", modes[i]);
		cr_expect_str_eq(row, "7MB", "%s", modes[i]);
		close(fd);
		h_corral_stop(c);
	}
}
