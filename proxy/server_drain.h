/*
 * A client left before PostgreSQL had answered everything it sent (a function runtime
 * that timed out and killed its connection).  Closing the server would not stop the
 * backend: a running query never notices a closed socket, and the pool would open
 * another backend beside it.  Instead the query is cancelled, the server is brought
 * back to an idle ReadyForQuery, reset and reused; if that takes longer than
 * DRAIN_TIMEOUT_SEC it is closed, and its slot is kept until the backend is gone.
 */
#ifndef CORRAL_PROXY_SERVER_DRAIN_H
#define CORRAL_PROXY_SERVER_DRAIN_H

#include "pool/server.h"
#include "proxy/relay.h"

#define DRAIN_TIMEOUT_SEC 10

/* s was linked through r (relay already stopped); reset_query as server_reset. */
void server_drain(struct server *s, const struct relay *r, const char *reset_query);

#endif
