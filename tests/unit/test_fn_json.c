/* functions/runner/json.c: the JSON writer and the Lambda-shaped events. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/runner/json.h"

/* ---- a tiny strict JSON checker: validates, and decodes strings ---- */

struct checker {
	const char *p, *end;
};

static void skip_ws(struct checker *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
		c->p++;
}

static bool check_value(struct checker *c, int depth);

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes the string at c->p into out (if not NULL); \u escapes only below 0x80 are
 * decoded to bytes, others are taken as they are (the writer never emits them). */
static bool check_string(struct checker *c, char *out, size_t *outlen)
{
	size_t n = 0;
	if (c->p >= c->end || *c->p != '"')
		return false;
	c->p++;
	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = (unsigned char)*c->p;
		if (ch < 0x20)
			return false;
		if (ch == '\\') {
			if (++c->p >= c->end)
				return false;
			char e = *c->p, v;
			switch (e) {
			case '"': v = '"'; break;
			case '\\': v = '\\'; break;
			case '/': v = '/'; break;
			case 'b': v = '\b'; break;
			case 'f': v = '\f'; break;
			case 'n': v = '\n'; break;
			case 'r': v = '\r'; break;
			case 't': v = '\t'; break;
			case 'u': {
				if (c->end - c->p < 5)
					return false;
				int code = 0;
				for (int i = 1; i <= 4; i++) {
					int h = hexval(c->p[i]);
					if (h < 0)
						return false;
					code = code * 16 + h;
				}
				if (code >= 0x80)
					return false;
				v = (char)code;
				c->p += 4;
				break;
			}
			default: return false;
			}
			if (out)
				out[n] = v;
			n++;
			c->p++;
			continue;
		}
		if (out)
			out[n] = (char)ch;
		n++;
		c->p++;
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	if (outlen)
		*outlen = n;
	return true;
}

static bool check_number(struct checker *c)
{
	const char *s = c->p;
	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p >= c->end)
		return false;
	if (*c->p == '0') {
		c->p++;
	} else if (*c->p >= '1' && *c->p <= '9') {
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	} else {
		return false;
	}
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return false;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return false;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	return c->p > s;
}

static bool check_literal(struct checker *c, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool check_value(struct checker *c, int depth)
{
	if (depth > 64)
		return false;
	skip_ws(c);
	if (c->p >= c->end)
		return false;
	switch (*c->p) {
	case '{':
		c->p++;
		skip_ws(c);
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return true;
		}
		for (;;) {
			skip_ws(c);
			if (!check_string(c, NULL, NULL))
				return false;
			skip_ws(c);
			if (c->p >= c->end || *c->p++ != ':')
				return false;
			if (!check_value(c, depth + 1))
				return false;
			skip_ws(c);
			if (c->p >= c->end)
				return false;
			if (*c->p == '}') {
				c->p++;
				return true;
			}
			if (*c->p++ != ',')
				return false;
		}
	case '[':
		c->p++;
		skip_ws(c);
		if (c->p < c->end && *c->p == ']') {
			c->p++;
			return true;
		}
		for (;;) {
			if (!check_value(c, depth + 1))
				return false;
			skip_ws(c);
			if (c->p >= c->end)
				return false;
			if (*c->p == ']') {
				c->p++;
				return true;
			}
			if (*c->p++ != ',')
				return false;
		}
	case '"': return check_string(c, NULL, NULL);
	case 't': return check_literal(c, "true");
	case 'f': return check_literal(c, "false");
	case 'n': return check_literal(c, "null");
	default: return check_number(c);
	}
}

/* Valid UTF-8 per RFC 3629 (the reference for what the writer must emit). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

static bool valid_json(const char *s, size_t n)
{
	struct checker c = {s, s + n};
	if (!check_value(&c, 0))
		return false;
	skip_ws(&c);
	return c.p == c.end && valid_utf8((const unsigned char *)s, n);
}

/* The finished document, which must be valid JSON; freed by the caller. */
static char *finish(struct json_writer *w)
{
	size_t len = 0;
	cr_assert(json_finish(w), "document incomplete or failed");
	char *s = json_take(w, &len);
	cr_assert_not_null(s);
	cr_assert_eq(strlen(s), len);
	cr_assert(valid_json(s, len), "not valid JSON: %s", s);
	return s;
}

