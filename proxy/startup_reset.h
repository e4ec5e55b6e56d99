/*
 * RESET of a setting the client gave at startup goes back to the startup value, as on a
 * direct connection (PostgreSQL makes startup-packet values the reset values).  corral
 * gives a server the client's values with set_config(), so on the server RESET goes to
 * the server's default instead; and SQL cannot set a reset value.  So a Query that is
 * exactly one
 *   RESET name      SET [SESSION] name TO DEFAULT      RESET ALL
 *   RESET TIME ZONE      SET [SESSION] TIME ZONE { DEFAULT | LOCAL }
 * of a setting with a startup value (any, for RESET ALL) goes to the server as
 *   <the client's text>\n;SELECT pg_catalog.set_config(E'name', E'startup', false), ...
 * in one Query: one implicit transaction (or the client's block: a ROLLBACK undoes
 * both), one ReadyForQuery.  The client gets its own statement's CommandComplete
 * ("RESET") and every ParameterStatus (the last one says the startup value); the
 * SELECT's RowDescription, DataRow and CommandComplete are dropped.  If the RESET
 * fails the server skips the SELECT.  Both pool modes; proxy/pin.c keeps transaction
 * pooling's bookkeeping (struct set_carry.restored).
 *
 * A Query that does not start with the word RESET or SET costs a peek at its first
 * bytes.  A RESET sent while earlier requests are unanswered waits for their answers
 * (the added SELECT's replies are known by being the only ones in flight).  Not
 * handled, the RESET goes as it is (to the server's default): RESET among other
 * statements in one Query, in a Parse (extended protocol: one statement only), behind
 * requests that need more from the client before they are answered (extended messages
 * without a Sync, a COPY), and DISCARD ALL (refused inside the implicit transaction a
 * second statement would make).
 */
#ifndef CORRAL_PROXY_STARTUP_RESET_H
#define CORRAL_PROXY_STARTUP_RESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

struct client;

enum startup_reset_verdict {
	STARTUP_RESET_PASS,    /* relay the Query as it is */
	STARTUP_RESET_WAIT,    /* more of it must arrive first */
	STARTUP_RESET_HOLD,    /* not before the server has answered what came before */
	STARTUP_RESET_REWRITE, /* startup_reset_rewrite takes it */
};

/* What the relay does with the client's Query of length field len at off in src
 * (avail bytes there). */
enum startup_reset_verdict startup_reset_check(struct client *c, uint32_t len, struct evbuffer *src,
					       size_t off, size_t avail);

/* The Query (checked: REWRITE) is at the head of src, what came before it in dst:
 * writes the Query with the startup values after it to dst, tells the tracker, removes
 * the client's from src.  False: out of memory, or the tracker refused (*sqlstate,
 * *error: the client is failed). */
bool startup_reset_rewrite(struct client *c, uint32_t len, struct evbuffer *src,
			   struct evbuffer *dst, const char **sqlstate, const char **error);

/* While a rewritten Query is answered (c->startup_reset not 0): whether the server's
 * message of type is the added SELECT's reply, dropped (the relay has all of it, see
 * startup_reset_wants_whole). */
bool startup_reset_swallow(struct client *c, char type);
/* Whether the message of type may be dropped and must be there whole first. */
bool startup_reset_wants_whole(const struct client *c, char type);

#endif
