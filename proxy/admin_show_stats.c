/*
 * SHOW POOLS, STATS, STATS_TOTALS, STATS_AVERAGES and APPS, from one statistics snapshot
 * (pool/stats.h: summed over workers, readable from any thread).  PgBouncer's columns
 * come first with its meanings; corral's own follow.
 */
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"
#include "pool/stats.h"
#include "proxy/admin_show.h"
#include "proxy/pin_scan.h"
#include "proxy/stats_period.h"
#include "proxy/worker.h"

static bool take_snapshot(struct admin_ctx *ctx, struct stats_snapshot *snap)
{
	return stats_snapshot(&ctx->w->shared->registry, ctx->w->cfg, snap);
}

static enum admin_result no_memory(struct admin_ctx *ctx)
{
	return admin_error(ctx, "53200", "out of memory");
}

/* ---- SHOW POOLS ---------------------------------------------------------------------- */

static const struct admin_col pool_cols[] = {
	{"database", ADMIN_TEXT},
	{"user", ADMIN_TEXT},
	{"cl_active", ADMIN_INT4},
	{"cl_waiting", ADMIN_INT4},
	{"cl_active_cancel_req", ADMIN_INT4},
	{"cl_waiting_cancel_req", ADMIN_INT4},
	{"sv_active", ADMIN_INT4},
	{"sv_active_cancel", ADMIN_INT4},
	{"sv_being_canceled", ADMIN_INT4},
	{"sv_idle", ADMIN_INT4},
	{"sv_used", ADMIN_INT4},
	{"sv_tested", ADMIN_INT4},
	{"sv_login", ADMIN_INT4},
	{"maxwait", ADMIN_INT4},
	{"maxwait_us", ADMIN_INT4},
	{"pool_mode", ADMIN_TEXT},
	{"load_balance_hosts", ADMIN_TEXT},
	/* corral's */
	{"cl_idle", ADMIN_INT4},
	{"cl_linked", ADMIN_INT4},
	{"cl_waiting_server", ADMIN_INT4},
	{"cl_waiting_app", ADMIN_INT4},
	{"cl_welcome_wait", ADMIN_INT4},
	{"sv_closing", ADMIN_INT4},
	{"pool_size", ADMIN_INT4},
	{"pinned", ADMIN_NUMERIC}, /* clients that kept their server (pin_policy = pin) */
};

static void pool_row(struct admin_row *r, const struct stats_pool *p)
{
	const long long *cl = p->t.clients;
	admin_row_text(r, p->database);
	admin_row_text(r, p->user);
	/* PgBouncer's cl_active is every logged-in client that is not waiting: linked or
	 * idle.  Its cl_waiting: clients that asked and have no server yet, which here
	 * includes those queued for their application's slot and for the first login. */
	admin_row_int(r, cl[STATS_CL_IDLE] + cl[STATS_CL_ACTIVE]);
	admin_row_int(r, cl[STATS_CL_WAITING] + cl[STATS_CL_WAITING_APP] + cl[STATS_CL_LOGIN]);
	admin_row_int(r, 0); /* cancels go straight to PostgreSQL; nothing queues for one */
	admin_row_int(r, 0);
	admin_row_int(r, p->sv_active);
	admin_row_int(r, 0);
	admin_row_int(r, 0);
	admin_row_int(r, p->sv_idle);
	admin_row_int(r, p->sv_used);
	admin_row_int(r, 0); /* no server_check_query */
	admin_row_int(r, p->sv_login);
	admin_row_int(r, p->maxwait_us / USEC_PER_SEC);
	admin_row_int(r, p->maxwait_us % USEC_PER_SEC);
	admin_row_text(r, pool_mode_name(p->pool_mode));
	admin_row_null(r);
	admin_row_int(r, cl[STATS_CL_IDLE]);
	admin_row_int(r, cl[STATS_CL_ACTIVE]);
	admin_row_int(r, cl[STATS_CL_WAITING]);
	admin_row_int(r, cl[STATS_CL_WAITING_APP]);
	admin_row_int(r, cl[STATS_CL_LOGIN]);
	admin_row_int(r, p->sv_closing);
	admin_row_int(r, p->pool_size);
	admin_row_uint(r, p->t.pins);
}

