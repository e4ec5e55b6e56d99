/*
 * auth_query lookups on a worker's loop (proxy/auth_query.h).  A lookup is one libpq
 * connection as auth_user: login, one PQsendQueryParams, its result, PQfinish.  Its
 * clients wait on its list (struct client_login's authq_node); the answer goes to the cache first (with
 * the claim dropped), then to the workers that follow it (answer_msg), then to each
 * client still in CL_AUTH.
 */
#include "proxy/auth_query.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "common/log.h"
#include "pool/server.h"
#include "proxy/admin.h"
#include "proxy/auth_cache.h"
#include "proxy/client.h"
#include "proxy/client_auth.h"
#include "proxy/config_store.h"
#include "proxy/worker.h"

/* LK_FOLLOW: another worker runs this user's lookup (auth_cache_get_or_claim); this
 * one only holds the clients until its answer comes through the inbox. */
enum lookup_step { LK_QUEUED, LK_LOGIN, LK_QUERY, LK_FOLLOW };

struct authq_lookup {
	struct list node; /* w->authq_lookups, oldest first */
	struct worker *w;
	enum lookup_step step;
	char *sig, *key, *user;
	uint64_t gen;
	usec_t ttl;
	char *db_name, *auth_user, *query; /* for the query and log lines */
	/* libpq's login keywords, NULL-terminated (copied: a reload may free the line) */
	char **keys, **vals;
	PGconn *conn;
	struct event *ev;
	int ev_fd;
	struct event *timer;
	usec_t started;
	struct list waiters; /* clients, through their login's authq_node */
};

static struct auth_cache *cache;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t n_lookups, n_found, n_not_found, n_failed, n_hits, n_shared;

static void make_cache(void)
{
	cache = auth_cache_new();
}

void auth_query_counters(struct auth_query_counters *out)
{
	out->lookups = atomic_load(&n_lookups);
	out->found = atomic_load(&n_found);
	out->not_found = atomic_load(&n_not_found);
	out->failed = atomic_load(&n_failed);
	out->cache_hits = atomic_load(&n_hits);
	out->shared = atomic_load(&n_shared);
	pthread_once(&cache_once, make_cache);
	out->cached = cache ? auth_cache_size(cache) : 0;
}

/* The lookup's configuration: a RELOAD that changes any of it drops the cache. */
static char *signature(const struct corral_config *cfg)
{
	size_t n = strlen(cfg->auth_query) + 3;
	n += cfg->auth_user ? strlen(cfg->auth_user) : 0;
	n += cfg->auth_dbname ? strlen(cfg->auth_dbname) : 0;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s\x1f%s\x1f%s", cfg->auth_query,
			 cfg->auth_user ? cfg->auth_user : "",
			 cfg->auth_dbname ? cfg->auth_dbname : "");
	return s;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void lookup_free(struct authq_lookup *lk)
{
	list_del(&lk->node);
	if (lk->ev)
		event_free(lk->ev);
	if (lk->timer)
		event_free(lk->timer);
	if (lk->conn)
		PQfinish(lk->conn); /* non-blocking by then: the Terminate never waits */
	free(lk->sig);
	free(lk->key);
	free(lk->user);
	free(lk->db_name);
	free(lk->auth_user);
	free(lk->query);
	free_strv(lk->keys);
	if (lk->vals)
		for (size_t i = 0; lk->vals[i]; i++) /* one may be a password */
			memset(lk->vals[i], 0, strlen(lk->vals[i]));
	free_strv(lk->vals);
	free(lk);
}

static void start_next(struct worker *w);
static void report(struct authq_lookup *lk, const struct user_secret *sec, const char *sqlstate,
		   const char *why);
static void deliver(struct authq_lookup *lk, const struct user_secret *sec, const char *sqlstate,
		    const char *why);
static struct authq_lookup *find_lookup(struct worker *w, const char *sig, const char *key,
					const char *user);

/* A lookup's answer for another worker whose clients wait for it (LK_FOLLOW there). */
struct answer_msg {
	struct inbox_item item;
	char *sig, *key, *user;
	bool found, failed;
	struct user_secret sec;
	char sqlstate[6];
	char why[512];
};

static void answer_free(struct inbox_item *item)
{
	struct answer_msg *m = container_of(item, struct answer_msg, item);
	free(m->sig);
	free(m->key);
	free(m->user);
	if (m->found)
		auth_secret_free(&m->sec);
	free(m);
}

