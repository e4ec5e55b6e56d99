/*
 * Sequences for the differential test: message builders, the model of PostgreSQL
 * (which replies a chunk brings), the random generator and readable listings.  See
 * diff_gen.h.
 */
#include "tests/integration/diff_gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/harness.h"

/* ---------------------------------------------------------------- the model */

/* An error: a transaction block fails (COMMIT will roll it back). */
static void model_fail(struct dg_model *m)
{
	if (m->tx_block)
		m->tx_failed = true;
}

/* An error in an extended-protocol message: skip to Sync. */
static void model_ext_fail(struct dg_model *m)
{
	model_fail(m);
	m->ignore = true;
}

static void model_tx(struct dg_model *m, enum dg_tx tx)
{
	if (tx == DG_TX_BEGIN) {
		m->tx_block = true; /* a second BEGIN only warns */
	} else if (tx == DG_TX_END) {
		m->tx_block = false;
		m->tx_failed = false;
	}
}

/* A COPY FROM STDIN ends with an error (CopyFail, a bad row). */
static void model_copy_failed(struct dg_model *m)
{
	if (m->copy == DG_COPY_SIMPLE) {
		model_fail(m);
		m->z++; /* the Query is over */
	} else {
		model_ext_fail(m);
	}
	m->copy = DG_COPY_NONE;
}

void dg_model_step(struct dg_model *m, char type, const struct dg_sem *sem)
{
	static const struct dg_sem none;

	if (sem == NULL)
		sem = &none;
	if (m->copy != DG_COPY_NONE) {
		/* copyfromparse.c CopyGetData: only these types are generated in COPY */
		switch (type) {
		case 'd':
			if (sem->bad_row)
				model_copy_failed(m);
			break;
		case 'c':
			if (m->copy == DG_COPY_SIMPLE) {
				if (m->after_copy_error)
					model_fail(m);
				m->z++;
			}
			m->copy = DG_COPY_NONE;
			break;
		case 'f':
			model_copy_failed(m);
			break;
		case 'S':
		case 'H':
			break; /* read and ignored */
		default:
			fprintf(stderr, "diff_gen: message '%c' generated in COPY FROM STDIN\n",
				type);
			abort();
		}
		return;
	}
	if (m->ignore) { /* postgres.c: everything but Sync is skipped */
		if (type == 'S') {
			m->ignore = false;
			m->z++;
		}
		return;
	}
	switch (type) {
	case 'Q':
		if ((m->tx_failed && !sem->tx_control) || sem->error) {
			model_fail(m);
			m->z++;
			return;
		}
		if (sem->copy_in) {
			m->g++;
			m->copy = DG_COPY_SIMPLE;
			m->after_copy_error = sem->error_after_copy;
			return;
		}
		model_tx(m, sem->tx);
		m->z++;
		return;
	case 'P':
	case 'B':
	case 'D':
	case 'E':
		if ((m->tx_failed && !sem->tx_control) || sem->error) {
			model_ext_fail(m);
			return;
		}
		if (type == 'E') {
			if (sem->copy_in) {
				m->g++;
				m->copy = DG_COPY_EXT;
			}
			model_tx(m, sem->tx);
		}
		return;
	case 'S':
		m->z++;
		return;
	default:
		return; /* Close, Flush; CopyData/CopyDone/CopyFail outside COPY are ignored */
	}
}

/* ---------------------------------------------------------------- text */

/* s[0..n) as a double-quoted C-like string, cut after max bytes. */
static void sb_quoted(struct h_sbuf *b, const void *data, size_t n, size_t max)
{
	const unsigned char *s = data;

	h_sb_add(b, "\"", 1);
	for (size_t i = 0; i < n && i < max; i++) {
		char e[8];

		if (s[i] == '\n')
			h_sb_add(b, "\\n", 2);
		else if (s[i] == '\t')
			h_sb_add(b, "\\t", 2);
		else if (s[i] == '"' || s[i] == '\\')
			h_sb_printf(b, "\\%c", s[i]);
		else if (s[i] < 0x20 || s[i] >= 0x7f) {
			snprintf(e, sizeof e, "\\x%02x", s[i]);
			h_sb_add(b, e, strlen(e));
		} else
			h_sb_add(b, (const char *)s + i, 1);
	}
	h_sb_add(b, "\"", 1);
	if (n > max)
		h_sb_printf(b, "...(%zu bytes)", n);
}

static void sb_str_q(struct h_sbuf *b, const char *s)
{
	sb_quoted(b, s, strlen(s), 160);
}

/* ---------------------------------------------------------------- builders */

struct mbuf {
	unsigned char *p;
	size_t len, cap;
};

static void mb_add(struct mbuf *m, const void *data, size_t n)
{
	if (n == 0)
		return; /* an empty CopyData: nothing to copy (and maybe no buffer yet) */
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2 + 32;
		m->p = realloc(m->p, m->cap);
		if (m->p == NULL)
			abort();
	}
	memcpy(m->p + m->len, data, n);
	m->len += n;
}

static void mb_i32(struct mbuf *m, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};

	mb_add(m, b, 4);
}

static void mb_i16(struct mbuf *m, uint16_t v)
{
	unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

	mb_add(m, b, 2);
}

static void mb_str(struct mbuf *m, const char *s)
{
	mb_add(m, s, strlen(s) + 1);
}

void dg_builder_init(struct dg_builder *b, struct dg_client *cl, const char *marker)
{
	memset(b, 0, sizeof *b);
	b->cl = cl;
	snprintf(cl->marker, sizeof cl->marker, "%s", marker);
}

