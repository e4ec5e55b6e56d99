/*
 * A worker's pools under a new configuration, PAUSE and KILL (DESIGN.md §10).  Every
 * function runs on the worker's own thread, told through its inbox (proxy/control.c);
 * what the hot path sees is a few plain fields of struct pool (paused, shrinking,
 * login_sig), read by offer_server and pool_checkout.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pool/app_gate.h"
#include "pool/pool_internal.h"

/* Whether pool belongs to db_name (NULL: every database). */
static bool of_db(const struct pool *pool, const char *db_name)
{
	return !db_name || strcmp(pool->db_name, db_name) == 0;
}

/* Closes idle servers of the pool, least recently used first, while the pool has more
 * than keep servers over all workers (keep < 0: every idle one). */
static void close_idle(struct pool *pool, int keep, const char *reason)
{
	struct list *it;
	while ((it = list_first(&pool->idle)) != NULL) {
		struct server *s = list_entry(it, struct server, node);
		if (keep >= 0) {
			if (!pool_shared_claim_close(pool->shared, keep))
				return;
			s->pool_slot_returned = true;
		}
		pool_close_server(s, reason);
	}
}

/* Clients of the pool on this worker, in any state (the pool's gauges). */
static long long clients_here(const struct pool *pool)
{
	long long n = 0;
	for (int i = 0; i < STATS_CL_GROUPS; i++)
		n += stats_read(&pool->stats->clients[i]);
	return n;
}

static void adopt_pool(struct pool *pool, const struct corral_config *cfg)
{
	const struct db_config *db = config_find_db(cfg, pool->db_name);
	if (!db) {
		/* PgBouncer drops such a database's clients; corral lets them finish (the
		 * proxy refuses new ones with 3D000).  Their servers keep the old line. */
		if (!pool->removed)
			log_info("event=pool_removed worker=%d db=%s user=%s clients=%lld "
				 "msg=\"database no longer configured: existing clients keep "
				 "their connections, new ones are refused\"",
				 pool->env->worker_id, pool->db_name, pool->user,
				 clients_here(pool));
		pool->removed = true;
		pool->min_size = 0;
		return;
	}
	pool->removed = false;
	int old_size = pool->size;
	pool_take_settings(pool, cfg, db);
	if (pool_login_signature(db) != pool->login_sig) {
		/* Never hand a client a server logged in with other settings: idle ones go
		 * now, busy ones when they come back (offer_server compares login_sig). */
		char *password = pool->login_password ? strdup(pool->login_password) : NULL;
		if ((pool->login_password && !password) ||
		    !pool_build_login_params(pool, db, password))
			log_error("event=reload_pool_failed db=%s user=%s error=\"out of memory\"",
				  pool->db_name, pool->user);
		free(password);
		close_idle(pool, -1, "its database's connection settings changed (reload)");
	}
	if (pool->size < old_size) {
		pool->shrinking = true;
		close_idle(pool, pool->size, "pool_size lowered (reload)");
	}
	if (pool->size != old_size)
		log_info("event=pool_resized worker=%d db=%s user=%s pool_size=%d was=%d",
			 pool->env->worker_id, pool->db_name, pool->user, pool->size, old_size);
	pool_grow_for_waiters(pool); /* a larger pool, a new reserve: waiters first */
}

void pool_env_adopt(struct pool_env *env, const struct corral_config *cfg)
{
	env->cfg = cfg;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools) adopt_pool(list_entry(it, struct pool, node), cfg);
	list_for_each_safe(it, tmp, &env->app_gates)
		app_gate_claim(list_entry(it, struct app_gate, node));
}

/* Once no client of a removed database's pool is left here, its idle servers go. */
void pool_tick_removed(struct pool *pool)
{
	if (pool->removed && pool->n_idle && clients_here(pool) == 0)
		close_idle(pool, -1, "database no longer configured (reload)");
}

bool pool_env_paused(const struct pool_env *env, const char *db_name)
{
	if (env->paused_all)
		return true;
	for (size_t i = 0; i < env->n_paused_dbs; i++)
		if (strcmp(env->paused_dbs[i], db_name) == 0)
			return true;
	return false;
}

static void set_paused(struct pool_env *env, const char *db_name, bool paused)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *pool = list_entry(it, struct pool, node);
		if (!of_db(pool, db_name))
			continue;
		pool->paused = paused || pool_env_paused(env, pool->db_name);
		if (pool->paused)
			close_idle(pool, -1, "pause mode");
		else
			pool_grow_for_waiters(pool);
	}
}

bool pool_env_pause(struct pool_env *env, const char *db_name)
{
	if (!db_name) {
		env->paused_all = true;
	} else if (!pool_env_paused(env, db_name)) {
		char **dbs = realloc(env->paused_dbs, (env->n_paused_dbs + 1) * sizeof(*dbs));
		if (!dbs)
			return false;
		env->paused_dbs = dbs;
		if (!(dbs[env->n_paused_dbs] = strdup(db_name)))
			return false;
		env->n_paused_dbs++;
	}
	set_paused(env, db_name, true);
	return true;
}

void pool_env_resume(struct pool_env *env, const char *db_name)
{
	if (!db_name)
		env->paused_all = false;
	for (size_t i = 0; i < env->n_paused_dbs;) {
		if (!db_name || strcmp(env->paused_dbs[i], db_name) == 0) {
			free(env->paused_dbs[i]);
			env->paused_dbs[i] = env->paused_dbs[--env->n_paused_dbs];
		} else {
			i++;
		}
	}
	set_paused(env, db_name, false);
}

void pool_env_close_idle(struct pool_env *env, const char *db_name)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *pool = list_entry(it, struct pool, node);
		if (of_db(pool, db_name))
			close_idle(pool, -1, "KILL");
	}
}
