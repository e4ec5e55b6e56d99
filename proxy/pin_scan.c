#include "proxy/pin_scan.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/sql_lex.h"

static const char *const reason_names[PIN_REASONS] = {
	[PIN_NONE] = "none",
	[PIN_LISTEN] = "listen",
	[PIN_ADVISORY_LOCK] = "advisory_lock",
	[PIN_TEMP_OBJECT] = "temp_object",
	[PIN_HOLD_CURSOR] = "cursor_with_hold",
	[PIN_LOAD] = "load",
	[PIN_SET] = "set",
	[PIN_UNREADABLE] = "unreadable",
	[PIN_PREPARED_SQL] = "prepared_sql",
	[PIN_SEQUENCE] = "sequence_state",
};

static const char *const reason_whats[PIN_REASONS] = {
	[PIN_NONE] = "nothing",
	[PIN_LISTEN] = "LISTEN",
	[PIN_ADVISORY_LOCK] = "a session advisory lock",
	[PIN_TEMP_OBJECT] = "a temporary object",
	[PIN_HOLD_CURSOR] = "a cursor WITH HOLD",
	[PIN_LOAD] = "LOAD",
	[PIN_SET] = "a session setting",
	[PIN_UNREADABLE] = "SQL corral cannot read to its end",
	[PIN_PREPARED_SQL] = "PREPARE, EXECUTE, DEALLOCATE or DISCARD (or a name of corral's "
			     "own statements) other than alone in a query",
	[PIN_SEQUENCE] = "currval() or lastval() (the session's sequence values)",
};

const char *pin_reason_name(enum pin_reason r)
{
	return r < PIN_REASONS ? reason_names[r] : "?";
}

const char *pin_reason_what(enum pin_reason r)
{
	return r < PIN_REASONS ? reason_whats[r] : "?";
}

/* Scanning depth for DO bodies and the strings inside them (EXECUTE 'LISTEN x'). */
#define BODY_DEPTH 3

struct scan {
	struct sql_lexer l;
	bool (*carried)(const char *name);
	struct pin_find *out;
	int depth;      /* 0: the client's text; more: inside a DO body */
	int statements; /* in the client's text */
	/* A statement of the client's text starts with PREPARE, EXECUTE, DEALLOCATE or
	 * DISCARD, or names corral_...: whether that pins depends on the whole text. */
	bool prepared_sql;
};

static bool is_word(struct scan *sc, const struct sql_token *t, const char *kw)
{
	return sql_tok_word(&sc->l, t, kw);
}

static bool found(struct scan *sc, enum pin_reason r)
{
	if (sc->out->reason == PIN_NONE)
		sc->out->reason = r;
	return true;
}

static bool advisory_name(const char *name)
{
	return strcmp(name, "pg_advisory_lock") == 0 ||
	       strcmp(name, "pg_advisory_lock_shared") == 0 ||
	       strcmp(name, "pg_try_advisory_lock") == 0 ||
	       strcmp(name, "pg_try_advisory_lock_shared") == 0;
}

static bool scan_text(const char *text, size_t len, bool (*carried)(const char *), bool scs_off,
		      struct pin_find *out, int depth);
static bool scan_client_text(const char *text, size_t len, bool (*carried)(const char *),
			     bool scs_off, bool simple_query, struct pin_find *out, int depth);

/* A string token's contents (quotes and dollar tags off) scanned as a DO body. */
static bool scan_body(struct scan *sc, const struct sql_token *t)
{
	if (sc->depth >= BODY_DEPTH)
		return found(sc, PIN_UNREADABLE);
	const char *s = sc->l.s + t->start;
	size_t n = t->len, open = 1;
	if (s[0] == '$') {
		open = (size_t)((const char *)memchr(s + 1, '$', n - 1) - s) + 1;
	} else if (s[0] == 'e' || s[0] == 'E') {
		open = 2;
	}
	if (n < 2 * open)
		return false;
	struct pin_find inner = {0};
	if (!scan_text(s + open, n - 2 * open, sc->carried, sc->l.backslashes, &inner,
		       sc->depth + 1))
		return false;
	sc->out->reason = inner.reason;
	memcpy(sc->out->setting, inner.setting, sizeof(inner.setting));
	return true;
}