static void app_row(struct admin_row *r, const struct stats_app *a);

/* One row per pool (apps false) or per application of a fresh snapshot. */
static enum admin_result show_snapshot_rows(struct admin_ctx *ctx, const struct admin_col *cols,
					    size_t n_cols, bool apps)
{
	struct stats_snapshot snap;
	if (!take_snapshot(ctx, &snap))
		return no_memory(ctx);
	admin_put_row_description(ctx->out, cols, n_cols);
	bool ok = true;
	for (size_t i = 0; i < (apps ? snap.n_apps : snap.n_pools); i++) {
		struct admin_row r = {0};
		if (apps)
			app_row(&r, &snap.apps[i]);
		else
			pool_row(&r, &snap.pools[i]);
		ok = admin_row_end(&r, ctx->out) && ok;
	}
	stats_snapshot_free(&snap);
	if (!ok)
		return no_memory(ctx);
	admin_put_complete(ctx->out, "SHOW");
	return ADMIN_DONE;
}

enum admin_result admin_show_pools(struct admin_ctx *ctx)
{
	return show_snapshot_rows(ctx, pool_cols, ARRAY_SIZE(pool_cols), false);
}

/* ---- SHOW STATS, STATS_TOTALS, STATS_AVERAGES ------------------------------------------ */

/* PgBouncer's statistics are per database: the pools of one database summed. */
struct db_sum {
	const char *db;
	struct stats_totals t;
};

static struct db_sum *sum_by_db(const struct stats_snapshot *snap, size_t *n)
{
	struct db_sum *out = calloc(snap->n_pools ? snap->n_pools : 1, sizeof(*out));
	*n = 0;
	for (size_t i = 0; out && i < snap->n_pools; i++) {
		const struct stats_pool *p = &snap->pools[i];
		struct db_sum *d = NULL;
		for (size_t j = 0; j < *n && !d; j++)
			if (strcmp(out[j].db, p->database) == 0)
				d = &out[j];
		if (!d) {
			d = &out[(*n)++];
			d->db = p->database;
		}
		struct stats_totals *t = &d->t;
		t->checkouts += p->t.checkouts;
		t->xact_count += p->t.xact_count;
		t->query_count += p->t.query_count;
		t->bytes_received += p->t.bytes_received;
		t->bytes_sent += p->t.bytes_sent;
		t->xact_time_us += p->t.xact_time_us;
		t->query_time_us += p->t.query_time_us;
		t->wait_time_us += p->t.wait_time_us;
		t->logins += p->t.logins;
		t->sheds += p->t.sheds;
		t->timeouts += p->t.timeouts;
		for (int b = 0; b < STATS_HIST_BUCKETS; b++) {
			t->xact_hist[b] += p->t.xact_hist[b];
			t->wait_hist[b] += p->t.wait_hist[b];
		}
	}
	return out;
}

enum stats_view { VIEW_ALL, VIEW_TOTALS, VIEW_AVERAGES };

