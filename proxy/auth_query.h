/*
 * auth_user + auth_query, as PgBouncer does them: the secret of a user who is not in
 * auth_file is asked of PostgreSQL.  corral logs in as auth_user (its password from
 * auth_file, or the database line's when the line logs in as auth_user, or none:
 * trust) to the client's database (or auth_dbname's), runs auth_query with the user
 * name as its one parameter ($1, never spliced into the text), and takes the first
 * row's second column as the user's secret, as if auth_file held it: a SCRAM
 * verifier, an md5 hash or a password.  No row, or a NULL password, is "no such
 * user": the client hears a wrong password's 28P01.
 *
 * Everything runs on the worker's loop (libpq non-blocking: PQconnectStartParams /
 * PQconnectPoll, PQsendQueryParams / PQconsumeInput / PQisBusy on socket events).
 * Clients asking for the same user at once share one lookup in the process: those of
 * the worker that claimed it (proxy/auth_cache.h) wait on its list, those of other
 * workers on a follower lookup (no connection) that the claiming worker tells the
 * answer through the inbox.  The answer is kept for auth_query_cache_ttl in the
 * process-wide cache.  A lookup that cannot
 * log in, fails or outlasts server_connect_timeout fails its clients with 08006 /
 * 58000 and is not cached.  A client that leaves while its lookup runs is only
 * taken off the lookup's list (the answer still fills the cache).
 */
#ifndef CORRAL_PROXY_AUTH_QUERY_H
#define CORRAL_PROXY_AUTH_QUERY_H

#include <stdbool.h>
#include <stdint.h>

struct client;
struct worker;

/* Lookups running at once per worker (one PostgreSQL connection each); more wait. */
#define AUTHQ_MAX_RUNNING 4

/*
 * c (in CL_AUTH, no auth_file secret) needs its secret and auth_query is on for its
 * database: from the cache at once (c->secret set, or left NULL for no such user;
 * returns false), or through a lookup (returns true: client_auth_resume follows, or
 * nothing if c leaves first).  method: enum hba_method the exchange will use, kept for
 * the resume.  False with nothing changed when auth_query does not apply.
 */
bool auth_query_start(struct client *c, int method);
/* c leaves: off its lookup's list, if it is on one.  Idempotent. */
void auth_query_detach(struct client *c);
/* Worker shutdown: every lookup of w is dropped (its clients are closed already). */
void auth_query_worker_shutdown(struct worker *w);

/* Process-wide counts, for SHOW AUTH_QUERY and the statistics. */
struct auth_query_counters {
	uint64_t lookups; /* queries sent to PostgreSQL */
	uint64_t found, not_found, failed;
	uint64_t cache_hits; /* logins answered from the cache */
	uint64_t shared;     /* logins that joined a lookup already running */
	uint64_t cached;     /* entries in the cache now (expired ones until pushed out) */
};
void auth_query_counters(struct auth_query_counters *out);

#endif