static void finish(struct authq_lookup *lk, const struct user_secret *sec, const char *sqlstate,
		   const char *why);

static void answer_run(struct inbox_item *item, void *ctx)
{
	struct answer_msg *m = container_of(item, struct answer_msg, item);
	struct worker *w = container_of(ctx, struct worker, pools);
	struct authq_lookup *lk = find_lookup(w, m->sig, m->key, m->user);
	if (lk && lk->step == LK_FOLLOW) /* else its clients left, or it timed out */
		finish(lk, m->found ? &m->sec : NULL, m->failed ? m->sqlstate : NULL, m->why);
	answer_free(item);
}

static void tell_worker(struct authq_lookup *lk, int to, const struct user_secret *sec,
			const char *sqlstate, const char *why)
{
	struct answer_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return; /* its clients time out */
	m->item.run = answer_run;
	m->item.drop = answer_free;
	m->sig = strdup(lk->sig);
	m->key = strdup(lk->key);
	m->user = strdup(lk->user);
	m->failed = sqlstate != NULL;
	if (sqlstate)
		snprintf(m->sqlstate, sizeof(m->sqlstate), "%s", sqlstate);
	snprintf(m->why, sizeof(m->why), "%s", why ? why : "");
	m->found = sec && auth_secret_copy(sec, &m->sec);
	if (!m->sig || !m->key || !m->user || (sec && !m->found)) {
		answer_free(&m->item);
		return;
	}
	inbox_post(lk->w->shared->inboxes[to], &m->item);
}

/*
 * The lookup is over: sec (NULL: no such user) is cached, unless sqlstate says it
 * failed; then each client still waiting goes on (or fails), and the lookup is freed.
 */
static void finish(struct authq_lookup *lk, const struct user_secret *sec, const char *sqlstate,
		   const char *why)
{
	struct worker *w = lk->w;
	if (lk->step != LK_FOLLOW)
		report(lk, sec, sqlstate, why);
	else
		log_debug("event=auth_query_answer worker=%d from=other_worker", w->id);
	deliver(lk, sec, sqlstate, why);
	lookup_free(lk);
	start_next(w);
}

/* This worker ran the lookup: logged, counted, cached, and told to the workers whose
 * clients wait for it. */
static void report(struct authq_lookup *lk, const struct user_secret *sec, const char *sqlstate,
		   const char *why)
{
	double ms = (double)(clock_now_usec() - lk->started) / 1000.0;
	char u[130], d[130];
	log_clean(lk->user, u, sizeof(u));
	log_clean(lk->db_name, d, sizeof(d));
	if (sqlstate) {
		atomic_fetch_add(&n_failed, 1);
		char msg[600];
		log_warn(
			"event=auth_query_failed user=\"%s\" db=\"%s\" auth_user=\"%s\" sqlstate=%s "
			"ms=%.1f error=\"%s\"",
			u, d, lk->auth_user, sqlstate, ms, log_clean(why, msg, sizeof(msg)));
	} else {
		atomic_fetch_add(sec ? &n_found : &n_not_found, 1);
		/* Never the secret itself; only whether there was one. */
		log_info("event=auth_query_lookup user=\"%s\" db=\"%s\" auth_user=\"%s\" result=%s "
			 "ms=%.1f",
			 u, d, lk->auth_user, sec ? "found" : "not_found", ms);
	}
	struct auth_cache_waiters others;
	auth_cache_finish(cache, lk->sig, lk->gen, lk->key, lk->user, sec, sqlstate != NULL,
			  clock_now_usec(), lk->ttl, &others);
	for (int i = 0; i < lk->w->shared->n_workers && i < AUTH_CACHE_WORKERS; i++)
		if (i != lk->w->id && (others.bits[i / 64] >> (i % 64)) & 1)
			tell_worker(lk, i, sec, sqlstate, why);
}

