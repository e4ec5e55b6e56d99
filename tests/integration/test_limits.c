/*
 * Every limit and timeout of conf/corral.ini hit on purpose: pool sizes (default and
 * per database, both pooling modes), min_pool_size, the reserve pool,
 * max_db_connections, max_user_connections, query_wait_timeout (pool and application
 * queue), idle_transaction_timeout, client_idle_timeout, server_lifetime,
 * server_connect_timeout, server_login_retry (login backoff), [limits] app.NAME and
 * app_default, max_queue_depth and query_wait_notify; and what a client can make corral
 * hold: max_client_conn and max_logins_in_progress against silent sockets,
 * auth_failure_delay / auth_failure_max, max_pools, application records, tcp_keepalive*.
 *
 * Each test checks the SQLSTATE and that the message names the limit where there is a
 * refusal, and that corral keeps serving afterwards.  (server_idle_timeout is in
 * test_pool.c, max_client_conn in test_lifecycle.c.)
 *
 * Tests that count backends use databases (lim_*) and roles (lim_*) no other test
 * touches; they create them on the fly as superuser, so run.sh needs no change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(limits, H_SUITE);

/* ------------------------------------------------------------------ helpers */

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

/* Runs sql as superuser; an error whose SQLSTATE is ok_state (e.g. "already exists") is fine. */
static void su_exec(const char *sql, const char *ok_state)
{
	PGconn *su = h_superuser();
	PGresult *r = PQexec(su, sql);
	ExecStatusType st = PQresultStatus(r);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	if (st != PGRES_COMMAND_OK && !(ok_state && state && strcmp(state, ok_state) == 0))
		cr_assert_fail("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(su);
}

/* Database name (owner bench), made once per cluster. */
static void ensure_db(const char *name)
{
	char *sql = h_printf("create database %s owner bench", name);

	su_exec(sql, "42P04");
	free(sql);
}

/* Login role name with password 'secret', made once per cluster. */
static void ensure_role(const char *name)
{
	char *sql = h_printf("create role %s login password 'secret'", name);

	su_exec(sql, "42710");
	free(sql);
}

/* corral conninfo for user/db (password secret) with application_name app (NULL: none). */
static char *ci_app(const struct h_corral *c, const char *user, const char *db, const char *app)
{
	char *ci = h_conninfo(c, user, db, H.password);

	if (app != NULL) {
		char *with = h_printf("%s application_name='%s'", ci, app);

		free(ci);
		ci = with;
	}
	return ci;
}

static PGconn *connect_app(const struct h_corral *c, const char *user, const char *db, const char *app)
{
	char *ci = ci_app(c, user, db, app);
	PGconn *conn = h_connect(c, ci);

	free(ci);
	return conn;
}

/* Counts corral log lines that contain all of a and b (b may be NULL). */
static int log_count(const struct h_corral *c, const char *a, const char *b)
{
	char *all = h_read_file(c->log, NULL), *save = NULL;
	int n = 0;

	if (all == NULL)
		return 0;
	for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) && (b == NULL || strstr(line, b)))
			n++;
	free(all);
	return n;
}

/* The lines of corral's log that contain a and b (b may be NULL), for failure messages. */
static char *log_lines(const struct h_corral *c, const char *a, const char *b)
{
	char *all = h_read_file(c->log, NULL), *save = NULL, *out = strdup("");

	if (all == NULL)
		return out;
	for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) && (b == NULL || strstr(line, b))) {
			char *more = h_printf("%s%s\n", out, line);

			free(out);
			out = more;
		}
	free(all);
	return out;
}

/* The SQLSTATE in a verbose libpq error text ("...FATAL:  08006: message"), or "". */
static void state_of(const char *err, char out[6])
{
	const char *p = err ? strstr(err, "FATAL:  ") : NULL;

	out[0] = '\0';
	if (p != NULL)
		snprintf(out, 6, "%.5s", p + 8);
}

/* ---- notices: every NOTICE or asynchronous error a connection receives ---- */

struct notices {
	int n;
	double first_at;
	char severity[16];
	char sqlstate[6];
	char msg[300]; /* the first's */
	char last_severity[16];
	char last_sqlstate[6];
	char last_msg[300];
};

static void notice_receiver(void *arg, const PGresult *res)
{
	struct notices *ns = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (ns->n++ == 0) {
		ns->first_at = h_now();
		snprintf(ns->severity, sizeof ns->severity, "%s", sev ? sev : "");
		snprintf(ns->sqlstate, sizeof ns->sqlstate, "%s", st ? st : "");
		snprintf(ns->msg, sizeof ns->msg, "%s", msg ? msg : "");
	}
	snprintf(ns->last_severity, sizeof ns->last_severity, "%s", sev ? sev : "");
	snprintf(ns->last_sqlstate, sizeof ns->last_sqlstate, "%s", st ? st : "");
	snprintf(ns->last_msg, sizeof ns->last_msg, "%s", msg ? msg : "");
}

static void watch_notices(PGconn *conn, struct notices *ns)
{
	memset(ns, 0, sizeof *ns);
	PQsetNoticeReceiver(conn, notice_receiver, ns);
}

/*
 * conn is idle (nothing sent); waits up to timeout_s for corral to close it.  Returns
 * the seconds until the close, or -1.  A FATAL that arrives while libpq is idle goes
 * to the notice receiver (libpq's rule), so watch_notices(conn) first.
 */
static double wait_closed(PGconn *conn, double timeout_s)
{
	double start = h_now();

	while (h_now() - start < timeout_s) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};

		if (pfd.fd < 0 || PQstatus(conn) == CONNECTION_BAD)
			return h_now() - start;
		poll(&pfd, 1, 20);
		/* PQconsumeInput only reads; PQisBusy parses (and calls the notice receiver). */
		if (!PQconsumeInput(conn)) {
			PQisBusy(conn);
			return h_now() - start;
		}
		PQisBusy(conn);
	}
	return -1;
}

/* ---- jobs: one query per connection, all in flight at once ---- */

struct job {
	PGconn *conn;
	const char *sql;
	double sent_at, done_at;
	PGresult *res; /* the first error, else the last result */
	bool done;
};

static void job_send(struct job *j, PGconn *conn, const char *sql)
{
	PQclear(j->res);
	memset(j, 0, sizeof *j);
	j->conn = conn;
	j->sql = sql;
	j->sent_at = h_now();
	if (!PQsendQuery(conn, sql)) {
		j->res = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
		j->done = true;
		j->done_at = h_now();
	}
}

static void job_keep(struct job *j, PGresult *r)
{
	if (j->res != NULL && PQresultStatus(j->res) == PGRES_FATAL_ERROR) {
		PQclear(r);
	} else {
		PQclear(j->res);
		j->res = r;
	}
}

static void job_finish(struct job *j)
{
	j->done = true;
	j->done_at = h_now();
	if (j->res == NULL)
		j->res = PQmakeEmptyPGresult(j->conn, PGRES_FATAL_ERROR);
}

/* Reads what arrived for j without blocking. */
static void job_step(struct job *j)
{
	if (!PQconsumeInput(j->conn)) {
		/* The connection is gone: libpq hands out the error without blocking. */
		PGresult *r;

		while ((r = PQgetResult(j->conn)) != NULL)
			job_keep(j, r);
		job_finish(j);
		return;
	}
	while (!PQisBusy(j->conn)) {
		PGresult *r = PQgetResult(j->conn);

		if (r == NULL) {
			job_finish(j);
			return;
		}
		job_keep(j, r);
		if (PQstatus(j->conn) == CONNECTION_BAD && PQresultStatus(j->res) == PGRES_FATAL_ERROR) {
			job_finish(j);
			return;
		}
	}
}

/* Waits until every job is done or timeout_s passed; returns how many are done. */
static int jobs_wait(struct job *jobs, int n, double timeout_s)
{
	double deadline = h_now() + timeout_s;

	for (;;) {
		struct pollfd pfd[64];
		int np = 0, done = 0;

		cr_assert_leq(n, 64);
		for (int i = 0; i < n; i++) {
			if (!jobs[i].done)
				job_step(&jobs[i]);
			if (jobs[i].done) {
				done++;
			} else {
				pfd[np].fd = PQsocket(jobs[i].conn);
				pfd[np].events = POLLIN;
				np++;
			}
		}
		if (np == 0 || h_now() >= deadline)
			return done;
		poll(pfd, (nfds_t)np, 20);
	}
}

/* Fails unless job j succeeded with tuples or a command; what names it. */
static void expect_job_ok(const struct h_corral *c, const struct job *j, const char *what)
{
	cr_assert(j->done, "%s (%s): no reply", what, j->sql);
	if (PQresultStatus(j->res) != PGRES_TUPLES_OK && PQresultStatus(j->res) != PGRES_COMMAND_OK)
		cr_assert_fail("%s (%s): %s %s\ncorral log:\n%s", what, j->sql,
			       PQresStatus(PQresultStatus(j->res)), PQresultErrorMessage(j->res),
			       h_corral_log_tail(c));
}

/* Fails unless job j ended with an error want_state whose message contains needle. */
static void expect_job_error(const struct job *j, const char *what, const char *want_state, const char *needle)
{
	const char *msg = h_err_field(j->res, PG_DIAG_MESSAGE_PRIMARY);

	cr_assert(j->done, "%s (%s): no reply", what, j->sql);
	cr_expect_eq(PQresultStatus(j->res), PGRES_FATAL_ERROR, "%s: %s, want error %s", what,
		     PQresStatus(PQresultStatus(j->res)), want_state);
	cr_expect_str_eq(h_sqlstate(j->res), want_state, "%s: SQLSTATE [%s], want %s: %s", what,
			 h_sqlstate(j->res), want_state, PQresultErrorMessage(j->res));
	cr_expect(strstr(msg, needle) != NULL, "%s: the message should name %s: [%s]", what, needle, msg);
}

static void jobs_clear(struct job *jobs, int n)
{
	for (int i = 0; i < n; i++) {
		PQclear(jobs[i].res);
		jobs[i].res = NULL;
	}
}

