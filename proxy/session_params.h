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

/* A 64-bit signature of the set (FNV-1a over names, case-folded, and values, in
 * order); never 0.  Equal sets of equal order give equal signatures, so a server
 * brought to one client's parameters needs no check for the next such client. */
uint64_t session_params_signature(const struct param_set *ps);

/*
 * The query that brings s to the client's values, or NULL when s has them all
 * already (or allocation failed: *oom set).  Caller frees.
 */
char *session_params_sync_query(const struct param_set *wanted, const struct server *s, bool *oom);

/* Reported parameters a client can change and a pooled server must match
 * (client_encoding, DateStyle, TimeZone, ...). */
bool session_params_tracked(const char *name);
/* Adds, for each tracked parameter the client did not ask for, the pool's default. */
void session_params_add_defaults(struct param_set *wanted, const struct param_set *pool_params);

/* Records on s what a successful sync query set (for parameters it does not report). */
void session_params_applied(const struct param_set *wanted, struct server *s);

#endif