/* Each client still waiting goes on with the answer, or fails with the lookup. */
static void deliver(struct authq_lookup *lk, const struct user_secret *sec, const char *sqlstate,
		    const char *why)
{
	struct list *it;
	while ((it = list_first(&lk->waiters)) != NULL) {
		struct client *c = container_of(it, struct client_login, authq_node)->client;
		auth_query_detach(c);
		if (c->state != CL_AUTH)
			continue; /* failed meanwhile (login timeout): closing */
		c->login->authq_tried = true;
		if (sqlstate) {
			client_auth_resume(c, sqlstate, why);
			continue;
		}
		if (sec) {
			c->login->own_secret = malloc(sizeof(*c->login->own_secret));
			if (!c->login->own_secret || !auth_secret_copy(sec, c->login->own_secret)) {
				free(c->login->own_secret);
				c->login->own_secret = NULL;
				client_auth_resume(c, "53200", "out of memory");
				continue;
			}
			c->login->secret = c->login->own_secret;
		}
		client_auth_resume(c, NULL, NULL);
	}
}

/* The lookup failed for a reason of its own (login, query, timeout). */
static void fail_lookup(struct authq_lookup *lk, const char *sqlstate, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

static void fail_lookup(struct authq_lookup *lk, const char *sqlstate, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	finish(lk, NULL, sqlstate, why);
}

/* libpq's message up to its first line end (the rest is DETAIL / LOCATION). */
static const char *first_line(const char *msg, char *buf, size_t len)
{
	snprintf(buf, len, "%s", msg ? msg : "");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static const char *cut_line(char *msg)
{
	msg[strcspn(msg, "\n")] = '\0';
	return msg;
}

static void on_socket(evutil_socket_t fd, short what, void *arg);

/* Waits for what on PQsocket; the socket may change while libpq tries hosts. */
static bool wait_socket(struct authq_lookup *lk, short what)
{
	int fd = PQsocket(lk->conn);
	if (fd < 0)
		return false;
	if (lk->ev && lk->ev_fd != fd) {
		event_free(lk->ev);
		lk->ev = NULL;
	}
	if (!lk->ev) {
		lk->ev = event_new(lk->w->base, fd, what, on_socket, lk);
		if (!lk->ev)
			return false;
		lk->ev_fd = fd;
	} else {
		event_del(lk->ev);
		event_assign(lk->ev, lk->w->base, fd, what, on_socket, lk);
	}
	return event_add(lk->ev, NULL) == 0;
}

/* The query's result: the first row's second column is the secret. */
static void take_result(struct authq_lookup *lk, PGresult *res)
{
	const char *state = PQresultStatus(res) != PGRES_TUPLES_OK
				    ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				    : NULL;
	if (state && strcmp(state, "22021") == 0) {
		/* A user name that is not valid in the database's encoding (0xff...): no
		 * role by that name can be looked up, so it is no such user, as PostgreSQL's
		 * own login answers it (28P01), not an auth_query failure told to a client
		 * that has not authenticated. */
		finish(lk, NULL, NULL, NULL);
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char line[400];
		fail_lookup(lk, "58000", "auth_query failed in database \"%s\": %s%s%s",
			    lk->db_name,
			    first_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), line,
				       sizeof(line)),
			    state ? " SQLSTATE " : "", state ? state : "");
		return;
	}
	if (PQnfields(res) < 2) {
		fail_lookup(lk, "58000",
			    "auth_query must return two columns (user name, password), got %d",
			    PQnfields(res));
		return;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 1)) {
		finish(lk, NULL, NULL, NULL);
		return;
	}
	struct user_secret sec;
	if (!auth_secret_parse(lk->user, PQgetvalue(res, 0, 1), &sec)) {
		/* An empty password or a verifier corral cannot read: not a secret anyone can
		 * log in with, and not cached (fixing the role should work at once). */
		fail_lookup(lk, "58000",
			    "auth_query returned a password corral cannot use for "
			    "user \"%s\" (empty, or a malformed SCRAM verifier)",
			    lk->user);
		return;
	}
	finish(lk, &sec, NULL, NULL);
	auth_secret_free(&sec);
}

