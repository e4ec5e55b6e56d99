/*
 * A FIFO of waiting clients (for a pool's server, or an application's token) whose
 * length and oldest entry are published in shared per-worker slots, so other workers
 * can hand a freed server or token to whichever worker's client waited longest.
 */
#ifndef CORRAL_POOL_WAIT_QUEUE_H
#define CORRAL_POOL_WAIT_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/clock.h"
#include "common/list.h"

/* What a client waits for: a server of a pool, or a token of its application's
 * concurrency limit (pool/app_gate.h). */
enum wait_kind { WAIT_SERVER, WAIT_APP };

struct pool_waiter {
	struct list node;           /* in the queue while queued */
	enum wait_kind kind;
	usec_t since;
	bool queued;
	bool notified;              /* query_wait_notify sent */
};

struct wait_queue {
	struct list list;           /* struct pool_waiter, oldest first */
	size_t n;
	atomic_int *published_len;      /* this worker's slot of a shared array */
	atomic_llong *published_oldest; /* when the head queued; 0 when empty */
};

void wait_queue_init(struct wait_queue *q, atomic_int *published_len,
		     atomic_llong *published_oldest);
/* Appends w (now queued, since now). */
void wait_queue_push(struct wait_queue *q, struct pool_waiter *w, enum wait_kind kind);
/* Takes a queued w out. */
void wait_queue_remove(struct wait_queue *q, struct pool_waiter *w);
/* The longest waiter, or NULL. */
struct pool_waiter *wait_queue_head(const struct wait_queue *q);

#endif
