/*
 * One corral per listening address, unless every corral there says so_reuseport = yes.
 *
 * Each worker binds its own listener with SO_REUSEPORT so the kernel spreads
 * connections over them (proxy/worker.c).  Linux lets any process of the same user
 * join such a group, so a second corral started on the same port would silently take
 * most new connections, with a pool_size of its own.  The guard keeps that from
 * happening by accident:
 *   - by default (exclusive), before the workers bind: an abstract Unix socket named
 *     for the address and port marks the port as this corral's for its lifetime (taken
 *     atomically, gone when the process is), and a probe socket bound WITHOUT
 *     SO_REUSEPORT fails if anything already listens there (any process, corral or not);
 *   - with so_reuseport = yes (shared), after the workers bind: the marker must not
 *     exist, i.e. no exclusive corral listens there.
 * An exclusive corral takes the marker before it probes and a shared one looks for it
 * only after its listeners are bound, so whichever of the two starts second fails,
 * however close together they start.
 */
#ifndef CORRAL_PROXY_LISTEN_GUARD_H
#define CORRAL_PROXY_LISTEN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/macros.h"

struct listen_guard {
	int marker_fd; /* -1 unless exclusive */
};

/* addr (numeric IPv4 or IPv6) and port as a socket address; false if addr is neither. */
bool listen_sockaddr(const char *addr, int port, struct sockaddr_storage *ss,
		     socklen_t *len) WARN_UNUSED;
/* "127.0.0.1:6432" or "[::1]:6432" into buf; returns buf. */
const char *listen_name(const char *addr, int port, char *buf, size_t len);

/* Before the workers bind.  False with the reason in err ("could not listen on ..."). */
bool listen_guard_claim(struct listen_guard *g, const char *addr, int port, bool shared, char *err,
			size_t errlen) WARN_UNUSED;
/* After the workers have bound.  False with the reason in err. */
bool listen_guard_confirm(struct listen_guard *g, const char *addr, int port, bool shared,
			  char *err, size_t errlen) WARN_UNUSED;
/* Gives the port up (the marker); harmless on a guard that claimed nothing. */
void listen_guard_release(struct listen_guard *g);

#endif
