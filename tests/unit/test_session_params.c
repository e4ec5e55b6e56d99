/*
 * proxy/session_params.c: the one query that takes a server from what earlier clients
 * left (s->applied, s->params) to what the next client wants (RESETs, then one SELECT
 * set_config), the bookkeeping around it, and the names it accepts.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/session_params.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Fills ps from "name", "value", ..., NULL. */
static void fill(struct param_set *ps, const char *const *kv)
{
	for (size_t i = 0; kv[i]; i += 2)
		cr_assert(params_set(ps, kv[i], kv[i + 1]));
}

/* A server that corral gave applied (and that reports reported) earlier. */
static void server_with(struct server *s, const char *const *applied, const char *const *reported)
{
	memset(s, 0, sizeof(*s));
	fill(&s->applied, applied);
	fill(&s->params, reported);
}

static void server_clear(struct server *s)
{
	params_clear(&s->applied);
	params_clear(&s->params);
	params_clear(&s->pending);
}

/* The sync query for wanted on s must be want (NULL: none). */
static void expect_query(const struct server *s, const char *const *wanted_kv, const char *want)
{
	struct param_set wanted = {0};
	fill(&wanted, wanted_kv);
	bool oom = true;
	char *q = session_params_sync_query(&wanted, s, &oom);
	cr_assert_not(oom);
	if (!want)
		cr_expect_null(q, "want no query, got [%s]", q ? q : "");
	else
		cr_expect_str_eq(q ? q : "(null)", want);
	free(q);
	params_clear(&wanted);
}

static const char *const NONE[] = {NULL};

/* ---- the sync query ------------------------------------------------------------- */

Test(session_params, nothing_to_do_gives_no_query)
{
	struct server s;
	server_with(&s, (const char *const[]){"work_mem", "7MB", NULL},
		    (const char *const[]){"application_name", "fn", NULL});
	expect_query(&s, (const char *const[]){"work_mem", "7MB", "application_name", "fn", NULL},
		     NULL);
	/* names are case-insensitive */
	expect_query(&s, (const char *const[]){"WORK_MEM", "7MB", NULL}, NULL);
	server_clear(&s);
}

Test(session_params, sets_what_differs_in_one_select)
{
	struct server s;
	server_with(&s, NONE,
		    (const char *const[]){"application_name", "", "TimeZone", "UTC", NULL});
	expect_query(&s,
		     (const char *const[]){"application_name", "fn-orders", "TimeZone", "UTC",
					   "search_path", "a,public", NULL},
		     "SELECT pg_catalog.set_config(E'application_name', E'fn-orders', false), "
		     "pg_catalog.set_config(E'search_path', E'a,public', false)");
	server_clear(&s);
}

/* The bug this exists for: A's options stay on the server unless they are reset. */
Test(session_params, resets_what_the_last_client_set_and_the_next_does_not_want)
{
	struct server s;
	server_with(&s,
		    (const char *const[]){"search_path", "evil,public", "statement_timeout", "1234",
					  "work_mem", "7MB", NULL},
		    NONE);
	expect_query(&s, NONE,
		     "RESET \"search_path\"; RESET \"statement_timeout\"; RESET \"work_mem\"");
	/* with values of its own: the RESETs first, then one SELECT, in one Query */
	expect_query(&s, (const char *const[]){"work_mem", "9MB", "lock_timeout", "2s", NULL},
		     "RESET \"search_path\"; RESET \"statement_timeout\"; "
		     "SELECT pg_catalog.set_config(E'work_mem', E'9MB', false), "
		     "pg_catalog.set_config(E'lock_timeout', E'2s', false)");
	/* a value it wants too is not reset, and not set again when it is the same */
	expect_query(&s,
		     (const char *const[]){"search_path", "evil,public", "STATEMENT_TIMEOUT",
					   "1234", NULL},
		     "RESET \"work_mem\"");
	server_clear(&s);
}

/* Reported parameters corral set (default_transaction_read_only) are reset too. */
Test(session_params, resets_reported_parameters_it_set)
{
	struct server s;
	server_with(&s, (const char *const[]){"default_transaction_read_only", "on", NULL},
		    (const char *const[]){"default_transaction_read_only", "on", NULL});
	expect_query(&s, NONE, "RESET \"default_transaction_read_only\"");
	server_clear(&s);
}

