/*
 * Transaction (and statement) pooling: pgbench with 500 clients over a pool of 20 (one
 * and two workers), 1000 libpq clients at once through corral and straight at
 * PostgreSQL, session parameters that follow each client from server to server,
 * pipelines that keep their server until the last Sync is answered, the transaction
 * boundary (explicit, failed, abandoned), COPY both ways, statement mode refusing
 * transaction blocks, and pgbench's extended protocol.
 *
 * Tests that count backends use databases no other test touches (txpool_w1, txpool_w2,
 * txpool_ext, made by run.sh); the 1000-client test runs alone (h_run_alone) because
 * its direct half fills PostgreSQL's connection slots on purpose.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "tests/integration/harness.h"

TestSuite(txpool, H_SUITE);
/* Its own suite, so that it sorts after the others and rarely waits long to run alone. */
TestSuite(txpool_storm, H_SUITE);

/* One worker, so "pool_size = 1" means one server connection shared by every client. */
static const char *const TX_ONE_WORKER = "workers = 1\npool_mode = transaction\nserver_reset_query =\n";
static const char *const ONE_SERVER_DB = H_BENCH_DB_WITH(" pool_size=1");

/* ---------------------------------------------------------------- small helpers */

/* Reads the number after prefix in text, or -1. */
static long number_after(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);

	return p ? strtol(p + strlen(prefix), NULL, 10) : -1;
}

/* At least want descriptors for this process and what it starts (pgbench), if the hard limit allows. */
static void want_nofile(rlim_t want)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	cr_assert_geq(rl.rlim_cur, want, "the descriptor limit is %llu, this test needs %llu (ulimit -n)",
		      (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

/* conn has sent a query; fails if an answer arrives within secs (it must be queued). */
static void expect_no_answer(PGconn *conn, double secs, const char *what)
{
	double deadline = h_now() + secs;

	for (;;) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		int left = (int)((deadline - h_now()) * 1000);

		if (left <= 0)
			return;
		poll(&pfd, 1, left);
		cr_assert(PQconsumeInput(conn), "%s: %s", what, PQerrorMessage(conn));
		if (!PQisBusy(conn)) {
			PGresult *r = PQgetResult(conn);

			cr_assert_fail("%s: answered (%s %s) while another client held the only server", what,
				       PQresStatus(PQresultStatus(r)),
				       PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
					       ? PQgetvalue(r, 0, 0)
					       : PQresultErrorMessage(r));
		}
	}
}

/* The one value of the result of what conn already sent; fails unless it is want. */
static void expect_result_value(PGconn *conn, const char *what, const char *want)
{
	PGresult *r = h_results(conn, what, H_QUERY_TIMEOUT);

	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s %s", what, PQresStatus(PQresultStatus(r)),
		     PQresultErrorMessage(r));
	cr_assert_eq(PQntuples(r), 1, "%s: %d rows", what, PQntuples(r));
	cr_expect_str_eq(PQgetvalue(r, 0, 0), want, "%s: got [%s], want [%s] (another client's result?)",
			 what, PQgetvalue(r, 0, 0), want);
	PQclear(r);
}


/* ---------------------------------------------------------------- 1. pgbench, 500 clients */

/* Transactions per client of each 500-client pgbench run (two runs per test, two such
 * tests): a fixed amount of work, not a duration, because pgbench's -T clock includes its
 * 500 SCRAM logins, which on a loaded 2-CPU machine (an ASan build, other suites) can take
 * the whole duration and leave nothing measured. */
#define PGBENCH_SELECT_TX 40
#define PGBENCH_TPCB_TX 6
#define STR(x) STR_(x)
#define STR_(x) #x

/* Runs pgbench with args against db through c; fails unless it exits 0 with no failed
 * transaction and at least want_done done. */
static void pgbench_ok(const struct h_corral *c, const char *db, const char *args, long want_done,
		       const char *what)
{
	char *pgbench = h_pgtool("pgbench");
	struct h_cmd r = h_run(90, "PGPASSWORD=%s %s -n %s -h 127.0.0.1 -p %d -U %s %s", H.password, pgbench,
			       args, c->port, H.user, db);
	long done = number_after(r.out, "number of transactions actually processed: ");
	long failed = number_after(r.out, "number of failed transactions: ");
	const char *tps = strstr(r.out, "tps = ");

	if (r.status != 0) {
		const char *tail = h_corral_log_tail(c);

		cr_assert_fail("%s: pgbench %s exited %d after %.1f s\nstdout:\n%s\nstderr "
			       "(tail):\n%.2000s\ncorral log:\n%s",
			       what, args, r.status, r.secs, r.out,
			       strlen(r.err) > 2000 ? r.err + strlen(r.err) - 2000 : r.err, tail);
	}
	cr_log_info("txpool %s: pgbench %s: %ld transactions, %ld failed, %.40s", what, args, done, failed,
		    tps ? tps : "(no tps)");
	cr_expect_geq(done, want_done, "%s: %ld transactions processed, want %ld; stdout:\n%s",
		      what, done, want_done, r.out);
	cr_expect_eq(failed, 0, "%s: %ld failed transactions; stdout:\n%s\nstderr:\n%.2000s", what, failed,
		     r.out, r.err);
	cr_expect(strstr(r.err, "error") == NULL, "%s: pgbench reported errors:\n%.2000s", what, r.err);
	h_cmd_free(&r);
	free(pgbench);
}

/*
 * pgbench -c 500 -j 2 -t N (select-only, then TPC-B), persistent connections, through a
 * transaction-mode pool of 20 with `workers` threads: no failed transaction, and
 * PostgreSQL never has more than 20 backends of db (this test's own database).
 */
static void pgbench_500_clients(int workers, const char *db)
{
	char *settings = h_printf("workers = %d\npool_mode = transaction\n", workers);
	char *dbs = h_printf(
		"%s = host=@PGHOST@ port=@PGPORT@ dbname=%s user=bench password=secret pool_size=20\n", db,
		db);
	struct h_corral *c;
	struct h_sampler *s;
	int samples = 0, peak;
	double cpu;

	want_nofile(2048);
	c = h_corral_start(settings, dbs, NULL);
	s = h_sampler_start(db, H.user);
	pgbench_ok(c, db, "-c 500 -j 2 -t " STR(PGBENCH_SELECT_TX) " -S", 500L * PGBENCH_SELECT_TX,
		   workers == 1 ? "select-only, 1 worker" : "select-only, 2 workers");
	pgbench_ok(c, db, "-c 500 -j 2 -t " STR(PGBENCH_TPCB_TX), 500L * PGBENCH_TPCB_TX,
		   workers == 1 ? "TPC-B, 1 worker" : "TPC-B, 2 workers");
	peak = h_sampler_stop(s, &samples);
	cpu = h_proc_cpu_seconds(c->pid);
	cr_log_info("txpool pgbench, %d worker(s): peak %d backends of %s (%d samples), corral CPU %.1f s",
		    workers, peak, db, samples, cpu);
	cr_expect_gt(samples, 20, "only %d pg_stat_activity samples", samples);
	cr_expect_gt(peak, 0, "the sampler never saw a backend of %s", db);
	cr_expect_leq(peak, 20, "PostgreSQL had %d backends for %s/bench, pool_size is 20", peak, db);
	h_corral_stop(c);
	free(settings);
	free(dbs);
}

