/*
 * What pins a client to its server (proxy/pin_scan.c): each construct, and the same
 * words where they do not count (strings, comments, quoted identifiers, dollar quotes,
 * SET LOCAL, the _xact_ locks, set_config(..., true)).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy/pin_scan.h"

static bool carried(const char *name)
{
	return strcmp(name, "timezone") == 0 || strcmp(name, "client_encoding") == 0 ||
	       strcmp(name, "datestyle") == 0;
}

static enum pin_reason scan(const char *sql)
{
	struct pin_find f;
	return pin_scan(sql, strlen(sql), carried, &f);
}

#define PINS(sql, reason) cr_assert_eq(scan(sql), reason, "%s", sql)

Test(pin_scan, listen)
{
	PINS("LISTEN foo", PIN_LISTEN);
	PINS("select 1; listen \"Foo\"", PIN_LISTEN);
	PINS("/* c */ Listen x;", PIN_LISTEN);
	PINS("select 'listen x'", PIN_NONE);
	PINS("-- listen x\nselect 1", PIN_NONE);
	PINS("select $$ listen x $$", PIN_NONE);
	PINS("select 1 as \"listen\"", PIN_NONE);
	PINS("unlisten foo", PIN_NONE);
	PINS("notify foo, 'listen'", PIN_NONE);
	PINS("select 1 from listen", PIN_NONE);
}

Test(pin_scan, advisory_locks)
{
	PINS("select pg_advisory_lock(1)", PIN_ADVISORY_LOCK);
	PINS("SELECT x, PG_TRY_ADVISORY_LOCK_SHARED(1, 2) from t", PIN_ADVISORY_LOCK);
	PINS("select pg_catalog.pg_advisory_lock_shared(1)", PIN_ADVISORY_LOCK);
	PINS("select pg_try_advisory_lock(42)", PIN_ADVISORY_LOCK);
	PINS("select pg_advisory_xact_lock(1)", PIN_NONE);
	PINS("select pg_try_advisory_xact_lock(1)", PIN_NONE);
	PINS("select pg_advisory_unlock(1)", PIN_NONE);
	PINS("select 'pg_advisory_lock(1)'", PIN_NONE);
}

Test(pin_scan, temp_objects)
{
	PINS("create temp table t (a int)", PIN_TEMP_OBJECT);
	PINS("CREATE GLOBAL TEMPORARY TABLE t (a int)", PIN_TEMP_OBJECT);
	PINS("create or replace temp view v as select 1", PIN_TEMP_OBJECT);
	PINS("create temporary sequence s", PIN_TEMP_OBJECT);
	PINS("create table pg_temp.t (a int)", PIN_TEMP_OBJECT);
	PINS("select * into temp t from x", PIN_TEMP_OBJECT);
	PINS("select * into temporary table t from x", PIN_TEMP_OBJECT);
	PINS("create table t (temp int)", PIN_NONE);
	PINS("select temp from t", PIN_NONE);
}

Test(pin_scan, cursors_load)
{
	PINS("declare c cursor with hold for select 1", PIN_HOLD_CURSOR);
	PINS("DECLARE c NO SCROLL CURSOR WITH HOLD FOR select 1", PIN_HOLD_CURSOR);
	PINS("declare c cursor without hold for select 1", PIN_NONE);
	PINS("declare c cursor for select 1", PIN_NONE);
	PINS("load 'auto_explain'", PIN_LOAD);
}

Test(pin_scan, set_and_reset)
{
	PINS("set search_path = a, b", PIN_SET);
	PINS("SET work_mem TO '64MB'", PIN_SET);
	PINS("set session statement_timeout = 5", PIN_SET);
	PINS("reset work_mem", PIN_SET);
	PINS("reset all", PIN_SET);
	PINS("set role bob", PIN_SET);
	PINS("set session authorization bob", PIN_SET);
	PINS("set myapp.tenant = '7'", PIN_SET);
	PINS("set local work_mem = '1MB'", PIN_NONE);
	PINS("set transaction isolation level serializable", PIN_NONE);
	PINS("set constraints all deferred", PIN_NONE);
	PINS("set time zone 'UTC'", PIN_NONE);
	PINS("SET TimeZone = 'UTC'", PIN_NONE);
	PINS("set names 'UTF8'", PIN_NONE);
	PINS("reset datestyle", PIN_NONE);
	PINS("update t set a = 1", PIN_NONE);
	PINS("select set_config('work_mem', '1MB', false)", PIN_SET);
	PINS("select set_config('work_mem', '1MB', true)", PIN_NONE);
	PINS("select set_config('work_mem', '1MB', $1)", PIN_SET);
	PINS("select set_config('TimeZone', 'UTC', false)", PIN_NONE);
	PINS("select 'set_config(''a'', ''b'', false)'", PIN_NONE);

	struct pin_find f;
	const char *sql = "select 1; SET search_path = x; select 2";
	cr_assert_eq(pin_scan(sql, strlen(sql), carried, &f), PIN_SET);
	cr_assert_str_eq(f.setting, "search_path");
	cr_assert_eq(f.stmt_start, 10);
	cr_assert_eq(f.stmt_len, strlen("SET search_path = x"));
}

