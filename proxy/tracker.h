/*
 * The protocol tracker: what a PostgreSQL backend still owes its client, derived from
 * the two byte streams alone.  It decides whether a server connection may go back to
 * its pool, and it is the only thing that decides it.
 *
 * The model is PostgreSQL's own (postgres.c, copyfromparse.c): the backend takes the
 * client's messages in order; each request (Query, Parse, Bind, Describe, Execute,
 * Close, Sync, FunctionCall) is answered in order; an error in an extended-protocol
 * message makes the backend skip everything up to the next Sync; COPY FROM STDIN
 * swallows CopyData, Flush and Sync until CopyDone or CopyFail, and ends on any other
 * message with an error.  CopyData/CopyDone/CopyFail outside COPY and Flush are never
 * answered.  Notices, notifications and ParameterStatus may come at any time.
 *
 * The server decides when a COPY ends, and an error may end it before the backend
 * has read what the client already sent: how many of those Syncs it swallowed is not
 * in the byte stream.  The tracker then keeps every reading that could be true (a
 * few hypotheses), drops each one a later reply contradicts, and calls the server
 * settled only when all of them agree.  Too many readings, or none left, and it fails
 * closed: the connection is never reused.
 *
 * A request may be noted (TRACKER_NOTED): the relay that injects or rewrites
 * messages (prepared statements, proxy/prepared.h) learns what became of it, in the
 * order the backend decided: done, failed, or skipped (never run: after an error the
 * backend skips to Sync).  With several readings an outcome is reported once they
 * agree; a reply that could belong to a hidden request (TRACKER_HIDDEN) while readings
 * differ makes the tracker fail closed.
 *
 * Pure: message types and the few body bytes it needs in, facts out.  No I/O.
 */
#ifndef CORRAL_PROXY_TRACKER_H
#define CORRAL_PROXY_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Readings kept at once (a COPY that fails with k Syncs after it needs k + 1). */
#define TRACKER_MAX_HYP 4
/* Requests in flight at once; past it the client is refused (a bound on memory). */
#define TRACKER_MAX_PENDING (1u << 20)
/* Outcomes of noted requests a reading keeps until they are taken; more decided at once
 * (an error skipping a longer pipeline of them) fails closed. */
#define TRACKER_OUTQ 64
/* Requests kept without allocating (most links have a handful in flight). */
#define TRACKER_INLINE 16 /* a power of two, as every ring size */

enum tracker_result {
	TRACKER_OK,
	TRACKER_OUT_OF_STEP, /* the stream contradicts the model: close the server */
	TRACKER_TOO_MANY,    /* TRACKER_MAX_PENDING requests in flight */
	TRACKER_NO_MEMORY,
};

/* What became of a noted request. */
enum tracker_outcome {
	TRACKER_NONE,
	TRACKER_DONE,    /* answered without an error (a Query: no ErrorResponse before 'Z') */
	TRACKER_FAILED,  /* answered by an ErrorResponse */
	TRACKER_SKIPPED, /* never ran: discarded after an earlier error, or swallowed by COPY */
};

/* One reading of the backend's state: the requests it has yet to answer, in order. */
struct tracker_hyp {
	uint8_t *q; /* ring of enum tracker_req (internal), cap a power of two */
	uint32_t cap, head, len;
	uint8_t inline_q[TRACKER_INLINE];
	uint8_t copy;     /* the head request is in a COPY (internal enum) */
	bool described;   /* Describe of a statement: ParameterDescription seen */
	bool skipping;    /* an extended-protocol error: the backend ignores all but Sync */
	bool open;        /* extended messages answered since the last ReadyForQuery */
	bool head_failed; /* the head Query / FunctionCall / Sync had an ErrorResponse */
	/* Noted requests decided and not yet taken (tracker_take_outcomes), in order;
	 * head_at: the one the last server message decided, -1: none. */
	uint8_t outq[TRACKER_OUTQ];
	uint8_t outq_len;
	int8_t head_at;
	bool outq_over; /* more than TRACKER_OUTQ untaken: fails closed */
};

struct tracker {
	struct tracker_hyp hyp[TRACKER_MAX_HYP];
	uint8_t n_hyp;
	char tx_status;  /* of the last ReadyForQuery: 'I', 'T' or 'E' */
	bool lost;       /* fails closed from now on: never settled again */
	const char *why; /* what went wrong, for the log and the client's error */
};

