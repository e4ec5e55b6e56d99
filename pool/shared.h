/*
 * What the workers share about pools (DESIGN.md §3): one record per (database, user)
 * with atomic counters, so a pool's limit holds across workers although each worker
 * owns its own server connections.  Records are created once under a mutex and live
 * until the process ends; counters are read and written without locks.
 */
#ifndef CORRAL_POOL_SHARED_H
#define CORRAL_POOL_SHARED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "pool/config.h"
#include "pool/params.h"
#include "pool/server_login_raw.h"
#include "pool/stats.h"

#define MAX_WORKERS 256
/* Applications without an app.NAME entry in [limits] (unlimited, or limited by
 * app_default) get a record of their own up to this many (application_name is the
 * client's to choose).  Past it, the least recently used idle one is retired to make
 * room, as pools are past max_pools; when none is idle the new name shares one
 * record, "(other)", with app_default's limit shared between the names in it (a
 * metrics system's cardinality cap). */
#define STATS_MAX_APPS 100
#define STATS_OTHER_APP "(other)"
#define CACHE_LINE 64
/* How much longer another worker's client must have waited to get a server (or an
 * application token) that a client here also wants: FIFO across workers within this
 * margin, so busy workers do not pass servers back and forth over microseconds. */
#define CROSS_WORKER_SLACK_USEC 2000

/* Servers of one database over all its users, or of one user over all databases
 * (max_db_connections, max_user_connections). */
struct server_count {
	struct server_count *next;
	bool is_user;
	char *name;
	int refs;          /* pool records naming it, under the registry lock: freed at 0 */
	atomic_int n;
	/* Set by a pool that could not log in because this count is at its limit:
	 * every worker then closes an idle server counted here to make room. */
	atomic_int starving;
};

/*
 * One worker's part of a pool or application record, written only by that worker.
 * What other workers read on every hand-over (idle servers, queue length, the oldest
 * waiter) is on a cache line of its own, and the statistics on lines of their own, so
 * no two workers write the same line and a counter bump does not evict the line other
 * workers poll.  Records hold an array of these sized to the number of workers.
 */
struct worker_slot {
	struct {
		atomic_int idle;     /* idle servers (pools) */
		atomic_int waiting;  /* queued clients */
		atomic_llong oldest; /* when the longest waiter queued, 0: none */
	} _Alignas(CACHE_LINE) pub;
	struct stats_block _Alignas(CACHE_LINE) stats;
};

struct pool_shared {
	struct pool_shared *next;
	char *db_name;                    /* the pool is (db_name, user): names outlive reloads */
	char *user;
	int home_worker;                  /* the worker that keeps min_pool_size open */
	atomic_int servers;               /* every worker's servers, from login start to close */
	struct server_count *db_servers;
	struct server_count *user_servers;
	/*
	 * Logins that fail back off (pool.c, "logins that fail"): none before retry_at, the delay
	 * doubling per failed round up to server_login_retry.  A round is the logins
	 * started after round_start: a login already under way when a failure was
	 * counted (or when a login worked) fails without doubling anything.  A login
	 * that works anywhere zeroes retry_at, failed_rounds and failing_since.
	 */
	atomic_llong retry_at;
	atomic_int failed_rounds;         /* rounds failed since a login last worked */
	atomic_llong round_start;         /* when the last round was counted or a login worked */
	atomic_llong failing_since;       /* first failure since a login last worked; 0: none */
	atomic_bool failure_passes;       /* the last failure is one clients may wait out */
	struct worker_slot *slots;        /* by worker id (registry->n_workers) */

	/* What the last login on any worker reported, so a worker whose part of the
	 * pool never logged in can still welcome clients at once. */
	pthread_mutex_t params_lock;
	bool have_params;
	struct param_set params;
	char last_error[256];             /* the last failed login's message, under params_lock */
	/* How the server spells values clients wrote otherwise ("DateStyle\x01SQL" ->
	 * "SQL, MDY"), learned from earlier links, under params_lock. */
	struct param_set spellings;
	/* Set once spellings has an entry: until then a login looks nothing up. */
	atomic_bool have_spellings;
	/* Pass-through (pool/server_login_raw.h): the user's SCRAM keys from the last
	 * client proof that worked, the auth file's md5 hash; under params_lock, memory
	 * only, cleansed when freed. */
	struct login_secret passthrough;

