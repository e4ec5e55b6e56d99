#include "pool/pool.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "common/inbox.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/siphash.h"
#include "pool/activate.h"
#include "pool/app_gate.h"
#include "pool/cancel.h"
#include "pool/keepalive.h"
#include "pool/pool_internal.h"
#include "pool/server_login_raw.h"

static void reap_dead(evutil_socket_t fd, short what, void *arg)
{
	struct pool_env *env = arg;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->dead_servers)
	{
		struct server *s = list_entry(it, struct server, node);
		if (s->cancels_in_flight)
			continue; /* its cancel's completion still names it */
		list_del(&s->node);
		free(s);
	}
}

bool pool_env_init(struct pool_env *env, struct event_base *base, const struct corral_config *cfg,
		   const struct pool_hooks *hooks)
{
	memset(env, 0, sizeof(*env));
	env->base = base;
	env->cfg = cfg;
	env->hooks = hooks;
	list_init(&env->pools);
	list_init(&env->app_gates);
	list_init(&env->dead_servers);
	env->reap_ev = event_new(base, -1, 0, reap_dead, env);
	env->n_workers = 1;
	return env->reap_ev != NULL && activate_init(env);
}

void pool_env_connect(struct pool_env *env, int worker_id, int n_workers,
		      struct pool_registry *registry, struct inbox **inboxes)
{
	env->worker_id = worker_id;
	env->n_workers = n_workers;
	env->registry = registry;
	env->inboxes = inboxes;
}

/* ---- state lists ----------------------------------------------------------------- */

static struct list *state_list(struct pool *pool, enum server_state st)
{
	switch (st) {
	case SV_LOGIN:
		return &pool->login;
	case SV_IDLE:
		return &pool->idle;
	case SV_ACTIVE:
		return &pool->active;
	case SV_CLOSING:
		return &pool->closing;
	case SV_CLOSED:
		break;
	}
	return &pool->env->dead_servers;
}

/* The count kept for a state; closed servers are not counted. */
static size_t *state_count(struct pool *pool, enum server_state st)
{
	switch (st) {
	case SV_LOGIN:
		return &pool->n_login;
	case SV_IDLE:
		return &pool->n_idle;
	case SV_ACTIVE:
		return &pool->n_active;
	case SV_CLOSING:
		return &pool->n_closing;
	case SV_CLOSED:
		break;
	}
	return NULL;
}

_Static_assert((int)SV_LOGIN == (int)STATS_SV_LOGIN && (int)SV_IDLE == (int)STATS_SV_IDLE &&
		       (int)SV_ACTIVE == (int)STATS_SV_ACTIVE &&
		       (int)SV_CLOSING == (int)STATS_SV_CLOSING,
	       "server states index stats_block.servers");

/* The gauge of stats_block.servers kept for a state. */
static void count_server_gauge(struct pool *pool, enum server_state st, long long n)
{
	if (st != SV_CLOSED)
		stats_add(&pool->stats->servers[st], n);
}

/* Takes s out of its state's list and count (a server being made is in none). */
static void leave_state(struct server *s)
{
	struct pool *pool = s->pool;
	if (s->state == SV_CLOSED && list_empty(&s->node))
		return;
	list_del(&s->node);
	size_t *count = state_count(pool, s->state);
	if (count)
		(*count)--;
	count_server_gauge(pool, s->state, -1);
	if (s->state == SV_IDLE)
		atomic_fetch_sub(&pool->slot->pub.idle, 1);
}

/* The one place a server changes state: it moves to the list of its new state. */
static void set_server_state(struct server *s, enum server_state st)
{
	struct pool *pool = s->pool;
	leave_state(s);
	if (st == SV_IDLE)
		atomic_fetch_add(&pool->slot->pub.idle, 1);
	s->state = st;
	s->state_since = clock_now_usec();
	list_append(state_list(pool, st), &s->node);
	size_t *count = state_count(pool, st);
	if (count)
		(*count)++;
	count_server_gauge(pool, st, 1);
}

/* ---- pools ------------------------------------------------------------------------ */

/* The database line's login keywords and values, hashed: equal lines, equal hashes
 * (on every worker, so a server moved between workers is judged the same way). */
uint64_t pool_login_signature(const struct db_config *db)
{
	static const uint8_t key[16] = "corral-login-sig";
	struct siphash h;
	siphash_init(&h, key);
	for (size_t i = 0; i < db->n_conn; i++) {
		siphash_update(&h, db->conn_keys[i], strlen(db->conn_keys[i]) + 1);
		siphash_update(&h, db->conn_vals[i], strlen(db->conn_vals[i]) + 1);
	}
	return siphash_final(&h);
}

static void free_login_params(struct pool *pool)
{
	for (size_t i = 0; pool->login_keys && pool->login_keys[i]; i++) {
		free(pool->login_keys[i]);
		free(pool->login_vals[i]);
	}
	free(pool->login_keys);
	free(pool->login_vals);
	pool->login_keys = pool->login_vals = NULL;
	pool->login_password = NULL; /* one of login_vals */
}

static bool add_login_param(struct pool *pool, size_t *k, const char *key, const char *val)
{
	pool->login_keys[*k] = strdup(key);
	pool->login_vals[*k] = strdup(val);
	if (!pool->login_keys[*k] || !pool->login_vals[*k]) {
		free(pool->login_keys[*k]);
		free(pool->login_vals[*k]);
		pool->login_keys[*k] = pool->login_vals[*k] = NULL;
		return false;
	}
	(*k)++;
	return true;
}

/* Copies the database line's keywords (a snapshot may be freed after a reload), plus the
 * client's user and password where the line sets none.  On failure the pool keeps
 * whatever it had. */
bool pool_build_login_params(struct pool *pool, const struct db_config *db, const char *password)
{
	struct pool old = *pool;
	size_t n = db->n_conn + 3 + KEEPALIVE_PARAMS; /* + user, password, keepalives*, NULL */
	pool->login_keys = calloc(n, sizeof(char *));
	pool->login_vals = calloc(n, sizeof(char *));
	size_t k = 0;
	bool ok = pool->login_keys && pool->login_vals;
	for (size_t i = 0; ok && i < db->n_conn; i++)
		ok = add_login_param(pool, &k, db->conn_keys[i], db->conn_vals[i]);
	if (ok && !db->user)
		ok = add_login_param(pool, &k, "user", pool->user);
	const char *ka_keys[KEEPALIVE_PARAMS], *ka_vals[KEEPALIVE_PARAMS];
	char ka_buf[KEEPALIVE_PARAMS][16];
	size_t n_ka = keepalive_login_params(pool->env->cfg, db, ka_keys, ka_vals, ka_buf);
	for (size_t i = 0; ok && i < n_ka; i++)
		ok = add_login_param(pool, &k, ka_keys[i], ka_vals[i]);
	pool->login_password = NULL;
	pool->passthrough = !db->password && !db->user && !password;
	if (ok && !db->password && password) {
		ok = add_login_param(pool, &k, "password", password);
		if (ok)
			pool->login_password = pool->login_vals[k - 1];
	}
	if (!ok) {
		free_login_params(pool);
		pool->login_keys = old.login_keys;
		pool->login_vals = old.login_vals;
		pool->login_password = old.login_password;
		return false;
	}
	struct pool gone = { .login_keys = old.login_keys, .login_vals = old.login_vals };
	free_login_params(&gone);
	pool->login_sig = pool_login_signature(db);
	return true;
}