static char *string_doc(const char *s, size_t n)
{
	struct json_writer w;
	json_init(&w);
	json_string_len(&w, s, n);
	return finish(&w);
}

/* ---- the writer ---- */

Test(fn_json, scalars)
{
	struct json_writer w;
	json_init(&w);
	json_array_begin(&w);
	json_int(&w, 0);
	json_int(&w, -42);
	json_int(&w, INT64_MIN);
	json_uint(&w, UINT64_MAX);
	json_bool(&w, true);
	json_bool(&w, false);
	json_null(&w);
	json_string(&w, "");
	json_string_or_null(&w, NULL);
	json_string_or_null(&w, "x");
	json_array_end(&w);
	char *s = finish(&w);
	cr_assert_str_eq(s, "[0,-42,-9223372036854775808,18446744073709551615,true,false,null,"
			    "\"\",null,\"x\"]");
	free(s);
}

Test(fn_json, doubles)
{
	struct json_writer w;
	json_init(&w);
	json_array_begin(&w);
	json_double(&w, 0.0);
	json_double(&w, 12.34);
	json_double(&w, 0.1);
	json_double(&w, -1.5e300);
	json_double(&w, 1.0 / 3.0);
	json_double(&w, 1e21);
	json_double(&w, NAN);
	json_double(&w, INFINITY);
	json_double(&w, -INFINITY);
	json_array_end(&w);
	char *s = finish(&w);
	cr_assert_str_eq(s, "[0,12.34,0.1,-1.5e+300,0.33333333333333331,1e+21,null,null,null]");
	free(s);
	/* every double reads back exactly */
	double vals[] = {0.1 + 0.2, 123456.789, 5e-324, 1.7976931348623157e308, -0.000123};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		json_init(&w);
		json_double(&w, vals[i]);
		char *d = finish(&w);
		cr_assert_eq(strtod(d, NULL), vals[i], "%s", d);
		free(d);
	}
}

Test(fn_json, nesting_and_commas)
{
	struct json_writer w;
	json_init(&w);
	json_object_begin(&w);
	json_kv_string(&w, "a", "1");
	json_key(&w, "b");
	json_array_begin(&w);
	json_array_begin(&w);
	json_array_end(&w);
	json_object_begin(&w);
	json_object_end(&w);
	json_object_begin(&w);
	json_kv_int(&w, "c", 3);
	json_kv_bool(&w, "d", true);
	json_object_end(&w);
	json_array_end(&w);
	json_key(&w, "e");
	json_object_begin(&w);
	json_object_end(&w);
	json_object_end(&w);
	char *s = finish(&w);
	cr_assert_str_eq(s, "{\"a\":\"1\",\"b\":[[],{},{\"c\":3,\"d\":true}],\"e\":{}}");
	free(s);
}

Test(fn_json, escapes)
{
	char *s = string_doc("say \"hi\"\\ / ok", 14);
	cr_assert_str_eq(s, "\"say \\\"hi\\\"\\\\ / ok\"");
	free(s);
	s = string_doc("\b\f\n\r\t", 5);
	cr_assert_str_eq(s, "\"\\b\\f\\n\\r\\t\"");
	free(s);
	s = string_doc("\x01\x1f\x7f", 3);
	cr_assert_str_eq(s, "\"\\u0001\\u001f\x7f\"");
	free(s);
	/* an embedded NUL is data, not the end */
	s = string_doc("a\0b", 3);
	cr_assert_str_eq(s, "\"a\\u0000b\"");
	free(s);
}

Test(fn_json, keys_are_escaped)
{
	struct json_writer w;
	json_init(&w);
	json_object_begin(&w);
	json_kv_string(&w, "x-\"quoted\"\n", "v");
	json_object_end(&w);
	char *s = finish(&w);
	cr_assert_str_eq(s, "{\"x-\\\"quoted\\\"\\n\":\"v\"}");
	free(s);
}

