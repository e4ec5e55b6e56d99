#include "pool/cancel.h"

#include <pthread.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "common/inbox.h"
#include "common/log.h"
#include "pool/pool.h"
#include "pool/server_login_raw.h"

struct cancel_req {
	struct inbox_item item;       /* first: the completion, posted back */
	struct cancel_req *next;      /* in the thread's queue */
	PGcancel *cancel;             /* a libpq server's */
	struct server_raw_cancel raw; /* one of corral's own logins (cancel == NULL) */
	struct inbox *reply_to;
	struct server *server;
	bool ok;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cancel_req *head, *tail;
	pthread_t thread;
	bool started, stopping;
} cq = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void req_free(struct cancel_req *r)
{
	if (r->cancel)
		PQfreeCancel(r->cancel);
	free(r);
}

/* On the server's worker: the cancel has been delivered (or not). */
static void cancel_done_run(struct inbox_item *item, void *ctx)
{
	struct cancel_req *r = (struct cancel_req *)item;
	struct server *s = r->server;
	if (!r->ok)
		log_info("event=cancel_failed server=%llu pid=%d", (unsigned long long)s->id,
			 s->backend_pid);
	req_free(r);
	pool_cancel_done(s);
}

static void cancel_done_drop(struct inbox_item *item)
{
	req_free((struct cancel_req *)item);
}

static void *cancel_thread(void *arg)
{
	pthread_mutex_lock(&cq.lock);
	for (;;) {
		while (!cq.head && !cq.stopping)
			pthread_cond_wait(&cq.cond, &cq.lock);
		if (cq.stopping)
			break;
		struct cancel_req *r = cq.head;
		cq.head = r->next;
		if (!cq.head)
			cq.tail = NULL;
		pthread_mutex_unlock(&cq.lock);
		char err[256];
		r->ok = r->cancel ? PQcancel(r->cancel, err, sizeof(err)) == 1
				  : server_raw_cancel_send(&r->raw);
		inbox_post(r->reply_to, &r->item);
		pthread_mutex_lock(&cq.lock);
	}
	while (cq.head) {
		struct cancel_req *r = cq.head;
		cq.head = r->next;
		req_free(r);
	}
	cq.tail = NULL;
	pthread_mutex_unlock(&cq.lock);
	return NULL;
}

bool server_cancel(struct server *s)
{
	struct cancel_req *r = calloc(1, sizeof(*r));
	bool have = false;
	if (r && s->raw)
		have = server_raw_cancel_target(s->raw, &r->raw);
	else if (r)
		have = (r->cancel = s->conn ? PQgetCancel(s->conn) : NULL) != NULL;
	if (!r || !have) {
		log_error("event=cancel_failed server=%llu error=\"out of memory\"",
			  (unsigned long long)s->id);
		if (r)
			free(r);
		return false;
	}
	struct pool_env *env = s->pool->env;
	r->item.run = cancel_done_run;
	r->item.drop = cancel_done_drop;
	r->reply_to = env->inboxes[env->worker_id];
	r->server = s;
	pthread_mutex_lock(&cq.lock);
	bool ok = !cq.stopping;
	if (ok && !cq.started) {
		ok = pthread_create(&cq.thread, NULL, cancel_thread, NULL) == 0;
		cq.started = ok;
	}
	if (ok) {
		if (cq.tail)
			cq.tail->next = r;
		else
			cq.head = r;
		cq.tail = r;
		pthread_cond_signal(&cq.cond);
	}
	pthread_mutex_unlock(&cq.lock);
	if (!ok) {
		req_free(r);
		return false;
	}
	s->cancels_in_flight++;
	log_debug("event=cancel_sent server=%llu pid=%d", (unsigned long long)s->id,
		  s->backend_pid);
	return true;
}

void server_cancel_stop(void)
{
	pthread_mutex_lock(&cq.lock);
	cq.stopping = true;
	bool started = cq.started;
	pthread_cond_signal(&cq.cond);
	pthread_mutex_unlock(&cq.lock);
	if (started)
		pthread_join(cq.thread, NULL);
}
