#include "tests/unit/backend_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t sim_byte(struct sim_source *src)
{
	if (src->data)
		return src->pos < src->len ? src->data[src->pos++] : 0;
	uint64_t x = src->seed ? src->seed : 88172645463325252ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	src->seed = x;
	return (uint8_t)(x >> 24);
}

/* True pct times in 100 (about). */
static bool chance(struct sim *s, int pct)
{
	return sim_byte(s->src) % 100 < pct;
}

void sim_init(struct sim *s, struct sim_source *src)
{
	memset(s, 0, sizeof(*s));
	s->src = src;
	tracker_init(&s->tracker);
}

void sim_free(struct sim *s)
{
	tracker_free(&s->tracker);
}

/* ---- the backend's output ------------------------------------------------------ */

static void emit_status(struct sim *s, char type, char status)
{
	if (type == 'E')
		s->cur_failed = true;
	if (s->out_len == SIM_MAX_OUT) {
		s->failure = "simulator output full";
		return;
	}
	size_t at = (s->out_head + s->out_len++) % SIM_MAX_OUT;
	s->out[at] = type;
	s->out_status[at] = status;
}

/* A reply, sometimes after a notice, a ParameterStatus or a notification. */
static void emit(struct sim *s, char type)
{
	if (chance(s, 8))
		emit_status(s, "NSA"[sim_byte(s->src) % 3], 0);
	emit_status(s, type, 0);
}

static void ready(struct sim *s)
{
	emit_status(s, 'Z', "ITE"[sim_byte(s->src) % 3]);
	s->open = false;
}

static void rows(struct sim *s)
{
	int n = sim_byte(s->src) % 3;
	for (int i = 0; i < n; i++)
		emit(s, 'D');
}

/* An error in the message being handled: extended ones skip to the next Sync. */
static void fail(struct sim *s, char msg)
{
	emit(s, 'E');
	if (strchr("PBspECh", msg))
		s->skipping = true;
}

/* ---- simple Query ------------------------------------------------------------- */

/* COPY TO STDOUT, which may fail half way; false if it failed. */
static bool copy_out(struct sim *s)
{
	emit(s, 'H');
	for (int n = sim_byte(s->src) % 3; n > 0; n--)
		emit(s, 'd');
	if (chance(s, 15)) {
		emit(s, 'E');
		return false;
	}
	emit(s, 'c');
	emit(s, 'C');
	return true;
}

/* Runs the rest of a simple Query's statements; stops at a COPY FROM STDIN. */
static void run_statements(struct sim *s)
{
	while (s->statements_left > 0) {
		s->statements_left--;
		switch (sim_byte(s->src) % 6) {
		case 0:
			emit(s, 'T');
			rows(s);
			emit(s, 'C');
			break;
		case 1:
			emit(s, 'C');
			break;
		case 2:
			emit(s, 'I');
			break;
		case 3: /* an error ends the query string */
			emit(s, 'E');
			s->statements_left = 0;
			break;
		case 4:
			emit(s, 'G');
			s->copy = 'Q';
			return;
		case 5:
			if (!copy_out(s))
				s->statements_left = 0;
			break;
		}
	}
	ready(s);
}

/* ---- COPY FROM STDIN ---------------------------------------------------------- */

static void expect_outcome(struct sim *s, enum tracker_outcome o)
{
	if (s->n_expect < SIM_MAX_NOTED)
		s->expect[s->n_expect++] = (uint8_t)o;
}

/* The noted message being handled is finished (not while its COPY runs). */
static void finish_noted(struct sim *s)
{
	if (s->cur_noted && !s->copy)
		expect_outcome(s, s->cur_failed ? TRACKER_FAILED : TRACKER_DONE);
	if (!s->copy)
		s->cur_noted = false;
}

