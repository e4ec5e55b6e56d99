#include "proxy/worker.h"
#include "proxy/relay.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "proxy/auth_query.h"
#include "proxy/client.h"
#include "proxy/client_limits.h"
#include "proxy/listen_guard.h"
#include "proxy/stats_period.h"

/* Timeouts are checked on this tick; it bounds how late a timeout can fire. */
#define TICK_USEC 200000

static void free_item(struct inbox_item *item)
{
	free(item);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
		      int addrlen, void *arg)
{
	client_accept(arg, fd, addr, addrlen);
}

/* Out of file descriptors (EMFILE) the pending connection stays in the backlog and
 * the listener would fire again at once: pause accepting for a while instead. */
#define ACCEPT_RETRY_USEC 250000

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct worker *w = arg;
	log_warn("event=accept_error errno=%d error=\"%s\" retry_ms=%d", errno, strerror(errno),
		 ACCEPT_RETRY_USEC / 1000);
	evconnlistener_disable(l);
	struct timeval tv = {0, ACCEPT_RETRY_USEC};
	event_add(w->accept_retry_ev, &tv);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	if (w->listener)
		evconnlistener_enable(w->listener);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	usec_t now = clock_now_usec();
	client_expire(w, now);
	pool_env_tick(&w->pools, now);
}

static void reap_clients(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &w->client_list[CLIENT_LIST_DEAD])
	{
		struct client *c = list_entry(it, struct client, node);
		client_lists_remove(c);
		client_free(c);
	}
}

static bool listen_on(struct worker *w)
{
	const struct corral_config *cfg = w->cfg;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char where[80];
	listen_name(cfg->listen_addr, cfg->listen_port, where, sizeof(where));
	if (!listen_sockaddr(cfg->listen_addr, cfg->listen_port, &ss, &sslen)) {
		log_error("event=listen_failed worker=%d error=\"could not listen on %s: not an IP "
			  "address\"",
			  w->id, where);
		return false;
	}
	/* SO_REUSEPORT: each worker binds its own listener and the kernel spreads
	 * connections; proxy/listen_guard.h keeps other corrals out of that group.  The
	 * socket is made here, not by evconnlistener_new_bind: the options accepted
	 * sockets inherit (client_limits_listener_opts; libevent would turn SO_KEEPALIVE
	 * on) are set before listen(), so no connection is ever accepted with others. */
	int one = 1;
	evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0;
	w->listener_opts = ok && client_limits_listener_opts(fd, cfg);
	if (ok && bind(fd, (struct sockaddr *)&ss, sslen) == 0)
		w->listener = evconnlistener_new(w->base, on_accept, w,
						 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
						 1024, fd);
	if (!w->listener) {
		log_error("event=listen_failed worker=%d error=\"could not listen on %s: %s\"",
			  w->id, where, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	evconnlistener_set_error_cb(w->listener, on_accept_error);
	return true;
}

bool worker_init(struct worker *w, int id, struct worker_shared *shared)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->shared = shared;
	w->snap = config_store_acquire(&shared->store);
	w->cfg = &w->snap->cfg;
	w->auth = &w->snap->auth;
	w->inbox.efd = -1;
	const struct corral_config *cfg = w->cfg;
	client_lists_init(w);
	list_init(&w->refusing);
	list_init(&w->authq_lookups);
	cancel_keys_init(&w->cancel_keys);

	struct event_config *ec = event_config_new();
	if (!ec)
		return false;
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	/* Batches epoll_ctl changes per loop iteration; an add undone in the same
	 * iteration (a write that completes at once) then costs no system call. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!w->base)
		return false;
	if (!pool_env_init(&w->pools, w->base, cfg, &client_pool_hooks))
		return false;
	pool_env_connect(&w->pools, id, shared->n_workers, &shared->registry, shared->inboxes);
	if (!inbox_init(&w->inbox, w->base, &w->pools))
		return false;
	if (id == 0) {
		pool_env_prewarm(&w->pools);
		/* avg_* of SHOW STATS: one timer for the process. */
		if (!stats_period_start(w))
			return false;
	}
	w->reap_ev = event_new(w->base, -1, 0, reap_clients, w);
	w->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
	w->accept_retry_ev = evtimer_new(w->base, on_accept_retry, w);
	if (!w->reap_ev || !w->tick_ev || !w->accept_retry_ev)
		return false;
	struct timeval tick = {0, TICK_USEC};
	if (event_add(w->tick_ev, &tick) != 0)
		return false;
	return listen_on(w);
}

void worker_close_listener(struct worker *w)
{
	if (w->listener)
		evconnlistener_free(w->listener);
	w->listener = NULL;
}

void worker_run(struct worker *w)
{
	event_base_dispatch(w->base);
	relay_spares_drop();
}

static void stop_run(struct inbox_item *item, void *ctx)
{
	struct pool_env *env = ctx;
	free(item);
	event_base_loopbreak(env->base);
}

void worker_stop(struct worker *w)
{
	struct inbox_item *item = calloc(1, sizeof(*item));
	if (!item) {
		log_error("event=stop_failed worker=%d error=\"out of memory\"", w->id);
		return;
	}
	item->run = stop_run;
	item->drop = free_item;
	inbox_post(&w->inbox, item);
}

void worker_begin_shutdown(struct worker *w)
{
	w->pools.shutting_down = true;
}

void worker_shutdown(struct worker *w)
{
	worker_close_listener(w);
	/* Closing one client can hand its server to a queued one, which may close in
	 * turn: take the first live client each time rather than walk a list that
	 * changes under the walk. */
	for (int l = 0; l < CLIENT_LIST_DEAD; l++) {
		struct client *c;
		while ((c = client_list_first(w, l)) != NULL)
			client_shutdown(c);
	}
	auth_query_worker_shutdown(w); /* before the base its events are on goes */
	if (w->base)
		pool_env_shutdown(&w->pools);
	if (w->id == 0)
		stats_period_stop(w);
	reap_clients(-1, 0, w);
	inbox_close(&w->inbox);
	if (w->reap_ev)
		event_free(w->reap_ev);
	if (w->tick_ev)
		event_free(w->tick_ev);
	if (w->accept_retry_ev)
		event_free(w->accept_retry_ev);
	if (w->base)
		event_base_free(w->base);
	w->base = NULL;
	snapshot_release(w->snap);
	w->snap = NULL;
}

void worker_adopt(struct worker *w, struct snapshot *snap)
{
	struct snapshot *old = w->snap;
	w->snap = snap;
	w->cfg = &snap->cfg;
	w->auth = &snap->auth;
	pool_env_adopt(&w->pools, w->cfg);
	/* tcp_keepalive may have changed: what the listener hands on follows it (a
	 * connection already in the backlog keeps what it was given). */
	if (w->listener)
		w->listener_opts = client_limits_listener_opts(evconnlistener_get_fd(w->listener),
							       w->cfg);
	if (w->id == 0)
		pool_env_prewarm(&w->pools); /* databases added with min_pool_size */
	/* Clients still logging in hold their own reference (c->auth_snap). */
	snapshot_release(old);
}
