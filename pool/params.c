#include "pool/params.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const params_reported_names[] = {
	"application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
	"in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser",
	"server_encoding", "server_version", "session_authorization",
	"standard_conforming_strings", "TimeZone",
};
const size_t params_reported_count = ARRAY_SIZE(params_reported_names);

/* A set's one allocation: names[n], values[n], then the text. */
struct param_block {
	atomic_uint refs;
	const char *ptrs[];
};

static struct param_block *block_of(const struct param_set *ps)
{
	return (struct param_block *)(void *)((char *)(uintptr_t)ps->names -
					      offsetof(struct param_block, ptrs));
}

static void release(struct param_set *ps)
{
	if (ps->names) {
		struct param_block *b = block_of(ps);
		if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
			free(b);
	}
	ps->n = 0;
	ps->names = ps->values = NULL;
}

/* ps becomes these n pairs.  They may point into ps's own block: it is released only
 * once they are copied. */
static bool build(struct param_set *ps, size_t n, const char *const *names,
		  const char *const *values)
{
	if (n == 0) {
		release(ps);
		return true;
	}
	size_t size = sizeof(struct param_block) + 2 * n * sizeof(char *);
	for (size_t i = 0; i < n; i++)
		size += strlen(names[i]) + 1 + strlen(values[i]) + 1;
	struct param_block *b = malloc(size);
	if (!b)
		return false;
	atomic_init(&b->refs, 1);
	char *text = (char *)&b->ptrs[2 * n];
	for (size_t i = 0; i < 2 * n; i++) {
		const char *src = i < n ? names[i] : values[i - n];
		size_t len = strlen(src) + 1;
		memcpy(text, src, len);
		b->ptrs[i] = text;
		text += len;
	}
	release(ps);
	ps->n = n;
	ps->names = b->ptrs;
	ps->values = b->ptrs + n;
	return true;
}

static int fold(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* Parameter names are case-insensitive in PostgreSQL (DateStyle == datestyle).  A
 * login looks names up a few hundred times and most differ in their first letter:
 * that is compared before strcasecmp is called. */
static int find(const struct param_set *ps, const char *name)
{
	int first = fold(name[0]);
	for (size_t i = 0; i < ps->n; i++)
		if (fold(ps->names[i][0]) == first && strcasecmp(ps->names[i], name) == 0)
			return (int)i;
	return -1;
}

bool params_set(struct param_set *ps, const char *name, const char *value)
{
	const char *names[PARAMS_MAX], *values[PARAMS_MAX];
	size_t n = ps->n;
	for (size_t i = 0; i < n; i++) {
		names[i] = ps->names[i];
		values[i] = ps->values[i];
	}
	int i = find(ps, name);
	if (i >= 0) {
		if (strcmp(values[i], value) == 0)
			return true; /* the same: the set (maybe shared) stays as it is */
		values[i] = value; /* a replaced entry keeps its place and first spelling */
	} else {
		if (n == PARAMS_MAX)
			return false;
		names[n] = name;
		values[n] = value;
		n++;
	}
	return build(ps, n, names, values);
}

bool params_remove(struct param_set *ps, const char *name)
{
	int i = find(ps, name);
	if (i < 0)
		return true;
	/* The order stays: signatures read the set in order. */
	const char *names[PARAMS_MAX], *values[PARAMS_MAX];
	size_t n = 0;
	for (size_t j = 0; j < ps->n; j++) {
		if (j == (size_t)i)
			continue;
		names[n] = ps->names[j];
		values[n] = ps->values[j];
		n++;
	}
	return build(ps, n, names, values);
}

const char *params_get(const struct param_set *ps, const char *name)
{
	int i = find(ps, name);
	return i >= 0 ? ps->values[i] : NULL;
}

void params_clear(struct param_set *ps)
{
	release(ps);
}

void params_copy(struct param_set *dst, const struct param_set *src)
{
	if (dst->names == src->names)
		return; /* the same allocation (or both empty) */
	if (src->names)
		atomic_fetch_add_explicit(&block_of(src)->refs, 1, memory_order_relaxed);
	release(dst);
	*dst = *src;
}
