/* Edit distance for "did you mean"; see suggest.h. */
#include "common/suggest.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#define MAX_NAME 63
#define FAR (INT_MAX / 2)

static int min3(int a, int b, int c)
{
	int m = a < b ? a : b;
	return m < c ? m : c;
}

int suggest_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n > MAX_NAME || m > MAX_NAME)
		return FAR;
	/* Three rows of the dynamic programme: the swap looks two rows back. */
	int rows[3][MAX_NAME + 1];
	int *back2 = rows[0], *back1 = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= m; j++)
		back1[j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = (int)i;
		for (size_t j = 1; j <= m; j++) {
			int ca = tolower((unsigned char)a[i - 1]),
			    cb = tolower((unsigned char)b[j - 1]);
			int d = min3(back1[j] + 1, cur[j - 1] + 1, back1[j - 1] + (ca != cb));
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && back2[j - 2] + 1 < d)
				d = back2[j - 2] + 1;
			cur[j] = d;
		}
		int *t = back2;
		back2 = back1;
		back1 = cur;
		cur = t;
	}
	return back1[m];
}

void suggest_begin(struct suggest *s, const char *name)
{
	*s = (struct suggest){.name = name, .best = NULL, .best_distance = FAR};
}

void suggest_consider(struct suggest *s, const char *candidate)
{
	int d = suggest_distance(s->name, candidate);
	if (d < s->best_distance) {
		s->best = candidate;
		s->best_distance = d;
	}
}

/*
 * Close enough: one slip in a short name, up to a third of a long one (two swapped
 * letters and a missing one in "max_clinet_con"), and always less than half of it, so
 * two-letter names are never "corrected".  Case alone (distance 0) counts: keys are
 * case-sensitive.
 */
const char *suggest_result(const struct suggest *s)
{
	if (!s->best)
		return NULL;
	int len = (int)strlen(s->name);
	int limit = len <= 4 ? 1 : len / 3 > 1 ? len / 3 : 1;
	return s->best_distance <= limit && s->best_distance * 2 < len ? s->best : NULL;
}
