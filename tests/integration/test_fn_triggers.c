/*
 * corral-fn's triggers without an HTTP caller, end to end through corral (transaction
 * pooling) to a real PostgreSQL: the queue trigger (corral_queue in database fn, created
 * by corral-fn at start) and the cron trigger.
 *
 * Each queue test consumes a queue named after its own pid, so two tests (or two runs of
 * corral-fn) never take each other's messages; jobs rows are told apart by a tag in the
 * message body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"
#include "tests/integration/harness_fn.h"

TestSuite(fn_triggers, H_SUITE);

/*
 * A queue test: its own queue (PREFIX_PID), consumed by function qw running
 * functions/examples/queue_worker.c through the test's corral, and what counts its
 * messages in corral_queue and in the dead letters.
 */
struct queue_test {
	int pid;
	char *queue;
	struct h_corral *c;
	struct h_fn *f;
	char *left; /* select count(*) of its messages still in corral_queue */
	char *dead; /* ... and in corral_queue_dead_letter */
};

/* Starts corral (pool of 5) and corral-fn with qw's keys plus more; returns once
 * corral-fn has the queue tables (it creates them). */
static void queue_start(struct queue_test *t, const char *prefix, const char *more)
{
	char *cfg;

	t->pid = (int)getpid();
	t->queue = h_printf("%s_%d", prefix, t->pid);
	t->left = h_printf("select count(*) from corral_queue where queue = '%s'", t->queue);
	t->dead = h_printf("select count(*) from corral_queue_dead_letter where queue = '%s'", t->queue);
	cfg = h_printf("[function.qw]\nso = %s/functions/queue_worker.so\nhttp = no\nqueue = %s\n"
		       "batch_size = 10\nqueue_concurrency = 2\nreserved_concurrency = 2\ntimeout = 10\n"
		       "queue_poll = 0.2\n%s",
		       h_fn_bindir(), t->queue, more);
	t->c = h_fn_corral(5);
	t->f = h_fn_start(t->c, cfg);
	cr_assert(h_fn_wait_log(t->f, "event=queue_ready", 15), "corral-fn's queue never got ready:\n%s",
		  h_fn_log_tail(t->f));
	free(cfg);
}

/* Stops both; the queue must end empty (10 s for the last acknowledgements). */
static void queue_stop(struct queue_test *t)
{
	cr_expect(h_fn_wait_value(t->left, "0", 10), "%lld messages left in corral_queue", h_fn_count(t->left));
	h_fn_stop(t->f);
	h_corral_stop(t->c);
	free(t->dead);
	free(t->left);
	free(t->queue);
}

/*
 * 1000 messages inserted at once are each delivered exactly once: 1000 jobs rows, the
 * claims add up to 1000 messages, every one deleted, none retried, and nothing is left
 * in corral_queue or the dead letters.
 */
Test(fn_triggers, queue_delivers_1000_messages_exactly_once)
{
	struct queue_test t;
	const char *const claimed[] = {"event=queue_claimed", "function=qw", NULL};
	const char *const done[] = {"event=queue_batch_done", "function=qw", NULL};
	char *insert, *jobs;
	double t0;

	queue_start(&t, "it_once", "max_receive_count = 3\nvisibility_timeout = 30\n");
	insert = h_printf("insert into corral_queue (queue, body) select '%s', "
			  "json_build_object('kind', 'it_queue', 'tag', 'once%d', 'n', g)::text "
			  "from generate_series(1, 1000) g",
			  t.queue, t.pid);
	jobs = h_printf("select count(*) || ' ' || count(distinct payload->>'n') from jobs "
			"where payload->>'tag' = 'once%d'",
			t.pid);
	h_fn_exec(insert);
	t0 = h_now();
	cr_assert(h_fn_wait_value(jobs, "1000 1000", 45), "jobs rows after 45 s: %s; %s:\n%s", h_fn_value(jobs),
		  t.f->log, h_fn_log_tail(t.f));
	cr_log_info("queue: 1000 messages stored in %.2f s", h_now() - t0);
	cr_expect(h_fn_wait_value(t.left, "0", 10), "%lld messages left in corral_queue", h_fn_count(t.left));
	cr_expect_eq(h_fn_count(t.dead), 0, "dead letters");
	queue_stop(&t);
	cr_expect_eq(h_fn_log_sum(t.f, claimed, "messages"), 1000, "messages claimed (deliveries)");
	cr_expect_eq(h_fn_log_sum(t.f, done, "deleted"), 1000, "messages deleted after their batch");
	cr_expect_eq(h_fn_log_sum(t.f, done, "retried"), 0, "messages retried");
	cr_expect_eq(h_fn_log_sum(t.f, done, "released"), 0, "messages released");
	free(jobs);
	free(insert);
}

