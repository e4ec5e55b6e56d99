/* functions/runner/cron.c: 5-field cron expressions and their next fire times. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "functions/runner/cron.h"

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			.tm_hour = h, .tm_min = mi, .tm_sec = s};
	return timegm(&tm);
}

static char *fmt(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M %a", &tm);
	return buf;
}

static struct cron_expr parse_ok(const char *text)
{
	struct cron_expr e;
	char err[200] = "";
	cr_assert(cron_parse(text, &e, err, sizeof(err)), "\"%s\" should parse: %s", text, err);
	return e;
}

static void parse_fails(const char *text, const char *want)
{
	struct cron_expr e;
	char err[200] = "";
	cr_assert_not(cron_parse(text, &e, err, sizeof(err)), "\"%s\" should not parse", text);
	cr_assert(strstr(err, want), "\"%s\": error \"%s\" should mention \"%s\"", text, err, want);
}

/* Fire times of `text` after `from`, checked one after another. */
static void expect_next(const char *text, time_t from, const char *const *want, size_t n)
{
	struct cron_expr e = parse_ok(text);
	time_t t = from;
	char got[64];
	for (size_t i = 0; i < n; i++) {
		time_t next;
		cr_assert(cron_next(&e, t, &next), "\"%s\": no fire time #%zu", text, i);
		cr_assert(next > t);
		cr_assert_eq(next % 60, 0);
		cr_assert_str_eq(fmt(next, got, sizeof(got)), want[i], "\"%s\" #%zu", text, i);
		cr_assert(cron_matches(&e, next));
		t = next;
	}
}

#define EXPECT(text, from, ...)                                                  \
	do {                                                                     \
		static const char *const want_[] = {__VA_ARGS__};                \
		expect_next(text, from, want_, sizeof(want_) / sizeof(want_[0])); \
	} while (0)

Test(cron, every_minute)
{
	EXPECT("* * * * *", utc(2024, 1, 1, 0, 0, 0), "2024-01-01 00:01 Mon", "2024-01-01 00:02 Mon");
	/* strictly after, from the middle of a minute */
	EXPECT("* * * * *", utc(2024, 1, 1, 0, 0, 59), "2024-01-01 00:01 Mon");
	EXPECT("* * * * *", utc(2023, 12, 31, 23, 59, 30), "2024-01-01 00:00 Mon");
}

Test(cron, fields_and_lists)
{
	EXPECT("30 9 * * *", utc(2024, 3, 10, 9, 30, 0), "2024-03-11 09:30 Mon",
	       "2024-03-12 09:30 Tue");
	EXPECT("0,15,30,45 * * * *", utc(2024, 3, 10, 9, 31, 0), "2024-03-10 09:45 Sun",
	       "2024-03-10 10:00 Sun", "2024-03-10 10:15 Sun");
	EXPECT("5 4 * * *", utc(2024, 3, 10, 4, 4, 59), "2024-03-10 04:05 Sun",
	       "2024-03-11 04:05 Mon");
	EXPECT("0 0 1 1 *", utc(2024, 6, 1, 0, 0, 0), "2025-01-01 00:00 Wed",
	       "2026-01-01 00:00 Thu");
}

