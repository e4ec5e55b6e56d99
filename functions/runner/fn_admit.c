/* functions/runner/fn_admit.c: see fn_admit.h. */
#include "functions/runner/fn_admit.h"

bool fn_admit_may_start(const struct fn_function_config *fn, unsigned max_concurrency,
			const struct fn_admit_counts *c)
{
	if (fn->reserved_concurrency > 0 && c->live >= fn->reserved_concurrency)
		return false;
	return max_concurrency == 0 || c->global_live < max_concurrency;
}

static enum fn_admit refuse_or_queue(const struct fn_function_config *fn,
				     const struct fn_admit_counts *c)
{
	if (fn->on_limit == FN_ON_LIMIT_THROTTLE)
		return FN_ADMIT_THROTTLE;
	if (c->waiting >= fn->queue_depth)
		return FN_ADMIT_QUEUE_FULL;
	return FN_ADMIT_QUEUE;
}

enum fn_admit fn_admit_decide(const struct fn_function_config *fn, unsigned max_concurrency,
			      const struct fn_admit_counts *c)
{
	if (c->idle > 0)
		return FN_ADMIT_WARM;
	/* Invocations queued before this one go first (FIFO): they are waiting for the same
	 * capacity, so this one joins them even if an environment is starting for them. */
	if (c->waiting > 0)
		return refuse_or_queue(fn, c);
	if (fn_admit_may_start(fn, max_concurrency, c))
		return FN_ADMIT_COLD;
	bool own_limit = fn->reserved_concurrency > 0 && c->live >= fn->reserved_concurrency;
	if (!own_limit && c->idle_elsewhere > 0) {
		/* Room is made, not refused: a queued invocation waits only for the stop. */
		if (c->waiting >= fn->queue_depth)
			return FN_ADMIT_QUEUE_FULL;
		return FN_ADMIT_EVICT;
	}
	return refuse_or_queue(fn, c);
}

const char *fn_admit_name(enum fn_admit a)
{
	switch (a) {
	case FN_ADMIT_WARM:
		return "warm";
	case FN_ADMIT_COLD:
		return "cold";
	case FN_ADMIT_EVICT:
		return "evict";
	case FN_ADMIT_QUEUE:
		return "queue";
	case FN_ADMIT_THROTTLE:
		return "throttle";
	case FN_ADMIT_QUEUE_FULL:
		return "queue_full";
	}
	return "?";
}
