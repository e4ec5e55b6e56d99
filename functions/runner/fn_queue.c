/*
 * The queue trigger on the event loop: one libpq connection in non-blocking mode, driven
 * by an event on PQsocket, and a FIFO of statements sent one at a time.  The statements
 * and the decisions are fn_queue_batch.c's; this file only moves them.
 *
 * Life of a batch: a consumer (one per function with `queue =`) claims rows (OP_CLAIM),
 * invokes the function with them, turns the answer into acknowledgements (OP_ACK, up to
 * three statements) and frees its slot once they are done.  A slot is held from the claim
 * to the last acknowledgement, so queue_concurrency bounds claimed messages, not only
 * invocations, and fn_queue_stop() only has to wait for the slots.
 *
 * A lost connection is reconnected with a doubling backoff.  Acknowledgements survive it
 * (they are idempotent, fn_queue_batch.h), a claim does not: its rows, claimed or not,
 * reappear after the visibility timeout.
 */
#include "functions/runner/fn_queue.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "common/list.h"
#include "common/log.h"
#include "functions/runner/fn_metrics.h"
#include "functions/runner/fn_queue_batch.h"
#include "functions/runner/report.h"

/* libpq enforces connect_timeout only in blocking calls: the loop keeps its own. */
#define CONNECT_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* No session state may be set through corral (statement_timeout included): a statement
 * that hangs costs the connection instead. */
#define STATEMENT_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define RECONNECT_MIN_USEC (250 * 1000)
#define RECONNECT_MAX_USEC (30 * USEC_PER_SEC)
#define POLL_MIN_USEC (10 * 1000)

enum conn_state {
	CONN_OFF,        /* nothing to consume, no database, or stopped */
	CONN_WAITING,    /* backoff before the next connection attempt */
	CONN_CONNECTING, /* PQconnectPoll in progress */
	CONN_READY,      /* statements flow */
};

enum op_kind { OP_SCHEMA, OP_CLAIM, OP_ACK };

struct consumer;
struct batch;

struct op {
	struct list link; /* in q->ops */
	enum op_kind kind;
	struct fn_queue_stmt stmt;
	size_t schema_index;   /* OP_SCHEMA */
	struct consumer *c;    /* OP_CLAIM */
	struct batch *b;       /* OP_ACK */
};

struct consumer {
	struct fn_queue *q;
	struct fn_function *fn;
	const struct fn_function_config *cfg;
	unsigned slots;   /* claims and batches not yet acknowledged */
	bool claiming;    /* a claim is queued or running */
	struct event *poll_ev;
	struct list batches;
};

struct batch {
	struct list link; /* in c->batches */
	struct consumer *c;
	struct fn_queue_msg *msgs; /* bodies already dropped: only receipts are kept */
	size_t n;
	struct fn_call *call; /* while the function runs */
	unsigned acks_pending;
	bool pause_after;     /* the function was throttled: do not claim again at once */
	char request_id[REPORT_ID_SIZE];
};

struct fn_queue {
	struct event_base *base;
	struct fn_runtime *rt;
	char *dsn;
	struct consumer *consumers;
	size_t n_consumers;

	enum conn_state state;
	PGconn *conn;
	struct event *sock_ev;
	int sock_fd;
	bool flushing;       /* PQflush left bytes: wait for writability too */
	struct event *timer; /* connect timeout, statement timeout or reconnect backoff */
	usec_t backoff;
	bool schema_ready;

	struct list ops;     /* FIFO of struct op waiting to be sent */
	struct op *running;  /* sent, results not all read */
	PGresult *running_res;

	bool stopping;
	bool stopped; /* done_cb scheduled */
	void (*done_cb)(void *arg);
	void *done_arg;
	struct event *done_ev;
};

static void pump(struct fn_queue *q);
static void fill(struct consumer *c);
static void arm_poll(struct consumer *c);
static void drop_all_ops(struct fn_queue *q, const char *why);
static void conn_down(struct fn_queue *q, const char *event, const char *why);
static void on_socket(evutil_socket_t fd, short what, void *arg);
/* ---- small helpers ------------------------------------------------------------------- */