Test(cron, steps_and_ranges)
{
	EXPECT("*/5 * * * *", utc(2024, 1, 1, 0, 3, 0), "2024-01-01 00:05 Mon",
	       "2024-01-01 00:10 Mon");
	EXPECT("*/5 * * * *", utc(2024, 1, 1, 0, 57, 0), "2024-01-01 01:00 Mon");
	EXPECT("1-10/2 * * * *", utc(2024, 1, 1, 0, 0, 0), "2024-01-01 00:01 Mon",
	       "2024-01-01 00:03 Mon", "2024-01-01 00:05 Mon", "2024-01-01 00:07 Mon",
	       "2024-01-01 00:09 Mon", "2024-01-01 01:01 Mon");
	EXPECT("0 9-17/4 * * *", utc(2024, 1, 1, 10, 0, 0), "2024-01-01 13:00 Mon",
	       "2024-01-01 17:00 Mon", "2024-01-02 09:00 Tue");
	/* N/S: from N to the end of the field */
	EXPECT("10/20 * * * *", utc(2024, 1, 1, 0, 0, 0), "2024-01-01 00:10 Mon",
	       "2024-01-01 00:30 Mon", "2024-01-01 00:50 Mon", "2024-01-01 01:10 Mon");
	EXPECT("0 0 */10 * *", utc(2024, 1, 1, 0, 0, 0), "2024-01-11 00:00 Thu",
	       "2024-01-21 00:00 Sun", "2024-01-31 00:00 Wed", "2024-02-01 00:00 Thu");
	EXPECT("0 0 1 */3 *", utc(2024, 2, 1, 0, 0, 0), "2024-04-01 00:00 Mon",
	       "2024-07-01 00:00 Mon", "2024-10-01 00:00 Tue", "2025-01-01 00:00 Wed");
}

Test(cron, names)
{
	EXPECT("0 12 * JAN,jul *", utc(2024, 1, 31, 12, 0, 0), "2024-07-01 12:00 Mon");
	EXPECT("0 8 * * MON-FRI", utc(2024, 3, 8, 8, 0, 0), "2024-03-11 08:00 Mon");
	EXPECT("0 8 * * sat,Sun", utc(2024, 3, 8, 8, 0, 0), "2024-03-09 08:00 Sat",
	       "2024-03-10 08:00 Sun", "2024-03-16 08:00 Sat");
	EXPECT("0 0 1 FEB-APR *", utc(2024, 4, 1, 0, 0, 0), "2025-02-01 00:00 Sat");
	struct cron_expr a = parse_ok("0 0 * mar-may mon-wed");
	struct cron_expr b = parse_ok("0 0 * 3-5 1-3");
	cr_assert_eq(a.months, b.months);
	cr_assert_eq(a.wdays, b.wdays);
}

Test(cron, sunday_is_0_and_7)
{
	struct cron_expr a = parse_ok("0 0 * * 0");
	struct cron_expr b = parse_ok("0 0 * * 7");
	struct cron_expr c = parse_ok("0 0 * * SUN");
	cr_assert_eq(a.wdays, 1);
	cr_assert_eq(b.wdays, 1);
	cr_assert_eq(c.wdays, 1);
	struct cron_expr d = parse_ok("0 0 * * 5-7");
	cr_assert_eq(d.wdays, 1 | 1 << 5 | 1 << 6);
	struct cron_expr e = parse_ok("0 0 * * *");
	cr_assert_eq(e.wdays, 0x7f);
	EXPECT("0 0 * * 7", utc(2024, 3, 6, 0, 0, 0), "2024-03-10 00:00 Sun",
	       "2024-03-17 00:00 Sun");
}

/* Vixie: both day fields restricted -> either matches. */
Test(cron, day_fields_either_when_both_restricted)
{
	/* the 13th or any Friday */
	EXPECT("0 0 13 * FRI", utc(2024, 9, 1, 0, 0, 0), "2024-09-06 00:00 Fri",
	       "2024-09-13 00:00 Fri", "2024-09-20 00:00 Fri", "2024-09-27 00:00 Fri",
	       "2024-10-04 00:00 Fri", "2024-10-11 00:00 Fri", "2024-10-13 00:00 Sun");
	/* the 1st or the 15th, or any Monday */
	EXPECT("0 0 1,15 * 1", utc(2024, 4, 1, 0, 0, 0), "2024-04-08 00:00 Mon",
	       "2024-04-15 00:00 Mon", "2024-04-22 00:00 Mon", "2024-04-29 00:00 Mon",
	       "2024-05-01 00:00 Wed", "2024-05-06 00:00 Mon");
}

