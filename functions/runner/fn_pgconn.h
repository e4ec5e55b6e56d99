/*
 * One PostgreSQL connection on the event loop, for a trigger that talks to the database
 * (the queue): libpq in non-blocking mode, driven by an event on PQsocket, and a FIFO of
 * statements sent one at a time.  Each statement is sent with PQsendQueryParams (unnamed,
 * text parameters, autocommit): what a connection through corral in transaction pooling
 * mode may run, as it holds no session state.
 *
 * The connection is made at once and made again whenever it is lost, after a backoff
 * (250 ms, doubling to 30 s, back to 250 ms once a connection succeeds).  libpq enforces
 * connect_timeout only in blocking calls, so connecting gets 10 s here; a statement gets
 * 30 s, after which it costs the connection (no statement_timeout may be set through
 * corral).  Everything is logged as event=NAME_..., NAME being the name given at creation:
 * NAME_connected, NAME_connect_failed, NAME_connection_lost, NAME_statement_timeout,
 * NAME_notice (debug); the server sees application_name corral-fn-NAME.
 *
 * A lost connection takes the running statement with it (it may or may not have run);
 * what waits in the FIFO waits for the next connection.  How the running one ends is
 * the kind it was submitted with (enum fn_pgconn_kind).
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_PGCONN_H
#define CORRAL_FUNCTIONS_RUNNER_FN_PGCONN_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "common/list.h"

struct event_base;
struct fn_pgconn;

enum fn_pgconn_kind {
	FN_PGCONN_ONCE,   /* running when the connection is lost: ends with an error (it may
			   * have run or not) */
	FN_PGCONN_RESEND, /* idempotent: running when the connection is lost, it goes back to
			   * the head of the FIFO for the next one; ends with an error only once
			   * stopped */
	FN_PGCONN_SETUP,  /* the connection's own, from the connected callback: sent before
			   * every other statement waiting; a lost connection ends it with an
			   * error, waiting or running */
};

struct fn_pgconn_stmt;
typedef void fn_pgconn_done_fn(struct fn_pgconn_stmt *st, PGresult *res, const char *error);

/*
 * A statement, owned by the caller (typically inside the object it is about), which
 * must keep it and what it points to unchanged from fn_pgconn_submit() to done.  done
 * gets res (freed once done returns) or, when the statement could not be run, NULL and
 * why (never both NULL).  done may free st, submit statements, or call fn_pgconn_drop().
 */
struct fn_pgconn_stmt {
	const char *sql;
	int n_params;
	const char *const *params; /* n_params texts (NULL: SQL NULL) */
	fn_pgconn_done_fn *done;
	/* fn_pgconn's */
	struct list link;
	enum fn_pgconn_kind kind;
};

/* False when dsn does not parse.  Check before fn_pgconn_new(): libpq's parse errors
 * quote the text, password included, and would reach the log. */
bool fn_pgconn_dsn_usable(const char *dsn);

/*
 * Starts connecting to dsn (a conninfo string or URL); NULL when memory runs out.
 * connected(arg) runs on every new connection before anything is sent on it, for its
 * FN_PGCONN_SETUP statements; what it submits is sent once it returns.  name is kept
 * (a string literal, typically).
 */
struct fn_pgconn *fn_pgconn_new(struct event_base *base, const char *dsn, const char *name,
				void (*connected)(void *arg), void *arg);

/* Queues st.  Once fn_pgconn_stop() has found no connection, st ends at once: done runs
 * before this returns. */
void fn_pgconn_submit(struct fn_pgconn *pc, struct fn_pgconn_stmt *st, enum fn_pgconn_kind kind);

/* Takes back st, submitted and not done yet, unless it is already running: true when it
 * was taken back (done will not run). */
bool fn_pgconn_withdraw(struct fn_pgconn *pc, struct fn_pgconn_stmt *st);

/* True when connected: submitted statements are sent now rather than after a connect. */
bool fn_pgconn_ready(const struct fn_pgconn *pc);

/* Closes the connection as though it were lost, logged as event=NAME_<event> with why,
 * and reconnects after the backoff (a setup statement that failed, say). */
void fn_pgconn_drop(struct fn_pgconn *pc, const char *event, const char *why);

/*
 * No reconnecting from now on, and no resending.  A connection being made or in use goes
 * on serving the FIFO; without one (or once it is lost) every statement not done ends
 * with an error, and so does any submitted later.
 */
void fn_pgconn_stop(struct fn_pgconn *pc);

/* Closes the connection; statements not done are forgotten (done does not run). */
void fn_pgconn_free(struct fn_pgconn *pc);

#endif
