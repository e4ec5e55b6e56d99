/*
 * What a function compiles in: functions/fn_event.h (the JSON reader and base64 that the
 * example functions read events with) and the response helpers of functions/corral_fn.h.
 * Bad input must come back as "absent" or an error, never as a read past the text: every
 * document here is parsed from a buffer without a terminating NUL.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "functions/corral_fn.h"
#include "functions/fn_event.h"

/* A copy of s without its NUL, so reading past the end is a heap overflow (ASan). */
static char *exact(const char *s, size_t *len)
{
	*len = strlen(s);
	char *p = malloc(*len ? *len : 1);
	cr_assert_not_null(p);
	memcpy(p, s, *len);
	return p;
}

static bool valid(const char *s)
{
	size_t len;
	char *p = exact(s, &len);
	bool ok = fn_json_ok(fn_json_parse(p, len));
	free(p);
	return ok;
}

static const char api_gateway[] =
	"{ \"resource\": \"/fn/{proxy+}\", \"path\": \"/fn/url_shortener/abc\",\n"
	"  \"httpMethod\": \"POST\", \"headers\": {\"Content-Type\": \"application/json\"},\n"
	"  \"queryStringParameters\": null, \"isBase64Encoded\": false,\n"
	"  \"body\": \"{\\\"url\\\":\\\"https://example.com/a?b=c\\\\u0026d\\\"}\",\n"
	"  \"requestContext\": {\"requestId\": \"r-1\", \"timeEpoch\": 1700000000000},\n"
	"  \"Records\": [ {\"messageId\": \"1\", \"body\": \"x\"}, {\"messageId\": \"2\"}, 3, [] ] }";

Test(fn_host, json_reads_an_api_gateway_event)
{
	size_t len;
	char *text = exact(api_gateway, &len);
	struct fn_json doc = fn_json_parse(text, len);
	cr_assert(fn_json_ok(doc));
	cr_assert_eq(fn_json_type(doc), FN_JSON_OBJECT);
	cr_assert(fn_json_streq(fn_json_path(doc, "httpMethod"), "POST"));
	cr_assert(fn_json_streq(fn_json_path(doc, "headers.Content-Type"), "application/json"));
	cr_assert_eq(fn_json_type(fn_json_path(doc, "queryStringParameters")), FN_JSON_NULL);
	cr_assert_not(fn_json_is_true(fn_json_path(doc, "isBase64Encoded")));
	cr_assert_eq(fn_json_type(fn_json_path(doc, "nope")), FN_JSON_NONE);
	cr_assert_eq(fn_json_type(fn_json_path(doc, "path.deeper")), FN_JSON_NONE);
	int64_t t;
	cr_assert(fn_json_int(fn_json_path(doc, "requestContext.timeEpoch"), &t));
	cr_assert_eq(t, 1700000000000LL);

	/* The body is a JSON document inside a JSON string. */
	size_t blen;
	char *body = fn_json_strdup(fn_json_path(doc, "body"), &blen);
	cr_assert_str_eq(body, "{\"url\":\"https://example.com/a?b=c\\u0026d\"}");
	struct fn_json inner = fn_json_parse(body, blen);
	char *url = fn_json_cstr(fn_json_get(inner, "url"));
	cr_assert_str_eq(url, "https://example.com/a?b=c&d");
	free(url);
	free(body);

	struct fn_json recs = fn_json_path(doc, "Records");
	cr_assert_eq(fn_json_count(recs), 4);
	struct fn_json r = fn_json_first(recs);
	cr_assert(fn_json_streq(fn_json_get(r, "messageId"), "1"));
	r = fn_json_next(r);
	cr_assert(fn_json_streq(fn_json_get(r, "messageId"), "2"));
	cr_assert_not(fn_json_ok(fn_json_get(r, "body")));
	r = fn_json_next(r);
	cr_assert(fn_json_int(r, &t) && t == 3);
	r = fn_json_next(r);
	cr_assert_eq(fn_json_type(r), FN_JSON_ARRAY);
	cr_assert_not(fn_json_ok(fn_json_first(r)), "empty array");
	cr_assert_not(fn_json_ok(fn_json_next(r)), "past the last element");
	cr_assert_eq(fn_json_count(fn_json_path(doc, "path")), 0, "not an array");
	free(text);
}

