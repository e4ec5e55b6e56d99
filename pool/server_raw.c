/*
 * The connection under corral's own server login (pool/server_login_raw.c): where to
 * connect (every address of a host name, or a Unix socket), non-blocking connect,
 * the OpenSSL client set up as the line's sslmode says, reads and writes that never
 * block (plain or TLS), and the CancelRequest for the backend.  No protocol here
 * beyond the 16-byte CancelRequest.
 */
#include "pool/server_raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define CANCEL_REQUEST_CODE 80877102

/* Wait for what an SSL call wants (or what a plain socket needs). */
short server_raw_ssl_want(struct server_raw *raw, int ret)
{
	int e = SSL_get_error(raw->ssl, ret);
	if (e == SSL_ERROR_WANT_READ)
		return EV_READ;
	if (e == SSL_ERROR_WANT_WRITE)
		return EV_WRITE;
	return 0;
}

/* Writes what raw->out holds: 1 all written, 0 must wait for *wait, -1 error. */
int server_raw_flush(struct server_raw *raw, short *wait)
{
	while (evbuffer_get_length(raw->out) > 0) {
		size_t n = evbuffer_get_length(raw->out);
		if (n > 16384)
			n = 16384;
		const unsigned char *p = evbuffer_pullup(raw->out, (ssize_t)n);
		if (!p)
			return -1;
		ssize_t w;
		if (raw->ssl) {
			ERR_clear_error();
			int r = SSL_write(raw->ssl, p, (int)n);
			if (r <= 0) {
				*wait = server_raw_ssl_want(raw, r);
				return *wait ? 0 : -1;
			}
			w = r;
		} else {
			w = send(raw->fd, p, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
					*wait = EV_WRITE;
					return 0;
				}
				return -1;
			}
		}
		evbuffer_drain(raw->out, (size_t)w);
	}
	return 1;
}

/* Reads what is there into raw->in: 1 read something or nothing to read yet (*wait
 * says for what), 0 the server closed, -1 error. */
int server_raw_fill(struct server_raw *raw, short *wait)
{
	for (;;) {
		char buf[16384];
		ssize_t r;
		if (raw->ssl) {
			ERR_clear_error();
			int n = SSL_read(raw->ssl, buf, sizeof(buf));
			if (n <= 0) {
				int e = SSL_get_error(raw->ssl, n);
				if (e == SSL_ERROR_ZERO_RETURN)
					return 0;
				*wait = server_raw_ssl_want(raw, n);
				return *wait ? 1 : -1;
			}
			r = n;
		} else {
			r = recv(raw->fd, buf, sizeof(buf), 0);
			if (r == 0)
				return 0;
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
					*wait = EV_READ;
					return 1;
				}
				return -1;
			}
		}
		if (evbuffer_add(raw->in, buf, (size_t)r) != 0)
			return -1;
	}
}

/* ---- TLS ---- */

static int proto_version(const char *name)
{
	static const struct {
		const char *name;
		int v;
	} v[] = {{"TLSv1", TLS1_VERSION},
		 {"TLSv1.1", TLS1_1_VERSION},
		 {"TLSv1.2", TLS1_2_VERSION},
		 {"TLSv1.3", TLS1_3_VERSION}};
	for (size_t i = 0; name && i < ARRAY_SIZE(v); i++)
		if (strcmp(name, v[i].name) == 0)
			return v[i].v;
	return 0;
}

static bool is_ip(const char *h)
{
	unsigned char b[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

bool server_raw_start_tls(struct server_raw *raw)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	bool ok = ctx != NULL;
	/* flush_out may retry a write from another evbuffer_pullup address. */
	if (ok)
		SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* libpq's default minimum is TLSv1.2. */
	int lo = raw->min_proto ? proto_version(raw->min_proto) : TLS1_2_VERSION;
	ok = ok && SSL_CTX_set_min_proto_version(ctx, lo) == 1;
	if (ok && raw->max_proto)
		ok = SSL_CTX_set_max_proto_version(ctx, proto_version(raw->max_proto)) == 1;
	if (ok && raw->sslmode >= SSL_VERIFY_CA) {
		ok = SSL_CTX_load_verify_locations(ctx, raw->rootcert, NULL) == 1;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (ok && raw->cert)
		ok = SSL_CTX_use_certificate_chain_file(ctx, raw->cert) == 1 &&
		     SSL_CTX_use_PrivateKey_file(ctx, raw->key, SSL_FILETYPE_PEM) == 1 &&
		     SSL_CTX_check_private_key(ctx) == 1;
	if (ok)
		raw->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	ok = ok && raw->ssl && SSL_set_fd(raw->ssl, raw->fd) == 1;
	bool name = raw->host && raw->host[0] != '/' && !is_ip(raw->host);
	if (ok && name)
		ok = SSL_set_tlsext_host_name(raw->ssl, raw->host) == 1;
	if (ok && raw->sslmode == SSL_VERIFY_FULL)
		ok = name ? SSL_set1_host(raw->ssl, raw->host) == 1
			  : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(raw->ssl), raw->host) == 1;
	if (ok)
		SSL_set_connect_state(raw->ssl);
	return ok;
}

/* Where to connect: a Unix socket path or a TCP address (blocking name lookup, as
 * libpq's PQconnectPoll does it too). */
bool server_raw_resolve(struct server_raw *raw, const struct login_opts *o, char *err,
			size_t errlen)
{
	const char *host = o->hostaddr ? o->hostaddr : o->host ? o->host : getenv("PGHOST");
	const char *port = o->port ? o->port : getenv("PGPORT");
	if (!host || !*host)
		host = "/var/run/postgresql"; /* libpq's DEFAULT_PGSOCKET_DIR on Debian */
	if (!port || !*port)
		port = "5432";
	char *end;
	long p = strtol(port, &end, 10);
	if (*end || p < 1 || p > 65535) {
		snprintf(err, errlen, "invalid port number: \"%s\"", port);
		return false;
	}
	char where[400];
	if (host[0] == '/') {
		struct sockaddr_un *un = (struct sockaddr_un *)&raw->addr;
		un->sun_family = AF_UNIX;
		int n = snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%ld", host, p);
		if (n < 0 || (size_t)n >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "Unix-domain socket path \"%s\" is too long", host);
			return false;
		}
		raw->addr_len = sizeof(*un);
		snprintf(where, sizeof(where), "server on socket \"%s\"", un->sun_path);
	} else {
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		struct addrinfo *res = NULL;
		int e = getaddrinfo(host, port, &hints, &res);
		if (e != 0 || !res) {
			snprintf(err, errlen, "could not translate host name \"%s\" to address: %s",
				 host, e ? gai_strerror(e) : "no address");
			if (res)
				freeaddrinfo(res);
			return false;
		}
		raw->ai_list = raw->ai_next = res;
		snprintf(where, sizeof(where), "server at \"%s\", port %ld",
			 o->host ? o->host : host, p);
	}
	raw->where = strdup(where);
	return raw->where != NULL;
}

