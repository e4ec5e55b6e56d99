#include "proxy/control.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "pool/pool.h"
#include "proxy/client.h"
#include "proxy/client_lists.h"
#include "proxy/serving.h"
#include "proxy/workers.h"

/* How often a PAUSE looks whether the paused databases' servers are gone, and a shutdown
 * that waits whether the last client has left. */
#define POLL_USEC 20000
/* Room for every error of a configuration file that does not load. */
#define RELOAD_ERRLEN 16384

/*
 * What the process has been told, for the answers (already paused? is that database
 * paused?) and for telling the workers in a consistent order: lock is held from deciding
 * to posting, so every worker's inbox gets the snapshots, pauses and resumes in the order
 * they were decided.  Only control.c's functions take it, never the hot path.
 */
static struct {
	pthread_mutex_t lock;
	struct workers *ws;
	bool paused_all;
	char **paused_dbs;
	size_t n_paused_dbs;
	bool shutting_down;
	bool waiting_for_clients;
	usec_t shutdown_deadline;  /* 0: none */
	struct event *shutdown_ev; /* worker 0's: polls for the last client */
} ctl = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Counts the workers that have done what they were told (one reference per message and
 * one for whoever waits on it). */
struct ack {
	atomic_int pending;
	atomic_int refs;
	uint64_t generation; /* a reload's */
};

static struct ack *ack_new(int workers, int refs)
{
	struct ack *a = calloc(1, sizeof(*a));
	if (a) {
		atomic_init(&a->pending, workers);
		atomic_init(&a->refs, refs);
	}
	return a;
}

static void ack_release(struct ack *a)
{
	if (a && atomic_fetch_sub(&a->refs, 1) == 1)
		free(a);
}

/* ---- messages to every worker --------------------------------------------------- */

enum control_op { OP_ADOPT, OP_PAUSE, OP_RESUME, OP_KILL, OP_STOP_ACCEPTING, OP_WATCH_SHUTDOWN };

struct control_msg {
	struct inbox_item item;
	enum control_op op;
	char *db;              /* NULL: every database */
	struct snapshot *snap; /* OP_ADOPT: a reference for the worker */
	struct ack *ack;       /* or NULL */
};

static void msg_free(struct control_msg *m)
{
	if (m->snap)
		snapshot_release(m->snap);
	ack_release(m->ack);
	free(m->db);
	free(m);
}

static void msg_drop(struct inbox_item *item)
{
	msg_free((struct control_msg *)item);
}

/* KILL: every client of db on this worker goes, as PgBouncer's KILL does. */
static void kill_clients(struct worker *w, const char *db)
{
	for (int l = 0; l < CLIENT_LIST_CLOSING; l++) {
		struct list *it, *tmp;
		list_for_each_safe(it, tmp, &w->client_list[l])
		{
			struct client *c = list_entry(it, struct client, node);
			if (c->database && strcmp(c->database, db) == 0 && c->state != CL_CLOSING &&
			    c->state != CL_CLOSED)
				client_fail(
					c, "57P01",
					"terminating connection due to administrator command (KILL \"%s\")",
					db);
		}
	}
}

static void reload_done(struct ack *a)
{
	log_info("event=reload_done generation=%llu", (unsigned long long)a->generation);
}

static void shutdown_watch(evutil_socket_t fd, short what, void *arg);

static void msg_run(struct inbox_item *item, void *ctx)
{
	struct control_msg *m = (struct control_msg *)item;
	/* A worker's inbox hands its items the worker's pool_env. */
	struct worker *w = container_of(ctx, struct worker, pools);
	switch (m->op) {
	case OP_ADOPT:
		worker_adopt(w, m->snap); /* the worker's reference now */
		m->snap = NULL;
		break;
	case OP_PAUSE:
		if (!pool_env_pause(&w->pools, m->db))
			log_error("event=pause_failed worker=%d error=\"out of memory\"", w->id);
		break;
	case OP_RESUME:
		pool_env_resume(&w->pools, m->db);
		break;
	case OP_KILL:
		if (!pool_env_pause(&w->pools, m->db))
			log_error("event=pause_failed worker=%d error=\"out of memory\"", w->id);
		kill_clients(w, m->db);
		pool_env_close_idle(&w->pools, m->db);
		break;
	case OP_STOP_ACCEPTING:
		worker_close_listener(w);
		break;
	case OP_WATCH_SHUTDOWN: {
		struct timeval tv = {0, POLL_USEC};
		event_add(ctl.shutdown_ev, &tv);
		shutdown_watch(-1, 0, NULL);
		break;
	}
	}
	if (m->ack && atomic_fetch_sub(&m->ack->pending, 1) == 1 && m->op == OP_ADOPT)
		reload_done(m->ack);
	msg_free(m);
}

