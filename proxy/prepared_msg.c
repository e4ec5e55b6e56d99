#include "proxy/prepared_msg.h"

#include <string.h>

#include "proxy/pgproto.h"
#include "proxy/prepared.h"

static const char *string_at(const uint8_t *body, size_t len, size_t off, size_t *end)
{
	if (off >= len)
		return NULL;
	const uint8_t *nul = memchr(body + off, 0, len - off);
	if (!nul)
		return NULL;
	*end = (size_t)(nul - body) + 1;
	return (const char *)body + off;
}

bool prepmsg_stmt_name(char type, const uint8_t *body, size_t len, bool complete,
		       struct prepmsg_name *out)
{
	(void)complete;
	size_t off = 0, end = 0;
	out->kind = 'S';
	switch (type) {
	case 'B':
		if (!string_at(body, len, 0, &off))
			return false;
		break;
	case 'D':
	case 'C':
		if (len < 1)
			return false;
		out->kind = (char)body[0];
		off = 1;
		break;
	default:
		break;
	}
	out->name = string_at(body, len, off, &end);
	if (!out->name)
		return false;
	out->name_off = off;
	out->after = end;
	return true;
}

static void put_header(struct evbuffer *out, char type, size_t body_len)
{
	uint8_t h[5] = {(uint8_t)type};
	uint32_t n = (uint32_t)(body_len + 4);
	h[1] = (uint8_t)(n >> 24);
	h[2] = (uint8_t)(n >> 16);
	h[3] = (uint8_t)(n >> 8);
	h[4] = (uint8_t)n;
	evbuffer_add(out, h, sizeof(h));
}

void prepmsg_put_parse(struct evbuffer *out, const char *name, const uint8_t *rest, size_t rest_len)
{
	size_t n = strlen(name) + 1;
	put_header(out, 'P', n + rest_len);
	evbuffer_add(out, name, n);
	evbuffer_add(out, rest, rest_len);
}

void prepmsg_put_close(struct evbuffer *out, char kind, const char *name)
{
	size_t n = strlen(name) + 1;
	put_header(out, 'C', 1 + n);
	evbuffer_add(out, &kind, 1);
	evbuffer_add(out, name, n);
}

void prepmsg_put_describe(struct evbuffer *out, char kind, const char *name)
{
	size_t n = strlen(name) + 1;
	put_header(out, 'D', 1 + n);
	evbuffer_add(out, &kind, 1);
	evbuffer_add(out, name, n);
}

void prepmsg_put_bind_head(struct evbuffer *out, const char *portal, const char *name,
			   size_t rest_len)
{
	size_t p = strlen(portal) + 1, n = strlen(name) + 1;
	put_header(out, 'B', p + n + rest_len);
	evbuffer_add(out, portal, p);
	evbuffer_add(out, name, n);
}

void prepmsg_put_failing_bind(struct evbuffer *out, const char *name)
{
	/* portal "", statement, no parameter formats, no parameters, no result formats */
	static const uint8_t tail[6] = {0};
	prepmsg_put_bind_head(out, "", name, sizeof(tail));
	evbuffer_add(out, tail, sizeof(tail));
}

void prepmsg_put_query_parts(struct evbuffer *out, const char *const *parts, const size_t *lens,
			     size_t n)
{
	size_t total = 1;
	for (size_t i = 0; i < n; i++)
		total += lens[i];
	put_header(out, 'Q', total);
	for (size_t i = 0; i < n; i++)
		evbuffer_add(out, parts[i], lens[i]);
	evbuffer_add(out, "", 1);
}

void prepmsg_put_empty(struct evbuffer *out, char type)
{
	put_header(out, type, 0);
}

bool prepmsg_put_error_field(struct evbuffer *out, const uint8_t *body, size_t len, char code,
			     const char *value)
{
	/* Fields: a code byte and a NUL-terminated value each, then a final NUL. */
	size_t total = 0, off = 0;
	while (off < len && body[off]) {
		const uint8_t *nul = memchr(body + off + 1, 0, len - off - 1);
		if (!nul)
			return false;
		size_t end = (size_t)(nul - body) + 1;
		total += body[off] != code ? end - off : value ? 2 + strlen(value) : 0;
		off = end;
	}
	if (off >= len)
		return false; /* no final NUL in what was read */
	put_header(out, 'E', total + 1);
	for (off = 0; body[off];) {
		const uint8_t *nul = memchr(body + off + 1, 0, len - off - 1);
		size_t end = (size_t)(nul - body) + 1;
		if (body[off] != code) {
			evbuffer_add(out, body + off, end - off);
		} else if (value) {
			evbuffer_add(out, &code, 1);
			evbuffer_add(out, value, strlen(value) + 1);
		}
		off = end;
	}
	evbuffer_add(out, "", 1);
	return true;
}

bool prepmsg_put_error_renamed(struct evbuffer *out, const uint8_t *body, size_t len,
			       const char *message)
{
	return prepmsg_put_error_field(out, body, len, 'M', message);
}
