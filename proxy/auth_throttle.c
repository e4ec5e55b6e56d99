#include "proxy/auth_throttle.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROBE 8 /* slots looked at per key; the oldest of them is evicted when all are taken */

struct entry {
	bool used;
	uint8_t addr[16]; /* IPv6, or IPv4 mapped into it */
	int count;
	usec_t window_start, last_seen, refused_until;
};

struct auth_throttle {
	pthread_mutex_t lock;
	size_t mask;
	struct entry *slots;
};

struct auth_throttle *auth_throttle_new(size_t slots)
{
	size_t n = PROBE;
	while (n < slots)
		n *= 2;
	struct auth_throttle *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots || pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t->slots);
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	return t;
}

void auth_throttle_free(struct auth_throttle *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->slots);
	free(t);
}

/* false for an address family without an address (nothing to count). */
static bool key_of(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

static size_t hash_of(const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (size_t)h;
}

/* An entry whose window has passed and that is not refused counts for nothing. */
static bool stale(const struct entry *e, usec_t now)
{
	return !e->used ||
	       (now - e->window_start >= (usec_t)AUTH_THROTTLE_WINDOW_SEC * USEC_PER_SEC &&
		now >= e->refused_until);
}

/* addr's entry, or NULL; with create, a fresh one (evicting if need be). */
static struct entry *lookup(struct auth_throttle *t, const uint8_t key[16], usec_t now, bool create)
{
	size_t h = hash_of(key);
	struct entry *free_slot = NULL, *oldest = NULL;
	for (size_t i = 0; i < PROBE; i++) {
		struct entry *e = &t->slots[(h + i) & t->mask];
		if (e->used && memcmp(e->addr, key, 16) == 0)
			return e;
		if (stale(e, now)) {
			if (!free_slot)
				free_slot = e;
		} else if (!oldest || e->last_seen < oldest->last_seen) {
			oldest = e;
		}
	}
	if (!create)
		return NULL;
	struct entry *e = free_slot ? free_slot : oldest;
	memset(e, 0, sizeof(*e));
	e->used = true;
	memcpy(e->addr, key, 16);
	e->window_start = now;
	return e;
}

enum auth_throttle_verdict auth_throttle_failed(struct auth_throttle *t,
						const struct sockaddr *addr, usec_t now,
						int delay_after, int max, int *count)
{
	uint8_t key[16];
	if (count)
		*count = 0;
	if (!key_of(addr, key))
		return THROTTLE_ANSWER;
	pthread_mutex_lock(&t->lock);
	struct entry *e = lookup(t, key, now, true);
	if (now - e->window_start >= (usec_t)AUTH_THROTTLE_WINDOW_SEC * USEC_PER_SEC) {
		e->window_start = now;
		e->count = 0;
	}
	e->count++;
	e->last_seen = now;
	int n = e->count;
	enum auth_throttle_verdict v = THROTTLE_ANSWER;
	if (max > 0 && n >= max) {
		e->refused_until = now + (usec_t)AUTH_THROTTLE_REFUSE_SEC * USEC_PER_SEC;
		v = THROTTLE_REFUSE;
	} else if (delay_after > 0 && n > delay_after) {
		v = THROTTLE_DELAY;
	}
	pthread_mutex_unlock(&t->lock);
	if (count)
		*count = n;
	return v;
}

bool auth_throttle_refused(struct auth_throttle *t, const struct sockaddr *addr, usec_t now)
{
	uint8_t key[16];
	if (!key_of(addr, key))
		return false;
	pthread_mutex_lock(&t->lock);
	struct entry *e = lookup(t, key, now, false);
	bool refused = e && now < e->refused_until;
	pthread_mutex_unlock(&t->lock);
	return refused;
}

size_t auth_throttle_size(struct auth_throttle *t)
{
	size_t n = 0;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i <= t->mask; i++)
		n += t->slots[i].used;
	pthread_mutex_unlock(&t->lock);
	return n;
}