Test(txpool, pgbench_500_clients_one_worker, .timeout = 90)
{
	pgbench_500_clients(1, "txpool_w1");
}

Test(txpool, pgbench_500_clients_two_workers, .timeout = 90)
{
	pgbench_500_clients(2, "txpool_w2");
}

/* ---------------------------------------------------------------- 2. 1000 libpq clients at once */

enum { STORM_CLIENTS = 1000 };

/* What each client runs, one round trip each, inside one transaction. */
static const char *const STORM_STEPS[] = {"BEGIN", "SELECT count(*) FROM generate_series(1, 100)", "COMMIT"};
enum { STORM_N_STEPS = sizeof STORM_STEPS / sizeof STORM_STEPS[0] };

struct storm_client {
	PGconn *conn;
	PostgresPollingStatusType poll; /* while logging in */
	int step;                       /* -1 while logging in, then the step whose results come */
	bool over;
};

struct storm_result {
	int ok;
	int too_many; /* failed with SQLSTATE 53300 */
	int other;    /* failed otherwise */
	char other_example[300];
	double secs;
};

static void storm_fail(struct storm_client *sc, struct storm_result *res, const char *msg)
{
	if (strstr(msg, "53300") != NULL) {
		res->too_many++;
	} else {
		if (res->other++ == 0)
			snprintf(res->other_example, sizeof res->other_example, "%s", msg);
	}
	PQfinish(sc->conn);
	sc->conn = NULL;
	sc->over = true;
}

/* The next step's query, or the end of the client once all steps are done. */
static void storm_next_step(struct storm_client *sc, struct storm_result *res)
{
	if (++sc->step == STORM_N_STEPS) {
		res->ok++;
		PQfinish(sc->conn);
		sc->conn = NULL;
		sc->over = true;
		return;
	}
	if (!PQsendQuery(sc->conn, STORM_STEPS[sc->step]))
		storm_fail(sc, res, PQerrorMessage(sc->conn));
}

/* BEGIN and COMMIT answer with their command tag, the SELECT with one row "100". */
static bool storm_answer_ok(int step, const PGresult *r)
{
	if (step == 1)
		return PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		       strcmp(PQgetvalue(r, 0, 0), "100") == 0;
	return PQresultStatus(r) == PGRES_COMMAND_OK &&
	       strcmp(PQcmdStatus((PGresult *)r), STORM_STEPS[step]) == 0;
}

/* Reads what arrived for a client that runs its steps. */
static void storm_read(struct storm_client *sc, struct storm_result *res)
{
	if (!PQconsumeInput(sc->conn)) {
		storm_fail(sc, res, PQerrorMessage(sc->conn));
		return;
	}
	while (!sc->over && !PQisBusy(sc->conn)) {
		PGresult *r = PQgetResult(sc->conn);
		ExecStatusType st;

		if (r == NULL) {
			storm_next_step(sc, res);
			continue;
		}
		st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR) {
			char msg[300];

			snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
			PQclear(r);
			storm_fail(sc, res, msg);
			return;
		}
		if (!storm_answer_ok(sc->step, r)) {
			char msg[300];

			snprintf(msg, sizeof msg, "wrong answer to %s: %s %s", STORM_STEPS[sc->step],
				 PQresStatus(st), PQcmdStatus(r));
			PQclear(r);
			storm_fail(sc, res, msg);
			return;
		}
		PQclear(r);
	}
}

/*
 * n clients log in to ci at once (non-blocking libpq, one poll() loop), each runs
 * STORM_STEPS and leaves.  Counts those that made it and those that failed, by
 * SQLSTATE.
 */
static void storm(const char *ci, int n, double timeout_s, struct storm_result *res)
{
	struct storm_client *cl = calloc((size_t)n, sizeof *cl);
	struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
	int *idx = calloc((size_t)n, sizeof *idx);
	double start = h_now(), deadline = start + timeout_s;
	int active = n;

	cr_assert(cl && pfd && idx);
	memset(res, 0, sizeof *res);
	for (int i = 0; i < n; i++) {
		cl[i].conn = PQconnectStart(ci);
		cr_assert(cl[i].conn != NULL, "PQconnectStart: out of memory");
		PQsetErrorVerbosity(cl[i].conn, PQERRORS_VERBOSE); /* "FATAL:  53300: ..." */
		cl[i].poll = PGRES_POLLING_WRITING;
		cl[i].step = -1;
		if (PQstatus(cl[i].conn) == CONNECTION_BAD)
			storm_fail(&cl[i], res, PQerrorMessage(cl[i].conn));
	}
	while (active > 0) {
		int m = 0;

		active = 0;
		for (int i = 0; i < n; i++) {
			if (cl[i].over)
				continue;
			active++;
			pfd[m].fd = PQsocket(cl[i].conn);
			pfd[m].events =
				cl[i].step < 0 && cl[i].poll == PGRES_POLLING_WRITING ? POLLOUT : POLLIN;
			pfd[m].revents = 0;
			idx[m++] = i;
		}
		if (active == 0)
			break;
		if (h_now() > deadline) {
			for (int k = 0; k < m; k++)
				storm_fail(&cl[idx[k]], res, "no answer in time");
			break;
		}
		if (poll(pfd, (nfds_t)m, 100) < 0 && errno != EINTR)
			cr_assert_fail("poll: %s", strerror(errno));
		for (int k = 0; k < m; k++) {
			struct storm_client *sc = &cl[idx[k]];

			if (pfd[k].revents == 0)
				continue;
			if (sc->step >= 0) {
				storm_read(sc, res);
				continue;
			}
			sc->poll = PQconnectPoll(sc->conn);
			if (sc->poll == PGRES_POLLING_FAILED)
				storm_fail(sc, res, PQerrorMessage(sc->conn));
			else if (sc->poll == PGRES_POLLING_OK)
				storm_next_step(sc, res);
		}
	}
	res->secs = h_now() - start;
	free(cl);
	free(pfd);
	free(idx);
}

/*
 * 1000 libpq clients at once, each BEGIN / SELECT / COMMIT and gone: through corral
 * (transaction mode, pool 20) all of them succeed; straight at PostgreSQL
 * (max_connections = 50) many are refused with 53300.  The direct half takes every
 * connection slot, so the test runs alone.
 */