static struct timeval usec_tv(usec_t usec)
{
	struct timeval tv = {.tv_sec = (time_t)(usec / USEC_PER_SEC),
			     .tv_usec = (suseconds_t)(usec % USEC_PER_SEC)};
	return tv;
}

static void arm(struct event *ev, usec_t usec)
{
	struct timeval tv = usec_tv(usec);
	evtimer_add(ev, &tv);
}

static const char *queue_name(const struct consumer *c)
{
	return c->cfg->queue;
}

static void op_free(struct op *op)
{
	list_del(&op->link);
	fn_queue_stmt_clear(&op->stmt);
	free(op);
}

static struct op *op_new(enum op_kind kind)
{
	struct op *op = calloc(1, sizeof(*op));
	if (op) {
		op->kind = kind;
		list_init(&op->link);
	}
	return op;
}

static void enqueue(struct fn_queue *q, struct op *op)
{
	list_append(&q->ops, &op->link);
	pump(q);
}

/* ---- stopping -------------------------------------------------------------------------- */

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct fn_queue *q = arg;
	if (q->done_cb)
		q->done_cb(q->done_arg);
}

/* done_cb runs from the loop, never from deep inside a callback that still uses q. */
static void check_stopped(struct fn_queue *q)
{
	if (!q->stopping || q->stopped)
		return;
	for (size_t i = 0; i < q->n_consumers; i++)
		if (q->consumers[i].slots > 0)
			return;
	q->stopped = true;
	log_info("event=queue_stopped");
	event_active(q->done_ev, EV_TIMEOUT, 0);
}

/* ---- batches ----------------------------------------------------------------------------- */

static void batch_free(struct batch *b)
{
	list_del(&b->link);
	free(b->msgs);
	free(b);
}

/* The last acknowledgement is done (or cannot be sent): the slot is free again. */
static void batch_finished(struct batch *b)
{
	struct consumer *c = b->c;
	bool pause = b->pause_after;
	batch_free(b);
	c->slots--;
	if (pause)
		arm_poll(c);
	else
		fill(c);
	check_stopped(c->q);
}

static void ack_done(struct fn_queue *q, struct op *op, PGresult *res, const char *error)
{
	struct batch *b = op->b;
	struct consumer *c = b->c;
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
		size_t matched = (size_t)strtoul(PQcmdTuples(res), NULL, 10);
		/* Fewer rows than messages: a visibility timeout ran out before the answer and
		 * the message was claimed again; the newer delivery decides. */
		if (matched < op->stmt.n_messages)
			log_warn("event=queue_ack_stale function=%s queue=%s request_id=%s "
				 "statement=%s messages=%zu matched=%zu",
				 c->cfg->name, queue_name(c), b->request_id, op->stmt.what,
				 op->stmt.n_messages, matched);
	} else {
		char clean[512];
		log_warn("event=queue_ack_failed function=%s queue=%s request_id=%s statement=%s "
			 "messages=%zu error=\"%s\"",
			 c->cfg->name, queue_name(c), b->request_id, op->stmt.what,
			 op->stmt.n_messages,
			 log_clean(res ? PQresultErrorMessage(res) : error, clean, sizeof(clean)));
	}
	if (--b->acks_pending == 0)
		batch_finished(b);
}

/* Queues the acknowledgement statements of b; all are counted before any is sent, so
 * one that fails at once cannot finish the batch while its siblings are being made. */
static void queue_acks(struct batch *b, const enum fn_queue_action *actions,
		       const struct fn_queue_policy *policy, const char *why)
{
	struct fn_queue *q = b->c->q;
	struct fn_queue_stmt stmts[FN_QUEUE_ACK_STATEMENTS];
	int n = fn_queue_ack_stmts(b->msgs, b->n, actions, policy, why, stmts);
	if (n < 0)
		log_error("event=queue_ack_failed function=%s request_id=%s error=\"out of memory\"",
			  b->c->cfg->name, b->request_id);
	struct list staged;
	list_init(&staged);
	for (int i = 0; i < n; i++) {
		struct op *op = op_new(OP_ACK);
		if (!op) {
			fn_queue_stmt_clear(&stmts[i]);
			continue;
		}
		op->stmt = stmts[i];
		op->b = b;
		b->acks_pending++;
		list_append(&staged, &op->link);
	}
	if (b->acks_pending == 0) {
		batch_finished(b); /* nothing to say, or no memory to say it */
		return;
	}
	while (!list_empty(&staged)) {
		struct list *it = list_first(&staged);
		list_del(it);
		list_append(&q->ops, it);
	}
	if (q->stopping && q->state == CONN_OFF)
		drop_all_ops(q, "the queue is stopping and its connection is down");
	else
		pump(q);
}

