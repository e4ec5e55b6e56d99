#include "proxy/session_params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool valid_name(const char *name)
{
	if (!name[0])
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
			return false;
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

uint64_t session_params_signature(const struct param_set *ps)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < ps->n; i++) {
		for (const char *p = ps->names[i]; *p; p++)
			h = (h ^ (uint8_t)tolower((unsigned char)*p)) * 1099511628211ULL;
		h = (h ^ '=') * 1099511628211ULL;
		for (const char *p = ps->values[i]; *p; p++)
			h = (h ^ (uint8_t)*p) * 1099511628211ULL;
		h = (h ^ 0) * 1099511628211ULL;
	}
	return h ? h : 1;
}

static const char *server_value(const struct server *s, const char *name)
{
	return is_reported(name) ? params_get(&s->params, name) : params_get(&s->applied, name);
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

char *session_params_sync_query(const struct param_set *wanted, const struct server *s, bool *oom)
{
	*oom = false;
	char *query = NULL;
	size_t size = 0;
	FILE *f = NULL;
	int n = 0;
	for (size_t i = 0; i < wanted->n; i++) {
		const char *have = server_value(s, wanted->names[i]);
		/* Case-insensitive: the server reports "UTF8" for a requested "utf8". */
		if (have && strcasecmp(have, wanted->values[i]) == 0)
			continue;
		if (!f) {
			f = open_memstream(&query, &size);
			if (!f) {
				*oom = true;
				return NULL;
			}
			fputs("SELECT ", f);
		}
		fputs(n++ ? ", pg_catalog.set_config(" : "pg_catalog.set_config(", f);
		put_literal(f, wanted->names[i]);
		fputs(", ", f);
		put_literal(f, wanted->values[i]);
		fputs(", false)", f);
	}
	if (!f)
		return NULL;
	if (fclose(f) != 0) {
		free(query);
		*oom = true;
		return NULL;
	}
	return query;
}

void session_params_applied(const struct param_set *wanted, struct server *s)
{
	for (size_t i = 0; i < wanted->n; i++)
		if (!is_reported(wanted->names[i]))
			(void)params_set(&s->applied, wanted->names[i], wanted->values[i]);
}
