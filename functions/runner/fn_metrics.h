/*
 * corral-fn's metrics in the Prometheus text format (version 0.0.4), served at /metrics.
 * Counters and histograms live in each function's struct fn_metrics (the runtime updates
 * them as invocations end); gauges (environments by state, queue depth) are read from the
 * runtime when the page is rendered.
 *
 *   corral_fn_invocations_total{function="f",outcome="ok|function_error|throttled|
 *       queue_timeout|timeout|crash|init_error|too_large|shutdown"}   counter
 *   corral_fn_cold_starts_total{function="f"}                           counter
 *   corral_fn_throttles_total{function="f"}                             counter
 *   corral_fn_environments{function="f",state="starting|idle|busy|stopping"}  gauge
 *   corral_fn_queue_depth{function="f"}                                 gauge
 *   corral_fn_duration_seconds{function="f"}       histogram (dispatch to end)
 *   corral_fn_init_duration_seconds{function="f"}  histogram (cold starts: fork to READY)
 *   corral_fn_queue_wait_seconds{function="f"}     histogram (submit to dispatch)
 *   corral_fn_up 1
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_METRICS_H
#define CORRAL_FUNCTIONS_RUNNER_FN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "functions/runner/fn_runtime.h"

struct evbuffer;

/* Bucket upper bounds in seconds: 0.0001 .. 60 (fixed, so every histogram matches). */
#define FN_METRICS_BUCKETS 16

struct fn_histogram {
	uint64_t counts[FN_METRICS_BUCKETS]; /* per bucket (not cumulative); +Inf is count */
	uint64_t count;
	double sum_seconds;
};

void fn_histogram_observe(struct fn_histogram *h, usec_t value);
/* The upper bound of bucket i in seconds. */
double fn_histogram_bound(size_t i);

struct fn_metrics {
	uint64_t invocations[FN_CALL_SHUTDOWN + 1]; /* by enum fn_call_status */
	uint64_t cold_starts;
	uint64_t throttles;
	struct fn_histogram duration, init_duration, queue_wait;
};

/* Counts one ended invocation (done as fn_runtime hands it to its caller). */
void fn_metrics_record(struct fn_metrics *m, const struct fn_call_done *done);
/* Counts a cold start that took init_usec (fork to READY). */
void fn_metrics_cold_start(struct fn_metrics *m, usec_t init_usec);

/* One function's part of the page. */
struct fn_metrics_row {
	const char *function;
	const struct fn_metrics *metrics;
	struct fn_function_stats stats;
};

/* Writes the whole page (HELP and TYPE once per metric, then every function's samples;
 * label values escaped as the format says). */
void fn_metrics_render(struct evbuffer *out, const struct fn_metrics_row *rows, size_t n);

/* The outcome label of a status: "ok", "function_error", ... */
const char *fn_call_status_label(enum fn_call_status status);

#endif
