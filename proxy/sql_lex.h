/*
 * A small SQL lexer for what corral must recognise in a client's SQL (simple-query and
 * Parse text): statement boundaries and keywords, never their meaning.  It knows what
 * PostgreSQL's scanner knows about where a word can hide: -- comments, nested block
 * comments, '...' strings with '' doubled, E'...' strings with backslash escapes,
 * "quoted identifiers" and $tag$ dollar quotes $tag$; so a LISTEN inside any of them is
 * not a word, and a ';' inside them ends nothing.  With standard_conforming_strings
 * off (sql_lex_init_ex), a backslash escapes in every '...' string, as it does then.
 *
 * Pure and allocation-free: tokens are offsets into the caller's text.
 */
#ifndef CORRAL_PROXY_SQL_LEX_H
#define CORRAL_PROXY_SQL_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum sql_tok {
	SQL_TOK_END,    /* end of text (or its NUL) */
	SQL_TOK_WORD,   /* keyword or unquoted identifier (may hold '$' after its start) */
	SQL_TOK_QIDENT, /* "quoted identifier" */
	SQL_TOK_STRING, /* '...', E'...' or a dollar-quoted body */
	SQL_TOK_SEMI,   /* ';': a statement ends */
	SQL_TOK_OTHER,  /* a number, an operator or punctuation: one byte at a time */
	SQL_TOK_BAD,    /* an unterminated string, quote or comment: the rest of the text */
};

struct sql_token {
	enum sql_tok kind;
	size_t start, len; /* the whole token, quotes included */
};

struct sql_lexer {
	const char *s;
	size_t len, pos;
	bool bad;         /* a SQL_TOK_BAD was returned: the text ends unterminated */
	bool backslashes; /* standard_conforming_strings = off: '\'' does not end '...' */
};

void sql_lex_init(struct sql_lexer *l, const char *text, size_t len);
/* The same for a session with standard_conforming_strings = off when scs_off. */
void sql_lex_init_ex(struct sql_lexer *l, const char *text, size_t len, bool scs_off);
/* The next token after blanks and comments. */
enum sql_tok sql_lex_next(struct sql_lexer *l, struct sql_token *t);
/* A word equal to kw (lower case), ignoring case; false for anything else.  Inline:
 * the scanners ask it of every statement's first word for a dozen keywords, and with
 * a literal kw the compiler folds strlen(kw) away. */
static inline bool sql_tok_word(const struct sql_lexer *l, const struct sql_token *t,
				const char *kw)
{
	if (t->kind != SQL_TOK_WORD || strlen(kw) != t->len)
		return false;
	for (size_t i = 0; i < t->len; i++) {
		char c = l->s[t->start + i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != kw[i])
			return false;
	}
	return true;
}
/* A one-byte token equal to c. */
bool sql_tok_char(const struct sql_lexer *l, const struct sql_token *t, char c);
/*
 * The identifier a WORD or QIDENT names, as PostgreSQL reads it: a word folded to lower
 * case, a quoted one with "" made one '"' and case kept; truncated to cap - 1 bytes.
 * False (out empty) for other tokens.
 */
bool sql_tok_ident(const struct sql_lexer *l, const struct sql_token *t, char *out, size_t cap);
/* True when nothing but blanks, comments and ';' is left (consumes them). */
bool sql_lex_only_semis(struct sql_lexer *l);
/* Skips blanks and comments only (l->pos then is where the next token starts). */
void sql_lex_skip_blank(struct sql_lexer *l);

#endif