static bool post(int worker, enum control_op op, const char *db, struct snapshot *snap,
		 struct ack *ack)
{
	struct control_msg *m = calloc(1, sizeof(*m));
	if (!m || (db && !(m->db = strdup(db)))) {
		free(m);
		log_error("event=control_failed worker=%d error=\"out of memory\"", worker);
		return false;
	}
	m->item.run = msg_run;
	m->item.drop = msg_drop;
	m->op = op;
	if (snap) {
		snapshot_hold(snap);
		m->snap = snap;
	}
	if (ack) {
		atomic_fetch_add(&ack->refs, 1);
		m->ack = ack;
	}
	inbox_post(ctl.ws->shared.inboxes[worker], &m->item);
	return true;
}

/* Every worker (an ack counts them; a message that cannot be made counts as done). */
static void post_all(enum control_op op, const char *db, struct snapshot *snap, struct ack *ack)
{
	for (int i = 0; i < ctl.ws->n; i++)
		if (!post(i, op, db, snap, ack) && ack)
			atomic_fetch_sub(&ack->pending, 1);
}

/* ---- reload and SET ---------------------------------------------------------------- */

/* Settings the running process cannot change: listeners and threads are set up once. */
static void keep_restart_settings(const struct corral_config *old, struct corral_config *cfg)
{
	const char *what = "msg=\"needs a restart; the running value stays in force\"";
	if (strcmp(old->listen_addr, cfg->listen_addr) != 0) {
		log_warn("event=reload_needs_restart key=listen_addr value=%s running=%s %s",
			 cfg->listen_addr, old->listen_addr, what);
		char *keep = strdup(old->listen_addr);
		if (keep) {
			free(cfg->listen_addr);
			cfg->listen_addr = keep;
		}
	}
	if (old->listen_port != cfg->listen_port) {
		log_warn("event=reload_needs_restart key=listen_port value=%d running=%d %s",
			 cfg->listen_port, old->listen_port, what);
		cfg->listen_port = old->listen_port;
	}
	if (old->workers != cfg->workers) {
		log_warn("event=reload_needs_restart key=workers value=%d running=%d %s",
			 cfg->workers, old->workers, what);
		cfg->workers = old->workers;
	}
	if (old->so_reuseport != cfg->so_reuseport) {
		log_warn("event=reload_needs_restart key=so_reuseport value=%s running=%s %s",
			 cfg->so_reuseport ? "yes" : "no", old->so_reuseport ? "yes" : "no", what);
		cfg->so_reuseport = old->so_reuseport;
	}
}

/* Makes next the configuration in force (the store takes its reference) and has every
 * worker adopt it.  Under ctl.lock. */
static void publish(struct snapshot *next, const char *how)
{
	struct worker_shared *sh = &ctl.ws->shared;
	uint64_t gen = config_store_publish(&sh->store, next);
	pool_registry_set_limits(&sh->registry, &next->cfg);
	enum log_level level;
	if (log_level_parse(next->cfg.log_level, &level))
		log_set_level(level);
	log_info("event=%s generation=%llu databases=%zu users=%zu", how, (unsigned long long)gen,
		 next->cfg.n_dbs, next->auth.n_users);
	struct ack *ack = ack_new(ctl.ws->n, 1);
	if (ack)
		ack->generation = gen;
	post_all(OP_ADOPT, NULL, next, ack);
	ack_release(ack);
}

/* Every error line of a configuration that did not load, logged; the first for err. */
static void log_refusal(const char *what, char *errors, char *err, size_t errlen)
{
	int n = 0;
	char first[512] = "";
	for (char *line = strtok(errors, "\n"); line; line = strtok(NULL, "\n"), n++) {
		char clean[1024];
		log_error("event=%s_refused error=\"%s\"", what,
			  log_clean(line, clean, sizeof(clean)));
		if (n == 0)
			snprintf(first, sizeof(first), "%s", line);
	}
	if (n > 1)
		snprintf(
			err, errlen,
			"%s refused, configuration unchanged: %s (and %d more errors, see the log)",
			what, first, n - 1);
	else
		snprintf(err, errlen, "%s refused, configuration unchanged: %s", what, first);
}

