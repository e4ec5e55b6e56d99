#include "functions/storm/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "functions/storm/pg_invoke.h"

#define STOP_CHECK_USEC 50000

static struct timeval usec_to_tv(usec_t us)
{
	if (us < 0)
		us = 0;
	return (struct timeval){.tv_sec = us / USEC_PER_SEC, .tv_usec = us % USEC_PER_SEC};
}

/* When global invocation i is due (rate mode). */
static usec_t due_time(const struct storm_shared *s, uint64_t i)
{
	return s->t0 + (usec_t)((double)i * 1e6 / s->opts->rate);
}

static void note_in_flight(struct storm_shared *s)
{
	uint_fast64_t now = atomic_fetch_add(&s->in_flight, 1) + 1;
	uint_fast64_t peak = atomic_load(&s->peak_in_flight);
	while (now > peak && !atomic_compare_exchange_weak(&s->peak_in_flight, &peak, now))
		;
}

static void launch(struct storm_worker *w, usec_t intended)
{
	struct storm_inv *inv = calloc(1, sizeof(*inv));
	w->launched++;
	w->res->started++;
	if (!inv) {
		/* counted as started and failed, so the totals still add up */
		w->finished++;
		storm_results_error(w->res, "client", "out of memory", 0, clock_now_usec());
		return;
	}
	inv->w = w;
	inv->intended = intended;
	inv->deadline = intended + (usec_t)(w->shared->opts->timeout_s * 1e6);
	list_append(&w->in_flight, &inv->link);
	note_in_flight(w->shared);
	if (w->shared->opts->mode == STORM_CONNECT)
		storm_pg_start(inv);
	else
		storm_http_start(inv);
	/* inv may be gone already (a synchronous failure) */
}

static void maybe_done(struct storm_worker *w)
{
	bool stopping = atomic_load(&w->shared->stop);
	if (w->finished == w->quota || (stopping && list_empty(&w->in_flight)))
		event_base_loopbreak(w->base);
}

void storm_inv_finish(struct storm_inv *inv, const char *key, const char *message)
{
	struct storm_worker *w = inv->w;
	usec_t now = clock_now_usec();
	usec_t latency = now - inv->intended;
	if (key)
		storm_results_error(w->res, key, message, latency, now);
	else
		storm_results_ok(w->res, latency, now);
	list_del(&inv->link);
	if (inv->ev)
		event_free(inv->ev);
	free(inv);
	atomic_fetch_sub(&w->shared->in_flight, 1);
	w->finished++;
	maybe_done(w);
}

static void launch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct storm_worker *w = arg;
	struct storm_shared *s = w->shared;
	if (atomic_load(&s->stop))
		return;
	if (s->opts->burst) {
		while (w->launched < w->quota)
			launch(w, s->t0);
		maybe_done(w);
		return;
	}
	while (w->launched < w->quota) {
		usec_t due = due_time(s, w->next_index);
		usec_t now = clock_now_usec();
		if (due > now) {
			struct timeval tv = usec_to_tv(due - now);
			evtimer_add(w->launch_timer, &tv);
			return;
		}
		w->next_index += (uint64_t)w->count;
		launch(w, due);
	}
	maybe_done(w);
}

/* Ctrl-C: drop what is in flight (counted as "interrupted") and leave the loop. */
static void stop_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct storm_worker *w = arg;
	if (!atomic_load(&w->shared->stop))
		return;
	evtimer_del(w->launch_timer);
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &w->in_flight)
	{
		struct storm_inv *inv = list_entry(it, struct storm_inv, link);
		if (w->shared->opts->mode == STORM_CONNECT)
			storm_pg_abort(inv, "interrupted", "stopped by a signal");
		else
			storm_http_abort(inv, "interrupted", "stopped by a signal");
	}
	event_base_loopbreak(w->base);
}

static void free_dead(struct storm_worker *w)
{
	for (size_t i = 0; i < w->n_dead; i++)
		evhttp_connection_free(w->dead[i]);
	w->n_dead = 0;
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	free_dead(arg);
}

void storm_worker_free_http_later(struct storm_worker *w, struct evhttp_connection *hc)
{
	if (w->n_dead == w->cap_dead) {
		size_t cap = w->cap_dead ? w->cap_dead * 2 : 64;
		struct evhttp_connection **dead = realloc(w->dead, cap * sizeof(*dead));
		if (!dead) {
			log_warn("event=storm_oom what=dead_http_connections");
			return; /* leak it rather than free it under evhttp's feet */
		}
		w->dead = dead;
		w->cap_dead = cap;
	}
	w->dead[w->n_dead++] = hc;
	if (!event_pending(w->reaper, EV_TIMEOUT, NULL))
		event_active(w->reaper, EV_TIMEOUT, 0);
}

struct storm_worker *storm_worker_new(struct storm_shared *shared, int index, int count)
{
	struct storm_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->index = index;
	w->count = count;
	w->shared = shared;
	list_init(&w->in_flight);
	uint64_t total = shared->total;
	w->quota = total / (uint64_t)count + ((uint64_t)index < total % (uint64_t)count);
	w->next_index = (uint64_t)index;

	/* one thread per base: no locks */
	struct event_config *cfg = event_config_new();
	if (cfg) {
		event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
		w->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	w->res = storm_results_new();
	if (w->base) {
		w->launch_timer = evtimer_new(w->base, launch_cb, w);
		w->stop_check = event_new(w->base, -1, EV_PERSIST, stop_check_cb, w);
		w->reaper = event_new(w->base, -1, 0, reaper_cb, w);
	}
	if (!w->base || !w->res || !w->launch_timer || !w->stop_check || !w->reaper) {
		storm_worker_free(w);
		return NULL;
	}
	return w;
}

static void *worker_main(void *arg)
{
	struct storm_worker *w = arg;
	struct timeval start = usec_to_tv(w->shared->t0 - clock_now_usec());
	struct timeval check = usec_to_tv(STOP_CHECK_USEC);
	evtimer_add(w->launch_timer, &start);
	event_add(w->stop_check, &check);
	if (w->quota > 0)
		event_base_dispatch(w->base);
	event_del(w->stop_check);
	evtimer_del(w->launch_timer);
	event_del(w->reaper);
	free_dead(w);
	char byte = 1;
	if (write(w->shared->done_fd, &byte, 1) != 1)
		log_warn("event=storm_worker_done_notify_failed");
	return NULL;
}

bool storm_worker_start(struct storm_worker *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return false;
	w->thread_started = true;
	return true;
}

void storm_worker_join(struct storm_worker *w)
{
	if (w->thread_started) {
		pthread_join(w->thread, NULL);
		w->thread_started = false;
	}
}

void storm_worker_free(struct storm_worker *w)
{
	if (!w)
		return;
	storm_worker_join(w);
	if (w->launch_timer)
		event_free(w->launch_timer);
	if (w->stop_check)
		event_free(w->stop_check);
	if (w->reaper)
		event_free(w->reaper);
	free_dead(w);
	free(w->dead);
	if (w->base)
		event_base_free(w->base);
	storm_results_free(w->res);
	free(w);
}