static void log_dead_letters(const struct batch *b, const enum fn_queue_action *actions,
			     const char *why)
{
	char clean[512];
	log_clean(why, clean, sizeof(clean));
	for (size_t i = 0; i < b->n; i++)
		if (actions[i] == FN_QUEUE_DEAD_LETTER)
			log_warn("event=queue_dead_letter function=%s queue=%s request_id=%s "
				 "message_id=%s receive_count=%u error=\"%s\"",
				 b->c->cfg->name, queue_name(b->c), b->request_id,
				 b->msgs[i].message_id, b->msgs[i].receive_count, clean);
}

static void log_verdict(const struct batch *b, const char *outcome,
			const enum fn_queue_action *actions, const char *why)
{
	size_t count[FN_QUEUE_ACTIONS] = {0};
	for (size_t i = 0; i < b->n; i++)
		count[actions[i]]++;
	char clean[512];
	log_info("event=queue_batch_done function=%s queue=%s request_id=%s outcome=%s "
		 "messages=%zu deleted=%zu retried=%zu dead_lettered=%zu released=%zu "
		 "error=\"%s\"",
		 b->c->cfg->name, queue_name(b->c), b->request_id, outcome, b->n,
		 count[FN_QUEUE_DELETE], count[FN_QUEUE_RETRY], count[FN_QUEUE_DEAD_LETTER],
		 count[FN_QUEUE_RELEASE], log_clean(why, clean, sizeof(clean)));
}

/* Decides every message's fate and sends the acknowledgements. */
static void apply_verdict(struct batch *b, enum fn_queue_verdict verdict, const bool *failed,
			  const char *why, const char *outcome, usec_t release_delay)
{
	const struct fn_function_config *cfg = b->c->cfg;
	struct fn_queue_policy policy = {
		.max_receive_count = cfg->max_receive_count,
		.visibility_usec = cfg->visibility_timeout_usec,
		.release_delay_usec = release_delay,
	};
	enum fn_queue_action *actions = calloc(b->n ? b->n : 1, sizeof(*actions));
	if (!actions) {
		log_error("event=queue_ack_failed function=%s request_id=%s error=\"out of memory\"",
			  cfg->name, b->request_id);
		batch_finished(b); /* the messages reappear after the visibility timeout */
		return;
	}
	for (size_t i = 0; i < b->n; i++)
		actions[i] = fn_queue_decide(verdict, failed[i], b->msgs[i].receive_count, &policy);
	log_verdict(b, outcome, actions, why);
	log_dead_letters(b, actions, why);
	queue_acks(b, actions, &policy, why);
	free(actions);
}

static void batch_invoked(const struct fn_call_done *done, void *arg)
{
	struct batch *b = arg;
	b->call = NULL;
	bool *failed = calloc(b->n ? b->n : 1, sizeof(*failed));
	char why[FN_QUEUE_ERROR_MAX] = "";
	if (!failed) {
		log_error("event=queue_ack_failed function=%s request_id=%s error=\"out of memory\"",
			  b->c->cfg->name, b->request_id);
		batch_finished(b);
		return;
	}
	enum fn_queue_verdict verdict = fn_queue_judge(done, b->msgs, b->n, failed, why, sizeof(why));
	/* Throttled or timed out waiting: the function is saturated, give it queue_poll.  A
	 * runner that shuts down releases at once, for the next runner. */
	bool saturated = done->status == FN_CALL_THROTTLED || done->status == FN_CALL_QUEUE_TIMEOUT;
	b->pause_after = saturated;
	apply_verdict(b, verdict, failed, why, fn_call_status_label(done->status),
		      saturated ? b->c->cfg->queue_poll_usec : 0);
	free(failed);
}

