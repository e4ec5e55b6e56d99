#include "functions/runner/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void json_free(struct json_writer *w)
{
	free(w->buf);
	json_init(w);
}

bool json_finish(const struct json_writer *w)
{
	return !w->failed && w->depth == 0 && w->len > 0 && !w->key_pending;
}

char *json_take(struct json_writer *w, size_t *len)
{
	if (!json_finish(w))
		return NULL;
	char *buf = w->buf;
	if (len)
		*len = w->len;
	json_init(w);
	return buf;
}

static bool reserve(struct json_writer *w, size_t n)
{
	if (w->failed)
		return false;
	if (w->len + n + 1 <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : 256;
	while (cap < w->len + n + 1) {
		if (cap > SIZE_MAX / 2) {
			w->failed = true;
			return false;
		}
		cap *= 2;
	}
	char *buf = realloc(w->buf, cap);
	if (!buf) {
		w->failed = true;
		return false;
	}
	w->buf = buf;
	w->cap = cap;
	return true;
}

static void put(struct json_writer *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void put_char(struct json_writer *w, char c)
{
	put(w, &c, 1);
}

/* Writes the separator a value needs where it stands; false if no value may stand
 * there (a member without a key, a second top-level value). */
static bool begin_value(struct json_writer *w)
{
	if (w->failed)
		return false;
	if (w->depth == 0) {
		if (w->len > 0)
			w->failed = true;
	} else if (w->is_object[w->depth - 1]) {
		if (!w->key_pending)
			w->failed = true;
		w->key_pending = false;
	} else {
		if (w->has_items[w->depth - 1])
			put_char(w, ',');
		w->has_items[w->depth - 1] = true;
	}
	return !w->failed;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0; /* continuation byte or overlong 2-byte lead */
	if (c < 0xE0) {
		len = 2;
	} else if (c < 0xF0) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* UTF-16 surrogates */
	} else if (c < 0xF5) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	}
	return len;
}

bool json_text_is_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t len = p[i] ? utf8_seq_len(p + i, n - i) : 0;
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

static void put_escaped(struct json_writer *w, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	put_char(w, '"');
	size_t run = 0; /* bytes at s[i - run .. i) still to be copied as they are */
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t seq = c >= 0x20 && c != '"' && c != '\\' ? utf8_seq_len(s + i, n - i) : 0;
		if (seq) {
			i += seq;
			run += seq;
			continue;
		}
		put(w, (const char *)s + i - run, run);
		run = 0;
		char esc[8];
		switch (c) {
		case '"':
			put(w, "\\\"", 2);
			break;
		case '\\':
			put(w, "\\\\", 2);
			break;
		case '\b':
			put(w, "\\b", 2);
			break;
		case '\f':
			put(w, "\\f", 2);
			break;
		case '\n':
			put(w, "\\n", 2);
			break;
		case '\r':
			put(w, "\\r", 2);
			break;
		case '\t':
			put(w, "\\t", 2);
			break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				put(w, esc, 6);
			} else {
				put(w, "\xEF\xBF\xBD", 3); /* U+FFFD for a broken byte */
			}
		}
		i++;
	}
	put(w, (const char *)s + i - run, run);
	put_char(w, '"');
}

void json_object_begin(struct json_writer *w)
{
	if (!begin_value(w))
		return;
	if (w->depth == JSON_MAX_DEPTH) {
		w->failed = true;
		return;
	}
	w->is_object[w->depth] = true;
	w->has_items[w->depth] = false;
	w->depth++;
	put_char(w, '{');
}

void json_array_begin(struct json_writer *w)
{
	if (!begin_value(w))
		return;
	if (w->depth == JSON_MAX_DEPTH) {
		w->failed = true;
		return;
	}
	w->is_object[w->depth] = false;
	w->has_items[w->depth] = false;
	w->depth++;
	put_char(w, '[');
}

static void end_container(struct json_writer *w, bool object)
{
	if (w->failed)
		return;
	if (w->depth == 0 || w->is_object[w->depth - 1] != object || w->key_pending) {
		w->failed = true;
		return;
	}
	w->depth--;
	put_char(w, object ? '}' : ']');
}

void json_object_end(struct json_writer *w)
{
	end_container(w, true);
}

