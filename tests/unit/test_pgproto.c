/*
 * proxy/pgproto.c, the wire codec: startup packet length and layout checks, header
 * peeking on partial and chain-split evbuffers, the bounds of pg_reader, and every
 * message builder parsed back byte by byte.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/pgproto.h"

/* ---- helpers ------------------------------------------------------------------ */

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A startup packet under construction; the length is written by pkt_finish(). */
struct pkt {
	uint8_t data[PG_MAX_STARTUP_PACKET + 64];
	size_t len;
};

static void pkt_begin(struct pkt *p, uint32_t code)
{
	memset(p, 0, sizeof(*p));
	p->len = 8;
	be32(p->data + 4, code);
}

static void pkt_raw(struct pkt *p, const void *bytes, size_t n)
{
	cr_assert_leq(p->len + n, sizeof(p->data));
	memcpy(p->data + p->len, bytes, n);
	p->len += n;
}

/* s with its NUL */
static void pkt_str(struct pkt *p, const char *s)
{
	pkt_raw(p, s, strlen(s) + 1);
}

static void pkt_int32(struct pkt *p, uint32_t v)
{
	uint8_t b[4];
	be32(b, v);
	pkt_raw(p, b, 4);
}

static void pkt_finish(struct pkt *p)
{
	be32(p->data, (uint32_t)p->len);
}

/* A whole packet: code, each of strs (NULL-ended) with its NUL, then raw_tail's bytes without one. */
static void pkt_build(struct pkt *p, uint32_t code, const char *const *strs, const char *raw_tail)
{
	pkt_begin(p, code);
	for (; *strs != NULL; strs++)
		pkt_str(p, *strs);
	if (raw_tail != NULL)
		pkt_raw(p, raw_tail, strlen(raw_tail));
	pkt_finish(p);
}

#define STRS(...) ((const char *const[]){__VA_ARGS__, NULL})
static const char *const NO_STRS[] = {NULL};

/* Parses p into st; it must succeed. */
static void parse_ok(const struct pkt *p, struct pg_startup *st)
{
	const char *why = NULL;
	cr_assert(pgproto_parse_startup(p->data, p->len, st, &why), "%s", why);
}

/* Parses p; it must fail.  Returns the reason. */
static const char *parse_error(const struct pkt *p)
{
	struct pg_startup st;
	const char *why = NULL;
	cr_assert_not(pgproto_parse_startup(p->data, p->len, &st, &why));
	cr_assert_not_null(why);
	return why;
}

/* Counts the chains holding buf's data (evbuffer_peek with no vectors). */
static int n_chains(struct evbuffer *buf)
{
	return evbuffer_peek(buf, -1, NULL, NULL, 0);
}

/* A buffer whose bytes are bytes[0..n), split into separate chains at each cut. */
static struct evbuffer *split_buffer(const uint8_t *bytes, size_t n, const size_t *cuts,
				     size_t n_cuts)
{
	struct evbuffer *buf = evbuffer_new();
	cr_assert_not_null(buf);
	size_t from = 0;
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t to = i < n_cuts ? cuts[i] : n;
		if (to > from)
			cr_assert_eq(evbuffer_add_reference(buf, bytes + from, to - from, NULL,
							    NULL),
				     0);
		from = to;
	}
	cr_assert_eq(evbuffer_get_length(buf), n);
	return buf;
}

/*
 * Takes the next whole message off buf: checks its type and length field, copies
 * the body into body[] (at most cap bytes) and points r at it.
 */
static void take_msg(struct evbuffer *buf, char want_type, uint8_t *body, size_t cap,
		     struct pg_reader *r)
{
	char type = 0;
	uint32_t len = 0;
	cr_assert_eq(pgproto_peek_header(buf, &type, &len), PG_PARSE_OK);
	cr_assert_eq(type, want_type, "type '%c', want '%c'", type, want_type);
	cr_assert_geq(evbuffer_get_length(buf), (size_t)len + 1, "message shorter than its length");
	cr_assert_leq(len - 4, cap);
	cr_assert_eq(evbuffer_drain(buf, PG_HEADER_LEN), 0);
	cr_assert_eq(evbuffer_remove(buf, body, len - 4), (int)(len - 4));
	pg_reader_init(r, body, len - 4);
}

static void expect_str(struct pg_reader *r, const char *want)
{
	const char *s = pg_read_string(r);
	cr_assert_not(r->bad, "no string where \"%s\" was expected", want);
	cr_assert_str_eq(s, want);
}

static void expect_end(struct pg_reader *r)
{
	cr_assert_not(r->bad);
	cr_assert_eq(r->p, r->end, "%td bytes left in the body", r->end - r->p);
}