/* ---- claims ---------------------------------------------------------------------------- */

static void arm_poll(struct consumer *c)
{
	if (c->q->stopping)
		return;
	usec_t poll = c->cfg->queue_poll_usec;
	arm(c->poll_ev, poll > POLL_MIN_USEC ? poll : POLL_MIN_USEC);
}

/* Claims the next batch when a slot is free and the connection can take it. */
static void fill(struct consumer *c)
{
	struct fn_queue *q = c->q;
	unsigned limit = c->cfg->queue_concurrency ? c->cfg->queue_concurrency : 1;
	if (q->stopping || q->state != CONN_READY || !q->schema_ready || c->claiming ||
	    c->slots >= limit)
		return;
	struct op *op = op_new(OP_CLAIM);
	if (!op || !fn_queue_claim_stmt(queue_name(c), c->cfg->batch_size ? c->cfg->batch_size : 1,
					c->cfg->visibility_timeout_usec, &op->stmt)) {
		free(op);
		log_error("event=queue_claim_failed function=%s queue=%s error=\"out of memory\"",
			  c->cfg->name, queue_name(c));
		arm_poll(c);
		return;
	}
	op->c = c;
	c->claiming = true;
	c->slots++;
	evtimer_del(c->poll_ev);
	enqueue(q, op);
}

static void fill_all(struct fn_queue *q)
{
	for (size_t i = 0; i < q->n_consumers; i++)
		fill(&q->consumers[i]);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	fill(arg);
}

/* The claimed rows as messages (bodies still pointing into res). */
static size_t read_rows(struct consumer *c, PGresult *res, struct fn_queue_msg *msgs)
{
	size_t n = 0;
	for (int row = 0; row < PQntuples(res); row++) {
		const char *cols[FN_QUEUE_CLAIM_COLUMNS];
		for (int col = 0; col < FN_QUEUE_CLAIM_COLUMNS; col++)
			cols[col] = col < PQnfields(res) && !PQgetisnull(res, row, col)
					    ? PQgetvalue(res, row, col)
					    : NULL;
		if (fn_queue_msg_from_row(cols, &msgs[n]))
			n++;
		else /* cannot happen with our own table: left to its visibility timeout */
			log_error("event=queue_bad_row function=%s queue=%s row=%d", c->cfg->name,
				  queue_name(c), row);
	}
	return n;
}

static struct batch *batch_new(struct consumer *c, PGresult *res)
{
	struct batch *b = calloc(1, sizeof(*b));
	struct fn_queue_msg *msgs = calloc((size_t)PQntuples(res), sizeof(*msgs));
	if (!b || !msgs) {
		free(b);
		free(msgs);
		return NULL;
	}
	b->c = c;
	b->msgs = msgs;
	b->n = read_rows(c, res, msgs);
	list_init(&b->link);
	list_append(&c->batches, &b->link);
	if (!report_request_id(b->request_id))
		b->request_id[0] = '\0'; /* the runtime makes one */
	return b;
}

static void drop_bodies(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		b->msgs[i].body = NULL; /* they live in the claim's result, about to be freed */
}

/* Hands the messages back at once (stopping, or the event cannot be built). */
static void release_batch(struct batch *b, const char *why)
{
	bool *failed = calloc(b->n ? b->n : 1, sizeof(*failed));
	if (!failed) {
		batch_finished(b);
		return;
	}
	apply_verdict(b, FN_QUEUE_NOT_DELIVERED, failed, why, "released", 0);
	free(failed);
}

static void invoke_batch(struct batch *b)
{
	struct consumer *c = b->c;
	size_t len = 0;
	char *event = fn_queue_batch_event(queue_name(c), b->msgs, b->n, &len);
	drop_bodies(b);
	if (!event) {
		release_batch(b, "out of memory building the event");
		return;
	}
	log_info("event=queue_claimed function=%s queue=%s request_id=%s messages=%zu "
		 "first_id=%s last_id=%s",
		 c->cfg->name, queue_name(c), b->request_id[0] ? b->request_id : "-", b->n,
		 b->msgs[0].message_id, b->msgs[b->n - 1].message_id);
	b->call = fn_runtime_invoke(c->fn, b->request_id[0] ? b->request_id : NULL, event, len,
				    batch_invoked, b);
	free(event);
	if (b->call && !b->request_id[0])
		snprintf(b->request_id, sizeof(b->request_id), "%s", fn_call_request_id(b->call));
}