static const struct admin_col stats_cols[] = {
	{"database", ADMIN_TEXT},
	{"total_server_assignment_count", ADMIN_NUMERIC},
	{"total_xact_count", ADMIN_NUMERIC},
	{"total_query_count", ADMIN_NUMERIC},
	{"total_received", ADMIN_NUMERIC},
	{"total_sent", ADMIN_NUMERIC},
	{"total_xact_time", ADMIN_NUMERIC},
	{"total_query_time", ADMIN_NUMERIC},
	{"total_wait_time", ADMIN_NUMERIC},
	{"total_client_parse_count", ADMIN_NUMERIC},
	{"total_server_parse_count", ADMIN_NUMERIC},
	{"total_bind_count", ADMIN_NUMERIC},
	{"total_client_login_count", ADMIN_NUMERIC},
	{"avg_server_assignment_count", ADMIN_NUMERIC},
	{"avg_xact_count", ADMIN_NUMERIC},
	{"avg_query_count", ADMIN_NUMERIC},
	{"avg_recv", ADMIN_NUMERIC},
	{"avg_sent", ADMIN_NUMERIC},
	{"avg_xact_time", ADMIN_NUMERIC},
	{"avg_query_time", ADMIN_NUMERIC},
	{"avg_wait_time", ADMIN_NUMERIC},
	{"avg_client_parse_count", ADMIN_NUMERIC},
	{"avg_server_parse_count", ADMIN_NUMERIC},
	{"avg_bind_count", ADMIN_NUMERIC},
	{"avg_client_login_count", ADMIN_NUMERIC},
	/* corral's */
	{"total_sheds", ADMIN_NUMERIC},
	{"total_timeouts", ADMIN_NUMERIC},
	{"xact_p50_us", ADMIN_NUMERIC},
	{"xact_p99_us", ADMIN_NUMERIC},
	{"wait_p50_us", ADMIN_NUMERIC},
	{"wait_p99_us", ADMIN_NUMERIC},
};

/* PgBouncer's SHOW STATS_TOTALS and STATS_AVERAGES name their columns alike (the last
 * four of STATS_AVERAGES keep their avg_ prefix there). */
static const struct admin_col totals_cols[] = {
	{"database", ADMIN_TEXT},
	{"server_assignment_count", ADMIN_NUMERIC},
	{"xact_count", ADMIN_NUMERIC},
	{"query_count", ADMIN_NUMERIC},
	{"bytes_received", ADMIN_NUMERIC},
	{"bytes_sent", ADMIN_NUMERIC},
	{"xact_time", ADMIN_NUMERIC},
	{"query_time", ADMIN_NUMERIC},
	{"wait_time", ADMIN_NUMERIC},
	{"client_parse_count", ADMIN_NUMERIC},
	{"server_parse_count", ADMIN_NUMERIC},
	{"bind_count", ADMIN_NUMERIC},
	{"client_login_count", ADMIN_NUMERIC},
};

static const struct admin_col averages_cols[] = {
	{"database", ADMIN_TEXT},
	{"server_assignment_count", ADMIN_NUMERIC},
	{"xact_count", ADMIN_NUMERIC},
	{"query_count", ADMIN_NUMERIC},
	{"bytes_received", ADMIN_NUMERIC},
	{"bytes_sent", ADMIN_NUMERIC},
	{"xact_time", ADMIN_NUMERIC},
	{"query_time", ADMIN_NUMERIC},
	{"wait_time", ADMIN_NUMERIC},
	{"avg_client_parse_count", ADMIN_NUMERIC},
	{"avg_server_parse_count", ADMIN_NUMERIC},
	{"avg_bind_count", ADMIN_NUMERIC},
	{"avg_client_login_count", ADMIN_NUMERIC},
};

static void totals_values(struct admin_row *r, const struct stats_totals *t)
{
	admin_row_uint(r, t->checkouts);
	admin_row_uint(r, t->xact_count);
	admin_row_uint(r, t->query_count);
	admin_row_uint(r, t->bytes_received);
	admin_row_uint(r, t->bytes_sent);
	admin_row_uint(r, t->xact_time_us);
	admin_row_uint(r, t->query_time_us);
	admin_row_uint(r, t->wait_time_us);
	/* Protocol-level prepared statements are not tracked (session pooling keeps them),
	 * so none are counted, as in PgBouncer without max_prepared_statements. */
	admin_row_uint(r, 0);
	admin_row_uint(r, 0);
	admin_row_uint(r, 0);
	admin_row_uint(r, t->logins);
}