/* Appends type + length + body as the next message (text is taken over). */
static void add_msg(struct dg_builder *b, char type, const struct mbuf *body, char *text,
		    const struct dg_sem *sem)
{
	struct dg_client *cl = b->cl;
	struct dg_msg *msg;
	struct mbuf all = {0};
	unsigned char t = (unsigned char)type;

	if (cl->n_msgs == cl->cap_msgs) {
		cl->cap_msgs = cl->cap_msgs ? cl->cap_msgs * 2 : 32;
		cl->msgs = realloc(cl->msgs, cl->cap_msgs * sizeof *cl->msgs);
		if (cl->msgs == NULL)
			abort();
	}
	mb_add(&all, &t, 1);
	mb_i32(&all, (uint32_t)(4 + (body ? body->len : 0)));
	if (body && body->len)
		mb_add(&all, body->p, body->len);
	msg = &cl->msgs[cl->n_msgs++];
	msg->bytes = all.p;
	msg->len = all.len;
	msg->text = text;
	dg_model_step(&b->m, type, sem);
}

static char *text_of(struct h_sbuf *sb)
{
	return sb->p ? sb->p : strdup("");
}

void dg_query(struct dg_builder *b, const char *sql, const struct dg_sem *sem)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};

	mb_str(&body, sql);
	h_sb_add(&t, "Query ", 6);
	sb_str_q(&t, sql);
	add_msg(b, 'Q', &body, text_of(&t), sem);
	free(body.p);
}

void dg_parse(struct dg_builder *b, const char *name, const char *sql, const struct dg_sem *sem)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};

	mb_str(&body, name);
	mb_str(&body, sql);
	mb_i16(&body, 0); /* no parameter types: the SQL casts */
	h_sb_add(&t, "Parse ", 6);
	sb_str_q(&t, name);
	h_sb_add(&t, " ", 1);
	sb_str_q(&t, sql);
	add_msg(b, 'P', &body, text_of(&t), sem);
	free(body.p);
}

void dg_bind(struct dg_builder *b, const char *portal, const char *stmt, int n,
	     const char *const *params, const struct dg_sem *sem)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};

	mb_str(&body, portal);
	mb_str(&body, stmt);
	mb_i16(&body, 0); /* parameters in text */
	mb_i16(&body, (uint16_t)n);
	h_sb_add(&t, "Bind portal ", 12);
	sb_str_q(&t, portal);
	h_sb_add(&t, " statement ", 11);
	sb_str_q(&t, stmt);
	h_sb_add(&t, " [", 2);
	for (int i = 0; i < n; i++) {
		mb_i32(&body, (uint32_t)strlen(params[i]));
		mb_add(&body, params[i], strlen(params[i]));
		h_sb_add(&t, i ? ", " : "", i ? 2 : 0);
		sb_str_q(&t, params[i]);
	}
	h_sb_add(&t, "]", 1);
	mb_i16(&body, 0); /* results in text */
	add_msg(b, 'B', &body, text_of(&t), sem);
	free(body.p);
}

void dg_describe(struct dg_builder *b, char what, const char *name, const struct dg_sem *sem)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};

	mb_add(&body, &what, 1);
	mb_str(&body, name);
	h_sb_printf(&t, "Describe %c ", what);
	sb_str_q(&t, name);
	add_msg(b, 'D', &body, text_of(&t), sem);
	free(body.p);
}

void dg_execute(struct dg_builder *b, const char *portal, int max_rows, const struct dg_sem *sem)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};

	mb_str(&body, portal);
	mb_i32(&body, (uint32_t)max_rows);
	h_sb_add(&t, "Execute ", 8);
	sb_str_q(&t, portal);
	if (max_rows)
		h_sb_printf(&t, " max %d rows", max_rows);
	add_msg(b, 'E', &body, text_of(&t), sem);
	free(body.p);
}

void dg_close(struct dg_builder *b, char what, const char *name)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};

	mb_add(&body, &what, 1);
	mb_str(&body, name);
	h_sb_printf(&t, "Close %c ", what);
	sb_str_q(&t, name);
	add_msg(b, 'C', &body, text_of(&t), NULL);
	free(body.p);
}

void dg_flush(struct dg_builder *b)
{
	add_msg(b, 'H', NULL, strdup("Flush"), NULL);
}

void dg_sync(struct dg_builder *b)
{
	add_msg(b, 'S', NULL, strdup("Sync"), NULL);
}

void dg_copy_data(struct dg_builder *b, const char *data, bool bad_row)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};
	struct dg_sem sem = {.bad_row = bad_row};

	mb_add(&body, data, strlen(data));
	h_sb_add(&t, "CopyData ", 9);
	sb_str_q(&t, data);
	if (bad_row)
		h_sb_add(&t, " (bad row)", 10);
	add_msg(b, 'd', &body, text_of(&t), &sem);
	free(body.p);
}

void dg_copy_done(struct dg_builder *b)
{
	add_msg(b, 'c', NULL, strdup("CopyDone"), NULL);
}

void dg_copy_fail(struct dg_builder *b, const char *why)
{
	struct mbuf body = {0};
	struct h_sbuf t = {0};

	mb_str(&body, why);
	h_sb_add(&t, "CopyFail ", 9);
	sb_str_q(&t, why);
	add_msg(b, 'f', &body, text_of(&t), NULL);
	free(body.p);
}

struct dg_chunk *dg_end_chunk(struct dg_builder *b, bool wait, int wait_z, int wait_g)
{
	struct dg_client *cl = b->cl;
	struct dg_chunk *ch;

	if (b->chunk_first == cl->n_msgs)
		return NULL;
	if (cl->n_chunks == cl->cap_chunks) {
		cl->cap_chunks = cl->cap_chunks ? cl->cap_chunks * 2 : 16;
		cl->chunks = realloc(cl->chunks, cl->cap_chunks * sizeof *cl->chunks);
		if (cl->chunks == NULL)
			abort();
	}
	ch = &cl->chunks[cl->n_chunks++];
	memset(ch, 0, sizeof *ch);
	ch->first = b->chunk_first;
	ch->count = cl->n_msgs - b->chunk_first;
	ch->send = DG_SEND_ONE_WRITE;
	ch->wait = wait;
	ch->z = wait_z >= 0 ? wait_z : b->m.z;
	ch->g = wait_g >= 0 ? wait_g : b->m.g;
	ch->wait_timeout = 5.0;
	b->chunk_first = cl->n_msgs;
	return ch;
}

