/* The INI loading both configuration loaders share; see ini_load.h. */
#include "common/ini_load.h"

#define INI_LOAD_STDIO_BUF 8192

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/suggest.h"

void ini_load_begin(struct ini_load *ld, const char *path, char *err, size_t errlen)
{
	*ld = (struct ini_load){.path = path, .err = err, .errlen = errlen};
	if (err && errlen > 0)
		err[0] = '\0';
}

static void vfail_line(struct ini_load *ld, int line, const char *key, const char *fmt, va_list ap)
	PRINTF_LIKE(4, 0);

/* Appends one error as a line of its own to err (a message that does not fit is cut). */
static void vfail_line(struct ini_load *ld, int line, const char *key, const char *fmt, va_list ap)
{
	if (!ld->failed)
		ld->err_line = line;
	ld->failed = true;
	ld->n_errors++;
	if (!ld->err || ld->errlen == 0)
		return;
	size_t used = strlen(ld->err);
	if (used > 0 && used + 1 < ld->errlen)
		ld->err[used++] = '\n';
	if (used + 1 >= ld->errlen)
		return;
	char where[16] = "";
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	char *at = ld->err + used;
	size_t room = ld->errlen - used;
	int n = snprintf(at, room, "%s%s: %s%s", ld->path, where, key ? key : "", key ? ": " : "");
	if (n < 0 || (size_t)n >= room)
		return;
	vsnprintf(at + n, room - (size_t)n, fmt, ap);
}

void ini_fail_line(struct ini_load *ld, int line, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_line(ld, line, key, fmt, ap);
	va_end(ap);
}

void ini_fail(struct ini_load *ld, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_line(ld, ld->lineno, key, fmt, ap);
	va_end(ap);
}

static void check_section_header(struct ini_load *ld, const char *line)
{
	const char *end = strchr(line, ']');
	if (!end) {
		ini_fail(ld, NULL, "section header without a closing ']'");
		return;
	}
	if (end[1] != '\0') {
		ini_fail(ld, NULL, "unexpected text after ']'");
		return;
	}
	ld->section(ld, line + 1, (size_t)(end - line - 1));
}

/* A "[...]" line: its shape is checked here, its name by the loader's hook.  The keys
 * under a header that failed are skipped: their errors would only follow from it. */
static void section_header(struct ini_load *ld, const char *line)
{
	int before = ld->n_errors;
	check_section_header(ld, line);
	ld->skip_keys = ld->n_errors > before;
}

/*
 * inih's ini_reader (an fgets() look-alike); see the comment in ini_load.h.  A line with
 * an error goes to inih as an empty line, so reading goes on and every error is found;
 * only a read error ends the file.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct ini_load *ld = stream;
	if (num < 1 || ld->fatal)
		return NULL;
	errno = 0;
	ssize_t n = getline(&ld->buf, &ld->cap, ld->file);
	if (n < 0) {
		int e = errno;
		if (ferror(ld->file)) {
			ini_fail_line(ld, 0, NULL, "cannot read: %s", strerror(e));
			ld->fatal = true;
		}
		return NULL;
	}
	ld->lineno++;
	ld->line = NULL;
	str[0] = '\0';
	if (memchr(ld->buf, '\0', (size_t)n)) {
		ini_fail(ld, NULL, "line contains a NUL byte");
		return str;
	}
	int before = ld->n_errors;
	char *s = parse_clean_ini_line(ld->buf, ld->lineno == 1);
	bool header = *s == '[' && ld->section;
	if (header && ld->section_first)
		section_header(ld, s);
	size_t len = strlen(s);
	if (len >= (size_t)num) {
		ini_fail(ld, NULL, "line is %zu characters long; inih reads at most %d", len,
			 num - 1);
		ld->skip_keys |= header;
	} else if (header && !ld->section_first) {
		section_header(ld, s);
	} else if (!header && *s && !strpbrk(s, "=:")) {
		/* What inih would refuse; said here so that reading goes on. */
		ini_fail(ld, NULL, "expected \"[section]\" or \"key = value\"");
	}
	if (ld->n_errors > before || (!header && ld->skip_keys))
		return str;
	/* inih copies it; ours stays intact until the next line. */
	ld->line = s;
	memcpy(str, s, len + 1);
	return str;
}

void ini_load_parse_file(struct ini_load *ld,
			 int (*on_entry)(void *user, const char *section, const char *name,
					 const char *value),
			 void *user)
{
	ld->file = fopen(ld->path, "r");
	if (!ld->file) {
		int e = errno;
		ini_fail_line(ld, 0, NULL, "cannot open: %s", strerror(e));
		ld->fatal = true;
		return;
	}
	/* stdio reads into our buffer, so that it can be zeroed with the line buffer: a
	 * configuration holds passwords, and freed memory keeps them for whatever runs in
	 * a fork of this process later (corral-fn's environments load untrusted code). */
	char *stdio_buf = calloc(1, INI_LOAD_STDIO_BUF);
	if (stdio_buf)
		setvbuf(ld->file, stdio_buf, _IOFBF, INI_LOAD_STDIO_BUF);
	int rc = ini_parse_stream(read_line, ld, on_entry, user);
	fclose(ld->file);
	ld->file = NULL;
	if (stdio_buf)
		explicit_bzero(stdio_buf, INI_LOAD_STDIO_BUF);
	free(stdio_buf);
	if (ld->buf)
		explicit_bzero(ld->buf, ld->cap);
	free(ld->buf);
	ld->buf = NULL;
	ld->cap = 0;
	ld->line = NULL;
	if (rc == -2) {
		ini_fail_line(ld, 0, NULL, "out of memory");
	} else if (rc > 0 && !ld->failed) {
		/* inih refused a line the reader let through (the loaders' own errors make
		 * rc > 0 too, and have been said). */
		ini_fail_line(ld, rc, NULL, "expected \"[section]\" or \"key = value\"");
	}
}