	/*
	 * Retiring (pool/pool_retire.c).  keep: made for a database line's own user= (set
	 * up by the operator), never retired.  A client attaches with clients + 1 and then
	 * checks retiring; the retirer sets retiring and then checks clients (both seq_cst),
	 * so one of them always sees the other and no client is ever attached to a
	 * retiring record.  A retiring record is off the registry's list (no lookup finds
	 * it) and is freed once locals (workers holding a struct pool of it), msgs (inbox
	 * messages naming it) and servers are all 0; none of them can grow again then.
	 */
	bool keep;
	atomic_bool retiring;
	atomic_int clients;               /* clients attached to it on any worker */
	atomic_int locals;
	atomic_int msgs;
	atomic_llong last_used;           /* when a client last attached or left (µs) */
};

/* One application over all workers: its concurrency limit ([limits] app.NAME; 0: none)
 * with the tokens in use, each worker's queue length and oldest waiter for FIFO
 * hand-over, and its statistics. */
struct app_shared {
	struct app_shared *next;
	char *app;
	/* [limits]; a reload or SET changes it (pool_registry_set_limits), so it is read
	 * with relaxed loads.  Tokens in use above a lowered limit drain as they end. */
	atomic_int limit;
	atomic_int active;
	struct worker_slot *slots;        /* by worker id (registry->n_workers) */
	/* Retiring, as struct pool_shared's (pool/app_gate.c lets go of a retiring
	 * record's gates).  keep: named in [limits], or "(other)": never retired.  locals:
	 * workers' gates of it; msgs: tokens passed in inbox messages. */
	bool keep;
	atomic_bool retiring;
	atomic_int clients;
	atomic_int locals;
	atomic_int msgs;
	atomic_llong last_used;
};

struct pool_registry {
	pthread_mutex_t lock;
	struct pool_shared *head;
	struct server_count *counts;
	struct app_shared *apps;
	size_t n_unlimited_apps;          /* records of applications not named in [limits] */
	struct app_shared *other_app;     /* STATS_OTHER_APP, once made */
	size_t n_pools;                   /* records in head: max_pools */
	struct pool_shared *retired;      /* retiring records, freed by pool_registry_sweep */
	struct app_shared *retired_apps;  /* the same for applications */
	size_t n_retired;                 /* records retired since start (log, tests) */
	int n_workers;
};

bool pool_registry_init(struct pool_registry *reg, int n_workers) WARN_UNUSED;
void pool_registry_free(struct pool_registry *reg);

enum registry_get_result { REG_OK, REG_FULL, REG_NOMEM };
/* The live record for (db, user), created on first use (by worker `worker`, which
 * becomes its home); keep marks a record made for a database line's own user.  With
 * max records (0: no cap) already there, the least recently used idle one is retired
 * first; *why (may be NULL) says REG_FULL when none is idle. */
struct pool_shared *pool_registry_get_ex(struct pool_registry *reg, const char *db_name,
					 const char *user, int worker, int max, bool keep,
					 enum registry_get_result *why);
static inline struct pool_shared *pool_registry_get(struct pool_registry *reg, const char *db_name,
						    const char *user, int worker)
{
	return pool_registry_get_ex(reg, db_name, user, worker, 0, false, NULL);
}

/* Whether no client, queued client or busy server holds ps on any worker (its idle
 * servers do not count): it may be retired.  Read without the lock: a hint, made
 * sure by the clients/retiring handshake. */
bool pool_shared_idle(const struct pool_shared *ps, int n_workers);
/* Attaches a client to ps (clients + 1, last_used now); false if ps is retiring (the
 * caller then needs the live record, pool_registry_get). */
bool pool_shared_attach(struct pool_shared *ps);
void pool_shared_detach(struct pool_shared *ps);
/* Frees the retiring records nothing holds any more (any thread; takes the lock). */
void pool_registry_sweep(struct pool_registry *reg);