void dg_builder_finish(struct dg_builder *b)
{
	b->cl->z_total = b->m.z;
	b->cl->g_total = b->m.g;
}

/* ---------------------------------------------------------------- the generator */

/* What a statement does. */
enum kind {
	K_SELECT,       /* one row with a marker */
	K_ROWS,         /* 0-5 rows */
	K_PARAMS,       /* rows from two parameters (extended protocol only) */
	K_SLEEP,        /* pg_sleep(0.002-0.009) and a marker */
	K_NOTICE,       /* DO block: RAISE NOTICE */
	K_NOTICE_SLEEP, /* DO block: NOTICE, pg_sleep(0.01), NOTICE: replies while it runs */
	K_INSERT,
	K_INSERT_RET, /* two rows, RETURNING */
	K_UPDATE,
	K_COUNT,  /* the client's table, aggregated */
	K_DIV0,   /* division by zero at run time (Execute) */
	K_SYNTAX, /* fails to parse (Parse) */
	K_NOSUCH, /* no such table (Parse) */
	K_EMPTY,  /* empty query string */
	K_BEGIN,
	K_COMMIT,
	K_ROLLBACK,
	K_COPY_IN,
	K_COPY_OUT,
};

/* A statement the generator may Bind: it exists on the client's server for sure. */
struct stmt {
	char name[48];
	enum kind kind;
	int nparams;
};

struct portal {
	char name[48];
	enum kind kind;
};

#define MAX_NAMED 8

struct gen {
	uint64_t rng;
	struct dg_builder b;
	int seqno, client;
	const char *table;
	int j;              /* statement counter: markers, ids, names */
	bool batch_open;    /* extended-protocol messages or Flush since the last Sync */
	bool flush_pending; /* a Flush since the last Sync: replies arrive without ReadyForQuery */
	int chunk_z, chunk_g; /* model counts when the current chunk began */
	bool un_ok;           /* the unnamed statement */
	struct stmt un;
	struct stmt named[MAX_NAMED];
	int n_named;
	bool pun_ok; /* the unnamed portal */
	struct portal pun;
	struct portal pnamed[MAX_NAMED];
	int n_pnamed;
	int tx_steps; /* steps since BEGIN */
};

static uint32_t rnd(struct gen *g, uint32_t n)
{
	return n ? (uint32_t)(h_xorshift64(&g->rng) % n) : 0;
}

static bool chance(struct gen *g, int pct)
{
	return (int)rnd(g, 100) < pct;
}

/* A new statement number and its marker. */
static int next_stmt(struct gen *g, char *marker, size_t len)
{
	g->j++;
	snprintf(marker, len, "mk%dc%ds%d", g->seqno, g->client, g->j);
	return g->j;
}

static bool kind_selects(enum kind k)
{
	return k == K_SELECT || k == K_ROWS || k == K_PARAMS || k == K_SLEEP || k == K_COUNT;
}

/* The SQL of a statement of kind k (malloc'd) and what it does. */
static char *kind_sql(struct gen *g, enum kind k, struct dg_sem *sem, int *nparams)
{
	char m[48];
	int j = next_stmt(g, m, sizeof m);
	const char *t = g->table;

	memset(sem, 0, sizeof *sem);
	*nparams = 0;
	switch (k) {
	case K_SELECT:
		return h_printf("SELECT '%s' AS m", m);
	case K_ROWS:
		return h_printf("SELECT '%s-' || g AS m, g FROM generate_series(1, %u) g", m,
				rnd(g, 6));
	case K_PARAMS:
		*nparams = 2;
		return strdup("SELECT $1::text || g AS m FROM generate_series(1, $2::int) g");
	case K_SLEEP:
		return h_printf("SELECT pg_sleep(0.00%u), '%s' AS m", 2 + rnd(g, 8), m);
	case K_NOTICE:
		return h_printf("DO $$BEGIN RAISE NOTICE '%s'; END$$", m);
	case K_NOTICE_SLEEP:
		return h_printf("DO $$BEGIN RAISE NOTICE '%s a'; PERFORM pg_sleep(0.01); "
				"RAISE NOTICE '%s b'; END$$",
				m, m);
	case K_INSERT:
		return h_printf("INSERT INTO %s VALUES (%d, '%s')", t, j * 10, m);
	case K_INSERT_RET:
		return h_printf("INSERT INTO %s VALUES (%d, '%s'), (%d, '%s-2') RETURNING id, v", t,
				j * 10, m, j * 10 + 1, m);
	case K_UPDATE:
		return h_printf("UPDATE %s SET v = v || '+' WHERE id %% 3 = %u", t, rnd(g, 3));
	case K_COUNT:
		return h_printf(
			"SELECT count(*) AS n, coalesce(string_agg(v, ',' ORDER BY id), '') AS m "
			"FROM %s",
			t);
	case K_DIV0:
		sem->error = true;
		return h_printf("SELECT '%s' AS m, 1 / (g - g) FROM generate_series(1, 1) g", m);
	case K_SYNTAX:
		sem->error = true;
		return h_printf("SELEC '%s'", m);
	case K_NOSUCH:
		sem->error = true;
		return h_printf("SELECT m FROM nosuch_%s", m);
	case K_EMPTY:
		return strdup("");
	case K_BEGIN:
		sem->tx = DG_TX_BEGIN;
		return strdup("BEGIN");
	case K_COMMIT:
		sem->tx = DG_TX_END;
		sem->tx_control = true;
		return strdup("COMMIT");
	case K_ROLLBACK:
		sem->tx = DG_TX_END;
		sem->tx_control = true;
		return strdup("ROLLBACK");
	case K_COPY_IN:
		sem->copy_in = true;
		return h_printf("COPY %s (id, v) FROM STDIN", t);
	case K_COPY_OUT:
		return h_printf("COPY (SELECT id, v FROM %s ORDER BY id) TO STDOUT", t);
	}
	abort();
}

