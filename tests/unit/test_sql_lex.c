/*
 * The SQL lexer (proxy/sql_lex.c): where words, strings and statement ends are, with
 * the quoting that hides them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proxy/sql_lex.h"

/* The words of text, lower-cased, separated by ' '; strings as S, quoted idents as Q,
 * ';' as ';', anything else as its byte, a bad tail as !. */
static void words(const char *text, char *out, size_t cap)
{
	struct sql_lexer l;
	struct sql_token t;
	size_t n = 0;
	out[0] = '\0';
	sql_lex_init(&l, text, strlen(text));
	for (;;) {
		enum sql_tok k = sql_lex_next(&l, &t);
		if (k == SQL_TOK_END)
			break;
		char w[64];
		if (k == SQL_TOK_WORD)
			sql_tok_ident(&l, &t, w, sizeof(w));
		else if (k == SQL_TOK_STRING)
			strcpy(w, "S");
		else if (k == SQL_TOK_QIDENT)
			strcpy(w, "Q");
		else if (k == SQL_TOK_BAD)
			strcpy(w, "!");
		else {
			w[0] = text[t.start];
			w[1] = '\0';
		}
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", w);
		if (k == SQL_TOK_BAD)
			break;
	}
}

#define WORDS(text, want)                                \
	do {                                             \
		char got[512];                           \
		words(text, got, sizeof(got));           \
		cr_assert_str_eq(got, want, "%s", text); \
	} while (0)

Test(sql_lex, words_and_statements)
{
	WORDS("LISTEN foo; select 1", "listen foo ; select 1");
	WORDS("  Set  search_path=a,b", "set search_path = a , b");
	WORDS("select $1, a$b$c", "select $ 1 , a$b$c");
}

Test(sql_lex, comments_hide_words)
{
	WORDS("-- listen x\nselect 1", "select 1");
	WORDS("/* listen /* nested */ listen */ select", "select");
	WORDS("select 1 /* unterminated", "select 1 !");
	WORDS("select 1 -- listen", "select 1");
}

Test(sql_lex, strings_hide_words)
{
	WORDS("select 'listen x; y'", "select S");
	WORDS("select 'it''s; listen'", "select S");
	WORDS("select E'a\\'; listen b'", "select S");
	WORDS("select e'\\\\'; listen b", "select S ; listen b");
	/* Not an E string: the backslash is an ordinary byte, the quote ends it. */
	WORDS("select 'a\\'; listen b", "select S ; listen b");
	WORDS("select \"listen\"\"x\"; y", "select Q ; y");
	WORDS("select 'open", "select !");
}

Test(sql_lex, dollar_quotes)
{
	WORDS("do $$ begin listen x; end $$; listen y", "do S ; listen y");
	WORDS("select $tag$ $$ listen; $tag$ x", "select S x");
	WORDS("select $a$ $b$ listen $b$ $a$", "select S");
	WORDS("select $x$ never closed", "select !");
	WORDS("select $1", "select $ 1");
}

Test(sql_lex, quoted_identifier_names)
{
	struct sql_lexer l;
	struct sql_token t;
	char name[16];
	const char *text = "\"My\"\"Name\" FooBar";
	sql_lex_init(&l, text, strlen(text));
	cr_assert_eq(sql_lex_next(&l, &t), SQL_TOK_QIDENT);
	cr_assert(sql_tok_ident(&l, &t, name, sizeof(name)));
	cr_assert_str_eq(name, "My\"Name");
	cr_assert_eq(sql_lex_next(&l, &t), SQL_TOK_WORD);
	cr_assert(sql_tok_word(&l, &t, "foobar"));
	cr_assert_not(sql_tok_word(&l, &t, "foo"));
}

Test(sql_lex, nul_ends_the_text)
{
	const char text[] = "select 1\0listen";
	char got[64];
	struct sql_lexer l;
	struct sql_token t;
	sql_lex_init(&l, text, sizeof(text));
	size_t n = 0;
	while (sql_lex_next(&l, &t) != SQL_TOK_END)
		n++;
	cr_assert_eq(n, 2);
	(void)got;
}

/* standard_conforming_strings = off: a backslash escapes in '...' too, so what hides
 * in such a string (or does not) follows the session's reading. */
Test(sql_lex, backslashes_when_standard_strings_are_off)
{
	const char *text = "select 'x\\'' ; listen y; --'";
	struct sql_lexer l;
	struct sql_token t;
	int words = 0;
	sql_lex_init_ex(&l, text, strlen(text), true);
	while (sql_lex_next(&l, &t) != SQL_TOK_END)
		words += sql_tok_word(&l, &t, "listen");
	cr_expect_eq(words, 1, "off: 'x\\'' is one string, then LISTEN runs");
	words = 0;
	sql_lex_init(&l, text, strlen(text));
	while (sql_lex_next(&l, &t) != SQL_TOK_END)
		words += sql_tok_word(&l, &t, "listen");
	cr_expect_eq(words, 0, "on: the LISTEN is inside the second string");
}
