/*
 * pin_policy in transaction (and statement) pooling: each Query and Parse a client
 * sends is read (proxy/pin_scan.h) before it goes to the server; what leaves state corral
 * cannot carry to another server connection then
 *   pin   keeps the server with this client until it leaves (then server_reset_query
 *         runs before any other client gets it, or the server is closed),
 *   warn  is passed on, and the client hears a NOTICE once per session,
 *   error is answered by corral with 0A000 and never reaches the server.
 * Decided before the message is passed on, so a server that got a LISTEN is never
 * given back to the pool.  Counted per pool and application (pool/stats.h).
 */
#ifndef CORRAL_PROXY_PIN_H
#define CORRAL_PROXY_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

struct client;

enum pin_verdict {
	PIN_PASS,     /* the message goes on (the client may now be pinned) */
	PIN_WAIT,     /* more of the message must arrive first */
	PIN_HOLD,     /* wait until the server has answered what came before */
	PIN_ANSWERED, /* corral answered it: the message is dropped */
};

/* The client message of type and length field len at off in src (avail bytes there).
 * Only asked outside session pooling. */
enum pin_verdict pin_client_check(struct client *c, char type, uint32_t len, struct evbuffer *src,
				  size_t off, size_t avail);

/*
 * The server's message of type (body: its first body_len bytes) went through the
 * tracker: a ReadyForQuery ends the Query whose SET / RESET corral carries, and they
 * become the client's (and the server's) session values if it took effect.  False:
 * out of memory, the client is pinned instead (never a leak).
 */
void pin_server_msg(struct client *c, char type, const uint8_t *body, size_t body_len);
/* The Query just sent, whose SET / RESET corral carries (if any), got the startup values
 * set back after its RESET (proxy/startup_reset.h). */
void pin_carry_restored(struct client *c);
/* The client logged in (its startup parameters are final; kept in every pool mode, for
 * RESET), and it is freed. */
void pin_client_welcome(struct client *c);
void pin_client_free(struct client *c);

#endif
