#include "proxy/server_drain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <arpa/inet.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "pool/cancel.h"
#include "pool/pool.h"
#include "proxy/pgproto.h"
#include "proxy/random.h"
#include "proxy/server_reset.h"
#include "proxy/session_params.h"

/* A ParameterStatus is a name and a value of a setting: far below this. */
#define PARAM_REPORT_MAX 8192

/*
 * What the server is sent once the cancel has landed (then nothing the client sent
 * can still be running):
 *   CopyFail            ends a COPY FROM STDIN (ignored outside one);
 *   Parse of bad SQL    fails, so an unsynced implicit transaction is rolled back,
 *   Sync                not committed, and the skip to Sync ends;
 *   Query "ROLLBACK; SELECT '<nonce>'"  ends any transaction block; its row marks the
 *                       end of everything earlier, whatever the backend did with the
 *                       client's messages (no count of replies needed).
 */
struct drain {
	struct server *server;
	const char *reset_query;
	char marker[48];  /* corral-drain-<32 hex> */
	bool sent;        /* the messages above are on their way */
	bool marker_seen; /* the marker's row came back: the next ReadyForQuery is ours */
	uint32_t skip;    /* bytes of a reply still to discard */
};

static void drain_free(void *job)
{
	free(job);
}

static void give_up(struct drain *d, const char *why)
{
	struct server *s = d->server;
	s->cancel_done = NULL;
	pool_close_server(s, why); /* frees d through s->job */
}

static void finish(struct drain *d, char status)
{
	struct server *s = d->server;
	const char *reset = d->reset_query;
	s->job = NULL;
	free(d);
	stream_set_timeouts(s->io, NULL, NULL);
	stream_setcb(s->io, NULL, NULL, NULL, NULL);
	log_info("event=server_drained server=%llu pid=%d", (unsigned long long)s->id,
		 s->backend_pid);
	server_reset_and_release(s, status, reset);
}

static void send_marker(struct drain *d)
{
	struct evbuffer *out = stream_output(d->server->io);
	static const char copy_fail[] = "client disconnected";
	evbuffer_add(out, "f", 1);
	uint32_t len = htonl((uint32_t)(4 + sizeof(copy_fail)));
	evbuffer_add(out, &len, 4);
	evbuffer_add(out, copy_fail, sizeof(copy_fail));
	static const char bad_sql[] = "corral: the client disconnected";
	evbuffer_add(out, "P", 1);
	len = htonl((uint32_t)(4 + 1 + sizeof(bad_sql) + 2));
	evbuffer_add(out, &len, 4);
	evbuffer_add(out, "", 1); /* unnamed statement */
	evbuffer_add(out, bad_sql, sizeof(bad_sql));
	evbuffer_add(out, "\0\0", 2); /* no parameter types */
	evbuffer_add(out, "S\0\0\0\4", 5);
	char query[96];
	snprintf(query, sizeof(query), "ROLLBACK; SELECT '%s'", d->marker);
	pgproto_put_query(out, query);
	stream_flush(d->server->io);
	d->sent = true;
}

static void drain_cancel_done(struct server *s)
{
	struct drain *d = s->job;
	s->cancel_done = NULL;
	if (d && !d->sent)
		send_marker(d);
}

/* A DataRow of one column whose value is the marker. */
static bool is_marker_row(const struct drain *d, const uint8_t *body, size_t len)
{
	size_t mlen = strlen(d->marker);
	if (len != 2 + 4 + mlen || body[0] != 0 || body[1] != 1)
		return false;
	uint32_t field_len;
	memcpy(&field_len, body + 2, 4); /* unaligned inside the message */
	return ntohl(field_len) == mlen && memcmp(body + 6, d->marker, mlen) == 0;
}