/* Custom names are RESET as qualified names, each part quoted. */
Test(session_params, names_are_quoted_per_part)
{
	struct server s;
	server_with(&s, (const char *const[]){"corral_test.tenant", "a", "DateStyle", "SQL", NULL},
		    NONE);
	expect_query(&s, NONE, "RESET \"corral_test\".\"tenant\"; RESET \"DateStyle\"");
	server_clear(&s);
}

/* Who the session runs as is reset first: superuser-only resets after it may need it. */
Test(session_params, role_and_session_authorization_are_reset_first)
{
	struct server s;
	server_with(&s,
		    (const char *const[]){"log_statement", "all", "role", "app", "work_mem", "7MB",
					  "session_authorization", "bob", NULL},
		    NONE);
	expect_query(&s, NONE,
		     "RESET \"role\"; RESET \"session_authorization\"; RESET \"log_statement\"; "
		     "RESET \"work_mem\"");
	server_clear(&s);
}

/* transaction_* last only for the transaction they were set in; PostgreSQL 16 refuses
 * to RESET them and seed. */
Test(session_params, transaction_scoped_parameters_are_not_reset)
{
	struct server s;
	server_with(&s,
		    (const char *const[]){"transaction_read_only", "on", "transaction_isolation",
					  "serializable", "transaction_deferrable", "on", "seed",
					  "0.5", NULL},
		    NONE);
	expect_query(&s, NONE, NULL);
	server_clear(&s);
}

/* 'Foo' is not 'foo': application_name, or a quoted schema in search_path. */
Test(session_params, values_compare_exactly)
{
	struct server s;
	server_with(&s, (const char *const[]){"search_path", "\"Evil\"", NULL},
		    (const char *const[]){"application_name", "Foo", NULL});
	expect_query(&s,
		     (const char *const[]){"search_path", "\"evil\"", "application_name", "foo",
					   NULL},
		     "SELECT pg_catalog.set_config(E'search_path', E'\"evil\"', false), "
		     "pg_catalog.set_config(E'application_name', E'foo', false)");
	server_clear(&s);
}

Test(session_params, values_are_escaped_literals)
{
	struct server s;
	server_with(&s, NONE, NONE);
	expect_query(&s, (const char *const[]){"application_name", "it's a\\b", NULL},
		     "SELECT pg_catalog.set_config(E'application_name', E'it''s a\\\\b', false)");
	server_clear(&s);
}

/* ---- bookkeeping ------------------------------------------------------------------ */

/* The shortcut holds for the set the server was linked with, by its keyed signature:
 * a different set (fewer parameters, another value, reordered) signs differently. */
Test(session_params, current_only_for_the_set_linked)
{
	struct server s;
	struct param_set a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
	fill(&a, (const char *const[]){"application_name", "x", "search_path", "evil", NULL});
	fill(&b, (const char *const[]){"application_name", "x", NULL});
	fill(&c, (const char *const[]){"application_name", "x", "search_path", "evil2", NULL});
	fill(&d, (const char *const[]){"Application_Name", "x", "SEARCH_PATH", "evil", NULL});
	fill(&e, (const char *const[]){"application_name", "x", "search_pat", "hevil", NULL});
	uint64_t sig_a = session_params_signature(&a);
	cr_expect_neq(session_params_signature(&b), sig_a);
	cr_expect_neq(session_params_signature(&c), sig_a);
	cr_expect_neq(session_params_signature(&e), sig_a, "name/value boundary is part of it");
	cr_expect_eq(session_params_signature(&d), sig_a, "names are case-insensitive");
	server_with(&s, NONE, NONE);
	cr_expect_not(session_params_current(&s, &a, sig_a), "nothing known yet");
	session_params_linked(&s, &a, sig_a);
	cr_expect(session_params_current(&s, &a, sig_a));
	cr_expect_not(session_params_current(&s, &b, session_params_signature(&b)));
	/* once anything is reported, the server is brought to the set again */
	s.param_sig = 0;
	cr_expect_not(session_params_current(&s, &a, sig_a));
	params_clear(&a);
	params_clear(&b);
	params_clear(&c);
	params_clear(&d);
	params_clear(&e);
	server_clear(&s);
}

