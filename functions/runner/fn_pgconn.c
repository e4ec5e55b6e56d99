/*
 * fn_pgconn.h's connection: a state, one timer that serves whatever the state waits for
 * (connect timeout, statement timeout or reconnect backoff), and the FIFO.  Statements
 * belong to the caller: nothing here touches one after its done callback, which may
 * free it.
 */
#include "functions/runner/fn_pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/log.h"

/* libpq enforces connect_timeout only in blocking calls: the loop keeps its own. */
#define CONNECT_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* No session state may be set through corral (statement_timeout included): a statement
 * that hangs costs the connection instead. */
#define STATEMENT_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define RECONNECT_MIN_USEC (250 * 1000)
#define RECONNECT_MAX_USEC (30 * USEC_PER_SEC)

enum conn_state {
	CONN_OFF,        /* stopped without a connection: nothing will be sent */
	CONN_WAITING,    /* backoff before the next connection attempt */
	CONN_CONNECTING, /* PQconnectPoll in progress */
	CONN_READY,      /* statements flow */
};

struct fn_pgconn {
	struct event_base *base;
	char *dsn;
	const char *name;  /* the log's event prefix */
	char app_name[64]; /* corral-fn-NAME */
	char stop_why[96]; /* what statements that can no longer be sent end with */
	void (*connected_cb)(void *arg);
	void *arg;

	enum conn_state state;
	PGconn *conn;
	struct event *sock_ev;
	int sock_fd;
	bool flushing;       /* PQflush left bytes: wait for writability too */
	struct event *timer; /* connect timeout, statement timeout or reconnect backoff */
	usec_t backoff;
	bool setting_up; /* in the connected callback: nothing is sent until it returns */
	bool stopping;

	struct list setup;              /* FN_PGCONN_SETUP statements waiting: sent first */
	struct list waiting;            /* the other statements waiting to be sent */
	struct fn_pgconn_stmt *running; /* sent, results not all read */
	PGresult *running_res;
};

static void flush(struct fn_pgconn *pc);
static void conn_down(struct fn_pgconn *pc, const char *event, const char *why);
static void on_socket(evutil_socket_t fd, short what, void *arg);

static void arm(struct event *ev, usec_t usec)
{
	struct timeval tv = {.tv_sec = (time_t)(usec / USEC_PER_SEC),
			     .tv_usec = (suseconds_t)(usec % USEC_PER_SEC)};
	evtimer_add(ev, &tv);
}

/* ---- statements ------------------------------------------------------------------------ */

static struct fn_pgconn_stmt *take_next(struct fn_pgconn *pc)
{
	struct list *it = list_first(list_empty(&pc->setup) ? &pc->waiting : &pc->setup);
	if (!it)
		return NULL;
	list_del(it);
	return list_entry(it, struct fn_pgconn_stmt, link);
}

/* Sends the next statement when the connection is idle. */
static void pump(struct fn_pgconn *pc)
{
	if (pc->state != CONN_READY || pc->setting_up || pc->running)
		return;
	struct fn_pgconn_stmt *st = take_next(pc);
	if (!st)
		return;
	pc->running = st;
	if (!PQsendQueryParams(pc->conn, st->sql, st->n_params, NULL, st->params, NULL, NULL, 0)) {
		conn_down(pc, "connection_lost", PQerrorMessage(pc->conn));
		return;
	}
	arm(pc->timer, STATEMENT_TIMEOUT_USEC);
	flush(pc);
}

/* The running statement's results are all read. */
static void finish_running(struct fn_pgconn *pc)
{
	struct fn_pgconn_stmt *st = pc->running;
	PGresult *res = pc->running_res;
	if (PQstatus(pc->conn) == CONNECTION_BAD) {
		/* The error result says the connection broke, not that the statement failed:
		 * conn_down decides about st again (a resendable one is sent anew). */
		conn_down(pc, "connection_lost", PQerrorMessage(pc->conn));
		return;
	}
	pc->running = NULL;
	pc->running_res = NULL;
	evtimer_del(pc->timer);
	st->done(st, res, res ? NULL : "no result");
	PQclear(res);
	pump(pc);
}

static void read_results(struct fn_pgconn *pc)
{
	if (!PQconsumeInput(pc->conn)) {
		conn_down(pc, "connection_lost", PQerrorMessage(pc->conn));
		return;
	}
	while (pc->conn && pc->running && !PQisBusy(pc->conn)) {
		PGresult *res = PQgetResult(pc->conn);
		if (!res) {
			finish_running(pc);
			continue;
		}
		if (!pc->running_res)
			pc->running_res = res; /* one statement: one result, then NULL */
		else
			PQclear(res);
	}
	if (!pc->conn || pc->running)
		return;
	(void)PQisBusy(pc->conn); /* idle: lets libpq parse what came (notices, a FATAL) */
	if (PQstatus(pc->conn) == CONNECTION_BAD)
		conn_down(pc, "connection_lost", PQerrorMessage(pc->conn));
}