Test(txpool_storm, thousand_clients_at_once, .timeout = 180)
{
	struct storm_result direct, via;
	struct h_corral *c;
	struct h_sampler *s;
	char *pg_ci, *ci, *base;
	int peak;
	double t0;

	want_nofile(STORM_CLIENTS + 200);
	t0 = h_now();
	h_run_alone();
	cr_log_info("txpool 1000 clients: waited %.1f s to run alone", h_now() - t0);

	base = h_pg_conninfo(H.user, H.db, H.password);
	pg_ci = h_printf("%s sslmode=disable gssencmode=disable", base);
	free(base);
	storm(pg_ci, STORM_CLIENTS, 60, &direct);
	cr_log_info("txpool 1000 clients directly to PostgreSQL: %d ok, %d failed with 53300, %d failed "
		    "otherwise, %.1f s%s%s",
		    direct.ok, direct.too_many, direct.other, direct.secs, direct.other ? "; e.g. " : "",
		    direct.other_example);

	/* Let the refused backends go before corral logs in. */
	h_wait_pg_backends(H.db, H.user, 0, 10);
	c = h_corral_start("workers = 2\npool_mode = transaction\nquery_wait_timeout = 60\n",
			   H_BENCH_DB_WITH(" pool_size=20"), NULL);
	base = h_conninfo(c, H.user, H.db, H.password);
	ci = h_printf("%s sslmode=disable gssencmode=disable", base);
	free(base);
	s = h_sampler_start(H.db, H.user);
	storm(ci, STORM_CLIENTS, 60, &via);
	peak = h_sampler_stop(s, NULL);
	cr_log_info("txpool 1000 clients through corral (pool_size 20): %d ok, %d failed with 53300, %d "
		    "failed otherwise, %.1f s, peak %d backends%s%s",
		    via.ok, via.too_many, via.other, via.secs, peak, via.other ? "; e.g. " : "",
		    via.other_example);

	cr_expect_gt(direct.too_many, 0,
		     "no direct client was refused with 53300 (%d ok, %d other failures: %s): the comparison "
		     "shows nothing",
		     direct.ok, direct.other, direct.other_example);
	cr_expect_eq(via.ok, STORM_CLIENTS,
		     "through corral %d of %d clients made it (%d with 53300, %d otherwise, e.g. %s)\ncorral "
		     "log:\n%s",
		     via.ok, STORM_CLIENTS, via.too_many, via.other, via.other_example, h_corral_log_tail(c));
	cr_expect_leq(peak, 20, "PostgreSQL had %d backends of bench/bench, pool_size is 20", peak);
	h_corral_stop(c);
	free(pg_ci);
	free(ci);
}

/* ---------------------------------------------------------------- 3. session parameters */

struct tx_defaults {
	char *timezone;
	char *datestyle;
	char *intervalstyle;
	char *client_encoding;
};

static void quiet_notices(void *arg, const char *message)
{
}

/* The server's defaults, from a direct connection. */
static void server_defaults(struct tx_defaults *d)
{
	char *ci = h_pg_conninfo(H.user, H.db, H.password);
	PGconn *pg = h_connect(NULL, ci);

	d->timezone = h_value(pg, "SHOW TimeZone");
	d->datestyle = h_value(pg, "SHOW DateStyle");
	d->intervalstyle = h_value(pg, "SHOW IntervalStyle");
	d->client_encoding = h_value(pg, "SHOW client_encoding");
	PQfinish(pg);
	free(ci);
	cr_assert_str_neq(d->timezone, "Asia/Tokyo");
	cr_assert_str_neq(d->timezone, "America/New_York");
	cr_assert_str_neq(d->datestyle, "German, DMY");
	cr_assert_str_neq(d->intervalstyle, "sql_standard");
	cr_assert_str_neq(d->client_encoding, "LATIN1");
}

/* What conn must see on the server (SHOW) and in its ParameterStatus values. */
static void expect_params(PGconn *conn, const char *who, const char *tz, const char *datestyle,
			  const char *intervalstyle, const char *app)
{
	const struct {
		const char *name, *want;
	} p[] = {{"TimeZone", tz},
		 {"DateStyle", datestyle},
		 {"IntervalStyle", intervalstyle},
		 {"application_name", app}};
	char *sql =
		h_printf("SELECT current_setting('TimeZone') || '|' || current_setting('DateStyle') || '|' "
			 "|| current_setting('IntervalStyle') || '|' || current_setting('application_name')");
	char *want = h_printf("%s|%s|%s|%s", tz, datestyle, intervalstyle, app);
	char *got = h_value(conn, sql);

	cr_expect_str_eq(got, want,
			 "%s sees TimeZone|DateStyle|IntervalStyle|application_name [%s], want [%s]", who,
			 got, want);
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
		const char *v = PQparameterStatus(conn, p[i].name);

		cr_expect_str_eq(v ? v : "(none)", p[i].want, "%s's ParameterStatus %s is [%s], want [%s]",
				 who, p[i].name, v ? v : "(none)", p[i].want);
	}
	free(sql);
	free(want);
	free(got);
}

/*
 * pool_size = 1, one worker, transaction mode: A and B share one server connection,
 * which goes back and forth between them.  A's SETs (TimeZone, DateStyle,
 * IntervalStyle, application_name) follow A and never reach B; B's own SET follows B;
 * SET LOCAL and a rolled-back SET leave A's values as they were.
 */
Test(txpool, session_parameters_follow_their_client)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	struct tx_defaults d;
	PGconn *a, *b;
	char *pid_a, *pid_b, *v;

	server_defaults(&d);
	a = h_connect_bench(c);
	b = h_connect_bench(c);
	pid_a = h_value(a, "SELECT pg_backend_pid()");
	pid_b = h_value(b, "SELECT pg_backend_pid()");
	cr_assert_str_eq(pid_a, pid_b, "A and B are on different backends; the test proves nothing");

	h_exec_ok(a, "SET TimeZone = 'Asia/Tokyo'");
	h_exec_ok(a, "SET application_name = 'client-a'");
	h_exec_ok(a, "SET DateStyle = 'German'");
	h_exec_ok(a, "SET IntervalStyle = 'sql_standard'");
	for (int round = 0; round < 3; round++) {
		expect_params(b, "B", d.timezone, d.datestyle, d.intervalstyle, "");
		h_expect_show(b, "TimeZone", d.timezone);
		h_expect_show(b, "application_name", "");
		h_expect_show(b, "DateStyle", d.datestyle);
		h_expect_show(a, "TimeZone", "Asia/Tokyo");
		h_expect_show(a, "application_name", "client-a");
		h_expect_show(a, "DateStyle", "German, DMY");
		expect_params(a, "A", "Asia/Tokyo", "German, DMY", "sql_standard", "client-a");
	}
	/* What the values do, not only what SHOW says. */
	h_expect_value(a, "SELECT '2020-01-02 03:04:05+00'::timestamptz::text", "02.01.2020 12:04:05 JST");
	h_expect_value(a, "SELECT interval '1 day 2 hours'::text", "1 2:00:00");
	v = h_value(b, "SELECT interval '1 day 2 hours'::text");
	cr_expect_str_eq(v, "1 day 02:00:00", "B's interval output [%s] is not PostgreSQL's default style",
			 v);
	free(v);

	/* client_encoding and standard_conforming_strings follow A too. */
	h_exec_ok(a, "SET client_encoding = 'LATIN1'");
	h_exec_ok(a, "SET standard_conforming_strings = off");
	PQsetNoticeProcessor(a, quiet_notices, NULL); /* "nonstandard use of escape" below */
	for (int round = 0; round < 2; round++) {
		h_expect_show(b, "client_encoding", d.client_encoding);
		h_expect_show(b, "standard_conforming_strings", "on");
		h_expect_value(b, "SELECT length('a\\b')", "3");
		h_expect_show(a, "client_encoding", "LATIN1");
		h_expect_show(a, "standard_conforming_strings", "off");
		h_expect_value(a, "SELECT length('a\\b')", "2");
	}
	cr_expect_str_eq(PQparameterStatus(b, "client_encoding"), d.client_encoding);
	cr_expect_str_eq(PQparameterStatus(a, "client_encoding"), "LATIN1");

	/* B's own SET follows B, A keeps its own. */
	h_exec_ok(b, "SET TimeZone = 'America/New_York'");
	expect_params(a, "A", "Asia/Tokyo", "German, DMY", "sql_standard", "client-a");
	expect_params(b, "B", "America/New_York", d.datestyle, d.intervalstyle, "");
	expect_params(a, "A", "Asia/Tokyo", "German, DMY", "sql_standard", "client-a");

	/* A SET LOCAL ends with its transaction, a rolled-back SET with the rollback. */
	h_exec_ok(a, "BEGIN");
	h_exec_ok(a, "SET LOCAL TimeZone = 'Europe/Paris'");
	h_expect_show(a, "TimeZone", "Europe/Paris");
	h_exec_ok(a, "COMMIT");
	expect_params(b, "B", "America/New_York", d.datestyle, d.intervalstyle, "");
	expect_params(a, "A", "Asia/Tokyo", "German, DMY", "sql_standard", "client-a");
	h_exec_ok(a, "BEGIN");
	h_exec_ok(a, "SET application_name = 'rolled-back'");
	h_exec_ok(a, "ROLLBACK");
	expect_params(b, "B", "America/New_York", d.datestyle, d.intervalstyle, "");
	expect_params(a, "A", "Asia/Tokyo", "German, DMY", "sql_standard", "client-a");

	v = h_value(b, "SELECT pg_backend_pid()");
	cr_expect_str_eq(v, pid_a, "the one server connection changed (%s, was %s)", v, pid_a);
	free(v);
	PQfinish(a);
	PQfinish(b);
	free(pid_a);
	free(pid_b);
	free(d.timezone);
	free(d.datestyle);
	free(d.intervalstyle);
	free(d.client_encoding);
	h_corral_stop(c);
}