/*
 * rounds times: every conn sends sql at once, then all replies are awaited (each must
 * succeed).  For transaction pooling, where a client holds a server only per query.
 */
static void run_rounds(const struct h_corral *c, PGconn **conns, int n, const char *sql, int rounds,
		       double timeout_s)
{
	struct job jobs[64] = {0};

	cr_assert_leq(n, 64);
	for (int round = 0; round < rounds; round++) {
		for (int i = 0; i < n; i++)
			job_send(&jobs[i], conns[i], sql);
		jobs_wait(jobs, n, timeout_s);
		for (int i = 0; i < n; i++) {
			char what[64];

			snprintf(what, sizeof what, "round %d, client %d", round, i);
			expect_job_ok(c, &jobs[i], what);
		}
	}
	jobs_clear(jobs, n);
}

/* ---- a sampler of any count(*) query against pg_stat_activity ---- */

struct qsampler {
	pthread_t thread;
	char *sql;
	atomic_bool stop;
	atomic_int peak, low, samples;
	char error[512];
};

static PGconn *monitor_conn(void)
{
	const char *keys[] = {"host", "port", "user", "dbname", "application_name", NULL};
	char port[16];
	const char *vals[] = {H.sockdir, port, "postgres", "postgres", "corral-test-monitor", NULL};

	snprintf(port, sizeof port, "%d", H.pgport);
	return PQconnectdbParams(keys, vals, 0);
}

static void *qsampler_main(void *arg)
{
	struct qsampler *s = arg;
	PGconn *conn = monitor_conn();

	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(s->error, sizeof s->error, "monitor connection: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	while (!atomic_load(&s->stop)) {
		PGresult *r = PQexec(conn, s->sql);
		int n;

		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			snprintf(s->error, sizeof s->error, "%s: %s", s->sql, PQresultErrorMessage(r));
			PQclear(r);
			break;
		}
		n = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (n > atomic_load(&s->peak))
			atomic_store(&s->peak, n);
		if (n < atomic_load(&s->low))
			atomic_store(&s->low, n);
		atomic_fetch_add(&s->samples, 1);
		usleep(5000);
	}
	PQfinish(conn);
	return NULL;
}

/* Starts sampling "select count(*) ..." (printf-style); returns once the first sample is in. */
static struct qsampler *qsampler_start(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct qsampler *qsampler_start(const char *fmt, ...)
{
	struct qsampler *s = calloc(1, sizeof *s);
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s->sql, fmt, ap) < 0)
		abort();
	va_end(ap);
	atomic_init(&s->stop, false);
	atomic_init(&s->peak, 0);
	atomic_init(&s->low, 1 << 30);
	atomic_init(&s->samples, 0);
	if (pthread_create(&s->thread, NULL, qsampler_main, s) != 0)
		cr_assert_fail("pthread_create failed");
	for (double deadline = h_now() + 10; atomic_load(&s->samples) == 0 && s->error[0] == '\0';) {
		if (h_now() > deadline)
			cr_assert_fail("sampler did not start: %s", s->sql);
		usleep(1000);
	}
	return s;
}

/* Stops it; fails if sampling failed; returns the peak (and the lowest count in *low). */
static int qsampler_stop(struct qsampler *s, int *low)
{
	int peak;

	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	if (s->error[0] != '\0')
		cr_assert_fail("sampler failed: %s", s->error);
	cr_expect_gt(atomic_load(&s->samples), 5, "only %d samples of %s", atomic_load(&s->samples), s->sql);
	peak = atomic_load(&s->peak);
	if (low != NULL)
		*low = atomic_load(&s->low);
	free(s->sql);
	free(s);
	return peak;
}

/* ---- pgbench ---- */

/*
 * pgbench -n -f (select pg_sleep(0.02)) with clients for secs seconds through corral
 * as user (password secret) on db, -C if connect_each; fails unless every transaction
 * succeeds.
 */
static void pgbench_load(const struct h_corral *c, const char *user, const char *db, int clients, int secs,
			 bool connect_each)
{
	char *script = h_path("sleep.sql"), *pgbench = h_pgtool("pgbench");
	struct h_cmd r;

	h_write_file(script, "select pg_sleep(0.02);\n");
	r = h_run(secs + 30, "PGPASSWORD=%s %s -n %s -f %s -c %d -j 3 -T %d -h 127.0.0.1 -p %d -U %s %s",
		  H.password, pgbench, connect_each ? "-C" : "", script, clients, secs, c->port, user, db);
	if (r.status != 0 || strstr(r.out, "number of failed transactions: 0 ") == NULL ||
	    strstr(r.out, "actually processed: 0\n") != NULL)
		cr_assert_fail("pgbench exited %d\nstdout:\n%s\nstderr:\n%s\ncorral log:\n%s", r.status, r.out,
			       r.err, h_corral_log_tail(c));
	h_cmd_free(&r);
	free(script);
	free(pgbench);
}

/* ------------------------------------------------------------------ pool sizes */

/*
 * default_pool_size = 3 in session mode: a connection storm of 12 clients (pgbench -C)
 * never has more than 3 backends, and uses all 3.
 */
/* 12 steady pgbench clients through corral (settings, databases) on database db:
 * PostgreSQL never has more than 3 backends of db, and uses all 3. */
static void expect_three_backends(const char *settings, const char *databases, const char *db,
				  bool session)
{
	struct h_corral *c;
	struct h_sampler *s;
	int samples = 0, peak;

	ensure_db(db);
	c = h_corral_start(settings, databases, NULL);
	s = h_sampler_start(db, NULL);
	pgbench_load(c, H.user, db, 12, 2, session);
	peak = h_sampler_stop(s, &samples);
	cr_expect_leq(peak, 3, "%d backends of %s, the pool size is 3", peak, db);
	cr_expect_eq(peak, 3, "only %d backends under a load of 12 clients, the pool size is 3", peak);
	h_expect_new_client(c, h_conninfo(c, H.user, db, H.password), "select 'served'", "served");
	h_corral_stop(c);
}

Test(limits, default_pool_size_session_mode)
{
	expect_three_backends("pool_mode = session\ndefault_pool_size = 3\nquery_wait_timeout = 20\n",
			      "lim_size_s = host=@PGHOST@ port=@PGPORT@ dbname=lim_size_s user=bench password=secret\n",
			      "lim_size_s", true);
}

/*
 * pool_size=3 on the database line (over default_pool_size = 20) in transaction mode:
 * 12 steady clients multiplexed onto at most 3 backends.
 */
Test(limits, pool_size_transaction_mode)
{
	expect_three_backends(
		"pool_mode = transaction\ndefault_pool_size = 20\nquery_wait_timeout = 20\n",
		"lim_size_t = host=@PGHOST@ port=@PGPORT@ dbname=lim_size_t user=bench password=secret pool_size=3\n",
		"lim_size_t", false);
}

/* ------------------------------------------------------------------ min_pool_size */

/*
 * min_pool_size = 2 for database db with a fixed login (pool_size = clients): PostgreSQL
 * shows 2 backends soon after corral starts, before any client.  After a load of
 * clients concurrent queries opened that many, the surplus closes after
 * server_idle_timeout (1 s) but the count never falls below 2.
 */
static void min_pool_case(const char *db, int workers, int clients)
{
	char *settings = h_printf("workers = %d\npool_mode = transaction\nmin_pool_size = 2\n"
				  "server_idle_timeout = 1\n",
				  workers);
	char *dbs = h_printf("%s = host=@PGHOST@ port=@PGPORT@ dbname=%s user=bench password=secret pool_size=%d\n",
			     db, db, clients);
	char *count = h_printf("select count(*) from pg_stat_activity where backend_type = 'client backend' "
			       "and datname = '%s'",
			       db);
	struct h_corral *c;
	PGconn *conns[16];
	struct qsampler *q;
	double secs;
	int n, low = 0;
	char *ci;

	cr_assert_leq(clients, 16);
	ensure_db(db);
	c = h_corral_start(settings, dbs, NULL);
	secs = h_wait_pg_backends(db, NULL, 2, 5);
	cr_assert_geq(secs, 0, "no 2 prewarmed backends of %s within 5 s (have %d)\ncorral log:\n%s", db,
		      h_pg_backends(db, NULL), h_corral_log_tail(c));
	sleep_s(0.3);
	n = h_pg_backends(db, NULL);
	cr_expect_eq(n, 2, "%d backends of %s without any client, min_pool_size is 2", n, db);

	/* Concurrent clients open more servers. */
	ci = h_conninfo(c, H.user, db, H.password);
	for (int i = 0; i < clients; i++)
		conns[i] = h_connect(c, ci);
	run_rounds(c, conns, clients, "select pg_sleep(0.3)", 1, 10);
	n = h_pg_backends(db, NULL);
	cr_expect_eq(n, clients, "%d backends of %s after %d concurrent queries", n, db, clients);
	for (int i = 1; i < clients; i++)
		PQfinish(conns[i]);

	/* Idle for server_idle_timeout: back to 2, and it stays there. */
	q = qsampler_start("%s", count);
	secs = h_wait_pg_backends(db, NULL, 2, 5);
	cr_expect_geq(secs, 0, "the surplus servers were not closed 5 s after server_idle_timeout (1 s)");
	sleep_s(1.5);
	qsampler_stop(q, &low);
	n = h_pg_backends(db, NULL);
	cr_expect_eq(n, 2, "%d backends of %s 1.5 s after the surplus closed, min_pool_size is 2", n, db);
	cr_expect_geq(low, 2, "backends of %s fell to %d, min_pool_size is 2; corral log:\n%s", db, low,
		      log_lines(c, "db=", db));
	n = log_count(c, "server_idle_timeout reached", db);
	cr_expect_eq(n, clients - 2, "%d servers closed for server_idle_timeout, want %d:\n%s", n, clients - 2,
		     log_lines(c, "db=", db));
	h_expect_still_serving(c, conns[0], ci);
	free(ci);
	free(settings);
	free(dbs);
	free(count);
	h_corral_stop(c);
}