/*
 * Ends the current chunk with random send settings.  It waits where replies are due:
 * usually for all of them, sometimes only for the first ReadyForQuery of several (a
 * client that reacts to an early reply while the rest still runs), or, for replies a
 * Flush brought, for 20 ms of quiet in the direct run.
 */
static void cut(struct gen *g)
{
	int dz = g->b.m.z - g->chunk_z;
	bool counted = dz > 0 || g->b.m.g > g->chunk_g;
	bool wait = counted ? chance(g, 75) : (g->flush_pending && chance(g, 40));
	int wait_z = -1, wait_g = -1;
	struct dg_chunk *ch;
	uint32_t r;

	if (wait && dz > 1 && chance(g, 35)) {
		wait_z = g->chunk_z + 1 + (int)rnd(g, (uint32_t)dz - 1);
		wait_g = g->chunk_g;
	}
	ch = dg_end_chunk(&g->b, wait, wait_z, wait_g);
	if (ch == NULL)
		return;
	ch->quiet = wait && !counted;
	r = rnd(g, 100);
	ch->send = r < 60 ? DG_SEND_ONE_WRITE : r < 85 ? DG_SEND_PER_MESSAGE : DG_SEND_SPLIT;
	ch->gap_us = ch->send == DG_SEND_ONE_WRITE ? 0 : (int)rnd(g, 400);
	ch->split_seed = h_xorshift64(&g->rng);
	ch->pause_ms = chance(g, 20) ? 1 + (int)rnd(g, 3) : 0;
	g->chunk_z = g->b.m.z;
	g->chunk_g = g->b.m.g;
}

static void maybe_cut(struct gen *g, int pct)
{
	if (chance(g, pct))
		cut(g);
}

/* The server may go to another client after this (Sync or Query outside a transaction
 * block): nothing created before may be used any more. */
static void scope_end(struct gen *g, bool query)
{
	g->pun_ok = false;
	g->n_pnamed = 0;
	if (query)
		g->un_ok = false; /* a Query drops the unnamed statement */
	if (!g->b.m.tx_block) {
		g->un_ok = false;
		g->n_named = 0;
	}
}

/* After a message that may have made PostgreSQL answer ReadyForQuery (Sync, the end of
 * a COPY started by a Query): if it did, the batch and its scope are over. */
static void note_ready(struct gen *g, int z_before)
{
	if (g->b.m.z == z_before)
		return; /* e.g. a Sync read and ignored in COPY FROM STDIN */
	g->batch_open = false;
	g->flush_pending = false;
	scope_end(g, false);
}

static void gen_sync(struct gen *g)
{
	int z = g->b.m.z;

	dg_sync(&g->b);
	note_ready(g, z);
}

static void gen_flush(struct gen *g)
{
	dg_flush(&g->b);
	g->batch_open = true;
	g->flush_pending = true;
}

/* A simple Query of kind k (or several statements). */
static void gen_query_kind(struct gen *g, enum kind k)
{
	struct dg_sem sem;
	int np;
	char *sql = kind_sql(g, k, &sem, &np);

	dg_query(&g->b, sql, &sem);
	free(sql);
	scope_end(g, true);
}

static const enum kind SIMPLE_KINDS[] = {K_SELECT, K_SELECT,     K_ROWS,         K_ROWS,
					 K_SLEEP,  K_NOTICE,     K_NOTICE_SLEEP, K_INSERT,
					 K_INSERT, K_INSERT_RET, K_UPDATE,       K_COUNT,
					 K_COUNT,  K_DIV0,       K_SYNTAX,       K_NOSUCH,
					 K_EMPTY,  K_COPY_OUT};
#define N_SIMPLE_KINDS (sizeof SIMPLE_KINDS / sizeof SIMPLE_KINDS[0])

/* Statements that may share a Query string (no COPY, no transaction control). */
static const enum kind MULTI_KINDS[] = {K_SELECT, K_ROWS,   K_INSERT, K_INSERT_RET, K_UPDATE,
					K_COUNT,  K_NOTICE, K_SLEEP,  K_DIV0,       K_NOSUCH};
#define N_MULTI_KINDS (sizeof MULTI_KINDS / sizeof MULTI_KINDS[0])

/* "a; b; c" of 2-3 statements; fails if one of them does. */
static void gen_multi_query(struct gen *g)
{
	struct h_sbuf sql = {0};
	struct dg_sem sem = {0}, one;
	int n = 2 + (int)rnd(g, 2), np;

	for (int i = 0; i < n; i++) {
		enum kind k = MULTI_KINDS[rnd(g, N_MULTI_KINDS)];
		char *s;

		if (k == K_DIV0 || k == K_NOSUCH) /* errors are rarer than the rest */
			k = chance(g, 40) ? k : K_SELECT;
		s = kind_sql(g, k, &one, &np);
		h_sb_printf(&sql, "%s%s", i ? "; " : "", s);
		sem.error |= one.error;
		free(s);
	}
	dg_query(&g->b, sql.p, &sem);
	free(sql.p);
	scope_end(g, true);
}

static void step_simple(struct gen *g)
{
	if (chance(g, 20))
		gen_multi_query(g);
	else
		gen_query_kind(g, SIMPLE_KINDS[rnd(g, N_SIMPLE_KINDS)]);
	if (chance(g, 5))
		gen_flush(g); /* a Flush after a Query: harmless, odd */
}

/* Rows "id\tmarker-rN\n" for COPY, ids unique to this statement. */
static char *copy_rows(struct gen *g, int n)
{
	struct h_sbuf b = {0};
	char m[48];
	int j = next_stmt(g, m, sizeof m);

	for (int r = 0; r < n; r++)
		h_sb_printf(&b, "%d\t%s-r%d\n", j * 10 + r, m, r);
	return b.p ? b.p : strdup("");
}

