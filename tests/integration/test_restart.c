/*
 * PostgreSQL going away under load: a fast and an immediate restart, a stop longer than
 * server_login_wait, backends ended one by one with pg_terminate_backend.  Each test
 * runs a PostgreSQL of its own (h_pg_start), so restarting it disturbs no other test.
 *
 * The load: N_CLIENTS threads, each a libpq client of corral (transaction pooling,
 * pool_size POOL_SIZE), INSERT one row per transaction (autocommit) in a loop, and note
 * every acknowledged id and every error with the time it came.  A client whose
 * connection broke connects again at once; after any other error it goes on after
 * 10 ms, as an application retrying would.  What must hold:
 *   - only the transactions in flight when the server went away fail: at most one
 *     error per client per restart (a client that arrives while PostgreSQL comes back
 *     waits for it, within server_login_wait);
 *   - commits flow again within 1 s of PostgreSQL accepting connections;
 *   - every acknowledged row is there afterwards;
 *   - PostgreSQL never sees more than pool_size backends of the pool;
 *   - no client hangs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "tests/integration/harness.h"

TestSuite(restart, H_SUITE);

#define N_CLIENTS 20
#define POOL_SIZE 10
/* Seconds any one login or INSERT may take before the client counts as hung. */
#define CLIENT_TIMEOUT 10.0

static void sleep_s(double s)
{
	if (s > 0)
		usleep((useconds_t)(s * 1e6));
}

/* ---------------------------------------------------------------- the clients */

struct ack {
	long long id;
	double at;
};

struct failure {
	double at;
	char sqlstate[6];
	char msg[200];
	/* PostgreSQL's FATAL 57P01 reached the client between its transactions (after its
	 * last one was acknowledged) within the second before: in transaction pooling
	 * corral must never let that happen (the backend was not the client's then). */
	bool after_fatal_notice;
};

struct client {
	pthread_t thread;
	int idx;
	const char *ci;
	atomic_bool *stop;
	/* written by the thread, read after the join */
	struct ack *acks;
	size_t n_acks, cap_acks;
	struct failure fails[256];
	size_t n_fails; /* all of them; the first 256 are kept */
	bool hung;
	char hung_what[300];
	/* What PostgreSQL or corral sent outside any query (libpq's notice processor): a
	 * FATAL here reached the client between its transactions. */
	int n_notices;
	char last_notice[200];
	double last_notice_at;
	int notices_seen; /* n_notices when the last failure was noted */
};

static void add_ack(struct client *cl, long long id)
{
	if (cl->n_acks == cl->cap_acks) {
		cl->cap_acks = cl->cap_acks ? 2 * cl->cap_acks : 4096;
		cl->acks = realloc(cl->acks, cl->cap_acks * sizeof *cl->acks);
		if (cl->acks == NULL)
			abort();
	}
	cl->acks[cl->n_acks++] = (struct ack){id, h_now()};
}

/* The SQLSTATE of a verbose libpq error text ("...FATAL:  08006: ..."), or "". */
static void state_of(const char *text, char out[6])
{
	const char *p = strstr(text, ":  ");

	out[0] = '\0';
	for (; p != NULL; p = strstr(p + 1, ":  "))
		if (strlen(p) >= 10 && p[8] == ':') {
			snprintf(out, 6, "%.5s", p + 3);
			return;
		}
}

static void add_failure(struct client *cl, const char *sqlstate, const char *msg)
{
	if (cl->n_fails < sizeof cl->fails / sizeof cl->fails[0]) {
		struct failure *f = &cl->fails[cl->n_fails];

		f->at = h_now();
		/* libpq hands an error to the notice processor only outside a query. */
		f->after_fatal_notice = cl->n_notices > cl->notices_seen &&
					strncmp(cl->last_notice, "FATAL:", 6) == 0 &&
					strstr(cl->last_notice, "57P01") != NULL &&
					f->at - cl->last_notice_at < 1.0;
		snprintf(f->sqlstate, sizeof f->sqlstate, "%s", sqlstate);
		snprintf(f->msg, sizeof f->msg, "%s", msg);
		for (char *p = f->msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
	}
	cl->n_fails++;
	cl->notices_seen = cl->n_notices;
}

/* Waits (poll) until conn's socket is ready for what libpq asked; false after the deadline. */
static bool wait_socket(PGconn *conn, bool for_read, double deadline)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = for_read ? POLLIN : POLLOUT};
	int left = (int)((deadline - h_now()) * 1000);

	return left > 0 && poll(&pfd, 1, left) > 0;
}

