/*
 * pin_policy in transaction pooling (proxy/pin.h): what corral cannot carry from one
 * server connection to another (LISTEN, session advisory locks, temporary tables,
 * SET of settings it does not carry) keeps the client's server (pin), is refused
 * (error, 0A000, the client stays usable) or is warned about once (warn), and never
 * reaches another client under the default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(pin, H_SUITE);

#define USERS "\"bench\" \"secret\"\n\"admin\" \"adminpw\"\n"
#define TX "workers = 1\npool_mode = transaction\nadmin_users = admin\n"
static const char *const TWO_SERVERS = H_BENCH_DB_WITH(" pool_size=2");

static struct h_corral *start(const char *extra)
{
	char *settings = h_printf("%s%s", TX, extra ? extra : "");
	struct h_corral *c = h_corral_start(settings, TWO_SERVERS, USERS);
	free(settings);
	return c;
}

static PGconn *admin(const struct h_corral *c)
{
	char *ci = h_conninfo(c, "admin", "corral", "adminpw");
	PGconn *conn = h_connect(c, ci);
	free(ci);
	return conn;
}

/* SHOW PINS's count for (reason, action) of the bench pool, 0 if no row. */
static long pins_of(PGconn *adm, const char *reason, const char *action)
{
	PGresult *res = h_exec(adm, "SHOW PINS");
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	long n = 0;
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), reason) == 0 &&
		    strcmp(PQgetvalue(res, i, 1), action) == 0 && !PQgetisnull(res, i, 2) &&
		    strcmp(PQgetvalue(res, i, 2), "bench") == 0)
			n = atol(PQgetvalue(res, i, 5));
	PQclear(res);
	return n;
}

/* SHOW POOLS's pinned column of the bench pool. */
static long pinned_of(PGconn *adm)
{
	PGresult *res = h_exec(adm, "SHOW POOLS");
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	int col = PQfnumber(res, "pinned");
	cr_assert_eq(col, PQnfields(res) - 1, "pinned is the last column");
	long n = -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), "bench") == 0)
			n = atol(PQgetvalue(res, i, col));
	PQclear(res);
	return n;
}

/* No client is pinned (SHOW POOLS); then a and the n others leave. */
static void nothing_pinned_then_close(const struct h_corral *c, PGconn *a, PGconn **others, int n)
{
	PGconn *adm = admin(c);
	cr_expect_eq(pinned_of(adm), 0, "carried SETs pinned a client");
	PQfinish(adm);
	for (int i = 0; i < n; i++)
		PQfinish(others[i]);
	PQfinish(a);
}

/* SHOW PINS counts reason/action n times, and SHOW POOLS' pinned column is pinned. */
static void expect_pins(const struct h_corral *c, const char *reason, const char *action,
			long long n, long long pinned)
{
	PGconn *adm = admin(c);
	long got = pins_of(adm, reason, action), now = pinned_of(adm);
	cr_expect_eq(got, n, "SHOW PINS %s/%s: %ld", reason, action, got);
	cr_expect_eq(now, pinned, "SHOW POOLS pinned: %ld", now);
	PQfinish(adm);
}

/* The 0A000 error of sql, then the client still answers. */
static void expect_refused(PGconn *conn, const char *sql, const char *needle)
{
	PGresult *res = h_exec(conn, sql);
	cr_expect_eq(PQresultStatus(res), PGRES_FATAL_ERROR, "%s", sql);
	cr_expect_str_eq(h_sqlstate(res), "0A000", "%s: %s", sql, PQresultErrorMessage(res));
	const char *msg = h_err_field(res, PG_DIAG_MESSAGE_PRIMARY);
	cr_expect(msg && strstr(msg, needle) && strstr(msg, "pin_policy"), "%s: %s", sql, msg);
	PQclear(res);
	h_expect_value(conn, "SELECT 41 + 1", "42");
}