Test(fn_json, utf8_passes_through)
{
	const char *text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\x98 \xE4\xB8\xAD\xE6\x96\x87";
	char *s = string_doc(text, strlen(text));
	char want[128];
	snprintf(want, sizeof(want), "\"%s\"", text);
	cr_assert_str_eq(s, want);
	free(s);
	/* the largest code point and the last ones before and after the surrogates */
	text = "\xF4\x8F\xBF\xBF \xED\x9F\xBF \xEE\x80\x80";
	s = string_doc(text, strlen(text));
	snprintf(want, sizeof(want), "\"%s\"", text);
	cr_assert_str_eq(s, want);
	free(s);
}

Test(fn_json, invalid_utf8_replaced)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{"a\xFF" "b", "\"a\xEF\xBF\xBD" "b\""},               /* never valid */
		{"\x80", "\"\xEF\xBF\xBD\""},                       /* lone continuation */
		{"\xC3", "\"\xEF\xBF\xBD\""},                       /* truncated at the end */
		{"\xC3(", "\"\xEF\xBF\xBD(\""},                     /* truncated in the middle */
		{"\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},        /* overlong '/' */
		{"\xE0\x80\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}, /* overlong */
		{"\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}, /* surrogate */
		{"\xF4\x90\x80\x80",
		 "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}, /* past U+10FFFF */
		{"\xE2\x82", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},        /* truncated euro */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = string_doc(cases[i].in, strlen(cases[i].in));
		cr_assert_str_eq(s, cases[i].out, "case %zu", i);
		free(s);
	}
}

/* Random bytes always give valid JSON, and valid text reads back unchanged. */
Test(fn_json, random_strings)
{
	srand(7);
	for (int round = 0; round < 2000; round++) {
		unsigned char buf[64];
		size_t n = (size_t)(rand() % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)(round % 2 ? rand() % 256 : rand() % 128);
		char *s = string_doc((const char *)buf, n);
		if (valid_utf8(buf, n)) {
			struct checker c = {s, s + strlen(s)};
			char out[64 * 6];
			size_t outlen = 0;
			cr_assert(check_string(&c, out, &outlen));
			cr_assert_eq(outlen, n);
			cr_assert(memcmp(out, buf, n) == 0);
		}
		free(s);
	}
}

Test(fn_json, base64)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", "\"\""},         {"f", "\"Zg==\""},         {"fo", "\"Zm8=\""},
		{"foo", "\"Zm9v\""},  {"foob", "\"Zm9vYg==\""},  {"fooba", "\"Zm9vYmE=\""},
		{"foobar", "\"Zm9vYmFy\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_writer w;
		json_init(&w);
		json_base64(&w, cases[i].in, strlen(cases[i].in));
		char *s = finish(&w);
		cr_assert_str_eq(s, cases[i].out);
		free(s);
	}
	struct json_writer w;
	json_init(&w);
	json_base64(&w, "\x00\xff\xfe", 3);
	char *s = finish(&w);
	cr_assert_str_eq(s, "\"AP/+\"");
	free(s);
}

Test(fn_json, time)
{
	struct json_writer w;
	json_init(&w);
	json_time(&w, 1710063000);
	char *s = finish(&w);
	cr_assert_str_eq(s, "\"2024-03-10T09:30:00Z\"");
	free(s);
}

/* A big document grows the buffer many times. */
Test(fn_json, grows)
{
	struct json_writer w;
	json_init(&w);
	json_array_begin(&w);
	for (int i = 0; i < 100000; i++)
		json_int(&w, i);
	json_array_end(&w);
	char *s = finish(&w);
	cr_assert(strncmp(s, "[0,1,2,", 7) == 0);
	cr_assert(strcmp(s + strlen(s) - 7, ",99999]") == 0);
	free(s);
}

