/*
 * The statistics snapshot in Prometheus' text exposition format 0.0.4 (/metrics).
 *
 * Every family has its # HELP and # TYPE lines before its samples, and all of its
 * samples together.  Names start with corral_; counters end in _total; durations are
 * in seconds, sizes in bytes.  Pools are labelled database and user, applications app.
 * Label values are escaped as the format says (\\, \", \n); bytes outside printable
 * ASCII become the text \xNN, so the output is always valid UTF-8.
 *
 * Histograms (transaction latency, queue wait) are the snapshot's log buckets
 * (pool/stats.h), cumulative: bucket b covers whole microseconds [lower(b), upper(b)),
 * so its le is upper(b) - 1 us, exactly, in seconds; the last, open-ended bucket is
 * +Inf.  _count is the +Inf bucket and _sum the matching total time.
 */
#ifndef CORRAL_PROXY_METRICS_PROM_H
#define CORRAL_PROXY_METRICS_PROM_H

#include <stdbool.h>

#include <event2/buffer.h>

#include "common/macros.h"
#include "pool/stats.h"
#include "proxy/metrics_view.h"

/* The content type Prometheus expects for this format. */
#define METRICS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends the whole exposition to out; false when out of memory (out then holds part). */
bool metrics_prom_write(struct evbuffer *out, const struct stats_snapshot *snap,
			const struct metrics_process *proc) WARN_UNUSED;

/* Appends s as a label value (without quotes), escaped; false when out of memory. */
bool metrics_prom_label_value(struct evbuffer *out, const char *s) WARN_UNUSED;

#endif
