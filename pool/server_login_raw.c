/*
 * The login state machine of SCRAM pass-through: one event on the socket, re-armed
 * for reading or writing as the step needs, everything buffered in two evbuffers so
 * partial reads and writes (plain or TLS) never block the loop.  Every failure ends
 * in pool_login_done with a message shaped like libpq's ("connection to server at
 * ... failed: FATAL:  ...") and the server's SQLSTATE, so the pool treats a refusal
 * exactly as it treats one libpq reported.
 */
#include "pool/server_login_raw.h"

#include "pool/server_raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "pool/pool.h"
#include "pool/server.h"

/* A login message bigger than this is not PostgreSQL talking. */
#define MAX_LOGIN_MESSAGE 65536
#define PG_PROTOCOL_3 196608
#define SSL_REQUEST_CODE 80877103
#define AUTH_OK 0
#define AUTH_MD5 5
#define AUTH_SASL 10
#define AUTH_SASL_CONTINUE 11
#define AUTH_SASL_FINAL 12

/* Keywords that change nothing here (or that libpq only reads for other methods). */
static const char *const ignored_keys[] = {
	"connect_timeout", /* server_connect_timeout bounds every login */
	"passfile",         "password",   "sslcompression", "sslsni",
	"tcp_user_timeout", "krbsrvname", "gsslib",
};

static bool read_opts(const char *const *keys, const char *const *vals, struct login_opts *o,
		      char *err, size_t errlen)
{
	const struct {
		const char *name;
		const char **to;
	} known[] = {
		{"host", &o->host},
		{"hostaddr", &o->hostaddr},
		{"port", &o->port},
		{"dbname", &o->dbname},
		{"user", &o->user},
		{"sslmode", &o->sslmode},
		{"sslrootcert", &o->rootcert},
		{"sslcert", &o->cert},
		{"sslkey", &o->key},
		{"ssl_min_protocol_version", &o->min_proto},
		{"ssl_max_protocol_version", &o->max_proto},
		{"application_name", &o->app},
		{"fallback_application_name", &o->fallback_app},
		{"options", &o->options},
		{"client_encoding", &o->client_encoding},
		{"keepalives", &o->keepalives},
		{"keepalives_idle", &o->ka_idle},
		{"keepalives_interval", &o->ka_interval},
		{"keepalives_count", &o->ka_count},
	};
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; keys[i]; i++) {
		bool done = false;
		for (size_t j = 0; !done && j < ARRAY_SIZE(known); j++)
			if (strcmp(keys[i], known[j].name) == 0) {
				*known[j].to = vals[i];
				done = true;
			}
		for (size_t j = 0; !done && j < ARRAY_SIZE(ignored_keys); j++)
			done = strcmp(keys[i], ignored_keys[j]) == 0;
		/* Off-values of features corral's login lacks are fine too. */
		if (!done &&
		    ((strcmp(keys[i], "gssencmode") == 0 && strcmp(vals[i], "require") != 0) ||
		     (strcmp(keys[i], "channel_binding") == 0 && strcmp(vals[i], "require") != 0) ||
		     (strcmp(keys[i], "target_session_attrs") == 0 && strcmp(vals[i], "any") == 0)))
			done = true;
		if (!done) {
			snprintf(
				err, errlen,
				"SCRAM pass-through cannot honour %s=%s on the database line (give the "
				"line a password instead)",
				keys[i], vals[i]);
			return false;
		}
	}
	if ((o->host && strchr(o->host, ',')) || (o->hostaddr && strchr(o->hostaddr, ',')) ||
	    (o->port && strchr(o->port, ','))) {
		snprintf(err, errlen,
			 "SCRAM pass-through logs in to one host only (the database "
			 "line lists several)");
		return false;
	}
	return true;
}

static bool parse_sslmode(const char *v, enum sslmode *out)
{
	static const char *const names[] = {"disable", "allow",     "prefer",
					    "require", "verify-ca", "verify-full"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(v, names[i]) == 0) {
			*out = (enum sslmode)i;
			return true;
		}
	return false;
}

/* ---- ending ---- */

