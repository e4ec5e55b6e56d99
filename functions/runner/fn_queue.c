/*
 * The queue trigger on the event loop: consumers, their batches and the statements that
 * claim and acknowledge them, sent over one connection (fn_pgconn.h: libpq on the loop,
 * a FIFO of statements).  The statements and the decisions are fn_queue_batch.c's; this
 * file only moves them.
 *
 * Life of a batch: a consumer (one per function with `queue =`) claims rows (its claim
 * statement), invokes the function with them, turns the answer into acknowledgements (up
 * to three statements, held by the batch) and frees its slot once they are done.  A slot
 * is held from the claim to the last acknowledgement, so queue_concurrency bounds claimed
 * messages, not only invocations, and fn_queue_stop() only has to wait for the slots.
 *
 * A lost connection is made again after a backoff (fn_pgconn.c).  Acknowledgements
 * survive it (they are idempotent, fn_queue_batch.h, so they are resent), a claim does
 * not: its rows, claimed or not, reappear after the visibility timeout.  The schema is
 * set up on the first connection that manages it, before any claim.
 */
#include "functions/runner/fn_queue.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/list.h"
#include "common/log.h"
#include "functions/runner/fn_metrics.h"
#include "functions/runner/fn_pgconn.h"
#include "functions/runner/fn_queue_batch.h"
#include "functions/runner/report.h"

#define POLL_MIN_USEC (10 * 1000)

struct consumer;
struct batch;

/* One acknowledgement statement of a batch, with what its answer is about. */
struct ack {
	struct fn_pgconn_stmt pg;
	struct fn_queue_stmt stmt;
	struct batch *b;
};

/* One schema statement (fn_queue_schema_sql[index]). */
struct schema_step {
	struct fn_pgconn_stmt pg;
	struct fn_queue *q;
	size_t index;
};

struct consumer {
	struct fn_queue *q;
	struct fn_function *fn;
	const struct fn_function_config *cfg;
	unsigned slots; /* claims and batches not yet acknowledged */
	bool claiming;  /* the claim is submitted: queued or running */
	struct fn_pgconn_stmt claim_pg;
	struct fn_queue_stmt claim;
	struct event *poll_ev;
	struct list batches;
};

struct batch {
	struct list link; /* in c->batches */
	struct consumer *c;
	struct fn_queue_msg *msgs; /* bodies already dropped: only receipts are kept */
	size_t n;
	struct fn_call *call; /* while the function runs */
	struct ack acks[FN_QUEUE_ACK_STATEMENTS];
	unsigned acks_pending;
	bool pause_after; /* the function was throttled: do not claim again at once */
	char request_id[REPORT_ID_SIZE];
};

struct fn_queue {
	struct event_base *base;
	struct fn_runtime *rt;
	struct consumer *consumers;
	size_t n_consumers;

	struct fn_pgconn *pg; /* NULL: nothing to consume, or no database */
	struct schema_step schema[FN_QUEUE_SCHEMA_STATEMENTS];
	bool schema_ready;

	bool stopping;
	bool stopped; /* done_cb scheduled */
	void (*done_cb)(void *arg);
	void *done_arg;
	struct event *done_ev;
};

static void fill(struct consumer *c);
static void arm_poll(struct consumer *c);
/* ---- small helpers ------------------------------------------------------------------- */

static const char *queue_name(const struct consumer *c)
{
	return c->cfg->queue;
}

