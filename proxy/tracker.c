#include "proxy/tracker.h"

#include <stdlib.h>
#include <string.h>

/* A request the backend has yet to answer (one byte each in a reading's ring). */
enum req {
	REQ_QUERY = 1,
	REQ_FUNC,
	REQ_PARSE,
	REQ_BIND,
	REQ_DESC_STMT, /* Describe 'S': ParameterDescription, then RowDescription/NoData */
	REQ_DESC_PORTAL,
	REQ_EXEC,
	REQ_CLOSE,
	REQ_SYNC,
	/* A Flush with a body: ignored inside COPY, an error (and skip to Sync) outside. */
	REQ_BAD_FLUSH,
	/* CopyDone / CopyFail: end a COPY FROM STDIN, ignored anywhere else. */
	REQ_COPY_DONE,
	REQ_COPY_FAIL,
};

/* A request whose outcome the relay asked for (tracker_client_noted), and one whose
 * replies the client never sees as they are (TRACKER_HIDDEN): bits beside the kind, so
 * the ring stays one byte a request. */
#define REQ_NOTED 0x80
#define REQ_HIDDEN 0x40
/* CopyData was sent after this request (before the next): a COPY FROM STDIN may run
 * through it (tracker_copy_in_doubt). */
#define REQ_DATA_AFTER 0x20
#define REQ_KIND 0x1f

/* Where the head request's COPY is. */
enum copy_state { COPY_NONE, COPY_IN, COPY_OUT, COPY_OUT_DONE };

/* ---- a reading's ring of requests --------------------------------------------- */

static void hyp_init(struct tracker_hyp *h)
{
	memset(h, 0, sizeof(*h));
	h->head_at = -1;
	h->q = h->inline_q;
	h->cap = TRACKER_INLINE;
}

static void hyp_free(struct tracker_hyp *h)
{
	if (h->q != h->inline_q)
		free(h->q);
	hyp_init(h);
}

/* The i-th request as stored: its kind, with REQ_NOTED when the relay wants its outcome. */
static uint8_t raw_at(const struct tracker_hyp *h, uint32_t i)
{
	return h->q[(h->head + i) & (h->cap - 1)];
}

static uint8_t at(const struct tracker_hyp *h, uint32_t i)
{
	return raw_at(h, i) & REQ_KIND;
}

static bool grow(struct tracker_hyp *h)
{
	uint32_t cap = h->cap * 2;
	uint8_t *q = malloc(cap);
	if (!q)
		return false;
	for (uint32_t i = 0; i < h->len; i++)
		q[i] = raw_at(h, i);
	if (h->q != h->inline_q)
		free(h->q);
	h->q = q;
	h->cap = cap;
	h->head = 0;
	return true;
}

static enum tracker_result push(struct tracker_hyp *h, uint8_t r)
{
	if (h->len >= TRACKER_MAX_PENDING)
		return TRACKER_TOO_MANY;
	if (h->len == h->cap && !grow(h))
		return TRACKER_NO_MEMORY;
	h->q[(h->head + h->len) & (h->cap - 1)] = r;
	h->len++;
	return TRACKER_OK;
}

static void pop(struct tracker_hyp *h)
{
	h->head = (h->head + 1) & (h->cap - 1);
	h->len--;
}

/* A noted request was decided; head: by the server message being applied. */
static void record(struct tracker_hyp *h, enum tracker_outcome o, bool head)
{
	if (h->outq_len == TRACKER_OUTQ) {
		h->outq_over = true; /* tracker_server / tracker_client fail closed */
		return;
	}
	if (head)
		h->head_at = (int8_t)h->outq_len;
	h->outq[h->outq_len++] = (uint8_t)o;
}

/* The front request never ran (skipped after an error, or swallowed by a COPY). */
static void drop_front(struct tracker_hyp *h)
{
	if (raw_at(h, 0) & REQ_NOTED)
		record(h, TRACKER_SKIPPED, false);
	pop(h);
}

/* Removes the n requests after the head (what a COPY swallowed). */
static void remove_after_head(struct tracker_hyp *h, uint32_t n)
{
	uint8_t first = raw_at(h, 0);
	pop(h);
	for (uint32_t i = 0; i < n; i++)
		drop_front(h);
	h->head = (h->head + h->cap - 1) & (h->cap - 1);
	h->q[h->head] = first;
	h->len++;
}