static void claim_failed(struct consumer *c, const char *why)
{
	char clean[512];
	log_warn("event=queue_claim_failed function=%s queue=%s error=\"%s\"", c->cfg->name,
		 queue_name(c), log_clean(why, clean, sizeof(clean)));
}

static void claim_done(struct fn_queue *q, struct consumer *c, PGresult *res, const char *error)
{
	c->claiming = false;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) == 0) {
		if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
			claim_failed(c, res ? PQresultErrorMessage(res) : error);
		c->slots--;
		arm_poll(c); /* nothing visible: look again after queue_poll */
		check_stopped(q);
		return;
	}
	struct batch *b = batch_new(c, res);
	if (!b) {
		claim_failed(c, "out of memory");
		c->slots--;
		arm_poll(c);
		check_stopped(q);
		return;
	}
	if (b->n == 0) {
		batch_finished(b);
		return;
	}
	if (q->stopping) {
		drop_bodies(b);
		release_batch(b, "the runner is stopping");
		return;
	}
	invoke_batch(b);
	fill(c); /* the next claim, while this batch runs */
}

/* ---- statements ------------------------------------------------------------------------ */

static void schema_done(struct fn_queue *q, struct op *op, PGresult *res, const char *error)
{
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		/* Two runners creating the tables at once can collide; the next try sees them. */
		conn_down(q, "queue_schema_failed", res ? PQresultErrorMessage(res) : error);
		return;
	}
	if (op->schema_index + 1 < FN_QUEUE_SCHEMA_STATEMENTS)
		return;
	q->schema_ready = true;
	log_info("event=queue_ready consumers=%zu", q->n_consumers);
	fill_all(q);
}

static void op_done(struct fn_queue *q, struct op *op, PGresult *res, const char *error)
{
	switch (op->kind) {
	case OP_SCHEMA:
		schema_done(q, op, res, error);
		break;
	case OP_CLAIM:
		claim_done(q, op->c, res, error);
		break;
	case OP_ACK:
		ack_done(q, op, res, error);
		break;
	}
}

static void flush(struct fn_queue *q);

/* Sends the next statement when the connection is idle. */
static void pump(struct fn_queue *q)
{
	if (q->state != CONN_READY || q->running || list_empty(&q->ops))
		return;
	struct op *op = list_entry(list_first(&q->ops), struct op, link);
	list_del(&op->link);
	q->running = op;
	if (!PQsendQueryParams(q->conn, op->stmt.sql, op->stmt.n_params, NULL,
			       (const char *const *)op->stmt.params, NULL, NULL, 0)) {
		conn_down(q, "queue_connection_lost", PQerrorMessage(q->conn));
		return;
	}
	arm(q->timer, STATEMENT_TIMEOUT_USEC);
	flush(q);
}

/* The running statement's results are all read. */
static void finish_running(struct fn_queue *q)
{
	struct op *op = q->running;
	PGresult *res = q->running_res;
	if (PQstatus(q->conn) == CONNECTION_BAD) {
		/* The error result says the connection broke, not that the statement failed:
		 * conn_down decides about op again (acknowledgements are sent anew). */
		conn_down(q, "queue_connection_lost", PQerrorMessage(q->conn));
		return;
	}
	q->running = NULL;
	q->running_res = NULL;
	evtimer_del(q->timer);
	op_done(q, op, res, NULL);
	PQclear(res);
	op_free(op);
	pump(q);
}

static void read_results(struct fn_queue *q)
{
	if (!PQconsumeInput(q->conn)) {
		conn_down(q, "queue_connection_lost", PQerrorMessage(q->conn));
		return;
	}
	while (q->conn && q->running && !PQisBusy(q->conn)) {
		PGresult *res = PQgetResult(q->conn);
		if (!res) {
			finish_running(q);
			continue;
		}
		if (!q->running_res)
			q->running_res = res; /* one statement: one result, then NULL */
		else
			PQclear(res);
	}
	if (!q->conn || q->running)
		return;
	(void)PQisBusy(q->conn); /* idle: lets libpq parse what came (notices, a FATAL) */
	if (PQstatus(q->conn) == CONNECTION_BAD)
		conn_down(q, "queue_connection_lost", PQerrorMessage(q->conn));
}