static void query_step(struct authq_lookup *lk, short what)
{
	if (what & EV_READ) {
		if (!PQconsumeInput(lk->conn)) {
			char line[400];
			fail_lookup(lk, "08006", "auth_query connection lost: %s",
				    first_line(PQerrorMessage(lk->conn), line, sizeof(line)));
			return;
		}
	}
	int f = PQflush(lk->conn);
	if (f < 0) {
		fail_lookup(lk, "08006", "auth_query connection lost while sending the query");
		return;
	}
	if (f == 0 && !PQisBusy(lk->conn)) {
		/* Every result up to the NULL, so the connection is left idle for PQfinish. */
		PGresult *first = NULL, *res;
		while ((res = PQgetResult(lk->conn)) != NULL) {
			if (!first)
				first = res;
			else
				PQclear(res);
		}
		if (!first) {
			fail_lookup(lk, "58000", "auth_query returned no result");
			return;
		}
		take_result(lk, first);
		PQclear(first);
		return;
	}
	if (!wait_socket(lk, f == 1 ? EV_READ | EV_WRITE : EV_READ))
		fail_lookup(lk, "08006", "cannot wait for the auth_query socket");
}

static void send_query(struct authq_lookup *lk)
{
	if (PQsetnonblocking(lk->conn, 1) != 0) {
		fail_lookup(lk, "08006", "cannot make the auth_query connection non-blocking");
		return;
	}
	const char *params[1] = {lk->user};
	if (!PQsendQueryParams(lk->conn, lk->query, 1, NULL, params, NULL, NULL, 0)) {
		char line[400];
		fail_lookup(lk, "58000", "cannot send auth_query: %s",
			    first_line(PQerrorMessage(lk->conn), line, sizeof(line)));
		return;
	}
	lk->step = LK_QUERY;
	query_step(lk, 0);
}

static void login_step(struct authq_lookup *lk)
{
	switch (PQconnectPoll(lk->conn)) {
	case PGRES_POLLING_READING:
		if (!wait_socket(lk, EV_READ))
			fail_lookup(lk, "08006", "cannot wait for the auth_query socket");
		return;
	case PGRES_POLLING_WRITING:
		if (!wait_socket(lk, EV_WRITE))
			fail_lookup(lk, "08006", "cannot wait for the auth_query socket");
		return;
	case PGRES_POLLING_OK:
		send_query(lk);
		return;
	default: {
		/* libpq's message names the cause (no password, refused, no such database)
		 * and never the password. */
		char msg[400], sqlstate[6];
		server_split_login_error(PQerrorMessage(lk->conn), msg, sizeof(msg), sqlstate);
		fail_lookup(
			lk, "08006",
			"auth_query could not log in as auth_user \"%s\" to database \"%s\": %s",
			lk->auth_user, lk->db_name, cut_line(msg));
		return;
	}
	}
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct authq_lookup *lk = arg;
	(void)fd;
	if (lk->step == LK_LOGIN)
		login_step(lk);
	else
		query_step(lk, what);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct authq_lookup *lk = arg;
	(void)fd;
	(void)what;
	fail_lookup(lk, "08006", "auth_query in database \"%s\" timed out (server_connect_timeout)",
		    lk->db_name);
}

static size_t running(const struct worker *w)
{
	size_t n = 0;
	for (const struct list *it = w->authq_lookups.next; it != &w->authq_lookups; it = it->next)
		n += container_of(it, struct authq_lookup, node)->step == LK_LOGIN ||
		     container_of(it, struct authq_lookup, node)->step == LK_QUERY;
	return n;
}

/* Opens the connection of a queued lookup; false (the lookup failed) otherwise. */
static void launch(struct authq_lookup *lk)
{
	lk->step = LK_LOGIN;
	atomic_fetch_add(&n_lookups, 1);
	lk->conn = PQconnectStartParams((const char *const *)lk->keys,
					(const char *const *)lk->vals, 0);
	if (!lk->conn || PQstatus(lk->conn) == CONNECTION_BAD) {
		char msg[400], sqlstate[6];
		server_split_login_error(lk->conn ? PQerrorMessage(lk->conn) : "out of memory", msg,
					 sizeof(msg), sqlstate);
		fail_lookup(lk, "08006", "auth_query could not connect to database \"%s\": %s",
			    lk->db_name, cut_line(msg));
		return;
	}
	PQsetErrorVerbosity(lk->conn, PQERRORS_VERBOSE); /* SQLSTATE in the message */
	if (!wait_socket(lk, EV_WRITE))
		fail_lookup(lk, "08006", "cannot wait for the auth_query socket");
}

/*
 * Queued lookups start, oldest first, as running ones end.  One whose clients all left
 * runs too: clients of other workers may wait for it (its claim), and its answer fills
 * the cache; its timer, running since it was queued, bounds how long it is kept.
 */
