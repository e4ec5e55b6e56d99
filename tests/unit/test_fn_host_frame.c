/*
 * functions/runner/fn_frame.c, the runner <-> environment framing: every frame type
 * encoded and decoded back field by field, decoding from every prefix (NEED_MORE until
 * the last byte), frames back to back, and malformed input refused with a reason.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "functions/corral_fn.h"
#include "functions/runner/fn_frame.h"
#include "functions/runner/fn_host.h"

static void encode(struct fn_buf *buf, const struct fn_frame *f)
{
	cr_assert(fn_frame_encode(buf, f));
}

/* Decodes buf whole, checking that every shorter prefix asks for more. */
static void decode_all(const struct fn_buf *buf, struct fn_frame *out)
{
	const char *why = NULL;
	size_t used = 0;
	for (size_t n = 0; n < buf->len; n++) {
		struct fn_frame f;
		enum fn_decode_result d = fn_frame_decode(buf->data, n, &f, &used, &why);
		cr_assert_eq(d, FN_DECODE_NEED_MORE, "prefix of %zu of %zu bytes: %d (%s)", n,
			     buf->len, d, why ? why : "");
	}
	cr_assert_eq(fn_frame_decode(buf->data, buf->len, out, &used, &why), FN_DECODE_OK, "%s",
		     why);
	cr_assert_eq(used, buf->len);
}

static enum fn_decode_result decode_raw(const uint8_t *data, size_t len, const char **why)
{
	struct fn_frame f;
	size_t used;
	enum fn_decode_result d = fn_frame_decode(data, len, &f, &used, why);
	if (d == FN_DECODE_OK)
		fn_frame_clear(&f);
	return d;
}

Test(fn_host, frame_invoke_round_trip)
{
	struct fn_buf buf = {0};
	struct fn_frame in = {.type = FN_FRAME_INVOKE}, out;
	const char event[] = "{\"a\":\"x\\u0000y\"}\0binary";
	in.u.invoke.request_id = "6f1c2d3e-0000-4000-8000-123456789abc";
	in.u.invoke.deadline_usec = 0x0102030405060708LL;
	in.u.invoke.event = event;
	in.u.invoke.event_len = sizeof(event) - 1;
	encode(&buf, &in);
	cr_assert_eq(buf.len, 4 + 1 + 4 + 36 + 8 + 4 + sizeof(event) - 1);
	cr_assert_eq(buf.data[4], FN_FRAME_INVOKE);
	decode_all(&buf, &out);
	cr_assert_eq(out.type, FN_FRAME_INVOKE);
	cr_assert_str_eq(out.u.invoke.request_id, in.u.invoke.request_id);
	cr_assert_eq(out.u.invoke.deadline_usec, in.u.invoke.deadline_usec);
	cr_assert_eq(out.u.invoke.event_len, sizeof(event) - 1);
	cr_assert_eq(memcmp(out.u.invoke.event, event, sizeof(event) - 1), 0, "binary-safe");
	cr_assert_eq(out.u.invoke.event[out.u.invoke.event_len], '\0', "NUL-terminated");
	fn_frame_clear(&out);
	cr_assert_null(out.block);
	fn_buf_free(&buf);
}

Test(fn_host, frame_result_round_trip)
{
	struct fn_buf buf = {0};
	struct fn_frame in = {.type = FN_FRAME_RESULT}, out;
	static const char headers[] = "Location\0https://example.com/x\0Cache-Control\0no-store\0";
	struct fn_result *r = &in.u.result;
	r->request_id = "r1";
	r->rc = FN_OK;
	r->status = 302;
	r->content_type = "text/plain; charset=utf-8";
	r->n_headers = 2;
	r->headers = headers;
	r->headers_len = sizeof(headers) - 1;
	r->body = "moved";
	r->body_len = 5;
	r->duration_usec = 1234;
	r->init_usec = 56789;
	r->max_rss_kb = -1; /* negative values survive too */
	r->error = NULL;    /* encodes as "" */
	encode(&buf, &in);
	decode_all(&buf, &out);
	const struct fn_result *o = &out.u.result;
	cr_assert_eq(out.type, FN_FRAME_RESULT);
	cr_assert_str_eq(o->request_id, "r1");
	cr_assert_eq(o->rc, FN_OK);
	cr_assert_eq(o->status, 302);
	cr_assert_str_eq(o->content_type, "text/plain; charset=utf-8");
	cr_assert_eq(o->n_headers, 2);
	cr_assert_str_eq(o->body, "moved");
	cr_assert_eq(o->body_len, 5);
	cr_assert_eq(o->duration_usec, 1234);
	cr_assert_eq(o->init_usec, 56789);
	cr_assert_eq(o->max_rss_kb, -1);
	cr_assert_str_eq(o->error, "");

	size_t pos = 0;
	const char *name, *value;
	cr_assert(fn_result_header(o, &pos, &name, &value));
	cr_assert_str_eq(name, "Location");
	cr_assert_str_eq(value, "https://example.com/x");
	cr_assert(fn_result_header(o, &pos, &name, &value));
	cr_assert_str_eq(name, "Cache-Control");
	cr_assert_str_eq(value, "no-store");
	cr_assert_not(fn_result_header(o, &pos, &name, &value));
	fn_frame_clear(&out);
	fn_buf_free(&buf);
}