Test(cron, day_fields_both_when_one_is_star)
{
	/* day-of-month star: only Fridays */
	EXPECT("0 0 * * FRI", utc(2024, 9, 1, 0, 0, 0), "2024-09-06 00:00 Fri",
	       "2024-09-13 00:00 Fri");
	/* day-of-week star: only the 13th */
	EXPECT("0 0 13 * *", utc(2024, 9, 1, 0, 0, 0), "2024-09-13 00:00 Fri",
	       "2024-10-13 00:00 Sun");
	/* A field starting with '*' counts as unrestricted even with a step (crontab(5):
	 * "restricted (i.e., don't start with *)"), so the days must match both: odd days
	 * that are Mondays. */
	EXPECT("0 0 */2 * MON", utc(2024, 4, 1, 0, 0, 0), "2024-04-15 00:00 Mon",
	       "2024-04-29 00:00 Mon", "2024-05-13 00:00 Mon");
}

Test(cron, month_ends_and_leap_years)
{
	EXPECT("0 0 31 * *", utc(2024, 1, 31, 0, 0, 0), "2024-03-31 00:00 Sun",
	       "2024-05-31 00:00 Fri", "2024-07-31 00:00 Wed", "2024-08-31 00:00 Sat");
	EXPECT("0 0 29 2 *", utc(2024, 3, 1, 0, 0, 0), "2028-02-29 00:00 Tue",
	       "2032-02-29 00:00 Sun");
	/* 2100 is not a leap year: the longest gap, eight years */
	EXPECT("0 0 29 2 *", utc(2096, 3, 1, 0, 0, 0), "2104-02-29 00:00 Fri");
	/* 2000 is */
	EXPECT("0 0 29 2 *", utc(1999, 1, 1, 0, 0, 0), "2000-02-29 00:00 Tue");
	EXPECT("59 23 28-31 2 *", utc(2023, 1, 1, 0, 0, 0),
	       "2023-02-28 23:59 Tue", "2024-02-28 23:59 Wed", "2024-02-29 23:59 Thu",
	       "2025-02-28 23:59 Fri");
}

Test(cron, rollovers)
{
	EXPECT("59 23 31 12 *", utc(2024, 12, 31, 23, 59, 0), "2025-12-31 23:59 Wed");
	EXPECT("0 * * * *", utc(2024, 12, 31, 23, 0, 0), "2025-01-01 00:00 Wed");
	EXPECT("30 2 * * *", utc(2024, 2, 29, 2, 31, 0), "2024-03-01 02:30 Fri");
	EXPECT("15 10,14 * * *", utc(2024, 5, 5, 14, 15, 0), "2024-05-06 10:15 Mon");
}

Test(cron, macros)
{
	EXPECT("@hourly", utc(2024, 1, 1, 0, 30, 0), "2024-01-01 01:00 Mon");
	EXPECT("@daily", utc(2024, 1, 1, 0, 30, 0), "2024-01-02 00:00 Tue");
	EXPECT("@midnight", utc(2024, 1, 1, 0, 30, 0), "2024-01-02 00:00 Tue");
	EXPECT("@weekly", utc(2024, 1, 1, 0, 30, 0), "2024-01-07 00:00 Sun");
	EXPECT("@monthly", utc(2024, 1, 1, 0, 30, 0), "2024-02-01 00:00 Thu");
	EXPECT("@yearly", utc(2024, 1, 1, 0, 30, 0), "2025-01-01 00:00 Wed");
	EXPECT("  @ANNUALLY  ", utc(2024, 1, 1, 0, 30, 0), "2025-01-01 00:00 Wed");
}

Test(cron, whitespace)
{
	EXPECT("  0\t12  *   * \t*  \n", utc(2024, 1, 1, 0, 0, 0), "2024-01-01 12:00 Mon");
}