void pool_free(struct pool *pool)
{
	if (pool->shared)
		atomic_fetch_sub(&pool->shared->locals, 1); /* the record may be freed now */
	if (pool->retry_ev)
		event_free(pool->retry_ev);
	free_login_params(pool);
	free(pool->user);
	params_clear(&pool->params);
	params_clear(&pool->client_params);
	free(pool);
}

/* The pool's own settings from the database line and [corral] in force. */
void pool_take_settings(struct pool *pool, const struct corral_config *cfg,
			  const struct db_config *db)
{
	pool->size = config_pool_size(cfg, db);
	pool->mode = config_pool_mode(cfg, db, pool->user);
	pool->pin_policy = config_pin_policy(cfg, db);
	pool->min_size = config_min_pool_size(cfg, db);
	pool->reserve = config_reserve_pool(cfg, db);
	pool->max_db = config_max_db_connections(cfg, db);
	pool->max_user = config_max_user_connections(cfg, pool->user);
}

static void retry_timer_fired(evutil_socket_t fd, short what, void *arg);

struct pool *pool_find(struct pool_env *env, const char *db_name, const char *user)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *p = list_entry(it, struct pool, node);
		/* A retiring pool's part here lingers until it is empty; nobody joins it. */
		if (strcmp(p->db_name, db_name) == 0 && strcmp(p->user, user) == 0 &&
		    !atomic_load(&p->shared->retiring))
			return p;
	}
	return NULL;
}

static struct pool *pool_get_ex(struct pool_env *env, const struct db_config *db,
				const char *user, const char *password, int max_pools,
				enum registry_get_result *why)
{
	*why = REG_OK;
	struct pool *found = pool_find(env, db->name, user);
	if (found) {
		/* The auth file gave this user a new password (a reload): new logins use it. */
		if (password && found->login_password && strcmp(password, found->login_password) != 0 &&
		    !pool_build_login_params(found, db, password))
			log_error("event=pool_password_update_failed db=%s user=%s error=\"out of memory\"",
				  db->name, user);
		return found;
	}
	struct pool *pool = calloc(1, sizeof(*pool));
	if (!pool) {
		*why = REG_NOMEM;
		return NULL;
	}
	pool->env = env;
	pool->user = strdup(user);
	/* The pool of a database line's own user= is the operator's: never retired. */
	bool keep = db->user && strcmp(db->user, user) == 0;
	pool->shared = pool->user ? pool_registry_get_ex(env->registry, db->name, user,
							 env->worker_id, max_pools, keep, why)
				  : NULL;
	if (pool->shared) {
		pool->db_name = pool->shared->db_name;
		pool->slot = &pool->shared->slots[env->worker_id];
		pool->stats = &pool->slot->stats;
		wait_queue_init(&pool->waiting, &pool->slot->pub.waiting, &pool->slot->pub.oldest);
	}
	pool_take_settings(pool, env->cfg, db);
	pool->paused = pool_env_paused(env, db->name);
	list_init(&pool->login);
	list_init(&pool->idle);
	list_init(&pool->active);
	list_init(&pool->closing);
	pool->retry_ev = evtimer_new(env->base, retry_timer_fired, pool);
	if (!pool->user || !pool->shared || !pool->retry_ev ||
	    !pool_build_login_params(pool, db, password)) {
		if (*why == REG_OK)
			*why = REG_NOMEM;
		pool_free(pool);
		return NULL;
	}
	list_append(&env->pools, &pool->node);
	log_info("event=pool_created worker=%d db=%s user=%s pool_size=%d pool_mode=%s",
		 env->worker_id, db->name, user, pool->size, pool_mode_name(pool->mode));
	return pool;
}

struct pool *pool_get(struct pool_env *env, const struct db_config *db, const char *user,
		      const char *password)
{
	enum registry_get_result why;
	return pool_get_ex(env, db, user, password, 0, &why);
}

struct pool *pool_join(struct pool_env *env, const struct db_config *db, const char *user,
		       const char *password, int max_pools, bool *full)
{
	enum registry_get_result why = REG_OK;
	*full = false;
	/* A pool found here can start retiring before the client is attached to it (the
	 * attach then fails); the next round finds or makes the live record.  Each round
	 * only fails that way when another worker retired the pool in between. */
	for (int round = 0; round < 4; round++) {
		struct pool *pool = pool_get_ex(env, db, user, password, max_pools, &why);
		if (!pool)
			break;
		if (pool_shared_attach(pool->shared)) {
			pool->n_clients++;
			return pool;
		}
		why = REG_FULL;
	}
	*full = why == REG_FULL;
	return NULL;
}

void pool_leave(struct pool *pool)
{
	pool->n_clients--;
	pool_shared_detach(pool->shared);
}

/* ---- servers ---------------------------------------------------------------------- */

static void idle_server_event(struct stream *io, short what, void *arg)
{
	struct server *s = arg;
	pool_close_server(s, (what & BEV_EVENT_EOF) ? "server closed the connection while idle"
						     : "server connection error while idle");
}

/* An idle server has nothing to say; if it talks anyway (a FATAL before it exits, an
 * admin's pg_terminate_backend) it cannot be trusted with a client. */
static void idle_server_read(struct stream *io, void *arg)
{
	pool_close_server(arg, "server sent data while idle");
}

static void send_server(struct server *s, int to);

/* A server nobody uses: if it talks or goes away it is closed. */
static void watch_unused(struct server *s)
{
	s->owner = NULL;
	stream_setcb(s->io, idle_server_read, NULL, idle_server_event, s);
	stream_setwatermark(s->io, EV_READ, 0, 0);
	stream_setwatermark(s->io, EV_WRITE, 0, 0);
	stream_enable(s->io, EV_READ);
}

