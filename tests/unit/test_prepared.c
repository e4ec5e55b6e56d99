/*
 * Prepared statements in transaction pooling: the SQL recogniser (proxy/prepared_sql.c)
 * with tricky quoting, and the per-server registry's decisions (proxy/prepared.c): what
 * must be sent before a statement is used, as answers arrive, fail or are lost.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/prepared.h"
#include "proxy/prepared_sql.h"
#include "proxy/tracker.h"

static struct sql_stmt parse(const char *sql)
{
	struct sql_stmt st;
	prepared_sql_parse(sql, strlen(sql), &st);
	return st;
}

Test(prepared_sql, recognises_the_one_statement)
{
	struct sql_stmt st = parse("  PREPARE Foo(int) AS SELECT $1;  ");
	cr_assert_eq(st.cmd, SQL_PREPARE);
	cr_assert_str_eq(st.name, "foo");
	cr_assert_eq(st.cmd, SQL_PREPARE);
	cr_assert_eq(parse("execute \"Foo\"(1)").cmd, SQL_EXECUTE);
	cr_assert_str_eq(parse("execute \"Foo\"(1)").name, "Foo");
	cr_assert_eq(parse("/* a /* nested */ comment */ DEALLOCATE PREPARE x").cmd,
		     SQL_DEALLOCATE);
	cr_assert_str_eq(parse("deallocate prepare x").name, "x");
	cr_assert_eq(parse("DEALLOCATE ALL;").cmd, SQL_DEALLOCATE_ALL);
	cr_assert_eq(parse("deallocate \"all\"").cmd, SQL_DEALLOCATE);
	cr_assert_eq(parse("-- c\nDISCARD ALL").cmd, SQL_DISCARD_ALL);
	cr_assert_eq(parse("DISCARD PLANS").cmd, SQL_OTHER);
	cr_assert_eq(parse("PREPARE TRANSACTION 'x'").cmd, SQL_OTHER);
	cr_assert_eq(parse("prepared_x").cmd, SQL_OTHER);
	cr_assert_eq(parse("DEALLOCATE x y").cmd, SQL_OTHER);
}

Test(prepared_sql, semicolons_in_quotes_are_not_ends)
{
	const char *sql = "PREPARE p AS SELECT 'a;b', \"c;d\", $x$;$x$, E'\\';' -- ;\n";
	struct sql_stmt st = parse(sql);
	cr_assert_eq(st.cmd, SQL_PREPARE);
	cr_assert_eq(st.end, strlen(sql));
	cr_assert_eq(parse("PREPARE p AS SELECT 1; SELECT 2").cmd, SQL_OTHER);
	cr_assert_eq(parse("PREPARE p AS SELECT 1;;").cmd, SQL_PREPARE);
	cr_assert_eq(parse("PREPARE p AS SELECT 'unterminated").cmd, SQL_OTHER);
	cr_assert_eq(parse("PREPARE p AS SELECT $q$ never closed").cmd, SQL_OTHER);
	cr_assert_eq(parse("PREPARE p AS SELECT 1 /* open").cmd, SQL_OTHER);
	st = parse("EXECUTE p(';', $$;$$)");
	cr_assert_eq(st.cmd, SQL_EXECUTE);
	cr_assert_eq(st.end, strlen("EXECUTE p(';', $$;$$)"));
}

Test(prepared_sql, first_look)
{
	cr_assert(prepared_sql_maybe((const uint8_t *)"  prepare x", 11));
	cr_assert(prepared_sql_maybe((const uint8_t *)"EXECUTE", 7));
	cr_assert(prepared_sql_maybe((const uint8_t *)"/* c */ x", 9));
	cr_assert_not(prepared_sql_maybe((const uint8_t *)"SELECT 1", 8));
	cr_assert_not(prepared_sql_maybe((const uint8_t *)"DELETE FROM t", 13));
	cr_assert_not(prepared_sql_maybe((const uint8_t *)"END", 3));
	cr_assert(prepared_sql_maybe((const uint8_t *)"dea", 3)); /* too short to tell */
	cr_assert(prepared_sql_maybe((const uint8_t *)"explain execute q", 17));
	cr_assert(prepared_sql_maybe((const uint8_t *)"CREATE TABLE", 12));
}

/* Statements that name a prepared statement inside: EXPLAIN ... EXECUTE, CREATE TABLE
 * ... AS EXECUTE; what comes before the name is kept. */
