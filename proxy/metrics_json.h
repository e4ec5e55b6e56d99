/*
 * The statistics snapshot as JSON (/stats.json), for the dashboard and for scripts:
 *   { "ts_ms": wall clock, "serving": "serving" | "paused" | "shutting_down",
 *     "workers": N, "hist_le_us": [largest microseconds of each histogram bucket but
 *     the open-ended last one],
 *     "totals": the pools summed,
 *     "pools": [ { "database", "user", "pool_mode", "pool_size", "max_connections"
 *                  (null: not known), "servers": {login, idle, active, closing},
 *                  "servers_total", "queue_depth", "maxwait_us", ...totals } ],
 *     "apps":  [ { "name", "limit", "slots_in_use", "queue_depth", "maxwait_us",
 *                  "admitted", ...totals } ] }
 * where totals are "clients": {login, idle, waiting_app, waiting, active, closing},
 * the counters of pool/stats.h under their names there (xact_count, ..., timeouts, pins,
 * pin_warnings, pin_refusals),
 * xact_/wait_ p50, p95, p99 in microseconds (stats_hist_quantile) and the histograms
 * themselves (xact_hist, wait_hist: 64 bucket counts, not cumulative), so a reader can
 * take quantiles over any interval from two samples.
 */
#ifndef CORRAL_PROXY_METRICS_JSON_H
#define CORRAL_PROXY_METRICS_JSON_H

#include <stdbool.h>

#include <event2/buffer.h>

#include "common/macros.h"
#include "pool/stats.h"
#include "proxy/metrics_view.h"

/* Appends the document to out; false when out of memory (out then holds part). */
bool metrics_json_write(struct evbuffer *out, const struct stats_snapshot *snap,
			const struct metrics_process *proc) WARN_UNUSED;

#endif