static void expect_bytes(struct evbuffer *buf, const void *want, size_t n)
{
	cr_assert_eq(evbuffer_get_length(buf), n, "length %zu, want %zu",
		     evbuffer_get_length(buf), n);
	const uint8_t *got = evbuffer_pullup(buf, -1);
	cr_assert_not_null(got);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(got[i], ((const uint8_t *)want)[i], "byte %zu: %02x, want %02x", i,
			     got[i], ((const uint8_t *)want)[i]);
}

/* ---- startup length ------------------------------------------------------------ */

static enum pg_parse_result startup_length_of(const uint8_t *bytes, size_t n, uint32_t *len,
					      const char **why)
{
	struct evbuffer *buf = evbuffer_new();
	cr_assert_not_null(buf);
	evbuffer_add(buf, bytes, n);
	*why = NULL;
	enum pg_parse_result pr = pgproto_startup_length(buf, len, why);
	evbuffer_free(buf);
	return pr;
}

static enum pg_parse_result startup_length_value(uint32_t v, uint32_t *len, const char **why)
{
	uint8_t b[4];
	be32(b, v);
	return startup_length_of(b, 4, len, why);
}

Test(startup_length, fewer_than_four_bytes_is_incomplete)
{
	static const uint8_t bytes[4] = {0, 0, 0, 8};
	uint32_t len = 12345;
	const char *why;
	for (size_t n = 0; n < 4; n++) {
		cr_assert_eq(startup_length_of(bytes, n, &len, &why), PG_PARSE_INCOMPLETE, "n=%zu", n);
		cr_assert_null(why);
	}
}

Test(startup_length, bounds)
{
	uint32_t len;
	const char *why;
	static const uint32_t bad[] = {0, 1, 4, 7, PG_MAX_STARTUP_PACKET + 1, 0x7fffffff,
				       0x80000000, 0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cr_assert_eq(startup_length_value(bad[i], &len, &why), PG_PARSE_ERROR, "len %u",
			     bad[i]);
		cr_assert_str_eq(why, "invalid length of startup packet");
	}
	static const uint32_t good[] = {8, 9, 16, PG_MAX_STARTUP_PACKET};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		cr_assert_eq(startup_length_value(good[i], &len, &why), PG_PARSE_OK, "len %u",
			     good[i]);
		cr_assert_eq(len, good[i]);
	}
}

/* The length is known from the first four bytes; waiting for the rest is the caller's. */
Test(startup_length, known_before_the_packet_is_complete)
{
	static const uint8_t bytes[] = {0, 0, 0, 100, 0, 3};
	uint32_t len = 0;
	const char *why;
	cr_assert_eq(startup_length_of(bytes, sizeof(bytes), &len, &why), PG_PARSE_OK);
	cr_assert_eq(len, 100);
}

Test(startup_length, split_across_chains)
{
	static const uint8_t bytes[] = {0, 0, 0x01, 0x2c, 0, 3, 0, 0};
	for (size_t cut = 1; cut < 4; cut++) {
		size_t cuts[] = {cut, cut + 1};
		struct evbuffer *buf = split_buffer(bytes, sizeof(bytes), cuts, 2);
		cr_assert_geq(n_chains(buf), 3);
		uint32_t len = 0;
		const char *why = NULL;
		cr_assert_eq(pgproto_startup_length(buf, &len, &why), PG_PARSE_OK, "cut %zu", cut);
		cr_assert_eq(len, 300);
		evbuffer_free(buf);
	}
}

/* ---- StartupMessage ------------------------------------------------------------- */

Test(startup_parse, params)
{
	struct pkt p;
	struct pg_startup st;
	pkt_build(&p, PG_PROTOCOL_LATEST,
		  STRS("user", "alice", "database", "shop", "application_name", "", "options",
		       "-c search_path=x", ""),
		  NULL);

	parse_ok(&p, &st);
	cr_assert_eq(st.code, PG_PROTOCOL(3, 0));
	cr_assert_eq(st.n_params, 4);
	cr_assert_str_eq(st.names[0], "user");
	cr_assert_str_eq(st.values[0], "alice");
	cr_assert_str_eq(st.names[3], "options");
	cr_assert_str_eq(st.values[3], "-c search_path=x");
	cr_assert_str_eq(pgproto_startup_param(&st, "user"), "alice");
	cr_assert_str_eq(pgproto_startup_param(&st, "database"), "shop");
	cr_assert_str_eq(pgproto_startup_param(&st, "application_name"), "");
	cr_assert_null(pgproto_startup_param(&st, "replication"));
	/* startup parameter names are matched exactly, as PostgreSQL does */
	cr_assert_null(pgproto_startup_param(&st, "USER"));
	/* names and values point into the caller's packet */
	for (size_t i = 0; i < st.n_params; i++) {
		cr_assert((const uint8_t *)st.names[i] > p.data &&
			  (const uint8_t *)st.names[i] < p.data + p.len);
		cr_assert((const uint8_t *)st.values[i] > p.data &&
			  (const uint8_t *)st.values[i] < p.data + p.len);
	}
}

