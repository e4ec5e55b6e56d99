#include "proxy/session_params.h"

#include <openssl/rand.h>

#include "common/siphash.h"
#include "proxy/pgproto.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The longest identifier PostgreSQL keeps (NAMEDATALEN - 1); a longer one is cut. */
#define IDENT_MAX 63

/*
 * Letters, digits, '_' and '.', each dot-separated part at most IDENT_MAX long.  A
 * parameter corral sets it may have to RESET for the next client, and RESET names it
 * as an identifier: a longer part would be cut there and name something else.
 */
static bool valid_name(const char *name)
{
	if (!name[0])
		return false;
	size_t part = 0;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			part = 0;
			continue;
		}
		if ((!isalnum((unsigned char)*p) && *p != '_') || ++part > IDENT_MAX)
			return false;
	}
	return true;
}

static bool is_reported(const char *name)
{
	for (size_t i = 0; i < params_reported_count; i++)
		if (strcasecmp(params_reported_names[i], name) == 0)
			return true;
	return false;
}

/* "name=value" from options; PostgreSQL maps '-' in names to '_'. */
static bool take_setting(char *setting, struct param_set *out, const char **why)
{
	char *eq = strchr(setting, '=');
	if (!eq) {
		*why = "invalid command-line argument in options: expected name=value";
		return false;
	}
	*eq = '\0';
	for (char *p = setting; *p; p++)
		if (*p == '-')
			*p = '_';
	if (!valid_name(setting)) {
		*why = "invalid parameter name in options";
		return false;
	}
	if (!params_set(out, setting, eq + 1)) {
		*why = "too many parameters in options";
		return false;
	}
	return true;
}

/*
 * options is split on whitespace, a backslash escaping the next character (as
 * PostgreSQL's pg_split_opts does); "-c name=value", "-cname=value" and
 * "--name=value" are understood.
 */
static bool parse_options(const char *options, struct param_set *out, const char **why)
{
	size_t len = strlen(options);
	char *buf = malloc(len + 1);
	if (!buf) {
		*why = "out of memory";
		return false;
	}
	const char *p = options;
	bool want_setting = false, ok = true;
	while (ok) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		size_t n = 0;
		while (*p && !isspace((unsigned char)*p)) {
			if (*p == '\\' && p[1])
				p++;
			buf[n++] = *p++;
		}
		buf[n] = '\0';
		if (want_setting) {
			ok = take_setting(buf, out, why);
			want_setting = false;
		} else if (strcmp(buf, "-c") == 0) {
			want_setting = true;
		} else if (strncmp(buf, "-c", 2) == 0) {
			ok = take_setting(buf + 2, out, why);
		} else if (strncmp(buf, "--", 2) == 0) {
			ok = take_setting(buf + 2, out, why);
		} else {
			*why = "unsupported command-line argument in options (only -c name=value)";
			ok = false;
		}
	}
	if (ok && want_setting) {
		*why = "invalid command-line argument in options: -c without a setting";
		ok = false;
	}
	free(buf);
	return ok;
}

bool session_params_from_startup(const struct pg_startup *st, struct param_set *out,
				 const char **why)
{
	for (size_t i = 0; i < st->n_params; i++) {
		const char *name = st->names[i], *value = st->values[i];
		if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0 ||
		    strcmp(name, "replication") == 0 || strncmp(name, "_pq_.", 5) == 0)
			continue;
		if (strcmp(name, "options") == 0) {
			if (!parse_options(value, out, why))
				return false;
			continue;
		}
		if (!valid_name(name)) {
			*why = "invalid parameter name in startup packet";
			return false;
		}
		if (!params_set(out, name, value)) {
			*why = "too many parameters in startup packet";
			return false;
		}
	}
	return true;
}

static const char *const tracked_names[] = {
	"application_name", "client_encoding", "DateStyle", "IntervalStyle", "TimeZone",
	"standard_conforming_strings",
};

/* Asked about every parameter of every login: the tracked names all start with
 * different letters, so the first letter (case folded) leaves one to compare. */