static void park_idle(struct server *s)
{
	set_server_state(s, SV_IDLE);
	watch_unused(s);
}

/* The longest waiter gets s now (out of the queue, s reserved for it) and hears of
 * it from the activation queue; until then s is watched as an idle one is
 * (activate.c ends the watch). */
static void hand_to_waiter(struct pool *pool, struct server *s)
{
	struct pool_waiter *w = wait_queue_head(&pool->waiting);
	wait_queue_remove(&pool->waiting, w);
	set_server_state(s, SV_ACTIVE);
	watch_unused(s);
	activate_server(pool->env, w, s);
}

/*
 * s, reserved for a waiter not yet told, is being closed (it talked or went away while
 * unused, or it outlived its lifetime on the way back): the waiter gets its place back
 * at the head of the queue rather than an error, as a client whose idle server dies
 * before checkout never notices; nobody queued after it may pass it.  An idle server,
 * if any, goes to it; else the close's grow_for_waiters covers it.
 */
static void requeue_reserved(struct pool *pool, struct server *s)
{
	struct pool_waiter *w = s->reserved_for;
	if (!w)
		return;
	struct server *same;
	(void)activate_cancel(w, &same);
	wait_queue_push_head(&pool->waiting, w);
	struct list *idle = list_last(&pool->idle);
	if (idle)
		hand_to_waiter(pool, list_entry(idle, struct server, node));
}

/*
 * Closes s instead of offering it, if a reload or PAUSE says so: it was logged in with a
 * database line that has changed since (a client must never get a server of other
 * settings), the pool is paused (PgBouncer closes servers in pause mode, so a paused
 * database can be restarted), or pool_size went down and the pool still has more servers
 * than that over all workers.  Returns whether it closed s.
 */
static bool retire_server(struct pool *pool, struct server *s)
{
	if (atomic_load(&pool->shared->retiring)) {
		pool_close_server(s, "its pool is being freed (max_pools)");
		return true;
	}
	if (s->login_sig != pool->login_sig) {
		pool_close_server(s, "its database's connection settings changed (reload)");
		return true;
	}
	if (pool->paused) {
		pool_close_server(s, "pause mode");
		return true;
	}
	if (pool_shared_claim_close(pool->shared, pool->size)) {
		s->pool_slot_returned = true;
		pool_close_server(s, "pool_size lowered (reload)");
		return true;
	}
	pool->shrinking = false; /* down to size over all workers */
	return false;
}

/*
 * A server that has just become available here (login, return, arrival from another
 * worker) goes to the pool's longest waiter, FIFO across workers: here, or on the
 * worker whose waiter queued first (the server moves there), or it is parked.
 */
static void offer_server(struct pool *pool, struct server *s)
{
	struct pool_env *env = pool->env;
	/* Plain loads of this worker's pool: nothing shared on the way back. */
	if ((pool->shrinking || pool->paused || s->login_sig != pool->login_sig ||
	     atomic_load(&pool->shared->retiring)) &&
	    retire_server(pool, s))
		return;
	struct pool_waiter *head = wait_queue_head(&pool->waiting);
	/* Moving a server costs both loops work; with waiters here it only moves for a
	 * client that has waited clearly longer (CROSS_WORKER_SLACK), so two busy
	 * workers do not pass servers back and forth over microseconds. */
	long long local = head ? head->since - CROSS_WORKER_SLACK_USEC : LLONG_MAX;
	int to = env->n_workers > 1 && !env->shutting_down
			 ? pool_shared_worker_waiting_longer(pool->shared, env->n_workers,
							     env->worker_id, local)
			 : -1;
	if (to >= 0)
		send_server(s, to);
	else if (head)
		hand_to_waiter(pool, s);
	else
		park_idle(s);
}

/* The caller holds a server slot for it (pool_shared_take_slot). */
static void launch_login(struct pool *pool)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s) {
		pool_shared_put_slot(pool->shared);
		log_error("event=server_login_failed db=%s user=%s error=\"out of memory\"",
			  pool->db_name, pool->user);
		return;
	}
	s->pool = pool;
	s->id = worker_unique_id(++pool->env->next_server_id, pool->env->worker_id,
				 pool->env->n_workers);
	s->created = clock_now_usec();
	s->login_fd = -1;
	s->login_sig = pool->login_sig;
	s->state = SV_CLOSED;
	list_init(&s->node);
	set_server_state(s, SV_LOGIN);
	log_debug("event=server_login_start server=%llu db=%s user=%s", (unsigned long long)s->id,
		  pool->db_name, pool->user);
	const char *const *keys = (const char *const *)pool->login_keys;
	const char *const *vals = (const char *const *)pool->login_vals;
	struct login_secret sec;
	if (pool->passthrough && pool_shared_get_passthrough(pool->shared, &sec)) {
		/* libpq cannot log in with keys or a hash: corral's own login does. */
		char err[256];
		bool started = server_login_raw_start(s, keys, vals, &sec, err, sizeof(err));
		OPENSSL_cleanse(&sec, sizeof(sec));
		if (!started)
			pool_login_done(s, false, err, NULL);
		return;
	}
	if (!server_login_start(s, keys, vals))
		pool_login_done(s, false, s->conn ? PQerrorMessage(s->conn) : "out of memory", NULL);
}

static void ask_for_server(struct pool *pool, int from);
static void kick_worker(struct pool *pool, int to);
static void fail_all_waiters(struct pool *pool, const char *sqlstate, const char *message);

/*
 * Closes one idle server of another pool that shares for_pool's database count (or
 * user count, by_user) on this worker; false if there is none.
 */
static bool evict_idle_server(struct pool_env *env, const struct pool *for_pool, bool by_user)
{
	const struct server_count *want = by_user ? for_pool->shared->user_servers
						  : for_pool->shared->db_servers;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *p = list_entry(it, struct pool, node);
		const struct server_count *have = by_user ? p->shared->user_servers : p->shared->db_servers;
		if (p == for_pool || have != want || list_empty(&p->idle) || p->waiting.n > 0)
			continue;
		pool_close_server(list_entry(list_first(&p->idle), struct server, node),
				  by_user ? "max_user_connections: room for another pool"
					  : "max_db_connections: room for another pool");
		return true;
	}
	return false;
}

/* On each tick: a count another pool starves on gets an idle server of ours. */
static void relieve_starving(struct pool *pool)
{
	struct server_count *counts[] = { pool->shared->db_servers, pool->shared->user_servers };
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
		if (!atomic_load(&counts[i]->starving) || list_empty(&pool->idle) ||
		    pool->waiting.n > 0)
			continue;
		atomic_store(&counts[i]->starving, 0);
		pool_close_server(list_entry(list_first(&pool->idle), struct server, node),
				  i ? "max_user_connections: room for another pool"
				    : "max_db_connections: room for another pool");
		return;
	}
}