Test(startup_parse, no_params)
{
	struct pkt p;
	struct pg_startup st;
	pkt_build(&p, PG_PROTOCOL_LATEST, STRS(""), NULL);
	parse_ok(&p, &st);
	cr_assert_eq(st.n_params, 0);
	cr_assert_null(pgproto_startup_param(&st, "user"));
}

Test(startup_parse, newer_minor_version_parses)
{
	struct pkt p;
	struct pg_startup st;
	pkt_build(&p, PG_PROTOCOL(3, 2), STRS("user", "bob", "_pq_.compression", "on", ""), NULL);
	parse_ok(&p, &st);
	cr_assert_eq(st.code, PG_PROTOCOL(3, 2));
	cr_assert_eq(st.n_params, 2);
	cr_assert_str_eq(pgproto_startup_param(&st, "_pq_.compression"), "on");
}

/* A v3 packet of strs and raw_tail (as pkt_build) is refused for its layout. */
static void expect_layout_error(const char *const *strs, const char *raw_tail)
{
	struct pkt p;
	pkt_build(&p, PG_PROTOCOL_LATEST, strs, raw_tail);
	cr_assert_str_eq(parse_error(&p),
			 "invalid startup packet layout: expected terminator as last byte");
}

Test(startup_parse, v3_without_any_body)
{
	expect_layout_error(NO_STRS, NULL);
}

Test(startup_parse, missing_terminator)
{
	expect_layout_error(STRS("user", "alice"), NULL);
}

Test(startup_parse, unterminated_name)
{
	expect_layout_error(STRS("user", "alice"), "database");
}

Test(startup_parse, unterminated_value)
{
	expect_layout_error(STRS("user"), "alice");
}

/* A name without its value, then the terminator: the "value" eats the terminator. */
Test(startup_parse, name_without_value)
{
	expect_layout_error(STRS("user", ""), NULL);
}

Test(startup_parse, bytes_after_terminator)
{
	expect_layout_error(STRS("user", "alice", "", "database", "shop"), NULL);
}

static void pkt_n_params(struct pkt *p, size_t n)
{
	pkt_begin(p, PG_PROTOCOL_LATEST);
	for (size_t i = 0; i < n; i++) {
		char name[32], value[32];
		snprintf(name, sizeof(name), "p%zu", i);
		snprintf(value, sizeof(value), "v%zu", i);
		pkt_str(p, name);
		pkt_str(p, value);
	}
	pkt_str(p, "");
	pkt_finish(p);
}

Test(startup_parse, too_many_params)
{
	struct pkt p;
	struct pg_startup st;

	pkt_n_params(&p, PG_MAX_STARTUP_PARAMS);
	parse_ok(&p, &st);
	cr_assert_eq(st.n_params, PG_MAX_STARTUP_PARAMS);
	cr_assert_str_eq(pgproto_startup_param(&st, "p63"), "v63");

	pkt_n_params(&p, PG_MAX_STARTUP_PARAMS + 1);
	cr_assert_str_eq(parse_error(&p), "too many parameters in startup packet");
}

Test(startup_parse, ssl_and_gssenc_requests)
{
	struct pkt p;
	struct pg_startup st;
	pkt_begin(&p, PG_SSL_REQUEST_CODE);
	pkt_finish(&p);
	cr_assert_eq(p.len, 8);
	parse_ok(&p, &st);
	cr_assert_eq(st.code, PG_SSL_REQUEST_CODE);
	cr_assert_eq(st.code, 80877103); /* the number libpq sends */
	cr_assert_eq(st.n_params, 0);

	pkt_begin(&p, PG_GSSENC_REQUEST_CODE);
	pkt_finish(&p);
	parse_ok(&p, &st);
	cr_assert_eq(st.code, PG_GSSENC_REQUEST_CODE);
	cr_assert_eq(st.code, 80877104);
}

