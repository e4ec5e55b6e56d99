/*
 * "did you mean X?" for a name that is none of the known ones: the known name closest to
 * it by edit distance, when it is close enough to be a slip of the keyboard.
 */
#ifndef CORRAL_COMMON_SUGGEST_H
#define CORRAL_COMMON_SUGGEST_H

struct suggest {
	const char *name; /* what was written */
	const char *best; /* the closest candidate so far, NULL before the first */
	int best_distance;
};

void suggest_begin(struct suggest *s, const char *name);
/* Offers one known name; the first of several equally close ones wins. */
void suggest_consider(struct suggest *s, const char *candidate);
/* The closest candidate if it is a likely misspelling of the name, else NULL. */
const char *suggest_result(const struct suggest *s);

/*
 * The optimal string alignment distance between a and b, case ignored: insertions,
 * deletions, substitutions and swaps of two adjacent characters cost 1 each (so
 * "listen_prot" is 1 from "listen_port").  Names longer than 63 bytes count as far
 * from everything (INT_MAX / 2).
 */
int suggest_distance(const char *a, const char *b);

#endif
