/*
 * Attack 12: startup RESET rewrite (proxy/startup_reset.c), currval/lastval isolation
 * in transaction pooling (proxy/seq_state.c).  One server, one worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"
#include "tests/integration/prepared_helpers.h"

/* Tests of holes found here, not fixed yet (currval after BEGIN, or through a name the
 * text does not spell; README "Sequence values"): built skipped unless
 * -DCORRAL_KNOWN_DEFECTS. */
#ifdef CORRAL_KNOWN_DEFECTS
#define KNOWN_DEFECT false
#else
#define KNOWN_DEFECT true
#endif

TestSuite(attack12, H_SUITE);

#define TX "pool_mode = transaction\nworkers = 1\n"
#define SESS "pool_mode = session\nworkers = 1\n"
#define ONE H_BENCH_DB_WITH(" pool_size=1")

static void expect_state(PGconn *conn, const char *sql, const char *want)
{
	PGresult *r = h_exec(conn, sql);
	const char *got = h_sqlstate(r);
	cr_expect_str_eq(got, want, "%s: got SQLSTATE '%s' (%s), want %s", sql, got,
			 PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "-", want);
	PQclear(r);
}

static void mkseq(const char *name)
{
	char *sql = h_printf("DROP SEQUENCE IF EXISTS %s; CREATE SEQUENCE %s", name, name);
	h_direct_exec(sql);
	free(sql);
}