Test(cron, bad_expressions)
{
	parse_fails("", "expected 5 fields");
	parse_fails("* * * *", "got 4");
	parse_fails("* * * * * *", "got 6");
	parse_fails("60 * * * *", "minute: 60 is out of range 0-59");
	parse_fails("* 24 * * *", "hour: 24 is out of range 0-23");
	parse_fails("* * 0 * *", "day-of-month: 0 is out of range 1-31");
	parse_fails("* * 32 * *", "day-of-month: 32 is out of range 1-31");
	parse_fails("* * * 13 *", "month: 13 is out of range 1-12");
	parse_fails("* * * 0 *", "month: 0 is out of range 1-12");
	parse_fails("* * * * 8", "day-of-week: 8 is out of range 0-7");
	parse_fails("99999999999999999999 * * * *", "minute: ");
	parse_fails("*/0 * * * *", "step 0 is out of range 1-60");
	parse_fails("*/61 * * * *", "step 61 is out of range");
	parse_fails("*/ * * * *", "needs a number");
	parse_fails("5-1 * * * *", "range 5-1 runs backwards");
	parse_fails("1, * * * *", "empty list item");
	parse_fails(",1 * * * *", "empty list item");
	parse_fails("1,,2 * * * *", "empty list item");
	parse_fails("1- * * * *", "minute: a value is missing");
	parse_fails("1-2-3 * * * *", "unexpected '-'");
	parse_fails("** * * * *", "unexpected '*'");
	parse_fails("? * * * *", "unexpected '?'");
	parse_fails("* * * FOO *", "month: unknown name \"FOO\" (expected JAN-DEC)");
	parse_fails("* * * JANUARY *", "unknown name \"JANUARY\"");
	parse_fails("* * * * FUN", "day-of-week: unknown name \"FUN\" (expected SUN-SAT)");
	parse_fails("MON * * * *", "minute: names are not allowed");
	parse_fails("* * L * *", "day-of-month: names are not allowed");
	parse_fails("@reboot", "unknown macro \"@reboot\"");
	parse_fails("@daily 5", "@daily takes nothing after it");
	parse_fails("-1 * * * *", "unexpected '-'");
}

/* 30 February, 31 April, ...: refused at parse time with a reason. */
Test(cron, impossible_dates_refused)
{
	parse_fails("0 0 30 2 *", "never fires");
	parse_fails("0 0 30,31 FEB *", "never fires");
	parse_fails("0 0 31 4,6,9,11 *", "never fires");
	/* but either-day rule: the weekday can still match */
	struct cron_expr e = parse_ok("0 0 30 2 MON");
	time_t next;
	cr_assert(cron_next(&e, utc(2024, 1, 1, 0, 0, 0), &next));
	char got[64];
	cr_assert_str_eq(fmt(next, got, sizeof(got)), "2024-02-05 00:00 Mon");
	/* 29 February exists in some years */
	parse_ok("0 0 29 2 *");
	parse_ok("0 0 31 1-2 *");
}

/* A hand-built expression that cannot fire: cron_next gives up, and quickly. */
Test(cron, next_terminates_on_impossible, .timeout = 5)
{
	struct cron_expr e = {.minutes = 1, .hours = 1, .mdays = 1u << 30, .months = 1 << 2,
			      .wdays = 0x7f, .mday_star = false, .wday_star = true};
	time_t next = 0;
	cr_assert_not(cron_next(&e, utc(2024, 1, 1, 0, 0, 0), &next));
	struct cron_expr empty = {0};
	cr_assert_not(cron_next(&empty, utc(2024, 1, 1, 0, 0, 0), &next));
	/* Feb 1 falling on a Monday: at most 11 years apart, found */
	struct cron_expr rare = {.minutes = 1, .hours = 1, .mdays = 1u << 1, .months = 1 << 2,
				 .wdays = 1 << 1, .mday_star = true, .wday_star = false};
	cr_assert(cron_next(&rare, utc(2027, 3, 1, 0, 0, 0), &next));
	char got[64];
	cr_assert_str_eq(fmt(next, got, sizeof(got)), "2038-02-01 00:00 Mon");
}