Test(startup_parse, cancel_request)
{
	struct pkt p;
	struct pg_startup st;
	pkt_begin(&p, PG_CANCEL_REQUEST_CODE);
	pkt_int32(&p, 0x01020304);
	pkt_int32(&p, 0xfedcba98);
	pkt_finish(&p);
	cr_assert_eq(p.len, 16);
	parse_ok(&p, &st);
	cr_assert_eq(st.code, PG_CANCEL_REQUEST_CODE);
	cr_assert_eq(st.code, 80877102);
	cr_assert_eq(st.cancel_pid, 0x01020304);
	cr_assert_eq(st.cancel_key, 0xfedcba98);
	cr_assert_eq(st.n_params, 0);
}

Test(startup_parse, short_cancel_request)
{
	struct pkt p;
	pkt_begin(&p, PG_CANCEL_REQUEST_CODE);
	pkt_int32(&p, 42);
	pkt_raw(&p, "\x01\x02\x03", 3);
	pkt_finish(&p);
	cr_assert_str_eq(parse_error(&p), "invalid length of cancel request packet");

	pkt_begin(&p, PG_CANCEL_REQUEST_CODE);
	pkt_finish(&p);
	parse_error(&p);
}

/* Protocol 2.0 (and anything not 3.x) parses; the caller answers with its own error. */
Test(startup_parse, other_versions_left_to_the_caller)
{
	struct pkt p;
	struct pg_startup st;
	pkt_build(&p, PG_PROTOCOL(2, 0), NO_STRS, "garbage without any NUL");
	parse_ok(&p, &st);
	cr_assert_eq(st.code, PG_PROTOCOL(2, 0));
	cr_assert_eq(st.n_params, 0);

	pkt_begin(&p, PG_PROTOCOL(4, 0));
	pkt_finish(&p);
	parse_ok(&p, &st);
	cr_assert_eq(st.code, PG_PROTOCOL(4, 0));
}

/* Straight from an evbuffer, the way client.c hands it over. */
Test(startup_parse, from_evbuffer_with_length_check)
{
	struct pkt p;
	pkt_build(&p, PG_PROTOCOL_LATEST, STRS("user", "carol", ""), NULL);
	size_t cuts[] = {2, 6, 11};
	struct evbuffer *buf = split_buffer(p.data, p.len, cuts, ARRAY_SIZE(cuts));
	uint32_t len;
	const char *why = NULL;
	cr_assert_eq(pgproto_startup_length(buf, &len, &why), PG_PARSE_OK);
	cr_assert_eq(len, p.len);
	struct pg_startup st;
	const uint8_t *data = evbuffer_pullup(buf, len);
	cr_assert_not_null(data);
	cr_assert(pgproto_parse_startup(data, len, &st, &why), "%s", why);
	cr_assert_str_eq(pgproto_startup_param(&st, "user"), "carol");
	evbuffer_free(buf);
}

/* ---- message headers ------------------------------------------------------------ */

Test(peek_header, fewer_than_five_bytes_is_incomplete)
{
	static const uint8_t bytes[5] = {'Z', 0, 0, 0, 5};
	for (size_t n = 0; n < 5; n++) {
		struct evbuffer *buf = evbuffer_new();
		evbuffer_add(buf, bytes, n);
		char type = 0;
		uint32_t len = 0;
		cr_assert_eq(pgproto_peek_header(buf, &type, &len), PG_PARSE_INCOMPLETE, "n=%zu", n);
		cr_assert_eq(pgproto_peek_header_at(buf, 0, &type, &len), PG_PARSE_INCOMPLETE,
			     "n=%zu", n);
		cr_assert_eq(evbuffer_get_length(buf), n, "peeking must not consume");
		evbuffer_free(buf);
	}
}

/* Both ways of peeking see a complete header of want_type and want_len at the head of buf. */
static void expect_head(struct evbuffer *buf, char want_type, uint32_t want_len)
{
	char type = 0;
	uint32_t len = 0;
	cr_assert_eq(pgproto_peek_header(buf, &type, &len), PG_PARSE_OK);
	cr_assert_eq(type, want_type);
	cr_assert_eq(len, want_len);
	type = 0;
	len = 0;
	cr_assert_eq(pgproto_peek_header_at(buf, 0, &type, &len), PG_PARSE_OK);
	cr_assert_eq(type, want_type);
	cr_assert_eq(len, want_len);
}

/* The header is enough; the body may not have arrived. */
Test(peek_header, header_without_body)
{
	static const uint8_t bytes[] = {'D', 0, 0, 0x10, 0, 0, 1};
	struct evbuffer *buf = evbuffer_new();
	evbuffer_add(buf, bytes, sizeof(bytes));
	expect_head(buf, 'D', 0x1000);
	cr_assert_eq(evbuffer_get_length(buf), sizeof(bytes));
	evbuffer_free(buf);
}

