#include "common/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

struct stream {
	struct event ev; /* plain: armed for EV_READ and/or EV_WRITE as wanted */
	struct event_base *base;
	struct bufferevent *tls; /* TLS: every call goes to it, the fields below unused */
	/* Plain: NULL while parked (stream_park), made again when used.  An idle client
	 * so holds no buffer, as a PgBouncer client holds no sbuf buffer while idle. */
	struct evbuffer *in, *out;
	stream_data_cb readcb, writecb;
	stream_event_cb eventcb;
	void *arg;
	struct evbuffer_cb_entry *drain_cb; /* while suspended: resumes below the mark */
	const struct timeval *armed_tv;     /* the timeout ev was added with */
	struct timeval rd_tv, wr_tv;
	uint32_t rd_low, rd_high, wr_low, max_read;
	evutil_socket_t fd;
	unsigned depth; /* callbacks running on this stream */
	short armed;    /* what ev is added for; 0: not added */
	bool has_rd_tv, has_wr_tv;
	bool reading;   /* EV_READ enabled */
	bool suspended; /* ... but stopped: the input is at its high watermark */
	bool writing;   /* EV_WRITE wanted: output waits, or stream_enable(EV_WRITE) */
	bool close_on_free;
	bool freed;  /* stream_free was called inside a callback: memory goes after it */
	bool broken; /* a buffer could not be made: the next event reports an error */
};

/* Reads land here first and are appended at their exact size: the evbuffer's chains
 * stay small for small messages (tcache-sized allocations) without asking the kernel
 * how much is there. */
#define STREAM_SCRATCH (64 * 1024)
static _Thread_local uint8_t scratch[STREAM_SCRATCH];

/* What a parked stream's buffer is in place of when it cannot be made again (out of
 * memory): frozen at both ends, so it stays empty; the stream reports an error. */
static struct evbuffer *sink;
static pthread_once_t sink_once = PTHREAD_ONCE_INIT;

static void make_sink(void)
{
	sink = evbuffer_new();
	if (sink) {
		evbuffer_freeze(sink, 0);
		evbuffer_freeze(sink, 1);
	}
}

static void destroy(struct stream *st)
{
	if (st->drain_cb)
		evbuffer_remove_cb_entry(st->in, st->drain_cb);
	if (!st->tls) {
		if (st->in)
			evbuffer_free(st->in);
		if (st->out)
			evbuffer_free(st->out);
	}
	free(st);
}

/* Callbacks run last in whatever called them: a stream freed inside one goes here. */
static void call_data(struct stream *st, stream_data_cb cb)
{
	if (!cb)
		return;
	st->depth++;
	cb(st, st->arg);
	if (--st->depth == 0 && st->freed)
		destroy(st);
}

static void call_event(struct stream *st, short what)
{
	if (!st->eventcb)
		return;
	st->depth++;
	st->eventcb(st, what, st->arg);
	if (--st->depth == 0 && st->freed)
		destroy(st);
}

/* ---- plain sockets: the one event ----------------------------------------------- */

static void on_event(evutil_socket_t fd, short what, void *arg);

/*
 * Adds ev for what is wanted now.  One event for both directions (a struct event is
 * 128 bytes; an idle client has only this one): a change of direction costs a
 * del + add, but writing waits for EPOLLOUT only when the socket did not take all
 * (stream_flush), rarely.  The timeout is the write one while writing waits for it,
 * else the read one.
 */
static void rearm_as(struct stream *st, bool new_timeouts)
{
	short want = (short)((st->reading && !st->suspended ? EV_READ : 0) |
			     (st->writing ? EV_WRITE : 0));
	const struct timeval *tv = (want & EV_WRITE) && st->has_wr_tv  ? &st->wr_tv
				   : (want & EV_READ) && st->has_rd_tv ? &st->rd_tv
								       : NULL;
	if (want == st->armed) {
		if (!want || (tv == st->armed_tv && !new_timeouts))
			return;
		/* Same directions, another timeout (event_add without one keeps the old). */
		if (tv ? event_add(&st->ev, tv) : event_remove_timer(&st->ev)) {
			event_del(&st->ev);
			st->armed = 0;
		}
		st->armed_tv = tv;
		return;
	}
	if (st->armed) {
		event_del(&st->ev);
		st->armed = 0;
	}
	if (!want)
		return;
	event_assign(&st->ev, st->base, st->fd, (short)(want | EV_PERSIST), on_event, st);
	if (event_add(&st->ev, tv) == 0) {
		st->armed = want;
		st->armed_tv = tv;
	}
}

static void rearm(struct stream *st)
{
	rearm_as(st, false);
}

