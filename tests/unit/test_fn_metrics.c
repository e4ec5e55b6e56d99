/* functions/runner/fn_metrics.c: counters, histograms and the Prometheus text page. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"
#include "functions/runner/fn_metrics.h"

/* The page as one NUL-terminated string (caller frees). */
static char *render(const struct fn_metrics_row *rows, size_t n)
{
	struct evbuffer *buf = evbuffer_new();
	cr_assert_not_null(buf);
	fn_metrics_render(buf, rows, n);
	size_t len = evbuffer_get_length(buf);
	char *text = malloc(len + 1);
	cr_assert_not_null(text);
	cr_assert_eq(evbuffer_remove(buf, text, len), (int)len);
	text[len] = '\0';
	evbuffer_free(buf);
	return text;
}

/* How many lines of text are exactly line. */
static size_t count_line(const char *text, const char *line)
{
	size_t n = 0, len = strlen(line);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (l == len && memcmp(p, line, len) == 0)
			n++;
		p += l + (nl ? 1 : 0);
	}
	return n;
}

/* How many lines of text start with prefix. */
static size_t count_prefix(const char *text, const char *prefix)
{
	size_t n = 0, len = strlen(prefix);
	for (const char *p = text; *p;) {
		if (strncmp(p, prefix, len) == 0)
			n++;
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

#define assert_line(text, line) \
	cr_assert_eq(count_line((text), (line)), 1, "want exactly one line `%s` in:\n%s", (line), (text))

/* The value text of the sample whose name and labels are exactly key (static buffer). */
static const char *sample_value(const char *text, const char *key)
{
	static char value[128];
	size_t len = strlen(key);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (l > len && memcmp(p, key, len) == 0 && p[len] == ' ') {
			size_t vl = l - len - 1;
			cr_assert_lt(vl, sizeof(value));
			memcpy(value, p + len + 1, vl);
			value[vl] = '\0';
			return value;
		}
		p += l + (nl ? 1 : 0);
	}
	cr_assert_fail("no sample `%s` in:\n%s", key, text);
	return NULL;
}

static const double want_bounds[FN_METRICS_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05,   0.1,     0.25,   0.5,   1,      2.5,   10,   60,
};
static const char *const want_le[FN_METRICS_BUCKETS] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
	"0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "10",   "60",
};

Test(fn_metrics, bounds_are_the_documented_ladder)
{
	for (size_t i = 0; i < FN_METRICS_BUCKETS; i++)
		cr_assert_eq(fn_histogram_bound(i), want_bounds[i], "bound %zu is %.17g", i,
			     fn_histogram_bound(i));
	cr_assert(isinf(fn_histogram_bound(FN_METRICS_BUCKETS)));
}

Test(fn_metrics, observe_puts_a_value_in_the_first_bucket_that_holds_it)
{
	struct fn_histogram h = {0};
	fn_histogram_observe(&h, 0);        /* bucket 0 */
	fn_histogram_observe(&h, 100);      /* exactly 0.0001 s: still bucket 0 (le) */
	fn_histogram_observe(&h, 101);      /* bucket 1 (0.00025) */
	fn_histogram_observe(&h, 1000000);  /* exactly 1 s: bucket 12 */
	fn_histogram_observe(&h, 60000000); /* exactly 60 s: last bucket */
	fn_histogram_observe(&h, 60000001); /* over 60 s: +Inf only */
	fn_histogram_observe(&h, -5);       /* counts as 0 */
	cr_assert_eq(h.counts[0], 3);
	cr_assert_eq(h.counts[1], 1);
	cr_assert_eq(h.counts[12], 1);
	cr_assert_eq(h.counts[15], 1);
	uint64_t in_buckets = 0;
	for (size_t i = 0; i < FN_METRICS_BUCKETS; i++)
		in_buckets += h.counts[i];
	cr_assert_eq(in_buckets, 6);
	cr_assert_eq(h.count, 7);
	double want = 0.0001 + 0.000101 + 1 + 60 + 60.000001;
	cr_assert(fabs(h.sum_seconds - want) < 1e-9, "sum %.17g", h.sum_seconds);
}

