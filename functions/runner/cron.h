/*
 * Cron schedules for corral-fn's cron trigger: the five fields of crontab(5)
 * (minute hour day-of-month month day-of-week) and the next time one fires.
 *
 * Syntax, as Vixie cron: `*`, numbers, lists `1,15,30`, ranges `1-5`, steps
 * after `*` or a range (`*` then `/5` is every fifth; `1-10/2`; and `5/15`, meaning
 * from 5 to the end of the field in steps of 15, as EventBridge and Quartz write
 * it), month names JAN-DEC and day names SUN-SAT (any case), 0 or 7 for Sunday,
 * and the macros @yearly (@annually), @monthly, @weekly, @daily (@midnight) and
 * @hourly.
 *
 * Day rule (Vixie): when both day-of-month and day-of-week are restricted (their
 * field does not start with `*`), a day matches if either matches; otherwise
 * both must.  All times are UTC.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_CRON_H
#define CORRAL_FUNCTIONS_RUNNER_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/macros.h"

/* A parsed schedule: one bit per allowed value. */
struct cron_expr {
	uint64_t minutes; /* bit m: minute m, 0-59 */
	uint32_t hours;   /* bit h: hour h, 0-23 */
	uint32_t mdays;   /* bit d: day of month d, 1-31 */
	uint16_t months;  /* bit m: month m, 1-12 */
	uint8_t wdays;    /* bit w: day of week w, 0 (Sunday) - 6 */
	bool mday_star;   /* the day-of-month field started with '*' */
	bool wday_star;   /* the day-of-week field started with '*' */
};

/*
 * Parses text into *out.  On failure returns false and writes a one-line reason
 * to err (e.g. "hour: 24 is out of range 0-23").  An expression that can never
 * fire (`0 0 30 2 *`) is refused too.
 */
bool cron_parse(const char *text, struct cron_expr *out, char *err, size_t errlen) WARN_UNUSED;

/*
 * The first minute strictly after `after` at which e fires, in *next.  Jumps a
 * field at a time (months, days, hours, minutes), never minute by minute.  False
 * when e never fires (possible only for a hand-built expression, since cron_parse
 * refuses those): the search gives up after 400 years, the Gregorian cycle after
 * which dates and weekdays repeat.
 */
bool cron_next(const struct cron_expr *e, time_t after, time_t *next) WARN_UNUSED;

/* The same on broken-down UTC times (only tm_year .. tm_sec of *after are read). */
bool cron_next_tm(const struct cron_expr *e, const struct tm *after, struct tm *next) WARN_UNUSED;

/* Whether e fires at the minute that contains t. */
bool cron_matches(const struct cron_expr *e, time_t t);

#endif
