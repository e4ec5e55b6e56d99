#include "pool/stats.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pool/shared.h"

long long stats_hist_lower(unsigned b)
{
	if (b < 2)
		return b;
	unsigned e = b / 2;
	long long p = 1LL << e;
	return b % 2 ? p + p / 2 : p;
}

long long stats_hist_upper(unsigned b)
{
	return b + 1 < STATS_HIST_BUCKETS ? stats_hist_lower(b + 1) : LLONG_MAX;
}

long long stats_hist_quantile(const uint64_t *hist, double p)
{
	uint64_t total = 0;
	for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
		total += hist[b];
	if (total == 0)
		return 0;
	/* The rank of the quantile, 1-based: the smallest r with r >= p * total. */
	double want = p * (double)total;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want || rank == 0)
		rank++;
	uint64_t seen = 0;
	for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank)
			return b + 1 < STATS_HIST_BUCKETS ? stats_hist_upper(b) - 1
							  : stats_hist_lower(b);
	}
	return stats_hist_lower(STATS_HIST_BUCKETS - 1);
}

void stats_totals_add(struct stats_totals *t, const struct stats_block *b)
{
	t->xact_count += (uint64_t)stats_read(&b->xact_count);
	t->query_count += (uint64_t)stats_read(&b->query_count);
	t->bytes_received += (uint64_t)stats_read(&b->bytes_received);
	t->bytes_sent += (uint64_t)stats_read(&b->bytes_sent);
	t->xact_time_us += (uint64_t)stats_read(&b->xact_time_us);
	t->query_time_us += (uint64_t)stats_read(&b->query_time_us);
	t->wait_time_us += (uint64_t)stats_read(&b->wait_time_us);
	t->checkouts += (uint64_t)stats_read(&b->checkouts);
	t->wait_count += (uint64_t)stats_read(&b->wait_count);
	t->sheds += (uint64_t)stats_read(&b->sheds);
	t->timeouts += (uint64_t)stats_read(&b->timeouts);
	t->admitted += (uint64_t)stats_read(&b->admitted);
	t->logins += (uint64_t)stats_read(&b->logins);
	for (int a = 0; a < STATS_PIN_ACTIONS; a++)
		for (int r = 0; r < STATS_PIN_REASONS; r++) {
			uint64_t n = (uint64_t)stats_read(&b->pin_by_reason[a][r]);
			t->pin_by_reason[a][r] += n;
			*(a == STATS_PIN        ? &t->pins
			  : a == STATS_PIN_WARN ? &t->pin_warnings
						: &t->pin_refusals) += n;
		}
	for (int i = 0; i < STATS_CL_GROUPS; i++)
		t->clients[i] += stats_read(&b->clients[i]);
	for (int i = 0; i < STATS_SV_GROUPS; i++)
		t->servers[i] += stats_read(&b->servers[i]);
	for (int i = 0; i < STATS_HIST_BUCKETS; i++) {
		t->xact_hist[i] += (uint64_t)stats_read(&b->xact_hist[i]);
		t->wait_hist[i] += (uint64_t)stats_read(&b->wait_hist[i]);
	}
}

/* How long the longest waiter over every worker's slot has waited, or 0. */
static long long max_wait(const struct worker_slot *slots, int n_workers, usec_t now)
{
	long long oldest = 0;
	for (int i = 0; i < n_workers; i++) {
		long long since = atomic_load(&slots[i].pub.oldest);
		if (since && (!oldest || since < oldest))
			oldest = since;
	}
	return oldest && now > oldest ? now - oldest : 0;
}

static int clamp_int(long long v)
{
	return v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
}

static bool fill_pool(struct stats_pool *p, const struct pool_shared *ps, int n_workers,
		      const struct corral_config *cfg, usec_t now)
{
	memset(p, 0, sizeof(*p));
	p->database = strdup(ps->db_name);
	p->user = strdup(ps->user);
	if (!p->database || !p->user)
		return false;
	/* A database a reload removed has no line: its pools show [corral]'s values. */
	const struct db_config *db = config_find_db(cfg, ps->db_name);
	p->pool_mode = config_pool_mode(cfg, db, ps->user);
	p->pool_size = config_pool_size(cfg, db);
	for (int i = 0; i < n_workers; i++)
		stats_totals_add(&p->t, &ps->slots[i].stats);
	p->sv_active = clamp_int(p->t.servers[STATS_SV_ACTIVE]);
	p->sv_idle = clamp_int(p->t.servers[STATS_SV_IDLE]);
	p->sv_login = clamp_int(p->t.servers[STATS_SV_LOGIN]);
	p->sv_closing = clamp_int(p->t.servers[STATS_SV_CLOSING]);
	p->servers = atomic_load(&((struct pool_shared *)ps)->servers);
	p->queue_depth = shared_sum_waiting(ps->slots, n_workers);
	p->maxwait_us = max_wait(ps->slots, n_workers, now);
	return true;
}

static bool fill_app(struct stats_app *a, struct app_shared *as, int n_workers, usec_t now)
{
	memset(a, 0, sizeof(*a));
	a->name = strdup(as->app);
	if (!a->name)
		return false;
	a->limit = atomic_load_explicit(&as->limit, memory_order_relaxed);
	a->slots_in_use = atomic_load(&as->active);
	for (int i = 0; i < n_workers; i++)
		stats_totals_add(&a->t, &as->slots[i].stats);
	a->queue_depth = shared_sum_waiting(as->slots, n_workers);
	a->maxwait_us = max_wait(as->slots, n_workers, now);
	return true;
}

bool stats_snapshot(struct pool_registry *reg, const struct corral_config *cfg,
		    struct stats_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	out->taken_at = clock_now_usec();
	out->n_workers = reg->n_workers;
	bool ok = true;
	pthread_mutex_lock(&reg->lock);
	size_t n_pools = 0, n_apps = 0;
	for (struct pool_shared *ps = reg->head; ps; ps = ps->next)
		n_pools++;
	for (struct app_shared *a = reg->apps; a; a = a->next)
		n_apps++;
	out->pools = n_pools ? calloc(n_pools, sizeof(*out->pools)) : NULL;
	out->apps = n_apps ? calloc(n_apps, sizeof(*out->apps)) : NULL;
	if ((n_pools && !out->pools) || (n_apps && !out->apps))
		ok = false;
	/* Newest first on the lists: fill from the back so the oldest record comes first. */
	if (ok) {
		size_t i = n_pools;
		for (struct pool_shared *ps = reg->head; ok && ps; ps = ps->next) {
			ok = fill_pool(&out->pools[--i], ps, reg->n_workers, cfg, out->taken_at);
			out->n_pools++;
		}
		i = n_apps;
		for (struct app_shared *a = reg->apps; ok && a; a = a->next) {
			ok = fill_app(&out->apps[--i], a, reg->n_workers, out->taken_at);
			out->n_apps++;
		}
	}
	pthread_mutex_unlock(&reg->lock);
	if (!ok) {
		/* Free what was filled: entries not reached are still zeroed. */
		out->n_pools = n_pools;
		out->n_apps = n_apps;
		if (!out->pools)
			out->n_pools = 0;
		if (!out->apps)
			out->n_apps = 0;
		stats_snapshot_free(out);
	}
	return ok;
}

void stats_snapshot_free(struct stats_snapshot *s)
{
	for (size_t i = 0; i < s->n_pools; i++) {
		free(s->pools[i].database);
		free(s->pools[i].user);
	}
	for (size_t i = 0; i < s->n_apps; i++)
		free(s->apps[i].name);
	free(s->pools);
	free(s->apps);
	memset(s, 0, sizeof(*s));
}
