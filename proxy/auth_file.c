/*
 * The auth file loader.  Three passes, so that the message names the first bad
 * line and an error never pays for PBKDF2: parse every line (syntax, verifiers),
 * sort by name to find duplicates (and so lookups are a binary search), and only
 * then derive SCRAM keys for plaintext passwords.  As in PgBouncer, anything after
 * the second quoted field is ignored.
 */
#include "proxy/auth_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "proxy/auth_md5.h"

/* A userlist with a million users is ~100 MB; anything bigger is the wrong file. */
#define AUTH_FILE_MAX_SIZE (256 * 1024 * 1024)
#define PLAIN_SALT_LEN 16

/* A parsed line, kept with its line number until duplicates have been checked. */
struct entry {
	struct user_secret u;
	int line;
};

struct parser {
	const char *name;
	char *err;
	size_t errlen;
	struct entry *v;
	size_t n, cap;
	int err_line; /* 0: no error yet */
};

static void PRINTF_LIKE(3, 4) set_err(struct parser *ps, int line, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	ps->err_line = line;
	if (ps->err == NULL || ps->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "%s:%d: %s", ps->name, line, why);
}

static void free_secret(struct user_secret *u)
{
	free(u->name);
	if (u->secret != NULL) {
		OPENSSL_cleanse(u->secret, strlen(u->secret));
		free(u->secret);
	}
	OPENSSL_cleanse(u, sizeof(*u));
}

/*
 * Reads a quoted field starting at *p (which is '"') and ending before end.  A
 * doubled quote is a literal quote; the field may not span lines.  NULL when the
 * closing quote is missing or memory is.
 */
static char *read_quoted(const char **p, const char *end, bool *unterminated)
{
	const char *s = *p + 1;
	char *out = malloc((size_t)(end - s) + 1);
	size_t o = 0;

	*unterminated = false;
	if (out == NULL)
		return NULL;
	for (;;) {
		if (s == end) {
			*unterminated = true;
			OPENSSL_cleanse(out, o);
			free(out);
			return NULL;
		}
		if (*s == '"') {
			if (s + 1 < end && s[1] == '"') {
				out[o++] = '"';
				s += 2;
				continue;
			}
			break;
		}
		out[o++] = *s++;
	}
	out[o] = '\0';
	*p = s + 1;
	return out;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static bool push_entry(struct parser *ps, struct entry *e)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap != 0 ? ps->cap * 2 : 16;
		struct entry *v = realloc(ps->v, cap * sizeof(*v));
		if (v == NULL)
			return false;
		ps->v = v;
		ps->cap = cap;
	}
	ps->v[ps->n++] = *e;
	return true;
}

/* Sets the kind, and parses a SCRAM verifier; plaintext keys come later. */
static bool classify(struct parser *ps, int line, struct user_secret *u)
{
	if (strncmp(u->secret, "SCRAM-SHA-256$", 14) == 0) {
		u->kind = SECRET_SCRAM;
		u->has_scram = scram_parse_secret(u->secret, &u->scram);
		if (!u->has_scram)
			set_err(ps, line, "bad SCRAM verifier for user \"%s\"", u->name);
		return u->has_scram;
	}
	u->kind = md5_is_hash(u->secret) ? SECRET_MD5 : SECRET_PLAIN;
	return true;
}

/* One line, [p, end) without its newline. */
static bool parse_line(struct parser *ps, int line, const char *p, const char *end)
{
	struct entry e;
	bool unterminated;

	memset(&e, 0, sizeof(e));
	e.line = line;
	if (end > p && end[-1] == '\r')
		end--;
	p = skip_blanks(p, end);
	if (p == end || *p == ';' || *p == '#')
		return true;
	if (*p != '"') {
		set_err(ps, line, "expected a quoted user name");
		return false;
	}
	e.u.name = read_quoted(&p, end, &unterminated);
	if (e.u.name == NULL)
		goto bad_quote;
	if (e.u.name[0] == '\0') {
		set_err(ps, line, "empty user name");
		goto fail;
	}
	p = skip_blanks(p, end);
	if (p == end || *p != '"') {
		set_err(ps, line, "missing secret for user \"%s\"", e.u.name);
		goto fail;
	}
	e.u.secret = read_quoted(&p, end, &unterminated);
	if (e.u.secret == NULL)
		goto bad_quote;
	if (e.u.secret[0] == '\0') {
		set_err(ps, line, "empty secret for user \"%s\"", e.u.name);
		goto fail;
	}
	if (!classify(ps, line, &e.u))
		goto fail;
	if (!push_entry(ps, &e)) {
		set_err(ps, line, "out of memory");
		goto fail;
	}
	return true;
bad_quote:
	set_err(ps, line, unterminated ? "missing closing quote" : "out of memory");
fail:
	free_secret(&e.u);
	return false;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->u.name, y->u.name);

	if (c != 0)
		return c;
	return (x->line > y->line) - (x->line < y->line);
}

/*
 * After sorting by (name, line), a duplicate is a neighbour with the same name.
 * Reports the earliest second occurrence, unless a syntax error came before it.
 */
static void check_duplicates(struct parser *ps)
{
	const struct entry *first = NULL, *dup = NULL;

	for (size_t i = 1; i < ps->n; i++) {
		const struct entry *a = &ps->v[i - 1], *b = &ps->v[i];
		if (strcmp(a->u.name, b->u.name) == 0 && (dup == NULL || b->line < dup->line)) {
			first = a;
			dup = b;
		}
	}
	if (dup != NULL && (ps->err_line == 0 || dup->line < ps->err_line))
		set_err(ps, dup->line, "duplicate user \"%s\" (first on line %d)", dup->u.name,
			first->line);
}

