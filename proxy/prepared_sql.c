#include "proxy/prepared_sql.h"

#include <string.h>
#include <strings.h>

bool prepared_sql_maybe(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r' ||
			 p[i] == '\f' || p[i] == '\v'))
		i++;
	if (i == n)
		return n >= 32; /* only blanks so far: look at the whole text */
	if (p[i] == '-' || p[i] == '/')
		return true; /* a comment first */
	uint8_t first = p[i] | 0x20;
	if (first != 'p' && first != 'e' && first != 'd')
		return false; /* not PREPARE, EXECUTE, DEALLOCATE or DISCARD: most queries */
	char word[11];
	size_t k = 0;
	while (i < n && k < sizeof(word) - 1 && ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z'))
		word[k++] = (char)(p[i++] | 0x20);
	word[k] = '\0';
	if (i == n && k < sizeof(word) - 1)
		return k == 0 || strncmp("prepare", word, k) == 0 ||
		       strncmp("execute", word, k) == 0 || strncmp("deallocate", word, k) == 0 ||
		       strncmp("discard", word, k) == 0;
	return strcmp(word, "prepare") == 0 || strcmp(word, "execute") == 0 ||
	       strcmp(word, "deallocate") == 0 || strcmp(word, "discard") == 0;
}

struct lex {
	const char *s;
	size_t len, pos;
	bool bad; /* unterminated string, comment or quote: not ours to judge */
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* Skips blanks and comments (block comments nest, as in PostgreSQL). */
static void skip_blank(struct lex *l)
{
	while (l->pos < l->len) {
		const char *s = l->s;
		if (is_space(s[l->pos])) {
			l->pos++;
		} else if (s[l->pos] == '-' && l->pos + 1 < l->len && s[l->pos + 1] == '-') {
			while (l->pos < l->len && s[l->pos] != '\n')
				l->pos++;
		} else if (s[l->pos] == '/' && l->pos + 1 < l->len && s[l->pos + 1] == '*') {
			int depth = 0;
			do {
				if (l->pos + 1 >= l->len) {
					l->bad = true;
					l->pos = l->len;
					return;
				}
				if (s[l->pos] == '/' && s[l->pos + 1] == '*') {
					depth++;
					l->pos += 2;
				} else if (s[l->pos] == '*' && s[l->pos + 1] == '/') {
					depth--;
					l->pos += 2;
				} else {
					l->pos++;
				}
			} while (depth > 0);
		} else {
			return;
		}
	}
}

/* A quoted run from l->pos (at the opening quote) to past the closing one; a doubled
 * quote is one character; backslash escapes when escapes is set (E''). */
static void skip_quoted(struct lex *l, char q, bool escapes)
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
				return;
		}
	}
	l->bad = true;
}

/* $tag$ ... $tag$ at l->pos; false if this '$' starts no dollar quote. */
static bool skip_dollar(struct lex *l)
{
	size_t start = l->pos, i = start + 1;
	while (i < l->len && l->s[i] != '$' && ident_char((unsigned char)l->s[i]) && l->s[i] != '$')
		i++;
	if (i >= l->len || l->s[i] != '$' ||
	    (i > start + 1 && !ident_start((unsigned char)l->s[start + 1])))
		return false;
	size_t tag_len = i + 1 - start;
	for (size_t j = i + 1; j + tag_len <= l->len; j++)
		if (l->s[j] == '$' && memcmp(l->s + j, l->s + start, tag_len) == 0) {
			l->pos = j + tag_len;
			return true;
		}
	l->bad = true;
	l->pos = l->len;
	return true;
}

