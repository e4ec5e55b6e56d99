#include "proxy/server_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>

#include "proxy/pgproto.h"
#include "proxy/session_params.h"

/* A server that takes longer than this to answer corral's own queries is dropped. */
#define CMD_TIMEOUT_SEC 10
/* Replies to ROLLBACK / DISCARD ALL / set_config are small; anything big is not one. */
#define CMD_MAX_REPLY (64 * 1024)

struct server_cmd {
	struct server *server;
	int replies_due; /* ReadyForQuery messages still expected */
	server_cmd_param_fn on_param;
	server_cmd_done_fn done;
	void *arg;
	struct server_cmd_result res;
};

static void finish(struct server_cmd *cmd, const char *failure)
{
	struct server *s = cmd->server;
	struct server_cmd_result res = cmd->res;
	server_cmd_done_fn done = cmd->done;
	void *arg = cmd->arg;
	if (failure)
		res.failure = failure;
	s->job = NULL;
	free(cmd);
	stream_set_timeouts(s->io, NULL, NULL);
	stream_setcb(s->io, NULL, NULL, NULL, NULL);
	done(s, &res, arg);
}

static void take_error(struct server_cmd *cmd, const uint8_t *body, size_t len)
{
	if (cmd->res.error)
		return; /* the first error says why */
	cmd->res.error = true;
	const char *sqlstate = pgproto_error_field(body, len, 'C');
	const char *message = pgproto_error_field(body, len, 'M');
	snprintf(cmd->res.sqlstate, sizeof(cmd->res.sqlstate), "%s",
		 sqlstate && strlen(sqlstate) == 5 ? sqlstate : "XX000");
	snprintf(cmd->res.message, sizeof(cmd->res.message), "%s",
		 message ? message : "error from server");
}

static void take_param(struct server_cmd *cmd, const uint8_t *body, size_t len)
{
	const char *name, *value;
	if (!session_params_reported(cmd->server, body, len, &name, &value))
		return;
	if (cmd->on_param)
		cmd->on_param(cmd->arg, name, value);
}

static void cmd_read(struct stream *io, void *arg)
{
	struct server_cmd *cmd = arg;
	struct evbuffer *in = stream_input(io);
	for (;;) {
		char type;
		uint32_t len;
		enum pg_parse_result pr = pgproto_peek_header(in, &type, &len);
		if (pr == PG_PARSE_ERROR || len > CMD_MAX_REPLY) {
			finish(cmd, "unexpected message from server");
			return;
		}
		if (pr == PG_PARSE_INCOMPLETE || evbuffer_get_length(in) < (size_t)len + 1)
			return;
		uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)len + 1);
		const uint8_t *body = msg + PG_HEADER_LEN;
		size_t body_len = len - 4;
		if (type == 'E')
			take_error(cmd, body, body_len);
		else if (type == 'S')
			take_param(cmd, body, body_len);
		else if (type == 'Z' && body_len == 1) {
			cmd->res.status = (char)body[0];
			cmd->replies_due--;
		}
		evbuffer_drain(in, (size_t)len + 1);
		if (cmd->replies_due == 0) {
			finish(cmd, evbuffer_get_length(in) ? "server sent more than the replies"
							    : NULL);
			return;
		}
	}
}

static void cmd_event(struct stream *io, short what, void *arg)
{
	finish(arg, (what & BEV_EVENT_TIMEOUT) ? "server did not answer in time"
					       : "server connection lost");
}

void server_cmd_run(struct server *s, const char *const *queries, int n,
		    server_cmd_param_fn on_param, server_cmd_done_fn done, void *arg)
{
	struct server_cmd *cmd = calloc(1, sizeof(*cmd));
	if (!cmd) {
		struct server_cmd_result res = {.failure = "out of memory"};
		done(s, &res, arg);
		return;
	}
	cmd->server = s;
	cmd->on_param = on_param;
	cmd->done = done;
	cmd->arg = arg;
	/* If the server is torn down first (shutdown), the command is just freed. */
	s->job = cmd;
	s->job_free = free;

	struct evbuffer *out = stream_output(s->io);
	for (int i = 0; i < n; i++) {
		pgproto_put_query(out, queries[i]);
		cmd->replies_due++;
	}
	struct timeval tv = {CMD_TIMEOUT_SEC, 0};
	stream_set_timeouts(s->io, &tv, NULL);
	stream_setcb(s->io, cmd_read, NULL, cmd_event, cmd);
	stream_setwatermark(s->io, EV_READ, 0, 0);
	stream_enable(s->io, EV_READ);
	stream_flush(s->io); /* now, not through EPOLLOUT */
}

void server_cmd_rebind(struct server *s, server_cmd_done_fn done, void *arg)
{
	struct server_cmd *cmd = s->job;
	cmd->on_param = NULL;
	cmd->done = done;
	cmd->arg = arg;
}
