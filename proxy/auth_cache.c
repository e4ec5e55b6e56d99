/*
 * The auth_query cache: an array searched linearly under one mutex.  A lookup is one
 * per login of a user not in auth_file and the array is bounded (AUTH_CACHE_MAX), so
 * a scan costs far less than the PBKDF2 or the round trip it saves; a hash table can
 * come when someone has ten thousand such users.
 */
#include "proxy/auth_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char *key, *user;
	bool found;
	struct user_secret sec; /* when found */
	usec_t expires;
};

/* A lookup running on one worker, and the other workers whose clients wait for it. */
struct claim {
	char *sig, *key, *user;
	int owner;
	usec_t since;
	struct auth_cache_waiters others;
};

struct auth_cache {
	pthread_mutex_t lock;
	char *sig;
	uint64_t gen;
	struct entry *v;
	size_t n, cap;
	struct claim *claims; /* few: one per user being looked up right now */
	size_t n_claims;
};

struct auth_cache *auth_cache_new(void)
{
	struct auth_cache *ac = calloc(1, sizeof(*ac));
	if (ac && pthread_mutex_init(&ac->lock, NULL) != 0) {
		free(ac);
		return NULL;
	}
	return ac;
}

static void entry_free(struct entry *e)
{
	free(e->key);
	free(e->user);
	if (e->found)
		auth_secret_free(&e->sec);
	memset(e, 0, sizeof(*e));
}

static void drop_all(struct auth_cache *ac)
{
	for (size_t i = 0; i < ac->n; i++)
		entry_free(&ac->v[i]);
	ac->n = 0;
}

static void claim_free(struct claim *cl)
{
	free(cl->sig);
	free(cl->key);
	free(cl->user);
}

void auth_cache_free(struct auth_cache *ac)
{
	if (!ac)
		return;
	for (size_t i = 0; i < ac->n_claims; i++)
		claim_free(&ac->claims[i]);
	free(ac->claims);
	drop_all(ac);
	free(ac->v);
	free(ac->sig);
	pthread_mutex_destroy(&ac->lock);
	free(ac);
}

/* Whether entries made under (sig, gen) may be read and written; a newer
 * configuration with another signature drops what the old one cached. */
static bool adopt(struct auth_cache *ac, const char *sig, uint64_t gen)
{
	if (ac->sig && strcmp(ac->sig, sig) == 0) {
		if (gen > ac->gen)
			ac->gen = gen;
		return true;
	}
	if (ac->sig && gen < ac->gen)
		return false; /* a lookup of a configuration already replaced */
	char *copy = strdup(sig);
	if (!copy)
		return false;
	drop_all(ac);
	free(ac->sig);
	ac->sig = copy;
	ac->gen = gen;
	return true;
}

static struct entry *find(struct auth_cache *ac, const char *key, const char *user)
{
	for (size_t i = 0; i < ac->n; i++)
		if (strcmp(ac->v[i].user, user) == 0 && strcmp(ac->v[i].key, key) == 0)
			return &ac->v[i];
	return NULL;
}

static void remove_at(struct auth_cache *ac, size_t i)
{
	entry_free(&ac->v[i]);
	ac->v[i] = ac->v[--ac->n];
}

/* auth_cache_get under the lock. */
static enum auth_cache_result get_locked(struct auth_cache *ac, const char *sig, uint64_t gen,
					 const char *key, const char *user, usec_t now,
					 struct user_secret *out)
{
	struct entry *e = adopt(ac, sig, gen) ? find(ac, key, user) : NULL;
	if (e && e->expires <= now) {
		remove_at(ac, (size_t)(e - ac->v));
		e = NULL;
	}
	if (e && !e->found)
		return AUTH_CACHE_NOT_FOUND;
	if (e && auth_secret_copy(&e->sec, out))
		return AUTH_CACHE_FOUND;
	return AUTH_CACHE_MISS;
}

enum auth_cache_result auth_cache_get(struct auth_cache *ac, const char *sig, uint64_t gen,
				      const char *key, const char *user, usec_t now,
				      struct user_secret *out)
{
	pthread_mutex_lock(&ac->lock);
	enum auth_cache_result r = get_locked(ac, sig, gen, key, user, now, out);
	pthread_mutex_unlock(&ac->lock);
	return r;
}

static struct claim *find_claim(struct auth_cache *ac, const char *sig, const char *key,
				const char *user)
{
	for (size_t i = 0; i < ac->n_claims; i++) {
		struct claim *cl = &ac->claims[i];
		if (strcmp(cl->user, user) == 0 && strcmp(cl->key, key) == 0 &&
		    strcmp(cl->sig, sig) == 0)
			return cl;
	}
	return NULL;
}

