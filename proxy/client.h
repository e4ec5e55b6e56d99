/*
 * A client connection: startup, authentication, then idle / waiting for a server /
 * relaying (DESIGN.md §4).  Every way a client ends goes through client_fail or
 * client_close.
 */
#ifndef CORRAL_PROXY_CLIENT_H
#define CORRAL_PROXY_CLIENT_H

#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/stream.h"

#include "common/clock.h"
#include "common/list.h"
#include "pool/pool.h"
#include "proxy/auth_file.h"
#include "proxy/auth_scram.h"
#include "proxy/cancel_keys.h"
#include "proxy/pgproto.h"
#include "proxy/relay.h"

struct worker;
struct admin_session;
struct prep_client;

/* Each state belongs to one of the worker's client lists (proxy/client_lists.h);
 * client_set_state is the one place a state changes. */
enum client_state {
	CL_STARTUP,      /* reading the startup packet (maybe after SSLRequest) */
	CL_AUTH,         /* password exchange */
	CL_WELCOME_WAIT, /* authenticated; waiting for the pool's first server login */
	CL_IDLE,         /* logged in, no server */
	CL_WAITING_APP,  /* queued for its application's slot ([limits]) */
	CL_WAITING,      /* queued for a server */
	CL_PREPARING,    /* linked; the server gets the client's session parameters */
	CL_ACTIVE,       /* linked to a server, relaying */
	CL_CLOSING,      /* flushing a last message, then closed */
	CL_CLOSED,       /* waiting to be freed */
};

enum auth_method { AUTH_METHOD_NONE, AUTH_METHOD_MD5, AUTH_METHOD_SCRAM, AUTH_METHOD_PASSWORD };

/* What only a login needs (client_auth.c, auth_query.c): made when the password
 * exchange begins (client_auth_begin), freed once the client is logged in or gone
 * (client.c: drop_auth_snapshot), so a logged-in client holds none of it. */
struct client_login {
	struct client *client;
	const struct user_secret *secret; /* NULL: unknown user; in auth_snap */
	/* The snapshot whose auth file secret points into, held until the login is done:
	 * a reload meanwhile does not pull it away. */
	struct snapshot *auth_snap;
	/* auth_query (proxy/auth_query.h): the lookup it waits for (NULL: none), its place
	 * on that lookup's list, the method to use once the secret is known (enum
	 * hba_method), whether auth_query was asked (for the refusal's log line), and the
	 * secret it found (secret points at it; freed with the login) */
	struct authq_lookup *authq;
	struct list authq_node;
	uint8_t authq_method;
	bool authq_tried;
	uint8_t md5_salt[4];
	struct user_secret *own_secret;
	/* The SCRAM exchange while it runs (begin_scram), freed and cleansed as soon as
	 * it ends (client_auth_cleanup). */
	struct scram_exchange *scram;
};

struct client {
	struct list node;            /* the worker's list of its state (client_lists.h) */
	struct worker *worker;
	enum client_state state;
	uint64_t id;
	struct stream *io;
	struct event *login_ev;       /* reads until authenticated (client.c: login input) */
	union {                       /* address of the client, for its login line */
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	usec_t connected_at;
	bool ssl_asked, gssenc_asked; /* each may be asked once, as PostgreSQL allows */
	bool tls_direct;              /* TLS from its first byte, no SSLRequest (client_tls.h) */
	/* proxy/client_limits.h: why it is refused at accept (enum client_refusal), whether
	 * it waits for its startup packet meanwhile (in worker->refusing), and a failed
	 * login's delayed answer */
	unsigned char refusal;
	bool refusal_held;
	struct list refuse_node;
	struct event *delay_ev;

	/* from the startup packet: one allocation, c->user's (client.c: keep_names) */
	char *user;
	char *database;
	char *application_name;
	struct param_set params;     /* session parameters the client expects */
	uint64_t param_sig;          /* session_params_signature(&params); 0: recompute */
	bool values_reported;        /* told the server's spelling of its values once */

	/* authentication */
	enum auth_method auth_method;
	struct client_login *login;  /* while it logs in, else NULL (below) */
	/* While client_authenticated runs after a SCRAM proof: the user's keys (on the
	 * stack of client_auth.c's handle_scram_final), for SCRAM pass-through; else NULL. */
	const struct scram_keys *scram_keys;