Test(peek_header, length_below_four_rejected)
{
	for (uint32_t v = 0; v <= 4; v++) {
		uint8_t bytes[5] = {'Q'};
		be32(bytes + 1, v);
		struct evbuffer *buf = evbuffer_new();
		evbuffer_add(buf, bytes, sizeof(bytes));
		char type;
		uint32_t len;
		enum pg_parse_result want = v < 4 ? PG_PARSE_ERROR : PG_PARSE_OK;
		cr_assert_eq(pgproto_peek_header(buf, &type, &len), want, "len %u", v);
		cr_assert_eq(pgproto_peek_header_at(buf, 0, &type, &len), want, "len %u", v);
		evbuffer_free(buf);
	}
}

/* Huge lengths come back as they are: checking them against the maximum is the caller's. */
Test(peek_header, huge_lengths_reported_as_is)
{
	static const uint32_t huge[] = {0x7fffffff, 0x80000000, 0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(huge); i++) {
		uint8_t bytes[5] = {'d'};
		be32(bytes + 1, huge[i]);
		struct evbuffer *buf = evbuffer_new();
		evbuffer_add(buf, bytes, sizeof(bytes));
		expect_head(buf, 'd', huge[i]);
		evbuffer_free(buf);
	}
}

/* Every way of splitting a header over two or three chains, at offset 0 and further in. */
Test(peek_header, split_across_chains)
{
	/* a 1-byte-body message, then a header for a 0x00012345-byte message */
	static const uint8_t bytes[] = {'Z', 0, 0, 0, 5, 'I', 'T', 0, 0x01, 0x23, 0x45};
	for (size_t a = 1; a < sizeof(bytes); a++) {
		for (size_t b = a; b < sizeof(bytes); b++) {
			size_t cuts[] = {a, b};
			struct evbuffer *buf = split_buffer(bytes, sizeof(bytes), cuts, 2);
			cr_assert_geq(n_chains(buf), a == b ? 2 : 3);
			expect_head(buf, 'Z', 5);
			char type = 0;
			uint32_t len = 0;
			cr_assert_eq(pgproto_peek_header_at(buf, 6, &type, &len), PG_PARSE_OK,
				     "cuts %zu %zu", a, b);
			cr_assert_eq(type, 'T', "cuts %zu %zu", a, b);
			cr_assert_eq(len, 0x00012345, "cuts %zu %zu", a, b);
			evbuffer_free(buf);
		}
	}
}

/* Byte by byte through evbuffer_add_buffer, the way data arrives from a socket. */
Test(peek_header, arriving_one_byte_at_a_time)
{
	static const uint8_t bytes[] = {'S', 0, 0, 0, 6, 'a', 0, 'C', 0, 0, 0, 4};
	struct evbuffer *buf = evbuffer_new();
	for (size_t n = 1; n <= sizeof(bytes); n++) {
		struct evbuffer *piece = evbuffer_new();
		evbuffer_add_reference(piece, bytes + n - 1, 1, NULL, NULL);
		evbuffer_add_buffer(buf, piece);
		evbuffer_free(piece);
		char type;
		uint32_t len;
		enum pg_parse_result first = pgproto_peek_header_at(buf, 0, &type, &len);
		cr_assert_eq(first, n < 5 ? PG_PARSE_INCOMPLETE : PG_PARSE_OK, "n=%zu", n);
		enum pg_parse_result second = pgproto_peek_header_at(buf, 7, &type, &len);
		cr_assert_eq(second, n < 12 ? PG_PARSE_INCOMPLETE : PG_PARSE_OK, "n=%zu", n);
	}
	char type;
	uint32_t len;
	cr_assert_eq(pgproto_peek_header_at(buf, 7, &type, &len), PG_PARSE_OK);
	cr_assert_eq(type, 'C');
	cr_assert_eq(len, 4);
	evbuffer_free(buf);
}

Test(peek_header, offset_past_the_end)
{
	static const uint8_t bytes[] = {'X', 0, 0, 0, 4, 'X', 0, 0, 0, 4};
	struct evbuffer *buf = evbuffer_new();
	evbuffer_add(buf, bytes, sizeof(bytes));
	char type;
	uint32_t len;
	cr_assert_eq(pgproto_peek_header_at(buf, 5, &type, &len), PG_PARSE_OK);
	for (size_t off = 6; off <= 20; off++)
		cr_assert_eq(pgproto_peek_header_at(buf, off, &type, &len), PG_PARSE_INCOMPLETE,
			     "off %zu", off);
	/* offset + 5 would wrap around */
	cr_assert_eq(pgproto_peek_header_at(buf, SIZE_MAX, &type, &len), PG_PARSE_INCOMPLETE);
	cr_assert_eq(pgproto_peek_header_at(buf, SIZE_MAX - 4, &type, &len),
		     PG_PARSE_INCOMPLETE);
	evbuffer_free(buf);
}

