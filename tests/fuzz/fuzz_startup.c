/*
 * libFuzzer harness for the startup packet: arbitrary client bytes go into an
 * evbuffer (split over several chains, as they arrive from a socket) and through
 * the same steps as client.c's handle_startup_packet: the length check, then the
 * parse once the whole packet is there, then every parameter read back.  Accepted
 * SSL/GSSENC requests are drained and the next packet follows, as on the wire.
 *
 * The checks below abort on any broken invariant, so libFuzzer reports it like a
 * crash; ASan and UBSan catch the memory errors.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/pgproto.h"
#include "tests/fuzz/fuzz_common.h"

/* Reads back every parameter the way client.c does and checks where it points. */
static void use_params(const struct pg_startup *st, const uint8_t *packet, size_t len)
{
	CHECK(st->n_params <= PG_MAX_STARTUP_PARAMS);
	const char *unsupported[PG_MAX_STARTUP_PARAMS];
	size_t n_unsupported = 0;
	for (size_t i = 0; i < st->n_params; i++) {
		const char *name = st->names[i], *value = st->values[i];
		size_t nlen = strlen(name), vlen = strlen(value);
		/* both strings, with their NULs, lie inside the packet, past the header */
		CHECK((const uint8_t *)name >= packet + 8);
		CHECK((const uint8_t *)name + nlen < packet + len);
		CHECK((const uint8_t *)value == (const uint8_t *)name + nlen + 1);
		CHECK((const uint8_t *)value + vlen < packet + len);
		CHECK(nlen > 0);
		/* lookup finds this value or that of an earlier duplicate */
		const char *found = pgproto_startup_param(st, name);
		CHECK(found != NULL && found <= value);
		if (strncmp(name, "_pq_.", 5) == 0)
			unsupported[n_unsupported++] = name;
	}
	(void)pgproto_startup_param(st, "user");
	(void)pgproto_startup_param(st, "database");
	(void)pgproto_startup_param(st, "application_name");
	if (n_unsupported) {
		struct evbuffer *out = evbuffer_new();
		CHECK(out != NULL);
		pgproto_put_negotiate_version(out, PG_PROTOCOL_LATEST, unsupported, n_unsupported);
		size_t want = 1 + 4 + 8;
		for (size_t i = 0; i < n_unsupported; i++)
			want += strlen(unsupported[i]) + 1;
		CHECK(evbuffer_get_length(out) == want);
		evbuffer_free(out);
	}
}

/* One startup packet off the head of in; false when the connection would end or wait. */
static bool one_packet(struct evbuffer *in)
{
	uint32_t len = 0;
	const char *why = NULL;
	enum pg_parse_result pr = pgproto_startup_length(in, &len, &why);
	if (pr == PG_PARSE_INCOMPLETE) {
		CHECK(evbuffer_get_length(in) < 4);
		return false;
	}
	if (pr == PG_PARSE_ERROR) {
		CHECK(why != NULL);
		return false;
	}
	CHECK(pr == PG_PARSE_OK && len >= 8 && len <= PG_MAX_STARTUP_PACKET);
	if (evbuffer_get_length(in) < len)
		return false;

	/* An exact-size copy, so that ASan sees any read past the packet. */
	uint8_t *packet = malloc(len);
	CHECK(packet != NULL);
	CHECK(evbuffer_remove(in, packet, len) == (int)len);

	struct pg_startup st;
	why = NULL;
	bool ok = pgproto_parse_startup(packet, len, &st, &why);
	bool more = false;
	if (!ok) {
		CHECK(why != NULL);
	} else if (st.code == PG_SSL_REQUEST_CODE || st.code == PG_GSSENC_REQUEST_CODE) {
		CHECK(st.n_params == 0);
		more = true;
	} else if (st.code == PG_CANCEL_REQUEST_CODE) {
		CHECK(len >= 16 && st.n_params == 0);
	} else if (st.code >> 16 == 3) {
		/* a valid v3 packet ends with its terminator */
		CHECK(packet[len - 1] == '\0');
		use_params(&st, packet, len);
	} else {
		CHECK(st.n_params == 0);
	}
	free(packet);
	return more;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *in = evbuffer_new();
	if (!in)
		return 0;
	/* three chains, so the length and the packet can straddle chain boundaries */
	size_t cut1 = size / 3, cut2 = size - size / 4;
	if (cut1)
		evbuffer_add_reference(in, data, cut1, NULL, NULL);
	if (cut2 > cut1)
		evbuffer_add_reference(in, data + cut1, cut2 - cut1, NULL, NULL);
	if (size > cut2)
		evbuffer_add_reference(in, data + cut2, size - cut2, NULL, NULL);

	for (int i = 0; i < 8 && one_packet(in); i++)
		;
	evbuffer_free(in);
	return 0;
}
