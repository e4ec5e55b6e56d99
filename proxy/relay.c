#include "proxy/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include "common/stream.h"

#include "common/log.h"
#include "proxy/client.h"
#include "proxy/client_stats.h"
#include "common/stream.h"
#include "proxy/pgproto.h"
#include "proxy/pin.h"
#include "proxy/prepared_relay.h"
#include "proxy/session_params.h"
#include "proxy/startup_reset.h"
#include "proxy/worker.h"

/* Messages larger than this are never looked into, only passed through. */
#define INSPECT_MAX 8192

/* SCAN_HOLD: stop before this message; it stays in the source buffer.
 * SCAN_SERVER_GONE: stop before it; the server spoke between the client's transactions
 * (transaction pooling): it is dropped, the client keeps its connection.
 * SCAN_REFUSE: stop before it; sc->sqlstate and sc->error say why (the relay ends).
 * SCAN_WAIT: stop before it until more of it has arrived (nothing looked at yet).
 * SCAN_REWRITE: a prepared-statement message (proxy/prepared_relay.h), replaced.
 * SCAN_SWALLOW: a reply to corral's own request: dropped (sc->replacement, if not
 * empty, goes to the client in its place). */
enum scan_result {
	SCAN_OK,
	SCAN_TERMINATE,
	SCAN_ERROR,
	SCAN_HOLD,
	SCAN_REFUSE,
	SCAN_SERVER_GONE,
	SCAN_WAIT,
	SCAN_REWRITE,
	SCAN_SWALLOW,
};

struct scan {
	struct evbuffer *src, *dst;
	uint32_t *remaining;
	bool *discarding; /* the rest of the current message is dropped, not passed */
	uint32_t max_len; /* longest acceptable message length field */
	/* Which types inspect needs the body of (at most INSPECT_MAX bytes of it). */
	bool (*wants_body)(char type);
	/* Whether inspect needs the whole message there (it may drop it). */
	bool (*wants_whole)(struct client *c, char type);
	/* Looks at a message of length field len; body holds its first body_len bytes
	 * (NULL unless wants_body). */
	enum scan_result (*inspect)(struct scan *sc, char type, const uint8_t *body,
				    size_t body_len, uint32_t len);
	struct client *c;
	const char *sqlstate;
	const char *error;
	char why_buf[64];
	size_t off, avail; /* where inspect's message starts; bytes in src */
	/* src's first chain, where headers and bodies are read in place while they lie
	 * in it (a read of small messages is one chain): refreshed whenever src changes. */
	const uint8_t *head;
	size_t head_len;
	struct evbuffer *replacement;
	size_t moved; /* bytes taken from src (relayed or dropped) */
	bool answered; /* corral wrote to the client itself (pin_policy) */
	bool restore;  /* SCAN_REWRITE is startup_reset's, not prepared statements' */
};

/* src changed: what it holds now. */
static void scan_refresh(struct scan *sc)
{
	sc->avail = evbuffer_get_length(sc->src);
	struct evbuffer_iovec v;
	if (sc->avail && evbuffer_peek(sc->src, -1, NULL, &v, 1) >= 1) {
		sc->head = v.iov_base;
		sc->head_len = v.iov_len;
	} else {
		sc->head = NULL;
		sc->head_len = 0;
	}
}

/* What has been looked at goes to dst now: corral's own bytes come next. */
static void scan_flush(struct scan *sc, size_t *off)
{
	if (*off) {
		evbuffer_remove_buffer(sc->src, sc->dst, *off);
		sc->moved += *off;
		*off = 0;
	}
	scan_refresh(sc);
}

/* The header at off, read in place when it lies in src's first chain. */
static enum pg_parse_result scan_header(const struct scan *sc, size_t off, char *type,
					uint32_t *len)
{
	if (off + PG_HEADER_LEN > sc->head_len)
		return pgproto_peek_header_at(sc->src, off, type, len);
	const uint8_t *h = sc->head + off;
	*type = (char)h[0];
	*len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
	return *len < 4 ? PG_PARSE_ERROR : PG_PARSE_OK;
}

/* n bytes of src from off: in place when they lie in the first chain, else copied
 * into buf. */