/* NOTICEs and errors outside a query (a FATAL after an INSERT's reply) are noted, not printed. */
static void quiet_notice(void *arg, const char *message)
{
	struct client *cl = arg;

	if (cl == NULL)
		return;
	cl->n_notices++;
	cl->last_notice_at = h_now();
	snprintf(cl->last_notice, sizeof cl->last_notice, "%s", message);
	for (char *p = cl->last_notice; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* A login to corral within CLIENT_TIMEOUT: the connection, or NULL with *hung or an error noted. */
static PGconn *client_connect(struct client *cl)
{
	double deadline = h_now() + CLIENT_TIMEOUT;
	PGconn *conn = PQconnectStart(cl->ci);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char state[6];

	if (conn == NULL)
		abort();
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	if (PQstatus(conn) == CONNECTION_BAD)
		st = PGRES_POLLING_FAILED;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		if (!wait_socket(conn, st == PGRES_POLLING_READING, deadline)) {
			cl->hung = true;
			snprintf(cl->hung_what, sizeof cl->hung_what,
				 "login to corral took over %.0f s", CLIENT_TIMEOUT);
			PQfinish(conn);
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
	if (st == PGRES_POLLING_OK) {
		PQsetNoticeProcessor(conn, quiet_notice, cl);
		return conn;
	}
	state_of(PQerrorMessage(conn), state);
	add_failure(cl, state, PQerrorMessage(conn));
	PQfinish(conn);
	return NULL;
}

/* One INSERT: true if acknowledged; an error is noted; *hung if no answer in time. */
static bool client_insert(struct client *cl, PGconn *conn, long long id)
{
	double deadline = h_now() + CLIENT_TIMEOUT;
	char sql[80];
	PGresult *r, *err = NULL;
	bool ok = false, any = false;

	snprintf(sql, sizeof sql, "insert into t values (%lld)", id);
	if (!PQsendQuery(conn, sql)) {
		add_failure(cl, "", PQerrorMessage(conn));
		return false;
	}
	for (;;) {
		while (PQisBusy(conn)) {
			if (!wait_socket(conn, true, deadline)) {
				cl->hung = true;
				snprintf(cl->hung_what, sizeof cl->hung_what,
					 "no answer to an INSERT within %.0f s", CLIENT_TIMEOUT);
				PQclear(err);
				return false;
			}
			if (!PQconsumeInput(conn))
				break;
		}
		r = PQgetResult(conn);
		if (r == NULL)
			break;
		any = true;
		if (PQresultStatus(r) == PGRES_COMMAND_OK && err == NULL) {
			ok = true;
			PQclear(r);
		} else if (err == NULL && PQresultStatus(r) != PGRES_COMMAND_OK) {
			err = r;
			ok = false;
		} else {
			PQclear(r);
		}
		if (PQstatus(conn) == CONNECTION_BAD)
			break;
	}
	if (err != NULL) {
		const char *state = PQresultErrorField(err, PG_DIAG_SQLSTATE);
		const char *primary = PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY);

		add_failure(cl, state ? state : "", primary ? primary : PQresultErrorMessage(err));
		PQclear(err);
		return false;
	}
	if (!ok || !any) {
		add_failure(cl, "", PQerrorMessage(conn));
		return false;
	}
	return true;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	PGconn *conn = NULL;
	long long seq = 0;

	while (!atomic_load(cl->stop) && !cl->hung) {
		long long id;

		if (conn == NULL) {
			conn = client_connect(cl);
			if (conn == NULL) {
				sleep_s(0.01);
				continue;
			}
		}
		id = (long long)(cl->idx + 1) * 1000000000LL + ++seq;
		if (client_insert(cl, conn, id)) {
			add_ack(cl, id);
		} else if (PQstatus(conn) == CONNECTION_BAD) {
			PQfinish(conn);
			conn = NULL;
		} else {
			sleep_s(0.01);
		}
	}
	if (conn != NULL)
		PQfinish(conn);
	return NULL;
}

struct load {
	struct client cl[N_CLIENTS];
	atomic_bool stop;
};

static void load_start(struct load *ld, const char *ci)
{
	memset(ld, 0, sizeof *ld);
	atomic_init(&ld->stop, false);
	for (int i = 0; i < N_CLIENTS; i++) {
		ld->cl[i].idx = i;
		ld->cl[i].ci = ci;
		ld->cl[i].stop = &ld->stop;
		if (pthread_create(&ld->cl[i].thread, NULL, client_main, &ld->cl[i]) != 0)
			cr_assert_fail("pthread_create failed");
	}
}

/* Stops and joins the clients; fails the test if one hung. */
static void load_stop(struct load *ld, const struct h_corral *c)
{
	atomic_store(&ld->stop, true);
	for (int i = 0; i < N_CLIENTS; i++)
		pthread_join(ld->cl[i].thread, NULL);
	for (int i = 0; i < N_CLIENTS; i++)
		cr_expect(!ld->cl[i].hung, "client %d hung: %s\ncorral log:\n%s", i,
			  ld->cl[i].hung_what, h_corral_log_tail(c));
}

static void load_free(struct load *ld)
{
	for (int i = 0; i < N_CLIENTS; i++)
		free(ld->cl[i].acks);
}

static size_t acks_total(const struct load *ld)
{
	size_t n = 0;

	for (int i = 0; i < N_CLIENTS; i++)
		n += ld->cl[i].n_acks;
	return n;
}

/* Errors that came in [from, to). */
static int errors_between(const struct load *ld, double from, double to, char *example, size_t len)
{
	int n = 0;

	for (int i = 0; i < N_CLIENTS; i++) {
		const struct client *cl = &ld->cl[i];
		size_t kept = cl->n_fails < 256 ? cl->n_fails : 256;

		for (size_t k = 0; k < kept; k++)
			if (cl->fails[k].at >= from && cl->fails[k].at < to) {
				if (n++ == 0 && example != NULL)
					snprintf(example, len, "[%s] %s", cl->fails[k].sqlstate,
						 cl->fails[k].msg);
			}
		n += (int)(cl->n_fails - kept); /* not kept: counted against every window */
	}
	return n;
}

/* Of the errors in [from, to), those that followed PostgreSQL's FATAL relayed between
 * transactions (struct failure). */
static int errors_after_fatal_notice(const struct load *ld, double from, double to)
{
	int n = 0;

	for (int i = 0; i < N_CLIENTS; i++)
		for (size_t k = 0; k < ld->cl[i].n_fails && k < 256; k++)
			n += ld->cl[i].fails[k].at >= from && ld->cl[i].fails[k].at < to &&
			     ld->cl[i].fails[k].after_fatal_notice;
	return n;
}

/* The first acknowledgement after t (+inf if none). */
static double first_ack_after(const struct load *ld, double t)
{
	double best = 1e300;

	for (int i = 0; i < N_CLIENTS; i++)
		for (size_t k = 0; k < ld->cl[i].n_acks; k++)
			if (ld->cl[i].acks[k].at > t && ld->cl[i].acks[k].at < best) {
				best = ld->cl[i].acks[k].at;
				break; /* in time order per client */
			}
	return best;
}

/* Clients with no acknowledgement after t. */
static int clients_stuck_since(const struct load *ld, double t)
{
	int n = 0;

	for (int i = 0; i < N_CLIENTS; i++) {
		const struct client *cl = &ld->cl[i];

		if (cl->n_acks == 0 || cl->acks[cl->n_acks - 1].at <= t)
			n++;
	}
	return n;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Every acknowledged id is in table t (read directly from PostgreSQL). */
static void expect_acks_stored(const struct load *ld, const struct h_pg *pg)
{
	size_t n = acks_total(ld), j = 0, missing = 0, rows;
	long long *ids = malloc((n ? n : 1) * sizeof *ids), first_missing = 0;
	char *ci = h_pg_own_conninfo(pg, "restart");
	PGconn *conn = h_connect(NULL, ci);
	PGresult *r = h_exec_t(conn, "select id from t order by id", 60);

	for (int i = 0; i < N_CLIENTS; i++)
		for (size_t k = 0; k < ld->cl[i].n_acks; k++)
			ids[j++] = ld->cl[i].acks[k].id;
	qsort(ids, n, sizeof *ids, cmp_ll);
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	rows = (size_t)PQntuples(r);
	cr_expect_geq(rows, n, "%zu rows in t, but %zu INSERTs were acknowledged", rows, n);
	/* Both sorted: walk them together. */
	j = 0;
	for (size_t k = 0; k < n; k++) {
		while (j < rows && atoll(PQgetvalue(r, (int)j, 0)) < ids[k])
			j++;
		if (j == rows || atoll(PQgetvalue(r, (int)j, 0)) != ids[k]) {
			if (missing++ == 0)
				first_missing = ids[k];
		}
	}
	cr_expect_eq(missing, 0, "%zu of %zu acknowledged rows are missing (e.g. id %lld)", missing,
		     n, first_missing);
	cr_log_info("restart: %zu acknowledged INSERTs, %zu rows stored", n, rows);
	PQclear(r);
	PQfinish(conn);
	free(ci);
	free(ids);
}

/* ---------------------------------------------------------------- watching PostgreSQL */

/*
 * Samples the pool's backends (pg_stat_activity, datname restart) every 5 ms over its
 * own connection, reconnecting while PostgreSQL restarts; keeps the peak.
 */
struct watcher {
	pthread_t thread;
	char *ci;
	atomic_bool stop;
	atomic_int peak, last, samples;
};

static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	PGconn *conn = NULL;

	while (!atomic_load(&w->stop)) {
		PGresult *r;

		if (conn == NULL) {
			conn = PQconnectdb(w->ci);
			if (PQstatus(conn) != CONNECTION_OK) {
				PQfinish(conn);
				conn = NULL;
				sleep_s(0.02);
				continue;
			}
			PQsetNoticeProcessor(conn, quiet_notice, NULL); /* shutdown WARNINGs */
		}
		r = PQexec(conn, "select count(*) from pg_stat_activity where datname = 'restart' "
				 "and backend_type = 'client backend'");
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			int n = atoi(PQgetvalue(r, 0, 0));

			atomic_store(&w->last, n);
			if (n > atomic_load(&w->peak))
				atomic_store(&w->peak, n);
			atomic_fetch_add(&w->samples, 1);
		} else {
			PQfinish(conn);
			conn = NULL;
		}
		PQclear(r);
		sleep_s(0.005);
	}
	PQfinish(conn);
	return NULL;
}

static void watcher_start(struct watcher *w, const struct h_pg *pg)
{
	memset(w, 0, sizeof *w);
	w->ci = h_pg_own_conninfo(pg, "postgres");
	atomic_init(&w->stop, false);
	if (pthread_create(&w->thread, NULL, watcher_main, w) != 0)
		cr_assert_fail("pthread_create failed");
}

static int watcher_stop(struct watcher *w, int *samples)
{
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	free(w->ci);
	*samples = atomic_load(&w->samples);
	return atomic_load(&w->peak);
}

/*
 * One restart: pg_ctl ARGS, with a thread pinging PostgreSQL (PQping every 5 ms) to
 * tell when it stopped and when it accepted connections again.
 */
struct restart {
	const char *how;
	double begin, ctl_done, down, up;
};

struct pinger {
	char *ci;
	atomic_bool stop;
	_Atomic double down, up; /* first failed ping; first good one after it */
};

static void *pinger_main(void *arg)
{
	struct pinger *p = arg;

	while (!atomic_load(&p->stop)) {
		bool ok = PQping(p->ci) == PQPING_OK;
		double t = h_now();

		if (!ok && p->down == 0)
			p->down = t;
		if (ok && p->down != 0) {
			p->up = t;
			return NULL;
		}
		sleep_s(0.005);
	}
	return NULL;
}

static void restart_pg(struct h_pg *pg, const char *args, struct restart *out)
{
	struct pinger p = {.ci = h_pg_own_conninfo(pg, "postgres")};
	pthread_t t;

	atomic_init(&p.stop, false);
	atomic_init(&p.down, 0);
	atomic_init(&p.up, 0);
	out->how = args;
	out->begin = h_now();
	if (pthread_create(&t, NULL, pinger_main, &p) != 0)
		cr_assert_fail("pthread_create failed");
	h_pg_ctl(pg, args);
	out->ctl_done = h_now();
	/* pg_ctl -w returned: PostgreSQL accepts; the pinger sees it within a ping. */
	for (double deadline = h_now() + 5; p.up == 0 && h_now() < deadline;)
		sleep_s(0.005);
	atomic_store(&p.stop, true);
	pthread_join(t, NULL);
	out->down = p.down;
	out->up = p.up != 0 ? p.up : out->ctl_done;
	free(p.ci);
}

/* ---------------------------------------------------------------- setup */

/* Database restart with table t in pg; corral in transaction pooling for it. */
static struct h_corral *corral_for(struct h_pg *pg, const char *settings)
{
	char *ci = h_pg_own_conninfo(pg, "postgres"), *dbs, *rci;
	PGconn *su = h_connect(NULL, ci), *db;
	struct h_corral *c;

	h_exec_ok(su, "create database restart");
	PQfinish(su);
	rci = h_pg_own_conninfo(pg, "restart");
	db = h_connect(NULL, rci);
	h_exec_ok(db, "create table t (id bigint primary key)");
	PQfinish(db);
	dbs = h_printf(
		"restart = host=127.0.0.1 port=%d dbname=restart user=postgres pool_size=%d\n",
		pg->port, POOL_SIZE);
	c = h_corral_start(settings, dbs, NULL);
	free(dbs);
	free(rci);
	free(ci);
	return c;
}

/* ---------------------------------------------------------------- tests */

/*
 * A fast restart, then an immediate one (crash recovery), each under the load of
 * N_CLIENTS committing clients.  For each: errors at most one per client (only the
 * transactions in flight), commits again within 1 s of PostgreSQL accepting
 * connections, every client going on; afterwards every acknowledged row is stored and
 * the pool never had more than pool_size backends.
 */
Test(restart, fast_and_immediate_under_load, .timeout = 100)
{
	struct h_pg *pg = h_pg_start("pg", NULL);
	struct h_corral *c = corral_for(pg, "pool_mode = transaction\n");
	char *ci = h_conninfo(c, H.user, "restart", H.password);
	struct restart rs[2];
	const char *hows[2] = {"restart -m fast", "restart -m immediate"};
	struct watcher w;
	struct load *ld = malloc(sizeof *ld);
	double end;
	int peak, samples;

	watcher_start(&w, pg);
	load_start(ld, ci);
	/* The load is under way once an INSERT was acknowledged (the pool's first logins
	 * into a new database can take a while on a loaded machine). */
	for (double until = h_now() + 15.0; acks_total(ld) == 0 && h_now() < until;)
		sleep_s(0.05);
	cr_assert_gt(acks_total(ld), 0, "no INSERT acknowledged in 15 s\n%s", h_corral_log_tail(c));
	for (int i = 0; i < 2; i++) {
		restart_pg(pg, hows[i], &rs[i]);
		/* Load goes on 2 s after PostgreSQL is back. */
		sleep_s(rs[i].up + 2.0 - h_now());
	}
	end = h_now();
	load_stop(ld, c);
	peak = watcher_stop(&w, &samples);

	for (int i = 0; i < 2; i++) {
		struct restart *r = &rs[i];
		double to = i + 1 < 2 ? rs[i + 1].begin : end + 1;
		char example[300] = "";
		int errors = errors_between(ld, r->begin, to, example, sizeof example);
		double resumed = first_ack_after(ld, r->up) - r->up;
		int stuck = clients_stuck_since(ld, r->up);

		char when[64] = "none within the 2 s watched";

		if (resumed < 1e6)
			snprintf(when, sizeof when, "%.3f s", resumed);
		cr_log_info(
			"restart: pg_ctl %s took %.2f s; PostgreSQL down %.2f s (ping), accepting "
			"again %.2f s after pg_ctl began; %d client errors (%d after a FATAL relayed "
			"between transactions; e.g. %s); first commit after PostgreSQL accepted: %s; "
			"%d clients without a commit since",
			r->how, r->ctl_done - r->begin, r->up - r->down, r->up - r->begin, errors,
			errors_after_fatal_notice(ld, r->begin, to), example, when, stuck);
		cr_expect_leq(
			errors, N_CLIENTS,
			"pg_ctl %s: %d errors reached the %d clients, want at most one each (the "
			"transactions in flight); e.g. %s\ncorral log:\n%s",
			r->how, errors, N_CLIENTS, example, h_corral_log_tail(c));
		cr_expect_lt(resumed, 1.0,
			     "pg_ctl %s: the first commit came %.2f s after PostgreSQL accepted "
			     "connections, want under 1 s\ncorral log:\n%s",
			     r->how, resumed, h_corral_log_tail(c));
		cr_expect_eq(stuck, 0,
			     "pg_ctl %s: %d clients committed nothing after PostgreSQL was back",
			     r->how, stuck);
	}
	cr_log_info("restart: peak %d backends of the pool over %d samples", peak, samples);
	cr_expect_gt(samples, 100, "only %d pg_stat_activity samples", samples);
	cr_expect_leq(peak, POOL_SIZE, "PostgreSQL saw %d backends of a pool of %d", peak,
		      POOL_SIZE);
	expect_acks_stored(ld, pg);
	load_free(ld);
	free(ld);
	free(ci);
	h_corral_stop(c);
}

/* The SQLSTATE and message of what a query on conn got (an error is wanted). */
static double query_error(PGconn *conn, char state[6], char *msg, size_t len)
{
	double t0 = h_now();
	PGresult *r = h_exec_t(conn, "select 1", 15);
	double took = h_now() - t0;

	cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "a query with PostgreSQL down: %s",
		     PQresStatus(PQresultStatus(r)));
	snprintf(state, 6, "%s", h_sqlstate(r));
	snprintf(msg, len, "%s", h_err_field(r, PG_DIAG_MESSAGE_PRIMARY));
	PQclear(r);
	return took;
}

