/*
 * The extended-protocol messages corral reads and writes for prepared statements
 * (proxy/prepared.h): the statement names in a client's Parse, Bind, Describe and
 * Close, and the Parse, Close, Bind and Query it sends in their place.  No I/O.
 */
#ifndef CORRAL_PROXY_PREPARED_MSG_H
#define CORRAL_PROXY_PREPARED_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

/* Where the statement name of a client message is, within its body. */
struct prepmsg_name {
	const char *name; /* points into the body */
	size_t name_off;  /* offset of the name in the body */
	size_t after;     /* offset just past the name's NUL */
	char kind;        /* Describe / Close: 'S' or 'P' */
};

/*
 * The statement name of a message of this type ('P', 'B', 'D', 'C'), read from the
 * first bytes of its body (a Bind's portal name comes first).  False when body holds
 * too little to tell (the caller waits for more, up to the whole message) or the message
 * is malformed (complete is true: PostgreSQL will reject it; pass it on).
 */
bool prepmsg_stmt_name(char type, const uint8_t *body, size_t len, bool complete,
		       struct prepmsg_name *out);

void prepmsg_put_parse(struct evbuffer *out, const char *name, const uint8_t *rest,
		       size_t rest_len);
void prepmsg_put_close(struct evbuffer *out, char kind, const char *name);
/* Bind's header with another statement name: the caller passes the rest of the original
 * message (parameters) on, rest_len bytes. */
void prepmsg_put_bind_head(struct evbuffer *out, const char *portal, const char *name,
			   size_t rest_len);
void prepmsg_put_describe(struct evbuffer *out, char kind, const char *name);
/* A Bind that always fails (of name: PREP_NONE_NAME, or PREP_UNKNOWN_PREFIX + a client's
 * name; neither is ever prepared): the request whose error corral replaces, in order. */
void prepmsg_put_failing_bind(struct evbuffer *out, const char *name);
void prepmsg_put_query_parts(struct evbuffer *out, const char *const *parts, const size_t *lens,
			     size_t n);
/* The server's ErrorResponse (body, len bytes: all of it) with its field of code given
 * value (left out when value is NULL); false if the body is malformed or cut short. */
bool prepmsg_put_error_field(struct evbuffer *out, const uint8_t *body, size_t len, char code,
			     const char *value);
/* The same for the message field. */
bool prepmsg_put_error_renamed(struct evbuffer *out, const uint8_t *body, size_t len,
			       const char *message);
/* One-byte body messages corral answers with: ParseComplete '1', CloseComplete '3'. */
void prepmsg_put_empty(struct evbuffer *out, char type);

#endif
