#include "common/parse.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Fraction digits past this are ignored: a nanosecond is finer than any timer here. */
#define MAX_FRACTION_DIGITS 9

bool parse_uint_range(const char *s, int min, int max, int *out)
{
	if (*s == '\0')
		return false;
	int64_t v = 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
		v = v * 10 + (*s - '0');
		/* Checked per digit, so a long string of digits cannot overflow v. */
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = (int)v;
	return true;
}

/* A decimal number as whole + frac / scale, exactly; false past max_whole or on junk. */
struct decimal {
	int64_t whole, frac, scale;
};

static bool split_decimal(const char *s, int64_t max_whole, struct decimal *d)
{
	*d = (struct decimal){.scale = 1};
	bool digits = false;
	for (; isdigit((unsigned char)*s); s++, digits = true) {
		d->whole = d->whole * 10 + (*s - '0');
		if (d->whole > max_whole)
			return false;
	}
	if (*s == '.') {
		int n = 0;
		for (s++; isdigit((unsigned char)*s); s++, n++, digits = true) {
			if (n < MAX_FRACTION_DIGITS) {
				d->frac = d->frac * 10 + (*s - '0');
				d->scale *= 10;
			}
		}
	}
	return digits && *s == '\0';
}

bool parse_decimal_seconds(const char *s, int64_t max_seconds, double *out)
{
	struct decimal d;
	if (!split_decimal(s, max_seconds, &d))
		return false;
	/* Dividing exact integers keeps "0.3" equal to the literal 0.3. */
	double v = (double)d.whole + (double)d.frac / (double)d.scale;
	if (v > (double)max_seconds)
		return false;
	*out = v;
	return true;
}

bool parse_decimal_usec(const char *s, int64_t max_seconds, usec_t *out)
{
	struct decimal d;
	if (!split_decimal(s, max_seconds, &d))
		return false;
	/* frac < 10^9, so frac * 10^6 stays far inside int64_t. */
	usec_t v = d.whole * USEC_PER_SEC + (d.frac * USEC_PER_SEC + d.scale / 2) / d.scale;
	if (v > max_seconds * USEC_PER_SEC)
		return false;
	*out = v;
	return true;
}

bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static char *rstrip(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

char *parse_clean_ini_line(char *s, bool first_line)
{
	if (first_line && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == ';' || *s == '#')
		*s = '\0';
	for (char *p = s; *p; p++) {
		if ((*p == ';' || *p == '#') && p > s && isspace((unsigned char)p[-1])) {
			*p = '\0';
			break;
		}
	}
	return rstrip(s);
}