/*
 * PostgreSQL stops for longer than server_login_wait (1 s here): a client whose query
 * came while it was down waits for it until server_login_wait has passed, then gets
 * 08006; a client after that gets 08006 at once (fail fast), naming libpq's error and
 * the next login attempt; once PostgreSQL is back, clients get through again within
 * server_login_retry.
 */
Test(restart, down_longer_than_server_login_wait, .timeout = 60)
{
	struct h_pg *pg = h_pg_start("pg", NULL);
	struct h_corral *c = corral_for(pg, "pool_mode = transaction\nserver_login_wait = 1\n"
					    "server_login_retry = 2\n");
	char *ci = h_conninfo(c, H.user, "restart", H.password);
	PGconn *a = h_connect(c, ci), *b;
	char state[6], msg[600];
	double took, t0;
	bool served = false;

	h_expect_value(a, "select 'before'", "before");
	h_pg_ctl(pg, "stop -m fast");

	/* A was idle: its query waits for logins to work, up to server_login_wait. */
	took = query_error(a, state, msg, sizeof msg);
	cr_log_info(
		"restart: a client waited %.2f s with PostgreSQL down (server_login_wait = 1 s): %s",
		took, msg);
	cr_expect_str_eq(state, "08006", "A: SQLSTATE %s: %s", state, msg);
	cr_expect(took >= 0.8 && took < 2.0,
		  "A got its error after %.2f s; server_login_wait is 1 s", took);
	cr_expect(strstr(msg, "server login failed") != NULL &&
			  strstr(msg, "server_login_wait") != NULL,
		  "A's message should name the login failure and server_login_wait: %s", msg);
	PQfinish(a);

	/* Past server_login_wait: a new client fails fast. */
	b = h_connect(c, ci);
	took = query_error(b, state, msg, sizeof msg);
	cr_log_info("restart: a client after server_login_wait failed in %.3f s: %s", took, msg);
	cr_expect_str_eq(state, "08006", "B: SQLSTATE %s: %s", state, msg);
	cr_expect_lt(took, 0.5, "B (PostgreSQL down longer than server_login_wait) waited %.2f s",
		     took);
	cr_expect(strstr(msg, "server login failed") != NULL &&
			  strstr(msg, "next login attempt in") != NULL,
		  "B's message should carry libpq's error and the next attempt: %s", msg);
	PQfinish(b);

	/* PostgreSQL is back: within server_login_retry (2 s) a client is served. */
	h_pg_ctl(pg, "start");
	t0 = h_now();
	while (!served && h_now() - t0 < 5) {
		PGresult *r;

		b = h_connect(c, ci);
		r = h_exec_t(b, "select 'back'", 15);
		served = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		PQfinish(b);
		if (!served)
			sleep_s(0.1);
	}
	took = h_now() - t0;
	cr_log_info("restart: served again %.2f s after PostgreSQL was back", took);
	cr_expect(served, "no client served within 5 s of PostgreSQL's start\n%s",
		  h_corral_log_tail(c));
	cr_expect_lt(took, 3.0,
		     "served again %.2f s after PostgreSQL was back (server_login_retry is 2 s)",
		     took);
	free(ci);
	h_corral_stop(c);
}

