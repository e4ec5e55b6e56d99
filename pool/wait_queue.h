/*
 * A FIFO of waiting clients (for a pool's server, or an application's token) whose
 * length and oldest entry are published in shared per-worker slots, so other workers
 * can hand a freed server or token to whichever worker's client waited longest.
 */
#ifndef CORRAL_POOL_WAIT_QUEUE_H
#define CORRAL_POOL_WAIT_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "common/clock.h"
#include "common/list.h"

/* What a client waits for: a server of a pool, or a token of its application's
 * concurrency limit (pool/app_gate.h). */
enum wait_kind { WAIT_SERVER, WAIT_APP };

struct server;

/* What a waiter taken out of its queue is owed, until the activation queue
 * (pool/activate.h) tells its client on the next turn of the loop. */
enum wait_pending {
	PENDING_NONE,
	PENDING_SERVER,             /* server reserved for it (SV_ACTIVE) */
	PENDING_ADMIT,              /* its application's token is reserved for it */
	PENDING_FAIL,               /* refused: sqlstate, message */
};

struct pool_waiter {
	struct list node;           /* in the queue while queued, in env->activations while pending */
	enum wait_kind kind;
	usec_t since;
	bool queued;
	/* query_wait_notify sent in this wait.  One wait may pass an application's gate
	 * and then a server queue (one NOTICE in all), so its owner clears it when a new
	 * wait begins; queueing does not. */
	bool notified;
	enum wait_pending pending;  /* set while in env->activations */
	struct server *server;      /* PENDING_SERVER */
	char sqlstate[6];           /* PENDING_FAIL */
	char *message;              /* PENDING_FAIL, owned (NULL: out of memory) */
	uint64_t prefer;            /* the server it had last (its id; 0: none): taken if
				     * idle among the last few parked (pool_checkout) */
};

/* True while pool/ owes w something: queued, or an activation pending. */
static inline bool pool_waiter_busy(const struct pool_waiter *w)
{
	return w->queued || w->pending != PENDING_NONE;
}

struct wait_queue {
	struct list list;           /* struct pool_waiter, oldest first */
	size_t n;
	atomic_int *published_len;      /* this worker's slot of a shared array */
	atomic_llong *published_oldest; /* when the head queued; 0 when empty */
};

void wait_queue_init(struct wait_queue *q, atomic_int *published_len,
		     atomic_llong *published_oldest);
/* Appends w (now queued, since now; notified is left as it is). */
void wait_queue_push(struct wait_queue *q, struct pool_waiter *w, enum wait_kind kind);
/* Puts w back at the head, keeping its place in time (since, notified): a server
 * reserved for it died before it was told. */
void wait_queue_push_head(struct wait_queue *q, struct pool_waiter *w);
/* Takes a queued w out. */
void wait_queue_remove(struct wait_queue *q, struct pool_waiter *w);
/* The longest waiter, or NULL. */
struct pool_waiter *wait_queue_head(const struct wait_queue *q);

#endif