/* CopyData ('d'), CopyDone ('c') or CopyFail ('f'): in COPY or not, as the model says. */
static void copy_msg(struct gen *g, char type, const char *data, bool bad_row)
{
	int z = g->b.m.z;

	if (type == 'd')
		dg_copy_data(&g->b, data, bad_row);
	else if (type == 'c')
		dg_copy_done(&g->b);
	else
		dg_copy_fail(&g->b, data);
	note_ready(g, z);
}

/*
 * What follows a COPY FROM STDIN statement: rows, perhaps split across messages, Syncs
 * and Flushes the server reads and ignores, and CopyDone, CopyFail or a bad row.  It is
 * sent even if the statement failed (the server then ignores it all, or skips it to
 * Sync): a client that does not wait for CopyInResponse cannot know.
 */
static void gen_copy_body(struct gen *g, bool ext)
{
	int n = (int)rnd(g, 4);
	uint32_t end;

	if (ext && chance(g, 40))
		gen_sync(g); /* libpq sends Sync with the Execute: ignored in COPY */
	maybe_cut(g, 60);
	for (int i = 0; i < n; i++) {
		char *rows = copy_rows(g, 1 + (int)rnd(g, 3));
		size_t len = strlen(rows);

		if (chance(g, 15) && len > 4) { /* one row in two CopyData messages */
			size_t at = 1 + rnd(g, (uint32_t)(len - 2));
			char *tail = strdup(rows + at);

			rows[at] = '\0';
			copy_msg(g, 'd', rows, false);
			maybe_cut(g, 30);
			copy_msg(g, 'd', tail, false);
			free(tail);
		} else {
			copy_msg(g, 'd', rows, false);
		}
		free(rows);
		if (chance(g, 10))
			gen_sync(g); /* ignored in COPY */
		if (chance(g, 8))
			dg_flush(&g->b); /* likewise */
		maybe_cut(g, 25);
	}
	if (chance(g, 5))
		copy_msg(g, 'd', "", false);
	end = rnd(g, 100);
	if (end < 10) {
		char m[48], *bad;

		next_stmt(g, m, sizeof m);
		bad = h_printf("x%d\t%s-bad\n", g->j, m);
		copy_msg(g, 'd', bad, true);
		free(bad);
		maybe_cut(g, 30);
		/* The client goes on as if nothing happened: ignored (or skipped to Sync). */
		if (chance(g, 50))
			copy_msg(g, 'c', NULL, false);
	} else if (end < 25) {
		char m[48], *why;

		next_stmt(g, m, sizeof m);
		why = h_printf("%s gives up", m);
		copy_msg(g, 'f', why, false);
		free(why);
	} else {
		copy_msg(g, 'c', NULL, false);
	}
	if (chance(g, 25)) { /* a confused client: one more CopyDone/CopyFail/CopyData */
		uint32_t r = rnd(g, 3);

		maybe_cut(g, 50);
		copy_msg(g,
			 r == 0   ? 'c'
			 : r == 1 ? 'f'
				  : 'd',
			 r == 1 ? "late" : "1\tlate\n", false);
	}
}

/* ---- extended protocol */

static const char *new_name(struct gen *g, char *buf, size_t len, const char *what)
{
	g->j++;
	snprintf(buf, len, "%s%dc%dn%d", what, g->seqno, g->client, g->j);
	return buf;
}

/* The Bind parameters of kind k: the right ones, or one too few (an error). */
static void bind_stmt(struct gen *g, const char *portal, const struct stmt *st, bool bad_params)
{
	char m[48], nrows[8];
	const char *params[2] = {m, nrows};
	struct dg_sem sem = {.tx_control = st->kind == K_COMMIT || st->kind == K_ROLLBACK};
	int n = st->nparams;

	if (n) {
		next_stmt(g, m, sizeof m);
		strcat(m, "-");
		snprintf(nrows, sizeof nrows, "%u", rnd(g, 5));
	}
	if (bad_params && n) {
		n--;
		sem.error = true;
	}
	dg_bind(&g->b, portal, st->name, n, params, &sem);
}

/* Execute portal p of kind k, perhaps a few rows at a time (a SELECT). */
static void exec_portal(struct gen *g, const struct portal *p)
{
	struct dg_sem sem = {.tx_control = p->kind == K_COMMIT || p->kind == K_ROLLBACK,
			     .error = p->kind == K_DIV0,
			     .copy_in = p->kind == K_COPY_IN};

	if (p->kind == K_BEGIN)
		sem.tx = DG_TX_BEGIN;
	else if (sem.tx_control)
		sem.tx = DG_TX_END;
	if (kind_selects(p->kind) && chance(g, 30)) {
		int max = 1 + (int)rnd(g, 2), times = 1 + (int)rnd(g, 3);

		for (int i = 0; i < times; i++) {
			dg_execute(&g->b, p->name, max, &sem);
			if (chance(g, 20))
				gen_flush(g);
		}
	} else {
		dg_execute(&g->b, p->name, 0, &sem);
	}
	if (sem.tx == DG_TX_END) { /* the transaction's portals are gone */
		g->pun_ok = false;
		g->n_pnamed = 0;
	}
}

static const enum kind EXT_KINDS[] = {K_SELECT,     K_ROWS,   K_PARAMS,       K_PARAMS,
				      K_SLEEP,      K_NOTICE, K_NOTICE_SLEEP, K_INSERT,
				      K_INSERT_RET, K_UPDATE, K_COUNT,        K_DIV0,
				      K_SYNTAX,     K_NOSUCH, K_EMPTY,        K_COPY_OUT};
#define N_EXT_KINDS (sizeof EXT_KINDS / sizeof EXT_KINDS[0])

/* Parse (named or unnamed), maybe Describe, Bind (maybe a named portal), Describe,
 * Execute, maybe Close: one statement of kind k in the current batch. */
