/*
 * corral_fn.h -- the C ABI between corral-fn and a function (DESIGN.md §11).
 *
 * A function is a shared object that defines, with C linkage:
 *
 *     CORRAL_FN_ABI();                       exactly once: the ABI version it was built for
 *     int fn_init(struct fn_ctx *ctx);        optional: once per environment (cold start)
 *     int fn_handle(const struct fn_event *event, struct fn_response *resp,
 *                   struct fn_ctx *ctx);       required: once per invocation
 *     void fn_shutdown(struct fn_ctx *ctx);    optional: once, before the environment exits
 *
 * An environment is a process of its own (forked by the runner) that has loaded this one
 * function.  It runs one invocation at a time, is reused while warm and is stopped when
 * idle.  A crash, a leak or a hang therefore costs only that environment: the caller gets a
 * 502 and the next invocation starts a fresh one.  Do the expensive work in fn_init (open
 * the database connection, prepare statements) and keep it in ctx->user; fn_handle should
 * only use it.
 *
 * Threading: the host calls fn_init, fn_handle and fn_shutdown from one thread, one call at
 * a time, never concurrently.  ctx->log and the fn_response helpers are for that thread,
 * during that call.  A function may start threads of its own but must not use ctx or resp
 * from them, and must stop them in fn_shutdown.
 *
 * The environment is corral-fn re-executed (or, with exec_environments = no, a fork of the
 * runner): a function never calls exit() (it would run the runner's atexit handlers;
 * return FN_ERROR instead), and what it
 * prints on stdout or stderr goes to the runner's log, one fn_log line per line (stream=output),
 * escaped and cut at 4 KB.
 *
 * Limits: the invocation is killed with its environment when the deadline passes ("Task
 * timed out after N seconds"); address space beyond the memory limit is refused (malloc
 * returns NULL, mmap fails with ENOMEM).  A function that returns to the host after running
 * out of memory keeps its environment; one that crashes loses it.
 *
 * Compatibility: CORRAL_FN_ABI_VERSION changes whenever an existing field or call changes
 * meaning; the host refuses a function built for another version.  New fields are only
 * ever appended to struct fn_ctx, struct fn_event and struct fn_response, and their size
 * field says what the host filled in: test FN_HAS_FIELD(ptr, field) before reading a field
 * added after version 1.
 */
#ifndef CORRAL_FUNCTIONS_CORRAL_FN_H
#define CORRAL_FUNCTIONS_CORRAL_FN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORRAL_FN_ABI_VERSION 1

/* Return codes of fn_init and fn_handle. */
enum {
	/* The response (status, headers, body) is the answer, whatever its status: a 404 the
	 * function chose to send is FN_OK. */
	FN_OK = 0,
	/* The function failed (Lambda's "unhandled" error): the caller gets an error that
	 * carries resp->error (use fn_fail()).  From fn_init: the environment cannot serve
	 * and exits; the invocation that was waiting for it fails. */
	FN_ERROR = -1,
};

/* Largest response body (Lambda's limit for a synchronous response). */
#define FN_BODY_MAX (6u * 1024 * 1024)
#define FN_HEADERS_MAX 32     /* extra response headers */
#define FN_HEADER_LINE_MAX 4096 /* one header's name and value together */

#define FN_HAS_FIELD(ptr, field) \
	(offsetof(__typeof__(*(ptr)), field) + sizeof((ptr)->field) <= (ptr)->size)

/*
 * The context.  Owned by the host; the same object is passed to fn_init, every fn_handle
 * and fn_shutdown of one environment, so ctx->user carries the function's state between
 * them.  Strings stay valid until the call that received them returns (request_id changes
 * with every invocation).
 */
