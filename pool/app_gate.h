/*
 * Per-application concurrency limits ([limits] app.NAME = N, app_default = N): at
 * most N transactions of clients whose application_name is NAME hold server
 * connections at once, over all workers.  The rest queue here, one queue per
 * application, so a capped function waits behind its own limit without holding up
 * other applications.  A token frees up when its transaction ends and goes to the
 * application's longest waiter on any worker (passed along through the inboxes).
 */
#ifndef CORRAL_POOL_APP_GATE_H
#define CORRAL_POOL_APP_GATE_H

#include <stdbool.h>

#include "common/list.h"
#include "pool/pool.h"
#include "pool/shared.h"

/* One per application on each worker, limited or not: an unlimited application's
 * gate only counts its statistics (nobody enters or queues there). */
struct app_gate {
	struct list node;           /* env->app_gates */
	struct pool_env *env;
	struct app_shared *shared;
	struct stats_block *stats;  /* this worker's counters of the application */
	struct wait_queue waiting;  /* clients waiting for a token */
	size_t n_clients;           /* clients of this worker joined to it (app_gate_join) */
};

/* The gate of application app on this worker (made on first use; applications past
 * STATS_MAX_APPS not named in [limits] share the "(other)" one), or NULL when out of
 * memory. */
struct app_gate *app_gate_get(struct pool_env *env, const char *app);
/* app_gate_get for a client, who is attached to the application's record (it is not
 * retired until app_gate_part); NULL when out of memory. */
struct app_gate *app_gate_join(struct pool_env *env, const char *app);
/* The client joined by app_gate_join has left (its last use of the gate). */
void app_gate_part(struct app_gate *g);
/* Whether clients of g's application must hold a token ([limits]). */
static inline bool app_gate_limited(const struct app_gate *g)
{
	return atomic_load_explicit(&g->shared->limit, memory_order_relaxed) > 0;
}

enum gate_result { GATE_ENTERED, GATE_QUEUED, GATE_FULL };
/* GATE_ENTERED: w holds a token now.  GATE_QUEUED: hooks->app_admitted (token) or
 * hooks->wait_failed follows.  GATE_FULL: max_queue_depth reached, not queued. */
enum gate_result app_gate_enter(struct app_gate *g, struct pool_waiter *w);
/* Gives back a token (the transaction ended or its client left). */
void app_gate_leave(struct app_gate *g);
/* Takes a queued w out (its client left). */
void app_gate_dequeue(struct app_gate *g, struct pool_waiter *w);
/* Waiters here take the tokens that are free (a raised limit, a token given back while
 * they queued). */
void app_gate_claim(struct app_gate *g);
/* Timeouts and notices of every gate's waiters; tokens freed by races are claimed. */
void app_gates_tick(struct pool_env *env, usec_t now);

#endif