static const uint8_t *scan_bytes(const struct scan *sc, size_t off, uint8_t *buf, size_t n)
{
	if (off + n <= sc->head_len)
		return sc->head + off;
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(sc->src, &pos, off, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(sc->src, &pos, buf, n);
	return buf;
}

static bool scan_rewrite(struct scan *sc, char type, uint32_t len);

/*
 * Moves every complete message header's worth of data from src to dst, calling
 * inspect on each header.  Bytes are moved in one evbuffer_remove_buffer at the end
 * (or before a Terminate, which is dropped, or before corral's own bytes).  The tail
 * of a message that has not fully arrived is moved as far as it goes and *remaining
 * counts the rest.
 */
static enum scan_result scan_messages(struct scan *sc)
{
	size_t off = 0;
	enum scan_result res = SCAN_OK;

	scan_refresh(sc);
	while (off < sc->avail) {
		size_t avail = sc->avail;
		if (*sc->remaining) {
			size_t take = avail - off < *sc->remaining ? avail - off : *sc->remaining;
			*sc->remaining -= (uint32_t)take;
			if (*sc->discarding) {
				scan_flush(sc, &off);
				evbuffer_drain(sc->src, take);
				sc->moved += take;
				scan_refresh(sc);
				*sc->discarding = *sc->remaining != 0;
			} else {
				off += take;
			}
			continue;
		}
		char type;
		uint32_t len;
		enum pg_parse_result pr = scan_header(sc, off, &type, &len);
		if (pr == PG_PARSE_INCOMPLETE)
			break;
		if (pr == PG_PARSE_ERROR || len > sc->max_len) {
			sc->error = pr == PG_PARSE_ERROR ? "invalid message length"
							 : "message too long";
			res = SCAN_ERROR;
			break;
		}
		if (sc->wants_whole && sc->wants_whole(sc->c, type) &&
		    avail - off < (size_t)len + 1)
			break;
		uint8_t body[INSPECT_MAX];
		const uint8_t *bodyp = NULL;
		size_t body_len = 0;
		if (sc->wants_body && sc->wants_body(type)) {
			body_len = len - 4 < INSPECT_MAX ? len - 4 : INSPECT_MAX;
			if (avail - off < PG_HEADER_LEN + body_len)
				break; /* wait for the part of the body that is looked at */
			bodyp = scan_bytes(sc, off + PG_HEADER_LEN, body, body_len);
		}
		sc->off = off;
		res = sc->inspect(sc, type, bodyp, body_len, len);

		if (res == SCAN_WAIT) {
			res = SCAN_OK;
			break;
		}
		if (res == SCAN_REWRITE) {
			scan_flush(sc, &off);
			size_t before = sc->avail;
			if (!scan_rewrite(sc, type, len)) {
				res = SCAN_REFUSE;
				break;
			}
			scan_refresh(sc);
			sc->moved += before - sc->avail;
			res = SCAN_OK;
			continue;
		}
		if (res == SCAN_SWALLOW) {
			scan_flush(sc, &off);
			evbuffer_drain(sc->src, (size_t)len + 1);
			sc->moved += (size_t)len + 1;
			scan_refresh(sc);
			if (sc->replacement && evbuffer_get_length(sc->replacement))
				evbuffer_add_buffer(sc->dst, sc->replacement);
			res = SCAN_OK;
			continue;
		}
		if (res != SCAN_OK)
			break;
		*sc->remaining = len + 1;
	}
	if (off)
		evbuffer_remove_buffer(sc->src, sc->dst, off);
	sc->moved += off;
	return res;
}

/* ---- client -> server --------------------------------------------------------------- */

static bool client_wants_body(char type)
{
	return type == 'D'; /* statement or portal: their replies differ */
}

/* PostgreSQL's PQ_SMALL_MESSAGE_LIMIT: the longest length field it accepts for
 * messages other than Query, FunctionCall, Parse, Bind and CopyData. */
#define PG_SMALL_MESSAGE_LIMIT 10000

/*
 * What PostgreSQL would end the connection for without answering (postgres.c:
 * SocketBackend): a type it does not know, or a small message over its limit.  Such
 * a message is never passed on, so the server is never left to die after corral
 * thought it idle.
 */
static const char *invalid_client_msg(char type, uint32_t len, char *buf, size_t buflen)
{
	switch (type) {
	case 'Q':
	case 'F':
	case 'P':
	case 'B':
	case 'd':
		return NULL; /* up to max_packet_size */
	case 'C':
	case 'D':
	case 'E':
	case 'H':
	case 'S':
	case 'X':
	case 'c':
	case 'f':
		return len > PG_SMALL_MESSAGE_LIMIT ? "invalid message length" : NULL;
	default:
		snprintf(buf, buflen, "invalid frontend message type %d", (int)(unsigned char)type);
		return buf;
	}
}

static enum scan_result inspect_client_msg(struct scan *sc, char type, const uint8_t *body,
					   size_t body_len, uint32_t len)
{
	const char *invalid = invalid_client_msg(type, len, sc->why_buf, sizeof(sc->why_buf));
	if (invalid) {
		sc->sqlstate = "08P01";
		sc->error = invalid;
		return SCAN_REFUSE;
	}
	if (type == 'X')
		return SCAN_TERMINATE; /* the client leaves; the server stays ours */
	/* First, before anything below notes the Query: a hold asks again later. */
	bool restore = false;
	if (type == 'Q') {
		switch (startup_reset_check(sc->c, len, sc->src, sc->off, sc->avail)) {
		case STARTUP_RESET_WAIT:
			return SCAN_WAIT;
		case STARTUP_RESET_HOLD:
			sc->c->prep_hold = true; /* server_read relays again after the replies */
			return SCAN_WAIT;
		case STARTUP_RESET_REWRITE:
			restore = true;
			break;
		default:
			break;
		}
	}
	if (sc->c->pool->mode != POOL_MODE_SESSION) {
		switch (pin_client_check(sc->c, type, len, sc->src, sc->off, sc->avail)) {
		case PIN_WAIT:
			return SCAN_WAIT;
		case PIN_HOLD:
			sc->c->prep_hold = true; /* server_read relays again after the replies */
			return SCAN_WAIT;
		case PIN_ANSWERED:
			sc->answered = true;
			return SCAN_SWALLOW; /* dropped; the client has corral's answer */
		default:
			break;
		}
	}
	if (sc->c->prep_mode != PREP_OFF) {
		switch (prepared_client_check(sc->c, type, len, sc->src, sc->off, sc->avail)) {
		case PREP_WAIT:
			return SCAN_WAIT;
		case PREP_REWRITE:
			return SCAN_REWRITE; /* scan_rewrite tells the tracker */
		case PREP_HOLD:
			sc->c->prep_hold = true;
			return SCAN_WAIT;
		default:
			break;
		}
	}
	if (restore) {
		sc->restore = true;
		return SCAN_REWRITE; /* scan_rewrite tells the tracker */
	}
	switch (tracker_client(&sc->c->relay->tracker, type, body, len - 4)) {
	case TRACKER_OK:
		return SCAN_OK;
	case TRACKER_TOO_MANY:
		sc->sqlstate = "54000";
		sc->error = "too many requests in flight without replies read";
		return SCAN_REFUSE;
	default:
		sc->sqlstate = "53200";
		sc->error = "out of memory";
		return SCAN_REFUSE;
	}
}

/* The message at the head of src (what came before it is in dst) is replaced. */
static bool scan_rewrite(struct scan *sc, char type, uint32_t len)
{
	if (sc->restore) {
		sc->restore = false;
		return startup_reset_rewrite(sc->c, len, sc->src, sc->dst, &sc->sqlstate,
					     &sc->error);
	}
	struct prep_rewrite rw;
	if (!prepared_client_rewrite(sc->c, type, len, sc->src, sc->dst, &rw)) {
		sc->sqlstate = rw.sqlstate;
		sc->error = rw.error;
		return false;
	}
	*sc->remaining = rw.remaining;
	*sc->discarding = rw.discard && rw.remaining;
	return true;
}

/* ---- server -> client --------------------------------------------------------------- */

static bool server_wants_body(char type)
{
	return type == 'Z' || type == 'S' || type == 'E' || type == 'C'; /* C: pin.h's COMMIT */
}

/* Replies that may be corral's own (prepared statements, the SELECT after a RESET) are
 * dropped whole. */
static bool server_wants_whole(struct client *c, char type)
{
	if (c->startup_reset && startup_reset_wants_whole(c, type))
		return true;
	return (type == '1' || type == '3' || type == 'E' || type == 'C' || type == '2') &&
	       prepared_awaiting(c);
}

/* ErrorResponse with severity FATAL or PANIC: the server ends the connection. */
static bool error_is_fatal(const uint8_t *body, size_t len)
{
	const char *severity = pgproto_error_field(body, len, 'V'); /* never translated */
	if (!severity)
		severity = pgproto_error_field(body, len, 'S');
	return severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
}

static void take_parameter_status(struct client *c, const uint8_t *body, size_t len)
{
	const char *name, *value;
	if (!session_params_reported(c->server, body, len, &name, &value))
		return;
	/* The client changed it (SET): its next server must match. */
	if (session_params_tracked(name)) {
		(void)params_set(&c->params, name, value);
		c->param_sig = 0;
	}
}

static enum scan_result inspect_server_msg(struct scan *sc, char type, const uint8_t *body,
					   size_t body_len, uint32_t len)
{
	struct client *c = sc->c;
	struct relay *r = c->relay;
	bool fatal = type == 'E' && error_is_fatal(body, body_len);
	/* In transaction pooling a client between transactions owns nothing on the
	 * server: what the server says now (pg_terminate_backend of an idle backend, an
	 * idle timeout) is not the client's, and it keeps its connection. */
	bool between = type != 'N' && type != 'A' && type != 'S' && r->tracker.tx_status == 'I' &&
		       c->pool->mode != POOL_MODE_SESSION && !c->pin_reason &&
		       relay_between_queries(r);
	if (between) {
		sc->error = fatal ? "server sent FATAL between transactions"
				  : "server spoke between transactions";
		return SCAN_SERVER_GONE;
	}
	/* body: at most INSPECT_MAX bytes of the message (an ErrorResponse's first part) */
	if (tracker_server(&r->tracker, type, body, body ? body_len : len - 4) ==
	    TRACKER_OUT_OF_STEP) {
		if (fatal) {
			/* Said while nothing was asked (an idle timeout, an administrator's
			 * termination): the client hears it as from PostgreSQL, then the close. */
			r->server_fatal = true;
			return SCAN_OK;
		}
		sc->sqlstate = "08P01";
		sc->error = r->tracker.why;
		return SCAN_REFUSE;
	}
	if (fatal)
		r->server_fatal = true;
	if (c->set_pending || c->set_block)
		pin_server_msg(c, type, body, body_len);
	if (c->startup_reset && startup_reset_swallow(c, type))
		return SCAN_SWALLOW;
	/* Only an error (which may name corral's statements) or a reply while corral's own
	 * requests are outstanding concerns prepared statements: nothing else is looked at. */
	if (c->prep_mode != PREP_OFF && (type == 'E' || prepared_awaiting(c))) {
		switch (prepared_server_reply(c, type, body, body_len, len - 4, sc->replacement)) {
		case PREP_REPLY_SWALLOW:
		case PREP_REPLY_REPLACE:
			return SCAN_SWALLOW;
		case PREP_REPLY_LOST:
			sc->sqlstate = "08P01";
			sc->error = "lost track of corral's own requests to the server";
			return SCAN_REFUSE;
		default:
			break;
		}
	}
	if (type == 'S' && len - 4 == body_len)
		take_parameter_status(c, body, body_len);
	/* Statement pooling: a statement that opened a transaction block gets corral's
	 * error instead of this ReadyForQuery. */
	if (type == 'Z' && r->tracker.tx_status != 'I' && tracker_settled(&r->tracker) &&
	    c->pool->mode == POOL_MODE_STATEMENT && !c->pin_reason)
		return SCAN_HOLD;
	return SCAN_OK;
}

/* ---- backpressure --------------------------------------------------------------- */

/* After writing into dst, stop reading src if dst's output is full; the
 * write watermark makes dst's write callback fire once it has drained to half. */
static void apply_backpressure(struct stream *src, struct stream *dst)
{
	if (stream_output_length(dst) >= RELAY_HIGH_WATER) {
		stream_disable(src, EV_READ);
		stream_setwatermark(dst, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
	}
}

/* dst drained: read src again. */
static void release_backpressure(struct stream *src, struct stream *dst)
{
	stream_setwatermark(dst, EV_WRITE, 0, 0);
	stream_enable(src, EV_READ);
}

/* ---- callbacks ------------------------------------------------------------------ */

/* Transaction pooling: the server goes back once PostgreSQL has answered everything
 * the client sent and no transaction is open (whatever the server sent after the last
 * ReadyForQuery is still to be relayed: wait for it to settle).  True if it went. */
static bool maybe_release(struct client *c)
{
	if (c->pool->mode == POOL_MODE_SESSION || c->pin_reason ||
	    relay_tx_status(c->relay) != 'I' ||
	    !relay_between_queries(c->relay) ||
	    stream_input_length(c->server->io) != 0)
		return false;
	client_transaction_done(c);
	return true;
}

void relay_from_client(struct client *c)
{
	struct scan sc = {
		.src = stream_input(c->io),
		.dst = stream_output(c->server->io),
		.remaining = &c->relay->to_server_remaining,
		.discarding = &c->relay->to_server_discard,
		.max_len = (uint32_t)c->worker->cfg->max_packet_size,
		.wants_body = client_wants_body,
		.inspect = inspect_client_msg,
		.c = c,
	};
	enum scan_result res = scan_messages(&sc);

	if (sc.moved) {
		/* The read callback's time (the link's, for input held while it waited). */
		usec_t now = c->last_active > c->linked_at ? c->last_active : c->linked_at;
		client_stats_sent_to_server(c, sc.moved, !tracker_settled(&c->relay->tracker), now);
	}
	if (res == SCAN_TERMINATE) {
		client_close(c, "client sent Terminate");
		return;
	}
	if (res == SCAN_ERROR) {
		client_fail(c, "08P01", "%s from client (max_packet_size is %d)", sc.error,
			    c->worker->cfg->max_packet_size);
		return;
	}
	if (res == SCAN_REFUSE) {
		client_fail(c, sc.sqlstate, "%s", sc.error);
		return;
	}
	stream_flush(c->server->io);
	if (sc.answered)
		stream_flush(c->io);
	/* Only messages PostgreSQL never answers (a stray CopyDone): nothing to wait for.
	 * (Not with part of a header still unread: it would come straight back here.) */
	if (evbuffer_get_length(sc.src) == 0 && maybe_release(c))
		return;
	apply_backpressure(c->io, c->server->io);
}

static void server_read(struct stream *io, void *arg)
{
	struct client *c = arg;
	struct relay *r = c->relay;
	struct scan sc = {
		.src = stream_input(io),
		.dst = stream_output(c->io),
		.remaining = &r->to_client_remaining,
		.discarding = &r->to_client_discard,
		.max_len = UINT32_MAX - 1,
		.wants_body = server_wants_body,
		.wants_whole = server_wants_whole,
		.inspect = inspect_server_msg,
		.c = c,
		.replacement = c->prep ? prepared_reply_buffer(c) : NULL,
	};
	enum scan_result res = scan_messages(&sc);
	client_stats_sent_to_client(c, sc.moved);
	stream_flush(c->io); /* what was relayed, even if the server then misbehaved */
	if (res == SCAN_ERROR) {
		client_server_lost(c, "invalid message length from server");
		return;
	}
	if (res == SCAN_REFUSE) {
		client_server_out_of_step(c, sc.error);
		return;
	}
	if (res == SCAN_SERVER_GONE) {
		client_server_gone_between(c, sc.error);
		return;
	}
	if (res == SCAN_HOLD) {
		evbuffer_drain(sc.src, PG_HEADER_LEN + 1); /* the held ReadyForQuery */
		client_transaction_done(c);
		return;
	}
	if (r->tracker.lost && !r->pin_logged) {
		r->pin_logged = true;
		char why[256], ids[400];
		log_info("event=server_pinned client=%llu %s server=%llu reason=\"%s\"",
			 (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
			 (unsigned long long)c->server->id,
			 log_clean(r->tracker.why, why, sizeof(why)));
	}
	/* Idle timeouts count from the reply that left the client with nothing to wait
	 * for, as PostgreSQL's idle_session_timeout does. */
	if (tracker_settled(&r->tracker)) {
		c->last_active = clock_now_usec();
		client_stats_answered(c, r->tracker.tx_status, c->last_active);
	}
	if (maybe_release(c))
		return;
	apply_backpressure(io, c->io);
	if (c->prep_hold) {
		/* A client message waited for these replies (proxy/prepared_relay.h). */
		c->prep_hold = false;
		relay_from_client(c);
	}
}

static void server_drained(struct stream *io, void *arg)
{
	struct client *c = arg;
	release_backpressure(c->io, io);
}

void relay_client_drained(struct client *c)
{
	release_backpressure(c->server->io, c->io);
}

static void server_event(struct stream *io, short what, void *arg)
{
	struct client *c = arg;
	client_server_lost(c, (what & BEV_EVENT_EOF) ? "server closed the connection"
						     : "server connection failed");
}

/*
 * Relays of links that ended are kept for the next link on the same thread (in
 * transaction pooling a link is one transaction): no allocation and no tracker set-up
 * per transaction, and the tracker's grown ring is kept.  There are never more links
 * at once than servers; past RELAY_SPARE kept, they are freed.
 */
#define RELAY_SPARE 64
static _Thread_local struct relay *spares;
static _Thread_local int n_spares;
static _Thread_local bool spares_dropped;

struct relay *relay_new(void)
{
	struct relay *r = spares;
	if (r) {
		spares = r->next_spare;
		n_spares--;
		r->next_spare = NULL;
		return r; /* as relay_free left it: cleared, tracker reset */
	}
	r = calloc(1, sizeof(*r));
	if (r)
		tracker_init(&r->tracker);
	return r;
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	if (n_spares < RELAY_SPARE && !spares_dropped) {
		/* Cleared as relay_new's calloc would (the tracker in place: its readings
		 * may point into it). */
		tracker_reset(&r->tracker);
		r->to_server_remaining = r->to_client_remaining = 0;
		r->to_server_discard = r->to_client_discard = false;
		r->server_fatal = r->pin_logged = false;
		r->query_start = r->xact_start = 0;
		r->next_spare = spares;
		spares = r;
		n_spares++;
		return;
	}
	tracker_free(&r->tracker);
	free(r);
}

void relay_spares_drop(void)
{
	spares_dropped = true;
	while (spares) {
		struct relay *r = spares;
		spares = r->next_spare;
		tracker_free(&r->tracker);
		free(r);
	}
	n_spares = 0;
}

void relay_start(struct client *c)
{
	struct server *s = c->server;
	struct relay *r = c->relay;
	r->to_server_remaining = r->to_client_remaining = 0;
	r->server_fatal = r->pin_logged = false;
	r->query_start = r->xact_start = 0;
	tracker_reset(&r->tracker); /* a server is handed over settled, outside a transaction */
	r->to_server_discard = r->to_client_discard = false;
	c->prep_mode = prepared_mode(c);
	c->prep_hold = false;
	c->startup_reset = 0;
	free(c->set_pending); /* a Query of another link: its answer will not come here */
	c->set_pending = NULL;
	free(c->set_block); /* a block never spans links */
	c->set_block = NULL;
	s->owner = c;
	stream_setcb(s->io, server_read, server_drained, server_event, c);
	stream_setwatermark(s->io, EV_READ, 0, 0);
	stream_setwatermark(s->io, EV_WRITE, 0, 0);
	stream_set_max_read(s->io, RELAY_MAX_READ);
	stream_enable(s->io, EV_READ);
	stream_setwatermark(c->io, EV_READ, 0, 0);
	stream_enable(c->io, EV_READ);
	stream_flush(c->io);

	relay_from_client(c);
}

void relay_stop(struct client *c)
{
	struct server *s = c->server;
	prepared_link_end(c);
	stream_setcb(s->io, NULL, NULL, NULL, NULL);
	stream_setwatermark(s->io, EV_WRITE, 0, 0);
	s->owner = NULL;
}

char relay_tx_status(const struct relay *r)
{
	return r->tracker.tx_status;
}
