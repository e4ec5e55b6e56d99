/*
 * Statistics of pools (database, user) and applications (application_name), counted
 * per worker and summed on read (memcached's threadlocal_stats_aggregate).
 *
 * Writing: every pool and application record has one struct stats_block per worker
 * (pool/shared.h: struct worker_slot), on cache lines of its own, written only by
 * that worker's thread.  A counter is bumped with stats_add: a relaxed load and a
 * relaxed store of the new value, which compile to plain moves on x86-64 (no lock
 * prefix), so the hot path costs what a plain increment costs.
 *
 * Reading: stats_snapshot, from any thread, sums every worker's blocks with relaxed
 * loads.  Each field is read whole (no torn values), but fields are read one after the
 * other while workers go on counting: a snapshot is consistent per field, and counts
 * of one event (xact_count and xact_time_us) may be one event apart.
 *
 * What the counters mean (PgBouncer's SHOW STATS where the name is the same):
 *   xact_count      transactions that ended: a ReadyForQuery 'I' after the client's
 *                   request(s), once PostgreSQL owed it nothing more (an autocommit
 *                   statement is one transaction, BEGIN ... COMMIT another)
 *   query_count     requests answered: each time PostgreSQL has answered everything
 *                   the client sent, ending with a ReadyForQuery (a pipeline counts once,
 *                   as in PgBouncer)
 *   bytes_received  bytes relayed from clients to servers (total_received)
 *   bytes_sent      bytes relayed from servers to clients (total_sent)
 *   xact_time_us    time from a transaction's first request reaching its server to the
 *                   ReadyForQuery 'I' that ended it (total_xact_time)
 *   query_time_us   time from a request reaching its server to its last answer
 *                   (total_query_time)
 *   wait_time_us    time clients spent queued (application slot and server) before
 *                   they got a server (total_wait_time)
 *   checkouts       servers handed to clients (PgBouncer's server_assignment_count;
 *                   avg_wait_time = wait_time_us / checkouts)
 *   wait_count      checkouts that had to queue first
 *   sheds           clients refused with 53400 (max_queue_depth of the application's
 *                   or the pool's queue)
 *   timeouts        clients refused with 57014 after query_wait_timeout in a queue
 *   admitted        checkouts of clients holding an application slot ([limits]; 0 for
 *                   unlimited applications)
 *   logins          clients that logged in (total_client_login_count)
 *   pins            clients that kept their server for the session because of SQL whose
 *                   state corral cannot carry (pin_policy = pin; proxy/pin.h)
 *   pin_warnings    notices sent instead (pin_policy = warn; once per client)
 *   pin_refusals    statements refused instead (pin_policy = error)
 *   pin_by_reason   the three above by reason (enum pin_reason, proxy/pin_scan.h)
 *   xact_hist       transactions by xact time (log buckets, stats_hist_bucket)
 *   wait_hist       checkouts by wait time (0 for those that did not queue)
 */
#ifndef CORRAL_POOL_STATS_H
#define CORRAL_POOL_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "pool/config.h"

/* Buckets of a latency histogram in microseconds: 0, 1, then two per power of two
 * ([2^e, 1.5 * 2^e) and [1.5 * 2^e, 2^(e+1))), the last one open-ended (from about
 * 35 minutes on).  An estimate read from it is within 1.5x of the true value. */
#define STATS_HIST_BUCKETS 64

typedef atomic_llong stats_counter;

/* What was done about SQL that cannot be carried (pin_policy), and why: proxy/pin_scan.h's
 * enum pin_reason has at most STATS_PIN_REASONS values (proxy/pin.c checks). */
enum stats_pin_action { STATS_PIN, STATS_PIN_WARN, STATS_PIN_REFUSE, STATS_PIN_ACTIONS };
#define STATS_PIN_REASONS 10

/* Clients of a pool or application by state group; they mirror a worker's client
 * lists (proxy/client_lists.h). */
enum stats_client_group {
	STATS_CL_LOGIN,       /* authenticated, waiting for the pool's first server login */
	STATS_CL_IDLE,        /* logged in, no server, nothing asked */
	STATS_CL_WAITING_APP, /* queued for an application slot ([limits]) */
	STATS_CL_WAITING,     /* queued for a server */
	STATS_CL_ACTIVE,      /* linked to a server */
	STATS_CL_CLOSING,     /* flushing a last error */
	STATS_CL_GROUPS
};

/* Servers of a pool by state (pool/server.h's SV_*, closed ones not counted). */
enum stats_server_group {
	STATS_SV_LOGIN,
	STATS_SV_IDLE,
	STATS_SV_ACTIVE,
	STATS_SV_CLOSING,
	STATS_SV_GROUPS
};

