/*
 * What corral's own server login (pool/server_login_raw.c) and its connection
 * (pool/server_raw.c) share: the state of one such server, and the connection's
 * functions.  Private to those two files and server.c's accessors; everything else
 * sees struct server_raw only through pool/server_login_raw.h.
 */
#ifndef CORRAL_POOL_SERVER_RAW_H
#define CORRAL_POOL_SERVER_RAW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "common/macros.h"
#include "pool/scram_client.h"
#include "pool/server_login_raw.h"

struct addrinfo;
struct evbuffer;
struct server;

enum sslmode { SSL_DISABLE, SSL_ALLOW, SSL_PREFER, SSL_REQUIRE, SSL_VERIFY_CA, SSL_VERIFY_FULL };

enum raw_step {
	RAW_CONNECTING, /* connect() under way */
	RAW_SSL_ANSWER, /* SSLRequest sent, waiting for 'S' or 'N' */
	RAW_HANDSHAKE,  /* SSL_connect under way */
	RAW_MESSAGES,   /* StartupMessage sent: authentication, parameters, ReadyForQuery */
};

struct server_raw {
	struct server *s;
	int fd;
	SSL *ssl;
	struct event *ev;
	enum raw_step step;
	struct sockaddr_storage addr; /* connected to (cancel requests go there) */
	socklen_t addr_len;
	uint32_t cancel_pid, cancel_key;
	bool have_cancel_key;

	/* Login only (freed or cleansed when it ends). */
	struct evbuffer *in, *out;
	struct evbuffer *startup; /* the StartupMessage, until it is sent */
	/* TCP: the host's addresses, tried in turn as libpq does ("localhost" may be ::1
	 * first while the server listens on 127.0.0.1 only); NULL for a Unix socket. */
	struct addrinfo *ai_list, *ai_next;
	int keepalive[4]; /* on, idle, interval, count (0: the system's) */
	enum sslmode sslmode;
	char *host;  /* as the line says it (for messages, SNI, verify-full) */
	char *where; /* 'server at "h", port p' or 'server on socket "..."' */
	char *rootcert, *cert, *key, *min_proto, *max_proto;
	struct login_secret sec;
	struct scram_client sc;
	bool sasl_started, sasl_verified;
};

/* The database line's keywords the login reads (pointers into the pool's values). */
struct login_opts {
	const char *host, *hostaddr, *port, *dbname, *user, *sslmode, *rootcert, *cert, *key;
	const char *min_proto, *max_proto, *app, *fallback_app, *options, *client_encoding;
	const char *keepalives, *ka_idle, *ka_interval, *ka_count;
};

/* Where to connect (raw->addr for a Unix socket, raw->ai_list for TCP) and raw->where
 * for messages.  Blocking name lookup, as libpq's PQconnectPoll does it too. */
bool server_raw_resolve(struct server_raw *raw, const struct login_opts *o, char *err,
			size_t errlen) WARN_UNUSED;
/* The line's keepalives* for the TCP socket. */
void server_raw_keepalive_opts(struct server_raw *raw, const struct login_opts *o);
/* Starts connect() to the next address (or the socket); false with why if none could
 * even start. */
bool server_raw_connect_next(struct server_raw *raw, char *why, size_t len) WARN_UNUSED;
/* Once connected: the peer address, where cancel requests go. */
void server_raw_keep_peer(struct server_raw *raw);
/* The SSL object on raw->fd as sslmode, sslrootcert, sslcert/sslkey and the protocol
 * range say; false on failure (OpenSSL's error queue says why). */
bool server_raw_start_tls(struct server_raw *raw) WARN_UNUSED;
/* EV_READ or EV_WRITE for what an SSL call that returned ret waits for; 0: an error. */
short server_raw_ssl_want(struct server_raw *raw, int ret);
/* Writes raw->out: 1 all written, 0 must wait for *wait, -1 error. */
int server_raw_flush(struct server_raw *raw, short *wait) WARN_UNUSED;
/* Reads into raw->in: 1 read what there was (*wait: what to wait for next), 0 the
 * server closed, -1 error. */
int server_raw_fill(struct server_raw *raw, short *wait) WARN_UNUSED;

#endif
