/* functions/runner/fn_admit.c: where an invocation goes (warm, cold, queue, refusal). */
#include <criterion/criterion.h>

#include "functions/runner/fn_admit.h"

static struct fn_function_config fn_cfg(unsigned reserved, enum fn_on_limit on_limit,
					unsigned depth)
{
	return (struct fn_function_config){.name = "f",
					   .reserved_concurrency = reserved,
					   .on_limit = on_limit,
					   .queue_depth = depth};
}

Test(fn_admit, an_idle_environment_is_reused)
{
	struct fn_function_config f = fn_cfg(5, FN_ON_LIMIT_QUEUE, 10);
	struct fn_admit_counts c = {.idle = 1, .live = 5, .global_live = 5};
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_WARM, "even at the limit");
}

Test(fn_admit, below_the_limits_a_new_environment_starts)
{
	struct fn_function_config f = fn_cfg(5, FN_ON_LIMIT_QUEUE, 10);
	struct fn_admit_counts c = {.live = 4, .global_live = 4};
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_COLD);
	f.reserved_concurrency = 0; /* only the global limit */
	c.live = 99;
	c.global_live = 99;
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_COLD);
	cr_assert_eq(fn_admit_decide(&f, 0, &c), FN_ADMIT_COLD, "max_concurrency 0: no limit");
}

Test(fn_admit, at_reserved_concurrency_queue_or_throttle)
{
	struct fn_function_config f = fn_cfg(5, FN_ON_LIMIT_QUEUE, 2);
	struct fn_admit_counts c = {.live = 5, .global_live = 5, .idle_elsewhere = 3};
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_QUEUE,
		     "idle environments of others do not lift a function's own limit");
	c.waiting = 1;
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_QUEUE);
	c.waiting = 2;
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_QUEUE_FULL, "queue_depth reached");
	f.on_limit = FN_ON_LIMIT_THROTTLE;
	c.waiting = 0;
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_THROTTLE);
}

Test(fn_admit, stopping_environments_still_count)
{
	/* live counts every state: five processes exist until they are reaped */
	struct fn_function_config f = fn_cfg(5, FN_ON_LIMIT_THROTTLE, 0);
	struct fn_admit_counts c = {.live = 5, .global_live = 5};
	cr_assert_eq(fn_admit_decide(&f, 100, &c), FN_ADMIT_THROTTLE);
	cr_assert_not(fn_admit_may_start(&f, 100, &c));
	c.live = 4;
	cr_assert(fn_admit_may_start(&f, 100, &c));
}

Test(fn_admit, queued_invocations_go_first)
{
	struct fn_function_config f = fn_cfg(5, FN_ON_LIMIT_QUEUE, 10);
	struct fn_admit_counts c = {.live = 3, .global_live = 3, .waiting = 2};
	cr_assert_eq(
		fn_admit_decide(&f, 100, &c), FN_ADMIT_QUEUE,
		"a newcomer joins the FIFO even when it could start (the queue is served first)");
}

Test(fn_admit, at_the_global_limit_idle_environments_elsewhere_make_room)
{
	struct fn_function_config f = fn_cfg(0, FN_ON_LIMIT_THROTTLE, 4);
	struct fn_admit_counts c = {.live = 1, .global_live = 10, .idle_elsewhere = 2};
	cr_assert_eq(fn_admit_decide(&f, 10, &c), FN_ADMIT_EVICT, "even with on_limit = throttle");
	c.idle_elsewhere = 0;
	cr_assert_eq(fn_admit_decide(&f, 10, &c), FN_ADMIT_THROTTLE);
	f.on_limit = FN_ON_LIMIT_QUEUE;
	cr_assert_eq(fn_admit_decide(&f, 10, &c), FN_ADMIT_QUEUE);
	c.idle_elsewhere = 2;
	c.waiting = 4;
	cr_assert_eq(fn_admit_decide(&f, 10, &c), FN_ADMIT_QUEUE_FULL);
}

Test(fn_admit, names)
{
	cr_assert_str_eq(fn_admit_name(FN_ADMIT_WARM), "warm");
	cr_assert_str_eq(fn_admit_name(FN_ADMIT_QUEUE_FULL), "queue_full");
	cr_assert_str_eq(fn_admit_name(FN_ADMIT_THROTTLE), "throttle");
}
