/*
 * PgBouncer's avg_* figures: every stats_period seconds a timer on worker 0 sums the
 * statistics per database and keeps the rates between that sum and the one before
 * (per second, or per transaction / query / checkout for times), as PgBouncer's
 * refresh_stats does.  Readers on any worker take a copy under a lock (the console is
 * not a hot path; the timer runs once a period).
 */
#ifndef CORRAL_PROXY_STATS_PERIOD_H
#define CORRAL_PROXY_STATS_PERIOD_H

#include <stdbool.h>
#include <stdint.h>

struct worker;

/* The averages of one database over the last complete period. */
struct stats_averages {
	uint64_t server_assignment_count; /* checkouts per second */
	uint64_t xact_count, query_count; /* per second */
	uint64_t recv, sent;              /* bytes per second */
	uint64_t xact_time, query_time;   /* µs per transaction, per query */
	uint64_t wait_time;               /* µs per checkout */
	uint64_t client_login_count;      /* per second */
};

/* Starts the timer on w (worker 0 only); false when it cannot. */
bool stats_period_start(struct worker *w);
/* Stops it and forgets every average (w's shutdown). */
void stats_period_stop(struct worker *w);
/* db's averages into *out (all 0 before the first period has ended or for a database
 * not seen then). */
void stats_period_averages(const char *db, struct stats_averages *out);

#endif