/* When the longest waiter here queued, or 0. */
static usec_t oldest_wait(const struct pool *pool)
{
	struct pool_waiter *head = wait_queue_head(&pool->waiting);
	return head ? head->since : 0;
}

/*
 * A server slot within pool_size (plus reserve_pool_size once a client has waited
 * reserve_pool_timeout), max_db_connections and max_user_connections, counted over
 * all workers.
 */
static bool take_server_slot(struct pool *pool, usec_t now)
{
	const struct corral_config *cfg = pool->env->cfg;
	enum slot_result r = pool_shared_take_slot(pool->shared, pool->size, pool->max_db,
						   pool->max_user);
	if (r == SLOT_DB_FULL || r == SLOT_USER_FULL) {
		/* Another pool of the database (or user) holds the slots; an idle server
		 * of it here makes room at once, other workers' on their next tick. */
		if (!evict_idle_server(pool->env, pool, r == SLOT_USER_FULL))
			return false;
		r = pool_shared_take_slot(pool->shared, pool->size, pool->max_db, pool->max_user);
	}
	if (r == SLOT_TAKEN)
		return true;
	usec_t since = oldest_wait(pool);
	if (r != SLOT_POOL_FULL || pool->reserve <= 0 || !since ||
	    now - since < (usec_t)(cfg->reserve_pool_timeout * USEC_PER_SEC))
		return false;
	if (pool_shared_take_slot(pool->shared, pool->size + pool->reserve, pool->max_db,
				  pool->max_user) != SLOT_TAKEN)
		return false;
	log_info("event=reserve_pool_used db=%s user=%s waited_ms=%lld", pool->db_name, pool->user,
		 (long long)(now - since) / 1000);
	return true;
}

/* ---- logins that fail ------------------------------------------------------------ */

/* The first retry after a failed round; each further failed round doubles it, up to
 * server_login_retry. */
#define LOGIN_RETRY_FIRST_USEC (USEC_PER_SEC / 4)
/* While clients wait for logins to work again (server_login_wait), a probe starts at
 * least this often, whatever the backoff has grown to: a restart of PostgreSQL is
 * noticed within half a second of it accepting logins again. */
#define WAITING_PROBE_USEC (USEC_PER_SEC / 2)

/* Failures that pass by themselves: the server could not be reached or said so
 * (class 57: shutting down, starting up, in recovery; 53300: too many connections).
 * Others (a wrong password, no such database) stay until someone fixes them. */
static bool failure_passes(const char *sqlstate)
{
	return !sqlstate || !*sqlstate || strncmp(sqlstate, "57", 2) == 0 ||
	       strcmp(sqlstate, "53300") == 0;
}

/* When logins of the pool have failed since (the first failure after the last login
 * that worked), or 0. */
static usec_t failing_since(const struct pool *pool)
{
	return atomic_load(&pool->shared->failing_since);
}

/* The end of server_login_wait for the current failures, or 0 if clients do not wait
 * them out (the failure does not pass, or server_login_wait = 0). */
static usec_t wait_ends(const struct pool *pool)
{
	usec_t since = failing_since(pool);
	double wait = pool->env->cfg->server_login_wait;
	if (!since || wait <= 0 || !atomic_load(&pool->shared->failure_passes))
		return 0;
	return since + (usec_t)(wait * USEC_PER_SEC);
}

/* Whether a client of the pool waits for logins to work again rather than failing
 * fast: logins work, or have failed for less than server_login_wait for a reason
 * that passes. */
static bool clients_may_wait(const struct pool *pool, usec_t now)
{
	return !failing_since(pool) || now < wait_ends(pool);
}

/* When the next login may start: the end of the backoff, but no later than
 * WAITING_PROBE_USEC after the last failed round while clients here wait. */
static usec_t next_login_at(const struct pool *pool, usec_t now)
{
	usec_t at = atomic_load(&pool->shared->retry_at);
	if (at > now && pool->waiting.n > 0 && clients_may_wait(pool, now)) {
		usec_t probe = atomic_load(&pool->shared->round_start) + WAITING_PROBE_USEC;
		if (probe < at)
			at = probe;
	}
	return at;
}

/* Wakes the pool up at `at` (unless it is woken earlier already). */
static void arm_retry_timer(struct pool *pool, usec_t at, usec_t now)
{
	if (pool->retry_ev_at && pool->retry_ev_at <= at)
		return;
	usec_t in = at > now ? at - now : 0;
	struct timeval tv = { (time_t)(in / USEC_PER_SEC), (suseconds_t)(in % USEC_PER_SEC) };
	if (evtimer_add(pool->retry_ev, &tv) == 0)
		pool->retry_ev_at = at;
}

static void grow_for_waiters(struct pool *pool);

void pool_grow_for_waiters(struct pool *pool)
{
	grow_for_waiters(pool);
}

static void retry_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct pool *pool = arg;
	pool->retry_ev_at = 0;
	grow_for_waiters(pool);
}

/* Every waiter of the pool gets the last login's error: 08006, libpq's message, how
 * long logins have failed and when the next one starts. */
static void fail_for_logins(struct pool *pool, usec_t now)
{
	char err[256], msg[420];
	pool_shared_get_error(pool->shared, err, sizeof(err));
	usec_t retry_at = atomic_load(&pool->shared->retry_at), since = failing_since(pool);
	double next = retry_at > now ? (double)(retry_at - now) / USEC_PER_SEC : 0;
	if (since && wait_ends(pool))
		snprintf(msg, sizeof(msg),
			 "%s (logins have failed for %.1f s, server_login_wait is %g s; next login "
			 "attempt in %.1f s)",
			 err, (double)(now - since) / USEC_PER_SEC, pool->env->cfg->server_login_wait,
			 next);
	else
		snprintf(msg, sizeof(msg), "%s (next login attempt in %.1f s)", err, next);
	fail_all_waiters(pool, "08006", msg);
}

/*
 * While logins back off, no new one starts.  Waiters of a pool with no server at all
 * (on any worker, logins included) then wait for the next probe if clients may wait
 * (server_login_wait), else get the last login's error at once; the pool is woken for
 * the next probe, or for the end of server_login_wait.
 */