/* One worker: the idle surplus of 4 servers closes down to min_pool_size, not below. */
Test(limits, min_pool_size)
{
	min_pool_case("lim_min", 1, 4);
}

/*
 * The same with two workers, whose servers idle on both.
 */
Test(limits, min_pool_size_two_workers)
{
	min_pool_case("lim_min2", 2, 8);
}

/* ------------------------------------------------------------------ reserve pool */

/*
 * pool_size=1, reserve_pool_size = 1, reserve_pool_timeout = 0.5, session mode: A holds
 * the only server; B's query is served after ~0.5 s through the reserve (2 backends);
 * C then waits (never a third backend) until A leaves.
 */
Test(limits, reserve_pool)
{
	struct h_corral *c;
	struct h_sampler *s;
	struct job jb = {0}, jc = {0};
	PGconn *a, *b, *cc;
	double took;
	int n, peak;
	char *ci;

	ensure_db("lim_res");
	c = h_corral_start(
		"pool_mode = session\nreserve_pool_size = 1\nreserve_pool_timeout = 0.5\n",
		"lim_res = host=@PGHOST@ port=@PGPORT@ dbname=lim_res user=bench password=secret pool_size=1\n",
		NULL);
	ci = h_conninfo(c, H.user, "lim_res", H.password);
	s = h_sampler_start("lim_res", NULL);
	a = h_connect(c, ci);
	h_expect_value(a, "select 'a has the server'", "a has the server");

	b = h_connect(c, ci);
	job_send(&jb, b, "select 'b served'");
	jobs_wait(&jb, 1, 10);
	expect_job_ok(c, &jb, "B");
	took = jb.done_at - jb.sent_at;
	cr_expect(took >= 0.45 && took < 2.5,
		  "B was served after %.2f s; want it through the reserve after reserve_pool_timeout (0.5 s)",
		  took);
	n = h_pg_backends("lim_res", NULL);
	cr_expect_eq(n, 2, "%d backends of lim_res with the reserve in use, want 2", n);
	cr_expect_eq(log_count(c, "event=reserve_pool_used", "db=lim_res"), 1, "corral log:\n%s",
		     h_corral_log_tail(c));

	/* The reserve is full too: C waits, and no third backend appears. */
	cc = h_connect(c, ci);
	job_send(&jc, cc, "select 'c served'");
	cr_expect_eq(jobs_wait(&jc, 1, 1.2), 0, "C was served although pool and reserve were busy");
	n = h_pg_backends("lim_res", NULL);
	cr_expect_eq(n, 2, "%d backends of lim_res, pool_size + reserve_pool_size is 2", n);
	PQfinish(a);
	jobs_wait(&jc, 1, 5);
	expect_job_ok(c, &jc, "C after A left");
	peak = h_sampler_stop(s, NULL);
	cr_expect_eq(peak, 2, "peak of %d backends of lim_res, pool_size + reserve_pool_size is 2", peak);
	jobs_clear(&jb, 1);
	jobs_clear(&jc, 1);
	PQfinish(cc);
	h_expect_still_serving(c, b, ci);
	free(ci);
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ max_db_connections */

/*
 * Two users on one database whose line says max_db_connections=2 (pool_size 5 each):
 * while both users' clients run, the database never has more than 2 backends, and every
 * client is served.
 */
Test(limits, max_db_connections)
{
	struct h_corral *c;
	struct h_sampler *s;
	PGconn *conns[6];
	int peak;

	ensure_db("lim_db");
	ensure_role("lim_a");
	ensure_role("lim_b");
	c = h_corral_start("pool_mode = transaction\nquery_wait_timeout = 5\n",
			   "lim_db = host=@PGHOST@ port=@PGPORT@ dbname=lim_db pool_size=5 max_db_connections=2\n",
			   "\"lim_a\" \"secret\"\n\"lim_b\" \"secret\"\n");
	for (int i = 0; i < 6; i++)
		conns[i] = connect_app(c, i % 2 ? "lim_b" : "lim_a", "lim_db", NULL);
	s = h_sampler_start("lim_db", NULL);
	run_rounds(c, conns, 6, "select pg_sleep(0.05)", 6, 10);
	peak = h_sampler_stop(s, NULL);
	cr_expect_leq(peak, 2, "%d backends of lim_db, max_db_connections is 2", peak);
	cr_expect_eq(peak, 2, "only %d backends of lim_db under load", peak);
	for (int i = 1; i < 6; i++)
		PQfinish(conns[i]);
	h_expect_still_serving(c, conns[0], h_conninfo(c, "lim_b", "lim_db", H.password));
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ max_user_connections */

/*
 * max_user_connections = 2 ([corral]) for lim_u and 3 ([users] line) for lim_v, each
 * user with clients on two corral databases (mu1, mu2, pool_size 5 each, both on
 * PostgreSQL database lim_user): a user's backends over both never exceed its limit.
 * (Each limit is at least the number of pools of its user: with a smaller one a pool
 * can starve, see ..._idle_server_of_another_pool_makes_room below.)
 */
Test(limits, max_user_connections)
{
	struct h_corral *c;
	struct h_sampler *su, *sv;
	PGconn *conns[8];
	int peak_u, peak_v;

	ensure_db("lim_user");
	ensure_role("lim_u");
	ensure_role("lim_v");
	c = h_corral_start("pool_mode = transaction\nquery_wait_timeout = 5\nmax_user_connections = 2\n",
			   "mu1 = host=@PGHOST@ port=@PGPORT@ dbname=lim_user pool_size=5\n"
			   "mu2 = host=@PGHOST@ port=@PGPORT@ dbname=lim_user pool_size=5\n"
			   "[users]\n"
			   "lim_v = max_user_connections=3\n",
			   "\"lim_u\" \"secret\"\n\"lim_v\" \"secret\"\n");
	for (int i = 0; i < 8; i++)
		conns[i] = connect_app(c, i < 4 ? "lim_u" : "lim_v", i % 2 ? "mu2" : "mu1", NULL);
	su = h_sampler_start("lim_user", "lim_u");
	sv = h_sampler_start("lim_user", "lim_v");
	run_rounds(c, conns, 8, "select pg_sleep(0.05)", 6, 10);
	peak_u = h_sampler_stop(su, NULL);
	peak_v = h_sampler_stop(sv, NULL);
	cr_expect_leq(peak_u, 2, "%d backends of lim_u, max_user_connections is 2", peak_u);
	cr_expect_eq(peak_u, 2, "only %d backends of lim_u under load", peak_u);
	cr_expect_leq(peak_v, 3, "%d backends of lim_v, its [users] max_user_connections is 3", peak_v);
	cr_expect_eq(peak_v, 3, "only %d backends of lim_v under load", peak_v);
	for (int i = 1; i < 8; i++)
		PQfinish(conns[i]);
	h_expect_still_serving(c, conns[0], h_conninfo(c, "lim_v", "mu2", H.password));
	h_corral_stop(c);
}

/*
 * The shared limits must not starve a pool: A's client ran a query and stays connected,
 * so its server idles in A's pool and holds the only slot (of the database, or of the
 * user); B's client, of another pool under the same limit, must still be served, by
 * corral closing the idle server of the other pool (as PgBouncer does for
 * max_db_connections / max_user_connections), not left until query_wait_timeout.
 * Then A, whose pool lost its server, is served again the same way.
 */
static void expect_served_across_pools(const struct h_corral *c, const char *ci_a, const char *ci_b,
				       const char *pgdb)
{
	PGconn *a = h_connect(c, ci_a), *b;
	char *err = NULL;
	PGresult *r;
	int n;

	h_expect_value(a, "select 'a served'", "a served");
	b = h_try_connect(ci_b, 10, &err);
	cr_assert(b != NULL,
		  "B (another pool under the same limit) was refused while A's server sat idle: %s\n"
		  "corral log:\n%s",
		  err, h_corral_log_tail(c));
	r = h_exec_t(b, "select 'b served'", 10);
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "B's query: %s", PQresultErrorMessage(r));
	PQclear(r);
	n = h_pg_backends(pgdb, NULL);
	cr_expect_leq(n, 1, "%d backends of %s, the limit is 1", n, pgdb);
	PQfinish(b);
	h_expect_still_serving(c, a, ci_b);
}

/*
 * max_db_connections held by an idle server of another pool (another user of the
 * database): that server is closed to make room, as PgBouncer does, instead of the
 * new pool's client waiting until query_wait_timeout.
 */
Test(limits, max_db_connections_idle_server_of_another_pool_makes_room)
{
	struct h_corral *c;

	ensure_db("lim_db2");
	ensure_role("lim_c");
	ensure_role("lim_d");
	c = h_corral_start("pool_mode = transaction\nquery_wait_timeout = 3\n",
			   "lim_db2 = host=@PGHOST@ port=@PGPORT@ dbname=lim_db2 pool_size=5 max_db_connections=1\n",
			   "\"lim_c\" \"secret\"\n\"lim_d\" \"secret\"\n");
	expect_served_across_pools(c, h_conninfo(c, "lim_c", "lim_db2", H.password),
				   h_conninfo(c, "lim_d", "lim_db2", H.password), "lim_db2");
	h_corral_stop(c);
}

/* The same for max_user_connections (one user, two databases). */
Test(limits, max_user_connections_idle_server_of_another_pool_makes_room)
{
	struct h_corral *c;

	ensure_db("lim_user2");
	ensure_role("lim_w");
	c = h_corral_start("pool_mode = transaction\nquery_wait_timeout = 3\nmax_user_connections = 1\n",
			   "mw1 = host=@PGHOST@ port=@PGPORT@ dbname=lim_user2 pool_size=5\n"
			   "mw2 = host=@PGHOST@ port=@PGPORT@ dbname=lim_user2 pool_size=5\n",
			   "\"lim_w\" \"secret\"\n");
	expect_served_across_pools(c, h_conninfo(c, "lim_w", "mw1", H.password),
				   h_conninfo(c, "lim_w", "mw2", H.password), "lim_user2");
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ query_wait_timeout */

/*
 * query_wait_timeout = 1 in transaction mode, for both kinds of queue: a pool of size 1
 * held by a long query, and an application (app.slow = 1) whose one turn is taken.  The
 * waiter of each gets 57014 naming query_wait_timeout after ~1 s.
 */
Test(limits, query_wait_timeout_pool_and_app_queue)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nquery_wait_timeout = 1\n",
					    "qwt = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret pool_size=1\n"
					    "qwt_app = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret pool_size=5\n"
					    "[limits]\n"
					    "app.slow = 1\n",
					    NULL);
	PGconn *hold = connect_app(c, H.user, "qwt", NULL), *wait = connect_app(c, H.user, "qwt", NULL);
	PGconn *hold_app = connect_app(c, H.user, "qwt_app", "slow");
	PGconn *wait_app = connect_app(c, H.user, "qwt_app", "slow");
	struct job holders[2] = {0}, waiters[2] = {0};

	job_send(&holders[0], hold, "select pg_sleep(2)");
	job_send(&holders[1], hold_app, "select pg_sleep(2)");
	sleep_s(0.2);
	job_send(&waiters[0], wait, "select 'pool waiter served'");
	job_send(&waiters[1], wait_app, "select 'app waiter served'");
	jobs_wait(waiters, 2, 5);
	for (int i = 0; i < 2; i++) {
		const char *what = i ? "waiter for application slow" : "waiter for the pool";
		double took = waiters[i].done_at - waiters[i].sent_at;

		expect_job_error(&waiters[i], what, "57014", "query_wait_timeout");
		cr_expect(took >= 0.9 && took < 2.0, "%s: refused after %.2f s, query_wait_timeout is 1 s", what,
			  took);
	}
	cr_expect(strstr(h_err_field(waiters[1].res, PG_DIAG_MESSAGE_PRIMARY), "slow") != NULL,
		  "the application waiter's message should name the application: %s",
		  h_err_field(waiters[1].res, PG_DIAG_MESSAGE_PRIMARY));
	jobs_wait(holders, 2, 5);
	expect_job_ok(c, &holders[0], "pool holder");
	expect_job_ok(c, &holders[1], "application holder");
	jobs_clear(holders, 2);
	jobs_clear(waiters, 2);
	PQfinish(wait);
	PQfinish(wait_app);
	PQfinish(hold_app);
	h_expect_still_serving(c, hold, h_conninfo(c, H.user, "qwt", H.password));
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ idle timeouts */

/*
 * idle_transaction_timeout = 1, transaction mode, pool_size=1: a client that BEGINs,
 * inserts and sits idle is ended with FATAL 25P03 naming idle_transaction_timeout; its
 * insert is rolled back, and the next client gets the same server connection.
 */
Test(limits, idle_transaction_timeout)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nidle_transaction_timeout = 1\n",
					    H_BENCH_DB_WITH(" pool_size=1"), NULL);
	char *direct = h_pg_conninfo(H.user, H.db, H.password);
	PGconn *pg = h_connect(NULL, direct), *a, *b;
	struct notices ns;
	char *pid_a, *pid_b;
	double secs;

	h_exec_ok(pg, "create table if not exists lim_idle_tx (x int)");
	h_exec_ok(pg, "delete from lim_idle_tx");
	PQfinish(pg);

	a = h_connect_bench(c);
	h_exec_ok(a, "BEGIN");
	pid_a = h_value(a, "select pg_backend_pid()");
	h_exec_ok(a, "insert into lim_idle_tx values (42)");
	watch_notices(a, &ns);
	secs = wait_closed(a, 5);
	cr_expect(secs >= 0.8 && secs < 2.0,
		  "the client idle in a transaction was closed after %.2f s (-1: not within 5 s); "
		  "idle_transaction_timeout is 1 s",
		  secs);
	cr_expect_str_eq(ns.severity, "FATAL", "no FATAL before the close (%d notices: %s %s)", ns.n,
			 ns.sqlstate, ns.msg);
	cr_expect_str_eq(ns.sqlstate, "25P03", "SQLSTATE [%s]: %s", ns.sqlstate, ns.msg);
	cr_expect(strstr(ns.msg, "idle_transaction_timeout") != NULL, "message: %s", ns.msg);
	PQfinish(a);

	b = h_connect_bench(c);
	pid_b = h_value(b, "select pg_backend_pid()");
	cr_expect_str_eq(pid_b, pid_a, "B got backend %s, A had %s: the server should go back to the pool",
			 pid_b, pid_a);
	h_expect_value(b, "select count(*) from lim_idle_tx", "0");
	h_expect_value(b, "select current_setting('transaction_isolation') is not null", "t");
	h_exec_ok(b, "insert into lim_idle_tx values (1)"); /* not in an aborted transaction */
	h_expect_still_serving(c, b, NULL);
	free(pid_a);
	free(pid_b);
	free(direct);
	h_corral_stop(c);
}

