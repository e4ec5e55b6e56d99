/*
 * libFuzzer harness for regular messages: arbitrary bytes (split over several
 * evbuffer chains) are walked as a message stream with pgproto_peek_header_at, the
 * way relay.c scans without removing anything, and each small message whose body is
 * all there is parsed with pg_reader as corral does (ReadyForQuery, ParameterStatus
 * into a param_set, ErrorResponse/NoticeResponse fields, the password messages),
 * plus the others corral builds, which must come back byte for byte from the
 * pgproto_put_* builders when they parse cleanly.
 *
 * A second copy of the stream is drained message by message, and pgproto_peek_header
 * on it must agree with pgproto_peek_header_at on the first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "pool/params.h"
#include "proxy/pgproto.h"
#include "tests/fuzz/fuzz_common.h"

#define INSPECT_MAX 8192 /* relay.c parses bodies up to this size */

/* The builder's output for this message must equal the bytes it came from. */
static void check_same(struct evbuffer *built, const uint8_t *msg, size_t msg_len)
{
	CHECK(evbuffer_get_length(built) == msg_len);
	const uint8_t *p = evbuffer_pullup(built, -1);
	CHECK(msg_len == 0 || memcmp(p, msg, msg_len) == 0);
	evbuffer_free(built);
}

static void error_fields(struct pg_reader *r)
{
	const char *severity = NULL, *sqlstate = NULL, *message = NULL;
	for (;;) {
		uint8_t field = pg_read_byte(r);
		if (r->bad || field == 0)
			break;
		const char *value = pg_read_string(r);
		if (r->bad)
			break;
		CHECK(value + strlen(value) < (const char *)r->end);
		if (field == 'V')
			severity = value;
		else if (field == 'C')
			sqlstate = value;
		else if (field == 'M')
			message = value;
	}
	(void)severity;
	(void)sqlstate;
	(void)message;
}

static void parse_body(struct param_set *ps, char type, const uint8_t *msg, uint32_t len)
{
	const uint8_t *body = msg + PG_HEADER_LEN;
	struct pg_reader r;
	pg_reader_init(&r, body, len - 4);
	struct evbuffer *built = NULL;

	switch (type) {
	case 'Z': /* ReadyForQuery */
		if (len == 5) {
			char status = (char)pg_read_byte(&r);
			CHECK(!r.bad && r.p == r.end);
			built = evbuffer_new();
			pgproto_put_ready(built, status);
		}
		break;
	case 'S': { /* ParameterStatus, kept as relay.c keeps it */
		const char *name = pg_read_string(&r);
		const char *value = pg_read_string(&r);
		if (r.bad)
			break;
		if (params_set(ps, name, value))
			CHECK(strcmp(params_get(ps, name), value) == 0);
		if (r.p == r.end) {
			built = evbuffer_new();
			pgproto_put_parameter_status(built, name, value);
		}
		break;
	}
	case 'E': /* ErrorResponse */
	case 'N': /* NoticeResponse */
		error_fields(&r);
		break;
	case 'K': { /* BackendKeyData */
		uint32_t pid = pg_read_int32(&r), key = pg_read_int32(&r);
		if (!r.bad && r.p == r.end) {
			built = evbuffer_new();
			pgproto_put_backend_key(built, pid, key);
		}
		break;
	}
	case 'R': { /* Authentication* */
		uint32_t code = pg_read_int32(&r);
		if (r.bad)
			break;
		if (code == PG_AUTH_SASL) {
			const char *mech;
			while ((mech = pg_read_string(&r)) && mech[0])
				;
			if (r.bad)
				break; /* a mechanism list without its terminator */
		}
		const uint8_t *rest = pg_read_bytes(&r, (size_t)(r.end - r.p));
		CHECK(rest != NULL && r.p == r.end);
		built = evbuffer_new();
		pgproto_put_auth(built, (enum pg_auth_code)code, body + 4, len - 8);
		break;
	}
	case 'v': { /* NegotiateProtocolVersion */
		uint32_t version = pg_read_int32(&r), n = pg_read_int32(&r);
		const char *names[16];
		uint32_t i;
		for (i = 0; i < n && !r.bad; i++) {
			const char *s = pg_read_string(&r);
			if (s && i < 16)
				names[i] = s;
		}
		if (!r.bad && r.p == r.end && n <= 16) {
			built = evbuffer_new();
			pgproto_put_negotiate_version(built, version, names, n);
		}
		break;
	}
	case 'p': { /* PasswordMessage / SASLInitialResponse, as client_auth.c reads them */
		struct pg_reader md5 = r;
		const char *response = pg_read_string(&md5);
		CHECK(md5.bad || strlen(response) < len - 4);
		const char *mech = pg_read_string(&r);
		uint32_t n = pg_read_int32(&r);
		if (!r.bad && n != UINT32_MAX) {
			const uint8_t *d = pg_read_bytes(&r, n);
			CHECK(r.bad || (d != NULL && mech < (const char *)d && d + n <= r.end));
		}
		break;
	}
	case 'Q': { /* Query */
		const char *sql = pg_read_string(&r);
		if (!r.bad && r.p == r.end) {
			built = evbuffer_new();
			pgproto_put_query(built, sql);
		}
		break;
	}
	case 'X': /* Terminate */
		if (len == 4) {
			built = evbuffer_new();
			pgproto_put_terminate(built);
		}
		break;
	default:
		break;
	}
	if (built)
		check_same(built, msg, (size_t)len + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *buf = evbuffer_new(), *drained = evbuffer_new();
	CHECK(buf && drained);
	/* several chains, so headers and bodies straddle chain boundaries */
	size_t step = size / 4 + 1;
	for (size_t off = 0; off < size; off += step)
		evbuffer_add_reference(buf, data + off, size - off < step ? size - off : step, NULL,
				       NULL);
	evbuffer_add(drained, data, size);
	CHECK(evbuffer_get_length(buf) == size);

	struct param_set ps = {0};
	size_t off = 0;
	while (off < size) {
		char type = 0, type2 = 0;
		uint32_t len = 0, len2 = 0;
		enum pg_parse_result pr = pgproto_peek_header_at(buf, off, &type, &len);
		enum pg_parse_result pr2 = pgproto_peek_header(drained, &type2, &len2);
		CHECK(pr == pr2);
		if (pr == PG_PARSE_INCOMPLETE) {
			CHECK(size - off < PG_HEADER_LEN);
			break;
		}
		CHECK(type == type2 && len == len2);
		CHECK(type == (char)data[off]);
		if (pr == PG_PARSE_ERROR) {
			CHECK(len < 4);
			break;
		}
		CHECK(len >= 4);
		if (size - off >= (size_t)len + 1 && len - 4 <= INSPECT_MAX) {
			/* an exact-size copy, so that ASan sees any read past the message */
			uint8_t *msg = malloc((size_t)len + 1);
			CHECK(msg != NULL);
			struct evbuffer_ptr pos;
			CHECK(evbuffer_ptr_set(buf, &pos, off, EVBUFFER_PTR_SET) == 0);
			CHECK(evbuffer_copyout_from(buf, &pos, msg, (size_t)len + 1) ==
			      (ev_ssize_t)len + 1);
			CHECK(memcmp(msg, data + off, (size_t)len + 1) == 0);
			parse_body(&ps, type, msg, len);
			free(msg);
		}
		off += (size_t)len + 1;
		evbuffer_drain(drained, (size_t)len + 1);
	}
	params_clear(&ps);
	evbuffer_free(buf);
	evbuffer_free(drained);
	return 0;
}
