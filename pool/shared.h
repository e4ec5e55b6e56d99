/*
 * What the workers share about pools (DESIGN.md §3): one record per (database, user)
 * with atomic counters, so a pool's limit holds across workers although each worker
 * owns its own server connections.  Records are created once under a mutex and live
 * until the process ends; counters are read and written without locks.
 */
#ifndef CORRAL_POOL_SHARED_H
#define CORRAL_POOL_SHARED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "pool/config.h"
#include "pool/params.h"

#define MAX_WORKERS 256

struct pool_shared {
	struct pool_shared *next;
	const struct db_config *db;
	char *user;
	int size;
	atomic_int servers;               /* every worker's servers, from login start to close */
	atomic_int idle[MAX_WORKERS];     /* idle servers per worker */
	atomic_int waiting[MAX_WORKERS];  /* queued clients per worker */
	atomic_llong oldest[MAX_WORKERS]; /* when each worker's longest waiter queued, 0: none */

	/* What the last login on any worker reported, so a worker whose part of the
	 * pool never logged in can still welcome clients at once. */
	pthread_mutex_t params_lock;
	bool have_params;
	struct param_set params;
};

struct pool_registry {
	pthread_mutex_t lock;
	struct pool_shared *head;
	int n_workers;
};

bool pool_registry_init(struct pool_registry *reg, int n_workers) WARN_UNUSED;
void pool_registry_free(struct pool_registry *reg);

/* The record for (db, user), created on first use; NULL when out of memory. */
struct pool_shared *pool_registry_get(struct pool_registry *reg, const struct db_config *db,
				      const char *user, int size);

void pool_shared_set_params(struct pool_shared *ps, const struct param_set *params);
/* Copies the shared parameters into out; false if no login has reported any yet. */
bool pool_shared_get_params(struct pool_shared *ps, struct param_set *out);

/* Takes one server slot if fewer than limit are in use. */
bool pool_shared_take_slot(struct pool_shared *ps, int limit) WARN_UNUSED;
void pool_shared_put_slot(struct pool_shared *ps);

/* A worker other than me with an idle server, or -1. */
int pool_shared_worker_with_idle(const struct pool_shared *ps, int n_workers, int me);
/* The worker other than me whose longest waiter queued before `before` (and before
 * every other worker's), or -1: FIFO across workers. */
int pool_shared_worker_waiting_longer(const struct pool_shared *ps, int n_workers, int me,
				      long long before);

#endif
