/*
 * The admin console's protocol and dispatch (proxy/admin.h, proxy/admin_cmd.h):
 * welcome, reading Query messages, splitting them into statements, matching each
 * against admin_commands[], privilege, and answers that come later.  PgBouncer's
 * src/admin.c is the model; where corral differs it says so.
 */
#include "proxy/admin.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include "common/stream.h"

#include "common/log.h"
#include "proxy/admin_cmd.h"
#include "proxy/client.h"
#include "proxy/client_lists.h"
#include "common/stream.h"
#include "proxy/version.h"
#include "proxy/worker.h"

/* A console statement is a line or two; anything near this is not one. */
#define ADMIN_MAX_QUERY (64 * 1024)
/* Answers the client has not read: past this no further Query is taken (its reading
 * stops) until the output has drained to half (admin_drained).  A Query of 64 KB of
 * SHOW statements answers megabytes; without a bound a client that sends and never
 * reads would have corral hold the answers to all it sends. */
#define ADMIN_OUTPUT_HIGH (256 * 1024)

struct admin_session {
	bool full;    /* admin_users; else stats_users */
	char *query;  /* the Query being run, split in place; NULL: none */
	char *next;   /* where its next statement starts; NULL: no more */
	bool waiting; /* a command answers later (admin_suspend) */
	bool held;    /* the output is full: the rest waits for admin_drained */
	bool ran;     /* a statement of the query has run (else it was empty) */
	void (*gone)(void *arg);
	void *gone_arg;
};

bool admin_is_console(const struct corral_config *cfg, const char *name)
{
	if (strcmp(name, cfg->admin_db) == 0)
		return true;
	/* PgBouncer's name, so habits and tools carry over, unless a real database has it. */
	return strcmp(name, "pgbouncer") == 0 && !config_find_db(cfg, name);
}

/* PgBouncer's welcome: what psql and libpq need to be at ease, nothing from a server. */
static void welcome(struct client *c)
{
	struct evbuffer *out = stream_output(c->io);
	static const char *const names[] = {
		"server_version",    "server_encoding",
		"client_encoding",   "DateStyle",
		"IntervalStyle",     "TimeZone",
		"integer_datetimes", "standard_conforming_strings",
		"is_superuser",      "application_name",
	};
	const char *values[] = {
		CORRAL_VERSION "/corral",
		"UTF8",
		"UTF8",
		"ISO, MDY",
		"postgres",
		"UTC",
		"on",
		"on",
		c->admin->full ? "on" : "off",
		c->application_name,
	};
	pgproto_put_parameter_statuses(out, names, values, ARRAY_SIZE(names));
	pgproto_put_backend_key(out, c->cancel.pid, c->cancel.secret);
	pgproto_put_ready(out, 'I');
}

void admin_login(struct client *c)
{
	const struct corral_config *cfg = c->worker->cfg;
	bool full = config_list_has(cfg->admin_users, c->user);
	if (!full && !config_list_has(cfg->stats_users, c->user)) {
		/* PgBouncer says "not allowed" with 08P01; 28000 is PostgreSQL's code for a
		 * login the server will not accept. */
		client_fail(
			c, "28000",
			"not allowed to connect to the admin console: user \"%s\" is in neither "
			"admin_users nor stats_users",
			c->user);
		return;
	}
	c->admin = calloc(1, sizeof(*c->admin));
	if (!c->admin) {
		client_fail(c, "53200", "out of memory");
		return;
	}
	c->admin->full = full;
	char ids[400];
	log_info("event=admin_login client=%llu %s role=%s", (unsigned long long)c->id,
		 client_log_who(c, ids, sizeof(ids)), full ? "admin" : "stats");
	welcome(c);
	client_set_state(c, CL_IDLE);
	/* The read watermark of the login stays: a console client waiting for an answer
	 * holds at most that much unread input. */
	if (stream_input_length(c->io))
		admin_read(c);
}

/* ---- statements ------------------------------------------------------------------- */

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Cuts the statement at *p (up to a ';' outside quotes) and moves *p past it (NULL at
 * the end of the query). */
static char *cut_statement(char **p)
{
	char *s = *p, *q = s;
	char quote = 0;
	for (; *q; q++) {
		if (quote) {
			if (*q == quote)
				quote = 0; /* a doubled quote closes and reopens: the same */
		} else if (*q == '\'' || *q == '"') {
			quote = *q;
		} else if (*q == ';') {
			break;
		}
	}
	if (*q == ';') {
		*q = '\0';
		*p = q + 1;
	} else {
		*p = NULL;
	}
	return trim(s);
}