/* Points st at s (which must outlive it) and its answer at done. */
static void bind_stmt(struct fn_pgconn_stmt *st, const struct fn_queue_stmt *s,
		      fn_pgconn_done_fn *done)
{
	st->sql = s->sql;
	st->n_params = s->n_params;
	st->params = (const char *const *)s->params;
	st->done = done;
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
	for (size_t i = 0; i < FN_QUEUE_ACK_STATEMENTS; i++)
		fn_queue_stmt_clear(&b->acks[i].stmt); /* those not done: the queue is freed */
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

static void ack_done(struct fn_pgconn_stmt *st, PGresult *res, const char *error)
{
	struct ack *a = container_of(st, struct ack, pg);
	struct batch *b = a->b;
	struct consumer *c = b->c;
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK) {
		size_t matched = (size_t)strtoul(PQcmdTuples(res), NULL, 10);
		/* Fewer rows than messages: a visibility timeout ran out before the answer and
		 * the message was claimed again; the newer delivery decides. */
		if (matched < a->stmt.n_messages)
			log_warn("event=queue_ack_stale function=%s queue=%s request_id=%s "
				 "statement=%s messages=%zu matched=%zu",
				 c->cfg->name, queue_name(c), b->request_id, a->stmt.what,
				 a->stmt.n_messages, matched);
	} else {
		char clean[512];
		log_warn("event=queue_ack_failed function=%s queue=%s request_id=%s statement=%s "
			 "messages=%zu error=\"%s\"",
			 c->cfg->name, queue_name(c), b->request_id, a->stmt.what,
			 a->stmt.n_messages,
			 log_clean(res ? PQresultErrorMessage(res) : error, clean, sizeof(clean)));
	}
	fn_queue_stmt_clear(&a->stmt);
	if (--b->acks_pending == 0)
		batch_finished(b);
}

/* Submits the acknowledgement statements of b; all are counted before any is submitted,
 * so one that fails at once (stopping, no connection) cannot finish the batch while its
 * siblings are still to come. */
static void queue_acks(struct batch *b, const enum fn_queue_action *actions,
		       const struct fn_queue_policy *policy, const char *why)
{
	struct fn_pgconn *pg = b->c->q->pg;
	struct fn_queue_stmt stmts[FN_QUEUE_ACK_STATEMENTS];
	int n = fn_queue_ack_stmts(b->msgs, b->n, actions, policy, why, stmts);
	if (n < 0)
		log_error(
			"event=queue_ack_failed function=%s request_id=%s error=\"out of memory\"",
			b->c->cfg->name, b->request_id);
	if (n <= 0) {
		batch_finished(b); /* nothing to say, or no memory to say it */
		return;
	}
	b->acks_pending = (unsigned)n;
	for (int i = 0; i < n; i++) {
		b->acks[i].b = b;
		b->acks[i].stmt = stmts[i];
		bind_stmt(&b->acks[i].pg, &b->acks[i].stmt, ack_done);
	}
	for (int i = 0; i < n; i++) /* b is gone once the last one is done */
		fn_pgconn_submit(pg, &b->acks[i].pg, FN_PGCONN_RESEND);
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
		log_error(
			"event=queue_ack_failed function=%s request_id=%s error=\"out of memory\"",
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
		log_error(
			"event=queue_ack_failed function=%s request_id=%s error=\"out of memory\"",
			b->c->cfg->name, b->request_id);
		batch_finished(b);
		return;
	}
	enum fn_queue_verdict verdict = fn_queue_judge(done, b->msgs, b->n, failed, why,
						       sizeof(why));
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
	if (poll < POLL_MIN_USEC)
		poll = POLL_MIN_USEC;
	struct timeval tv = {.tv_sec = (time_t)(poll / USEC_PER_SEC),
			     .tv_usec = (suseconds_t)(poll % USEC_PER_SEC)};
	evtimer_add(c->poll_ev, &tv);
}

static void claim_done(struct fn_pgconn_stmt *st, PGresult *res, const char *error);

