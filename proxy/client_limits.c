#include "proxy/client_limits.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "common/log.h"
#include "pool/shared.h"
#include "proxy/auth_throttle.h"
#include "proxy/client.h"
#include "proxy/client_tls.h"
#include "proxy/worker.h"

enum client_refusal client_limits_check(struct worker *w, struct client *c, int total)
{
	const struct corral_config *cfg = w->cfg;
	enum client_refusal r = REFUSE_NONE;
	if (total > cfg->max_client_conn)
		r = REFUSE_MAX_CLIENT_CONN;
	/* n_logins counts c itself already */
	else if (cfg->max_logins_in_progress > 0 &&
		 w->n_logins > (size_t)cfg->max_logins_in_progress)
		r = REFUSE_LOGINS;
	else if (w->shared->throttle &&
		 auth_throttle_refused(w->shared->throttle, &c->peer.sa, clock_now_usec()))
		r = REFUSE_THROTTLED;
	c->refusal = (unsigned char)r;
	/* It takes no place while it waits for its FATAL: a client within the limit gets
	 * in as soon as one leaves, however many refused ones are still being told. */
	if (r != REFUSE_NONE)
		atomic_fetch_sub(&w->shared->clients, 1);
	return r;
}

bool client_limits_hold(struct client *c, struct timeval *tv)
{
	struct worker *w = c->worker;
	if (w->n_refusing >= REFUSE_HELD_MAX) {
		/* The oldest has had the longest to speak: it goes now, so a flood of
		 * silent sockets cannot keep a real client from reading its message. */
		struct client *old = list_entry(list_first(&w->refusing), struct client,
						refuse_node);
		client_limits_refuse(old);
		if (w->n_refusing >= REFUSE_HELD_MAX)
			return false;
	}
	w->n_refusing++;
	c->refusal_held = true;
	list_append(&w->refusing, &c->refuse_node);
	tv->tv_sec = REFUSE_GRACE_MS / 1000;
	tv->tv_usec = (REFUSE_GRACE_MS % 1000) * 1000;
	return true;
}

void client_limits_forget(struct client *c)
{
	if (c->delay_ev) {
		event_free(c->delay_ev);
		c->delay_ev = NULL;
	}
	if (c->refusal_held) {
		c->refusal_held = false;
		list_del(&c->refuse_node);
		c->worker->n_refusing--;
	}
}

void client_limits_refuse(struct client *c)
{
	const struct corral_config *cfg = c->worker->cfg;
	client_limits_forget(c); /* no longer waiting for anything */
	switch ((enum client_refusal)c->refusal) {
	case REFUSE_MAX_CLIENT_CONN:
		client_fail(c, "53300", "no more connections allowed (max_client_conn = %d)",
			    cfg->max_client_conn);
		break;
	case REFUSE_LOGINS:
		client_fail(c, "53300", "too many logins in progress (max_logins_in_progress = %d)",
			    cfg->max_logins_in_progress);
		break;
	case REFUSE_THROTTLED:
		/* The client learns no more than PostgreSQL's failed login tells it. */
		client_fail(c, "28000",
			    "too many failed logins from this address; try again later");
		break;
	case REFUSE_NONE:
		break;
	}
}

static void grace_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct client *c = arg;
	event_free(c->delay_ev);
	c->delay_ev = NULL;
	/* A handshake still unfinished after the grace cannot carry the FATAL (nor would
	 * the close flush end: nothing is written before it): closed without a word, as
	 * PostgreSQL's authentication_timeout closes it. */
	if (client_tls_in_handshake(c))
		client_close(c, "refused client's TLS handshake did not finish within the grace");
	else
		client_limits_refuse(c);
}

/* delay_ev is free: a refused client never reaches authentication, whose delayed
 * answer is the other use of it. */
void client_limits_keep_grace(struct client *c)
{
	if (!c->refusal_held || c->delay_ev)
		return;
	struct timeval tv = {REFUSE_GRACE_MS / 1000, (REFUSE_GRACE_MS % 1000) * 1000};
	c->delay_ev = evtimer_new(c->worker->base, grace_over, c);
	if (!c->delay_ev || evtimer_add(c->delay_ev, &tv) != 0)
		client_limits_refuse(c);
}

bool client_limits_listener_opts(int fd, const struct corral_config *cfg)
{
	int one = 1, on = cfg->tcp_keepalive ? 1 : 0;
	/* Without keepalives a client that vanished (a killed function's host) holds its
	 * slot until the next write fails, which for an idle client is never. */
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
	       setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == 0;
}

void client_limits_keepalive(int fd, const struct corral_config *cfg, bool inherited)
{
	if (!inherited && !client_limits_listener_opts(fd, cfg))
		return;
	if (!cfg->tcp_keepalive)
		return;
	if (cfg->tcp_keepidle > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &cfg->tcp_keepidle, sizeof(int));
	if (cfg->tcp_keepintvl > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &cfg->tcp_keepintvl, sizeof(int));
	if (cfg->tcp_keepcnt > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cfg->tcp_keepcnt, sizeof(int));
}

static void answer_failure(struct client *c)
{
	client_fail(c, "28P01", "password authentication failed for user \"%s\"", c->user);
}

static void delayed_failure(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct client *c = arg;
	event_free(c->delay_ev);
	c->delay_ev = NULL;
	answer_failure(c);
}

void client_limits_auth_failed(struct client *c)
{
	struct worker *w = c->worker;
	const struct corral_config *cfg = w->cfg;
	int count = 0;
	enum auth_throttle_verdict v = THROTTLE_ANSWER;
	if (w->shared->throttle)
		v = auth_throttle_failed(w->shared->throttle, &c->peer.sa, clock_now_usec(),
					 cfg->auth_failure_delay, cfg->auth_failure_max, &count);
	if (v == THROTTLE_ANSWER) {
		answer_failure(c);
		return;
	}
	char who[400];
	/* Who and how often, never what was sent. */
	log_warn("event=auth_throttle client=%llu %s failures=%d action=%s",
		 (unsigned long long)c->id, client_log_who(c, who, sizeof(who)), count,
		 v == THROTTLE_REFUSE ? "refuse_address" : "delay");
	/* The answer waits; the client's further input is not read meanwhile (nothing
	 * more is due from it; client_auth_read ignores it while delay_ev is set, for a
	 * TLS client whose stream goes on reading), so it cannot hurry the answer
	 * along or guess again. */
	if (c->login_ev)
		event_del(c->login_ev);
	struct timeval tv = {AUTH_THROTTLE_DELAY_MS / 1000, (AUTH_THROTTLE_DELAY_MS % 1000) * 1000};
	c->delay_ev = evtimer_new(w->base, delayed_failure, c);
	if (!c->delay_ev || evtimer_add(c->delay_ev, &tv) != 0)
		answer_failure(c);
}

void client_limits_refuse_pool(struct client *c)
{
	client_fail(c, "53300", "too many pools (max_pools = %d)", c->worker->cfg->max_pools);
}
