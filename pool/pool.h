/*
 * A pool is (database, user): the server connections logged in for it and the
 * clients queued for one.  pool/ knows nothing of clients: a waiting client is a
 * struct pool_waiter embedded in the proxy's client, and the pool reports what
 * happens to it through the hooks the proxy registers (DESIGN.md §2, §6).
 *
 * Ownership: the pool owns its servers.  A server handed out by pool_checkout or
 * the server_ready hook is SV_ACTIVE and used by its owner until the owner gives
 * it back with pool_release (clean, reusable) or pool_close_server.
 */
#ifndef CORRAL_POOL_POOL_H
#define CORRAL_POOL_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/list.h"
#include "pool/config.h"
#include "pool/params.h"
#include "pool/server.h"
#include "pool/shared.h"
#include "pool/wait_queue.h"

struct inbox;

/* How often a closed server whose backend has not exited yet is cancelled again (and
 * a warning logged); its slot stays taken until PostgreSQL closes the connection. */
#define SERVER_EXIT_TIMEOUT_SEC 30

/* Every hook but wait_notice runs from the activation callback (pool/activate.h), on
 * a later turn of the loop than the pool/ call that decided it, never inside it. */
struct pool_hooks {
	/* A queued waiter got server s (now SV_ACTIVE, left the queue). */
	void (*server_ready)(struct pool_waiter *w, struct server *s);
	/* A queued app waiter got its application's token (left the queue). */
	void (*app_admitted)(struct pool_waiter *w);
	/* A queued waiter is refused and has left the queue (timeout, login failure). */
	void (*wait_failed)(struct pool_waiter *w, const char *sqlstate, const char *message);
	/* A waiter has waited query_wait_notify; message says so (it stays queued). */
	void (*wait_notice)(struct pool_waiter *w, const char *message);
};

/* What all pools of one worker share. */
struct pool_env {
	struct event_base *base;
	const struct corral_config *cfg;
	const struct pool_hooks *hooks;
	struct list pools;
	struct list app_gates;      /* struct app_gate, per application with a limit */
	struct list dead_servers;   /* SV_CLOSED, freed by reap_ev next loop iteration */
	struct event *reap_ev;
	struct list activations;    /* struct pool_waiter with a pending hook (activate.h) */
	struct event *activate_ev;  /* made active when activations stops being empty */
	uint64_t next_server_id;

	/* The other workers: idle servers move between them (pool_env_connect). */
	int worker_id;
	int n_workers;
	struct pool_registry *registry;
	struct inbox **inboxes;     /* every worker's inbox, by worker id */
	bool shutting_down;         /* servers are closed, not handed on */

	/* PAUSE on this worker (pool_control.c): every pool, or those of the databases
	 * named; a pool made while its database is paused starts paused. */
	bool paused_all;
	char **paused_dbs;
	size_t n_paused_dbs;
};

struct pool {
	struct list node;           /* in env->pools */
	struct pool_env *env;
	/* A pool is (database name, user name), never a pointer into a configuration
	 * snapshot, so a reload carries it over (DESIGN.md §10).  db_name is the shared
	 * record's (it lives until the process ends). */
	const char *db_name;
	char *user;                 /* the client-facing user this pool serves */
	int size;
	enum pool_mode mode;
	enum pin_policy pin_policy; /* transaction pooling's answer to what cannot be carried */
	int min_size;               /* min_pool_size */
	int reserve;                /* reserve_pool_size */
	int max_db;                 /* max_db_connections (0: none) */
	int max_user;               /* max_user_connections (0: none) */

	/* libpq login keywords/values, NULL-terminated, copied from the database line (a
	 * snapshot may be freed after a reload) plus user and password; all owned. */
	char **login_keys;
	char **login_vals;
	char *login_password;       /* the auth file's password when the line has none */
	/* Neither the line nor the auth file has a password for the login, and the line
	 * logs in as the client's user: servers log in with the keys of the user's last
	 * SCRAM proof or the auth file's md5 hash (pass-through, pool/server_login_raw.h)
	 * once a client has given them. */
	bool passthrough;
	/* Hash of the database line's login keywords and values: a server logged in with
	 * other ones (the line changed on a reload) is never handed to a client again. */
	uint64_t login_sig;
	bool removed;               /* its database left the configuration: no new clients */
	bool shrinking;             /* pool_size went down: released servers over it close */
	bool paused;                /* PAUSE / KILL: no server handed out, idle ones closed */

	struct pool_shared *shared; /* the pool's counters across workers */
	struct worker_slot *slot;   /* this worker's part of them (shared->slots[worker_id]) */
	struct stats_block *stats;  /* &slot->stats: counted by this worker alone */
	struct list login, idle, active, closing; /* servers by state */
	struct wait_queue waiting;  /* clients waiting for a server */
	size_t n_login, n_idle, n_active, n_closing;
	size_t n_clients;           /* clients of this worker joined to it (pool_join) */
	size_t asks_pending;        /* idle servers asked of other workers, since the last tick */
	struct event *retry_ev;     /* while logins back off: the next probe, or server_login_wait's end */
	usec_t retry_ev_at;         /* when retry_ev fires; 0: not pending */

	bool have_params;
	struct param_set params;    /* what the last server login reported */
	/* The session parameters of the client last welcomed, whose allocation the next
	 * with the same ones shares (proxy/session_params.h: session_params_share). */
	struct param_set client_params;
};