/*
 * The same one server: C sent no application_name at startup and sees '' right after A
 * (application_name 'client-a') used the server; D's startup values (application_name,
 * options -c TimeZone / DateStyle) are what D sees, interleaved with A.
 */
Test(txpool, startup_parameters_and_defaults_per_client)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	struct tx_defaults d;
	char *base = h_conninfo(c, H.user, H.db, H.password);
	char *d_ci = h_printf("%s application_name=fn-d options='-c TimeZone=Europe/Paris -c DateStyle=SQL'",
			      base);
	PGconn *a, *cl, *dl;
	char *want;

	server_defaults(&d);
	a = h_connect_bench(c);
	h_exec_ok(a, "SET application_name = 'client-a'");
	h_exec_ok(a, "SET TimeZone = 'Asia/Tokyo'");
	expect_params(a, "A", "Asia/Tokyo", d.datestyle, d.intervalstyle, "client-a");

	cl = h_connect_bench(c); /* no application_name at startup */
	expect_params(cl, "C", d.timezone, d.datestyle, d.intervalstyle, "");
	h_expect_show(cl, "application_name", "");

	dl = h_connect(c, d_ci);
	for (int round = 0; round < 2; round++) {
		expect_params(a, "A", "Asia/Tokyo", d.datestyle, d.intervalstyle, "client-a");
		expect_params(dl, "D", "Europe/Paris", "SQL, MDY", d.intervalstyle, "fn-d");
		expect_params(cl, "C", d.timezone, d.datestyle, d.intervalstyle, "");
	}
	/* A new client after D, without startup values, sees the defaults again. */
	want = h_printf("[|%s]", d.timezone); /* application_name '' */
	h_expect_new_client(c, NULL,
			    "SELECT '[' || current_setting('application_name') || '|' || "
			    "current_setting('TimeZone') || ']'",
			    want);
	free(want);
	PQfinish(a);
	PQfinish(cl);
	PQfinish(dl);
	free(base);
	free(d_ci);
	free(d.timezone);
	free(d.datestyle);
	free(d.intervalstyle);
	free(d.client_encoding);
	h_corral_stop(c);
}

/*
 * A startup DateStyle is reported as PostgreSQL reports it ("SQL, MDY" for -c
 * DateStyle=SQL) and agrees with SHOW.  corral welcomes a client before any server
 * has seen its value, so the very first such client is told "SQL" at login and the
 * server's spelling with its first query; corral remembers the spelling, and every
 * later client is told "SQL, MDY" at login already.  Two clients one after the other
 * on the one server.
 */
Test(txpool, startup_datestyle_reported_as_postgresql_reports_it)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	char *base = h_conninfo(c, H.user, H.db, H.password);
	char *ci = h_printf("%s options='-c DateStyle=SQL'", base);

	for (int i = 0; i < 2; i++) {
		PGconn *conn = h_connect(c, ci);
		const char *v = PQparameterStatus(conn, "DateStyle");

		if (i > 0)
			cr_expect_str_eq(v ? v : "(none)", "SQL, MDY", "client %d's DateStyle at login: [%s]",
					 i + 1, v ? v : "(none)");
		h_expect_show(conn, "DateStyle", "SQL, MDY");
		v = PQparameterStatus(conn, "DateStyle");
		cr_expect_str_eq(v ? v : "(none)", "SQL, MDY",
				 "client %d's DateStyle after a query: [%s], SHOW says SQL, MDY", i + 1,
				 v ? v : "(none)");
		PQfinish(conn);
	}
	free(base);
	free(ci);
	h_corral_stop(c);
}

/* ---------------------------------------------------------------- 4. pipelines */

/* The next result of a pipeline (NULL between queries), waiting at most H_QUERY_TIMEOUT. */
static PGresult *pipe_next(PGconn *conn, const char *what)
{
	double deadline = h_now() + H_QUERY_TIMEOUT;

	while (PQisBusy(conn)) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		int left = (int)((deadline - h_now()) * 1000);

		if (left <= 0)
			cr_assert_fail("pipeline: no result within %.0f s (%s)", H_QUERY_TIMEOUT, what);
		poll(&pfd, 1, left);
		if (!PQconsumeInput(conn))
			cr_assert_fail("pipeline (%s): %s", what, PQerrorMessage(conn));
	}
	return PQgetResult(conn);
}

/* The next query's result is one row whose first value is want, then its NULL. */
static void pipe_expect_row(PGconn *conn, const char *want)
{
	PGresult *r = pipe_next(conn, want);

	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "pipeline: want row [%s], got %s %s", want,
		     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
	cr_assert_eq(PQntuples(r), 1);
	cr_expect_str_eq(PQgetvalue(r, 0, 0), want, "pipeline: got [%s], want [%s] (out of order?)",
			 PQgetvalue(r, 0, 0), want);
	PQclear(r);
	r = pipe_next(conn, want);
	cr_assert_null(r, "pipeline: more than one result for [%s]: %s", want,
		       PQresStatus(PQresultStatus(r)));
}