/* Claims the next batch when a slot is free and the connection can take it. */
static void fill(struct consumer *c)
{
	struct fn_queue *q = c->q;
	unsigned limit = c->cfg->queue_concurrency ? c->cfg->queue_concurrency : 1;
	if (q->stopping || !q->schema_ready || !fn_pgconn_ready(q->pg) || c->claiming ||
	    c->slots >= limit)
		return;
	if (!fn_queue_claim_stmt(queue_name(c), c->cfg->batch_size ? c->cfg->batch_size : 1,
				 c->cfg->visibility_timeout_usec, &c->claim)) {
		log_error("event=queue_claim_failed function=%s queue=%s error=\"out of memory\"",
			  c->cfg->name, queue_name(c));
		arm_poll(c);
		return;
	}
	bind_stmt(&c->claim_pg, &c->claim, claim_done);
	c->claiming = true;
	c->slots++;
	evtimer_del(c->poll_ev);
	fn_pgconn_submit(q->pg, &c->claim_pg, FN_PGCONN_ONCE);
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

static void claim_done(struct fn_pgconn_stmt *st, PGresult *res, const char *error)
{
	struct consumer *c = container_of(st, struct consumer, claim_pg);
	struct fn_queue *q = c->q;
	fn_queue_stmt_clear(&c->claim); /* before fill() below makes the next one */
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

/* ---- the schema ------------------------------------------------------------------------ */

static void schema_done(struct fn_pgconn_stmt *st, PGresult *res, const char *error)
{
	struct schema_step *step = container_of(st, struct schema_step, pg);
	struct fn_queue *q = step->q;
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		/* Two runners creating the tables at once can collide; the next try sees them.
		 * (Lost with its connection, there is nothing to drop: the next one runs the
		 * schema again.) */
		fn_pgconn_drop(q->pg, "schema_failed", res ? PQresultErrorMessage(res) : error);
		return;
	}
	if (step->index + 1 < FN_QUEUE_SCHEMA_STATEMENTS)
		return;
	q->schema_ready = true;
	log_info("event=queue_ready consumers=%zu", q->n_consumers);
	fill_all(q);
}

/* Every new connection: the schema first (once per fn_queue), then claims. */
static void on_connected(void *arg)
{
	struct fn_queue *q = arg;
	if (q->schema_ready) {
		fill_all(q);
		return;
	}
	for (size_t i = 0; i < FN_QUEUE_SCHEMA_STATEMENTS; i++) {
		struct schema_step *step = &q->schema[i];
		step->q = q;
		step->index = i;
		step->pg.sql = fn_queue_schema_sql[i];
		step->pg.done = schema_done;
		fn_pgconn_submit(q->pg, &step->pg, FN_PGCONN_SETUP);
	}
}

/* ---- the object ------------------------------------------------------------------------ */

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
	q->done_ev = event_new(base, -1, 0, on_done, q);
	if (!q->done_ev || !add_consumers(q, cfg)) {
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
	if (!fn_pgconn_dsn_usable(dsn)) {
		log_error("event=queue_disabled consumers=%zu reason=\"the queue database URL does "
			  "not parse (not shown: it may hold a password)\"",
			  q->n_consumers);
		return q;
	}
	q->pg = fn_pgconn_new(base, dsn, "queue", on_connected, q);
	if (!q->pg) {
		fn_queue_free(q);
		return NULL;
	}
	return q;
}

/* Claims not sent yet are withdrawn; a claim already running releases what it gets. */
static void withdraw_claims(struct fn_queue *q)
{
	for (size_t i = 0; i < q->n_consumers; i++) {
		struct consumer *c = &q->consumers[i];
		if (!c->claiming || !fn_pgconn_withdraw(q->pg, &c->claim_pg))
			continue;
		fn_queue_stmt_clear(&c->claim);
		c->claiming = false;
		c->slots--;
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
	if (q->pg)
		fn_pgconn_stop(q->pg); /* without a connection, acknowledgements due fail now */
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
	fn_queue_stmt_clear(&c->claim);
	if (c->poll_ev)
		event_free(c->poll_ev);
}

void fn_queue_free(struct fn_queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n_consumers; i++)
		free_consumer(&q->consumers[i]);
	fn_pgconn_free(q->pg);
	if (q->done_ev)
		event_free(q->done_ev);
	free(q->consumers);
	free(q);
}
