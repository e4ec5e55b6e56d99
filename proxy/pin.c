#include "proxy/pin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stream.h"

#include "common/log.h"
#include "pool/pool.h"
#include "pool/stats.h"
#include "proxy/client.h"
#include "proxy/client_stats.h"
#include "proxy/pgproto.h"
#include "proxy/pin_scan.h"
#include "proxy/relay.h"
#include "proxy/session_params.h"
#include "proxy/set_carry.h"

_Static_assert(PIN_REASONS <= STATS_PIN_REASONS, "pool/stats.h counts every pin reason");

/* How much of the statement a notice or error quotes. */
#define QUOTE_MAX 120

static void count(struct client *c, enum stats_pin_action a, enum pin_reason r)
{
	CLIENT_STAT_ADD(c, pin_by_reason[a][r], 1);
}

static void describe(const struct pin_find *f, const char *text, char *out, size_t cap)
{
	char stmt[QUOTE_MAX + 4];
	size_t n = f->stmt_len < QUOTE_MAX ? f->stmt_len : QUOTE_MAX;
	memcpy(stmt, text + f->stmt_start, n);
	strcpy(stmt + n, f->stmt_len > QUOTE_MAX ? "..." : "");
	for (size_t i = 0; i < n; i++)
		if (stmt[i] == '\n' || stmt[i] == '\r' || stmt[i] == '\t')
			stmt[i] = ' ';
	if (f->reason == PIN_SET)
		snprintf(out, cap, "%s (\"%s\") in \"%s\"", pin_reason_what(f->reason), f->setting,
			 stmt);
	else
		snprintf(out, cap, "%s in \"%s\"", pin_reason_what(f->reason), stmt);
}

static void answer_refusal(struct client *c, const struct pin_find *f, const char *text)
{
	char what[QUOTE_MAX + 128], msg[QUOTE_MAX + 512];
	describe(f, text, what, sizeof(what));
	snprintf(msg, sizeof(msg),
		 "corral refuses %s: in %s pooling it would stay on a server connection other "
		 "clients share (pin_policy = error; pin_policy = pin keeps the connection for "
		 "this client instead)",
		 what, pool_mode_name(c->pool->mode));
	pgproto_put_error(stream_output(c->io), "ERROR", "0A000", msg);
	count(c, STATS_PIN_REFUSE, f->reason);
}

static void warn(struct client *c, const struct pin_find *f, const char *text)
{
	char what[QUOTE_MAX + 128], msg[QUOTE_MAX + 512];
	describe(f, text, what, sizeof(what));
	snprintf(msg, sizeof(msg),
		 "corral: %s stays on the server connection, which goes back to the pool after "
		 "this transaction: later statements may run on another connection, and other "
		 "clients may see it (pin_policy = warn)",
		 what);
	pgproto_put_notice(stream_output(c->io), "WARNING", "01000", msg);
	c->pin_warned = true;
	count(c, STATS_PIN_WARN, f->reason);
}