void json_array_end(struct json_writer *w)
{
	end_container(w, false);
}

void json_key(struct json_writer *w, const char *key)
{
	if (w->failed)
		return;
	if (w->depth == 0 || !w->is_object[w->depth - 1] || w->key_pending) {
		w->failed = true;
		return;
	}
	if (w->has_items[w->depth - 1])
		put_char(w, ',');
	w->has_items[w->depth - 1] = true;
	put_escaped(w, key, strlen(key));
	put_char(w, ':');
	w->key_pending = true;
}

void json_string_len(struct json_writer *w, const char *s, size_t len)
{
	if (begin_value(w))
		put_escaped(w, s, len);
}

void json_string(struct json_writer *w, const char *s)
{
	json_string_len(w, s, strlen(s));
}

void json_string_or_null(struct json_writer *w, const char *s)
{
	if (s)
		json_string(w, s);
	else
		json_null(w);
}

void json_base64(struct json_writer *w, const void *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (!begin_value(w) || !reserve(w, 2 + (len + 2) / 3 * 4))
		return;
	const unsigned char *p = data;
	char *out = w->buf + w->len;
	*out++ = '"';
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*out++ = alphabet[v >> 18 & 63];
		*out++ = alphabet[v >> 12 & 63];
		*out++ = alphabet[v >> 6 & 63];
		*out++ = alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		*out++ = alphabet[v >> 18 & 63];
		*out++ = alphabet[v >> 12 & 63];
		*out++ = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
		*out++ = '=';
	}
	*out++ = '"';
	w->len = (size_t)(out - w->buf);
	w->buf[w->len] = '\0';
}

void json_int(struct json_writer *w, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);
	if (begin_value(w))
		put(w, num, (size_t)n);
}

void json_uint(struct json_writer *w, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);
	if (begin_value(w))
		put(w, num, (size_t)n);
}

void json_double(struct json_writer *w, double v)
{
	if (!isfinite(v)) {
		json_null(w);
		return;
	}
	char num[32];
	int n = snprintf(num, sizeof(num), "%.15g", v);
	if (strtod(num, NULL) != v)
		n = snprintf(num, sizeof(num), "%.17g", v);
	if (begin_value(w))
		put(w, num, (size_t)n);
}

void json_bool(struct json_writer *w, bool v)
{
	if (begin_value(w))
		put(w, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json_writer *w)
{
	if (begin_value(w))
		put(w, "null", 4);
}

void json_time(struct json_writer *w, time_t t)
{
	struct tm tm;
	char buf[64];
	if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		w->failed = true;
		return;
	}
	json_string(w, buf);
}

void json_kv_string(struct json_writer *w, const char *key, const char *value)
{
	json_key(w, key);
	json_string(w, value);
}

void json_kv_int(struct json_writer *w, const char *key, int64_t value)
{
	json_key(w, key);
	json_int(w, value);
}

void json_kv_bool(struct json_writer *w, const char *key, bool value)
{
	json_key(w, key);
	json_bool(w, value);
}

/* ---- Lambda events ---- */

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static bool seen_before(const struct json_pair *p, size_t i)
{
	for (size_t j = 0; j < i; j++) {
		if (strcmp(p[j].name, p[i].name) == 0)
			return true;
	}
	return false;
}

/* {"name":"last value",...} or, with multi, {"name":["v1","v2"],...}; null if n == 0.
 * Names keep the order in which each first appears. */
static void pairs_object(struct json_writer *w, const struct json_pair *p, size_t n, bool multi)
{
	if (n == 0) {
		json_null(w);
		return;
	}
	json_object_begin(w);
	for (size_t i = 0; i < n; i++) {
		if (seen_before(p, i))
			continue;
		json_key(w, p[i].name);
		if (multi)
			json_array_begin(w);
		const char *last = p[i].value;
		for (size_t j = i; j < n; j++) {
			if (strcmp(p[j].name, p[i].name) != 0)
				continue;
			if (multi)
				json_string(w, str_or_empty(p[j].value));
			last = p[j].value;
		}
		if (multi)
			json_array_end(w);
		else
			json_string(w, str_or_empty(last));
	}
	json_object_end(w);
}