/* The next result has status want (then its NULL, unless it is a sync). */
static void pipe_expect_status(PGconn *conn, ExecStatusType want, const char *what)
{
	PGresult *r = pipe_next(conn, what);

	cr_assert_eq(PQresultStatus(r), want, "pipeline, %s: got %s %s, want %s", what,
		     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r), PQresStatus(want));
	PQclear(r);
	if (want != PGRES_PIPELINE_SYNC) {
		r = pipe_next(conn, what);
		cr_assert_null(r, "pipeline, %s: a second result", what);
	}
}

static void pipe_send(PGconn *conn, const char *sql, const char *param)
{
	const char *params[1] = {param};

	cr_assert(PQsendQueryParams(conn, sql, param ? 1 : 0, NULL, param ? params : NULL, NULL, NULL, 0),
		  "PQsendQueryParams(%s): %s", sql, PQerrorMessage(conn));
}

static void pipe_sync(PGconn *conn)
{
	cr_assert(PQpipelineSync(conn), "PQpipelineSync: %s", PQerrorMessage(conn));
}

/* Two clients on one server connection (pool_size 1, one worker), in transaction mode. */
struct pair {
	struct h_corral *c;
	PGconn *a, *b;
};

static void pair_start(struct pair *p)
{
	char *pa, *pb;

	p->c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	p->a = h_connect_bench(p->c);
	p->b = h_connect_bench(p->c);
	pa = h_value(p->a, "SELECT pg_backend_pid()");
	pb = h_value(p->b, "SELECT pg_backend_pid()");
	cr_assert_str_eq(pa, pb, "A and B are on different backends; the test proves nothing");
	free(pa);
	free(pb);
}

static void pair_stop(struct pair *p)
{
	PQfinish(p->a);
	PQfinish(p->b);
	h_corral_stop(p->c);
}

/* B sends sql now, while A's pipeline is in flight; its answer is checked later. */
static void b_asks(PGconn *b, const char *sql)
{
	cr_assert(PQsendQuery(b, sql), "B: %s", PQerrorMessage(b));
}

/*
 * A pipelines 8 queries, each with its own Sync, all sent before the first is answered
 * (the first sleeps 0.2 s); B asks meanwhile.  A gets its 8 results in order, B its own
 * one: the server stayed with A until A's last Sync was answered.  Three rounds.
 */
Test(txpool, pipeline_sync_per_query)
{
	struct pair p;

	pair_start(&p);
	cr_assert(PQenterPipelineMode(p.a), "%s", PQerrorMessage(p.a));
	for (int round = 0; round < 3; round++) {
		char val[32], bsql[64], bwant[32];

		for (int i = 0; i < 8; i++) {
			snprintf(val, sizeof val, "A%d.%d", round, i);
			pipe_send(p.a, i == 0 ? "SELECT $1::text FROM pg_sleep(0.2)" : "SELECT $1::text",
				  val);
			pipe_sync(p.a);
		}
		snprintf(bwant, sizeof bwant, "B%d", round);
		snprintf(bsql, sizeof bsql, "SELECT '%s'", bwant);
		b_asks(p.b, bsql);
		for (int i = 0; i < 8; i++) {
			snprintf(val, sizeof val, "A%d.%d", round, i);
			pipe_expect_row(p.a, val);
			pipe_expect_status(p.a, PGRES_PIPELINE_SYNC, "sync");
		}
		expect_result_value(p.b, bsql, bwant);
	}
	cr_assert(PQexitPipelineMode(p.a), "PQexitPipelineMode: %s", PQerrorMessage(p.a));
	h_expect_value(p.a, "SELECT 'A out of the pipeline'", "A out of the pipeline");
	cr_expect_eq(PQtransactionStatus(p.a), PQTRANS_IDLE);
	pair_stop(&p);
}

/*
 * Several queries under one Sync are one implicit transaction (one xid); B, asking
 * while they run, waits for the Sync's answer and then gets its own result.
 */
Test(txpool, pipeline_queries_sharing_a_sync)
{
	struct pair p;
	char xid[4][32];

	pair_start(&p);
	cr_assert(PQenterPipelineMode(p.a), "%s", PQerrorMessage(p.a));
	pipe_send(p.a, "SELECT pg_current_xact_id()::text FROM pg_sleep(0.2)", NULL);
	pipe_send(p.a, "SELECT pg_current_xact_id()::text", NULL);
	pipe_send(p.a, "SELECT pg_current_xact_id()::text", NULL);
	pipe_sync(p.a);
	/* Sleeps, so the first Sync's ReadyForQuery arrives on its own. */
	pipe_send(p.a, "SELECT pg_current_xact_id()::text FROM pg_sleep(0.1)", NULL);
	pipe_sync(p.a);
	b_asks(p.b, "SELECT 'B after the batch'");
	for (int i = 0; i < 4; i++) {
		PGresult *r = pipe_next(p.a, "xid");

		cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "query %d: %s %s", i,
			     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
		snprintf(xid[i], sizeof xid[i], "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
		cr_assert_null(pipe_next(p.a, "xid"));
		if (i == 2 || i == 3)
			pipe_expect_status(p.a, PGRES_PIPELINE_SYNC, "sync");
	}
	cr_expect_str_eq(xid[1], xid[0], "queries under one Sync ran in different transactions");
	cr_expect_str_eq(xid[2], xid[0], "queries under one Sync ran in different transactions");
	cr_expect_str_neq(xid[3], xid[0], "the query after the Sync ran in the same transaction");
	expect_result_value(p.b, "B after the batch", "B after the batch");
	cr_assert(PQexitPipelineMode(p.a), "PQexitPipelineMode: %s", PQerrorMessage(p.a));
	h_expect_value(p.b, "SELECT 'B again'", "B again");
	h_expect_value(p.a, "SELECT 'A again'", "A again");
	pair_stop(&p);
}

/*
 * An error in the middle of a pipeline: the query after it reports
 * PGRES_PIPELINE_ABORTED up to the Sync, and the next Sync starts afresh.  B asks
 * meanwhile and gets its own answer only.
 */
Test(txpool, pipeline_error_then_recovery)
{
	struct pair p;
	PGresult *r;

	pair_start(&p);
	cr_assert(PQenterPipelineMode(p.a), "%s", PQerrorMessage(p.a));
	/* Each part after a Sync starts with a sleep, so every ReadyForQuery arrives on its own. */
	pipe_send(p.a, "SELECT $1::text FROM pg_sleep(0.2)", "A1");
	pipe_sync(p.a);
	pipe_send(p.a, "SELECT $1::text FROM pg_sleep(0.1)", "A2");
	pipe_send(p.a, "SELECT 1/0", NULL);
	pipe_send(p.a, "SELECT $1::text", "A3 (aborted)");
	pipe_sync(p.a);
	pipe_send(p.a, "SELECT $1::text FROM pg_sleep(0.1)", "A4");
	pipe_sync(p.a);
	b_asks(p.b, "SELECT 'B own'");

	pipe_expect_row(p.a, "A1");
	pipe_expect_status(p.a, PGRES_PIPELINE_SYNC, "sync 1");
	pipe_expect_row(p.a, "A2");
	r = pipe_next(p.a, "1/0");
	cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "1/0: %s", PQresStatus(PQresultStatus(r)));
	cr_expect_str_eq(h_sqlstate(r), "22012", "1/0: %s", PQresultErrorMessage(r));
	PQclear(r);
	cr_assert_null(pipe_next(p.a, "1/0"));
	pipe_expect_status(p.a, PGRES_PIPELINE_ABORTED, "the query after the error");
	pipe_expect_status(p.a, PGRES_PIPELINE_SYNC, "sync 2");
	pipe_expect_row(p.a, "A4");
	pipe_expect_status(p.a, PGRES_PIPELINE_SYNC, "sync 3");
	expect_result_value(p.b, "B own", "B own");

	cr_assert(PQexitPipelineMode(p.a), "PQexitPipelineMode: %s", PQerrorMessage(p.a));
	h_expect_value(p.a, "SELECT 'A recovered'", "A recovered");
	cr_expect_eq(PQtransactionStatus(p.a), PQTRANS_IDLE);
	h_expect_value(p.b, "SELECT 'B still fine'", "B still fine");
	pair_stop(&p);
}

