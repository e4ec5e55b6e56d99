/*
 * A PostgreSQL invocation as a function makes it: connect (PQconnectStartParams /
 * PQconnectPoll driven by libevent), run the query, disconnect, all non-blocking.
 */
#ifndef CORRAL_FUNCTIONS_STORM_PG_INVOKE_H
#define CORRAL_FUNCTIONS_STORM_PG_INVOKE_H

struct storm_inv;

/* Starts the connection; the invocation ends in storm_inv_finish(). */
void storm_pg_start(struct storm_inv *inv);
/* Drops it (--timeout, Ctrl-C); also ends in storm_inv_finish(). */
void storm_pg_abort(struct storm_inv *inv, const char *key, const char *message);

#endif