/* An ErrorResponse that ends a COPY FROM STDIN; why: 'f' CopyGetData read a CopyFail,
 * 'o' it read a message that is not COPY data, 'd' anything else (bad data, a
 * constraint, a trigger).  deliver_one gives the tracker its fields, or sometimes none
 * (as when only part of a long error is looked at). */
static void copy_error(struct sim *s, char why)
{
	if (chance(s, 8))
		emit_status(s, "NSA"[sim_byte(s->src) % 3], 0);
	emit_status(s, 'E', why);
}

static void copy_in_ends(struct sim *s, bool ok, char why)
{
	int by = s->copy;
	s->copy = 0;
	if (!ok) {
		s->copy_failed = true;
		copy_error(s, why);
		if (by == 'E') {
			s->skipping = true;
		} else {
			s->statements_left = 0;
			ready(s);
		}
		return;
	}
	emit(s, 'C');
	if (by == 'Q')
		run_statements(s);
}

/* A message read by COPY FROM STDIN (copyfromparse.c: CopyGetData). */
static void copy_in_read(struct sim *s, char msg)
{
	switch (msg) {
	case 'd':
		if (chance(s, 15))
			copy_in_ends(s, false, 'd'); /* bad data, a constraint, a trigger */
		break;
	case 'H':
	case 'h':
	case 'S':
		break; /* ignored inside COPY */
	case 'c':
		copy_in_ends(s, !chance(s, 10), 'd');
		break;
	default: /* CopyFail, or "unexpected message type during COPY from stdin" */
		copy_in_ends(s, false, msg == 'f' ? 'f' : 'o');
		break;
	}
}

/* COPY FROM STDIN begins; it may fail before reading anything (a trigger). */
static void copy_in_begins(struct sim *s, int by)
{
	emit(s, 'G');
	s->copy = by;
	if (chance(s, 10))
		copy_in_ends(s, false, 'd');
}

/* ---- one message, as PostgresMain handles it ------------------------------------ */

static void execute(struct sim *s)
{
	switch (sim_byte(s->src) % 6) {
	case 0:
		rows(s);
		emit(s, 'C');
		break;
	case 1:
		rows(s);
		emit(s, "Is"[sim_byte(s->src) % 2]);
		break;
	case 2:
		rows(s);
		fail(s, 'E');
		break;
	case 3:
		copy_in_begins(s, 'E');
		break;
	case 4:
		if (!copy_out(s))
			s->skipping = true;
		break;
	default:
		emit(s, 'C');
		break;
	}
}

static void handle_one(struct sim *s, char msg)
{
	if (s->copy) {
		copy_in_read(s, msg);
		return;
	}
	if (s->skipping && msg != 'S')
		return;
	if (strchr("PBspECh", msg))
		s->open = true;
	bool err = chance(s, 12);
	switch (msg) {
	case 'Q':
		s->statements_left = 1 + sim_byte(s->src) % 3;
		run_statements(s);
		break;
	case 'F':
		emit(s, err ? 'E' : 'V');
		ready(s);
		break;
	case 'S':
		s->skipping = false;
		if (err)
			emit(s, 'E'); /* COMMIT of the implicit transaction failed */
		ready(s);
		break;
	case 'P':
	case 'B':
	case 'C':
		if (err)
			fail(s, msg);
		else
			emit(s, msg == 'P' ? '1' : msg == 'B' ? '2' : '3');
		break;
	case 's':
		if (err) {
			fail(s, msg);
			break;
		}
		emit(s, 't');
		emit(s, "Tn"[sim_byte(s->src) % 2]);
		break;
	case 'p':
		if (err)
			fail(s, msg);
		else
			emit(s, "Tn"[sim_byte(s->src) % 2]);
		break;
	case 'E':
		if (err)
			fail(s, msg);
		else
			execute(s);
		break;
	case 'h':
		fail(s, msg); /* a Flush with a body: "invalid message format" */
		break;
	default:
		break; /* CopyData, CopyDone, CopyFail, Flush outside COPY: ignored */
	}
}