/* set_config(name, value, is_local): only a literal true is local. */
static bool scan_set_config(struct scan *sc)
{
	struct sql_token t;
	if (sql_lex_next(&sc->l, &t) != SQL_TOK_OTHER || !sql_tok_char(&sc->l, &t, '('))
		return false; /* not a call */
	int depth = 1, arg = 0, last_tokens = 0;
	bool last_true = false;
	char name[64] = "";
	while (depth > 0) {
		enum sql_tok k = sql_lex_next(&sc->l, &t);
		if (k == SQL_TOK_END || k == SQL_TOK_SEMI || k == SQL_TOK_BAD)
			break;
		if (sql_tok_char(&sc->l, &t, '(')) {
			depth++;
		} else if (sql_tok_char(&sc->l, &t, ')')) {
			depth--;
			continue;
		} else if (depth == 1 && sql_tok_char(&sc->l, &t, ',')) {
			arg++;
			last_tokens = 0;
			continue;
		}
		if (depth == 1 && arg == 0 && k == SQL_TOK_STRING && t.len >= 2 &&
		    sc->l.s[t.start] == '\'' && t.len - 2 < sizeof(name)) {
			memcpy(name, sc->l.s + t.start + 1, t.len - 2);
			name[t.len - 2] = '\0';
			for (char *p = name; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p + 32);
		}
		if (depth == 1 && arg == 2) {
			last_tokens++;
			last_true = is_word(sc, &t, "true") ||
				    (k == SQL_TOK_STRING && t.len == 3 &&
				     (sc->l.s[t.start + 1] | 0x20) == 't');
		}
	}
	if (arg == 2 && last_tokens == 1 && last_true)
		return false; /* set_config(..., true): the transaction's own */
	if (name[0] && strchr(name, '\'') == NULL && sc->carried && sc->carried(name))
		return false;
	snprintf(sc->out->setting, sizeof(sc->out->setting), "%s", name[0] ? name : "set_config");
	return found(sc, PIN_SET);
}

/* SET ... / RESET ... after its first word (reset: RESET). */
static bool scan_set(struct scan *sc, bool reset)
{
	struct sql_token t;
	enum sql_tok k = sql_lex_next(&sc->l, &t);
	if (!reset && (is_word(sc, &t, "local") || is_word(sc, &t, "transaction") ||
		       is_word(sc, &t, "constraints")))
		return false; /* the transaction's own */
	if (!reset && is_word(sc, &t, "session"))
		k = sql_lex_next(&sc->l, &t);
	char name[64] = "";
	if (is_word(sc, &t, "time")) {
		strcpy(name, "timezone");
	} else if (is_word(sc, &t, "names")) {
		strcpy(name, "client_encoding");
	} else if (k == SQL_TOK_WORD || k == SQL_TOK_QIDENT) {
		(void)sql_tok_ident(&sc->l, &t, name, sizeof(name));
		/* A qualified custom setting: myapp.tenant */
		struct sql_lexer peek = sc->l;
		struct sql_token dot, part;
		while (sql_lex_next(&peek, &dot) == SQL_TOK_OTHER &&
		       sql_tok_char(&peek, &dot, '.')) {
			char more[64];
			enum sql_tok pk = sql_lex_next(&peek, &part);
			if ((pk != SQL_TOK_WORD && pk != SQL_TOK_QIDENT) ||
			    !sql_tok_ident(&peek, &part, more, sizeof(more)) ||
			    strlen(name) + 1 + strlen(more) >= sizeof(name)) {
				name[0] = '\0';
				break;
			}
			strcat(name, ".");
			strcat(name, more);
			sc->l = peek;
		}
	}
	/* ROLE, SESSION AUTHORIZATION and ALL are never carried; what corral cannot name,
	 * it cannot carry. */
	bool never = !name[0] || strcmp(name, "role") == 0 || strcmp(name, "session") == 0 ||
		     strcmp(name, "all") == 0 || strcmp(name, "authorization") == 0;
	if (!never && sc->carried && sc->carried(name))
		return false;
	snprintf(sc->out->setting, sizeof(sc->out->setting), "%s", name[0] ? name : "?");
	return found(sc, PIN_SET);
}

