#include "pool/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "common/log.h"
#include "pool/pool.h"
#include "pool/server_login_raw.h"

static const char *const state_names[] = {
	[SV_LOGIN] = "login",     [SV_IDLE] = "idle",     [SV_ACTIVE] = "active",
	[SV_CLOSING] = "closing", [SV_CLOSED] = "closed",
};

const char *server_state_name(enum server_state st)
{
	return state_names[st];
}

int server_socket(const struct server *s)
{
	if (s->io)
		return stream_fd(s->io);
	if (s->raw)
		return server_raw_fd(s->raw);
	return s->conn ? PQsocket(s->conn) : -1;
}

void server_tls_text(const struct server *s, char *buf, size_t len)
{
	SSL *ssl = s->raw                           ? server_raw_ssl(s->raw)
		   : s->conn && PQsslInUse(s->conn) ? PQsslStruct(s->conn, "OpenSSL")
						    : NULL;
	if (ssl)
		snprintf(buf, len, "%s/%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	else if (len)
		buf[0] = '\0';
}

static void login_step(evutil_socket_t fd, short what, void *arg);

/* Waits for PQsocket to become readable or writable, as PQconnectPoll asked.  The
 * socket can change between polls (libpq tries the next host), so the event is
 * re-created whenever the fd differs. */
static bool wait_socket(struct server *s, short what)
{
	int fd = PQsocket(s->conn);
	if (fd < 0)
		return false;
	if (s->login_ev && s->login_fd != fd) {
		event_free(s->login_ev);
		s->login_ev = NULL;
	}
	if (!s->login_ev) {
		s->login_ev = event_new(s->pool->env->base, fd, what, login_step, s);
		if (!s->login_ev)
			return false;
		s->login_fd = fd;
	} else {
		event_del(s->login_ev);
		event_assign(s->login_ev, s->pool->env->base, fd, what, login_step, s);
	}
	return event_add(s->login_ev, NULL) == 0;
}

static void record_params(struct server *s)
{
	params_clear(&s->params);
	for (size_t i = 0; i < params_reported_count; i++) {
		const char *v = PQparameterStatus(s->conn, params_reported_names[i]);
		if (v)
			(void)params_set(&s->params, params_reported_names[i], v);
	}
}

bool server_attach(struct server *s, struct event_base *base)
{
	/* Not closed with the stream: server_raw_free closes the socket and SSL object
	 * of corral's own login, libpq those of its login. */
	int fd = s->raw ? server_raw_fd(s->raw) : PQsocket(s->conn);
	SSL *ssl = s->raw                ? server_raw_ssl(s->raw)
		   : PQsslInUse(s->conn) ? PQsslStruct(s->conn, "OpenSSL")
					 : NULL;
	s->io = ssl ? stream_tls_new(base, fd, ssl, BUFFEREVENT_SSL_OPEN, false)
		    : stream_socket_new(base, fd, false);
	return s->io != NULL;
}

void server_detach(struct server *s)
{
	if (s->io) {
		stream_free(s->io);
		s->io = NULL;
	}
}

/* The login is done: from now on bytes are relayed, not interpreted by libpq. */
static bool prepare_relay(struct server *s)
{
	/* PQfinish writes Terminate through libpq: it must never block the loop. */
	if (PQsetnonblocking(s->conn, 1) != 0)
		return false;
	if (PQsslInUse(s->conn)) {
		/* libpq 17 and later give the SSL a BIO libevent cannot take the fd from;
		 * a plain socket BIO works with every libpq (libpq keeps the socket). */
		BIO *bio = BIO_new_socket(PQsocket(s->conn), BIO_NOCLOSE);
		if (!bio)
			return false;
		SSL_set_bio(PQsslStruct(s->conn, "OpenSSL"), bio, bio);
	}
	return server_attach(s, s->pool->env->base);
}

static bool is_sqlstate(const char *p)
{
	for (int i = 0; i < 5; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'A' && p[i] <= 'Z')))
			return false;
	return p[5] == ':' && p[6] == ' ';
}

void server_split_login_error(const char *raw, char *msg, size_t msglen, char sqlstate[6])
{
	size_t n = 0;
	sqlstate[0] = '\0';
	while (*raw) {
		const char *eol = strchr(raw, '\n');
		size_t len = eol ? (size_t)(eol - raw) + 1 : strlen(raw);
		if (strncmp(raw, "LOCATION:  ", 11) != 0) {
			size_t keep = len;
			for (const char *p = raw; p + 10 <= raw + len; p++) {
				if (memcmp(p, ":  ", 3) == 0 && is_sqlstate(p + 3)) {
					memcpy(sqlstate, p + 3, 5);
					sqlstate[5] = '\0';
					keep = (size_t)(p + 3 - raw); /* up to "FATAL:  " */
					break;
				}
			}
			for (size_t i = 0; i < keep && n + 1 < msglen; i++)
				msg[n++] = raw[i];
			if (keep < len) /* skip "57P03: " */
				for (size_t i = keep + 7; i < len && n + 1 < msglen; i++)
					msg[n++] = raw[i];
		}
		raw += len;
	}
	if (msglen)
		msg[n] = '\0';
}

static void login_finish(struct server *s, bool ok, const char *errmsg, const char *sqlstate)
{
	if (s->login_ev) {
		event_free(s->login_ev);
		s->login_ev = NULL;
	}
	pool_login_done(s, ok, errmsg, sqlstate);
}

/* libpq gave up on the login: its message, and the server's SQLSTATE if it said one. */
static void login_refused(struct server *s)
{
	char msg[1024], sqlstate[6];
	server_split_login_error(PQerrorMessage(s->conn), msg, sizeof(msg), sqlstate);
	login_finish(s, false, msg, sqlstate);
}

static void login_step(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	switch (PQconnectPoll(s->conn)) {
	case PGRES_POLLING_READING:
		if (!wait_socket(s, EV_READ))
			login_finish(s, false, "cannot wait for the server socket", NULL);
		return;
	case PGRES_POLLING_WRITING:
		if (!wait_socket(s, EV_WRITE))
			login_finish(s, false, "cannot wait for the server socket", NULL);
		return;
	case PGRES_POLLING_OK:
		record_params(s);
		s->backend_pid = PQbackendPID(s->conn);
		if (!prepare_relay(s)) {
			login_finish(s, false, "cannot create a stream for the server socket",
				     NULL);
			return;
		}
		login_finish(s, true, NULL, NULL);
		return;
	default:
		login_refused(s);
		return;
	}
}

bool server_login_start(struct server *s, const char *const *keys, const char *const *vals)
{
	s->conn = PQconnectStartParams(keys, vals, 0);
	if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD)
		return false;
	/* So that a refusal's message carries its SQLSTATE (server_split_login_error). */
	PQsetErrorVerbosity(s->conn, PQERRORS_VERBOSE);
	/* PQconnectStart has already started connect(); poll once it is writable. */
	return wait_socket(s, EV_WRITE);
}

void server_teardown(struct server *s)
{
	if (s->job) {
		s->job_free(s->job);
		s->job = NULL;
	}
	if (s->login_ev) {
		event_free(s->login_ev);
		s->login_ev = NULL;
	}
	server_detach(s);
	if (s->conn) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
	server_raw_free(s->raw);
	s->raw = NULL;
	params_clear(&s->params);
	params_clear(&s->applied);
	params_clear(&s->pending);
	if (s->prepared) {
		s->prepared_free(s->prepared);
		s->prepared = NULL;
	}
}