Test(session_params, finished_records_what_the_query_did)
{
	struct server s;
	struct param_set w = {0};
	fill(&w, (const char *const[]){"work_mem", "9MB", NULL});
	server_with(&s, (const char *const[]){"search_path", "evil", NULL}, NONE);
	s.param_sig = 42;

	/* An error rolled everything back: applied stays, and a query that reset an
	 * earlier client's values is not trusted with the server. */
	session_params_sending(&s, &w);
	cr_expect_not(session_params_finished(&s, true));
	cr_expect_str_eq(params_get(&s.applied, "search_path"), "evil");
	cr_expect_null(params_get(&s.applied, "work_mem"));
	cr_expect_eq(s.pending.n, 0);
	cr_expect_eq(s.param_sig, 0);

	/* Success: the server has w and nothing else corral set. */
	session_params_sending(&s, &w);
	cr_expect(session_params_finished(&s, false));
	cr_expect_eq(s.applied.n, 1);
	cr_expect_str_eq(params_get(&s.applied, "work_mem"), "9MB");
	cr_expect_eq(s.pending.n, 0);

	/* An error without resets is the client's own: the server is fine. */
	struct param_set w2 = {0};
	fill(&w2, (const char *const[]){"work_mem", "9MB", "DateStyle", "garbage", NULL});
	session_params_sending(&s, &w2);
	cr_expect(session_params_finished(&s, true));
	cr_expect_eq(s.applied.n, 1);
	params_clear(&w);
	params_clear(&w2);
	server_clear(&s);
}

Test(session_params, reset_query_forgets_what_it_reset)
{
	static const char *const applied[] = {"work_mem", "7MB", "role", "app", NULL};
	struct server s;

	server_with(&s, applied, NONE);
	session_params_after_reset(&s, NULL); /* ROLLBACK alone */
	cr_expect_eq(s.applied.n, 2);
	session_params_after_reset(&s, "SELECT 1");
	cr_expect_eq(s.applied.n, 2);
	session_params_after_reset(&s, "DISCARD PLANS; SELECT 'discard allowed'");
	cr_expect_eq(s.applied.n, 2);
	session_params_after_reset(&s, "reset  all;");
	cr_expect_eq(s.applied.n, 1, "RESET ALL keeps role");
	cr_expect_str_eq(params_get(&s.applied, "role"), "app");
	session_params_after_reset(&s, "DISCARD\tALL");
	cr_expect_eq(s.applied.n, 0);
	server_clear(&s);
}

/* ---- names ------------------------------------------------------------------------ */

static bool startup_ok(const char *name, const char *value)
{
	struct pg_startup st = {.n_params = 1};
	struct param_set ps = {0};
	const char *why = NULL;
	st.names[0] = name;
	st.values[0] = value;
	bool ok = session_params_from_startup(&st, &ps, &why);
	params_clear(&ps);
	return ok;
}

/* RESET takes a name part as an identifier, which PostgreSQL cuts at 63 bytes. */
Test(session_params, name_parts_longer_than_an_identifier_are_refused)
{
	char part63[64], part64[65], opt[200];
	memset(part63, 'a', 63);
	part63[63] = '\0';
	memset(part64, 'a', 64);
	part64[64] = '\0';
	snprintf(opt, sizeof(opt), "-c x.%s=1", part63);
	cr_expect(startup_ok("options", opt));
	snprintf(opt, sizeof(opt), "-c x.%s=1", part64);
	cr_expect_not(startup_ok("options", opt));
	cr_expect_not(startup_ok(part64, "1"));
	cr_expect(startup_ok("search_path", "a,public"));
}

/* ---- what brings a RESET back to the startup values -------------------------- */

static void expect_restore(const char *const *startup_kv, const char *name, const char *want)
{
	struct param_set startup = {0};
	fill(&startup, startup_kv);
	bool oom = true;
	char *q = session_params_restore_sql(&startup, name, &oom);
	cr_assert_not(oom);
	if (!want)
		cr_expect_null(q, "want none, got [%s]", q ? q : "");
	else
		cr_expect_str_eq(q ? q : "(null)", want);
	free(q);
	params_clear(&startup);
}

Test(session_params, restore_sets_the_startup_value_of_one_name)
{
	const char *const startup[] = {"DateStyle", "Postgres, MDY", "work_mem", "7MB", NULL};
	expect_restore(startup, "datestyle",
		       "SELECT pg_catalog.set_config(E'DateStyle', E'Postgres, MDY', false)");
	expect_restore(startup, "work_mem",
		       "SELECT pg_catalog.set_config(E'work_mem', E'7MB', false)");
	expect_restore(startup, "statement_timeout", NULL);
}