/* CREATE [OR REPLACE] [GLOBAL | LOCAL] TEMP | TEMPORARY ..., or a pg_temp name. */
static bool scan_create(struct scan *sc)
{
	struct sql_token t;
	for (int i = 0; i < 4; i++) {
		sql_lex_next(&sc->l, &t);
		if (is_word(sc, &t, "temp") || is_word(sc, &t, "temporary"))
			return found(sc, PIN_TEMP_OBJECT);
		if (!is_word(sc, &t, "or") && !is_word(sc, &t, "replace") &&
		    !is_word(sc, &t, "global") && !is_word(sc, &t, "local"))
			break;
	}
	return false; /* the rest of the statement is read by the caller */
}

/* The word just read is called: a '(' comes next. */
static bool called(const struct scan *sc)
{
	struct sql_lexer ahead = sc->l;
	struct sql_token t;
	return sql_lex_next(&ahead, &t) == SQL_TOK_OTHER && ahead.s[t.start] == '(';
}

/* Whether a name of this first byte and length can be one scan_statement compares with
 * (listed here: a name added there must be added here). */
static inline bool may_be_named(char first, size_t n)
{
#define IS_LEN(w) (n == sizeof(w) - 1)
	switch (first) {
	case 'c':
	case 'C':
		return n >= 7; /* currval, and corral_... in any case (quoted too) */
	case 'e':
		return IS_LEN("execute");
	case 'h':
		return IS_LEN("hold");
	case 'l':
		return IS_LEN("lastval") || IS_LEN("listen") || IS_LEN("load");
	case 'p':
		return IS_LEN("pg_temp") || IS_LEN("pg_advisory_lock") ||
		       IS_LEN("pg_advisory_lock_shared") || IS_LEN("pg_try_advisory_lock") ||
		       IS_LEN("pg_try_advisory_lock_shared");
	case 'r':
		return IS_LEN("reset");
	case 's':
		return IS_LEN("set") || IS_LEN("set_config");
	case 't':
		return IS_LEN("temp") || IS_LEN("temporary");
	default:
		return false;
	}
#undef IS_LEN
}

/*
 * Whether the WORD or QIDENT t may name one of the words scan_statement looks for.
 * Most words of a query name none: this answers from the token's first byte and
 * length, before its name is copied and compared a dozen times.  A word shorter than
 * the name buffer is its name folded to lower case, byte for byte; anything else (a
 * quoted identifier, "" inside, a word cut short) is copied and compared in full.
 */
static bool may_name_one(const struct scan *sc, const struct sql_token *t)
{
	if (t->kind != SQL_TOK_WORD || t->len >= 63)
		return true;
	char c = sc->l.s[t->start];
	if (c >= 'A' && c <= 'Z')
		c = (char)(c + 32);
	return may_be_named(c, t->len);
}

/*
 * One statement from its first token.  True once a reason is found (the scan
 * stops).  The statement's words are read to its ';' so the next starts clean.
 */