static void start_next(struct worker *w)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &w->authq_lookups)
	{
		if (running(w) >= AUTHQ_MAX_RUNNING)
			return;
		struct authq_lookup *lk = container_of(it, struct authq_lookup, node);
		if (lk->step != LK_QUEUED)
			continue;
		launch(lk);
		/* launch may have failed and freed lk, and with it tmp's neighbour: restart. */
		start_next(w);
		return;
	}
}

static bool add_param(char **keys, char **vals, size_t *n, const char *k, const char *v)
{
	keys[*n] = strdup(k);
	vals[*n] = strdup(v);
	(*n)++;
	return keys[*n - 1] && vals[*n - 1];
}

/* The lookup db line's keywords with auth_user's user and password. */
static bool build_params(struct authq_lookup *lk, const struct db_config *db,
			 const struct auth_file *af)
{
	size_t cap = db->n_conn + 4;
	lk->keys = calloc(cap, sizeof(char *));
	lk->vals = calloc(cap, sizeof(char *));
	if (!lk->keys || !lk->vals)
		return false;
	size_t n = 0;
	bool ok = true;
	for (size_t i = 0; ok && i < db->n_conn; i++)
		if (strcmp(db->conn_keys[i], "user") != 0 &&
		    strcmp(db->conn_keys[i], "password") != 0)
			ok = add_param(lk->keys, lk->vals, &n, db->conn_keys[i], db->conn_vals[i]);
	/* auth_user's password as PgBouncer finds it: auth_file (plaintext), else the line's
	 * own when the line logs in as auth_user; else none (trust, or .pgpass). */
	const struct user_secret *us = auth_file_find(af, lk->auth_user);
	const char *password = NULL;
	if (us && us->kind == SECRET_PLAIN)
		password = us->secret;
	else if (db->user && strcmp(db->user, lk->auth_user) == 0)
		password = db->password;
	ok = ok && add_param(lk->keys, lk->vals, &n, "user", lk->auth_user);
	if (ok && password)
		ok = add_param(lk->keys, lk->vals, &n, "password", password);
	if (ok)
		ok = add_param(lk->keys, lk->vals, &n, "fallback_application_name",
			       "corral auth_query");
	return ok;
}

static struct authq_lookup *new_lookup(struct client *c, const struct db_config *lookup_db,
				       const char *auth_user, char *sig, char *key, bool follow)
{
	const struct corral_config *cfg = &c->login->auth_snap->cfg;
	struct authq_lookup *lk = calloc(1, sizeof(*lk));
	if (!lk)
		return NULL;
	list_init(&lk->node);
	list_init(&lk->waiters);
	lk->w = c->worker;
	lk->sig = sig;
	lk->key = key;
	lk->gen = c->login->auth_snap->generation;
	lk->ttl = (usec_t)(cfg->auth_query_cache_ttl * USEC_PER_SEC);
	lk->started = clock_now_usec();
	lk->ev_fd = -1;
	lk->user = strdup(c->user);
	lk->db_name = strdup(lookup_db->name);
	lk->auth_user = strdup(auth_user);
	lk->query = strdup(cfg->auth_query);
	/* A follower waits a second longer than the worker that runs the lookup, whose
	 * own timeout is then the one its clients hear about. */
	double t = cfg->server_connect_timeout + (follow ? 1 : 0);
	struct timeval tv = {(time_t)t, (suseconds_t)((t - (double)(time_t)t) * 1e6)};
	lk->timer = evtimer_new(c->worker->base, on_timeout, lk);
	if (follow)
		lk->step = LK_FOLLOW;
	if (!lk->user || !lk->db_name || !lk->auth_user || !lk->query || !lk->timer ||
	    (!follow && !build_params(lk, lookup_db, &c->login->auth_snap->auth)) ||
	    evtimer_add(lk->timer, &tv) != 0) {
		lk->sig = lk->key = NULL; /* the caller frees them */
		lookup_free(lk);
		return NULL;
	}
	list_append(&c->worker->authq_lookups, &lk->node);
	return lk;
}

static struct authq_lookup *find_lookup(struct worker *w, const char *sig, const char *key,
					const char *user)
{
	for (struct list *it = w->authq_lookups.next; it != &w->authq_lookups; it = it->next) {
		struct authq_lookup *lk = container_of(it, struct authq_lookup, node);
		if (strcmp(lk->user, user) == 0 && strcmp(lk->key, key) == 0 &&
		    strcmp(lk->sig, sig) == 0)
			return lk;
	}
	return NULL;
}