Test(fn_metrics, histogram_renders_cumulative_buckets_inf_sum_count)
{
	static const usec_t values[] = {50, 1000, 1001, 3000000, 70000000};
	struct fn_metrics m = {0};
	double want_sum = 0;
	for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
		fn_histogram_observe(&m.duration, values[i]);
		want_sum += (double)values[i] / 1e6; /* same order, so the same double */
	}
	struct fn_metrics_row row = {.function = "f", .metrics = &m};
	char *text = render(&row, 1);

	/* cumulative count at each bound: <=0.0001: 50; <=0.001: +1000; <=0.0025: +1001;
	 * <=10: +3 s; 70 s only in +Inf */
	static const unsigned want_cum[FN_METRICS_BUCKETS] = {1, 1, 1, 2, 3, 3, 3, 3,
							      3, 3, 3, 3, 3, 3, 4, 4};
	char key[128], line[160];
	for (size_t i = 0; i < FN_METRICS_BUCKETS; i++) {
		snprintf(line, sizeof(line),
			 "corral_fn_duration_seconds_bucket{function=\"f\",le=\"%s\"} %u", want_le[i],
			 want_cum[i]);
		assert_line(text, line);
	}
	cr_assert_eq(count_prefix(text, "corral_fn_duration_seconds_bucket{"),
		     FN_METRICS_BUCKETS + 1);
	assert_line(text, "corral_fn_duration_seconds_bucket{function=\"f\",le=\"+Inf\"} 5");
	assert_line(text, "corral_fn_duration_seconds_count{function=\"f\"} 5");

	/* +Inf equals _count, and _sum reads back as exactly the double observed */
	const char *inf = sample_value(text, "corral_fn_duration_seconds_bucket{function=\"f\",le=\"+Inf\"}");
	char inf_copy[32];
	snprintf(inf_copy, sizeof(inf_copy), "%s", inf);
	cr_assert_str_eq(inf_copy, sample_value(text, "corral_fn_duration_seconds_count{function=\"f\"}"));
	snprintf(key, sizeof(key), "corral_fn_duration_seconds_sum{function=\"f\"}");
	double sum = strtod(sample_value(text, key), NULL);
	cr_assert_eq(sum, want_sum, "sum %.17g, want %.17g", sum, want_sum);
	cr_assert(fabs(sum - 73.002051) < 1e-9);

	/* the untouched histograms render as zeros */
	assert_line(text, "corral_fn_init_duration_seconds_bucket{function=\"f\",le=\"60\"} 0");
	assert_line(text, "corral_fn_init_duration_seconds_sum{function=\"f\"} 0");
	assert_line(text, "corral_fn_queue_wait_seconds_count{function=\"f\"} 0");
	free(text);
}

Test(fn_metrics, sum_prints_short_when_exact)
{
	struct fn_metrics m = {0};
	fn_histogram_observe(&m.queue_wait, 500000);
	fn_histogram_observe(&m.queue_wait, 1000000);
	struct fn_metrics_row row = {.function = "f", .metrics = &m};
	char *text = render(&row, 1);
	assert_line(text, "corral_fn_queue_wait_seconds_sum{function=\"f\"} 1.5");
	assert_line(text, "corral_fn_queue_wait_seconds_bucket{function=\"f\",le=\"0.5\"} 1");
	assert_line(text, "corral_fn_queue_wait_seconds_bucket{function=\"f\",le=\"1\"} 2");
	free(text);
}

static struct fn_call_done call(enum fn_call_status status, usec_t queue_wait, usec_t duration)
{
	return (struct fn_call_done){
		.status = status,
		.function_name = "f",
		.queue_wait_usec = queue_wait,
		.duration_usec = duration,
	};
}