static void drain_read(struct stream *io, void *arg)
{
	struct drain *d = arg;
	struct evbuffer *in = stream_input(io);
	for (;;) {
		size_t have = evbuffer_get_length(in);
		if (d->skip) { /* the rest of a reply nobody reads */
			size_t n = have < d->skip ? have : d->skip;
			evbuffer_drain(in, n);
			d->skip -= (uint32_t)n;
			if (d->skip)
				return;
			continue;
		}
		char type;
		uint32_t len;
		enum pg_parse_result pr = pgproto_peek_header(in, &type, &len);
		if (pr == PG_PARSE_ERROR) {
			give_up(d, "invalid message from server while draining");
			return;
		}
		if (pr == PG_PARSE_INCOMPLETE)
			return;
		/* The marker's row and the ReadyForQuery after it matter; and what the
		 * client's last statements set (ParameterStatus): the next client's link
		 * compares with it, or it would see the setting.  Too long to record: the
		 * server's value is unknown, it is not reused. */
		if (type == 'S' && len > 4 + PARAM_REPORT_MAX) {
			give_up(d, "ParameterStatus too long to record while draining");
			return;
		}
		bool look = type == 'S' || (d->sent && len <= 4 + 128 &&
					    (type == 'D' || (type == 'Z' && d->marker_seen)));
		if (!look) {
			d->skip = len + 1;
			continue;
		}
		if (have < (size_t)len + 1)
			return;
		uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)len + 1);
		if (type == 'S') {
			const char *name, *value;
			if (!session_params_reported(d->server, msg + PG_HEADER_LEN, len - 4, &name,
						     &value)) {
				give_up(d, "malformed ParameterStatus while draining");
				return;
			}
			evbuffer_drain(in, (size_t)len + 1);
			continue;
		}
		if (type == 'D') {
			if (is_marker_row(d, msg + PG_HEADER_LEN, len - 4))
				d->marker_seen = true;
			evbuffer_drain(in, (size_t)len + 1);
			continue;
		}
		char status = len == 5 ? (char)msg[PG_HEADER_LEN] : '?';
		evbuffer_drain(in, (size_t)len + 1);
		if (status != 'I' || evbuffer_get_length(in) != 0)
			give_up(d, "server not idle after draining");
		else
			finish(d, status);
		return;
	}
}

static void drain_event(struct stream *io, short what, void *arg)
{
	give_up(arg, (what & BEV_EVENT_TIMEOUT) ? "server did not come back from the cancel in time"
						: "server connection lost while draining");
}

void server_drain(struct server *s, const struct relay *r, const char *reset_query)
{
	if (r->to_server_remaining > 0 || s->job) {
		pool_close_server(s, "client left in the middle of a message");
		return;
	}
	struct drain *d = calloc(1, sizeof(*d));
	uint8_t nonce[16];
	if (!d || !random_bytes(nonce, sizeof(nonce))) {
		free(d);
		pool_close_server(s, "client left while a query was running");
		return;
	}
	d->server = s;
	d->reset_query = reset_query;
	/* The rest of a server message half relayed to the client comes first: skipped,
	 * not read as messages (a DataRow's bytes would parse as anything). */
	d->skip = r->to_client_remaining;
	int n = snprintf(d->marker, sizeof(d->marker), "corral-drain-");
	for (size_t i = 0; i < sizeof(nonce); i++)
		n += snprintf(d->marker + n, sizeof(d->marker) - (size_t)n, "%02x", nonce[i]);
	s->job = d;
	s->job_free = drain_free;
	struct timeval tv = {DRAIN_TIMEOUT_SEC, 0};
	stream_set_timeouts(s->io, &tv, NULL);
	stream_setcb(s->io, drain_read, NULL, drain_event, d);
	stream_setwatermark(s->io, EV_READ, 0, 0);
	stream_enable(s->io, EV_READ);
	stream_flush(s->io); /* now, not through EPOLLOUT */
	log_info("event=server_draining server=%llu pid=%d", (unsigned long long)s->id,
		 s->backend_pid);
	/* Something may still run: cancel it first, and send the rest once the cancel has
	 * landed, so it cannot hit our own statements. */
	if (!tracker_settled(&r->tracker) || s->cancels_in_flight) {
		s->cancel_done = drain_cancel_done;
		if (!s->cancels_in_flight && !server_cancel(s)) {
			give_up(d, "cannot send a cancel request");
			return;
		}
		return;
	}
	send_marker(d);
}
