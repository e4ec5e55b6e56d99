#include "proxy/metrics_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/inbox.h"
#include "common/log.h"
#include "proxy/dashboard_html.h"
#include "proxy/metrics_json.h"
#include "proxy/config_store.h"
#include "proxy/metrics_pgmax.h"
#include "proxy/metrics_prom.h"
#include "proxy/serving.h"

/* Requests are small GETs: anything bigger is refused by evhttp before we see it. */
#define MAX_HEADERS_SIZE 8192
#define MAX_BODY_SIZE 1024
/* A connection that sends nothing for this long is closed. */
#define IDLE_TIMEOUT_SECS 10
/* How often unknown max_connections are looked at (metrics_pgmax.h retries each after a
 * minute). */
#define PGMAX_TICK_USEC (5 * 1000000)

struct metrics_http {
	struct worker_shared *shared;
	struct event_base *base;
	struct evhttp *http;
	struct inbox inbox; /* metrics_http_stop's message */
	struct event *pgmax_ev;
	struct metrics_pgmax pgmax;
	uint64_t pgmax_generation; /* of the configuration pgmax lists the databases of */
	pthread_t thread;
	bool thread_started;
	bool inbox_ready;
};

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
		  struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", type);
	/* Every answer is "now": a cached one would show a stale dashboard. */
	evhttp_add_header(h, "Cache-Control", "no-store");
	/* libevent 2.1 would send a HEAD reply's body to an HTTP/1.0 client: send only the
	 * length it would have had. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD && body) {
		char len[24];
		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
		evhttp_add_header(h, "Content-Length", len);
		body = NULL;
	}
	evhttp_send_reply(req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *body = evbuffer_new();
	if (!body) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evbuffer_add(body, text, strlen(text));
	reply(req, code, reason, "text/plain; charset=utf-8", body);
	evbuffer_free(body);
}

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef bool (*snapshot_writer)(struct evbuffer *out, const struct stats_snapshot *snap,
				const struct metrics_process *proc);

/* A fresh snapshot through write, or 500. */
static void reply_snapshot(struct metrics_http *m, struct evhttp_request *req,
			   snapshot_writer write, const char *type)
{
	struct stats_snapshot snap;
	/* The configuration in force, held while the snapshot reads it (a reload may
	 * publish another meanwhile). */
	struct snapshot *conf = config_store_acquire(&m->shared->store);
	bool ok = stats_snapshot(&m->shared->registry, &conf->cfg, &snap);
	snapshot_release(conf);
	if (!ok) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	struct metrics_process proc = {
		.serving = serving_get(),
		.unix_ms = unix_ms(),
		.db_limits = m->pgmax.limits,
		.n_db_limits = m->pgmax.n,
	};
	struct evbuffer *body = evbuffer_new();
	if (body && write(body, &snap, &proc))
		reply(req, 200, "OK", type, body);
	else
		evhttp_send_error(req, 500, "Internal Server Error");
	if (body)
		evbuffer_free(body);
	stats_snapshot_free(&snap);
}

/* 200 while serving; 503 while paused or shutting down, so a load balancer sends new
 * clients elsewhere.  The body names the state either way. */
static void reply_health(struct evhttp_request *req)
{
	enum serving_state st = serving_get();
	if (st == SERVING_UP) {
		reply_text(req, 200, "OK", "ok\n");
		return;
	}
	char text[64];
	snprintf(text, sizeof(text), "%s\n", serving_name(st));
	reply_text(req, 503, "Service Unavailable", text);
}

