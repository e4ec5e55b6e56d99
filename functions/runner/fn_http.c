/*
 * The HTTP trigger (evhttp):
 *
 *   ANY  /fn/NAME[/...]                          API Gateway proxy request event; the
 *                                                function's status, headers and body back
 *   POST /2015-03-31/functions/NAME/invocations  Lambda's Invoke API (as the Runtime
 *                                                Interface Emulator serves it): the body is
 *                                                the event, the function's body the payload
 *   GET  /metrics                                Prometheus text (fn_metrics.h)
 *   GET  /healthz                                "ok"
 *
 * `X-Amz-Invocation-Type: Event` on either path answers 202 at once and runs the function
 * in the background; `DryRun` answers 204.  Failures are answered the way API Gateway and
 * Lambda answer them (see reply_failure), so clients written for those read them.
 */
#include <sys/queue.h> /* TAILQ_*, which event2/keyvalq_struct.h uses but only declares */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "functions/fn_event.h"
#include "functions/runner/fn_http.h"
#include "functions/runner/fn_http_guard.h"
#include "functions/runner/fn_metrics.h"
#include "functions/runner/json.h"

#define INVOKE_PREFIX "/2015-03-31/functions/"
#define INVOKE_SUFFIX "/invocations"
#define FN_PREFIX "/fn/"
#define NAME_MAX_LEN 64
/* Request line and headers together (API Gateway allows 10 KB of headers). */
#define HTTP_HEADERS_MAX (64 * 1024)
/* A connection idle (or stalled reading a request, or not reading its answer) this
 * long is closed. */
#define HTTP_IO_TIMEOUT_SEC 60

struct fn_http {
	struct event_base *base;
	struct fn_runtime *rt;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct fn_http_guard *guard;
	const char *auth_token; /* the configuration's (wiped in environments); NULL: none */
	int port;
};

enum route { ROUTE_FN, ROUTE_INVOKE };

/* One synchronous invocation waiting for its answer. */
struct pending {
	struct evhttp_request *req;
	enum route route;
};

/* ---- answers ------------------------------------------------------------------------- */

static void reply_json(struct evhttp_request *req, int status, const char *reason,
		       const char *request_id, const char *body)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Content-Type", "application/json");
	if (request_id)
		evhttp_add_header(out, "X-Amzn-RequestId", request_id);
	struct evbuffer *buf = evbuffer_new();
	if (buf)
		evbuffer_add(buf, body, strlen(body));
	evhttp_send_reply(req, status, reason, buf);
	if (buf)
		evbuffer_free(buf);
}

/* {"k1":"v1","k2":"v2"} with proper escaping; pairs end at a NULL key. */
static void reply_object(struct evhttp_request *req, int status, const char *reason,
			 const char *request_id, const char *const *kv)
{
	struct json_writer w;
	json_init(&w);
	json_object_begin(&w);
	for (; kv[0]; kv += 2) {
		if (kv[1])
			json_kv_string(&w, kv[0], kv[1]);
	}
	json_object_end(&w);
	reply_json(req, status, reason, request_id, json_finish(&w) ? w.buf : "{}");
	json_free(&w);
}

/*
 * Headers that frame the message or the connection are the runner's: a function's
 * Content-Length or Transfer-Encoding beside evhttp's own would let it split the answer
 * (response smuggling through a proxy in front), Connection and the like would change
 * what happens to the connection.  Dropped, with a warning.
 */
static bool framing_header(const char *name)
{
	static const char *const framing[] = {"Content-Length", "Transfer-Encoding", "Connection",
					      "Keep-Alive",     "Upgrade",           "Trailer",
					      "TE"};
	for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (strcasecmp(name, framing[i]) == 0)
			return true;
	return false;
}

static void reply_result(struct evhttp_request *req, enum route route, const struct fn_call_done *d)
{
	const struct fn_result *r = d->result;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Content-Type", r->content_type[0] ? r->content_type : "application/json");
	evhttp_add_header(out, "X-Amzn-RequestId", d->request_id);
	int status = 200;
	if (route == ROUTE_FN) {
		status = r->status;
		size_t pos = 0;
		const char *name, *value;
		while (fn_result_header(r, &pos, &name, &value)) {
			if (!framing_header(name)) {
				evhttp_add_header(out, name, value);
				continue;
			}
			char fn[128], id[128], hdr[128];
			log_warn("event=fn_header_dropped function=%s request_id=%s header=\"%s\"",
				 log_clean(d->function_name ? d->function_name : "", fn, sizeof(fn)),
				 log_clean(d->request_id, id, sizeof(id)),
				 log_clean(name, hdr, sizeof(hdr)));
		}
	}
	struct evbuffer *buf = evbuffer_new();
	if (buf)
		evbuffer_add(buf, r->body, r->body_len);
	evhttp_send_reply(req, status, NULL, buf);
	if (buf)
		evbuffer_free(buf);
}