static void raw_login_end(struct server_raw *raw)
{
	if (raw->ev) {
		event_free(raw->ev);
		raw->ev = NULL;
	}
	if (raw->in)
		evbuffer_free(raw->in);
	if (raw->out)
		evbuffer_free(raw->out);
	if (raw->startup)
		evbuffer_free(raw->startup);
	if (raw->ai_list)
		freeaddrinfo(raw->ai_list);
	raw->ai_list = raw->ai_next = NULL;
	raw->in = raw->out = raw->startup = NULL;
	scram_client_free(&raw->sc);
	OPENSSL_cleanse(&raw->sec, sizeof(raw->sec));
	free(raw->host);
	free(raw->where);
	free(raw->rootcert);
	free(raw->cert);
	free(raw->key);
	free(raw->min_proto);
	free(raw->max_proto);
	raw->host = raw->where = raw->rootcert = raw->cert = raw->key = NULL;
	raw->min_proto = raw->max_proto = NULL;
}

static void fail(struct server_raw *raw, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct server_raw *raw, const char *sqlstate, const char *fmt, ...)
{
	char why[700], msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "connection to %s failed: %s",
		 raw->where ? raw->where : "server", why);
	raw_login_end(raw);
	pool_login_done(raw->s, false, msg, sqlstate);
}

static void fail_tls(struct server_raw *raw, const char *what)
{
	char e[256] = "";
	unsigned long code = ERR_get_error();
	if (code)
		ERR_error_string_n(code, e, sizeof(e));
	ERR_clear_error();
	long v = raw->ssl ? SSL_get_verify_result(raw->ssl) : X509_V_OK;
	if (v != X509_V_OK)
		fail(raw, NULL, "%s: certificate verify failed: %s", what,
		     X509_verify_cert_error_string(v));
	else
		fail(raw, NULL, "%s%s%s", what, *e ? ": " : "", e);
}

/* ---- I/O ---- */

static void raw_event(evutil_socket_t fd, short what, void *arg);

static bool arm(struct server_raw *raw, short what)
{
	event_del(raw->ev);
	event_assign(raw->ev, raw->s->pool->env->base, raw->fd, what, raw_event, raw);
	return event_add(raw->ev, NULL) == 0;
}

/* ---- messages to the server ---- */

static void put_int32(struct evbuffer *b, uint32_t v)
{
	uint32_t n = htonl(v);
	evbuffer_add(b, &n, 4);
}

static void put_str(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, s, strlen(s) + 1);
}

static bool put_startup(struct evbuffer *to, const struct login_opts *o)
{
	struct evbuffer *body = evbuffer_new();
	if (!body)
		return false;
	put_int32(body, PG_PROTOCOL_3);
	const char *app = o->app ? o->app : o->fallback_app;
	const char *pairs[][2] = {
		{"user", o->user},
		{"database", o->dbname ? o->dbname : o->user},
		{"application_name", app},
		{"options", o->options},
		{"client_encoding", o->client_encoding},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++)
		if (pairs[i][1]) {
			put_str(body, pairs[i][0]);
			put_str(body, pairs[i][1]);
		}
	evbuffer_add(body, "", 1);
	put_int32(to, (uint32_t)evbuffer_get_length(body) + 4);
	evbuffer_add_buffer(to, body);
	evbuffer_free(body);
	return true;
}

/* A 'p' message: SASLInitialResponse (mech != NULL) or SASLResponse. */
static void put_sasl(struct server_raw *raw, const char *mech, const char *data)
{
	size_t len = strlen(data);
	size_t body = (mech ? strlen(mech) + 1 + 4 : 0) + len;
	evbuffer_add(raw->out, "p", 1);
	put_int32(raw->out, (uint32_t)(body + 4));
	if (mech) {
		put_str(raw->out, mech);
		put_int32(raw->out, (uint32_t)len);
	}
	evbuffer_add(raw->out, data, len);
}

/* ---- messages from the server ---- */

static uint32_t get_int32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return ntohl(v);
}

