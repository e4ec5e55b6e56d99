/*
 * The relay between a client and its linked server: whole runs of messages move
 * with one evbuffer_remove_buffer, headers are read in place, only the few messages
 * corral must understand are looked into (ReadyForQuery, ParameterStatus, Query,
 * Sync, Terminate), and the tail of a large message streams through with a
 * remaining-bytes counter.  Backpressure: when one side's output passes
 * RELAY_HIGH_WATER, reading the other side stops until it drains (le-proxy's way).
 */
#ifndef CORRAL_PROXY_RELAY_H
#define CORRAL_PROXY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_MAX_READ (64 * 1024)

struct client;

struct relay {
	uint32_t to_server_remaining; /* bytes of the current client message still to pass */
	uint32_t to_client_remaining; /* bytes of the current server message still to pass */
	uint32_t outstanding;         /* Query/Sync/FunctionCall sent, ReadyForQuery not yet seen */
	char tx_status;               /* status of the last ReadyForQuery: 'I', 'T' or 'E' */
	bool in_copy;                 /* between CopyIn/CopyOut/CopyBoth response and its end */
	/* Extended-protocol messages sent since the last Sync: the server is inside an
	 * implicit transaction that only a Sync (which commits) would end. */
	bool unsynced;
	/* COPY FROM STDIN: the server ignores Sync while in copy-in mode, so Syncs the
	 * client sent after the COPY's Execute and before CopyDone/CopyFail get no
	 * ReadyForQuery (libpq sends one with the Execute and one after CopyDone). */
	uint32_t syncs_since_execute;
	bool copy_in;
	bool seen_ready; /* a ReadyForQuery came back during this link */
};

/* Links c and c->server: installs the relay callbacks and relays pending client
 * input (which may close the client: check its state afterwards). */
void relay_start(struct client *c);
/* Unlinks: the server's callbacks are cleared (its owner decides what comes next). */
void relay_stop(struct client *c);
/* True when nothing is in flight between client and server: no query running, no
 * unsynced extended-protocol batch, no COPY, no half-relayed message.  The server's
 * transaction status is then r->tx_status. */
bool relay_between_queries(const struct relay *r);
/* Relays what the client has sent (its read callback while linked). */
void relay_from_client(struct client *c);
/* The client's output drained below the low watermark: read the server again. */
void relay_client_drained(struct client *c);

#endif
