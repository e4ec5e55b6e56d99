#include "proxy/startup_reset.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pool/params.h"
#include "proxy/client.h"
#include "proxy/pgproto.h"
#include "proxy/pin.h"
#include "proxy/prepared_msg.h"
#include "proxy/relay.h"
#include "proxy/session_params.h"
#include "proxy/set_carry.h"
#include "proxy/sql_lex.h"

/* A lone RESET or SET ... TO DEFAULT is short; a longer Query is not looked into. */
#define RESET_QUERY_MAX 1024
/* How much of a Query the first look reads: blanks, then RESET or SET and one more. */
#define PEEK_LEN 16

/* c->startup_reset: where the answer to a rewritten Query is. */
enum {
	ANSWER_NONE,
	ANSWER_CLIENT, /* the client's own statement: its CommandComplete passes */
	ANSWER_ADDED,  /* the added SELECT: its rows and CommandComplete are dropped */
};

/* Whether the text (n bytes of it) starts with the word w, after blanks. */
static bool starts_with_word(const char *text, size_t n, const char *w)
{
	size_t i = 0, wl = strlen(w);
	while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
		i++;
	/* The first byte first: most Queries start with neither word. */
	if (n - i <= wl || (text[i] | 0x20) != w[0] || strncasecmp(text + i, w, wl) != 0)
		return false;
	char next = text[i + wl];
	return next == ' ' || next == '\t' || next == '\n' || next == '\r';
}

