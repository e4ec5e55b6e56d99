/* functions/storm/histogram.c: the log-bucket latency histogram of corral-storm. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "functions/storm/histogram.h"

static struct histogram *new_hist(void)
{
	struct histogram *h = malloc(sizeof(*h));
	cr_assert_not_null(h);
	hist_init(h);
	return h;
}

Test(storm_histogram, empty)
{
	struct histogram *h = new_hist();
	cr_assert_eq(h->count, 0);
	cr_assert_eq(hist_percentile(h, 50), 0);
	cr_assert_eq(hist_percentile(h, 100), 0);
	cr_assert_eq(hist_mean(h), 0.0);
	free(h);
}

/* Below 128 every value has its own bucket: percentiles are exact. */
Test(storm_histogram, small_values_exact)
{
	struct histogram *h = new_hist();
	for (uint64_t v = 1; v <= 100; v++)
		hist_record(h, v);
	cr_assert_eq(h->count, 100);
	cr_assert_eq(h->min, 1);
	cr_assert_eq(h->max, 100);
	cr_assert_eq(hist_percentile(h, 0), 1);
	cr_assert_eq(hist_percentile(h, 1), 1);
	cr_assert_eq(hist_percentile(h, 50), 50);
	cr_assert_eq(hist_percentile(h, 90), 90);
	cr_assert_eq(hist_percentile(h, 99), 99);
	cr_assert_eq(hist_percentile(h, 99.5), 100);
	cr_assert_eq(hist_percentile(h, 100), 100);
	cr_assert_float_eq(hist_mean(h), 50.5, 1e-9);
	free(h);
}

Test(storm_histogram, single_value)
{
	struct histogram *h = new_hist();
	hist_record(h, 123456);
	/* clamped to min/max, so a lone value comes back exactly */
	cr_assert_eq(hist_percentile(h, 50), 123456);
	cr_assert_eq(hist_percentile(h, 99), 123456);
	cr_assert_eq(hist_percentile(h, 100), 123456);
	free(h);
}

/* Buckets tile the number line: contiguous, increasing, each value in its own. */
Test(storm_histogram, buckets_tile)
{
	cr_assert_eq(hist_bucket_of(0), 0);
	cr_assert_eq(hist_bucket_high(0), 0);
	for (unsigned b = 1; b < HIST_BUCKETS; b++) {
		uint64_t lo = hist_bucket_high(b - 1) + 1, hi = hist_bucket_high(b);
		cr_assert_geq(hi, lo, "bucket %u", b);
		cr_assert_eq(hist_bucket_of(lo), b, "low end of bucket %u", b);
		cr_assert_eq(hist_bucket_of(hi), b, "high end of bucket %u", b);
		/* width at most 1/128 of the values it holds */
		cr_assert_leq((hi - lo + 1) * 128, lo < 128 ? 128 : lo, "bucket %u", b);
	}
	cr_assert_eq(hist_bucket_of(UINT64_MAX), HIST_BUCKETS - 1);
	cr_assert_eq(hist_bucket_of((uint64_t)1 << 50), HIST_BUCKETS - 1);
}

/* Over a wide range, a percentile is within 0.8 % above the true value. */
Test(storm_histogram, relative_error_bound)
{
	struct histogram *h = new_hist();
	for (uint64_t v = 1; v <= 1000000; v++)
		hist_record(h, v);
	double ps[] = {10, 25, 50, 75, 90, 99, 99.9};
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t want = (uint64_t)(ps[i] * 10000.0 + 0.5);
		uint64_t got = hist_percentile(h, ps[i]);
		cr_assert_geq(got, want, "p%g: %lu < %lu", ps[i], (unsigned long)got,
			      (unsigned long)want);
		cr_assert_leq((double)(got - want), want / 128.0 + 1, "p%g: %lu vs %lu", ps[i],
			      (unsigned long)got, (unsigned long)want);
	}
	cr_assert_eq(hist_percentile(h, 100), 1000000);
	cr_assert_float_eq(hist_mean(h), 500000.5, 1e-6);
	free(h);
}

/* A typical storm: most fast, a slow tail. */
Test(storm_histogram, tail)
{
	struct histogram *h = new_hist();
	for (int i = 0; i < 980; i++)
		hist_record(h, 2000); /* 2 ms */
	for (int i = 0; i < 19; i++)
		hist_record(h, 150000); /* 150 ms */
	hist_record(h, 3000000);        /* 3 s */
	cr_assert_eq(hist_percentile(h, 50), hist_bucket_high(hist_bucket_of(2000)));
	cr_assert_eq(hist_percentile(h, 98), hist_bucket_high(hist_bucket_of(2000)));
	uint64_t p99 = hist_percentile(h, 99);
	cr_assert(p99 >= 150000 && p99 <= 150000 + 150000 / 128, "p99 %lu", (unsigned long)p99);
	cr_assert_eq(hist_percentile(h, 99.95), 3000000);
	cr_assert_eq(h->max, 3000000);
	free(h);
}

Test(storm_histogram, merge)
{
	struct histogram *a = new_hist(), *b = new_hist(), *all = new_hist();
	srand(3);
	for (int i = 0; i < 5000; i++) {
		uint64_t v = (uint64_t)rand() % 5000000;
		hist_record(i % 3 ? a : b, v);
		hist_record(all, v);
	}
	struct histogram *sum = new_hist();
	hist_merge(sum, a);
	hist_merge(sum, b);
	cr_assert_eq(sum->count, all->count);
	cr_assert_eq(sum->min, all->min);
	cr_assert_eq(sum->max, all->max);
	cr_assert_eq(sum->sum, all->sum);
	for (double p = 0; p <= 100; p += 0.5)
		cr_assert_eq(hist_percentile(sum, p), hist_percentile(all, p), "p%g", p);
	/* merging an empty one changes nothing; merging into an empty one copies */
	struct histogram *empty = new_hist();
	hist_merge(sum, empty);
	cr_assert_eq(sum->min, all->min);
	hist_merge(empty, b);
	cr_assert_eq(empty->min, b->min);
	cr_assert_eq(empty->count, b->count);
	free(a);
	free(b);
	free(all);
	free(sum);
	free(empty);
}

Test(storm_histogram, zero_and_huge)
{
	struct histogram *h = new_hist();
	hist_record(h, 0);
	hist_record(h, (uint64_t)1 << 45);
	cr_assert_eq(h->min, 0);
	cr_assert_eq(h->max, (uint64_t)1 << 45);
	cr_assert_eq(hist_percentile(h, 50), 0);
	cr_assert_eq(hist_percentile(h, 100), (uint64_t)1 << 45);
	free(h);
}
