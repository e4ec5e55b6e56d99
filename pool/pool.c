#include "pool/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void reap_dead(evutil_socket_t fd, short what, void *arg)
{
	struct pool_env *env = arg;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->dead_servers)
	{
		struct server *s = list_entry(it, struct server, node);
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
	list_init(&env->dead_servers);
	env->reap_ev = event_new(base, -1, 0, reap_dead, env);
	return env->reap_ev != NULL;
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
	case SV_CLOSED:
		break;
	}
	return &pool->env->dead_servers;
}

static size_t *state_count(struct pool *pool, enum server_state st)
{
	static size_t closed_sink;
	switch (st) {
	case SV_LOGIN:
		return &pool->n_login;
	case SV_IDLE:
		return &pool->n_idle;
	case SV_ACTIVE:
		return &pool->n_active;
	case SV_CLOSED:
		break;
	}
	return &closed_sink;
}

/* The one place a server changes state: it moves to the list of its new state. */
static void set_server_state(struct server *s, enum server_state st)
{
	struct pool *pool = s->pool;
	if (s->state != SV_CLOSED || !list_empty(&s->node)) {
		list_del(&s->node);
		(*state_count(pool, s->state))--;
	}
	s->state = st;
	s->state_since = clock_now_usec();
	list_append(state_list(pool, st), &s->node);
	(*state_count(pool, st))++;
}

static size_t pool_server_count(const struct pool *pool)
{
	return pool->n_login + pool->n_idle + pool->n_active;
}

/* ---- pools ------------------------------------------------------------------------ */

static bool build_login_params(struct pool *pool, const char *user, const char *password)
{
	const struct db_config *db = pool->db;
	size_t n = db->n_conn + 3; /* + user, password, NULL */
	pool->login_keys = calloc(n, sizeof(char *));
	pool->login_vals = calloc(n, sizeof(char *));
	if (!pool->login_keys || !pool->login_vals)
		return false;
	size_t k = 0;
	for (size_t i = 0; i < db->n_conn; i++) {
		pool->login_keys[k] = db->conn_keys[i];
		pool->login_vals[k++] = db->conn_vals[i];
	}
	if (!db->user) {
		pool->login_keys[k] = "user";
		pool->login_vals[k++] = user;
	}
	if (!db->password && password) {
		pool->login_password = strdup(password);
		if (!pool->login_password)
			return false;
		pool->login_keys[k] = "password";
		pool->login_vals[k++] = pool->login_password;
	}
	return true;
}

static void pool_free(struct pool *pool)
{
	free(pool->login_keys);
	free(pool->login_vals);
	free(pool->login_password);
	free(pool->user);
	free(pool->last_login_error);
	params_clear(&pool->params);
	free(pool);
}

struct pool *pool_get(struct pool_env *env, const struct db_config *db, const char *user,
		      const char *password)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *p = list_entry(it, struct pool, node);
		if (p->db == db && strcmp(p->user, user) == 0)
			return p;
	}
	struct pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return NULL;
	pool->env = env;
	pool->db = db;
	pool->user = strdup(user);
	pool->size = config_pool_size(env->cfg, db);
	pool->mode = config_pool_mode(env->cfg, db);
	list_init(&pool->login);
	list_init(&pool->idle);
	list_init(&pool->active);
	list_init(&pool->waiting);
	if (!pool->user || !build_login_params(pool, pool->user, password)) {
		pool_free(pool);
		return NULL;
	}
	list_append(&env->pools, &pool->node);
	log_info("event=pool_created db=%s user=%s pool_size=%d pool_mode=%s", db->name, user,
		 pool->size, pool_mode_name(pool->mode));
	return pool;
}

/* ---- servers ---------------------------------------------------------------------- */

static void idle_server_event(struct bufferevent *bev, short what, void *arg)
{
	struct server *s = arg;
	pool_close_server(s, (what & BEV_EVENT_EOF) ? "server closed the connection while idle"
						     : "server connection error while idle");
}

/* An idle server has nothing to say; if it talks anyway (a FATAL before it exits, an
 * admin's pg_terminate_backend) it cannot be trusted with a client. */
static void idle_server_read(struct bufferevent *bev, void *arg)
{
	pool_close_server(arg, "server sent data while idle");
}

