/*
 * What a run measured: counts, latency histograms, errors by class and HTTP status
 * codes.  Each worker thread fills its own; they are merged at the end.
 */
#ifndef CORRAL_FUNCTIONS_STORM_RESULTS_H
#define CORRAL_FUNCTIONS_STORM_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "functions/storm/histogram.h"

#define STORM_MAX_CLASSES 64
#define STORM_CLASS_KEY 32
#define STORM_CLASS_MESSAGE 256

/* One class of failure: an SQLSTATE ("53300"), "HTTP 503", "timeout", ... */
struct storm_error_class {
	char key[STORM_CLASS_KEY];
	uint64_t count;
	char message[STORM_CLASS_MESSAGE]; /* the first one seen */
	usec_t first_at;                   /* when that was */
};

struct storm_results {
	uint64_t started, ok, failed;
	struct histogram latency_ok;    /* intended start -> done, successes */
	struct histogram latency_error; /* the same for failures */
	struct histogram connect;       /* intended start -> logged in (--connect) */
	struct storm_error_class classes[STORM_MAX_CLASSES];
	size_t n_classes;
	uint64_t unclassified; /* failures past STORM_MAX_CLASSES distinct classes */
	uint64_t status[600];  /* HTTP responses by status code */
	usec_t last_done;      /* when the last invocation finished */
};

/* Allocates zeroed results (a few hundred KB: keep them off the stack). */
struct storm_results *storm_results_new(void);
void storm_results_free(struct storm_results *r);

void storm_results_ok(struct storm_results *r, usec_t latency, usec_t now);
/* Counts a failure of class key; the message is kept if it is the first of its class. */
void storm_results_error(struct storm_results *r, const char *key, const char *message,
			 usec_t latency, usec_t now);
void storm_results_status(struct storm_results *r, int status);
void storm_results_merge(struct storm_results *into, const struct storm_results *from);
/* Classes by count, largest first (ties by key). */
void storm_results_sort(struct storm_results *r);

#endif
