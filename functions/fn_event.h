/*
 * fn_event.h -- reading events in a function: a small JSON reader and base64.
 *
 * Header-only (static inline) so that a function stays one .c file and one .so.  Not part
 * of the ABI: a function may use any JSON library instead.
 *
 * The reader never allocates while walking and never trusts the input:
 * fn_json_parse() validates the whole document once (RFC 8259 grammar, nesting at most
 * FN_JSON_MAX_DEPTH) and every accessor after it only walks text known to be well formed.
 * A struct fn_json is a view into the caller's text: it stays valid as long as that text.
 *
 *     struct fn_json doc = fn_json_parse(event->json, event->len);
 *     if (!fn_json_ok(doc)) return fn_response_error(resp, 400, "event is not JSON");
 *     char *method = fn_json_cstr(fn_json_path(doc, "httpMethod"));   (malloc'd or NULL)
 *     for (struct fn_json r = fn_json_first(fn_json_path(doc, "Records")); fn_json_ok(r);
 *          r = fn_json_next(r)) ...
 */
#ifndef CORRAL_FUNCTIONS_FN_EVENT_H
#define CORRAL_FUNCTIONS_FN_EVENT_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FN_JSON_MAX_DEPTH 64

enum fn_json_type {
	FN_JSON_NONE, /* absent: a missing key, past the last element, invalid document */
	FN_JSON_NULL,
	FN_JSON_BOOL,
	FN_JSON_NUMBER,
	FN_JSON_STRING,
	FN_JSON_ARRAY,
	FN_JSON_OBJECT,
};

/*
 * One value: its text is [p, end) (strings include their quotes); lim is the end of the
 * validated text around it, so walking past the value stays in bounds.  p == NULL: absent.
 */
struct fn_json {
	const char *p, *end, *lim;
};

/* ---- validation ---------------------------------------------------------------- */

static inline const char *fn_json__ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static inline int fn_json__hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* p at the opening quote; returns the byte after the closing quote, or NULL. */
static inline const char *fn_json__skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		if (++p >= end)
			return NULL;
		if (*p == 'u') {
			if (end - p < 5)
				return NULL;
			for (int i = 1; i <= 4; i++)
				if (fn_json__hex(p[i]) < 0)
					return NULL;
			p += 4;
		} else if (!strchr("\"\\/bfnrt", *p) || *p == '\0') {
			return NULL;
		}
	}
	return NULL;
}

static inline const char *fn_json__skip_digits(const char *p, const char *end)
{
	const char *start = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == start ? NULL : p;
}

static inline const char *fn_json__skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (!(p = fn_json__skip_digits(p, end)))
		return NULL;
	if (p < end && *p == '.' && !(p = fn_json__skip_digits(p + 1, end)))
		return NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!(p = fn_json__skip_digits(p, end)))
			return NULL;
	}
	return p;
}

static inline const char *fn_json__skip_literal(const char *p, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

/* Validates the value at p (no leading whitespace); returns the byte after it, or NULL. */
static inline const char *fn_json__skip(const char *p, const char *end, int depth)
{
	if (p >= end)
		return NULL;
	switch (*p) {
	case '"':
		return fn_json__skip_string(p, end);
	case 't':
		return fn_json__skip_literal(p, end, "true");
	case 'f':
		return fn_json__skip_literal(p, end, "false");
	case 'n':
		return fn_json__skip_literal(p, end, "null");
	case '[':
	case '{': {
		if (depth >= FN_JSON_MAX_DEPTH)
			return NULL;
		char close = *p == '[' ? ']' : '}';
		bool object = *p == '{';
		p = fn_json__ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (object) {
				if (p >= end || *p != '"' || !(p = fn_json__skip_string(p, end)))
					return NULL;
				p = fn_json__ws(p, end);
				if (p >= end || *p != ':')
					return NULL;
				p = fn_json__ws(p + 1, end);
			}
			if (!(p = fn_json__skip(p, end, depth + 1)))
				return NULL;
			p = fn_json__ws(p, end);
			if (p < end && *p == close)
				return p + 1;
			if (p >= end || *p != ',')
				return NULL;
			p = fn_json__ws(p + 1, end);
		}
	}
	default:
		return fn_json__skip_number(p, end);
	}
}

/* The document's root value, or an absent value when text[0..len) is not one JSON value. */
static inline struct fn_json fn_json_parse(const char *text, size_t len)
{
	struct fn_json none = {NULL, NULL, NULL};
	if (!text)
		return none;
	const char *end = text + len;
	const char *p = fn_json__ws(text, end);
	const char *after = fn_json__skip(p, end, 0);
	if (!after || fn_json__ws(after, end) != end)
		return none;
	struct fn_json v = {p, after, end};
	return v;
}