/* A buffer of a parked stream is made again; NULL: out of memory (the stream is
 * broken: its next event, made to come at once, reports an error). */
static struct evbuffer *unpark(struct stream *st, struct evbuffer **slot)
{
	if (*slot)
		return *slot;
	*slot = evbuffer_new();
	if (!*slot && !st->broken) {
		st->broken = true;
		event_active(&st->ev, EV_WRITE, 0);
	}
	return *slot;
}

static void drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

/* The input reached its high watermark: no more reading until it is drained below. */
static void suspend(struct stream *st)
{
	if (st->suspended || !st->in)
		return;
	st->drain_cb = evbuffer_add_cb(st->in, drained, st);
	if (!st->drain_cb)
		return; /* cannot be told when it drains: go on reading rather than hang */
	st->suspended = true;
	rearm(st);
}

static void resume(struct stream *st)
{
	if (!st->suspended)
		return;
	evbuffer_remove_cb_entry(st->in, st->drain_cb); /* safe inside the callback */
	st->drain_cb = NULL;
	st->suspended = false;
	rearm(st);
}

static void drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct stream *st = arg;
	if (info->n_deleted && (st->rd_high == 0 || evbuffer_get_length(buf) < st->rd_high))
		resume(st);
}

static bool retriable(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/*
 * Sends from the front of the output, as much as the socket takes: send() for one
 * chain (the usual reply or query), sendmsg() for several.  Not writev(): through the
 * VFS it costs more per call than the socket calls (PgBouncer's send() too).
 * MSG_NOSIGNAL: a peer that went away is an error, not a SIGPIPE.
 */
#define STREAM_SEND_IOV 16
static ssize_t send_out(struct stream *st)
{
	struct evbuffer_iovec v[STREAM_SEND_IOV];
	int n = evbuffer_peek(st->out, -1, NULL, v, STREAM_SEND_IOV);
	if (n <= 0)
		return 0;
	ssize_t sent;
	if (n == 1) {
		sent = send(st->fd, v[0].iov_base, v[0].iov_len, MSG_NOSIGNAL);
	} else {
		struct iovec iov[STREAM_SEND_IOV];
		int k = n < STREAM_SEND_IOV ? n : STREAM_SEND_IOV;
		for (int i = 0; i < k; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
		}
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
		sent = sendmsg(st->fd, &m, MSG_NOSIGNAL);
	}
	if (sent > 0)
		evbuffer_drain(st->out, (size_t)sent);
	return sent;
}

static void write_ready(struct stream *st)
{
	size_t left = st->out ? evbuffer_get_length(st->out) : 0;
	if (left > 0) {
		ssize_t n = send_out(st);
		if (n < 0 && retriable(errno))
			return;
		if (n <= 0) {
			st->writing = false;
			rearm(st);
			call_event(st,
				   BEV_EVENT_WRITING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR));
			return;
		}
		left = evbuffer_get_length(st->out);
	}
	if (left == 0) {
		st->writing = false;
		rearm(st);
	}
	if (left <= st->wr_low)
		call_data(st, st->writecb);
}

static void read_ready(struct stream *st)
{
	size_t room = st->max_read < STREAM_SCRATCH ? st->max_read : STREAM_SCRATCH;
	if (!unpark(st, &st->in))
		return; /* broken: reported */
	if (st->rd_high) {
		size_t have = evbuffer_get_length(st->in);
		if (have >= st->rd_high) {
			suspend(st);
			return;
		}
		if (st->rd_high - have < room)
			room = st->rd_high - have;
	}
	ssize_t n = recv(st->fd, scratch, room, 0);
	if (n < 0 && retriable(errno))
		return;
	if (n <= 0 || evbuffer_add(st->in, scratch, (size_t)n) != 0) {
		stream_disable(st, EV_READ);
		call_event(st, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR));
		return;
	}
	size_t have = evbuffer_get_length(st->in);
	if (st->rd_high && have >= st->rd_high)
		suspend(st);
	if (have >= st->rd_low)
		call_data(st, st->readcb);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	if (st->broken) {
		st->reading = st->writing = false;
		rearm(st);
		call_event(st, BEV_EVENT_ERROR | BEV_EVENT_READING);
		return;
	}
	if (what & EV_TIMEOUT) {
		/* Whose timeout it was: rearm chose the write one while writing waited. */
		bool wr = (st->armed & EV_WRITE) && st->armed_tv == &st->wr_tv;
		if (wr)
			st->writing = false;
		else
			st->reading = false;
		rearm(st);
		call_event(st, (short)(BEV_EVENT_TIMEOUT |
				       (wr ? BEV_EVENT_WRITING : BEV_EVENT_READING)));
		return;
	}
	/* Writing first: what waited goes out before more is read.  A callback may free
	 * the stream or turn off the other direction: both are checked in between. */
	st->depth++;
	if (what & EV_WRITE)
		write_ready(st);
	if ((what & EV_READ) && !st->freed && (st->armed & EV_READ))
		read_ready(st);
	if (--st->depth == 0 && st->freed)
		destroy(st);
}

