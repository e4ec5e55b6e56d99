/*
 * A strict reader of Prometheus' text exposition format 0.0.4, for the tests of corral's
 * /metrics: every line must be a # HELP, a # TYPE or a sample (no blank lines, no other
 * comments: corral writes none), and the document must obey the format's rules:
 *   - metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* not
 *     starting with "__", label values in double quotes with only \\, \" and \n as escapes
 *     and valid UTF-8; values Go-style floats (+Inf, -Inf, NaN too), an optional integer
 *     timestamp;
 *   - at most one HELP and one TYPE per family, both before its first sample; TYPE one of
 *     counter, gauge, histogram, summary, untyped; every sample belongs to a family with a
 *     TYPE (a histogram's NAME_bucket, NAME_sum, NAME_count belong to NAME), and a
 *     family's samples and lines are contiguous;
 *   - no series (name and label set) twice; no label name twice in one sample;
 *   - counters are named *_total and are >= 0;
 *   - a histogram series has buckets with an le label, le strictly increasing and
 *     ending in +Inf, cumulative counts never decreasing, and _count equal to the +Inf
 *     bucket and a _sum.
 */
#ifndef CORRAL_TESTS_INTEGRATION_PROM_TEXT_H
#define CORRAL_TESTS_INTEGRATION_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct prom_sample {
	char *name;
	char *labels; /* canonical: name="value" pairs sorted by name, joined by ',', values
		       * unescaped (so a lookup can write them plainly) */
	double value;
};

struct prom_doc {
	struct prom_sample *samples;
	size_t n, cap;
	size_t n_families;
};

/* Parses text into doc; false with the first violation ("line N: why") in err. */
bool prom_parse(const char *text, struct prom_doc *doc, char *err, size_t errlen);
void prom_free(struct prom_doc *doc);
/* The sample name{labels} (labels canonical, "" for none); NULL if there is none. */
const struct prom_sample *prom_find(const struct prom_doc *doc, const char *name,
				    const char *labels);
/* How many samples have this name. */
size_t prom_count(const struct prom_doc *doc, const char *name);

#endif