/* Ends every statement of l with why, in order. */
static void fail_list(struct list *l, const char *why)
{
	while (!list_empty(l)) {
		struct fn_pgconn_stmt *st = list_entry(list_first(l), struct fn_pgconn_stmt, link);
		list_del(&st->link);
		st->done(st, NULL, why);
	}
}

/* Stopped without a connection: nothing waiting can be sent any more. */
static void fail_waiting(struct fn_pgconn *pc)
{
	fail_list(&pc->setup, pc->stop_why);
	fail_list(&pc->waiting, pc->stop_why);
}

/* The running statement, taken by the connection: a resendable one goes back to the
 * head of the FIFO unless stopping; the rest ends here. */
static void running_lost(struct fn_pgconn *pc, struct fn_pgconn_stmt *st, const char *why)
{
	if (st->kind == FN_PGCONN_RESEND && !pc->stopping) {
		list_prepend(&pc->waiting, &st->link);
		return;
	}
	st->done(st, NULL, why);
}

/* ---- the connection ------------------------------------------------------------------- */

/* Watches PQsocket for what.  The socket can change between PQconnectPoll calls (libpq
 * tries the next host), so the event is made anew whenever the fd differs. */
static bool watch_socket(struct fn_pgconn *pc, short what)
{
	int fd = PQsocket(pc->conn);
	if (fd < 0)
		return false;
	if (pc->sock_ev && pc->sock_fd != fd) {
		event_free(pc->sock_ev);
		pc->sock_ev = NULL;
	}
	if (!pc->sock_ev) {
		pc->sock_ev = event_new(pc->base, fd, what, on_socket, pc);
		if (!pc->sock_ev)
			return false;
		pc->sock_fd = fd;
	} else {
		event_del(pc->sock_ev);
		event_assign(pc->sock_ev, pc->base, fd, what, on_socket, pc);
	}
	return event_add(pc->sock_ev, NULL) == 0;
}

static void watch_ready(struct fn_pgconn *pc)
{
	short what = EV_READ | EV_PERSIST | (pc->flushing ? EV_WRITE : 0);
	if (!watch_socket(pc, what))
		conn_down(pc, "connection_lost", "cannot watch the socket");
}

static void flush(struct fn_pgconn *pc)
{
	int r = PQflush(pc->conn);
	if (r < 0) {
		conn_down(pc, "connection_lost", PQerrorMessage(pc->conn));
		return;
	}
	bool flushing = r == 1;
	if (flushing != pc->flushing) {
		pc->flushing = flushing;
		watch_ready(pc);
	}
}

static void close_conn(struct fn_pgconn *pc)
{
	if (pc->sock_ev) {
		event_free(pc->sock_ev);
		pc->sock_ev = NULL;
	}
	if (pc->running_res) {
		PQclear(pc->running_res);
		pc->running_res = NULL;
	}
	if (pc->conn) {
		PQfinish(pc->conn); /* non-blocking by now, or never connected: no wait */
		pc->conn = NULL;
	}
	pc->flushing = false;
	evtimer_del(pc->timer);
}

static void conn_down(struct fn_pgconn *pc, const char *event, const char *why)
{
	/* why may be PQerrorMessage(pc->conn): copied before the connection goes. */
	char clean[512];
	log_clean(why && *why ? why : "unknown error", clean, sizeof(clean));
	struct fn_pgconn_stmt *st = pc->running;
	pc->running = NULL;
	close_conn(pc);
	pc->state = CONN_OFF;
	if (pc->stopping) {
		log_warn("event=%s_%s error=\"%s\" pending_dropped=%zu", pc->name, event, clean,
			 list_length(&pc->setup) + list_length(&pc->waiting) + (st != NULL));
		if (st)
			running_lost(pc, st, clean);
		fail_waiting(pc);
		return;
	}
	usec_t delay = pc->backoff;
	pc->backoff = delay * 2 < RECONNECT_MAX_USEC ? delay * 2 : RECONNECT_MAX_USEC;
	pc->state = CONN_WAITING;
	arm(pc->timer, delay);
	log_warn("event=%s_%s error=\"%s\" retry_in_ms=%lld", pc->name, event, clean,
		 (long long)(delay / 1000));
	if (st)
		running_lost(pc, st, clean);
	/* The connected callback submits the setup again on the next connection. */
	fail_list(&pc->setup, clean);
}

static void notice(void *arg, const char *message)
{
	struct fn_pgconn *pc = arg;
	char clean[512];
	log_debug("event=%s_notice message=\"%s\"", pc->name,
		  log_clean(message, clean, sizeof(clean)));
}

/* The caller's setup first, then whatever waited for the connection. */
static void connected(struct fn_pgconn *pc)
{
	evtimer_del(pc->timer);
	if (PQsetnonblocking(pc->conn, 1) != 0) {
		conn_down(pc, "connect_failed", "cannot make the connection non-blocking");
		return;
	}
	pc->state = CONN_READY;
	pc->backoff = RECONNECT_MIN_USEC;
	log_info("event=%s_connected backend_pid=%d", pc->name, PQbackendPID(pc->conn));
	watch_ready(pc);
	if (pc->state != CONN_READY)
		return;
	/* Sending only afterwards keeps the connection up throughout the callback, so the
	 * setup statements it submits cannot be lost halfway through it. */
	pc->setting_up = true;
	pc->connected_cb(pc->arg);
	pc->setting_up = false;
	pump(pc);
}

