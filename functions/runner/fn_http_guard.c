#include "functions/runner/fn_http_guard.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "common/log.h"

/* How long the listener rests after an accept error: long enough not to spin, short
 * enough that a descriptor freed is used soon. */
#define ACCEPT_PAUSE_USEC (250 * 1000)

struct guard_conn {
	struct list link; /* in g->conns */
	struct fn_http_guard *g;
	struct evhttp_connection *evcon;
	struct event *deadline; /* armed while a request is being read */
};

/* A bufferevent handed to evhttp, waiting for the loop pass that finds its connection. */
struct pending_bev {
	struct fn_http_guard *g;
	struct bufferevent *bev; /* with a reference of ours */
};

struct fn_http_guard {
	struct event_base *base;
	struct evconnlistener *listener; /* NULL once accepting stopped */
	struct event *resume;            /* re-enables the listener after a pause */
	bool paused;                     /* since an accept error, until the timer */
	bool pause_logged;               /* one warning per episode of accept errors */
	usec_t refuse_logged_at;         /* refusals are logged at most once a second */
	struct timeval request_timeout;
	unsigned max_connections;
	unsigned n_conns;
	struct list conns; /* struct guard_conn; a linear search per request is cheap next to
			    * forking and answering it */
};

static struct timeval timeval_of(usec_t usec)
{
	struct timeval tv = {(time_t)(usec / USEC_PER_SEC), (suseconds_t)(usec % USEC_PER_SEC)};
	return tv;
}

/* ---- accept errors --------------------------------------------------------------------- */

/* The listener's error callback gets evhttp's argument, not ours: one listener per process. */
static struct fn_http_guard *accept_guard;

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct fn_http_guard *g = arg;
	g->paused = false;
	if (g->listener)
		evconnlistener_enable(g->listener);
}

/* libevent calls this for an accept() error it would otherwise retry at once, forever:
 * the listening socket stays readable while the backlog is full. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
	(void)arg;
	struct fn_http_guard *g = accept_guard;
	int err = EVUTIL_SOCKET_ERROR();
	if (!g)
		return;
	evconnlistener_disable(listener);
	g->paused = true;
	struct timeval tv = timeval_of(ACCEPT_PAUSE_USEC);
	evtimer_add(g->resume, &tv);
	if (!g->pause_logged) {
		log_warn("event=http_accept_paused error=\"%s\" pause_ms=%d", strerror(err),
			 ACCEPT_PAUSE_USEC / 1000);
		g->pause_logged = true;
	}
}

/* ---- connections ----------------------------------------------------------------------- */

