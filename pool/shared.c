#include "pool/shared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include "common/clock.h"
#include "common/macros.h"

bool pool_registry_init(struct pool_registry *reg, int n_workers)
{
	reg->head = NULL;
	reg->counts = NULL;
	reg->apps = NULL;
	reg->n_unlimited_apps = 0;
	reg->other_app = NULL;
	reg->n_pools = 0;
	reg->retired = NULL;
	reg->retired_apps = NULL;
	reg->n_retired = 0;
	reg->n_workers = n_workers;
	return pthread_mutex_init(&reg->lock, NULL) == 0;
}

static void free_pool_record(struct pool_shared *ps)
{
	free(ps->user);
	free(ps->db_name);
	params_clear(&ps->params);
	params_clear(&ps->spellings);
	OPENSSL_cleanse(&ps->passthrough, sizeof(ps->passthrough));
	pthread_mutex_destroy(&ps->params_lock);
	free(ps->slots);
	free(ps);
}

static void free_app_record(struct app_shared *a)
{
	free(a->app);
	free(a->slots);
	free(a);
}

void pool_registry_free(struct pool_registry *reg)
{
	struct server_count *sc = reg->counts;
	while (sc) {
		struct server_count *next = sc->next;
		free(sc->name);
		free(sc);
		sc = next;
	}
	reg->counts = NULL;
	struct app_shared *app_lists[] = {reg->apps, reg->retired_apps};
	for (size_t i = 0; i < 2; i++) {
		struct app_shared *app = app_lists[i];
		while (app) {
			struct app_shared *next = app->next;
			free_app_record(app);
			app = next;
		}
	}
	reg->apps = reg->retired_apps = NULL;
	struct pool_shared *lists[] = {reg->head, reg->retired};
	for (size_t i = 0; i < 2; i++) {
		struct pool_shared *ps = lists[i];
		while (ps) {
			struct pool_shared *next = ps->next;
			free_pool_record(ps);
			ps = next;
		}
	}
	reg->head = reg->retired = NULL;
	pthread_mutex_destroy(&reg->lock);
}

/* One zeroed slot per worker, each on its own cache lines; NULL when out of memory. */
static struct worker_slot *new_slots(const struct pool_registry *reg)
{
	size_t size = (size_t)reg->n_workers * sizeof(struct worker_slot); /* a multiple of 64 */
	struct worker_slot *slots = aligned_alloc(CACHE_LINE, size);
	if (slots)
		memset(slots, 0, size);
	return slots;
}

/* Under reg->lock. */
static struct server_count *get_count(struct pool_registry *reg, bool is_user, const char *name)
{
	struct server_count *sc;
	for (sc = reg->counts; sc; sc = sc->next)
		if (sc->is_user == is_user && strcmp(sc->name, name) == 0)
			return sc;
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return NULL;
	sc->is_user = is_user;
	sc->name = strdup(name);
	if (!sc->name) {
		free(sc);
		return NULL;
	}
	sc->next = reg->counts;
	reg->counts = sc;
	return sc;
}

/* Under reg->lock. */
static struct pool_shared *new_pool_shared(struct pool_registry *reg, const char *db_name,
					   const char *user, int worker)
{
	struct pool_shared *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->db_name = strdup(db_name);
	ps->home_worker = worker;
	ps->user = strdup(user);
	ps->db_servers = get_count(reg, false, db_name);
	ps->user_servers = get_count(reg, true, user);
	ps->slots = new_slots(reg);
	if (!ps->db_name || !ps->user || !ps->db_servers || !ps->user_servers || !ps->slots ||
	    pthread_mutex_init(&ps->params_lock, NULL) != 0) {
		free(ps->db_name);
		free(ps->user);
		free(ps->slots);
		free(ps);
		return NULL;
	}
	ps->db_servers->refs++;
	ps->user_servers->refs++;
	atomic_init(&ps->last_used, (long long)clock_now_usec());
	ps->next = reg->head;
	reg->head = ps;
	return ps;
}

/* Under reg->lock: one record fewer names sc; a count no record names is freed (user
 * names are the client's choice, so they must not pile up either).  Its n is 0: every
 * server of those records has given its slot back. */
static void put_count(struct pool_registry *reg, struct server_count *sc)
{
	if (--sc->refs > 0)
		return;
	for (struct server_count **pp = &reg->counts; *pp; pp = &(*pp)->next)
		if (*pp == sc) {
			*pp = sc->next;
			break;
		}
	free(sc->name);
	free(sc);
}