Test(prepared_sql, execute_inside_explain_and_create_table_as)
{
	static const struct {
		const char *sql, *name, *before;
	} yes[] = {
		{"EXPLAIN EXECUTE q1", "q1", "EXPLAIN EXECUTE "},
		{"explain analyze verbose execute Q1(1, 'a')", "q1",
		 "explain analyze verbose execute "},
		{"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE \"Q\"", "Q",
		 "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE "},
		{"CREATE TABLE t (a, b) AS EXECUTE q1 WITH NO DATA", "q1",
		 "CREATE TABLE t (a, b) AS EXECUTE "},
		{"EXPLAIN (ANALYZE) CREATE TABLE s.t (a) AS EXECUTE q1 WITH DATA", "q1",
		 "EXPLAIN (ANALYZE) CREATE TABLE s.t (a) AS EXECUTE "},
	};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct sql_stmt st;
		prepared_sql_parse(yes[i].sql, strlen(yes[i].sql), &st);
		cr_assert_eq(st.cmd, SQL_EXECUTE, "%s", yes[i].sql);
		cr_assert_str_eq(st.name, yes[i].name);
		cr_assert_eq(st.name_at, strlen(yes[i].before), "%s", yes[i].sql);
	}
	static const char *const no[] = {
		"EXPLAIN SELECT 1",
		"CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()",
		"CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()",
		"EXPLAIN SELECT (execute) FROM t",
		"EXPLAIN EXECUTE q1; SELECT 1",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		struct sql_stmt st;
		prepared_sql_parse(no[i], strlen(no[i]), &st);
		cr_assert_eq(st.cmd, SQL_OTHER, "%s", no[i]);
	}
}

/* ---- the registry ------------------------------------------------------------------ */

struct sent_log {
	char types[64];
	int n;
};

static bool record(void *arg, char type, const uint8_t *body, size_t len, int flags)
{
	struct sent_log *l = arg;
	l->types[l->n++] = flags ? type : (char)(type + 32);
	return true;
}

Test(prepared_registry, prepared_once_then_renamed_and_evicted)
{
	struct prep_server *srv = prep_server_new();
	struct prep_client *pc = prep_client_new();
	struct evbuffer *out = evbuffer_new();
	struct sent_log log = {0};
	struct prep_ctx ctx = {.pc = pc,
			       .srv = srv,
			       .max_statements = 1,
			       .out = out,
			       .sent = record,
			       .arg = &log};
	struct prep_content *a = prep_content_new(PREP_PROTOCOL, 0, "select 1\0\0\0", 11);
	struct prep_content *b = prep_content_new(PREP_PROTOCOL, 0, "select 2\0\0\0", 11);
	cr_assert_neq(a->hash, b->hash);
	cr_assert(strncmp(a->server_name, "corral_", 7) == 0);
	bool coll;
	struct prep_entry *ea = prep_server_entry(srv, a, &coll);
	cr_assert_eq(prep_need(srv, ea), PREP_PARSE);
	cr_assert(prep_make_present(&ctx, ea, false, NULL));
	cr_assert_str_eq(log.types, "P");
	/* In flight, same segment: present for what follows it. */
	cr_assert_eq(prep_need(srv, ea), PREP_PRESENT);
	srv->seg++;
	cr_assert_eq(prep_need(srv, ea), PREP_CLOSE_PARSE);
	prep_note_resolve(pc, srv, TRACKER_DONE);
	cr_assert_eq(prep_need(srv, ea), PREP_PRESENT);
	/* b evicts a (limit 1): Close a, Parse b. */
	struct prep_entry *eb = prep_server_entry(srv, b, &coll);
	cr_assert(prep_make_present(&ctx, eb, false, NULL));
	cr_assert_str_eq(log.types, "PCP");
	prep_note_resolve(pc, srv, TRACKER_DONE);   /* the Close */
	prep_note_resolve(pc, srv, TRACKER_FAILED); /* b's Parse failed: b is absent */
	cr_assert_eq(prep_need(srv, eb), PREP_PARSE);
	/* A lost answer: unknown, so Close + Parse. */
	cr_assert(prep_make_present(&ctx, eb, false, NULL));
	prep_notes_abandon(pc);
	srv->seg++;
	cr_assert_eq(prep_need(srv, eb), PREP_CLOSE_PARSE);
	prep_server_forget(srv);
	prep_content_unref(a);
	prep_content_unref(b);
	evbuffer_free(out);
	prep_client_free(pc);
	prep_server_free(srv);
}