static void averages_values(struct admin_row *r, const char *db)
{
	struct stats_averages a;
	stats_period_averages(db, &a);
	admin_row_uint(r, a.server_assignment_count);
	admin_row_uint(r, a.xact_count);
	admin_row_uint(r, a.query_count);
	admin_row_uint(r, a.recv);
	admin_row_uint(r, a.sent);
	admin_row_uint(r, a.xact_time);
	admin_row_uint(r, a.query_time);
	admin_row_uint(r, a.wait_time);
	admin_row_uint(r, 0);
	admin_row_uint(r, 0);
	admin_row_uint(r, 0);
	admin_row_uint(r, a.client_login_count);
}

static enum admin_result show_stats_view(struct admin_ctx *ctx, enum stats_view view)
{
	struct stats_snapshot snap;
	if (!take_snapshot(ctx, &snap))
		return no_memory(ctx);
	size_t n;
	struct db_sum *dbs = sum_by_db(&snap, &n);
	bool ok = dbs != NULL;
	if (view == VIEW_ALL)
		admin_put_row_description(ctx->out, stats_cols, ARRAY_SIZE(stats_cols));
	else if (view == VIEW_TOTALS)
		admin_put_row_description(ctx->out, totals_cols, ARRAY_SIZE(totals_cols));
	else
		admin_put_row_description(ctx->out, averages_cols, ARRAY_SIZE(averages_cols));
	for (size_t i = 0; ok && i < n; i++) {
		const struct stats_totals *t = &dbs[i].t;
		struct admin_row r = {0};
		admin_row_text(&r, dbs[i].db);
		if (view != VIEW_AVERAGES)
			totals_values(&r, t);
		if (view != VIEW_TOTALS)
			averages_values(&r, dbs[i].db);
		if (view == VIEW_ALL) {
			admin_row_uint(&r, t->sheds);
			admin_row_uint(&r, t->timeouts);
			admin_row_int(&r, stats_hist_quantile(t->xact_hist, 0.50));
			admin_row_int(&r, stats_hist_quantile(t->xact_hist, 0.99));
			admin_row_int(&r, stats_hist_quantile(t->wait_hist, 0.50));
			admin_row_int(&r, stats_hist_quantile(t->wait_hist, 0.99));
		}
		ok = admin_row_end(&r, ctx->out);
	}
	free(dbs);
	stats_snapshot_free(&snap);
	if (!ok)
		return no_memory(ctx);
	admin_put_complete(ctx->out, "SHOW");
	return ADMIN_DONE;
}

enum admin_result admin_show_stats(struct admin_ctx *ctx)
{
	return show_stats_view(ctx, VIEW_ALL);
}

enum admin_result admin_show_stats_totals(struct admin_ctx *ctx)
{
	return show_stats_view(ctx, VIEW_TOTALS);
}

enum admin_result admin_show_stats_averages(struct admin_ctx *ctx)
{
	return show_stats_view(ctx, VIEW_AVERAGES);
}

/* ---- SHOW APPS (corral's: per application_name, i.e. per function) --------------------- */

static const struct admin_col app_cols[] = {
	{"application_name", ADMIN_TEXT}, {"limit", ADMIN_INT4},
	{"active", ADMIN_INT4},           {"waiting", ADMIN_INT4},
	{"slots_in_use", ADMIN_INT4},     {"queue_depth", ADMIN_INT4},
	{"cl_idle", ADMIN_INT4},          {"maxwait", ADMIN_INT4},
	{"maxwait_us", ADMIN_INT4},       {"xact_count", ADMIN_NUMERIC},
	{"checkouts", ADMIN_NUMERIC},     {"admitted", ADMIN_NUMERIC},
	{"shed", ADMIN_NUMERIC},          {"timed_out", ADMIN_NUMERIC},
	{"wait_p50_us", ADMIN_NUMERIC},   {"wait_p99_us", ADMIN_NUMERIC},
	{"xact_p50_us", ADMIN_NUMERIC},   {"xact_p99_us", ADMIN_NUMERIC},
	{"pinned", ADMIN_NUMERIC},
};