static bool scan_statement(struct scan *sc, struct sql_token *first)
{
	struct sql_token t = *first, prev = {.kind = SQL_TOK_END};
	enum sql_tok k = t.kind;
	bool is_do = is_word(sc, &t, "do"), is_create = is_word(sc, &t, "create");
	bool is_explain = is_word(sc, &t, "explain");
	bool body = sc->depth > 0;
	sc->out->stmt_start = first->start;
	if (!body && (is_word(sc, &t, "prepare") || is_word(sc, &t, "execute") ||
		      is_word(sc, &t, "deallocate") || is_word(sc, &t, "discard")))
		sc->prepared_sql = true;
	if (is_word(sc, &t, "listen"))
		return found(sc, PIN_LISTEN);
	if (is_word(sc, &t, "load"))
		return found(sc, PIN_LOAD);
	if (is_word(sc, &t, "set") && scan_set(sc, false))
		return true;
	if (is_word(sc, &t, "reset") && scan_set(sc, true))
		return true;
	if (is_create && scan_create(sc))
		return true;
	for (;;) {
		if (k == SQL_TOK_END || k == SQL_TOK_SEMI)
			return false;
		if (k == SQL_TOK_BAD)
			return found(sc, PIN_UNREADABLE);
		char name[64];
		if ((k == SQL_TOK_WORD || k == SQL_TOK_QIDENT) && may_name_one(sc, &t) &&
		    sql_tok_ident(&sc->l, &t, name, sizeof(name))) {
			if (advisory_name(name))
				return found(sc, PIN_ADVISORY_LOCK);
			if ((strcmp(name, "currval") == 0 || strcmp(name, "lastval") == 0) &&
			    called(sc))
				return found(sc, PIN_SEQUENCE);
			if (!body && strncasecmp(name, "corral_", 7) == 0)
				sc->prepared_sql = true;
			/* EXPLAIN EXECUTE, CREATE TABLE AS EXECUTE: a client's statement name */
			if (!body && k == SQL_TOK_WORD && strcmp(name, "execute") == 0 &&
			    (is_explain || (is_create && is_word(sc, &prev, "as"))))
				sc->prepared_sql = true;
			if (strcmp(name, "set_config") == 0 && scan_set_config(sc))
				return true;
			if (is_word(sc, &prev, "into") &&
			    (strcmp(name, "temp") == 0 || strcmp(name, "temporary") == 0))
				return found(sc, PIN_TEMP_OBJECT);
			if (is_word(sc, &prev, "with") && strcmp(name, "hold") == 0)
				return found(sc, PIN_HOLD_CURSOR);
			if (is_create && strcmp(name, "pg_temp") == 0)
				return found(sc, PIN_TEMP_OBJECT);
			/* A DO body runs: these count wherever they are in it. */
			if (body && (strcmp(name, "listen") == 0 || strcmp(name, "load") == 0 ||
				     strcmp(name, "temp") == 0 || strcmp(name, "temporary") == 0 ||
				     strcmp(name, "pg_temp") == 0))
				return found(sc, strcmp(name, "listen") == 0 ? PIN_LISTEN
						 : strcmp(name, "load") == 0 ? PIN_LOAD
									     : PIN_TEMP_OBJECT);
			if (body && t.start != first->start &&
			    (strcmp(name, "set") == 0 || strcmp(name, "reset") == 0) &&
			    (prev.kind == SQL_TOK_END || is_word(sc, &prev, "begin") ||
			     is_word(sc, &prev, "then") || is_word(sc, &prev, "else") ||
			     is_word(sc, &prev, "loop")) &&
			    scan_set(sc, strcmp(name, "reset") == 0))
				return true;
		}
		if (k == SQL_TOK_STRING && (is_do || body) && scan_body(sc, &t))
			return true;
		prev = t;
		k = sql_lex_next(&sc->l, &t);
		if (body && k == SQL_TOK_SEMI) {
			/* In a body a ';' ends a PL/pgSQL statement: the next may be a SET. */
			prev.kind = SQL_TOK_END;
			k = sql_lex_next(&sc->l, &t);
			if (k == SQL_TOK_END)
				return false;
		}
	}
}

static bool scan_text(const char *text, size_t len, bool (*carried)(const char *), bool scs_off,
		      struct pin_find *out, int depth)
{
	return scan_client_text(text, len, carried, scs_off, true, out, depth);
}

static bool scan_client_text(const char *text, size_t len, bool (*carried)(const char *),
			     bool scs_off, bool simple_query, struct pin_find *out, int depth)
{
	struct scan sc = {.carried = carried, .out = out, .depth = depth};
	sql_lex_init_ex(&sc.l, text, len, scs_off);
	struct sql_token t;
	for (;;) {
		enum sql_tok k = sql_lex_next(&sc.l, &t);
		if (k == SQL_TOK_END) {
			/* prepared_sql.c follows such a statement only alone in a Query. */
			if (depth == 0 && sc.prepared_sql && (!simple_query || sc.statements > 1)) {
				out->stmt_start = 0;
				out->stmt_len = len;
				return found(&sc, PIN_PREPARED_SQL);
			}
			return false;
		}
		if (k == SQL_TOK_SEMI)
			continue;
		sc.statements++;
		if (scan_statement(&sc, &t)) {
			/* The statement runs to its ';' (or the end) for the message. */
			struct sql_token e;
			enum sql_tok ek;
			size_t end = sc.l.pos;
			while ((ek = sql_lex_next(&sc.l, &e)) != SQL_TOK_END &&
			       ek != SQL_TOK_SEMI && ek != SQL_TOK_BAD)
				end = sc.l.pos;
			if (ek == SQL_TOK_BAD)
				end = len;
			out->stmt_len = end > out->stmt_start ? end - out->stmt_start : 0;
			return true;
		}
	}
}

struct keyword {
	const char *w;
	size_t n;
};
#define KW(w)                    \
	{                        \
		w, sizeof(w) - 1 \
	}

/* A word w (n bytes, n < 63, of an unquoted word: its name is w in lower case) is one
 * of the keywords k. */