Test(fn_json, misuse_is_reported)
{
	struct json_writer w;

	json_init(&w); /* a member without a key */
	json_object_begin(&w);
	json_int(&w, 1);
	json_object_end(&w);
	cr_assert_not(json_finish(&w));
	cr_assert_null(json_take(&w, NULL));
	json_free(&w);

	json_init(&w); /* a key inside an array */
	json_array_begin(&w);
	json_key(&w, "k");
	cr_assert_not(json_finish(&w));
	json_free(&w);

	json_init(&w); /* a key without its value */
	json_object_begin(&w);
	json_key(&w, "k");
	json_object_end(&w);
	cr_assert_not(json_finish(&w));
	json_free(&w);

	json_init(&w); /* unclosed */
	json_array_begin(&w);
	cr_assert_not(json_finish(&w));
	json_free(&w);

	json_init(&w); /* mismatched close */
	json_array_begin(&w);
	json_object_end(&w);
	cr_assert_not(json_finish(&w));
	json_free(&w);

	json_init(&w); /* two top-level values */
	json_int(&w, 1);
	json_int(&w, 2);
	cr_assert_not(json_finish(&w));
	json_free(&w);

	json_init(&w); /* nothing */
	cr_assert_not(json_finish(&w));
	json_free(&w);

	json_init(&w); /* too deep */
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		json_array_begin(&w);
	cr_assert(w.failed);
	json_free(&w);

	json_init(&w); /* as deep as allowed */
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_array_begin(&w);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_array_end(&w);
	char *s = finish(&w);
	free(s);
}

/* ---- Lambda events ---- */

Test(fn_json, http_request_event)
{
	static const struct json_pair headers[] = {
		{"Host", "127.0.0.1:9000"},
		{"Accept", "text/html"},
		{"Accept", "application/json"},
		{"X-Quote", "say \"x\""},
	};
	static const struct json_pair query[] = {{"id", "42"}, {"tag", "a"}, {"tag", "b"}};
	struct json_http_request r = {
		.method = "POST",
		.path = "/fn/shorten",
		.request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
		.source_ip = "127.0.0.1",
		.time_epoch_ms = 1710063000123,
		.headers = headers,
		.n_headers = 4,
		.query = query,
		.n_query = 3,
		.body = "{\"url\":\"https://example.com\"}",
		.body_len = 29,
	};
	struct json_writer w;
	json_init(&w);
	json_http_request_event(&w, &r);
	char *s = finish(&w);
	cr_assert_str_eq(
		s,
		"{\"resource\":\"/{proxy+}\",\"path\":\"/fn/shorten\",\"httpMethod\":\"POST\","
		"\"headers\":{\"Host\":\"127.0.0.1:9000\",\"Accept\":\"application/json\","
		"\"X-Quote\":\"say \\\"x\\\"\"},"
		"\"multiValueHeaders\":{\"Host\":[\"127.0.0.1:9000\"],"
		"\"Accept\":[\"text/html\",\"application/json\"],\"X-Quote\":[\"say \\\"x\\\"\"]},"
		"\"queryStringParameters\":{\"id\":\"42\",\"tag\":\"b\"},"
		"\"multiValueQueryStringParameters\":{\"id\":[\"42\"],\"tag\":[\"a\",\"b\"]},"
		"\"pathParameters\":null,\"stageVariables\":null,"
		"\"requestContext\":{\"resourcePath\":\"/{proxy+}\",\"httpMethod\":\"POST\","
		"\"path\":\"/fn/shorten\",\"stage\":\"$default\","
		"\"requestId\":\"c6af9ac6-7b61-11e6-9a41-93e8deadbeef\","
		"\"requestTimeEpoch\":1710063000123,\"identity\":{\"sourceIp\":\"127.0.0.1\"}},"
		"\"body\":\"{\\\"url\\\":\\\"https://example.com\\\"}\",\"isBase64Encoded\":false}");
	free(s);
}

Test(fn_json, http_request_event_minimal)
{
	struct json_http_request r = {.method = "GET", .path = "/", .request_id = "id"};
	struct json_writer w;
	json_init(&w);
	json_http_request_event(&w, &r);
	char *s = finish(&w);
	cr_assert_str_eq(s, "{\"resource\":\"/{proxy+}\",\"path\":\"/\",\"httpMethod\":\"GET\","
			    "\"headers\":null,\"multiValueHeaders\":null,"
			    "\"queryStringParameters\":null,"
			    "\"multiValueQueryStringParameters\":null,"
			    "\"pathParameters\":null,\"stageVariables\":null,"
			    "\"requestContext\":{\"resourcePath\":\"/{proxy+}\","
			    "\"httpMethod\":\"GET\",\"path\":\"/\",\"stage\":\"$default\","
			    "\"requestId\":\"id\",\"requestTimeEpoch\":0,"
			    "\"identity\":{\"sourceIp\":null}},"
			    "\"body\":null,\"isBase64Encoded\":false}");
	free(s);
}

