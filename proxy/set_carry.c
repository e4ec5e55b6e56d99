#include "proxy/set_carry.h"

#include <string.h>

#include "proxy/sql_lex.h"

/* Settings whose SET is not a plain value: identity, what SET handles specially, and
 * seed, which RESET does not undo (session_params.c never resets it). */
static bool never_carried(const char *name)
{
	static const char *const names[] = {
		"role",
		"session",
		"session_authorization",
		"all",
		"transaction",
		"constraints",
		"local",
		"time",
		"names",
		"xml",
		"schema",
		"transaction_isolation",
		"transaction_read_only",
		"transaction_deferrable",
		"seed",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/* PostgreSQL's GUC_LIST_QUOTE settings a client may SET. */
static bool list_quoted(const char *name)
{
	return strcmp(name, "search_path") == 0 || strcmp(name, "temp_tablespaces") == 0 ||
	       strcmp(name, "session_preload_libraries") == 0 ||
	       strcmp(name, "local_preload_libraries") == 0;
}

/* Appends n bytes to out (cap SET_CARRY_VALUE_MAX); false if it does not fit. */
static bool append(char *out, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > SET_CARRY_VALUE_MAX)
		return false;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
	return true;
}

static bool is_number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+';
}

/* The setting's name after SET [SESSION] / RESET: word(.word)*, folded. */
static bool read_name(struct sql_lexer *l, struct sql_token *t, char *name, size_t cap)
{
	if (t->kind != SQL_TOK_WORD || !sql_tok_ident(l, t, name, cap))
		return false;
	for (;;) {
		struct sql_lexer peek = *l;
		sql_lex_next(&peek, t);
		if (!sql_tok_char(&peek, t, '.'))
			return true;
		char part[64];
		if (sql_lex_next(&peek, t) != SQL_TOK_WORD ||
		    !sql_tok_ident(&peek, t, part, sizeof(part)) ||
		    strlen(name) + 1 + strlen(part) >= cap)
			return false;
		strcat(name, ".");
		strcat(name, part);
		*l = peek;
	}
}

/* One element of the value at t: a word, a '...' string, a number or a quoted
 * identifier (lists only).  *next: the token after it. */
static bool read_element(struct sql_lexer *l, struct sql_token *t, bool in_list, char *out,
			 size_t *len, enum sql_tok *next)
{
	const char *s = l->s + t->start;
	if (t->kind == SQL_TOK_WORD) {
		char w[SET_CARRY_VALUE_MAX];
		sql_tok_ident(l, t, w, sizeof(w));
		if (!append(out, len, w, strlen(w)))
			return false;
	} else if (t->kind == SQL_TOK_QIDENT && in_list) {
		if (!append(out, len, s, t->len)) /* kept quoted, as SET stores it */
			return false;
	} else if (t->kind == SQL_TOK_STRING && s[0] == '\'' && !in_list) {
		/* '...' only (an E'' string would need its escapes read). */
		for (size_t i = 1; i + 1 < t->len; i++) {
			if (s[i] == '\'')
				i++; /* '' is one quote */
			if (!append(out, len, &s[i], 1))
				return false;
		}
	} else if (t->kind == SQL_TOK_OTHER && is_number_char(*s) && !in_list) {
		/* A number arrives one byte a token: take the adjacent run. */
		size_t end = t->start;
		while (end < l->len &&
		       (is_number_char(l->s[end]) || ((l->s[end] | 0x20) == 'e' && end > t->start)))
			end++;
		if (!append(out, len, s, end - t->start))
			return false;
		l->pos = end;
	} else {
		return false;
	}
	*next = sql_lex_next(l, t);
	return true;
}

bool set_carry_parse(const char *text, size_t len, struct set_carry *out)
{
	memset(out, 0, sizeof(*out));
	struct sql_lexer l;
	struct sql_token t;
	sql_lex_init(&l, text, len);
	sql_lex_next(&l, &t);
	bool reset = sql_tok_word(&l, &t, "reset");
	if (!reset && !sql_tok_word(&l, &t, "set"))
		return false;
	sql_lex_next(&l, &t);
	if (!reset && sql_tok_word(&l, &t, "session")) {
		sql_lex_next(&l, &t);
		if (sql_tok_word(&l, &t, "authorization") ||
		    sql_tok_word(&l, &t, "characteristics"))
			return false;
	}
	if (reset && sql_tok_word(&l, &t, "all")) {
		strcpy(out->name, "all"); /* back to the session defaults: carried as such */
		out->reset = true;
		return sql_lex_only_semis(&l);
	}
	if (!read_name(&l, &t, out->name, sizeof(out->name)) || never_carried(out->name))
		return false;
	if (reset) {
		out->reset = true;
		return sql_lex_only_semis(&l);
	}
	if (strcmp(out->name, "all") == 0)
		return false; /* SET ALL is not SQL */
	enum sql_tok k = sql_lex_next(&l, &t);
	if (!sql_tok_char(&l, &t, '=') && !sql_tok_word(&l, &t, "to"))
		return false;
	k = sql_lex_next(&l, &t);
	if (sql_tok_word(&l, &t, "default")) {
		out->reset = true;
		return sql_lex_only_semis(&l);
	}
	size_t vlen = 0;
	if (!list_quoted(out->name)) {
		/* One element; a list would be a list-input setting corral does not know. */
		if (!read_element(&l, &t, false, out->value, &vlen, &k))
			return false;
		return k == SQL_TOK_END || (k == SQL_TOK_SEMI && sql_lex_only_semis(&l));
	}
	/* search_path and its kind: words (folded) and "identifiers" (kept quoted), as SET
	 * stores them; a '...' element would be quoted by SET, so it is not carried. */
	for (;;) {
		if (!read_element(&l, &t, true, out->value, &vlen, &k))
			return false;
		if (k == SQL_TOK_END || k == SQL_TOK_SEMI)
			return k == SQL_TOK_END || sql_lex_only_semis(&l);
		if (!sql_tok_char(&l, &t, ',') || !append(out->value, &vlen, ", ", 2))
			return false;
		k = sql_lex_next(&l, &t);
	}
}

/* Statements that open or end a transaction block: with one among them, the Query is
 * not one implicit transaction any more. */
static bool transaction_control(const struct sql_lexer *l, const struct sql_token *t)
{
	static const char *const words[] = {
		"begin", "start",     "commit",  "end",     "rollback",
		"abort", "savepoint", "release", "prepare",
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (sql_tok_word(l, t, words[i]))
			return true;
	return false;
}

bool set_carry_collect(const char *text, size_t len,
		       bool (*pins)(const char *stmt, size_t stmt_len, void *arg), void *arg,
		       struct set_carry out[SET_CARRY_MAX], int *n)
{
	struct sql_lexer l;
	struct sql_token t;
	sql_lex_init(&l, text, len);
	*n = 0;
	for (;;) {
		enum sql_tok k = sql_lex_next(&l, &t);
		if (k == SQL_TOK_END)
			return true;
		if (k == SQL_TOK_SEMI)
			continue;
		if (k == SQL_TOK_BAD || transaction_control(&l, &t))
			return false;
		size_t start = t.start;
		while (k != SQL_TOK_END && k != SQL_TOK_SEMI && k != SQL_TOK_BAD)
			k = sql_lex_next(&l, &t);
		if (k == SQL_TOK_BAD)
			return false;
		size_t end = t.start; /* at the ';' or the end */
		if (!pins(text + start, end - start, arg))
			continue;
		if (*n == SET_CARRY_MAX || !set_carry_parse(text + start, end - start, &out[*n]))
			return false;
		(*n)++;
	}
}