static void handle(struct sim *s, char msg, bool noted)
{
	if (s->copy) {
		/* Read by the COPY, which it may end: the COPY's owner is decided first, and
		 * a noted message read by COPY never runs. */
		handle_one(s, msg);
		finish_noted(s);
		if (noted)
			expect_outcome(s, TRACKER_SKIPPED);
		return;
	}
	if (noted && s->skipping && msg != 'S') {
		expect_outcome(s, TRACKER_SKIPPED);
		return;
	}
	s->cur_noted = noted;
	s->cur_failed = false;
	handle_one(s, msg);
	finish_noted(s);
}

/* ---- the driver ---------------------------------------------------------------- */

static const char client_msgs[] = "QQFPPBBspEECSSSdddcfHh";

/* What the tracker said about noted requests after a call. */
static void take_outcomes(struct sim *s)
{
	uint8_t out[TRACKER_OUTQ];
	int current;
	uint32_t n = tracker_take_outcomes(&s->tracker, out, &current);
	if (s->tracker.lost)
		return;
	for (uint32_t i = 0; i < n && s->n_got < SIM_MAX_NOTED; i++)
		s->got[s->n_got++] = out[i];
}

static void send_one(struct sim *s)
{
	char msg = client_msgs[sim_byte(s->src) % (sizeof(client_msgs) - 1)];
	if (s->in_len == SIM_MAX_IN)
		return;
	/* The relay notes requests it rewrote or injected (never Sync or COPY messages). */
	bool noted = strchr("QFPBspEC", msg) && chance(s, 30) && s->n_noted < SIM_MAX_NOTED;
	s->n_noted += noted;
	s->in_noted[(s->in_head + s->in_len) % SIM_MAX_IN] = noted;
	s->in[(s->in_head + s->in_len++) % SIM_MAX_IN] = msg;
	s->sent++;
	char type = msg;
	uint8_t body[1] = {0};
	size_t len = 0;
	if (msg == 's' || msg == 'p') {
		type = 'D';
		body[0] = msg == 's' ? 'S' : 'P';
		len = 1;
	} else if (msg == 'h') {
		type = 'H';
		len = 1;
	}
	if (getenv("SIM_TRACE"))
		fprintf(stderr, ">%c ", msg);
	int flags = noted ? (chance(s, 50) ? TRACKER_HIDDEN : TRACKER_NOTED) : 0;
	if (tracker_client_ex(&s->tracker, type, body, len, flags) != TRACKER_OK)
		s->failure = "tracker refused a client message";
	take_outcomes(s);
}

static void backend_one(struct sim *s)
{
	char msg = s->in[s->in_head];
	bool noted = s->in_noted[s->in_head];
	s->in_head = (s->in_head + 1) % SIM_MAX_IN;
	s->in_len--;
	handle(s, msg, noted);
}

static void deliver_one(struct sim *s)
{
	char type = s->out[s->out_head];
	uint8_t status = (uint8_t)s->out_status[s->out_head];
	s->out_head = (s->out_head + 1) % SIM_MAX_OUT;
	s->out_len--;
	bool z = type == 'Z';
	if (getenv("SIM_TRACE"))
		fprintf(stderr, "<%c%c ", type, z || status ? status : ' ');
	/* A COPY's error with the fields PostgreSQL gives it (routine, SQLSTATE), most of
	 * the time. */
	static const uint8_t copy_fail[] =
		"SERROR\0C57014\0MCOPY from stdin failed\0RCopyGetData\0",
			     other[] = "SERROR\0C08P01\0Munexpected message type\0RCopyGetData\0",
			     data[] = "SERROR\0C22P02\0Minvalid input syntax\0RInputFunctionCall\0";
	const uint8_t *body = z ? &status : NULL;
	size_t len = z ? 1 : 0;
	if (type == 'E' && status && chance(s, 75)) {
		body = status == 'f' ? copy_fail : status == 'o' ? other : data;
		len = status == 'f'   ? sizeof(copy_fail)
		      : status == 'o' ? sizeof(other)
				      : sizeof(data);
	}
	if (tracker_server(&s->tracker, type, body, len) != TRACKER_OK)
		s->failure = s->tracker.why ? s->tracker.why : "tracker out of step";
	take_outcomes(s);
}