static bool logins_backing_off(struct pool *pool, usec_t now)
{
	usec_t next = next_login_at(pool, now);
	if (now >= next)
		return false;
	if (pool->waiting.n == 0)
		return true;
	if (atomic_load(&pool->shared->servers) == 0 && !clients_may_wait(pool, now)) {
		fail_for_logins(pool, now);
		return true;
	}
	usec_t ends = wait_ends(pool);
	arm_retry_timer(pool, ends > now && ends < next ? ends : next, now);
	return true;
}

/*
 * Counts the failure of login s: a new failed round if s started after the last
 * counted failure and after the last login that worked (round_start), which doubles
 * the backoff; nothing if s was already under way then (it failed with the others of
 * its round).  Returns the backoff set, or 0 when the failure was not counted.
 */
static usec_t count_failed_round(struct pool *pool, const struct server *s, usec_t now)
{
	struct pool_shared *sh = pool->shared;
	long long start = atomic_load(&sh->round_start);
	do {
		if (s->created <= start)
			return 0;
	} while (!atomic_compare_exchange_weak(&sh->round_start, &start, now));
	int rounds = atomic_fetch_add(&sh->failed_rounds, 1) + 1;
	usec_t max = (usec_t)(pool->env->cfg->server_login_retry * USEC_PER_SEC);
	usec_t delay = LOGIN_RETRY_FIRST_USEC;
	for (int i = 1; i < rounds && delay < max; i++)
		delay *= 2;
	if (delay > max)
		delay = max;
	atomic_store(&sh->retry_at, now + delay);
	long long none = 0;
	atomic_compare_exchange_strong(&sh->failing_since, &none, now);
	return delay;
}

/* A login worked: the backoff ends for every worker; those with waiters are told. */
static void logins_work(struct pool *pool, usec_t now)
{
	struct pool_shared *sh = pool->shared;
	atomic_store(&sh->round_start, now);
	atomic_store(&sh->retry_at, 0);
	bool was_failing = atomic_exchange(&sh->failed_rounds, 0) > 0;
	if (atomic_exchange(&sh->failing_since, 0))
		was_failing = true;
	if (!was_failing || pool->env->shutting_down)
		return;
	log_info("event=server_logins_work db=%s user=%s", pool->db_name, pool->user);
	for (int i = 0; i < pool->env->n_workers; i++)
		if (i != pool->env->worker_id && atomic_load(&sh->slots[i].pub.waiting) > 0)
			kick_worker(pool, i);
}

/*
 * Covers each waiter not yet covered by a login in progress or a request to another
 * worker: a login while the pool's servers across all workers stay within its size
 * (the waiter waits one login at most, and the server then stays on this worker, where
 * its clients are), else an idle server of another worker (moved over: two inbox
 * messages).
 */
static void grow_for_waiters(struct pool *pool)
{
	struct pool_env *env = pool->env;
	usec_t now = clock_now_usec();
	while (pool->n_login + pool->asks_pending < pool->waiting.n && !env->shutting_down &&
	       !pool->paused) {
		/* Until a login has worked (a cold pool, or logins failing), one login at a
		 * time probes the server, rather than a burst of them failing together. */
		bool probing = atomic_load(&pool->shared->failed_rounds) > 0 || !pool_has_params(pool);
		if (!(probing && pool->n_login > 0) && !logins_backing_off(pool, now) &&
		    take_server_slot(pool, now)) {
			size_t before = pool->n_login;
			launch_login(pool);
			if (pool->n_login == before)
				break; /* it failed synchronously; the waiters were told */
			continue;
		}
		int peer = pool_shared_worker_with_idle(pool->shared, env->n_workers, env->worker_id);
		if (peer < 0)
			break;
		ask_for_server(pool, peer);
		pool->asks_pending++;
	}
}

bool pool_has_params(struct pool *pool)
{
	if (!pool->have_params)
		pool->have_params = pool_shared_get_params(pool->shared, &pool->params);
	return pool->have_params;
}

/* How far from the LIFO end pool_checkout looks for a waiter's previous server. */
#define PREFER_SCAN 16

/*
 * The waiter's previous server if it is among the last PREFER_SCAN parked (a client
 * coming back soon finds its session's leftovers there: its sequence values, prepared
 * statements, settings, so fewer statements to prepare and parameters to apply), else
 * last, the LIFO choice.
 */
static struct list *preferred(struct pool *pool, const struct pool_waiter *w, struct list *last)
{
	if (!w->prefer)
		return last;
	struct list *it = last;
	for (int i = 0; i < PREFER_SCAN && it != &pool->idle; i++, it = it->prev)
		if (list_entry(it, struct server, node)->id == w->prefer)
			return it;
	return last;
}

struct server *pool_checkout(struct pool *pool, struct pool_waiter *w, bool *full)
{
	*full = false;
	/* LIFO, as PgBouncer: the server used last is the one whose backend is still
	 * warm (caches, scheduler); the least recently used drift to the head, where
	 * server_idle_timeout finds them. */
	struct list *first = pool->paused ? NULL : list_last(&pool->idle);
	if (first && pool->waiting.n == 0) {
		struct server *s = list_entry(preferred(pool, w, first), struct server, node);
		set_server_state(s, SV_ACTIVE);
		stream_setcb(s->io, NULL, NULL, NULL, NULL);
		return s;
	}
	int depth = pool->env->cfg->max_queue_depth;
	if (depth > 0 && shared_sum_waiting(pool->shared->slots, pool->env->n_workers) >= depth) {
		*full = true;
		return NULL;
	}
	wait_queue_push(&pool->waiting, w, WAIT_SERVER);
	if (first) /* waiters ahead of w: serve them in order */
		hand_to_waiter(pool, list_entry(first, struct server, node));
	grow_for_waiters(pool);
	return NULL;
}

void pool_dequeue(struct pool *pool, struct pool_waiter *w)
{
	struct server *s = NULL;
	if (w->queued)
		wait_queue_remove(&pool->waiting, w);
	else if (activate_cancel(w, &s) == PENDING_SERVER)
		pool_release(s); /* never used: the next waiter's, or idle */
}

/* ---- moving idle servers between workers ---------------------------------------- */

struct want_server_msg {
	struct inbox_item item;
	struct pool_shared *shared;
	int from;
};

struct server_move_msg {
	struct inbox_item item;
	struct server *server;
	struct pool_shared *shared; /* its pool, named (database, user) */
	char *password;
};

static struct pool *find_local_pool(struct pool_env *env, const struct pool_shared *shared)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *p = list_entry(it, struct pool, node);
		if (p->shared == shared)
			return p;
	}
	return NULL;
}