void tracker_init(struct tracker *t);
/* A newly linked, settled server ('I'): keeps allocated memory. */
void tracker_reset(struct tracker *t);
void tracker_free(struct tracker *t);

/*
 * The client sent a message of this type to the server.  body is needed for Describe
 * only (its first byte, 'S' or 'P'); NULL otherwise is fine.
 */
/* Flags of a request (tracker_client_ex): the caller wants its outcome
 * (tracker_take_outcomes); its replies are not passed on as they are (corral's own, or
 * replaced), so a reply must never be in doubt between it and another request. */
#define TRACKER_NOTED 1
#define TRACKER_HIDDEN 2
enum tracker_result tracker_client_ex(struct tracker *t, char type, const uint8_t *body, size_t len,
				      int flags);
static inline enum tracker_result tracker_client(struct tracker *t, char type, const uint8_t *body,
						 size_t len)
{
	return tracker_client_ex(t, type, body, len, 0);
}
/*
 * The server sent a message of this type.  body is needed for ReadyForQuery (its
 * status byte); for an ErrorResponse it may be given (its first len bytes will do): one
 * that ends a COPY FROM STDIN may say how far the backend read (tracker.c:
 * copy_err_of), which leaves one reading where there would be several.  TRACKER_OUT_OF_STEP: the message has no place in any reading (a
 * ReadyForQuery with nothing outstanding, a reply to a request never sent); t->why
 * says which.
 */
enum tracker_result tracker_server(struct tracker *t, char type, const uint8_t *body, size_t len);

/*
 * True when PostgreSQL has answered everything the client sent, the last answer was
 * a ReadyForQuery and every reading agrees: the server may go back to its pool (if
 * tx_status is 'I').  Never true once lost.
 */
bool tracker_settled_slow(const struct tracker *t);
static inline bool tracker_settled(const struct tracker *t)
{
	if (t->n_hyp == 1 && !t->lost) { /* the usual case, asked several times a message */
		const struct tracker_hyp *h = &t->hyp[0];
		return !h->len && !h->skipping && !h->open && !h->copy;
	}
	return tracker_settled_slow(t);
}
/*
 * True when the backend will answer everything in flight and end with a ReadyForQuery
 * without anything more from the client: one reading, no COPY, and the last request a
 * Query, FunctionCall or Sync.  (Not settled, not lost.)  A relay may then hold a client
 * message until the server is settled without waiting forever.
 */
bool tracker_will_settle(const struct tracker *t);
/* True while any reading has a COPY running. */
bool tracker_in_copy(const struct tracker *t);
/*
 * True when a request added now might have more than one outcome because of a COPY FROM
 * STDIN: several readings are open, or in some reading a COPY FROM STDIN that runs (or
 * a Query or Execute that may start one) is followed by something other than its
 * CopyDone / CopyFail before its end (a Sync or Flush the COPY may or may not swallow if
 * it fails, a request it may read as its end, or nothing yet: the request added would be
 * that one).  A COPY TO STDOUT reads nothing, and a COPY whose end follows it at once
 * ends the same way whatever fails: neither is in doubt.
 */
bool tracker_copy_in_doubt(const struct tracker *t);
/*
 * True when, in the one reading there is, every hidden request in flight will be
 * answered (or skipped) and its reply flushed by the backend without anything more from
 * the client: a Sync, Query or FunctionCall follows the last of them (its ReadyForQuery,
 * or an error or CopyInResponse on the way, is flushed; a COPY they are sent into reads
 * them as its end and fails at once).  A relay may then hold a client message until
 * they are answered without waiting forever.
 */
bool tracker_hidden_will_answer(const struct tracker *t);
/*
 * The outcomes of noted requests decided so far and agreed on by every reading, in the
 * order of the requests (enum tracker_outcome each, into out); returns how many and
 * takes them.  *current: the index of the one decided by the server message just given
 * to tracker_server (whose reply that message is), or -1.  Meaningless once lost.
 */
uint32_t tracker_take_outcomes(struct tracker *t, uint8_t out[TRACKER_OUTQ], int *current);
/* The request the backend is answering now is a noted one (one reading, not lost). */
bool tracker_head_noted(const struct tracker *t);
/* Requests in flight in the first reading (for logs and tests). */
uint32_t tracker_pending(const struct tracker *t);

#endif