static void conn_free(struct guard_conn *c)
{
	list_del(&c->link);
	c->g->n_conns--;
	event_free(c->deadline);
	free(c);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	conn_free(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct guard_conn *c = arg;
	char *peer = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(c->evcon, &peer, &port);
	log_warn("event=http_request_timeout peer=%s:%u timeout_ms=%lld", peer ? peer : "-",
		 (unsigned)port,
		 (long long)c->g->request_timeout.tv_sec * 1000 +
			 c->g->request_timeout.tv_usec / 1000);
	evhttp_connection_free(c->evcon); /* calls on_close, which frees c */
}

static void arm_deadline(struct guard_conn *c)
{
	evtimer_add(c->deadline, &c->g->request_timeout);
}

static bool refuse_now_logs(struct fn_http_guard *g)
{
	usec_t now = clock_now_usec();
	if (g->refuse_logged_at && now - g->refuse_logged_at < USEC_PER_SEC)
		return false;
	g->refuse_logged_at = now;
	return true;
}

/* The loop pass after the accept: evhttp has made the connection and set itself as the
 * bufferevent's callback argument. */
static void on_connection_made(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pending_bev *p = arg;
	struct fn_http_guard *g = p->g;
	bufferevent_data_cb readcb = NULL;
	void *cbarg = NULL;
	bufferevent_getcb(p->bev, &readcb, NULL, NULL, &cbarg);
	struct evhttp_connection *evcon = readcb ? cbarg : NULL; /* NULL: already gone */
	bufferevent_decref(p->bev);
	free(p);
	if (!evcon)
		return;
	/* A connection accepted after the pause (not one of the batch before the error) ends
	 * the episode. */
	if (g->pause_logged && !g->paused) {
		log_info("event=http_accept_resumed");
		g->pause_logged = false;
	}
	struct guard_conn *c = NULL;
	if (g->n_conns < g->max_connections)
		c = calloc(1, sizeof(*c));
	if (c)
		c->deadline = evtimer_new(g->base, on_deadline, c);
	if (!c || !c->deadline) {
		if (c)
			free(c);
		if (refuse_now_logs(g))
			log_warn("event=http_connection_refused connections=%u max_connections=%u",
				 g->n_conns, g->max_connections);
		evhttp_connection_free(evcon);
		return;
	}
	c->g = g;
	c->evcon = evcon;
	list_append(&g->conns, &c->link);
	g->n_conns++;
	evhttp_connection_set_closecb(evcon, on_close, c);
	arm_deadline(c);
}

/* evhttp's bufferevent hook: called for every connection accepted, before evhttp has
 * made its connection object, hence the deferred look. */
static struct bufferevent *on_new_bufferevent(struct event_base *base, void *arg)
{
	struct fn_http_guard *g = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct pending_bev *p = bev ? calloc(1, sizeof(*p)) : NULL;
	if (!p)
		return bev; /* untracked, like any connection before this hook existed */
	p->g = g;
	p->bev = bev;
	bufferevent_incref(bev); /* valid for on_connection_made even if evhttp drops it */
	if (event_base_once(base, -1, EV_TIMEOUT, on_connection_made, p, NULL) != 0) {
		bufferevent_decref(bev);
		free(p);
	}
	return bev;
}

static struct guard_conn *find_conn(struct fn_http_guard *g, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &g->conns)
	{
		struct guard_conn *c = list_entry(it, struct guard_conn, link);
		if (evcon && c->evcon == evcon)
			return c;
	}
	return NULL;
}

/* The answer is sent: the next request of a kept-alive connection has its deadline.  Looked
 * up again, since the connection may have closed while the function ran. */
static void on_request_complete(struct evhttp_request *req, void *arg)
{
	struct guard_conn *c = find_conn(arg, req);
	if (c)
		arm_deadline(c);
}

void fn_http_guard_request_read(struct fn_http_guard *g, struct evhttp_request *req)
{
	struct guard_conn *c = find_conn(g, req);
	if (c)
		evtimer_del(c->deadline);
	evhttp_request_set_on_complete_cb(req, on_request_complete, g);
}

/* ---- life ------------------------------------------------------------------------------ */

struct fn_http_guard *fn_http_guard_new(struct event_base *base, struct evhttp *http,
					struct evhttp_bound_socket *bound,
					usec_t request_timeout_usec, unsigned max_connections)
{
	struct fn_http_guard *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->base = base;
	g->request_timeout = timeval_of(request_timeout_usec);
	g->max_connections = max_connections;
	list_init(&g->conns);
	g->resume = evtimer_new(base, on_resume, g);
	g->listener = evhttp_bound_socket_get_listener(bound);
	if (!g->resume || !g->listener) {
		if (g->resume)
			event_free(g->resume);
		free(g);
		return NULL;
	}
	accept_guard = g;
	evconnlistener_set_error_cb(g->listener, on_accept_error);
	evhttp_set_bevcb(http, on_new_bufferevent, g);
	return g;
}

void fn_http_guard_stop_accepting(struct fn_http_guard *g)
{
	if (!g)
		return;
	evtimer_del(g->resume);
	g->listener = NULL;
	accept_guard = NULL;
}

void fn_http_guard_free(struct fn_http_guard *g)
{
	if (!g)
		return;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &g->conns)
	{
		conn_free(list_entry(it, struct guard_conn, link));
	}
	event_free(g->resume);
	if (accept_guard == g)
		accept_guard = NULL;
	free(g);
}
