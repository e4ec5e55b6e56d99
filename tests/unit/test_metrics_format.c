/*
 * proxy/metrics_prom.c and proxy/metrics_json.c on a hand-made snapshot: names that need
 * escaping, histogram edges and counts, the serving state, max_connections known or not.
 * (The integration tests parse real output strictly: tests/integration/test_metrics.c.)
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics_json.h"
#include "proxy/metrics_prom.h"

/* One pool, one application named with every kind of byte that needs care. */
static const char odd_name[] = "a\"b\\c\nd\xff";

static void fill(struct stats_snapshot *s, struct stats_pool *p, struct stats_app *a)
{
	memset(s, 0, sizeof(*s));
	memset(p, 0, sizeof(*p));
	memset(a, 0, sizeof(*a));
	p->database = "db";
	p->user = "u\"x";
	p->pool_mode = POOL_MODE_TRANSACTION;
	p->pool_size = 7;
	p->sv_idle = 3;
	p->t.xact_count = 3;
	p->t.xact_time_us = 1500001;
	p->t.xact_hist[stats_hist_bucket(0)] = 1;
	p->t.xact_hist[stats_hist_bucket(5)] = 1;
	p->t.xact_hist[STATS_HIST_BUCKETS - 1] = 1;
	a->name = (char *)odd_name;
	a->limit = 2;
	a->t.sheds = 4;
	s->n_workers = 2;
	s->pools = p;
	s->n_pools = 1;
	s->apps = a;
	s->n_apps = 1;
}

static char *text_of(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

Test(metrics_format, prometheus_text)
{
	struct stats_snapshot s;
	struct stats_pool p;
	struct stats_app a;
	fill(&s, &p, &a);
	struct metrics_db_limit lim = {"db", 50};
	struct metrics_process proc = {.serving = SERVING_PAUSED,
				       .db_limits = &lim,
				       .n_db_limits = 1};
	struct evbuffer *b = evbuffer_new();
	cr_assert(metrics_prom_write(b, &s, &proc));
	char *t = text_of(b);
	const char *want[] = {
		"corral_serving_state{state=\"paused\"} 1\n",
		"corral_serving_state{state=\"serving\"} 0\n",
		"corral_workers 2\n",
		"corral_database_max_connections{database=\"db\"} 50\n",
		"corral_pool_size{database=\"db\",user=\"u\\\"x\"} 7\n",
		"corral_pool_servers{database=\"db\",user=\"u\\\"x\",state=\"idle\"} 3\n",
		"# TYPE corral_pool_transaction_duration_seconds histogram\n",
		/* bucket 0 holds 0 us, bucket 4 holds 4 and 5 us: le is the largest value. */
		"_bucket{database=\"db\",user=\"u\\\"x\",le=\"0.000000\"} 1\n",
		"_bucket{database=\"db\",user=\"u\\\"x\",le=\"0.000005\"} 2\n",
		"_bucket{database=\"db\",user=\"u\\\"x\",le=\"+Inf\"} 3\n",
		"corral_pool_transaction_duration_seconds_sum{database=\"db\",user=\"u\\\"x\"} "
		"1.500001\n",
		"corral_pool_transaction_duration_seconds_count{database=\"db\",user=\"u\\\"x\"} 3\n",
		"corral_app_sheds_total{app=\"a\\\"b\\\\c\\nd\\\\xFF\"} 4\n",
		"corral_app_limit{app=\"a\\\"b\\\\c\\nd\\\\xFF\"} 2\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect(strstr(t, want[i]) != NULL, "no %s in:\n%s", want[i], t);
	/* The bucket before +Inf still has only 2: the last one is open-ended. */
	cr_expect(strstr(t, "le=\"3221.225471\"} 2\n") != NULL, "%s", t);
	for (const char *c = t; *c; c++)
		cr_assert((unsigned char)*c < 0x80, "a byte outside ASCII in the output");
	free(t);

	/* Without a known max_connections the family is left out. */
	lim.max_connections = -1;
	b = evbuffer_new();
	cr_assert(metrics_prom_write(b, &s, &proc));
	t = text_of(b);
	cr_expect(strstr(t, "corral_database_max_connections") == NULL);
	free(t);
}

Test(metrics_format, json)
{
	struct stats_snapshot s;
	struct stats_pool p;
	struct stats_app a;
	fill(&s, &p, &a);
	struct metrics_process proc = {.serving = SERVING_UP, .unix_ms = 1234};
	struct evbuffer *b = evbuffer_new();
	cr_assert(metrics_json_write(b, &s, &proc));
	char *t = text_of(b);
	const char *want[] = {
		"{\"ts_ms\":1234,\"serving\":\"serving\",\"workers\":2,\"hist_le_us\":[0,1,2,3,5,",
		"\"pools\":[{\"database\":\"db\",\"user\":\"u\\\"x\",\"pool_mode\":\"transaction\","
		"\"pool_size\":7,\"max_connections\":null,",
		"\"name\":\"a\\\"b\\\\c\\u000ad\\u00ff\",\"limit\":2,",
		"\"sheds\":4,",
		"\"xact_p50_us\":5,",
		"\"totals\":{\"pool_size\":7,",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect(strstr(t, want[i]) != NULL, "no %s in:\n%s", want[i], t);
	free(t);
}
