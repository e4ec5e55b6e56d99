#include "proxy/prepared.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/siphash.h"
#include "proxy/prepared_msg.h"
#include "proxy/tracker.h"

/* ---- contents ------------------------------------------------------------------- */

/* Drawn once per process and never shown: server names cannot be guessed or made to
 * collide by a client (DESIGN.md §12, as the session parameter signatures). */
static uint8_t name_key[16];
static pthread_once_t name_key_once = PTHREAD_ONCE_INIT;

static void make_name_key(void)
{
	if (RAND_bytes(name_key, sizeof(name_key)) != 1)
		for (size_t i = 0; i < sizeof(name_key); i++) /* never: RAND_bytes is seeded */
			name_key[i] = (uint8_t)(rand() >> 3);
}

struct prep_content *prep_content_new(enum prep_kind kind, uint64_t env, const void *body,
				      size_t len)
{
	if (len > UINT32_MAX)
		return NULL;
	struct prep_content *c = malloc(sizeof(*c) + len);
	if (!c)
		return NULL;
	pthread_once(&name_key_once, make_name_key);
	struct siphash h;
	siphash_init(&h, name_key);
	uint8_t k = (uint8_t)kind;
	siphash_update(&h, &k, 1);
	siphash_update(&h, &env, sizeof(env));
	siphash_update(&h, body, len);
	atomic_init(&c->refs, 1);
	c->hash = siphash_final(&h);
	c->env = env;
	c->kind = (uint8_t)kind;
	c->len = (uint32_t)len;
	memcpy(c->body, body, len);
	snprintf(c->server_name, sizeof(c->server_name), "corral_%016llx",
		 (unsigned long long)c->hash);
	return c;
}

static struct prep_content *content_ref(struct prep_content *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void prep_content_unref(struct prep_content *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		free(c);
}

bool prep_content_equal(const struct prep_content *a, const struct prep_content *b)
{
	return a == b || (a->kind == b->kind && a->env == b->env && a->len == b->len &&
			  memcmp(a->body, b->body, a->len) == 0);
}

/* ---- a server's registry -------------------------------------------------------- */

#define INITIAL_BUCKETS 16

struct prep_server *prep_server_new(void)
{
	struct prep_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->buckets = calloc(INITIAL_BUCKETS, sizeof(*s->buckets));
	if (!s->buckets) {
		free(s);
		return NULL;
	}
	s->n_buckets = INITIAL_BUCKETS;
	list_init(&s->lru);
	return s;
}

static void entry_free(struct prep_entry *e)
{
	prep_content_unref(e->content);
	free(e);
}

void prep_server_free(struct prep_server *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n_buckets; i++)
		for (struct prep_entry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			entry_free(e);
		}
	free(s->buckets);
	free(s);
}

static struct prep_entry **slot_of(struct prep_server *s, uint64_t hash)
{
	return &s->buckets[hash & (s->n_buckets - 1)];
}

