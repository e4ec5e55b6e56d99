/*
 * Statistics (pool/stats.h) against a known workload, read the way an operator can
 * read them today: SIGUSR1 makes corral log a snapshot (proxy/stats_dump.h), one
 * event=stats_pool line per pool and event=stats_app per application, closed by
 * event=stats_dump.
 *
 * Counters are bumped right after the reply is written to the client, so a snapshot
 * taken the moment the client has its answer may be a moment early: each check asks
 * for dumps until the expected values show (or 5 s pass).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(stats, H_SUITE);

#define TX_SETTINGS "workers = 2\npool_mode = transaction\nquery_wait_timeout = 60\n"

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

struct want {
	const char *key;
	long long value;
};

/* Dumps until the line of kind/match has every wanted value (5 s); returns that line. */
static char *wait_values(const struct h_corral *c, const char *kind, const char *match,
			 const struct want *want, size_t n)
{
	double deadline = h_now() + 5.0;
	char *line = NULL;

	for (;;) {
		free(line);
		line = h_stats_dump_line(c, kind, match);
		size_t ok = 0;
		while (line && ok < n && h_log_field(line, want[ok].key) == want[ok].value)
			ok++;
		if (ok == n)
			return line;
		if (h_now() > deadline)
			cr_assert_fail("no %s line with %s and %s=%lld within 5 s; last: %s", kind,
				       match, want[ok].key, want[ok].value, line ? line : "(none)");
		sleep_ms(50);
	}
}

static PGconn *connect_app(const struct h_corral *c, const char *app)
{
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	char *with = h_printf("%s application_name='%s'", ci, app);
	PGconn *conn = h_connect(c, with);

	free(ci);
	free(with);
	return conn;
}

/* 1000 transactions from 10 clients: 900 autocommit SELECTs (a query each) and 100
 * BEGIN / SELECT / COMMIT (three queries each). */
Test(stats, counts_transactions_and_queries, .timeout = 60)
{
	struct h_corral *c = h_corral_start(TX_SETTINGS, H_BENCH_DB_WITH(" pool_size=10"), NULL);
	PGconn *conn[10];

	for (int i = 0; i < 10; i++)
		conn[i] = connect_app(c, "stats_counts");
	h_known_workload(conn);
	const struct want pool[] = {
		{"xact_count", 1000}, {"query_count", 1200}, {"checkouts", 1000}, {"cl_idle", 10},
		{"cl_active", 0},     {"cl_waiting", 0},     {"sheds", 0},        {"timeouts", 0},
	};
	char *line = wait_values(c, "stats_pool", "db=\"bench\"", pool,
				 sizeof pool / sizeof pool[0]);
	cr_expect_gt(h_log_field(line, "bytes_received"), 1000 * 14, "%s",
		     line); /* 'Q' + "SELECT 1" */
	cr_expect_gt(h_log_field(line, "bytes_sent"), 1000 * 6, "%s",
		     line); /* at least ReadyForQuery */
	cr_expect_gt(h_log_field(line, "xact_time_us"), 0, "%s", line);
	cr_expect_gt(h_log_field(line, "query_time_us"), 0, "%s", line);
	cr_expect_geq(h_log_field(line, "xact_time_us"), h_log_field(line, "query_time_us") / 2,
		      "%s", line);
	cr_expect_gt(h_log_field(line, "xact_p99_us"), 0, "%s", line);
	cr_expect_geq(h_log_field(line, "xact_p99_us"), h_log_field(line, "xact_p50_us"), "%s",
		      line);
	cr_expect_eq(h_log_field(line, "pool_size"), 10, "%s", line);
	cr_expect(strstr(line, "pool_mode=transaction") != NULL, "%s", line);
	free(line);

	const struct want app[] = {{"xact_count", 1000}, {"query_count", 1200}, {"cl_idle", 10}};
	line = wait_values(c, "stats_app", "app=\"stats_counts\"", app, sizeof app / sizeof app[0]);
	cr_expect_eq(h_log_field(line, "limit"), 0, "%s", line);
	free(line);

	for (int i = 0; i < 10; i++)
		PQfinish(conn[i]);
	const struct want gone[] = {{"cl_idle", 0}, {"cl_active", 0}, {"cl_login", 0}};
	free(wait_values(c, "stats_pool", "db=\"bench\"", gone, sizeof gone / sizeof gone[0]));
	h_corral_stop(c);
}

