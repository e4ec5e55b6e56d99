/*
 * One server connection: logged in by libpq's non-blocking connect, driven by
 * libevent events on PQsocket, then handed to a stream (common/stream.h) for raw relaying
 * (DESIGN.md §5).  The PGconn is kept so PQfinish sends Terminate at the end.
 */
#ifndef CORRAL_POOL_SERVER_H
#define CORRAL_POOL_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/stream.h"
#include <event2/event.h>
#include <libpq-fe.h>

#include "common/clock.h"
#include "common/list.h"
#include "pool/params.h"

struct pool;
struct pool_waiter;

/* Each state is a list in the server's pool (SV_CLOSED: the env's dead list).
 * SV_CLOSING: Terminate sent, waiting for the backend to exit (its slot still counts). */
enum server_state { SV_LOGIN, SV_IDLE, SV_ACTIVE, SV_CLOSING, SV_CLOSED };

struct server {
	struct list node;
	enum server_state state;
	struct pool *pool;
	uint64_t id;

	PGconn *conn;               /* a libpq login (NULL with raw) */
	/* corral's own login and connection, for SCRAM pass-through (NULL with conn):
	 * socket, SSL, cancel key (pool/server_login_raw.h). */
	struct server_raw *raw;
	struct event *login_ev;     /* readiness of PQsocket during login */
	int login_fd;
	struct stream *io;    /* after login */

	usec_t created;
	usec_t state_since;
	void *owner;                /* the proxy object using it while SV_ACTIVE */
	/* The waiter it is handed to while that waiter's activation is pending
	 * (pool/activate.h): SV_ACTIVE, no owner yet. */
	struct pool_waiter *reserved_for;
	/* Work the owner has in flight on this server (a reset), freed with the server
	 * if it is torn down first (shutdown, connection lost). */
	void *job;
	void (*job_free)(void *job);
	/* The named statements prepared on it for transaction pooling (proxy/prepared.h,
	 * made at first use), freed with the server. */
	void *prepared;
	void (*prepared_free)(void *prepared);
	struct param_set params;    /* as this server last reported them */
	/* Every parameter corral set on this server for its clients (reported or not) and
	 * has not reset since; a reset query that resets them empties it. */
	struct param_set applied;
	struct param_set pending;   /* what the parameter query in flight sets */
	/* Signature of the client parameters this server was last brought to (see
	 * proxy/session_params.h); 0 when unknown or changed since. */
	uint64_t param_sig;
	/* Whose sequence values (currval, lastval) it may hold: a client's id, 0 for none
	 * (new, or after DISCARD ALL), SERVER_SEQ_MIXED once several clients used it
	 * (proxy/pin.h pin_link_sequences). */
	uint64_t seq_owner;
	bool pool_slot_returned;    /* its pool's count was given back ahead of the close */
	/* Cancel requests sent for it and not yet delivered (pool/cancel.h); the owner's
	 * cancel_done runs when the last one is, and a closed server is freed only then. */
	int cancels_in_flight;
	void (*cancel_done)(struct server *s);
	int backend_pid;
	uint64_t login_sig;         /* its pool's login_sig when it logged in */
};

#define SERVER_SEQ_MIXED UINT64_MAX

/* Starts a login for s (already on its pool's login list).  False: could not start. */
bool server_login_start(struct server *s, const char *const *keys, const char *const *vals)
	WARN_UNUSED;
/* Gives s a stream on base (after login, or on arriving at another worker). */
bool server_attach(struct server *s, struct event_base *base) WARN_UNUSED;
/* Frees s's stream, leaving the connection open (s moves to another worker). */
void server_detach(struct server *s);
/* Releases libevent and libpq resources (PQfinish sends Terminate). */
void server_teardown(struct server *s);

const char *server_state_name(enum server_state st);
/* The server's socket, -1 if it has none yet. */
int server_socket(const struct server *s);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384" into buf if the connection is TLS, else "". */
void server_tls_text(const struct server *s, char *buf, size_t len);

/*
 * libpq's message of a failed login, asked for verbose (server_login_start): a refusal
 * by the server reads "...failed: FATAL:  57P03: the database system is starting
 * up\nLOCATION:  ...".  The SQLSTATE goes to sqlstate (the last one, when libpq tried
 * several hosts), "" when the server said none (connection refused, reset, timed out);
 * the message goes to msg as libpq's default verbosity writes it: without the SQLSTATE
 * and the LOCATION line.
 */
void server_split_login_error(const char *raw, char *msg, size_t msglen, char sqlstate[6]);

#endif
