/*
 * libFuzzer harness for corral's SQL reading (proxy/sql_lex.c, pin_scan.c, set_carry.c,
 * prepared_sql.c): arbitrary client text, as in a Query or a Parse.  Tokens must lie
 * inside the text, each one past the last; what the readers return must be terminated
 * strings inside their buffers.  A reader that loops forever shows as a timeout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/pin_scan.h"
#include "proxy/prepared_sql.h"
#include "proxy/set_carry.h"
#include "proxy/sql_lex.h"
#include "tests/fuzz/fuzz_common.h"

static bool carried(const char *name)
{
	return strcmp(name, "timezone") == 0;
}

static bool pins(const char *stmt, size_t len, void *arg)
{
	struct pin_find f;
	(void)arg;
	return pin_scan(stmt, len, carried, &f) != PIN_NONE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: reading past it is ASan's to catch. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);

	struct sql_lexer l;
	struct sql_token t;
	sql_lex_init(&l, text, size);
	size_t last = 0;
	for (;;) {
		enum sql_tok k = sql_lex_next(&l, &t);
		CHECK(t.start >= last && t.start <= size && t.start + t.len <= size);
		if (k == SQL_TOK_END || k == SQL_TOK_BAD)
			break;
		CHECK(t.len > 0);
		char name[16];
		if (sql_tok_ident(&l, &t, name, sizeof(name)))
			CHECK(strlen(name) < sizeof(name));
		last = t.start + t.len;
	}

	struct pin_find f;
	enum pin_reason r = pin_scan(text, size, carried, &f);
	CHECK(r < PIN_REASONS && r == f.reason);
	CHECK(memchr(f.setting, '\0', sizeof(f.setting)) != NULL);
	if (r != PIN_NONE)
		CHECK(f.stmt_start <= size && f.stmt_start + f.stmt_len <= size);

	/* As a session with standard_conforming_strings = off reads it. */
	r = pin_scan_ex(text, size, carried, true, size % 2 == 0, &f);
	CHECK(r < PIN_REASONS && r == f.reason);
	if (r != PIN_NONE)
		CHECK(f.stmt_start <= size && f.stmt_start + f.stmt_len <= size);

	struct set_carry sc;
	if (set_carry_parse(text, size, &sc)) {
		CHECK(memchr(sc.name, '\0', sizeof(sc.name)) != NULL && sc.name[0]);
		CHECK(memchr(sc.value, '\0', sizeof(sc.value)) != NULL);
	}
	struct set_carry many[SET_CARRY_MAX];
	int n = -1;
	if (set_carry_collect(text, size, pins, NULL, many, &n))
		CHECK(n >= 0 && n <= SET_CARRY_MAX);

	struct sql_stmt st;
	prepared_sql_parse(text, size, &st);
	if (st.cmd != SQL_OTHER)
		CHECK(st.after_name <= size && st.end <= size);
	free(text);
	return 0;
}
