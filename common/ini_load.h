/*
 * What corral's and corral-fn's INI loaders (pool/config.c, functions/runner/fn_config.c)
 * share: reading the file through inih, the error message, and keys described by a
 * table.  Sections, what a key means and the rules between keys stay in each loader.
 *
 * inih does the INI grammar; Debian's libinih (55) is built without INI_HANDLER_LINENO,
 * with 200-byte lines, inline comments for ';' only and Python-style continuation lines,
 * so the file is fed to it through our own line reader, which:
 *   - counts lines, so every error can say FILE:LINE: KEY;
 *   - cleans each line with parse_clean_ini_line() (comments after a blank, leading
 *     blanks, so an indented key is no continuation of the previous value);
 *   - refuses a NUL byte, and a line that does not fit inih's buffer rather than
 *     letting inih split it into two lines silently;
 *   - hands every "[...]" line to the loader's section hook, because inih never
 *     reports a section without keys and cuts section names at 49 characters;
 *   - hands inih an empty line instead of one with an error, and skips the keys under
 *     a section header with an error, so every error in the file is reported, one
 *     "FILE:LINE: KEY: why" line each, in the order of the file, but none that only
 *     follows from an earlier one.
 *
 * A loader embeds struct ini_load in its own context and gets back to that with
 * container_of() in its hooks and key parsers.
 */
#ifndef CORRAL_COMMON_INI_LOAD_H
#define CORRAL_COMMON_INI_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/macros.h"

struct ini_load {
	/* Set by the loader (ini_load_begin() sets the first three). */
	const char *path;
	char *err; /* the message, "" while there is none; may be NULL */
	size_t errlen;
	/*
	 * Called for every "[NAME]" line (NAME: len bytes, not NUL-terminated); reports
	 * problems with ini_fail().  A '[' line without a closing ']', or with text after
	 * it, fails before the hook.  section_first: checked and called before the line
	 * length is checked, so a bad header on an overlong line is named as such (corral,
	 * whose hook only checks); else only for lines that fit (corral-fn, whose hook
	 * opens a function).
	 */
	void (*section)(struct ini_load *ld, const char *name, size_t len);
	bool section_first;
	/* Keys of a related program (PgBouncer's, for corral) that ini_key_set() refuses as
	 * "not supported by UNSUPPORTED_BY" with their hint rather than as unknown. */
	const struct ini_unsupported *unsupported;
	size_t n_unsupported;
	const char *unsupported_by;

	/* Kept by the reader. */
	int lineno;  /* the line inih is working on: the reader returned it last */
	char *line;  /* that line as the reader handed it to inih, until the next one */
	bool failed; /* an error is recorded */
	int n_errors;
	int err_line;   /* the first error's */
	bool fatal;     /* the file cannot be read on */
	bool skip_keys; /* the last section header had an error */
	FILE *file;
	char *buf; /* getline()'s buffer, reused for every line */
	size_t cap;
};

/* Zeroes *ld and empties err. */
void ini_load_begin(struct ini_load *ld, const char *path, char *err, size_t errlen);

/*
 * Appends "FILE:LINE: KEY: why" (line 0: no LINE, key NULL: no KEY) to err, a line for
 * each error (joined by '\n', no newline after the last), cut at errlen.  ini_fail() is
 * the same at the current line.
 */
void ini_fail_line(struct ini_load *ld, int line, const char *key, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
void ini_fail(struct ini_load *ld, const char *key, const char *fmt, ...) PRINTF_LIKE(3, 4);

/*
 * Reads ld->path with inih, on_entry(user, section, name, value) taking each key (value
 * NULL for a line without '=' if inih allows it).  on_entry returns 0 after an error, as
 * inih wants; reading goes on.  A line inih cannot read becomes "expected \"[section]\"
 * or \"key = value\"".
 */
void ini_load_parse_file(struct ini_load *ld,
			 int (*on_entry)(void *user, const char *section, const char *name,
					 const char *value),
			 void *user);

/* ---- keys described by a table ---------------------------------------------------------- */

/* A key this program does not have; hint (or NULL) says what to do instead. */
struct ini_unsupported {
	const char *name;
	const char *hint;
};

/* One key: how to parse it and where it goes (offset in the struct obj points to). */
struct ini_key {
	const char *name;
	/* Stores the value at obj + offset or calls ini_fail(); obj is the section's struct. */
	bool (*parse)(struct ini_load *ld, const struct ini_key *key, void *obj, const char *value);
	size_t offset;
	int min, max; /* integers only */
};

/* Declares or defines a parser for struct ini_key.parse: static INI_KEY_PARSER(name) { ... } */
#define INI_KEY_PARSER(name) \
	bool name(struct ini_load *ld, const struct ini_key *spec, void *obj, const char *value)

/* Where key goes in obj. */
void *ini_key_field(void *obj, const struct ini_key *key);

/* The index of name in keys, -1 if it is none of them. */
int ini_key_index(const struct ini_key *keys, size_t n, const char *name);

/*
 * Sets key name of [section] in obj with its parser; seen[] (parallel to keys, 0 = not
 * yet) records the line, so a key given twice is an error, as is one not in keys: "not
 * supported by ..." if it is in ld->unsupported, else "unknown key in [section]" with
 * "; did you mean KEY?" when one of keys is close (common/suggest.h).
 */
void ini_key_set(struct ini_load *ld, const struct ini_key *keys, size_t n, int *seen, void *obj,
		 const char *section, const char *name, const char *value);

/* An integer from min to max into *out (not into obj); fails with the range. */
bool ini_key_range(struct ini_load *ld, const struct ini_key *key, const char *value,
		   int *out) WARN_UNUSED;

/*
 * Fails a key that takes a number of seconds (parse_decimal_seconds() or _usec(), at most
 * PARSE_MAX_SECONDS; more than 0 if positive), the message showing "e.g. EXAMPLE or 0.5".
 * Returns false.  The loaders keep the parsers: one stores double seconds, the other usec_t.
 */
bool ini_key_seconds_fail(struct ini_load *ld, const struct ini_key *spec, const char *value,
			  bool positive, int example);

/* Parsers for struct ini_key.parse, by the field's type. */
INI_KEY_PARSER(ini_key_int);       /* int: min to max */
INI_KEY_PARSER(ini_key_string);    /* char *: a copy (the old one is freed) */
INI_KEY_PARSER(ini_key_nonempty);  /* char *: likewise, but not "" */
INI_KEY_PARSER(ini_key_address);   /* char *: a numeric IPv4 or IPv6 address */
INI_KEY_PARSER(ini_key_log_level); /* char *: a log_level_parse() name, lower-cased */
INI_KEY_PARSER(ini_key_bool);      /* bool: parse_bool()'s spellings */

#endif
