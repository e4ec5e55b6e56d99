#include "proxy/admin_rows.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

/* PostgreSQL's type OIDs (pg_type.dat) and sizes, as a server would describe them. */
static const struct {
	uint32_t oid;
	int16_t size;
} types[] = {
	[ADMIN_TEXT] = {25, -1},
	[ADMIN_INT4] = {23, 4},
	[ADMIN_INT8] = {20, 8},
	[ADMIN_NUMERIC] = {1700, -1},
};

static void put_u32(struct evbuffer *out, uint32_t v)
{
	v = htonl(v);
	evbuffer_add(out, &v, 4);
}

static void put_u16(struct evbuffer *out, uint16_t v)
{
	v = htons(v);
	evbuffer_add(out, &v, 2);
}

void admin_put_row_description(struct evbuffer *out, const struct admin_col *cols, size_t n)
{
	size_t len = 4 + 2;
	for (size_t i = 0; i < n; i++)
		len += strlen(cols[i].name) + 1 + 18;
	evbuffer_add(out, "T", 1);
	put_u32(out, (uint32_t)len);
	put_u16(out, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		evbuffer_add(out, cols[i].name, strlen(cols[i].name) + 1);
		put_u32(out, 0); /* no table */
		put_u16(out, 0); /* no column number */
		put_u32(out, types[cols[i].type].oid);
		put_u16(out, (uint16_t)types[cols[i].type].size);
		put_u32(out, UINT32_MAX); /* typmod -1 */
		put_u16(out, 0);          /* text format */
	}
}

void admin_put_complete(struct evbuffer *out, const char *tag)
{
	evbuffer_add(out, "C", 1);
	put_u32(out, (uint32_t)(4 + strlen(tag) + 1));
	evbuffer_add(out, tag, strlen(tag) + 1);
}

static bool row_ready(struct admin_row *r)
{
	if (!r->buf && !r->oom) {
		r->buf = evbuffer_new();
		r->oom = !r->buf;
	}
	return !r->oom;
}

/* One value of len bytes; len < 0: NULL. */
static void add_value(struct admin_row *r, const char *value, long len)
{
	if (!row_ready(r))
		return;
	put_u32(r->buf, len < 0 ? UINT32_MAX : (uint32_t)len);
	if (len > 0 && evbuffer_add(r->buf, value, (size_t)len) != 0)
		r->oom = true;
	r->n++;
}

void admin_row_text(struct admin_row *r, const char *value)
{
	add_value(r, value, value ? (long)strlen(value) : -1);
}

void admin_row_null(struct admin_row *r)
{
	add_value(r, NULL, -1);
}

void admin_row_printf(struct admin_row *r, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	add_value(r, text, n < (int)sizeof(text) ? n : (long)sizeof(text) - 1);
}

void admin_row_int(struct admin_row *r, long long value)
{
	admin_row_printf(r, "%lld", value);
}

void admin_row_uint(struct admin_row *r, unsigned long long value)
{
	admin_row_printf(r, "%llu", value);
}

void admin_row_mono_time(struct admin_row *r, long long mono_usec)
{
	if (!mono_usec) {
		admin_row_null(r);
		return;
	}
	/* The monotonic clock has no calendar: the wall clock now, minus how long ago. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long ago = (long long)clock_now_usec() - mono_usec;
	time_t t = now.tv_sec - (time_t)(ago / (long long)USEC_PER_SEC);
	struct tm tm;
	char text[64];
	gmtime_r(&t, &tm);
	strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
	admin_row_text(r, text);
}

bool admin_row_end(struct admin_row *r, struct evbuffer *out)
{
	bool ok = row_ready(r);
	if (ok) {
		size_t len = evbuffer_get_length(r->buf);
		evbuffer_add(out, "D", 1);
		put_u32(out, (uint32_t)(4 + 2 + len));
		put_u16(out, (uint16_t)r->n);
		ok = evbuffer_add_buffer(out, r->buf) == 0;
	}
	if (r->buf)
		evbuffer_free(r->buf);
	r->buf = NULL;
	r->n = 0;
	r->oom = false;
	return ok;
}