/* One worker's counters and gauges for one pool or application. */
struct stats_block {
	stats_counter xact_count, query_count;
	stats_counter bytes_received, bytes_sent;
	stats_counter xact_time_us, query_time_us, wait_time_us;
	stats_counter checkouts, wait_count, sheds, timeouts, admitted;
	stats_counter logins;
	stats_counter pin_by_reason[STATS_PIN_ACTIONS][STATS_PIN_REASONS];
	stats_counter clients[STATS_CL_GROUPS]; /* gauges: this worker's clients now */
	stats_counter servers[STATS_SV_GROUPS]; /* gauges: this worker's servers now (pools) */
	stats_counter xact_hist[STATS_HIST_BUCKETS];
	stats_counter wait_hist[STATS_HIST_BUCKETS];
};

/* Only the worker that owns b may call these (a single writer per block). */
static inline void stats_add(stats_counter *c, long long n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline long long stats_read(const stats_counter *c)
{
	return atomic_load_explicit((stats_counter *)c, memory_order_relaxed);
}

/* The bucket of a duration in microseconds (negative counts as 0). */
static inline unsigned stats_hist_bucket(long long us)
{
	if (us <= 1)
		return us <= 0 ? 0 : 1;
	unsigned e = 63u - (unsigned)__builtin_clzll((unsigned long long)us); /* >= 1 */
	unsigned b = 2 * e + (unsigned)((us >> (e - 1)) & 1);
	return b < STATS_HIST_BUCKETS ? b : STATS_HIST_BUCKETS - 1;
}

/* The lowest value of bucket b, and the first value past it (LLONG_MAX: the last). */
long long stats_hist_lower(unsigned b);
long long stats_hist_upper(unsigned b);

static inline void stats_hist_add(stats_counter *hist, long long us)
{
	stats_add(&hist[stats_hist_bucket(us)], 1);
}

/* The p-quantile (0 < p <= 1) of a summed histogram: the upper edge of the bucket that
 * holds it minus one (so 0 stays 0), the lowest edge for the last bucket; 0 if empty. */
long long stats_hist_quantile(const uint64_t *hist, double p);

/* ---- snapshots ------------------------------------------------------------------ */

/* A stats_block summed over workers. */
struct stats_totals {
	uint64_t xact_count, query_count;
	uint64_t bytes_received, bytes_sent;
	uint64_t xact_time_us, query_time_us, wait_time_us;
	uint64_t checkouts, wait_count, sheds, timeouts, admitted;
	uint64_t logins;
	uint64_t pins, pin_warnings, pin_refusals; /* sums of pin_by_reason */
	uint64_t pin_by_reason[STATS_PIN_ACTIONS][STATS_PIN_REASONS];
	long long clients[STATS_CL_GROUPS];
	long long servers[STATS_SV_GROUPS];
	uint64_t xact_hist[STATS_HIST_BUCKETS];
	uint64_t wait_hist[STATS_HIST_BUCKETS];
};

/* Adds one worker's block into t. */
void stats_totals_add(struct stats_totals *t, const struct stats_block *b);

struct stats_pool {
	char *database, *user;
	enum pool_mode pool_mode;
	int pool_size;
	/* Servers of the pool over all workers (PgBouncer's SHOW POOLS): sv_active linked
	 * (or reserved for a waiter), sv_idle, sv_login, sv_closing (Terminate sent, the
	 * backend not gone yet: still counted against pool_size), sv_used (always 0: corral
	 * does not test servers before reuse). */
	int sv_active, sv_idle, sv_used, sv_login, sv_closing;
	int servers;          /* slots taken: every server from login start to close */
	int queue_depth;      /* clients queued for a server now (welcome waits included) */
	long long maxwait_us; /* how long the longest of them has waited (0: none) */
	struct stats_totals t;
};

struct stats_app {
	char *name;           /* application_name; "(other)" for names past STATS_MAX_APPS */
	int limit;            /* [limits] slots; 0: no limit */
	int slots_in_use;     /* transactions holding a slot now (limited applications) */
	int queue_depth;      /* clients queued for a slot now */
	long long maxwait_us; /* how long the longest of them has waited (0: none) */
	struct stats_totals t;
};

struct stats_snapshot {
	usec_t taken_at; /* clock_now_usec() when it was taken */
	int n_workers;
	size_t n_pools, n_apps;
	struct stats_pool *pools;
	struct stats_app *apps;
};

struct pool_registry;

/* Sums every worker's blocks of every pool and application of reg; safe from any
 * thread (takes reg->lock only to walk the record lists).  Pool size and mode come
 * from cfg.  False when out of memory (out is then empty). */
bool stats_snapshot(struct pool_registry *reg, const struct corral_config *cfg,
		    struct stats_snapshot *out) WARN_UNUSED;
void stats_snapshot_free(struct stats_snapshot *s);

#endif
