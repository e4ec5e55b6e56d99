/*
 * The relay's side of prepared statements in transaction pooling (proxy/prepared.h):
 * which client messages are rewritten (named Parse, Bind, Describe, Close; SQL PREPARE,
 * EXECUTE, DEALLOCATE, DISCARD ALL), what goes to the server in their place, and which
 * server replies the client never sees.  A client that uses no named statement pays a
 * type test per message and, for a Query, a look at its first letter.
 */
#ifndef CORRAL_PROXY_PREPARED_RELAY_H
#define CORRAL_PROXY_PREPARED_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "proxy/client.h"
#include "proxy/prepared.h"

struct client;

/* How a link treats named statements (relay_start decides, from the pool mode). */
enum prep_mode {
	PREP_OFF,    /* session pooling: the client's own server, nothing to do */
	PREP_ON,     /* transaction pooling: mapped, prepared on demand */
	PREP_REFUSE, /* transaction pooling with max_prepared_statements = 0 */
};

enum prep_verdict {
	PREP_PASS,    /* relay the message as it is */
	PREP_WAIT,    /* more of the message must arrive first */
	PREP_REWRITE, /* prepared_client_rewrite takes it */
	PREP_HOLD,    /* not before the server has answered what came before (the relay
		       * sets c->prep_hold and tries again after the next reply) */
};

/* Does this client message (type, length field len, at offset off of src, avail bytes
 * there) concern named statements?  Cheap for the ones that do not. */
enum prep_verdict prepared_client_check(struct client *c, char type, uint32_t len,
					struct evbuffer *src, size_t off, size_t avail);

struct prep_rewrite {
	uint32_t remaining;           /* bytes of the message left in src, to pass on ... */
	bool discard;                 /* ... or to drop */
	const char *sqlstate, *error; /* when it returns false: the client is failed */
};

/*
 * The message is at the head of src, what came before it already in dst: writes what
 * goes to the server in its place (telling the tracker), removes what it replaced from
 * src.  False: the client must be failed (out of memory, the tracker refused).
 */
bool prepared_client_rewrite(struct client *c, char type, uint32_t len, struct evbuffer *src,
			     struct evbuffer *dst, struct prep_rewrite *rw);

enum prep_reply {
	PREP_REPLY_PASS,
	PREP_REPLY_SWALLOW, /* corral's own request's reply: drop it */
	PREP_REPLY_REPLACE, /* drop it and send *replacement instead (an error of corral's) */
	PREP_REPLY_LOST,    /* cannot tell whose the reply is: fail closed */
};

/* True while replies to corral's own requests may come: the relay then waits for whole
 * messages of the types prepared_server_reply may drop. */
static inline bool prepared_awaiting(const struct client *c)
{
	return c->prep && c->prep->notes_len;
}
/*
 * After the tracker took a server message: resolves the notes it decided and says what
 * the client gets.  body holds the message's first body_len bytes of whole_len
 * (ErrorResponse).
 * PREP_REPLY_REPLACE writes the replacement to out.
 */
enum prep_reply prepared_server_reply(struct client *c, char type, const uint8_t *body,
				      size_t body_len, size_t whole_len, struct evbuffer *out);
/* How c's links treat named statements (its pool's mode, max_prepared_statements). */
enum prep_mode prepared_mode(const struct client *c);
/* Where prepared_server_reply writes a replacement (NULL: none can come). */
struct evbuffer *prepared_reply_buffer(struct client *c);
/* The link ends (relay_stop): unanswered notes are abandoned. */
void prepared_link_end(struct client *c);
/* The client is freed. */
void prepared_client_free(struct client *c);

#endif