/* ---- the connection ------------------------------------------------------------------- */

/* Watches PQsocket for what.  The socket can change between PQconnectPoll calls (libpq
 * tries the next host), so the event is made anew whenever the fd differs. */
static bool watch_socket(struct fn_queue *q, short what)
{
	int fd = PQsocket(q->conn);
	if (fd < 0)
		return false;
	if (q->sock_ev && q->sock_fd != fd) {
		event_free(q->sock_ev);
		q->sock_ev = NULL;
	}
	if (!q->sock_ev) {
		q->sock_ev = event_new(q->base, fd, what, on_socket, q);
		if (!q->sock_ev)
			return false;
		q->sock_fd = fd;
	} else {
		event_del(q->sock_ev);
		event_assign(q->sock_ev, q->base, fd, what, on_socket, q);
	}
	return event_add(q->sock_ev, NULL) == 0;
}

static void watch_ready(struct fn_queue *q)
{
	short what = EV_READ | EV_PERSIST | (q->flushing ? EV_WRITE : 0);
	if (!watch_socket(q, what))
		conn_down(q, "queue_connection_lost", "cannot watch the socket");
}

static void flush(struct fn_queue *q)
{
	int r = PQflush(q->conn);
	if (r < 0) {
		conn_down(q, "queue_connection_lost", PQerrorMessage(q->conn));
		return;
	}
	bool flushing = r == 1;
	if (flushing != q->flushing) {
		q->flushing = flushing;
		watch_ready(q);
	}
}

static void close_conn(struct fn_queue *q)
{
	if (q->sock_ev) {
		event_free(q->sock_ev);
		q->sock_ev = NULL;
	}
	if (q->running_res) {
		PQclear(q->running_res);
		q->running_res = NULL;
	}
	if (q->conn) {
		PQfinish(q->conn); /* non-blocking by now, or never connected: no wait */
		q->conn = NULL;
	}
	q->flushing = false;
	evtimer_del(q->timer);
}

/* An operation the connection took with it: acknowledgements go back to the head of the
 * FIFO (they are idempotent) unless the queue is stopping; the rest ends here. */
static void op_lost(struct fn_queue *q, struct op *op, const char *why)
{
	if (op->kind == OP_ACK && !q->stopping) {
		list_prepend(&q->ops, &op->link);
		return;
	}
	if (op->kind != OP_SCHEMA)
		op_done(q, op, NULL, why);
	op_free(op);
}

/* Schema statements are sent again on the next connection, from the first. */
static void drop_schema_ops(struct fn_queue *q)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &q->ops)
	{
		struct op *op = list_entry(it, struct op, link);
		if (op->kind == OP_SCHEMA)
			op_free(op);
	}
}

/* Stopping without a connection: nothing queued can be sent any more. */
static void drop_all_ops(struct fn_queue *q, const char *why)
{
	while (!list_empty(&q->ops)) {
		struct op *op = list_entry(list_first(&q->ops), struct op, link);
		list_del(&op->link);
		if (op->kind != OP_SCHEMA)
			op_done(q, op, NULL, why);
		op_free(op);
	}
}

static void conn_down(struct fn_queue *q, const char *event, const char *why)
{
	/* why may be PQerrorMessage(q->conn): copied before the connection goes. */
	char clean[512];
	log_clean(why && *why ? why : "unknown error", clean, sizeof(clean));
	struct op *op = q->running;
	q->running = NULL;
	close_conn(q);
	q->state = CONN_OFF;
	if (q->stopping) {
		log_warn("event=%s error=\"%s\" pending_dropped=%zu", event, clean,
			 list_length(&q->ops) + (op != NULL));
		if (op)
			op_lost(q, op, clean);
		drop_all_ops(q, "the queue is stopping and its connection is down");
		check_stopped(q);
		return;
	}
	usec_t delay = q->backoff;
	q->backoff = delay * 2 < RECONNECT_MAX_USEC ? delay * 2 : RECONNECT_MAX_USEC;
	q->state = CONN_WAITING;
	arm(q->timer, delay);
	log_warn("event=%s error=\"%s\" retry_in_ms=%lld", event, clean, (long long)(delay / 1000));
	if (op)
		op_lost(q, op, clean);
	drop_schema_ops(q);
}