/*
 * client_idle_timeout = 1: a logged-in client that sends nothing is ended with FATAL
 * 57P05 naming client_idle_timeout; a client busy in pg_sleep(2) is not.
 */
Test(limits, client_idle_timeout)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nclient_idle_timeout = 1\n", H_BENCH_DB, NULL);
	PGconn *idle = h_connect_bench(c), *busy = h_connect_bench(c);
	struct notices ns;
	struct job j = {0};
	double secs;

	h_expect_value(idle, "select 'idle client'", "idle client");
	watch_notices(idle, &ns);
	job_send(&j, busy, "select 'slept' from pg_sleep(2)");
	secs = wait_closed(idle, 5);
	cr_expect(secs >= 0.8 && secs < 2.0,
		  "the idle client was closed after %.2f s (-1: not within 5 s); client_idle_timeout is 1 s",
		  secs);
	cr_expect_str_eq(ns.severity, "FATAL", "no FATAL before the close (%d notices: %s %s)", ns.n,
			 ns.sqlstate, ns.msg);
	cr_expect_str_eq(ns.sqlstate, "57P05", "SQLSTATE [%s]: %s", ns.sqlstate, ns.msg);
	cr_expect(strstr(ns.msg, "client_idle_timeout") != NULL, "message: %s", ns.msg);
	PQfinish(idle);

	jobs_wait(&j, 1, 10);
	expect_job_ok(c, &j, "the busy client's pg_sleep(2)");
	cr_expect_str_eq(PQgetvalue(j.res, 0, 0), "slept");
	jobs_clear(&j, 1);
	h_expect_still_serving(c, busy, NULL);
	h_corral_stop(c);
}

/*
 * The idle clock starts when the client becomes idle, as PostgreSQL's
 * idle_session_timeout and idle_in_transaction_session_timeout do: right after a 2 s
 * query (outside and inside a transaction) the client has its whole second again.
 */
Test(limits, idle_timeouts_start_after_the_last_reply)
{
	struct h_corral *c = h_corral_start(
		"pool_mode = transaction\nclient_idle_timeout = 1\nidle_transaction_timeout = 1\n", H_BENCH_DB,
		NULL);
	PGconn *conn = h_connect_bench(c);
	PGresult *r;

	h_expect_value(conn, "select 'slept' from pg_sleep(2)", "slept");
	sleep_s(0.4);
	r = h_exec(conn, "select 'still here'");
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK,
		     "0.4 s after a 2 s query, client_idle_timeout (1 s) ended the client: %s\ncorral log:\n%s",
		     PQresultErrorMessage(r), h_corral_log_tail(c));
	PQclear(r);
	PQfinish(conn);

	conn = h_connect_bench(c);
	h_exec_ok(conn, "BEGIN");
	h_expect_value(conn, "select 'slept' from pg_sleep(2)", "slept");
	sleep_s(0.4);
	r = h_exec(conn, "select 'still in the transaction'");
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK,
		     "0.4 s after a 2 s query in a transaction, idle_transaction_timeout (1 s) ended the "
		     "client: %s\ncorral log:\n%s",
		     PQresultErrorMessage(r), h_corral_log_tail(c));
	PQclear(r);
	if (PQstatus(conn) == CONNECTION_OK)
		h_exec_ok(conn, "COMMIT");
	PQfinish(conn);
	h_expect_new_client(c, NULL, "select 'served'", "served");
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ server_lifetime */

/*
 * server_lifetime = 1, pool_size=1, transaction mode: once idle past its lifetime the
 * server is replaced (pg_backend_pid changes between transactions), but never while a
 * transaction runs on it.
 */
Test(limits, server_lifetime)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nserver_lifetime = 1\n",
					    H_BENCH_DB_WITH(" pool_size=1"), NULL);
	PGconn *conn = h_connect_bench(c);
	char *p1, *p2, *p3, *p4, *p5;

	p1 = h_value(conn, "select pg_backend_pid()");
	sleep_s(1.5);
	p2 = h_value(conn, "select pg_backend_pid()");
	cr_expect_str_neq(p2, p1, "the server (pid %s) outlived server_lifetime (1 s) while idle", p1);

	/* A transaction longer than the lifetime keeps its server to the end. */
	h_exec_ok(conn, "BEGIN");
	p3 = h_value(conn, "select pg_backend_pid()");
	h_exec_ok(conn, "select pg_sleep(1.3)");
	p4 = h_value(conn, "select pg_backend_pid()");
	cr_expect_str_eq(p4, p3, "the server changed inside a transaction (%s -> %s)", p3, p4);
	h_exec_ok(conn, "COMMIT");
	p5 = h_value(conn, "select pg_backend_pid()");
	cr_expect_str_neq(p5, p3, "the server (pid %s) was kept after its lifetime ended", p3);
	cr_expect_geq(log_count(c, "server_lifetime reached", NULL), 2, "corral log:\n%s", h_corral_log_tail(c));
	h_expect_still_serving(c, conn, NULL);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	free(p5);
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ server_connect_timeout */

/* A TCP listener on a free loopback port that never accepts: connects complete, nobody answers. */
static int silent_listener(int *port)
{
	for (int tries = 0; tries < 20; tries++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h_free_port())};
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0)
			cr_assert_fail("silent listener: %s", strerror(errno));
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 16) == 0) {
			*port = ntohs(sa.sin_port);
			return fd;
		}
		close(fd); /* taken since h_free_port looked: another one */
	}
	cr_assert_fail("silent listener: no port");
	return -1;
}

