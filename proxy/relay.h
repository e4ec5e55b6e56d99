/*
 * The relay between a client and its linked server: whole runs of messages move
 * with one evbuffer_remove_buffer, headers are read in place, every message type goes
 * to the protocol tracker (proxy/tracker.h), only the few bodies corral must
 * understand are looked into (ReadyForQuery, ParameterStatus, ErrorResponse's
 * severity, Describe's kind), and the tail of a large message streams through with a
 * remaining-bytes counter.  Backpressure: when one side's output passes
 * RELAY_HIGH_WATER, reading the other side stops until it drains (le-proxy's way).
 */
#ifndef CORRAL_PROXY_RELAY_H
#define CORRAL_PROXY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "proxy/tracker.h"

#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_MAX_READ (64 * 1024)

struct client;

struct relay {
	uint32_t to_server_remaining; /* bytes of the current client message still to pass */
	uint32_t to_client_remaining; /* bytes of the current server message still to pass */
	bool to_server_discard;       /* ... of a client message corral replaced: dropped */
	bool to_client_discard;       /* (never set: swallowed replies are taken whole) */
	/* What the server still owes the client (proxy/tracker.h); it alone decides
	 * whether the server may be given back. */
	struct tracker tracker;
	bool server_fatal; /* the server sent a FATAL: its close ends the client */
	bool pin_logged;   /* said once that the tracker lost count */
	/* Statistics (proxy/client_stats.h): when the request PostgreSQL is answering
	 * reached it, and the transaction's first one; 0: none under way. */
	usec_t query_start, xact_start;
	struct relay *next_spare; /* on its thread's list of spare relays (relay.c) */
};

/* Links c and c->server: installs the relay callbacks and relays pending client
 * input (which may close the client: check its state afterwards). */
void relay_start(struct client *c);
/* Unlinks: the server's callbacks are cleared (its owner decides what comes next). */
void relay_stop(struct client *c);
/* One per link, from the server's checkout until the client lets it go (client.c:
 * link_server to unlinked): an idle client holds none.  NULL when out of memory;
 * relay_free(NULL) does nothing. */
struct relay *relay_new(void);
void relay_free(struct relay *r);
/* The thread's loop is over: its spare relays are freed, later ones not kept. */
void relay_spares_drop(void);
/* True when PostgreSQL has answered everything the client sent (the tracker is settled)
 * and no message is half relayed either way.  The server's transaction status is then
 * relay_tx_status(r). */
static inline bool relay_between_queries(const struct relay *r)
{
	return tracker_settled(&r->tracker) && r->to_server_remaining == 0 &&
	       r->to_client_remaining == 0;
}
char relay_tx_status(const struct relay *r);
/* Relays what the client has sent (its read callback while linked). */
void relay_from_client(struct client *c);
/* The client's output drained below the low watermark: read the server again. */
void relay_client_drained(struct client *c);

#endif