/*
 * A Flush without a Sync: after a synced query, A reads the result of an unsynced one
 * while its implicit transaction is still open, so the server must stay with A even
 * though the last ReadyForQuery said 'I'; B waits until A's Sync is answered.
 */
Test(txpool, pipeline_flush_without_sync_keeps_the_server)
{
	struct pair p;

	pair_start(&p);
	cr_assert(PQenterPipelineMode(p.a), "%s", PQerrorMessage(p.a));
	/* A synced query first: its ReadyForQuery 'I' comes while A1 is still unsynced. */
	pipe_send(p.a, "SELECT $1::text", "A0");
	pipe_sync(p.a);
	pipe_send(p.a, "SELECT $1::text FROM pg_sleep(0.1)", "A1");
	cr_assert(PQsendFlushRequest(p.a), "PQsendFlushRequest: %s", PQerrorMessage(p.a));
	cr_assert_eq(PQflush(p.a), 0, "PQflush: %s", PQerrorMessage(p.a));
	pipe_expect_row(p.a, "A0");
	pipe_expect_status(p.a, PGRES_PIPELINE_SYNC, "sync 0");
	pipe_expect_row(p.a, "A1");

	b_asks(p.b, "SELECT 'B waited'");
	expect_no_answer(p.b, 0.3, "B while A's pipeline has no Sync yet");

	pipe_send(p.a, "SELECT $1::text", "A2");
	pipe_sync(p.a);
	pipe_expect_row(p.a, "A2");
	pipe_expect_status(p.a, PGRES_PIPELINE_SYNC, "sync");
	expect_result_value(p.b, "B waited", "B waited");
	cr_assert(PQexitPipelineMode(p.a), "PQexitPipelineMode: %s", PQerrorMessage(p.a));
	h_expect_value(p.a, "SELECT 'A done'", "A done");
	pair_stop(&p);
}

/* ---------------------------------------------------------------- 5. transactions */

/*
 * pool_size = 3: A's transaction keeps one backend over several round trips while B and
 * C run transactions on the other servers, and neither of them ever gets A's backend
 * while A's transaction is open.
 */
Test(txpool, transaction_keeps_one_backend)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, H_BENCH_DB_WITH(" pool_size=3"), NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c), *cc = h_connect_bench(c);
	char *pid, *v;

	h_exec_ok(a, "BEGIN");
	pid = h_value(a, "SELECT pg_backend_pid()");
	for (int i = 0; i < 5; i++) {
		v = h_value(b, "SELECT pg_backend_pid()");
		cr_expect_str_neq(v, pid, "B got A's backend while A's transaction was open");
		free(v);
		h_exec_ok(cc, "BEGIN");
		v = h_value(cc, "SELECT pg_backend_pid()");
		cr_expect_str_neq(v, pid, "C got A's backend while A's transaction was open");
		free(v);
		h_exec_ok(cc, "COMMIT");
		v = h_value(a, "SELECT pg_backend_pid()");
		cr_expect_str_eq(v, pid, "A's backend changed inside its transaction (%s, was %s)", v, pid);
		free(v);
		cr_expect_eq(PQtransactionStatus(a), PQTRANS_INTRANS);
	}
	h_exec_ok(a, "COMMIT");
	cr_expect_eq(PQtransactionStatus(a), PQTRANS_IDLE);
	PQfinish(a);
	PQfinish(b);
	PQfinish(cc);
	free(pid);
	h_corral_stop(c);
}

/*
 * pool_size = 1: between transactions A and B alternate on the one backend; while A's
 * transaction is open, B's query waits, and runs as soon as A commits.
 */
Test(txpool, clients_alternate_between_transactions)
{
	struct pair p;
	char *pid, *v;

	pair_start(&p);
	pid = h_value(p.a, "SELECT pg_backend_pid()");
	for (int i = 0; i < 3; i++) {
		h_expect_value(p.b, "SELECT pg_backend_pid()", pid);
		h_expect_value(p.a, "SELECT pg_backend_pid()", pid);
	}
	h_exec_ok(p.a, "BEGIN");
	h_expect_value(p.a, "SELECT pg_backend_pid()", pid);
	b_asks(p.b, "SELECT pg_backend_pid()::text || ' for B'");
	expect_no_answer(p.b, 0.3, "B while A's transaction is open");
	h_expect_value(p.a, "SELECT 'A still in its transaction'", "A still in its transaction");
	expect_no_answer(p.b, 0.1, "B while A's transaction is open");
	h_exec_ok(p.a, "COMMIT");
	v = h_printf("%s for B", pid);
	expect_result_value(p.b, "B after A's commit", v);
	free(v);
	cr_expect_eq(PQtransactionStatus(p.b), PQTRANS_IDLE);
	h_expect_value(p.a, "SELECT pg_backend_pid()", pid);
	free(pid);
	pair_stop(&p);
}

/*
 * A failed transaction ('E') keeps its server: B waits, A's next query gets 25P02 on
 * the same backend, and only A's ROLLBACK lets B in.
 */
