/*
 * Parsers for configuration values, shared by corral's and corral-fn's INI loaders so
 * both accept exactly the same spellings.  Each takes the whole string: leading or
 * trailing blanks, signs and junk make it fail, and nothing is written to *out then.
 * None of them looks at the locale.
 */
#ifndef CORRAL_COMMON_PARSE_H
#define CORRAL_COMMON_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/macros.h"

/* About 31 years: far beyond any sensible timeout, and still exact in microseconds. */
#define PARSE_MAX_SECONDS 1000000000

/* Decimal digits only ("42"; no sign, no blanks), from min to max (0 <= min <= max). */
bool parse_uint_range(const char *s, int min, int max, int *out) WARN_UNUSED;

/*
 * Non-negative decimal seconds, at most max_seconds (itself at most PARSE_MAX_SECONDS):
 * "120", "0.5", ".25", "3.".  Fraction digits past the ninth are ignored.  Hand-written
 * rather than strtod() because strtod also takes hex, exponents, "inf" and "nan", and
 * reads the decimal point from the locale.
 */
bool parse_decimal_seconds(const char *s, int64_t max_seconds, double *out) WARN_UNUSED;

/* The same, in whole microseconds (rounded to the nearest), computed without floats. */
bool parse_decimal_usec(const char *s, int64_t max_seconds, usec_t *out) WARN_UNUSED;

/* yes/no, true/false, on/off, 1/0, in any case. */
bool parse_bool(const char *s, bool *out) WARN_UNUSED;

/*
 * One line of an INI file as inih should see it, edited in place: a UTF-8 byte order
 * mark (first line only), leading and trailing blanks and comments are cut.  A ';' or
 * '#' starts a comment at the start of the line or after a blank, never inside a word
 * ("a;b" stays).  Leading blanks go because inih would take an indented line for the
 * continuation of the previous value.  Returns the start of what is left.
 */
char *parse_clean_ini_line(char *line, bool first_line);

#endif