static void gen_group_kind(struct gen *g, enum kind k)
{
	struct dg_sem sem;
	struct stmt st = {.kind = k};
	struct portal p = {.kind = k};
	bool named = g->n_named < MAX_NAMED && (g->b.m.tx_block ? chance(g, 40) : chance(g, 15));
	bool named_portal = g->n_pnamed < MAX_NAMED && chance(g, 15);
	bool added = false;
	char *sql;

	sql = kind_sql(g, k, &sem, &st.nparams);
	if (named)
		new_name(g, st.name, sizeof st.name, "st");
	else
		g->un_ok = false; /* even a failed Parse drops the old unnamed statement */
	dg_parse(&g->b, st.name, sql, &sem);
	free(sql);
	g->batch_open = true;
	if (!g->b.m.ignore) { /* it exists */
		added = true;
		if (named) {
			g->named[g->n_named++] = st;
		} else {
			g->un = st;
			g->un_ok = true;
		}
	}
	if (chance(g, 20) && !g->b.m.tx_failed)
		dg_describe(&g->b, 'S', st.name, NULL);
	if (named_portal)
		new_name(g, p.name, sizeof p.name, "po");
	else
		g->pun_ok = false;
	bind_stmt(g, p.name, &st, k == K_PARAMS && chance(g, 10));
	if (!g->b.m.ignore) {
		if (named_portal) {
			g->pnamed[g->n_pnamed++] = p;
		} else {
			g->pun = p;
			g->pun_ok = true;
		}
	}
	if (chance(g, 30) && !g->b.m.tx_failed)
		dg_describe(&g->b, 'P', p.name, NULL);
	exec_portal(g, &p);
	if (k == K_COPY_IN)
		gen_copy_body(g, true);
	if (named && chance(g, 30)) {
		dg_close(&g->b, 'S', st.name);
		/* Forget it (it is the last one added, unless a Sync ended its scope). */
		if (added && g->n_named > 0 && strcmp(g->named[g->n_named - 1].name, st.name) == 0)
			g->n_named--;
	}
}

/* Whether running a statement again gives a reply the model knows (an INSERT with
 * constant ids would fail on a duplicate key the second time). */
static bool rerunnable(enum kind k)
{
	return k != K_INSERT && k != K_INSERT_RET;
}

/* Binds and runs a statement that exists (parsed earlier in this batch or transaction);
 * false if there is none that may run again. */
static bool gen_group_rebind(struct gen *g)
{
	const struct stmt *pick[MAX_NAMED + 1];
	struct stmt st;
	struct portal p;
	int n = 0;

	for (int i = 0; i < g->n_named; i++)
		if (rerunnable(g->named[i].kind))
			pick[n++] = &g->named[i];
	if (g->un_ok && rerunnable(g->un.kind))
		pick[n++] = &g->un;
	if (n == 0)
		return false;
	st = *pick[rnd(g, (uint32_t)n)];
	p = (struct portal){.kind = st.kind};
	g->pun_ok = false;
	bind_stmt(g, "", &st, false);
	g->batch_open = true;
	if (!g->b.m.ignore) {
		g->pun = p;
		g->pun_ok = true;
	}
	exec_portal(g, &p);
	if (st.kind == K_COPY_IN)
		gen_copy_body(g, true);
	return true;
}

/* Runs a portal again (more rows of a SELECT), or an error on purpose. */
static void gen_group_odd(struct gen *g)
{
	uint32_t r = rnd(g, 4);
	struct dg_sem err = {.error = true};

	if (r == 0 && g->pun_ok && kind_selects(g->pun.kind)) {
		dg_execute(&g->b, "", 1 + (int)rnd(g, 2), NULL);
	} else if (r == 1) {
		dg_describe(&g->b, 'S', "nosuch", &err);
	} else if (r == 2) {
		dg_execute(&g->b, "nosuch", 0, &err);
	} else {
		dg_close(&g->b, chance(g, 50) ? 'S' : 'P', "nosuch"); /* no error: CloseComplete */
	}
	g->batch_open = true;
}

/* An extended-protocol batch: one to four statements, perhaps an error among them,
 * Flushes, a Query in the middle; usually ends with Sync. */
static void step_batch(struct gen *g)
{
	int groups = 1 + (int)rnd(g, 4);

	for (int i = 0; i < groups; i++) {
		uint32_t r = rnd(g, 100);

		if (g->b.m.tx_failed) {
			gen_group_kind(g, chance(g, 70) ? K_ROLLBACK : K_COMMIT);
		} else if (r < 15 && gen_group_rebind(g)) {
			/* done */
		} else if (r < 22) {
			gen_group_odd(g);
		} else if (r < 28) {
			gen_group_kind(g, K_COPY_IN);
		} else if (r < 33) {
			gen_group_kind(g, g->b.m.tx_block ? K_COMMIT : K_BEGIN);
		} else {
			enum kind k = EXT_KINDS[rnd(g, N_EXT_KINDS)];

			if ((k == K_DIV0 || k == K_SYNTAX || k == K_NOSUCH) && chance(g, 40))
				k = K_SELECT;
			gen_group_kind(g, k);
		}
		if (chance(g, 15))
			gen_flush(g);
		if (chance(g, 4)) { /* a Query inside the batch (skipped after an error) */
			gen_query_kind(g, K_SELECT);
		}
		maybe_cut(g, 25);
	}
	if (chance(g, 88))
		gen_sync(g);
	if (chance(g, 8))
		gen_sync(g); /* one more */
}

/* COPY FROM STDIN: extended (Parse/Bind/Execute) or in a Query string, maybe with a
 * statement before and after it. */
