#include "functions/runner/cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A satisfiable schedule fires within one Gregorian cycle: the calendar repeats
 * every 400 years, weekdays included. */
#define CRON_HORIZON_YEARS 400

struct cron_field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names[i] stands for lo + i; NULL if none */
	size_t n_names;
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					  "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

enum { F_MINUTE, F_HOUR, F_MDAY, F_MONTH, F_WDAY, F_COUNT };

static const struct cron_field fields[F_COUNT] = {
	[F_MINUTE] = {"minute", 0, 59, NULL, 0},
	[F_HOUR] = {"hour", 0, 23, NULL, 0},
	[F_MDAY] = {"day-of-month", 1, 31, NULL, 0},
	[F_MONTH] = {"month", 1, 12, month_names, ARRAY_SIZE(month_names)},
	/* 7 is Sunday too; folded onto 0 after parsing */
	[F_WDAY] = {"day-of-week", 0, 7, day_names, ARRAY_SIZE(day_names)},
};

static const struct {
	const char *name;
	const char *expansion;
} macros[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

PRINTF_LIKE(3, 4)
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* Reads a number or a name at *p (up to end); advances *p. */
static bool parse_value(const struct cron_field *f, const char **p, const char *end, int *out,
			char *err, size_t errlen)
{
	const char *s = *p;
	if (s < end && isdigit((unsigned char)*s)) {
		long v = 0;
		for (; s < end && isdigit((unsigned char)*s); s++) {
			if (v < 10000)
				v = v * 10 + (*s - '0');
		}
		if (v < f->lo || v > f->hi)
			return fail(err, errlen, "%s: %ld is out of range %d-%d", f->name, v, f->lo,
				    f->hi);
		*out = (int)v;
		*p = s;
		return true;
	}
	const char *start = s;
	while (s < end && isalpha((unsigned char)*s))
		s++;
	size_t len = (size_t)(s - start);
	if (len == 0) {
		if (start == end)
			return fail(err, errlen, "%s: a value is missing", f->name);
		return fail(err, errlen, "%s: unexpected '%c'", f->name, *start);
	}
	for (size_t i = 0; i < f->n_names; i++) {
		if (len == 3 && strncasecmp(start, f->names[i], 3) == 0) {
			*out = f->lo + (int)i;
			*p = s;
			return true;
		}
	}
	if (f->names)
		return fail(err, errlen, "%s: unknown name \"%.*s\" (expected %s-%s)", f->name,
			    (int)len, start, f->names[0], f->names[f->n_names - 1]);
	return fail(err, errlen, "%s: names are not allowed here (\"%.*s\")", f->name, (int)len,
		    start);
}

/* One list item: `*`, `N`, `N-M`, each optionally followed by `/STEP`. */
static bool parse_item(const struct cron_field *f, const char *s, const char *end, uint64_t *bits,
		       char *err, size_t errlen)
{
	int a, b;
	bool single = false;
	if (s == end)
		return fail(err, errlen, "%s: empty list item", f->name);
	if (*s == '*') {
		a = f->lo;
		b = f->hi;
		s++;
	} else {
		if (!parse_value(f, &s, end, &a, err, errlen))
			return false;
		b = a;
		single = true;
		if (s < end && *s == '-') {
			s++;
			if (!parse_value(f, &s, end, &b, err, errlen))
				return false;
			single = false;
			if (b < a)
				return fail(err, errlen, "%s: range %d-%d runs backwards", f->name,
					    a, b);
		}
	}
	int step = 1;
	if (s < end && *s == '/') {
		s++;
		if (s == end || !isdigit((unsigned char)*s))
			return fail(err, errlen, "%s: a step needs a number after '/'", f->name);
		long v = 0;
		for (; s < end && isdigit((unsigned char)*s); s++) {
			if (v < 10000)
				v = v * 10 + (*s - '0');
		}
		if (v < 1 || v > f->hi - f->lo + 1)
			return fail(err, errlen, "%s: step %ld is out of range 1-%d", f->name, v,
				    f->hi - f->lo + 1);
		step = (int)v;
		if (single) /* `5/15`: from 5 to the end of the field */
			b = f->hi;
	}
	if (s != end)
		return fail(err, errlen, "%s: unexpected '%c'", f->name, *s);
	for (int v = a; v <= b; v += step)
		*bits |= (uint64_t)1 << v;
	return true;
}

static bool parse_field(const struct cron_field *f, const char *s, const char *end, uint64_t *bits,
			char *err, size_t errlen)
{
	*bits = 0;
	for (;;) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *item_end = comma ? comma : end;
		if (!parse_item(f, s, item_end, bits, err, errlen))
			return false;
		if (!comma)
			return true;
		s = comma + 1;
	}
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
	int64_t w = (days + 4) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

static bool day_matches(const struct cron_expr *e, int64_t y, int m, int d)
{
	bool mday_ok = e->mdays >> d & 1;
	bool wday_ok = e->wdays >> weekday(days_from_civil(y, m, d)) & 1;
	if (e->mday_star || e->wday_star)
		return mday_ok && wday_ok;
	return mday_ok || wday_ok;
}

/* Whether the day-of-month and month fields leave any real date (AND rule only). */
static bool some_date_exists(const struct cron_expr *e)
{
	if (!(e->mday_star || e->wday_star))
		return true; /* OR rule: every week has a matching day */
	for (int m = 1; m <= 12; m++) {
		if (!(e->months >> m & 1))
			continue;
		int max = m == 2 ? 29 : days_in_month(2001, m);
		for (int d = 1; d <= max; d++) {
			if (e->mdays >> d & 1)
				return true;
		}
	}
	return false;
}

/* The date of a day number (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Splits t into a day number and the minute of that day. */
static void split_minutes(int64_t t, int64_t *days, int64_t *minute_of_day)
{
	*days = t / 86400;
	int64_t secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		(*days)--;
	}
	*minute_of_day = secs / 60;
}

