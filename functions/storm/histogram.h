/*
 * A log-bucket latency histogram (HdrHistogram's layout): values below 128 have a
 * bucket each, and every power of two above is split into 128 equal buckets, so a
 * recorded value is known to within 1/128 (0.8 %) of itself, from microseconds to
 * days, in a fixed 35 KB.  min, max, count and sum are exact.
 */
#ifndef CORRAL_FUNCTIONS_STORM_HISTOGRAM_H
#define CORRAL_FUNCTIONS_STORM_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_MAX_EXP 40 /* values from 2^41 on share the last bucket (max stays exact) */
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 2) << HIST_SUB_BITS)

struct histogram {
	uint64_t count;
	uint64_t min, max;
	uint64_t sum;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct histogram *h);
void hist_record(struct histogram *h, uint64_t value);
/* Adds everything recorded in from to into. */
void hist_merge(struct histogram *into, const struct histogram *from);
/*
 * The value at percentile p (0-100): the smallest v such that at least p % of the
 * recorded values are <= v, reported as the highest value of v's bucket (so never
 * below the truth), clamped to [min, max].  p <= 0 gives min, p >= 100 max; 0 when
 * nothing was recorded.
 */
uint64_t hist_percentile(const struct histogram *h, double p);
double hist_mean(const struct histogram *h);

/* The bucket of a value and the highest value that bucket holds (for tests). */
unsigned hist_bucket_of(uint64_t value);
uint64_t hist_bucket_high(unsigned bucket);

#endif