/* Walking a stream of builder output by headers, as relay.c does. */
Test(peek_header, walk_a_stream)
{
	struct evbuffer *buf = evbuffer_new();
	pgproto_put_auth(buf, PG_AUTH_OK, NULL, 0);
	pgproto_put_parameter_status(buf, "server_version", "15.4");
	pgproto_put_backend_key(buf, 1, 2);
	pgproto_put_ready(buf, 'I');
	pgproto_put_terminate(buf);
	static const char want_types[] = {'R', 'S', 'K', 'Z', 'X'};
	static const uint32_t want_lens[] = {8, 4 + 15 + 5, 12, 5, 4};
	size_t off = 0, i = 0;
	char type;
	uint32_t len;
	while (pgproto_peek_header_at(buf, off, &type, &len) == PG_PARSE_OK) {
		cr_assert_lt(i, ARRAY_SIZE(want_types));
		cr_assert_eq(type, want_types[i]);
		cr_assert_eq(len, want_lens[i]);
		off += (size_t)len + 1;
		i++;
	}
	cr_assert_eq(i, ARRAY_SIZE(want_types));
	cr_assert_eq(off, evbuffer_get_length(buf));
	evbuffer_free(buf);
}

/* ---- pg_reader ------------------------------------------------------------------ */

Test(pg_reader, bytes_and_int32)
{
	static const uint8_t body[] = {0x7f, 0x80, 0x00, 0x00, 0x01, 0xff};
	struct pg_reader r;
	pg_reader_init(&r, body, sizeof(body));
	cr_assert_eq(pg_read_byte(&r), 0x7f);
	cr_assert_eq(pg_read_int32(&r), 0x80000001);
	cr_assert_eq(pg_read_byte(&r), 0xff);
	expect_end(&r);
	cr_assert_eq(pg_read_byte(&r), 0);
	cr_assert(r.bad);
	cr_assert_eq(r.p, r.end);
}

Test(pg_reader, int32_past_end)
{
	static const uint8_t body[] = {1, 2, 3};
	struct pg_reader r;
	pg_reader_init(&r, body, sizeof(body));
	cr_assert_eq(pg_read_int32(&r), 0);
	cr_assert(r.bad);
	cr_assert_eq(r.p, body, "a failed read must not move the cursor");
}

/* Once bad, every later read fails, even where data remains. */
Test(pg_reader, bad_is_sticky)
{
	static const uint8_t body[] = {'a', 0, 1, 2, 3, 4};
	struct pg_reader r;
	pg_reader_init(&r, body, sizeof(body));
	cr_assert_null(pg_read_bytes(&r, 7));
	cr_assert(r.bad);
	cr_assert_eq(pg_read_byte(&r), 0);
	cr_assert_eq(pg_read_int32(&r), 0);
	cr_assert_null(pg_read_string(&r));
	cr_assert_null(pg_read_bytes(&r, 1));
	cr_assert(r.bad);
	cr_assert_eq(r.p, body);
}

Test(pg_reader, strings)
{
	static const uint8_t body[] = {'a', 'b', 0, 0, 'c', 0};
	struct pg_reader r;
	pg_reader_init(&r, body, sizeof(body));
	expect_str(&r, "ab");
	expect_str(&r, "");
	expect_str(&r, "c");
	expect_end(&r);
	cr_assert_null(pg_read_string(&r));
	cr_assert(r.bad);
}

Test(pg_reader, string_without_nul)
{
	static const uint8_t body[] = {'a', 0, 'b', 'c', 0};
	struct pg_reader r;
	/* the NUL after "bc" lies outside the body: it must not be found */
	pg_reader_init(&r, body, sizeof(body) - 1);
	expect_str(&r, "a");
	cr_assert_null(pg_read_string(&r));
	cr_assert(r.bad);
}

Test(pg_reader, read_bytes_bounds)
{
	static const uint8_t body[] = {1, 2, 3, 4, 5};
	struct pg_reader r;
	pg_reader_init(&r, body, sizeof(body));
	const uint8_t *p = pg_read_bytes(&r, 0);
	cr_assert_eq(p, body);
	cr_assert_eq(pg_read_bytes(&r, 2), body);
	cr_assert_eq(pg_read_bytes(&r, 3), body + 2);
	expect_end(&r);
	cr_assert_not_null(pg_read_bytes(&r, 0));
	cr_assert_null(pg_read_bytes(&r, 1));
	cr_assert(r.bad);

	pg_reader_init(&r, body, sizeof(body));
	cr_assert_null(pg_read_bytes(&r, SIZE_MAX));
	cr_assert(r.bad);
	pg_reader_init(&r, body, sizeof(body));
	cr_assert_null(pg_read_bytes(&r, UINT32_MAX));
	cr_assert(r.bad);
}