bool session_params_tracked(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(tracked_names); i++)
		if ((tracked_names[i][0] | 0x20) == (name[0] | 0x20) &&
		    strcasecmp(tracked_names[i], name) == 0)
			return true;
	return false;
}

void session_params_add_defaults(struct param_set *wanted, const struct param_set *pool_params)
{
	for (size_t i = 0; i < ARRAY_SIZE(tracked_names); i++) {
		const char *def = params_get(pool_params, tracked_names[i]);
		if (def && !params_get(wanted, tracked_names[i]))
			(void)params_set(wanted, tracked_names[i], def);
	}
}

static bool same_set(const struct param_set *a, const struct param_set *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->names[i], b->names[i]) != 0 || strcmp(a->values[i], b->values[i]) != 0)
			return false;
	return true;
}

void session_params_share(struct param_set *wanted, struct param_set *last)
{
	if (same_set(wanted, last))
		params_copy(wanted, last);
	else
		params_copy(last, wanted);
}

/* The process's secret signature key: clients never see a signature, so none can
 * pick two sets that share one. */
static uint8_t sig_key[16];
static pthread_once_t sig_key_once = PTHREAD_ONCE_INIT;

static void make_sig_key(void)
{
	if (RAND_bytes(sig_key, sizeof(sig_key)) != 1)
		abort(); /* no randomness at start: nothing safe can run */
}

uint64_t session_params_signature(const struct param_set *ps)
{
	pthread_once(&sig_key_once, make_sig_key);
	struct siphash h;
	siphash_init(&h, sig_key);
	for (size_t i = 0; i < ps->n; i++) {
		char lower[64];
		size_t n = 0;
		for (const char *p = ps->names[i]; *p; p++) {
			lower[n++] = (char)tolower((unsigned char)*p);
			if (n == sizeof(lower)) {
				siphash_update(&h, lower, n);
				n = 0;
			}
		}
		siphash_update(&h, lower, n);
		siphash_update(&h, "", 1); /* names and values hold no NUL: no ambiguity */
		siphash_update(&h, ps->values[i], strlen(ps->values[i]) + 1);
	}
	uint64_t sig = siphash_final(&h);
	return sig ? sig : 1;
}

static const char *server_value(const struct server *s, const char *name)
{
	return is_reported(name) ? params_get(&s->params, name) : params_get(&s->applied, name);
}

/* Who the session runs as: reset before anything else, since whether the other resets
 * are allowed (superuser-only parameters) depends on it. */
static bool is_identity(const char *name)
{
	return strcasecmp(name, "session_authorization") == 0 || strcasecmp(name, "role") == 0;
}

/* Set by set_config() outside a transaction block, these last until the end of the
 * implicit transaction they were set in, so there is nothing to reset; PostgreSQL 16
 * and later refuse to RESET them (and seed, which only seeds random()). */
static bool needs_no_reset(const char *name)
{
	static const char *const names[] = {
		"transaction_isolation", "transaction_read_only", "transaction_deferrable", "seed",
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(names[i], name) == 0)
			return true;
	return false;
}

/* Appends E'...' with quotes and backslashes escaped, whatever
 * standard_conforming_strings says. */
static void put_literal(FILE *f, const char *v)
{
	fputs("E'", f);
	for (; *v; v++) {
		if (*v == '\'' || *v == '\\')
			fputc(*v, f);
		fputc(*v, f);
	}
	fputc('\'', f);
}

/* Appends a parameter name as RESET takes it: each dot-separated part a quoted
 * identifier ("corral"."tenant"); quoting keeps the case, which is fine since
 * parameter names are looked up case-insensitively. */