static bool hyp_copy(struct tracker_hyp *dst, const struct tracker_hyp *src)
{
	hyp_init(dst);
	uint8_t *q = dst->inline_q;
	if (src->cap > TRACKER_INLINE && !(q = malloc(src->cap)))
		return false;
	*dst = *src;
	dst->q = q;
	dst->head = 0;
	for (uint32_t i = 0; i < src->len; i++)
		q[i] = raw_at(src, i);
	return true;
}

static bool hyp_equal(const struct tracker_hyp *a, const struct tracker_hyp *b)
{
	if (a->len != b->len || a->copy != b->copy || a->described != b->described ||
	    a->skipping != b->skipping || a->open != b->open || a->head_failed != b->head_failed ||
	    a->outq_len != b->outq_len || memcmp(a->outq, b->outq, a->outq_len) != 0)
		return false;
	for (uint32_t i = 0; i < a->len; i++)
		if (raw_at(a, i) != raw_at(b, i))
			return false;
	return true;
}

/* ---- the backend's answers, one reading ----------------------------------------- */

static bool is_copy_end(uint8_t r)
{
	return r == REQ_COPY_DONE || r == REQ_COPY_FAIL;
}

static bool is_extended(uint8_t r)
{
	return r == REQ_PARSE || r == REQ_BIND || r == REQ_DESC_STMT || r == REQ_DESC_PORTAL ||
	       r == REQ_EXEC || r == REQ_CLOSE || r == REQ_BAD_FLUSH;
}

/* CopyDone/CopyFail that reach the front outside COPY are ignored by the backend (and a
 * request a failed COPY read as its end, noted skipped now: consumed_by_copy). */
static void drop_ignored(struct tracker_hyp *h)
{
	while (h->len && h->copy == COPY_NONE && is_copy_end(at(h, 0)))
		drop_front(h);
}

/* The head request is fully answered. */
static void complete(struct tracker_hyp *h)
{
	uint8_t raw = raw_at(h, 0), r = raw & REQ_KIND;
	if (raw & REQ_NOTED)
		record(h, TRACKER_DONE, true);
	pop(h);
	h->described = false;
	if (is_extended(r))
		h->open = true;
	drop_ignored(h);
}

/* An ErrorResponse answers the head request outside COPY. */
static void request_failed(struct tracker_hyp *h)
{
	uint8_t r = at(h, 0);
	if (!is_extended(r)) {
		h->head_failed = true; /* Query, FunctionCall, Sync: ReadyForQuery follows */
		return;
	}
	/* PostgreSQL discards every message up to the next Sync. */
	h->described = false;
	h->open = true;
	if (raw_at(h, 0) & REQ_NOTED)
		record(h, TRACKER_FAILED, true);
	pop(h);
	while (h->len && at(h, 0) != REQ_SYNC)
		drop_front(h);
	if (!h->len)
		h->skipping = true;
}

/* CommandComplete of COPY FROM STDIN: the backend read up to the first CopyDone. */
static const char *copy_in_done(struct tracker_hyp *h)
{
	uint32_t i = 1;
	while (i < h->len && (at(h, i) == REQ_SYNC || at(h, i) == REQ_BAD_FLUSH))
		i++;
	if (i >= h->len || at(h, i) != REQ_COPY_DONE)
		return "server ended COPY FROM STDIN before the client's CopyDone";
	remove_after_head(h, i);
	h->copy = COPY_NONE;
	if (at(h, 0) == REQ_EXEC)
		complete(h);
	return NULL;
}

static const char *answer_in_copy(struct tracker_hyp *h, char type)
{
	switch (h->copy) {
	case COPY_IN:
		if (type == 'C')
			return copy_in_done(h);
		return "unexpected server message during COPY FROM STDIN";
	case COPY_OUT:
		if (type == 'd')
			return NULL;
		if (type == 'c') {
			h->copy = COPY_OUT_DONE;
			return NULL;
		}
		break;
	case COPY_OUT_DONE:
		if (type == 'C') {
			h->copy = COPY_NONE;
			if (at(h, 0) == REQ_EXEC)
				complete(h);
			return NULL;
		}
		break;
	}
	if (type == 'E') {
		h->copy = COPY_NONE;
		request_failed(h);
		return NULL;
	}
	return "unexpected server message during COPY TO STDOUT";
}