void server_raw_keepalive_opts(struct server_raw *raw, const struct login_opts *o)
{
	raw->keepalive[0] = !o->keepalives || atoi(o->keepalives) != 0;
	raw->keepalive[1] = o->ka_idle ? atoi(o->ka_idle) : 0;
	raw->keepalive[2] = o->ka_interval ? atoi(o->ka_interval) : 0;
	raw->keepalive[3] = o->ka_count ? atoi(o->ka_count) : 0;
}

static void set_keepalives(const struct server_raw *raw)
{
	int on = raw->keepalive[0];
	(void)setsockopt(raw->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	static const int opts[] = {0, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT};
	for (size_t i = 1; on && i < ARRAY_SIZE(opts); i++)
		if (raw->keepalive[i] > 0)
			(void)setsockopt(raw->fd, IPPROTO_TCP, opts[i], &raw->keepalive[i],
					 sizeof(int));
}

/* The address connected to, for cancel requests. */
void server_raw_keep_peer(struct server_raw *raw)
{
	if (!raw->ai_list)
		return; /* a Unix socket: raw->addr is its path already */
	raw->addr_len = sizeof(raw->addr);
	if (getpeername(raw->fd, (struct sockaddr *)&raw->addr, &raw->addr_len) != 0)
		raw->addr_len = 0;
}

/* Starts connect() to the next address (TCP) or the socket (Unix); false with why if
 * none could even start. */
bool server_raw_connect_next(struct server_raw *raw, char *why, size_t len)
{
	int e = 0;
	for (;;) {
		const struct sockaddr *sa = (const struct sockaddr *)&raw->addr;
		socklen_t sa_len = raw->addr_len;
		if (raw->ai_list) {
			if (!raw->ai_next) {
				snprintf(why, len, "%s", strerror(e ? e : ECONNREFUSED));
				return false;
			}
			sa = raw->ai_next->ai_addr;
			sa_len = raw->ai_next->ai_addrlen;
			raw->ai_next = raw->ai_next->ai_next;
		}
		if (raw->fd >= 0)
			close(raw->fd);
		raw->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (raw->fd < 0) {
			snprintf(why, len, "could not create socket: %s", strerror(errno));
			return false;
		}
		if (sa->sa_family != AF_UNIX) {
			int one = 1;
			(void)setsockopt(raw->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			set_keepalives(raw);
		}
		if (connect(raw->fd, sa, sa_len) == 0 || errno == EINPROGRESS)
			return true;
		e = errno;
		if (!raw->ai_list) {
			snprintf(why, len, "%s", strerror(e));
			return false;
		}
	}
}

int server_raw_fd(const struct server_raw *raw)
{
	return raw->fd;
}

void *server_raw_ssl(const struct server_raw *raw)
{
	return raw->ssl;
}

bool server_raw_cancel_target(const struct server_raw *raw, struct server_raw_cancel *out)
{
	if (!raw->have_cancel_key || raw->addr_len == 0)
		return false;
	out->addr = raw->addr;
	out->addr_len = raw->addr_len;
	out->pid = raw->cancel_pid;
	out->key = raw->cancel_key;
	return true;
}

bool server_raw_cancel_send(const struct server_raw_cancel *c)
{
	int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* Bounded: connect and recv give up after 5 s (Linux applies SO_SNDTIMEO to connect). */
	struct timeval tv = {5, 0};
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint32_t pkt[4] = {htonl(16), htonl(CANCEL_REQUEST_CODE), htonl(c->pid), htonl(c->key)};
	bool ok = connect(fd, (const struct sockaddr *)&c->addr, c->addr_len) == 0 &&
		  send(fd, pkt, sizeof(pkt), MSG_NOSIGNAL) == (ssize_t)sizeof(pkt);
	if (ok) {
		/* The server closes the connection once it has the request (as PQcancel waits). */
		char b;
		(void)recv(fd, &b, 1, 0);
	}
	close(fd);
	return ok;
}
