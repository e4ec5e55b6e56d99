#include "functions/runner/fn_frame.h"

#include "functions/corral_fn.h"

#include <stdlib.h>
#include <string.h>

/* ---- fn_buf ------------------------------------------------------------------------ */

void fn_buf_free(struct fn_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

void fn_buf_consume(struct fn_buf *buf, size_t n)
{
	if (n >= buf->len) {
		buf->len = 0;
		return;
	}
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
}

static bool buf_reserve(struct fn_buf *buf, size_t more)
{
	if (more > SIZE_MAX / 2 - buf->len)
		return false;
	if (buf->len + more <= buf->cap)
		return true;
	size_t cap = buf->cap ? buf->cap : 256;
	while (cap < buf->len + more)
		cap *= 2;
	uint8_t *data = realloc(buf->data, cap);
	if (!data)
		return false;
	buf->data = data;
	buf->cap = cap;
	return true;
}

bool fn_buf_append(struct fn_buf *buf, const void *data, size_t len)
{
	if (!buf_reserve(buf, len))
		return false;
	if (len)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	return true;
}

/* ---- encoding ---------------------------------------------------------------------- */

/* Writes into space already reserved. */
struct writer {
	uint8_t *p;
};

static void put_u32(struct writer *w, uint32_t v)
{
	w->p[0] = (uint8_t)(v >> 24);
	w->p[1] = (uint8_t)(v >> 16);
	w->p[2] = (uint8_t)(v >> 8);
	w->p[3] = (uint8_t)v;
	w->p += 4;
}

static void put_i64(struct writer *w, int64_t v)
{
	put_u32(w, (uint32_t)((uint64_t)v >> 32));
	put_u32(w, (uint32_t)v);
}

static void put_bytes(struct writer *w, const void *s, size_t n)
{
	put_u32(w, (uint32_t)n);
	if (n)
		memcpy(w->p, s, n);
	w->p += n;
}

static void put_str(struct writer *w, const char *s)
{
	put_bytes(w, s ? s : "", s ? strlen(s) : 0);
}

static size_t str_size(const char *s)
{
	return 4 + (s ? strlen(s) : 0);
}

/* Payload size of a frame, or SIZE_MAX when a length does not fit the format. */
static size_t payload_size(const struct fn_frame *f)
{
	switch (f->type) {
	case FN_FRAME_INVOKE:
		if (f->u.invoke.event_len > FN_FRAME_MAX)
			return SIZE_MAX;
		return str_size(f->u.invoke.request_id) + 8 + 4 + f->u.invoke.event_len;
	case FN_FRAME_SHUTDOWN:
		return 0;
	case FN_FRAME_READY:
		return 8 + 8 + str_size(f->u.ready.error);
	case FN_FRAME_LOG:
		return str_size(f->u.log.request_id) + str_size(f->u.log.message);
	case FN_FRAME_RESULT: {
		const struct fn_result *r = &f->u.result;
		if (r->body_len > FN_FRAME_MAX || r->headers_len > FN_FRAME_MAX)
			return SIZE_MAX;
		return str_size(r->request_id) + 4 + 4 + str_size(r->content_type) + 4 + 4 +
		       r->headers_len + 4 + r->body_len + 8 + 8 + 8 + str_size(r->error);
	}
	}
	return SIZE_MAX;
}

bool fn_frame_encode(struct fn_buf *buf, const struct fn_frame *f)
{
	size_t size = payload_size(f);
	if (size == SIZE_MAX || size + 1 > FN_FRAME_MAX || !buf_reserve(buf, 4 + 1 + size))
		return false;
	struct writer w = {buf->data + buf->len};
	put_u32(&w, (uint32_t)(size + 1));
	*w.p++ = (uint8_t)f->type;
	switch (f->type) {
	case FN_FRAME_INVOKE:
		put_str(&w, f->u.invoke.request_id);
		put_i64(&w, f->u.invoke.deadline_usec);
		put_bytes(&w, f->u.invoke.event, f->u.invoke.event_len);
		break;
	case FN_FRAME_SHUTDOWN:
		break;
	case FN_FRAME_READY:
		put_i64(&w, f->u.ready.init_usec);
		put_i64(&w, f->u.ready.max_rss_kb);
		put_str(&w, f->u.ready.error);
		break;
	case FN_FRAME_LOG:
		put_str(&w, f->u.log.request_id);
		put_str(&w, f->u.log.message);
		break;
	case FN_FRAME_RESULT: {
		const struct fn_result *r = &f->u.result;
		put_str(&w, r->request_id);
		put_u32(&w, (uint32_t)r->rc);
		put_u32(&w, (uint32_t)r->status);
		put_str(&w, r->content_type);
		put_u32(&w, r->n_headers);
		put_bytes(&w, r->headers, r->headers_len);
		put_bytes(&w, r->body, r->body_len);
		put_i64(&w, r->duration_usec);
		put_i64(&w, r->init_usec);
		put_i64(&w, r->max_rss_kb);
		put_str(&w, r->error);
		break;
	}
	}
	buf->len += 4 + 1 + size;
	return true;
}

/* ---- decoding ---------------------------------------------------------------------- */

/* Reads the payload; strings are copied, NUL-terminated, into the frame's block. */
struct reader {
	const uint8_t *p, *end;
	char *out; /* next free byte of the block */
	const char *why;
};

static bool get_u32(struct reader *r, uint32_t *v)
{
	if (r->end - r->p < 4) {
		r->why = "frame ends inside a field";
		return false;
	}
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return true;
}

static bool get_i32(struct reader *r, int32_t *v)
{
	uint32_t u;
	if (!get_u32(r, &u))
		return false;
	*v = (int32_t)u;
	return true;
}

static bool get_i64(struct reader *r, int64_t *v)
{
	uint32_t hi, lo;
	if (!get_u32(r, &hi) || !get_u32(r, &lo))
		return false;
	*v = (int64_t)((uint64_t)hi << 32 | lo);
	return true;
}

static bool get_bytes(struct reader *r, const char **s, size_t *len)
{
	uint32_t n;
	if (!get_u32(r, &n))
		return false;
	if ((size_t)(r->end - r->p) < n) {
		r->why = "string runs past the end of the frame";
		return false;
	}
	memcpy(r->out, r->p, n);
	r->out[n] = '\0';
	*s = r->out;
	r->out += n + 1;
	r->p += n;
	if (len)
		*len = n;
	return true;
}

static bool get_str(struct reader *r, const char **s)
{
	size_t n;
	if (!get_bytes(r, s, &n))
		return false;
	if (strlen(*s) != n) {
		r->why = "NUL byte inside a string";
		return false;
	}
	return true;
}

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* No control characters but tab: safe to put in an HTTP header. */
static bool is_header_value(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return false;
	return true;
}

static bool check_headers(const struct fn_result *res, const char **why)
{
	if (res->headers_len && !res->headers) {
		*why = "header length without headers";
		return false;
	}
	size_t pos = 0;
	for (uint32_t i = 0; i < res->n_headers; i++) {
		for (int part = 0; part < 2; part++) {
			const char *s = res->headers + pos;
			const char *nul = memchr(s, '\0', res->headers_len - pos);
			if (!nul) {
				*why = "header list shorter than its count";
				return false;
			}
			bool ok = part ? is_header_value(s) : nul > s;
			for (const char *c = s; ok && !part && c < nul; c++)
				ok = is_tchar((unsigned char)*c);
			if (!ok) {
				*why = "invalid header name or value";
				return false;
			}
			pos = (size_t)(nul - res->headers) + 1;
		}
	}
	if (pos != res->headers_len) {
		*why = "header list longer than its count";
		return false;
	}
	return true;
}

bool fn_result_check(const struct fn_result *r, const char **why)
{
	if (r->rc == FN_OK && (r->status < 100 || r->status > 599)) {
		*why = "HTTP status outside 100..599";
		return false;
	}
	if (r->content_type && !is_header_value(r->content_type)) {
		*why = "control character in the content type";
		return false;
	}
	if (r->body_len && !r->body) {
		*why = "body length without a body";
		return false;
	}
	return check_headers(r, why);
}

static bool decode_payload(struct reader *r, struct fn_frame *f)
{
	switch (f->type) {
	case FN_FRAME_INVOKE:
		return get_str(r, &f->u.invoke.request_id) &&
		       get_i64(r, &f->u.invoke.deadline_usec) &&
		       get_bytes(r, &f->u.invoke.event, &f->u.invoke.event_len);
	case FN_FRAME_SHUTDOWN:
		return true;
	case FN_FRAME_READY:
		return get_i64(r, &f->u.ready.init_usec) && get_i64(r, &f->u.ready.max_rss_kb) &&
		       get_str(r, &f->u.ready.error);
	case FN_FRAME_LOG:
		return get_str(r, &f->u.log.request_id) && get_str(r, &f->u.log.message);
	case FN_FRAME_RESULT: {
		struct fn_result *res = &f->u.result;
		if (!(get_str(r, &res->request_id) && get_i32(r, &res->rc) &&
		      get_i32(r, &res->status) && get_str(r, &res->content_type) &&
		      get_u32(r, &res->n_headers) &&
		      get_bytes(r, &res->headers, &res->headers_len) &&
		      get_bytes(r, &res->body, &res->body_len) && get_i64(r, &res->duration_usec) &&
		      get_i64(r, &res->init_usec) && get_i64(r, &res->max_rss_kb) &&
		      get_str(r, &res->error)))
			return false;
		return fn_result_check(res, &r->why);
	}
	}
	r->why = "unknown frame type";
	return false;
}

size_t fn_frame_peek_length(const uint8_t *data, size_t len)
{
	if (len < 4)
		return 0;
	uint32_t n = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
		     data[3];
	return 4 + (size_t)n;
}

enum fn_decode_result fn_frame_decode(const uint8_t *data, size_t len, struct fn_frame *out,
				      size_t *consumed, const char **why)
{
	size_t total = fn_frame_peek_length(data, len);
	if (total == 0)
		return FN_DECODE_NEED_MORE;
	if (total < 4 + 1 || total - 4 > FN_FRAME_MAX) {
		*why = total < 5 ? "frame without a type" : "frame too large";
		return FN_DECODE_ERROR;
	}
	uint8_t type = data[4];
	if (type < FN_FRAME_INVOKE || type > FN_FRAME_RESULT) {
		/* Known before the rest arrives: fail fast on garbage. */
		*why = "unknown frame type";
		return FN_DECODE_ERROR;
	}
	if (len < total)
		return FN_DECODE_NEED_MORE;

	/* Each string gets a terminator: at most one per 4 bytes of length prefix. */
	size_t payload = total - 5;
	char *block = malloc(payload + payload / 4 + 1);
	if (!block) {
		*why = "out of memory";
		return FN_DECODE_ERROR;
	}
	struct fn_frame f;
	memset(&f, 0, sizeof(f));
	f.type = (enum fn_frame_type)type;
	f.block = block;
	struct reader r = {data + 5, data + total, block, NULL};
	bool ok = decode_payload(&r, &f);
	if (ok && r.p != r.end) {
		r.why = "bytes after the last field";
		ok = false;
	}
	if (!ok) {
		free(block);
		*why = r.why;
		return FN_DECODE_ERROR;
	}
	*out = f;
	*consumed = total;
	return FN_DECODE_OK;
}

void fn_frame_clear(struct fn_frame *frame)
{
	free(frame->block);
	memset(frame, 0, sizeof(*frame));
}

bool fn_result_header(const struct fn_result *r, size_t *pos, const char **name, const char **value)
{
	if (*pos >= r->headers_len)
		return false;
	*name = r->headers + *pos;
	*value = *name + strlen(*name) + 1;
	*pos = (size_t)(*value - r->headers) + strlen(*value) + 1;
	return true;
}

const char *fn_frame_type_name(enum fn_frame_type type)
{
	static const char *const names[] = {
		[FN_FRAME_INVOKE] = "invoke", [FN_FRAME_SHUTDOWN] = "shutdown",
		[FN_FRAME_READY] = "ready",   [FN_FRAME_LOG] = "log",
		[FN_FRAME_RESULT] = "result",
	};
	if ((size_t)type < ARRAY_SIZE(names) && names[type])
		return names[type];
	return "unknown";
}
