#include "proxy/metrics_json.h"
#include "proxy/text_out.h"

#include <stdio.h>

/* A JSON string.  Names come from clients (application_name) and may hold any byte:
 * control characters and bytes outside ASCII are written as \u00XX, so the document
 * is valid whatever they are. */
static void put_string(struct text_out *w, const char *s)
{
	text_put(w, "\"");
	for (const unsigned char *p = (const unsigned char *)s; w->ok && *p; p++) {
		if (*p == '"' || *p == '\\')
			text_put(w, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			text_put(w, "\\u%04x", *p);
		else
			w->ok = evbuffer_add(w->out, p, 1) == 0;
	}
	text_put(w, "\"");
}

static void put_hist(struct text_out *w, const char *name, const uint64_t *hist)
{
	text_put(w, ",\"%s\":[", name);
	for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
		text_put(w, "%s%llu", b ? "," : "", (unsigned long long)hist[b]);
	text_put(w, "]");
}

/* What pools, applications and the sum of pools all have; starts with a comma. */
static void put_totals(struct text_out *w, const struct stats_totals *t)
{
	const long long *cl = t->clients;
	text_put(w,
		 ",\"clients\":{\"login\":%lld,\"idle\":%lld,\"waiting_app\":%lld,\"waiting\":%lld,"
		 "\"active\":%lld,\"closing\":%lld}",
		 cl[STATS_CL_LOGIN], cl[STATS_CL_IDLE], cl[STATS_CL_WAITING_APP],
		 cl[STATS_CL_WAITING], cl[STATS_CL_ACTIVE], cl[STATS_CL_CLOSING]);
	text_put(
		w,
		",\"xact_count\":%llu,\"query_count\":%llu,\"bytes_received\":%llu,\"bytes_sent\":%llu,"
		"\"xact_time_us\":%llu,\"query_time_us\":%llu,\"wait_time_us\":%llu,\"checkouts\":%llu,"
		"\"wait_count\":%llu,\"sheds\":%llu,\"timeouts\":%llu,\"pins\":%llu,"
		"\"pin_warnings\":%llu,\"pin_refusals\":%llu",
		(unsigned long long)t->xact_count, (unsigned long long)t->query_count,
		(unsigned long long)t->bytes_received, (unsigned long long)t->bytes_sent,
		(unsigned long long)t->xact_time_us, (unsigned long long)t->query_time_us,
		(unsigned long long)t->wait_time_us, (unsigned long long)t->checkouts,
		(unsigned long long)t->wait_count, (unsigned long long)t->sheds,
		(unsigned long long)t->timeouts, (unsigned long long)t->pins,
		(unsigned long long)t->pin_warnings, (unsigned long long)t->pin_refusals);
	text_put(
		w,
		",\"xact_p50_us\":%lld,\"xact_p95_us\":%lld,\"xact_p99_us\":%lld,\"wait_p50_us\":%lld,"
		"\"wait_p95_us\":%lld,\"wait_p99_us\":%lld",
		stats_hist_quantile(t->xact_hist, 0.50), stats_hist_quantile(t->xact_hist, 0.95),
		stats_hist_quantile(t->xact_hist, 0.99), stats_hist_quantile(t->wait_hist, 0.50),
		stats_hist_quantile(t->wait_hist, 0.95), stats_hist_quantile(t->wait_hist, 0.99));
	put_hist(w, "xact_hist", t->xact_hist);
	put_hist(w, "wait_hist", t->wait_hist);
}

static void put_pool(struct text_out *w, const struct stats_pool *p,
		     const struct metrics_process *proc)
{
	text_put(w, "{\"database\":");
	put_string(w, p->database);
	text_put(w, ",\"user\":");
	put_string(w, p->user);
	text_put(w, ",\"pool_mode\":\"%s\",\"pool_size\":%d", pool_mode_name(p->pool_mode),
		 p->pool_size);
	int max_conn = metrics_max_connections(proc, p->database);
	if (max_conn >= 0)
		text_put(w, ",\"max_connections\":%d", max_conn);
	else
		text_put(w, ",\"max_connections\":null");
	text_put(w,
		 ",\"servers\":{\"login\":%d,\"idle\":%d,\"active\":%d,\"closing\":%d},"
		 "\"servers_total\":%d,\"queue_depth\":%d,\"maxwait_us\":%lld",
		 p->sv_login, p->sv_idle, p->sv_active, p->sv_closing, p->servers, p->queue_depth,
		 p->maxwait_us);
	put_totals(w, &p->t);
	text_put(w, "}");
}

static void put_app(struct text_out *w, const struct stats_app *a)
{
	text_put(w, "{\"name\":");
	put_string(w, a->name);
	text_put(w,
		 ",\"limit\":%d,\"slots_in_use\":%d,\"queue_depth\":%d,\"maxwait_us\":%lld,"
		 "\"admitted\":%llu",
		 a->limit, a->slots_in_use, a->queue_depth, a->maxwait_us,
		 (unsigned long long)a->t.admitted);
	put_totals(w, &a->t);
	text_put(w, "}");
}

/* Sums of every pool: the whole corral at a glance. */
static void put_sum(struct text_out *w, const struct stats_snapshot *snap)
{
	struct stats_totals sum = {0};
	int pool_size = 0, servers = 0, queue_depth = 0;
	long long maxwait = 0;
	for (size_t i = 0; i < snap->n_pools; i++) {
		const struct stats_pool *p = &snap->pools[i];
		const struct stats_totals *t = &p->t;
		pool_size += p->pool_size;
		servers += p->servers;
		queue_depth += p->queue_depth;
		maxwait = p->maxwait_us > maxwait ? p->maxwait_us : maxwait;
		sum.xact_count += t->xact_count;
		sum.query_count += t->query_count;
		sum.bytes_received += t->bytes_received;
		sum.bytes_sent += t->bytes_sent;
		sum.xact_time_us += t->xact_time_us;
		sum.query_time_us += t->query_time_us;
		sum.wait_time_us += t->wait_time_us;
		sum.checkouts += t->checkouts;
		sum.wait_count += t->wait_count;
		sum.sheds += t->sheds;
		sum.timeouts += t->timeouts;
		sum.pins += t->pins;
		sum.pin_warnings += t->pin_warnings;
		sum.pin_refusals += t->pin_refusals;
		for (int k = 0; k < STATS_CL_GROUPS; k++)
			sum.clients[k] += t->clients[k];
		for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
			sum.xact_hist[b] += t->xact_hist[b];
			sum.wait_hist[b] += t->wait_hist[b];
		}
	}
	text_put(w, "{\"pool_size\":%d,\"servers_total\":%d,\"queue_depth\":%d,\"maxwait_us\":%lld",
		 pool_size, servers, queue_depth, maxwait);
	put_totals(w, &sum);
	text_put(w, "}");
}

bool metrics_json_write(struct evbuffer *out, const struct stats_snapshot *snap,
			const struct metrics_process *proc)
{
	struct text_out w = {.out = out, .ok = true};
	text_put(&w, "{\"ts_ms\":%lld,\"serving\":\"%s\",\"workers\":%d,\"hist_le_us\":[",
		 (long long)proc->unix_ms, serving_name(proc->serving), snap->n_workers);
	for (unsigned b = 0; b + 1 < STATS_HIST_BUCKETS; b++)
		text_put(&w, "%s%lld", b ? "," : "", stats_hist_upper(b) - 1);
	text_put(&w, "],\"totals\":");
	put_sum(&w, snap);
	text_put(&w, ",\"pools\":[");
	for (size_t i = 0; i < snap->n_pools; i++) {
		text_put(&w, i ? "," : "");
		put_pool(&w, &snap->pools[i], proc);
	}
	text_put(&w, "],\"apps\":[");
	for (size_t i = 0; i < snap->n_apps; i++) {
		text_put(&w, i ? "," : "");
		put_app(&w, &snap->apps[i]);
	}
	text_put(&w, "]}\n");
	return w.ok;
}
