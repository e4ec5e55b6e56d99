/*
 * Whether this corral is serving, paused or shutting down: one process-wide state,
 * set by the control paths (PAUSE, RESUME, SHUTDOWN, signals) and read by anything that
 * reports health (/healthz, SHOW).  Relaxed atomics: a reader may see a change a little
 * late, never a torn value.
 */
#ifndef CORRAL_PROXY_SERVING_H
#define CORRAL_PROXY_SERVING_H

enum serving_state {
	SERVING_UP,            /* accepting and serving */
	SERVING_PAUSED,        /* PAUSE without a database: new transactions held */
	SERVING_SHUTTING_DOWN, /* SHUTDOWN or SIGTERM: no new clients */
};

void serving_set(enum serving_state st);
enum serving_state serving_get(void);
const char *serving_name(enum serving_state st);

#endif