bool pool_shared_idle(const struct pool_shared *ps, int n_workers)
{
	if (atomic_load(&ps->clients) > 0 || shared_sum_waiting(ps->slots, n_workers) > 0)
		return false;
	int idle = 0;
	for (int i = 0; i < n_workers; i++)
		idle += atomic_load(&ps->slots[i].pub.idle);
	return atomic_load(&ps->servers) <= idle;
}

bool pool_shared_attach(struct pool_shared *ps)
{
	atomic_fetch_add(&ps->clients, 1);
	if (atomic_load(&ps->retiring)) {
		atomic_fetch_sub(&ps->clients, 1);
		return false;
	}
	atomic_store(&ps->last_used, (long long)clock_now_usec());
	return true;
}

void pool_shared_detach(struct pool_shared *ps)
{
	atomic_store(&ps->last_used, (long long)clock_now_usec());
	atomic_fetch_sub(&ps->clients, 1);
}

/*
 * Under reg->lock: retires the least recently used idle record that is not kept, to
 * make room for a new one; false if none is idle.  The record leaves the list at once
 * (SHOW POOLS, lookups), and is freed by pool_registry_sweep once every worker has
 * dropped its part (pool_retire.c).
 */
static bool retire_oldest_idle(struct pool_registry *reg)
{
	/* A client may join the chosen record between the look and the mark (it then keeps
	 * it): the next oldest is tried, a few times. */
	const struct pool_shared *tried[3] = {NULL};
	for (size_t attempt = 0; attempt < ARRAY_SIZE(tried); attempt++) {
		struct pool_shared **victim = NULL;
		long long oldest = 0;
		for (struct pool_shared **pp = &reg->head; *pp; pp = &(*pp)->next) {
			struct pool_shared *ps = *pp;
			long long used = atomic_load(&ps->last_used);
			bool was_tried = false;
			for (size_t i = 0; i < attempt; i++)
				was_tried = was_tried || tried[i] == ps;
			if (ps->keep || was_tried || (victim && used >= oldest) ||
			    !pool_shared_idle(ps, reg->n_workers))
				continue;
			victim = pp;
			oldest = used;
		}
		if (!victim)
			return false;
		struct pool_shared *ps = *victim;
		atomic_store(&ps->retiring, true);
		if (atomic_load(&ps->clients) > 0) {
			atomic_store(&ps->retiring, false);
			tried[attempt] = ps;
			continue;
		}
		*victim = ps->next;
		ps->next = reg->retired;
		reg->retired = ps;
		reg->n_pools--;
		reg->n_retired++;
		return true;
	}
	return false;
}

static void sweep_apps_locked(struct pool_registry *reg);

/* Under reg->lock. */
static void sweep_locked(struct pool_registry *reg)
{
	struct pool_shared **pp = &reg->retired;
	while (*pp) {
		struct pool_shared *ps = *pp;
		if (atomic_load(&ps->locals) > 0 || atomic_load(&ps->msgs) > 0 ||
		    atomic_load(&ps->servers) > 0) {
			pp = &ps->next;
			continue;
		}
		*pp = ps->next;
		put_count(reg, ps->db_servers);
		put_count(reg, ps->user_servers);
		free_pool_record(ps);
	}
}

void pool_registry_sweep(struct pool_registry *reg)
{
	pthread_mutex_lock(&reg->lock);
	sweep_locked(reg);
	sweep_apps_locked(reg);
	pthread_mutex_unlock(&reg->lock);
}

struct pool_shared *pool_registry_get_ex(struct pool_registry *reg, const char *db_name,
					 const char *user, int worker, int max, bool keep,
					 enum registry_get_result *why)
{
	enum registry_get_result r = REG_OK;
	pthread_mutex_lock(&reg->lock);
	sweep_locked(reg);
	struct pool_shared *ps;
	for (ps = reg->head; ps; ps = ps->next)
		if (strcmp(ps->db_name, db_name) == 0 && strcmp(ps->user, user) == 0)
			break;
	if (!ps && max > 0 && reg->n_pools >= (size_t)max && !retire_oldest_idle(reg))
		r = REG_FULL;
	else if (!ps) {
		ps = new_pool_shared(reg, db_name, user, worker);
		if (ps) {
			ps->keep = keep;
			reg->n_pools++;
		} else {
			r = REG_NOMEM;
		}
	}
	/* Counted for the caller's struct pool before anyone else can see the record
	 * unheld: a new record is idle, and could otherwise be retired and freed before
	 * its maker holds it. */
	if (ps) {
		atomic_fetch_add(&ps->locals, 1);
		ps->keep = ps->keep || keep;
	}
	pthread_mutex_unlock(&reg->lock);
	if (why)
		*why = r;
	return ps;
}

