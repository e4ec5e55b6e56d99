#include "common/stream.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

struct stream {
	struct event_base *base;
	evutil_socket_t fd;
	struct bufferevent *tls; /* TLS: every call goes to it, the fields below unused */
	struct evbuffer *in, *out;
	struct event rd, wr;
	stream_data_cb readcb, writecb;
	stream_event_cb eventcb;
	void *arg;
	size_t rd_low, rd_high, wr_low, max_read;
	struct timeval rd_tv, wr_tv;
	bool has_rd_tv, has_wr_tv;
	bool reading;   /* EV_READ enabled */
	bool suspended; /* ... but stopped: the input is at its high watermark */
	bool rd_armed, wr_armed;
	bool close_on_free;
	bool freed;     /* stream_free was called inside a callback: memory goes after it */
	unsigned depth; /* callbacks running on this stream */
	struct evbuffer_cb_entry *drain_cb; /* while suspended: resumes below the mark */
};

/* Reads land here first and are appended at their exact size: the evbuffer's chains
 * stay small for small messages (tcache-sized allocations) without asking the kernel
 * how much is there. */
#define STREAM_SCRATCH (64 * 1024)
static _Thread_local uint8_t scratch[STREAM_SCRATCH];

static void destroy(struct stream *st)
{
	if (st->drain_cb)
		evbuffer_remove_cb_entry(st->in, st->drain_cb);
	if (!st->tls) {
		evbuffer_free(st->in);
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

/* ---- plain sockets: arming the events ------------------------------------------- */

static void arm_read(struct stream *st)
{
	bool want = st->reading && !st->suspended;
	if (want && !st->rd_armed) {
		st->rd_armed = event_add(&st->rd, st->has_rd_tv ? &st->rd_tv : NULL) == 0;
	} else if (!want && st->rd_armed) {
		event_del(&st->rd);
		st->rd_armed = false;
	}
}

static void arm_write(struct stream *st, bool on)
{
	if (on && !st->wr_armed)
		st->wr_armed = event_add(&st->wr, st->has_wr_tv ? &st->wr_tv : NULL) == 0;
	else if (!on && st->wr_armed) {
		event_del(&st->wr);
		st->wr_armed = false;
	}
}

static void drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

/* The input reached its high watermark: no more reading until it is drained below. */
static void suspend(struct stream *st)
{
	if (st->suspended)
		return;
	st->drain_cb = evbuffer_add_cb(st->in, drained, st);
	if (!st->drain_cb)
		return; /* cannot be told when it drains: go on reading rather than hang */
	st->suspended = true;
	arm_read(st);
}

static void resume(struct stream *st)
{
	if (!st->suspended)
		return;
	evbuffer_remove_cb_entry(st->in, st->drain_cb); /* safe inside the callback */
	st->drain_cb = NULL;
	st->suspended = false;
	arm_read(st);
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

/* ---- plain sockets: the event callbacks ----------------------------------------- */

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	if (what & EV_TIMEOUT) {
		stream_disable(st, EV_READ);
		call_event(st, BEV_EVENT_READING | BEV_EVENT_TIMEOUT);
		return;
	}
	size_t room = st->max_read < STREAM_SCRATCH ? st->max_read : STREAM_SCRATCH;
	if (st->rd_high) {
		size_t have = evbuffer_get_length(st->in);
		if (have >= st->rd_high) {
			suspend(st);
			return;
		}
		if (st->rd_high - have < room)
			room = st->rd_high - have;
	}
	ssize_t n = recv(fd, scratch, room, 0);
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

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	if (what & EV_TIMEOUT) {
		arm_write(st, false);
		call_event(st, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT);
		return;
	}
	if (evbuffer_get_length(st->out) > 0) {
		int n = evbuffer_write(st->out, fd);
		if (n < 0 && retriable(errno))
			return;
		if (n <= 0) {
			arm_write(st, false);
			call_event(st,
				   BEV_EVENT_WRITING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR));
			return;
		}
	}
	size_t left = evbuffer_get_length(st->out);
	if (left == 0)
		arm_write(st, false);
	if (left <= st->wr_low)
		call_data(st, st->writecb);
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
	struct stream *st = calloc(1, sizeof(*st));
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
	    event_assign(&st->rd, base, fd, EV_READ | EV_PERSIST, on_readable, st) != 0 ||
	    event_assign(&st->wr, base, fd, EV_WRITE | EV_PERSIST, on_writable, st) != 0) {
		if (st->in)
			evbuffer_free(st->in);
		if (st->out)
			evbuffer_free(st->out);
		free(st);
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
	if (st->tls || evbuffer_get_length(st->in) || evbuffer_get_length(st->out)) {
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
	arm_write(st, false);
	st->reading = false;
	resume(st);
	arm_read(st);
	evbuffer_free(st->in);
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
		if (st->rd_armed)
			event_del(&st->rd);
		if (st->wr_armed)
			event_del(&st->wr);
		if (st->close_on_free && st->fd >= 0)
			close(st->fd);
	}
	if (st->depth == 0)
		destroy(st);
}

/* ---- the interface -------------------------------------------------------------- */

struct evbuffer *stream_input(const struct stream *st)
{
	return st->in;
}

struct evbuffer *stream_output(const struct stream *st)
{
	return st->out;
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
	if (st->tls) {
		bufferevent_enable(st->tls, what);
		return;
	}
	if (what & EV_READ) {
		st->reading = true;
		arm_read(st);
	}
	if (what & EV_WRITE)
		arm_write(st, true);
}

void stream_disable(struct stream *st, short what)
{
	if (st->tls) {
		bufferevent_disable(st->tls, what);
		return;
	}
	if (what & EV_READ) {
		st->reading = false;
		arm_read(st);
	}
	if (what & EV_WRITE)
		arm_write(st, false);
}

void stream_setwatermark(struct stream *st, short what, size_t low, size_t high)
{
	if (st->tls) {
		bufferevent_setwatermark(st->tls, what, low, high);
		return;
	}
	if (what & EV_WRITE)
		st->wr_low = low;
	if (what & EV_READ) {
		st->rd_low = low;
		st->rd_high = high;
		if (high && evbuffer_get_length(st->in) >= high)
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
	/* Armed events take the new timeouts now, as a bufferevent's do (event_add with
	 * no timeout would keep the old one). */
	if (st->rd_armed)
		(void)(read_tv ? event_add(&st->rd, read_tv) : event_remove_timer(&st->rd));
	if (st->wr_armed)
		(void)(write_tv ? event_add(&st->wr, write_tv) : event_remove_timer(&st->wr));
}

void stream_set_max_read(struct stream *st, size_t max)
{
	st->max_read = max ? max : STREAM_SCRATCH;
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
	if (st->wr_armed || evbuffer_get_length(st->out) == 0)
		return; /* already waiting for the socket: the write event sends it in order */
	(void)evbuffer_write(st->out, st->fd);
	/* The rest, or an error (which the write event then reports, outside the caller),
	 * goes when the socket is writable. */
	if (evbuffer_get_length(st->out) > 0)
		arm_write(st, true);
}

int stream_write(struct stream *st, const void *data, size_t len)
{
	if (evbuffer_add(st->out, data, len) != 0)
		return -1;
	stream_flush(st);
	return 0;
}
