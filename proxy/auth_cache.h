/*
 * What auth_query found, per (lookup key, user), for auth_query_cache_ttl seconds
 * (proxy/auth_query.h).  One cache for the process, shared by the workers under a
 * mutex: a user's secret is asked of PostgreSQL once per TTL whichever worker the
 * client lands on.  "No such user" is kept too, so a stream of logins as a name that
 * does not exist costs PostgreSQL one query per TTL, not one per login.
 *
 * The entries belong to one configuration of the lookup (auth_user, auth_query,
 * auth_dbname: the caller's signature string) and its generation (the snapshot's): a
 * newer generation with another signature drops every entry (RELOAD changed the
 * query), an older one is not cached (a lookup started before the reload).  Pure: no
 * I/O, the clock is the caller's, so it is unit-tested.
 */
#ifndef CORRAL_PROXY_AUTH_CACHE_H
#define CORRAL_PROXY_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/macros.h"
#include "proxy/auth_file.h"

/* Entries at most; past it the expired go first, then the one closest to expiry. */
#define AUTH_CACHE_MAX 10000

struct auth_cache;

enum auth_cache_result {
	AUTH_CACHE_MISS,      /* not cached (or expired): ask PostgreSQL */
	AUTH_CACHE_FOUND,     /* *out is a copy of the secret (auth_secret_free it) */
	AUTH_CACHE_NOT_FOUND, /* PostgreSQL said there is no such user (or no password) */
	/* auth_cache_get_or_claim only: */
	AUTH_CACHE_CLAIMED, /* not cached: the caller's worker runs the lookup */
	AUTH_CACHE_PENDING, /* another worker runs it and will tell the caller's */
};

/* Workers waiting for another's lookup, as a bit set (pool/shared.h: MAX_WORKERS). */
#define AUTH_CACHE_WORKERS 256
struct auth_cache_waiters {
	uint64_t bits[AUTH_CACHE_WORKERS / 64];
};

struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *ac);

/* key: where the lookup runs (database and auth_user, the caller's spelling). */
enum auth_cache_result auth_cache_get(struct auth_cache *ac, const char *sig, uint64_t gen,
				      const char *key, const char *user, usec_t now,
				      struct user_secret *out);
/* Keeps sec (copied; NULL: no such user) until now + ttl.  ttl 0 keeps nothing.
 * False when not kept (ttl 0, an older generation, out of memory). */
bool auth_cache_put(struct auth_cache *ac, const char *sig, uint64_t gen, const char *key,
		    const char *user, const struct user_secret *sec, usec_t now, usec_t ttl);
size_t auth_cache_size(struct auth_cache *ac);

/*
 * One lookup per user in the process: auth_cache_get, and on a miss either a claim
 * for worker (CLAIMED: run it, then auth_cache_finish) or, when another worker holds
 * a claim made less than stale_after ago, worker is put on its list (PENDING: the
 * holder tells it).  A claim older than stale_after is taken over.  Out of memory for
 * the claim: MISS (run it alone).
 */
enum auth_cache_result auth_cache_get_or_claim(struct auth_cache *ac, const char *sig, uint64_t gen,
					       const char *key, const char *user, usec_t now,
					       int worker, usec_t stale_after,
					       struct user_secret *out);
/*
 * The claimed lookup is over: unless failed, its answer is put (as auth_cache_put);
 * the claim goes, and *others gets the workers that wait for it (none if there was no
 * claim).  Under one lock, so a worker that misses the claim finds the answer.
 */
void auth_cache_finish(struct auth_cache *ac, const char *sig, uint64_t gen, const char *key,
		       const char *user, const struct user_secret *sec, bool failed, usec_t now,
		       usec_t ttl, struct auth_cache_waiters *others);

#endif