Test(fn_host, frame_ready_log_shutdown_back_to_back)
{
	struct fn_buf buf = {0};
	struct fn_frame ready = {.type = FN_FRAME_READY}, log = {.type = FN_FRAME_LOG},
			stop = {.type = FN_FRAME_SHUTDOWN}, out;
	ready.u.ready.init_usec = 42000;
	ready.u.ready.max_rss_kb = 3000;
	ready.u.ready.error = "fn_init failed (returned -1)";
	log.u.log.request_id = "";
	log.u.log.message = "connected in 3 ms";
	encode(&buf, &ready);
	encode(&buf, &log);
	encode(&buf, &stop);

	const char *why = NULL;
	size_t used;
	cr_assert_eq(fn_frame_decode(buf.data, buf.len, &out, &used, &why), FN_DECODE_OK);
	cr_assert_eq(out.type, FN_FRAME_READY);
	cr_assert_eq(out.u.ready.init_usec, 42000);
	cr_assert_eq(out.u.ready.max_rss_kb, 3000);
	cr_assert_str_eq(out.u.ready.error, "fn_init failed (returned -1)");
	fn_frame_clear(&out);
	fn_buf_consume(&buf, used);

	cr_assert_eq(fn_frame_decode(buf.data, buf.len, &out, &used, &why), FN_DECODE_OK);
	cr_assert_eq(out.type, FN_FRAME_LOG);
	cr_assert_str_eq(out.u.log.request_id, "");
	cr_assert_str_eq(out.u.log.message, "connected in 3 ms");
	fn_frame_clear(&out);
	fn_buf_consume(&buf, used);

	cr_assert_eq(fn_frame_decode(buf.data, buf.len, &out, &used, &why), FN_DECODE_OK);
	cr_assert_eq(out.type, FN_FRAME_SHUTDOWN);
	cr_assert_eq(used, 5);
	fn_frame_clear(&out);
	fn_buf_consume(&buf, used);
	cr_assert_eq(buf.len, 0);
	cr_assert_eq(fn_frame_decode(buf.data, buf.len, &out, &used, &why), FN_DECODE_NEED_MORE);
	fn_buf_free(&buf);
}

Test(fn_host, frame_errors)
{
	const char *why = NULL;
	/* Length below the type byte. */
	uint8_t zero[] = {0, 0, 0, 0, 3};
	cr_assert_eq(decode_raw(zero, sizeof(zero), &why), FN_DECODE_ERROR);
	/* Too large: refused from the header alone, before 2 GB arrive. */
	uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
	cr_assert_eq(decode_raw(huge, sizeof(huge), &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "frame too large");
	/* Unknown type, also refused early. */
	uint8_t type[] = {0, 0, 0, 100, 9};
	cr_assert_eq(decode_raw(type, sizeof(type), &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "unknown frame type");
	/* A string running past the frame. */
	uint8_t past[] = {0, 0, 0, 9, FN_FRAME_LOG, 0, 0, 0, 10, 'a', 'b', 'c', 'd'};
	cr_assert_eq(decode_raw(past, sizeof(past), &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "string runs past the end of the frame");
	/* A frame ending inside a field. */
	uint8_t short_ready[] = {0, 0, 0, 5, FN_FRAME_READY, 0, 0, 0, 1};
	cr_assert_eq(decode_raw(short_ready, sizeof(short_ready), &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "frame ends inside a field");
	/* Extra bytes after the last field. */
	uint8_t extra[] = {0, 0, 0, 2, FN_FRAME_SHUTDOWN, 'x'};
	cr_assert_eq(decode_raw(extra, sizeof(extra), &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "bytes after the last field");
	/* A NUL inside a string field. */
	uint8_t nul[] = {0, 0, 0, 13, FN_FRAME_LOG, 0, 0, 0, 2, 'a', 0, 0, 0, 0, 2, 'h', 'i'};
	cr_assert_eq(decode_raw(nul, sizeof(nul), &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "NUL byte inside a string");
}

static enum fn_decode_result decode_result(const struct fn_result *r, const char **why)
{
	struct fn_buf buf = {0};
	struct fn_frame f = {.type = FN_FRAME_RESULT};
	f.u.result = *r;
	cr_assert(fn_frame_encode(&buf, &f));
	enum fn_decode_result d = decode_raw(buf.data, buf.len, why);
	fn_buf_free(&buf);
	return d;
}

Test(fn_host, frame_result_refuses_unsafe_headers)
{
	const char *why = NULL;
	struct fn_result r = {.request_id = "r",
			      .rc = FN_OK,
			      .status = 200,
			      .content_type = "text/plain"};
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_OK);

	r.content_type = "text/html\r\nSet-Cookie: a=b";
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_ERROR);
	r.content_type = "text/plain";

	r.n_headers = 1;
	r.headers = "X-A\0b\0";
	r.headers_len = 6;
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_OK);
	r.n_headers = 2; /* more than the list holds */
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "header list shorter than its count");
	r.n_headers = 0; /* fewer */
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_ERROR);
	cr_assert_str_eq(why, "header list longer than its count");
	r.n_headers = 1;
	r.headers = "X A\0b\0"; /* not a token */
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_ERROR);
	r.headers = "X-A\0b\nc\0"; /* newline in the value */
	r.headers_len = 8;
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_ERROR);
	r.headers = "\0b\0"; /* empty name */
	r.headers_len = 3;
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_ERROR);

	r.n_headers = 0;
	r.headers = NULL;
	r.headers_len = 0;
	r.status = 99;
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_ERROR);
	r.rc = FN_ERROR; /* the status of a failed invocation is not used */
	cr_assert_eq(decode_result(&r, &why), FN_DECODE_OK);
}

