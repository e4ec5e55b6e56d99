/*
 * A worker: one thread's event_base with its listener, clients, pools and timers
 * (DESIGN.md §3).  Nothing in a worker is touched by another thread.
 */
#ifndef CORRAL_PROXY_WORKER_H
#define CORRAL_PROXY_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/list.h"
#include "pool/config.h"
#include "pool/pool.h"
#include "proxy/auth_file.h"

struct worker {
	int id;
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *tick_ev;      /* timeouts: query wait, idle servers, client cleanup */
	struct event *reap_ev;      /* frees closed clients after the callbacks that closed them */
	struct event *accept_retry_ev; /* re-enables the listener after an accept error */
	const struct corral_config *cfg;
	const struct auth_file *auth;
	struct pool_env pools;

	struct list login_clients;  /* not yet authenticated, in accept order */
	struct list clients;        /* authenticated and live */
	struct list dead_clients;   /* closed, freed by reap_ev */
	size_t n_clients;           /* live clients on both lists */
	uint64_t next_client_id;
};

/* Sets up w on a fresh event_base and binds its listener.  False (logged) on failure. */
bool worker_init(struct worker *w, int id, const struct corral_config *cfg,
		 const struct auth_file *auth) WARN_UNUSED;
/* Runs the loop until worker_stop. */
void worker_run(struct worker *w);
/* Asks the loop to end; safe from a signal callback on the same base. */
void worker_stop(struct worker *w);
/* Closes every client and server and frees everything. */
void worker_shutdown(struct worker *w);

#endif
