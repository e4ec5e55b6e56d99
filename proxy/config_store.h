/*
 * The configuration in force, published to every worker (DESIGN.md §10).
 *
 * A snapshot is the INI file and the auth file as read at one moment, immutable once
 * published.  A reload (or SET) builds a new one and publishes it: the store's current
 * pointer is swapped under a mutex, and each worker adopts the new snapshot through its
 * inbox (proxy/control.c), so a worker reads its configuration as a plain pointer
 * (w->cfg) with no lock or atomic on the hot path.  A snapshot is reference counted: the
 * store holds one reference, each worker one for the snapshot it runs on, and any other
 * reader (statistics from another thread) one while it reads; the last release frees it.
 * Nothing else may keep a pointer into a snapshot: pools copy what they need.
 */
#ifndef CORRAL_PROXY_CONFIG_STORE_H
#define CORRAL_PROXY_CONFIG_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/macros.h"
#include "pool/config.h"
#include "proxy/auth_file.h"
#include "proxy/hba.h"

struct snapshot {
	struct corral_config cfg;
	struct auth_file auth;
	struct hba_rules hba; /* auth_type = hba's rules; empty otherwise */
	SSL_CTX *client_tls;  /* proxy/client_tls.h; NULL: TLS off */
	uint64_t generation;  /* 1 for the configuration read at start, +1 per publish */
	atomic_int refs;
};

struct config_store {
	pthread_mutex_t lock;
	struct snapshot *current;
	uint64_t generation;
};

/* A snapshot taking ownership of *cfg and *auth (both left zeroed), with no reference
 * yet and no hba rules (the caller moves them into s->hba); NULL when out of memory
 * (then *cfg and *auth are freed). */
struct snapshot *snapshot_new(struct corral_config *cfg, struct auth_file *auth);
/*
 * Reads the configuration file at path and the auth file (and, for auth_type = hba,
 * auth_hba_file) it names into a new snapshot
 * (one reference, not yet published), or NULL with every error in err: the
 * configuration's "FILE:LINE: KEY: why" lines (joined by '\n'), or the auth file's.
 */
struct snapshot *snapshot_load(const char *path, char *err, size_t errlen);
/* Adds a reference (the caller already holds one). */
void snapshot_hold(struct snapshot *s);
/* Drops a reference; the last one frees the snapshot.  Any thread. */
void snapshot_release(struct snapshot *s);

/* The store publishes first (it takes the one reference snapshot_new's caller had). */
bool config_store_init(struct config_store *st, struct snapshot *first) WARN_UNUSED;
void config_store_free(struct config_store *st);
/* The snapshot in force, with a reference for the caller (snapshot_release it). */
struct snapshot *config_store_acquire(struct config_store *st);
/* Makes s (whose one reference the store takes) the snapshot in force; returns its
 * generation.  The previous one is released by the store (workers still hold theirs). */
uint64_t config_store_publish(struct config_store *st, struct snapshot *s);

#endif