/* Under reg->lock. */
static struct app_shared *new_app(struct pool_registry *reg, const char *app, int limit)
{
	struct app_shared *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->app = strdup(app);
	a->slots = new_slots(reg);
	if (!a->app || !a->slots) {
		free(a->app);
		free(a->slots);
		free(a);
		return NULL;
	}
	atomic_init(&a->limit, limit);
	atomic_init(&a->last_used, (long long)clock_now_usec());
	a->next = reg->apps;
	reg->apps = a;
	return a;
}

bool app_shared_attach(struct app_shared *a)
{
	atomic_fetch_add(&a->clients, 1);
	if (atomic_load(&a->retiring)) {
		atomic_fetch_sub(&a->clients, 1);
		return false;
	}
	atomic_store(&a->last_used, (long long)clock_now_usec());
	return true;
}

void app_shared_detach(struct app_shared *a)
{
	atomic_store(&a->last_used, (long long)clock_now_usec());
	atomic_fetch_sub(&a->clients, 1);
}

/* Under reg->lock: no client attached, none queued, no token in use or in flight. */
static bool app_idle(const struct pool_registry *reg, const struct app_shared *a)
{
	return atomic_load(&a->clients) == 0 && atomic_load(&a->active) == 0 &&
	       atomic_load(&a->msgs) == 0 && shared_sum_waiting(a->slots, reg->n_workers) == 0;
}

/* Under reg->lock: retires the least recently used idle application record that is
 * not kept (pool records' handshake, retire_oldest_idle); false if none is idle. */
static bool retire_oldest_idle_app(struct pool_registry *reg)
{
	struct app_shared **victim = NULL;
	long long oldest = 0;
	for (struct app_shared **pp = &reg->apps; *pp; pp = &(*pp)->next) {
		struct app_shared *a = *pp;
		long long used = atomic_load(&a->last_used);
		if (a->keep || (victim && used >= oldest) || !app_idle(reg, a))
			continue;
		victim = pp;
		oldest = used;
	}
	if (!victim)
		return false;
	struct app_shared *a = *victim;
	atomic_store(&a->retiring, true);
	if (atomic_load(&a->clients) > 0) {
		atomic_store(&a->retiring, false);
		return false;
	}
	*victim = a->next;
	a->next = reg->retired_apps;
	reg->retired_apps = a;
	reg->n_unlimited_apps--;
	return true;
}

/* Under reg->lock: frees the retired application records nothing holds any more. */
static void sweep_apps_locked(struct pool_registry *reg)
{
	struct app_shared **pp = &reg->retired_apps;
	while (*pp) {
		struct app_shared *a = *pp;
		if (atomic_load(&a->locals) > 0 || atomic_load(&a->msgs) > 0 ||
		    atomic_load(&a->active) > 0) {
			pp = &a->next;
			continue;
		}
		*pp = a->next;
		free_app_record(a);
	}
}

struct app_shared *pool_registry_app_ex(struct pool_registry *reg, const char *app, int limit,
					bool named)
{
	pthread_mutex_lock(&reg->lock);
	sweep_apps_locked(reg);
	struct app_shared *a;
	for (a = reg->apps; a; a = a->next)
		if (a != reg->other_app && strcmp(a->app, app) == 0)
			break;
	if (!a && !named && reg->n_unlimited_apps >= STATS_MAX_APPS &&
	    !retire_oldest_idle_app(reg)) {
		if (!reg->other_app) {
			reg->other_app = new_app(reg, STATS_OTHER_APP, limit);
			if (reg->other_app)
				reg->other_app->keep = true;
		}
		a = reg->other_app;
		/* Every name in it has app_default's limit (or none): they share it. */
		if (a)
			atomic_store_explicit(&a->limit, limit, memory_order_relaxed);
	} else if (!a) {
		a = new_app(reg, app, limit);
		if (a && !named)
			reg->n_unlimited_apps++;
		if (a)
			a->keep = named;
	}
	/* Counted for the caller's gate before anyone can see the record unheld. */
	if (a)
		atomic_fetch_add(&a->locals, 1);
	pthread_mutex_unlock(&reg->lock);
	return a;
}