static void reply_dashboard(struct evhttp_request *req)
{
	struct evbuffer *body = evbuffer_new();
	if (!body) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	/* The page lives in .rodata for the process's life: no copy. */
	evbuffer_add_reference(body, dashboard_html, (size_t)(dashboard_html_end - dashboard_html),
			       NULL, NULL);
	reply(req, 200, "OK", "text/html; charset=utf-8", body);
	evbuffer_free(body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct metrics_http *m = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed", "only GET and HEAD\n");
		return;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	if (!path)
		reply_text(req, 400, "Bad Request", "bad request\n");
	else if (strcmp(path, "/metrics") == 0)
		reply_snapshot(m, req, metrics_prom_write, METRICS_PROM_CONTENT_TYPE);
	else if (strcmp(path, "/stats.json") == 0)
		reply_snapshot(m, req, metrics_json_write, "application/json");
	else if (strcmp(path, "/healthz") == 0)
		reply_health(req);
	else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
		reply_dashboard(req);
	else
		reply_text(req, 404, "Not Found",
			   "not found; try /, /metrics, /stats.json or /healthz\n");
}

static void on_pgmax_tick(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *m = arg;
	struct snapshot *conf = config_store_acquire(&m->shared->store);
	/* After a reload the [databases] list may differ: start over from the new one (the
	 * page reads pgmax on this thread only, so nothing sees it half built). */
	if (conf->generation != m->pgmax_generation) {
		struct metrics_pgmax fresh;
		if (metrics_pgmax_init(&fresh, &conf->cfg)) {
			metrics_pgmax_free(&m->pgmax);
			m->pgmax = fresh;
			m->pgmax_generation = conf->generation;
		}
	}
	metrics_pgmax_refresh(&m->pgmax, &conf->cfg, clock_now_usec());
	snapshot_release(conf);
}

static void stop_run(struct inbox_item *item, void *ctx)
{
	struct metrics_http *m = ctx;
	free(item);
	event_base_loopbreak(m->base);
}

static void free_item(struct inbox_item *item)
{
	free(item);
}

static void *thread_main(void *arg)
{
	struct metrics_http *m = arg;
	event_base_dispatch(m->base);
	return NULL;
}

static void metrics_http_free(struct metrics_http *m)
{
	if (m->http)
		evhttp_free(m->http);
	if (m->pgmax_ev)
		event_free(m->pgmax_ev);
	if (m->inbox_ready)
		inbox_close(&m->inbox);
	if (m->base)
		event_base_free(m->base);
	metrics_pgmax_free(&m->pgmax);
	free(m);
}

/* Everything but the thread; false with err set. */
static bool setup(struct metrics_http *m, const struct corral_config *cfg, char *err, size_t errlen)
{
	struct event_config *ec = event_config_new();
	if (!ec)
		goto oom;
	/* Only this thread touches the base; others reach it through the inbox. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	m->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!m->base || !inbox_init(&m->inbox, m->base, m))
		goto oom;
	m->inbox_ready = true;
	m->http = evhttp_new(m->base);
	if (!m->http)
		goto oom;
	evhttp_set_max_headers_size(m->http, MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(m->http, MAX_BODY_SIZE);
	evhttp_set_timeout(m->http, IDLE_TIMEOUT_SECS);
	/* Every method reaches on_request, which answers 405 with Allow for all but GET and
	 * HEAD (evhttp's own refusal would be a 501). */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_gencb(m->http, on_request, m);
	if (!evhttp_bind_socket_with_handle(m->http, cfg->metrics_addr,
					    (ev_uint16_t)cfg->metrics_port)) {
		snprintf(err, errlen, "could not listen on %s%s%s:%d for [metrics]: %s",
			 strchr(cfg->metrics_addr, ':') ? "[" : "", cfg->metrics_addr,
			 strchr(cfg->metrics_addr, ':') ? "]" : "", cfg->metrics_port,
			 strerror(errno));
		return false;
	}
	if (!metrics_pgmax_init(&m->pgmax, cfg))
		goto oom;
	m->pgmax_ev = event_new(m->base, -1, EV_PERSIST, on_pgmax_tick, m);
	struct timeval tick = {PGMAX_TICK_USEC / 1000000, 0};
	if (!m->pgmax_ev || event_add(m->pgmax_ev, &tick) != 0)
		goto oom;
	/* The first look right away (from the loop, so binding is not held up by it). */
	event_active(m->pgmax_ev, EV_TIMEOUT, 0);
	return true;
oom:
	snprintf(err, errlen, "[metrics]: out of memory");
	return false;
}

struct metrics_http *metrics_http_start(struct worker_shared *shared, const struct snapshot *conf,
					char *err, size_t errlen)
{
	struct metrics_http *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "[metrics]: out of memory");
		return NULL;
	}
	m->shared = shared;
	m->pgmax_generation = conf->generation;
	if (!setup(m, &conf->cfg, err, errlen)) {
		metrics_http_free(m);
		return NULL;
	}
	if (pthread_create(&m->thread, NULL, thread_main, m) != 0) {
		snprintf(err, errlen, "[metrics]: could not start its thread");
		metrics_http_free(m);
		return NULL;
	}
	m->thread_started = true;
	log_info("event=metrics_listening addr=%s port=%d", conf->cfg.metrics_addr,
		 conf->cfg.metrics_port);
	return m;
}

void metrics_http_stop(struct metrics_http *m)
{
	if (!m)
		return;
	struct inbox_item *item = calloc(1, sizeof(*item));
	if (item) {
		item->run = stop_run;
		item->drop = free_item;
		inbox_post(&m->inbox, item);
	} else {
		/* Cannot happen in practice; the loop then runs until the process exits. */
		log_error("event=metrics_stop_failed error=\"out of memory\"");
		return;
	}
	pthread_join(m->thread, NULL);
	metrics_http_free(m);
}