bool cron_parse(const char *text, struct cron_expr *out, char *err, size_t errlen)
{
	while (isspace((unsigned char)*text))
		text++;
	if (*text == '@') {
		size_t len = strcspn(text, " \t\r\n");
		const char *rest = text + len;
		while (isspace((unsigned char)*rest))
			rest++;
		for (size_t i = 0; i < ARRAY_SIZE(macros); i++) {
			if (strlen(macros[i].name) == len &&
			    strncasecmp(text, macros[i].name, len) == 0) {
				if (*rest)
					return fail(err, errlen, "%s takes nothing after it",
						    macros[i].name);
				return cron_parse(macros[i].expansion, out, err, errlen);
			}
		}
		return fail(err, errlen,
			    "unknown macro \"%.*s\" (expected @yearly, @monthly, "
			    "@weekly, @daily or @hourly)",
			    (int)len, text);
	}

	const char *start[F_COUNT], *end[F_COUNT];
	int n = 0;
	const char *s = text;
	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		const char *e = s;
		while (*e && !isspace((unsigned char)*e))
			e++;
		if (n < F_COUNT) {
			start[n] = s;
			end[n] = e;
		}
		n++;
		s = e;
	}
	if (n != F_COUNT)
		return fail(
			err, errlen,
			"expected 5 fields (minute hour day-of-month month day-of-week), got %d",
			n);

	uint64_t bits[F_COUNT];
	for (int i = 0; i < F_COUNT; i++) {
		if (!parse_field(&fields[i], start[i], end[i], &bits[i], err, errlen))
			return false;
	}
	if (bits[F_WDAY] >> 7 & 1)
		bits[F_WDAY] = (bits[F_WDAY] & 0x7f) | 1;

	struct cron_expr e = {
		.minutes = bits[F_MINUTE],
		.hours = (uint32_t)bits[F_HOUR],
		.mdays = (uint32_t)bits[F_MDAY],
		.months = (uint16_t)bits[F_MONTH],
		.wdays = (uint8_t)bits[F_WDAY],
		.mday_star = *start[F_MDAY] == '*',
		.wday_star = *start[F_WDAY] == '*',
	};
	if (!some_date_exists(&e))
		return fail(err, errlen,
			    "never fires: no month in the month field has any of "
			    "the days in the day-of-month field");
	*out = e;
	return true;
}

/* The lowest set bit of bits at or above from, or -1. */
static int next_bit(uint64_t bits, int from, int limit)
{
	for (int i = from; i <= limit; i++) {
		if (bits >> i & 1)
			return i;
	}
	return -1;
}

bool cron_next(const struct cron_expr *e, time_t after, time_t *next)
{
	if (!e->minutes || !e->hours || !e->months || (!e->mdays && !e->wdays))
		return false;
	/* Start at the next whole minute. */
	int64_t days, minute_of_day;
	split_minutes((int64_t)after, &days, &minute_of_day);
	minute_of_day++;
	days += minute_of_day / 1440;
	minute_of_day %= 1440;

	int64_t y;
	int m, d;
	civil_from_days(days, &y, &m, &d);
	int h = (int)(minute_of_day / 60), mi = (int)(minute_of_day % 60);

	int64_t last_year = y + CRON_HORIZON_YEARS;
	for (;;) {
		if (y > last_year)
			return false;
		if (!(e->months >> m & 1)) {
			int nm = next_bit(e->months, m + 1, 12);
			if (nm < 0) {
				y++;
				nm = next_bit(e->months, 1, 12);
			}
			m = nm;
			d = 1;
			h = mi = 0;
			continue;
		}
		if (d > days_in_month(y, m)) {
			if (++m > 12) {
				m = 1;
				y++;
			}
			d = 1;
			h = mi = 0;
			continue;
		}
		if (!day_matches(e, y, m, d)) {
			d++;
			h = mi = 0;
			continue;
		}
		if (!(e->hours >> h & 1)) {
			int nh = next_bit(e->hours, h + 1, 23);
			if (nh < 0) {
				d++;
				h = mi = 0;
				continue;
			}
			h = nh;
			mi = 0;
		}
		int nmi = next_bit(e->minutes, mi, 59);
		if (nmi < 0) {
			if (++h > 23) {
				d++;
				h = 0;
			}
			mi = 0;
			continue;
		}
		mi = nmi;
		break;
	}
	int64_t r = days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60;
	if ((int64_t)(time_t)r != r)
		return false;
	*next = (time_t)r;
	return true;
}

bool cron_next_tm(const struct cron_expr *e, const struct tm *after, struct tm *next)
{
	struct tm copy = *after;
	time_t t = timegm(&copy);
	time_t n;
	if (!cron_next(e, t, &n))
		return false;
	return gmtime_r(&n, next) != NULL;
}

bool cron_matches(const struct cron_expr *e, time_t t)
{
	int64_t days, minute_of_day, y;
	int m, d;
	split_minutes((int64_t)t, &days, &minute_of_day);
	civil_from_days(days, &y, &m, &d);
	return (e->minutes >> (minute_of_day % 60) & 1) && (e->hours >> (minute_of_day / 60) & 1) &&
	       (e->months >> m & 1) && day_matches(e, y, m, d);
}
