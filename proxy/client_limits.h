/*
 * Limits on what a client can make corral hold before it has logged in (README:
 * "Limits on what a client can make corral hold").
 *
 * A client past max_client_conn, past its worker's max_logins_in_progress, or from an
 * address auth_throttle has shut out is refused when it is accepted: it never reaches
 * authentication.  Its FATAL waits for its startup packet, as PostgreSQL's does, so
 * libpq (which since CVE-2024-10977 shows no error sent in answer to an SSLRequest)
 * prints the message; but only REFUSE_GRACE_MS, and only for REFUSE_HELD_MAX clients per
 * worker at a time (a newcomer past that many pushes out the oldest).  A silent socket
 * gets the FATAL written then and is closed: sockets that never speak hold nothing
 * beyond the limit for more than a second.
 */
#ifndef CORRAL_PROXY_CLIENT_LIMITS_H
#define CORRAL_PROXY_CLIENT_LIMITS_H

#include <stdbool.h>
#include <sys/time.h>

#include "pool/config.h"

#define REFUSE_GRACE_MS 1000 /* a refused client's startup packet is waited for this long */
#define REFUSE_HELD_MAX 64   /* refused clients per worker waiting for theirs */

enum client_refusal {
	REFUSE_NONE,
	REFUSE_MAX_CLIENT_CONN, /* 53300, PostgreSQL's "too many clients" class */
	REFUSE_LOGINS,          /* 53300: max_logins_in_progress */
	REFUSE_THROTTLED,       /* 28000: auth_failure_max failed logins from the address */
};

struct client;
struct worker;

/* At accept, c counted in total clients (all workers) and in w's logins: why c is
 * refused, if it is.  Sets c->refusal; a refused c is taken out of the total at once
 * (client_close does not count it out again). */
enum client_refusal client_limits_check(struct worker *w, struct client *c, int total);
/* For a refused c: true with *tv the time to wait for its startup packet (c is held
 * and counted), false to refuse it now. */
bool client_limits_hold(struct client *c, struct timeval *tv);
/* Sends c's refusal (FATAL) and closes it once written. */
void client_limits_refuse(struct client *c);
/* A held c whose login reader stopped to start direct TLS (its grace was that reader's
 * timeout): refused when REFUSE_GRACE_MS more have passed without its startup packet,
 * not at client_login_timeout. */
void client_limits_keep_grace(struct client *c);
/* c is closed: it no longer counts as held, and a delayed answer is dropped. */
void client_limits_forget(struct client *c);
/* c's password was wrong: answered with 28P01 now, or after AUTH_THROTTLE_DELAY_MS when
 * its address has failed more than auth_failure_delay times in the window. */
void client_limits_auth_failed(struct client *c);
/* c, authenticated, needs a new (db, user) pool, max_pools exist and none is idle
 * enough to be freed (pool_join): refused with 53300. */
void client_limits_refuse_pool(struct client *c);
/*
 * Socket options of accepted clients.  Linux copies a listening socket's TCP_NODELAY
 * and SO_KEEPALIVE (and keepalive times) to every socket accept() returns, so the two
 * flags are set once on the listener (client_limits_listener_opts, again after a
 * reload) instead of with two setsockopt calls per login.  TCP_KEEPIDLE/INTVL/CNT stay
 * per accept: 0 means "the kernel's default", which a listener that once had a value
 * cannot be given back.
 */
/* TCP_NODELAY and SO_KEEPALIVE as cfg says on the listening socket fd; false if the
 * kernel refused, and then client_limits_keepalive sets them per accept. */
bool client_limits_listener_opts(int fd, const struct corral_config *cfg);
/* What an accepted socket needs beyond what it inherited: the flags too unless
 * inherited (from a listener client_limits_listener_opts succeeded on), then
 * TCP_KEEPIDLE/INTVL/CNT where cfg sets them. */
void client_limits_keepalive(int fd, const struct corral_config *cfg, bool inherited);

#endif
