/*
 * A connection's bytes: two evbuffers, read and written with plain recv()/writev()
 * on events of its own, or through an OpenSSL bufferevent for TLS.
 *
 * Why not a socket bufferevent: per message relayed it asks the kernel how much is
 * readable (ioctl FIONREAD) before every read, allocates an input chain of that
 * size, and runs its reference counting, deferred-callback and evbuffer-callback
 * plumbing around each read and write; with pgbench -S through the proxy that was
 * one syscall in three and a tenth of the proxy's CPU (DESIGN.md §12, "streams").
 * A stream reads into a per-thread scratch buffer and appends what came (exact-size
 * chains, no FIONREAD), and writes at once when asked to (stream_flush), arming
 * EPOLLOUT only for what the socket did not take.
 *
 * The interface mirrors the part of the bufferevent one corral uses, with the same
 * meaning: callbacks (read after input reached the low watermark, write after the
 * write event emptied the output below its low watermark, events with BEV_EVENT_*
 * flags), read watermarks that stop reading at the high mark until the input is
 * drained below it, timeouts on the read and write events, enable/disable.  One rule
 * differs: adding to the output does not by itself schedule a write; whoever adds
 * output calls stream_flush (or stream_enable(EV_WRITE)).
 *
 * A stream may be freed from inside its own callbacks: the memory goes once the
 * callback returns.
 */
#ifndef CORRAL_COMMON_STREAM_H
#define CORRAL_COMMON_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>

#include <event2/bufferevent.h> /* BEV_EVENT_* flags */
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

struct stream;
struct evbuffer;
typedef struct ssl_st SSL;

typedef void (*stream_data_cb)(struct stream *st, void *arg);
typedef void (*stream_event_cb)(struct stream *st, short what, void *arg);

/* A stream on a connected non-blocking socket; close_on_free: stream_free closes it. */
struct stream *stream_socket_new(struct event_base *base, evutil_socket_t fd, bool close_on_free);
/* A TLS stream through an OpenSSL bufferevent (state BUFFEREVENT_SSL_OPEN or
 * _ACCEPTING); with close_on_free the SSL object and the socket go with the stream. */
struct stream *stream_tls_new(struct event_base *base, evutil_socket_t fd, SSL *ssl,
			      enum bufferevent_ssl_state state, bool close_on_free);
/* A plain stream becomes a TLS one on the same socket, in accepting state, keeping its
 * callbacks, watermarks, maximum read and timeouts.  Its buffers must be empty.  The
 * SSL object belongs to the stream from then on, also when this fails (false: the
 * stream is unchanged and still plain). */
bool stream_accept_tls(struct stream *st, SSL *ssl);
void stream_free(struct stream *st);

/* The buffers (a parked stream's are made again: if that fails, an empty frozen
 * one is returned and the stream reports an error event). */
struct evbuffer *stream_input(struct stream *st);
struct evbuffer *stream_output(struct stream *st);
/* How much they hold, without making a parked stream's buffers again. */
size_t stream_input_length(const struct stream *st);
size_t stream_output_length(const struct stream *st);
/* A plain stream with nothing in either buffer frees them; its reading goes on, and
 * they are made again by the next read or the next use (an idle client costs no
 * buffers).  False (nothing done) for TLS streams or when anything is buffered. */
bool stream_park(struct stream *st);
evutil_socket_t stream_fd(const struct stream *st);
/* The OpenSSL session of a TLS stream, else NULL. */
SSL *stream_ssl(const struct stream *st);
/* The OpenSSL error that ended a TLS stream, 0 if none. */
unsigned long stream_tls_error(struct stream *st);

void stream_setcb(struct stream *st, stream_data_cb readcb, stream_data_cb writecb,
		  stream_event_cb eventcb, void *arg);
/* The read callback and its argument (tests run it by hand). */
void stream_getcb(const struct stream *st, stream_data_cb *readcb, void **arg);
void stream_enable(struct stream *st, short what);
void stream_disable(struct stream *st, short what);
/* EV_READ: reading stops while the input holds high bytes (0: no limit); the read
 * callback waits for low.  EV_WRITE: the write callback comes when the output is at
 * or below low. */
void stream_setwatermark(struct stream *st, short what, size_t low, size_t high);
/* NULL: none.  A read timeout counts while reading is enabled, a write timeout while
 * the write event is armed (stream_enable(EV_WRITE) or output the socket did not take). */
void stream_set_timeouts(struct stream *st, const struct timeval *read_tv,
			 const struct timeval *write_tv);
void stream_set_max_read(struct stream *st, size_t max);

/* Writes what the output holds as far as the socket takes it now; the rest goes when
 * the socket is writable (TLS: always then, through OpenSSL). */
void stream_flush(struct stream *st);
/* Appends and flushes. */
int stream_write(struct stream *st, const void *data, size_t len);

#endif