Test(pin_scan, do_bodies_run)
{
	PINS("do $$ begin perform pg_advisory_lock(1); end $$", PIN_ADVISORY_LOCK);
	PINS("do $x$ begin execute 'LISTEN foo'; end $x$", PIN_LISTEN);
	PINS("do $$ begin set work_mem = '1MB'; end $$", PIN_SET);
	PINS("do $$ begin create temp table t (a int); end $$", PIN_TEMP_OBJECT);
	PINS("do $$ begin update t set a = 1; end $$", PIN_NONE);
	PINS("do $$ begin perform 1; end $$", PIN_NONE);
}

Test(pin_scan, unreadable_fails_closed)
{
	PINS("select 'unterminated", PIN_UNREADABLE);
	PINS("select 1 /* open", PIN_UNREADABLE);
}

/* PREPARE and friends are rewritten by prepared_sql.c only alone in a Query; anywhere
 * else, and any name of corral's own server statements outside that case, pins. */
Test(pin_scan, prepared_sql_outside_what_corral_rewrites)
{
	struct pin_find f;
	const char *alone[] = {"PREPARE s AS SELECT 1",
			       "EXECUTE s",
			       "DEALLOCATE s",
			       "DISCARD ALL;",
			       "  prepare s (int) as select $1 ;",
			       "EXPLAIN ANALYZE EXECUTE s",
			       "CREATE TABLE t AS EXECUTE s",
			       "CREATE TRIGGER t AFTER INSERT ON x EXECUTE FUNCTION f()"};
	for (size_t i = 0; i < sizeof(alone) / sizeof(alone[0]); i++)
		cr_expect_eq(scan(alone[i]), PIN_NONE, "%s", alone[i]);
	const char *pins[] = {
		"PREPARE leak AS SELECT 'from a'::text; SELECT 1",
		"select 1; deallocate corral_0123456789abcdef; prepare corral_0123456789abcdef as "
		"select 'evil'",
		"select 1; DISCARD ALL",
		"SELECT 1; EXECUTE s",
		"SELECT 1; SELECT \"corral_none:foo\"",
		"SELECT 1; EXPLAIN EXECUTE s",
		"SELECT 1; CREATE TABLE t AS EXECUTE s",
	};
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++)
		cr_expect_eq(scan(pins[i]), PIN_PREPARED_SQL, "%s", pins[i]);
	/* A Parse's text is never rewritten: one such statement alone pins too. */
	const char *parse = "PREPARE x AS SELECT 1";
	cr_expect_eq(pin_scan_ex(parse, strlen(parse), NULL, false, false, &f), PIN_PREPARED_SQL);
	parse = "EXPLAIN EXECUTE x";
	cr_expect_eq(pin_scan_ex(parse, strlen(parse), NULL, false, false, &f), PIN_PREPARED_SQL);
	parse = "CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()";
	cr_expect_eq(pin_scan_ex(parse, strlen(parse), NULL, false, false, &f), PIN_NONE);
	/* In strings and comments they are not statements. */
	cr_expect_eq(scan("SELECT 'prepare x as select 1; corral_x'; -- deallocate all"), PIN_NONE);
}

/* currval() / lastval() read the session's sequence values: they pin; a column or a
 * string of that name does not. */
Test(pin_scan, sequence_readers)
{
	const char *pins[] = {"SELECT currval('s')", "select LASTVAL()",
			      "SELECT pg_catalog.currval ( 's' )", "SELECT \"currval\"('s')",
			      "DO $$ BEGIN PERFORM lastval(); END $$"};
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++)
		cr_expect_eq(scan(pins[i]), PIN_SEQUENCE, "%s", pins[i]);
	const char * not [] = {"SELECT nextval('s')", "SELECT lastval FROM t",
			       "SELECT 'currval(1)'", "SELECT \"CURRVAL\"('s')",
			       "SELECT setval('s', 1)"};
	for (size_t i = 0; i < sizeof(not ) / sizeof(not [0]); i++)
		cr_expect_eq(scan(not [i]), PIN_NONE, "%s", not [i]);
}