/* ReadyForQuery answers Query, FunctionCall and Sync. */
static const char *ready(struct tracker_hyp *h)
{
	if (raw_at(h, 0) & REQ_NOTED)
		record(h, h->head_failed ? TRACKER_FAILED : TRACKER_DONE, true);
	h->head_failed = false;
	pop(h);
	h->open = false;
	h->described = false;
	drop_ignored(h);
	return NULL;
}

static const char *start_copy(struct tracker_hyp *h, char type)
{
	h->copy = type == 'G' ? COPY_IN : COPY_OUT;
	return NULL;
}

/* A reply to the head request, outside COPY (ErrorResponse is handled by the caller). */
static const char *answer(struct tracker_hyp *h, char type)
{
	uint8_t r = at(h, 0);
	switch (r) {
	case REQ_QUERY:
		if (type == 'T' || type == 'D' || type == 'C' || type == 'I')
			return NULL;
		if (type == 'G' || type == 'H')
			return start_copy(h, type);
		if (type == 'Z')
			return ready(h);
		break;
	case REQ_FUNC:
		if (type == 'V')
			return NULL;
		if (type == 'Z')
			return ready(h);
		break;
	case REQ_SYNC:
		if (type == 'Z')
			return ready(h);
		break;
	case REQ_EXEC:
		if (type == 'D')
			return NULL;
		if (type == 'C' || type == 'I' || type == 's') {
			complete(h);
			return NULL;
		}
		if (type == 'G' || type == 'H')
			return start_copy(h, type);
		break;
	case REQ_DESC_STMT:
		if (type == 't' && !h->described) {
			h->described = true;
			return NULL;
		}
		if ((type == 'T' || type == 'n') && h->described) {
			complete(h);
			return NULL;
		}
		break;
	case REQ_DESC_PORTAL:
		if (type == 'T' || type == 'n') {
			complete(h);
			return NULL;
		}
		break;
	case REQ_PARSE:
	case REQ_BIND:
	case REQ_CLOSE:
		if (type == (r == REQ_PARSE ? '1' : r == REQ_BIND ? '2' : '3')) {
			complete(h);
			return NULL;
		}
		break;
	default:
		break;
	}
	return "server reply does not answer the request in flight";
}

/* ---- the tracker ---------------------------------------------------------------- */

void tracker_init(struct tracker *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < TRACKER_MAX_HYP; i++)
		hyp_init(&t->hyp[i]);
	t->n_hyp = 1;
	t->tx_status = 'I';
}

void tracker_free(struct tracker *t)
{
	for (int i = 0; i < TRACKER_MAX_HYP; i++)
		hyp_free(&t->hyp[i]);
}

void tracker_reset(struct tracker *t)
{
	/* The first reading keeps its (grown) ring; extra readings are freed.  Slots past
	 * n_hyp are always as hyp_init left them (drop_hyp and hyp_free re-init them). */
	for (int i = 1; i < t->n_hyp; i++)
		hyp_free(&t->hyp[i]);
	struct tracker_hyp *h = &t->hyp[0];
	h->head = h->len = 0;
	h->copy = COPY_NONE;
	h->described = h->skipping = h->open = h->head_failed = false;
	h->outq_len = 0;
	h->outq_over = false;
	h->head_at = -1;
	t->n_hyp = 1;
	t->tx_status = 'I';
	t->lost = false;
	t->why = NULL;
}

/* What a client message asks of the backend; 0 for messages it never answers. */
static uint8_t request_of(char type, const uint8_t *body, size_t len)
{
	switch (type) {
	case 'Q':
		return REQ_QUERY;
	case 'F':
		return REQ_FUNC;
	case 'P':
		return REQ_PARSE;
	case 'B':
		return REQ_BIND;
	case 'E':
		return REQ_EXEC;
	case 'C':
		return REQ_CLOSE;
	case 'S':
		return REQ_SYNC; /* with a body too: ErrorResponse, then ReadyForQuery */
	case 'c':
		return REQ_COPY_DONE;
	case 'f':
		return REQ_COPY_FAIL;
	case 'D':
		return body && len >= 1 && body[0] == 'S' ? REQ_DESC_STMT : REQ_DESC_PORTAL;
	case 'H':
		return len ? REQ_BAD_FLUSH : 0;
	default:
		/* CopyData, Flush: never answered.  Terminate is the relay's.  An unknown type
		 * makes PostgreSQL end the connection (FATAL), which needs no slot. */
		return 0;
	}
}

