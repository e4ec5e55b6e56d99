/*
 * Where a new invocation goes, decided from counts alone so the rules can be tested
 * without processes: a warm environment, a new one (cold start), the queue, or a refusal.
 *
 * Environments count against the limits from fork until they are reaped, idle or not:
 * reserved_concurrency is "never more than N environments of this function", and
 * max_concurrency the same for all functions together.  At the global limit an idle
 * environment of another function is stopped to make room (scale-to-zero would stop it
 * later anyway), and the invocation waits for that.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_ADMIT_H
#define CORRAL_FUNCTIONS_RUNNER_FN_ADMIT_H

#include <stdbool.h>

#include "functions/runner/fn_config.h"

struct fn_admit_counts {
	unsigned idle;          /* this function's warm, idle environments */
	unsigned live;          /* this function's environments in any state */
	unsigned waiting;       /* this function's invocations already queued */
	unsigned global_live;   /* environments of every function */
	unsigned idle_elsewhere;/* idle environments of other functions (can be stopped) */
};

enum fn_admit {
	FN_ADMIT_WARM,        /* hand it to an idle environment */
	FN_ADMIT_COLD,        /* start an environment for it */
	FN_ADMIT_EVICT,       /* stop another function's idle environment, queue it meanwhile */
	FN_ADMIT_QUEUE,       /* wait in the function's FIFO */
	FN_ADMIT_THROTTLE,    /* at the limit with on_limit = throttle */
	FN_ADMIT_QUEUE_FULL,  /* at the limit and queue_depth invocations wait already */
};

enum fn_admit fn_admit_decide(const struct fn_function_config *fn, unsigned max_concurrency,
			      const struct fn_admit_counts *c);
/* Whether the function may start one more environment now (below both limits). */
bool fn_admit_may_start(const struct fn_function_config *fn, unsigned max_concurrency,
			const struct fn_admit_counts *c);
const char *fn_admit_name(enum fn_admit a);

#endif