/* Runs on the worker asked: give an idle server if no client of ours wants it. */
static void want_server_run(struct inbox_item *item, void *ctx)
{
	struct want_server_msg *m = (struct want_server_msg *)item;
	struct pool_env *env = ctx;
	struct pool *pool = find_local_pool(env, m->shared);
	if (pool && !env->shutting_down && pool->waiting.n == 0 && !list_empty(&pool->idle) &&
	    !atomic_load(&pool->shared->retiring))
		send_server(list_entry(list_first(&pool->idle), struct server, node), m->from);
	atomic_fetch_sub(&m->shared->msgs, 1); /* the last use of m->shared */
	free(m);
}

static void want_server_drop(struct inbox_item *item)
{
	struct want_server_msg *m = (struct want_server_msg *)item;
	atomic_fetch_sub(&m->shared->msgs, 1);
	free(m);
}

static void ask_for_server(struct pool *pool, int from)
{
	struct want_server_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return;
	m->item.run = want_server_run;
	m->item.drop = want_server_drop;
	m->shared = pool->shared;
	atomic_fetch_add(&m->shared->msgs, 1); /* keeps the record until m is run or dropped */
	m->from = pool->env->worker_id;
	inbox_post(pool->env->inboxes[from], &m->item);
}

/* Logins work again: a worker whose waiters sit out the backoff tries at once. */
struct kick_msg {
	struct inbox_item item;
	struct pool_shared *shared;
};

static void kick_run(struct inbox_item *item, void *ctx)
{
	struct kick_msg *m = (struct kick_msg *)item;
	struct pool_env *env = ctx;
	struct pool *pool = find_local_pool(env, m->shared);
	if (pool && !env->shutting_down)
		grow_for_waiters(pool);
	atomic_fetch_sub(&m->shared->msgs, 1);
	free(m);
}

static void kick_drop(struct inbox_item *item)
{
	struct kick_msg *m = (struct kick_msg *)item;
	atomic_fetch_sub(&m->shared->msgs, 1);
	free(m);
}

static void kick_worker(struct pool *pool, int to)
{
	struct kick_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return; /* that worker's next tick retries */
	m->item.run = kick_run;
	m->item.drop = kick_drop;
	m->shared = pool->shared;
	atomic_fetch_add(&m->shared->msgs, 1);
	inbox_post(pool->env->inboxes[to], &m->item);
}

static void server_move_free(struct server_move_msg *m)
{
	free(m->password);
	free(m);
}

/* Runs on the receiving worker: the server joins this worker's part of the pool. */
static void server_move_run(struct inbox_item *item, void *ctx)
{
	struct server_move_msg *m = (struct server_move_msg *)item;
	struct pool_env *env = ctx;
	struct server *s = m->server;
	struct pool_shared *shared = m->shared;
	/* The pool by name: this worker may run on a newer snapshot than the sender's, in
	 * which the database is gone (then only a pool here already may take it) and its
	 * line may differ (offer_server closes a server of other settings). */
	struct pool *pool = find_local_pool(env, shared);
	/* A record retiring takes no new part on this worker (the server in flight keeps
	 * it from retiring, so this is belt and braces). */
	bool retiring = atomic_load(&shared->retiring);
	const struct db_config *db =
		pool || retiring ? NULL : config_find_db(env->cfg, shared->db_name);
	if (db)
		pool = pool_get(env, db, shared->user, m->password);
	server_move_free(m);
	if (!pool || pool->shared != shared || env->shutting_down ||
	    !server_attach(s, env->base)) {
		server_teardown(s);
		pool_shared_put_slot(shared);
		free(s);
		atomic_fetch_sub(&shared->msgs, 1);
		return;
	}
	atomic_fetch_sub(&shared->msgs, 1); /* the pool here holds the record now */
	s->pool = pool;
	s->state = SV_CLOSED;
	list_init(&s->node);
	set_server_state(s, SV_ACTIVE);
	if (pool->asks_pending)
		pool->asks_pending--;
	offer_server(pool, s);
}

/* Never delivered (shutdown): the server is closed; its slot no longer matters. */
static void server_move_drop(struct inbox_item *item)
{
	struct server_move_msg *m = (struct server_move_msg *)item;
	server_teardown(m->server);
	free(m->server);
	atomic_fetch_sub(&m->shared->msgs, 1);
	server_move_free(m);
}

/* Takes s out of this worker (it must be idle or just freed by its client) and posts
 * it to worker to.  Its server slot travels with it. */
static void send_server(struct server *s, int to)
{
	struct pool *pool = s->pool;
	struct server_move_msg *m = calloc(1, sizeof(*m));
	if (m)
		m->password = pool->login_password ? strdup(pool->login_password) : NULL;
	if (!m || (pool->login_password && !m->password)) {
		if (m)
			server_move_free(m);
		pool_close_server(s, "out of memory moving a server between workers");
		return;
	}
	m->item.run = server_move_run;
	m->item.drop = server_move_drop;
	m->server = s;
	m->shared = pool->shared;
	atomic_fetch_add(&m->shared->msgs, 1);
	/* Out of this worker's lists and event loop; libpq keeps the socket. */
	leave_state(s);
	s->state = SV_CLOSED;
	server_detach(s);
	s->pool = NULL;
	log_debug("event=server_moved server=%llu from=%d to=%d", (unsigned long long)s->id,
		  pool->env->worker_id, to);
	inbox_post(pool->env->inboxes[to], &m->item);
}

static void fail_waiter(struct pool *pool, struct pool_waiter *w, const char *sqlstate,
			const char *message)
{
	pool_dequeue(pool, w);
	activate_fail(pool->env, w, sqlstate, message);
}

static void fail_all_waiters(struct pool *pool, const char *sqlstate, const char *message)
{
	struct pool_waiter *w;
	while ((w = wait_queue_head(&pool->waiting)) != NULL)
		fail_waiter(pool, w, sqlstate, message);
}

/* Lifetime is checked when a server comes back, never while a client uses it. */
static bool past_lifetime(const struct server *s, usec_t now)
{
	double lifetime = s->pool->env->cfg->server_lifetime;
	return lifetime > 0 && now - s->created >= (usec_t)(lifetime * USEC_PER_SEC);
}

void pool_release(struct server *s)
{
	struct pool *pool = s->pool;
	if (s->cancels_in_flight) {
		/* A cancel meant for the last client's query may still reach this backend:
		 * nobody else gets it before that cancel has been delivered. */
		s->owner = NULL;
		s->cancel_done = pool_release;
		return;
	}
	s->cancel_done = NULL;
	if (past_lifetime(s, clock_now_usec())) {
		pool_close_server(s, "server_lifetime reached");
		return;
	}
	offer_server(pool, s);
}

