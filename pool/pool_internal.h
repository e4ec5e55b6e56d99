/*
 * What pool/pool.c shares with pool/pool_control.c (reload, pause, kill), and nobody
 * else: the parts of making a pool that a new configuration makes again.
 */
#ifndef CORRAL_POOL_POOL_INTERNAL_H
#define CORRAL_POOL_POOL_INTERNAL_H

#include <stdint.h>

#include "pool/pool.h"

/* Hash of a database line's libpq keywords and values (pool->login_sig). */
uint64_t pool_login_signature(const struct db_config *db);
/* Copies db's login keywords (+ user, + password when db has none) into the pool and
 * sets login_sig; false (the pool keeps what it had) when out of memory. */
bool pool_build_login_params(struct pool *pool, const struct db_config *db,
			     const char *password) WARN_UNUSED;
/* pool_size, pool_mode, min_pool_size, reserve, max_db/user_connections from cfg. */
void pool_take_settings(struct pool *pool, const struct corral_config *cfg,
			const struct db_config *db);
/* This worker's pool (db_name, user), or NULL. */
struct pool *pool_find(struct pool_env *env, const char *db_name, const char *user);

/* Frees this worker's part of a pool (the shared record is the registry's). */
void pool_free(struct pool *pool);
/* On each tick, for a pool whose record is retiring (pool/pool_retire.c): its idle
 * servers close; once nothing of it is left here, it is freed.  True if freed. */
bool pool_retire_tick(struct pool *pool);

/* On each tick: a removed database's pool with no client here closes its idle servers. */
void pool_tick_removed(struct pool *pool);

#endif