Test(fn_host, json_strings)
{
	size_t len;
	char *text = exact("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\\ud83d\\ude00\", "
			   "\"\\ud800x\", \"nul\\u0000byte\", \"caf\xc3\xa9\"]",
			   &len);
	struct fn_json doc = fn_json_parse(text, len);
	cr_assert(fn_json_ok(doc));
	struct fn_json s = fn_json_first(doc);
	char *c = fn_json_cstr(s);
	cr_assert_str_eq(c, "a\"b\\c/d\b\f\n\r\t");
	free(c);
	s = fn_json_next(s);
	c = fn_json_cstr(s);
	cr_assert_str_eq(c, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "BMP, euro and a surrogate pair");
	free(c);
	s = fn_json_next(s);
	c = fn_json_cstr(s);
	cr_assert_str_eq(c, "\xef\xbf\xbdx", "a lone surrogate becomes U+FFFD");
	free(c);
	s = fn_json_next(s);
	cr_assert_null(fn_json_cstr(s), "no C string with a NUL inside");
	size_t n;
	c = fn_json_strdup(s, &n);
	cr_assert_eq(n, 8);
	cr_assert_eq(memcmp(c, "nul\0byte", 8), 0);
	free(c);
	s = fn_json_next(s);
	char small[4];
	cr_assert_eq(fn_json_string(s, small, sizeof(small)), 5, "full length even when cut");
	cr_assert_str_eq(small, "caf");
	cr_assert_eq(fn_json_string(doc, small, sizeof(small)), (size_t)-1, "not a string");
	free(text);
}

