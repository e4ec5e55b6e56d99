/*
 * The HTTP endpoint ([metrics] listen): /metrics (Prometheus text), /stats.json, /healthz
 * and the dashboard at /, on evhttp.
 *
 * It runs on a thread of its own with its own event_base (DESIGN.md §9): a request
 * takes a statistics snapshot (stats_snapshot walks every pool and application under
 * the registry lock and sums every worker's blocks) and formats it, and a slow or stuck
 * scraper must never delay a client on a worker's loop.  Workers do nothing for it: it
 * only reads what they already count.
 */
#ifndef CORRAL_PROXY_METRICS_HTTP_H
#define CORRAL_PROXY_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"
#include "proxy/worker.h"

struct metrics_http;

/*
 * Binds conf's metrics_addr:metrics_port (the configuration at start: a reload cannot
 * move the endpoint) and starts the thread that serves it; each request reads the
 * configuration in force from shared->store.  shared must outlive metrics_http_stop.  NULL on failure, with the reason in err
 * ("could not listen on ADDR:PORT for [metrics]: ...").
 */
struct snapshot;
struct metrics_http *metrics_http_start(struct worker_shared *shared, const struct snapshot *conf,
					char *err, size_t errlen);
/* Stops the thread (a request being answered is finished first) and frees m; NULL ok. */
void metrics_http_stop(struct metrics_http *m);

#endif