int pool_registry_db_servers(struct pool_registry *reg, const char *db_name)
{
	int n = 0;
	pthread_mutex_lock(&reg->lock);
	for (struct server_count *sc = reg->counts; sc; sc = sc->next)
		if (!sc->is_user && (!db_name || strcmp(sc->name, db_name) == 0))
			n += atomic_load(&sc->n);
	pthread_mutex_unlock(&reg->lock);
	return n;
}

void pool_registry_set_limits(struct pool_registry *reg, const struct corral_config *cfg)
{
	pthread_mutex_lock(&reg->lock);
	for (struct app_shared *a = reg->apps; a; a = a->next)
		/* Names past STATS_MAX_APPS share app_default's limit in "(other)". */
		atomic_store_explicit(&a->limit,
				      a == reg->other_app ? cfg->app_default_limit
							  : config_app_limit(cfg, a->app),
				      memory_order_relaxed);
	pthread_mutex_unlock(&reg->lock);
}

void pool_shared_set_params(struct pool_shared *ps, const struct param_set *params)
{
	pthread_mutex_lock(&ps->params_lock);
	params_copy(&ps->params, params);
	ps->have_params = true;
	pthread_mutex_unlock(&ps->params_lock);
}

bool pool_shared_get_params(struct pool_shared *ps, struct param_set *out)
{
	pthread_mutex_lock(&ps->params_lock);
	bool have = ps->have_params;
	if (have)
		params_copy(out, &ps->params);
	pthread_mutex_unlock(&ps->params_lock);
	return have;
}

static void spelling_key(char *key, size_t keylen, const char *name, const char *written)
{
	snprintf(key, keylen, "%s\x01%s", name, written);
}

void pool_shared_learn_spelling(struct pool_shared *ps, const char *name, const char *written,
				const char *spelled)
{
	char key[512];
	spelling_key(key, sizeof(key), name, written);
	pthread_mutex_lock(&ps->params_lock);
	if (params_set(&ps->spellings, key, spelled)) /* a full set just stops learning */
		atomic_store(&ps->have_spellings, true);
	pthread_mutex_unlock(&ps->params_lock);
}

bool pool_shared_spelling(struct pool_shared *ps, const char *name, const char *written, char *out,
			  size_t outlen)
{
	if (!atomic_load(&ps->have_spellings))
		return false; /* most pools never learn one; skip the key and the lock */
	char key[512];
	spelling_key(key, sizeof(key), name, written);
	pthread_mutex_lock(&ps->params_lock);
	const char *v = params_get(&ps->spellings, key);
	if (v)
		snprintf(out, outlen, "%s", v);
	pthread_mutex_unlock(&ps->params_lock);
	return v != NULL;
}

void pool_shared_set_error(struct pool_shared *ps, const char *msg)
{
	pthread_mutex_lock(&ps->params_lock);
	snprintf(ps->last_error, sizeof(ps->last_error), "%s", msg);
	pthread_mutex_unlock(&ps->params_lock);
}

void pool_shared_get_error(struct pool_shared *ps, char *out, size_t outlen)
{
	pthread_mutex_lock(&ps->params_lock);
	snprintf(out, outlen, "%s", ps->last_error[0] ? ps->last_error : "server login failed");
	pthread_mutex_unlock(&ps->params_lock);
}

static bool same_scram_keys(const struct scram_keys *a, const struct scram_keys *b)
{
	return a->iterations == b->iterations && a->salt_len == b->salt_len &&
	       memcmp(a->salt, b->salt, a->salt_len) == 0 &&
	       memcmp(a->client_key, b->client_key, sizeof(a->client_key)) == 0 &&
	       memcmp(a->stored_key, b->stored_key, sizeof(a->stored_key)) == 0 &&
	       memcmp(a->server_key, b->server_key, sizeof(a->server_key)) == 0;
}

/* Other keys (or a hash) than the logins used may be what makes them work again (a
 * password changed in PostgreSQL, a new verifier from auth_query): the next login
 * starts at once rather than after the backoff the old ones earned. */
