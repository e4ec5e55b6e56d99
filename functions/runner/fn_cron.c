/*
 * The cron trigger on the event loop: one timer per scheduled function.
 *
 * libevent's timers run on the monotonic clock while schedules name wall-clock minutes,
 * and the two drift apart (the wall clock is stepped, the machine sleeps).  So a timer
 * never waits more than a minute: each wake-up compares the wall clock with the minute
 * it waits for, fires once it has come, and otherwise sleeps again for what is left.
 */
#include "functions/runner/fn_cron.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "common/log.h"
#include "functions/runner/fn_metrics.h"
#include "functions/runner/json.h"
#include "functions/runner/report.h"

/* Longest sleep between two looks at the wall clock. */
#define CRON_MAX_SLEEP_USEC (60 * USEC_PER_SEC)

struct cron_job {
	struct fn_cron *cron;
	struct fn_function *fn;
	const struct fn_function_config *cfg;
	char rule_arn[256];
	struct event *timer;
	time_t next;          /* the minute the timer waits for */
	struct fn_call *call; /* the invocation still running or queued, if any */
	char request_id[REPORT_ID_SIZE];
};

struct fn_cron {
	struct event_base *base;
	struct fn_runtime *rt;
	struct cron_job *jobs;
	size_t n_jobs;
};

static usec_t wall_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Sleeps until j->next by the wall clock, a minute at most. */
static void sleep_until_next(struct cron_job *j)
{
	usec_t left = (usec_t)j->next * USEC_PER_SEC - wall_usec();
	if (left < 0)
		left = 0;
	if (left > CRON_MAX_SLEEP_USEC)
		left = CRON_MAX_SLEEP_USEC;
	struct timeval tv = {.tv_sec = (time_t)(left / USEC_PER_SEC),
			     .tv_usec = (suseconds_t)(left % USEC_PER_SEC)};
	evtimer_add(j->timer, &tv);
}

/* Waits for the first minute of the schedule after now (never a sum of intervals). */
static bool schedule_next(struct cron_job *j)
{
	if (!cron_next(&j->cfg->cron, time(NULL), &j->next)) {
		log_error("event=cron_disabled function=%s reason=\"the schedule never fires\"",
			  j->cfg->name);
		return false;
	}
	sleep_until_next(j);
	return true;
}

static void invoked(const struct fn_call_done *done, void *arg)
{
	struct cron_job *j = arg;
	j->call = NULL;
	char clean[512];
	if (done->status == FN_CALL_OK)
		log_info("event=cron_done function=%s request_id=%s status=ok duration_ms=%.3f",
			 j->cfg->name, done->request_id, (double)done->duration_usec / 1000.0);
	else
		log_warn("event=cron_done function=%s request_id=%s status=%s duration_ms=%.3f "
			 "error=\"%s\"",
			 j->cfg->name, done->request_id, fn_call_status_label(done->status),
			 (double)done->duration_usec / 1000.0,
			 log_clean(done->error ? done->error : "", clean, sizeof(clean)));
}

/* The EventBridge event for the minute j->next, under a fresh request id. */
static char *build_event(struct cron_job *j, size_t *len)
{
	if (!report_request_id(j->request_id))
		return NULL;
	const char *resources[] = {j->rule_arn};
	struct json_schedule s = {
		.id = j->request_id,
		.time = j->next,
		.resources = resources,
		.n_resources = 1,
	};
	struct json_writer w;
	json_init(&w);
	json_scheduled_event(&w, &s);
	char *event = json_take(&w, len);
	json_free(&w);
	return event;
}

/* RFC 3339, as the event's "time". */
static const char *format_minute(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

static void fire(struct cron_job *j)
{
	char when[32];
	format_minute(j->next, when);
	if (j->call) {
		/* EventBridge does not pile up runs of one rule either. */
		log_warn("event=cron_skipped function=%s scheduled=%s reason=\"previous run "
			 "still going\" running_request_id=%s",
			 j->cfg->name, when, fn_call_request_id(j->call));
		return;
	}
	size_t len = 0;
	char *event = build_event(j, &len);
	if (!event) {
		log_error("event=cron_skipped function=%s scheduled=%s reason=\"cannot build the "
			  "event (no random id or no memory)\"",
			  j->cfg->name, when);
		return;
	}
	log_info("event=cron_fired function=%s request_id=%s scheduled=%s", j->cfg->name,
		 j->request_id, when);
	j->call = fn_runtime_invoke(j->fn, j->request_id, event, len, invoked, j);
	free(event);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cron_job *j = arg;
	if (time(NULL) < j->next) {
		sleep_until_next(j); /* woke early by the wall clock, or a long wait goes on */
		return;
	}
	fire(j);
	(void)schedule_next(j);
}

static bool add_job(struct fn_cron *cron, const struct fn_function_config *fc)
{
	struct fn_function *fn = fn_runtime_find(cron->rt, fc->name);
	if (!fn) {
		log_error("event=cron_disabled function=%s reason=\"not in the runtime\"",
			  fc->name);
		return true;
	}
	struct cron_job *j = &cron->jobs[cron->n_jobs];
	memset(j, 0, sizeof(*j));
	j->cron = cron;
	j->fn = fn;
	j->cfg = fc;
	snprintf(j->rule_arn, sizeof(j->rule_arn), "arn:corral:events:local:000000000000:rule/%s",
		 fc->name);
	j->timer = evtimer_new(cron->base, on_timer, j);
	if (!j->timer)
		return false;
	cron->n_jobs++;
	char when[32];
	if (schedule_next(j))
		log_info("event=cron_scheduled function=%s schedule=\"%s\" next=%s", fc->name,
			 fc->schedule ? fc->schedule : "", format_minute(j->next, when));
	return true;
}

struct fn_cron *fn_cron_new(struct event_base *base, struct fn_runtime *rt,
			    const struct fn_runner_config *cfg)
{
	struct fn_cron *cron = calloc(1, sizeof(*cron));
	if (!cron)
		return NULL;
	cron->base = base;
	cron->rt = rt;
	cron->jobs = calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof(*cron->jobs));
	if (!cron->jobs) {
		free(cron);
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_functions; i++) {
		if (cfg->functions[i].has_schedule && !add_job(cron, &cfg->functions[i])) {
			fn_cron_free(cron);
			return NULL;
		}
	}
	return cron;
}

void fn_cron_free(struct fn_cron *cron)
{
	if (!cron)
		return;
	for (size_t i = 0; i < cron->n_jobs; i++) {
		struct cron_job *j = &cron->jobs[i];
		if (j->call)
			fn_call_forget(j->call); /* it runs on; nobody is left to hear the end */
		event_free(j->timer);
	}
	free(cron->jobs);
	free(cron);
}