Test(cron, struct_tm_interface)
{
	struct cron_expr e = parse_ok("45 6 * * 1-5");
	struct tm after = {.tm_year = 2024 - 1900, .tm_mon = 5, .tm_mday = 7, .tm_hour = 7};
	struct tm next;
	cr_assert(cron_next_tm(&e, &after, &next));
	cr_assert_eq(next.tm_year, 2024 - 1900);
	cr_assert_eq(next.tm_mon, 5);
	cr_assert_eq(next.tm_mday, 10); /* Friday 7th after 06:45 -> Monday 10th */
	cr_assert_eq(next.tm_hour, 6);
	cr_assert_eq(next.tm_min, 45);
	cr_assert_eq(next.tm_sec, 0);
	cr_assert_eq(next.tm_wday, 1);
}

Test(cron, before_1970)
{
	EXPECT("0 12 * * *", utc(1969, 12, 31, 12, 0, 1), "1970-01-01 12:00 Thu");
	EXPECT("*/30 * * * *", utc(1969, 12, 31, 23, 45, 30), "1970-01-01 00:00 Thu");
	struct cron_expr e = parse_ok("59 23 31 12 *");
	cr_assert(cron_matches(&e, utc(1969, 12, 31, 23, 59, 30)));
	cr_assert_not(cron_matches(&e, utc(1969, 12, 31, 23, 58, 30)));
}

/* Brute force reference: walk minute by minute with gmtime's own calendar. */
static bool ref_matches(const struct cron_expr *e, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	if (!(e->minutes >> tm.tm_min & 1) || !(e->hours >> tm.tm_hour & 1) ||
	    !(e->months >> (tm.tm_mon + 1) & 1))
		return false;
	bool md = e->mdays >> tm.tm_mday & 1, wd = e->wdays >> tm.tm_wday & 1;
	return (e->mday_star || e->wday_star) ? md && wd : md || wd;
}

Test(cron, agrees_with_brute_force, .timeout = 60)
{
	static const char *const exprs[] = {
		"*/7 */5 * * *",    "0 0 13 * 5",          "30 */2 1-7 * MON",
		"0 0 * * 6,0",      "17 3 29-31 * *",      "0 12 1,15 FEB-MAR *",
		"*/13 1-3 * * 2-4", "5/15 22-23 * DEC *",  "0 0 */3 */2 *",
		"1 1 1 1 *",        "0 6 * * 1-5",         "45 23 31 * 0",
		"0 0 29 2 SUN",     "0 0 */2 JAN-JUN 1,3",
	};
	srand(12345);
	for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
		struct cron_expr e = parse_ok(exprs[i]);
		for (int round = 0; round < 4; round++) {
			time_t t = utc(1995 + rand() % 40, 1 + rand() % 12, 1 + rand() % 28,
				       rand() % 24, rand() % 60, rand() % 60);
			time_t next;
			cr_assert(cron_next(&e, t, &next), "%s", exprs[i]);
			time_t ref = t - t % 60 + 60;
			int steps = 0;
			while (!ref_matches(&e, ref) && steps++ < 2 * 366 * 1440)
				ref += 60;
			cr_assert(ref_matches(&e, ref), "%s: no reference within two years",
				  exprs[i]);
			char a[64], b[64];
			cr_assert_eq(next, ref, "%s after %s: got %s, want %s", exprs[i],
				     fmt(t, a, sizeof(a)), fmt(next, b, sizeof(b)),
				     fmt(ref, a, sizeof(a)));
		}
	}
}

Test(cron, matches)
{
	struct cron_expr e = parse_ok("*/15 9-17 * * MON-FRI");
	cr_assert(cron_matches(&e, utc(2024, 3, 11, 9, 0, 0)));
	cr_assert(cron_matches(&e, utc(2024, 3, 11, 9, 15, 42)));
	cr_assert_not(cron_matches(&e, utc(2024, 3, 11, 9, 16, 0)));
	cr_assert_not(cron_matches(&e, utc(2024, 3, 11, 18, 0, 0)));
	cr_assert_not(cron_matches(&e, utc(2024, 3, 10, 9, 0, 0))); /* Sunday */
}