bool admin_next_word(const char **p, char *out, size_t len)
{
	const char *s = *p;
	size_t n = 0;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '"') {
		for (s++;; s++) {
			if (*s == '\0')
				return false; /* unterminated */
			if (*s == '"' && s[1] != '"')
				break;
			if (*s == '"')
				s++;
			if (n + 1 >= len)
				return false;
			out[n++] = *s;
		}
		s++;
	} else {
		while (*s && !isspace((unsigned char)*s) && !strchr(",;=", *s)) {
			if (n + 1 >= len)
				return false;
			out[n++] = *s++;
		}
		if (n == 0)
			return false;
	}
	out[n] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	*p = s;
	return true;
}

/* How many words of cmd->words the statement starts with (all or 0); *rest: after them. */
static int match_words(const char *words, const char *stmt, const char **rest)
{
	const char *p = stmt;
	int n = 0;
	while (*words) {
		size_t wlen = strcspn(words, " ");
		char word[64];
		/* A command word is never quoted: "SHOW" "POOLS" is not SHOW POOLS. */
		if (*p == '"' || !admin_next_word(&p, word, sizeof(word)) || strlen(word) != wlen ||
		    strncasecmp(word, words, wlen) != 0)
			return 0;
		n++;
		words += wlen;
		while (*words == ' ')
			words++;
	}
	*rest = p;
	return n;
}

static const struct admin_command *find_command(const char *stmt, const char **rest)
{
	const struct admin_command *best = NULL;
	int best_n = 0;
	for (const struct admin_command *cmd = admin_commands; cmd->words; cmd++) {
		const char *after;
		int n = match_words(cmd->words, stmt, &after);
		if (n > best_n) {
			best = cmd;
			best_n = n;
			*rest = after;
		}
	}
	return best;
}

static bool privileged_verb(const char *stmt)
{
	char verb[64];
	const char *p = stmt;
	if (!admin_next_word(&p, verb, sizeof(verb)))
		return false;
	for (const char *const *v = admin_privileged_verbs; *v; v++)
		if (strcasecmp(verb, *v) == 0)
			return true;
	return false;
}

enum admin_result admin_error(struct admin_ctx *ctx, const char *sqlstate, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pgproto_put_error(ctx->out, "ERROR", sqlstate, msg);
	return ADMIN_FAILED;
}

static enum admin_result run_statement(struct client *c, const char *stmt)
{
	struct admin_ctx ctx = {
		.c = c,
		.w = c->worker,
		.out = stream_output(c->io),
		.statement = stmt,
		.args = "",
		.full = c->admin->full,
	};
	char ids[400], text[300];
	log_info("event=admin_command client=%llu %s statement=\"%s\"", (unsigned long long)c->id,
		 client_log_who(c, ids, sizeof(ids)), log_clean(stmt, text, sizeof(text)));
	const char *rest = "";
	const struct admin_command *cmd = find_command(stmt, &rest);
	bool privileged = cmd ? cmd->access == ADMIN_FULL : privileged_verb(stmt);
	/* Before "unknown": a stats user learns nothing of what exists beyond SHOW. */
	if (privileged && !ctx.full)
		return admin_error(&ctx, "42501", "admin access needed: \"%s\" is for admin_users",
				   stmt);
	if (!cmd)
		/* PgBouncer's words; its SQLSTATE is 08P01, a syntax error is 42601. */
		return admin_error(&ctx, "42601", "invalid command '%s', use SHOW HELP;", stmt);
	ctx.args = rest;
	return cmd->run(&ctx);
}

/* The client has not read ADMIN_OUTPUT_HIGH of answers: nothing more runs, and its
 * reading stops, until its write callback finds the output drained to half. */
static bool output_full(struct client *c)
{
	if (evbuffer_get_length(stream_output(c->io)) < ADMIN_OUTPUT_HIGH)
		return false;
	c->admin->held = true;
	stream_disable(c->io, EV_READ);
	stream_setwatermark(c->io, EV_WRITE, ADMIN_OUTPUT_HIGH / 2, 0);
	return true;
}

/* Runs the statements left of the current Query; ends it with ReadyForQuery unless a
 * command answers later or the output is full. */
static void run_statements(struct client *c)
{
	struct admin_session *a = c->admin;
	struct evbuffer *out = stream_output(c->io);
	while (a->next) {
		if (output_full(c))
			return;
		char *stmt = cut_statement(&a->next);
		if (*stmt == '\0')
			continue;
		a->ran = true;
		enum admin_result r = run_statement(c, stmt);
		if (r == ADMIN_PENDING) {
			a->waiting = true;
			return;
		}
		if (r == ADMIN_FAILED)
			a->next = NULL;
	}
	if (!a->ran)
		evbuffer_add(out, "I\0\0\0\4", 5); /* EmptyQueryResponse: only blanks and ';' */
	free(a->query);
	a->query = NULL;
	pgproto_put_ready(out, 'I');
}