/* Under the default, a client that LISTENs keeps its server, and hears its NOTIFY. */
Test(pin, listen_keeps_the_server_and_hears_notify, .timeout = 60)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	char *pid = h_value(a, "SELECT pg_backend_pid()");
	h_exec_ok(a, "/* listen */ LISTEN pin_channel");
	PGconn *b = h_connect_bench(c);
	for (int i = 0; i < 20; i++) {
		char *p = h_value(b, "SELECT pg_backend_pid()");
		cr_expect_str_neq(p, pid, "another client got the listening server");
		free(p);
		char *q = h_value(a, "SELECT pg_backend_pid()");
		cr_expect_str_eq(q, pid, "the listening client lost its server");
		free(q);
	}
	h_exec_ok(b, "NOTIFY pin_channel, 'hello'");
	double deadline = h_now() + 10;
	PGnotify *n = NULL;
	while (!n && h_now() < deadline) {
		PQconsumeInput(a);
		n = PQnotifies(a);
		if (!n)
			h_exec_ok(a, "SELECT 1");
	}
	cr_assert_not_null(n, "no notification for the listening client");
	cr_expect_str_eq(n->relname, "pin_channel");
	cr_expect_str_eq(n->extra, "hello");
	PQfreemem(n);
	expect_pins(c, "listen", "pin", 1, 1);
	PQfinish(a);
	PQfinish(b);
	free(pid);
	h_corral_stop(c);
}

/* A session advisory lock leaves with its client: DISCARD ALL (server_reset_query)
 * before anyone else gets the server. */
Test(pin, advisory_lock_never_outlives_its_client, .timeout = 60)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	h_expect_value(a, "SELECT pg_advisory_lock(770077) IS NULL", "f");
	cr_expect_str_eq(h_direct_value("SELECT count(*) FROM pg_locks WHERE locktype = "
					"'advisory' AND objid = 770077"),
			 "1");
	PGconn *b = h_connect_bench(c);
	/* Another client can never take it (it is held by a's server, not b's). */
	for (int i = 0; i < 10; i++)
		h_expect_value(b, "SELECT pg_try_advisory_xact_lock(770077)", "f");
	PQfinish(a);
	cr_expect_lt(h_wait_pg_value("SELECT count(*) FROM pg_locks WHERE locktype = "
				     "'advisory' AND objid = 770077",
				     "0", 10),
		     10, "the lock outlived its client");
	h_expect_value(b, "SELECT pg_try_advisory_xact_lock(770077)", "t");
	PQfinish(b);
	h_corral_stop(c);
}

/* a's next query runs on another server: another client holds a's last one in a
 * transaction (two servers; the others hold what they get until one gets a's, since
 * each is handed its own previous server first).  Returns the holder, in its
 * transaction. */
static PGconn *push_off(struct h_corral *c, PGconn *a, PGconn *const *others, int n)
{
	char *mine = h_value(a, "SELECT pg_backend_pid()");
	PGconn *holder = NULL;
	int opened = 0;
	for (int i = 0; i < n && !holder; i++, opened++) {
		h_exec_ok(others[i], "BEGIN");
		char *p = h_value(others[i], "SELECT pg_backend_pid()");
		if (strcmp(p, mine) == 0)
			holder = others[i];
		free(p);
	}
	for (int i = 0; i < opened; i++)
		if (others[i] != holder)
			h_exec_ok(others[i], "COMMIT");
	(void)c;
	free(mine);
	cr_assert(holder, "no client got a's server");
	return holder;
}

/* SET / RESET are carried: nobody else ever sees them, and the client sees its own on
 * every server it gets; none of it pins. */
Test(pin, set_is_carried_and_never_seen_by_another_client, .timeout = 90)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	char *path = h_value(a, "SHOW search_path");
	char *wm_default = h_value(a, "SHOW work_mem");
	h_exec_ok(a, "SET search_path = pin_nowhere, public");
	h_exec_ok(a, "SET work_mem = '7777kB'");
	h_exec_ok(a, "SET myapp.tenant TO 'a-tenant'");
	enum { N = 8 };
	PGconn *others[N];
	for (int i = 0; i < N; i++)
		others[i] = h_connect_bench(c);
	char *first = h_value(a, "SELECT pg_backend_pid()");
	bool switched = false;
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < N; i++) {
			h_expect_show(others[i], "search_path", path);
			h_expect_show(others[i], "work_mem", wm_default);
			h_expect_value(others[i],
				       "SELECT current_setting('myapp.tenant', true) IS "
				       "DISTINCT FROM 'a-tenant'",
				       "t");
		}
		PGconn *holder = push_off(c, a, others, N);
		h_expect_show(a, "search_path", "pin_nowhere, public");
		h_expect_show(a, "work_mem", "7777kB");
		h_expect_value(a, "SELECT current_setting('myapp.tenant')", "a-tenant");
		char *now = h_value(a, "SELECT pg_backend_pid()");
		switched = switched || strcmp(now, first) != 0;
		free(now);
		h_exec_ok(holder, "COMMIT");
	}
	cr_expect(switched, "a never changed servers; the test proves nothing");
	/* A SET in a Query that fails does not take effect, here or anywhere. */
	PGresult *res = h_exec(a, "SET work_mem = '5MB'; SELECT 1/0");
	cr_expect_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
	PQclear(res);
	h_expect_show(a, "work_mem", "7777kB");
	h_exec_ok(push_off(c, a, others, N), "COMMIT");
	/* RESET goes back to the default; asyncpg's reset Query resets everything. */
	h_exec_ok(a, "RESET work_mem");
	h_expect_show(a, "work_mem", wm_default);
	h_exec_ok(a, "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;");
	for (int i = 0; i < N; i++)
		h_exec(others[i], "COMMIT");
	h_expect_show(a, "search_path", path);
	nothing_pinned_then_close(c, a, others, N);
	free(first);
	free(path);
	free(wm_default);
	h_corral_stop(c);
}

