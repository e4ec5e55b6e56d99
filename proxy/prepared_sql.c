#include "proxy/prepared_sql.h"

#include <string.h>
#include <strings.h>

#include "proxy/sql_lex.h"

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
	if (first != 'p' && first != 'e' && first != 'd' && first != 'c')
		return false; /* not PREPARE, EXECUTE, DEALLOCATE, DISCARD, EXPLAIN or CREATE:
			       * most queries */
	char word[11];
	size_t k = 0;
	while (i < n && k < sizeof(word) - 1 && ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z'))
		word[k++] = (char)(p[i++] | 0x20);
	word[k] = '\0';
	if (i == n && k < sizeof(word) - 1)
		return k == 0 || strncmp("prepare", word, k) == 0 ||
		       strncmp("execute", word, k) == 0 || strncmp("deallocate", word, k) == 0 ||
		       strncmp("discard", word, k) == 0 || strncmp("explain", word, k) == 0 ||
		       strncmp("create", word, k) == 0;
	return strcmp(word, "prepare") == 0 || strcmp(word, "execute") == 0 ||
	       strcmp(word, "deallocate") == 0 || strcmp(word, "discard") == 0 ||
	       strcmp(word, "explain") == 0 || strcmp(word, "create") == 0;
}

/* The name after a keyword: an identifier, folded unless quoted; false if none.  *at:
 * where its token starts. */
static bool read_name_at(struct sql_lexer *l, char *name, bool *quoted, size_t *at)
{
	struct sql_token t;
	sql_lex_next(l, &t);
	*quoted = t.kind == SQL_TOK_QIDENT;
	*at = t.start;
	return sql_tok_ident(l, &t, name, SQL_NAME_MAX + 1) && name[0];
}

static bool read_name(struct sql_lexer *l, char *name, bool *quoted)
{
	size_t at;
	return read_name_at(l, name, quoted, &at);
}

static bool is_kw(const struct sql_lexer *l, const struct sql_token *t, const char *kw)
{
	char w[16];
	return t->kind == SQL_TOK_WORD && sql_tok_ident(l, t, w, sizeof(w)) && strcmp(w, kw) == 0;
}

/*
 * EXPLAIN [ANALYZE] [VERBOSE] [(options)] [CREATE TABLE ... AS] EXECUTE name ..., and
 * CREATE TABLE ... AS EXECUTE name ...: past the first word, to the EXECUTE that names a statement (outside
 * parentheses, after one of the words that may come just before it).  True with l at
 * the name.
 */
static bool find_inner_execute(struct sql_lexer *l, bool explain)
{
	struct sql_token t, prev = {.kind = SQL_TOK_END};
	int depth = 0;
	for (;;) {
		enum sql_tok k = sql_lex_next(l, &t);
		if (k == SQL_TOK_END || k == SQL_TOK_SEMI || k == SQL_TOK_BAD)
			return false;
		if (k == SQL_TOK_OTHER && l->s[t.start] == '(')
			depth++;
		else if (k == SQL_TOK_OTHER && l->s[t.start] == ')')
			depth--;
		else if (depth == 0 && is_kw(l, &t, "execute"))
			return is_kw(l, &prev, "as") ||
			       (explain &&
				(prev.kind == SQL_TOK_END || is_kw(l, &prev, "analyze") ||
				 is_kw(l, &prev, "analyse") || is_kw(l, &prev, "verbose") ||
				 (prev.kind == SQL_TOK_OTHER && l->s[prev.start] == ')')));
		if (depth < 0)
			return false;
		prev = t;
	}
}

/* To the end of the statement: the first ';' outside quotes and comments (at it). */
static void skip_statement(struct sql_lexer *l)
{
	struct sql_token t;
	for (;;) {
		enum sql_tok k = sql_lex_next(l, &t);
		if (k == SQL_TOK_END || k == SQL_TOK_SEMI) {
			l->pos = t.start;
			return;
		}
		if (k == SQL_TOK_BAD)
			return;
	}
}

static bool keyword(const char *word, const char *kw)
{
	return strcmp(word, kw) == 0;
}

void prepared_sql_parse(const char *text, size_t len, struct sql_stmt *out)
{
	memset(out, 0, sizeof(*out));
	out->cmd = SQL_OTHER;
	struct sql_lexer l;
	sql_lex_init(&l, text, len);
	char word[SQL_NAME_MAX + 1];
	bool quoted;
	if (!read_name(&l, word, &quoted) || quoted)
		return;
	enum sql_cmd cmd;
	if (keyword(word, "prepare"))
		cmd = SQL_PREPARE;
	else if (keyword(word, "execute") ||
		 ((keyword(word, "explain") || keyword(word, "create")) &&
		  find_inner_execute(&l, keyword(word, "explain"))))
		cmd = SQL_EXECUTE;
	else if (keyword(word, "deallocate"))
		cmd = SQL_DEALLOCATE;
	else if (keyword(word, "discard"))
		cmd = SQL_DISCARD_ALL;
	else
		return;
	if (!read_name_at(&l, out->name, &quoted, &out->name_at))
		return;
	if (cmd == SQL_DISCARD_ALL && (quoted || !keyword(out->name, "all")))
		return; /* DISCARD PLANS / TEMP / SEQUENCES: no statement is dropped */
	if (cmd == SQL_PREPARE && !quoted && keyword(out->name, "transaction"))
		return; /* two-phase commit */
	if (cmd == SQL_DEALLOCATE && !quoted && keyword(out->name, "prepare")) {
		if (!read_name_at(&l, out->name, &quoted, &out->name_at))
			return;
	}
	if (cmd == SQL_DEALLOCATE && !quoted && keyword(out->name, "all"))
		cmd = SQL_DEALLOCATE_ALL;
	out->after_name = l.pos;
	if (cmd != SQL_PREPARE && cmd != SQL_EXECUTE) {
		struct sql_lexer peek = l; /* DEALLOCATE name, DISCARD ALL: nothing more */
		struct sql_token t;
		enum sql_tok k = sql_lex_next(&peek, &t);
		if (k != SQL_TOK_END && k != SQL_TOK_SEMI)
			return;
	}
	skip_statement(&l);
	out->end = l.pos;
	if (l.bad || !sql_lex_only_semis(&l))
		return;
	out->cmd = cmd;
}