/*
 * server_connect_timeout = 1 against a server that accepts TCP and never answers: the
 * client gets 08006 saying the login timed out (server_connect_timeout) in 1-3 s, and
 * corral keeps serving another database.  server_login_wait = 0: the client does not
 * wait for a later login to work (test_restart.c tests that wait).
 */
Test(limits, server_connect_timeout)
{
	int port, fd = silent_listener(&port);
	char *dbs = h_printf("%s"
			     "stall = host=127.0.0.1 port=%d dbname=bench user=bench password=secret\n",
			     H_BENCH_DB, port);
	struct h_corral *c = h_corral_start("pool_mode = transaction\nserver_connect_timeout = 1\n"
					    "server_login_wait = 0\n",
					    dbs, NULL);
	PGconn *bench = h_connect_bench(c), *conn;
	char *ci = h_conninfo(c, H.user, "stall", H.password), *err = NULL, state[6];
	double t0 = h_now(), took;
	PGresult *r = NULL;
	const char *msg;

	h_expect_value(bench, "select 'bench before'", "bench before");
	conn = h_try_connect(ci, 10, &err);
	if (conn == NULL) {
		state_of(err, state);
		msg = err;
	} else {
		r = h_exec_t(conn, "select 1", 10);
		snprintf(state, sizeof state, "%s", h_sqlstate(r));
		msg = PQresultErrorMessage(r);
	}
	took = h_now() - t0;
	cr_expect_str_eq(state, "08006", "SQLSTATE [%s], want 08006: %s", state, msg);
	cr_expect(strstr(msg, "server_connect_timeout") != NULL && strstr(msg, "timed out") != NULL,
		  "the message should say the login timed out (server_connect_timeout): %s", msg);
	cr_expect(took >= 0.9 && took < 3.0, "the error came after %.2f s, server_connect_timeout is 1 s", took);
	PQclear(r);
	if (conn != NULL)
		PQfinish(conn);
	free(err);
	close(fd);
	h_expect_still_serving(c, bench, NULL);
	free(ci);
	free(dbs);
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ server_login_retry */

struct login {
	PGconn *conn;
	PostgresPollingStatusType st;
	double start, end;
	bool done, ok;
	char err[512];
};

static void login_start(struct login *l, const char *ci)
{
	memset(l, 0, sizeof *l);
	l->start = h_now();
	l->conn = PQconnectStart(ci);
	cr_assert(l->conn != NULL);
	PQsetErrorVerbosity(l->conn, PQERRORS_VERBOSE);
	l->st = PQstatus(l->conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
}

/* Drives the logins until all finished or timeout_s passed. */
static void logins_wait(struct login *ls, int n, double timeout_s)
{
	double deadline = h_now() + timeout_s;

	while (h_now() < deadline) {
		struct pollfd pfd[64];
		int map[64], np = 0;

		for (int i = 0; i < n; i++) {
			struct login *l = &ls[i];

			if (l->done)
				continue;
			if (l->st == PGRES_POLLING_OK || l->st == PGRES_POLLING_FAILED) {
				l->done = true;
				l->end = h_now();
				l->ok = l->st == PGRES_POLLING_OK;
				if (!l->ok)
					snprintf(l->err, sizeof l->err, "%s", PQerrorMessage(l->conn));
				continue;
			}
			pfd[np].fd = PQsocket(l->conn);
			pfd[np].events = l->st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			pfd[np].revents = 0;
			map[np++] = i;
		}
		if (np == 0)
			return;
		poll(pfd, (nfds_t)np, 20);
		for (int k = 0; k < np; k++)
			if (pfd[k].revents)
				ls[map[k]].st = PQconnectPoll(ls[map[k]].conn);
	}
}

/*
 * PostgreSQL unreachable (a closed port), server_login_retry = 0.5: 10 clients at once,
 * then 10 more over a second, all get 08006 within ~1 s each; corral tries far fewer
 * logins than it has clients (the backoff, retries never more than 0.5 s apart, and
 * clients during it are told "next login attempt in ..."); another database still works.
 * server_login_wait = 0: clients fail fast from the first failed login on, as with
 * PgBouncer (test_restart.c tests clients waiting for PostgreSQL to come back).
 */
Test(limits, server_login_retry_backoff)
{
	int dead_port = h_free_port();
	char *dbs = h_printf("%s"
			     "dead = host=127.0.0.1 port=%d dbname=bench user=bench password=secret\n",
			     H_BENCH_DB, dead_port);
	struct h_corral *c = h_corral_start("pool_mode = transaction\nserver_login_retry = 0.5\n"
					    "server_login_wait = 0\n",
					    dbs, NULL);
	char *ci = h_conninfo(c, H.user, "dead", H.password);
	struct login ls[20];
	int attempts, told_next = 0, most;
	char *all, *p;
	double t0 = h_now(), took;

	for (int i = 0; i < 10; i++)
		login_start(&ls[i], ci);
	logins_wait(ls, 10, 5);
	for (int i = 10; i < 20; i++) {
		sleep_s(0.1);
		login_start(&ls[i], ci);
		logins_wait(&ls[i], 1, 5);
	}
	for (int i = 0; i < 20; i++) {
		char state[6];

		cr_expect(ls[i].done && !ls[i].ok, "client %d: %s", i, ls[i].done ? "logged in" : "no answer in 5 s");
		state_of(ls[i].err, state);
		cr_expect_str_eq(state, "08006", "client %d: SQLSTATE [%s]: %s", i, state, ls[i].err);
		cr_expect_lt(ls[i].end - ls[i].start, 1.0, "client %d: refused after %.2f s", i,
			     ls[i].end - ls[i].start);
		if (strstr(ls[i].err, "next login attempt"))
			told_next++;
		PQfinish(ls[i].conn);
	}
	took = h_now() - t0;
	/* After the first failure no login starts for 250 ms, then 500 ms: at most one
	 * per 250 ms however slow the run (under valgrind the clients take longer). */
	most = 2 + (int)(took / 0.25);
	attempts = log_count(c, "event=server_login_failed", "db=dead");
	cr_expect(attempts >= 2 && attempts <= most,
		  "%d server logins for 20 clients over %.1f s; want a backoff (at most %d)\n%s", attempts,
		  took, most, h_corral_log_tail(c));
	cr_expect_geq(told_next, 5, "only %d of 20 clients were told the next login attempt", told_next);
	/* No retry waits longer than server_login_retry. */
	all = h_read_file(c->log, NULL);
	for (p = all; p && (p = strstr(p, "retry_ms=")) != NULL; p++)
		cr_expect_leq(atol(p + 9), 500, "a backoff of %ld ms, server_login_retry is 0.5 s", atol(p + 9));
	free(all);
	h_expect_new_client(c, NULL, "select 'bench works'", "bench works");
	free(ci);
	free(dbs);
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ [limits] */

/*
 * Queries running for 20 ms at least.  pg_stat_activity copies one backend's entry after
 * the other, not all at one instant: a snapshot taken while one pg_sleep ends and the
 * next starts on another backend can show both active although they never overlapped.
 * Two that really overlap do so for most of their 0.3 s and are seen once both have run
 * 20 ms.
 */
#define ACTIVE_SQL                                                                                       \
	"select count(*) from pg_stat_activity where backend_type = 'client backend' and datname = '%s' " \
	"and state = 'active' and clock_timestamp() - query_start > interval '20 milliseconds' and %s"

/*
 * app.capped = 2, pool_size=10: 10 clients of application capped run pg_sleep(0.5) at
 * once; PostgreSQL never runs more than 2 of them, all succeed (in ~2.5 s), and clients
 * of application free meanwhile are served at once.
 */
Test(limits, app_limit)
{
	struct h_corral *c;
	struct qsampler *s;
	PGconn *capped[10], *free_[3];
	struct job jc[10] = {0}, jf[3] = {0};
	double t0, last_capped = 0;
	int peak;

	ensure_db("lim_app");
	c = h_corral_start("pool_mode = transaction\nquery_wait_timeout = 20\n",
			   "lim_app = host=@PGHOST@ port=@PGPORT@ dbname=lim_app user=bench password=secret pool_size=10\n"
			   "[limits]\n"
			   "app.capped = 2\n",
			   NULL);
	for (int i = 0; i < 10; i++)
		capped[i] = connect_app(c, H.user, "lim_app", "capped");
	for (int i = 0; i < 3; i++)
		free_[i] = connect_app(c, H.user, "lim_app", "free");
	s = qsampler_start(ACTIVE_SQL, "lim_app", "application_name = 'capped'");
	t0 = h_now();
	for (int i = 0; i < 10; i++)
		job_send(&jc[i], capped[i], "select pg_sleep(0.5)");
	sleep_s(0.3);
	for (int i = 0; i < 3; i++)
		job_send(&jf[i], free_[i], "select pg_sleep(0.2)");
	jobs_wait(jf, 3, 10);
	jobs_wait(jc, 10, 15);
	peak = qsampler_stop(s, NULL);
	for (int i = 0; i < 3; i++) {
		expect_job_ok(c, &jf[i], "free client");
		/* 0.2 s of work; behind the cap it would be 2 s and more (slack for valgrind). */
		cr_expect_lt(jf[i].done_at - jf[i].sent_at, 1.5, "free client %d took %.2f s behind capped ones", i,
			     jf[i].done_at - jf[i].sent_at);
	}
	for (int i = 0; i < 10; i++) {
		expect_job_ok(c, &jc[i], "capped client");
		if (jc[i].done_at > last_capped)
			last_capped = jc[i].done_at;
	}
	cr_expect_leq(peak, 2, "%d queries of application capped ran at once, app.capped is 2", peak);
	cr_expect_eq(peak, 2, "at most %d queries of application capped ran at once", peak);
	cr_expect_geq(last_capped - t0, 2.3, "10 x 0.5 s two at a time took only %.2f s", last_capped - t0);
	for (int i = 0; i < 3; i++)
		cr_expect_lt(jf[i].done_at, last_capped - 1.0, "free client %d finished only %.2f s before capped ones",
			     i, last_capped - jf[i].done_at);
	jobs_clear(jc, 10);
	jobs_clear(jf, 3);
	for (int i = 1; i < 10; i++)
		PQfinish(capped[i]);
	for (int i = 0; i < 3; i++)
		PQfinish(free_[i]);
	h_expect_still_serving(c, capped[0], ci_app(c, H.user, "lim_app", "capped"));
	h_corral_stop(c);
}

/*
 * app_default = 1: 3 clients without an application_name and 3 of application other
 * (no app. line), pg_sleep(0.3) each: one at a time per application, the two
 * applications side by side.
 */
Test(limits, app_default)
{
	struct h_corral *c;
	struct qsampler *s_none, *s_other;
	PGconn *conns[6];
	struct job j[6] = {0};
	double t0, end = 0, end_none = 0;
	int peak_none, peak_other;

	ensure_db("lim_appd");
	c = h_corral_start("pool_mode = transaction\nquery_wait_timeout = 20\n",
			   "lim_appd = host=@PGHOST@ port=@PGPORT@ dbname=lim_appd user=bench password=secret pool_size=10\n"
			   "[limits]\n"
			   "app_default = 1\n",
			   NULL);
	for (int i = 0; i < 6; i++)
		conns[i] = connect_app(c, H.user, "lim_appd", i < 3 ? NULL : "other");
	s_none = qsampler_start(ACTIVE_SQL, "lim_appd", "application_name <> 'other'");
	s_other = qsampler_start(ACTIVE_SQL, "lim_appd", "application_name = 'other'");
	t0 = h_now();
	for (int i = 0; i < 6; i++)
		job_send(&j[i], conns[i], "select pg_sleep(0.3)");
	jobs_wait(j, 6, 10);
	peak_none = qsampler_stop(s_none, NULL);
	peak_other = qsampler_stop(s_other, NULL);
	for (int i = 0; i < 6; i++) {
		expect_job_ok(c, &j[i], i < 3 ? "unnamed client" : "client of other");
		if (j[i].done_at > end)
			end = j[i].done_at;
		if (i < 3 && j[i].done_at > end_none)
			end_none = j[i].done_at;
	}
	cr_expect_eq(peak_none, 1, "%d queries without application_name ran at once, app_default is 1", peak_none);
	cr_expect_eq(peak_other, 1, "%d queries of application other ran at once, app_default is 1", peak_other);
	cr_expect_geq(end_none - t0, 0.85, "3 x 0.3 s one at a time took only %.2f s", end_none - t0);
	cr_expect_lt(end - t0, 1.6, "both applications took %.2f s: each should have its own turn", end - t0);
	jobs_clear(j, 6);
	for (int i = 1; i < 6; i++)
		PQfinish(conns[i]);
	h_expect_still_serving(c, conns[0], ci_app(c, H.user, "lim_appd", NULL));
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ max_queue_depth */

/*
 * max_queue_depth = 2: a pool of size 1 held by a long query, two clients queued, the
 * fourth is refused at once with 53400 naming max_queue_depth; the same for an
 * application queue (app.qapp = 1).  The queued clients are served afterwards.
 */
Test(limits, max_queue_depth)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nmax_queue_depth = 2\nquery_wait_timeout = 20\n",
					    "lim_q = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret pool_size=1\n"
					    "lim_qa = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret pool_size=5\n"
					    "[limits]\n"
					    "app.qapp = 1\n",
					    NULL);
	/* [0] holds, [1] [2] queue, [3] is refused; pool first, then the application. */
	PGconn *p[4], *a[4];
	struct job jp[4] = {0}, ja[4] = {0};

	for (int i = 0; i < 4; i++) {
		p[i] = connect_app(c, H.user, "lim_q", NULL);
		a[i] = connect_app(c, H.user, "lim_qa", "qapp");
	}
	job_send(&jp[0], p[0], "select 'p0' from pg_sleep(1.5)");
	job_send(&ja[0], a[0], "select 'a0' from pg_sleep(1.5)");
	sleep_s(0.2);
	job_send(&jp[1], p[1], "select 'p1'");
	job_send(&ja[1], a[1], "select 'a1'");
	job_send(&jp[2], p[2], "select 'p2'");
	job_send(&ja[2], a[2], "select 'a2'");
	sleep_s(0.3);
	job_send(&jp[3], p[3], "select 'p3'");
	job_send(&ja[3], a[3], "select 'a3'");
	jobs_wait(&jp[3], 1, 5);
	jobs_wait(&ja[3], 1, 5);
	expect_job_error(&jp[3], "fourth client of the pool", "53400", "max_queue_depth");
	expect_job_error(&ja[3], "fourth client of application qapp", "53400", "max_queue_depth");
	cr_expect(strstr(h_err_field(ja[3].res, PG_DIAG_MESSAGE_PRIMARY), "qapp") != NULL,
		  "the message should name the application: %s", h_err_field(ja[3].res, PG_DIAG_MESSAGE_PRIMARY));
	cr_expect_lt(jp[3].done_at - jp[3].sent_at, 0.5, "the pool's refusal took %.2f s",
		     jp[3].done_at - jp[3].sent_at);
	cr_expect_lt(ja[3].done_at - ja[3].sent_at, 0.5, "the application's refusal took %.2f s",
		     ja[3].done_at - ja[3].sent_at);
	jobs_wait(jp, 3, 10);
	jobs_wait(ja, 3, 10);
	for (int i = 0; i < 3; i++) {
		expect_job_ok(c, &jp[i], "pool client");
		expect_job_ok(c, &ja[i], "application client");
	}
	jobs_clear(jp, 4);
	jobs_clear(ja, 4);
	for (int i = 1; i < 4; i++) {
		PQfinish(p[i]);
		PQfinish(a[i]);
	}
	PQfinish(a[0]);
	h_expect_still_serving(c, p[0], h_conninfo(c, H.user, "lim_q", H.password));
	h_corral_stop(c);
}

/* ------------------------------------------------------------------ query_wait_notify */

/*
 * query_wait_notify = 300 (ms): a client queued for a server (pool_size=1) and one
 * queued for its application's turn (app.nq = 1) each get one NOTICE naming
 * query_wait_notify after ~0.3 s, and their queries then succeed.
 */
Test(limits, query_wait_notify)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nquery_wait_notify = 300\n",
					    "nq = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret pool_size=1\n"
					    "nq_app = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret pool_size=5\n"
					    "[limits]\n"
					    "app.nq = 1\n",
					    NULL);
	PGconn *hold = connect_app(c, H.user, "nq", NULL), *wait = connect_app(c, H.user, "nq", NULL);
	PGconn *hold_app = connect_app(c, H.user, "nq_app", "nq"), *wait_app = connect_app(c, H.user, "nq_app", "nq");
	struct job holders[2] = {0}, waiters[2] = {0};
	struct notices ns[2];

	watch_notices(wait, &ns[0]);
	watch_notices(wait_app, &ns[1]);
	job_send(&holders[0], hold, "select pg_sleep(1)");
	job_send(&holders[1], hold_app, "select pg_sleep(1)");
	sleep_s(0.1);
	job_send(&waiters[0], wait, "select 'served after the notice'");
	job_send(&waiters[1], wait_app, "select 'served after the notice'");
	jobs_wait(waiters, 2, 10);
	for (int i = 0; i < 2; i++) {
		const char *what = i ? "waiter for application nq" : "waiter for the pool";
		double at = ns[i].first_at - waiters[i].sent_at;

		expect_job_ok(c, &waiters[i], what);
		cr_expect_str_eq(PQgetvalue(waiters[i].res, 0, 0), "served after the notice");
		cr_expect_eq(ns[i].n, 1, "%s: %d notices, want 1", what, ns[i].n);
		cr_expect_str_eq(ns[i].severity, "NOTICE", "%s: severity [%s]", what, ns[i].severity);
		cr_expect(strstr(ns[i].msg, "query_wait_notify") != NULL, "%s: notice [%s]", what, ns[i].msg);
		cr_expect(ns[i].n == 0 || (at >= 0.25 && at < 0.8),
			  "%s: the notice came %.2f s after the query, query_wait_notify is 300 ms", what, at);
	}
	jobs_wait(holders, 2, 5);
	expect_job_ok(c, &holders[0], "pool holder");
	expect_job_ok(c, &holders[1], "application holder");
	jobs_clear(holders, 2);
	jobs_clear(waiters, 2);
	PQfinish(wait);
	PQfinish(wait_app);
	PQfinish(hold_app);
	h_expect_still_serving(c, hold, h_conninfo(c, H.user, "nq", H.password));
	h_corral_stop(c);
}