static bool word_in(const char *w, size_t n, const struct keyword *k, size_t nk)
{
	for (size_t j = 0; j < nk; j++) {
		if (k[j].n != n)
			continue;
		size_t i = 0;
		for (; i < n; i++) {
			char c = w[i];
			if (c >= 'A' && c <= 'Z')
				c = (char)(c + 32);
			if (c != k[j].w[i])
				break;
		}
		if (i == n)
			return true;
	}
	return false;
}

/* Whether scan_statement could act on this word: as a statement's first word (first),
 * or anywhere.  The names are scan_statement's, and corral_ (any case) for
 * scan_client_text's PIN_PREPARED_SQL. */
static bool word_can_pin(const char *w, size_t n, bool first)
{
	static const struct keyword anywhere[] = {KW("pg_advisory_lock"),
						  KW("pg_advisory_lock_shared"),
						  KW("pg_try_advisory_lock"),
						  KW("pg_try_advisory_lock_shared"),
						  KW("currval"),
						  KW("lastval"),
						  KW("set_config"),
						  KW("temp"),
						  KW("temporary"),
						  KW("hold"),
						  KW("pg_temp")};
	static const struct keyword as_first[] = {KW("listen"),  KW("load"),    KW("set"),
						  KW("reset"),   KW("create"),  KW("explain"),
						  KW("prepare"), KW("execute"), KW("deallocate"),
						  KW("discard")};
	char f = w[0] >= 'A' && w[0] <= 'Z' ? (char)(w[0] + 32) : w[0];
	/* may_be_named passes every name of anywhere[] and corral_...: a cheap first look */
	if (may_be_named(f, n) && ((n >= 7 && strncasecmp(w, "corral_", 7) == 0) ||
				   word_in(w, n, anywhere, sizeof(anywhere) / sizeof(anywhere[0]))))
		return true;
	return first && word_in(w, n, as_first, sizeof(as_first) / sizeof(as_first[0]));
}

/*
 * The common Query read without the lexer: true when the text certainly pins nothing.
 * Only for text without what can open a string, quoted identifier, dollar quote or
 * comment (' " two dashes, slash-star, a '$' not followed by a digit; a lone '-' or
 * '/' is an operator byte, as in TPC-B's "abalance + -1234"): there the lexer's tokens are
 * plain words (an ident_start byte and the ident bytes after it), ';' and single bytes,
 * and nothing is unterminated, so scan_statement can only act on a word it compares
 * (word_can_pin); every pin needs one of them.  Anything else, or a word that may be
 * one, or a word long enough to be cut, goes to the full scan.
 */
/* The lexer's ident_start and ident_char (sql_lex.c), on unsigned bytes. */
static inline bool word_start_byte(unsigned char c)
{
	return (unsigned)((c | 0x20) - 'a') < 26 || c == '_' || c >= 0x80;
}

static inline bool word_byte(unsigned char c)
{
	return word_start_byte(c) || (unsigned)(c - '0') < 10 || c == '$';
}

static bool plain_text_pins_nothing(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	bool first = true; /* no token yet in this statement */
	size_t i = 0;
	while (i < len && s[i] != '\0') {
		unsigned char c = s[i];
		if (word_start_byte(c)) {
			size_t start = i++;
			while (i < len && word_byte(s[i]))
				i++;
			if (i - start >= 63 || word_can_pin(text + start, i - start, first))
				return false;
			first = false;
			continue;
		}
		unsigned char next = i + 1 < len ? s[i + 1] : 0;
		if (c == '\'' || c == '"' || (c == '-' && next == '-') ||
		    (c == '/' && next == '*') || (c == '$' && (unsigned)(next - '0') >= 10))
			return false;
		if (c == ';')
			first = true;
		else if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
			   c == '\v'))
			first = false;
		i++;
	}
	return true;
}

enum pin_reason pin_scan_ex(const char *text, size_t len, bool (*carried)(const char *name),
			    bool scs_off, bool simple_query, struct pin_find *out)
{
	memset(out, 0, sizeof(*out));
	if (plain_text_pins_nothing(text, len))
		return PIN_NONE;
	scan_client_text(text, len, carried, scs_off, simple_query, out, 0);
	return out->reason;
}

enum pin_reason pin_scan(const char *text, size_t len, bool (*carried)(const char *name),
			 struct pin_find *out)
{
	return pin_scan_ex(text, len, carried, false, true, out);
}