static void pin(struct client *c, const struct pin_find *f, const char *text)
{
	char what[QUOTE_MAX + 128], ids[400], clean[2 * QUOTE_MAX + 256];
	c->pin_reason = (uint8_t)f->reason;
	count(c, STATS_PIN, f->reason);
	describe(f, text, what, sizeof(what));
	log_info("event=client_pinned client=%llu %s reason=%s what=\"%s\"",
		 (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
		 pin_reason_name(f->reason), log_clean(what, clean, sizeof(clean)));
}

/* ---- SET / RESET carried -------------------------------------------------------- */

struct set_pending {
	struct set_carry sets[SET_CARRY_MAX];
	int n;
	bool failed;   /* an ErrorResponse: the Query's implicit transaction rolled back */
	bool in_block; /* sent inside a transaction block: takes effect if it commits */
	/* From an unnamed Parse (extended protocol): it takes effect only if that statement
	 * is bound to the unnamed portal and executed before the Sync. */
	bool from_parse, bound, executed;
	bool rollback; /* (c->set_block) a ROLLBACK's CommandComplete was seen */
};

void pin_client_welcome(struct client *c)
{
	c->startup_params = calloc(1, sizeof(*c->startup_params));
	if (c->startup_params)
		params_copy(c->startup_params, &c->params);
}

void pin_client_free(struct client *c)
{
	free(c->set_pending);
	c->set_pending = NULL;
	free(c->set_block);
	c->set_block = NULL;
	if (c->startup_params) {
		params_clear(c->startup_params);
		free(c->startup_params);
		c->startup_params = NULL;
	}
}

void pin_carry_restored(struct client *c)
{
	struct set_pending *p = c->set_pending;
	if (!p || p->from_parse)
		return;
	for (int i = 0; i < p->n; i++)
		p->sets[i].restored = p->sets[i].reset;
}

static bool stmt_pins(const char *stmt, size_t len, void *arg)
{
	struct pin_find f;
	(void)arg;
	return pin_scan(stmt, len, session_params_tracked, &f) != PIN_NONE;
}

/* A Query whose only state is SET / RESET corral can carry: noted for its answer.
 * Only when nothing else is in flight and no transaction is open, so the next
 * ReadyForQuery is this Query's and ends its implicit transaction. */
static bool try_carry(struct client *c, const char *text, size_t len)
{
	char status = relay_tx_status(c->relay);
	if (!c->startup_params || c->set_pending || !relay_between_queries(c->relay) ||
	    (status != 'I' && status != 'T'))
		return false;
	struct set_pending *p = calloc(1, sizeof(*p));
	if (!p)
		return false;
	p->in_block = status == 'T';
	if (!set_carry_collect(text, len, stmt_pins, NULL, p->sets, &p->n) || p->n == 0) {
		free(p);
		return false;
	}
	c->set_pending = p;
	return true;
}

/* After RESET ALL corral set every startup value back (session_params_restore_sql):
 * the server has them as corral set them. */
static bool restored_all(struct server *s, const struct param_set *startup)
{
	for (size_t i = 0; i < startup->n; i++)
		if (session_params_restorable(startup->names[i]) &&
		    !params_set(&s->applied, startup->names[i], startup->values[i]))
			return false;
	return true;
}

/* One carried SET / RESET took effect on c's server. */
static bool apply_one(struct client *c, const struct set_carry *sc)
{
	struct server *s = c->server;
	if (sc->reset && strcmp(sc->name, "all") == 0) {
		/* Back to the session defaults: the startup values, as in PostgreSQL; the
		 * server lost everything corral applied but identity. */
		params_copy(&c->params, c->startup_params);
		session_params_after_reset(s, "RESET ALL");
		return !sc->restored || restored_all(s, c->startup_params);
	}
	if (sc->reset) {
		const char *startup = params_get(c->startup_params, sc->name);
		if (!startup) /* (out of memory: false, and the client keeps this server) */
			return params_remove(&s->applied, sc->name) &&
			       params_remove(&c->params, sc->name);
		/* Restored: the server has it as corral set it, for the next link to reset;
		 * else the server's default, which the next link brings to startup again. */
		if (!sc->restored) {
			if (!params_remove(&s->applied, sc->name))
				return false;
		} else if (!params_set(&s->applied, sc->name, startup)) {
			return false;
		}
		return params_set(&c->params, sc->name, startup);
	}
	/* The server has it now, as if corral had set it: the next client's link resets
	 * it, this client's next server gets it. */
	return params_set(&c->params, sc->name, sc->value) &&
	       params_set(&s->applied, sc->name, sc->value);
}

/* What the server has is not known for sure any more: it stays with this client. */
static void pin_unsure(struct client *c, const char *name)
{
	struct pin_find f = {.reason = PIN_SET, .stmt_len = 0};
	snprintf(f.setting, sizeof(f.setting), "%s", name);
	if (!c->pin_reason)
		pin(c, &f, "");
	free(c->set_block);
	c->set_block = NULL;
}

static bool apply_all(struct client *c, const struct set_pending *p)
{
	bool ok = true;
	for (int i = 0; ok && i < p->n; i++)
		ok = apply_one(c, &p->sets[i]);
	c->param_sig = 0;
	c->server->param_sig = 0;
	return ok;
}

/* The block's CommandComplete: COMMIT makes its SETs the session's; ROLLBACK undoes
 * them if the block ends with it (ROLLBACK TO SAVEPOINT undoes only some: unsure). */
static void block_command(struct client *c, const uint8_t *body, size_t body_len)
{
	struct set_pending *b = c->set_block;
	const char *tag = (const char *)body;
	if (!body_len || !memchr(body, '\0', body_len))
		return;
	if (strcmp(tag, "COMMIT") == 0) {
		if (!apply_all(c, b))
			pin_unsure(c, b->sets[0].name);
		free(c->set_block);
		c->set_block = NULL;
	} else if (strcmp(tag, "ROLLBACK") == 0) {
		b->rollback = true;
	} else if (strncmp(tag, "PREPARE", 7) == 0) {
		pin_unsure(c, b->sets[0].name);
	}
}

/* A Query with SETs inside a block answered without error: they wait for its end. */
static bool add_to_block(struct client *c, const struct set_pending *p)
{
	if (!c->set_block) {
		c->set_block = calloc(1, sizeof(*c->set_block));
		if (!c->set_block)
			return false;
	}
	struct set_pending *b = c->set_block;
	if (b->n + p->n > SET_CARRY_MAX)
		return false;
	memcpy(&b->sets[b->n], p->sets, (size_t)p->n * sizeof(p->sets[0]));
	b->n += p->n;
	return true;
}

void pin_server_msg(struct client *c, char type, const uint8_t *body, size_t body_len)
{
	struct set_pending *p = c->set_pending;
	if (type == 'C' && c->set_block) {
		block_command(c, body, body_len);
		return;
	}
	if (type == 'E' && p) {
		p->failed = true;
		return;
	}
	if (type != 'Z')
		return;
	char status = body_len ? (char)body[0] : '?';
	if (p) {
		c->set_pending = NULL;
		if (p->failed || (p->from_parse && !p->executed)) {
			/* Nothing of it took effect (its transaction, or block, failed; or the
			 * statement was only parsed). */
		} else if (p->in_block && status == 'T') {
			if (!add_to_block(c, p))
				pin_unsure(c, p->sets[0].name);
		} else if (p->in_block || status != 'I' || !apply_all(c, p)) {
			pin_unsure(c, p->sets[0].name);
		}
		free(p);
	}
	struct set_pending *b = c->set_block;
	if (b && (b->rollback || status == 'I')) {
		/* The block ended: by ROLLBACK (its SETs are undone), or by something corral
		 * did not see as COMMIT or ROLLBACK, or a ROLLBACK TO SAVEPOINT that kept the
		 * block open: unsure. */
		if (!(b->rollback && status == 'I'))
			pin_unsure(c, b->sets[0].name);
		free(c->set_block);
		c->set_block = NULL;
	}
}

/* Bind and Execute after a carried SET's unnamed Parse: whether it runs.  Anything
 * else that could run another statement there (a second Parse) makes it unsure. */
static enum pin_verdict follow_extended(struct client *c, char type, uint32_t len,
					struct evbuffer *src, size_t off, size_t avail)
{
	struct set_pending *p = c->set_pending;
	if (type == 'P') {
		c->set_pending = NULL;
		pin_unsure(c, p->sets[0].name);
		free(p);
		return PIN_PASS;
	}
	char head[2];
	if (len - 4 < 2 || avail - off < PG_HEADER_LEN + 2)
		return len - 4 < 2 ? PIN_PASS : PIN_WAIT;
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(src, &pos, off + PG_HEADER_LEN, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(src, &pos, head, sizeof(head));
	if (type == 'B') /* portal "" and statement "": our statement in the unnamed portal */
		p->bound = head[0] == '\0' && head[1] == '\0';
	else if (type == 'E' && head[0] == '\0' && p->bound)
		p->executed = true;
	return PIN_PASS;
}

/* Whether c's session reads '...' with backslash escapes (standard_conforming_strings
 * off: a reported setting, so c->params has the session's value). */
static bool scs_off(const struct client *c)
{
	const char *scs = params_get(&c->params, "standard_conforming_strings");
	return scs && strcmp(scs, "off") == 0;
}

/* A refused Parse: the backend would skip to Sync after its error, so corral does. */
static enum pin_verdict skip_to_sync(struct client *c, char type)
{
	if (type != 'S')
		return PIN_ANSWERED;
	c->pin_skip = false;
	pgproto_put_ready(stream_output(c->io), relay_tx_status(c->relay));
	return PIN_ANSWERED;
}

enum pin_verdict pin_client_check(struct client *c, char type, uint32_t len, struct evbuffer *src,
				  size_t off, size_t avail)
{
	if (c->pin_skip)
		return avail - off < (size_t)len + 1 ? PIN_WAIT : skip_to_sync(c, type);
	if (c->set_pending && c->set_pending->from_parse &&
	    (type == 'B' || type == 'E' || type == 'P')) {
		enum pin_verdict v = follow_extended(c, type, len, src, off, avail);
		if (v != PIN_PASS || type != 'P')
			return v;
	}
	if ((type != 'Q' && type != 'P') || c->pin_reason)
		return PIN_PASS; /* a pinned client's server is its own already */
	if (avail - off < (size_t)len + 1)
		return PIN_WAIT;
	/* One contiguous copy of the message, where it is (evbuffer_pullup moves it only
	 * if it spans chunks). */
	const unsigned char *m = evbuffer_pullup(src, (ev_ssize_t)(off + len + 1));
	if (!m)
		return PIN_PASS; /* out of memory: the tracker will say so */
	const char *text = (const char *)m + off + PG_HEADER_LEN;
	size_t text_len = len - 4;
	if (type == 'P') {
		const char *nul = memchr(text, '\0', text_len); /* the statement's name */
		if (!nul)
			return PIN_PASS; /* malformed: PostgreSQL refuses it */
		text_len -= (size_t)(nul + 1 - text);
		text = nul + 1;
	}
	struct pin_find f;
	/* Backslashes are read as the session reads them; the SET reader (set_carry.c)
	 * knows only standard strings, so such text is not carried. */
	bool backslashed = memchr(text, '\\', text_len) && scs_off(c); /* memchr: cheaper */
	if (pin_scan_ex(text, text_len, session_params_tracked, backslashed, type == 'Q', &f) ==
	    PIN_NONE)
		return PIN_PASS;
	bool unnamed = type == 'Q' || text == (const char *)m + off + PG_HEADER_LEN + 1;
	if (f.reason == PIN_SET && unnamed && !backslashed && try_carry(c, text, text_len)) {
		c->set_pending->from_parse = type == 'P';
		return PIN_PASS; /* carried: pin_server_msg takes it on at its ReadyForQuery */
	}
	switch (c->pool->pin_policy) {
	case PIN_POLICY_WARN:
		/* A notice may go between two of the server's messages, never inside one. */
		if (!c->pin_warned && c->relay->to_client_remaining == 0)
			warn(c, &f, text);
		return PIN_PASS;
	case PIN_POLICY_ERROR:
		/* The error must come after every reply to what the client sent before. */
		if (!relay_between_queries(c->relay))
			return PIN_HOLD;
		answer_refusal(c, &f, text);
		if (type == 'Q') {
			pgproto_put_ready(stream_output(c->io), relay_tx_status(c->relay));
		} else {
			c->pin_skip = true;
		}
		return PIN_ANSWERED;
	default:
		pin(c, &f, text);
		return PIN_PASS;
	}
}