Test(fn_host, frame_encode_limits)
{
	struct fn_buf buf = {0};
	struct fn_frame f = {.type = FN_FRAME_INVOKE};
	f.u.invoke.request_id = "big";
	f.u.invoke.event = "";
	f.u.invoke.event_len = FN_FRAME_MAX; /* never read: refused on its length */
	cr_assert_not(fn_frame_encode(&buf, &f));
	cr_assert_eq(buf.len, 0);
	/* The largest body a function may return fits a frame. */
	char *body = calloc(1, FN_BODY_MAX);
	cr_assert_not_null(body);
	struct fn_frame r = {.type = FN_FRAME_RESULT};
	r.u.result.status = 200;
	r.u.result.body = body;
	r.u.result.body_len = FN_BODY_MAX;
	cr_assert(fn_frame_encode(&buf, &r));
	struct fn_frame out;
	size_t used;
	const char *why;
	cr_assert_eq(fn_frame_decode(buf.data, buf.len, &out, &used, &why), FN_DECODE_OK);
	cr_assert_eq(out.u.result.body_len, FN_BODY_MAX);
	fn_frame_clear(&out);
	free(body);
	fn_buf_free(&buf);
}

Test(fn_host, exit_reasons)
{
	char buf[128];
	fn_host_exit_reason(SIGSEGV, buf, sizeof(buf)); /* wait status of a SIGSEGV death */
	cr_assert_str_eq(buf, "Runtime exited with error: signal: segmentation fault");
	fn_host_exit_reason(SIGKILL, buf, sizeof(buf));
	cr_assert_str_eq(buf, "Runtime exited with error: signal: killed");
	fn_host_exit_reason(3 << 8, buf, sizeof(buf));
	cr_assert_str_eq(buf, "Runtime exited with error: exit status 3");
	fn_host_timeout_message(3 * USEC_PER_SEC, buf, sizeof(buf));
	cr_assert_str_eq(buf, "Task timed out after 3.00 seconds");
	cr_assert_str_eq(fn_frame_type_name(FN_FRAME_RESULT), "result");
	cr_assert_str_eq(fn_frame_type_name((enum fn_frame_type)77), "unknown");
}

Test(fn_host, log_line_to_the_runner_log, .init = cr_redirect_stderr)
{
	struct fn_log l = {.request_id = "", .message = "a \"quoted\"\tline"};
	fn_host_log("f", &l);
	l.request_id = "r-1";
	l.message = "second";
	fn_host_log("f", &l);
	fflush(stderr);
	char out[1024] = "";
	FILE *f = cr_get_redirected_stderr();
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	cr_assert(strstr(out, " level=info event=fn_log function=f request_id=- "
			      "msg=\"a \\\"quoted\\\"\\tline\"\n"),
		  "%s", out);
	cr_assert(strstr(out, " event=fn_log function=f request_id=r-1 msg=\"second\"\n"), "%s",
		  out);
}