void admin_suspend(struct admin_ctx *ctx, void (*gone)(void *arg), void *arg)
{
	struct admin_session *a = ctx->c->admin;
	a->gone = gone;
	a->gone_arg = arg;
}

struct evbuffer *admin_output(struct client *c)
{
	return stream_output(c->io);
}

void admin_resume(struct client *c, enum admin_result result)
{
	struct admin_session *a = c->admin;
	a->waiting = false;
	a->gone = NULL;
	a->gone_arg = NULL;
	if (result == ADMIN_FAILED)
		a->next = NULL;
	if (result == ADMIN_PENDING) {
		a->waiting = true; /* the command goes on waiting */
		return;
	}
	run_statements(c);
	if (a->waiting)
		return;
	stream_flush(c->io);
	/* What the client sent meanwhile. */
	if (stream_input_length(c->io))
		admin_read(c);
}

/* ---- messages ----------------------------------------------------------------------- */

/* One Query message of len bytes (header included) from the input. */
static void take_query(struct client *c, uint32_t len)
{
	struct evbuffer *in = stream_input(c->io);
	size_t body = len - 4;
	char *q = malloc(body + 1);
	if (!q) {
		client_fail(c, "53200", "out of memory");
		return;
	}
	evbuffer_drain(in, PG_HEADER_LEN);
	evbuffer_remove(in, q, body);
	q[body] = '\0';
	if (body == 0 || q[body - 1] != '\0' || strlen(q) != body - 1) {
		free(q);
		client_fail(c, "08P01", "invalid Query message");
		return;
	}
	c->admin->query = q;
	c->admin->next = q;
	c->admin->ran = false;
	run_statements(c);
}

void admin_read(struct client *c)
{
	struct evbuffer *in = stream_input(c->io);
	while (c->state == CL_IDLE && !c->admin->waiting && !c->admin->held) {
		if (output_full(c))
			break;
		char type;
		uint32_t len;
		enum pg_parse_result pr = pgproto_peek_header(in, &type, &len);
		if (pr == PG_PARSE_INCOMPLETE)
			break;
		if (pr == PG_PARSE_ERROR) {
			client_fail(c, "08P01", "invalid message length");
			return;
		}
		switch (type) {
		case 'Q':
			if (len > ADMIN_MAX_QUERY) {
				client_fail(
					c, "08P01",
					"query too long for the admin console (%u bytes, at most %d)",
					len, ADMIN_MAX_QUERY);
				return;
			}
			if (evbuffer_get_length(in) < (size_t)len + 1)
				goto wait; /* the rest of it is on its way */
			take_query(c, len);
			break;
		case 'X':
			client_close(c, "client sent Terminate");
			return;
		case 'P':
		case 'B':
		case 'D':
		case 'E':
		case 'S':
		case 'H':
		case 'C':
			/* PgBouncer's answer, and it closes too: the client expects extended
			 * protocol answers nothing here would give in step. */
			client_fail(c, "08P01",
				    "extended query protocol not supported by the admin console");
			return;
		default:
			client_fail(c, "08P01",
				    "unsupported message type for the admin console: '%c'",
				    type >= 32 && type < 127 ? type : '?');
			return;
		}
	}
wait:
	if (c->state == CL_IDLE)
		stream_flush(c->io);
}

void admin_drained(struct client *c)
{
	struct admin_session *a = c->admin;
	if (!a->held)
		return;
	a->held = false;
	stream_setwatermark(c->io, EV_WRITE, 0, 0);
	stream_enable(c->io, EV_READ);
	if (a->query)
		run_statements(c); /* the rest of the Query that filled the output */
	if (a->waiting || a->held)
		stream_flush(c->io);
	else
		admin_read(c); /* what the client sent meanwhile; flushes */
}

void admin_client_gone(struct client *c)
{
	struct admin_session *a = c->admin;
	if (!a)
		return;
	void (*gone)(void *) = a->gone;
	a->gone = NULL;
	a->waiting = false;
	a->next = NULL;
	if (gone)
		gone(a->gone_arg);
}

void admin_session_free(struct client *c)
{
	if (!c->admin)
		return;
	free(c->admin->query);
	free(c->admin);
	c->admin = NULL;
}