bool pool_env_init(struct pool_env *env, struct event_base *base, const struct corral_config *cfg,
		   const struct pool_hooks *hooks) WARN_UNUSED;
/* Joins env to the other workers' pools: worker id of n, the shared registry and
 * every worker's inbox (through which idle servers are asked for and handed over). */
void pool_env_connect(struct pool_env *env, int worker_id, int n_workers,
		      struct pool_registry *registry, struct inbox **inboxes);
/* Closes every server of every pool and frees the pools. */
void pool_env_shutdown(struct pool_env *env);
/* Creates the pools of databases with a fixed login (user= on the line), so their
 * min_pool_size is opened before any client comes. */
void pool_env_prewarm(struct pool_env *env);

/*
 * The pool for (db, user), created on first use.  password is what server logins
 * use when the database line has none (the client's plaintext password from the
 * auth file), or NULL.
 */
struct pool *pool_get(struct pool_env *env, const struct db_config *db, const char *user,
		      const char *password);

/*
 * pool_get for a client, who is joined to the pool (it cannot be freed until
 * pool_leave).  Past max_pools (0: no cap) pools, the least recently used idle one
 * made from a client-chosen user is freed to make room (pool/pool_retire.c); NULL
 * with *full set when none is idle, NULL alone when out of memory.
 */
struct pool *pool_join(struct pool_env *env, const struct db_config *db, const char *user,
		       const char *password, int max_pools, bool *full);
/* The client joined by pool_join has left (its last use of the pool). */
void pool_leave(struct pool *pool);

/* Covers the pool's queued clients with logins or other workers' idle servers, as far
 * as its limits (and a pause) allow. */
void pool_grow_for_waiters(struct pool *pool);

/* ---- reload, pause, kill (pool/pool_control.c), each on the worker's own thread ---- */

/*
 * This worker's pools take cfg (env->cfg becomes cfg; the caller keeps the snapshot alive
 * while env uses it): new sizes and limits (a lower pool_size closes idle servers over
 * it at once and busy ones as they come back), timeouts (read where used), a changed
 * database line (idle servers closed, busy ones closed when released, new logins with the
 * new line), a database no longer there (its pools keep serving their clients, close
 * idle servers once no client of theirs is left, and take no new clients: the proxy
 * refuses them), and application limits (waiters take the room a raised limit made).
 */
void pool_env_adopt(struct pool_env *env, const struct corral_config *cfg);
/* Whether a pool of db_name starts paused here. */
bool pool_env_paused(const struct pool_env *env, const char *db_name);
/* PAUSE db_name (NULL: every database): no server is handed out, idle ones are closed
 * now and busy ones when they come back, no login starts; queued clients stay queued.
 * False when out of memory (nothing changed). */
bool pool_env_pause(struct pool_env *env, const char *db_name) WARN_UNUSED;
/* RESUME db_name (NULL: everything paused): queued clients are served again. */
void pool_env_resume(struct pool_env *env, const char *db_name);
/* Closes every idle server of the pools of db_name (KILL, after their clients). */
void pool_env_close_idle(struct pool_env *env, const char *db_name);

/* True once any worker's part of the pool has logged in: pool->params are then the
 * values to welcome a client with. */
bool pool_has_params(struct pool *pool);

/*
 * An idle server of the pool (now SV_ACTIVE), or NULL after queueing w; a queued w
 * later gets hooks->server_ready or hooks->wait_failed (never from inside this call).  Starts a login if the
 * pool has room.  NULL with *full set: max_queue_depth clients already wait (w is
 * not queued).
 */
struct server *pool_checkout(struct pool *pool, struct pool_waiter *w, bool *full);
/* Takes w out of the queue (the client went away), or takes back its pending
 * activation (a server reserved for it goes back through pool_release); harmless if
 * neither. */
void pool_dequeue(struct pool *pool, struct pool_waiter *w);
/* Gives back a clean server (ReadyForQuery 'I' seen, reset done if wanted). */
void pool_release(struct server *s);
/*
 * Closes s whatever its state; reason is logged.  s must not be used afterwards.  A
 * logged-in server is sent Terminate and keeps its slot until PostgreSQL closes the
 * connection (its backend is gone), however long that takes; one a client was using
 * is also sent a cancel, so a running query does not keep the backend alive.
 */
void pool_close_server(struct server *s, const char *reason);
/* A cancel for s was delivered (pool/cancel.c, on s's worker). */
void pool_cancel_done(struct server *s);
/* Timeouts of every pool: query_wait_timeout, server_idle_timeout, server_lifetime,
 * server_connect_timeout. */
void pool_env_tick(struct pool_env *env, usec_t now);

/* query_wait_timeout and query_wait_notify for the waiters of one queue (pools and
 * application gates share them). */
void pool_tick_waiters(struct pool_env *env, struct wait_queue *queue, usec_t now,
		       void (*fail)(struct pool_waiter *w, const char *sqlstate, const char *msg,
				    void *arg),
		       void *arg, const char *what);

/*
 * Called by server.c when a login ends; on failure errmsg is libpq's message and
 * sqlstate the server's SQLSTATE (NULL or "": the server said none, e.g. connection
 * refused).
 */
void pool_login_done(struct server *s, bool ok, const char *errmsg, const char *sqlstate);

#endif
