#include "proxy/workers.h"

#include "proxy/auth_throttle.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pool/cancel.h"

bool workers_init(struct workers *ws, int n, struct snapshot *first)
{
	memset(ws, 0, sizeof(*ws));
	ws->shared.n_workers = n;
	if (!config_store_init(&ws->shared.store, first)) {
		snapshot_release(first);
		return false;
	}
	ws->store_ready = true;
	if (!pool_registry_init(&ws->shared.registry, n))
		return false;
	ws->registry_ready = true;
	ws->shared.throttle = auth_throttle_new(AUTH_THROTTLE_SLOTS);
	if (!ws->shared.throttle)
		return false;
	ws->w = calloc((size_t)n, sizeof(*ws->w));
	ws->threads = calloc((size_t)n, sizeof(*ws->threads));
	ws->shared.inboxes = calloc((size_t)n, sizeof(*ws->shared.inboxes));
	if (!ws->w || !ws->threads || !ws->shared.inboxes)
		return false;
	for (int i = 0; i < n; i++)
		ws->shared.inboxes[i] = &ws->w[i].inbox;
	for (int i = 0; i < n; i++) {
		if (!worker_init(&ws->w[i], i, &ws->shared)) {
			ws->n = i + 1; /* this one is half set up: shut it down too */
			return false;
		}
	}
	ws->n = n;
	return true;
}

static void *thread_main(void *arg)
{
	worker_run(arg);
	return NULL;
}

void workers_run(struct workers *ws)
{
	for (int i = 1; i < ws->n; i++) {
		if (pthread_create(&ws->threads[i], NULL, thread_main, &ws->w[i]) != 0) {
			/* The kernel would still route connections to the listeners of
			 * workers that never run: close those. */
			log_error("event=thread_failed worker=%d running=%d", i, i);
			for (int j = i; j < ws->n; j++)
				worker_close_listener(&ws->w[j]);
			break;
		}
		ws->started = i;
	}
	worker_run(&ws->w[0]);
	for (int i = 1; i <= ws->started; i++)
		worker_stop(&ws->w[i]);
	for (int i = 1; i <= ws->started; i++)
		pthread_join(ws->threads[i], NULL);
}

void workers_stop(struct workers *ws)
{
	worker_stop(&ws->w[0]);
}

void workers_shutdown(struct workers *ws)
{
	for (int i = 0; i < ws->n; i++)
		worker_begin_shutdown(&ws->w[i]);
	/* No completion may be posted to an inbox once it closes. */
	server_cancel_stop();
	for (int i = 0; i < ws->n; i++)
		worker_shutdown(&ws->w[i]);
	free(ws->w);
	free(ws->threads);
	free(ws->shared.inboxes);
	auth_throttle_free(ws->shared.throttle);
	if (ws->registry_ready)
		pool_registry_free(&ws->shared.registry);
	if (ws->store_ready)
		config_store_free(&ws->shared.store);
}