/* What corral cannot carry pins, and stays with its client. */
Test(pin, uncarried_set_pins, .timeout = 60)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	PGconn *b = h_connect_bench(c);
	char *pid = h_value(a, "SELECT pg_backend_pid()");
	h_exec_ok(a, "SELECT set_config('work_mem', '6666kB', false)");
	for (int i = 0; i < 10; i++) {
		char *p = h_value(b, "SELECT pg_backend_pid()");
		cr_expect_str_neq(p, pid);
		free(p);
		h_expect_show(b, "work_mem", "4MB");
		h_expect_show(a, "work_mem", "6666kB");
	}
	PGconn *adm = admin(c);
	cr_expect_eq(pins_of(adm, "set", "pin"), 1);
	PQfinish(adm);
	PQfinish(a);
	PQfinish(b);
	free(pid);
	h_corral_stop(c);
}

/* A temporary table stays with its client, which keeps finding it. */
Test(pin, temp_table_stays_with_its_client, .timeout = 60)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	PGconn *b = h_connect_bench(c);
	h_exec_ok(a, "CREATE TEMP TABLE pin_tmp (x int)");
	for (int i = 0; i < 10; i++) {
		h_exec_ok(b, "SELECT 1");
		h_exec_ok(a, "INSERT INTO pin_tmp VALUES (1)");
	}
	h_expect_value(a, "SELECT count(*) FROM pin_tmp", "10");
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
}

/* error: each construct is refused before it reaches the server, simple and extended. */
Test(pin, error_policy_refuses_each_construct, .timeout = 60)
{
	struct h_corral *c = start("pin_policy = error\n");
	PGconn *a = h_connect_bench(c);
	expect_refused(a, "LISTEN pin_refused", "LISTEN");
	expect_refused(a, "SELECT pg_advisory_lock(880001)", "advisory lock");
	expect_refused(a, "CREATE TEMP TABLE pin_t (x int)", "temporary");
	expect_refused(a, "SELECT set_config('work_mem', '1MB', false)", "work_mem");
	h_exec_ok(a, "SET work_mem = '1MB'"); /* carried: never refused */
	expect_refused(a, "BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1; COMMIT", "WITH HOLD");
	expect_refused(a, "LOAD 'plpgsql'", "LOAD");
	/* Not refused: what corral carries or what ends with the transaction. */
	h_exec_ok(a, "SET TimeZone = 'UTC'");
	h_exec_ok(a, "BEGIN; SET LOCAL work_mem = '1MB'; SELECT pg_advisory_xact_lock(1); COMMIT");
	h_exec_ok(a, "SELECT 'LISTEN x', $$ pg_advisory_lock(1) $$ -- LISTEN");
	/* Extended protocol: the Parse is refused, and the rest up to Sync skipped. */
	PGresult *res = PQexecParams(a, "SELECT pg_advisory_lock($1::bigint)", 1, NULL,
				     (const char *const[]){"880005"}, NULL, NULL, 0);
	cr_expect_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
	cr_expect_str_eq(h_sqlstate(res), "0A000");
	PQclear(res);
	h_expect_value(a, "SELECT 2", "2");
	cr_expect_str_eq(h_direct_value("SELECT count(*) FROM pg_locks WHERE locktype = "
					"'advisory' AND objid IN (880001, 880005)"),
			 "0");
	PGconn *adm = admin(c);
	cr_expect_eq(pins_of(adm, "advisory_lock", "error"), 2);
	cr_expect_eq(pins_of(adm, "listen", "error"), 1);
	cr_expect_eq(pins_of(adm, "set", "error"), 1);
	cr_expect_eq(pinned_of(adm), 0);
	PQfinish(adm);
	PQfinish(a);
	h_corral_stop(c);
}