static void park_idle(struct server *s)
{
	s->owner = NULL;
	set_server_state(s, SV_IDLE);
	bufferevent_setcb(s->bev, idle_server_read, NULL, idle_server_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	bufferevent_enable(s->bev, EV_READ);
}

static void hand_to_waiter(struct pool *pool, struct server *s)
{
	struct pool_waiter *w = list_entry(list_first(&pool->waiting), struct pool_waiter, node);
	list_del(&w->node);
	w->queued = false;
	pool->n_waiting--;
	set_server_state(s, SV_ACTIVE);
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	pool->env->hooks->server_ready(w, s);
}

static void launch_login(struct pool *pool)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s) {
		log_error("event=server_login_failed db=%s user=%s error=\"out of memory\"",
			  pool->db->name, pool->user);
		return;
	}
	s->pool = pool;
	s->id = ++pool->env->next_server_id;
	s->created = clock_now_usec();
	s->login_fd = -1;
	s->state = SV_CLOSED;
	list_init(&s->node);
	set_server_state(s, SV_LOGIN);
	log_debug("event=server_login_start server=%llu db=%s user=%s", (unsigned long long)s->id,
		  pool->db->name, pool->user);
	if (!server_login_start(s, pool->login_keys, pool->login_vals))
		pool_login_done(s, false, s->conn ? PQerrorMessage(s->conn) : "out of memory");
}

/* Starts as many logins as there are waiters not yet covered by one, within size. */
static void grow_for_waiters(struct pool *pool)
{
	while (pool->n_login < pool->n_waiting && pool_server_count(pool) < (size_t)pool->size) {
		size_t before = pool->n_login;
		launch_login(pool);
		if (pool->n_login == before)
			break; /* it failed synchronously; the waiters were told */
	}
}

struct server *pool_checkout(struct pool *pool, struct pool_waiter *w)
{
	struct list *first = list_first(&pool->idle);
	if (first && list_empty(&pool->waiting)) {
		struct server *s = list_entry(first, struct server, node);
		set_server_state(s, SV_ACTIVE);
		bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
		return s;
	}
	w->since = clock_now_usec();
	w->queued = true;
	list_append(&pool->waiting, &w->node);
	pool->n_waiting++;
	if (first) /* waiters ahead of w: serve them in order */
		hand_to_waiter(pool, list_entry(first, struct server, node));
	grow_for_waiters(pool);
	return NULL;
}

void pool_dequeue(struct pool *pool, struct pool_waiter *w)
{
	if (!w->queued)
		return;
	list_del(&w->node);
	w->queued = false;
	pool->n_waiting--;
}

static void fail_waiter(struct pool *pool, struct pool_waiter *w, const char *sqlstate,
			const char *message)
{
	pool_dequeue(pool, w);
	pool->env->hooks->wait_failed(w, sqlstate, message);
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
	if (past_lifetime(s, clock_now_usec())) {
		pool_close_server(s, "server_lifetime reached");
		return;
	}
	if (!list_empty(&pool->waiting))
		hand_to_waiter(pool, s);
	else
		park_idle(s);
}