/* 30 clients hold pg_sleep with pool size 10: 10 active, 20 waiting. */
Test(stats, gauges_while_clients_wait, .timeout = 60)
{
	struct h_corral *c = h_corral_start(TX_SETTINGS, H_BENCH_DB_WITH(" pool_size=10"), NULL);
	PGconn *conn[30];

	for (int i = 0; i < 30; i++)
		conn[i] = connect_app(c, "stats_gauges");
	for (int i = 0; i < 30; i++)
		cr_assert(PQsendQuery(conn[i], "SELECT pg_sleep(2)"), "%s",
			  PQerrorMessage(conn[i]));
	const struct want busy[] = {
		{"cl_active", 10},
		{"cl_waiting", 20},
		{"sv_active", 10},
		{"queue_depth", 20},
	};
	char *line = wait_values(c, "stats_pool", "db=\"bench\"", busy,
				 sizeof busy / sizeof busy[0]);
	cr_expect_gt(h_log_field(line, "maxwait_us"), 0, "%s", line);
	cr_expect_eq(h_log_field(line, "sv_idle"), 0, "%s", line);
	free(line);
	const struct want app_busy[] = {{"cl_active", 10}, {"cl_waiting", 20}};
	free(wait_values(c, "stats_app", "app=\"stats_gauges\"", app_busy, 2));

	for (int i = 0; i < 30; i++) {
		PGresult *r = h_results(conn[i], "pg_sleep", 30.0);
		cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
		PQclear(r);
	}
	const struct want done[] = {
		{"cl_active", 0}, {"cl_waiting", 0},  {"cl_idle", 30},   {"sv_active", 0},
		{"sv_idle", 10},  {"xact_count", 30}, {"checkouts", 30},
	};
	line = wait_values(c, "stats_pool", "db=\"bench\"", done, sizeof done / sizeof done[0]);
	/* 20 clients waited a pg_sleep(2) or more (and, the pool being cold, most of the
	 * first ten waited for their server's login). */
	cr_expect_geq(h_log_field(line, "wait_count"), 20, "%s", line);
	cr_expect_geq(h_log_field(line, "wait_time_us"), 20LL * 1500000, "%s", line);
	cr_expect_geq(h_log_field(line, "wait_p99_us"), 1500000, "%s", line);
	cr_expect_eq(h_log_field(line, "maxwait_us"), 0, "%s", line);
	free(line);
	for (int i = 0; i < 30; i++)
		PQfinish(conn[i]);
	h_corral_stop(c);
}

/* An application capped at one slot with a queue of one: the second client times out in
 * the queue (57014), the third is shed (53400). */
Test(stats, sheds_and_timeouts, .timeout = 60)
{
	struct h_corral *c =
		h_corral_start("workers = 2\npool_mode = transaction\nmax_queue_depth = 1\n"
			       "query_wait_timeout = 1\n\n[limits]\napp.stats_capped = 1\n",
			       H_BENCH_DB_WITH(" pool_size=5"), NULL);
	PGconn *holder = connect_app(c, "stats_capped");
	PGconn *waiter = connect_app(c, "stats_capped");
	PGconn *shed = connect_app(c, "stats_capped");

	cr_assert(PQsendQuery(holder, "SELECT pg_sleep(3)"));
	const struct want holding[] = {{"slots_in_use", 1}, {"cl_active", 1}};
	free(wait_values(c, "stats_app", "app=\"stats_capped\"", holding, 2));
	cr_assert(PQsendQuery(waiter, "SELECT 1"));
	const struct want queued[] = {{"queue_depth", 1}, {"cl_waiting_app", 1}};
	free(wait_values(c, "stats_app", "app=\"stats_capped\"", queued, 2));
	PGresult *r = h_exec(shed, "SELECT 1");
	cr_expect_str_eq(h_sqlstate(r), "53400");
	PQclear(r);
	r = h_results(waiter, "queued SELECT", 10.0);
	cr_expect_str_eq(h_sqlstate(r), "57014");
	PQclear(r);
	r = h_results(holder, "pg_sleep", 10.0);
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);

	const struct want app[] = {
		{"limit", 1},      {"sheds", 1},        {"timeouts", 1},    {"admitted", 1},
		{"xact_count", 1}, {"slots_in_use", 0}, {"queue_depth", 0},
	};
	free(wait_values(c, "stats_app", "app=\"stats_capped\"", app, sizeof app / sizeof app[0]));
	const struct want pool[] = {{"sheds", 1}, {"timeouts", 1}};
	free(wait_values(c, "stats_pool", "db=\"bench\"", pool, 2));
	PQfinish(holder);
	PQfinish(waiter);
	PQfinish(shed);
	h_corral_stop(c);
}