/* ---- keys described by a table ---------------------------------------------------------- */

void *ini_key_field(void *obj, const struct ini_key *key)
{
	return (char *)obj + key->offset;
}

int ini_key_index(const struct ini_key *keys, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

static void unknown_key(struct ini_load *ld, const struct ini_key *keys, size_t n,
			const char *section, const char *name)
{
	for (size_t i = 0; i < ld->n_unsupported; i++) {
		const struct ini_unsupported *u = &ld->unsupported[i];
		if (strcmp(u->name, name) != 0)
			continue;
		ini_fail(ld, name, "not supported by %s%s%s", ld->unsupported_by,
			 u->hint ? "; " : "", u->hint ? u->hint : "");
		return;
	}
	struct suggest s;
	suggest_begin(&s, name);
	for (size_t i = 0; i < n; i++)
		suggest_consider(&s, keys[i].name);
	const char *best = suggest_result(&s);
	if (best)
		ini_fail(ld, name, "unknown key in [%s]; did you mean %s?", section, best);
	else
		ini_fail(ld, name, "unknown key in [%s]", section);
}

void ini_key_set(struct ini_load *ld, const struct ini_key *keys, size_t n, int *seen, void *obj,
		 const char *section, const char *name, const char *value)
{
	int i = ini_key_index(keys, n, name);
	if (i < 0) {
		unknown_key(ld, keys, n, section, name);
		return;
	}
	if (seen[i]) {
		ini_fail(ld, name, "set twice (first on line %d)", seen[i]);
		return;
	}
	seen[i] = ld->lineno;
	(void)keys[i].parse(ld, &keys[i], obj, value);
}

bool ini_key_range(struct ini_load *ld, const struct ini_key *key, const char *value, int *out)
{
	if (parse_uint_range(value, key->min, key->max, out))
		return true;
	ini_fail(ld, key->name, "must be an integer between %d and %d, got \"%s\"", key->min,
		 key->max, value);
	return false;
}

bool ini_key_seconds_fail(struct ini_load *ld, const struct ini_key *spec, const char *value,
			  bool positive, int example)
{
	if (positive)
		ini_fail(ld, spec->name,
			 "must be a number of seconds greater than 0 and at most %d (e.g. %d or "
			 "0.5), got \"%s\"",
			 PARSE_MAX_SECONDS, example, value);
	else
		ini_fail(
			ld, spec->name,
			"must be a number of seconds between 0 and %d (e.g. %d or 0.5), got \"%s\"",
			PARSE_MAX_SECONDS, example, value);
	return false;
}

INI_KEY_PARSER(ini_key_int)
{
	return ini_key_range(ld, spec, value, ini_key_field(obj, spec));
}

INI_KEY_PARSER(ini_key_string)
{
	char **slot = ini_key_field(obj, spec);
	char *copy = strdup(value);
	if (!copy) {
		ini_fail(ld, spec->name, "out of memory");
		return false;
	}
	free(*slot);
	*slot = copy;
	return true;
}

INI_KEY_PARSER(ini_key_nonempty)
{
	if (*value != '\0')
		return ini_key_string(ld, spec, obj, value);
	ini_fail(ld, spec->name, "must not be empty");
	return false;
}

/* The listener binds a numeric address (no name lookup); say so here, with a line. */
INI_KEY_PARSER(ini_key_address)
{
	unsigned char addr[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, value, addr) == 1 || inet_pton(AF_INET6, value, addr) == 1)
		return ini_key_string(ld, spec, obj, value);
	ini_fail(ld, spec->name, "must be an IPv4 or IPv6 address, got \"%s\"", value);
	return false;
}

/* Stored lower-cased so readers can compare it and hand it to log_level_parse(). */
INI_KEY_PARSER(ini_key_log_level)
{
	enum log_level level;
	if (!log_level_parse(value, &level)) {
		ini_fail(ld, spec->name, "must be one of debug, info, warn, error, got \"%s\"",
			 value);
		return false;
	}
	if (!ini_key_string(ld, spec, obj, value))
		return false;
	for (char *p = *(char **)ini_key_field(obj, spec); *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return true;
}

INI_KEY_PARSER(ini_key_bool)
{
	if (parse_bool(value, ini_key_field(obj, spec)))
		return true;
	ini_fail(ld, spec->name, "must be yes or no (or true/false, on/off, 1/0), got \"%s\"",
		 value);
	return false;
}
