/*
 * The set of workers: one thread each (worker 0 on the main thread), sharing the
 * configuration, the auth file, the pool registry and each other's inboxes.
 */
#ifndef CORRAL_PROXY_WORKERS_H
#define CORRAL_PROXY_WORKERS_H

#include <pthread.h>
#include <stdbool.h>

#include "proxy/worker.h"

struct workers {
	struct worker_shared shared;
	struct worker *w;
	pthread_t *threads;
	int n;
	int started;                      /* threads running (workers 1..started) */
	bool store_ready, registry_ready; /* for workers_shutdown after a failed init */
};

/* Sets up n workers, each with its listener bound, on the configuration first (whose
 * reference the workers' store takes).  False (logged) on failure; then
 * workers_shutdown still cleans up. */
bool workers_init(struct workers *ws, int n, struct snapshot *first) WARN_UNUSED;
/* Runs worker 0 on this thread and the others on their own until workers_stop. */
void workers_run(struct workers *ws);
/* Any thread (a signal callback on worker 0's loop, typically). */
void workers_stop(struct workers *ws);
/* After workers_run returned: closes every client and server, frees everything. */
void workers_shutdown(struct workers *ws);

#endif
