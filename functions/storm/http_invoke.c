#include "functions/storm/http_invoke.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "functions/storm/pg_error.h"
#include "functions/storm/worker.h"

static const struct {
	const char *name;
	enum evhttp_cmd_type type;
} methods[] = {
	{"GET", EVHTTP_REQ_GET},	 {"POST", EVHTTP_REQ_POST},   {"PUT", EVHTTP_REQ_PUT},
	{"DELETE", EVHTTP_REQ_DELETE}, {"PATCH", EVHTTP_REQ_PATCH}, {"HEAD", EVHTTP_REQ_HEAD},
	{"OPTIONS", EVHTTP_REQ_OPTIONS},
};

bool storm_http_target_init(struct storm_http_target *t, const struct storm_opts *o, char *err,
			    size_t errlen)
{
	memset(t, 0, sizeof(*t));
	const char *m = o->method ? o->method : o->body ? "POST" : "GET";
	bool found = false;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcasecmp(m, methods[i].name) == 0) {
			t->method = (int)methods[i].type;
			t->method_name = methods[i].name;
			found = true;
		}
	}
	if (!found) {
		snprintf(err, errlen, "--method: unknown method '%s'", m);
		return false;
	}
	struct evhttp_uri *u = evhttp_uri_parse(o->url);
	if (!u) {
		snprintf(err, errlen, "--url: cannot parse '%s'", o->url);
		return false;
	}
	bool ok = false;
	const char *scheme = evhttp_uri_get_scheme(u);
	const char *host = evhttp_uri_get_host(u);
	const char *path = evhttp_uri_get_path(u);
	const char *query = evhttp_uri_get_query(u);
	int port = evhttp_uri_get_port(u);
	if (!scheme || strcasecmp(scheme, "http") != 0) {
		snprintf(err, errlen, "--url: only http:// URLs, got '%s'", o->url);
	} else if (!host || !*host || strlen(host) >= sizeof(t->host)) {
		snprintf(err, errlen, "--url: no host in '%s'", o->url);
	} else {
		snprintf(t->host, sizeof(t->host), "%s", host);
		t->port = port < 0 ? 80 : port;
		int n = snprintf(t->path, sizeof(t->path), "%s%s%s", path && *path ? path : "/",
				 query ? "?" : "", query ? query : "");
		if (n < 0 || (size_t)n >= sizeof(t->path)) {
			snprintf(err, errlen, "--url: the path is too long");
		} else {
			if (t->port == 80)
				snprintf(t->host_header, sizeof(t->host_header), "%s", host);
			else
				snprintf(t->host_header, sizeof(t->host_header), "%s:%d", host,
					 t->port);
			ok = true;
		}
	}
	evhttp_uri_free(u);
	return ok;
}

static const char *error_key(int http_error)
{
	switch (http_error - 1) {
	case EVREQ_HTTP_TIMEOUT: return "timeout";
	case EVREQ_HTTP_EOF: return "closed";
	case EVREQ_HTTP_INVALID_HEADER: return "bad response";
	case EVREQ_HTTP_BUFFER_ERROR: return "connect";
	case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG: return "bad response";
	default: return "connect";
	}
}

static const char *error_message(int http_error)
{
	switch (http_error - 1) {
	case EVREQ_HTTP_TIMEOUT: return "no response in time";
	case EVREQ_HTTP_EOF: return "the server closed the connection before answering";
	case EVREQ_HTTP_INVALID_HEADER: return "the response could not be parsed";
	case EVREQ_HTTP_BUFFER_ERROR: return "connection failed or broke";
	case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG: return "the response was too long";
	default: return "connection failed";
	}
}

static void http_error_cb(enum evhttp_request_error error, void *arg)
{
	struct storm_inv *inv = arg;
	inv->http_error = (int)error + 1;
	inv->http_errno = EVUTIL_SOCKET_ERROR(); /* evhttp restores it for us */
}

/* A request that got no status: refused, reset, out of descriptors, timed out. */
static void finish_without_status(struct storm_inv *inv, int err)
{
	const char *key = error_key(inv->http_error);
	const char *what = error_message(inv->http_error);
	char msg[STORM_CLASS_MESSAGE];
	/* a socket that could not be opened or connected is a connect failure, whatever
	 * stage evhttp reports it at */
	if (err == EMFILE || err == ENFILE || err == ECONNREFUSED || err == ENETUNREACH ||
	    err == EHOSTUNREACH || err == EADDRNOTAVAIL) {
		key = "connect";
		what = "connection failed";
	}
	if (err)
		snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
	else
		snprintf(msg, sizeof(msg), "%s", what);
	storm_inv_finish(inv, key, msg);
}

