#include "proxy/relay.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "common/log.h"
#include "proxy/client.h"
#include "proxy/flush.h"
#include "proxy/pgproto.h"
#include "proxy/session_params.h"
#include "proxy/worker.h"

/* Messages larger than this are never looked into, only passed through. */
#define INSPECT_MAX 8192

/* SCAN_HOLD: stop before this message; it stays in the source buffer. */
enum scan_result { SCAN_OK, SCAN_TERMINATE, SCAN_ERROR, SCAN_HOLD };

struct scan {
	struct evbuffer *src, *dst;
	uint32_t *remaining;
	uint32_t max_len;     /* longest acceptable message length field */
	/* Looks at a message; body (len - 4 bytes) is given only for wants_body types. */
	bool (*wants_body)(char type);
	enum scan_result (*inspect)(struct client *c, char type, const uint8_t *body, uint32_t len);
	struct client *c;
	const char *error;
};

/*
 * Moves every complete message header's worth of data from src to dst, calling
 * inspect on each header.  Bytes are moved in one evbuffer_remove_buffer at the end
 * (or before a Terminate, which is dropped).  The tail of a message that has not
 * fully arrived is moved as far as it goes and *remaining counts the rest.
 */
static enum scan_result scan_messages(struct scan *sc)
{
	size_t avail = evbuffer_get_length(sc->src);
	size_t off = 0;
	enum scan_result res = SCAN_OK;