/* An ErrorResponse: fields S (localized severity), C, M, D. */
static void handle_error(struct server_raw *raw, const unsigned char *p, size_t len)
{
	const char *sev = "FATAL", *code = NULL, *msg = "(no message)", *detail = NULL;
	const char *end = (const char *)p + len;
	const char *f = (const char *)p;
	while (f < end && *f) {
		const char *v = f + 1;
		const char *z = memchr(v, '\0', (size_t)(end - v));
		if (!z)
			break;
		if (*f == 'S')
			sev = v;
		else if (*f == 'C' && strlen(v) == 5)
			code = v;
		else if (*f == 'M')
			msg = v;
		else if (*f == 'D')
			detail = v;
		f = z + 1;
	}
	bool differs = raw->sc.verifier_differs;
	if (code && strcmp(code, "28P01") == 0)
		/* Not the client's fault: corral's verifier is not the server's. */
		log_warn("event=scram_passthrough_refused server=%llu db=%s user=%s verifier=%s "
			 "hint=\"the verifier in auth_file (or auth_query's cached answer) must be "
			 "the one in pg_authid (same salt, iterations and keys)\"",
			 (unsigned long long)raw->s->id, raw->s->pool->db_name, raw->s->pool->user,
			 differs ? "other_salt_or_iterations" : "same_salt");
	char sqlstate[6] = "";
	if (code)
		memcpy(sqlstate, code, 6);
	if (detail)
		fail(raw, sqlstate, "%s:  %s DETAIL:  %s", sev, msg, detail);
	else
		fail(raw, sqlstate, "%s:  %s", sev, msg);
}

/* AuthenticationSASL: its list of mechanisms must name SCRAM-SHA-256. */
static bool handle_sasl(struct server_raw *raw, const unsigned char *p, size_t len)
{
	bool offered = false;
	const char *end = (const char *)p + len, *m = (const char *)p;
	while (m < end && *m) {
		const char *z = memchr(m, '\0', (size_t)(end - m));
		if (!z)
			break;
		offered = offered || strcmp(m, "SCRAM-SHA-256") == 0;
		m = z + 1;
	}
	if (!raw->sec.have_scram) {
		fail(raw, "28000",
		     "the server asks for SCRAM; pass-through has only the auth file's md5 hash "
		     "(give the auth file the user's SCRAM verifier from pg_authid)");
		return false;
	}
	if (!offered || raw->sasl_started) {
		fail(raw, NULL,
		     "the server does not offer SCRAM-SHA-256 (SCRAM pass-through "
		     "needs it)");
		return false;
	}
	char *first = NULL;
	if (!scram_client_first(&raw->sc, "", NULL, &first)) {
		fail(raw, NULL, "cannot start a SCRAM exchange");
		return false;
	}
	raw->sasl_started = true;
	put_sasl(raw, "SCRAM-SHA-256", first);
	free(first);
	return true;
}

/* AuthenticationMD5Password: "md5" + md5hex(hash without "md5" || salt), the answer
 * libpq computes from the password, made from the auth file's hash instead. */
static bool handle_md5(struct server_raw *raw, const unsigned char *salt, size_t len)
{
	if (!raw->sec.have_md5 || len != 4) {
		fail(raw, "28000",
		     raw->sec.have_md5
			     ? "malformed md5 authentication request"
			     : "the server asks for md5; pass-through has only SCRAM keys "
			       "(md5 needs the md5 hash in the auth file)");
		return false;
	}
	unsigned char in[32 + 4], digest[16];
	unsigned int n = 0;
	memcpy(in, raw->sec.md5 + 3, 32);
	memcpy(in + 32, salt, 4);
	bool ok = EVP_Digest(in, sizeof(in), digest, &n, EVP_md5(), NULL) == 1 && n == 16;
	OPENSSL_cleanse(in, sizeof(in));
	if (!ok) {
		fail(raw, NULL, "md5 is not available");
		return false;
	}
	char answer[36];
	memcpy(answer, "md5", 3);
	for (int i = 0; i < 16; i++)
		snprintf(answer + 3 + 2 * i, 3, "%02x", digest[i]);
	evbuffer_add(raw->out, "p", 1);
	put_int32(raw->out, 4 + 35 + 1);
	evbuffer_add(raw->out, answer, 36); /* with its NUL */
	OPENSSL_cleanse(answer, sizeof(answer));
	return true;
}

