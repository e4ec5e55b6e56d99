/*
 * Failed logins counted by source address, so repeated wrong passwords from one
 * address are first slowed, then refused for a while (README: auth_failure_delay,
 * auth_failure_max).  A fixed-size open-addressing table: what a stranger can make it
 * hold is bounded, and when it is full the least recently seen entry of the probe
 * window is given up (an attacker spread over many addresses can push out a count,
 * not grow memory).  The port is not part of the key.
 *
 * One table for the process, shared by the workers (an address's connections land on
 * any worker): every call takes its mutex.  It is only touched at accept (a lookup)
 * and on a failed login.
 */
#ifndef CORRAL_PROXY_AUTH_THROTTLE_H
#define CORRAL_PROXY_AUTH_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/clock.h"

#define AUTH_THROTTLE_WINDOW_SEC 60 /* failures count within a minute of the first */
#define AUTH_THROTTLE_REFUSE_SEC 60 /* an address past auth_failure_max is refused this long */
/* 4096 addresses: about 200 KB */
#define AUTH_THROTTLE_SLOTS 4096
#define AUTH_THROTTLE_DELAY_MS 1000 /* each failed answer past auth_failure_delay waits this */

enum auth_throttle_verdict {
	THROTTLE_ANSWER, /* answer the failure now */
	THROTTLE_DELAY,  /* answer it after AUTH_THROTTLE_DELAY_MS */
	THROTTLE_REFUSE, /* delay it, and the address is refused from now on for a while */
};

struct auth_throttle;

/* A table of `slots` entries (rounded up to a power of two); NULL when out of memory. */
struct auth_throttle *auth_throttle_new(size_t slots);
void auth_throttle_free(struct auth_throttle *t);
/*
 * A failed login from addr at now: its count in the current window, in *count if not
 * NULL, decides the verdict (delay_after, max: the config keys; 0 = never).
 */
enum auth_throttle_verdict auth_throttle_failed(struct auth_throttle *t,
						const struct sockaddr *addr, usec_t now,
						int delay_after, int max, int *count);
/* Whether addr is refused at now (it reached max within a window less than
 * AUTH_THROTTLE_REFUSE_SEC ago). */
bool auth_throttle_refused(struct auth_throttle *t, const struct sockaddr *addr, usec_t now);
/* Entries in use, for tests. */
size_t auth_throttle_size(struct auth_throttle *t);

#endif
