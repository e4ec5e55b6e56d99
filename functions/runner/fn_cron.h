/*
 * The cron trigger: for every function with `schedule = ...`, a timer that fires at each
 * minute the schedule names (UTC, cron.h) and invokes the function with an EventBridge
 * "Scheduled Event" (json.h).  A firing that finds the previous one of the same function
 * still running or queued is skipped and logged, as EventBridge would not pile them up
 * either; a clock that jumps is followed (the next time is recomputed after each firing
 * from the wall clock, never accumulated, and a waiting timer looks at the wall clock at
 * least once a minute).  Minutes missed while the clock jumped forward or the machine
 * slept are not caught up: the first one due fires, once.  The event's "id" is the
 * invocation's request id, its "time" the scheduled minute.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_CRON_H
#define CORRAL_FUNCTIONS_RUNNER_FN_CRON_H

#include "functions/runner/fn_config.h"
#include "functions/runner/fn_runtime.h"

struct event_base;
struct fn_cron;

/* Timers for every scheduled function of cfg (none: an empty, valid object). */
struct fn_cron *fn_cron_new(struct event_base *base, struct fn_runtime *rt,
			    const struct fn_runner_config *cfg);
/* Stops the timers; invocations already submitted run on in the runtime (their end is
 * no longer logged here). */
void fn_cron_free(struct fn_cron *cron);

#endif
