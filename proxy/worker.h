/*
 * A worker: one thread's event_base with its listener, clients, pools and timers
 * (DESIGN.md §3).  Nothing in a worker is touched by another thread.
 */
#ifndef CORRAL_PROXY_WORKER_H
#define CORRAL_PROXY_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/inbox.h"
#include "common/list.h"
#include "pool/config.h"
#include "pool/pool.h"
#include "proxy/auth_file.h"
#include "proxy/cancel_keys.h"
#include "proxy/client_lists.h"
#include "proxy/config_store.h"

/* What every worker reads or counts together. */
struct worker_shared {
	/* The configuration in force; a worker runs on the snapshot it last adopted
	 * (worker->snap), which may lag the store's by an inbox message. */
	struct config_store store;
	struct pool_registry registry;
	struct inbox **inboxes; /* by worker id */
	int n_workers;
	atomic_int clients;             /* live clients of all workers, for max_client_conn */
	struct auth_throttle *throttle; /* failed logins by address (proxy/auth_throttle.h) */
};

struct worker {
	int id;
	struct worker_shared *shared;
	struct inbox inbox; /* messages from other workers */
	struct event_base *base;
	struct evconnlistener *listener;
	/* The listener carries w->cfg's TCP_NODELAY and SO_KEEPALIVE, which accepted
	 * sockets inherit (proxy/client_limits.h); false: set per accept. */
	bool listener_opts;
	struct event *tick_ev; /* timeouts: query wait, idle servers, client cleanup */
	struct event *reap_ev; /* frees closed clients after the callbacks that closed them */
	struct event *accept_retry_ev; /* re-enables the listener after an accept error */
	/* The snapshot this worker runs on (a reference), and its two parts: read as plain
	 * pointers, changed only on this thread (worker_adopt). */
	struct snapshot *snap;
	const struct corral_config *cfg;
	const struct auth_file *auth;
	struct pool_env pools;

	/* Clients by state group (proxy/client_lists.h): login in accept order, ...,
	 * dead ones until reap_ev frees them; n_list[i] is the length of list[i]. */
	struct list client_list[CLIENT_LISTS];
	size_t n_client_list[CLIENT_LISTS];
	size_t n_clients;               /* live clients (every list but the dead one) */
	size_t n_logins;                /* CL_STARTUP and CL_AUTH: max_logins_in_progress */
	size_t n_refusing;              /* refused, given REFUSE_GRACE for their startup packet */
	struct list refusing;           /* those, oldest first (proxy/client_limits.c) */
	struct cancel_keys cancel_keys; /* this worker's clients by BackendKeyData */
	struct list authq_lookups;      /* auth_query lookups (proxy/auth_query.h) */
	uint64_t next_client_id;
};

/* Sets up w on a fresh event_base and binds its listener (SO_REUSEPORT: every
 * worker has its own).  False (logged) on failure. */
bool worker_init(struct worker *w, int id, struct worker_shared *shared) WARN_UNUSED;
/* Stops accepting (a worker that will not run). */
void worker_close_listener(struct worker *w);
/* Runs the loop until worker_stop. */
void worker_run(struct worker *w);
/* Asks w's loop to end; safe from any thread. */
void worker_stop(struct worker *w);
/* After every loop has ended: no server is handed between workers any more. */
void worker_begin_shutdown(struct worker *w);
/* Closes every client and server and frees everything. */
void worker_shutdown(struct worker *w);
/* This worker runs on snap from now on (its reference is the worker's now); the one it
 * ran on is released.  On w's thread. */
void worker_adopt(struct worker *w, struct snapshot *snap);

#endif