static void step_copy_in(struct gen *g)
{
	struct dg_sem sem, one;
	struct h_sbuf sql = {0};
	int np;
	char *s;

	if (chance(g, 40) || g->batch_open) {
		gen_group_kind(g, K_COPY_IN);
		if (chance(g, 85))
			gen_sync(g);
		return;
	}
	if (chance(g, 25)) {
		s = kind_sql(g, K_SELECT, &one, &np);
		h_sb_printf(&sql, "%s; ", s);
		free(s);
	}
	s = kind_sql(g, K_COPY_IN, &sem, &np);
	h_sb_printf(&sql, "%s", s);
	free(s);
	if (chance(g, 25)) {
		s = kind_sql(g, chance(g, 30) ? K_DIV0 : K_COUNT, &one, &np);
		h_sb_printf(&sql, "; %s", s);
		free(s);
		sem.error_after_copy = one.error;
	}
	dg_query(&g->b, sql.p, &sem);
	free(sql.p);
	scope_end(g, true);
	gen_copy_body(g, false);
}

static void step_tx(struct gen *g)
{
	enum kind k = g->b.m.tx_block ? (chance(g, 60) ? K_COMMIT : K_ROLLBACK) : K_BEGIN;

	if (chance(g, 5)) /* COMMIT outside a transaction, BEGIN inside one: warnings */
		k = g->b.m.tx_block ? K_BEGIN : K_COMMIT;
	if (chance(g, 30) || g->batch_open) {
		gen_group_kind(g, k);
		gen_sync(g);
	} else {
		gen_query_kind(g, k);
	}
	g->tx_steps = 0;
}

/* Something that takes a while and sends a NOTICE meanwhile: a Query, or a batch. */
static void step_slow(struct gen *g)
{
	enum kind k = chance(g, 70) ? K_NOTICE_SLEEP : K_SLEEP;

	if (g->b.m.tx_failed) {
		gen_query_kind(g, k); /* fails at once */
	} else if (chance(g, 50) || g->batch_open) {
		gen_group_kind(g, k);
		if (chance(g, 90))
			gen_sync(g);
	} else {
		gen_query_kind(g, k);
	}
}

/* Messages where they make no sense (the server ignores them or answers a Sync). */
static void step_odd(struct gen *g)
{
	switch (rnd(g, 5)) {
	case 0:
		copy_msg(g, 'c', NULL, false);
		break;
	case 1:
		copy_msg(g, 'f', "no copy here", false);
		break;
	case 2:
		copy_msg(g, 'd', "7\tstray\n", false);
		break;
	case 3:
		gen_sync(g);
		break;
	default:
		gen_flush(g);
		break;
	}
}

/* Leaves the client's server with nothing pending, then one last Query to wait for. */
static void close_out(struct gen *g)
{
	if (g->b.m.copy != DG_COPY_NONE)
		copy_msg(g, 'c', NULL, false);
	if (g->batch_open || g->b.m.ignore)
		gen_sync(g);
	if (g->b.m.tx_block)
		gen_query_kind(g, chance(g, 50) ? K_COMMIT : K_ROLLBACK);
	{
		char m[48], *sql;

		next_stmt(g, m, sizeof m);
		sql = h_printf("SELECT '%s-end' AS m", m);
		dg_query(&g->b, sql, NULL);
		free(sql);
	}
	dg_end_chunk(&g->b, true, -1, -1);
}