Test(prepared_registry, client_names)
{
	struct prep_client *pc = prep_client_new();
	struct prep_content *a = prep_content_new(PREP_SQL, 0, "AS SELECT 1", 11);
	char name[16];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		cr_assert_not_null(prep_client_add(pc, name, a));
	}
	cr_assert_not_null(prep_client_find(pc, "s42"));
	cr_assert(prep_client_remove(pc, "s42"));
	cr_assert_null(prep_client_find(pc, "s42"));
	cr_assert_not(prep_client_remove(pc, "s42"));
	prep_client_clear(pc);
	cr_assert_null(prep_client_find(pc, "s1"));
	prep_content_unref(a);
	prep_client_free(pc);
}

/* Close, DEALLOCATE, DISCARD ALL: names go when PostgreSQL ran the request, and are
 * back when it skipped or refused it; later segments wait for the answer. */
Test(prepared_registry, names_closed_only_when_done)
{
	struct prep_client *pc = prep_client_new();
	struct prep_server *srv = prep_server_new();
	struct prep_content *a = prep_content_new(PREP_SQL, 0, "AS SELECT 1", 11);
	cr_assert_not_null(prep_client_add(pc, "s1", a));
	cr_assert_not_null(prep_client_add(pc, "s2", a));
	bool oom;
	cr_assert_not(prep_client_close(pc, "nope", NOTE_CLIENT_CLOSE, 1, &oom));
	cr_assert_not(oom);
	cr_assert(prep_client_close(pc, "s1", NOTE_CLIENT_CLOSE, 1, &oom));
	cr_assert_null(prep_client_find(pc, "s1"), "gone for later messages");
	cr_assert_not(prep_client_closing_before(pc, 1), "same segment: no wait");
	cr_assert(prep_client_closing_before(pc, 2), "a later segment waits");
	/* a new s1 in the same segment, then the Close is skipped: the old one is back once
	 * the new one's (skipped) Parse is answered */
	struct prep_stmt *again = prep_client_add(pc, "s1", a);
	cr_assert_not_null(again);
	cr_assert(prep_note_push(pc, NOTE_CLIENT_PARSE, NULL, again));
	prep_note_resolve(pc, srv, TRACKER_SKIPPED);
	prep_note_resolve(pc, srv, TRACKER_SKIPPED);
	struct prep_stmt *s1 = prep_client_find(pc, "s1");
	cr_assert_not_null(s1);
	cr_assert_neq(s1->gen, 3, "the first s1, not the skipped one");
	cr_assert_not(prep_client_closing_before(pc, 2));
	/* DISCARD ALL refused, then run */
	cr_assert(prep_client_close(pc, NULL, NOTE_SQL_CLEAR, 3, &oom));
	cr_assert_null(prep_client_find(pc, "s2"));
	prep_note_resolve(pc, srv, TRACKER_FAILED);
	cr_assert_not_null(prep_client_find(pc, "s2"));
	cr_assert(prep_client_close(pc, NULL, NOTE_SQL_CLEAR, 4, &oom));
	prep_note_resolve(pc, srv, TRACKER_DONE);
	cr_assert_null(prep_client_find(pc, "s1"));
	cr_assert_null(prep_client_find(pc, "s2"));
	cr_assert_eq(pc->n_stmts, 0);
	/* with no names DISCARD ALL is still noted; a link that ends forgets as asked */
	cr_assert(prep_client_close(pc, NULL, NOTE_SQL_CLEAR, 5, &oom));
	cr_assert_not_null(prep_client_add(pc, "s3", a));
	cr_assert(prep_client_close(pc, "s3", NOTE_CLIENT_CLOSE, 5, &oom));
	prep_notes_abandon(pc);
	cr_assert_null(prep_client_find(pc, "s3"));
	cr_assert_eq(pc->n_closing, 0);
	prep_content_unref(a);
	prep_client_free(pc);
	prep_server_free(srv);
}

/*
 * Random Parse / Close / DISCARD ALL and answers (done, failed, skipped, or the link
 * lost) against a model of the client's names: each Parse makes an entry; a Close hides
 * the visible one and DISCARD ALL every visible one, under a ticket; done, a ticket's
 * entries go, any other answer brings them back; a Parse answered not done removes its
 * entry; a lost link counts every forget as done.  After every step the names corral's
 * later messages see, and the count of unanswered forgets, match the model.
 */
#define MODEL_NAMES 4
#define MODEL_MAX 512

struct model_entry {
	int name, gen;
	bool closing, gone;
	int ticket;
};

struct model_note {
	int kind; /* 0: Parse (entry gen), 1: Close / DISCARD ALL (ticket) */
	int gen, ticket;
};

struct model {
	struct model_entry e[MODEL_MAX];
	int n;
	struct model_note q[MODEL_MAX];
	int head, len, tickets, gens, closing;
};

