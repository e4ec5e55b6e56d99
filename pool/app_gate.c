#include "pool/app_gate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/inbox.h"
#include "common/log.h"
#include "pool/activate.h"

static struct app_gate *find_gate(struct pool_env *env, const struct app_shared *a);

/* Frees g if its record is retiring and nothing of it is left here; true if freed.
 * The record itself goes at the registry's next sweep. */
static bool drop_if_unused(struct app_gate *g)
{
	if (!atomic_load(&g->shared->retiring) || g->waiting.n || g->n_clients)
		return false;
	list_del(&g->node);
	atomic_fetch_sub(&g->shared->locals, 1);
	free(g);
	return true;
}

struct app_gate *app_gate_get(struct pool_env *env, const char *app)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->app_gates)
	{
		struct app_gate *g = list_entry(it, struct app_gate, node);
		/* A retiring record's gate lingers until its last client here leaves; one
		 * passed on the way is let go now rather than at the tick, so a flood of
		 * names does not pile up retired records between ticks. */
		if (atomic_load(&g->shared->retiring)) {
			(void)drop_if_unused(g);
			continue;
		}
		if (strcmp(g->shared->app, app) == 0)
			return g;
	}
	struct app_shared *a = pool_registry_app_ex(env->registry, app, config_app_limit(env->cfg, app),
						    config_app_named(env->cfg, app));
	if (!a)
		return NULL;
	struct app_gate *g = find_gate(env, a); /* "(other)": one gate for every name in it */
	if (g) {
		atomic_fetch_sub(&a->locals, 1); /* counted once, for that gate */
		return g;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		atomic_fetch_sub(&a->locals, 1);
		return NULL;
	}
	g->shared = a;
	g->env = env;
	struct worker_slot *slot = &a->slots[env->worker_id];
	g->stats = &slot->stats;
	wait_queue_init(&g->waiting, &slot->pub.waiting, &slot->pub.oldest);
	list_append(&env->app_gates, &g->node);
	return g;
}

struct app_gate *app_gate_join(struct pool_env *env, const char *app)
{
	/* The gate found may start retiring before the client is attached (the attach then
	 * fails); the next round finds or makes the live record. */
	for (int round = 0; round < 4; round++) {
		struct app_gate *g = app_gate_get(env, app);
		if (!g)
			return NULL;
		if (app_shared_attach(g->shared)) {
			g->n_clients++;
			return g;
		}
	}
	return NULL;
}

void app_gate_part(struct app_gate *g)
{
	g->n_clients--;
	app_shared_detach(g->shared);
}

/* A limit a reload lowered leaves the tokens above it in use until they come back; one
 * it removed (0) lets everyone in, the clients queued under it first (app_gates_tick). */
static bool take_token(struct app_shared *a)
{
	int limit = atomic_load_explicit(&a->limit, memory_order_relaxed);
	if (limit <= 0) {
		atomic_fetch_add(&a->active, 1);
		return true;
	}
	int n = atomic_load(&a->active);
	while (n < limit)
		if (atomic_compare_exchange_weak(&a->active, &n, n + 1))
			return true;
	return false;
}

enum gate_result app_gate_enter(struct app_gate *g, struct pool_waiter *w)
{
	struct pool_env *env = g->env;
	int waiting = shared_sum_waiting(g->shared->slots, env->n_workers);
	/* Nobody may overtake a client already queued for this application. */
	if (waiting == 0 && take_token(g->shared))
		return GATE_ENTERED;
	int depth = env->cfg->max_queue_depth;
	if (depth > 0 && waiting >= depth)
		return GATE_FULL;
	wait_queue_push(&g->waiting, w, WAIT_APP);
	return GATE_QUEUED;
}

void app_gate_dequeue(struct app_gate *g, struct pool_waiter *w)
{
	struct server *none;
	if (w->queued)
		wait_queue_remove(&g->waiting, w);
	else if (activate_cancel(w, &none) == PENDING_ADMIT)
		app_gate_leave(g); /* the token it never used: the next waiter's */
}