/* An identifier at l->pos into name (folded unless quoted); false if none. */
static bool read_ident(struct lex *l, char *name, bool *quoted)
{
	size_t n = 0;
	*quoted = false;
	if (l->pos < l->len && l->s[l->pos] == '"') {
		*quoted = true;
		l->pos++;
		while (l->pos < l->len) {
			char c = l->s[l->pos++];
			if (c == '"') {
				if (l->pos < l->len && l->s[l->pos] == '"')
					l->pos++;
				else
					goto done;
			}
			if (n < SQL_NAME_MAX)
				name[n++] = c;
		}
		l->bad = true;
		return false;
	}
	if (l->pos >= l->len || !ident_start((unsigned char)l->s[l->pos]))
		return false;
	while (l->pos < l->len && ident_char((unsigned char)l->s[l->pos])) {
		char c = l->s[l->pos++];
		if (n < SQL_NAME_MAX)
			name[n++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
done:
	name[n] = '\0';
	return n > 0;
}

/* Skips to the end of the statement: the first ';' outside quotes and comments. */
static void skip_statement(struct lex *l)
{
	while (l->pos < l->len && !l->bad) {
		skip_blank(l);
		if (l->pos >= l->len)
			return;
		char c = l->s[l->pos];
		if (c == ';' || c == '\0')
			return;
		if (c == '\'') {
			bool e = l->pos > 0 && (l->s[l->pos - 1] == 'E' || l->s[l->pos - 1] == 'e');
			skip_quoted(l, '\'', e);
		} else if (c == '"') {
			skip_quoted(l, '"', false);
		} else if (c == '$' &&
			   (l->pos == 0 || !ident_char((unsigned char)l->s[l->pos - 1]))) {
			if (!skip_dollar(l))
				l->pos++;
		} else {
			l->pos++;
		}
	}
}

/* Only blanks, comments and ';' after the statement. */
static bool nothing_after(struct lex *l)
{
	while (l->pos < l->len) {
		skip_blank(l);
		if (l->pos >= l->len || l->s[l->pos] == '\0')
			return !l->bad;
		if (l->s[l->pos] != ';')
			return false;
		l->pos++;
	}
	return !l->bad;
}

static bool keyword(const char *word, const char *kw)
{
	return strcmp(word, kw) == 0;
}

void prepared_sql_parse(const char *text, size_t len, struct sql_stmt *out)
{
	memset(out, 0, sizeof(*out));
	out->cmd = SQL_OTHER;
	struct lex l = {.s = text, .len = len};
	char word[SQL_NAME_MAX + 1];
	bool quoted;
	skip_blank(&l);
	if (!read_ident(&l, word, &quoted) || quoted)
		return;
	enum sql_cmd cmd;
	if (keyword(word, "prepare"))
		cmd = SQL_PREPARE;
	else if (keyword(word, "execute"))
		cmd = SQL_EXECUTE;
	else if (keyword(word, "deallocate"))
		cmd = SQL_DEALLOCATE;
	else if (keyword(word, "discard"))
		cmd = SQL_DISCARD_ALL;
	else
		return;
	skip_blank(&l);
	if (!read_ident(&l, out->name, &quoted))
		return;
	if (cmd == SQL_DISCARD_ALL && (quoted || !keyword(out->name, "all")))
		return; /* DISCARD PLANS / TEMP / SEQUENCES: no statement is dropped */
	if (cmd == SQL_PREPARE && !quoted && keyword(out->name, "transaction"))
		return; /* two-phase commit */
	if (cmd == SQL_DEALLOCATE && !quoted && keyword(out->name, "prepare")) {
		skip_blank(&l);
		if (!read_ident(&l, out->name, &quoted))
			return;
	}
	if (cmd == SQL_DEALLOCATE && !quoted && keyword(out->name, "all"))
		cmd = SQL_DEALLOCATE_ALL;
	out->after_name = l.pos;
	if (cmd != SQL_PREPARE && cmd != SQL_EXECUTE) {
		skip_blank(&l); /* DEALLOCATE name, DISCARD ALL: nothing more */
		if (l.pos < l.len && l.s[l.pos] != ';' && l.s[l.pos] != '\0')
			return;
	}
	skip_statement(&l);
	out->end = l.pos;
	if (l.bad || !nothing_after(&l))
		return;
	out->cmd = cmd;
}
