/*
 * What a client's traffic adds to the statistics of its pool and application
 * (pool/stats.h explains each counter).  Called by the client's own worker, so each is
 * a few plain increments of that worker's blocks; times come from timestamps the
 * caller already has.  Inline: the relay calls two of these per read.
 */
#ifndef CORRAL_PROXY_CLIENT_STATS_H
#define CORRAL_PROXY_CLIENT_STATS_H

#include "pool/stats.h"
#include "proxy/client.h"

/* Adds n to the same counter of c's pool and application blocks. */
#define CLIENT_STAT_ADD(c, field, n)                             \
	do {                                                     \
		if ((c)->pool_stats)                             \
			stats_add(&(c)->pool_stats->field, (n)); \
		if ((c)->app_stats)                              \
			stats_add(&(c)->app_stats->field, (n));  \
	} while (0)

static inline void client_stats_hist(struct client *c, int which_wait, long long us)
{
	unsigned b = stats_hist_bucket(us);
	if (which_wait) {
		CLIENT_STAT_ADD(c, wait_hist[b], 1);
	} else {
		CLIENT_STAT_ADD(c, xact_hist[b], 1);
	}
}

/* n bytes of the client's went to its server; a request PostgreSQL now owes an answer
 * to starts the query (and the transaction, if none is open) at `now`. */
static inline void client_stats_sent_to_server(struct client *c, size_t n, bool owed, usec_t now)
{
	struct relay *r = c->relay;
	CLIENT_STAT_ADD(c, bytes_received, (long long)n);
	if (owed && !r->query_start) {
		r->query_start = now;
		if (!r->xact_start)
			r->xact_start = now;
	}
}

/* n bytes of the server's went to the client. */
static inline void client_stats_sent_to_client(struct client *c, size_t n)
{
	CLIENT_STAT_ADD(c, bytes_sent, (long long)n);
}

/* PostgreSQL has answered everything the client sent (its last answer a ReadyForQuery
 * with status tx): a query ends, and a transaction if tx is 'I'. */
static inline void client_stats_answered(struct client *c, char tx, usec_t now)
{
	struct relay *r = c->relay;
	if (!r->query_start)
		return;
	CLIENT_STAT_ADD(c, query_count, 1);
	CLIENT_STAT_ADD(c, query_time_us, now - r->query_start);
	r->query_start = 0;
	if (tx != 'I' || !r->xact_start)
		return;
	long long took = now - r->xact_start;
	CLIENT_STAT_ADD(c, xact_count, 1);
	CLIENT_STAT_ADD(c, xact_time_us, took);
	client_stats_hist(c, 0, took);
	r->xact_start = 0;
}

#endif