	/* after login */
	struct pool *pool;
	/* Queued for a server of c->pool (kind WAIT_SERVER) or at its application's gate
	 * (WAIT_APP): never both at once, as request_server passes the gate first (client.c:
	 * leave_queue). */
	struct pool_waiter waiter;
	struct app_gate *gate;       /* its application's concurrency limit, if any */
	struct app_gate *app_gate;   /* its application's gate, joined (app_gate_join) */
	/* This worker's statistics of its pool and application (pool/stats.h), set once
	 * it is logged in (client_stats_attach); its state counts in their gauges. */
	struct stats_block *pool_stats, *app_stats;
	usec_t wait_start;           /* when it queued (application slot or server), 0: not */
	usec_t linked_at;            /* when it got its server, if it had to wait */
	uint64_t prev_server_id;     /* the server of its last link (proxy/seq_state.h) */
	usec_t last_active;          /* last time the client sent something */
	struct server *server;       /* linked server while CL_ACTIVE */
	struct relay *relay;         /* the link's (proxy/relay.h): set exactly while server is */
	/* Its named prepared statements in transaction pooling (proxy/prepared.h), made at
	 * the first one; prep_mode: enum prep_mode of the current link. */
	struct prep_client *prep;
	uint8_t prep_mode;
	bool prep_hold;              /* its input waits for the server's replies */
	/* pin_policy (proxy/pin.h): why it keeps its server until it leaves (enum
	 * pin_reason, 0: it does not); a notice was sent (warn); a refused Parse: its
	 * messages up to the next Sync are dropped (error). */
	uint8_t pin_reason;
	bool pin_warned;
	bool pin_skip;
	/* A RESET of a startup value was sent with the value set back after it
	 * (proxy/startup_reset.h): which of its answer the server is at, 0: none. */
	uint8_t startup_reset;
	bool has_token;              /* holds one of the gate's tokens */
	/* SET / RESET carried (proxy/set_carry.h): those of the Query in flight, kept until
	 * its ReadyForQuery says whether they took effect (NULL: none); and the client's
	 * startup parameters, what RESET goes back to (every pool mode; NULL until the
	 * welcome, or out of memory). */
	struct set_pending *set_pending;
	struct set_pending *set_block; /* SETs of the open transaction block, until it ends */
	struct param_set *startup_params;
	struct cancel_key cancel;    /* its BackendKeyData (proxy/cancel_keys.h) */
	struct admin_session *admin; /* a client of the admin console (proxy/admin.h), else NULL */
};

void client_accept(struct worker *w, evutil_socket_t fd, const struct sockaddr *addr, int addrlen);
/* Closes clients of w that have not logged in within the login timeout, and those
 * idle past client_idle_timeout or idle in a transaction past
 * idle_transaction_timeout (tick). */
void client_expire(struct worker *w, usec_t now);
/* Sends a FATAL ErrorResponse, then closes once it is flushed (or after a grace
 * period if the client does not read).  Logs reason. */
void client_fail(struct client *c, const char *sqlstate, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Shutdown: a best-effort FATAL 57P01 written at once (the event loop has ended):
 * straight to the socket, or through the TLS session of a TLS client (never raw bytes
 * into a TLS stream), then client_close. */
void client_shutdown(struct client *c);
/* Closes without a message (the client left or the socket failed). */
void client_close(struct client *c, const char *reason);
/* Authentication finished successfully: pick the pool and welcome the client. */
void client_authenticated(struct client *c);
/* Transaction/statement pooling: the server answered everything the client sent.
 * Between transactions ('I') the server goes back; a statement that opened a
 * transaction block in statement pooling ends the client (25000). */
void client_transaction_done(struct client *c);
/* The linked server's side of the relay failed or ended (after a FATAL it relayed,
 * the client is closed without a message of corral's). */
void client_server_lost(struct client *c, const char *reason);
/* Transaction pooling: the server spoke while the client was between transactions
 * (a FATAL as its backend was ended): the server is closed, the client stays idle. */
void client_server_gone_between(struct client *c, const char *why);
/* The server sent what no request asked for: it is closed, never reused, and the
 * client gets 08P01. */
void client_server_out_of_step(struct client *c, const char *why);
/* A CancelRequest reached worker w (on a fresh connection, or from another worker's
 * inbox): the client with that key, if any, has its query cancelled. */
void client_cancel_request(struct worker *w, uint32_t pid, uint32_t secret);
/* Frees a closed client (the worker's reaper). */
void client_free(struct client *c);

const char *client_state_name(enum client_state st);
/* peer=host:port user="..." db="..." (escaped) into buf, for log lines about c; returns buf. */
const char *client_log_who(const struct client *c, char *buf, size_t len);

/* Pool hooks (pool/pool.h) for waiters embedded in clients. */
extern const struct pool_hooks client_pool_hooks;

#endif
