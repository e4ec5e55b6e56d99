/*
 * Makes a server that a client has left fit for the next one: ROLLBACK if a
 * transaction is open, then server_reset_query, with the replies swallowed; the
 * server goes back to its pool on success and is closed otherwise.
 */
#ifndef CORRAL_PROXY_SERVER_RESET_H
#define CORRAL_PROXY_SERVER_RESET_H

#include "pool/server.h"

/* Takes ownership of s.  tx_status is the last ReadyForQuery status the client saw. */
void server_reset_and_release(struct server *s, char tx_status, const char *reset_query);

#endif