/* PBKDF2 once per plaintext password at load, so a login is two HMACs. */
static bool derive_plain_keys(struct parser *ps)
{
	uint8_t salt[PLAIN_SALT_LEN];

	for (size_t i = 0; i < ps->n; i++) {
		struct user_secret *u = &ps->v[i].u;
		if (u->kind != SECRET_PLAIN)
			continue;
		if (RAND_bytes(salt, sizeof(salt)) != 1 ||
		    !scram_secret_from_password(u->secret, salt, sizeof(salt),
						SCRAM_DEFAULT_ITERATIONS, &u->scram)) {
			set_err(ps, ps->v[i].line, "cannot derive SCRAM keys for user \"%s\"",
				u->name);
			return false;
		}
		u->has_scram = true;
	}
	return true;
}

static void free_entries(struct parser *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free_secret(&ps->v[i].u);
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

bool auth_file_parse(const char *name, const char *text, struct auth_file *out, char *err,
		     size_t errlen)
{
	struct parser ps = {.name = name, .err = err, .errlen = errlen};
	const char *p = text;
	int line = 1;

	out->users = NULL;
	out->n_users = 0;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		const char *end = nl != NULL ? nl : p + strlen(p);
		if (!parse_line(&ps, line, p, end))
			break;
		p = nl != NULL ? nl + 1 : end;
		line++;
	}
	if (ps.n > 1)
		qsort(ps.v, ps.n, sizeof(*ps.v), entry_cmp);
	check_duplicates(&ps);
	if (ps.err_line != 0 || !derive_plain_keys(&ps)) {
		free_entries(&ps);
		return false;
	}
	if (ps.n > 0) {
		out->users = malloc(ps.n * sizeof(*out->users));
		if (out->users == NULL) {
			set_err(&ps, 0, "out of memory");
			free_entries(&ps);
			return false;
		}
	}
	for (size_t i = 0; i < ps.n; i++)
		out->users[i] = ps.v[i].u;
	out->n_users = ps.n;
	free(ps.v);
	return true;
}

/* Reads the whole file into a NUL-terminated buffer; refuses NUL bytes inside. */
static char *read_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > AUTH_FILE_MAX_SIZE) {
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path,
			 AUTH_FILE_MAX_SIZE);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: read failed: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break; /* truncated while we read: parse what is there */
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		int line = 1;
		for (const char *q = buf; *q != '\0'; q++)
			line += *q == '\n';
		snprintf(err, errlen, "%s:%d: NUL byte in file", path, line);
		goto fail;
	}
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

bool auth_file_load(const char *path, struct auth_file *out, char *err, size_t errlen)
{
	char scratch[1];
	char *text;
	bool ok;

	/* read_file always writes an error; give it somewhere to go */
	if (err == NULL || errlen == 0) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	out->users = NULL;
	out->n_users = 0;
	text = read_file(path, err, errlen);
	if (text == NULL)
		return false;
	ok = auth_file_parse(path, text, out, err, errlen);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return ok;
}

bool auth_secret_parse(const char *user, const char *text, struct user_secret *out)
{
	struct parser ps = {.name = "auth_query"};
	uint8_t salt[PLAIN_SALT_LEN];

	memset(out, 0, sizeof(*out));
	if (text[0] == '\0')
		return false;
	out->name = strdup(user);
	out->secret = strdup(text);
	if (!out->name || !out->secret || !classify(&ps, 0, out))
		goto fail;
	/* As derive_plain_keys: once per secret, not per login. */
	if (out->kind == SECRET_PLAIN) {
		if (RAND_bytes(salt, sizeof(salt)) != 1 ||
		    !scram_secret_from_password(out->secret, salt, sizeof(salt),
						SCRAM_DEFAULT_ITERATIONS, &out->scram))
			goto fail;
		out->has_scram = true;
	}
	return true;
fail:
	free_secret(out);
	return false;
}

bool auth_secret_copy(const struct user_secret *src, struct user_secret *dst)
{
	*dst = *src;
	dst->name = strdup(src->name);
	dst->secret = strdup(src->secret);
	if (dst->name && dst->secret)
		return true;
	free_secret(dst);
	return false;
}

void auth_secret_free(struct user_secret *u)
{
	free_secret(u);
}

static int find_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct user_secret *)elem)->name);
}

const struct user_secret *auth_file_find(const struct auth_file *af, const char *user)
{
	if (af->n_users == 0 || user == NULL)
		return NULL;
	return bsearch(user, af->users, af->n_users, sizeof(*af->users), find_cmp);
}

void auth_file_free(struct auth_file *af)
{
	for (size_t i = 0; i < af->n_users; i++)
		free_secret(&af->users[i]);
	free(af->users);
	af->users = NULL;
	af->n_users = 0;
}

bool auth_file_copy(const struct auth_file *src, struct auth_file *dst)
{
	*dst = (struct auth_file){0};
	if (src->n_users == 0)
		return true;
	dst->users = calloc(src->n_users, sizeof(*dst->users));
	if (!dst->users)
		return false;
	for (size_t i = 0; i < src->n_users; i++) {
		struct user_secret *u = &dst->users[i];
		*u = src->users[i];
		u->name = strdup(src->users[i].name);
		u->secret = strdup(src->users[i].secret);
		dst->n_users++;
		if (!u->name || !u->secret) {
			auth_file_free(dst);
			return false;
		}
	}
	return true;
}

size_t auth_file_md5_only(const struct auth_file *af, void (*each)(const char *name, void *arg),
			  void *arg)
{
	size_t n = 0;
	for (size_t i = 0; i < af->n_users; i++)
		if (af->users[i].kind == SECRET_MD5) {
			n++;
			if (each)
				each(af->users[i].name, arg);
		}
	return n;
}
