#include "functions/runner/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>

void report_uuid_format(const uint8_t bytes[16], char out[REPORT_ID_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	for (int i = 0; i < 16; i++)
		b[i] = bytes[i];
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
	size_t n = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[b[i] >> 4];
		out[n++] = hex[b[i] & 15];
	}
	out[n] = '\0';
}

bool report_request_id(char out[REPORT_ID_SIZE])
{
	uint8_t b[16];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			out[0] = '\0';
			return false;
		}
		got += (size_t)n;
	}
	report_uuid_format(b, out);
	return true;
}

int64_t report_billed_ms(int64_t duration_us)
{
	if (duration_us <= 1000)
		return 1;
	return (duration_us + 999) / 1000;
}

int64_t report_memory_mb(int64_t kb)
{
	return kb <= 0 ? 0 : (kb + 1023) / 1024;
}

/* snprintf that keeps appending: pos counts what the whole line needs. */
struct line {
	char *buf;
	size_t len;
	size_t pos;
};

PRINTF_LIKE(2, 3)
static void add(struct line *l, const char *fmt, ...)
{
	char dummy;
	char *at = l->pos < l->len ? l->buf + l->pos : &dummy;
	size_t room = l->pos < l->len ? l->len - l->pos : 0;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(at, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->pos += (size_t)n;
}

/* "12.34 ms" from microseconds, rounded half up to hundredths. */
static void add_ms(struct line *l, const char *name, int64_t us)
{
	int64_t hundredths = us <= 0 ? 0 : (us + 5) / 10;
	add(l, "\t%s: %" PRId64 ".%02d ms", name, hundredths / 100, (int)(hundredths % 100));
}

static int finish(struct line *l)
{
	if (l->len)
		l->buf[l->pos < l->len ? l->pos : l->len - 1] = '\0';
	return l->pos > INT32_MAX ? INT32_MAX : (int)l->pos;
}

int report_start_line(char *buf, size_t len, const char *request_id)
{
	struct line l = {buf, len, 0};
	add(&l, "START RequestId: %s Version: $LATEST", request_id);
	return finish(&l);
}

int report_end_line(char *buf, size_t len, const char *request_id)
{
	struct line l = {buf, len, 0};
	add(&l, "END RequestId: %s", request_id);
	return finish(&l);
}

int report_report_line(char *buf, size_t len, const char *request_id,
		       const struct report_invocation *inv)
{
	struct line l = {buf, len, 0};
	add(&l, "REPORT RequestId: %s", request_id);
	add_ms(&l, "Duration", inv->duration_us);
	add(&l, "\tBilled Duration: %" PRId64 " ms", report_billed_ms(inv->duration_us));
	add(&l, "\tMemory Size: %u MB", inv->memory_size_mb);
	add(&l, "\tMax Memory Used: %" PRId64 " MB", report_memory_mb(inv->max_memory_kb));
	if (inv->cold)
		add_ms(&l, "Init Duration", inv->init_us);
	if (inv->status) {
		add(&l, "\tStatus: %s", inv->status);
		if (inv->error_type)
			add(&l, "\tError Type: %s", inv->error_type);
	}
	if (inv->queue_wait_us >= 0)
		add_ms(&l, "Queue Wait", inv->queue_wait_us);
	add(&l, "\tCold: %s", inv->cold ? "true" : "false");
	for (size_t i = 0; i < inv->n_extra; i++)
		add(&l, "\t%s: %s", inv->extra[i].name, inv->extra[i].value);
	return finish(&l);
}