	while (off < avail) {
		if (*sc->remaining) {
			size_t take = avail - off < *sc->remaining ? avail - off : *sc->remaining;
			off += take;
			*sc->remaining -= (uint32_t)take;
			continue;
		}
		char type;
		uint32_t len;
		enum pg_parse_result pr = pgproto_peek_header_at(sc->src, off, &type, &len);
		if (pr == PG_PARSE_INCOMPLETE)
			break;
		if (pr == PG_PARSE_ERROR || len > sc->max_len) {
			sc->error = pr == PG_PARSE_ERROR ? "invalid message length" : "message too long";
			res = SCAN_ERROR;
			break;
		}
		uint8_t body[INSPECT_MAX];
		const uint8_t *bodyp = NULL;
		if (sc->wants_body && sc->wants_body(type) && len - 4 <= INSPECT_MAX) {
			if (avail - off < (size_t)len + 1)
				break; /* wait for the whole (small) message */
			struct evbuffer_ptr pos;
			evbuffer_ptr_set(sc->src, &pos, off + PG_HEADER_LEN, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(sc->src, &pos, body, len - 4);
			bodyp = body;
		}
		res = sc->inspect(sc->c, type, bodyp, len);
		if (res != SCAN_OK)
			break;
		*sc->remaining = len + 1;
	}
	if (off)
		evbuffer_remove_buffer(sc->src, sc->dst, off);
	return res;
}

/* ---- client -> server --------------------------------------------------------------- */

static enum scan_result inspect_client_msg(struct client *c, char type, const uint8_t *body,
					   uint32_t len)
{
	struct relay *r = &c->relay;
	switch (type) {
	case 'Q': /* Query */
	case 'F': /* FunctionCall */
		r->outstanding++;
		r->syncs_since_execute = 0;
		break;
	case 'S': /* Sync */
		if (!r->copy_in) {
			r->unsynced = false;
			r->outstanding++;
			r->syncs_since_execute++;
		}
		break;
	case 'E': /* Execute */
		r->syncs_since_execute = 0;
		r->unsynced = true;
		break;
	case 'P': /* Parse */
	case 'B': /* Bind */
	case 'D': /* Describe */
	case 'C': /* Close */
	case 'H': /* Flush */
		r->unsynced = true;
		break;
	case 'c': /* CopyDone */
	case 'f': /* CopyFail */
		r->copy_in = false;
		break;
	case 'X': /* Terminate: the client leaves; the server stays ours */
		return SCAN_TERMINATE;
	default:
		break;
	}
	return SCAN_OK;
}

/* ---- server -> client --------------------------------------------------------------- */

static bool server_wants_body(char type)
{
	return type == 'Z' || type == 'S';
}

static enum scan_result inspect_server_msg(struct client *c, char type, const uint8_t *body,
					   uint32_t len)
{
	struct relay *r = &c->relay;
	switch (type) {
	case 'Z': /* ReadyForQuery */
		if (body && len == 5) {
			r->seen_ready = true;
			r->tx_status = (char)body[0];
			if (r->outstanding)
				r->outstanding--;
			r->in_copy = false;
			/* Statement pooling: a statement that opened a transaction block gets
			 * corral's error instead of this ReadyForQuery. */
			if (r->tx_status != 'I' && r->outstanding == 0 &&
			    c->pool->mode == POOL_MODE_STATEMENT)
				return SCAN_HOLD;
		}
		break;
	case 'S': /* ParameterStatus: keep the server's current values */
		if (body) {
			struct pg_reader rd;
			pg_reader_init(&rd, body, len - 4);
			const char *name = pg_read_string(&rd);
			const char *value = pg_read_string(&rd);
			if (!rd.bad) {
				(void)params_set(&c->server->params, name, value);
				c->server->param_sig = 0;
				/* The client changed it (SET): its next server must match. */
				if (session_params_tracked(name)) {
					(void)params_set(&c->params, name, value);
					c->param_sig = 0;
				}
			}
		}
		break;
	case 'G': /* CopyInResponse: Syncs sent since the COPY's Execute are ignored */
		r->in_copy = true;
		r->copy_in = true;
		r->outstanding -= r->syncs_since_execute < r->outstanding ? r->syncs_since_execute
									  : r->outstanding;
		r->syncs_since_execute = 0;
		break;
	case 'H': /* CopyOutResponse */
	case 'W': /* CopyBothResponse */
		r->in_copy = true;
		break;
	default:
		break;
	}
	return SCAN_OK;
}

/* ---- backpressure --------------------------------------------------------------- */

/* After writing into dst_bev, stop reading src_bev if dst_bev's output is full; the
 * write watermark makes dst_bev's write callback fire once it has drained to half. */
static void apply_backpressure(struct bufferevent *src_bev, struct bufferevent *dst_bev)
{
	if (evbuffer_get_length(bufferevent_get_output(dst_bev)) >= RELAY_HIGH_WATER) {
		bufferevent_disable(src_bev, EV_READ);
		bufferevent_setwatermark(dst_bev, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
	}
}

/* dst_bev drained: read src_bev again. */
static void release_backpressure(struct bufferevent *src_bev, struct bufferevent *dst_bev)
{
	bufferevent_setwatermark(dst_bev, EV_WRITE, 0, 0);
	bufferevent_enable(src_bev, EV_READ);
	io_drained(dst_bev);
}

/* ---- callbacks ------------------------------------------------------------------ */

void relay_from_client(struct client *c)
{
	struct scan sc = {
		.src = bufferevent_get_input(c->bev),
		.dst = bufferevent_get_output(c->server->bev),
		.remaining = &c->relay.to_server_remaining,
		.max_len = (uint32_t)c->worker->cfg->max_packet_size,
		.inspect = inspect_client_msg,
		.c = c,
	};
	enum scan_result res = scan_messages(&sc);
	if (res == SCAN_TERMINATE) {
		client_close(c, "client sent Terminate");
		return;
	}
	if (res == SCAN_ERROR) {
		client_fail(c, "08P01", "%s from client (max_packet_size is %d)", sc.error,
			    c->worker->cfg->max_packet_size);
		return;
	}
	io_flush(c->server->bev);
	apply_backpressure(c->bev, c->server->bev);
}

static void server_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct scan sc = {
		.src = bufferevent_get_input(bev),
		.dst = bufferevent_get_output(c->bev),
		.remaining = &c->relay.to_client_remaining,
		.max_len = UINT32_MAX - 1,
		.wants_body = server_wants_body,
		.inspect = inspect_server_msg,
		.c = c,
	};
	enum scan_result res = scan_messages(&sc);
	io_flush(c->bev); /* what was relayed, even if the server then misbehaved */
	if (res == SCAN_ERROR) {
		client_server_lost(c, "invalid message length from server");
		return;
	}
	if (res == SCAN_HOLD) {
		evbuffer_drain(sc.src, PG_HEADER_LEN + 1); /* the held ReadyForQuery */
		client_transaction_done(c);
		return;
	}
	/* Idle timeouts count from the reply that left the client with nothing to wait
	 * for, as PostgreSQL's idle_session_timeout does. */
	if (c->relay.outstanding == 0)
		c->last_active = clock_now_usec();
	/* Transaction pooling: the server goes back once the client's last query has
	 * been answered and no transaction is open (anything the server sent after that
	 * ReadyForQuery is still to be relayed: wait for it to settle). */
	if (c->pool->mode != POOL_MODE_SESSION && c->relay.tx_status == 'I' &&
	    relay_between_queries(&c->relay) && evbuffer_get_length(sc.src) == 0 &&
	    c->relay.seen_ready) {
		client_transaction_done(c);
		return;
	}
	apply_backpressure(bev, c->bev);
}

static void server_drained(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	release_backpressure(c->bev, bev);
}

void relay_client_drained(struct client *c)
{
	release_backpressure(c->server->bev, c->bev);
}

static void server_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	client_server_lost(c, (what & BEV_EVENT_EOF) ? "server closed the connection"
						   : "server connection failed");
}

void relay_start(struct client *c)
{
	struct server *s = c->server;
	memset(&c->relay, 0, sizeof(c->relay));
	c->relay.tx_status = 'I';
	s->owner = c;
	bufferevent_setcb(s->bev, server_read, server_drained, server_event, c);
	bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	bufferevent_set_max_single_read(s->bev, RELAY_MAX_READ);
	bufferevent_enable(s->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	/* Both sides in flush mode (proxy/flush.h): EV_WRITE only while output waits. */
	io_drained(s->bev);
	io_drained(c->bev);
	io_flush(c->bev);

	relay_from_client(c);
}

void relay_stop(struct client *c)
{
	struct server *s = c->server;
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	s->owner = NULL;
}

bool relay_between_queries(const struct relay *r)
{
	return r->outstanding == 0 && !r->unsynced && !r->in_copy && !r->copy_in &&
	       r->to_server_remaining == 0 && r->to_client_remaining == 0;
}
