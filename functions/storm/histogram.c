#include "functions/storm/histogram.h"

#include <string.h>

#define SUB_COUNT (1u << HIST_SUB_BITS)

void hist_init(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

unsigned hist_bucket_of(uint64_t value)
{
	if (value < SUB_COUNT)
		return (unsigned)value;
	unsigned e = 63u - (unsigned)__builtin_clzll(value); /* value >= 2^e */
	if (e > HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	unsigned shift = e - HIST_SUB_BITS;
	return ((shift + 1) << HIST_SUB_BITS) + (unsigned)(value >> shift) - SUB_COUNT;
}

uint64_t hist_bucket_high(unsigned bucket)
{
	if (bucket < SUB_COUNT)
		return bucket;
	unsigned shift = (bucket >> HIST_SUB_BITS) - 1;
	uint64_t sub = (bucket & (SUB_COUNT - 1)) + SUB_COUNT;
	return ((sub + 1) << shift) - 1;
}

void hist_record(struct histogram *h, uint64_t value)
{
	if (h->count == 0 || value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	h->count++;
	h->sum += value;
	h->buckets[hist_bucket_of(value)]++;
}

void hist_merge(struct histogram *into, const struct histogram *from)
{
	if (from->count == 0)
		return;
	if (into->count == 0 || from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
	into->count += from->count;
	into->sum += from->sum;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
}

uint64_t hist_percentile(const struct histogram *h, double p)
{
	if (h->count == 0)
		return 0;
	if (!(p > 0))
		return h->min;
	if (p >= 100)
		return h->max;
	double exact = p * (double)h->count / 100.0;
	uint64_t rank = (uint64_t)exact; /* rounded up below, without libm's ceil */
	if ((double)rank < exact)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double hist_mean(const struct histogram *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}