void pool_close_server(struct server *s, const char *reason)
{
	struct pool *pool = s->pool;
	log_info("event=server_closed server=%llu db=%s user=%s pid=%d state=%s reason=\"%s\"",
		 (unsigned long long)s->id, pool->db->name, pool->user, s->backend_pid,
		 server_state_name(s->state), reason);
	server_teardown(s);
	set_server_state(s, SV_CLOSED);
	event_active(pool->env->reap_ev, 0, 0);
	grow_for_waiters(pool);
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

void pool_login_done(struct server *s, bool ok, const char *errmsg)
{
	struct pool *pool = s->pool;
	if (ok) {
		free(pool->last_login_error);
		pool->last_login_error = NULL;
		params_copy(&pool->params, &s->params);
		pool->have_params = true;
		log_info("event=server_login server=%llu db=%s user=%s pid=%d ms=%.1f",
			 (unsigned long long)s->id, pool->db->name, pool->user, s->backend_pid,
			 (double)(clock_now_usec() - s->created) / 1000.0);
		if (!list_empty(&pool->waiting))
			hand_to_waiter(pool, s);
		else
			park_idle(s);
		return;
	}

	char msg[512];
	snprintf(msg, sizeof(msg), "server login failed: %s", errmsg ? errmsg : "unknown error");
	tidy_error(msg);
	free(pool->last_login_error);
	pool->last_login_error = strdup(msg);
	pool->last_login_failure = clock_now_usec();
	char clean[sizeof(msg)];
	log_warn("event=server_login_failed server=%llu db=%s user=%s error=\"%s\"",
		 (unsigned long long)s->id, pool->db->name, pool->user,
		 log_clean(msg, clean, sizeof(clean)));
	server_teardown(s);
	set_server_state(s, SV_CLOSED);
	event_active(pool->env->reap_ev, 0, 0);

	/* With no other server that could come free, waiting is pointless: tell every
	 * waiter why, rather than leave them hanging until query_wait_timeout. */
	if (pool_server_count(pool) == 0) {
		while (!list_empty(&pool->waiting)) {
			struct pool_waiter *w =
				list_entry(list_first(&pool->waiting), struct pool_waiter, node);
			fail_waiter(pool, w, "08006", msg);
		}
	}
}

/* ---- timeouts --------------------------------------------------------------------- */

#define LOGIN_RETRY_USEC USEC_PER_SEC

static void tick_pool(struct pool *pool, usec_t now)
{
	const struct corral_config *cfg = pool->env->cfg;
	struct list *it, *tmp;

	if (cfg->query_wait_timeout > 0) {
		usec_t limit = (usec_t)(cfg->query_wait_timeout * USEC_PER_SEC);
		list_for_each_safe(it, tmp, &pool->waiting)
		{
			struct pool_waiter *w = list_entry(it, struct pool_waiter, node);
			if (now - w->since < limit)
				break; /* FIFO: the rest waited less */
			char msg[256];
			snprintf(msg, sizeof(msg),
				 "canceling statement: no server connection became free within "
				 "query_wait_timeout (%g s)",
				 cfg->query_wait_timeout);
			fail_waiter(pool, w, "57014", msg);
		}
	}
	if (cfg->server_connect_timeout > 0) {
		usec_t limit = (usec_t)(cfg->server_connect_timeout * USEC_PER_SEC);
		list_for_each_safe(it, tmp, &pool->login)
		{
			struct server *s = list_entry(it, struct server, node);
			if (now - s->created >= limit) {
				char msg[160];
				snprintf(msg, sizeof(msg), "timed out after %g s (server_connect_timeout)",
					 cfg->server_connect_timeout);
				pool_login_done(s, false, msg);
			}
		}
	}
	/* Waiters left queued by a failed login (other servers were busy) get a new
	 * login once the failure is a second old: no retry storm, no waiting forever
	 * for a server that is not coming back. */
	if (pool->n_waiting > pool->n_login && now - pool->last_login_failure >= LOGIN_RETRY_USEC)
		grow_for_waiters(pool);

	usec_t idle_limit = (usec_t)(cfg->server_idle_timeout * USEC_PER_SEC);
	list_for_each_safe(it, tmp, &pool->idle)
	{
		struct server *s = list_entry(it, struct server, node);
		if (idle_limit > 0 && now - s->state_since >= idle_limit)
			pool_close_server(s, "server_idle_timeout reached");
		else if (past_lifetime(s, now))
			pool_close_server(s, "server_lifetime reached");
	}
}

void pool_env_tick(struct pool_env *env, usec_t now)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &env->pools)
		tick_pool(list_entry(it, struct pool, node), now);
}

void pool_env_shutdown(struct pool_env *env)
{
	struct list *it, *tmp, *sit, *stmp;
	list_for_each_safe(it, tmp, &env->pools)
	{
		struct pool *pool = list_entry(it, struct pool, node);
		struct list *lists[] = { &pool->login, &pool->idle, &pool->active };
		for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
			list_for_each_safe(sit, stmp, lists[i])
			{
				struct server *s = list_entry(sit, struct server, node);
				server_teardown(s);
				set_server_state(s, SV_CLOSED);
			}
		}
		list_del(&pool->node);
		pool_free(pool);
	}
	reap_dead(-1, 0, env);
	if (env->reap_ev)
		event_free(env->reap_ev);
	env->reap_ev = NULL;
}
