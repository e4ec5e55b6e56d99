#include "proxy/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/ids.h"
#include "common/log.h"
#include "pool/app_gate.h"
#include "pool/cancel.h"
#include "proxy/admin.h"
#include "proxy/auth_query.h"
#include "proxy/client_auth.h"
#include "proxy/client_limits.h"
#include "proxy/client_tls.h"
#include "proxy/client_lists.h"
#include "proxy/client_stats.h"
#include "common/stream.h"
#include "proxy/random.h"
#include "proxy/server_cmd.h"
#include "proxy/server_drain.h"
#include "proxy/prepared_relay.h"
#include "proxy/pin.h"
#include "proxy/seq_state.h"
#include "proxy/server_reset.h"
#include "proxy/session_params.h"
#include "proxy/worker.h"

/* A client that does not read its last error within this is closed anyway. */
#define CLOSE_FLUSH_TIMEOUT_SEC 5
/* NAMEDATALEN - 1: the longest user or database name PostgreSQL keeps. */
#define PG_NAME_MAX 63
/* Before login nothing is bigger than a password message (client_auth.c's cap). */
#define LOGIN_READ_LIMIT (128 * 1024)
/* One read before login: a startup packet or password message is far smaller. */
#define LOGIN_READ_CHUNK 4096
/* What a client may send ahead while it waits for a server; reading stops beyond. */
#define WAITING_READ_LIMIT (64 * 1024)

static const char *const state_names[] = {
	[CL_STARTUP] = "startup", [CL_AUTH] = "auth",	  [CL_WELCOME_WAIT] = "welcome_wait",
	[CL_IDLE] = "idle",	  [CL_WAITING_APP] = "waiting_app", [CL_WAITING] = "waiting",
	[CL_PREPARING] = "preparing", [CL_ACTIVE] = "active",
	[CL_CLOSING] = "closing", [CL_CLOSED] = "closed",
};

const char *client_state_name(enum client_state st)
{
	return state_names[st];
}

/* host:port of a client ([host]:port for IPv6). */
static const char *format_peer(const struct client *c, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	bool v6 = c->peer.sa.sa_family == AF_INET6;
	if (c->peer.sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &c->peer.in.sin_addr, host, sizeof(host));
		port = ntohs(c->peer.in.sin_port);
	} else if (v6) {
		inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, host, sizeof(host));
		port = ntohs(c->peer.in6.sin6_port);
	}
	snprintf(out, outlen, v6 ? "[%s]:%d" : "%s:%d", host, port);
	return out;
}

/* peer=host:port user="..." db="..." for every log line about a client, so a failed
 * login names where it came from; names come from the client, so they are quoted
 * and escaped (no forged fields or lines).  Formatted only when the line is written. */
const char *client_log_who(const struct client *c, char *buf, size_t len)
{
	char user[130], db[130], peer[INET6_ADDRSTRLEN + 8];
	snprintf(buf, len, "peer=%s user=\"%s\" db=\"%s\"", format_peer(c, peer, sizeof(peer)),
		 log_clean(c->user ? c->user : "", user, sizeof(user)),
		 log_clean(c->database ? c->database : "", db, sizeof(db)));
	return buf;
}

static void client_read(struct stream *io, void *arg);
static void client_write(struct stream *io, void *arg);
static void client_event(struct stream *io, short what, void *arg);

/* ---- login input --------------------------------------------------------------- */

/*
 * Until it is authenticated a client is read with plain read() calls from an event
 * of its own rather than through its stream: a direct-TLS ClientHello must be seen
 * (recv MSG_PEEK) before any byte is taken from the socket, and a refused client's
 * grace is this event's timeout.  Three of the five reads of a pgbench -C client
 * happen here (startup packet, two SCRAM messages).  The bytes go into the stream's
 * input, so the login handlers parse them there and whatever the client sends ahead
 * of its login's end stays there for what follows.
 */
static void login_reader_stop(struct client *c)
{
	if (c->login_ev) {
		event_free(c->login_ev);
		c->login_ev = NULL;
	}
}

/* After authentication the stream reads.  Its event is added before the login
 * event goes: the fd stays watched for reading throughout, so epoll is not told. */
static void login_reader_done(struct client *c)
{
	stream_enable(c->io, EV_READ);
	login_reader_stop(c);
}

static void login_input(struct client *c);

/* Appends what the socket has to the input; false when there is nothing new to parse
 * (nothing read, or the client was closed). */