/* ---- TLS: the bufferevent's callbacks, passed on -------------------------------- */

static void tls_read(struct bufferevent *bev, void *arg)
{
	struct stream *st = arg;
	call_data(st, st->readcb);
}

static void tls_write(struct bufferevent *bev, void *arg)
{
	struct stream *st = arg;
	call_data(st, st->writecb);
}

static void tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct stream *st = arg;
	call_event(st, what);
}

/* ---- life ----------------------------------------------------------------------- */

static struct stream *stream_alloc(struct event_base *base, evutil_socket_t fd, bool close_on_free)
{
	pthread_once(&sink_once, make_sink);
	struct stream *st = sink ? calloc(1, sizeof(*st)) : NULL;
	if (!st)
		return NULL;
	st->base = base;
	st->fd = fd;
	st->close_on_free = close_on_free;
	st->max_read = STREAM_SCRATCH;
	return st;
}

struct stream *stream_socket_new(struct event_base *base, evutil_socket_t fd, bool close_on_free)
{
	struct stream *st = stream_alloc(base, fd, close_on_free);
	if (!st)
		return NULL;
	st->in = evbuffer_new();
	st->out = evbuffer_new();
	if (!st->in || !st->out ||
	    event_assign(&st->ev, base, fd, EV_READ | EV_PERSIST, on_event, st) != 0) {
		destroy(st);
		return NULL;
	}
	return st;
}

static void tls_setup(struct stream *st, struct bufferevent *bev)
{
	st->tls = bev;
	st->in = bufferevent_get_input(bev);
	st->out = bufferevent_get_output(bev);
	bufferevent_setcb(bev, tls_read, tls_write, tls_event, st);
}

struct stream *stream_tls_new(struct event_base *base, evutil_socket_t fd, SSL *ssl,
			      enum bufferevent_ssl_state state, bool close_on_free)
{
	struct stream *st = stream_alloc(base, fd, close_on_free);
	if (!st)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl, state,
								 close_on_free
									 ? BEV_OPT_CLOSE_ON_FREE
									 : 0);
	if (!bev) {
		free(st);
		return NULL;
	}
	tls_setup(st, bev);
	return st;
}

bool stream_accept_tls(struct stream *st, SSL *ssl)
{
	if (st->tls || st->broken || stream_input_length(st) || stream_output_length(st)) {
		SSL_free(ssl);
		return false;
	}
	struct bufferevent *bev =
		bufferevent_openssl_socket_new(st->base, st->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
					       st->close_on_free ? BEV_OPT_CLOSE_ON_FREE : 0);
	if (!bev) {
		SSL_free(ssl);
		return false;
	}
	/* A client that closes its TCP connection without a TLS close_notify has just
	 * left, as a plain one would have: EOF, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bool reading = st->reading;
	resume(st);
	st->reading = st->writing = false;
	rearm(st);
	if (st->in)
		evbuffer_free(st->in);
	if (st->out)
		evbuffer_free(st->out);
	tls_setup(st, bev);
	bufferevent_set_max_single_read(bev, st->max_read);
	bufferevent_setwatermark(bev, EV_READ, st->rd_low, st->rd_high);
	bufferevent_setwatermark(bev, EV_WRITE, st->wr_low, 0);
	bufferevent_set_timeouts(bev, st->has_rd_tv ? &st->rd_tv : NULL,
				 st->has_wr_tv ? &st->wr_tv : NULL);
	if (reading)
		bufferevent_enable(bev, EV_READ);
	return true;
}

void stream_free(struct stream *st)
{
	if (!st || st->freed)
		return;
	st->freed = true;
	st->readcb = st->writecb = NULL;
	st->eventcb = NULL;
	if (st->tls) {
		bufferevent_free(st->tls); /* its evbuffers go with it, when libevent is done */
	} else {
		/* Nothing re-arms it from here on: not a drain of its input (the drain
		 * callback goes), not an enable. */
		if (st->drain_cb) {
			evbuffer_remove_cb_entry(st->in, st->drain_cb);
			st->drain_cb = NULL;
		}
		st->suspended = st->reading = st->writing = false;
		/* Also a pending event_active (a broken stream's report). */
		event_del(&st->ev);
		st->armed = 0;
		if (st->close_on_free && st->fd >= 0)
			close(st->fd);
	}
	if (st->depth == 0)
		destroy(st);
}

