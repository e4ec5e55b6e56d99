/*
 * A set of server parameters as reported by ParameterStatus (server_version,
 * client_encoding, TimeZone, ...).  A pool keeps the set its servers last reported so
 * a client can be welcomed without waiting for a server login.
 */
#ifndef CORRAL_POOL_PARAMS_H
#define CORRAL_POOL_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

#define PARAMS_MAX 32

/*
 * n names and their values, in the order first set.  Both arrays and the text they
 * point to are one allocation (one per set, and a logged-in client holds two sets:
 * 2 x 32 pointers and a string each cost ~1.5 KB), never changed once built: a change
 * builds a new one, so params_copy shares it (reference counted; pool/shared.c copies
 * sets between workers).  {0} is the empty set; never copy the struct itself.
 */
struct param_set {
	size_t n;
	const char *const *names;
	const char *const *values;
};

/* Sets name to value, replacing an earlier value; false when the set is full. */
bool params_set(struct param_set *ps, const char *name, const char *value);
const char *params_get(const struct param_set *ps, const char *name);
/* Drops name (any case) if present, keeping the others' order; false (the set as it
 * was) when out of memory. */
bool params_remove(struct param_set *ps, const char *name) WARN_UNUSED;
/* dst becomes what src is now (sharing its allocation). */
void params_copy(struct param_set *dst, const struct param_set *src);
void params_clear(struct param_set *ps);

/* The parameters PostgreSQL reports at login (GUC_REPORT), in the order it sends them. */
extern const char *const params_reported_names[];
extern const size_t params_reported_count;

#endif
