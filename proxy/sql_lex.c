#include "proxy/sql_lex.h"

#include <stdint.h>
#include <string.h>

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* c | 0x20 is a lower-case letter only for a letter (it maps '@' and '[' to '_' to
 * bytes outside a-z): one test instead of two ranges, per byte of every word. */
static bool ident_start(unsigned char c)
{
	return (unsigned)((c | 0x20) - 'a') < 26 || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
	return ident_start(c) || (unsigned)(c - '0') < 10 || c == '$';
}

void sql_lex_init(struct sql_lexer *l, const char *text, size_t len)
{
	l->s = text;
	l->len = len;
	l->pos = 0;
	l->bad = false;
	l->backslashes = false;
}

void sql_lex_init_ex(struct sql_lexer *l, const char *text, size_t len, bool scs_off)
{
	sql_lex_init(l, text, len);
	l->backslashes = scs_off;
}

/* Block comments nest, as in PostgreSQL (scan.l: xc). */
static bool skip_block_comment(struct sql_lexer *l)
{
	int depth = 0;
	do {
		if (l->pos + 1 >= l->len)
			return false;
		if (l->s[l->pos] == '/' && l->s[l->pos + 1] == '*') {
			depth++;
			l->pos += 2;
		} else if (l->s[l->pos] == '*' && l->s[l->pos + 1] == '/') {
			depth--;
			l->pos += 2;
		} else {
			l->pos++;
		}
	} while (depth > 0);
	return true;
}

void sql_lex_skip_blank(struct sql_lexer *l)
{
	while (l->pos < l->len && !l->bad) {
		const char *s = l->s;
		if (is_space(s[l->pos])) {
			l->pos++;
		} else if (s[l->pos] == '-' && l->pos + 1 < l->len && s[l->pos + 1] == '-') {
			while (l->pos < l->len && s[l->pos] != '\n')
				l->pos++;
		} else if (s[l->pos] == '/' && l->pos + 1 < l->len && s[l->pos + 1] == '*') {
			if (!skip_block_comment(l)) {
				l->bad = true;
				return;
			}
		} else {
			return;
		}
	}
}

/* From the opening quote at l->pos past the closing one; a doubled quote is one
 * character; with escapes (E'') a backslash takes the next byte.  False: unterminated. */
static bool skip_quoted(struct sql_lexer *l, char q, bool escapes)
{
	l->pos++;
	while (l->pos < l->len) {
		char c = l->s[l->pos++];
		if (escapes && c == '\\') {
			l->pos++;
		} else if (c == q) {
			if (l->pos < l->len && l->s[l->pos] == q)
				l->pos++;
			else
				return true;
		}
	}
	return false;
}

/* $tag$ ... $tag$ at l->pos.  0: this '$' starts no dollar quote (a $1 parameter),
 * 1: skipped, -1: unterminated. */
static int skip_dollar(struct sql_lexer *l)
{
	size_t start = l->pos, i = start + 1;
	if (i < l->len && !ident_start((unsigned char)l->s[i]) && l->s[i] != '$')
		return 0;
	while (i < l->len && l->s[i] != '$' && ident_char((unsigned char)l->s[i]))
		i++;
	if (i >= l->len || l->s[i] != '$')
		return 0;
	size_t tag_len = i + 1 - start;
	for (size_t j = i + 1; j + tag_len <= l->len; j++)
		if (l->s[j] == '$' && memcmp(l->s + j, l->s + start, tag_len) == 0) {
			l->pos = j + tag_len;
			return 1;
		}
	return -1;
}

static enum sql_tok bad(struct sql_lexer *l, struct sql_token *t)
{
	l->bad = true;
	t->kind = SQL_TOK_BAD;
	t->len = l->len - t->start;
	l->pos = l->len;
	return SQL_TOK_BAD;
}

static enum sql_tok done(struct sql_lexer *l, struct sql_token *t, enum sql_tok kind)
{
	t->kind = kind;
	t->len = l->pos - t->start;
	return kind;
}

enum sql_tok sql_lex_next(struct sql_lexer *l, struct sql_token *t)
{
	sql_lex_skip_blank(l);
	t->start = l->pos;
	if (l->bad)
		return bad(l, t);
	if (l->pos >= l->len || l->s[l->pos] == '\0')
		return done(l, t, SQL_TOK_END);
	unsigned char c = (unsigned char)l->s[l->pos];
	if ((c == 'e' || c == 'E') && l->pos + 1 < l->len && l->s[l->pos + 1] == '\'') {
		l->pos++;
		return skip_quoted(l, '\'', true) ? done(l, t, SQL_TOK_STRING) : bad(l, t);
	}
	if (ident_start(c)) {
		while (l->pos < l->len && ident_char((unsigned char)l->s[l->pos]))
			l->pos++;
		return done(l, t, SQL_TOK_WORD);
	}
	if (c == '\'')
		return skip_quoted(l, '\'', l->backslashes) ? done(l, t, SQL_TOK_STRING)
							    : bad(l, t);
	if (c == '"')
		return skip_quoted(l, '"', false) ? done(l, t, SQL_TOK_QIDENT) : bad(l, t);
	if (c == '$') {
		int r = skip_dollar(l);
		if (r < 0)
			return bad(l, t);
		if (r > 0)
			return done(l, t, SQL_TOK_STRING);
	}
	l->pos++;
	return done(l, t, c == ';' ? SQL_TOK_SEMI : SQL_TOK_OTHER);
}

bool sql_tok_char(const struct sql_lexer *l, const struct sql_token *t, char c)
{
	return t->kind == SQL_TOK_OTHER && l->s[t->start] == c;
}

bool sql_tok_ident(const struct sql_lexer *l, const struct sql_token *t, char *out, size_t cap)
{
	size_t n = 0, i;
	out[0] = '\0';
	if (t->kind == SQL_TOK_WORD) {
		for (i = 0; i < t->len && n + 1 < cap; i++) {
			char c = l->s[t->start + i];
			out[n++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
	} else if (t->kind == SQL_TOK_QIDENT) {
		for (i = 1; i + 1 < t->len && n + 1 < cap; i++) {
			char c = l->s[t->start + i];
			if (c == '"')
				i++; /* "" is one quote */
			out[n++] = c;
		}
	} else {
		return false;
	}
	/* Cut short in the middle of a UTF-8 character: PostgreSQL truncates an identifier
	 * at a character's start (pg_mbcliplen), so drop the part. */
	if (i < t->len && ((uint8_t)l->s[t->start + i] & 0xC0) == 0x80) {
		while (n && ((uint8_t)out[n - 1] & 0xC0) == 0x80)
			n--;
		if (n && ((uint8_t)out[n - 1] & 0xC0) == 0xC0)
			n--;
	}
	out[n] = '\0';
	return true;
}

bool sql_lex_only_semis(struct sql_lexer *l)
{
	struct sql_token t;
	for (;;) {
		enum sql_tok k = sql_lex_next(l, &t);
		if (k == SQL_TOK_END)
			return true;
		if (k != SQL_TOK_SEMI)
			return false;
	}
}