static void app_row(struct admin_row *r, const struct stats_app *a)
{
	const long long *cl = a->t.clients;
	admin_row_text(r, a->name);
	admin_row_int(r, a->limit);
	admin_row_int(r, cl[STATS_CL_ACTIVE]);
	admin_row_int(r, cl[STATS_CL_WAITING] + cl[STATS_CL_WAITING_APP] + cl[STATS_CL_LOGIN]);
	admin_row_int(r, a->slots_in_use);
	admin_row_int(r, a->queue_depth);
	admin_row_int(r, cl[STATS_CL_IDLE]);
	admin_row_int(r, a->maxwait_us / USEC_PER_SEC);
	admin_row_int(r, a->maxwait_us % USEC_PER_SEC);
	admin_row_uint(r, a->t.xact_count);
	admin_row_uint(r, a->t.checkouts);
	admin_row_uint(r, a->t.admitted);
	admin_row_uint(r, a->t.sheds);
	admin_row_uint(r, a->t.timeouts);
	admin_row_int(r, stats_hist_quantile(a->t.wait_hist, 0.50));
	admin_row_int(r, stats_hist_quantile(a->t.wait_hist, 0.99));
	admin_row_int(r, stats_hist_quantile(a->t.xact_hist, 0.50));
	admin_row_int(r, stats_hist_quantile(a->t.xact_hist, 0.99));
	admin_row_uint(r, a->t.pins);
}

enum admin_result admin_show_apps(struct admin_ctx *ctx)
{
	return show_snapshot_rows(ctx, app_cols, ARRAY_SIZE(app_cols), true);
}

/* ---- SHOW PINS (corral's: what pin_policy did, and why; proxy/pin.h) -------------------- */

static const struct admin_col pin_cols[] = {
	{"reason", ADMIN_TEXT}, {"action", ADMIN_TEXT},           {"database", ADMIN_TEXT},
	{"user", ADMIN_TEXT},   {"application_name", ADMIN_TEXT}, {"count", ADMIN_NUMERIC},
};

static const char *const pin_action_names[STATS_PIN_ACTIONS] = {
	[STATS_PIN] = "pin",
	[STATS_PIN_WARN] = "warn",
	[STATS_PIN_REFUSE] = "error",
};

/* One row per action and reason that happened: pools give database and user (and no
 * application), applications their name (and no pool); the counters are kept per pool
 * and per application, not per pair. */
static bool pin_rows(struct admin_ctx *ctx, const struct stats_totals *t, const char *db,
		     const char *user, const char *app)
{
	bool ok = true;
	for (int a = 0; a < STATS_PIN_ACTIONS; a++)
		for (int reason = 1; reason < PIN_REASONS; reason++) {
			uint64_t n = t->pin_by_reason[a][reason];
			if (!n)
				continue;
			struct admin_row r = {0};
			admin_row_text(&r, pin_reason_name((enum pin_reason)reason));
			admin_row_text(&r, pin_action_names[a]);
			if (db) {
				admin_row_text(&r, db);
				admin_row_text(&r, user);
				admin_row_null(&r);
			} else {
				admin_row_null(&r);
				admin_row_null(&r);
				admin_row_text(&r, app);
			}
			admin_row_uint(&r, n);
			ok = admin_row_end(&r, ctx->out) && ok;
		}
	return ok;
}

enum admin_result admin_show_pins(struct admin_ctx *ctx)
{
	struct stats_snapshot snap;
	if (!take_snapshot(ctx, &snap))
		return no_memory(ctx);
	admin_put_row_description(ctx->out, pin_cols, ARRAY_SIZE(pin_cols));
	bool ok = true;
	for (size_t i = 0; i < snap.n_pools; i++)
		ok = pin_rows(ctx, &snap.pools[i].t, snap.pools[i].database, snap.pools[i].user,
			      NULL) &&
		     ok;
	for (size_t i = 0; i < snap.n_apps; i++)
		ok = pin_rows(ctx, &snap.apps[i].t, NULL, NULL, snap.apps[i].name) && ok;
	stats_snapshot_free(&snap);
	if (!ok)
		return no_memory(ctx);
	admin_put_complete(ctx->out, "SHOW");
	return ADMIN_DONE;
}