/* RESET ALL: every startup value but who the session runs as (RESET ALL keeps it) and
 * the transaction-scoped ones. */
Test(session_params, restore_all_skips_identity_and_transaction_settings)
{
	const char *const startup[] = {"role",
				       "r1",
				       "work_mem",
				       "7MB",
				       "session_authorization",
				       "u",
				       "transaction_isolation",
				       "serializable",
				       "TimeZone",
				       "PST8PDT",
				       NULL};
	expect_restore(startup, NULL,
		       "SELECT pg_catalog.set_config(E'work_mem', E'7MB', false), "
		       "pg_catalog.set_config(E'TimeZone', E'PST8PDT', false)");
	expect_restore(startup, "role", NULL);
	expect_restore(NONE, NULL, NULL);
}

/* Values come from the client's startup packet: quotes and backslashes escaped. */
Test(session_params, restore_escapes_values)
{
	expect_restore((const char *const[]){"corral.tenant", "o'b\\r'); DROP TABLE t; --", NULL},
		       NULL,
		       "SELECT pg_catalog.set_config(E'corral.tenant', "
		       "E'o''b\\\\r''); DROP TABLE t; --', false)");
}

/* A reset in flight keeps only a static class of its query: every predicate reads the
 * class as it reads the query. */
Test(session_params, reset_class_keeps_what_matters)
{
	static const char *const queries[] = {"DISCARD ALL",
					      "discard all;",
					      "DEALLOCATE ALL",
					      "RESET ALL",
					      "deallocate all; reset all",
					      "SELECT 1",
					      "DISCARD SEQUENCES",
					      "CLOSE ALL"};
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		const char *q = queries[i], *k = session_params_reset_class(q);
		cr_assert_not_null(k);
		cr_expect_eq(session_params_reset_discards_all(k),
			     session_params_reset_discards_all(q), "%s", q);
		cr_expect_eq(session_params_reset_discards_sequences(k),
			     session_params_reset_discards_sequences(q), "%s", q);
		struct server a = {0}, b = {0};
		cr_assert(params_set(&a.applied, "work_mem", "7MB"));
		cr_assert(params_set(&b.applied, "work_mem", "7MB"));
		session_params_after_reset(&a, q);
		session_params_after_reset(&b, k);
		cr_expect_eq(a.applied.n, b.applied.n, "%s", q);
		params_clear(&a.applied);
		params_clear(&b.applied);
	}
	cr_expect_null(session_params_reset_class(NULL));
}

/* Clients asking for the same values share one allocation; one that differs (a value,
 * a name's spelling, the order) gets its own and becomes the pool's next to share. */
Test(session_params, share_identical_sets)
{
	struct param_set last = {0}, a = {0}, b = {0}, c = {0}, d = {0};
	fill(&a, (const char *const[]){"application_name", "app", "TimeZone", "UTC", NULL});
	fill(&b, (const char *const[]){"application_name", "app", "TimeZone", "UTC", NULL});
	fill(&c, (const char *const[]){"application_name", "app", "timezone", "UTC", NULL});
	fill(&d, (const char *const[]){"TimeZone", "UTC", "application_name", "app", NULL});
	session_params_share(&a, &last);
	cr_assert_eq(last.names, a.names);
	session_params_share(&b, &last);
	cr_assert_eq(b.names, a.names, "the same set shares the allocation");
	cr_assert_eq(session_params_signature(&a), session_params_signature(&b));
	session_params_share(&c, &last);
	cr_assert_neq(c.names, a.names, "a name spelled otherwise is another set");
	cr_assert_eq(last.names, c.names);
	session_params_share(&d, &last);
	cr_assert_neq(d.names, c.names, "another order is another set");
	/* a change to one of those that share is its own */
	cr_assert(params_set(&b, "TimeZone", "Asia/Tokyo"));
	cr_assert_str_eq(params_get(&a, "TimeZone"), "UTC");
	cr_assert_str_eq(params_get(&b, "TimeZone"), "Asia/Tokyo");
	params_clear(&a);
	params_clear(&b);
	params_clear(&c);
	params_clear(&d);
	params_clear(&last);
}
