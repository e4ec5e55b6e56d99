/*
 * corral-storm's load: worker threads, each with its own event_base, release their
 * share of the invocations (a burst at t0, or an open-loop rate where invocation i
 * is due at t0 + i / rate and its latency counts from then, not from when it was
 * actually sent) and record each one's outcome in their own results.
 *
 * An invocation (struct storm_inv) belongs to its worker from launch to
 * storm_inv_finish(), which records it and frees it; the mode's start function
 * (pg_invoke.c, http_invoke.c) drives it in between.
 */
#ifndef CORRAL_FUNCTIONS_STORM_WORKER_H
#define CORRAL_FUNCTIONS_STORM_WORKER_H

#include <event2/event.h>
#include <event2/http.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/list.h"
#include "functions/storm/http_invoke.h"
#include "functions/storm/options.h"
#include "functions/storm/results.h"

/* Set up by main before the workers start; read-only afterwards but for the atomics. */
struct storm_shared {
	const struct storm_opts *opts;
	struct storm_http_target http;
	uint64_t total; /* invocations over all workers */
	usec_t t0;      /* release time */
	atomic_bool stop;
	atomic_uint_fast64_t in_flight;
	atomic_uint_fast64_t peak_in_flight;
	int done_fd; /* each worker writes one byte here when it has finished */
};

struct storm_worker {
	int index;
	int count; /* workers in the run */
	struct storm_shared *shared;
	struct event_base *base;
	struct event *launch_timer;
	struct event *stop_check;
	struct event *reaper; /* frees dead HTTP connections outside libevent's callbacks */
	struct evhttp_connection **dead;
	size_t n_dead, cap_dead;
	struct storm_results *res;
	uint64_t quota; /* invocations this worker starts */
	uint64_t launched;
	uint64_t finished;
	uint64_t next_index; /* global index of the next one (rate mode) */
	struct list in_flight;
	pthread_t thread;
	bool thread_started;
};

enum storm_inv_state {
	INV_CONNECTING,
	INV_SENDING,
	INV_READING,
};

struct storm_inv {
	struct list link; /* in its worker's in_flight */
	struct storm_worker *w;
	usec_t intended; /* latency counts from here */
	usec_t deadline;
	struct event *ev; /* I/O wait with deadline (PostgreSQL), deadline timer (HTTP) */
	/* PostgreSQL */
	PGconn *conn;
	enum storm_inv_state state;
	bool query_failed;
	char error_key[STORM_CLASS_KEY];
	char error_msg[STORM_CLASS_MESSAGE];
	/* HTTP */
	struct evhttp_connection *hc;
	struct evhttp_request *req;
	int http_error; /* enum evhttp_request_error + 1, 0 for none */
	int http_errno; /* the socket error evhttp saw, 0 for none */
	bool cancelling;
};

/* Creates worker i of n (its event_base and results); NULL on failure. */
struct storm_worker *storm_worker_new(struct storm_shared *shared, int index, int count);
/* Starts its thread; it releases work at shared->t0. */
bool storm_worker_start(struct storm_worker *w) WARN_UNUSED;
void storm_worker_join(struct storm_worker *w);
void storm_worker_free(struct storm_worker *w);

/* Records the end of an invocation (key NULL: success) and frees it. */
void storm_inv_finish(struct storm_inv *inv, const char *key, const char *message);
/* Frees an HTTP connection at the end of this loop iteration: evhttp may still
 * touch it after calling the request's callback. */
void storm_worker_free_http_later(struct storm_worker *w, struct evhttp_connection *hc);

#endif
