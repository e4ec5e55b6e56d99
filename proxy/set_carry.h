/*
 * SET and RESET that corral can carry from one server connection to the client's next
 * (transaction pooling): a Query that is exactly one
 *   SET [SESSION] name { = | TO } value      RESET name
 * where value is one word, one number, one '...' string, DEFAULT, or a list of words
 * and "quoted identifiers" (search_path = a, "B c").  The value is kept as SET would
 * store it (words folded to lower case, a string's contents, a list's elements joined
 * with ", "), so set_config(name, value, false) on another server gives the same
 * setting.  Anything else is not carried (proxy/pin.h pins it).  Pure.
 */
#ifndef CORRAL_PROXY_SET_CARRY_H
#define CORRAL_PROXY_SET_CARRY_H

#include <stdbool.h>
#include <stddef.h>

#define SET_CARRY_VALUE_MAX 1024

struct set_carry {
	char name[64]; /* lower case; a custom one as "app.key"; "all": RESET ALL */
	char value[SET_CARRY_VALUE_MAX]; /* unless reset */
	bool reset;                      /* RESET name, or SET name TO DEFAULT */
	/* (not the parser's) corral set the startup values back after this reset, as it
	 * sets a client's values (proxy/startup_reset.h) */
	bool restored;
};

/* Whether text[0..len) (may end with NUL) is one SET / RESET corral can carry. */
bool set_carry_parse(const char *text, size_t len, struct set_carry *out);

/* At most this many SET / RESET in one Query are carried. */
#define SET_CARRY_MAX 8

/*
 * A Query of several statements (asyncpg's reset: "SELECT pg_advisory_unlock_all();
 * CLOSE ALL; UNLISTEN *; RESET ALL;"): true when each statement either pins nothing
 * (pins(stmt) false) or is a SET / RESET corral can carry, none is transaction control
 * (the Query is then one implicit transaction: all of it takes effect or none), and
 * there are at most SET_CARRY_MAX of them, into out[0..*n) in order.
 */
bool set_carry_collect(const char *text, size_t len,
		       bool (*pins)(const char *stmt, size_t stmt_len, void *arg), void *arg,
		       struct set_carry out[SET_CARRY_MAX], int *n);

#endif
