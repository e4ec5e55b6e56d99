#include "proxy/prepared_relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/siphash.h"
#include "pool/params.h"
#include "pool/server.h"
#include "proxy/client.h"
#include "proxy/pgproto.h"
#include "proxy/prepared.h"
#include "proxy/prepared_msg.h"
#include "proxy/prepared_sql.h"
#include "proxy/worker.h"

/* How much of a message check looks at first (a Bind's two names fit nearly always),
 * and how long the names may be in all: longer ones fail the client (54000), since
 * PostgreSQL keeps only NAMEDATALEN - 1 bytes of a name anyway. */
#define PEEK_MAX 256
#define NAMES_MAX 8192
#define NAMES_PEEK \
	(2 * NAMES_MAX + 4) /* a Bind's portal and statement names, or a
					* Describe / Close's kind and name */

/* PostgreSQL keys statements by the first 63 bytes of their names (a hash of
 * NAMEDATALEN keys): so does corral.  Returns name, or key holding its first bytes. */
static const char *stmt_key(const char *name, char key[SQL_NAME_MAX + 1])
{
	size_t n = strnlen(name, SQL_NAME_MAX + 1);
	if (n <= SQL_NAME_MAX)
		return name;
	memcpy(key, name, SQL_NAME_MAX);
	key[SQL_NAME_MAX] = '\0';
	return key;
}

static struct prep_server *server_registry(struct client *c)
{
	struct server *s = c->server;
	if (!s->prepared) {
		s->prepared = prep_server_new();
		s->prepared_free = (void (*)(void *))prep_server_free;
	}
	return s->prepared;
}

static struct prep_client *client_map(struct client *c)
{
	if (!c->prep)
		c->prep = prep_client_new();
	return c->prep;
}

/* ---- client -> server ------------------------------------------------------------ */