Test(pg_reader, empty_body)
{
	static const uint8_t body[1] = {0};
	struct pg_reader r;
	pg_reader_init(&r, body, 0);
	cr_assert_null(pg_read_string(&r));
	cr_assert(r.bad);
	pg_reader_init(&r, body, 0);
	cr_assert_eq(pg_read_byte(&r), 0);
	cr_assert(r.bad);
	pg_reader_init(&r, body, 0);
	cr_assert_eq(pg_read_int32(&r), 0);
	cr_assert(r.bad);
}

/* ---- builders, parsed back ------------------------------------------------------ */

/* An ErrorResponse or NoticeResponse body as corral builds it: S, V, C, M, then a zero byte. */
static void expect_error_fields(struct pg_reader *r, const char *severity, const char *sqlstate,
				const char *message)
{
	cr_assert_eq(pg_read_byte(r), 'S');
	expect_str(r, severity);
	cr_assert_eq(pg_read_byte(r), 'V');
	expect_str(r, severity);
	cr_assert_eq(pg_read_byte(r), 'C');
	expect_str(r, sqlstate);
	cr_assert_eq(pg_read_byte(r), 'M');
	expect_str(r, message);
	cr_assert_eq(pg_read_byte(r), 0, "the field list ends with a zero byte");
	expect_end(r);
}

typedef void put_fields_fn(struct evbuffer *out, const char *severity, const char *sqlstate,
			   const char *message);

/* put (pgproto_put_error or _notice) builds one message of type that parses back to its fields. */
static void expect_fields_parse_back(put_fields_fn *put, char type, const char *severity,
				     const char *sqlstate, const char *message)
{
	struct evbuffer *buf = evbuffer_new();
	uint8_t body[256];
	struct pg_reader r;
	put(buf, severity, sqlstate, message);
	take_msg(buf, type, body, sizeof(body), &r);
	expect_error_fields(&r, severity, sqlstate, message);
	cr_assert_eq(evbuffer_get_length(buf), 0);
	evbuffer_free(buf);
}

Test(builders, error_response)
{
	expect_fields_parse_back(pgproto_put_error, 'E', "FATAL", "28P01",
				 "password authentication failed for user \"a\"");
}

Test(builders, error_response_exact_bytes)
{
	struct evbuffer *buf = evbuffer_new();
	pgproto_put_error(buf, "ERROR", "08P01", "x");
	static const uint8_t want[] = {'E',  0,   0,   0,   29,  'S', 'E', 'R', 'R', 'O',
				       'R',  0,   'V', 'E', 'R', 'R', 'O', 'R', 0,   'C',
				       '0',  '8', 'P', '0', '1', 0,   'M', 'x', 0,   0};
	expect_bytes(buf, want, sizeof(want));
	evbuffer_free(buf);
}

Test(builders, notice_response)
{
	expect_fields_parse_back(pgproto_put_notice, 'N', "WARNING", "01000", "");
}

Test(builders, parameter_status)
{
	struct evbuffer *buf = evbuffer_new();
	pgproto_put_parameter_status(buf, "TimeZone", "Europe/Berlin");
	pgproto_put_parameter_status(buf, "application_name", "");
	uint8_t body[64];
	struct pg_reader r;
	take_msg(buf, 'S', body, sizeof(body), &r);
	expect_str(&r, "TimeZone");
	expect_str(&r, "Europe/Berlin");
	expect_end(&r);
	take_msg(buf, 'S', body, sizeof(body), &r);
	expect_str(&r, "application_name");
	expect_str(&r, "");
	expect_end(&r);
	cr_assert_eq(evbuffer_get_length(buf), 0);
	evbuffer_free(buf);

	buf = evbuffer_new();
	pgproto_put_parameter_status(buf, "a", "b");
	static const uint8_t want[] = {'S', 0, 0, 0, 8, 'a', 0, 'b', 0};
	expect_bytes(buf, want, sizeof(want));
	evbuffer_free(buf);
}