static bool login_fill(struct client *c, evutil_socket_t fd)
{
	struct evbuffer *in = stream_input(c->io);
	size_t have = evbuffer_get_length(in);
	if (have >= LOGIN_READ_LIMIT) {
		/* As the stream's read watermark does: hold nothing more from a client
		 * that sent more than any login message; the login timeout ends it. */
		event_del(c->login_ev);
		return false;
	}
	uint8_t buf[LOGIN_READ_CHUNK];
	size_t room = LOGIN_READ_LIMIT - have;
	ssize_t n = read(fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	if (n <= 0) {
		client_close(c, n == 0 ? "client closed the connection" : "client socket error");
		return false;
	}
	if (evbuffer_add(in, buf, (size_t)n) != 0) {
		client_close(c, "out of memory");
		return false;
	}
	return true;
}

static bool direct_tls(struct client *c);

static void login_read(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	if (what & EV_TIMEOUT) { /* only refused clients have one: proxy/client_limits.h */
		client_limits_refuse(c);
		return;
	}
	if (direct_tls(c))
		return;
	if (!login_fill(c, fd))
		return;
	c->last_active = clock_now_usec();
	login_input(c);
	if (c->state == CL_CLOSING || c->state == CL_CLOSED)
		return;
	stream_flush(c->io);
	/* Logged in and welcomed, nothing more sent yet: until its first query it holds no
	 * buffers (the next login reuses them), which is what a crowd of connected idle
	 * functions costs. */
	if (c->state == CL_IDLE)
		(void)stream_park(c->io);
}

/* ---- ending ------------------------------------------------------------------- */

/* server_reset_query is for session pooling (PgBouncer's meaning), and for a client
 * pinned to its server in transaction pooling (proxy/pin.h) or one that left with a
 * carried SET unanswered: otherwise a server carries
 * no session state of its client beyond the tracked parameters, which the next link
 * sets anyway. */
static const char *reset_query(const struct client *c)
{
	return c->pool->mode == POOL_MODE_SESSION || c->pin_reason || c->set_pending
		       ? c->worker->cfg->server_reset_query
		       : NULL;
}

/* A client left while its server was being prepared: keep the server if it is clean.
 * arg: non-NULL when the client wanted server_reset_query run, read now from the
 * configuration in force (a RELOAD meanwhile may have freed the one it had). */
static void orphan_prepared(struct server *s, const struct server_cmd_result *res, void *arg)
{
	if (res->failure)
		pool_close_server(s, res->failure);
	else if (session_params_finished(s, res->error))
		server_reset_and_release(s, res->status,
					 arg ? s->pool->env->cfg->server_reset_query : NULL);
	else
		pool_close_server(s, "session parameters could not be applied");
}

/* Out of whichever queue c->waiter is in, and what it was owed with it (a reserved
 * server or token) goes back.  Its kind is set before each use (request_server): a
 * waiter given a server or a refusal without queueing keeps the kind it was given. */
static void leave_queue(struct client *c)
{
	if (!pool_waiter_busy(&c->waiter))
		return;
	if (c->waiter.kind == WAIT_APP)
		app_gate_dequeue(c->gate, &c->waiter);
	else
		pool_dequeue(c->pool, &c->waiter);
}

/* c lets go of its server (the caller says what becomes of it), and of the link's
 * relay with it: a client without a server holds none (relay.h). */
static void unlinked(struct client *c)
{
	c->server = NULL;
	relay_free(c->relay);
	c->relay = NULL;
}

/* Leaves the queue, and gives the server back (reset first) if it can be reused. */
static void release_token(struct client *c)
{
	if (c->has_token) {
		c->has_token = false;
		app_gate_leave(c->gate);
	}
}

static void detach(struct client *c)
{
	admin_client_gone(c);
	leave_queue(c);
	release_token(c);
	struct server *s = c->server;
	if (!s)
		return;
	if (c->state == CL_PREPARING) {
		/* The parameter query is still running; it decides the server's fate. */
		unlinked(c);
		server_cmd_rebind(s, orphan_prepared, reset_query(c) ? (void *)s : NULL);
		return;
	}
	relay_stop(c);
	/* What the relay knows decides the server's fate; then it goes with the link. */
	struct relay *r = c->relay;
	c->relay = NULL;
	unlinked(c);
	if ((c->pin_reason || c->set_pending) && c->pool->mode != POOL_MODE_SESSION &&
	    !(reset_query(c) && reset_query(c)[0])) {
		/* Pinned (or left before corral learnt whether its SET took effect), and
		 * nothing would undo its LISTEN, lock or setting: no one else gets it. */
		pool_close_server(s, "a pinned client left and server_reset_query is empty");
	} else if (relay_between_queries(r)) {
		server_reset_and_release(s, relay_tx_status(r), reset_query(c));
	} else {
		server_drain(s, r, reset_query(c));
	}
	relay_free(r);
}

void client_close(struct client *c, const char *reason)
{
	if (c->state == CL_CLOSED)
		return;
	struct worker *w = c->worker;
	detach(c);
	auth_query_detach(c); /* its lookup must not call back a freed client */
	cancel_keys_forget(&c->cancel);
	client_limits_forget(c);
	login_reader_stop(c);
	if (c->io) {
		stream_free(c->io); /* closes the socket */
		c->io = NULL;
	}
	char ids[400], why[512];
	log_info("event=client_closed client=%llu %s state=%s reason=\"%s\"",
		 (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
		 client_state_name(c->state), log_clean(reason, why, sizeof(why)));
	client_set_state(c, CL_CLOSED); /* the last use of its pool's statistics */
	if (c->pool) {
		/* The pool may be freed from now on (max_pools, pool/pool_retire.c). */
		pool_leave(c->pool);
		c->pool = NULL;
		c->pool_stats = NULL;
	}
	if (c->app_gate) {
		/* Its application's record may be retired from now on (pool/shared.h). */
		app_gate_part(c->app_gate);
		c->app_gate = NULL;
		c->gate = NULL;
		c->app_stats = NULL;
	}
	if (!c->refusal) /* a refused client gave its place back when refused */
		atomic_fetch_sub(&w->shared->clients, 1);
	event_active(w->reap_ev, 0, 0);
}

/* Stops reading c and closes it once its output is written (client_write), or after
 * CLOSE_FLUSH_TIMEOUT_SEC if it does not read. */
static void close_after_flush(struct client *c)
{
	client_set_state(c, CL_CLOSING);
	login_reader_stop(c);
	stream_disable(c->io, EV_READ);
	stream_setwatermark(c->io, EV_WRITE, 0, 0);
	struct timeval tv = { CLOSE_FLUSH_TIMEOUT_SEC, 0 };
	stream_set_timeouts(c->io, NULL, &tv);
	stream_enable(c->io, EV_WRITE);
}

void client_fail(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	if (c->state == CL_CLOSING || c->state == CL_CLOSED)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* Half a server message is on its way to the client: an ErrorResponse now would
	 * land inside it, so the client can only be disconnected. */
	bool mid_message = c->relay && c->relay->to_client_remaining > 0;
	detach(c);
	char clean[2 * sizeof(msg)], ids[400];
	log_info("event=client_error client=%llu %s state=%s sqlstate=%s msg=\"%s\"",
		 (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
		 client_state_name(c->state),
		 sqlstate, log_clean(msg, clean, sizeof(clean)));
	if (mid_message) {
		client_close(c, "error in the middle of a server message");
		return;
	}
	pgproto_put_error(stream_output(c->io), "FATAL", sqlstate, msg);
	close_after_flush(c);
}

void client_shutdown(struct client *c)
{
	bool mid_message = c->relay && c->relay->to_client_remaining > 0;
	if (c->io && c->state != CL_CLOSING && !mid_message) {
		struct evbuffer *out = stream_output(c->io);
		pgproto_put_error(out, "FATAL", "57P01",
				  "terminating connection due to administrator command");
		if (client_tls_active(c)) {
			/* Only through the session: raw bytes would be garbage to the client. */
			(void)client_tls_write_now(c);
		} else {
			/* The loop is over: what the socket takes now. */
			(void)evbuffer_write(out, stream_fd(c->io));
		}
	}
	client_close(c, "shutting down");
}

/* The login is over: the auth file it was checked against may go, and all the login
 * kept with it (its SCRAM exchange cleansed by client_auth_cleanup). */
static void drop_auth_snapshot(struct client *c)
{
	struct client_login *l = c->login;
	if (!l)
		return;
	auth_query_detach(c);
	client_auth_cleanup(c);
	if (l->own_secret) {
		auth_secret_free(l->own_secret);
		free(l->own_secret);
	}
	if (l->auth_snap)
		snapshot_release(l->auth_snap);
	free(l);
	c->login = NULL;
}

void client_free(struct client *c)
{
	client_auth_cleanup(c);
	drop_auth_snapshot(c);
	admin_session_free(c);
	free(c->user); /* and database, application_name: keep_names */
	params_clear(&c->params);
	pin_client_free(c);
	relay_free(c->relay); /* (unlinked: none) */
	prepared_client_free(c);
	free(c);
}

/* ---- cancel requests ---------------------------------------------------------- */

static void request_server(struct client *c);

struct cancel_msg {
	struct inbox_item item;
	uint32_t pid, secret;
};

static void cancel_msg_run(struct inbox_item *item, void *ctx)
{
	struct cancel_msg *m = (struct cancel_msg *)item;
	/* A worker's inbox hands its items the worker's pool_env. */
	client_cancel_request(container_of(ctx, struct worker, pools), m->pid, m->secret);
	free(m);
}

static void cancel_msg_drop(struct inbox_item *item)
{
	free(item);
}

/* The worker that issued the key handles it; unknown workers' keys are dropped. */
static void route_cancel(struct worker *w, uint32_t pid, uint32_t secret)
{
	int to = cancel_key_worker(pid);
	if (to >= w->shared->n_workers)
		return;
	log_info("event=cancel_routed from_worker=%d to_worker=%d", w->id, to);
	if (to == w->id) {
		client_cancel_request(w, pid, secret);
		return;
	}
	struct cancel_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return;
	m->item.run = cancel_msg_run;
	m->item.drop = cancel_msg_drop;
	m->pid = pid;
	m->secret = secret;
	inbox_post(w->shared->inboxes[to], &m->item);
}

/*
 * The length of the first request of c's unsent input that PostgreSQL would answer
 * with a ReadyForQuery (a Query, a FunctionCall, or extended-protocol messages up to
 * their Sync), or 0 if it has not all arrived.
 */
static size_t first_request_length(struct client *c)
{
	struct evbuffer *in = stream_input(c->io);
	size_t off = 0;
	for (;;) {
		char type;
		uint32_t len;
		if (pgproto_peek_header_at(in, off, &type, &len) != PG_PARSE_OK ||
		    evbuffer_get_length(in) < off + len + 1)
			return 0;
		off += len + 1;
		if (type == 'Q' || type == 'F' || type == 'S')
			return off;
		if (type == 'X')
			return 0;
	}
}

/*
 * A queued client is cancelled: its first request leaves the queue unsent and is
 * answered as PostgreSQL answers a cancelled statement (57014, then ReadyForQuery);
 * one that has not fully arrived cannot be answered in step, so the client is ended.
 */
static void cancel_queued(struct client *c)
{
	size_t len = first_request_length(c);
	if (!len) {
		client_fail(c, "57014", "canceling statement due to user request");
		return;
	}
	leave_queue(c);
	release_token(c);
	evbuffer_drain(stream_input(c->io), len);
	struct evbuffer *out = stream_output(c->io);
	pgproto_put_error(out, "ERROR", "57014", "canceling statement due to user request");
	pgproto_put_ready(out, 'I');
	stream_flush(c->io);
	c->wait_start = 0;
	client_set_state(c, CL_IDLE);
	stream_setwatermark(c->io, EV_READ, 0, 0);
	char ids[400];
	log_info("event=client_cancelled client=%llu %s state=waiting", (unsigned long long)c->id,
		 client_log_who(c, ids, sizeof(ids)));
	if (stream_input_length(c->io))
		request_server(c);
}

void client_cancel_request(struct worker *w, uint32_t pid, uint32_t secret)
{
	struct cancel_key *k = cancel_keys_find(&w->cancel_keys, pid, secret);
	if (!k)
		return; /* as PostgreSQL: an unknown key is dropped without a word */
	struct client *c = container_of(k, struct client, cancel);
	if (c->state == CL_WAITING || c->state == CL_WAITING_APP) {
		cancel_queued(c);
	} else if ((c->state == CL_ACTIVE || c->state == CL_PREPARING) && c->server) {
		char ids[400];
		log_info("event=client_cancel client=%llu %s server=%llu pid=%d",
			 (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
			 (unsigned long long)c->server->id, c->server->backend_pid);
		(void)server_cancel(c->server);
	}
	/* Idle, logging in, waiting for the first login: nothing runs to cancel. */
}

/* ---- startup ------------------------------------------------------------------ */

/* c->user, c->database and c->application_name in one allocation (c->user's): three
 * strings a client keeps for its whole life, each one malloc chunk otherwise. */
static bool keep_names(struct client *c, const char *user, const char *db, const char *app)
{
	const char *src[3] = { user, db, app };
	size_t len[3] = { strnlen(user, PG_NAME_MAX), strnlen(db, PG_NAME_MAX), strlen(app) };
	char *p = malloc(len[0] + len[1] + len[2] + 3);
	if (!p)
		return false;
	char **dst[3] = { &c->user, &c->database, &c->application_name };
	for (int i = 0; i < 3; i++) {
		memcpy(p, src[i], len[i]);
		p[len[i]] = '\0';
		*dst[i] = p;
		p += len[i] + 1;
	}
	return true;
}

static bool take_startup_params(struct client *c, const struct pg_startup *st)
{
	const char *user = pgproto_startup_param(st, "user");
	if (!user || !user[0]) {
		client_fail(c, "28000", "no PostgreSQL user name specified in startup packet");
		return false;
	}
	const char *db = pgproto_startup_param(st, "database");
	const char *app = pgproto_startup_param(st, "application_name");
	/* As PostgreSQL's ProcessStartupPacket: both names are cut to NAMEDATALEN - 1 bytes
	 * before anything matches them, or "role63" + "x" would miss hba lines, auth_file
	 * entries and per-user limits that PostgreSQL applies to "role63" (auth_query's
	 * usename = $1 and the server login cut it anyway). */
	if (!keep_names(c, user, db && db[0] ? db : user, app ? app : "")) {
		client_fail(c, "53200", "out of memory");
		return false;
	}
	const char *why = NULL;
	if (!session_params_from_startup(st, &c->params, &why)) {
		client_fail(c, "22023", "%s", why);
		return false;
	}
	return true;
}

/* Protocol 3.x with x > 0 and "_pq_." options: say what we speak, as PostgreSQL does. */
static void negotiate_version(struct client *c, const struct pg_startup *st)
{
	const char *unsupported[PG_MAX_STARTUP_PARAMS];
	size_t n = 0;
	for (size_t i = 0; i < st->n_params; i++)
		if (strncmp(st->names[i], "_pq_.", 5) == 0)
			unsupported[n++] = st->names[i];
	if ((st->code & 0xffff) > 0 || n > 0)
		pgproto_put_negotiate_version(stream_output(c->io), PG_PROTOCOL_LATEST,
					      unsupported, n);
}

/* An SSLRequest: 'N' when TLS is off, else 'S' and from now on c->io is a TLS stream,
 * read through its callbacks (the login reader reads the plain fd). */
static bool start_tls(struct client *c)
{
	bool closed;
	if (!client_tls_accept(c, &closed))
		return !closed;
	login_reader_stop(c);
	stream_enable(c->io, EV_READ);
	return false; /* the startup packet comes after the handshake */
}

/*
 * PostgreSQL 17's direct TLS: before anything is read, a client whose first byte opens
 * a TLS handshake record gets the handshake at once, no SSLRequest.  It counts as its
 * one SSL request: an SSLRequest inside is refused as a second one (PostgreSQL: a
 * protocol error).  True when there is nothing to read now: c is TLS (or closed), or
 * its first byte has not come yet.
 */
static bool direct_tls(struct client *c)
{
	if (c->state != CL_STARTUP || c->ssl_asked || c->gssenc_asked ||
	    stream_input_length(c->io) > 0)
		return false;
	enum client_tls_first first = client_tls_peek_first(c);
	if (first != TLS_FIRST_HANDSHAKE)
		return first == TLS_FIRST_NOTHING;
	c->ssl_asked = true;
	c->tls_direct = true;
	if (!client_tls_accept_direct(c))
		return true;
	login_reader_stop(c);
	stream_enable(c->io, EV_READ);
	if (c->refusal)
		client_limits_keep_grace(c); /* the reader's timeout was its grace */
	return true;
}

/* client_tls_sslmode require and stricter: a plain startup packet is refused as
 * PostgreSQL's pg_hba refuses "no encryption", after the packet is read, so the client
 * is told why instead of seeing its connection drop. */
static bool plain_text_allowed(struct client *c)
{
	enum client_tls_mode mode = c->worker->cfg->client_tls.sslmode;
	if (mode < CLIENT_TLS_REQUIRE || client_tls_active(c))
		return true;
	client_fail(c, "28000",
		    "no encryption: corral accepts only TLS connections (client_tls_sslmode = %s); "
		    "connect with sslmode=require or stricter",
		    mode == CLIENT_TLS_REQUIRE     ? "require"
		    : mode == CLIENT_TLS_VERIFY_CA ? "verify-ca"
						   : "verify-full");
	return false;
}

/* One startup packet from the input; false when there is nothing more to do now. */
static bool handle_startup_packet(struct client *c)
{
	struct evbuffer *in = stream_input(c->io);
	uint32_t len;
	const char *why = NULL;
	/* A TLS ClientHello where TLS is off (else direct_tls took it): PostgreSQL closes
	 * without a word, as the client could not read a plain-text error anyway. */
	if (!c->ssl_asked && !c->gssenc_asked && !client_tls_active(c)) {
		const uint8_t *first = evbuffer_pullup(in, 1);
		if (first && first[0] == 0x16) {
			client_close(c, "TLS handshake without SSLRequest, client TLS is off");
			return false;
		}
	}
	enum pg_parse_result pr = pgproto_startup_length(in, &len, &why);
	if (pr == PG_PARSE_INCOMPLETE)
		return false;
	if (pr == PG_PARSE_ERROR) {
		client_fail(c, "08P01", "%s", why);
		return false;
	}
	if (evbuffer_get_length(in) < len)
		return false;

	struct pg_startup st;
	const uint8_t *packet = evbuffer_pullup(in, len);
	if (!pgproto_parse_startup(packet, len, &st, &why)) {
		client_fail(c, "08P01", "%s", why);
		return false;
	}
	switch (st.code) {
	case PG_SSL_REQUEST_CODE:
	case PG_GSSENC_REQUEST_CODE: {
		bool *asked = st.code == PG_SSL_REQUEST_CODE ? &c->ssl_asked : &c->gssenc_asked;
		if (*asked) {
			/* PostgreSQL allows each once; a loop of them only costs memory. */
			client_fail(c, "08P01", "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
				    st.code >> 16, st.code & 0xffff);
			return false;
		}
		*asked = true;
		evbuffer_drain(in, len);
		if (st.code == PG_GSSENC_REQUEST_CODE) {
			stream_write(c->io, "N", 1); /* no GSS: plain text goes on */
			return true;
		}
		return start_tls(c);
	}
	case PG_CANCEL_REQUEST_CODE:
		/* As PostgreSQL: no reply, the connection just ends. */
		evbuffer_drain(in, len);
		route_cancel(c->worker, st.cancel_pid, st.cancel_key);
		client_close(c, "cancel request");
		return false;
	default:
		break;
	}
	if (st.code >> 16 != 3) {
		client_fail(c, "0A000", "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
			    st.code >> 16, st.code & 0xffff);
		return false;
	}
	if (pgproto_startup_param(&st, "replication")) {
		client_fail(c, "08P01", "replication connections are not supported by corral");
		return false;
	}
	bool ok = take_startup_params(c, &st);
	if (ok)
		negotiate_version(c, &st);
	evbuffer_drain(in, len);
	if (!ok)
		return false;
	if (!plain_text_allowed(c))
		return false;
	/* As PostgreSQL: the startup packet is read (SSLRequest answered) first, so the
	 * client can tell this error from a failed TLS negotiation. */
	if (c->refusal)
		client_limits_refuse(c);
	else
		client_auth_begin(c);
	return false;
}

/* ---- logged in ---------------------------------------------------------------- */

static void welcome(struct client *c)
{
	struct evbuffer *out = stream_output(c->io);
	const struct param_set *ps = &c->pool->params;
	/* The client sees the values it asked for, spelled as the server spelled them
	 * for an earlier client; a server gets them when linked. */
	session_params_add_defaults(&c->params, ps);
	c->param_sig = 0;
	for (size_t i = 0; i < c->params.n; i++) {
		char spelled[256];
		if (session_params_tracked(c->params.names[i]) &&
		    pool_shared_spelling(c->pool->shared, c->params.names[i], c->params.values[i],
					 spelled, sizeof(spelled)))
			(void)params_set(&c->params, c->params.names[i], spelled);
	}
	session_params_share(&c->params, &c->pool->client_params);
	pin_client_welcome(c); /* what RESET goes back to, spelled as the client sees it */
	const char *values[PARAMS_MAX];
	for (size_t i = 0; i < ps->n; i++) {
		const char *value = params_get(&c->params, ps->names[i]);
		values[i] = value ? value : ps->values[i];
	}
	pgproto_put_parameter_statuses(out, (const char *const *)ps->names, values, ps->n);
	pgproto_put_backend_key(out, c->cancel.pid, c->cancel.secret);
	pgproto_put_ready(out, 'I');
}

static void forward_param(void *arg, const char *name, const char *value)
{
	struct client *c = arg;
	pgproto_put_parameter_status(stream_output(c->io), name, value);
	stream_flush(c->io);
}

/*
 * The welcome showed the client its startup values as it wrote them; the server
 * reports them normalised ("SQL" -> "SQL, MDY", "utf8" -> "UTF8").  Once per client,
 * pass on the server's spelling, as PostgreSQL would have shown it at login, and
 * record that s matches the client's (now normalised) set.
 */
static void report_server_values(struct client *c, struct server *s)
{
	if (!c->values_reported) {
		c->values_reported = true;
		struct evbuffer *out = stream_output(c->io);
		for (size_t i = 0; i < c->params.n; i++) {
			const char *name = c->params.names[i];
			const char *have = params_get(&s->params, name);
			if (!have || !session_params_tracked(name) || strcmp(have, c->params.values[i]) == 0)
				continue;
			pgproto_put_parameter_status(out, name, have);
			pool_shared_learn_spelling(c->pool->shared, name, c->params.values[i], have);
			/* What RESET goes back to is spelled so too: the same value, and a
			 * link after it needs no set_config() to respell it. */
			const char *startup = c->startup_params
						      ? params_get(c->startup_params, name)
						      : NULL;
			if (startup && strcmp(startup, c->params.values[i]) == 0)
				(void)params_set(c->startup_params, name, have);
			(void)params_set(&c->params, name, have);
			c->param_sig = 0;
		}
	}
	if (!c->param_sig)
		c->param_sig = session_params_signature(&c->params);
	session_params_linked(s, &c->params, c->param_sig);
}

static void prepared(struct server *s, const struct server_cmd_result *res, void *arg)
{
	struct client *c = arg;
	if (res->failure) {
		unlinked(c);
		pool_close_server(s, res->failure);
		client_fail(c, "08006", "server connection lost while applying session parameters: %s",
			    res->failure);
		return;
	}
	if (res->error) {
		/* PostgreSQL refuses such a startup packet with this error, and so do we. */
		unlinked(c);
		if (session_params_finished(s, true))
			server_reset_and_release(s, res->status, reset_query(c));
		else
			pool_close_server(s, "session parameters could not be applied");
		client_fail(c, res->sqlstate, "%s", res->message);
		return;
	}
	(void)session_params_finished(s, false);
	report_server_values(c, s);
	client_set_state(c, CL_ACTIVE);
	relay_start(c);
}

/* c got a server: a checkout (an admission, if its application is limited), and the
 * end of its wait if it queued (its time and histogram; an immediate checkout counts
 * as a wait of 0).  A first client's welcome that only needed the pool's parameters
 * is none of these. */
static void count_checkout(struct client *c)
{
	long long waited = 0;
	c->linked_at = 0;
	if (c->wait_start) {
		c->linked_at = clock_now_usec();
		waited = c->linked_at - c->wait_start;
		c->wait_start = 0;
		CLIENT_STAT_ADD(c, wait_count, 1);
		CLIENT_STAT_ADD(c, wait_time_us, waited);
	}
	CLIENT_STAT_ADD(c, checkouts, 1);
	if (c->has_token)
		CLIENT_STAT_ADD(c, admitted, 1); /* through its application's gate */
	client_stats_hist(c, 1, waited);
}

/* c got server s: give it c's session parameters, then relay (session mode keeps it
 * until c leaves). */
static void link_server(struct client *c, struct server *s)
{
	bool first = c->state == CL_WELCOME_WAIT;
	if (first) {
		welcome(c);
		stream_flush(c->io);
		if (c->pool->mode != POOL_MODE_SESSION &&
		    stream_input_length(c->io) == 0) {
			/* It only needed the pool's parameters; the server waits for a query. */
			c->wait_start = 0;
			client_set_state(c, CL_IDLE);
			pool_release(s);
			release_token(c);
			return;
		}
	}
	count_checkout(c);
	c->relay = relay_new();
	if (!c->relay) {
		server_reset_and_release(s, 'I', reset_query(c));
		client_fail(c, "53200", "out of memory");
		return;
	}
	c->server = s;
	client_set_state(c, CL_PREPARING);
	char ids[400];
	log_debug("event=client_linked client=%llu %s server=%llu pid=%d",
		  (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
		  (unsigned long long)s->id, s->backend_pid);
	/* Whatever the client sends meanwhile waits in its input buffer, within limits. */
	stream_setwatermark(c->io, EV_READ, 0, WAITING_READ_LIMIT);
	if (!c->param_sig)
		c->param_sig = session_params_signature(&c->params);
	bool oom = false;
	char *query = session_params_current(s, &c->params, c->param_sig)
			      ? NULL
			      : session_params_sync_query(&c->params, s, &oom);
	if (oom) {
		unlinked(c);
		server_reset_and_release(s, 'I', reset_query(c));
		client_fail(c, "53200", "out of memory");
		return;
	}
	bool discard_seq = seq_state_link(c, s, stream_input(c->io));
	if (!query && !discard_seq) {
		report_server_values(c, s);
		client_set_state(c, CL_ACTIVE);
		relay_start(c);
		return;
	}
	const char *queries[2];
	int n = 0;
	if (discard_seq)
		queries[n++] = "DISCARD SEQUENCES";
	if (query) {
		queries[n++] = query;
		session_params_sending(s, &c->params);
	}
	server_cmd_run(s, queries, n, forward_param, prepared, c);
	free(query);
}

/* Queued for a server (CL_WAITING) or an application token (CL_WAITING_APP); the
 * first client of a pool stays in CL_WELCOME_WAIT. */
static void wait_quietly(struct client *c, enum client_state st)
{
	if (c->state != CL_WELCOME_WAIT)
		client_set_state(c, st);
	if (!c->wait_start)
		c->wait_start = clock_now_usec();
	/* Keep noticing a disconnect, but do not buffer much while waiting. */
	stream_setwatermark(c->io, EV_READ, 0, WAITING_READ_LIMIT);
}

/* True when the client's next message is Terminate. */
static bool terminate_next(struct client *c)
{
	char type;
	uint32_t len;
	return pgproto_peek_header(stream_input(c->io), &type, &len) == PG_PARSE_OK &&
	       type == 'X';
}

static void request_server(struct client *c)
{
	if (terminate_next(c)) {
		client_close(c, "client sent Terminate"); /* no server needed to say goodbye */
		return;
	}
	/* A new wait (none since its last server), or the one that just passed the gate
	 * (hook_app_admitted): a client told at the gate is not told again in the server's
	 * queue, one query_wait_notify NOTICE per wait. */
	if (!c->wait_start)
		c->waiter.notified = false;
	if (c->gate && !c->has_token) {
		c->waiter.kind = WAIT_APP; /* (the server's queue is not entered before this) */
		switch (app_gate_enter(c->gate, &c->waiter)) {
		case GATE_ENTERED:
			c->has_token = true;
			break;
		case GATE_QUEUED:
			wait_quietly(c, CL_WAITING_APP); /* hook_app_admitted goes on from here */
			return;
		case GATE_FULL:
			CLIENT_STAT_ADD(c, sheds, 1);
			client_fail(c, "53400",
				    "too many clients waiting: max_queue_depth (%d) reached for application \"%s\"",
				    c->worker->cfg->max_queue_depth, c->application_name);
			return;
		}
	}
	bool full;
	c->waiter.kind = WAIT_SERVER; /* (the gate is passed: that use of it is over) */
	c->waiter.prefer = c->prev_server_id; /* its session's leftovers are there */
	struct server *s = pool_checkout(c->pool, &c->waiter, &full);
	if (s) {
		link_server(c, s);
		return;
	}
	if (full) {
		CLIENT_STAT_ADD(c, sheds, 1);
		client_fail(c, "53400",
			    "too many clients waiting for a server connection: max_queue_depth (%d) reached for database \"%s\"",
			    c->worker->cfg->max_queue_depth, c->database);
		return;
	}
	wait_quietly(c, CL_WAITING);
}

/* What the pool's server logins will answer with (pass-through, DESIGN.md §5): the
 * keys of the SCRAM proof just made, or the auth file's md5 hash. */
static void keep_passthrough_secret(struct client *c)
{
	const struct user_secret *secret = c->login ? c->login->secret : NULL;
	if (c->scram_keys)
		pool_shared_set_scram_keys(c->pool->shared, c->scram_keys);
	else if (secret && secret->kind == SECRET_MD5)
		pool_shared_set_md5(c->pool->shared, secret->secret);
}

void client_authenticated(struct client *c)
{
	const struct corral_config *cfg = c->worker->cfg;
	login_reader_done(c);
	if (admin_is_console(cfg, c->database)) {
		drop_auth_snapshot(c);
		admin_login(c); /* the console needs no [databases] entry and no pool */
		return;
	}
	/* The database as the configuration in force says now (a reload may have added or
	 * removed it); the pool is found by name, so one a reload carried over is reused. */
	const struct db_config *db = config_find_db(cfg, c->database);
	if (!db) {
		drop_auth_snapshot(c);
		client_fail(c, "3D000", "database \"%s\" does not exist", c->database);
		return;
	}
	const char *password = NULL;
	if (c->login && c->login->secret && c->login->secret->kind == SECRET_PLAIN)
		password = c->login->secret->secret;
	bool pools_full;
	c->pool = pool_join(&c->worker->pools, db, c->user, password, cfg->max_pools, &pools_full);
	if (c->pool && c->pool->passthrough)
		keep_passthrough_secret(c);
	drop_auth_snapshot(c);
	if (pools_full) {
		client_limits_refuse_pool(c); /* max_pools, and no pool idle to free */
		return;
	}
	struct app_gate *gate = c->pool ? app_gate_join(&c->worker->pools, c->application_name) : NULL;
	c->app_gate = gate;
	if (!c->pool || !gate) {
		client_fail(c, "53200", "out of memory");
		return;
	}
	c->gate = app_gate_limited(gate) ? gate : NULL;
	client_stats_attach(c, c->pool->stats, gate->stats);
	CLIENT_STAT_ADD(c, logins, 1);
	char ids[400], app[130];
	log_info("event=client_login client=%llu %s app=\"%s\"", (unsigned long long)c->id,
		 client_log_who(c, ids, sizeof(ids)),
		 log_clean(c->application_name, app, sizeof(app)));

	if (!pool_has_params(c->pool)) {
		/* The pool has never logged in: the welcome needs a real server's values. */
		client_set_state(c, CL_WELCOME_WAIT);
		request_server(c);
		return;
	}
	welcome(c);
	client_set_state(c, CL_IDLE);
	if (stream_input_length(c->io))
		request_server(c);
}

void client_transaction_done(struct client *c)
{
	struct server *s = c->server;
	char status = relay_tx_status(c->relay);
	relay_stop(c);
	unlinked(c);
	client_set_state(c, CL_IDLE);
	if (status != 'I') {
		/* Statement pooling: a transaction block cannot span statements. */
		server_reset_and_release(s, status, NULL);
		client_fail(c, "25000", "transaction blocks are not allowed in statement pooling mode");
		return;
	}
	pool_release(s);
	release_token(c);
	/* The client may already have sent its next transaction. */
	if (stream_input_length(c->io))
		request_server(c);
}

void client_server_lost(struct client *c, const char *reason)
{
	struct server *s = c->server;
	bool told = c->relay->server_fatal && c->relay->to_client_remaining == 0;
	relay_stop(c);
	unlinked(c);
	pool_close_server(s, reason);
	if (!told) {
		client_fail(c, "08006", "server connection lost: %s", reason);
		return;
	}
	/* The client has the server's own FATAL, as PostgreSQL would have left it. */
	char ids[400], why[512];
	log_info("event=client_error client=%llu %s state=%s reason=\"server sent FATAL: %s\"",
		 (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
		 client_state_name(c->state),
		 log_clean(reason, why, sizeof(why)));
	detach(c);
	close_after_flush(c);
}

void client_server_gone_between(struct client *c, const char *why)
{
	struct server *s = c->server;
	relay_stop(c);
	unlinked(c);
	client_set_state(c, CL_IDLE);
	pool_close_server(s, why);
	release_token(c);
	/* The client may already have sent its next transaction. */
	if (stream_input_length(c->io))
		request_server(c);
}

void client_server_out_of_step(struct client *c, const char *why)
{
	struct server *s = c->server;
	relay_stop(c);
	unlinked(c);
	pool_close_server(s, "protocol out of step");
	client_fail(c, "08P01",
		    "protocol out of step with the server (%s); its connection was closed", why);
}

/* ---- pool hooks --------------------------------------------------------------- */

static void hook_server_ready(struct pool_waiter *w, struct server *s)
{
	link_server(container_of(w, struct client, waiter), s);
}

static void hook_app_admitted(struct pool_waiter *w)
{
	struct client *c = container_of(w, struct client, waiter);
	c->has_token = true;
	if (c->state == CL_WAITING_APP)
		client_set_state(c, CL_IDLE);
	request_server(c);
}

static void hook_wait_failed(struct pool_waiter *w, const char *sqlstate, const char *message)
{
	struct client *c = container_of(w, struct client, waiter);
	if (strcmp(sqlstate, "57014") == 0)
		CLIENT_STAT_ADD(c, timeouts, 1); /* query_wait_timeout */
	client_fail(c, sqlstate, "%s", message);
}

static void hook_wait_notice(struct pool_waiter *w, const char *message)
{
	struct client *c = container_of(w, struct client, waiter);
	pgproto_put_notice(stream_output(c->io), "NOTICE", "00000", message);
	stream_flush(c->io);
}

const struct pool_hooks client_pool_hooks = {
	.server_ready = hook_server_ready,
	.app_admitted = hook_app_admitted,
	.wait_failed = hook_wait_failed,
	.wait_notice = hook_wait_notice,
};

/* ---- callbacks ---------------------------------------------------------------- */

static void client_read(struct stream *io, void *arg)
{
	struct client *c = arg;
	c->last_active = clock_now_usec();
	switch (c->state) {
	case CL_STARTUP:
	case CL_AUTH:
		login_input(c);
		break;
	case CL_IDLE:
		if (c->admin)
			admin_read(c);
		else
			request_server(c);
		break;
	case CL_ACTIVE:
		relay_from_client(c);
		break;
	case CL_WELCOME_WAIT:
	case CL_WAITING_APP:
	case CL_WAITING:
	case CL_PREPARING:
		break; /* kept in the input buffer until a server is linked */
	case CL_CLOSING:
	case CL_CLOSED:
		evbuffer_drain(stream_input(io), stream_input_length(io));
		break;
	}
	/* Whatever this produced for the client (auth, welcome, an 'N').  A closing
	 * client is left alone: its write callback closes it once drained. */
	if (c->state != CL_CLOSING && c->state != CL_CLOSED)
		stream_flush(c->io);
}

/* What the client sent before it was authenticated. */
static void login_input(struct client *c)
{
	if (c->state == CL_STARTUP)
		while (c->state == CL_STARTUP && handle_startup_packet(c))
			;
	else if (c->state == CL_AUTH)
		client_auth_read(c);
}

static void client_write(struct stream *io, void *arg)
{
	struct client *c = arg;
	if (c->state == CL_CLOSING) {
		if (stream_output_length(io) == 0)
			client_close(c, "closed after error");
	} else if (c->state == CL_ACTIVE) {
		relay_client_drained(c);
	} else if (c->state == CL_IDLE && c->admin) {
		admin_drained(c);
	}
}

static void client_event(struct stream *io, short what, void *arg)
{
	struct client *c = arg;
	char why[300];
	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is done; the startup packet follows.  As PostgreSQL 17:
		 * direct TLS without ALPN is refused (it shows that the client meant to speak
		 * PostgreSQL, not some other protocol tunnelled to this port). */
		if (c->tls_direct && !client_tls_alpn_used(c))
			client_close(c, "direct TLS connection without ALPN protocol negotiation");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		client_close(c, "client did not read its error");
	else if (what & BEV_EVENT_EOF)
		client_close(c, "client closed the connection");
	else if (client_tls_active(c))
		client_close(c, client_tls_error(c, why, sizeof(why)));
	else
		client_close(c, "client socket error");
}

/* Callbacks and limits of a new client's stream (kept when it turns to TLS). */
static void setup_stream(struct client *c)
{
	stream_setcb(c->io, client_read, client_write, client_event, c);
	stream_set_max_read(c->io, RELAY_MAX_READ);
	/* Before login nothing legitimate is big: bound what a stranger makes us hold. */
	stream_setwatermark(c->io, EV_READ, 0, LOGIN_READ_LIMIT);
}

void client_accept(struct worker *w, evutil_socket_t fd, const struct sockaddr *addr, int addrlen)
{
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	/* TCP_NODELAY and SO_KEEPALIVE come from the listener (proxy/client_limits.h). */
	client_limits_keepalive(fd, w->cfg, w->listener_opts);
	c->worker = w;
	c->id = worker_unique_id(++w->next_client_id, w->id, w->shared->n_workers);
	c->connected_at = clock_now_usec();
	c->last_active = c->connected_at;
	list_init(&c->waiter.node);
	if (addrlen > 0 && (size_t)addrlen <= sizeof(c->peer))
		memcpy(&c->peer, addr, (size_t)addrlen);
	c->io = stream_socket_new(w->base, fd, true);
	if (!c->io) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	client_lists_add(w, c);
	int total = atomic_fetch_add(&w->shared->clients, 1) + 1;
	client_limits_check(w, c, total);

	/* A proxy-issued cancel key naming this worker (proxy/cancel_keys.h). */
	uint32_t rnd[2];
	if (!random_bytes(rnd, sizeof(rnd))) {
		client_close(c, "no random bytes for a cancel key");
		return;
	}
	cancel_keys_issue(&w->cancel_keys, &c->cancel, w->id, rnd);

	setup_stream(c);
	stream_disable(c->io, EV_READ | EV_WRITE); /* login_read; flush mode: proxy/flush.h */
	/* A refused client is refused once its startup packet is in, within a grace, or
	 * (too many held already) after what it has sent so far (proxy/client_limits.h). */
	struct timeval grace;
	bool held = c->refusal && client_limits_hold(c, &grace);
	c->login_ev = event_new(w->base, fd, EV_READ | EV_PERSIST, login_read, c);
	if (!c->login_ev || event_add(c->login_ev, held ? &grace : NULL) != 0) {
		client_close(c, "out of memory");
		return;
	}
	/* A client sends its startup packet as soon as it is connected, so it is usually
	 * here already: read it now instead of after another round through epoll_wait
	 * (PgBouncer does the same; one epoll_wait fewer per connection). */
	login_read(fd, EV_READ, c);
	if (c->refusal && !held)
		client_limits_refuse(c); /* after an SSLRequest's 'N', if that is all it sent */
}

static void expire_logins(struct worker *w, usec_t now)
{
	double timeout = w->cfg->client_login_timeout;
	if (timeout <= 0)
		return;
	usec_t limit = (usec_t)(timeout * USEC_PER_SEC);
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &w->client_list[CLIENT_LIST_LOGIN])
	{
		struct client *c = list_entry(it, struct client, node);
		if (now - c->connected_at < limit)
			break; /* accept order: the rest are younger */
		/* A welcome wait has logged in: it waits for a server like any waiter. */
		if (c->state != CL_WELCOME_WAIT)
			client_close(c, "login timeout");
	}
}

/* Idle: not waiting for corral or the server to answer anything. */
static bool client_is_idle(const struct client *c)
{
	return c->state == CL_IDLE ||
	       (c->state == CL_ACTIVE && relay_between_queries(c->relay) &&
		stream_input_length(c->io) == 0);
}

static void expire_idle_list(struct worker *w, struct list *l, usec_t now, usec_t idle_tx,
			     usec_t idle);

static void expire_idle(struct worker *w, usec_t now)
{
	const struct corral_config *cfg = w->cfg;
	usec_t idle_tx = (usec_t)(cfg->idle_transaction_timeout * USEC_PER_SEC);
	usec_t idle = (usec_t)(cfg->client_idle_timeout * USEC_PER_SEC);
	if (idle_tx <= 0 && idle <= 0)
		return;
	/* Only idle clients and linked ones between queries can be idle. */
	static const enum client_list lists[] = { CLIENT_LIST_IDLE, CLIENT_LIST_ACTIVE };
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		expire_idle_list(w, &w->client_list[lists[i]], now, idle_tx, idle);
}

static void expire_idle_list(struct worker *w, struct list *l, usec_t now, usec_t idle_tx,
			     usec_t idle)
{
	const struct corral_config *cfg = w->cfg;
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, l)
	{
		struct client *c = list_entry(it, struct client, node);
		if (!client_is_idle(c))
			continue;
		usec_t quiet = now - c->last_active;
		bool in_tx = c->state == CL_ACTIVE && relay_tx_status(c->relay) != 'I';
		if (in_tx && idle_tx > 0 && quiet >= idle_tx)
			client_fail(c, "25P03",
				    "terminating connection due to idle-in-transaction timeout (idle_transaction_timeout = %g s)",
				    cfg->idle_transaction_timeout);
		else if (idle > 0 && quiet >= idle)
			client_fail(c, "57P05",
				    "terminating connection due to idle-session timeout (client_idle_timeout = %g s)",
				    cfg->client_idle_timeout);
	}
}

/* Clients idle this long give their buffers back (common/stream.h: stream_park); the
 * next one that logs in or reads takes them. */
#define PARK_AFTER_USEC USEC_PER_SEC

/* The idle list is in the order clients went idle: its head is the longest idle. */
static void park_idle(struct worker *w, usec_t now)
{
	struct list *it, *tmp;
	list_for_each_safe(it, tmp, &w->client_list[CLIENT_LIST_IDLE])
	{
		struct client *c = list_entry(it, struct client, node);
		if (now - c->last_active < PARK_AFTER_USEC)
			break;
		(void)stream_park(c->io);
	}
}

void client_expire(struct worker *w, usec_t now)
{
	expire_logins(w, now);
	expire_idle(w, now);
	park_idle(w, now);
}
