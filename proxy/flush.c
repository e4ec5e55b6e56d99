#include "proxy/flush.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>

void io_flush(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0)
		return;
	/* TLS must go through OpenSSL: leave those to the bufferevent. */
	if (!bufferevent_openssl_get_ssl(bev)) {
		/* A socket bufferevent keeps the front of its output frozen outside its
		 * own write callback; this is the same write that callback would do. */
		evbuffer_unfreeze(out, 1);
		(void)evbuffer_write(out, bufferevent_getfd(bev));
		evbuffer_freeze(out, 1);
		if (evbuffer_get_length(out) == 0)
			return;
	}
	/* The rest (or an error, which the event callback then reports) goes when the
	 * socket is writable. */
	bufferevent_enable(bev, EV_WRITE);
}

void io_drained(struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
}
