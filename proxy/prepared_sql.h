/*
 * SQL-level prepared statements in a simple Query: PREPARE, EXECUTE, DEALLOCATE and
 * DISCARD ALL, recognised when the Query holds that one statement (read with
 * proxy/sql_lex.h, so a ';' inside a comment, string or quote is not an end).  Anything else, or any doubt, is "other" and passes unchanged.
 * Pure.
 */
#ifndef CORRAL_PROXY_PREPARED_SQL_H
#define CORRAL_PROXY_PREPARED_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PostgreSQL's identifiers keep NAMEDATALEN - 1 bytes. */
#define SQL_NAME_MAX 63

enum sql_cmd {
	SQL_OTHER,
	SQL_PREPARE,        /* PREPARE name [(types)] AS statement */
	SQL_EXECUTE,        /* [EXPLAIN ... | CREATE TABLE ... AS] EXECUTE name [(arguments)] */
	SQL_DEALLOCATE,     /* DEALLOCATE [PREPARE] name */
	SQL_DEALLOCATE_ALL, /* DEALLOCATE [PREPARE] ALL */
	SQL_DISCARD_ALL,    /* DISCARD ALL */
};

struct sql_stmt {
	enum sql_cmd cmd;
	char name[SQL_NAME_MAX + 1]; /* as PostgreSQL reads it: unquoted folded to lower case */
	size_t name_at;              /* offset of the name in the text (what comes before
				      * it is sent as it is) */
	size_t after_name;           /* offset just past the name in the text */
	size_t end;                  /* offset of the statement's end (its ';' or the end) */
};

/* First look at the first n bytes of a Query: might it be one of these?  (A letter test
 * for nearly every query.) */
bool prepared_sql_maybe(const uint8_t *start, size_t n);
/* The one statement text[0..len) holds (text may end with NUL). */
void prepared_sql_parse(const char *text, size_t len, struct sql_stmt *out);

#endif
