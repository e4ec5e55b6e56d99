#include "proxy/stats_period.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/log.h"
#include "pool/stats.h"
#include "proxy/worker.h"

/* A database's totals at the end of a period, and the averages over that period. */
struct db_period {
	char *db;
	struct stats_totals sums; /* only the counters; gauges and histograms unused */
	struct stats_averages avg;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct db_period *dbs; /* under lock */
static size_t n_dbs;
static usec_t last_at;      /* when sums were taken (worker 0 only) */
static struct event *timer; /* worker 0's */

static struct db_period *find(const char *db)
{
	for (size_t i = 0; i < n_dbs; i++)
		if (strcmp(dbs[i].db, db) == 0)
			return &dbs[i];
	return NULL;
}

static void add_counters(struct stats_totals *to, const struct stats_totals *t)
{
	to->checkouts += t->checkouts;
	to->xact_count += t->xact_count;
	to->query_count += t->query_count;
	to->bytes_received += t->bytes_received;
	to->bytes_sent += t->bytes_sent;
	to->xact_time_us += t->xact_time_us;
	to->query_time_us += t->query_time_us;
	to->wait_time_us += t->wait_time_us;
	to->logins += t->logins;
}

/* cur - old, or 0 when the sum went down: a pool freed to make room for others
 * (max_pools, pool/pool_retire.c) takes its counts out of its database's sums, as
 * PgBouncer's freed pools do, and the period is then read as a counter reset. */
static uint64_t grown(uint64_t cur, uint64_t old)
{
	return cur > old ? cur - old : 0;
}

/* PgBouncer's calc_average: counts per second, times per event of their kind. */
static void average(struct stats_averages *avg, const struct stats_totals *cur,
		    const struct stats_totals *old, usec_t dur)
{
	memset(avg, 0, sizeof(*avg));
	if (dur <= 0)
		return;
	uint64_t xacts = grown(cur->xact_count, old->xact_count);
	uint64_t queries = grown(cur->query_count, old->query_count);
	uint64_t checkouts = grown(cur->checkouts, old->checkouts);
	avg->server_assignment_count = USEC_PER_SEC * checkouts / (uint64_t)dur;
	avg->xact_count = USEC_PER_SEC * xacts / (uint64_t)dur;
	avg->query_count = USEC_PER_SEC * queries / (uint64_t)dur;
	avg->recv = USEC_PER_SEC * grown(cur->bytes_received, old->bytes_received) / (uint64_t)dur;
	avg->sent = USEC_PER_SEC * grown(cur->bytes_sent, old->bytes_sent) / (uint64_t)dur;
	avg->client_login_count = USEC_PER_SEC * grown(cur->logins, old->logins) / (uint64_t)dur;
	if (xacts)
		avg->xact_time = grown(cur->xact_time_us, old->xact_time_us) / xacts;
	if (queries)
		avg->query_time = grown(cur->query_time_us, old->query_time_us) / queries;
	if (checkouts)
		avg->wait_time = grown(cur->wait_time_us, old->wait_time_us) / checkouts;
}

/* Sums per database of snap into a new array (NULL, n 0 when out of memory). */
static struct db_period *sum_by_db(const struct stats_snapshot *snap, size_t *n)
{
	struct db_period *out = calloc(snap->n_pools ? snap->n_pools : 1, sizeof(*out));
	*n = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < snap->n_pools; i++) {
		const struct stats_pool *p = &snap->pools[i];
		struct db_period *d = NULL;
		for (size_t j = 0; j < *n && !d; j++)
			if (strcmp(out[j].db, p->database) == 0)
				d = &out[j];
		if (!d) {
			d = &out[*n];
			d->db = strdup(p->database);
			if (!d->db)
				break;
			(*n)++;
		}
		add_counters(&d->sums, &p->t);
	}
	return out;
}

static void free_dbs(struct db_period *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].db);
	free(d);
}

static void on_period(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct stats_snapshot snap;
	if (!stats_snapshot(&w->shared->registry, w->cfg, &snap)) {
		log_warn("event=stats_period_failed error=\"out of memory\"");
		return;
	}
	usec_t now = clock_now_usec();
	size_t n;
	struct db_period *fresh = sum_by_db(&snap, &n);
	stats_snapshot_free(&snap);
	if (!fresh)
		return;
	static const struct stats_totals zero;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++) {
		const struct db_period *old = find(fresh[i].db);
		/* A database new this period started from nothing. */
		average(&fresh[i].avg, &fresh[i].sums, old ? &old->sums : &zero, now - last_at);
	}
	struct db_period *gone = dbs;
	size_t n_gone = n_dbs;
	dbs = fresh;
	n_dbs = n;
	pthread_mutex_unlock(&lock);
	free_dbs(gone, n_gone);
	last_at = now;
}

bool stats_period_start(struct worker *w)
{
	last_at = clock_now_usec();
	timer = event_new(w->base, -1, EV_PERSIST, on_period, w);
	struct timeval tv = {w->cfg->stats_period, 0};
	return timer && event_add(timer, &tv) == 0;
}

void stats_period_stop(struct worker *w)
{
	if (timer)
		event_free(timer);
	timer = NULL;
	pthread_mutex_lock(&lock);
	free_dbs(dbs, n_dbs);
	dbs = NULL;
	n_dbs = 0;
	pthread_mutex_unlock(&lock);
}

void stats_period_averages(const char *db, struct stats_averages *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&lock);
	const struct db_period *d = find(db);
	if (d)
		*out = d->avg;
	pthread_mutex_unlock(&lock);
}