/*
 * A message the function rejects every time (not JSON: queue_worker lists it in
 * batchItemFailures) goes to corral_queue_dead_letter after max_receive_count = 2
 * deliveries, with the reason; the good message beside it is stored, and the queue ends
 * empty.
 */
Test(fn_triggers, failing_message_goes_to_the_dead_letters)
{
	struct queue_test t;
	const char *const dead_lines[] = {"event=queue_dead_letter", "function=qw", NULL};
	char *insert, *row, *jobs, *v;

	queue_start(&t, "it_dlq", "max_receive_count = 2\nvisibility_timeout = 10\n");
	insert = h_printf("insert into corral_queue (queue, body) values "
			  "('%s', '{\"kind\":\"it_dlq\",\"tag\":\"dlq%d\"}'), ('%s', 'not json')",
			  t.queue, t.pid, t.queue);
	row = h_printf("select body || ' | ' || receive_count || ' | ' || error "
		       "from corral_queue_dead_letter where queue = '%s'",
		       t.queue);
	jobs = h_printf("select count(*) from jobs where payload->>'tag' = 'dlq%d'", t.pid);
	h_fn_exec(insert);
	cr_assert(h_fn_wait_value(t.dead, "1", 30), "no dead letter after 30 s; %s:\n%s", t.f->log,
		  h_fn_log_tail(t.f));
	v = h_fn_value(row);
	cr_expect(strncmp(v, "not json | 2 | ", 15) == 0 && strstr(v, "batchItemFailures") != NULL,
		  "the dead letter (body | receive_count | error): [%s], want [not json | 2 | ...batchItemFailures...]",
		  v);
	free(v);
	cr_expect_eq(h_fn_count(jobs), 1, "the good message's jobs row");
	queue_stop(&t);
	cr_expect_eq(h_fn_log_lines(t.f, dead_lines), 1, "queue_dead_letter log lines");
	free(jobs);
	free(row);
	free(insert);
}

/* "2026-11-27T08:02:00Z" as a time_t; -1 if it is not one. */
static time_t utc_time(const char *text)
{
	struct tm tm = {0};
	const char *end = text ? strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;

	return end != NULL && *end == '\0' ? timegm(&tm) : (time_t)-1;
}

/*
 * schedule = * * * * *: nightly_report runs at the next minute (its REPORT line, a
 * cron_done line with status=ok) and writes the report of the day before the firing
 * to daily_reports.
 *
 * The wait for the minute is up to 60 s; run.sh's --timeout 120 leaves room for it.
 */
Test(fn_triggers, cron_schedule_fires)
{
	char *cfg = h_printf("[function.nightly]\nso = %s/functions/nightly_report.so\nhttp = no\n"
			     "schedule = * * * * *\ntimeout = 30\n",
			     h_fn_bindir());
	char *t0 = h_fn_value("select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')");
	struct h_corral *c = h_fn_corral(5);
	struct h_fn *f = h_fn_start(c, cfg);
	char *next = h_fn_log_value(f, "event=cron_scheduled", "next");
	time_t when = utc_time(next);
	double wait;
	char *id, *line, *sql, *want_day;
	const char *const ok[] = {"event=cron_done", "function=nightly", "status=ok", NULL};

	cr_assert(when != (time_t)-1, "no next= time in the cron_scheduled line: %s\n%s", next, h_fn_log_tail(f));
	wait = difftime(when, time(NULL));
	cr_assert(wait <= 61, "the next firing %s is %.0f s away", next, wait);
	cr_assert(h_fn_wait_log(f, "event=cron_fired function=nightly", wait + 2), "no cron_fired %.1f s after %s:\n%s",
		  wait + 2, next, h_fn_log_tail(f));
	id = h_fn_log_value(f, "event=cron_fired function=nightly", "request_id");
	cr_assert(id != NULL, "cron_fired without request_id");
	line = h_fn_report_for(f, id, 10);
	cr_expect(strstr(line, "\tStatus:") == NULL, "the scheduled run failed: %s\n%s", line, h_fn_log_tail(f));
	cr_expect(h_fn_wait_log(f, "event=cron_done function=nightly", 5), "no cron_done");
	cr_expect_eq(h_fn_log_lines(f, ok), 1, "cron_done status=ok lines");
	/* The report of the UTC day before the firing, written just now. */
	{
		struct tm tm;
		time_t day_before = when - 86400;
		char buf[16];

		gmtime_r(&day_before, &tm);
		strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
		want_day = strdup(buf);
	}
	sql = h_printf("select count(*) from daily_reports where day = '%s' "
		       "and generated_at >= '%s'::timestamp at time zone 'UTC'",
		       want_day, t0);
	cr_expect_eq(h_fn_count(sql), 1, "daily_reports row of %s generated by the scheduled run", want_day);
	h_fn_stop(f);
	h_corral_stop(c);
	free(sql);
	free(want_day);
	free(line);
	free(id);
	free(next);
	free(t0);
	free(cfg);
}