Test(fn_json, http_request_event_binary_body)
{
	struct json_http_request r = {.method = "PUT", .path = "/fn/upload", .request_id = "id",
				      .body = "\x89PNG\r\n\x1a\n", .body_len = 8,
				      .body_base64 = true};
	struct json_writer w;
	json_init(&w);
	json_http_request_event(&w, &r);
	char *s = finish(&w);
	cr_assert(strstr(s, "\"body\":\"iVBORw0KGgo=\",\"isBase64Encoded\":true}"), "%s", s);
	free(s);
}

Test(fn_json, queue_batch_event)
{
	struct json_queue_message msgs[] = {
		{.message_id = "1", .body = "{\"job\":1}", .receive_count = 1,
		 .sent_ms = 1710063000000, .first_receive_ms = 1710063000500},
		{.message_id = "2", .receipt_handle = "rh-2", .body = "line1\nline2",
		 .receive_count = 3, .sent_ms = 1, .first_receive_ms = 2},
	};
	struct json_writer w;
	json_init(&w);
	json_queue_batch_event(&w, "arn:corral:queue:local:jobs", msgs, 2);
	char *s = finish(&w);
	cr_assert_str_eq(
		s,
		"{\"Records\":["
		"{\"messageId\":\"1\",\"receiptHandle\":\"1\",\"body\":\"{\\\"job\\\":1}\","
		"\"attributes\":{\"ApproximateReceiveCount\":\"1\","
		"\"SentTimestamp\":\"1710063000000\",\"SenderId\":\"corral-fn\","
		"\"ApproximateFirstReceiveTimestamp\":\"1710063000500\"},"
		"\"messageAttributes\":{},\"eventSource\":\"aws:sqs\","
		"\"eventSourceARN\":\"arn:corral:queue:local:jobs\",\"awsRegion\":\"local\"},"
		"{\"messageId\":\"2\",\"receiptHandle\":\"rh-2\",\"body\":\"line1\\nline2\","
		"\"attributes\":{\"ApproximateReceiveCount\":\"3\",\"SentTimestamp\":\"1\","
		"\"SenderId\":\"corral-fn\",\"ApproximateFirstReceiveTimestamp\":\"2\"},"
		"\"messageAttributes\":{},\"eventSource\":\"aws:sqs\","
		"\"eventSourceARN\":\"arn:corral:queue:local:jobs\",\"awsRegion\":\"local\"}]}");
	free(s);

	json_init(&w);
	json_queue_batch_event(&w, "arn", NULL, 0);
	s = finish(&w);
	cr_assert_str_eq(s, "{\"Records\":[]}");
	free(s);
}

Test(fn_json, scheduled_event)
{
	const char *rules[] = {"arn:corral:events:local:000000000000:rule/nightly-report"};
	struct json_schedule sch = {.id = "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
				    .time = 1710028800, .resources = rules, .n_resources = 1};
	struct json_writer w;
	json_init(&w);
	json_scheduled_event(&w, &sch);
	char *s = finish(&w);
	cr_assert_str_eq(s, "{\"version\":\"0\",\"id\":\"cdc73f9d-aea9-11e3-9d5a-835b769c0d9c\","
			    "\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\","
			    "\"account\":\"000000000000\",\"time\":\"2024-03-10T00:00:00Z\","
			    "\"region\":\"local\",\"resources\":["
			    "\"arn:corral:events:local:000000000000:rule/nightly-report\"],"
			    "\"detail\":{}}");
	free(s);
}

/* An event can be one member of a bigger document (corral-fn's envelope). */
Test(fn_json, event_nested)
{
	struct json_schedule sch = {.id = "x", .time = 0, .account = "123456789012",
				    .region = "eu-west-1"};
	struct json_writer w;
	json_init(&w);
	json_object_begin(&w);
	json_key(&w, "event");
	json_scheduled_event(&w, &sch);
	json_kv_string(&w, "fn", "report");
	json_object_end(&w);
	char *s = finish(&w);
	cr_assert(strstr(s, "\"account\":\"123456789012\",\"time\":\"1970-01-01T00:00:00Z\","
			    "\"region\":\"eu-west-1\",\"resources\":[],\"detail\":{}},"
			    "\"fn\":\"report\"}"),
		  "%s", s);
	free(s);
}
