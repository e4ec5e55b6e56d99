/* Keeping a second corral off a port by accident; see listen_guard.h. */
#include "proxy/listen_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

bool listen_sockaddr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
		return true;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return true;
	}
	return false;
}

const char *listen_name(const char *addr, int port, char *buf, size_t len)
{
	snprintf(buf, len, strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);
	return buf;
}

/*
 * Binds the abstract Unix socket "@corral-listen:ADDR:PORT" (Linux: no file, one per
 * network namespace, like the TCP port itself; released when the process ends, however
 * it ends).  Returns the socket, -1 with errno EADDRINUSE when another process holds it.
 */
static int bind_marker(const char *addr, int port)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	char name[sizeof(sun.sun_path) - 1];
	int n = snprintf(name, sizeof(name), "corral-listen:%s:%d", addr, port);
	memcpy(sun.sun_path + 1, name, (size_t)n);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	if (bind(fd, (struct sockaddr *)&sun, len) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * Binds addr:port with SO_REUSEADDR (as the workers do, so connections of an earlier
 * run in TIME_WAIT do not count) but without SO_REUSEPORT, and closes it again: Linux
 * refuses that bind while any socket listens on the port, SO_REUSEPORT or not.
 */
static bool probe(const struct sockaddr_storage *ss, socklen_t sslen, int *err)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return false;
	}
	int one = 1;
	bool ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		  bind(fd, (const struct sockaddr *)ss, sslen) == 0;
	*err = ok ? 0 : errno;
	close(fd);
	return ok;
}

static bool in_use(char *err, size_t errlen, const char *where)
{
	snprintf(err, errlen, "could not listen on %s: address in use (another corral?)", where);
	return false;
}

bool listen_guard_claim(struct listen_guard *g, const char *addr, int port, bool shared, char *err,
			size_t errlen)
{
	g->marker_fd = -1;
	char where[80];
	listen_name(addr, port, where, sizeof(where));
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (!listen_sockaddr(addr, port, &ss, &sslen)) {
		snprintf(err, errlen, "could not listen on %s: not an IP address", where);
		return false;
	}
	if (shared)
		return true;
	g->marker_fd = bind_marker(addr, port);
	if (g->marker_fd < 0) {
		if (errno == EADDRINUSE)
			return in_use(err, errlen, where);
		snprintf(err, errlen, "could not listen on %s: marker socket: %s", where,
			 strerror(errno));
		return false;
	}
	int e;
	if (probe(&ss, sslen, &e))
		return true;
	listen_guard_release(g);
	if (e == EADDRINUSE)
		return in_use(err, errlen, where);
	snprintf(err, errlen, "could not listen on %s: %s", where, strerror(e));
	return false;
}

bool listen_guard_confirm(struct listen_guard *g, const char *addr, int port, bool shared,
			  char *err, size_t errlen)
{
	if (!shared)
		return true;
	int fd = bind_marker(addr, port);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	char where[80];
	listen_name(addr, port, where, sizeof(where));
	if (errno == EADDRINUSE)
		snprintf(err, errlen,
			 "could not listen on %s: address in use by a corral without "
			 "so_reuseport = yes",
			 where);
	else
		snprintf(err, errlen, "could not listen on %s: marker socket: %s", where,
			 strerror(errno));
	return false;
}

void listen_guard_release(struct listen_guard *g)
{
	if (g->marker_fd >= 0)
		close(g->marker_fd);
	g->marker_fd = -1;
}
