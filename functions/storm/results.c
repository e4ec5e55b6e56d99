#include "functions/storm/results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct storm_results *storm_results_new(void)
{
	struct storm_results *r = calloc(1, sizeof(*r));
	if (r) {
		hist_init(&r->latency_ok);
		hist_init(&r->latency_error);
		hist_init(&r->connect);
	}
	return r;
}

void storm_results_free(struct storm_results *r)
{
	free(r);
}

static void note_done(struct storm_results *r, usec_t now)
{
	if (now > r->last_done)
		r->last_done = now;
}

void storm_results_ok(struct storm_results *r, usec_t latency, usec_t now)
{
	r->ok++;
	hist_record(&r->latency_ok, latency < 0 ? 0 : (uint64_t)latency);
	note_done(r, now);
}

/* Adds count failures of a class; the message replaces the kept one if earlier. */
static void add_class(struct storm_results *r, const char *key, uint64_t count, const char *message,
		      usec_t at)
{
	for (size_t i = 0; i < r->n_classes; i++) {
		struct storm_error_class *c = &r->classes[i];
		if (strcmp(c->key, key) != 0)
			continue;
		c->count += count;
		if (at < c->first_at) {
			snprintf(c->message, sizeof(c->message), "%s", message);
			c->first_at = at;
		}
		return;
	}
	if (r->n_classes == STORM_MAX_CLASSES) {
		r->unclassified += count;
		return;
	}
	struct storm_error_class *c = &r->classes[r->n_classes++];
	snprintf(c->key, sizeof(c->key), "%s", key);
	snprintf(c->message, sizeof(c->message), "%s", message);
	c->count = count;
	c->first_at = at;
}

void storm_results_error(struct storm_results *r, const char *key, const char *message,
			 usec_t latency, usec_t now)
{
	r->failed++;
	hist_record(&r->latency_error, latency < 0 ? 0 : (uint64_t)latency);
	add_class(r, key, 1, message ? message : "", now);
	note_done(r, now);
}

void storm_results_status(struct storm_results *r, int status)
{
	if (status >= 0 && status < (int)(sizeof(r->status) / sizeof(r->status[0])))
		r->status[status]++;
}

void storm_results_merge(struct storm_results *into, const struct storm_results *from)
{
	into->started += from->started;
	into->ok += from->ok;
	into->failed += from->failed;
	hist_merge(&into->latency_ok, &from->latency_ok);
	hist_merge(&into->latency_error, &from->latency_error);
	hist_merge(&into->connect, &from->connect);
	for (size_t i = 0; i < from->n_classes; i++) {
		const struct storm_error_class *c = &from->classes[i];
		add_class(into, c->key, c->count, c->message, c->first_at);
	}
	into->unclassified += from->unclassified;
	for (size_t i = 0; i < sizeof(into->status) / sizeof(into->status[0]); i++)
		into->status[i] += from->status[i];
	note_done(into, from->last_done);
}

static int by_count(const void *a, const void *b)
{
	const struct storm_error_class *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

void storm_results_sort(struct storm_results *r)
{
	qsort(r->classes, r->n_classes, sizeof(r->classes[0]), by_count);
}
