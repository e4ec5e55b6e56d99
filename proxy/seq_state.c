#include "proxy/seq_state.h"

#include <string.h>
#include <strings.h>

#include "pool/server.h"
#include "proxy/client.h"
#include "proxy/pgproto.h"

/* How much of the first message is read for the names (a longer text is read in part). */
#define SEQ_PEEK_MAX 65536

/* currval or lastval, any case, with its "val" at i. */
static bool sequence_reader_at(const char *text, size_t i)
{
	return strncasecmp(text + i, "val", 3) == 0 && (strncasecmp(text + i - 4, "curr", 4) == 0 ||
							strncasecmp(text + i - 4, "last", 4) == 0);
}

/* currval or lastval, any case: memchr finds each 'v' and 'V' (the byte a "val" can
 * start with) at positions 4 to len - 3, a vector scan where a test per byte cost more
 * than the rest of seq_state_link on every link. */
static bool names_sequence_reader(const char *text, size_t len)
{
	if (len < 7)
		return false;
	const char *end = text + len - 2;
	for (int k = 0; k < 2; k++) {
		const char *p = text + 4;
		while (p < end && (p = memchr(p, k ? 'V' : 'v', (size_t)(end - p))) != NULL) {
			if (sequence_reader_at(text, (size_t)(p - text)))
				return true;
			p++;
		}
	}
	return false;
}

/* The first message is a Query or Parse whose text names currval or lastval (in a
 * string or comment too: a needless DISCARD SEQUENCES costs only a round trip). */
static bool first_reads_sequences(struct evbuffer *input)
{
	uint8_t h[PG_HEADER_LEN];
	if (evbuffer_copyout(input, h, sizeof(h)) != (ssize_t)sizeof(h) ||
	    (h[0] != 'Q' && h[0] != 'P'))
		return false;
	size_t len = ((size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4]) - 4;
	size_t have = evbuffer_get_length(input) - PG_HEADER_LEN;
	size_t n = len < have ? len : have;
	if (n > SEQ_PEEK_MAX)
		n = SEQ_PEEK_MAX;
	const char *body = (const char *)evbuffer_pullup(input, (ev_ssize_t)(PG_HEADER_LEN + n));
	return body && names_sequence_reader(body + PG_HEADER_LEN, n);
}

bool seq_state_link(struct client *c, struct server *s, struct evbuffer *input)
{
	bool own = s->seq_owner == c->id && c->prev_server_id == s->id;
	s->seq_owner = s->seq_owner == 0 || s->seq_owner == c->id ? c->id : SERVER_SEQ_MIXED;
	c->prev_server_id = s->id;
	if (own || !first_reads_sequences(input))
		return false;
	s->seq_owner = c->id; /* after the DISCARD SEQUENCES the caller runs */
	return true;
}

void seq_state_reset(struct server *s)
{
	s->seq_owner = 0;
}
