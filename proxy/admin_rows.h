/*
 * Result sets of the admin console: RowDescription, DataRows, CommandComplete, built
 * straight into an evbuffer (no I/O).  A column has a name and a type; values are
 * written as text, as the simple query protocol sends them, and NULL is a value of its
 * own.  Types are reported so drivers convert numbers (psycopg gives int8 as int), as
 * PgBouncer does.
 *
 * A row is built in a struct admin_row (its own buffer, so a row can be built on one
 * worker and its bytes appended to another worker's output later, admin_gather.h) and
 * ends with admin_row_end, which appends the DataRow to an evbuffer.
 */
#ifndef CORRAL_PROXY_ADMIN_ROWS_H
#define CORRAL_PROXY_ADMIN_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "common/macros.h"

/* PgBouncer's choices: counts int4, totals numeric, timestamps text. */
enum admin_type { ADMIN_TEXT, ADMIN_INT4, ADMIN_INT8, ADMIN_NUMERIC };

struct admin_col {
	const char *name;
	enum admin_type type;
};

/* RowDescription of n columns. */
void admin_put_row_description(struct evbuffer *out, const struct admin_col *cols, size_t n);
/* CommandComplete with tag ("SHOW", "RELOAD", ...). */
void admin_put_complete(struct evbuffer *out, const char *tag);

struct admin_row {
	struct evbuffer *buf; /* the values so far; NULL until the first one */
	int n;                /* values so far */
	bool oom;
};

void admin_row_text(struct admin_row *r, const char *value); /* NULL: SQL NULL */
void admin_row_null(struct admin_row *r);
void admin_row_int(struct admin_row *r, long long value);
void admin_row_uint(struct admin_row *r, unsigned long long value);
void admin_row_printf(struct admin_row *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* A wall-clock time given as a clock_now_usec() value ("2024-05-01 12:00:00 UTC", as
 * PgBouncer writes timestamps, a text column); 0: NULL. */
void admin_row_mono_time(struct admin_row *r, long long mono_usec);
/* Appends the DataRow to out and empties r for the next row; false when out of
 * memory (the row is then lost). */
bool admin_row_end(struct admin_row *r, struct evbuffer *out) WARN_UNUSED;

#endif