/* The server is gone for good: its slot goes back and waiters may get a new login. */
static void finish_close(struct server *s)
{
	struct pool *pool = s->pool;
	server_teardown(s);
	set_server_state(s, SV_CLOSED);
	if (s->pool_slot_returned)
		pool_shared_put_slot_rest(pool->shared);
	else
		pool_shared_put_slot(pool->shared);
	event_active(pool->env->reap_ev, 0, 0);
	grow_for_waiters(pool);
}

static void closing_read(struct stream *io, void *arg)
{
	struct evbuffer *in = stream_input(io);
	evbuffer_drain(in, evbuffer_get_length(in)); /* the cancelled query's last words */
}

/* The Terminate is out: the end of the stream follows it.  A backend that a client
 * left in the middle of a message (half a CopyData, half a Query) reads the Terminate
 * as more of that message and waits for the rest, its pool slot taken, for ever; the
 * end of the stream ends it (PostgreSQL exits on EOF from its client). */
static void closing_write(struct stream *io, void *arg)
{
	if (evbuffer_get_length(stream_output(io)) == 0)
		(void)shutdown(stream_fd(io), SHUT_WR);
}

static void closing_event(struct stream *io, short what, void *arg)
{
	struct server *s = arg;
	if (what & BEV_EVENT_TIMEOUT) {
		/* The backend still runs (a query that ignores cancels): it keeps its slot, as
		 * PostgreSQL still counts it, and is asked again. */
		log_warn("event=server_exit_wait server=%llu pid=%d waited_s=%d "
			 "msg=\"backend has not exited; its pool slot stays taken\"",
			 (unsigned long long)s->id, s->backend_pid, SERVER_EXIT_TIMEOUT_SEC);
		(void)server_cancel(s);
		stream_enable(io, EV_READ);
		return;
	}
	finish_close(s);
}

void pool_close_server(struct server *s, const char *reason)
{
	struct pool *pool = s->pool;
	char why[512];
	log_info("event=server_closed server=%llu db=%s user=%s pid=%d state=%s reason=\"%s\"",
		 (unsigned long long)s->id, pool->db_name, pool->user, s->backend_pid,
		 server_state_name(s->state), log_clean(reason, why, sizeof(why)));
	if (s->state == SV_CLOSING || s->state == SV_CLOSED)
		return;
	/* A client's query may run on it (not on one only reserved for a waiter). */
	bool busy = s->state == SV_ACTIVE && !s->reserved_for;
	requeue_reserved(pool, s);
	if (!s->io || s->state == SV_LOGIN || pool->env->shutting_down) {
		finish_close(s);
		return;
	}
	/* Whatever the owner had running on it (a reset, a drain) ends here. */
	if (s->job) {
		s->job_free(s->job);
		s->job = NULL;
	}
	s->owner = NULL;
	s->cancel_done = NULL;
	set_server_state(s, SV_CLOSING);
	/* PostgreSQL counts the backend until it exits, and it reads the Terminate only
	 * once a running query ends: cancel that, and keep the slot until the backend
	 * closes the connection, so the pool never has more backends than its size. */
	if (busy)
		(void)server_cancel(s);
	static const char terminate[] = { 'X', 0, 0, 0, 4 };
	stream_setcb(s->io, closing_read, closing_write, closing_event, s);
	stream_setwatermark(s->io, EV_READ, 0, 0);
	stream_setwatermark(s->io, EV_WRITE, 0, 0);
	struct timeval tv = { SERVER_EXIT_TIMEOUT_SEC, 0 };
	stream_set_timeouts(s->io, &tv, NULL);
	/* Written at once (stream_write flushes); what the socket did not take, or a TLS
	 * stream's, goes from the write event, whose callback ends the stream after it. */
	stream_write(s->io, terminate, sizeof(terminate));
	stream_enable(s->io, EV_READ);
	if (!stream_ssl(s->io) && stream_output_length(s->io) == 0)
		closing_write(s->io, s);
}

void pool_cancel_done(struct server *s)
{
	s->cancels_in_flight--;
	if (s->state == SV_CLOSED) {
		event_active(s->pool->env->reap_ev, 0, 0);
		return;
	}
	if (s->cancels_in_flight == 0 && s->cancel_done)
		s->cancel_done(s);
}

/* libpq's messages end in a newline and may span lines; keep the first line's
 * substance for the client: 'connection to server at "h", port p failed: FATAL: ...' */