static bool model_visible(const struct model *m, int name)
{
	for (int k = 0; k < m->n; k++)
		if (!m->e[k].gone && m->e[k].name == name && !m->e[k].closing)
			return true;
	return false;
}

/* No entry of name at all, closing or not: only then may a Parse of it come, since a
 * Parse of a name whose Close is unanswered waits for that answer when sent after a
 * Sync, and in the same segment is skipped whenever the Close was. */
static bool model_free_name(const struct model *m, int name)
{
	for (int k = 0; k < m->n; k++)
		if (!m->e[k].gone && m->e[k].name == name)
			return false;
	return true;
}

static void model_forget(struct model *m, int ticket, bool done)
{
	for (int k = 0; k < m->n; k++)
		if (!m->e[k].gone && m->e[k].closing && m->e[k].ticket == ticket) {
			if (done)
				m->e[k].gone = true;
			else
				m->e[k].closing = false;
		}
	m->closing--;
}

static void model_hide(struct model *m, int name, int ticket)
{
	for (int k = 0; k < m->n; k++)
		if (!m->e[k].gone && !m->e[k].closing && (name < 0 || m->e[k].name == name)) {
			m->e[k].closing = true;
			m->e[k].ticket = ticket;
		}
}

Test(prepared_registry, random_forgetting_follows_the_answers)
{
	struct prep_content *ct = prep_content_new(PREP_SQL, 0, "AS SELECT 1", 11);
	for (unsigned seed = 1; seed <= 500; seed++) {
		srand(seed);
		struct prep_client *pc = prep_client_new();
		struct prep_server *srv = prep_server_new();
		static struct model m;
		memset(&m, 0, sizeof(m));
		char name[16];
		for (int step = 0; step < 80 && m.n < MODEL_MAX - 1; step++) {
			int op = rand() % 5, i = rand() % MODEL_NAMES;
			snprintf(name, sizeof(name), "s%d", i);
			bool oom;
			if (op == 0 && model_free_name(&m, i)) { /* Parse */
				struct prep_stmt *st = prep_client_add(pc, name, ct);
				cr_assert(prep_note_push(pc, NOTE_CLIENT_PARSE, NULL, st));
				m.e[m.n++] = (struct model_entry){i, ++m.gens, false, false, 0};
				m.q[(m.head + m.len++) % MODEL_MAX] = (struct model_note){0, m.gens,
											  0};
			} else if (op == 1 || op == 2) { /* Close of name, or DISCARD ALL */
				bool any = op == 2 || model_visible(&m, i);
				cr_assert_eq(prep_client_close(pc, op == 1 ? name : NULL,
							       op == 1 ? NOTE_CLIENT_CLOSE
								       : NOTE_SQL_CLEAR,
							       1, &oom),
					     any, "seed %u step %d", seed, step);
				if (any) {
					model_hide(&m, op == 1 ? i : -1, ++m.tickets);
					m.q[(m.head + m.len++) % MODEL_MAX] =
						(struct model_note){1, 0, m.tickets};
					m.closing++;
				}
			} else if (op == 3 && m.len) { /* the oldest request is answered */
				int r = rand() % 3;
				int outcome = r == 0   ? TRACKER_FAILED
					      : r == 1 ? TRACKER_SKIPPED
						       : TRACKER_DONE;
				struct model_note n = m.q[m.head];
				m.head = (m.head + 1) % MODEL_MAX;
				m.len--;
				prep_note_resolve(pc, srv, outcome);
				if (n.kind == 0 && outcome != TRACKER_DONE)
					for (int k = 0; k < m.n; k++)
						if (m.e[k].gen == n.gen)
							m.e[k].gone = true;
				if (n.kind == 1)
					model_forget(&m, n.ticket, outcome == TRACKER_DONE);
			} else if (op == 4 && rand() % 6 == 0) { /* the link ends */
				prep_notes_abandon(pc);
				for (; m.len; m.len--, m.head = (m.head + 1) % MODEL_MAX)
					if (m.q[m.head].kind == 1)
						model_forget(&m, m.q[m.head].ticket, true);
			}
			for (int k = 0; k < MODEL_NAMES; k++) {
				snprintf(name, sizeof(name), "s%d", k);
				cr_assert_eq(prep_client_find(pc, name) != NULL,
					     model_visible(&m, k), "seed %u step %d: s%d", seed,
					     step, k);
			}
			cr_assert_eq(pc->n_closing, (uint32_t)m.closing, "seed %u step %d", seed,
				     step);
		}
		prep_client_free(pc);
		prep_server_free(srv);
	}
	prep_content_unref(ct);
}