static bool handle_auth(struct server_raw *raw, const unsigned char *p, size_t len)
{
	if (len < 4) {
		fail(raw, "08P01", "malformed authentication request");
		return false;
	}
	uint32_t code = get_int32(p);
	p += 4;
	len -= 4;
	char *final = NULL;
	switch (code) {
	case AUTH_OK:
		/* Unless the server proved it knows the verifier, a server that merely
		 * says "ok" (trust) gets the login: that is its decision, not a leak. */
		return true;
	case AUTH_SASL:
		return handle_sasl(raw, p, len);
	case AUTH_MD5:
		return handle_md5(raw, p, len);
	case AUTH_SASL_CONTINUE:
		if (!raw->sasl_started ||
		    !scram_client_final(&raw->sc, &raw->sec.scram, (const char *)p, len, &final)) {
			fail(raw, "08P01", "malformed SCRAM server-first message");
			return false;
		}
		put_sasl(raw, NULL, final);
		OPENSSL_cleanse(final, strlen(final));
		free(final);
		return true;
	case AUTH_SASL_FINAL:
		/* Fail closed: a server that does not know ServerKey is not PostgreSQL's. */
		if (!scram_client_verify_server(&raw->sc, &raw->sec.scram, (const char *)p, len)) {
			fail(raw, "28000",
			     "the server's SCRAM signature is wrong (it does not "
			     "know the user's verifier)");
			return false;
		}
		raw->sasl_verified = true;
		return true;
	default:
		fail(raw, "28000",
		     "the server asks for authentication type %u; SCRAM pass-through answers only "
		     "SCRAM-SHA-256 (give the database line a password)",
		     code);
		return false;
	}
}

static void record_param(struct server_raw *raw, const unsigned char *p, size_t len)
{
	const char *name = (const char *)p, *end = name + len;
	const char *z = memchr(name, '\0', len);
	if (!z || !memchr(z + 1, '\0', (size_t)(end - z - 1)))
		return;
	for (size_t i = 0; i < params_reported_count; i++)
		if (strcmp(name, params_reported_names[i]) == 0)
			(void)params_set(&raw->s->params, name, z + 1);
}

/* The login is done: the server goes to the pool like one libpq logged in. */
static void logged_in(struct server_raw *raw)
{
	struct server *s = raw->s;
	if (evbuffer_get_length(raw->in) > 0) {
		fail(raw, "08P01", "the server sent data after ReadyForQuery");
		return;
	}
	raw_login_end(raw);
	s->backend_pid = (int)raw->cancel_pid;
	if (!server_attach(s, s->pool->env->base)) {
		pool_login_done(s, false, "cannot create a stream for the server socket", NULL);
		return;
	}
	pool_login_done(s, true, NULL, NULL);
}

/* Handles every whole message in raw->in; false once the login ended (either way). */
static bool handle_messages(struct server_raw *raw)
{
	for (;;) {
		unsigned char hdr[5];
		if (evbuffer_copyout(raw->in, hdr, 5) < 5)
			return true;
		uint32_t len = get_int32(hdr + 1);
		if (len < 4 || len > MAX_LOGIN_MESSAGE) {
			fail(raw, "08P01", "invalid message length %u during login", len);
			return false;
		}
		if (evbuffer_get_length(raw->in) < (size_t)len + 1)
			return true;
		unsigned char *m = evbuffer_pullup(raw->in, (ssize_t)len + 1);
		if (!m) {
			fail(raw, NULL, "out of memory");
			return false;
		}
		const unsigned char *body = m + 5;
		size_t blen = len - 4;
		bool go_on = true;
		switch (hdr[0]) {
		case 'R':
			go_on = handle_auth(raw, body, blen);
			break;
		case 'E':
			handle_error(raw, body, blen);
			return false;
		case 'S':
			record_param(raw, body, blen);
			break;
		case 'K':
			if (blen == 8) {
				raw->cancel_pid = get_int32(body);
				raw->cancel_key = get_int32(body + 4);
				raw->have_cancel_key = true;
			}
			break;
		case 'N': /* a notice during login: nobody to tell */
			break;
		case 'Z':
			if (raw->sasl_started && !raw->sasl_verified) {
				fail(raw, "28000",
				     "the server ended the SCRAM exchange without its "
				     "signature");
				return false;
			}
			evbuffer_drain(raw->in, (size_t)len + 1);
			logged_in(raw);
			return false;
		default:
			fail(raw, "08P01", "unexpected message type '%c' during login",
			     hdr[0] >= 32 && hdr[0] < 127 ? hdr[0] : '?');
			return false;
		}
		if (!go_on)
			return false;
		evbuffer_drain(raw->in, (size_t)len + 1);
	}
}