static void put_name(FILE *f, const char *name)
{
	fputc('"', f);
	for (const char *p = name; *p; p++) {
		if (*p == '.')
			fputs("\".\"", f);
		else {
			if (*p == '"')
				fputc('"', f);
			fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* The query being built: statements separated by "; ", the set_config() calls in one
 * SELECT after the RESETs. */
struct query_buf {
	FILE *f;
	char *text;
	size_t size;
	int statements, calls;
};

static bool begin_statement(struct query_buf *q)
{
	if (!q->f) {
		q->f = open_memstream(&q->text, &q->size);
		if (!q->f)
			return false;
	}
	if (q->statements++)
		fputs("; ", q->f);
	return true;
}

/* The query built (NULL: nothing to do, or out of memory, then *oom). */
static char *finish_query(struct query_buf *q, bool *oom)
{
	if (!q->f)
		return NULL;
	if (fclose(q->f) != 0) {
		free(q->text);
		*oom = true;
		return NULL;
	}
	return q->text;
}

/* Whether s has a value corral applied for an earlier client that wanted leaves to the
 * session default. */
static bool leftover(const struct param_set *wanted, const struct server *s, size_t i)
{
	return !params_get(wanted, s->applied.names[i]) && !needs_no_reset(s->applied.names[i]);
}

/* Appends one set_config() of name to value, the first one after "SELECT ". */
static void put_set_config(struct query_buf *q, const char *name, const char *value)
{
	fputs(q->calls++ ? ", pg_catalog.set_config(" : "SELECT pg_catalog.set_config(", q->f);
	put_literal(q->f, name);
	fputs(", ", q->f);
	put_literal(q->f, value);
	fputs(", false)", q->f);
}

char *session_params_sync_query(const struct param_set *wanted, const struct server *s, bool *oom)
{
	*oom = false;
	struct query_buf q = { 0 };
	/* RESET, not set_config(name, NULL) (which sets ''), nor pg_settings' reset_val
	 * (which would make it a session value): RESET brings back the session default,
	 * with ALTER ROLE / ALTER DATABASE settings and the login's own options. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < s->applied.n; i++) {
			if (!leftover(wanted, s, i) || is_identity(s->applied.names[i]) != (pass == 0))
				continue;
			if (!begin_statement(&q))
				goto oom;
			fputs("RESET ", q.f);
			put_name(q.f, s->applied.names[i]);
		}
	for (size_t i = 0; i < wanted->n; i++) {
		/* Exactly: 'Foo' is not 'foo' for application_name, nor "Evil" "evil" in a
		 * search_path.  A value the server spells otherwise ("utf8": "UTF8") is set
		 * once more; the client's set takes the server's spelling on its first link. */
		const char *have = server_value(s, wanted->names[i]);
		if (have && strcmp(have, wanted->values[i]) == 0)
			continue;
		if (!q.calls && !begin_statement(&q))
			goto oom;
		put_set_config(&q, wanted->names[i], wanted->values[i]);
	}
	return finish_query(&q, oom);
oom:
	if (q.f)
		fclose(q.f);
	free(q.text);
	*oom = true;
	return NULL;
}

bool session_params_restorable(const char *name)
{
	return !is_identity(name) && !needs_no_reset(name);
}

char *session_params_restore_sql(const struct param_set *startup, const char *name, bool *oom)
{
	*oom = false;
	struct query_buf q = { 0 };
	for (size_t i = 0; i < startup->n; i++) {
		const char *n = startup->names[i];
		if ((name && strcasecmp(n, name) != 0) || !session_params_restorable(n))
			continue;
		if (!q.f && !begin_statement(&q)) {
			*oom = true;
			return NULL;
		}
		put_set_config(&q, n, startup->values[i]);
	}
	return finish_query(&q, oom);
}

/*
 * Why this shortcut can never skip a needed reset: the resets a client needs are the
 * parameters in s->applied that it does not want, and s->applied holds every parameter
 * corral set on s and has not reset since (session_params_finished and _linked replace
 * it whole with what the server was just brought to, which the same query reset
 * everything else for; only a reset query that undid them removes entries).  The
 * shortcut requires s->applied to be the client's set itself: s->param_sig is the
 * signature of s->applied, and the signature is SipHash under a key no client sees,
 * so two different sets share one by chance only (2^-64), never by a client's
 * design; comparing the sets in full as well cost more than the rest of a link.  And
 * s->param_sig is 0 from any ParameterStatus on until the next link, so the reported
 * values (s->params) are still those the set was recorded with.
 */
bool session_params_current(const struct server *s, const struct param_set *wanted, uint64_t sig)
{
	(void)wanted;
	return s->param_sig != 0 && s->param_sig == sig;
}

void session_params_sending(struct server *s, const struct param_set *wanted)
{
	params_copy(&s->pending, wanted);
}

/* The query ran in one implicit transaction: all of it took effect, or (error) none. */
bool session_params_finished(struct server *s, bool failed)
{
	bool fit = true;
	if (!failed) {
		params_copy(&s->applied, &s->pending);
	} else {
		for (size_t i = 0; i < s->applied.n && fit; i++)
			fit = !leftover(&s->pending, s, i);
	}
	params_clear(&s->pending);
	s->param_sig = 0;
	return fit;
}

void session_params_linked(struct server *s, const struct param_set *wanted, uint64_t sig)
{
	/* Linked without a query: s->applied is wanted already (session_params_current;
	 * a query would have zeroed param_sig), so no copy per transaction. */
	if (sig && s->param_sig == sig)
		return;
	params_copy(&s->applied, wanted);
	s->param_sig = sig;
}

/* Whether text has the words w1 w2 (case-insensitive, blanks between, not inside
 * longer words): "DISCARD ALL", "reset  all;" */
static bool has_words(const char *text, const char *w1, const char *w2)
{
	size_t n1 = strlen(w1), n2 = strlen(w2);
	for (const char *p = text; *p; p++) {
		if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		if (strncasecmp(p, w1, n1) != 0 || !isspace((unsigned char)p[n1]))
			continue;
		const char *q = p + n1;
		while (isspace((unsigned char)*q))
			q++;
		if (strncasecmp(q, w2, n2) == 0 && !isalnum((unsigned char)q[n2]) && q[n2] != '_')
			return true;
	}
	return false;
}

bool session_params_reset_discards_all(const char *reset_query)
{
	return has_words(reset_query, "discard", "all") ||
	       has_words(reset_query, "deallocate", "all");
}

const char *session_params_reset_class(const char *reset_query)
{
	if (!reset_query)
		return NULL;
	if (has_words(reset_query, "discard", "all"))
		return "DISCARD ALL";
	bool dealloc = has_words(reset_query, "deallocate", "all");
	bool reset = has_words(reset_query, "reset", "all");
	return dealloc && reset ? "DEALLOCATE ALL; RESET ALL"
	       : dealloc	? "DEALLOCATE ALL"
	       : reset		? "RESET ALL"
				: "SELECT";
}

bool session_params_reset_discards_sequences(const char *reset_query)
{
	return reset_query && has_words(reset_query, "discard", "all");
}

void session_params_after_reset(struct server *s, const char *reset_query)
{
	s->param_sig = 0;
	if (!reset_query)
		return;
	if (has_words(reset_query, "discard", "all")) {
		params_clear(&s->applied);
	} else if (has_words(reset_query, "reset", "all")) {
		/* RESET ALL leaves session_authorization and role alone. */
		struct param_set keep = { 0 };
		for (size_t i = 0; i < s->applied.n; i++)
			if (is_identity(s->applied.names[i]))
				(void)params_set(&keep, s->applied.names[i], s->applied.values[i]);
		params_copy(&s->applied, &keep);
		params_clear(&keep);
	}
}

bool session_params_reported(struct server *s, const uint8_t *body, size_t len, const char **name,
			     const char **value)
{
	struct pg_reader r;
	pg_reader_init(&r, body, len);
	*name = pg_read_string(&r);
	*value = pg_read_string(&r);
	if (r.bad)
		return false;
	(void)params_set(&s->params, *name, *value);
	s->param_sig = 0;
	return true;
}