static void notice(void *arg, const char *message)
{
	char clean[512];
	log_debug("event=queue_notice message=\"%s\"", log_clean(message, clean, sizeof(clean)));
}

/* The schema first (once per fn_queue), then whatever waited for the connection. */
static void connected(struct fn_queue *q)
{
	evtimer_del(q->timer);
	if (PQsetnonblocking(q->conn, 1) != 0) {
		conn_down(q, "queue_connect_failed", "cannot make the connection non-blocking");
		return;
	}
	q->state = CONN_READY;
	q->backoff = RECONNECT_MIN_USEC;
	log_info("event=queue_connected backend_pid=%d", PQbackendPID(q->conn));
	watch_ready(q);
	if (q->state != CONN_READY)
		return;
	if (!q->schema_ready) {
		for (size_t i = FN_QUEUE_SCHEMA_STATEMENTS; i-- > 0;) {
			struct op *op = op_new(OP_SCHEMA);
			if (!op) {
				conn_down(q, "queue_connect_failed", "out of memory");
				return;
			}
			op->stmt.sql = fn_queue_schema_sql[i];
			op->stmt.what = "schema";
			op->schema_index = i;
			list_prepend(&q->ops, &op->link);
		}
	}
	pump(q);
	if (q->schema_ready)
		fill_all(q);
}

static void connect_step(struct fn_queue *q)
{
	switch (PQconnectPoll(q->conn)) {
	case PGRES_POLLING_READING:
		if (!watch_socket(q, EV_READ))
			conn_down(q, "queue_connect_failed", "cannot watch the socket");
		return;
	case PGRES_POLLING_WRITING:
		if (!watch_socket(q, EV_WRITE))
			conn_down(q, "queue_connect_failed", "cannot watch the socket");
		return;
	case PGRES_POLLING_OK:
		connected(q);
		return;
	default:
		conn_down(q, "queue_connect_failed", PQerrorMessage(q->conn));
		return;
	}
}

static void connect_start(struct fn_queue *q)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {q->dsn, "corral-fn-queue", NULL};
	q->conn = PQconnectStartParams(keys, vals, 1);
	q->state = CONN_CONNECTING;
	if (!q->conn) {
		conn_down(q, "queue_connect_failed", "out of memory");
		return;
	}
	if (PQstatus(q->conn) == CONNECTION_BAD) {
		conn_down(q, "queue_connect_failed", PQerrorMessage(q->conn));
		return;
	}
	PQsetNoticeProcessor(q->conn, notice, q);
	arm(q->timer, CONNECT_TIMEOUT_USEC);
	/* PQconnectStart has already started connect(); poll once it is writable. */
	if (!watch_socket(q, EV_WRITE))
		conn_down(q, "queue_connect_failed", "cannot watch the socket");
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct fn_queue *q = arg;
	if (q->state == CONN_CONNECTING) {
		connect_step(q);
		return;
	}
	if (q->state != CONN_READY)
		return;
	if (q->flushing)
		flush(q); /* libpq wants the output flushed on read and write readiness alike */
	if (q->state == CONN_READY && (what & EV_READ))
		read_results(q);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fn_queue *q = arg;
	switch (q->state) {
	case CONN_WAITING:
		connect_start(q);
		break;
	case CONN_CONNECTING:
		conn_down(q, "queue_connect_failed", "connection timed out");
		break;
	case CONN_READY:
		conn_down(q, "queue_statement_timeout", "no answer within 30 s");
		break;
	case CONN_OFF:
		break;
	}
}

/* ---- the object ------------------------------------------------------------------------ */

/* The DSN must parse before it is used: libpq's parse errors quote the text, password
 * included, and that must not reach the log. */
static bool dsn_usable(const char *dsn)
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

