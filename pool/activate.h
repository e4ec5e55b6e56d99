/*
 * The activation queue (PgBouncer's per_loop_activate): when pool/ hands a server or
 * an application token to a queued waiter, or refuses one, it decides at once (the
 * waiter leaves its queue, the server or token is reserved for it, so counts and FIFO
 * order stay exact) but tells the waiter's client later, from one libevent callback
 * that runs after the callbacks of the current loop iteration.  So no hook ever runs
 * inside a pool/ call made by another client (closing one client never links, relays
 * or closes another one deep inside its own call stack).
 *
 * A waiter whose client goes away first is taken back with activate_cancel (through
 * pool_dequeue / app_gate_dequeue), which returns what was reserved for it.
 */
#ifndef CORRAL_POOL_ACTIVATE_H
#define CORRAL_POOL_ACTIVATE_H

#include <stdbool.h>

#include "common/macros.h"
#include "pool/pool.h"

bool activate_init(struct pool_env *env) WARN_UNUSED;
/* Takes back every pending activation (shutdown) and frees the event. */
void activate_free(struct pool_env *env);

/* w (out of its queue) gets s (SV_ACTIVE, reserved for it): hooks->server_ready. */
void activate_server(struct pool_env *env, struct pool_waiter *w, struct server *s);
/* w (out of its gate's queue) holds a token: hooks->app_admitted. */
void activate_admit(struct pool_env *env, struct pool_waiter *w);
/* w (out of its queue) is refused: hooks->wait_failed (message is copied). */
void activate_fail(struct pool_env *env, struct pool_waiter *w, const char *sqlstate,
		   const char *message);

/* Takes w's pending activation back; returns what it was (PENDING_NONE: none) and,
 * for PENDING_SERVER, the reserved server in *reserved (still SV_ACTIVE, the caller
 * gives it back or closes it). */
enum wait_pending activate_cancel(struct pool_waiter *w, struct server **reserved);

#endif