/* ---- the steps ---- */

/* Runs the login as far as it goes without waiting; arms the event for the rest. */
static void advance(struct server_raw *raw)
{
	short wait = 0;
	for (;;) {
		switch (raw->step) {
		case RAW_CONNECTING: {
			int err = 0;
			socklen_t len = sizeof(err);
			if (getsockopt(raw->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
				err = errno;
			if (err && raw->ai_next) {
				char why[300];
				if (server_raw_connect_next(raw, why, sizeof(why)))
					goto wait_write;
				fail(raw, NULL, "%s", why);
				return;
			}
			if (err) {
				fail(raw, NULL, "%s", strerror(err));
				return;
			}
			server_raw_keep_peer(raw);
			if (raw->sslmode == SSL_DISABLE || raw->sslmode == SSL_ALLOW ||
			    !raw->ai_list) { /* no TLS on a Unix socket, as libpq */
				raw->step = RAW_MESSAGES;
				continue;
			}
			put_int32(raw->out, 8);
			put_int32(raw->out, SSL_REQUEST_CODE);
			raw->step = RAW_SSL_ANSWER;
			continue;
		}
		case RAW_SSL_ANSWER: {
			int f = server_raw_flush(raw, &wait);
			if (f < 0) {
				fail(raw, NULL, "could not send SSL negotiation packet: %s",
				     strerror(errno));
				return;
			}
			if (f == 0)
				goto wait;
			char c;
			ssize_t r = recv(raw->fd, &c, 1, 0);
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				wait = EV_READ;
				goto wait;
			}
			if (r <= 0 || (c != 'S' && c != 'N')) {
				fail(raw, NULL, "received invalid response to SSL negotiation");
				return;
			}
			if (c == 'S') {
				if (!server_raw_start_tls(raw)) {
					fail_tls(raw, "cannot set up TLS");
					return;
				}
				raw->step = RAW_HANDSHAKE;
			} else if (raw->sslmode >= SSL_REQUIRE) {
				fail(raw, NULL,
				     "server does not support SSL, but SSL was required");
				return;
			} else {
				raw->step = RAW_MESSAGES;
			}
			continue;
		}
		case RAW_HANDSHAKE: {
			ERR_clear_error();
			int r = SSL_connect(raw->ssl);
			if (r == 1) {
				raw->step = RAW_MESSAGES;
				continue;
			}
			wait = server_raw_ssl_want(raw, r);
			if (!wait) {
				fail_tls(raw, "SSL handshake failed");
				return;
			}
			goto wait;
		}
		case RAW_MESSAGES: {
			if (raw->startup) {
				/* After the TLS handshake, if there is one: never in the clear. */
				evbuffer_add_buffer(raw->out, raw->startup);
				evbuffer_free(raw->startup);
				raw->startup = NULL;
			}
			int f = server_raw_flush(raw, &wait);
			if (f < 0) {
				fail(raw, NULL, "could not send data to server: %s",
				     strerror(errno));
				return;
			}
			if (f == 0)
				goto wait;
			int r = server_raw_fill(raw, &wait);
			if (r <= 0) {
				/* Whatever it said before closing (an ErrorResponse) says why. */
				if (!handle_messages(raw))
					return;
				fail(raw, NULL, "server closed the connection unexpectedly");
				return;
			}
			if (!handle_messages(raw))
				return;
			if (evbuffer_get_length(raw->out) > 0)
				continue; /* an answer to send */
			goto wait;
		}
		}
	}
wait:
	if (!arm(raw, wait ? wait : EV_READ))
		fail(raw, NULL, "cannot wait for the server socket");
	return;
wait_write:
	if (!arm(raw, EV_WRITE))
		fail(raw, NULL, "cannot wait for the server socket");
}

static void raw_event(evutil_socket_t fd, short what, void *arg)
{
	advance(arg);
}

static char *dup_or_null(const char *s, bool *ok)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*ok = false;
	return d;
}