Test(fn_metrics, record_counts_outcomes_and_observes_what_happened)
{
	struct fn_metrics m = {0};
	for (int s = FN_CALL_OK; s <= FN_CALL_SHUTDOWN; s++) {
		struct fn_call_done d = call((enum fn_call_status)s, 500, 2000);
		fn_metrics_record(&m, &d);
	}
	for (int s = FN_CALL_OK; s <= FN_CALL_SHUTDOWN; s++)
		cr_assert_eq(m.invocations[s], 1, "status %d", s);
	cr_assert_eq(m.throttles, 1);
	cr_assert_eq(m.cold_starts, 0);

	/* duration: only OK, FUNCTION_ERROR, TIMEOUT, CRASH ran */
	cr_assert_eq(m.duration.count, 4);
	cr_assert_eq(m.duration.counts[4], 4); /* 2 ms <= 0.0025 */
	cr_assert(fabs(m.duration.sum_seconds - 0.008) < 1e-12);
	/* queue wait: all but THROTTLED, QUEUE_TIMEOUT, TOO_LARGE */
	cr_assert_eq(m.queue_wait.count, 6);
	cr_assert_eq(m.queue_wait.counts[2], 6); /* 0.5 ms <= 0.0005 */

	/* shut down (or failed init) before dispatch: the runtime says so with wait < 0 */
	struct fn_call_done d = call(FN_CALL_SHUTDOWN, -1, 0);
	fn_metrics_record(&m, &d);
	d = call(FN_CALL_INIT_ERROR, -1, 0);
	fn_metrics_record(&m, &d);
	cr_assert_eq(m.queue_wait.count, 6);
	cr_assert_eq(m.invocations[FN_CALL_SHUTDOWN], 2);
	cr_assert_eq(m.invocations[FN_CALL_INIT_ERROR], 2);
	/* a queue timeout waited, but was never dispatched */
	d = call(FN_CALL_QUEUE_TIMEOUT, 3000000, 0);
	fn_metrics_record(&m, &d);
	cr_assert_eq(m.queue_wait.count, 6);
	cr_assert_eq(m.duration.count, 4);
	cr_assert_eq(m.init_duration.count, 0);

	/* a status out of range counts nothing (and writes nowhere) */
	struct fn_metrics before = m;
	d = call((enum fn_call_status)(FN_CALL_SHUTDOWN + 1), 1, 1);
	fn_metrics_record(&m, &d);
	cr_assert_eq(memcmp(&before, &m, sizeof(m)), 0);
}

Test(fn_metrics, cold_start_counts_and_observes_init)
{
	struct fn_metrics m = {0};
	fn_metrics_cold_start(&m, 40000);   /* 0.04 s: bucket 0.05 */
	fn_metrics_cold_start(&m, 3000000); /* 3 s: bucket 10 */
	cr_assert_eq(m.cold_starts, 2);
	cr_assert_eq(m.init_duration.count, 2);
	struct fn_metrics_row row = {.function = "f", .metrics = &m};
	char *text = render(&row, 1);
	assert_line(text, "corral_fn_cold_starts_total{function=\"f\"} 2");
	assert_line(text, "corral_fn_init_duration_seconds_bucket{function=\"f\",le=\"0.025\"} 0");
	assert_line(text, "corral_fn_init_duration_seconds_bucket{function=\"f\",le=\"0.05\"} 1");
	assert_line(text, "corral_fn_init_duration_seconds_bucket{function=\"f\",le=\"2.5\"} 1");
	assert_line(text, "corral_fn_init_duration_seconds_bucket{function=\"f\",le=\"10\"} 2");
	assert_line(text, "corral_fn_init_duration_seconds_sum{function=\"f\"} 3.04");
	assert_line(text, "corral_fn_init_duration_seconds_count{function=\"f\"} 2");
	free(text);
}

Test(fn_metrics, status_labels)
{
	static const char *const want[] = {"ok",      "function_error", "throttled",
					   "queue_timeout", "timeout", "crash",
					   "init_error", "too_large", "shutdown"};
	cr_assert_eq(ARRAY_SIZE(want), FN_CALL_SHUTDOWN + 1);
	for (int s = FN_CALL_OK; s <= FN_CALL_SHUTDOWN; s++)
		cr_assert_str_eq(fn_call_status_label((enum fn_call_status)s), want[s]);
	cr_assert_str_eq(fn_call_status_label((enum fn_call_status)99), "unknown");
}

