/*
 * pool/stats.c: histogram buckets and quantiles, and snapshots that sum every worker's
 * blocks of a pool and an application (written as the workers would, through the
 * registry's per-worker slots).
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pool/shared.h"
#include "pool/stats.h"

Test(stats_hist, small_values_have_buckets_of_their_own)
{
	cr_expect_eq(stats_hist_bucket(-5), 0);
	cr_expect_eq(stats_hist_bucket(0), 0);
	cr_expect_eq(stats_hist_bucket(1), 1);
	cr_expect_eq(stats_hist_bucket(2), 2);
	cr_expect_eq(stats_hist_bucket(3), 3);
	cr_expect_eq(stats_hist_bucket(4), 4);
	cr_expect_eq(stats_hist_bucket(5), 4);
	cr_expect_eq(stats_hist_bucket(6), 5);
	cr_expect_eq(stats_hist_bucket(7), 5);
	cr_expect_eq(stats_hist_bucket(8), 6);
	cr_expect_eq(stats_hist_bucket(11), 6);
	cr_expect_eq(stats_hist_bucket(12), 7);
	cr_expect_eq(stats_hist_bucket(1000000), 39); /* 1 s: [786432, 1048576) */
	cr_expect_eq(stats_hist_lower(39), 786432);
	cr_expect_eq(stats_hist_upper(39), 1048576);
}

Test(stats_hist, edges_agree_with_buckets)
{
	for (unsigned b = 1; b + 1 < STATS_HIST_BUCKETS; b++) {
		long long lo = stats_hist_lower(b), hi = stats_hist_upper(b);
		cr_assert_lt(lo, hi, "bucket %u", b);
		cr_assert_eq(stats_hist_bucket(lo), b, "lower edge of bucket %u (%lld)", b, lo);
		cr_assert_eq(stats_hist_bucket(hi - 1), b, "last value of bucket %u (%lld)", b,
			     hi - 1);
		cr_assert_eq(stats_hist_bucket(hi), b + 1, "upper edge of bucket %u (%lld)", b, hi);
		/* Two buckets per power of two: never more than 1.5x wide. */
		cr_assert_leq(hi * 2, lo * 3 + 1, "bucket %u is [%lld, %lld)", b, lo, hi);
	}
	cr_expect_eq(stats_hist_bucket(LLONG_MAX), STATS_HIST_BUCKETS - 1);
	cr_expect_eq(stats_hist_upper(STATS_HIST_BUCKETS - 1), LLONG_MAX);
}

Test(stats_hist, quantiles)
{
	uint64_t h[STATS_HIST_BUCKETS] = {0};
	cr_expect_eq(stats_hist_quantile(h, 0.5), 0, "empty");
	h[0] = 10;
	cr_expect_eq(stats_hist_quantile(h, 0.99), 0, "all zero");
	memset(h, 0, sizeof(h));
	for (long long v = 1; v <= 100; v++)
		h[stats_hist_bucket(v)]++;
	/* The 50th value (50) is in [48, 64), the 95th (95) in [64, 96), the 99th in [96, 128). */
	cr_expect_eq(stats_hist_quantile(h, 0.50), 63);
	cr_expect_eq(stats_hist_quantile(h, 0.95), 95);
	cr_expect_eq(stats_hist_quantile(h, 0.99), 127);
	cr_expect_eq(stats_hist_quantile(h, 1.0), 127);
	cr_expect_eq(stats_hist_quantile(h, 0.01), 1);
	/* 99 fast and 1 slow: p99 is fast, the maximum slow. */
	memset(h, 0, sizeof(h));
	h[stats_hist_bucket(100)] = 99;
	h[stats_hist_bucket(1000000)] = 1;
	cr_expect_eq(stats_hist_quantile(h, 0.99), 127);
	cr_expect_eq(stats_hist_quantile(h, 1.0), 1048575);
	/* The open-ended last bucket reports its lower edge. */
	memset(h, 0, sizeof(h));
	h[STATS_HIST_BUCKETS - 1] = 1;
	cr_expect_eq(stats_hist_quantile(h, 0.5), stats_hist_lower(STATS_HIST_BUCKETS - 1));
}

