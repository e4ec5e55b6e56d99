/*
 * The queue trigger's pure parts (fn_queue.c and fn_pgconn.c do the I/O): the SQL it sends, the event
 * built from claimed rows, and what becomes of each message once the invocation ended.
 *
 * Every statement is one autocommit statement with text parameters (unnamed, sent with
 * PQsendQueryParams), because the connection goes through corral in transaction pooling
 * mode: no prepared statement, no session state, no transaction across round trips.
 *
 * A message's receipt is its id and the receive_count of the claim that delivered it.
 * Every acknowledgement matches both, so a late answer about a message whose visibility
 * timeout ran out (and that another consumer claimed again) changes nothing: each
 * statement is idempotent and may be sent again after a lost connection.
 *
 * The function's answer is read as Lambda reads an SQS partial batch response:
 *   - the whole batch succeeded: an empty body, `null`, an object without
 *     batchItemFailures, or batchItemFailures null or [];
 *   - the listed messages failed: {"batchItemFailures":[{"itemIdentifier":"ID"},...]};
 *   - the whole batch failed: a body that is not JSON or is neither an object nor null,
 *     batchItemFailures that is not an array, an item that is not an object or whose
 *     itemIdentifier is missing, not a string, empty or not a message of the batch;
 *     and (corral-fn's addition, as the ABI has a status) an HTTP status outside 2xx;
 *   - any invocation that did not return (FUNCTION_ERROR, TIMEOUT, CRASH, INIT_ERROR,
 *     TOO_LARGE) failed the whole batch;
 *   - one that never reached the function (THROTTLED, QUEUE_TIMEOUT, SHUTDOWN) was no
 *     delivery: its messages are released, their receive_count given back.
 * A failed message is retried after a backoff (1 s, 2 s, 4 s ... capped at the visibility
 * timeout) unless it has been received max_receive_count times: then it moves to the
 * dead letters with the reason.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_QUEUE_BATCH_H
#define CORRAL_FUNCTIONS_RUNNER_FN_QUEUE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/macros.h"
#include "functions/runner/fn_runtime.h"

/* CREATE TABLE / INDEX IF NOT EXISTS, one statement each, run in this order. */
#define FN_QUEUE_SCHEMA_STATEMENTS 3
extern const char *const fn_queue_schema_sql[FN_QUEUE_SCHEMA_STATEMENTS];

/* First retry of a failed message after this; doubles with each receive. */
#define FN_QUEUE_RETRY_BASE_USEC (1 * USEC_PER_SEC)
#define FN_QUEUE_PARAMS_MAX 4
#define FN_QUEUE_ERROR_MAX 512

/* One statement with its text parameters (malloc'd, owned). */
struct fn_queue_stmt {
	const char *sql;  /* static */
	const char *what; /* for logs: "claim", "delete", "requeue", "dead_letter" */
	int n_params;
	char *params[FN_QUEUE_PARAMS_MAX];
	size_t n_messages; /* how many messages it is about (acknowledgements) */
};

void fn_queue_stmt_clear(struct fn_queue_stmt *s);

/*
 * The claim: up to batch_size visible messages of queue, made invisible for visibility
 * and counted as received, ordered by id.  Columns: id, body, receive_count, enqueued_at
 * and first_received_at in ms since the epoch (FN_QUEUE_CLAIM_COLUMNS).
 */
#define FN_QUEUE_CLAIM_COLUMNS 5
bool fn_queue_claim_stmt(const char *queue, unsigned batch_size, usec_t visibility_usec,
			 struct fn_queue_stmt *out) WARN_UNUSED;

/* One claimed message.  body points into the claim's result (valid while it lives). */
struct fn_queue_msg {
	int64_t id;
	unsigned receive_count;
	int64_t sent_ms;
	int64_t first_receive_ms;
	const char *body;
	char message_id[24]; /* the id as text: messageId, itemIdentifier */
};

/* A claimed row from its column texts (FN_QUEUE_CLAIM_COLUMNS, in the claim's order).
 * False when a column is missing or not a number where one is due. */
bool fn_queue_msg_from_row(const char *const cols[FN_QUEUE_CLAIM_COLUMNS],
			   struct fn_queue_msg *out) WARN_UNUSED;

/* "arn:corral:queue:local:NAME" into out (cut to fit). */
void fn_queue_source_arn(const char *queue, char *out, size_t len);

/* The {"Records":[...]} event of msgs (json_queue_batch_event); malloc'd, NUL-terminated,
 * or NULL when memory runs out. */
char *fn_queue_batch_event(const char *queue, const struct fn_queue_msg *msgs, size_t n,
			   size_t *len) WARN_UNUSED;

/* How a batch's invocation ended, message by message. */
enum fn_queue_verdict {
	FN_QUEUE_ALL_OK,
	FN_QUEUE_SOME_FAILED, /* the function listed batchItemFailures */
	FN_QUEUE_ALL_FAILED,
	FN_QUEUE_NOT_DELIVERED, /* the function never got the batch */
};

/*
 * Reads a partial batch response (body[0..len), need not be NUL-terminated) against
 * the batch: failed[i] set for each listed message.  Returns FN_QUEUE_ALL_OK,
 * FN_QUEUE_SOME_FAILED, or FN_QUEUE_ALL_FAILED (every failed[i] set) with why.
 */
enum fn_queue_verdict fn_queue_parse_response(const char *body, size_t len,
					      const struct fn_queue_msg *msgs, size_t n,
					      bool *failed, char *why, size_t whylen);

/* The verdict of an ended invocation (the rules above); failed[i] as for
 * fn_queue_parse_response(), why says what failed (for logs and dead letters). */
enum fn_queue_verdict fn_queue_judge(const struct fn_call_done *done,
				     const struct fn_queue_msg *msgs, size_t n, bool *failed,
				     char *why, size_t whylen);

enum fn_queue_action {
	FN_QUEUE_DELETE,      /* handled: gone */
	FN_QUEUE_RETRY,       /* failed: visible again after a backoff */
	FN_QUEUE_DEAD_LETTER, /* failed max_receive_count times: moved to the dead letters */
	FN_QUEUE_RELEASE,     /* not delivered: visible again, receive_count given back */
	FN_QUEUE_ACTIONS
};

const char *fn_queue_action_name(enum fn_queue_action a);

struct fn_queue_policy {
	unsigned max_receive_count; /* 0: never dead-letter */
	usec_t visibility_usec;     /* the retry backoff's cap */
	usec_t release_delay_usec;  /* a released message reappears after it */
};

/* What becomes of a message.  failed is its fn_queue_judge() flag. */
enum fn_queue_action fn_queue_decide(enum fn_queue_verdict verdict, bool failed,
				     unsigned receive_count, const struct fn_queue_policy *p);

/* Backoff before a failed message is visible again: FN_QUEUE_RETRY_BASE_USEC doubled
 * for each receive after the first, capped at visibility_usec. */
usec_t fn_queue_retry_delay(unsigned receive_count, usec_t visibility_usec);

/*
 * The acknowledgement of a batch: one statement per kind of action present, in the order
 * delete, requeue (retries and releases), dead letter; actions[i] is message i's.  error
 * is what dead letters record.  Returns how many statements were written to out (0..3), or
 * -1 when memory ran out (out then holds none).
 */
#define FN_QUEUE_ACK_STATEMENTS 3
int fn_queue_ack_stmts(const struct fn_queue_msg *msgs, size_t n,
		       const enum fn_queue_action *actions, const struct fn_queue_policy *p,
		       const char *error, struct fn_queue_stmt out[FN_QUEUE_ACK_STATEMENTS]);

#endif
