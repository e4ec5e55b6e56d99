#include "pool/params.h"

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
	int i = find(ps, name);
	if (i >= 0) {
		/* A welcome sets every tracked value again, mostly to what it is already. */
		if (strcmp(ps->values[i], value) == 0)
			return true;
		char *v = strdup(value);
		if (!v)
			return false;
		free(ps->values[i]);
		ps->values[i] = v;
		return true;
	}
	if (ps->n == PARAMS_MAX)
		return false;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return false;
	}
	ps->names[ps->n] = n;
	ps->values[ps->n] = v;
	ps->n++;
	return true;
}

void params_remove(struct param_set *ps, const char *name)
{
	int i = find(ps, name);
	if (i < 0)
		return;
	free(ps->names[i]);
	free(ps->values[i]);
	/* The order stays: signatures read the set in order. */
	for (size_t j = (size_t)i + 1; j < ps->n; j++) {
		ps->names[j - 1] = ps->names[j];
		ps->values[j - 1] = ps->values[j];
	}
	ps->n--;
}

const char *params_get(const struct param_set *ps, const char *name)
{
	int i = find(ps, name);
	return i >= 0 ? ps->values[i] : NULL;
}

void params_clear(struct param_set *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->names[i]);
		free(ps->values[i]);
	}
	ps->n = 0;
}

void params_copy(struct param_set *dst, const struct param_set *src)
{
	params_clear(dst);
	/* src's names are distinct already: params_set's lookup would make this quadratic
	 * (a copy is made at every login, pin.c).  One that cannot be copied is left out,
	 * as params_set would leave it. */
	for (size_t i = 0; i < src->n; i++) {
		char *n = strdup(src->names[i]), *v = strdup(src->values[i]);
		if (!n || !v) {
			free(n);
			free(v);
			continue;
		}
		dst->names[dst->n] = n;
		dst->values[dst->n] = v;
		dst->n++;
	}
}