/* ---- snapshots summed over workers --------------------------------------------- */

#define N_WORKERS 3

static struct corral_config cfg;
static struct pool_registry reg;
static char conf_path[64];

static void setup(void)
{
	static const char ini[] = "[corral]\nauth_type = trust\npool_mode = transaction\n"
				  "[databases]\nd = host=127.0.0.1 port=1 dbname=d pool_size=7\n"
				  "[limits]\napp.capped = 4\n";
	strcpy(conf_path, "/tmp/corral-stats-test-XXXXXX");
	int fd = mkstemp(conf_path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
	close(fd);
	char err[256] = "";
	cr_assert(config_load(conf_path, &cfg, err, sizeof(err)), "%s", err);
	cr_assert(pool_registry_init(&reg, N_WORKERS));
}

static void teardown(void)
{
	pool_registry_free(&reg);
	config_free(&cfg);
	unlink(conf_path);
}

TestSuite(stats_snapshot, .init = setup, .fini = teardown);

Test(stats_snapshot, worker_slots_are_cache_lines_apart)
{
	cr_expect_eq(sizeof(struct worker_slot) % CACHE_LINE, 0);
	cr_expect_eq(offsetof(struct worker_slot, stats) % CACHE_LINE, 0);
	cr_expect_geq(offsetof(struct worker_slot, stats), sizeof(((struct worker_slot *)0)->pub));
	struct pool_shared *ps = pool_registry_get(&reg, cfg.dbs[0].name, "u", 0);
	cr_assert_not_null(ps);
	cr_expect_eq((uintptr_t)ps->slots % CACHE_LINE, 0);
}

Test(stats_snapshot, sums_every_worker)
{
	struct pool_shared *ps = pool_registry_get(&reg, cfg.dbs[0].name, "u", 0);
	struct app_shared *app = pool_registry_app(&reg, "capped", 4);
	cr_assert_not_null(ps);
	cr_assert_not_null(app);
	for (int w = 0; w < N_WORKERS; w++) {
		struct stats_block *b = &ps->slots[w].stats;
		stats_add(&b->xact_count, 10 * (w + 1)); /* 10 + 20 + 30 */
		stats_add(&b->query_count, 100);
		stats_add(&b->bytes_received, 1000);
		stats_add(&b->bytes_sent, 2000);
		stats_add(&b->xact_time_us, 5);
		stats_add(&b->wait_time_us, 7);
		stats_add(&b->checkouts, 3);
		stats_add(&b->wait_count, 1);
		stats_add(&b->sheds, w);
		stats_add(&b->timeouts, 1);
		stats_add(&b->clients[STATS_CL_ACTIVE], 2);
		stats_add(&b->clients[STATS_CL_WAITING], w);
		stats_add(&b->servers[STATS_SV_ACTIVE], 2);
		stats_add(&b->servers[STATS_SV_IDLE], 1);
		stats_hist_add(b->xact_hist, 100 * (w + 1));
		stats_hist_add(b->wait_hist, 0);
		atomic_store(&ps->slots[w].pub.waiting, w);
		stats_add(&app->slots[w].stats.sheds, 1);
		stats_add(&app->slots[w].stats.admitted, 2);
		atomic_store(&app->slots[w].pub.waiting, 1);
	}
	atomic_store(&ps->slots[2].pub.oldest, clock_now_usec() - 2 * USEC_PER_SEC);
	atomic_store(&ps->servers, 9);
	atomic_store(&app->active, 4);

	struct stats_snapshot s;
	cr_assert(stats_snapshot(&reg, &cfg, &s));
	cr_assert_eq(s.n_pools, 1);
	cr_assert_eq(s.n_apps, 1);
	cr_expect_eq(s.n_workers, N_WORKERS);
	const struct stats_pool *p = &s.pools[0];
	cr_expect_str_eq(p->database, "d");
	cr_expect_str_eq(p->user, "u");
	cr_expect_eq(p->pool_size, 7);
	cr_expect_eq(p->pool_mode, POOL_MODE_TRANSACTION);
	cr_expect_eq(p->t.xact_count, 60);
	cr_expect_eq(p->t.query_count, 300);
	cr_expect_eq(p->t.bytes_received, 3000);
	cr_expect_eq(p->t.bytes_sent, 6000);
	cr_expect_eq(p->t.xact_time_us, 15);
	cr_expect_eq(p->t.wait_time_us, 21);
	cr_expect_eq(p->t.checkouts, 9);
	cr_expect_eq(p->t.wait_count, 3);
	cr_expect_eq(p->t.sheds, 3);
	cr_expect_eq(p->t.timeouts, 3);
	cr_expect_eq(p->t.clients[STATS_CL_ACTIVE], 6);
	cr_expect_eq(p->t.clients[STATS_CL_WAITING], 3);
	cr_expect_eq(p->sv_active, 6);
	cr_expect_eq(p->sv_idle, 3);
	cr_expect_eq(p->sv_used, 0);
	cr_expect_eq(p->servers, 9);
	cr_expect_eq(p->queue_depth, 3);
	cr_expect_geq(p->maxwait_us, 2 * USEC_PER_SEC);
	cr_expect_lt(p->maxwait_us, 60 * USEC_PER_SEC);
	/* 100, 200, 300 µs: the median is 200, in [192, 256). */
	cr_expect_eq(stats_hist_quantile(p->t.xact_hist, 0.5), 255);
	cr_expect_eq(stats_hist_quantile(p->t.wait_hist, 0.99), 0);

	const struct stats_app *a = &s.apps[0];
	cr_expect_str_eq(a->name, "capped");
	cr_expect_eq(a->limit, 4);
	cr_expect_eq(a->slots_in_use, 4);
	cr_expect_eq(a->queue_depth, N_WORKERS);
	cr_expect_eq(a->t.sheds, N_WORKERS);
	cr_expect_eq(a->t.admitted, 2 * N_WORKERS);
	cr_expect_eq(a->maxwait_us, 0);
	stats_snapshot_free(&s);
	cr_expect_eq(s.n_pools, 0);
}

Test(stats_snapshot, unlimited_applications_past_the_cap_share_one_record)
{
	char name[32];
	struct app_shared *first = NULL;
	for (int i = 0; i < STATS_MAX_APPS; i++) {
		snprintf(name, sizeof(name), "fn%d", i);
		struct app_shared *a = pool_registry_app(&reg, name, 0);
		cr_assert_not_null(a);
		/* Each in use: an idle one would be retired to make room (test_pool_retire.c). */
		cr_assert(app_shared_attach(a));
		if (!first)
			first = a;
	}
	cr_expect_eq(pool_registry_app(&reg, "fn0", 0), first, "found again, not made twice");
	struct app_shared *other = pool_registry_app(&reg, "one-too-many", 0);
	cr_assert_not_null(other);
	cr_expect_str_eq(other->app, STATS_OTHER_APP);
	cr_expect_eq(pool_registry_app(&reg, "and-another", 0), other);
	/* A limited application always gets its own (its tokens are its own). */
	struct app_shared *capped = pool_registry_app(&reg, "capped", 4);
	cr_expect_neq(capped, other);
	cr_expect_eq(capped->limit, 4);

	struct stats_snapshot s;
	cr_assert(stats_snapshot(&reg, &cfg, &s));
	cr_expect_eq(s.n_apps, STATS_MAX_APPS + 2);
	cr_expect_str_eq(s.apps[0].name, "fn0", "oldest first");
	stats_snapshot_free(&s);
}