/* Nothing sent is unread, nothing said is undelivered, and the backend waits for a
 * query outside any COPY, skip or implicit transaction. */
static bool backend_done(const struct sim *s)
{
	return s->in_len == 0 && s->out_len == 0 && !s->copy && !s->skipping && !s->open;
}

/* What the tracker may call settled: the backend owes nothing and will owe nothing for
 * what it has yet to read (CopyData, CopyDone, CopyFail, Flush: ignored outside COPY). */
static bool backend_owes_nothing(const struct sim *s)
{
	if (s->out_len || s->copy || s->skipping || s->open)
		return false;
	for (size_t i = 0; i < s->in_len; i++)
		if (!strchr("dcfH", s->in[(s->in_head + i) % SIM_MAX_IN]))
			return false;
	return true;
}

/* Each outcome the tracker reported is the one the backend gave that request. */
static void check_outcomes(struct sim *s)
{
	if (s->tracker.lost)
		return; /* failed closed: the relay ends the client, no outcome is used */
	int n = s->n_got < s->n_expect ? s->n_got : s->n_expect;
	for (int i = 0; i < n; i++)
		if (s->got[i] != s->expect[i]) {
			static char why[96];
			snprintf(why, sizeof(why),
				 "noted request %d: tracker says outcome %d, backend did %d", i,
				 s->got[i], s->expect[i]);
			s->failure = why;
			return;
		}
}

static void check(struct sim *s)
{
	check_outcomes(s);
	if (s->failure)
		return;
	bool settled = tracker_settled(&s->tracker);
	if (settled && !backend_owes_nothing(s))
		s->failure = "tracker settled while the backend still owes replies";
	/* Liveness: once the backend is done, the tracker must say so, unless a COPY
	 * failed (then it may keep several readings, or give up and fail closed), or more
	 * noted requests were decided at once than it keeps (it fails closed). */
	else if (!settled && backend_done(s) && !s->copy_failed && s->sent > 0 &&
		 !(s->tracker.lost && strstr(s->tracker.why, "outcome")))
		s->failure = "backend done but the tracker is not settled";
}

bool sim_step(struct sim *s, int max_messages)
{
	if (s->failure)
		return false;
	uint8_t b = sim_byte(s->src);
	if (s->src->data && s->src->pos >= s->src->len)
		return false;
	switch (b % 3) {
	case 0:
		if (s->sent < max_messages)
			send_one(s);
		break;
	case 1:
		if (s->in_len)
			backend_one(s);
		break;
	default:
		if (s->out_len)
			deliver_one(s);
		break;
	}
	check(s);
	return !s->failure && (s->sent < max_messages || s->in_len || s->out_len);
}

const char *sim_run(struct sim *s, int max_messages)
{
	for (int i = 0; i < 100000 && sim_step(s, max_messages); i++)
		;
	/* Drain: the backend reads everything, every reply arrives. */
	while (!s->failure && (s->in_len || s->out_len)) {
		if (s->in_len)
			backend_one(s);
		else
			deliver_one(s);
		check(s);
	}
	/* Every noted request has its outcome, unless the tracker failed closed, a COPY it
	 * started still runs, or readings of a failed COPY still disagree on it. */
	if (!s->failure && !s->tracker.lost && s->tracker.n_hyp == 1 &&
	    (s->n_got != s->n_expect || (!s->copy && s->n_expect != s->n_noted)))
		s->failure = "a noted request got no outcome";
	return s->failure;
}