static size_t peek(struct evbuffer *src, size_t off, size_t avail, uint8_t *buf, size_t want)
{
	size_t n = avail - off < want ? avail - off : want;
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(src, &pos, off, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(src, &pos, buf, n);
	return n;
}

/* The client's own Parse of name was sent in an earlier Sync segment and not answered:
 * whether name exists is PostgreSQL's to say first (a failed Parse leaves no statement,
 * and a Bind of it must then get 26000, not the Parse's error again). */
static bool must_wait_for_parse(struct client *c, const char *name)
{
	const struct prep_stmt *st = c->prep ? prep_client_find(c->prep, name) : NULL;
	return st && st->pending && c->server->prepared &&
	       st->seg != ((struct prep_server *)c->server->prepared)->seg;
}

/*
 * The tracker gave up on this link: the server is never given to another client (it is
 * closed when this one leaves), and nothing corral sends on its own can be answered
 * for.  A Parse keeps the client's own name on this server; a statement the server is
 * known to have is still renamed; anything else goes as it is.
 */
static enum prep_verdict lost_mode(struct client *c, char type, const struct prepmsg_name *nm)
{
	if (type == 'P' || type == 'C') {
		if (c->prep)
			prep_client_remove(c->prep, nm->name);
		return PREP_PASS;
	}
	const struct prep_stmt *st = c->prep ? prep_client_find(c->prep, nm->name) : NULL;
	struct prep_server *srv = c->server->prepared;
	if (!st || !srv)
		return PREP_PASS;
	bool collision;
	struct prep_entry *e = prep_server_entry(srv, st->content, &collision);
	if (!e)
		return PREP_PASS;
	/* A Parse of it sent and unanswered, as the last thing done to it: the backend runs
	 * that first, so the statement is there exactly when the client's would be (a Parse
	 * that failed or was skipped leaves none, and the 26000 names the client's name,
	 * rename_in_error).  Sent as it is, the client's own name would not exist. */
	bool parsing = e->inflight && e->last_op == PREP_OP_PARSE;
	return prep_need(srv, e) == PREP_PRESENT || parsing ? PREP_REWRITE : PREP_PASS;
}

/*
 * A Parse, Bind, Describe or Close whose names do not end within PEEK_MAX bytes: read
 * up to NAMES_PEEK of it, then decide as for short names (check_names).  A name of
 * corral's shape must never pass unmapped: past that the rewrite fails the client.
 */
static enum prep_verdict check_names(struct client *c, char type, uint32_t body_len,
				     const struct prepmsg_name *nm, size_t have);

static enum prep_verdict long_names(struct client *c, char type, uint32_t body_len,
				    struct evbuffer *src, size_t off, size_t avail)
{
	size_t want = body_len < NAMES_PEEK ? body_len : NAMES_PEEK;
	size_t have = avail - off - PG_HEADER_LEN;
	if (have < want)
		return PREP_WAIT;
	uint8_t *big = malloc(want);
	if (!big)
		return PREP_REWRITE; /* the rewrite fails it (out of memory) */
	size_t n = peek(src, off + PG_HEADER_LEN, avail, big, want);
	struct prepmsg_name nm;
	enum prep_verdict v;
	if (!prepmsg_stmt_name(type, big, n, n == body_len, &nm))
		v = n == body_len ? PREP_PASS : PREP_REWRITE; /* malformed, or too long */
	else
		v = check_names(c, type, body_len, &nm, have);
	free(big);
	return v;
}

static bool note_is_hidden(const struct prep_note *n);

/* Requests corral sent on its own (or whose replies it replaces) are unanswered. */
static bool hidden_notes_pending(const struct client *c)
{
	const struct prep_client *pc = c->prep;
	for (uint32_t i = 0; pc && i < pc->notes_len; i++)
		if (note_is_hidden(&pc->notes[(pc->notes_head + i) % pc->notes_cap]))
			return true;
	return false;
}

/*
 * A failed COPY left several readings, or a COPY FROM STDIN may end in more than one
 * way (tracker_copy_in_doubt: a Sync sent inside it, or the named message itself would
 * be read by it): what corral would inject could not be answered for.  Give up
 * tracking as the tracker does when its readings run out: the server stays with this
 * client, then is closed, and the client's messages go as they are.  A COPY TO STDOUT,
 * or a COPY FROM STDIN whose CopyDone / CopyFail was sent right after it, is no doubt.
 *
 * Giving up while requests corral injected for earlier messages are unanswered would
 * fail the client for nothing (prepared_server_reply: their replies could no longer be
 * told apart), though the one reading there is accounts for them: the message is held
 * until they are answered (true: PREP_HOLD), then looked at again, but only when the
 * backend answers them without more from the client (tracker_hidden_will_answer: a
 * Sync, Query or FunctionCall after them flushes their replies; held otherwise, the
 * client's own Sync behind the message would never come).  With several readings, or
 * no such request after them, it gives up at once (and the client gets 08P01 when their
 * replies come: fail closed).
 */
static bool give_up_in_doubt(struct client *c)
{
	struct tracker *t = &c->relay->tracker;
	if (t->lost || !tracker_copy_in_doubt(t))
		return false;
	if (hidden_notes_pending(c) && tracker_hidden_will_answer(t))
		return true;
	t->lost = true;
	t->why = t->n_hyp > 1 ? "named statement after a COPY whose end is in doubt"
			      : "named statement during a COPY";
	return false;
}

static enum prep_verdict check_names(struct client *c, char type, uint32_t body_len,
				     const struct prepmsg_name *found, size_t have)
{
	struct prepmsg_name name = *found, *nm = &name;
	if (nm->name[0] == '\0' || nm->kind != 'S')
		return PREP_PASS; /* unnamed statements and portals are the client's own */
	if (c->prep_mode == PREP_REFUSE && type != 'P')
		return PREP_PASS; /* only a named Parse is refused: the rest fails by itself */
	if (give_up_in_doubt(c))
		return PREP_HOLD;
	char key[SQL_NAME_MAX + 1];
	nm->name = stmt_key(nm->name, key);
	if (c->relay->tracker.lost && lost_mode(c, type, nm) == PREP_PASS)
		return PREP_PASS;
	if (!c->relay->tracker.lost &&
	    (must_wait_for_parse(c, nm->name) ||
	     (c->server->prepared &&
	      prep_client_closing_before(c->prep,
					 ((struct prep_server *)c->server->prepared)->seg))))
		return PREP_HOLD;
	/* Parse, Describe and Close are read whole; a Bind up to its statement name,
	 * its parameters stream through. */
	size_t need = type == 'B' ? nm->after : body_len;
	return have >= need ? PREP_REWRITE : PREP_WAIT;
}

/* A PREPARE, EXECUTE or DEALLOCATE (the body_len bytes at off of src) of a name whose
 * Parse or PREPARE of an earlier segment is unanswered: PostgreSQL says first whether it
 * exists. */
static bool query_waits(struct client *c, struct evbuffer *src, size_t off, size_t body_len)
{
	if (!c->prep || !c->prep->n_stmts)
		return false;
	char *text = malloc(body_len ? body_len : 1);
	if (!text)
		return false; /* the rewrite fails it */
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(src, &pos, off, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(src, &pos, text, body_len);
	struct sql_stmt st;
	prepared_sql_parse(text, strnlen(text, body_len), &st);
	free(text);
	return (st.cmd == SQL_PREPARE || st.cmd == SQL_EXECUTE || st.cmd == SQL_DEALLOCATE) &&
	       must_wait_for_parse(c, st.name);
}

enum prep_verdict prepared_client_check(struct client *c, char type, uint32_t len,
					struct evbuffer *src, size_t off, size_t avail)
{
	size_t body_len = len - 4, have = avail - off - PG_HEADER_LEN;
	if (avail - off < PG_HEADER_LEN)
		return PREP_WAIT;
	uint8_t buf[PEEK_MAX];
	switch (type) {
	case 'S':
		/* A new segment: what an error skips ends here (prepared.h). */
		if (c->server->prepared)
			((struct prep_server *)c->server->prepared)->seg++;
		return PREP_PASS;
	case 'Q': {
		size_t n = peek(src, off + PG_HEADER_LEN, avail, buf,
				body_len < 32 ? body_len : 32);
		struct prep_server *srv = c->server->prepared;
		if (c->prep_mode == PREP_OFF || !prepared_sql_maybe(buf, n)) {
			/* A Query answers itself: what it forgets is settled by its reply, and
			 * a later message may wait for that (prep_client_closing_before). */
			if (srv)
				srv->seg++;
			return PREP_PASS;
		}
		if (srv && !c->relay->tracker.lost && prep_client_closing_before(c->prep, srv->seg))
			return PREP_HOLD; /* (a lost tracker answers nothing: never wait for it) */
		if (have < body_len)
			return PREP_WAIT;
		if (!c->relay->tracker.lost && query_waits(c, src, off + PG_HEADER_LEN, body_len))
			return PREP_HOLD;
		return PREP_REWRITE;
	}
	case 'P':
	case 'B':
	case 'D':
	case 'C': {
		size_t n = peek(src, off + PG_HEADER_LEN, avail, buf,
				body_len < PEEK_MAX ? body_len : PEEK_MAX);
		struct prepmsg_name nm;
		bool found = prepmsg_stmt_name(type, buf, n, n == body_len, &nm);
		if (!found && n == PEEK_MAX && body_len > PEEK_MAX)
			return long_names(c, type, body_len, src, off, avail);
		if (!found)
			return n == body_len ? PREP_PASS : PREP_WAIT; /* malformed: PostgreSQL's */
		return check_names(c, type, body_len, &nm, have);
	}
	default:
		return PREP_PASS;
	}
}

struct rewrite {
	struct client *c;
	struct prep_client *pc;
	struct prep_server *srv;
	struct evbuffer *dst;
	struct prep_ctx ctx;
	bool tracker_failed;
	/* The statement name as the client sent it (a protocol message), when corral keys
	 * it by fewer bytes (stmt_key): PostgreSQL's messages name it whole. */
	const char *shown;
};

static bool tell_tracker(void *arg, char type, const uint8_t *body, size_t len, int flags)
{
	struct rewrite *w = arg;
	struct tracker *t = &w->c->relay->tracker;
	if (tracker_client_ex(t, type, body, len, flags) != TRACKER_OK) {
		w->tracker_failed = true;
		return false;
	}
	/* Sent after an error the backend has already reported: skipped at once (and
	 * outcomes the readings of a failed COPY now agree on). */
	uint8_t out[TRACKER_OUTQ];
	int current;
	uint32_t n = tracker_take_outcomes(t, out, &current);
	for (uint32_t i = 0; i < n && !t->lost && w->pc->notes_len; i++)
		prep_note_resolve(w->pc, w->srv, out[i]);
	return true;
}

/* An error in order: a Bind that fails on the server, whose error is replaced.  fmt has
 * one %s, the client's statement name. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static bool refuse(struct rewrite *w, const char *sqlstate, const char *fmt, const char *name)
{
	if (!prep_note_push(w->pc, NOTE_REFUSE, NULL, NULL))
		return false;
	struct prep_note *n =
		&w->pc->notes[(w->pc->notes_head + w->pc->notes_len - 1) % w->pc->notes_cap];
	snprintf(n->sqlstate, sizeof(n->sqlstate), "%s", sqlstate);
	if (w->shown)
		name = w->shown;
	size_t cap = strlen(fmt) + strlen(name) + 1;
	n->message = malloc(cap);
	if (!n->message)
		return false;
	snprintf(n->message, cap, fmt, name);
	prepmsg_put_failing_bind(w->dst, PREP_NONE_NAME);
	return tell_tracker(w, 'B', NULL, 0, TRACKER_HIDDEN);
}
#pragma GCC diagnostic pop

/* A Bind or Describe of a name the client does not have: PostgreSQL's own 26000 for
 * the prefixed name, renamed on its way back (prepared_server_reply). */
static bool unknown_stmt(struct rewrite *w, const char *name)
{
	if (w->shown)
		name = w->shown;
	size_t n = strlen(PREP_UNKNOWN_PREFIX) + strlen(name) + 1;
	char *full = malloc(n);
	if (!full)
		return false;
	snprintf(full, n, "%s%s", PREP_UNKNOWN_PREFIX, name);
	prepmsg_put_failing_bind(w->dst, full);
	free(full);
	return tell_tracker(w, 'B', NULL, 0, 0);
}

/*
 * The settings a statement's text is parsed under, as the linked server last reported
 * them (ParameterStatus; corral gave it the client's values when it linked): constants
 * are read under them once, at Parse, so clients whose values differ must not share a
 * server statement.  And the client's search_path (startup or carried SET; PostgreSQL 15
 * does not report it): PostgreSQL would look names up again when it changes, but a
 * changed result type is then an error (0A000) a client alone on its connection never
 * gets, so tenants with their own search_path get their own statements.  A search_path
 * set otherwise (SET LOCAL, set_config, a function's SET) is not seen here.
 */
static uint64_t parse_env(const struct client *c)
{
	static const char *const names[] = {"TimeZone", "DateStyle", "IntervalStyle",
					    "standard_conforming_strings"};
	static const uint8_t key[16] = "corral parse env";
	struct siphash h;
	siphash_init(&h, key);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = c->server ? params_get(&c->server->params, names[i]) : NULL;
		siphash_update(&h, v ? v : "", v ? strlen(v) + 1 : 1);
	}
	const char *path = params_get(&c->params, "search_path");
	siphash_update(&h, path ? path : "", path ? strlen(path) + 1 : 1);
	return siphash_final(&h);
}

/* The server entry of content; NULL on a collision, or out of memory (*oom). */
static struct prep_entry *entry_of(struct rewrite *w, struct prep_content *content, bool *oom)
{
	bool collision;
	struct prep_entry *e = prep_server_entry(w->srv, content, &collision);
	*oom = !e && !collision;
	return e;
}

static bool rewrite_parse(struct rewrite *w, const char *name, const uint8_t *rest, size_t rest_len)
{
	if (w->c->prep_mode == PREP_REFUSE)
		return refuse(w, "0A000",
			      "prepared statement \"%s\": named prepared statements are off in "
			      "transaction pooling (corral's max_prepared_statements = 0)",
			      name);
	if (prep_client_find(w->pc, name))
		return refuse(w, "42P05", "prepared statement \"%s\" already exists", name);
	struct prep_content *content = prep_content_new(PREP_PROTOCOL, parse_env(w->c), rest,
							rest_len);
	if (!content)
		return false;
	struct prep_stmt *st = prep_client_add(w->pc, name, content);
	prep_content_unref(content);
	if (!st)
		return false;
	st->pending = true;
	st->seg = w->srv->seg;
	bool oom;
	struct prep_entry *e = entry_of(w, st->content, &oom);
	if (!e) {
		prep_client_remove(w->pc, name);
		return oom ? false
			   : refuse(w, "XX000",
				    "prepared statement \"%s\": corral's server "
				    "name collides with another statement",
				    name);
	}
	prep_client_mark_twins(w->pc, st);
	if (prep_need(w->srv, e) != PREP_PRESENT)
		return prep_make_present(&w->ctx, e, true, st);
	/* The server has it: the client's Parse is checked under a scratch name, so its
	 * reply and any error (an aborted transaction, a table dropped since) are
	 * PostgreSQL's own, in order; the scratch statement is closed at once. */
	prep_touch(w->srv, e);
	if (!prep_note_push(w->pc, NOTE_CLIENT_PARSE, NULL, st))
		return false;
	prepmsg_put_parse(w->dst, PREP_CHECK_NAME, rest, rest_len);
	if (!tell_tracker(w, 'P', NULL, 0, TRACKER_NOTED))
		return false;
	if (!prep_note_push(w->pc, NOTE_CHECK_CLOSE, NULL, NULL))
		return false;
	prepmsg_put_close(w->dst, 'S', PREP_CHECK_NAME);
	return tell_tracker(w, 'C', NULL, 0, TRACKER_HIDDEN);
}

/* A Bind or Describe of a named statement: prepared on this server first if need be.
 * *flags: how the caller tells the tracker of it (noted for a twin's). */
static bool use_stmt(struct rewrite *w, const char *name, const char **server_name, int *flags)
{
	struct prep_stmt *st = prep_client_find(w->pc, name);
	*server_name = NULL;
	*flags = 0;
	if (!st)
		return unknown_stmt(w, name);
	bool oom;
	struct prep_entry *e = entry_of(w, st->content, &oom);
	if (!e)
		return oom ? false
			   : refuse(w, "XX000",
				    "prepared statement \"%s\": corral's server "
				    "name collides with another statement",
				    name);
	if (w->c->relay->tracker.lost) {
		/* lost_mode said the server has it (or its Parse runs first): renamed only,
		 * nothing of corral's is sent on a server it no longer tracks. */
		*server_name = e->content->server_name;
		return true;
	}
	if (st->content->kind == PREP_SQL && prep_need(w->srv, e) != PREP_PRESENT)
		return refuse(w, "0A000",
			      "prepared statement \"%s\" was made by SQL PREPARE: in transaction "
			      "pooling corral cannot prepare it again for the extended protocol",
			      name);
	if (!prep_make_present(&w->ctx, e, false, NULL))
		return false;
	*server_name = e->content->server_name;
	if (st->twin) {
		/* Its errors name the server statement, which another name shares: the
		 * note says whose it is (reply_for). */
		if (!prep_note_push(w->pc, NOTE_CLIENT_USE, NULL, NULL))
			return false;
		struct prep_note *n = &w->pc->notes[(w->pc->notes_head + w->pc->notes_len - 1) %
						    w->pc->notes_cap];
		n->stmt_name = strdup(w->shown ? w->shown : name);
		if (!n->stmt_name)
			return false;
		*flags = TRACKER_NOTED;
	}
	return true;
}

/* ---- SQL: PREPARE, EXECUTE, DEALLOCATE, DISCARD ALL ------------------------------- */

/* A simple Query answered with an error in order: a failing Bind, then a Sync for the
 * ReadyForQuery (in a transaction block both leave it failed, as the Query would). */
static bool refuse_query(struct rewrite *w, const char *sqlstate, const char *fmt, const char *name)
{
	if (!refuse(w, sqlstate, fmt, name))
		return false;
	prepmsg_put_empty(w->dst, 'S');
	w->srv->seg++;
	return tell_tracker(w, 'S', NULL, 0, 0);
}

/* Characters in n bytes of text (PostgreSQL counts error positions in characters; a
 * UTF-8 continuation byte is not one). */
static uint32_t chars(const char *p, size_t n)
{
	uint32_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((uint8_t)p[i] & 0xC0) != 0x80;
	return c;
}

/* The note just pushed is of a Query whose text is skip characters of corral's, then
 * the client's text with the name at st->name_at replaced by repl (prep_pos_map). */
static void note_pos(struct rewrite *w, uint32_t skip, const char *text, const struct sql_stmt *st,
		     const char *repl, size_t repl_len)
{
	struct prep_client *pc = w->pc;
	struct prep_note *n = &pc->notes[(pc->notes_head + pc->notes_len - 1) % pc->notes_cap];
	n->pos = (struct prep_pos_map){
		.set = true,
		.skip = skip,
		.name_at = chars(text, st->name_at),
		.repl_len = chars(repl, repl_len),
		.name_len = chars(text + st->name_at, st->after_name - st->name_at),
	};
}

static bool send_query(struct rewrite *w, const char *const *parts, const size_t *lens, size_t n,
		       int flags)
{
	prepmsg_put_query_parts(w->dst, parts, lens, n);
	return tell_tracker(w, 'Q', NULL, 0, flags);
}

static bool sql_prepare(struct rewrite *w, const char *text, const struct sql_stmt *st)
{
	if (w->c->prep_mode == PREP_REFUSE)
		return refuse_query(w, "0A000",
				    "prepared statement \"%s\": named prepared statements are off "
				    "in transaction pooling (corral's max_prepared_statements = 0)",
				    st->name);
	if (prep_client_find(w->pc, st->name))
		return refuse_query(w, "42P05", "prepared statement \"%s\" already exists",
				    st->name);
	const char *body = text + st->after_name;
	size_t body_len = st->end - st->after_name;
	struct prep_content *content = prep_content_new(PREP_SQL, parse_env(w->c), body, body_len);
	if (!content)
		return false;
	struct prep_stmt *stmt = prep_client_add(w->pc, st->name, content);
	prep_content_unref(content);
	if (!stmt)
		return false;
	stmt->pending = true; /* until PostgreSQL answers (must_wait_for_parse) */
	stmt->seg = w->srv->seg;
	bool oom;
	struct prep_entry *e = entry_of(w, stmt->content, &oom);
	if (!e) {
		prep_client_remove(w->pc, st->name);
		return oom ? false
			   : refuse_query(w, "XX000",
					  "prepared statement \"%s\": corral's server "
					  "name collides with another statement",
					  st->name);
	}
	/* PREPARE X itself, so its reply and errors are PostgreSQL's; X is closed first
	 * unless known absent (Close of a missing statement is no error). */
	if (!prep_begin_create(&w->ctx, e, NOTE_SQL_PREPARE, stmt))
		return false;
	const char *x = e->content->server_name;
	note_pos(w, 0, text, st, x, strlen(x));
	const char *parts[] = {text, x, body};
	const size_t lens[] = {st->name_at, strlen(x), body_len};
	return send_query(w, parts, lens, 3, TRACKER_NOTED);
}

/*
 * EXECUTE or DEALLOCATE of a name the client has not prepared: sent for PREP_NONE_NAME
 * (never on a server another client may get: any SQL that could make it pins), so that
 * PostgreSQL answers its own 26000, whatever the shared server holds (another client's
 * corral_... statement among them), renamed back for the client (sql_text_error).  A
 * pinned client's SQL-made statements live on its own server (pin.c), so its names go
 * as they are.
 */
static bool sql_unknown(struct rewrite *w, const char *text, size_t len, const struct sql_stmt *st)
{
	if (w->c->pin_reason) {
		const char *parts[] = {text};
		const size_t lens[] = {strnlen(text, len)};
		return send_query(w, parts, lens, 1, 0);
	}
	if (!prep_note_push(w->pc, NOTE_SQL_TEXT, NULL, NULL))
		return false;
	struct prep_note *n =
		&w->pc->notes[(w->pc->notes_head + w->pc->notes_len - 1) % w->pc->notes_cap];
	n->stmt_name = strdup(st->name);
	if (!n->stmt_name)
		return false;
	note_pos(w, 0, text, st, PREP_NONE_NAME, strlen(PREP_NONE_NAME));
	const char *rest = text + st->after_name;
	const char *parts[] = {text, PREP_NONE_NAME, rest};
	const size_t lens[] = {st->name_at, strlen(PREP_NONE_NAME),
			       strnlen(rest, len - st->after_name)};
	return send_query(w, parts, lens, 3, TRACKER_NOTED);
}

static bool sql_execute(struct rewrite *w, const char *text, size_t len, const struct sql_stmt *st)
{
	struct prep_stmt *stmt = prep_client_find(w->pc, st->name);
	const char *rest = text + st->after_name;
	size_t rest_len = st->end - st->after_name;
	if (!stmt)
		return sql_unknown(w, text, len, st);
	bool oom;
	struct prep_entry *e = entry_of(w, stmt->content, &oom);
	if (!e)
		return oom ? false
			   : refuse_query(w, "XX000",
					  "prepared statement \"%s\": corral's server "
					  "name collides with another statement",
					  st->name);
	/* What comes before the name (EXECUTE, EXPLAIN ... EXECUTE) goes as it is. */
	const char *x = e->content->server_name;
	if (prep_need(w->srv, e) == PREP_PRESENT) {
		prep_touch(w->srv, e);
		if (!prep_note_push(w->pc, NOTE_SQL_TEXT, NULL, NULL))
			return false;
		note_pos(w, 0, text, st, x, strlen(x));
		const char *parts[] = {text, x, rest};
		const size_t lens[] = {st->name_at, strlen(x), rest_len};
		return send_query(w, parts, lens, 3, TRACKER_NOTED);
	}
	if (stmt->content->kind != PREP_SQL)
		return refuse_query(
			w, "0A000",
			"prepared statement \"%s\" was made by a protocol Parse: in "
			"transaction pooling corral cannot prepare it again for EXECUTE",
			st->name);
	/* Prepared in the same query string: one request, one ReadyForQuery, and an error
	 * of the PREPARE (a table dropped since) is the client's EXECUTE's error.  The
	 * newline ends a trailing -- comment. */
	if (!prep_begin_create(&w->ctx, e, NOTE_SQL_EXECUTE, NULL))
		return false;
	const struct prep_content *ct = stmt->content;
	const char *parts[] = {"PREPARE ", x, (const char *)ct->body, "\n;", text, x, rest};
	const size_t lens[] = {8, strlen(x), ct->len, 2, st->name_at, strlen(x), rest_len};
	/* corral's "PREPARE x body\n;" first: its ASCII and the body's characters */
	note_pos(w, (uint32_t)(10 + strlen(x)) + chars((const char *)ct->body, ct->len), text, st,
		 x, strlen(x));
	return send_query(w, parts, lens, 7, TRACKER_HIDDEN);
}

static bool sql_deallocate(struct rewrite *w, const char *text, size_t len,
			   const struct sql_stmt *st)
{
	/* The name goes when PostgreSQL has run the DEALLOCATE (not in an aborted
	 * transaction).  The server's statement is shared (and the LRU's to close):
	 * DEALLOCATE's reply, or its error, comes from a scratch statement, whose PREPARE's
	 * CommandComplete is swallowed. */
	bool oom;
	if (!prep_client_close(w->pc, st->name, NOTE_SQL_DEALLOCATE, w->srv->seg, &oom))
		return oom ? false : sql_unknown(w, text, len, st);
	static const char q[] = "PREPARE " PREP_CHECK_NAME
				" AS SELECT 1;DEALLOCATE " PREP_CHECK_NAME;
	const char *parts[] = {q};
	const size_t lens[] = {sizeof(q) - 1};
	return send_query(w, parts, lens, 1, TRACKER_HIDDEN);
}

static bool rewrite_query(struct rewrite *w, const char *text, size_t len)
{
	len = strnlen(text, len); /* the Query's own NUL is not part of the SQL */
	struct sql_stmt st;
	prepared_sql_parse(text, len, &st);
	switch (st.cmd) {
	case SQL_PREPARE:
		return sql_prepare(w, text, &st);
	case SQL_EXECUTE:
		if (w->c->prep_mode == PREP_ON)
			return sql_execute(w, text, len, &st);
		break;
	case SQL_DEALLOCATE:
		if (w->c->prep_mode == PREP_ON)
			return sql_deallocate(w, text, len, &st);
		break;
	case SQL_DEALLOCATE_ALL:
	case SQL_DISCARD_ALL: {
		/* Runs as it is: the client's names go if it runs (not in a transaction
		 * block, an aborted one), and this server's statements too, whoever
		 * prepared them: from now on each is closed and prepared again where
		 * needed, right whether it ran or not. */
		bool oom;
		if (!prep_client_close(w->pc, NULL, NOTE_SQL_CLEAR, w->srv->seg, &oom))
			return false;
		prep_server_forget(w->srv);
		const char *parts[] = {text};
		const size_t lens[] = {strnlen(text, len)};
		return send_query(w, parts, lens, 1, TRACKER_NOTED);
	}
	default:
		break;
	}
	const char *parts[] = {text};
	const size_t lens[] = {strnlen(text, len)};
	return send_query(w, parts, lens, 1, 0);
}

static bool rewrite_message(struct rewrite *w, char type, const uint8_t *body, size_t len,
			    size_t whole, struct prep_rewrite *rw)
{
	struct prepmsg_name nm;
	if (!prepmsg_stmt_name(type, body, len, true, &nm)) {
		/* check saw it: the names run past NAMES_MAX */
		rw->sqlstate = "54000";
		rw->error = "statement or portal name longer than corral's limit of 8192 bytes";
		return false;
	}
	char key[SQL_NAME_MAX + 1];
	const char *as_sent = nm.name;
	nm.name = stmt_key(nm.name, key);
	w->shown = nm.name == as_sent ? NULL : as_sent;
	const char *server_name;
	int flags;
	switch (type) {
	case 'P':
		return rewrite_parse(w, nm.name, body + nm.after, len - nm.after);
	case 'B':
		if (!use_stmt(w, nm.name, &server_name, &flags))
			return false;
		rw->remaining = (uint32_t)(whole - nm.after);
		if (!server_name) {
			rw->discard = true; /* refused: the parameters go nowhere */
			return true;
		}
		prepmsg_put_bind_head(w->dst, (const char *)body, server_name, rw->remaining);
		return tell_tracker(w, 'B', NULL, 0, flags);
	case 'D':
		if (!use_stmt(w, nm.name, &server_name, &flags))
			return false;
		if (!server_name)
			return true;
		prepmsg_put_describe(w->dst, 'S', server_name);
		return tell_tracker(w, 'D', (const uint8_t *)"S", 1, flags);
	case 'C': {
		/* Only the client's name goes, once PostgreSQL has run the Close (it skips
		 * it after an error); the server's statement stays for others (and for the
		 * LRU).  Close of a statement nobody has is PostgreSQL's own answer. */
		bool oom;
		bool noted = prep_client_close(w->pc, nm.name, NOTE_CLIENT_CLOSE, w->srv->seg,
					       &oom);
		if (oom)
			return false;
		prepmsg_put_close(w->dst, 'S', PREP_NONE_NAME);
		return tell_tracker(w, 'C', NULL, 0, noted ? TRACKER_NOTED : 0);
	}
	default:
		return false;
	}
}

bool prepared_client_rewrite(struct client *c, char type, uint32_t len, struct evbuffer *src,
			     struct evbuffer *dst, struct prep_rewrite *rw)
{
	struct rewrite w = {.c = c, .dst = dst};
	rw->remaining = 0;
	rw->discard = false;
	rw->sqlstate = "53200";
	rw->error = "out of memory";
	w.pc = client_map(c);
	w.srv = server_registry(c);
	if (!w.pc || !w.srv)
		return false;
	w.ctx = (struct prep_ctx){
		.pc = w.pc,
		.srv = w.srv,
		.max_statements = c->worker->cfg->max_prepared_statements,
		.out = dst,
		.sent = tell_tracker,
		.arg = &w,
	};
	size_t whole = len - 4;
	/* What check waited for: all of it, or a Bind up to its statement name. */
	size_t have = evbuffer_get_length(src) - PG_HEADER_LEN;
	size_t n = whole < have ? whole : have;
	if (type == 'B' && n > NAMES_PEEK)
		n = NAMES_PEEK; /* the names are within (check_names); the parameters stream */
	uint8_t *body = malloc(n ? n : 1);
	if (!body)
		return false;
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(src, &pos, PG_HEADER_LEN, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(src, &pos, body, n);
	bool ok;
	if (type == 'Q') {
		ok = rewrite_query(&w, (const char *)body, n);
		w.srv->seg++; /* a Query answers itself (prepared_client_check) */
	} else {
		struct prepmsg_name nm;
		if (type == 'B' && prepmsg_stmt_name(type, body, n, false, &nm))
			n = nm.after; /* the parameters stay in src and stream */
		ok = rewrite_message(&w, type, body, n, whole, rw);
	}
	free(body);
	if (w.tracker_failed) {
		rw->sqlstate = "54000";
		rw->error = "too many requests in flight without replies read";
		return false;
	}
	if (!ok)
		return false;
	evbuffer_drain(src, PG_HEADER_LEN + n);
	if (type != 'B')
		rw->remaining = 0;
	return true;
}

/* ---- server -> client ------------------------------------------------------------ */

/* An error naming one of corral's statements that the server lacks (or has twice):
 * something corral did not see (DEALLOCATE ALL in a function) changed the server. */
static void check_foreign_change(struct client *c, const uint8_t *body, size_t len)
{
	const char *code = pgproto_error_field(body, len, 'C');
	const char *msg = pgproto_error_field(body, len, 'M');
	const char *at = msg ? strstr(msg, "\"corral_") : NULL;
	if (!code || !at || (strcmp(code, "26000") != 0 && strcmp(code, "42P05") != 0))
		return;
	/* corral_<16 hex digits>: a statement of corral's registry (not corral_none, the
	 * name corral's own refusals use, nor corral_check) */
	for (int i = 8; i < 8 + 16; i++)
		if (!((at[i] >= '0' && at[i] <= '9') || (at[i] >= 'a' && at[i] <= 'f')))
			return;
	if (at[24] != '"')
		return;
	if (c->server->prepared)
		prep_server_forget(c->server->prepared);
}

static bool note_is_hidden(const struct prep_note *n)
{
	return n->kind != NOTE_CLIENT_PARSE && n->kind != NOTE_SQL_PREPARE &&
	       n->kind != NOTE_CLIENT_CLOSE && n->kind != NOTE_SQL_CLEAR &&
	       n->kind != NOTE_SQL_TEXT && n->kind != NOTE_CLIENT_USE;
}

/* The error's position (field P) as it reads in the client's text, or 0 when it points
 * into what corral wrote (prep_pos_map). */
static unsigned long client_position(const struct prep_pos_map *m, unsigned long p)
{
	if (p <= m->skip)
		return 0;
	p -= m->skip;
	if (p <= m->name_at)
		return p;
	if (p <= (unsigned long)m->name_at + m->repl_len)
		return (unsigned long)m->name_at + 1; /* in the name: its start */
	return p - m->repl_len + m->name_len;
}

/* PostgreSQL's 26000 for PREP_NONE_NAME in a Query of a name the client has not
 * prepared (sql_unknown): the client's name, as PostgreSQL says it. */
static bool sql_text_error(const struct prep_note *n, const uint8_t *body, size_t len,
			   struct evbuffer *out)
{
	static const char none[] = "prepared statement \"" PREP_NONE_NAME "\" does not exist";
	const char *msg = pgproto_error_field(body, len, 'M');
	if (n->kind != NOTE_SQL_TEXT || !n->stmt_name || !msg || strcmp(msg, none) != 0)
		return false;
	size_t cap = strlen(n->stmt_name) + sizeof(none);
	char *fixed = malloc(cap);
	if (!fixed)
		return false;
	snprintf(fixed, cap, "prepared statement \"%s\" does not exist", n->stmt_name);
	bool ok = prepmsg_put_error_renamed(out, body, len, fixed);
	free(fixed);
	return ok;
}

/* An error of a rewritten Query with a position: given back in the client's terms. */
static bool put_position(const struct prep_note *n, const uint8_t *body, size_t len,
			 struct evbuffer *out)
{
	const char *pos = pgproto_error_field(body, len, 'P');
	if (!n->pos.set || !pos)
		return false;
	char *end;
	unsigned long p = strtoul(pos, &end, 10);
	if (*end || !p)
		return false;
	unsigned long mapped = client_position(&n->pos, p);
	char v[24];
	snprintf(v, sizeof(v), "%lu", mapped);
	return prepmsg_put_error_field(out, body, len, 'P', mapped ? v : NULL);
}

/* What the client gets instead of the server message that decided note n. */
static enum prep_reply reply_for(const struct prep_note *n, int outcome, char type,
				 const uint8_t *body, size_t body_len, struct evbuffer *out)
{
	switch (n->kind) {
	case NOTE_INJECT_PARSE:
	case NOTE_INJECT_CLOSE:
	case NOTE_CHECK_CLOSE:
		/* corral's own: an error stands for the client's next request */
		return outcome == TRACKER_DONE ? PREP_REPLY_SWALLOW : PREP_REPLY_PASS;
	case NOTE_REFUSE: {
		if (outcome != TRACKER_FAILED)
			return PREP_REPLY_LOST; /* PREP_NONE_NAME exists: not ours */
		/* An unknown name: PostgreSQL's own error for PREP_NONE_NAME, renamed, is the
		 * one a direct connection gets (same routine, same fields). */
		const char *code = type == 'E' ? pgproto_error_field(body, body_len, 'C') : NULL;
		if (!(strcmp(n->sqlstate, "26000") == 0 && code && strcmp(code, "26000") == 0 &&
		      prepmsg_put_error_renamed(out, body, body_len, n->message))) {
			evbuffer_drain(out, evbuffer_get_length(out));
			pgproto_put_error(out, "ERROR", n->sqlstate, n->message);
		}
		return PREP_REPLY_REPLACE;
	}
	default:
		return PREP_REPLY_PASS;
	}
}

static enum prep_reply decide(struct client *c, struct prep_client *pc, struct tracker *t,
			      char type, const uint8_t *body, size_t body_len, size_t whole_len,
			      struct evbuffer *out_buf);

/* PostgreSQL's 26000 for PREP_UNKNOWN_PREFIX + name, as it reads for name. */
static bool rename_unknown(const uint8_t *body, size_t len, struct evbuffer *out)
{
	static const char lead[] = "prepared statement \"" PREP_UNKNOWN_PREFIX;
	const char *msg = pgproto_error_field(body, len, 'M');
	if (!msg || strncmp(msg, lead, sizeof(lead) - 1) != 0)
		return false;
	size_t cap = strlen(msg) + 1;
	char *fixed = malloc(cap);
	if (!fixed)
		return false;
	snprintf(fixed, cap, "prepared statement \"%s", msg + sizeof(lead) - 1);
	bool ok = prepmsg_put_error_renamed(out, body, len, fixed);
	free(fixed);
	return ok;
}

/* The first corral statement name (corral_ and 16 hex digits) in an error's message
 * replaced by name.  body: all of it. */
static bool rename_as(const uint8_t *body, size_t len, const char *name, struct evbuffer *out)
{
	const char *msg = pgproto_error_field(body, len, 'M');
	const char *at = msg ? strstr(msg, "\"corral_") : NULL;
	const char *end = at ? strchr(at + 1, '"') : NULL;
	if (!end || (size_t)(end - at - 1) != PREP_NAME_LEN - 1)
		return false;
	size_t cap = strlen(msg) + strlen(name) + 1;
	char *fixed = malloc(cap);
	if (!fixed)
		return false;
	snprintf(fixed, cap, "%.*s\"%s\"%s", (int)(at - msg), msg, name, end + 1);
	bool ok = prepmsg_put_error_renamed(out, body, len, fixed);
	free(fixed);
	return ok;
}

/*
 * An error that names corral's server name of one of the client's statements ("bind
 * message supplies 1 parameters, but prepared statement "corral_..." requires 2") is
 * given the client's name, as PostgreSQL would have said it.  body: all of it.
 */
static bool rename_in_error(struct prep_client *pc, const uint8_t *body, size_t len,
			    struct evbuffer *out)
{
	const char *msg = pgproto_error_field(body, len, 'M');
	const char *at = msg ? strstr(msg, "\"corral_") : NULL;
	if (!at || strlen(at) < PREP_NAME_LEN + 1)
		return false;
	for (uint32_t i = 0; i <= pc->n_buckets; i++)
		for (const struct prep_stmt *st = i < pc->n_buckets ? pc->buckets[i]
								    : pc->forgotten;
		     st; st = st->next) {
			const char *x = st->content->server_name;
			size_t xl = strlen(x);
			if (strncmp(at + 1, x, xl) != 0 || at[1 + xl] != '"')
				continue;
			char fixed[1024];
			int n = snprintf(fixed, sizeof(fixed), "%.*s\"%s\"%s", (int)(at - msg), msg,
					 st->name, at + 2 + xl);
			return n > 0 && (size_t)n < sizeof(fixed) &&
			       prepmsg_put_error_renamed(out, body, len, fixed);
		}
	return false;
}

enum prep_reply prepared_server_reply(struct client *c, char type, const uint8_t *body,
				      size_t body_len, size_t whole_len, struct evbuffer *out_buf)
{
	struct prep_client *pc = c->prep;
	struct tracker *t = &c->relay->tracker;
	if (type == 'E' && c->prep_mode == PREP_ON)
		check_foreign_change(c, body, body_len);
	enum prep_reply reply = decide(c, pc, t, type, body, body_len, whole_len, out_buf);
	if (reply == PREP_REPLY_PASS && type == 'E' && out_buf && body_len == whole_len &&
	    rename_unknown(body, body_len, out_buf))
		return PREP_REPLY_REPLACE;
	/* Only a whole message can be replaced (the relay has all of it when body does). */
	if (reply == PREP_REPLY_PASS && type == 'E' && pc && out_buf && body_len == whole_len &&
	    rename_in_error(pc, body, body_len, out_buf))
		return PREP_REPLY_REPLACE;
	return reply;
}

static enum prep_reply decide(struct client *c, struct prep_client *pc, struct tracker *t,
			      char type, const uint8_t *body, size_t body_len, size_t whole_len,
			      struct evbuffer *out_buf)
{
	if (!pc || !pc->notes_len)
		return PREP_REPLY_PASS;
	if (t->lost) {
		/* The tracker gave up (the server stays with this client, then is closed):
		 * replies to corral's own requests could no longer be told apart, but if
		 * every request waiting is the client's own, its replies pass as they are. */
		for (uint32_t i = 0; i < pc->notes_len; i++)
			if (note_is_hidden(&pc->notes[(pc->notes_head + i) % pc->notes_cap]))
				return PREP_REPLY_LOST;
		prep_notes_abandon(pc);
		return PREP_REPLY_PASS;
	}
	struct prep_server *srv = c->server->prepared;
	enum prep_reply reply = PREP_REPLY_PASS;
	struct prep_note *n;
	uint8_t out[TRACKER_OUTQ];
	int current;
	uint32_t count = tracker_take_outcomes(t, out, &current);
	for (uint32_t i = 0; i < count; i++) {
		n = prep_note_front(pc);
		if (!n)
			return PREP_REPLY_LOST; /* an outcome nobody asked for */
		if ((int)i == current)
			reply = reply_for(n, out[i], type, body, body_len, out_buf);
		/* A twin's Bind / Describe failed: its error is given the name it used (every
		 * twin has the server name rename_in_error would look for). */
		if ((int)i == current && n->kind == NOTE_CLIENT_USE && out[i] == TRACKER_FAILED &&
		    type == 'E' && out_buf && body_len == whole_len &&
		    rename_as(body, body_len, n->stmt_name, out_buf))
			reply = PREP_REPLY_REPLACE;
		if (reply == PREP_REPLY_LOST)
			return reply;
		prep_note_resolve(pc, srv, out[i]);
	}
	/* Every earlier note is resolved: a noted head request is the front note. */
	n = prep_note_front(pc);
	if (type == 'C' && n && tracker_head_noted(t) &&
	    (n->kind == NOTE_SQL_EXECUTE || n->kind == NOTE_SQL_DEALLOCATE) && !n->swallowed_cc) {
		n->swallowed_cc = true; /* the PREPARE before the client's EXECUTE */
		return PREP_REPLY_SWALLOW;
	}
	/* A rewritten Query's error comes before its ReadyForQuery decides it. */
	if (type == 'E' && reply == PREP_REPLY_PASS && n && tracker_head_noted(t) && out_buf &&
	    (sql_text_error(n, body, body_len, out_buf) ||
	     put_position(n, body, body_len, out_buf)))
		return PREP_REPLY_REPLACE;
	return reply;
}

enum prep_mode prepared_mode(const struct client *c)
{
	if (c->pool->mode == POOL_MODE_SESSION)
		return PREP_OFF;
	return c->worker->cfg->max_prepared_statements > 0 ? PREP_ON : PREP_REFUSE;
}

struct evbuffer *prepared_reply_buffer(struct client *c)
{
	return c->prep ? c->prep->reply : NULL;
}

void prepared_link_end(struct client *c)
{
	if (c->prep)
		prep_client_forget_buried(c->prep);
	if (c->prep && c->prep->notes_len) {
		/* Only notes of the link that ends; the server's registry learns that the
		 * outcome of what they sent is unknown. */
		prep_notes_abandon(c->prep);
	}
}

void prepared_client_free(struct client *c)
{
	prep_client_free(c->prep);
	c->prep = NULL;
}