/* B's transaction starts with BEGIN; its currval comes second: PostgreSQL 55000. */
Test(attack12, currval_after_begin_tx_pool, .disabled = KNOWN_DEFECT)
{
	mkseq("atk12_s1");
	struct h_corral *c = h_corral_start(TX, ONE, NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	h_expect_value(a, "SELECT nextval('atk12_s1')", "1");
	h_exec_ok(b, "BEGIN");
	expect_state(b, "SELECT currval('atk12_s1')", "55000");
	h_exec_ok(b, "ROLLBACK");
	h_exec_ok(b, "BEGIN");
	expect_state(b, "SELECT lastval()", "55000");
	h_exec_ok(b, "ROLLBACK");
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
}

/* B prepared "SELECT currval" earlier; its Bind/Execute comes first in a transaction.
 * (corral pins B at the named Parse: with pool_size=1 A would wait, so 2 servers.) */
Test(attack12, currval_prepared_bind_first)
{
	mkseq("atk12_s2");
	struct h_corral *c = h_corral_start(TX, H_BENCH_DB_WITH(" pool_size=2"), NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	pr_prepare_ok(b, "cv", "SELECT currval('atk12_s2')");
	h_expect_value(a, "SELECT nextval('atk12_s2')", "1");
	pr_exec_prepared(b, "cv", NULL, NULL, "55000");
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
}

/* Unnamed: PQexecParams sends Parse first: fine; name in a comment too. */
Test(attack12, currval_extended_parse)
{
	mkseq("atk12_s3");
	struct h_corral *c = h_corral_start(TX, H_BENCH_DB_WITH(" pool_size=2"), NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	h_expect_value(a, "SELECT nextval('atk12_s3')", "1");
	PGresult *r = h_exec_params(b, "SELECT currval('atk12_s3')", 0, NULL, 15.0);
	cr_expect_str_eq(h_sqlstate(r), "55000");
	PQclear(r);
	h_expect_value(a, "SELECT nextval('atk12_s3')", "2");
	expect_state(b, "SELECT /* x */ lastval()", "55000");
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
}

/* Startup value with a quote and a backslash, RESET in various shapes. */
static void reset_shapes(const char *settings)
{
	struct h_corral *c = h_corral_start(settings, ONE, NULL);
	char *ci = h_printf("%s options='-c application_name=a\\'b\\\\\\\\c'",
			    h_conninfo(c, "bench", "bench", "secret"));
	PGconn *a = h_connect(c, ci);
	h_expect_show(a, "application_name", "a'b\\c");
	const char *shapes[] = {"RESET application_name",
				"RESET application_name;",
				"RESET application_name;;",
				"RESET application_name -- x",
				"RESET application_name /* x */",
				"SET application_name TO DEFAULT",
				"RESET ALL",
				"reset all ;",
				NULL};
	for (int i = 0; shapes[i]; i++) {
		h_exec_ok(a, "SET application_name = 'zz'");
		PGresult *r = h_exec(a, shapes[i]);
		cr_expect_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", shapes[i],
			     PQresultErrorMessage(r));
		cr_expect_str_eq(PQcmdStatus(r),
				 strncasecmp(shapes[i], "SET", 3) == 0 ? "SET" : "RESET", "%s",
				 shapes[i]);
		PQclear(r);
		h_expect_show(a, "application_name", "a'b\\c");
	}
	/* RESET ALL; SELECT 1: the client's SELECT's row must come. */
	PGresult *r = h_exec(a, "RESET ALL; SELECT 7");
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		cr_expect_str_eq(PQgetvalue(r, 0, 0), "7");
	PQclear(r);
	/* In an aborted transaction: 25P02 only, the next works. */
	h_exec_ok(a, "BEGIN");
	PQclear(h_exec(a, "SELECT 1/0"));
	expect_state(a, "RESET application_name", "25P02");
	h_exec_ok(a, "ROLLBACK");
	h_expect_value(a, "SELECT 5", "5");
	PGconn *b = h_connect_bench(c);
	PQfinish(a);
	h_expect_show(b, "application_name", "");
	PQfinish(b);
	free(ci);
	h_corral_stop(c);
}

Test(attack12, reset_shapes_tx)
{
	reset_shapes(TX);
}
Test(attack12, reset_shapes_session)
{
	reset_shapes(SESS);
}

/* Client A sends RESET and leaves at once; B on the same server sees no A value. */
Test(attack12, reset_then_disconnect)
{
	struct h_corral *c = h_corral_start(TX "auth_type = trust\n", ONE, NULL);
	for (int i = 0; i < 20; i++) {
		int fd = h_raw_login(c->port, NULL);
		const struct raw_msg m[] = {RAW('Q', "SET application_name='leak'\0"),
					    RAW('Q', "RESET application_name\0"),
					    RAW('X', ""),
					    {0}};
		raw_send(fd, m);
		close(fd);
	}
	PGconn *b = h_connect(c, h_conninfo(c, "bench", "bench", NULL));
	h_expect_show(b, "application_name", "");
	h_expect_value(b, "SELECT 3", "3");
	PQfinish(b);
	h_corral_stop(c);
}

static int login_app(int port, const char *app)
{
	const char *kv[] = {"user", "bench", "database", "bench", "application_name", app, NULL};
	unsigned char pkt[256], buf[16384];
	size_t n = h_startup_packet(pkt, sizeof pkt, H_PROTOCOL_3_0, kv), len = 0;
	bool closed;
	int fd = h_tcp_connect(port);
	h_send_all(fd, pkt, n);
	cr_assert(h_read_until_msg(fd, buf, sizeof buf, &len, 'Z', 10.0, &closed));
	return fd;
}

/* Pipelined: SELECT 1, RESET (rewritten), SELECT 2 in one write. */
static void pipelined(const char *settings, const char *reset, const char *want)
{
	struct h_corral *c = h_corral_start(settings, ONE, NULL);
	int fd = login_app(c->port, "origA");
	const struct raw_msg s[] = {RAW('Q', "SET application_name='zz'\0"), {0}};
	free(raw_exchange(fd, s));
	unsigned char q[600];
	size_t n = 0;
	const char *qs[] = {"SELECT 1", reset, "SELECT 2", "SHOW application_name", NULL};
	for (int i = 0; qs[i]; i++) {
		size_t l = strlen(qs[i]) + 1;
		q[n++] = 'Q';
		q[n++] = 0;
		q[n++] = 0;
		q[n++] = (unsigned char)((l + 4) >> 8);
		q[n++] = (unsigned char)(l + 4);
		memcpy(q + n, qs[i], l);
		n += l;
	}
	h_send_all(fd, q, n);
	usleep(500000);
	const struct raw_msg none[] = {{0}};
	char *got = raw_exchange(fd, none);
	cr_expect_str_eq(got, want, "%s: got %s", reset, got);
	close(fd);
	PGconn *b = h_connect(c, h_conninfo(c, "bench", "bench", NULL));
	h_expect_show(b, "application_name", "");
	PQfinish(b);
	h_corral_stop(c);
}

#define TXT TX "auth_type = trust\n"
#define SST SESS "auth_type = trust\n"
Test(attack12, reset_pipelined_tx)
{
	pipelined(TXT, "RESET application_name", "TDCZCSZTDCZTDCZ");
}
Test(attack12, reset_pipelined_all_tx)
{
	pipelined(TXT, "RESET ALL", "TDCZCSZTDCZTDCZ");
}
Test(attack12, reset_pipelined_session)
{
	pipelined(SST, "RESET application_name", "TDCZCSZTDCZTDCZ");
}

/* A has application_name origA at startup, SETs it, RESETs (rewritten) and leaves at once. */
static void reset_leave(const char *settings)
{
	struct h_corral *c = h_corral_start(settings, ONE, NULL);
	for (int i = 0; i < 20; i++) {
		int fd = login_app(c->port, "origA");
		const struct raw_msg m[] = {RAW('Q', "SET application_name='leak'\0"),
					    RAW('Q', "RESET application_name\0"),
					    RAW('X', ""),
					    {0}};
		raw_send(fd, m);
		close(fd);
	}
	PGconn *b = h_connect(c, h_conninfo(c, "bench", "bench", NULL));
	h_expect_show(b, "application_name", "");
	h_expect_value(b, "SELECT 3", "3");
	PQfinish(b);
	h_corral_stop(c);
}
Test(attack12, reset_leave_tx)
{
	reset_leave(TXT);
}
Test(attack12, reset_leave_session)
{
	reset_leave(SST);
}

Test(attack12, options_backslash_direct_pg)
{
	char *ci = h_printf("%s options='-c application_name=a\\'b\\\\\\\\c'",
			    h_pg_conninfo("bench", "bench", "secret"));
	PGconn *a = h_connect(NULL, ci);
	h_expect_show(a, "application_name", "a'b\\c");
	h_exec_ok(a, "SET application_name = 'zz'");
	h_exec_ok(a, "RESET application_name");
	h_expect_show(a, "application_name", "a'b\\c");
	PQfinish(a);
	free(ci);
}

/* A sends SET and Terminate in one write and closes at once; B, next on the one
 * server, must see its own (default) values.  PostgreSQL: a new session, defaults.
 * (Found here: the ParameterStatus of A's SET came while corral drained the server after
 * A left, and was skipped, so B's link did not reset the reported setting.) */
static void set_then_leave(const char *settings, const char *set, const char *name,
			   const char *want)
{
	struct h_corral *c = h_corral_start(settings, ONE, NULL);
	bool late = strstr(settings, "session") != NULL;
	PGconn *b = NULL;
	if (!late) {
		b = h_connect(c, h_conninfo(c, "bench", "bench", NULL));
		h_expect_show(b, name, want);
	}
	for (int i = 0; i < 5; i++) {
		int fd = h_raw_login(c->port, NULL);
		unsigned char q[300];
		size_t l = strlen(set) + 1, n = 0;
		q[n++] = 'Q';
		q[n++] = 0;
		q[n++] = 0;
		q[n++] = (unsigned char)((l + 4) >> 8);
		q[n++] = (unsigned char)(l + 4);
		memcpy(q + n, set, l);
		n += l;
		memcpy(q + n, "X\0\0\0\4", 5);
		n += 5;
		h_send_all(fd, q, n);
		close(fd);
	}
	usleep(200000);
	if (late)
		b = h_connect(c, h_conninfo(c, "bench", "bench", NULL));
	h_expect_show(b, name, want);
	PQfinish(b);
	h_corral_stop(c);
}

Test(attack12, set_x_leak_statement_timeout_tx)
{
	set_then_leave(TXT, "SET statement_timeout = '4321'", "statement_timeout", "0");
}
Test(attack12, set_x_leak_search_path_tx)
{
	set_then_leave(TXT, "SET search_path = leaked", "search_path", "\"$user\", public");
}
Test(attack12, set_x_leak_statement_timeout_session)
{
	set_then_leave(SST, "SET statement_timeout = '4321'", "statement_timeout", "0");
}
Test(attack12, set_x_leak_app_name_tx)
{
	set_then_leave(TXT, "SET application_name = 'leak'", "application_name", "");
}
Test(attack12, set_x_leak_app_name_session)
{
	set_then_leave(SST, "SET application_name = 'leak'", "application_name", "");
}
Test(attack12, set_x_leak_timezone_tx)
{
	char *tz = h_direct_value("SHOW timezone");
	set_then_leave(TXT, "SET timezone = 'Asia/Kathmandu'", "timezone", tz);
}
Test(attack12, set_x_leak_datestyle_tx)
{
	char *ds = h_direct_value("SHOW datestyle");
	set_then_leave(TXT, "SET datestyle = 'SQL, DMY'", "datestyle", ds);
}
Test(attack12, set_x_leak_intervalstyle_tx)
{
	set_then_leave(TXT, "SET intervalstyle = 'iso_8601'", "intervalstyle", "postgres");
}

/* currval reached without its name in B's text: U& identifier, a SQL function. */
Test(attack12, currval_hidden_name_tx, .disabled = KNOWN_DEFECT)
{
	mkseq("atk12_s4");
	h_direct_exec("CREATE OR REPLACE FUNCTION atk12_lv() RETURNS bigint LANGUAGE sql "
		      "AS 'SELECT lastval()'");
	struct h_corral *c = h_corral_start(TX, ONE, NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	h_expect_value(a, "SELECT nextval('atk12_s4')", "1");
	expect_state(b, "SELECT U&\"\\0063urrval\"('atk12_s4')", "55000");
	h_expect_value(a, "SELECT nextval('atk12_s4')", "2");
	expect_state(b, "SELECT atk12_lv()", "55000");
	PQfinish(a);
	PQfinish(b);
	h_corral_stop(c);
}

/* Affinity: C's previous server is busy in B's transaction; C must get another, never
 * B's, and never a third when pool_size=2 is used up. */
Test(attack12, affinity_busy_previous)
{
	struct h_corral *c = h_corral_start(TX, H_BENCH_DB_WITH(" pool_size=2"), NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c), *cc = h_connect_bench(c);
	char *cpid = h_value(cc, "SELECT pg_backend_pid()");
	h_exec_ok(b, "BEGIN");
	char *bpid = h_value(b, "SELECT pg_backend_pid()");
	char *cpid2 = h_value(cc, "SELECT pg_backend_pid()");
	cr_expect_str_neq(cpid2, bpid, "C got B's busy server (C had %s)", cpid);
	h_exec_ok(a, "BEGIN");
	char *apid = h_value(a, "SELECT pg_backend_pid()");
	cr_expect_str_neq(apid, bpid);
	cr_assert(PQsendQuery(cc, "SELECT pg_backend_pid()"));
	usleep(300000);
	PQconsumeInput(cc);
	cr_expect(PQisBusy(cc), "C answered while both servers are in transactions");
	h_exec_ok(b, "COMMIT");
	PGresult *r = h_results(cc, "C", 5.0);
	cr_expect_str_eq(PQgetvalue(r, 0, 0), bpid);
	PQclear(r);
	h_exec_ok(a, "COMMIT");
	PQfinish(a);
	PQfinish(b);
	PQfinish(cc);
	h_corral_stop(c);
}
