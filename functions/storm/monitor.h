/*
 * Samples the number of server backends from pg_stat_activity over its own
 * connection while the storm runs (client backends, optionally of one database
 * and/or user, never counting itself), and keeps the peak.  The connection is made
 * before the storm, so a full server cannot refuse it.
 */
#ifndef CORRAL_FUNCTIONS_STORM_MONITOR_H
#define CORRAL_FUNCTIONS_STORM_MONITOR_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"
#include "functions/storm/options.h"

struct storm_monitor;

struct storm_monitor_stats {
	int64_t baseline; /* before the storm */
	int64_t peak;
	int64_t last;
	int64_t after; /* once the storm is over; -1 if it could not be sampled */
	uint64_t samples;
	bool lost; /* the monitor connection failed during the run */
	char error[256];
};

/* Connects (blocking), takes the baseline sample and starts sampling on base every
 * interval.  NULL with err set on failure. */
struct storm_monitor *storm_monitor_start(struct event_base *base, const struct storm_opts *o,
					  char *err, size_t errlen);
/* Stops sampling; the stats stay readable. */
void storm_monitor_stop(struct storm_monitor *m);
/* Stops sampling and takes the "after" sample (blocking). */
void storm_monitor_finish(struct storm_monitor *m);
void storm_monitor_get(const struct storm_monitor *m, struct storm_monitor_stats *out);
void storm_monitor_free(struct storm_monitor *m);

#endif
