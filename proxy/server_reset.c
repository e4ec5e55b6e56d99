#include "proxy/server_reset.h"

#include <stdlib.h>
#include <sys/time.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "pool/pool.h"
#include "proxy/pgproto.h"

/* A server that takes longer than this to answer a reset is not worth keeping. */
#define RESET_TIMEOUT_SEC 10
/* Replies to ROLLBACK / DISCARD ALL / SET are small; anything big is not a reply. */
#define RESET_MAX_REPLY (64 * 1024)

struct reset_job {
	struct server *server;
	int replies_due;  /* ReadyForQuery messages still expected */
	bool failed;      /* an ErrorResponse came back */
	char last_status;
};

static void finish(struct reset_job *job, const char *failure)
{
	struct server *s = job->server;
	bool ok = !failure && !job->failed && job->last_status == 'I';
	s->job = NULL;
	free(job);
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	if (ok)
		pool_release(s);
	else
		pool_close_server(s, failure ? failure : "server reset failed");
}

static void reset_read(struct bufferevent *bev, void *arg)
{
	struct reset_job *job = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		char type;
		uint32_t len;
		enum pg_parse_result pr = pgproto_peek_header(in, &type, &len);
		if (pr == PG_PARSE_ERROR || len > RESET_MAX_REPLY) {
			finish(job, "unexpected message from server during reset");
			return;
		}
		if (pr == PG_PARSE_INCOMPLETE || evbuffer_get_length(in) < (size_t)len + 1)
			return;
		if (type == 'E')
			job->failed = true;
		if (type == 'Z' && len == 5) {
			uint8_t msg[6];
			evbuffer_copyout(in, msg, sizeof(msg));
			job->last_status = (char)msg[5];
			job->replies_due--;
		}
		evbuffer_drain(in, (size_t)len + 1);
		if (job->replies_due == 0) {
			if (evbuffer_get_length(in) != 0)
				finish(job, "server sent more than the reset's replies");
			else
				finish(job, NULL);
			return;
		}
	}
}

static void reset_event(struct bufferevent *bev, short what, void *arg)
{
	finish(arg, (what & BEV_EVENT_TIMEOUT) ? "server reset timed out"
					       : "server connection lost during reset");
}

void server_reset_and_release(struct server *s, char tx_status, const char *reset_query)
{
	bool rollback = tx_status != 'I';
	bool reset = reset_query && reset_query[0];
	if (!rollback && !reset) {
		pool_release(s);
		return;
	}
	struct reset_job *job = calloc(1, sizeof(*job));
	if (!job) {
		pool_close_server(s, "out of memory for server reset");
		return;
	}
	job->server = s;
	s->job = job;
	s->job_free = free;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	if (rollback) {
		pgproto_put_query(out, "ROLLBACK");
		job->replies_due++;
	}
	if (reset) {
		pgproto_put_query(out, reset_query);
		job->replies_due++;
	}
	struct timeval tv = { RESET_TIMEOUT_SEC, 0 };
	bufferevent_set_timeouts(s->bev, &tv, NULL);
	bufferevent_setcb(s->bev, reset_read, NULL, reset_event, job);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	/* Replies may already be buffered (they never are today, but stay correct). */
	if (evbuffer_get_length(bufferevent_get_input(s->bev)))
		reset_read(s->bev, job);
}