bool auth_query_start(struct client *c, int method)
{
	const struct corral_config *cfg = &c->login->auth_snap->cfg;
	if (admin_is_console(cfg, c->database))
		return false; /* console users are auth_file's */
	const struct db_config *db = config_find_db(cfg, c->database);
	const char *auth_user = config_auth_user(cfg, db);
	if (!auth_user)
		return false;
	/* Without a database line (and no auth_dbname) there is nowhere to ask: the client
	 * hears a wrong password, as for a user that does not exist. */
	const struct db_config *lookup_db = cfg->auth_dbname && cfg->auth_dbname[0]
						    ? config_find_db(cfg, cfg->auth_dbname)
						    : db;
	if (!lookup_db)
		return false; /* logged as a user not in auth_file */
	c->login->authq_tried = true;
	pthread_once(&cache_once, make_cache);
	char *sig = signature(cfg);
	size_t klen = strlen(lookup_db->name) + strlen(auth_user) + 2;
	char *key = malloc(klen);
	if (!sig || !key || !cache)
		goto oom;
	snprintf(key, klen, "%s\x1f%s", lookup_db->name, auth_user);

	/* Clients of this worker asking for the same user join its lookup. */
	struct authq_lookup *lk = find_lookup(c->worker, sig, key, c->user);
	if (lk) {
		atomic_fetch_add(&n_shared, 1);
		free(sig);
		free(key);
		goto join;
	}
	struct user_secret sec;
	usec_t stale = (usec_t)((cfg->server_connect_timeout + 5) * USEC_PER_SEC);
	enum auth_cache_result r = auth_cache_get_or_claim(cache, sig,
							   c->login->auth_snap->generation, key,
							   c->user, clock_now_usec(), c->worker->id,
							   stale, &sec);
	switch (r) {
	case AUTH_CACHE_FOUND:
		c->login->own_secret = malloc(sizeof(*c->login->own_secret));
		if (!c->login->own_secret) {
			auth_secret_free(&sec);
			goto oom;
		}
		*c->login->own_secret = sec;
		c->login->secret = c->login->own_secret;
		/* fall through */
	case AUTH_CACHE_NOT_FOUND:
		atomic_fetch_add(&n_hits, 1);
		free(sig);
		free(key);
		return false;
	case AUTH_CACHE_PENDING:
		atomic_fetch_add(&n_shared, 1);
		break;
	case AUTH_CACHE_MISS:
	case AUTH_CACHE_CLAIMED:
		break;
	}
	uint64_t gen = c->login->auth_snap->generation;
	lk = new_lookup(c, lookup_db, auth_user, sig, key, r == AUTH_CACHE_PENDING);
	if (!lk) {
		if (r == AUTH_CACHE_CLAIMED) { /* others may wait for it: they time out */
			struct auth_cache_waiters others;
			auth_cache_finish(cache, sig, gen, key, c->user, NULL, true,
					  clock_now_usec(), 0, &others);
		}
		goto oom;
	}
join:
	c->login->authq = lk;
	c->login->authq_method = (uint8_t)method;
	list_append(&lk->waiters, &c->login->authq_node);
	if (lk->step == LK_QUEUED && running(c->worker) < AUTHQ_MAX_RUNNING)
		launch(lk); /* may fail at once: c has heard, and the lookup is gone */
	return true;
oom:
	free(sig);
	free(key);
	/* The login's secret stays NULL: refused as an unknown user, and logged as such. */
	log_error("event=auth_query_failed error=\"out of memory\"");
	return false;
}

void auth_query_detach(struct client *c)
{
	if (!c->login || !c->login->authq)
		return;
	list_del(&c->login->authq_node);
	c->login->authq = NULL;
}

void auth_query_worker_shutdown(struct worker *w)
{
	struct list *it;
	while ((it = list_first(&w->authq_lookups)) != NULL) {
		struct authq_lookup *lk = container_of(it, struct authq_lookup, node);
		struct list *ci;
		while ((ci = list_first(&lk->waiters)) != NULL)
			auth_query_detach(
				container_of(ci, struct client_login, authq_node)->client);
		lookup_free(lk);
	}
}
