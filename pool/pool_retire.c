/*
 * A worker's part in freeing a pool (DESIGN.md §6, "Freeing idle pools").
 *
 * Past max_pools, pool_registry_get_ex retires the least recently used idle record
 * (no client attached or queued on any worker, no server in use): it leaves the
 * registry's list at once, so no lookup or SHOW finds it, and no client can join it
 * (pool_shared_attach fails on a retiring record).  Every worker holding a struct pool
 * of it then lets go on its next tick, here: its idle servers close, and once nothing
 * of the pool is left on this worker (no server in any state, no dead server whose
 * cancel is still in flight and names the pool) the struct pool is freed, which lowers
 * the record's `locals`.  The record itself is freed by pool_registry_sweep once no
 * worker holds a part, no inbox message names it and no server slot is counted in it.
 * Nothing is ever freed under a worker that still points at it.
 */
#include <stdatomic.h>

#include "common/log.h"
#include "pool/pool_internal.h"

/* A closed server still waiting for its cancel's completion points at its pool
 * (pool_cancel_done). */
static bool dead_servers_name(const struct pool *pool)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &pool->env->dead_servers)
	{
		const struct server *s = list_entry(it, struct server, node);
		if (s->pool == pool && s->cancels_in_flight)
			return true;
	}
	return false;
}

bool pool_retire_tick(struct pool *pool)
{
	struct list *first;
	while ((first = list_first(&pool->idle)) != NULL)
		pool_close_server(list_entry(first, struct server, node),
				  "its pool is freed to make room (max_pools)");
	if (pool->n_clients || pool->waiting.n || pool->n_login || pool->n_idle || pool->n_active ||
	    pool->n_closing || dead_servers_name(pool))
		return false; /* the next tick looks again */
	log_info("event=pool_freed worker=%d db=%s user=%s reason=max_pools", pool->env->worker_id,
		 pool->db_name, pool->user);
	list_del(&pool->node);
	pool_free(pool);
	return true;
}
