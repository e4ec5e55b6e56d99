/*
 * The session parameters a client asked for (startup packet, including "-c" in
 * options) and the query that gives a server connection those values before the
 * client uses it.  Values go through set_config(), which takes them as raw strings
 * exactly as PostgreSQL takes startup parameters (a SET would re-parse lists such as
 * search_path).
 */
#ifndef CORRAL_PROXY_SESSION_PARAMS_H
#define CORRAL_PROXY_SESSION_PARAMS_H

#include <stdbool.h>

#include "common/macros.h"
#include "pool/params.h"
#include "pool/server.h"
#include "proxy/pgproto.h"

/*
 * Collects the startup packet's parameters other than user, database, replication
 * and protocol options ("_pq_."), and the "-c name=value" / "--name=value" settings
 * inside options.  False with *why for a parameter name or options string that
 * PostgreSQL would reject.
 */
bool session_params_from_startup(const struct pg_startup *st, struct param_set *out,
				 const char **why) WARN_UNUSED;

/* A 64-bit signature of the set (SipHash-2-4 under a per-process secret key over
 * names, case-folded, and values, in order); never 0.  Equal sets of equal order give equal signatures, so a server
 * brought to one client's parameters is quickly seen to suit the next such client
 * (session_params_current, which then compares the sets themselves). */
uint64_t session_params_signature(const struct param_set *ps);

/*
 * The one query that brings s to the client's values, or NULL when s has them all
 * already (or allocation failed: *oom set).  Caller frees.  It first RESETs every
 * parameter corral applied for an earlier client (s->applied) that wanted leaves out,
 * back to the session default (ALTER ROLE / DATABASE settings and the login's options
 * included), then sets what differs in one SELECT set_config(...):
 *   RESET "search_path"; RESET "corral"."tenant"; SELECT pg_catalog.set_config(...), ...
 * One simple Query, so one implicit transaction and one ReadyForQuery: either all of
 * it takes effect, or (error) none.
 */
char *session_params_sync_query(const struct param_set *wanted, const struct server *s, bool *oom);

/*
 * What makes a server end a client's RESET with the client's startup value (PostgreSQL
 * makes a startup-packet value the reset value; corral applies it with set_config(),
 * after which RESET goes to the server's default):
 *   SELECT pg_catalog.set_config(E'DateStyle', E'Postgres, MDY', false), ...
 * for name (NULL: RESET ALL, every one RESET ALL touches), from startup.  NULL when
 * startup has no such value (or allocation failed: *oom set).  Caller frees.
 */
char *session_params_restore_sql(const struct param_set *startup, const char *name, bool *oom);
/* Whether RESET ALL goes back to name's startup value: not for role and
 * session_authorization (RESET ALL keeps them), nor the transaction-scoped ones. */
bool session_params_restorable(const char *name);

/* Reported parameters a client can change and a pooled server must match
 * (client_encoding, DateStyle, TimeZone, ...). */
bool session_params_tracked(const char *name);
/* Adds, for each tracked parameter the client did not ask for, the pool's default. */
void session_params_add_defaults(struct param_set *wanted, const struct param_set *pool_params);
/* Clients of a pool mostly ask for the same values: wanted, if it is last exactly (the
 * same names spelled the same, the same values, in the same order), shares last's
 * allocation (a change to either later is its own, pool/params.h); else last becomes
 * wanted, for the next client. */
void session_params_share(struct param_set *wanted, struct param_set *last);

/*
 * What s is known to have.  s->applied holds every parameter corral set on s and has
 * not reset since: after a link, exactly the set of the client linked last (the link's
 * query reset everything else).  s->param_sig is the signature of that set, 0 from any
 * ParameterStatus on (the client changed a reported parameter).
 */
/* True when s was brought to exactly wanted (signature sig) and nothing reported a
 * change since: then no query is needed, and none can be (see the .c). */
bool session_params_current(const struct server *s, const struct param_set *wanted, uint64_t sig);
/* Whether a server_reset_query drops every prepared statement (DISCARD ALL,
 * DEALLOCATE ALL). */
bool session_params_reset_discards_all(const char *reset_query);
/* The sync query for wanted is about to run on s. */
void session_params_sending(struct server *s, const struct param_set *wanted);
/* It has answered: without error, s has wanted and nothing else corral set.  With an
 * error nothing changed; returns false then if the query also reset an earlier
 * client's values (the failure may be theirs, so s is not to be reused). */
bool session_params_finished(struct server *s, bool failed);
/* s now serves a client whose set is wanted (signature sig), as the server spells it. */
void session_params_linked(struct server *s, const struct param_set *wanted, uint64_t sig);
/*
 * A static text that every predicate here reads as it reads reset_query (NULL for
 * NULL): what a reset in flight keeps, since a RELOAD may free the configuration the
 * query came from before the reset is answered.
 */
const char *session_params_reset_class(const char *reset_query);
/* Whether a server_reset_query drops the session's sequence values (DISCARD ALL). */
bool session_params_reset_discards_sequences(const char *reset_query);
/*
 * A ParameterStatus from s (body of len bytes): the server's value is recorded
 * (s->params, what the next link compares with) and its signature dropped.  *name and
 * *value point into body; false if the message is malformed.
 */
bool session_params_reported(struct server *s, const uint8_t *body, size_t len, const char **name,
			     const char **value);
/* s ran reset_query (NULL: only ROLLBACK, which undoes no session setting): forgets
 * what it reset, all of it for DISCARD ALL, all but role and session_authorization
 * for RESET ALL. */
void session_params_after_reset(struct server *s, const char *reset_query);

#endif