/* HTTP status of a failure on /fn/ (API Gateway's choices for a Lambda integration). */
static int gateway_status(enum fn_call_status st)
{
	switch (st) {
	case FN_CALL_THROTTLED:
	case FN_CALL_QUEUE_TIMEOUT:
		return 429;
	case FN_CALL_TIMEOUT:
		return 504;
	case FN_CALL_TOO_LARGE:
		return 413;
	case FN_CALL_SHUTDOWN:
		return 503;
	default:
		return 502; /* function error, crash, init error */
	}
}

/*
 * /fn/: API Gateway's answers ({"message":...}, 429 / 502 / 504), with the reason added.
 * Invoke API: a throttle is a 429 TooManyRequestsException; a function that failed is a
 * 200 whose X-Amz-Function-Error header says so and whose payload is
 * {"errorMessage","errorType"}, as Lambda's Invoke answers.
 */
static void reply_failure(struct evhttp_request *req, enum route route, const struct fn_call_done *d)
{
	bool refused = d->status == FN_CALL_THROTTLED || d->status == FN_CALL_QUEUE_TIMEOUT ||
		       d->status == FN_CALL_TOO_LARGE || d->status == FN_CALL_SHUTDOWN;
	if (route == ROUTE_INVOKE && !refused) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "X-Amz-Function-Error",
				  "Unhandled");
		const char *kv[] = {"errorMessage", d->error, "errorType", d->error_type, NULL};
		reply_object(req, 200, "OK", d->request_id, kv);
		return;
	}
	int status = gateway_status(d->status);
	const char *message = status == 429   ? "Too Many Requests"
			      : status == 504 ? "Endpoint request timed out"
			      : status == 413 ? "Request Too Long"
			      : status == 503 ? "Service Unavailable"
					      : "Internal server error";
	const char *kv[] = {"message", message, "errorMessage", d->error, "errorType", d->error_type,
			    "requestId", d->request_id, NULL};
	reply_object(req, status, NULL, d->request_id, kv);
}

/* An Event invocation was answered 202 before it ran: its failure goes to the log. */
static void on_async_done(const struct fn_call_done *d, void *arg)
{
	if (d->status == FN_CALL_OK)
		return;
	char why[512];
	log_warn("event=async_invocation_failed function=%s request_id=%s outcome=%s error=\"%s\"",
		 d->function_name, d->request_id, fn_call_status_label(d->status),
		 log_clean(d->error, why, sizeof(why)));
}

static void on_done(const struct fn_call_done *d, void *arg)
{
	struct pending *p = arg;
	if (d->status == FN_CALL_OK)
		reply_result(p->req, p->route, d);
	else
		reply_failure(p->req, p->route, d);
	free(p);
}

/* ---- events ------------------------------------------------------------------------ */

static size_t count_headers(struct evkeyvalq *h)
{
	size_t n = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, h, next)
		n++;
	return n;
}

static struct json_pair *pairs_of(struct evkeyvalq *h, size_t *n)
{
	*n = count_headers(h);
	struct json_pair *p = calloc(*n ? *n : 1, sizeof(*p));
	if (!p)
		return NULL;
	size_t i = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, h, next) {
		p[i].name = kv->key;
		p[i].value = kv->value;
		i++;
	}
	return p;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "GET";
}

/* The API Gateway proxy request for req; NULL when memory ran out. */
static char *gateway_event(struct evhttp_request *req, const char *path, const char *request_id,
			   size_t *len)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	TAILQ_INIT(&params);
	if (query)
		(void)evhttp_parse_query_str(query, &params); /* a bad pair is left out */
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t body_len = evbuffer_get_length(in);
	const char *body = body_len ? (const char *)evbuffer_pullup(in, -1) : NULL;
	char *peer = NULL;
	ev_uint16_t peer_port = 0;
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &peer_port);
	struct timeval now;
	gettimeofday(&now, NULL);

	size_t n_headers, n_query;
	struct json_pair *headers = pairs_of(evhttp_request_get_input_headers(req), &n_headers);
	struct json_pair *qs = pairs_of(&params, &n_query);
	char *event = NULL;
	if (headers && qs && (body || body_len == 0)) {
		struct json_http_request r = {
			.method = method_name(evhttp_request_get_command(req)),
			.path = path,
			.request_id = request_id,
			.source_ip = peer,
			.time_epoch_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000,
			.headers = headers,
			.n_headers = n_headers,
			.query = qs,
			.n_query = n_query,
			.body = body,
			.body_len = body_len,
			.body_base64 = body && !json_text_is_utf8(body, body_len),
		};
		struct json_writer w;
		json_init(&w);
		json_http_request_event(&w, &r);
		event = json_take(&w, len);
		json_free(&w);
	}
	free(headers);
	free(qs);
	evhttp_clear_headers(&params);
	return event;
}