static enum tracker_result hyp_client(struct tracker_hyp *h, uint8_t r)
{
	if (h->skipping) {
		if ((r & REQ_KIND) != REQ_SYNC) {
			if (r & REQ_NOTED)
				record(h, TRACKER_SKIPPED, false);
			return TRACKER_OK; /* discarded by the backend */
		}
		h->skipping = false;
	}
	if (is_copy_end(r) && h->len == 0)
		return TRACKER_OK; /* nothing that could be a COPY is in flight */
	return push(h, r);
}

/* With several readings, outcomes are reported only when every reading has the same. */
static void check_outcomes_agree(struct tracker *t)
{
	/* Readings can reach the same state through different outcomes of a noted request
	 * (the failed COPY's error was one request's, or an earlier one's and that request
	 * was skipped), so waiting for them to agree could report the wrong one: any
	 * difference fails closed. */
	for (int i = 0; i < t->n_hyp; i++) {
		const struct tracker_hyp *a = &t->hyp[0], *b = &t->hyp[i];
		if (b->outq_over || a->outq_len != b->outq_len ||
		    memcmp(a->outq, b->outq, a->outq_len) != 0 || a->head_at != b->head_at) {
			t->lost = true;
			t->why = "a request corral tracks has more than one possible outcome";
			return;
		}
	}
}

/* With several readings, a server message that one of them would give to a hidden
 * request: the relay could not tell whether to pass it on.  Fails closed. */
static bool hidden_head(const struct tracker *t)
{
	for (int i = 0; i < t->n_hyp; i++)
		if (t->hyp[i].len && (raw_at(&t->hyp[i], 0) & REQ_HIDDEN))
			return true;
	return false;
}

static void clear_head_marks(struct tracker *t)
{
	for (int i = 0; i < t->n_hyp; i++)
		t->hyp[i].head_at = -1;
}

enum tracker_result tracker_client_ex(struct tracker *t, char type, const uint8_t *body, size_t len,
				      int flags)
{
	if (t->lost)
		return TRACKER_OK;
	if (type == 'd') {
		/* Never answered; marks the last request in flight (a client sends COPY data
		 * only where it expects a COPY to read it). */
		for (int i = 0; i < t->n_hyp; i++) {
			struct tracker_hyp *h = &t->hyp[i];
			if (h->len)
				h->q[(h->head + h->len - 1) & (h->cap - 1)] |= REQ_DATA_AFTER;
		}
		return TRACKER_OK;
	}
	uint8_t r = request_of(type, body, len);
	if (!r)
		return TRACKER_OK;
	if (flags & TRACKER_NOTED)
		r |= REQ_NOTED;
	if (flags & TRACKER_HIDDEN)
		r |= REQ_NOTED | REQ_HIDDEN;
	clear_head_marks(t);
	for (int i = 0; i < t->n_hyp; i++) {
		enum tracker_result res = hyp_client(&t->hyp[i], r);
		if (res != TRACKER_OK) {
			t->lost = true;
			t->why = res == TRACKER_TOO_MANY ? "too many requests in flight"
							 : "out of memory";
			return res;
		}
	}
	if (t->n_hyp > 1 || t->hyp[0].outq_over)
		check_outcomes_agree(t);
	return TRACKER_OK;
}

/* Drops reading i (the last one moves into its place). */
static void drop_hyp(struct tracker *t, int i)
{
	int last = t->n_hyp - 1;
	hyp_free(&t->hyp[i]);
	if (i != last) {
		t->hyp[i] = t->hyp[last];
		if (t->hyp[last].q == t->hyp[last].inline_q)
			t->hyp[i].q = t->hyp[i].inline_q;
		hyp_init(&t->hyp[last]);
	}
	t->n_hyp--;
}

/*
 * What an ErrorResponse that ends a COPY FROM STDIN says about how far the backend read.
 * CopyGetData (copyfromparse.c), the function that reads the client's COPY messages,
 * raises two errors about the message it has just read: 57014 "COPY from stdin failed"
 * for a CopyFail, 08P01 "unexpected message type" for a message that is not COPY data.
 * Either way every message before that one was read inside the COPY (Syncs and Flushes
 * swallowed), so the count is known.  Any other error (bad data, a constraint, a
 * trigger, a cancel) may come before the backend has read what the client sent, but
 * never after it read a message that is not COPY data (CopyGetData raises at once): that
 * message was not read by the COPY.  The routine (field R) and SQLSTATE (field C) are
 * never translated.  Without them (no body, or only its first part) nothing is known.
 */