Test(txpool, failed_transaction_keeps_server_until_rollback)
{
	struct pair p;
	PGresult *r;

	pair_start(&p);
	h_exec_ok(p.a, "BEGIN");
	r = h_exec(p.a, "SELECT 1/0");
	cr_expect_str_eq(h_sqlstate(r), "22012", "1/0: %s", PQresultErrorMessage(r));
	PQclear(r);
	cr_expect_eq(PQtransactionStatus(p.a), PQTRANS_INERROR);

	b_asks(p.b, "SELECT 'B after the rollback'");
	expect_no_answer(p.b, 0.3, "B while A's transaction is failed");
	r = h_exec(p.a, "SELECT 'A in a failed transaction'");
	cr_expect_str_eq(h_sqlstate(r), "25P02", "A's query in its failed transaction: %s %s",
			 PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
	PQclear(r);
	expect_no_answer(p.b, 0.1, "B while A's transaction is failed");
	h_exec_ok(p.a, "ROLLBACK");
	cr_expect_eq(PQtransactionStatus(p.a), PQTRANS_IDLE);
	expect_result_value(p.b, "B after the rollback", "B after the rollback");
	h_expect_value(p.a, "SELECT 'A fine again'", "A fine again");
	pair_stop(&p);
}

/*
 * A client leaves inside a transaction with an uncommitted insert: politely
 * (Terminate), abruptly (socket shut down), and in the middle of a query.  Its row is
 * never visible, and the next client gets a working server that is not inside a
 * transaction.
 */
Test(txpool, client_leaving_mid_transaction)
{
	struct h_corral *c = h_corral_start(TX_ONE_WORKER, ONE_SERVER_DB, NULL);
	const char *how[] = {"Terminate", "shutdown", "mid-query"};

	h_direct_exec("SET client_min_messages = warning; DROP TABLE IF EXISTS txpool_leave; "
		    "CREATE TABLE txpool_leave (id int, who text)");
	for (int k = 0; k < 3; k++) {
		PGconn *a = h_connect_bench(c), *b;
		char *sql = h_printf("INSERT INTO txpool_leave VALUES (%d, 'A')", k);
		double t0;

		h_exec_ok(a, "BEGIN");
		h_exec_ok(a, sql);
		free(sql);
		if (k == 2) {
			cr_assert(PQsendQuery(a, "SELECT pg_sleep(2)"), "%s", PQerrorMessage(a));
			usleep(100 * 1000);
		}
		if (k >= 1)
			shutdown(PQsocket(a), SHUT_RDWR);
		PQfinish(a);

		t0 = h_now();
		b = h_connect_bench(c);
		sql = h_printf("SELECT count(*) FROM txpool_leave WHERE id = %d", k);
		h_expect_value(b, sql, "0");
		free(sql);
		cr_expect_eq(PQtransactionStatus(b), PQTRANS_IDLE,
			     "B is inside a transaction after A left (%s)", how[k]);
		/* Mid-query, corral closes A's server rather than wait for the query's end. */
		cr_expect_lt(h_now() - t0, 1.5, "B waited %.1f s for a server after A left (%s)",
			     h_now() - t0, how[k]);
		sql = h_printf("INSERT INTO txpool_leave VALUES (%d, 'B')", k);
		h_exec_ok(b, sql);
		free(sql);
		PQfinish(b);
	}
	{
		char *v = h_direct_value("SELECT string_agg(id || who, ',' ORDER BY id) FROM txpool_leave");

		cr_expect_str_eq(v, "0B,1B,2B", "rows as PostgreSQL sees them: %s (want only B's)", v);
		free(v);
	}
	h_expect_new_client(c, NULL, "SELECT 'served'", "served");
	h_direct_exec("DROP TABLE txpool_leave");
	h_corral_stop(c);
}

/*
 * COPY FROM STDIN of rows "id\tvalue id" for ids from..to; fails unless COPY reports
 * them all.  The rows are appended to all (at *all_len) unless all is NULL.
 */
static void copy_in(PGconn *conn, const char *table, int from, int to, char *all, size_t *all_len)
{
	char *sql = h_printf("COPY %s FROM STDIN", table), *want = h_printf("%d", to - from + 1);
	PGresult *r = PQexec(conn, sql);

	cr_assert_eq(PQresultStatus(r), PGRES_COPY_IN, "%s: %s %s", sql, PQresStatus(PQresultStatus(r)),
		     PQerrorMessage(conn));
	PQclear(r);
	for (int i = from; i <= to; i++) {
		char row[64];
		int n = snprintf(row, sizeof row, "%d\tvalue %d\n", i, i);

		cr_assert_eq(PQputCopyData(conn, row, n), 1, "PQputCopyData: %s", PQerrorMessage(conn));
		if (all != NULL) {
			memcpy(all + *all_len, row, (size_t)n);
			*all_len += (size_t)n;
		}
	}
	cr_assert_eq(PQputCopyEnd(conn, NULL), 1, "PQputCopyEnd: %s", PQerrorMessage(conn));
	r = PQgetResult(conn);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s %s", sql, PQresStatus(PQresultStatus(r)),
		     PQresultErrorMessage(r));
	cr_expect_str_eq(PQcmdTuples(r), want);
	PQclear(r);
	cr_assert_null(PQgetResult(conn));
	free(sql);
	free(want);
}

/*
 * COPY in transaction mode, pool_size = 1: A copies rows in and out with libpq; B is
 * served between A's COPYs (the server went back after each); a COPY inside an explicit
 * transaction keeps the server until ROLLBACK; a COPY the client abandons (CopyFail)
 * ends with an error and the server goes back.  Then psql's \copy both ways, 10000
 * rows.
 */
Test(txpool, copy_in_and_out)
{
	enum { ROWS = 5000 };
	struct pair p;
	char *all = malloc(ROWS * 32), *ci, md5_in[33], md5_out[33];
	size_t all_len = 0, len;
	struct {
		char *p;
		size_t len;
	} out = {malloc(ROWS * 32), 0};
	PGresult *r;
	char *buf;
	int n;

	cr_assert(all && out.p);
	h_direct_exec("SET client_min_messages = warning; DROP TABLE IF EXISTS txpool_copy; "
		    "CREATE TABLE txpool_copy (id int primary key, v text)");
	pair_start(&p);

	copy_in(p.a, "txpool_copy", 1, ROWS, all, &all_len);
	h_expect_value(p.b, "SELECT count(*) FROM txpool_copy", "5000");

	r = PQexec(p.a, "COPY (SELECT id, v FROM txpool_copy ORDER BY id) TO STDOUT");
	cr_assert_eq(PQresultStatus(r), PGRES_COPY_OUT, "COPY TO STDOUT: %s %s",
		     PQresStatus(PQresultStatus(r)), PQerrorMessage(p.a));
	PQclear(r);
	while ((n = PQgetCopyData(p.a, &buf, 0)) > 0) {
		cr_assert_leq(out.len + (size_t)n, (size_t)ROWS * 32);
		memcpy(out.p + out.len, buf, (size_t)n);
		out.len += (size_t)n;
		PQfreemem(buf);
	}
	cr_assert_eq(n, -1, "PQgetCopyData: %s", PQerrorMessage(p.a));
	r = PQgetResult(p.a);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "COPY TO STDOUT: %s", PQresultErrorMessage(r));
	cr_expect_str_eq(PQcmdTuples(r), "5000");
	PQclear(r);
	cr_assert_null(PQgetResult(p.a));
	h_md5_hex(all, all_len, md5_in);
	h_md5_hex(out.p, out.len, md5_out);
	cr_expect_str_eq(md5_out, md5_in, "COPY TO STDOUT gave %zu bytes unlike the %zu copied in", out.len,
			 all_len);
	h_expect_value(p.b, "SELECT 'B between the COPYs'", "B between the COPYs");

	/* COPY inside a transaction: the server stays with A until its ROLLBACK. */
	h_exec_ok(p.a, "BEGIN");
	copy_in(p.a, "txpool_copy", ROWS + 1, ROWS + 10, NULL, NULL);
	h_expect_value(p.a, "SELECT count(*) FROM txpool_copy", "5010");
	b_asks(p.b, "SELECT count(*)::text FROM txpool_copy");
	expect_no_answer(p.b, 0.3, "B while A's transaction with a COPY is open");
	h_exec_ok(p.a, "ROLLBACK");
	expect_result_value(p.b, "B after A's rollback", "5000");

	/* A COPY abandoned by the client. */
	r = PQexec(p.a, "COPY txpool_copy FROM STDIN");
	cr_assert_eq(PQresultStatus(r), PGRES_COPY_IN, "%s", PQerrorMessage(p.a));
	PQclear(r);
	cr_assert_eq(PQputCopyData(p.a, "99999\tnever\n", 12), 1);
	cr_assert_eq(PQputCopyEnd(p.a, "the client changed its mind"), 1, "%s", PQerrorMessage(p.a));
	r = PQgetResult(p.a);
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "abandoned COPY: %s",
		     PQresStatus(PQresultStatus(r)));
	cr_expect_str_eq(h_sqlstate(r), "57014", "abandoned COPY: %s", PQresultErrorMessage(r));
	PQclear(r);
	cr_assert_null(PQgetResult(p.a));
	h_expect_value(p.b, "SELECT count(*) FROM txpool_copy", "5000");
	h_expect_value(p.a, "SELECT 'A after CopyFail'", "A after CopyFail");
	cr_expect_eq(PQtransactionStatus(p.a), PQTRANS_IDLE);

	/* psql's \copy both ways, 10000 rows (A and B stay connected meanwhile). */
	ci = h_conninfo(p.c, H.user, H.db, H.password);
	h_copy_in(ci, "txpool_copy2", 10000, md5_in);
	h_copy_out(ci, "txpool_copy2", 10000, "copy2-out.tsv", md5_out, &len);
	cr_expect_str_eq(md5_out, md5_in, "\\copy out (%zu bytes) differs from what was copied in", len);
	h_expect_value(p.a, "SELECT count(*) FROM txpool_copy2", "10000");

	pair_stop(&p);
	h_direct_exec("DROP TABLE txpool_copy; DROP TABLE txpool_copy2");
	free(all);
	free(out.p);
	free(ci);
}