/* The longest waiter holds a token now and hears of it from the activation queue. */
static void admit_head(struct app_gate *g)
{
	struct pool_waiter *w = wait_queue_head(&g->waiting);
	wait_queue_remove(&g->waiting, w);
	activate_admit(g->env, w);
}

/* A token passed from another worker. */
struct token_msg {
	struct inbox_item item;
	struct app_shared *shared;
	int hops;
};

static void pass_token(struct pool_env *env, struct app_shared *a, struct app_gate *local, int hops);

static struct app_gate *find_gate(struct pool_env *env, const struct app_shared *a)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->app_gates)
	{
		struct app_gate *g = list_entry(it, struct app_gate, node);
		if (g->shared == a)
			return g;
	}
	return NULL;
}

static void token_run(struct inbox_item *item, void *ctx)
{
	struct token_msg *m = (struct token_msg *)item;
	struct pool_env *env = ctx;
	struct app_shared *a = m->shared;
	int hops = m->hops;
	free(m);
	pass_token(env, a, find_gate(env, a), hops);
	atomic_fetch_sub(&a->msgs, 1); /* after its last use: the record may go now */
}

static void token_drop(struct inbox_item *item)
{
	struct token_msg *m = (struct token_msg *)item;
	atomic_fetch_sub(&m->shared->msgs, 1);
	free(m);
}

/*
 * The token goes to the application's longest waiter: here, or on the worker whose
 * waiter queued first (a message; after as many hops as there are workers it is
 * simply given back, so a stale hint cannot bounce it for ever).
 */
static void pass_token(struct pool_env *env, struct app_shared *a, struct app_gate *local, int hops)
{
	struct pool_waiter *head = local ? wait_queue_head(&local->waiting) : NULL;
	/* As for servers (pool.c): another worker only wins by a clear margin. */
	long long since = head ? head->since - CROSS_WORKER_SLACK_USEC : LLONG_MAX;
	int to = env->n_workers > 1 && !env->shutting_down && hops < env->n_workers
			 ? shared_oldest_worker(a->slots, env->n_workers, env->worker_id, since)
			 : -1;
	if (to >= 0) {
		struct token_msg *m = calloc(1, sizeof(*m));
		if (m) {
			m->item.run = token_run;
			m->item.drop = token_drop;
			m->shared = a;
			atomic_fetch_add(&a->msgs, 1); /* keeps the record until m is run or dropped */
			m->hops = hops + 1;
			inbox_post(env->inboxes[to], &m->item);
			return;
		}
	}
	if (head)
		admit_head(local);
	else
		atomic_fetch_sub(&a->active, 1);
}

void app_gate_leave(struct app_gate *g)
{
	pass_token(g->env, g->shared, g, 0);
}

void app_gate_claim(struct app_gate *g)
{
	/* A token given back while a waiter was queueing elsewhere, or room a raised limit
	 * made: the longest waiters here take it. */
	while (g->waiting.n > 0 && take_token(g->shared))
		admit_head(g);
}

static void fail_app_waiter(struct pool_waiter *w, const char *sqlstate, const char *msg, void *arg)
{
	struct app_gate *g = arg;
	wait_queue_remove(&g->waiting, w);
	activate_fail(g->env, w, sqlstate, msg);
}

void app_gates_tick(struct pool_env *env, usec_t now)
{
	struct list *it, *tmp;
	bool dropped = false;
	list_for_each_safe(it, tmp, &env->app_gates)
	{
		struct app_gate *g = list_entry(it, struct app_gate, node);
		if (drop_if_unused(g)) { /* retired to make room for another name */
			dropped = true;
			continue;
		}
		if (g->waiting.n == 0 && !app_gate_limited(g))
			continue; /* statistics only: nobody queues there */
		app_gate_claim(g);
		char what[200];
		snprintf(what, sizeof(what), "the concurrency limit of application \"%.100s\" (%d)",
			 g->shared->app, atomic_load_explicit(&g->shared->limit, memory_order_relaxed));
		pool_tick_waiters(env, &g->waiting, now, fail_app_waiter, g, what);
	}
	if (dropped && env->registry)
		pool_registry_sweep(env->registry);
}