enum copy_err { COPY_ERR_UNKNOWN, COPY_ERR_DATA, COPY_ERR_COPY_FAIL, COPY_ERR_OTHER_MSG };

/* Field code's value in an ErrorResponse body of len bytes (maybe only its first part:
 * a field cut short is not found), or NULL. */
static const char *error_field(const uint8_t *body, size_t len, char code)
{
	size_t i = 0;
	while (body && i < len && body[i] != 0) {
		char field = (char)body[i++];
		const uint8_t *end = memchr(body + i, 0, len - i);
		if (!end)
			return NULL;
		if (field == code)
			return (const char *)body + i;
		i = (size_t)(end - body) + 1;
	}
	return NULL;
}

/*
 * A failed COPY FROM STDIN at the head swallowed the n Syncs (and bad Flushes) after it,
 * and, if other, read the request after them as its end (it never runs).  That request
 * stays in its place as an ignored COPY end, so its outcome (skipped) is reported after
 * the head's (a Query's comes only with its ReadyForQuery): outcomes go in the order of
 * the requests.
 */
static void consumed_by_copy(struct tracker_hyp *h, uint32_t n, bool other)
{
	remove_after_head(h, n);
	if (other) {
		uint32_t i = (h->head + 1) & (h->cap - 1);
		h->q[i] = (uint8_t)((h->q[i] & ~REQ_KIND) | REQ_COPY_FAIL);
	}
}

static enum copy_err copy_err_of(const uint8_t *body, size_t len)
{
	const char *routine = error_field(body, len, 'R');
	const char *code = error_field(body, len, 'C');
	if (!routine || !code)
		return COPY_ERR_UNKNOWN;
	if (strcmp(routine, "CopyGetData") != 0)
		return COPY_ERR_DATA;
	if (strcmp(code, "57014") == 0)
		return COPY_ERR_COPY_FAIL;
	if (strcmp(code, "08P01") == 0)
		return COPY_ERR_OTHER_MSG;
	return COPY_ERR_UNKNOWN; /* (the client's connection failed: it ends anyway) */
}

/*
 * An error ended a COPY FROM STDIN: the backend swallowed some of the Syncs (and bad
 * Flushes) the client sent after the COPY began, and maybe the one other request after
 * them (which then caused the error).  Each count is a reading; readings that come out
 * the same are kept once.  An error CopyGetData raised for the message it read (err)
 * leaves one count.  Returns NULL, or why this reading cannot be (the error names a
 * message the client did not send there); *overflow: more readings than the tracker
 * keeps.
 */
static const char *copy_in_failed(struct tracker *t, int i, enum copy_err err, bool *overflow)
{
	struct tracker_hyp *h = &t->hyp[i];
	uint32_t n = 0;
	while (1 + n < h->len && (at(h, 1 + n) == REQ_SYNC || at(h, 1 + n) == REQ_BAD_FLUSH))
		n++;
	bool other = 1 + n < h->len && !is_copy_end(at(h, 1 + n));
	if (err == COPY_ERR_COPY_FAIL || err == COPY_ERR_OTHER_MSG) {
		/* The message after the swallowed ones is the one the error is about. */
		bool fail = 1 + n < h->len && at(h, 1 + n) == REQ_COPY_FAIL;
		if (err == COPY_ERR_COPY_FAIL ? !fail : !other)
			return "COPY ended by a message the client did not send there";
		/* The CopyFail stays: outside COPY it is ignored (drop_ignored); the other
		 * message was read by the COPY, never run. */
		consumed_by_copy(h, n, other);
		h->copy = COPY_NONE;
		request_failed(h);
		return NULL;
	}
	/* An error not about the message after the Syncs: that message was not read. */
	uint32_t ways = n + 1 + (other && err == COPY_ERR_UNKNOWN ? 1 : 0);
	struct tracker_hyp base;
	if (!hyp_copy(&base, h)) {
		*overflow = true;
		return NULL;
	}
	bool ok = true;
	for (uint32_t k = 0; k < ways && ok; k++) {
		struct tracker_hyp *dst = h;
		if (k > 0) {
			if (t->n_hyp >= TRACKER_MAX_HYP) {
				ok = false;
				break;
			}
			dst = &t->hyp[t->n_hyp];
			if (!hyp_copy(dst, &base)) {
				ok = false;
				break;
			}
			t->n_hyp++;
		}
		consumed_by_copy(dst, k > n ? n : k, k > n);
		dst->copy = COPY_NONE;
		request_failed(dst);
	}
	hyp_free(&base);
	*overflow = !ok;
	return NULL;
}