Test(builders, backend_key_data)
{
	struct evbuffer *buf = evbuffer_new();
	pgproto_put_backend_key(buf, 0xdeadbeef, 0x00c0ffee);
	static const uint8_t want[] = {'K',  0,    0,    0,    12,   0xde, 0xad,
				       0xbe, 0xef, 0x00, 0xc0, 0xff, 0xee};
	expect_bytes(buf, want, sizeof(want));
	uint8_t body[16];
	struct pg_reader r;
	take_msg(buf, 'K', body, sizeof(body), &r);
	cr_assert_eq(pg_read_int32(&r), 0xdeadbeef);
	cr_assert_eq(pg_read_int32(&r), 0x00c0ffee);
	expect_end(&r);
	evbuffer_free(buf);
}

Test(builders, ready_for_query)
{
	static const char statuses[] = {'I', 'T', 'E'};
	for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
		struct evbuffer *buf = evbuffer_new();
		pgproto_put_ready(buf, statuses[i]);
		const uint8_t want[] = {'Z', 0, 0, 0, 5, (uint8_t)statuses[i]};
		expect_bytes(buf, want, sizeof(want));
		uint8_t body[4];
		struct pg_reader r;
		take_msg(buf, 'Z', body, sizeof(body), &r);
		cr_assert_eq(pg_read_byte(&r), statuses[i]);
		expect_end(&r);
		evbuffer_free(buf);
	}
}

Test(builders, query)
{
	struct evbuffer *buf = evbuffer_new();
	pgproto_put_query(buf, "DISCARD ALL");
	static const uint8_t want[] = {'Q', 0,   0,   0,   16,  'D', 'I', 'S', 'C', 'A',
				       'R', 'D', ' ', 'A', 'L', 'L', 0};
	expect_bytes(buf, want, sizeof(want));
	uint8_t body[32];
	struct pg_reader r;
	take_msg(buf, 'Q', body, sizeof(body), &r);
	expect_str(&r, "DISCARD ALL");
	expect_end(&r);

	pgproto_put_query(buf, "");
	take_msg(buf, 'Q', body, sizeof(body), &r);
	expect_str(&r, "");
	expect_end(&r);
	evbuffer_free(buf);
}

Test(builders, terminate)
{
	struct evbuffer *buf = evbuffer_new();
	pgproto_put_terminate(buf);
	static const uint8_t want[] = {'X', 0, 0, 0, 4};
	expect_bytes(buf, want, sizeof(want));
	evbuffer_free(buf);
}

Test(builders, negotiate_protocol_version)
{
	struct evbuffer *buf = evbuffer_new();
	static const char *const unsupported[] = {"_pq_.compression", "_pq_.x"};
	pgproto_put_negotiate_version(buf, PG_PROTOCOL_LATEST, unsupported, ARRAY_SIZE(unsupported));
	uint8_t body[64];
	struct pg_reader r;
	take_msg(buf, 'v', body, sizeof(body), &r);
	cr_assert_eq(pg_read_int32(&r), 0x00030000);
	cr_assert_eq(pg_read_int32(&r), 2);
	expect_str(&r, "_pq_.compression");
	expect_str(&r, "_pq_.x");
	expect_end(&r);

	pgproto_put_negotiate_version(buf, PG_PROTOCOL_LATEST, NULL, 0);
	static const uint8_t want[] = {'v', 0, 0, 0, 12, 0, 3, 0, 0, 0, 0, 0, 0};
	expect_bytes(buf, want, sizeof(want));
	evbuffer_free(buf);
}

Test(builders, authentication)
{
	struct evbuffer *buf = evbuffer_new();
	pgproto_put_auth(buf, PG_AUTH_OK, NULL, 0);
	static const uint8_t ok[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0};
	expect_bytes(buf, ok, sizeof(ok));
	evbuffer_drain(buf, sizeof(ok));

	static const uint8_t salt[4] = {0xa1, 0xb2, 0xc3, 0xd4};
	pgproto_put_auth(buf, PG_AUTH_MD5, salt, sizeof(salt));
	static const uint8_t md5[] = {'R', 0, 0, 0, 12, 0, 0, 0, 5, 0xa1, 0xb2, 0xc3, 0xd4};
	expect_bytes(buf, md5, sizeof(md5));
	evbuffer_drain(buf, sizeof(md5));

	static const char mechs[] = "SCRAM-SHA-256\0"; /* list ends with an empty name */
	pgproto_put_auth(buf, PG_AUTH_SASL, mechs, sizeof(mechs));
	uint8_t body[64];
	struct pg_reader r;
	take_msg(buf, 'R', body, sizeof(body), &r);
	cr_assert_eq(pg_read_int32(&r), PG_AUTH_SASL);
	expect_str(&r, "SCRAM-SHA-256");
	expect_str(&r, "");
	expect_end(&r);
	evbuffer_free(buf);
}
