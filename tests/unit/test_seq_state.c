/*
 * Which first messages of a link name currval / lastval (proxy/seq_state.c): the raw
 * text is searched, any case, anywhere (strings and comments too), at its edges.
 */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool/server.h"
#include "proxy/client.h"
#include "proxy/seq_state.h"

/* seq_state_link for a client whose values are not surely on s, first message
 * type + text (its NUL included, as a Query carries it). */
static bool discards(char type, const char *text, size_t len)
{
	struct client *c = calloc(1, sizeof(*c));
	struct server *s = calloc(1, sizeof(*s));
	cr_assert(c && s);
	c->id = 7;
	s->id = 3;
	s->seq_owner = 9; /* another client's values */
	struct evbuffer *in = evbuffer_new();
	uint32_t n = (uint32_t)len + 4;
	uint8_t h[5] = {(uint8_t)type, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
			(uint8_t)n};
	evbuffer_add(in, h, sizeof(h));
	evbuffer_add(in, text, len);
	bool r = seq_state_link(c, s, in);
	evbuffer_free(in);
	free(c);
	free(s);
	return r;
}

#define DISCARDS(sql, want) cr_expect_eq(discards('Q', sql, sizeof(sql)), want, "%s", sql)

Test(seq_state, first_message_names_a_sequence_reader)
{
	DISCARDS("select currval('s')", true);
	DISCARDS("SELECT LASTVAL()", true);
	DISCARDS("select CurrVal('s')", true);
	DISCARDS("select lastVAL()", true);
	DISCARDS("currval", true);
	DISCARDS("lastval", true);
	DISCARDS("select 'currval' -- in a string counts too", true);
	DISCARDS("/* lastval */ select 1", true);
	DISCARDS("xcurrvalx", true);
	DISCARDS("select nextval('s')", false);
	DISCARDS("select setval('s', 1), val, vvv, VVV, curval, lastvl", false);
	DISCARDS("urrval", false);
	DISCARDS("lastva", false);
	DISCARDS("", false);
	DISCARDS("v", false);
	DISCARDS("select 1; select cur rval", false);
	/* A 'v' at every place, then the name at the very end */
	DISCARDS("vVvVvVvVvVvVvVvVvV lastval", true);
	DISCARDS("vVvVvVvVvVvVvVvVvV lastvaL", true);
	/* A Parse (name, then text) is read too; other messages are not */
	cr_expect(discards('P', "s1\0select currval('s')", 23));
	cr_expect(!discards('B', "select currval('s')", 20));
}