bool control_reload(char *err, size_t errlen)
{
	char *errors = malloc(RELOAD_ERRLEN);
	if (!errors) {
		snprintf(err, errlen, "RELOAD: out of memory");
		return false;
	}
	errors[0] = '\0';
	pthread_mutex_lock(&ctl.lock);
	struct snapshot *cur = config_store_acquire(&ctl.ws->shared.store);
	log_info("event=reload path=%s", cur->cfg.path);
	struct snapshot *next = snapshot_load(cur->cfg.path, errors, RELOAD_ERRLEN);
	if (next) {
		keep_restart_settings(&cur->cfg, &next->cfg);
		/* The file's listen_addr waits for a restart: trust is judged by the one the
		 * listener really has, or a reload could open trust on a public address. */
		if (next->cfg.auth_type == AUTH_TRUST &&
		    !config_listen_is_loopback(next->cfg.listen_addr)) {
			snprintf(errors, RELOAD_ERRLEN,
				 "%s: auth_type: trust refused: corral still listens on %s until "
				 "a restart; use auth_type = hba",
				 cur->cfg.path, next->cfg.listen_addr);
			snapshot_release(next);
			next = NULL;
		}
	}
	if (next) {
		publish(next, "reload_applied");
	} else {
		log_refusal("reload", errors, err, errlen);
	}
	snapshot_release(cur);
	pthread_mutex_unlock(&ctl.lock);
	free(errors);
	return next != NULL;
}