static void new_secret_ends_backoff(struct pool_shared *ps)
{
	atomic_store(&ps->retry_at, 0);
}

void pool_shared_set_scram_keys(struct pool_shared *ps, const struct scram_keys *keys)
{
	pthread_mutex_lock(&ps->params_lock);
	bool changed = !ps->passthrough.have_scram ||
		       !same_scram_keys(&ps->passthrough.scram, keys);
	ps->passthrough.scram = *keys;
	ps->passthrough.have_scram = true;
	pthread_mutex_unlock(&ps->params_lock);
	if (changed)
		new_secret_ends_backoff(ps);
}

void pool_shared_set_md5(struct pool_shared *ps, const char *md5_hash)
{
	if (strlen(md5_hash) != sizeof(ps->passthrough.md5) - 1)
		return;
	pthread_mutex_lock(&ps->params_lock);
	bool changed = !ps->passthrough.have_md5 ||
		       memcmp(ps->passthrough.md5, md5_hash, sizeof(ps->passthrough.md5)) != 0;
	memcpy(ps->passthrough.md5, md5_hash, sizeof(ps->passthrough.md5));
	ps->passthrough.have_md5 = true;
	pthread_mutex_unlock(&ps->params_lock);
	if (changed)
		new_secret_ends_backoff(ps);
}

bool pool_shared_get_passthrough(struct pool_shared *ps, struct login_secret *out)
{
	pthread_mutex_lock(&ps->params_lock);
	*out = ps->passthrough;
	pthread_mutex_unlock(&ps->params_lock);
	return out->have_scram || out->have_md5;
}

/* Increments n if it stays within limit (0: no limit, it is only counted). */
static bool count_take(atomic_int *n, int limit)
{
	if (limit <= 0) {
		atomic_fetch_add(n, 1);
		return true;
	}
	int cur = atomic_load(n);
	while (cur < limit)
		if (atomic_compare_exchange_weak(n, &cur, cur + 1))
			return true;
	return false;
}

enum slot_result pool_shared_take_slot(struct pool_shared *ps, int pool_limit, int db_limit,
				       int user_limit)
{
	if (!count_take(&ps->servers, pool_limit))
		return SLOT_POOL_FULL;
	if (!count_take(&ps->db_servers->n, db_limit)) {
		atomic_fetch_sub(&ps->servers, 1);
		atomic_store(&ps->db_servers->starving, 1);
		return SLOT_DB_FULL;
	}
	if (!count_take(&ps->user_servers->n, user_limit)) {
		atomic_fetch_sub(&ps->db_servers->n, 1);
		atomic_fetch_sub(&ps->servers, 1);
		atomic_store(&ps->user_servers->starving, 1);
		return SLOT_USER_FULL;
	}
	return SLOT_TAKEN;
}

void pool_shared_put_slot_rest(struct pool_shared *ps)
{
	atomic_fetch_sub(&ps->user_servers->n, 1);
	atomic_fetch_sub(&ps->db_servers->n, 1);
}

void pool_shared_put_slot(struct pool_shared *ps)
{
	pool_shared_put_slot_rest(ps);
	atomic_fetch_sub(&ps->servers, 1);
}

bool pool_shared_claim_close(struct pool_shared *ps, int keep)
{
	int n = atomic_load(&ps->servers);
	while (n > keep)
		if (atomic_compare_exchange_weak(&ps->servers, &n, n - 1))
			return true;
	return false;
}

int pool_shared_worker_with_idle(const struct pool_shared *ps, int n_workers, int me)
{
	for (int i = 0; i < n_workers; i++)
		if (i != me && atomic_load(&ps->slots[i].pub.idle) > 0)
			return i;
	return -1;
}

int shared_sum_waiting(const struct worker_slot *slots, int n_workers)
{
	int n = 0;
	for (int i = 0; i < n_workers; i++)
		n += atomic_load(&slots[i].pub.waiting);
	return n;
}

int shared_oldest_worker(const struct worker_slot *slots, int n_workers, int me, long long before)
{
	int best = -1;
	for (int i = 0; i < n_workers; i++) {
		long long since = atomic_load(&slots[i].pub.oldest);
		if (i != me && since != 0 && since < before) {
			before = since;
			best = i;
		}
	}
	return best;
}