bool stream_park(struct stream *st)
{
	if (st->tls || st->suspended || !st->in || !st->out || evbuffer_get_length(st->in) ||
	    evbuffer_get_length(st->out))
		return false;
	evbuffer_free(st->in);
	evbuffer_free(st->out);
	st->in = st->out = NULL;
	return true;
}

/* ---- the interface -------------------------------------------------------------- */

struct evbuffer *stream_input(struct stream *st)
{
	struct evbuffer *b = st->in ? st->in : unpark(st, &st->in);
	return b ? b : sink;
}

struct evbuffer *stream_output(struct stream *st)
{
	struct evbuffer *b = st->out ? st->out : unpark(st, &st->out);
	return b ? b : sink;
}

size_t stream_input_length(const struct stream *st)
{
	return st->in ? evbuffer_get_length(st->in) : 0;
}

size_t stream_output_length(const struct stream *st)
{
	return st->out ? evbuffer_get_length(st->out) : 0;
}

evutil_socket_t stream_fd(const struct stream *st)
{
	return st->fd;
}

SSL *stream_ssl(const struct stream *st)
{
	return st->tls ? bufferevent_openssl_get_ssl(st->tls) : NULL;
}

unsigned long stream_tls_error(struct stream *st)
{
	return st->tls ? bufferevent_get_openssl_error(st->tls) : 0;
}

void stream_setcb(struct stream *st, stream_data_cb readcb, stream_data_cb writecb,
		  stream_event_cb eventcb, void *arg)
{
	st->readcb = readcb;
	st->writecb = writecb;
	st->eventcb = eventcb;
	st->arg = arg;
}

void stream_getcb(const struct stream *st, stream_data_cb *readcb, void **arg)
{
	*readcb = st->readcb;
	*arg = st->arg;
}

void stream_enable(struct stream *st, short what)
{
	if (st->freed)
		return;
	if (st->tls) {
		bufferevent_enable(st->tls, what);
		return;
	}
	if (what & EV_READ)
		st->reading = true;
	if (what & EV_WRITE)
		st->writing = true;
	rearm(st);
}

void stream_disable(struct stream *st, short what)
{
	if (st->tls) {
		bufferevent_disable(st->tls, what);
		return;
	}
	if (what & EV_READ)
		st->reading = false;
	if (what & EV_WRITE)
		st->writing = false;
	rearm(st);
}

static uint32_t clamp32(size_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void stream_setwatermark(struct stream *st, short what, size_t low, size_t high)
{
	if (st->tls) {
		bufferevent_setwatermark(st->tls, what, low, high);
		return;
	}
	if (what & EV_WRITE)
		st->wr_low = clamp32(low);
	if (what & EV_READ) {
		st->rd_low = clamp32(low);
		st->rd_high = clamp32(high);
		if (high && stream_input_length(st) >= high)
			suspend(st);
		else
			resume(st);
	}
}

static void set_tv(struct timeval *dst, bool *has, const struct timeval *src)
{
	*has = src != NULL;
	if (src)
		*dst = *src;
}

void stream_set_timeouts(struct stream *st, const struct timeval *read_tv,
			 const struct timeval *write_tv)
{
	set_tv(&st->rd_tv, &st->has_rd_tv, read_tv);
	set_tv(&st->wr_tv, &st->has_wr_tv, write_tv);
	if (st->tls) {
		bufferevent_set_timeouts(st->tls, read_tv, write_tv);
		return;
	}
	/* An armed event takes the new timeout now, as a bufferevent's do. */
	rearm_as(st, true);
}

void stream_set_max_read(struct stream *st, size_t max)
{
	st->max_read = max ? clamp32(max) : STREAM_SCRATCH;
	if (st->tls)
		bufferevent_set_max_single_read(st->tls, max);
}

void stream_flush(struct stream *st)
{
	if (st->tls) {
		/* OpenSSL writes when the socket is writable; the bufferevent arms it. */
		if (evbuffer_get_length(st->out) > 0)
			bufferevent_enable(st->tls, EV_WRITE);
		return;
	}
	if (st->writing || stream_output_length(st) == 0)
		return; /* already waiting for the socket: the event sends it in order */
	(void)send_out(st);
	/* The rest, or an error (which the event then reports, outside the caller), goes
	 * when the socket is writable. */
	if (evbuffer_get_length(st->out) > 0) {
		st->writing = true;
		rearm(st);
	}
}

int stream_write(struct stream *st, const void *data, size_t len)
{
	if (evbuffer_add(stream_output(st), data, len) != 0)
		return -1;
	stream_flush(st);
	return 0;
}