bool server_login_raw_start(struct server *s, const char *const *keys, const char *const *vals,
			    const struct login_secret *sec, char *err, size_t errlen)
{
	struct login_opts o;
	if (!read_opts(keys, vals, &o, err, errlen))
		return false;
	enum sslmode mode = SSL_PREFER;
	const char *m = o.sslmode ? o.sslmode : getenv("PGSSLMODE");
	if (m && *m && !parse_sslmode(m, &mode)) {
		snprintf(err, errlen, "invalid sslmode value: \"%s\"", m);
		return false;
	}
	if (mode >= SSL_VERIFY_CA && !o.rootcert) {
		snprintf(
			err, errlen,
			"SCRAM pass-through with sslmode=%s needs sslrootcert= on the database line "
			"(or server_tls_ca_file)",
			m);
		return false;
	}
	if (!o.user) {
		snprintf(err, errlen, "no user to log in as");
		return false;
	}
	struct server_raw *raw = calloc(1, sizeof(*raw));
	if (!raw) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	s->raw = raw; /* from here on server_teardown frees it */
	raw->s = s;
	raw->fd = -1;
	raw->sec = *sec;
	raw->sslmode = mode;
	bool ok = true;
	raw->host = dup_or_null(o.host ? o.host : o.hostaddr, &ok);
	raw->rootcert = dup_or_null(o.rootcert, &ok);
	raw->cert = dup_or_null(o.cert, &ok);
	raw->key = dup_or_null(o.key ? o.key : o.cert, &ok);
	raw->min_proto = dup_or_null(o.min_proto, &ok);
	raw->max_proto = dup_or_null(o.max_proto, &ok);
	raw->in = evbuffer_new();
	raw->out = evbuffer_new();
	raw->startup = evbuffer_new();
	if (!ok || !raw->in || !raw->out || !raw->startup || !put_startup(raw->startup, &o)) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	if (!server_raw_resolve(raw, &o, err, errlen))
		return false;
	server_raw_keepalive_opts(raw, &o);
	char why[300];
	if (!server_raw_connect_next(raw, why, sizeof(why))) {
		snprintf(err, errlen, "connection to %s failed: %s", raw->where, why);
		return false;
	}
	raw->step = RAW_CONNECTING;
	raw->ev = event_new(s->pool->env->base, raw->fd, EV_WRITE, raw_event, raw);
	if (!raw->ev || event_add(raw->ev, NULL) != 0) {
		snprintf(err, errlen, "cannot wait for the server socket");
		return false;
	}
	return true;
}

void server_raw_free(struct server_raw *raw)
{
	if (!raw)
		return;
	raw_login_end(raw);
	if (raw->fd >= 0) {
		/* Goodbye if it goes out at once (as PQfinish); the backend exits on EOF too. */
		static const char terminate[] = {'X', 0, 0, 0, 4};
		if (raw->ssl && SSL_is_init_finished(raw->ssl)) {
			ERR_clear_error();
			(void)SSL_write(raw->ssl, terminate, sizeof(terminate));
		} else if (!raw->ssl && raw->step == RAW_MESSAGES) {
			(void)send(raw->fd, terminate, sizeof(terminate),
				   MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
	if (raw->ssl)
		SSL_free(raw->ssl);
	ERR_clear_error();
	if (raw->fd >= 0)
		close(raw->fd);
	OPENSSL_cleanse(raw, sizeof(*raw));
	free(raw);
}