Test(fn_metrics, every_outcome_is_a_sample)
{
	static const char *const outcomes[] = {"ok",      "function_error", "throttled",
					       "queue_timeout", "timeout", "crash",
					       "init_error", "too_large", "shutdown"};
	struct fn_metrics m = {0};
	for (int s = FN_CALL_OK; s <= FN_CALL_SHUTDOWN; s++)
		m.invocations[s] = (uint64_t)s * 10 + 1; /* distinct per outcome */
	m.invocations[FN_CALL_OK] = 18446744073709551615u; /* full 64 bits, no %d truncation */
	m.throttles = 7;
	struct fn_metrics_row row = {.function = "f", .metrics = &m};
	char *text = render(&row, 1);
	char line[160];
	for (int s = FN_CALL_OK; s <= FN_CALL_SHUTDOWN; s++) {
		snprintf(line, sizeof(line),
			 "corral_fn_invocations_total{function=\"f\",outcome=\"%s\"} %llu", outcomes[s],
			 (unsigned long long)m.invocations[s]);
		assert_line(text, line);
	}
	cr_assert_eq(count_prefix(text, "corral_fn_invocations_total{"), FN_CALL_SHUTDOWN + 1);
	assert_line(text, "corral_fn_invocations_total{function=\"f\",outcome=\"ok\"} "
			  "18446744073709551615");
	assert_line(text, "corral_fn_throttles_total{function=\"f\"} 7");
	free(text);
}

Test(fn_metrics, gauges_come_from_stats)
{
	struct fn_metrics m = {0};
	struct fn_metrics_row row = {
		.function = "f",
		.metrics = &m,
		.stats = {.starting = 1, .idle = 2, .busy = 3, .stopping = 4, .waiting = 5},
	};
	char *text = render(&row, 1);
	assert_line(text, "corral_fn_environments{function=\"f\",state=\"starting\"} 1");
	assert_line(text, "corral_fn_environments{function=\"f\",state=\"idle\"} 2");
	assert_line(text, "corral_fn_environments{function=\"f\",state=\"busy\"} 3");
	assert_line(text, "corral_fn_environments{function=\"f\",state=\"stopping\"} 4");
	cr_assert_eq(count_prefix(text, "corral_fn_environments{"), 4);
	assert_line(text, "corral_fn_queue_depth{function=\"f\"} 5");
	assert_line(text, "# TYPE corral_fn_environments gauge");
	assert_line(text, "# TYPE corral_fn_queue_depth gauge");
	free(text);
}

Test(fn_metrics, label_values_are_escaped)
{
	struct fn_metrics m = {.cold_starts = 3};
	struct fn_metrics_row row = {.function = "a\"b\\c\nd", .metrics = &m};
	char *text = render(&row, 1);
	assert_line(text, "corral_fn_cold_starts_total{function=\"a\\\"b\\\\c\\nd\"} 3");
	assert_line(text, "corral_fn_duration_seconds_bucket{function=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 0");
	/* the raw newline never reaches the page: every line is a comment or a sample */
	size_t lines = count_prefix(text, ""), ok = count_prefix(text, "# ") +
						     count_prefix(text, "corral_fn_");
	cr_assert_eq(lines, ok, "%s", text);
	free(text);
}

/* Each family: its HELP and TYPE exactly once, immediately followed by all its samples
 * (the format wants a family's samples together), for both rows. */