static void connect_step(struct fn_pgconn *pc)
{
	switch (PQconnectPoll(pc->conn)) {
	case PGRES_POLLING_READING:
		if (!watch_socket(pc, EV_READ))
			conn_down(pc, "connect_failed", "cannot watch the socket");
		return;
	case PGRES_POLLING_WRITING:
		if (!watch_socket(pc, EV_WRITE))
			conn_down(pc, "connect_failed", "cannot watch the socket");
		return;
	case PGRES_POLLING_OK:
		connected(pc);
		return;
	default:
		conn_down(pc, "connect_failed", PQerrorMessage(pc->conn));
		return;
	}
}

static void connect_start(struct fn_pgconn *pc)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {pc->dsn, pc->app_name, NULL};
	pc->conn = PQconnectStartParams(keys, vals, 1);
	pc->state = CONN_CONNECTING;
	if (!pc->conn) {
		conn_down(pc, "connect_failed", "out of memory");
		return;
	}
	if (PQstatus(pc->conn) == CONNECTION_BAD) {
		conn_down(pc, "connect_failed", PQerrorMessage(pc->conn));
		return;
	}
	PQsetNoticeProcessor(pc->conn, notice, pc);
	arm(pc->timer, CONNECT_TIMEOUT_USEC);
	/* PQconnectStart has already started connect(); poll once it is writable. */
	if (!watch_socket(pc, EV_WRITE))
		conn_down(pc, "connect_failed", "cannot watch the socket");
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct fn_pgconn *pc = arg;
	if (pc->state == CONN_CONNECTING) {
		connect_step(pc);
		return;
	}
	if (pc->state != CONN_READY)
		return;
	if (pc->flushing)
		flush(pc); /* libpq wants the output flushed on read and write readiness alike */
	if (pc->state == CONN_READY && (what & EV_READ))
		read_results(pc);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fn_pgconn *pc = arg;
	switch (pc->state) {
	case CONN_WAITING:
		connect_start(pc);
		break;
	case CONN_CONNECTING:
		conn_down(pc, "connect_failed", "connection timed out");
		break;
	case CONN_READY:
		conn_down(pc, "statement_timeout", "no answer within 30 s");
		break;
	case CONN_OFF:
		break;
	}
}

/* ---- the object ------------------------------------------------------------------------ */

bool fn_pgconn_dsn_usable(const char *dsn)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &err);
	if (err)
		PQfreemem(err);
	if (!opts)
		return false;
	PQconninfoFree(opts);
	return true;
}

struct fn_pgconn *fn_pgconn_new(struct event_base *base, const char *dsn, const char *name,
				void (*connected_cb)(void *arg), void *arg)
{
	struct fn_pgconn *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->base = base;
	pc->name = name;
	pc->connected_cb = connected_cb;
	pc->arg = arg;
	pc->sock_fd = -1;
	pc->backoff = RECONNECT_MIN_USEC;
	list_init(&pc->setup);
	list_init(&pc->waiting);
	snprintf(pc->app_name, sizeof(pc->app_name), "corral-fn-%s", name);
	snprintf(pc->stop_why, sizeof(pc->stop_why),
		 "the %s is stopping and its connection is down", name);
	pc->dsn = strdup(dsn);
	pc->timer = evtimer_new(base, on_timer, pc);
	if (!pc->dsn || !pc->timer) {
		fn_pgconn_free(pc);
		return NULL;
	}
	connect_start(pc);
	return pc;
}

void fn_pgconn_submit(struct fn_pgconn *pc, struct fn_pgconn_stmt *st, enum fn_pgconn_kind kind)
{
	st->kind = kind;
	list_append(kind == FN_PGCONN_SETUP ? &pc->setup : &pc->waiting, &st->link);
	if (pc->state == CONN_OFF)
		fail_waiting(pc);
	else
		pump(pc);
}

bool fn_pgconn_withdraw(struct fn_pgconn *pc, struct fn_pgconn_stmt *st)
{
	if (pc->running == st)
		return false;
	list_del(&st->link);
	return true;
}

bool fn_pgconn_ready(const struct fn_pgconn *pc)
{
	return pc->state == CONN_READY;
}

void fn_pgconn_drop(struct fn_pgconn *pc, const char *event, const char *why)
{
	if (pc->conn)
		conn_down(pc, event, why);
}

void fn_pgconn_stop(struct fn_pgconn *pc)
{
	pc->stopping = true;
	if (pc->state != CONN_WAITING)
		return;
	evtimer_del(pc->timer);
	pc->state = CONN_OFF;
	fail_waiting(pc);
}

void fn_pgconn_free(struct fn_pgconn *pc)
{
	if (!pc)
		return;
	if (pc->timer) { /* else nothing was started */
		close_conn(pc);
		event_free(pc->timer);
	}
	free(pc->dsn);
	free(pc);
}