static bool needs_restart(const char *key)
{
	static const char *const keys[] = {"listen_addr", "listen_port", "workers", "so_reuseport"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (strcasecmp(keys[i], key) == 0)
			return true;
	return false;
}

bool control_settable(const char *key)
{
	return !needs_restart(key) && strcasecmp(key, "auth_file") != 0 &&
	       strcasecmp(key, "auth_hba_file") != 0 && strncasecmp(key, "client_tls_", 11) != 0;
}

bool control_set(const char *key, const char *value, char *err, size_t errlen)
{
	if (needs_restart(key)) {
		snprintf(err, errlen,
			 "SET: %s: needs a restart; change it in the file and restart corral", key);
		return false;
	}
	if (strcasecmp(key, "auth_file") == 0 || strcasecmp(key, "auth_hba_file") == 0) {
		snprintf(err, errlen, "SET: %s: change it in the file and RELOAD", key);
		return false;
	}
	/* The SSL_CTX is built from the files when the configuration is read. */
	if (strncasecmp(key, "client_tls_", 11) == 0) {
		snprintf(err, errlen, "SET: %s: change it in the file and RELOAD", key);
		return false;
	}
	pthread_mutex_lock(&ctl.lock);
	struct snapshot *cur = config_store_acquire(&ctl.ws->shared.store);
	struct corral_config cfg;
	struct auth_file auth;
	bool ok = config_set(&cur->cfg, key, value, &cfg, err, errlen);
	/* SET keeps the rules in force; it cannot read them for a switch to hba. */
	if (ok && cfg.auth_type == AUTH_HBA && cur->cfg.auth_type != AUTH_HBA) {
		config_free(&cfg);
		snprintf(err, errlen,
			 "SET: auth_type: hba reads auth_hba_file: change it in the "
			 "file and RELOAD");
		ok = false;
	}
	struct hba_rules hba = {0};
	if (ok && !auth_file_copy(&cur->auth, &auth)) {
		config_free(&cfg);
		snprintf(err, errlen, "SET: %s: out of memory", key);
		ok = false;
	}
	if (ok && !hba_copy(&cur->hba, &hba)) {
		config_free(&cfg);
		auth_file_free(&auth);
		snprintf(err, errlen, "SET: %s: out of memory", key);
		ok = false;
	}
	struct snapshot *next = ok ? snapshot_new(&cfg, &auth) : NULL;
	if (ok && !next) {
		hba_free(&hba);
		snprintf(err, errlen, "SET: %s: out of memory", key);
		ok = false;
	}
	if (next)
		next->hba = hba;
	if (next && cur->client_tls) { /* SET does not touch TLS: the same SSL_CTX */
		SSL_CTX_up_ref(cur->client_tls);
		next->client_tls = cur->client_tls;
	}
	char clean[300];
	if (ok) {
		/* Values are not logged: a key may one day hold a secret. */
		log_info("event=set key=%s", log_clean(key, clean, sizeof(clean)));
		publish(next, "set_applied");
	} else {
		log_warn("event=set_refused error=\"%s\"", log_clean(err, clean, sizeof(clean)));
	}
	snapshot_release(cur);
	pthread_mutex_unlock(&ctl.lock);
	return ok;
}

/* ---- PAUSE, RESUME, KILL ----------------------------------------------------------- */

static bool db_paused(const char *db)
{
	for (size_t i = 0; i < ctl.n_paused_dbs; i++)
		if (strcmp(ctl.paused_dbs[i], db) == 0)
			return true;
	return false;
}

/* Checks db is configured and whether it may be paused; under ctl.lock. */
static bool may_pause(const char *db, char *err, size_t errlen)
{
	if (ctl.shutting_down) {
		snprintf(err, errlen, "corral is shutting down");
		return false;
	}
	if (ctl.paused_all) {
		snprintf(err, errlen, "already paused");
		return false;
	}
	if (!db)
		return true;
	struct snapshot *cur = config_store_acquire(&ctl.ws->shared.store);
	bool known = config_find_db(&cur->cfg, db) != NULL;
	snapshot_release(cur);
	if (!known)
		snprintf(err, errlen, "no such database: %s", db);
	return known;
}

/* Records the pause (under ctl.lock). */
static bool note_paused(const char *db, char *err, size_t errlen)
{
	if (!db) {
		ctl.paused_all = true;
		serving_set(SERVING_PAUSED);
		return true;
	}
	if (db_paused(db))
		return true;
	char **dbs = realloc(ctl.paused_dbs, (ctl.n_paused_dbs + 1) * sizeof(*dbs));
	char *copy = strdup(db);
	if (dbs)
		ctl.paused_dbs = dbs;
	if (!dbs || !copy) {
		free(copy);
		snprintf(err, errlen, "out of memory");
		return false;
	}
	ctl.paused_dbs[ctl.n_paused_dbs++] = copy;
	return true;
}

struct control_wait {
	struct event *ev;
	char *db;
	struct ack *ack; /* every worker has paused */
	control_done_fn done;
	void *arg;
};

void control_wait_cancel(struct control_wait *wait)
{
	if (!wait)
		return;
	event_free(wait->ev);
	ack_release(wait->ack);
	free(wait->db);
	free(wait);
}

/* On the caller's loop: done once every worker has paused and no server is left. */
static void pause_poll(evutil_socket_t fd, short what, void *arg)
{
	struct control_wait *wait = arg;
	if (atomic_load(&wait->ack->pending) > 0 ||
	    pool_registry_db_servers(&ctl.ws->shared.registry, wait->db) > 0)
		return;
	log_info("event=pause_done db=%s", wait->db ? wait->db : "(all)");
	control_done_fn done = wait->done;
	void *done_arg = wait->arg;
	control_wait_cancel(wait);
	done(done_arg, NULL);
}

struct control_wait *control_pause(struct worker *caller, const char *db, control_done_fn done,
				   void *arg, char *err, size_t errlen)
{
	struct control_wait *wait = calloc(1, sizeof(*wait));
	if (!wait || (db && !(wait->db = strdup(db))) ||
	    !(wait->ev = event_new(caller->base, -1, EV_PERSIST, pause_poll, wait)) ||
	    !(wait->ack = ack_new(ctl.ws->n, 1))) {
		snprintf(err, errlen, "out of memory");
		control_wait_cancel(wait);
		return NULL;
	}
	wait->done = done;
	wait->arg = arg;
	pthread_mutex_lock(&ctl.lock);
	bool ok = may_pause(db, err, errlen) && note_paused(db, err, errlen);
	if (ok) {
		log_info("event=pause db=%s", db ? db : "(all)");
		post_all(OP_PAUSE, db, NULL, wait->ack);
	}
	pthread_mutex_unlock(&ctl.lock);
	if (!ok) {
		control_wait_cancel(wait);
		return NULL;
	}
	struct timeval tv = {0, POLL_USEC};
	event_add(wait->ev, &tv);
	return wait;
}

bool control_resume(const char *db, char *err, size_t errlen)
{
	pthread_mutex_lock(&ctl.lock);
	bool ok = true;
	if (ctl.shutting_down) {
		snprintf(err, errlen, "corral is shutting down");
		ok = false;
	} else if (!db && !ctl.paused_all && ctl.n_paused_dbs == 0) {
		snprintf(err, errlen, "corral is not paused");
		ok = false;
	} else if (db && !db_paused(db)) {
		snprintf(err, errlen, "database %s is not paused", db);
		ok = false;
	}
	if (ok) {
		for (size_t i = 0; i < ctl.n_paused_dbs;) {
			if (!db || strcmp(ctl.paused_dbs[i], db) == 0) {
				free(ctl.paused_dbs[i]);
				ctl.paused_dbs[i] = ctl.paused_dbs[--ctl.n_paused_dbs];
			} else {
				i++;
			}
		}
		if (!db) {
			ctl.paused_all = false;
			serving_set(SERVING_UP);
		}
		log_info("event=resume db=%s", db ? db : "(all)");
		post_all(OP_RESUME, db, NULL, NULL);
	}
	pthread_mutex_unlock(&ctl.lock);
	return ok;
}

bool control_kill(const char *db, char *err, size_t errlen)
{
	pthread_mutex_lock(&ctl.lock);
	bool ok = may_pause(db, err, errlen) && note_paused(db, err, errlen);
	if (ok) {
		log_info("event=kill db=%s", db);
		post_all(OP_KILL, db, NULL, NULL);
	}
	pthread_mutex_unlock(&ctl.lock);
	return ok;
}

/* ---- SHUTDOWN ---------------------------------------------------------------------- */

/* Worker 0's loop, while a shutdown waits for the last client. */
static void shutdown_watch(evutil_socket_t fd, short what, void *arg)
{
	int clients = atomic_load(&ctl.ws->shared.clients);
	pthread_mutex_lock(&ctl.lock);
	usec_t deadline = ctl.shutdown_deadline;
	pthread_mutex_unlock(&ctl.lock);
	if (clients > 0 && (!deadline || clock_now_usec() < deadline))
		return;
	if (clients > 0)
		log_info("event=shutdown_timeout clients=%d msg=\"shutdown_timeout reached; the "
			 "clients left get 57P01\"",
			 clients);
	else
		log_info("event=shutdown_clients_gone");
	event_del(ctl.shutdown_ev);
	workers_stop(ctl.ws);
}

void control_shutdown(bool wait_for_clients, double timeout)
{
	pthread_mutex_lock(&ctl.lock);
	bool was_waiting = ctl.waiting_for_clients;
	ctl.shutting_down = true;
	serving_set(SERVING_SHUTTING_DOWN);
	if (!wait_for_clients) {
		log_info("event=shutdown mode=immediate");
		workers_stop(ctl.ws);
	} else if (!was_waiting) {
		ctl.waiting_for_clients = true;
		if (timeout > 0)
			ctl.shutdown_deadline = clock_now_usec() + (usec_t)(timeout * USEC_PER_SEC);
		log_info("event=shutdown mode=wait_for_clients clients=%d timeout_s=%g",
			 atomic_load(&ctl.ws->shared.clients), timeout > 0 ? timeout : 0.0);
		post_all(OP_STOP_ACCEPTING, NULL, NULL, NULL);
		post(0, OP_WATCH_SHUTDOWN, NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&ctl.lock);
}

bool control_init(struct workers *ws)
{
	ctl.ws = ws;
	ctl.shutdown_ev = event_new(ws->w[0].base, -1, EV_PERSIST, shutdown_watch, NULL);
	return ctl.shutdown_ev != NULL;
}

void control_free(void)
{
	if (ctl.shutdown_ev)
		event_free(ctl.shutdown_ev);
	ctl.shutdown_ev = NULL;
	for (size_t i = 0; i < ctl.n_paused_dbs; i++)
		free(ctl.paused_dbs[i]);
	free(ctl.paused_dbs);
	ctl.paused_dbs = NULL;
	ctl.n_paused_dbs = 0;
}