Test(fn_metrics, help_and_type_once_per_family_with_two_rows)
{
	static const struct {
		const char *name, *type;
		size_t per_row; /* samples of one function */
	} families[] = {
		{"corral_fn_invocations_total", "counter", FN_CALL_SHUTDOWN + 1},
		{"corral_fn_cold_starts_total", "counter", 1},
		{"corral_fn_throttles_total", "counter", 1},
		{"corral_fn_environments", "gauge", 4},
		{"corral_fn_queue_depth", "gauge", 1},
		{"corral_fn_duration_seconds", "histogram", FN_METRICS_BUCKETS + 3},
		{"corral_fn_init_duration_seconds", "histogram", FN_METRICS_BUCKETS + 3},
		{"corral_fn_queue_wait_seconds", "histogram", FN_METRICS_BUCKETS + 3},
		{"corral_fn_up", "gauge", 0},
	};
	struct fn_metrics a = {.cold_starts = 1}, b = {.cold_starts = 2};
	struct fn_metrics_row rows[] = {
		{.function = "alpha", .metrics = &a},
		{.function = "beta", .metrics = &b},
	};
	char *text = render(rows, 2);
	char buf[256];
	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		const char *name = families[f].name;
		snprintf(buf, sizeof(buf), "# HELP %s ", name);
		cr_assert_eq(count_prefix(text, buf), 1, "HELP of %s", name);
		snprintf(buf, sizeof(buf), "# TYPE %s %s", name, families[f].type);
		assert_line(text, buf);
		snprintf(buf, sizeof(buf), "# TYPE %s ", name);
		cr_assert_eq(count_prefix(text, buf), 1, "TYPE of %s", name);

		/* after the TYPE line: HELP/TYPE of nothing else until this family's samples
		 * are done, and each row has its own */
		snprintf(buf, sizeof(buf), "# TYPE %s %s\n", name, families[f].type);
		const char *p = strstr(text, buf) + strlen(buf);
		size_t name_len = strlen(name), samples = 0, alpha = 0, beta = 0;
		while (strncmp(p, name, name_len) == 0 && p[name_len] != '\0' &&
		       strchr("{ _", p[name_len]) != NULL) {
			const char *nl = strchr(p, '\n');
			cr_assert_not_null(nl);
			if (memmem(p, (size_t)(nl - p), "function=\"alpha\"", 16))
				alpha++;
			if (memmem(p, (size_t)(nl - p), "function=\"beta\"", 15))
				beta++;
			samples++;
			p = nl + 1;
		}
		size_t per_row = families[f].per_row;
		if (per_row) {
			cr_assert_eq(alpha, per_row, "%s alpha", name);
			cr_assert_eq(beta, per_row, "%s beta", name);
			cr_assert_eq(samples, 2 * per_row, "%s samples", name);
		} else {
			cr_assert_eq(samples, 1, "%s", name);
		}
		/* whatever follows is another family's HELP or the end */
		cr_assert(*p == '\0' || strncmp(p, "# HELP ", 7) == 0, "after %s: %.40s", name, p);
	}
	assert_line(text, "corral_fn_cold_starts_total{function=\"alpha\"} 1");
	assert_line(text, "corral_fn_cold_starts_total{function=\"beta\"} 2");
	cr_assert_eq(count_prefix(text, "# HELP "), ARRAY_SIZE(families));
	cr_assert_eq(count_prefix(text, "# TYPE "), ARRAY_SIZE(families));
	free(text);
}

Test(fn_metrics, up_and_every_sample_parses)
{
	struct fn_metrics m = {0};
	fn_histogram_observe(&m.duration, 123457);
	struct fn_metrics_row row = {.function = "f", .metrics = &m};
	char *text = render(&row, 1);
	assert_line(text, "corral_fn_up 1");
	assert_line(text, "# TYPE corral_fn_up gauge");
	/* every sample line: name, optional {labels}, one space, a number and nothing more */
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		cr_assert_not_null(nl, "page ends with a newline");
		if (*p != '#') {
			const char *sp = memrchr(p, ' ', (size_t)(nl - p));
			cr_assert_not_null(sp);
			char *end;
			double v = strtod(sp + 1, &end);
			cr_assert_eq(end, nl, "value of `%.*s`", (int)(nl - p), p);
			cr_assert(v >= 0);
			const char *brace = memchr(p, '{', (size_t)(sp - p));
			if (brace)
				cr_assert_eq(sp[-1], '}', "`%.*s`", (int)(nl - p), p);
		}
		p = nl + 1;
	}
	free(text);
}

Test(fn_metrics, no_rows_still_a_valid_page)
{
	char *text = render(NULL, 0);
	assert_line(text, "corral_fn_up 1");
	assert_line(text, "# TYPE corral_fn_duration_seconds histogram");
	cr_assert_eq(count_prefix(text, "corral_fn_"), 1); /* only up */
	free(text);
}

Test(fn_metrics, sums_read_back_exactly)
{
	struct fn_metrics m = {0};
	fn_histogram_observe(&m.duration, 10); /* 1e-05 s: the format reads the exponent */
	fn_histogram_observe(&m.queue_wait, 100000);
	fn_histogram_observe(&m.queue_wait, 200000); /* 0.1 + 0.2: needs all 17 digits */
	struct fn_metrics_row row = {.function = "f", .metrics = &m};
	char *text = render(&row, 1);
	assert_line(text, "corral_fn_duration_seconds_sum{function=\"f\"} 1e-05");
	const char *v = sample_value(text, "corral_fn_queue_wait_seconds_sum{function=\"f\"}");
	cr_assert_str_eq(v, "0.30000000000000004");
	cr_assert_eq(strtod(v, NULL), m.queue_wait.sum_seconds);
	free(text);
}