/*
 * One wait, one NOTICE, even when it spans both queues: w waits at its application's
 * gate (app.nq = 1: a holds the token) long enough to be told, then a leaves while
 * queued for the pool's only server (held by x, another application), so w passes the
 * gate and queues for that server for another ~1.2 s.  Before, its server queue's
 * wait told it again (seen as query_wait_notify's flake: a login slower than 300 ms
 * after the gate, on another worker than the server that came free).
 */
Test(limits, query_wait_notify_once_across_queues)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nquery_wait_notify = 300\n",
					    "nq = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret pool_size=1\n"
					    "[limits]\n"
					    "app.nq = 1\n",
					    NULL);
	PGconn *x = connect_app(c, H.user, "nq", "other"), *a = connect_app(c, H.user, "nq", "nq");
	PGconn *w = connect_app(c, H.user, "nq", "nq");
	struct job jx = {0}, ja = {0}, jw = {0};
	struct notices ns;

	watch_notices(w, &ns);
	job_send(&jx, x, "select pg_sleep(2)");
	sleep_s(0.1);
	job_send(&ja, a, "select 'a'"); /* takes the token, queues for the server */
	sleep_s(0.1);
	job_send(&jw, w, "select 'served after one notice'"); /* queues at the gate */
	/* Reads w's notices until the gate's (0.3 s, on a tick of 0.2 s) is in. */
	for (int i = 0; i < 12 && ns.n == 0; i++)
		jobs_wait(&jw, 1, 0.1);
	cr_assert_eq(ns.n, 1, "w queued at the gate: %d notices, want 1", ns.n);
	PQfinish(a); /* gives the token back: w queues for the server x holds */
	jobs_wait(&jw, 1, 10);
	expect_job_ok(c, &jw, "the waiter");
	cr_expect_str_eq(PQgetvalue(jw.res, 0, 0), "served after one notice");
	cr_expect_gt(jw.done_at - jw.sent_at, 1.0, "the waiter was served after %.2f s, before x's end",
		     jw.done_at - jw.sent_at);
	cr_expect_eq(ns.n, 1, "one wait over both queues: %d notices, want 1 (last: %s)", ns.n,
		     ns.last_msg);
	cr_expect(strstr(ns.msg, "application") != NULL, "the notice: %s", ns.msg);
	jobs_wait(&jx, 1, 5);
	expect_job_ok(c, &jx, "the server's holder");
	jobs_clear(&jx, 1);
	jobs_clear(&jw, 1);
	PQfinish(w);
	h_expect_still_serving(c, x, h_conninfo(c, H.user, "nq", H.password));
	h_corral_stop(c);
}