void json_http_request_event(struct json_writer *w, const struct json_http_request *r)
{
	const char *resource = r->resource ? r->resource : "/{proxy+}";
	json_object_begin(w);
	json_kv_string(w, "resource", resource);
	json_kv_string(w, "path", str_or_empty(r->path));
	json_kv_string(w, "httpMethod", str_or_empty(r->method));
	json_key(w, "headers");
	pairs_object(w, r->headers, r->n_headers, false);
	json_key(w, "multiValueHeaders");
	pairs_object(w, r->headers, r->n_headers, true);
	json_key(w, "queryStringParameters");
	pairs_object(w, r->query, r->n_query, false);
	json_key(w, "multiValueQueryStringParameters");
	pairs_object(w, r->query, r->n_query, true);
	json_key(w, "pathParameters");
	json_null(w);
	json_key(w, "stageVariables");
	json_null(w);

	json_key(w, "requestContext");
	json_object_begin(w);
	json_kv_string(w, "resourcePath", resource);
	json_kv_string(w, "httpMethod", str_or_empty(r->method));
	json_kv_string(w, "path", str_or_empty(r->path));
	json_kv_string(w, "stage", r->stage ? r->stage : "$default");
	json_kv_string(w, "requestId", str_or_empty(r->request_id));
	json_kv_int(w, "requestTimeEpoch", r->time_epoch_ms);
	json_key(w, "identity");
	json_object_begin(w);
	json_key(w, "sourceIp");
	json_string_or_null(w, r->source_ip);
	json_object_end(w);
	json_object_end(w);

	json_key(w, "body");
	if (!r->body)
		json_null(w);
	else if (r->body_base64)
		json_base64(w, r->body, r->body_len);
	else
		json_string_len(w, r->body, r->body_len);
	json_kv_bool(w, "isBase64Encoded", r->body && r->body_base64);
	json_object_end(w);
}

void json_queue_batch_event(struct json_writer *w, const char *source_arn,
			    const struct json_queue_message *msgs, size_t n)
{
	char num[24];
	json_object_begin(w);
	json_key(w, "Records");
	json_array_begin(w);
	for (size_t i = 0; i < n; i++) {
		const struct json_queue_message *m = &msgs[i];
		json_object_begin(w);
		json_kv_string(w, "messageId", str_or_empty(m->message_id));
		json_kv_string(w, "receiptHandle",
			       str_or_empty(m->receipt_handle ? m->receipt_handle : m->message_id));
		json_kv_string(w, "body", str_or_empty(m->body));
		/* SQS gives every attribute as a string */
		json_key(w, "attributes");
		json_object_begin(w);
		snprintf(num, sizeof(num), "%u", m->receive_count);
		json_kv_string(w, "ApproximateReceiveCount", num);
		snprintf(num, sizeof(num), "%" PRId64, m->sent_ms);
		json_kv_string(w, "SentTimestamp", num);
		json_kv_string(w, "SenderId", "corral-fn");
		snprintf(num, sizeof(num), "%" PRId64, m->first_receive_ms);
		json_kv_string(w, "ApproximateFirstReceiveTimestamp", num);
		json_object_end(w);
		json_key(w, "messageAttributes");
		json_object_begin(w);
		json_object_end(w);
		json_kv_string(w, "eventSource", "aws:sqs");
		json_kv_string(w, "eventSourceARN", str_or_empty(source_arn));
		json_kv_string(w, "awsRegion", "local");
		json_object_end(w);
	}
	json_array_end(w);
	json_object_end(w);
}

void json_scheduled_event(struct json_writer *w, const struct json_schedule *s)
{
	json_object_begin(w);
	json_kv_string(w, "version", "0");
	json_kv_string(w, "id", str_or_empty(s->id));
	json_kv_string(w, "detail-type", "Scheduled Event");
	json_kv_string(w, "source", "aws.events");
	json_kv_string(w, "account", s->account ? s->account : "000000000000");
	json_key(w, "time");
	json_time(w, s->time);
	json_kv_string(w, "region", s->region ? s->region : "local");
	json_key(w, "resources");
	json_array_begin(w);
	for (size_t i = 0; i < s->n_resources; i++)
		json_string(w, s->resources[i]);
	json_array_end(w);
	json_key(w, "detail");
	json_object_begin(w);
	json_object_end(w);
	json_object_end(w);
}