static void count_notice(void *arg, const PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg && strstr(msg, "pin_policy = warn"))
		(*(int *)arg)++;
}

/* warn: pooling goes on; the client hears it once. */
Test(pin, warn_policy_warns_once, .timeout = 60)
{
	struct h_corral *c = start("pin_policy = warn\n");
	PGconn *a = h_connect_bench(c);
	int notices = 0;
	PQsetNoticeReceiver(a, count_notice, &notices);
	h_exec_ok(a, "SET work_mem = '3MB'"); /* carried: no notice */
	cr_expect_eq(notices, 0);
	h_exec_ok(a, "SELECT set_config('work_mem', '3MB', false)");
	h_exec_ok(a, "SELECT pg_advisory_unlock_all()");
	h_exec_ok(a, "SELECT set_config('work_mem', '4MB', false)");
	cr_expect_eq(notices, 1);
	h_exec_ok(a, "RESET work_mem");
	expect_pins(c, "set", "warn", 1, 0);
	PQfinish(a);
	h_corral_stop(c);
}

/* SET inside a transaction block is carried if the block commits, forgotten if it
 * rolls back; neither pins. */
Test(pin, set_in_a_block_follows_its_commit, .timeout = 60)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	enum { N = 3 };
	PGconn *others[N];
	for (int i = 0; i < N; i++)
		others[i] = h_connect_bench(c);
	char *wm_default = h_value(a, "SHOW work_mem");
	h_exec_ok(a, "BEGIN");
	h_exec_ok(a, "SET work_mem = '3333kB'");
	h_exec_ok(a, "SELECT 1");
	h_exec_ok(a, "COMMIT");
	h_exec_ok(a, "BEGIN");
	h_exec_ok(a, "SET statement_timeout = '77s'");
	h_exec_ok(a, "ROLLBACK");
	for (int round = 0; round < 3; round++) {
		PGconn *holder = push_off(c, a, others, N);
		h_expect_show(a, "work_mem", "3333kB");
		h_expect_show(a, "statement_timeout", "0");
		h_exec_ok(holder, "COMMIT");
		for (int i = 0; i < N; i++)
			h_expect_show(others[i], "work_mem", wm_default);
	}
	nothing_pinned_then_close(c, a, others, N);
	free(wm_default);
	h_corral_stop(c);
}

/* The extended protocol (libpq's PQexecParams, psycopg 3): an unnamed Parse of SET,
 * bound and executed before its Sync, is carried; a named one pins. */
Test(pin, extended_protocol_set_is_carried, .timeout = 60)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	enum { N = 3 };
	PGconn *others[N];
	for (int i = 0; i < N; i++)
		others[i] = h_connect_bench(c);
	char *wm_default = h_value(a, "SHOW work_mem");
	PGresult *res = PQexecParams(a, "SET work_mem = '2222kB'", 0, NULL, NULL, NULL, NULL, 0);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
	PQclear(res);
	for (int round = 0; round < 3; round++) {
		PGconn *holder = push_off(c, a, others, N);
		res = PQexecParams(a, "SELECT current_setting('work_mem')", 0, NULL, NULL, NULL,
				   NULL, 0);
		cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK);
		cr_expect_str_eq(PQgetvalue(res, 0, 0), "2222kB");
		PQclear(res);
		h_exec_ok(holder, "COMMIT");
		for (int i = 0; i < N; i++)
			h_expect_show(others[i], "work_mem", wm_default);
	}
	PGconn *adm = admin(c);
	cr_expect_eq(pinned_of(adm), 0);
	res = PQprepare(a, "named_set", "SET work_mem = '1111kB'", 0, NULL);
	cr_expect_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
	PQclear(res);
	cr_expect_eq(pinned_of(adm), 1);
	PQfinish(adm);
	for (int i = 0; i < N; i++)
		PQfinish(others[i]);
	PQfinish(a);
	free(wm_default);
	h_corral_stop(c);
}

/*
 * SQL prepared statements corral does not rewrite (a PREPARE inside a multi-statement
 * query; a name of corral's own server statements there) pin: the statement stays on
 * the client's own server and is gone (server_reset_query) before anyone else gets it.
 */
