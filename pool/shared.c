#include "pool/shared.h"

#include <stdlib.h>
#include <string.h>

bool pool_registry_init(struct pool_registry *reg, int n_workers)
{
	reg->head = NULL;
	reg->n_workers = n_workers;
	return pthread_mutex_init(&reg->lock, NULL) == 0;
}

void pool_registry_free(struct pool_registry *reg)
{
	struct pool_shared *ps = reg->head;
	while (ps) {
		struct pool_shared *next = ps->next;
		free(ps->user);
		params_clear(&ps->params);
		pthread_mutex_destroy(&ps->params_lock);
		free(ps);
		ps = next;
	}
	reg->head = NULL;
	pthread_mutex_destroy(&reg->lock);
}

struct pool_shared *pool_registry_get(struct pool_registry *reg, const struct db_config *db,
				      const char *user, int size)
{
	pthread_mutex_lock(&reg->lock);
	struct pool_shared *ps;
	for (ps = reg->head; ps; ps = ps->next)
		if (ps->db == db && strcmp(ps->user, user) == 0)
			break;
	if (!ps) {
		ps = calloc(1, sizeof(*ps));
		if (ps) {
			ps->db = db;
			ps->size = size;
			ps->user = strdup(user);
			if (ps->user && pthread_mutex_init(&ps->params_lock, NULL) == 0) {
				ps->next = reg->head;
				reg->head = ps;
			} else {
				free(ps);
				ps = NULL;
			}
		}
	}
	pthread_mutex_unlock(&reg->lock);
	return ps;
}

void pool_shared_set_params(struct pool_shared *ps, const struct param_set *params)
{
	pthread_mutex_lock(&ps->params_lock);
	params_copy(&ps->params, params);
	ps->have_params = true;
	pthread_mutex_unlock(&ps->params_lock);
}

bool pool_shared_get_params(struct pool_shared *ps, struct param_set *out)
{
	pthread_mutex_lock(&ps->params_lock);
	bool have = ps->have_params;
	if (have)
		params_copy(out, &ps->params);
	pthread_mutex_unlock(&ps->params_lock);
	return have;
}

bool pool_shared_take_slot(struct pool_shared *ps, int limit)
{
	int n = atomic_load(&ps->servers);
	while (n < limit)
		if (atomic_compare_exchange_weak(&ps->servers, &n, n + 1))
			return true;
	return false;
}

void pool_shared_put_slot(struct pool_shared *ps)
{
	atomic_fetch_sub(&ps->servers, 1);
}

int pool_shared_worker_with_idle(const struct pool_shared *ps, int n_workers, int me)
{
	for (int i = 0; i < n_workers; i++)
		if (i != me && atomic_load(&ps->idle[i]) > 0)
			return i;
	return -1;
}

int pool_shared_worker_waiting_longer(const struct pool_shared *ps, int n_workers, int me,
				      long long before)
{
	int best = -1;
	for (int i = 0; i < n_workers; i++) {
		long long since = atomic_load(&ps->oldest[i]);
		if (i != me && since != 0 && since < before) {
			before = since;
			best = i;
		}
	}
	return best;
}