/* ------------------------------------------- what a client can make corral hold */

/* Room for n more descriptors in this test process (the harness default may be 1024). */
static void raise_nofile(rlim_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 200) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > n + 200 ? n + 200
										    : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* A libpq login as bench that must fail with want_state (message containing needle)
 * within 1 s; returns how long it took. */
static double expect_refused_at_once(const struct h_corral *c, const char *want_state,
				     const char *needle)
{
	char *ci = h_conninfo(c, H.user, H.db, H.password), *err = NULL;
	double t0 = h_now();
	PGconn *conn = h_try_connect(ci, 5, &err);
	double took = h_now() - t0;

	cr_assert(conn == NULL, "a client got in past the limit");
	cr_expect(strstr(err, want_state) != NULL && strstr(err, needle) != NULL,
		  "want %s (%s) in: %s", want_state, needle, err);
	cr_expect_lt(took, 1.0, "refused after %.2f s, not at once", took);
	free(err);
	free(ci);
	return took;
}

/*
 * max_client_conn = limit; `within` silent sockets fill it, `over` more silent ones
 * are past it.  A libpq client is refused with 53300 at once; a silent socket past the
 * limit gets the same FATAL and is closed within the refusal grace (1 s), not the
 * login timeout; once some silent ones within the limit leave, a client is served.
 */
static void silent_sockets_case(int limit, int over)
{
	char settings[200];
	int n = limit + over, *fds = calloc((size_t)n, sizeof(int));

	raise_nofile((rlim_t)n + 100);
	snprintf(
		settings, sizeof settings,
		"max_client_conn = %d\nworkers = 2\nclient_login_timeout = 60\nmax_logins_in_progress = 0\n",
		limit);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, NULL);
	for (int i = 0; i < limit; i++)
		fds[i] = h_tcp_connect(c->port);
	sleep_s(0.3); /* accepted: the ones below are past the limit */
	for (int i = limit; i < n; i++)
		fds[i] = h_tcp_connect(c->port);
	double took = expect_refused_at_once(c, "53300", "max_client_conn");

	/* a silent socket past the limit: the FATAL, then closed, well before 60 s */
	if (over > 0) {
		struct h_reply r;
		double t0 = h_now();
		h_read_final_reply(fds[n - 1], 5, &r);
		fds[n - 1] = -1;
		cr_expect(r.closed && r.error && strcmp(r.sqlstate, "53300") == 0,
			  "silent socket past the limit: closed %d error %d sqlstate %s", r.closed,
			  r.error, r.sqlstate);
		cr_expect_lt(h_now() - t0, 3.0, "silent socket past the limit held %.1f s",
			     h_now() - t0);
	}
	/* free ten places within the limit: a client gets in as soon as corral has seen
	 * them go, while refused sockets are still being told (they hold no place) */
	for (int i = 0; i < 10; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	cr_assert(h_wait_log_count(c, "reason=\"client closed the connection\"", 10, 5),
		  "corral did not see 10 silent sockets leave:\n%s", h_corral_log_tail(c));
	char *ci = h_conninfo(c, H.user, H.db, H.password), *err = NULL;
	PGconn *ok = h_try_connect(ci, 5, &err);
	cr_assert(ok != NULL, "no client served after places were freed: %s\n%s", err,
		  h_corral_log_tail(c));
	h_expect_value(ok, "select 'served'", "served");
	PQfinish(ok);
	cr_log_info("max_client_conn = %d with %d silent sockets: refused in %.3f s", limit, n,
		    took);
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(ci);
	h_corral_stop(c);
}

Test(limits, max_client_conn_silent_sockets_refused_at_once)
{
	silent_sockets_case(50, 100);
}

/* The numbers: 2000 silent sockets with max_client_conn = 1000. */
Test(limits, max_client_conn_1000_with_2000_silent_sockets, .timeout = 60)
{
	silent_sockets_case(1000, 1000);
}

/* max_logins_in_progress = 10 on one worker: ten silent sockets hold every login
 * place; the next client is refused at once with 53300, and served once they leave. */
Test(limits, max_logins_in_progress)
{
	struct h_corral *c = h_corral_start("workers = 1\nmax_logins_in_progress = 10\n",
					    H_BENCH_DB, NULL);
	int fds[10];

	for (int i = 0; i < 10; i++)
		fds[i] = h_tcp_connect(c->port);
	sleep_s(0.3);
	expect_refused_at_once(c, "53300",
			       "too many logins in progress (max_logins_in_progress = 10)");
	for (int i = 0; i < 10; i++)
		close(fds[i]);
	sleep_s(1.5);
	PGconn *ok = h_connect_bench(c);
	h_expect_value(ok, "select 'served'", "served");
	PQfinish(ok);
	h_corral_stop(c);
}

/* A raw startup packet as bench from source address src: true if corral asks for a
 * password (the address is not refused), false if it answers with an ErrorResponse. */