static void set_bit(struct auth_cache_waiters *w, int worker)
{
	if (worker >= 0 && worker < AUTH_CACHE_WORKERS)
		w->bits[worker / 64] |= 1ULL << (worker % 64);
}

enum auth_cache_result auth_cache_get_or_claim(struct auth_cache *ac, const char *sig, uint64_t gen,
					       const char *key, const char *user, usec_t now,
					       int worker, usec_t stale_after,
					       struct user_secret *out)
{
	pthread_mutex_lock(&ac->lock);
	enum auth_cache_result r = get_locked(ac, sig, gen, key, user, now, out);
	if (r != AUTH_CACHE_MISS)
		goto out;
	struct claim *cl = find_claim(ac, sig, key, user);
	if (cl && cl->owner != worker && now - cl->since < stale_after) {
		set_bit(&cl->others, worker);
		r = AUTH_CACHE_PENDING;
		goto out;
	}
	if (cl) { /* stale, or ours: ours now, and those waiting still hear */
		cl->owner = worker;
		cl->since = now;
		r = AUTH_CACHE_CLAIMED;
		goto out;
	}
	struct claim *v = realloc(ac->claims, (ac->n_claims + 1) * sizeof(*v));
	if (!v)
		goto out;
	ac->claims = v;
	struct claim c = {.sig = strdup(sig),
			  .key = strdup(key),
			  .user = strdup(user),
			  .owner = worker,
			  .since = now};
	if (!c.sig || !c.key || !c.user) {
		claim_free(&c);
		goto out;
	}
	ac->claims[ac->n_claims++] = c;
	r = AUTH_CACHE_CLAIMED;
out:
	pthread_mutex_unlock(&ac->lock);
	return r;
}

/* Room for one more: the expired go, then (full) the one that expires first. */
static bool make_room(struct auth_cache *ac, usec_t now)
{
	for (size_t i = 0; i < ac->n;)
		if (ac->v[i].expires <= now)
			remove_at(ac, i);
		else
			i++;
	if (ac->n >= AUTH_CACHE_MAX) {
		size_t first = 0;
		for (size_t i = 1; i < ac->n; i++)
			if (ac->v[i].expires < ac->v[first].expires)
				first = i;
		remove_at(ac, first);
	}
	if (ac->n < ac->cap)
		return true;
	size_t cap = ac->cap ? ac->cap * 2 : 16;
	struct entry *v = realloc(ac->v, cap * sizeof(*v));
	if (!v)
		return false;
	ac->v = v;
	ac->cap = cap;
	return true;
}

/* auth_cache_put under the lock. */
static bool put_locked(struct auth_cache *ac, const char *sig, uint64_t gen, const char *key,
		       const char *user, const struct user_secret *sec, usec_t now, usec_t ttl)
{
	if (ttl <= 0 || !adopt(ac, sig, gen))
		return false;
	struct entry *old = find(ac, key, user);
	if (old)
		remove_at(ac, (size_t)(old - ac->v));
	if (!make_room(ac, now))
		return false;
	struct entry e = {.key = strdup(key), .user = strdup(user), .expires = now + ttl};
	e.found = sec != NULL;
	if (!e.key || !e.user || (sec && !auth_secret_copy(sec, &e.sec))) {
		e.found = false;
		entry_free(&e);
		return false;
	}
	ac->v[ac->n++] = e;
	return true;
}

bool auth_cache_put(struct auth_cache *ac, const char *sig, uint64_t gen, const char *key,
		    const char *user, const struct user_secret *sec, usec_t now, usec_t ttl)
{
	pthread_mutex_lock(&ac->lock);
	bool ok = put_locked(ac, sig, gen, key, user, sec, now, ttl);
	pthread_mutex_unlock(&ac->lock);
	return ok;
}

void auth_cache_finish(struct auth_cache *ac, const char *sig, uint64_t gen, const char *key,
		       const char *user, const struct user_secret *sec, bool failed, usec_t now,
		       usec_t ttl, struct auth_cache_waiters *others)
{
	memset(others, 0, sizeof(*others));
	pthread_mutex_lock(&ac->lock);
	if (!failed)
		(void)put_locked(ac, sig, gen, key, user, sec, now, ttl);
	struct claim *cl = find_claim(ac, sig, key, user);
	if (cl) {
		*others = cl->others;
		claim_free(cl);
		*cl = ac->claims[--ac->n_claims];
	}
	pthread_mutex_unlock(&ac->lock);
}

size_t auth_cache_size(struct auth_cache *ac)
{
	pthread_mutex_lock(&ac->lock);
	size_t n = ac->n;
	pthread_mutex_unlock(&ac->lock);
	return n;
}