static void grow_buckets(struct prep_server *s)
{
	uint32_t n = s->n_buckets * 2;
	struct prep_entry **b = calloc(n, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (uint32_t i = 0; i < s->n_buckets; i++)
		for (struct prep_entry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			struct prep_entry **slot = &b[e->content->hash & (n - 1)];
			e->next = *slot;
			*slot = e;
		}
	free(s->buckets);
	s->buckets = b;
	s->n_buckets = n;
}

/* An entry that is not on the server, not in flight and not doubtful is forgotten. */
static void maybe_drop_entry(struct prep_server *s, struct prep_entry *e)
{
	if (e->exists || e->uncertain || e->inflight || e->in_lru)
		return;
	for (struct prep_entry **p = slot_of(s, e->content->hash); *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			s->n_entries--;
			entry_free(e);
			return;
		}
}

struct prep_entry *prep_server_entry(struct prep_server *s, struct prep_content *content,
				     bool *collision)
{
	*collision = false;
	for (struct prep_entry *e = *slot_of(s, content->hash); e; e = e->next) {
		if (e->content->hash != content->hash)
			continue;
		if (!prep_content_equal(e->content, content)) {
			*collision = true; /* one in 2^64, under a key nobody knows */
			return NULL;
		}
		return e;
	}
	struct prep_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->content = content_ref(content);
	list_init(&e->lru);
	struct prep_entry **slot = slot_of(s, content->hash);
	e->next = *slot;
	*slot = e;
	if (++s->n_entries > s->n_buckets)
		grow_buckets(s);
	return e;
}

void prep_server_forget(struct prep_server *s)
{
	for (uint32_t i = 0; i < s->n_buckets; i++)
		for (struct prep_entry *e = s->buckets[i]; e; e = e->next) {
			e->uncertain = true;
			e->stale = e->inflight;
		}
}

enum prep_need prep_need(const struct prep_server *s, const struct prep_entry *e)
{
	if (!e->inflight && !e->uncertain)
		return e->exists ? PREP_PRESENT : PREP_PARSE;
	/* In flight: sent in this segment, its outcome is ours too (a failed Parse makes
	 * the backend skip to Sync, this message included). */
	if (e->last_op_seg == s->seg && e->last_op == PREP_OP_PARSE)
		return PREP_PRESENT;
	if (e->last_op_seg == s->seg && e->last_op == PREP_OP_CLOSE && !e->uncertain)
		return PREP_PARSE;
	return PREP_CLOSE_PARSE; /* a Close of a missing statement is no error */
}

void prep_touch(struct prep_server *s, struct prep_entry *e)
{
	if (e->in_lru) {
		list_del(&e->lru);
	} else {
		e->in_lru = true;
		s->n_lru++;
	}
	list_prepend(&s->lru, &e->lru);
}

/* ---- a client's map ------------------------------------------------------------- */

struct prep_client *prep_client_new(void)
{
	struct prep_client *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->buckets = calloc(INITIAL_BUCKETS, sizeof(*pc->buckets));
	pc->reply = evbuffer_new();
	if (!pc->buckets || !pc->reply) {
		if (pc->reply)
			evbuffer_free(pc->reply);
		free(pc->buckets);
		free(pc);
		return NULL;
	}
	pc->n_buckets = INITIAL_BUCKETS;
	return pc;
}

static void note_clear(struct prep_note *n)
{
	free(n->stmt_name);
	free(n->message);
	memset(n, 0, sizeof(*n));
}

void prep_client_free(struct prep_client *pc)
{
	if (!pc)
		return;
	prep_notes_abandon(pc);
	prep_client_clear(pc);
	prep_client_forget_buried(pc);
	free(pc->buckets);
	free(pc->notes);
	evbuffer_free(pc->reply);
	free(pc);
}

/* FNV-1a: the map is the client's own, so a client can only slow itself down. */
static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

struct prep_stmt *prep_client_find(const struct prep_client *pc, const char *name)
{
	for (struct prep_stmt *st = pc->buckets[name_hash(name) & (pc->n_buckets - 1)]; st;
	     st = st->next)
		if (!st->closing && strcmp(st->name, name) == 0)
			return st;
	return NULL;
}

static void client_grow(struct prep_client *pc)
{
	uint32_t n = pc->n_buckets * 2;
	struct prep_stmt **b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (uint32_t i = 0; i < pc->n_buckets; i++)
		for (struct prep_stmt *st = pc->buckets[i], *next; st; st = next) {
			next = st->next;
			struct prep_stmt **slot = &b[name_hash(st->name) & (n - 1)];
			st->next = *slot;
			*slot = st;
		}
	free(pc->buckets);
	pc->buckets = b;
	pc->n_buckets = n;
}

struct prep_stmt *prep_client_add(struct prep_client *pc, const char *name,
				  struct prep_content *content)
{
	size_t n = strlen(name) + 1;
	struct prep_stmt *st = malloc(sizeof(*st) + n);
	if (!st)
		return NULL;
	memcpy(st->name, name, n);
	st->content = content_ref(content);
	st->gen = ++pc->gen;
	st->pending = false;
	st->closing = false;
	st->close_ticket = 0;
	st->seg = 0;
	st->twin = false;
	struct prep_stmt **slot = &pc->buckets[name_hash(name) & (pc->n_buckets - 1)];
	st->next = *slot;
	*slot = st;
	if (++pc->n_stmts > pc->n_buckets)
		client_grow(pc);
	return st;
}

void prep_client_mark_twins(struct prep_client *pc, struct prep_stmt *st)
{
	for (uint32_t i = 0; i < pc->n_buckets; i++)
		for (struct prep_stmt *o = pc->buckets[i]; o; o = o->next)
			if (o != st &&
			    strcmp(o->content->server_name, st->content->server_name) == 0)
				o->twin = st->twin = true;
}

/* A forgotten statement is kept until the link ends: a reply in flight may still name
 * its server statement (prepared_relay.c renames it back in errors). */
static void bury(struct prep_client *pc, struct prep_stmt *st)
{
	st->next = pc->forgotten;
	pc->forgotten = st;
}

void prep_client_forget_buried(struct prep_client *pc)
{
	for (struct prep_stmt *st = pc->forgotten, *next; st; st = next) {
		next = st->next;
		prep_content_unref(st->content);
		free(st);
	}
	pc->forgotten = NULL;
}

static bool remove_stmt(struct prep_client *pc, const char *name, uint64_t gen)
{
	for (struct prep_stmt **p = &pc->buckets[name_hash(name) & (pc->n_buckets - 1)]; *p;
	     p = &(*p)->next) {
		struct prep_stmt *st = *p;
		if (strcmp(st->name, name) != 0 || (gen ? st->gen != gen : st->closing))
			continue;
		*p = st->next;
		bury(pc, st);
		pc->n_stmts--;
		return true;
	}
	return false;
}

static struct prep_stmt *find_gen(const struct prep_client *pc, const char *name, uint64_t gen)
{
	for (struct prep_stmt *st = pc->buckets[name_hash(name) & (pc->n_buckets - 1)]; st;
	     st = st->next)
		if (st->gen == gen && strcmp(st->name, name) == 0)
			return st;
	return NULL;
}

static void confirm_stmt(struct prep_client *pc, const char *name, uint64_t gen)
{
	struct prep_stmt *st = find_gen(pc, name, gen);
	if (st)
		st->pending = false;
}

bool prep_client_remove(struct prep_client *pc, const char *name)
{
	return remove_stmt(pc, name, 0);
}

void prep_client_clear(struct prep_client *pc)
{
	for (uint32_t i = 0; i < pc->n_buckets; i++) {
		for (struct prep_stmt *st = pc->buckets[i], *next; st; st = next) {
			next = st->next;
			bury(pc, st);
		}
		pc->buckets[i] = NULL;
	}
	pc->n_stmts = 0;
}

bool prep_client_close(struct prep_client *pc, const char *name, enum prep_note_kind kind,
		       uint64_t seg, bool *oom)
{
	*oom = false;
	uint64_t ticket = pc->tickets + 1;
	struct prep_stmt *one = NULL;
	uint32_t n = 0;
	if (name) {
		one = prep_client_find(pc, name);
		if (one) {
			one->closing = true;
			one->close_ticket = ticket;
			n = 1;
		}
	} else {
		for (uint32_t i = 0; i < pc->n_buckets; i++)
			for (struct prep_stmt *st = pc->buckets[i]; st; st = st->next)
				if (!st->closing) {
					st->closing = true;
					st->close_ticket = ticket;
					n++;
				}
	}
	if (!n && kind != NOTE_SQL_CLEAR)
		return false;
	/* DISCARD ALL of no names is still noted: its answer must not be mistaken. */
	if (!prep_note_push(pc, kind, NULL, one)) {
		*oom = true;
		if (one)
			one->closing = false; /* nothing was sent: as before */
		return false;
	}
	struct prep_note *note = &pc->notes[(pc->notes_head + pc->notes_len - 1) % pc->notes_cap];
	note->ticket = ticket;
	note->seg = seg;
	pc->tickets = ticket;
	if (!pc->n_closing++)
		pc->closing_seg = seg;
	return true;
}

/* The note of a request that forgot names was answered: done, they go; else back. */
static void closing_answered(struct prep_client *pc, const struct prep_note *n, bool done)
{
	for (uint32_t i = 0; i < pc->n_buckets; i++)
		for (struct prep_stmt **p = &pc->buckets[i]; *p;) {
			struct prep_stmt *st = *p;
			if (!st->closing || st->close_ticket != n->ticket) {
				p = &st->next;
				continue;
			}
			if (!done) {
				st->closing = false;
				p = &st->next;
				continue;
			}
			*p = st->next;
			bury(pc, st);
			pc->n_stmts--;
		}
	/* The next one's segment is the oldest now (notes are in order). */
	pc->n_closing--;
	for (uint32_t i = 1; pc->n_closing && i < pc->notes_len; i++) {
		const struct prep_note *m = &pc->notes[(pc->notes_head + i) % pc->notes_cap];
		if (m->ticket) {
			pc->closing_seg = m->seg;
			break;
		}
	}
}

/* ---- notes ---------------------------------------------------------------------- */

bool prep_note_push(struct prep_client *pc, enum prep_note_kind kind, struct prep_entry *e,
		    const struct prep_stmt *stmt)
{
	if (pc->notes_len == pc->notes_cap) {
		uint32_t cap = pc->notes_cap ? pc->notes_cap * 2 : 8;
		struct prep_note *n = calloc(cap, sizeof(*n));
		if (!n)
			return false;
		for (uint32_t i = 0; i < pc->notes_len; i++)
			n[i] = pc->notes[(pc->notes_head + i) % pc->notes_cap];
		free(pc->notes);
		pc->notes = n;
		pc->notes_cap = cap;
		pc->notes_head = 0;
	}
	struct prep_note *n = &pc->notes[(pc->notes_head + pc->notes_len) % pc->notes_cap];
	memset(n, 0, sizeof(*n));
	if (stmt) {
		n->stmt_name = strdup(stmt->name);
		if (!n->stmt_name)
			return false;
		n->stmt_gen = stmt->gen;
	}
	n->kind = (uint8_t)kind;
	n->entry = e;
	pc->notes_len++;
	return true;
}

struct prep_note *prep_note_front(struct prep_client *pc)
{
	return pc->notes_len ? &pc->notes[pc->notes_head] : NULL;
}

static void note_pop(struct prep_client *pc)
{
	note_clear(&pc->notes[pc->notes_head]);
	pc->notes_head = (pc->notes_head + 1) % pc->notes_cap;
	pc->notes_len--;
}

/* A Parse or Close of e was answered (or will never be). */
static void op_answered(struct prep_entry *e, enum prep_op op, bool done)
{
	e->inflight--;
	if (e->stale) {
		e->stale--; /* sent before something dropped statements: still uncertain */
		return;
	}
	if (done) {
		e->exists = op == PREP_OP_PARSE;
		e->uncertain = false;
	}
	/* A failed Parse created nothing and a skipped one changed nothing: an injected
	 * Parse only ever follows knowledge that the statement is absent, or a Close. */
}

void prep_note_resolve(struct prep_client *pc, struct prep_server *srv, int outcome)
{
	struct prep_note *n = prep_note_front(pc);
	if (!n)
		return;
	bool done = outcome == TRACKER_DONE;
	switch (n->kind) {
	case NOTE_INJECT_PARSE:
	case NOTE_SQL_PREPARE:
	case NOTE_SQL_EXECUTE:
	case NOTE_CLIENT_PARSE:
		if (n->entry) {
			/* SQL EXECUTE: done means the whole query string ran; its PREPARE ran
			 * if its CommandComplete came. */
			bool made = n->kind == NOTE_SQL_EXECUTE ? n->swallowed_cc : done;
			op_answered(n->entry, PREP_OP_PARSE, made);
		}
		if (n->stmt_name && !done && n->kind != NOTE_SQL_EXECUTE)
			remove_stmt(pc, n->stmt_name,
				    n->stmt_gen); /* as PostgreSQL: no statement */
		else if (n->stmt_name)
			confirm_stmt(pc, n->stmt_name, n->stmt_gen);
		break;
	case NOTE_INJECT_CLOSE:
		op_answered(n->entry, PREP_OP_CLOSE, done);
		if (!done && n->entry->exists && !n->entry->in_lru) {
			/* An eviction that never ran: still there, and least recently used. */
			n->entry->in_lru = true;
			list_append(&srv->lru, &n->entry->lru);
			srv->n_lru++;
		}
		break;
	case NOTE_CLIENT_CLOSE:
	case NOTE_SQL_DEALLOCATE:
	case NOTE_SQL_CLEAR:
		closing_answered(pc, n, done);
		break;
	default:
		break;
	}
	if (n->entry)
		maybe_drop_entry(srv, n->entry);
	note_pop(pc);
}

void prep_notes_abandon(struct prep_client *pc)
{
	while (pc->notes_len) {
		struct prep_note *n = prep_note_front(pc);
		if (n->ticket)
			closing_answered(pc, n, true); /* as the client asked */
		else if (n->stmt_name)
			confirm_stmt(pc, n->stmt_name, n->stmt_gen); /* nothing to wait for now */
		if (n->entry) {
			n->entry->inflight--;
			if (n->entry->stale)
				n->entry->stale--;
			n->entry->uncertain = true;
		}
		note_pop(pc);
	}
}

/* ---- making a statement present ------------------------------------------------- */

static bool send_close(struct prep_ctx *ctx, struct prep_entry *e, enum prep_note_kind kind)
{
	if (!prep_note_push(ctx->pc, kind, e, NULL))
		return false;
	e->inflight++;
	e->last_op = PREP_OP_CLOSE;
	e->last_op_seg = ctx->srv->seg;
	prepmsg_put_close(ctx->out, 'S', e->content->server_name);
	return ctx->sent(ctx->arg, 'C', NULL, 0, TRACKER_HIDDEN);
}

/* Past the limit, the least recently used statements are closed (never e). */
static bool evict(struct prep_ctx *ctx, struct prep_entry *keep)
{
	struct prep_server *s = ctx->srv;
	while (s->n_lru > (uint32_t)ctx->max_statements) {
		struct list *last = list_last(&s->lru);
		struct prep_entry *victim = list_entry(last, struct prep_entry, lru);
		if (victim == keep)
			break;
		list_del(&victim->lru);
		victim->in_lru = false;
		s->n_lru--;
		if (!send_close(ctx, victim, NOTE_INJECT_CLOSE))
			return false;
		if (victim->in_lru)
			break; /* skipped at once (the backend skips to Sync): back in the LRU,
				* and so would the next be; the next segment evicts */
	}
	return true;
}

bool prep_begin_create(struct prep_ctx *ctx, struct prep_entry *e, enum prep_note_kind kind,
		       const struct prep_stmt *stmt)
{
	enum prep_need need = prep_need(ctx->srv, e);
	prep_touch(ctx->srv, e);
	if (!evict(ctx, e))
		return false;
	if (need != PREP_PARSE && !send_close(ctx, e, NOTE_INJECT_CLOSE))
		return false;
	if (!prep_note_push(ctx->pc, kind, e, stmt))
		return false;
	e->inflight++;
	e->last_op = PREP_OP_PARSE;
	e->last_op_seg = ctx->srv->seg;
	return true;
}

bool prep_make_present(struct prep_ctx *ctx, struct prep_entry *e, bool visible_parse,
		       const struct prep_stmt *stmt)
{
	enum prep_need need = prep_need(ctx->srv, e);
	prep_touch(ctx->srv, e);
	if (need == PREP_PRESENT)
		return true;
	if (!evict(ctx, e))
		return false;
	if (need == PREP_CLOSE_PARSE && !send_close(ctx, e, NOTE_INJECT_CLOSE))
		return false;
	if (!prep_note_push(ctx->pc, visible_parse ? NOTE_CLIENT_PARSE : NOTE_INJECT_PARSE, e,
			    visible_parse ? stmt : NULL))
		return false;
	e->inflight++;
	e->last_op = PREP_OP_PARSE;
	e->last_op_seg = ctx->srv->seg;
	prepmsg_put_parse(ctx->out, e->content->server_name, e->content->body, e->content->len);
	return ctx->sent(ctx->arg, 'P', NULL, 0, visible_parse ? TRACKER_NOTED : TRACKER_HIDDEN);
}