Test(pin, multi_statement_prepare_pins_and_never_leaks, .timeout = 60)
{
	struct h_corral *c = start(NULL);
	PGconn *a = h_connect_bench(c);
	h_exec_ok(a, "PREPARE leak AS SELECT 'from a'::text; SELECT 1");
	h_expect_value(a, "EXECUTE leak", "from a"); /* its own server keeps it */
	expect_pins(c, "prepared_sql", "pin", 1, 1);
	PQfinish(a);
	/* Both servers, one after the other, to anyone else: no leak on either. */
	PGconn *b = h_connect_bench(c), *d = h_connect_bench(c);
	h_exec_ok(b, "BEGIN");
	h_exec_ok(d, "BEGIN");
	PGresult *rb = h_exec(b, "EXECUTE leak"), *rd = h_exec(d, "EXECUTE leak");
	cr_expect_str_eq(h_sqlstate(rb), "26000", "another client ran a's statement");
	cr_expect_str_eq(h_sqlstate(rd), "26000", "another client ran a's statement");
	PQclear(rb);
	PQclear(rd);
	PQfinish(b);
	PQfinish(d);
	h_corral_stop(c);
}

/* The SQLSTATE of sql's error on conn ("" when it succeeds). */
static char *state_of(PGconn *conn, const char *sql)
{
	PGresult *res = h_exec(conn, sql);
	char *st = strdup(h_sqlstate(res) ? h_sqlstate(res) : "");
	PQclear(res);
	return st;
}

/*
 * currval() / lastval() never read another client's sequence values (nextval leaves
 * them on the server connection; a column DEFAULT calls it unseen): B, given the server
 * A's nextval ran on, gets PostgreSQL's 55000 as on its own connection; A keeps its own
 * value while nobody else used its server, in one transaction always, and is pinned by
 * currval (sequence_state) so its later transactions see its own values.
 */
Test(pin, sequence_values_never_reach_another_client, .timeout = 60)
{
	struct h_corral *c = h_corral_start("workers = 1\npool_mode = transaction\n"
					    "admin_users = admin\n",
					    H_BENCH_DB_WITH(" pool_size=1"), USERS);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	h_exec_ok(a, "DROP TABLE IF EXISTS pin_seq_t; DROP SEQUENCE IF EXISTS pin_seq;"
		     "CREATE SEQUENCE pin_seq; CREATE TABLE pin_seq_t (id serial, v int)");
	/* a column DEFAULT, never seen by corral, then the other client reads */
	h_exec_ok(a, "INSERT INTO pin_seq_t (v) VALUES (1)");
	h_expect_value(a, "SELECT nextval('pin_seq')::text", "1");
	const char *readers[] = {"SELECT currval('pin_seq')", "SELECT lastval()",
				 "SELECT currval('pin_seq_t_id_seq')",
				 "BEGIN; SELECT currval('pin_seq'); COMMIT"};
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		char *st = state_of(b, readers[i]);
		cr_expect_str_eq(st, "55000", "b read a's sequence values: %s", readers[i]);
		free(st);
		h_exec_ok(b, "ROLLBACK");
	}
	PQfinish(b); /* pinned by its currval: its server is reset when it leaves */
	/* another client used the server since a's nextval: 55000 (directly: 1), never
	 * another client's value */
	char *st = state_of(a, "SELECT currval('pin_seq')");
	cr_expect_str_eq(st, "55000");
	free(st);
	/* pinned now: its values are its own from here on, across transactions */
	h_expect_value(a, "SELECT nextval('pin_seq')::text", "2");
	h_expect_value(a, "SELECT currval('pin_seq')::text", "2");
	h_expect_value(a, "SELECT lastval()::text", "2");
	expect_pins(c, "sequence_state", "pin", 2, 2);
	PQfinish(a);
	/* in one transaction, its own value */
	PGconn *d = h_connect_bench(c);
	h_expect_value(d, "BEGIN; SELECT nextval('pin_seq'); SELECT currval('pin_seq')::text", "3");
	h_exec_ok(d, "COMMIT");
	PQfinish(d);
	h_corral_stop(c);
}

/* A client alone on its server keeps its values across transactions, as directly. */
Test(pin, sequence_values_of_a_client_alone_stay, .timeout = 60)
{
	struct h_corral *c = h_corral_start("workers = 1\npool_mode = transaction\n",
					    H_BENCH_DB_WITH(" pool_size=1"), USERS);
	PGconn *a = h_connect_bench(c);
	h_exec_ok(a, "DROP SEQUENCE IF EXISTS pin_seq2; CREATE SEQUENCE pin_seq2");
	h_expect_value(a, "SELECT nextval('pin_seq2')::text", "1");
	h_expect_value(a, "SELECT currval('pin_seq2')::text", "1");
	h_expect_value(a, "SELECT lastval()::text", "1");
	PQfinish(a);
	h_corral_stop(c);
}