/* pin_scan.c looks a word's name up only when its first byte and length can be one it
 * looks for (may_name_one): every such name still pins in any case, quoted, next to
 * look-alikes of the same first byte and length, and at the edge of the name buffer. */
Test(pin_scan, word_prefilter_keeps_every_name)
{
	const struct {
		const char *sql;
		enum pin_reason r;
	} cases[] = {
		{"SELECT Pg_Advisory_Lock(1)", PIN_ADVISORY_LOCK},
		{"select \"pg_advisory_lock\"(1)", PIN_ADVISORY_LOCK},
		{"select x.\"pg_try_advisory_lock_shared\"(1)", PIN_ADVISORY_LOCK},
		{"select PG_ADVISORY_LOCK_SHARED(1)", PIN_ADVISORY_LOCK},
		{"select /* pg_advisory_lock(1) */ pg_try_advisory_lock(2)", PIN_ADVISORY_LOCK},
		{"select \"pg_advisory_lock\"\"\"(1)", PIN_NONE},
		{"select \"PG_ADVISORY_LOCK\"(1)", PIN_NONE},
		{"select pg_advisory_locq(1), pg_advisory_lock_sharec(1)", PIN_NONE},
		{"SELECT CurrVal('s')", PIN_SEQUENCE},
		{"SELECT LastVal()", PIN_SEQUENCE},
		{"SELECT lastvaL ()", PIN_SEQUENCE},
		{"SELECT currvam('s'), lastvam()", PIN_NONE},
		{"SELECT E'currval(1)', $q$lastval()$q$, $1", PIN_NONE},
		{"SELECT a INTO Temp t FROM x", PIN_TEMP_OBJECT},
		{"SELECT a INTO TEMPORARY t FROM x", PIN_TEMP_OBJECT},
		{"SELECT a INTO \"temp\" FROM x", PIN_TEMP_OBJECT},
		{"SELECT a INTO tempo FROM x", PIN_NONE},
		{"CREATE TABLE PG_TEMP.t (a int)", PIN_TEMP_OBJECT},
		{"CREATE TABLE \"pg_temp\".t (a int)", PIN_TEMP_OBJECT},
		{"CREATE TABLE pg_tenp.t (a int)", PIN_NONE},
		{"DECLARE c CURSOR WITH Hold FOR SELECT 1", PIN_HOLD_CURSOR},
		{"DECLARE c CURSOR WITH \"hold\" FOR SELECT 1", PIN_HOLD_CURSOR},
		{"DECLARE c CURSOR WITH hole FOR SELECT 1", PIN_NONE},
		{"SELECT Set_Config('work_mem', '1MB', false)", PIN_SET},
		{"SELECT \"set_config\"('work_mem', '1MB', false)", PIN_SET},
		{"SELECT set_confih('work_mem', '1MB', false)", PIN_NONE},
		{"DO $$ BEGIN LiStEn x; END $$", PIN_LISTEN},
		{"DO $$ BEGIN perform 1; Load 'x'; END $$", PIN_LOAD},
		{"DO E'BEGIN EXECUTE ''LISTEN x''; END'", PIN_LISTEN},
		{"DO $$ BEGIN IF true THEN Set work_mem = 1; END IF; END $$", PIN_SET},
		{"DO $$ BEGIN IF true THEN ReSet work_mem; END IF; END $$", PIN_SET},
		{"DO $$ BEGIN create TEMP table t (a int); END $$", PIN_TEMP_OBJECT},
		{"DO $$ BEGIN perform 1 FROM Pg_Temp.t; END $$", PIN_TEMP_OBJECT},
		{"DO $$ BEGIN perform 1 FROM liste, loa, tem, pg_tem; END $$", PIN_NONE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(scan(cases[i].sql), cases[i].r, "%s", cases[i].sql);

	/* corral_ in any case, quoted or not, any length from 7 bytes */
	const char *prepared[] = {"SELECT 1; SELECT Corral_",
				  "SELECT 1; SELECT CORRAL_x",
				  "SELECT 1; SELECT \"CoRrAl_x\"",
				  "SELECT 1; SELECT x.corral_y()",
				  "SELECT 1; Explain Execute s",
				  "SELECT 1; CREATE TABLE t As Execute s"};
	for (size_t i = 0; i < sizeof(prepared) / sizeof(prepared[0]); i++)
		cr_expect_eq(scan(prepared[i]), PIN_PREPARED_SQL, "%s", prepared[i]);
	cr_expect_eq(scan("SELECT 1; SELECT corral"), PIN_NONE);

	/* Words of 62, 63 and 64+ bytes: a long word is read in full (and cut as
	 * PostgreSQL cuts it at 63 bytes), a short one by the prefilter. */
	char sql[256];
	const char *tail =
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	for (int extra = 40; extra <= 50; extra++) {
		snprintf(sql, sizeof(sql), "SELECT 1; SELECT corral_%.*s", extra, tail);
		cr_expect_eq(scan(sql), PIN_PREPARED_SQL, "%s", sql);
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock_shared%.*s(1)", extra, tail);
		cr_expect_eq(scan(sql), PIN_NONE, "%s", sql);
	}
}

/* Text without quotes, comments or dollar quotes is read without the lexer
 * (plain_text_pins_nothing; a lone '-' or '/' is an operator, two dashes and slash-star are not).  A trailing comment sends the same tokens through the full
 * scan: both must agree on random statements of every word pin_scan looks for, in any
 * case, with look-alikes, punctuation, numbers and $1 parameters around them. */
Test(pin_scan, plain_text_path_agrees_with_the_full_scan)
{
	static const char *const words[] = {"select",
					    "from",
					    "t",
					    "pgbench_accounts",
					    "aid",
					    "into",
					    "with",
					    "as",
					    "do",
					    "listen",
					    "load",
					    "set",
					    "reset",
					    "create",
					    "explain",
					    "prepare",
					    "execute",
					    "deallocate",
					    "discard",
					    "temp",
					    "temporary",
					    "hold",
					    "pg_temp",
					    "currval",
					    "lastval",
					    "set_config",
					    "pg_advisory_lock",
					    "pg_advisory_lock_shared",
					    "pg_try_advisory_lock",
					    "pg_try_advisory_lock_shared",
					    "corral_",
					    "corral_x",
					    "corral",
					    "session",
					    "local",
					    "work_mem",
					    "timezone",
					    "all",
					    "or",
					    "replace",
					    "global",
					    "true",
					    "table",
					    "cursor",
					    "x1$y",
					    "lastvam",
					    "setx",
					    "pg_tempo",
					    "\xc3\xa9t\xc3\xa9",
					    "1",
					    "42",
					    "$1",
					    "$2",
					    "(",
					    ")",
					    ",",
					    ".",
					    "=",
					    "+",
					    "-",
					    "-1234",
					    "/",
					    "*",
					    ";",
					    ";",
					    ";",
					    "\t",
					    "\n"};
	static const char *const seps[] = {" ", " ", "", "\n", "  "};
	uint32_t seed = 12345;
	char text[512], full[520];
	for (int round = 0; round < 20000; round++) {
		size_t n = 0;
		seed = seed * 1103515245u + 12345u;
		int count = 1 + (int)((seed >> 16) % 8);
		for (int i = 0; i < count; i++) {
			seed = seed * 1103515245u + 12345u;
			const char *w = words[(seed >> 8) % (sizeof(words) / sizeof(words[0]))];
			const char *sep = seps[(seed >> 20) % (sizeof(seps) / sizeof(seps[0]))];
			for (size_t j = 0; w[j] && n < 400; j++) {
				char c = w[j];
				if ((seed >> (j % 24)) & 1 && c >= 'a' && c <= 'z')
					c = (char)(c - 32);
				text[n++] = c;
			}
			for (size_t j = 0; sep[j] && n < 400; j++)
				text[n++] = sep[j];
		}
		text[n] = '\0';
		snprintf(full, sizeof(full), "%s /**/", text);
		struct pin_find a, b;
		for (int simple = 0; simple < 2; simple++) {
			enum pin_reason fast = pin_scan_ex(text, n, carried, false, simple == 1,
							   &a);
			enum pin_reason slow = pin_scan_ex(full, strlen(full), carried, false,
							   simple == 1, &b);
			cr_assert_eq(fast, slow, "[%s] (simple %d): %s vs %s", text, simple,
				     pin_reason_name(fast), pin_reason_name(slow));
		}
	}
	/* The NUL that ends a Query's text ends the scan, as the lexer's END. */
	cr_expect_eq(pin_scan("select 1\0listen x", 17, carried, &(struct pin_find){0}), PIN_NONE);
	cr_expect_eq(scan("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"), PIN_NONE);
	cr_expect_eq(scan("select $1, x$y FROM t; LISTEN x"), PIN_LISTEN);
	cr_expect_eq(scan("select 1 $"), PIN_NONE);
}
