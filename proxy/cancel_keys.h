/*
 * The cancel keys corral gives its clients (BackendKeyData) and finding a client by
 * one.  A key names where its client lives, so a CancelRequest that reaches any
 * worker goes to the right one: the process ID field carries the worker (bits 16-23)
 * and an instance number (bits 24-30, 0 today: several corral instances behind one
 * load balancer can each take one and pass a foreign key on); the low 16 bits and the
 * whole secret key are random.  Each worker keeps its clients' keys in a hash table of
 * its own (no lock), and secrets are compared in constant time.
 */
#ifndef CORRAL_PROXY_CANCEL_KEYS_H
#define CORRAL_PROXY_CANCEL_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"

#define CANCEL_KEY_BUCKETS 4096

struct cancel_keys {
	struct list buckets[CANCEL_KEY_BUCKETS];
};

struct cancel_key {
	struct list node; /* in its worker's bucket; empty when not registered */
	uint32_t pid, secret;
};

void cancel_keys_init(struct cancel_keys *keys);
/* Makes k a fresh key of worker worker_id (random bits from rnd) and registers it. */
void cancel_keys_issue(struct cancel_keys *keys, struct cancel_key *k, int worker_id,
		       const uint32_t rnd[2]);
/* Forgets k (harmless if it was never registered or already forgotten). */
void cancel_keys_forget(struct cancel_key *k);
/* The registered key (pid, secret), or NULL. */
struct cancel_key *cancel_keys_find(struct cancel_keys *keys, uint32_t pid, uint32_t secret);
/* Which worker issued pid. */
int cancel_key_worker(uint32_t pid);

#endif
