/*
 * One line per event on stderr, key=value:
 *   ts=2026-11-27T05:30:00.123Z level=info event=client_login user=bench db=bench
 * Callers format the key=value part; never pass a password or secret.
 */
#ifndef CORRAL_COMMON_LOG_H
#define CORRAL_COMMON_LOG_H

#include <stdbool.h>

#include "common/macros.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn" or "error"; false for anything else. */
bool log_level_parse(const char *name, enum log_level *out) WARN_UNUSED;
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Copies in to out escaped so it can stand inside a quoted value: '"' and '\\' get a
 * backslash, newline, CR and tab become \n \r \t, other control bytes \xNN (logfmt's
 * and Go's %q convention, so a parser can split and unescape every line).  Cut short
 * (never inside an escape) when out is too small.  Returns out.  Every value that can
 * hold a blank or a quote, from a client, PostgreSQL, a function or the system, goes
 * through it and into "...". */
const char *log_clean(const char *in, char *out, size_t outlen);

#define log_debug(...)                                   \
	do {                                             \
		if (log_enabled(LOG_DEBUG))              \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)
/* Like log_debug, arguments are only evaluated when the line is written: per-client
 * lines format names (log_clean, snprintf) that a quiet configuration never shows. */
#define log_info(...)                                   \
	do {                                            \
		if (log_enabled(LOG_INFO))              \
			log_msg(LOG_INFO, __VA_ARGS__); \
	} while (0)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
