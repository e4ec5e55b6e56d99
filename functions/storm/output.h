/*
 * corral-storm's summary: a few aligned lines for people, or (--json) one JSON
 * object on one line, for scripts such as the demo:
 *
 *   label            --label or null
 *   mode             "connect" | "http";  target: DSN without password, or "GET url"
 *   sql              (connect mode) the query run per invocation
 *   load             {"burst": N} or {"rate": R, "duration_s": S}
 *   threads, timeout_s
 *   invocations      planned; started, ok, failed; interrupted (Ctrl-C)
 *   wall_s           release to the last invocation's end; throughput_per_s
 *   peak_in_flight   most invocations open at once
 *   errors           [{"class": "53300" | "HTTP 503" | "connect" | "timeout" | ...,
 *                      "count": n, "message": the first one seen}], largest first
 *   unclassified_errors
 *   status_codes     {"200": n, ...} (HTTP)
 *   latency_ms       successes, from each invocation's intended start:
 *                    {"count", "min", "mean", "p50", "p90", "p99", "p999", "max"}
 *   error_latency_ms the same for failures
 *   connect_ms       (connect mode) intended start -> logged in; null for HTTP
 *   server_backends  null without --monitor-dsn, else {"baseline", "peak", "after",
 *                    "samples", "interval_ms", "lost", "error"}
 */
#ifndef CORRAL_FUNCTIONS_STORM_OUTPUT_H
#define CORRAL_FUNCTIONS_STORM_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "functions/storm/monitor.h"
#include "functions/storm/options.h"
#include "functions/storm/results.h"

struct storm_summary {
	const struct storm_opts *opts;
	const char *target;            /* without a password */
	uint64_t total;                /* invocations planned */
	struct storm_results *results; /* merged, classes sorted */
	usec_t wall;                   /* release to the last invocation's end */
	uint64_t peak_in_flight;
	bool interrupted;
	bool have_monitor;
	struct storm_monitor_stats monitor;
};

void storm_print_text(FILE *f, const struct storm_summary *s);
void storm_print_json(FILE *f, const struct storm_summary *s);

/* Writes s as a JSON string (quotes included); invalid UTF-8 bytes become '?'. */
void storm_json_string(FILE *f, const char *s);

#endif