/* ---- routing ------------------------------------------------------------------------ */

/* The function name after prefix, up to '/' or the end (and suffix, if given, after it). */
static bool name_in_path(const char *path, const char *prefix, const char *suffix, char *name)
{
	size_t plen = strlen(prefix);
	if (strncmp(path, prefix, plen) != 0)
		return false;
	const char *start = path + plen;
	size_t n = strcspn(start, "/");
	if (n == 0 || n >= NAME_MAX_LEN)
		return false;
	if (suffix ? strcmp(start + n, suffix) != 0 : (start[n] != '\0' && start[n] != '/'))
		return false;
	memcpy(name, start, n);
	name[n] = '\0';
	return true;
}

static void not_found(struct evhttp_request *req, const char *what)
{
	const char *kv[] = {"Type", "User", "message", what, NULL};
	reply_object(req, 404, "Not Found", NULL, kv);
}

static void invoke(struct fn_http *h, struct evhttp_request *req, enum route route,
		   const char *name, const char *path)
{
	struct fn_function *fn = fn_runtime_find(h->rt, name);
	char msg[160];
	if (!fn || !fn_function_config(fn)->http) {
		snprintf(msg, sizeof(msg), "Function not found: %s", name);
		not_found(req, msg);
		return;
	}
	const char *type = evhttp_find_header(evhttp_request_get_input_headers(req),
					      "X-Amz-Invocation-Type");
	bool async = type && strcasecmp(type, "Event") == 0;
	if (type && strcasecmp(type, "DryRun") == 0) {
		evhttp_send_reply(req, 204, "No Content", NULL);
		return;
	}
	if (type && !async && strcasecmp(type, "RequestResponse") != 0) {
		const char *kv[] = {"Type", "User", "message",
				    "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun", NULL};
		reply_object(req, 400, "Bad Request", NULL, kv);
		return;
	}

	char request_id[REPORT_ID_SIZE];
	if (!report_request_id(request_id))
		snprintf(request_id, sizeof(request_id), "%d-%lld", (int)getpid(),
			 (long long)clock_now_usec());
	size_t len = 0;
	char *event = NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	if (route == ROUTE_FN) {
		event = gateway_event(req, path, request_id, &len);
	} else {
		len = evbuffer_get_length(in);
		const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "{}";
		if (len == 0)
			len = 2;
		if (!fn_json_ok(fn_json_parse(body, len))) {
			const char *kv[] = {"Type", "User", "message",
					    "Could not parse request body into json", NULL};
			reply_object(req, 400, "Bad Request", request_id, kv);
			return;
		}
		event = malloc(len);
		if (event)
			memcpy(event, body, len);
	}
	struct pending *p = async ? NULL : malloc(sizeof(*p));
	struct fn_call *call = NULL;
	if (event && (async || p)) {
		if (p)
			*p = (struct pending){req, route};
		call = fn_runtime_invoke(fn, request_id, event, len, async ? on_async_done : on_done, p);
	}
	free(event);
	if (!call) {
		free(p);
		const char *kv[] = {"message", "Internal server error", "errorMessage", "out of memory",
				    NULL};
		reply_object(req, 500, NULL, request_id, kv);
		return;
	}
	if (async)
		reply_json(req, 202, "Accepted", request_id, "");
}