Test(fn_host, json_refuses_malformed_documents)
{
	const char *bad[] = {
		"", " ", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
		"\"unterminated", "\"ctl\x01\"", "\"bad\\x\"", "\"\\u12g4\"", "\"\\u12\"", "01",
		"1.", ".5", "-", "+1", "1e", "tru", "nulls", "[1] [2]", "{\"a\":1}x", "[\"a\" \"b\"]",
		"\"\\", "[1,2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(valid(bad[i]), "accepted: %s", bad[i]);
	const char *good[] = {
		"0", "-0.5e+10", "1E3", "true", "null", " [ ] ", "{}", "\"\"", "[{\"a\":[{}]}]",
		"{\"\\u0061\":1}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(valid(good[i]), "refused: %s", good[i]);

	/* Nesting is bounded, so a hostile document cannot exhaust the stack. */
	char deep[2 * (FN_JSON_MAX_DEPTH + 2) + 1];
	size_t d = FN_JSON_MAX_DEPTH + 2;
	memset(deep, '[', d);
	memset(deep + d, ']', d);
	deep[2 * d] = '\0';
	cr_assert_not(valid(deep));
	memset(deep, '[', FN_JSON_MAX_DEPTH);
	memset(deep + FN_JSON_MAX_DEPTH, ']', FN_JSON_MAX_DEPTH);
	deep[2 * FN_JSON_MAX_DEPTH] = '\0';
	cr_assert(valid(deep));

	/* An escaped key matches its decoded name. */
	size_t len;
	char *text = exact("{\"\\u0061\":7}", &len);
	int64_t v = 0;
	cr_assert(fn_json_int(fn_json_get(fn_json_parse(text, len), "a"), &v));
	cr_assert_eq(v, 7);
	free(text);
	cr_assert_not(fn_json_ok(fn_json_parse(NULL, 0)));
}

Test(fn_host, json_numbers)
{
	size_t len;
	char *text = exact("[9223372036854775807, 9223372036854775808, -12, 1.5, 2e3, true]", &len);
	struct fn_json el = fn_json_first(fn_json_parse(text, len));
	int64_t i;
	double d;
	cr_assert(fn_json_int(el, &i) && i == INT64_MAX);
	el = fn_json_next(el);
	cr_assert_not(fn_json_int(el, &i), "out of range");
	el = fn_json_next(el);
	cr_assert(fn_json_int(el, &i) && i == -12);
	el = fn_json_next(el);
	cr_assert_not(fn_json_int(el, &i), "a fraction is not an integer");
	cr_assert(fn_json_number(el, &d) && d == 1.5);
	el = fn_json_next(el);
	cr_assert(fn_json_number(el, &d) && d == 2000);
	el = fn_json_next(el);
	cr_assert(fn_json_is_true(el));
	cr_assert_not(fn_json_number(el, &d));
	free(text);
}

static long b64(const char *in, char *out, size_t cap)
{
	long n = fn_base64_decode(in, strlen(in), (unsigned char *)out, cap);
	if (n >= 0 && (size_t)n < cap)
		out[n] = '\0';
	return n;
}

Test(fn_host, base64)
{
	/* RFC 4648 section 10 */
	const char *vec[][2] = {
		{"", ""},         {"Zg==", "f"},     {"Zm8=", "fo"},       {"Zm9v", "foo"},
		{"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
		{"Zm9vYg", "foob"}, {"Zm9v\nYmFy", "foobar"},
	};
	char out[16];
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		cr_assert_eq(b64(vec[i][0], out, sizeof(out)), (long)strlen(vec[i][1]), "%s", vec[i][0]);
		cr_assert_str_eq(out, vec[i][1]);
	}
	const char *bad[] = {"Z", "Zg=", "Z===", "=Zg=", "Zg==Zg==", "Zm9v!", "Zg==="};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(b64(bad[i], out, sizeof(out)), -1, "accepted %s", bad[i]);
	cr_assert_eq(b64("Zm9vYmFy", out, 5), -1, "output too small");
	unsigned char png[8];
	cr_assert_eq(fn_base64_decode("iVBORw0KGgo=", 12, png, sizeof(png)), 8);
	cr_assert_eq(memcmp(png, "\x89PNG\r\n\x1a\n", 8), 0);
}

static void response_init(struct fn_response *r)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->status = 200;
	strcpy(r->content_type, "application/json");
}

Test(fn_host, response_helpers)
{
	struct fn_response r;
	response_init(&r);
	cr_assert_eq(fn_response_printf(&r, "{\"n\":%d,\"s\":", 42), FN_OK);
	cr_assert_eq(fn_response_json_string(&r, "a\"b\\c\n\x01\xc3\xa9"), FN_OK);
	cr_assert_eq(fn_response_write(&r, "}", 1), FN_OK);
	cr_assert_eq(r.body_len, strlen("{\"n\":42,\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"}"));
	cr_assert_eq(memcmp(r.body, "{\"n\":42,\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"}", r.body_len), 0);

	cr_assert_eq(fn_response_header(&r, "Location", "https://e.com/x"), FN_OK);
	cr_assert_eq(fn_response_header(&r, "X-Empty", ""), FN_OK);
	cr_assert_eq(fn_response_header(&r, "Bad Name", "v"), FN_ERROR);
	cr_assert_eq(fn_response_header(&r, "", "v"), FN_ERROR);
	cr_assert_eq(fn_response_header(&r, "X-Split", "a\r\nSet-Cookie: b"), FN_ERROR);
	cr_assert_eq(r.n_headers, 2);
	cr_assert_eq(r.headers_len, sizeof("Location\0https://e.com/x\0X-Empty\0") /* counts its NUL */);
	for (int i = 2; i < FN_HEADERS_MAX; i++)
		cr_assert_eq(fn_response_header(&r, "X-N", "1"), FN_OK);
	cr_assert_eq(fn_response_header(&r, "X-One-Too-Many", "1"), FN_ERROR);

	cr_assert_eq(fn_response_content_type(&r, "text/plain; charset=utf-8"), FN_OK);
	cr_assert_str_eq(r.content_type, "text/plain; charset=utf-8");
	cr_assert_eq(fn_response_content_type(&r, "text/html\r\nX: y"), FN_ERROR);
	cr_assert_str_eq(r.content_type, "text/plain; charset=utf-8", "unchanged after a refusal");

	cr_assert_eq(fn_response_error(&r, 404, "no such \"code\""), FN_OK);
	cr_assert_eq(r.status, 404);
	cr_assert_str_eq(r.content_type, "application/json");
	cr_assert_eq(r.body_len, strlen("{\"error\":\"no such \\\"code\\\"\"}"));

	cr_assert_eq(fn_fail(&r, "db: %s", "gone"), FN_ERROR);
	cr_assert_str_eq(r.error, "db: gone");
	free(r.body);
	free(r.headers);
}

Test(fn_host, response_body_limit)
{
	struct fn_response r;
	response_init(&r);
	char *big = malloc(FN_BODY_MAX);
	cr_assert_not_null(big);
	memset(big, 'x', FN_BODY_MAX);
	cr_assert_eq(fn_response_write(&r, big, FN_BODY_MAX - 1), FN_OK);
	cr_assert_eq(fn_response_write(&r, "ab", 2), FN_ERROR);
	cr_assert_eq(fn_response_printf(&r, "%s", "ab"), FN_ERROR);
	cr_assert_eq(fn_response_json_string(&r, ""), FN_ERROR);
	cr_assert_eq(r.body_len, FN_BODY_MAX - 1, "a refused write leaves the body as it was");
	cr_assert_eq(fn_response_printf(&r, "%c", 'z'), FN_OK);
	cr_assert_eq(r.body_len, FN_BODY_MAX);
	cr_assert_eq(r.body[FN_BODY_MAX - 1], 'z');
	fn_response_clear_body(&r);
	cr_assert_eq(r.body_len, 0);
	free(big);
	free(r.body);
}