void pool_shared_set_params(struct pool_shared *ps, const struct param_set *params);
/* Copies the shared parameters into out; false if no login has reported any yet. */
bool pool_shared_get_params(struct pool_shared *ps, struct param_set *out);
/* Remembers that the server spells value `written` of parameter name as `spelled`. */
void pool_shared_learn_spelling(struct pool_shared *ps, const char *name, const char *written,
				const char *spelled);
/* The server's spelling of `written` for name, copied into out; false if unknown. */
bool pool_shared_spelling(struct pool_shared *ps, const char *name, const char *written, char *out,
			  size_t outlen);
void pool_shared_set_error(struct pool_shared *ps, const char *msg);
void pool_shared_get_error(struct pool_shared *ps, char *out, size_t outlen);
/* The SCRAM keys a client's proof gave (SCRAM pass-through); the last one wins.  Keys
 * (or a hash) other than the pool had end its login backoff (retry_at). */
void pool_shared_set_scram_keys(struct pool_shared *ps, const struct scram_keys *keys);
/* The auth file's (or auth_query's) md5 hash of the user ("md5" + 32 hex), for md5
 * pass-through. */
void pool_shared_set_md5(struct pool_shared *ps, const char *md5_hash);
/* A copy of what there is in *out (the caller cleanses it); false if nothing. */
bool pool_shared_get_passthrough(struct pool_shared *ps, struct login_secret *out) WARN_UNUSED;

/* The record for application app with the given limit (0: none), created on first
 * use; named: app has its own app.NAME entry in [limits].  Past STATS_MAX_APPS
 * applications not named, the least recently used idle one is retired first; if none
 * is idle, the shared STATS_OTHER_APP record (its limit set to `limit`,
 * app_default's).  The record is counted for the caller's gate (locals + 1).  NULL
 * when out of memory. */
struct app_shared *pool_registry_app_ex(struct pool_registry *reg, const char *app, int limit,
					bool named);
/* The same, an application with a limit taken as named (tests). */
static inline struct app_shared *pool_registry_app(struct pool_registry *reg, const char *app,
						   int limit)
{
	return pool_registry_app_ex(reg, app, limit, limit > 0);
}

/* Attaches a client to a (clients + 1); false if a is retiring. */
bool app_shared_attach(struct app_shared *a);
void app_shared_detach(struct app_shared *a);

/* Servers of database db_name (NULL: of every database) over all users and workers,
 * from login start to close: what PAUSE waits to see at 0. */
int pool_registry_db_servers(struct pool_registry *reg, const char *db_name);

/* Gives every application record the limit cfg sets for it (a reload, SET). */
void pool_registry_set_limits(struct pool_registry *reg, const struct corral_config *cfg);

/* Queued clients over every worker's slot. */
int shared_sum_waiting(const struct worker_slot *slots, int n_workers);
/* The worker other than me whose oldest waiter is set and earlier than before (and
 * than every other's), or -1. */
int shared_oldest_worker(const struct worker_slot *slots, int n_workers, int me, long long before);

enum slot_result { SLOT_TAKEN, SLOT_POOL_FULL, SLOT_DB_FULL, SLOT_USER_FULL };
/* Takes one server slot if the pool has fewer than pool_limit servers, its database
 * fewer than db_limit and its user fewer than user_limit (0: no limit). */
enum slot_result pool_shared_take_slot(struct pool_shared *ps, int pool_limit, int db_limit,
				       int user_limit) WARN_UNUSED;
void pool_shared_put_slot(struct pool_shared *ps);
/* Gives back the pool's share of a slot ahead of closing an idle server, if the
 * pool keeps more than keep servers; the close then gives back the rest
 * (pool_shared_put_slot_rest).  Two workers can so never both close the server
 * that would take the pool below min_pool_size. */
bool pool_shared_claim_close(struct pool_shared *ps, int keep) WARN_UNUSED;
void pool_shared_put_slot_rest(struct pool_shared *ps);

/* A worker other than me with an idle server, or -1. */
int pool_shared_worker_with_idle(const struct pool_shared *ps, int n_workers, int me);
/* The worker other than me whose longest waiter queued before `before` (and before
 * every other worker's), or -1: FIFO across workers. */
static inline int pool_shared_worker_waiting_longer(const struct pool_shared *ps, int n_workers,
						    int me, long long before)
{
	return shared_oldest_worker(ps->slots, n_workers, me, before);
}

#endif