static void tidy_error(char *msg)
{
	size_t len = strlen(msg);
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

void pool_login_done(struct server *s, bool ok, const char *errmsg, const char *sqlstate)
{
	struct pool *pool = s->pool;
	usec_t now = clock_now_usec();
	if (ok) {
		logins_work(pool, now);
		params_copy(&pool->params, &s->params);
		pool->have_params = true;
		pool_shared_set_params(pool->shared, &s->params);
		log_info("event=server_login server=%llu db=%s user=%s pid=%d ms=%.1f",
			 (unsigned long long)s->id, pool->db_name, pool->user, s->backend_pid,
			 (double)(now - s->created) / 1000.0);
		offer_server(pool, s);
		grow_for_waiters(pool); /* the probe worked: logins for the rest may go together */
		return;
	}

	char msg[512];
	snprintf(msg, sizeof(msg), "server login failed: %s", errmsg ? errmsg : "unknown error");
	tidy_error(msg);
	pool_shared_set_error(pool->shared, msg);
	atomic_store(&pool->shared->failure_passes, failure_passes(sqlstate));
	bool counted = count_failed_round(pool, s, now) > 0;
	usec_t retry_at = atomic_load(&pool->shared->retry_at);
	char clean[sizeof(msg)];
	/* round=new: the backoff doubled; round=same: s was under way when its round had
	 * already failed (or when a login worked) and changes nothing. */
	log_warn("event=server_login_failed server=%llu db=%s user=%s sqlstate=%s round=%s "
		 "retry_ms=%lld error=\"%s\"",
		 (unsigned long long)s->id, pool->db_name, pool->user,
		 sqlstate && *sqlstate ? sqlstate : "none", counted ? "new" : "same",
		 retry_at > now ? (long long)(retry_at - now) / 1000 : 0LL,
		 log_clean(msg, clean, sizeof(clean)));
	server_teardown(s);
	set_server_state(s, SV_CLOSED);
	pool_shared_put_slot(pool->shared);
	event_active(pool->env->reap_ev, 0, 0);

	/* With no other server that could come free (on any worker) and logins failing
	 * longer than clients wait (or for good), tell every waiter why, rather than
	 * leave them until query_wait_timeout.  Otherwise they wait for the next probe. */
	if (atomic_load(&pool->shared->servers) == 0 && pool->waiting.n > 0 &&
	    !clients_may_wait(pool, now))
		fail_for_logins(pool, now);
	else
		grow_for_waiters(pool);
}

/* ---- timeouts --------------------------------------------------------------------- */

static void fail_pool_waiter(struct pool_waiter *w, const char *sqlstate, const char *msg,
			     void *arg)
{
	fail_waiter(arg, w, sqlstate, msg);
}

void pool_tick_waiters(struct pool_env *env, struct wait_queue *queue, usec_t now,
		       void (*fail)(struct pool_waiter *w, const char *sqlstate, const char *msg,
				    void *arg),
		       void *arg, const char *what)
{
	const struct corral_config *cfg = env->cfg;
	usec_t timeout = (usec_t)(cfg->query_wait_timeout * USEC_PER_SEC);
	usec_t notify = (usec_t)cfg->query_wait_notify_ms * 1000;
	struct list *it, *tmp;
	char msg[300];
	list_for_each_safe(it, tmp, &queue->list)
	{
		struct pool_waiter *w = list_entry(it, struct pool_waiter, node);
		usec_t waited = now - w->since;
		if (timeout > 0 && waited >= timeout) {
			snprintf(msg, sizeof(msg),
				 "canceling statement: waited query_wait_timeout (%g s) for %s",
				 cfg->query_wait_timeout, what);
			fail(w, "57014", msg, arg);
		} else if (notify > 0 && waited >= notify) {
			if (w->notified)
				continue;
			w->notified = true;
			snprintf(msg, sizeof(msg),
				 "still waiting for %s after %lld ms (query_wait_notify = %d ms)", what,
				 (long long)waited / 1000, cfg->query_wait_notify_ms);
			env->hooks->wait_notice(w, msg);
		} else {
			break; /* FIFO: everyone behind waited less */
		}
	}
}

/* min_pool_size: the pool's home worker opens servers until that many exist (over
 * all workers); they wait idle, and move to wherever clients need them. */
static void keep_min_pool(struct pool *pool, usec_t now)
{
	struct pool_env *env = pool->env;
	if (pool->min_size <= 0 || pool->shared->home_worker != env->worker_id || env->shutting_down ||
	    pool->paused || atomic_load(&pool->shared->retiring))
		return;
	while (atomic_load(&pool->shared->servers) < pool->min_size) {
		if (now < atomic_load(&pool->shared->retry_at) ||
		    pool_shared_take_slot(pool->shared, pool->min_size, pool->max_db,
					  pool->max_user) != SLOT_TAKEN)
			return;
		size_t before = pool->n_login;
		launch_login(pool);
		if (pool->n_login == before)
			return;
	}
}

static void tick_pool(struct pool *pool, usec_t now)
{
	const struct corral_config *cfg = pool->env->cfg;
	struct list *it, *tmp;

	pool_tick_waiters(pool->env, &pool->waiting, now, fail_pool_waiter, pool,
			  "a server connection");
	if (cfg->server_connect_timeout > 0) {
		usec_t limit = (usec_t)(cfg->server_connect_timeout * USEC_PER_SEC);
		list_for_each_safe(it, tmp, &pool->login)
		{
			struct server *s = list_entry(it, struct server, node);
			if (now - s->created >= limit) {
				char msg[160];
				snprintf(msg, sizeof(msg), "timed out after %g s (server_connect_timeout)",
					 cfg->server_connect_timeout);
				pool_login_done(s, false, msg, NULL);
			}
		}
	}
	/* Waiters left queued behind a failed login, a busy pool or an ask another
	 * worker could not serve get another try (logins wait out their backoff). */
	pool->asks_pending = 0;
	if (pool->waiting.n > pool->n_login)
		grow_for_waiters(pool);
	keep_min_pool(pool, now);

	usec_t idle_limit = (usec_t)(cfg->server_idle_timeout * USEC_PER_SEC);
	list_for_each_safe(it, tmp, &pool->idle)
	{
		struct server *s = list_entry(it, struct server, node);
		if (past_lifetime(s, now)) {
			pool_close_server(s, "server_lifetime reached");
		} else if (idle_limit > 0 && now - s->state_since >= idle_limit &&
			   pool_shared_claim_close(pool->shared, pool->min_size)) {
			s->pool_slot_returned = true;
			pool_close_server(s, "server_idle_timeout reached");
		}
	}
	relieve_starving(pool);
	pool_tick_removed(pool);
}

void pool_env_tick(struct pool_env *env, usec_t now)
{
	struct list *it, *tmp;
	bool dropped = false;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *pool = list_entry(it, struct pool, node);
		if (atomic_load(&pool->shared->retiring))
			dropped |= pool_retire_tick(pool);
		else
			tick_pool(pool, now);
	}
	if (dropped && env->registry)
		pool_registry_sweep(env->registry);
	app_gates_tick(env, now);
}

void pool_env_prewarm(struct pool_env *env)
{
	const struct corral_config *cfg = env->cfg;
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		const struct db_config *db = &cfg->dbs[i];
		if (db->user && config_min_pool_size(cfg, db) > 0 && !pool_get(env, db, db->user, NULL))
			log_error("event=prewarm_failed db=%s error=\"out of memory\"", db->name);
	}
}

void pool_env_shutdown(struct pool_env *env)
{
	if (!env->reap_ev)
		return; /* never initialised */
	activate_free(env); /* nobody is told anything any more */
	struct list *it, *tmp, *sit, *stmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *pool = list_entry(it, struct pool, node);
		struct list *lists[] = { &pool->login, &pool->idle, &pool->active, &pool->closing };
		for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
			list_for_each_safe(sit, stmp, lists[i])
			{
				struct server *s = list_entry(sit, struct server, node);
				server_teardown(s);
				set_server_state(s, SV_CLOSED);
				pool_shared_put_slot(pool->shared);
			}
		}
		list_del(&pool->node);
		pool_free(pool);
	}
	list_for_each_safe(it, tmp, &env->app_gates)
	{
		list_del(it);
		free(list_entry(it, struct app_gate, node));
	}
	/* The cancel thread has stopped and its completions will never run. */
	list_for_each_safe(it, tmp, &env->dead_servers)
		list_entry(it, struct server, node)->cancels_in_flight = 0;
	reap_dead(-1, 0, env);
	for (size_t i = 0; i < env->n_paused_dbs; i++)
		free(env->paused_dbs[i]);
	free(env->paused_dbs);
	env->paused_dbs = NULL;
	env->n_paused_dbs = 0;
	if (env->reap_ev)
		event_free(env->reap_ev);
	env->reap_ev = NULL;
}
