/*
 * What keeps corral-fn's HTTP listener usable when clients misbehave or descriptors run
 * out (issue 11), beside evhttp (libevent 2.1, which has none of it):
 *
 *  - accept errors (EMFILE, ENFILE, ENOBUFS): the listener is paused for ACCEPT_PAUSE and
 *    tried again, instead of failing accept() in a busy loop; logged once per episode;
 *  - request_timeout: the whole of a request (line, headers and body, from the
 *    connection's start or the previous answer) must arrive within it, where evhttp's own
 *    timeout only bounds each read (a slow-loris client sending a byte a second held a
 *    connection forever);
 *  - max_connections: a connection beyond it is closed at once.
 *
 * Connections are seen through evhttp's bufferevent hook (evhttp_set_bevcb), the only
 * per-connection hook 2.1 has: the connection itself is looked up from the bufferevent's
 * callback argument once evhttp has set it up, on the same loop pass.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_HTTP_GUARD_H
#define CORRAL_FUNCTIONS_RUNNER_FN_HTTP_GUARD_H

#include "common/clock.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct fn_http_guard;

/* Hooks into http (call before it accepts anything) and bound's listener. */
struct fn_http_guard *fn_http_guard_new(struct event_base *base, struct evhttp *http,
					struct evhttp_bound_socket *bound,
					usec_t request_timeout_usec, unsigned max_connections);
/* The request has been read whole (evhttp's request callback): its deadline is off until
 * the answer has been sent. */
void fn_http_guard_request_read(struct fn_http_guard *g, struct evhttp_request *req);
/* Before the listener goes (evhttp_del_accept_socket). */
void fn_http_guard_stop_accepting(struct fn_http_guard *g);
/* After evhttp_free(): the connections are gone. */
void fn_http_guard_free(struct fn_http_guard *g);

#endif