/*
 * Backends of the pool ended one at a time with pg_terminate_backend under load: only
 * a client whose transaction ran on the backend gets an error (57P01 from PostgreSQL
 * or 08006 from corral), the others go on, and the pool fills up again.  A FATAL that
 * comes while its client is between transactions is not the client's (relay.c): corral
 * drops that server, and the client never hears of it.
 */
Test(restart, terminated_backends_under_load, .timeout = 60)
{
	struct h_pg *pg = h_pg_start("pg", NULL);
	struct h_corral *c = corral_for(pg, "pool_mode = transaction\n");
	char *ci = h_conninfo(c, H.user, "restart", H.password),
	     *su_ci = h_pg_own_conninfo(pg, "postgres");
	PGconn *su = h_connect(NULL, su_ci);
	struct watcher w;
	struct load *ld = malloc(sizeof *ld);
	const int kills = 4;
	int killed = 0, errors, peak, samples, stuck, told_between = 0;
	double last_kill, refilled = -1;
	char example[300] = "";

	watcher_start(&w, pg);
	load_start(ld, ci);
	/* The load is under way once an INSERT was acknowledged (the pool's first logins
	 * into a new database can take a while on a loaded machine). */
	for (double until = h_now() + 15.0; acks_total(ld) == 0 && h_now() < until;)
		sleep_s(0.05);
	cr_assert_gt(acks_total(ld), 0, "no INSERT acknowledged in 15 s\n%s", h_corral_log_tail(c));
	for (int i = 0; i < kills; i++) {
		char *v = h_value(su,
				  "select count(pg_terminate_backend(pid)) from (select pid from "
				  "pg_stat_activity where datname = 'restart' and backend_type = "
				  "'client backend' order by random() limit 1) x");

		killed += atoi(v);
		free(v);
		sleep_s(0.3);
	}
	last_kill = h_now();
	/* The pool fills up again (the load keeps all of its servers busy). */
	for (double t0 = h_now(); h_now() - t0 < 3;) {
		if (atomic_load(&w.last) == POOL_SIZE) {
			refilled = h_now() - last_kill;
			break;
		}
		sleep_s(0.01);
	}
	sleep_s(0.5);
	load_stop(ld, c);
	peak = watcher_stop(&w, &samples);
	errors = errors_between(ld, 0, 1e300, example, sizeof example);
	stuck = clients_stuck_since(ld, last_kill);
	cr_log_info("restart: %d backends terminated under load: %d client errors (e.g. %s); pool "
		    "back at %d backends %.2f s after the last; peak %d",
		    killed, errors, example, POOL_SIZE, refilled, peak);
	cr_expect_eq(killed, kills, "terminated %d backends, meant %d", killed, kills);
	cr_expect_leq(errors, killed,
		      "%d errors for %d terminated backends; e.g. %s\ncorral log:\n%s", errors,
		      killed, example, h_corral_log_tail(c));
	for (int i = 0; i < N_CLIENTS; i++)
		for (size_t k = 0; k < ld->cl[i].n_fails && k < 256; k++) {
			const struct failure *f = &ld->cl[i].fails[k];

			told_between += f->after_fatal_notice;
			cr_expect(
				strcmp(f->sqlstate, "57P01") == 0 ||
					strncmp(f->sqlstate, "08", 2) == 0,
				"client %d: SQLSTATE [%s], want 57P01 or class 08: %s (what it got "
				"between transactions: %d notices, the last %.3f s before: %s)",
				i, f->sqlstate, f->msg, ld->cl[i].n_notices,
				f->at - ld->cl[i].last_notice_at, ld->cl[i].last_notice);
		}
	cr_expect_eq(told_between, 0, "%d clients were told of a FATAL between their transactions",
		     told_between);
	cr_expect_eq(stuck, 0, "%d clients committed nothing after the last kill", stuck);
	cr_expect_geq(refilled, 0,
		      "the pool did not get back to %d backends within 3 s (last seen %d)",
		      POOL_SIZE, atomic_load(&w.last));
	cr_expect_leq(peak, POOL_SIZE, "PostgreSQL saw %d backends of a pool of %d", peak,
		      POOL_SIZE);
	expect_acks_stored(ld, pg);
	load_free(ld);
	free(ld);
	PQfinish(su);
	free(su_ci);
	free(ci);
	h_corral_stop(c);
}