static bool add_consumer(struct fn_queue *q, const struct fn_function_config *fc)
{
	struct fn_function *fn = fn_runtime_find(q->rt, fc->name);
	if (!fn) {
		log_error("event=queue_consumer_skipped function=%s reason=\"not in the runtime\"",
			  fc->name);
		return true;
	}
	struct consumer *c = &q->consumers[q->n_consumers];
	memset(c, 0, sizeof(*c));
	c->q = q;
	c->fn = fn;
	c->cfg = fc;
	list_init(&c->batches);
	c->poll_ev = evtimer_new(q->base, on_poll, c);
	if (!c->poll_ev)
		return false;
	q->n_consumers++;
	return true;
}

static bool add_consumers(struct fn_queue *q, const struct fn_runner_config *cfg)
{
	q->consumers = calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof(*q->consumers));
	if (!q->consumers)
		return false;
	for (size_t i = 0; i < cfg->n_functions; i++)
		if (cfg->functions[i].queue && !add_consumer(q, &cfg->functions[i]))
			return false;
	return true;
}

struct fn_queue *fn_queue_new(struct event_base *base, struct fn_runtime *rt,
			      const struct fn_runner_config *cfg)
{
	struct fn_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->base = base;
	q->rt = rt;
	q->sock_fd = -1;
	q->backoff = RECONNECT_MIN_USEC;
	list_init(&q->ops);
	q->timer = evtimer_new(base, on_timer, q);
	q->done_ev = event_new(base, -1, 0, on_done, q);
	if (!q->timer || !q->done_ev || !add_consumers(q, cfg)) {
		fn_queue_free(q);
		return NULL;
	}
	if (q->n_consumers == 0)
		return q;
	const char *dsn = cfg->queue_database_url ? cfg->queue_database_url : cfg->database_url;
	if (!dsn || !*dsn) {
		log_error("event=queue_disabled consumers=%zu reason=\"no queue_database_url or "
			  "database_url\"",
			  q->n_consumers);
		return q;
	}
	if (!dsn_usable(dsn)) {
		log_error("event=queue_disabled consumers=%zu reason=\"the queue database URL does "
			  "not parse (not shown: it may hold a password)\"",
			  q->n_consumers);
		return q;
	}
	q->dsn = strdup(dsn);
	if (!q->dsn) {
		fn_queue_free(q);
		return NULL;
	}
	connect_start(q);
	return q;
}

/* Claims not sent yet are withdrawn; a claim already running releases what it gets. */
static void withdraw_claims(struct fn_queue *q)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &q->ops)
	{
		struct op *op = list_entry(it, struct op, link);
		if (op->kind != OP_CLAIM)
			continue;
		op->c->claiming = false;
		op->c->slots--;
		op_free(op);
	}
}

void fn_queue_stop(struct fn_queue *q, void (*done_cb)(void *arg), void *arg)
{
	q->done_cb = done_cb;
	q->done_arg = arg;
	if (q->stopping)
		return;
	q->stopping = true;
	log_info("event=queue_stopping consumers=%zu", q->n_consumers);
	for (size_t i = 0; i < q->n_consumers; i++)
		evtimer_del(q->consumers[i].poll_ev);
	withdraw_claims(q);
	if (q->state == CONN_WAITING || q->state == CONN_OFF) {
		evtimer_del(q->timer);
		q->state = CONN_OFF;
		drop_all_ops(q, "the queue is stopping and its connection is down");
	}
	check_stopped(q);
}

static void free_consumer(struct consumer *c)
{
	while (!list_empty(&c->batches)) {
		struct batch *b = list_entry(list_first(&c->batches), struct batch, link);
		if (b->call)
			fn_call_forget(b->call);
		batch_free(b);
	}
	if (c->poll_ev)
		event_free(c->poll_ev);
}

void fn_queue_free(struct fn_queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n_consumers; i++)
		free_consumer(&q->consumers[i]);
	while (!list_empty(&q->ops))
		op_free(list_entry(list_first(&q->ops), struct op, link));
	if (q->running) {
		op_free(q->running);
		q->running = NULL;
	}
	close_conn(q);
	if (q->timer)
		event_free(q->timer);
	if (q->done_ev)
		event_free(q->done_ev);
	free(q->consumers);
	free(q->dsn);
	free(q);
}