struct fn_ctx {
	uint32_t size;            /* sizeof(struct fn_ctx) as the host knows it */
	uint32_t abi_version;     /* the host's CORRAL_FN_ABI_VERSION */
	const char *function_name;
	const char *request_id;   /* this invocation's id; "" in fn_init and fn_shutdown */
	const char *dsn;          /* the database to use (DATABASE_URL, also in the environment); "" if none */
	int64_t deadline_ms;      /* Unix time in ms at which the invocation is killed; 0 outside fn_handle */
	uint32_t memory_limit_mb; /* 0: no limit */
	void *user;               /* the function's own; the host never reads or frees it */
	/* One log line (no newline needed), tagged with the function and request id, to the
	 * runner's log.  Lines longer than about 4 KB are cut. */
	void (*log)(const struct fn_ctx *ctx, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	/* Milliseconds left before the deadline (negative once passed); 0 outside fn_handle. */
	int64_t (*remaining_ms)(const struct fn_ctx *ctx);
};

/*
 * The event: one JSON document, shaped as Lambda's for the trigger that sent it:
 *  - HTTP: an API Gateway proxy request {"httpMethod","path","headers",
 *    "queryStringParameters","body","isBase64Encoded","requestContext",...};
 *  - queue: {"Records":[{"messageId","body",...},...]};
 *  - cron: a scheduled event {"detail-type":"Scheduled Event","source","time",...};
 *  - a direct invoke: whatever the caller sent.
 * Owned by the host, read-only, valid until fn_handle returns.
 */
struct fn_event {
	uint32_t size;    /* sizeof(struct fn_event) as the host knows it */
	const char *json; /* NUL-terminated (the terminator is not counted in len) */
	size_t len;
};

/*
 * The response.  The host presets status 200, content type "application/json", no
 * headers, an empty body and no error; the function changes what it needs, preferably with
 * the helpers below.  headers and body are malloc'd buffers: after fn_handle returns, the
 * host owns them and frees them (a function may also hand over a buffer of its own from
 * malloc).  headers holds n_headers pairs as "name\0value\0".
 */
struct fn_response {
	uint32_t size;          /* sizeof(struct fn_response) as the host knows it */
	int status;             /* HTTP status code */
	char content_type[128];
	char *headers;
	size_t headers_len, headers_cap;
	uint32_t n_headers;
	char *body;
	size_t body_len, body_cap;
	char error[512];        /* why the function failed; set with fn_fail() */
};

/* What the host looks up with dlsym. */
typedef uint32_t fn_abi_version_fn(void);
typedef int fn_init_fn(struct fn_ctx *ctx);
typedef int fn_handle_fn(const struct fn_event *event, struct fn_response *resp,
			 struct fn_ctx *ctx);
typedef void fn_shutdown_fn(struct fn_ctx *ctx);

uint32_t corral_fn_abi_version(void);
int fn_init(struct fn_ctx *ctx);
int fn_handle(const struct fn_event *event, struct fn_response *resp, struct fn_ctx *ctx);
void fn_shutdown(struct fn_ctx *ctx);

/* Put this once in one file of the function. */
#define CORRAL_FN_ABI()                                                    \
	__attribute__((visibility("default"))) uint32_t corral_fn_abi_version(void) \
	{                                                                  \
		return CORRAL_FN_ABI_VERSION;                              \
	}                                                                  \
	_Static_assert(1, "CORRAL_FN_ABI")

#define fn_log(ctx, ...) ((ctx)->log((ctx), __VA_ARGS__))

/*
 * Response helpers.  They are compiled into the function (static inline) and only use
 * malloc/realloc/free, so the host can free what they allocate.  Each returns FN_OK, or
 * FN_ERROR when the body would pass FN_BODY_MAX, memory runs out or an argument is
 * invalid; the response is unchanged then.
 */

static inline int fn__reserve(char **buf, size_t *cap, size_t len, size_t more, size_t max)
{
	if (more > max || len > max - more)
		return FN_ERROR;
	if (len + more <= *cap)
		return FN_OK;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < len + more)
		ncap *= 2;
	char *n = (char *)realloc(*buf, ncap);
	if (!n)
		return FN_ERROR;
	*buf = n;
	*cap = ncap;
	return FN_OK;
}

/* Appends len bytes to the body. */
static inline int fn_response_write(struct fn_response *resp, const void *data, size_t len)
{
	if (len == 0)
		return FN_OK;
	if (fn__reserve(&resp->body, &resp->body_cap, resp->body_len, len, FN_BODY_MAX) != FN_OK)
		return FN_ERROR;
	memcpy(resp->body + resp->body_len, data, len);
	resp->body_len += len;
	return FN_OK;
}