static void gen_client(struct dg_seq *s, int k, uint64_t seed, const char *table)
{
	struct gen *g = calloc(1, sizeof *g);
	char marker[48];
	int steps;

	g->rng = seed ? seed : 1;
	g->seqno = s->seqno;
	g->client = k;
	g->table = table;
	snprintf(marker, sizeof marker, "mk%dc%ds", s->seqno, k);
	dg_builder_init(&g->b, &s->clients[k], marker);
	steps = 3 + (int)rnd(g, 8);
	for (int i = 0; i < steps; i++) {
		uint32_t r = rnd(g, 100);

		if (g->b.m.tx_block && ++g->tx_steps > 3) {
			step_tx(g);
		} else if (g->b.m.tx_failed) {
			if (r < 60)
				step_tx(g);
			else if (r < 80)
				gen_query_kind(g, K_SELECT); /* fails: 25P02 */
			else
				step_odd(g);
		} else if (r < 27) {
			step_simple(g);
		} else if (r < 55) {
			step_batch(g);
		} else if (r < 68) {
			step_copy_in(g);
			if (chance(g, 40))
				step_slow(g); /* in the same chunk, if no cut came between */
		} else if (r < 80) {
			step_tx(g);
		} else if (r < 90) {
			step_odd(g);
		} else {
			step_slow(g);
		}
		maybe_cut(g, 50);
	}
	if (chance(g, 7)) {
		/* Leaves in whatever state it is in, without waiting for its last replies. */
		cut(g);
		s->clients[k].leave = true;
		s->clients[k].leave_after_ms = (int)rnd(g, 30);
	} else {
		cut(g);
		close_out(g);
	}
	dg_builder_finish(&g->b);
	free(g);
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void dg_generate(struct dg_seq *s, uint64_t seed, int seqno, const char *const *tables)
{
	uint64_t r = splitmix64(seed);

	memset(s, 0, sizeof *s);
	s->seed = seed;
	s->seqno = seqno;
	s->n_clients = 3 + (int)(r % 2);
	for (int k = 0; k < s->n_clients; k++)
		gen_client(s, k, splitmix64(seed * 31 + (uint64_t)k + 1), tables[k]);
}

void dg_free(struct dg_seq *s)
{
	for (int k = 0; k < s->n_clients; k++) {
		struct dg_client *cl = &s->clients[k];

		for (size_t i = 0; i < cl->n_msgs; i++) {
			free(cl->msgs[i].bytes);
			free(cl->msgs[i].text);
		}
		free(cl->msgs);
		free(cl->chunks);
	}
	memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- listings */

static const char *send_name(enum dg_send s)
{
	return s == DG_SEND_ONE_WRITE     ? "one write"
	       : s == DG_SEND_PER_MESSAGE ? "a write per message"
					  : "split";
}

char *dg_seq_text(const struct dg_seq *s)
{
	struct h_sbuf b = {0};

	if (s->seqno >= 0)
		h_sb_printf(&b, "sequence %d, seed %llu, %d clients\n", s->seqno,
			    (unsigned long long)s->seed, s->n_clients);
	else
		h_sb_printf(&b, "fixed sequence, %d clients\n", s->n_clients);
	for (int k = 0; k < s->n_clients; k++) {
		const struct dg_client *cl = &s->clients[k];

		h_sb_printf(
			&b,
			"client %d (marker %s): %zu messages in %zu chunks, %d ReadyForQuery expected%s\n",
			k, cl->marker, cl->n_msgs, cl->n_chunks, cl->z_total,
			cl->leave ? "; leaves without waiting for the last replies" : "");
		for (size_t c = 0; c < cl->n_chunks; c++) {
			const struct dg_chunk *ch = &cl->chunks[c];

			h_sb_printf(&b, "  chunk %zu: %s", c, send_name(ch->send));
			if (ch->gap_us)
				h_sb_printf(&b, " %d us apart", ch->gap_us);
			if (ch->pause_ms)
				h_sb_printf(&b, ", after %d ms", ch->pause_ms);
			if (ch->start_at > 0)
				h_sb_printf(&b, ", at %.2f s", ch->start_at);
			if (ch->wait)
				h_sb_printf(
					&b,
					"; then wait for ReadyForQuery #%d, CopyInResponse #%d%s",
					ch->z, ch->g, ch->quiet ? " and 20 ms of quiet" : "");
			h_sb_add(&b, "\n", 1);
			for (size_t i = ch->first; i < ch->first + ch->count; i++)
				h_sb_printf(&b, "    %3zu %s\n", i, cl->msgs[i].text);
		}
	}
	return b.p;
}

/* The fields of an ErrorResponse/NoticeResponse: "SEVERITY SQLSTATE message". */
static void sb_fields(struct h_sbuf *b, const unsigned char *p, size_t n)
{
	const char *sev = "", *code = "", *msg = "";
	size_t i = 0;

	while (i < n && p[i] != 0) {
		char t = (char)p[i++];
		const char *v = (const char *)p + i;
		size_t l = strnlen(v, n - i);

		if (t == 'S')
			sev = v;
		else if (t == 'C')
			code = v;
		else if (t == 'M')
			msg = v;
		i += l + 1;
	}
	h_sb_printf(b, "%s %s ", sev, code);
	sb_str_q(b, msg);
}

char *dg_reply_text(const unsigned char *msg, size_t len)
{
	struct h_sbuf b = {0};
	char type = len ? (char)msg[0] : '?';
	const unsigned char *p = msg + 5;
	size_t n = len >= 5 ? len - 5 : 0;

	switch (type) {
	case '1':
		h_sb_printf(&b, "ParseComplete");
		break;
	case '2':
		h_sb_printf(&b, "BindComplete");
		break;
	case '3':
		h_sb_printf(&b, "CloseComplete");
		break;
	case 'C':
		h_sb_printf(&b, "CommandComplete ");
		sb_str_q(&b, (const char *)p);
		break;
	case 'D': {
		size_t i = 2;
		int cols = n >= 2 ? (p[0] << 8 | p[1]) : 0;

		h_sb_printf(&b, "DataRow [");
		for (int c = 0; c < cols && i + 4 <= n; c++) {
			int32_t l = (int32_t)h_be32(p + i);

			i += 4;
			if (c)
				h_sb_add(&b, ", ", 2);
			if (l < 0) {
				h_sb_add(&b, "NULL", 4);
			} else {
				size_t take = (size_t)l <= n - i ? (size_t)l : n - i;

				sb_quoted(&b, p + i, take, 80);
				i += take;
			}
		}
		h_sb_add(&b, "]", 1);
		break;
	}
	case 'E':
		h_sb_printf(&b, "ErrorResponse ");
		sb_fields(&b, p, n);
		break;
	case 'N':
		h_sb_printf(&b, "NoticeResponse ");
		sb_fields(&b, p, n);
		break;
	case 'G':
		h_sb_printf(&b, "CopyInResponse");
		break;
	case 'H':
		h_sb_printf(&b, "CopyOutResponse");
		break;
	case 'W':
		h_sb_printf(&b, "CopyBothResponse");
		break;
	case 'd':
		h_sb_printf(&b, "CopyData ");
		sb_quoted(&b, p, n, 80);
		break;
	case 'c':
		h_sb_printf(&b, "CopyDone");
		break;
	case 'I':
		h_sb_printf(&b, "EmptyQueryResponse");
		break;
	case 'n':
		h_sb_printf(&b, "NoData");
		break;
	case 's':
		h_sb_printf(&b, "PortalSuspended");
		break;
	case 't':
		h_sb_printf(&b, "ParameterDescription (%d)", n >= 2 ? (p[0] << 8 | p[1]) : -1);
		break;
	case 'T': {
		size_t i = 2;
		int cols = n >= 2 ? (p[0] << 8 | p[1]) : 0;

		h_sb_printf(&b, "RowDescription [");
		for (int c = 0; c < cols && i < n; c++) {
			const char *name = (const char *)p + i;

			h_sb_printf(&b, "%s%s", c ? ", " : "", name);
			i += strnlen(name, n - i) + 1 + 18;
		}
		h_sb_add(&b, "]", 1);
		break;
	}
	case 'Z':
		h_sb_printf(&b, "ReadyForQuery %c", n >= 1 ? p[0] : '?');
		break;
	case 'S':
		h_sb_printf(&b, "ParameterStatus ");
		sb_str_q(&b, (const char *)p);
		break;
	case 'K':
		h_sb_printf(&b, "BackendKeyData");
		break;
	case 'A':
		h_sb_printf(&b, "NotificationResponse");
		break;
	default:
		h_sb_printf(&b, "'%c' (%zu bytes)", type, len);
		break;
	}
	return b.p;
}
