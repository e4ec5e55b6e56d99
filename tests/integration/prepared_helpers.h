/*
 * Helpers shared by the prepared-statement tests (test_prepared.c,
 * test_prepared_attack.c): libpq Prepare / Execute with assertions, and raw protocol
 * exchanges that return the types of the replies.
 */
#ifndef CORRAL_TESTS_PREPARED_HELPERS_H
#define CORRAL_TESTS_PREPARED_HELPERS_H

#include <stddef.h>

#include <libpq-fe.h>

/* PQprepare of sql as name without parameter types; the result is not NULL. */
PGresult *pr_prepare(PGconn *conn, const char *name, const char *sql);
/* The same, and it must succeed. */
void pr_prepare_ok(PGconn *conn, const char *name, const char *sql);
/* Runs statement name with one text parameter arg (none when NULL); its one value must
 * be want (or its SQLSTATE must be want_state when want is NULL). */
void pr_exec_prepared(PGconn *conn, const char *name, const char *arg, const char *want,
		      const char *want_state);

/* A protocol message: type, body, body length; a type of 0 ends a list. */
struct raw_msg {
	char type;
	const char *body;
	size_t len;
};

#define RAW(t, lit)                     \
	{                               \
		t, lit, sizeof(lit) - 1 \
	}

/* Bind of the statement named by the literal name (no parameters, text results),
 * Execute of the unnamed portal, Sync. */
#define RAW_RUN(name) RAW('B', "\0" name "\0\0\0\0\0\0\0"), RAW('E', "\0\0\0\0\0"), RAW('S', "")

/* Sends the messages in msgs on fd. */
void raw_send(int fd, const struct raw_msg *msgs);
/* Sends the messages in msgs on fd and returns the types of the replies up to the
 * ReadyForQuery, as a string. */
char *raw_exchange(int fd, const struct raw_msg *msgs);
/* raw_exchange, whose replies must be want. */
void expect_raw(int fd, const struct raw_msg *msgs, const char *want);

#endif