static void http_done_cb(struct evhttp_request *req, void *arg)
{
	struct storm_inv *inv = arg;
	struct storm_worker *w = inv->w;
	if (inv->cancelling)
		return; /* storm_http_abort finishes it */
	storm_worker_free_http_later(w, inv->hc);
	inv->hc = NULL;
	inv->req = NULL;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	if (code <= 0) {
		/* evhttp reports a failed connect with the request, no status and no error
		 * callback (and no reliable errno) */
		finish_without_status(inv, inv->http_error ? inv->http_errno : 0);
		return;
	}
	storm_results_status(w->res, code);
	if (code >= 200 && code < 300) {
		storm_inv_finish(inv, NULL, NULL);
		return;
	}
	char key[STORM_CLASS_KEY], raw[STORM_CLASS_MESSAGE], msg[STORM_CLASS_MESSAGE];
	snprintf(key, sizeof(key), "HTTP %d", code);
	const char *line = evhttp_request_get_response_code_line(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > 160)
		len = 160;
	const char *body = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
	snprintf(raw, sizeof(raw), "%d %s%s%.*s", code, line ? line : "", len ? ": " : "",
		 (int)len, body ? body : "");
	/* one line, whatever the body held */
	for (char *p = raw; *p; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	}
	storm_first_line(raw, msg, sizeof(msg));
	storm_inv_finish(inv, key, msg);
}

static void http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	storm_http_abort(arg, "timeout", "no response within --timeout");
}

static void add_user_header(struct evkeyvalq *headers, const char *line)
{
	const char *colon = strchr(line, ':');
	char name[256];
	size_t n = (size_t)(colon - line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(name))
		return;
	memcpy(name, line, n);
	name[n] = '\0';
	const char *value = colon + 1;
	while (isspace((unsigned char)*value))
		value++;
	evhttp_remove_header(headers, name);
	evhttp_add_header(headers, name, value);
}

void storm_http_start(struct storm_inv *inv)
{
	struct storm_worker *w = inv->w;
	const struct storm_opts *o = w->shared->opts;
	const struct storm_http_target *t = &w->shared->http;

	usec_t left = inv->deadline - clock_now_usec();
	struct timeval tv = {.tv_sec = left > 0 ? left / USEC_PER_SEC : 0,
			     .tv_usec = left > 0 ? left % USEC_PER_SEC : 0};
	inv->ev = evtimer_new(w->base, http_deadline_cb, inv);
	inv->hc = evhttp_connection_base_new(w->base, NULL, t->host, (ev_uint16_t)t->port);
	inv->req = evhttp_request_new(http_done_cb, inv);
	if (!inv->ev || !inv->hc || !inv->req) {
		if (inv->req)
			evhttp_request_free(inv->req);
		if (inv->hc)
			evhttp_connection_free(inv->hc);
		storm_inv_finish(inv, "client", "cannot create the request (out of memory or file "
						"descriptors)");
		return;
	}
	evtimer_add(inv->ev, &tv);
	struct timeval io = {.tv_sec = (time_t)o->timeout_s + 1};
	evhttp_connection_set_timeout_tv(inv->hc, &io);
	evhttp_request_set_error_cb(inv->req, http_error_cb);

	struct evkeyvalq *headers = evhttp_request_get_output_headers(inv->req);
	evhttp_add_header(headers, "Host", t->host_header);
	evhttp_add_header(headers, "User-Agent", "corral-storm");
	/* one connection per invocation, closed when it is answered */
	evhttp_add_header(headers, "Connection", "close");
	if (o->body) {
		char len[24];
		snprintf(len, sizeof(len), "%zu", strlen(o->body));
		evhttp_add_header(headers, "Content-Type", "application/json");
		evhttp_add_header(headers, "Content-Length", len);
		evbuffer_add(evhttp_request_get_output_buffer(inv->req), o->body, strlen(o->body));
	}
	for (size_t i = 0; i < o->n_headers; i++)
		add_user_header(headers, o->headers[i]);

	struct evhttp_connection *hc = inv->hc;
	if (evhttp_make_request(hc, inv->req, (enum evhttp_cmd_type)t->method, t->path) != 0) {
		/* the request was not queued and no callback ran */
		inv->req = NULL;
		inv->hc = NULL;
		storm_worker_free_http_later(w, hc);
		storm_inv_finish(inv, "connect", "cannot start the request");
	}
	/* inv may be finished already: a refused connect can call back at once */
}

void storm_http_abort(struct storm_inv *inv, const char *key, const char *message)
{
	if (inv->req) {
		/* runs the error callback (not the done one) and frees the request */
		inv->cancelling = true;
		evhttp_cancel_request(inv->req);
		inv->req = NULL;
	}
	if (inv->hc) {
		storm_worker_free_http_later(inv->w, inv->hc);
		inv->hc = NULL;
	}
	storm_inv_finish(inv, key, message);
}