/* ---- walking -------------------------------------------------------------------- */

static inline bool fn_json_ok(struct fn_json v)
{
	return v.p != NULL;
}

static inline enum fn_json_type fn_json_type(struct fn_json v)
{
	if (!v.p)
		return FN_JSON_NONE;
	switch (*v.p) {
	case '"': return FN_JSON_STRING;
	case '{': return FN_JSON_OBJECT;
	case '[': return FN_JSON_ARRAY;
	case 'n': return FN_JSON_NULL;
	case 't': case 'f': return FN_JSON_BOOL;
	default: return FN_JSON_NUMBER;
	}
}

/* The value that starts at p inside validated text that ends at lim. */
static inline struct fn_json fn_json__at(const char *p, const char *lim)
{
	struct fn_json v = {p, fn_json__skip(p, lim, 0), lim};
	return v;
}

/* First element of an array (absent for an empty array or a non-array). */
static inline struct fn_json fn_json_first(struct fn_json arr)
{
	struct fn_json none = {NULL, NULL, NULL};
	if (fn_json_type(arr) != FN_JSON_ARRAY)
		return none;
	const char *p = fn_json__ws(arr.p + 1, arr.end);
	if (*p == ']')
		return none;
	return fn_json__at(p, arr.end);
}

/*
 * The element after el in the same array, absent after the last one.  el must come from
 * fn_json_first() / fn_json_next() of an array: its text is followed by ',' or ']'.
 */
static inline struct fn_json fn_json_next(struct fn_json el)
{
	struct fn_json none = {NULL, NULL, NULL};
	if (!el.p)
		return none;
	/* After an element of a validated array come whitespace and ',' or ']', all before
	 * el.lim (the array's end). */
	const char *p = fn_json__ws(el.end, el.lim);
	if (p >= el.lim || *p != ',')
		return none;
	return fn_json__at(fn_json__ws(p + 1, el.lim), el.lim);
}

static inline size_t fn_json_count(struct fn_json arr)
{
	size_t n = 0;
	for (struct fn_json el = fn_json_first(arr); fn_json_ok(el); el = fn_json_next(el))
		n++;
	return n;
}

/*
 * Decodes the string value v into out[0..cap) and returns its decoded length (which may
 * exceed cap - 1: then out holds a cut prefix).  out is always NUL-terminated when cap > 0.
 * Returns (size_t)-1 when v is not a string.  \u escapes become UTF-8; a lone surrogate
 * becomes U+FFFD; \u0000 becomes a NUL byte inside the length.
 */
static inline size_t fn_json_string(struct fn_json v, char *out, size_t cap)
{
	if (fn_json_type(v) != FN_JSON_STRING)
		return (size_t)-1;
	size_t n = 0;
#define FN_JSON__PUT(ch)                         \
	do {                                     \
		char ch_ = (char)(ch);           \
		if (n + 1 < cap)                 \
			out[n] = ch_;            \
		n++;                             \
	} while (0)
	const char *p = v.p + 1, *end = v.end - 1;
	while (p < end) {
		if (*p != '\\') {
			FN_JSON__PUT(*p++);
			continue;
		}
		p++;
		char e = *p++;
		if (e != 'u') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			FN_JSON__PUT(to[strchr(from, e) - from]);
			continue;
		}
		uint32_t cp = 0;
		for (int i = 0; i < 4; i++)
			cp = cp << 4 | (uint32_t)fn_json__hex(*p++);
		if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
			uint32_t lo = 0;
			for (int i = 2; i < 6; i++)
				lo = lo << 4 | (uint32_t)fn_json__hex(p[i]);
			if (lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
		}
		if (cp >= 0xD800 && cp <= 0xDFFF)
			cp = 0xFFFD;
		if (cp < 0x80) {
			FN_JSON__PUT(cp);
		} else if (cp < 0x800) {
			FN_JSON__PUT(0xC0 | cp >> 6);
			FN_JSON__PUT(0x80 | (cp & 0x3F));
		} else if (cp < 0x10000) {
			FN_JSON__PUT(0xE0 | cp >> 12);
			FN_JSON__PUT(0x80 | (cp >> 6 & 0x3F));
			FN_JSON__PUT(0x80 | (cp & 0x3F));
		} else {
			FN_JSON__PUT(0xF0 | cp >> 18);
			FN_JSON__PUT(0x80 | (cp >> 12 & 0x3F));
			FN_JSON__PUT(0x80 | (cp >> 6 & 0x3F));
			FN_JSON__PUT(0x80 | (cp & 0x3F));
		}
	}
#undef FN_JSON__PUT
	if (cap > 0)
		out[n < cap ? n : cap - 1] = '\0';
	return n;
}