/* The first look, the only cost for a Query that is not a RESET: can it be one? */
static bool maybe_reset(struct evbuffer *src, size_t off, size_t avail, uint32_t len)
{
	char head[PEEK_LEN];
	size_t n = len - 4 < PEEK_LEN ? len - 4 : PEEK_LEN;
	if (len - 4 > RESET_QUERY_MAX || avail - off < PG_HEADER_LEN + n)
		return len - 4 <= RESET_QUERY_MAX; /* too short yet to tell: look again */
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(src, &pos, off + PG_HEADER_LEN, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(src, &pos, head, n);
	return starts_with_word(head, n, "reset") || starts_with_word(head, n, "set");
}

/* The next token is the word w. */
static bool next_word(struct sql_lexer *l, const char *w)
{
	struct sql_token t;
	sql_lex_next(l, &t);
	return sql_tok_word(l, &t, w);
}

/* RESET TIME ZONE, SET [SESSION] TIME ZONE DEFAULT | LOCAL: PostgreSQL's RESET
 * timezone in other words (which set_carry_parse leaves to the ParameterStatus). */
static bool time_zone_reset(const char *text, size_t len)
{
	struct sql_lexer l, after_set;
	struct sql_token t;
	sql_lex_init(&l, text, len);
	sql_lex_next(&l, &t);
	if (sql_tok_word(&l, &t, "reset"))
		return next_word(&l, "time") && next_word(&l, "zone") && sql_lex_only_semis(&l);
	if (!sql_tok_word(&l, &t, "set"))
		return false;
	after_set = l;
	if (!next_word(&l, "session"))
		l = after_set;
	if (!next_word(&l, "time") || !next_word(&l, "zone"))
		return false;
	sql_lex_next(&l, &t);
	return (sql_tok_word(&l, &t, "default") || sql_tok_word(&l, &t, "local")) &&
	       sql_lex_only_semis(&l);
}

/* The RESET the Query (text: len bytes of body, and a NUL) is, if it is one corral
 * brings back a startup value for. */
static bool parse_reset(const struct client *c, const char *text, size_t len, struct set_carry *sc)
{
	/* One string and its NUL, as PostgreSQL wants a Query (else it is its error). */
	if (strlen(text) + 1 != len)
		return false;
	if (time_zone_reset(text, len)) {
		memset(sc, 0, sizeof(*sc));
		strcpy(sc->name, "timezone");
		sc->reset = true;
	} else if (!set_carry_parse(text, len, sc) || !sc->reset) {
		return false;
	}
	if (strcmp(sc->name, "all") == 0)
		return true;
	return params_get(c->startup_params, sc->name) && session_params_restorable(sc->name);
}

/* The Query's text, whole (the caller checked it has arrived and is at most
 * RESET_QUERY_MAX long), into text. */
static void copy_text(struct evbuffer *src, size_t off, uint32_t len,
		      char text[RESET_QUERY_MAX + 1])
{
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(src, &pos, off + PG_HEADER_LEN, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(src, &pos, text, len - 4);
	text[len - 4] = '\0';
}

enum startup_reset_verdict startup_reset_check(struct client *c, uint32_t len, struct evbuffer *src,
					       size_t off, size_t avail)
{
	if (!c->startup_params || c->relay->tracker.lost || !maybe_reset(src, off, avail, len))
		return STARTUP_RESET_PASS;
	if (avail - off < (size_t)len + 1)
		return STARTUP_RESET_WAIT;
	char text[RESET_QUERY_MAX + 1];
	copy_text(src, off, len, text);
	struct set_carry sc;
	if (!parse_reset(c, text, len - 4, &sc))
		return STARTUP_RESET_PASS;
	/* The added SELECT's replies are told apart by being this Query's: nothing else
	 * may be answered meanwhile.  Behind requests whose answers need more from the
	 * client (extended messages without a Sync, a COPY) holding would wait forever:
	 * the RESET goes as it is. */
	if (relay_between_queries(c->relay))
		return STARTUP_RESET_REWRITE;
	return tracker_will_settle(&c->relay->tracker) ? STARTUP_RESET_HOLD : STARTUP_RESET_PASS;
}

bool startup_reset_rewrite(struct client *c, uint32_t len, struct evbuffer *src,
			   struct evbuffer *dst, const char **sqlstate, const char **error)
{
	*sqlstate = "53200";
	*error = "out of memory";
	char text[RESET_QUERY_MAX + 1];
	copy_text(src, 0, len, text);
	struct set_carry sc;
	bool oom = false;
	char *restore = NULL;
	if (parse_reset(c, text, len - 4, &sc))
		restore = session_params_restore_sql(c->startup_params,
						     strcmp(sc.name, "all") == 0 ? NULL : sc.name,
						     &oom);
	if (oom)
		return false;
	/* The newline ends a trailing -- comment; an empty statement is no statement. */
	const char *parts[] = {text, "\n;", restore};
	const size_t lens[] = {strlen(text), 2, restore ? strlen(restore) : 0};
	size_t n = restore ? 3 : 1;
	prepmsg_put_query_parts(dst, parts, lens, n);
	evbuffer_drain(src, (size_t)len + 1);
	free(restore);
	if (n > 1) {
		c->startup_reset = ANSWER_CLIENT;
		/* Transaction pooling: the SET / RESET corral carries for this Query learns
		 * that the server ends with the startup values, set as corral sets them. */
		pin_carry_restored(c);
	}
	size_t body_len = 1;
	for (size_t i = 0; i < n; i++)
		body_len += lens[i];
	if (tracker_client(&c->relay->tracker, 'Q', NULL, body_len) != TRACKER_OK) {
		*sqlstate = "54000";
		*error = "too many requests in flight without replies read";
		return false;
	}
	return true;
}

bool startup_reset_wants_whole(const struct client *c, char type)
{
	return c->startup_reset == ANSWER_ADDED && (type == 'T' || type == 'D' || type == 'C');
}

bool startup_reset_swallow(struct client *c, char type)
{
	switch (type) {
	case 'C':
		if (c->startup_reset == ANSWER_CLIENT) {
			c->startup_reset = ANSWER_ADDED; /* "RESET": the client's */
			return false;
		}
		return true;
	case 'T':
	case 'D':
		return c->startup_reset == ANSWER_ADDED;
	case 'Z':
		c->startup_reset = ANSWER_NONE;
		return false;
	default:
		return false; /* ParameterStatus, notices, an error: the client's */
	}
}
