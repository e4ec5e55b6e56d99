#include "proxy/stats_dump.h"

#include <stdio.h>

#include "common/log.h"

/* The counters both kinds of line carry, after their own fields. */
static void format_totals(char *out, size_t len, const struct stats_totals *t)
{
	const long long *cl = t->clients;
	snprintf(out, len,
		 "cl_login=%lld cl_idle=%lld cl_waiting=%lld cl_waiting_app=%lld cl_active=%lld "
		 "cl_closing=%lld xact_count=%llu query_count=%llu bytes_received=%llu "
		 "bytes_sent=%llu xact_time_us=%llu query_time_us=%llu wait_time_us=%llu "
		 "checkouts=%llu wait_count=%llu sheds=%llu timeouts=%llu admitted=%llu "
		 "xact_p50_us=%lld xact_p95_us=%lld xact_p99_us=%lld wait_p50_us=%lld "
		 "wait_p95_us=%lld wait_p99_us=%lld",
		 cl[STATS_CL_LOGIN], cl[STATS_CL_IDLE], cl[STATS_CL_WAITING],
		 cl[STATS_CL_WAITING_APP], cl[STATS_CL_ACTIVE], cl[STATS_CL_CLOSING],
		 (unsigned long long)t->xact_count, (unsigned long long)t->query_count,
		 (unsigned long long)t->bytes_received, (unsigned long long)t->bytes_sent,
		 (unsigned long long)t->xact_time_us, (unsigned long long)t->query_time_us,
		 (unsigned long long)t->wait_time_us, (unsigned long long)t->checkouts,
		 (unsigned long long)t->wait_count, (unsigned long long)t->sheds,
		 (unsigned long long)t->timeouts, (unsigned long long)t->admitted,
		 stats_hist_quantile(t->xact_hist, 0.50), stats_hist_quantile(t->xact_hist, 0.95),
		 stats_hist_quantile(t->xact_hist, 0.99), stats_hist_quantile(t->wait_hist, 0.50),
		 stats_hist_quantile(t->wait_hist, 0.95), stats_hist_quantile(t->wait_hist, 0.99));
}

void stats_dump_log(struct pool_registry *reg, const struct corral_config *cfg)
{
	static unsigned long long seq; /* only the thread that catches signals dumps */
	struct stats_snapshot snap;
	if (!stats_snapshot(reg, cfg, &snap)) {
		log_error("event=stats_dump_failed error=\"out of memory\"");
		return;
	}
	char totals[1024], db[80], user[80], app[80];
	for (size_t i = 0; i < snap.n_pools; i++) {
		const struct stats_pool *p = &snap.pools[i];
		format_totals(totals, sizeof(totals), &p->t);
		log_msg(LOG_INFO,
			"event=stats_pool db=\"%s\" user=\"%s\" pool_mode=%s pool_size=%d "
			"sv_active=%d sv_idle=%d sv_used=%d sv_login=%d sv_closing=%d servers=%d "
			"queue_depth=%d maxwait_us=%lld %s",
			log_clean(p->database, db, sizeof(db)),
			log_clean(p->user, user, sizeof(user)), pool_mode_name(p->pool_mode),
			p->pool_size, p->sv_active, p->sv_idle, p->sv_used, p->sv_login,
			p->sv_closing, p->servers, p->queue_depth, p->maxwait_us, totals);
	}
	for (size_t i = 0; i < snap.n_apps; i++) {
		const struct stats_app *a = &snap.apps[i];
		format_totals(totals, sizeof(totals), &a->t);
		log_msg(LOG_INFO,
			"event=stats_app app=\"%s\" limit=%d slots_in_use=%d queue_depth=%d "
			"maxwait_us=%lld %s",
			log_clean(a->name, app, sizeof(app)), a->limit, a->slots_in_use,
			a->queue_depth, a->maxwait_us, totals);
	}
	log_msg(LOG_INFO, "event=stats_dump seq=%llu pools=%zu apps=%zu workers=%d", ++seq,
		snap.n_pools, snap.n_apps, snap.n_workers);
	stats_snapshot_free(&snap);
}