/*
 * The string value v, decoded, in a new malloc'd buffer (NUL-terminated; *len gets the
 * length when len is not NULL).  NULL when v is not a string or memory runs out.
 * The decoded text may hold NUL bytes (\u0000); see fn_json_cstr() for C strings.
 */
static inline char *fn_json_strdup(struct fn_json v, size_t *len)
{
	if (fn_json_type(v) != FN_JSON_STRING)
		return NULL;
	size_t cap = (size_t)(v.end - v.p); /* decoding never grows the text */
	char *s = (char *)malloc(cap);
	if (!s)
		return NULL;
	size_t n = fn_json_string(v, s, cap);
	if (len)
		*len = n;
	return s;
}

/* As fn_json_strdup(), but NULL also when the string holds a NUL byte. */
static inline char *fn_json_cstr(struct fn_json v)
{
	size_t n;
	char *s = fn_json_strdup(v, &n);
	if (s && strlen(s) != n) {
		free(s);
		return NULL;
	}
	return s;
}

/* Whether the string value v decodes to exactly s. */
static inline bool fn_json_streq(struct fn_json v, const char *s)
{
	char buf[256];
	size_t want = strlen(s);
	if (want >= sizeof(buf))
		return false;
	size_t n = fn_json_string(v, buf, sizeof(buf));
	return n == want && memcmp(buf, s, n) == 0;
}

/* Member key of an object (absent if obj is not an object or has no such key). */
static inline struct fn_json fn_json_get(struct fn_json obj, const char *key)
{
	struct fn_json none = {NULL, NULL, NULL};
	if (fn_json_type(obj) != FN_JSON_OBJECT)
		return none;
	const char *p = fn_json__ws(obj.p + 1, obj.end);
	while (*p == '"') {
		struct fn_json k = fn_json__at(p, obj.end);
		p = fn_json__ws(k.end, obj.end) + 1; /* past ':' */
		p = fn_json__ws(p, obj.end);
		struct fn_json v = fn_json__at(p, obj.end);
		if (fn_json_streq(k, key))
			return v;
		p = fn_json__ws(v.end, obj.end);
		if (*p != ',')
			break;
		p = fn_json__ws(p + 1, obj.end);
	}
	return none;
}

/* Walks a dotted path of member keys: fn_json_path(doc, "s3.object.key"). */
static inline struct fn_json fn_json_path(struct fn_json v, const char *path)
{
	char key[256];
	while (fn_json_ok(v) && *path) {
		size_t n = strcspn(path, ".");
		if (n >= sizeof(key)) {
			struct fn_json none = {NULL, NULL, NULL};
			return none;
		}
		memcpy(key, path, n);
		key[n] = '\0';
		v = fn_json_get(v, key);
		path += n + (path[n] == '.');
	}
	return v;
}

/* A number that is an integer in int64_t range (no fraction, no exponent). */
static inline bool fn_json_int(struct fn_json v, int64_t *out)
{
	if (fn_json_type(v) != FN_JSON_NUMBER)
		return false;
	char buf[32];
	size_t n = (size_t)(v.end - v.p);
	if (n >= sizeof(buf) || memchr(v.p, '.', n) || memchr(v.p, 'e', n) || memchr(v.p, 'E', n))
		return false;
	memcpy(buf, v.p, n);
	buf[n] = '\0';
	errno = 0;
	long long x = strtoll(buf, NULL, 10);
	if (errno == ERANGE)
		return false;
	*out = x;
	return true;
}

static inline bool fn_json_number(struct fn_json v, double *out)
{
	if (fn_json_type(v) != FN_JSON_NUMBER)
		return false;
	char buf[64];
	size_t n = (size_t)(v.end - v.p);
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, v.p, n);
	buf[n] = '\0';
	double d = strtod(buf, NULL);
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

/* True only for the literal true. */
static inline bool fn_json_is_true(struct fn_json v)
{
	return v.p && *v.p == 't';
}

/* ---- base64 ---------------------------------------------------------------------- */

/*
 * Decodes standard base64 (RFC 4648, '=' padding optional, whitespace ignored) from
 * in[0..len) into out[0..cap).  Returns the number of bytes written, or -1 on a character
 * outside the alphabet, misplaced padding, a dangling single character, or when out is
 * too small.  (len / 4 * 3 + 3 bytes are always enough.)
 */
static inline long fn_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	size_t n = 0, quantum = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		else if (c == '=') {
			pad++;
			quantum++;
			if (pad > 2 || quantum % 4 == 1 || quantum % 4 == 2)
				return -1;
			continue;
		} else
			return -1;
		if (pad)
			return -1; /* data after padding */
		quantum++;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (quantum % 4 == 1)
		return -1;
	if (pad && quantum % 4 != 0)
		return -1;
	return (long)n;
}

#endif