static bool asked_for_password_from(const struct h_corral *c, const char *src)
{
	const char *kv[] = {"user", "bench", "database", "bench", NULL};
	unsigned char pkt[256], reply[64];
	size_t len = h_startup_packet(pkt, sizeof pkt, H_PROTOCOL_3_0, kv);
	struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool closed;

	inet_pton(AF_INET, src, &from.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	to.sin_port = htons((uint16_t)c->port);
	cr_assert(bind(fd, (struct sockaddr *)&from, sizeof from) == 0, "bind %s: %s", src,
		  strerror(errno));
	cr_assert(connect(fd, (struct sockaddr *)&to, sizeof to) == 0, "connect: %s",
		  strerror(errno));
	h_send_all(fd, pkt, len);
	size_t n = h_read_reply(fd, reply, 1, 3, &closed);
	close(fd);
	cr_assert(n == 1, "no answer from corral to a startup packet from %s", src);
	return reply[0] == 'R';
}

/*
 * auth_failure_delay = 2, auth_failure_max = 6: the first two wrong passwords from
 * 127.0.0.1 are answered at once, the next three after about 1 s each, the sixth
 * shuts the address out: even the right password then gets 28000 at once.  Another
 * source address (127.0.0.2) is still asked for its password.  The log names the
 * address and the count, never the password.
 */
Test(limits, repeated_wrong_passwords_are_slowed_then_refused)
{
	struct h_corral *c = h_corral_start("auth_failure_delay = 2\nauth_failure_max = 6\n",
					    H_BENCH_DB, NULL);
	char *bad = h_conninfo(c, H.user, H.db, "not-the-password-xyzzy");
	double took[6];

	for (int i = 0; i < 6; i++) {
		char *err = NULL;
		double t0 = h_now();
		PGconn *conn = h_try_connect(bad, 10, &err);

		took[i] = h_now() - t0;
		cr_assert(conn == NULL, "wrong password let in");
		cr_expect(strstr(err, "28P01") != NULL ||
				  strstr(err, "password authentication failed") != NULL,
			  "attempt %d: %s", i + 1, err);
		free(err);
	}
	cr_log_info("wrong-password answers took %.2f %.2f %.2f %.2f %.2f %.2f s", took[0], took[1],
		    took[2], took[3], took[4], took[5]);
	cr_expect_lt(took[0], 0.5);
	cr_expect_lt(took[1], 0.5);
	for (int i = 2; i < 6; i++)
		cr_expect_geq(took[i], 0.9, "failure %d answered after %.2f s, not slowed", i + 1,
			      took[i]);

	/* shut out: even the right password, at once */
	expect_refused_at_once(c, "28000", "too many failed logins");
	/* another address is not */
	cr_expect(asked_for_password_from(c, "127.0.0.2"), "127.0.0.2 was refused too");
	cr_expect_not(asked_for_password_from(c, "127.0.0.1"), "127.0.0.1 was not refused");
	cr_expect(h_wait_log(c, "event=auth_throttle", 1), "no auth_throttle line");
	cr_expect_eq(h_log_count(c, "not-the-password-xyzzy"), 0, "the password is in the log");
	cr_expect(h_log_count(c, "action=refuse_address") >= 1);
	free(bad);
	h_corral_stop(c);
}

/* ss's lines for the connections matching filter (an ss filter such as "sport = :N"),
 * once they contain want (ss shows one timer: a retransmit timer hides the keepalive
 * one while data is in flight), or after 3 s. */
static char *ss_lines(const char *filter, const char *want)
{
	double t0 = h_now();

	for (;;) {
		struct h_cmd r = h_run(10, "ss -tnoepH %s", filter);
		char *out = strdup(r.out ? r.out : "");

		h_cmd_free(&r);
		if (strstr(out, want) != NULL || h_now() - t0 > 3)
			return out;
		free(out);
		sleep_s(0.1);
	}
}

/*
 * tcp_keepalive with tcp_keepidle = 77: corral's accepted socket and its server
 * connection (libpq's keepalives_idle) both run a keepalive timer of at most 77 s
 * (ss shows "keepalive,1min..."; the kernel default would be 119min).  With
 * tcp_keepalive = no the accepted socket has none.
 */
Test(limits, tcp_keepalive_both_sides)
{
	struct h_corral *c = h_corral_start("tcp_keepalive = yes\ntcp_keepidle = 77\ntcp_keepintvl = 5\n"
					    "tcp_keepcnt = 3\n",
					    H_BENCH_DB, NULL);
	PGconn *conn = h_connect_bench(c);
	char filter[128], pid[32];

	h_expect_value(conn, "select 'linked'", "linked");
	snprintf(filter, sizeof filter, "'sport = :%d'", c->port);
	char *client_side = ss_lines(filter, "keepalive");
	cr_expect(strstr(client_side, "timer:(keepalive,1min") != NULL, "client side: %s", client_side);
	snprintf(filter, sizeof filter, "'dport = :%d'", H.pgport);
	snprintf(pid, sizeof pid, "pid=%d,", (int)c->pid);
	char *server_side = ss_lines(filter, "keepalive,1min"), *line = strstr(server_side, pid);
	if (line == NULL)
		cr_log_warn("ss shows no process for corral's server connection: %s", server_side);
	else
		cr_expect(strstr(server_side, "timer:(keepalive,1min") != NULL, "server side: %s",
			  server_side);
	PQfinish(conn);
	h_corral_stop(c);
	free(client_side);
	free(server_side);

	c = h_corral_start("tcp_keepalive = no\n", H_BENCH_DB, NULL);
	conn = h_connect_bench(c);
	h_expect_value(conn, "select 'linked'", "linked");
	snprintf(filter, sizeof filter, "'sport = :%d'", c->port);
	client_side = ss_lines(filter, "keepalive");
	cr_expect(strstr(client_side, "keepalive") == NULL, "tcp_keepalive = no: %s", client_side);
	PQfinish(conn);
	h_corral_stop(c);
	free(client_side);
}

/* A raw login (auth_type = trust) as user to database bench with application_name app:
 * true on ReadyForQuery (then Terminate and close), false with *r the refusal. */
static bool raw_trust_login(const struct h_corral *c, const char *user, const char *app, struct h_reply *r)
{
	const char *kv[] = {"user", user, "database", "bench", "application_name", app, NULL};
	unsigned char pkt[512], buf[16384];
	size_t n = h_startup_packet(pkt, sizeof pkt, H_PROTOCOL_3_0, kv), len = 0;
	bool closed;
	int fd = h_tcp_connect(c->port);

	h_send_all(fd, pkt, n);
	if (h_read_until_msg(fd, buf, sizeof buf, &len, 'Z', 10.0, &closed)) {
		static const unsigned char terminate[5] = {'X', 0, 0, 0, 4};

		h_send_all(fd, terminate, sizeof terminate);
		close(fd);
		return true;
	}
	memset(r, 0, sizeof *r);
	r->closed = closed;
	/* the ErrorResponse may follow AuthenticationOk */
	for (size_t at = 0, m; at < len && !r->error; at += m) {
		char type;
		const unsigned char *body;
		size_t body_len;

		m = h_msg(buf + at, len - at, &type, &body, &body_len);
		if (m == 0)
			break;
		if (type == 'E')
			r->error = h_parse_error(buf + at, len - at, r->sqlstate, r->msg, sizeof r->msg);
	}
	close(fd);
	return false;
}

/*
 * max_pools = 3 with auth_type = trust (any user name makes a pool): bench, u1 and u2
 * get theirs; with u1 and u2 held by a client each and bench's pool the database line's
 * own (user=bench, never freed), no pool is idle to free: u3 is refused with 53300
 * naming max_pools; an existing pool's user is still served.  (The poolfree suite
 * tests the freeing of idle pools.)
 */
Test(limits, max_pools)
{
	struct h_corral *c = h_corral_start("auth_type = trust\nmax_pools = 3\n", H_BENCH_DB, NULL);
	struct h_reply r;
	const char *users[] = {"bench", "lim_pool_u1", "lim_pool_u2"};
	PGconn *held[2];

	for (size_t i = 0; i < 3; i++)
		cr_expect(raw_trust_login(c, users[i], "p", &r), "%s refused: %s %s", users[i], r.sqlstate, r.msg);
	for (size_t i = 0; i < 2; i++) {
		char *ci = h_conninfo(c, users[i + 1], "bench", NULL);
		held[i] = h_connect(c, ci);
		free(ci);
	}
	cr_assert_not(raw_trust_login(c, "lim_pool_u3", "p", &r), "a fourth pool was made");
	cr_expect(r.error && strcmp(r.sqlstate, "53300") == 0 && strstr(r.msg, "max_pools = 3") != NULL,
		  "u3: %s %s", r.sqlstate, r.msg);
	cr_expect(raw_trust_login(c, "lim_pool_u1", "p", &r), "u1 again refused: %s %s", r.sqlstate, r.msg);
	cr_expect(raw_trust_login(c, "bench", "p", &r), "bench again refused: %s %s", r.sqlstate, r.msg);
	for (size_t i = 0; i < 2; i++)
		PQfinish(held[i]);
	h_corral_stop(c);
}

static long vm_rss_kb(pid_t pid)
{
	char path[64], *status, *line;
	long kb = -1;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	status = h_read_file(path, NULL);
	cr_assert_not_null(status);
	line = strstr(status, "VmRSS:");
	if (line != NULL)
		kb = strtol(line + 6, NULL, 10);
	free(status);
	return kb;
}

struct app_names_run {
	const struct h_corral *c;
	atomic_int *next; /* the next name's number */
	int end;          /* numbers below it */
	atomic_int failures;
	char first_failure[300];
};

/* One of the threads: raw logins with names "lim-app-N" until end is reached. */
static void *app_names_thread(void *arg)
{
	struct app_names_run *run = arg;
	struct h_reply r;
	char app[64];
	int i;

	while ((i = atomic_fetch_add(run->next, 1)) < run->end) {
		snprintf(app, sizeof app, "lim-app-%d", i);
		if (!raw_trust_login(run->c, "bench", app, &r) && atomic_fetch_add(&run->failures, 1) == 0)
			snprintf(run->first_failure, sizeof run->first_failure, "login %d: %s %s", i,
				 r.sqlstate, r.msg);
	}
	return NULL;
}

/* Logins numbered from *next up to end, on 4 threads. */
static void app_names_logins(const struct h_corral *c, atomic_int *next, int end)
{
	struct app_names_run run = {.c = c, .next = next, .end = end};
	pthread_t t[4];

	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, app_names_thread, &run), 0);
	for (size_t i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&run.failures), 0, "%d logins refused, first %s",
		     atomic_load(&run.failures), run.first_failure);
}

/*
 * 10000 distinct application_names (raw trust logins on 4 threads, each leaving at
 * once), with and without app_default (whose limited names are bounded the same way):
 * corral's RSS grows by less than 8 MB from the 2000th name to the 10000th (names
 * 1000..2000 warm up the allocator's arenas, one per worker thread; a per-name leak of
 * even 1 KB would show as 8 MB), and SHOW APPS has at most STATS_MAX_APPS (100) rows
 * plus "(other)": the oldest idle records were freed (the first name's is gone, the
 * last name has its own), and the record of an application whose client stays is kept.
 */
static void many_application_names(const char *limits)
{
	char databases[512];
	snprintf(databases, sizeof databases, "%s%s", H_BENCH_DB, limits);
	struct h_corral *c = h_corral_start("auth_type = trust\nadmin_users = bench\n", databases, NULL);
	atomic_int next = 0;
	/* A client that stays keeps its application's record however old it gets. */
	char *held_ci = h_conninfo(c, "bench", "bench", NULL);
	char *held_ci_app = h_printf("%s application_name=lim-app-held", held_ci);
	PGconn *held = h_connect(c, held_ci_app);
	free(held_ci);
	free(held_ci_app);

	app_names_logins(c, &next, 2000);
	long before = vm_rss_kb(c->pid);
	app_names_logins(c, &next, 10000);
	long after = vm_rss_kb(c->pid);
	cr_log_info("corral VmRSS after 2000 application names %ld kB, after 10000 %ld kB", before, after);
	/* Under `make asan` (ASAN's quarantine keeps freed memory) or valgrind, RSS says
	 * nothing about what corral keeps; the row count below still does. */
#ifdef __SANITIZE_ADDRESS__
	bool rss_meaningful = false;
#else
	bool rss_meaningful = strstr(H.corral_bin, "valgrind") == NULL;
#endif
	if (rss_meaningful)
		cr_expect_lt(after - before, 8 * 1024, "RSS grew %ld kB", after - before);

	char *ci = h_conninfo(c, "bench", "corral", "x"), *err = NULL;
	PGconn *console = h_try_connect(ci, 5, &err);
	cr_assert_not_null(console, "console: %s", err);
	PGresult *res = PQexec(console, "SHOW APPS");
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	cr_expect_leq(PQntuples(res), 101, "SHOW APPS has %d rows", PQntuples(res));
	bool first = false, last = false, held_row = false;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		first = first || strcmp(name, "lim-app-0") == 0;
		last = last || strcmp(name, "lim-app-9999") == 0;
		held_row = held_row || strcmp(name, "lim-app-held") == 0;
	}
	cr_expect_not(first, "the first name's idle record was never freed");
	cr_expect(last, "the last name has no record of its own");
	cr_expect(held_row, "the record of an application with a client was freed");
	PQclear(res);
	h_expect_value(held, "select 'still here'", "still here");
	PQfinish(held);
	PQfinish(console);
	free(ci);
	h_corral_stop(c);
}

Test(limits, many_application_names_bounded, .timeout = 120)
{
	many_application_names("");
}

Test(limits, many_application_names_bounded_with_app_default, .timeout = 120)
{
	many_application_names("[limits]\napp_default = 50\n");
}