static inline int fn_response_vprintf(struct fn_response *resp, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static inline int fn_response_vprintf(struct fn_response *resp, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 ||
	    fn__reserve(&resp->body, &resp->body_cap, resp->body_len, (size_t)n + 1, FN_BODY_MAX + 1) != FN_OK)
		return FN_ERROR;
	vsnprintf(resp->body + resp->body_len, (size_t)n + 1, fmt, ap);
	if (resp->body_len + (size_t)n > FN_BODY_MAX)
		return FN_ERROR; /* body_len unchanged: the text is not part of the body */
	resp->body_len += (size_t)n;
	return FN_OK;
}

/* Appends printf-formatted text to the body. */
static inline int fn_response_printf(struct fn_response *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int fn_response_printf(struct fn_response *resp, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = fn_response_vprintf(resp, fmt, ap);
	va_end(ap);
	return rc;
}

/* Appends s as a JSON string literal, quotes included (control characters escaped). */
static inline int fn_response_json_string(struct fn_response *resp, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = resp->body_len;
	int rc = fn_response_write(resp, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; rc == FN_OK && *p; p++) {
		char esc[6] = {'\\', (char)*p, 0, 0, 0, 0};
		size_t n = 2;
		switch (*p) {
		case '"': case '\\': break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (*p >= 0x20) {
				esc[0] = (char)*p;
				n = 1;
			} else {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				n = 6;
			}
		}
		rc = fn_response_write(resp, esc, n);
	}
	if (rc == FN_OK)
		rc = fn_response_write(resp, "\"", 1);
	if (rc != FN_OK)
		resp->body_len = start;
	return rc;
}

/* Empties the body (keeps its buffer). */
static inline void fn_response_clear_body(struct fn_response *resp)
{
	resp->body_len = 0;
}

/* Sets the Content-Type.  Refuses control characters and values that do not fit. */
static inline int fn_response_content_type(struct fn_response *resp, const char *type)
{
	size_t n = strlen(type);
	if (n >= sizeof(resp->content_type))
		return FN_ERROR;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)type[i] < 0x20 || type[i] == 0x7f)
			return FN_ERROR;
	memcpy(resp->content_type, type, n + 1);
	return FN_OK;
}

/*
 * Adds a response header (Location, Cache-Control, ...).  The name must be an HTTP token;
 * the value may not hold control characters (no header injection).  Content-Type goes
 * through fn_response_content_type().  Headers that frame the answer or the connection
 * (Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade, Trailer, TE) are
 * the runner's: the runner drops them, with a warning in its log.
 */
static inline int fn_response_header(struct fn_response *resp, const char *name, const char *value)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	size_t nl = strlen(name), vl = strlen(value);
	if (nl == 0 || resp->n_headers >= FN_HEADERS_MAX || nl + vl > FN_HEADER_LINE_MAX)
		return FN_ERROR;
	for (size_t i = 0; i < nl; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c && strchr(tchar, c))))
			return FN_ERROR;
	}
	for (size_t i = 0; i < vl; i++)
		if (((unsigned char)value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f)
			return FN_ERROR;
	if (fn__reserve(&resp->headers, &resp->headers_cap, resp->headers_len, nl + vl + 2,
			FN_HEADERS_MAX * (FN_HEADER_LINE_MAX + 2)) != FN_OK)
		return FN_ERROR;
	memcpy(resp->headers + resp->headers_len, name, nl + 1);
	memcpy(resp->headers + resp->headers_len + nl + 1, value, vl + 1);
	resp->headers_len += nl + vl + 2;
	resp->n_headers++;
	return FN_OK;
}

/*
 * Sets the status and replaces the body with {"error":"message"}: the usual answer to bad
 * input (400), a missing object (404) and the like.  Returns FN_OK, the value fn_handle
 * should return, unless even that small body cannot be written.
 */
static inline int fn_response_error(struct fn_response *resp, int status, const char *message)
{
	resp->status = status;
	fn_response_clear_body(resp);
	if (fn_response_content_type(resp, "application/json") != FN_OK ||
	    fn_response_write(resp, "{\"error\":", 9) != FN_OK ||
	    fn_response_json_string(resp, message) != FN_OK || fn_response_write(resp, "}", 1) != FN_OK)
		return FN_ERROR;
	return FN_OK;
}

/* Records why the function failed and returns FN_ERROR:  return fn_fail(resp, "...", ...); */
static inline int fn_fail(struct fn_response *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int fn_fail(struct fn_response *resp, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(resp->error, sizeof(resp->error), fmt, ap);
	va_end(ap);
	return FN_ERROR;
}

#endif