/* Equal without a time that depends on where they differ: the token cannot be guessed a
 * byte at a time from how long a refusal takes.  Only the length may show. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i < lb ? i : 0]);
	return lb > 0 && diff == 0;
}

/* With auth_token_file, every route but /healthz (a liveness probe) needs the token. */
static bool authorized(const struct fn_http *h, struct evhttp_request *req, const char *path)
{
	if (!h->auth_token || strcmp(path, "/healthz") == 0)
		return true;
	const char *auth =
		evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && same_secret(auth + 7, h->auth_token))
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
			  "Bearer realm=\"corral-fn\"");
	reply_json(req, 401, "Unauthorized", NULL, "{\"message\":\"Unauthorized\"}");
	return false;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct fn_http *h = arg;
	fn_http_guard_request_read(h->guard, req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	char *path = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
	if (!path) {
		evhttp_send_error(req, 400, "Bad Request");
		return;
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char name[NAME_MAX_LEN];
	if (!authorized(h, req, path)) {
		free(path);
		return;
	}
	if (strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0) {
		struct evbuffer *buf = evbuffer_new();
		bool metrics = path[1] == 'm';
		if (buf && metrics)
			fn_runtime_metrics(h->rt, buf);
		else if (buf)
			evbuffer_add(buf, "ok\n", 3);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  metrics ? "text/plain; version=0.0.4" : "text/plain");
		evhttp_send_reply(req, buf ? 200 : 500, NULL, buf);
		if (buf)
			evbuffer_free(buf);
	} else if (name_in_path(path, INVOKE_PREFIX, INVOKE_SUFFIX, name)) {
		if (cmd != EVHTTP_REQ_POST)
			evhttp_send_error(req, 405, "Method Not Allowed");
		else
			invoke(h, req, ROUTE_INVOKE, name, path);
	} else if (name_in_path(path, FN_PREFIX, NULL, name)) {
		invoke(h, req, ROUTE_FN, name, path);
	} else {
		not_found(req, "no such route: try /fn/NAME, " INVOKE_PREFIX "NAME" INVOKE_SUFFIX
			       ", /metrics");
	}
	free(path);
}

/* ---- listening ---------------------------------------------------------------------- */

/* addr (IPv4 or IPv6 literal) and port as a socket address; false if addr is neither. */
static bool socket_address(const char *addr, int port, struct sockaddr_storage *ss,
			   socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return true;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return true;
	}
	return false;
}

static evutil_socket_t listen_on(const char *addr, int port, int *bound_port, char *err,
				 size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (!socket_address(addr, port, &ss, &len)) {
		snprintf(err, errlen, "listen_addr %s is not an IPv4 or IPv6 address", addr);
		return -1;
	}
	evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A burst of a thousand invocations connects at once: a deep backlog keeps the
	 * kernel from refusing them before the loop accepts. */
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
		close(fd);
		return -1;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

struct fn_http *fn_http_new(struct event_base *base, struct fn_runtime *rt,
			    const struct fn_runner_config *cfg, char *err, size_t errlen)
{
	struct fn_http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->rt = rt;
	h->auth_token = cfg->auth_token;
	h->http = evhttp_new(base);
	if (!h->http) {
		snprintf(err, errlen, "evhttp_new failed");
		free(h);
		return NULL;
	}
	/* Lambda's synchronous payload limit; evhttp answers 413 above it. */
	evhttp_set_max_body_size(h->http, FN_EVENT_MAX);
	/* libevent 2.1 bounds neither the request line and headers (a client that never
	 * sends CRLF had hundreds of MB buffered, rescanned on every read: the runner's
	 * memory and CPU for everyone) nor how long a connection may sit idle or trickle
	 * (no timeout: each such client kept its descriptor forever).  Past the size evhttp
	 * answers 413 / 400; past the timeout between reads (or writes) it closes.  While
	 * an invocation runs, evhttp reads nothing from its connection, so the timeout
	 * never cuts a long invocation short. */
	evhttp_set_max_headers_size(h->http, HTTP_HEADERS_MAX);
	evhttp_set_timeout(h->http, HTTP_IO_TIMEOUT_SEC);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(h->http, on_request, h);
	evutil_socket_t fd = listen_on(cfg->listen_addr, cfg->listen_port, &h->port, err, errlen);
	if (fd >= 0)
		h->bound = evhttp_accept_socket_with_handle(h->http, fd);
	if (fd < 0 || !h->bound) {
		if (fd >= 0) {
			snprintf(err, errlen, "evhttp cannot accept on the socket");
			close(fd);
		}
		evhttp_free(h->http);
		free(h);
		return NULL;
	}
	h->guard = fn_http_guard_new(base, h->http, h->bound, cfg->request_timeout_usec,
				     cfg->max_connections);
	if (!h->guard) {
		snprintf(err, errlen, "out of memory");
		evhttp_free(h->http);
		free(h);
		return NULL;
	}
	return h;
}

void fn_http_stop_accepting(struct fn_http *h)
{
	fn_http_guard_stop_accepting(h->guard);
	if (h->bound)
		evhttp_del_accept_socket(h->http, h->bound);
	h->bound = NULL;
}

int fn_http_port(const struct fn_http *h)
{
	return h->port;
}

void fn_http_free(struct fn_http *h)
{
	if (!h)
		return;
	evhttp_free(h->http);
	fn_http_guard_free(h->guard); /* after: evhttp_free closes the connections it tracks */
	free(h);
}
