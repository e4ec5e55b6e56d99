/*
 * Cancel requests to PostgreSQL for a server connection, sent without blocking a
 * worker's loop: libpq 15's PQcancel connects, writes and waits for the postmaster to
 * close, so it runs on one cancel thread, and its completion comes back to the
 * server's worker through that worker's inbox.
 *
 * Until every cancel sent for a server has completed, the server is not given to
 * another client (s->cancels_in_flight): once PQcancel returns, the postmaster has
 * signalled the backend, and whatever the backend does next sees the signal first, so
 * the cancel can only hit the query it was meant for.
 */
#ifndef CORRAL_POOL_CANCEL_H
#define CORRAL_POOL_CANCEL_H

#include <stdbool.h>

struct server;
struct inbox;

/*
 * Sends s's cancel request; s->cancel_done(s) runs on s's worker once it has been
 * delivered (or failed), unless s was closed meanwhile (then s is only freed).  False
 * if it could not even be queued (logged).
 */
bool server_cancel(struct server *s);
/* Stops the cancel thread (after every loop has ended, before inboxes close): queued
 * requests are dropped, one being sent is finished. */
void server_cancel_stop(void);

#endif
