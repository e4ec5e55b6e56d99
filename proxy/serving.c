#include "proxy/serving.h"

#include <stdatomic.h>

static atomic_int state = SERVING_UP;

void serving_set(enum serving_state st)
{
	atomic_store_explicit(&state, (int)st, memory_order_relaxed);
}

enum serving_state serving_get(void)
{
	return (enum serving_state)atomic_load_explicit(&state, memory_order_relaxed);
}

const char *serving_name(enum serving_state st)
{
	switch (st) {
	case SERVING_UP:
		return "serving";
	case SERVING_PAUSED:
		return "paused";
	case SERVING_SHUTTING_DOWN:
		return "shutting_down";
	}
	return "unknown";
}