/* Keeps the first error or notice that arrives while the connection is idle. */
static void keep_async_error(void *arg, const PGresult *res)
{
	char *keep = arg;

	if (keep[0] == '\0')
		snprintf(keep, 300, "%s: %s", h_err_field(res, PG_DIAG_SQLSTATE),
			 h_err_field(res, PG_DIAG_MESSAGE_PRIMARY));
}

/* Reads and parses conn, sending nothing, until the peer closes (true) or secs pass. */
static bool wait_for_close(PGconn *conn, double secs)
{
	double deadline = h_now() + secs;

	while (h_now() < deadline) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};

		if (pfd.fd < 0)
			return true;
		poll(&pfd, 1, 100);
		bool closed = !PQconsumeInput(conn);

		PQisBusy(conn); /* parses what arrived: an ErrorResponse goes to the notice receiver */
		if (closed)
			return true;
	}
	return false;
}

/*
 * Statement pooling refuses a transaction block with an error that names statement
 * pooling (SQLSTATE 25000), and the server it used is not left inside the transaction.
 * (statement_mode_begin_itself_fails checks that the refusal is BEGIN's own result;
 * this test takes either that or an asynchronous FATAL, without sending more.)
 */
Test(txpool, statement_mode_refuses_transaction_blocks)
{
	struct h_corral *c = h_corral_start("workers = 1\npool_mode = statement\n", ONE_SERVER_DB, NULL);
	PGconn *a = h_connect_bench(c), *b;
	char async_err[300] = "";
	char msg[300] = "";
	PGresult *r;

	h_expect_value(a, "SELECT 'single statements are fine'", "single statements are fine");
	h_expect_value(a, "SELECT 'and one multi-statement query'; SELECT 'ending outside a transaction'",
		       "ending outside a transaction");
	PQsetNoticeReceiver(a, keep_async_error, async_err);
	r = h_exec(a, "BEGIN");
	if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
		snprintf(msg, sizeof msg, "%s: %s", h_sqlstate(r), h_err_field(r, PG_DIAG_MESSAGE_PRIMARY));
	} else {
		cr_expect(wait_for_close(a, 5), "BEGIN in statement mode: %s, and the connection stayed open",
			  PQresStatus(PQresultStatus(r)));
		snprintf(msg, sizeof msg, "%s", async_err);
	}
	cr_log_info("txpool statement mode, BEGIN: result %s; refusal [%s]", PQresStatus(PQresultStatus(r)),
		    msg);
	cr_expect(strstr(msg, "statement pooling") != NULL,
		  "BEGIN in statement mode: refusal [%s] does not name statement pooling", msg);
	cr_expect(strncmp(msg, "25000: ", 7) == 0,
		  "BEGIN in statement mode: refusal [%s], want SQLSTATE 25000", msg);
	PQclear(r);
	PQfinish(a);

	b = h_connect_bench(c);
	h_expect_value(b, "SELECT 'next client'", "next client");
	cr_expect_eq(PQtransactionStatus(b), PQTRANS_IDLE,
		     "the next client's server is inside a transaction");
	/* Inside A's leftover transaction, now() would be older than this statement. */
	h_expect_value(b, "SELECT now() = statement_timestamp()", "t");
	PQfinish(b);
	h_corral_stop(c);
}

/*
 * What a client should see: BEGIN's own result is the refusal (as PgBouncer answers the
 * ReadyForQuery 'T' with the error instead of relaying it).  corral relays
 * CommandComplete "BEGIN" and ReadyForQuery 'T' first, so PQexec("BEGIN") succeeds and
 * the FATAL comes afterwards; a client that sends its next query at once may even lose
 * it to the reset of the closed socket ("server closed the connection unexpectedly").
 */
Test(txpool, statement_mode_begin_itself_fails)
{
	struct h_corral *c = h_corral_start("workers = 1\npool_mode = statement\n", ONE_SERVER_DB, NULL);
	PGconn *a = h_connect_bench(c);
	PGresult *r = h_exec(a, "BEGIN");

	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR,
		     "PQexec(BEGIN) in statement mode: %s, want the refusal", PQresStatus(PQresultStatus(r)));
	cr_expect(strstr(h_err_field(r, PG_DIAG_MESSAGE_PRIMARY), "statement pooling") != NULL,
		  "BEGIN's error: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(a);
	h_corral_stop(c);
}

/* ---------------------------------------------------------------- 6. extended protocol */

/*
 * pgbench -M extended (unnamed statements, Parse/Bind/Execute/Sync per query), 50
 * clients, select-only, through a transaction-mode pool of 20: no failures, and never
 * more than 20 backends of txpool_ext.
 */
Test(txpool, pgbench_extended_protocol, .timeout = 60)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\n",
					    "txpool_ext = host=@PGHOST@ port=@PGPORT@ dbname=txpool_ext "
					    "user=bench password=secret pool_size=20\n",
					    NULL);
	struct h_sampler *s = h_sampler_start("txpool_ext", H.user);
	int peak;

	pgbench_ok(c, "txpool_ext", "-M extended -c 50 -j 2 -T 5 -S", 1, "extended protocol");
	peak = h_sampler_stop(s, NULL);
	cr_expect_gt(peak, 0, "the sampler never saw a backend of txpool_ext");
	cr_expect_leq(peak, 20, "PostgreSQL had %d backends for txpool_ext/bench, pool_size is 20", peak);
	h_corral_stop(c);
}
