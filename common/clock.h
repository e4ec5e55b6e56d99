/* Monotonic time in microseconds, for timeouts and durations. */
#ifndef CORRAL_COMMON_CLOCK_H
#define CORRAL_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

typedef int64_t usec_t;

#define USEC_PER_SEC 1000000LL

static inline usec_t clock_now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

#endif
