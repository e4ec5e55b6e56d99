/*
 * The queue trigger: SQS semantics on two PostgreSQL tables, reached through corral
 * like any client (the tables are created at start if missing):
 *
 *   corral_queue             id, queue, body, receive_count, enqueued_at, visible_at,
 *                            first_received_at           (messages waiting or in flight)
 *   corral_queue_dead_letter id, queue, body, receive_count, enqueued_at, failed_at, error
 *
 * A producer inserts:  INSERT INTO corral_queue (queue, body) VALUES ('jobs', '{...}');
 *
 * For every function with `queue = NAME`, up to queue_concurrency batches are in flight.
 * A batch is claimed in one autocommit statement (UPDATE ... WHERE id = ANY(ARRAY(SELECT
 * ... FOR UPDATE SKIP LOCKED LIMIT batch_size)) RETURNING ...) that makes the messages
 * invisible for visibility_timeout and counts the delivery, so no transaction (and no
 * corral server connection) is held while the function runs, and two consumers never get
 * the same message.  The function gets {"Records":[...]}; afterwards the messages it
 * handled are deleted, those listed in its batchItemFailures (or all, when the
 * invocation failed) become visible again after a backoff (1 s, doubling, at most the
 * visibility timeout), and a message delivered max_receive_count times without success
 * moves to the dead letters with the reason.  A batch the function never got (throttled,
 * queue timeout, shutdown) is released: visible again, the delivery not counted.  A
 * consumer that dies leaves its messages to reappear after the visibility timeout:
 * at-least-once, as SQS.  Two functions with the same queue compete for its messages.
 * fn_queue_batch.h has the statements and the rules for reading the answer.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_QUEUE_H
#define CORRAL_FUNCTIONS_RUNNER_FN_QUEUE_H

#include "functions/runner/fn_config.h"
#include "functions/runner/fn_runtime.h"

struct event_base;
struct fn_queue;

/* Consumers for every function of cfg with a queue (none: an empty, valid object).
 * Connects to cfg->queue_database_url asynchronously; failures are logged and retried. */
struct fn_queue *fn_queue_new(struct event_base *base, struct fn_runtime *rt,
			      const struct fn_runner_config *cfg);
/*
 * Stops claiming; done_cb(arg) once no batch is in flight (their results are applied),
 * called from the event loop, never from inside this call, even when nothing is in flight.
 * Should the connection be down meanwhile, the acknowledgements still due are given up
 * (logged): those messages reappear after their visibility timeout.
 */
void fn_queue_stop(struct fn_queue *q, void (*done_cb)(void *arg), void *arg);
void fn_queue_free(struct fn_queue *q);

#endif