static void dedupe(struct tracker *t)
{
	for (int i = 1; i < t->n_hyp; i++)
		for (int j = 0; j < i; j++)
			if (hyp_equal(&t->hyp[i], &t->hyp[j])) {
				drop_hyp(t, i--);
				break;
			}
}

/* Applies one server message to reading i: NULL, or why the message cannot belong
 * to it.  *overflow: the reading split into more than TRACKER_MAX_HYP. */
static const char *hyp_server(struct tracker *t, int i, char type, enum copy_err err,
			      bool *overflow)
{
	struct tracker_hyp *h = &t->hyp[i];
	if (type == 'N' || type == 'A' || type == 'S')
		return NULL; /* notices, notifications, ParameterStatus: any time */
	if (h->len == 0)
		return type == 'Z' ? "ReadyForQuery with nothing outstanding"
				   : "server message with nothing outstanding";
	if (h->copy == COPY_IN && type == 'E')
		return copy_in_failed(t, i, err, overflow);
	if (h->copy != COPY_NONE)
		return answer_in_copy(h, type);
	if (type == 'E') {
		request_failed(h);
		return NULL;
	}
	return answer(h, type);
}

enum tracker_result tracker_server(struct tracker *t, char type, const uint8_t *body, size_t len)
{
	if (t->lost)
		return TRACKER_OK;
	/* The rows of a simple query (RowDescription, DataRow, CommandComplete) are most
	 * of what a server says, and change nothing: answered without the general path. */
	if (t->n_hyp == 1 && (type == 'D' || type == 'T' || type == 'C')) {
		const struct tracker_hyp *h = &t->hyp[0];
		if (h->len && h->copy == COPY_NONE && at(h, 0) == REQ_QUERY)
			return TRACKER_OK;
	}
	const char *why = NULL;
	clear_head_marks(t);
	if (type == 'Z') {
		if (!body || len != 1) {
			why = "malformed ReadyForQuery";
			goto out_of_step;
		}
		t->tx_status = (char)body[0];
	}
	if (t->n_hyp == 1 && !(t->hyp[0].copy == COPY_IN && type == 'E')) {
		/* One reading, nothing to split: the common case, without the bookkeeping. */
		why = hyp_server(t, 0, type, COPY_ERR_UNKNOWN, &(bool){false});
		if (why)
			goto out_of_step;
		if (t->hyp[0].outq_over)
			check_outcomes_agree(t);
		return TRACKER_OK;
	}
	if (type != 'N' && type != 'A' && type != 'S' && hidden_head(t)) {
		t->lost = true;
		t->why = "a reply corral must hide could answer more than one request";
		return TRACKER_OK;
	}
	/* Readings added by a failed COPY are appended already answered; only the ones
	 * there before are asked. */
	bool bad[TRACKER_MAX_HYP] = {false};
	int asked = t->n_hyp;
	enum copy_err err = type == 'E' ? copy_err_of(body, len) : COPY_ERR_UNKNOWN;
	for (int i = 0; i < asked; i++) {
		bool overflow = false;
		const char *w = hyp_server(t, i, type, err, &overflow);
		if (overflow) {
			/* Fail closed: the server stays with this client and is never reused. */
			t->lost = true;
			t->why = "too many possible states after a failed COPY";
			return TRACKER_OK;
		}
		if (w) {
			bad[i] = true;
			if (!why)
				why = w;
		}
	}
	/* From the top down, so the reading that moves into a dropped one's place has been
	 * looked at. */
	for (int i = t->n_hyp - 1; i >= 0; i--)
		if (i < asked && bad[i])
			drop_hyp(t, i);
	if (t->n_hyp == 0)
		goto out_of_step;
	check_outcomes_agree(t); /* also a single reading's overflow */
	if (t->n_hyp > 1)
		dedupe(t);
	return TRACKER_OK;

out_of_step:
	t->lost = true;
	t->why = why;
	return TRACKER_OUT_OF_STEP;
}

