/*
 * What in a client's SQL leaves state on its server connection that corral cannot
 * carry to another one (transaction pooling): LISTEN, session advisory locks, temporary
 * objects, cursors WITH HOLD, LOAD, and SET / RESET / set_config(..., false) of a
 * setting corral does not carry.  Read with proxy/sql_lex.h, so words inside strings,
 * comments, quoted identifiers and dollar quotes do not count, except in a DO block's
 * body, which runs: there the words count wherever they are (failing closed).
 *
 * Pure: text in, the first reason found out.  The caller (proxy/pin.h) applies the
 * pool's pin_policy.
 */
#ifndef CORRAL_PROXY_PIN_SCAN_H
#define CORRAL_PROXY_PIN_SCAN_H

#include <stdbool.h>
#include <stddef.h>

enum pin_reason {
	PIN_NONE,
	PIN_LISTEN,        /* LISTEN: notifications go to the connection */
	PIN_ADVISORY_LOCK, /* pg_advisory_lock and friends (not the _xact_ ones) */
	PIN_TEMP_OBJECT,   /* CREATE TEMP TABLE / VIEW / SEQUENCE, SELECT INTO TEMP */
	PIN_HOLD_CURSOR,   /* DECLARE ... WITH HOLD */
	PIN_LOAD,          /* LOAD 'library' */
	PIN_SET,           /* SET / RESET / set_config(..., false) of a setting not carried */
	PIN_UNREADABLE,    /* text the lexer cannot end (unterminated quote or comment) */
	/* PREPARE / EXECUTE / DEALLOCATE / DISCARD, or a name of corral's own server
	 * statements (corral_...), in text corral does not rewrite: anything but a simple
	 * query that is that one statement alone (proxy/prepared_sql.c). */
	PIN_PREPARED_SQL,
	/* currval() / lastval(): they read the session's sequence values, which nextval()
	 * (a column DEFAULT among them, never seen) leaves on the server connection. */
	PIN_SEQUENCE,
	PIN_REASONS
};

/* "listen", "advisory_lock", ...: the reason's name in SHOW PINS and /metrics. */
const char *pin_reason_name(enum pin_reason r);
/* What it is, for a client's notice or error ("LISTEN", "a session advisory lock"). */
const char *pin_reason_what(enum pin_reason r);

struct pin_find {
	enum pin_reason reason;
	size_t stmt_start, stmt_len; /* the statement that has it, in the text */
	char setting[64];            /* PIN_SET: the setting's name as PostgreSQL reads it */
};

/*
 * Scans the first len bytes of text (a Query's or Parse's, may end with NUL).  carried
 * (may be NULL) says which settings corral carries to the client's next server (a SET
 * of those needs no pin).  Returns out->reason.
 */
enum pin_reason pin_scan(const char *text, size_t len, bool (*carried)(const char *name),
			 struct pin_find *out);
/* The same, read as a session with standard_conforming_strings = off when scs_off;
 * simple_query: the text is a Query's, where one such statement alone is corral's to
 * rewrite (no pin); a Parse's text is not rewritten. */
enum pin_reason pin_scan_ex(const char *text, size_t len, bool (*carried)(const char *name),
			    bool scs_off, bool simple_query, struct pin_find *out);

#endif