bool tracker_settled_slow(const struct tracker *t)
{
	if (t->lost || t->n_hyp == 0)
		return false;
	for (int i = 0; i < t->n_hyp; i++) {
		const struct tracker_hyp *h = &t->hyp[i];
		if (h->len || h->skipping || h->open || h->copy != COPY_NONE)
			return false;
	}
	return true;
}

bool tracker_will_settle(const struct tracker *t)
{
	if (t->lost || t->n_hyp != 1 || t->hyp[0].copy != COPY_NONE || !t->hyp[0].len)
		return false;
	const struct tracker_hyp *h = &t->hyp[0];
	uint8_t last = at(h, h->len - 1);
	return last == REQ_QUERY || last == REQ_FUNC || last == REQ_SYNC;
}

bool tracker_in_copy(const struct tracker *t)
{
	for (int i = 0; i < t->n_hyp; i++)
		if (t->hyp[i].copy != COPY_NONE)
			return true;
	return false;
}

bool tracker_copy_in_doubt(const struct tracker *t)
{
	if (t->n_hyp > 1)
		return true;
	if (t->lost)
		return false; /* nothing is injected any more */
	const struct tracker_hyp *h = &t->hyp[0];
	/* A running COPY FROM STDIN: the next message is its end, or it is in doubt. */
	if (h->copy == COPY_IN && (h->len < 2 || !is_copy_end(at(h, 1))))
		return true;
	/* A CopyDone / CopyFail not right after a Query or Execute (or another end, then
	 * ignored): if a COPY runs up to it, what lies between may or may not be read by
	 * it.  (Clients send CopyDone / CopyFail only for a COPY, so one is a sign of it.)
	 * And a Sync (or bad Flush) with COPY data after it, a sign as good (libpq's
	 * extended COPY: Execute, Sync, data): if the data fails, how many such Syncs the
	 * COPY swallowed is not known. */
	for (uint32_t j = 0; j < h->len; j++) {
		uint8_t raw = raw_at(h, j), r = raw & REQ_KIND;
		if ((r == REQ_SYNC || r == REQ_BAD_FLUSH) && (raw & REQ_DATA_AFTER))
			return true;
		if (j == 0)
			continue;
		uint8_t p = at(h, j - 1);
		if (is_copy_end(r) && p != REQ_QUERY && p != REQ_EXEC && !is_copy_end(p))
			return true;
	}
	return false;
}

bool tracker_hidden_will_answer(const struct tracker *t)
{
	if (t->lost || t->n_hyp != 1)
		return false;
	const struct tracker_hyp *h = &t->hyp[0];
	uint32_t last = h->len;
	for (uint32_t i = 0; i < h->len; i++)
		if (raw_at(h, i) & REQ_HIDDEN)
			last = i;
	if (last == h->len)
		return false; /* none in flight: nothing to wait for */
	for (uint32_t i = last + 1; i < h->len; i++) {
		uint8_t r = at(h, i);
		if (r == REQ_SYNC || r == REQ_QUERY || r == REQ_FUNC)
			return true;
	}
	return false;
}

uint32_t tracker_take_outcomes(struct tracker *t, uint8_t out[TRACKER_OUTQ], int *current)
{
	/* What every reading says, from the front. */
	uint32_t n = t->hyp[0].outq_len;
	for (int i = 1; i < t->n_hyp; i++) {
		const struct tracker_hyp *b = &t->hyp[i];
		uint32_t k = 0;
		while (k < n && k < b->outq_len && b->outq[k] == t->hyp[0].outq[k])
			k++;
		n = k;
	}
	memcpy(out, t->hyp[0].outq, n);
	*current = t->hyp[0].head_at >= 0 && (uint32_t)t->hyp[0].head_at < n ? t->hyp[0].head_at
									     : -1;
	for (int i = 0; i < t->n_hyp; i++) {
		struct tracker_hyp *h = &t->hyp[i];
		memmove(h->outq, h->outq + n, h->outq_len - n);
		h->outq_len = (uint8_t)(h->outq_len - n);
		h->head_at = -1;
	}
	return n;
}

bool tracker_head_noted(const struct tracker *t)
{
	const struct tracker_hyp *h = &t->hyp[0];
	return t->n_hyp == 1 && !t->lost && h->len && (raw_at(h, 0) & REQ_NOTED);
}

uint32_t tracker_pending(const struct tracker *t)
{
	return t->n_hyp ? t->hyp[0].len : 0;
}
