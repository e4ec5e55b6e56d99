#include "tests/integration/prom_text.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct family {
	char *name;
	char type[16]; /* "" until its TYPE line */
	bool help, closed, has_samples;
};

struct parser {
	struct prom_doc *doc;
	struct family *fam;
	size_t n_fam, cap_fam;
	struct family *current; /* the family the last line belonged to */
	int line;
	char *err;
	size_t errlen;
	bool failed;
};

static bool fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct parser *p, const char *fmt, ...)
{
	if (p->failed)
		return false;
	int n = snprintf(p->err, p->errlen, "line %d: ", p->line);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	p->failed = true;
	return false;
}

static bool name_start(int c, bool metric)
{
	return isalpha(c) || c == '_' || (metric && c == ':');
}

static bool name_char(int c, bool metric)
{
	return isalnum(c) || c == '_' || (metric && c == ':');
}

/* A name at *s; returns a malloc'd copy and advances *s, or NULL. */
static char *read_name(const char **s, bool metric)
{
	const char *b = *s;
	if (!name_start((unsigned char)*b, metric))
		return NULL;
	const char *e = b + 1;
	while (name_char((unsigned char)*e, metric))
		e++;
	*s = e;
	return strndup(b, (size_t)(e - b));
}

static bool valid_utf8(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	while (*u) {
		int n = *u < 0x80             ? 0
			: (*u & 0xE0) == 0xC0 ? 1
			: (*u & 0xF0) == 0xE0 ? 2
			: (*u & 0xF8) == 0xF0 ? 3
					      : -1;
		if (n < 0 || (n == 1 && *u < 0xC2))
			return false;
		u++;
		for (int i = 0; i < n; i++, u++) {
			if ((*u & 0xC0) != 0x80)
				return false;
		}
	}
	return true;
}

/* A float as Go's ParseFloat takes it (strtod's syntax, no hex), or +Inf/-Inf/NaN. */
static bool read_float(const char *s, size_t len, double *out)
{
	char buf[64];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0) {
		*out = INFINITY;
		return true;
	}
	if (strcmp(buf, "-Inf") == 0) {
		*out = -INFINITY;
		return true;
	}
	if (strcmp(buf, "NaN") == 0) {
		*out = NAN;
		return true;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)buf[i]) && !strchr("+-.eE", buf[i]))
			return false;
	}
	char *end;
	*out = strtod(buf, &end);
	return *end == '\0';
}

static struct family *find_family(struct parser *p, const char *name)
{
	for (size_t i = 0; i < p->n_fam; i++) {
		if (strcmp(p->fam[i].name, name) == 0)
			return &p->fam[i];
	}
	return NULL;
}

/* The family name (for histograms without _bucket/_sum/_count) is opened or continued;
 * a family other than the current one that was seen before is an error. */
static struct family *enter_family(struct parser *p, const char *name)
{
	struct family *f = find_family(p, name);
	if (f && f != p->current && f->closed) {
		fail(p, "lines of family %s are not together (it appeared before)", name);
		return NULL;
	}
	if (!f) {
		if (p->n_fam == p->cap_fam) {
			p->cap_fam = p->cap_fam ? p->cap_fam * 2 : 64;
			p->fam = realloc(p->fam, p->cap_fam * sizeof(*p->fam));
		}
		f = &p->fam[p->n_fam++];
		*f = (struct family){.name = strdup(name)};
		p->doc->n_families++;
	}
	if (p->current && p->current != f)
		p->current->closed = true;
	p->current = f;
	return f;
}

static bool parse_comment(struct parser *p, const char *line)
{
	bool help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
	if (!help && !type)
		return fail(p, "a comment other than # HELP or # TYPE: %s", line);
	const char *s = line + 7;
	char *name = read_name(&s, true);
	if (!name)
		return fail(p, "bad metric name in %s", line);
	struct family *f = enter_family(p, name);
	free(name);
	if (!f)
		return false;
	if (help) {
		if (f->help)
			return fail(p, "second HELP for %s", f->name);
		if (*s != ' ' && *s != '\0')
			return fail(p, "HELP name not followed by a blank");
		/* Help text: escapes \\ and \n only. */
		for (const char *t = s; *t; t++) {
			if (*t == '\\' && t[1] != '\\' && t[1] != 'n')
				return fail(p, "bad escape in HELP of %s", f->name);
			if (*t == '\\')
				t++;
		}
		if (!valid_utf8(s))
			return fail(p, "HELP of %s is not UTF-8", f->name);
		f->help = true;
		return true;
	}
	if (f->type[0])
		return fail(p, "second TYPE for %s", f->name);
	if (f->has_samples)
		return fail(p, "TYPE for %s after its samples", f->name);
	if (*s != ' ')
		return fail(p, "TYPE name not followed by a blank");
	s++;
	static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(s, types[i]) == 0) {
			snprintf(f->type, sizeof(f->type), "%s", s);
			return true;
		}
	}
	return fail(p, "unknown TYPE \"%s\" for %s", s, f->name);
}

struct label {
	char *name, *value;
};

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* {name="value",...} at *s; labels into ls (n). */
static bool parse_labels(struct parser *p, const char **s, struct label *ls, size_t *n, size_t cap)
{
	const char *t = *s + 1; /* after '{' */
	*n = 0;
	while (*t != '}') {
		if (*n == cap)
			return fail(p, "too many labels");
		char *name = read_name(&t, false);
		if (!name)
			return fail(p, "bad label name at \"%.20s\"", t);
		if (strncmp(name, "__", 2) == 0) {
			free(name);
			return fail(p, "label names starting with __ are reserved");
		}
		for (size_t i = 0; i < *n; i++) {
			if (strcmp(ls[i].name, name) == 0) {
				free(name);
				return fail(p, "label %s twice", ls[i].name);
			}
		}
		ls[*n].name = name;
		ls[*n].value = NULL;
		(*n)++;
		if (t[0] != '=' || t[1] != '"')
			return fail(p, "label %s: expected =\"", name);
		t += 2;
		size_t cap_v = strlen(t) + 1, len = 0;
		char *v = malloc(cap_v);
		ls[*n - 1].value = v;
		for (; *t != '"'; t++) {
			if (*t == '\0' || *t == '\n')
				return fail(p, "label %s: unterminated value", name);
			if (*t == '\\') {
				t++;
				if (*t == '\\' || *t == '"')
					v[len++] = *t;
				else if (*t == 'n')
					v[len++] = '\n';
				else
					return fail(p, "label %s: bad escape \\%c", name,
						    *t ? *t : '0');
			} else {
				v[len++] = *t;
			}
		}
		v[len] = '\0';
		if (!valid_utf8(v))
			return fail(p, "label %s: value is not UTF-8", name);
		t++; /* the closing quote */
		if (*t == ',')
			t++;
		else if (*t != '}')
			return fail(p, "label %s: expected , or } after the value", name);
	}
	*s = t + 1;
	return true;
}

static void free_labels(struct label *ls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ls[i].name);
		free(ls[i].value);
	}
}

static char *canonical(struct label *ls, size_t n)
{
	qsort(ls, n, sizeof(*ls), cmp_label);
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(ls[i].name) + strlen(ls[i].value) + 4;
	char *s = malloc(len), *o = s;
	*o = '\0';
	for (size_t i = 0; i < n; i++)
		o += sprintf(o, "%s%s=\"%s\"", i ? "," : "", ls[i].name, ls[i].value);
	return s;
}

/* The family a sample name belongs to: NAME for NAME_bucket/_sum/_count of a histogram
 * (or summary) family NAME, else the name itself. */
static struct family *family_of(struct parser *p, const char *name)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	size_t len = strlen(name);
	for (size_t i = 0; i < 3; i++) {
		size_t sl = strlen(suffixes[i]);
		if (len > sl && strcmp(name + len - sl, suffixes[i]) == 0) {
			char *base = strndup(name, len - sl);
			struct family *f = find_family(p, base);
			free(base);
			if (f &&
			    (strcmp(f->type, "histogram") == 0 || strcmp(f->type, "summary") == 0))
				return f;
		}
	}
	return find_family(p, name);
}

static bool parse_sample(struct parser *p, const char *line)
{
	const char *s = line;
	char *name = read_name(&s, true);
	if (!name)
		return fail(p, "bad metric name at the start of: %s", line);
	struct label ls[16];
	size_t n = 0;
	bool ok = true;
	if (*s == '{')
		ok = parse_labels(p, &s, ls, &n, 16);
	if (ok && *s != ' ')
		ok = fail(p, "%s: expected a blank before the value", name);
	double v = 0;
	if (ok) {
		s++;
		const char *e = strchr(s, ' ');
		size_t vl = e ? (size_t)(e - s) : strlen(s);
		if (!read_float(s, vl, &v))
			ok = fail(p, "%s: bad value \"%.*s\"", name, (int)vl, s);
		if (ok && e) {
			for (const char *t = e + 1; *t; t++) {
				if (!isdigit((unsigned char)*t) && !(t == e + 1 && *t == '-'))
					ok = fail(p, "%s: bad timestamp \"%s\"", name, e + 1);
			}
		}
	}
	struct family *f = ok ? family_of(p, name) : NULL;
	if (ok && (!f || !f->type[0]))
		ok = fail(p, "sample %s before (or without) the TYPE line of its family", name);
	if (ok && (f != p->current))
		ok = fail(p, "sample %s is not with the rest of family %s", name, f->name);
	if (ok && strcmp(f->type, "counter") == 0) {
		size_t len = strlen(name);
		if (len < 6 || strcmp(name + len - 6, "_total") != 0)
			ok = fail(p, "counter %s is not named *_total", name);
		else if (!(v >= 0))
			ok = fail(p, "counter %s is %g", name, v);
	}
	if (ok) {
		f->has_samples = true;
		char *labels = canonical(ls, n);
		if (prom_find(p->doc, name, labels)) {
			ok = fail(p, "series %s{%s} twice", name, labels);
			free(labels);
		} else {
			struct prom_doc *d = p->doc;
			if (d->n == d->cap) {
				d->cap = d->cap ? d->cap * 2 : 256;
				d->samples = realloc(d->samples, d->cap * sizeof(*d->samples));
			}
			d->samples[d->n++] = (struct prom_sample){.name = strdup(name),
								  .labels = labels,
								  .value = v};
		}
	}
	free_labels(ls, n);
	free(name);
	return ok;
}

/* The labels of a canonical string without le="...", and le's value (malloc'd). */
static char *without_le(const char *labels, char **le)
{
	char *out = strdup(labels);
	*le = NULL;
	char *at = strstr(out, "le=\"");
	while (at && at != out && at[-1] != ',')
		at = strstr(at + 1, "le=\"");
	if (!at)
		return out;
	char *end = strchr(at + 4, '"');
	*le = strndup(at + 4, (size_t)(end - at - 4));
	end++;
	if (*end == ',')
		end++;
	else if (at != out)
		at--; /* drop the comma before it */
	memmove(at, end, strlen(end) + 1);
	return out;
}

static const struct prom_sample *find_with(const struct prom_doc *doc, const char *name,
					   const char *labels)
{
	return prom_find(doc, name, labels);
}

static bool check_histograms(struct parser *p)
{
	p->line = 0;
	for (size_t fi = 0; fi < p->n_fam; fi++) {
		struct family *f = &p->fam[fi];
		if (strcmp(f->type, "histogram") != 0)
			continue;
		char bucket[256], sum[256], count[256];
		snprintf(bucket, sizeof(bucket), "%s_bucket", f->name);
		snprintf(sum, sizeof(sum), "%s_sum", f->name);
		snprintf(count, sizeof(count), "%s_count", f->name);
		for (size_t i = 0; i < p->doc->n; i++) {
			const struct prom_sample *c = &p->doc->samples[i];
			if (strcmp(c->name, count) != 0)
				continue;
			/* Every series of the family has a _count: walk its buckets in order. */
			double last_le = -INFINITY, last_n = 0;
			bool inf = false;
			size_t n_buckets = 0;
			for (size_t k = 0; k < p->doc->n; k++) {
				const struct prom_sample *b = &p->doc->samples[k];
				if (strcmp(b->name, bucket) != 0)
					continue;
				char *le, *rest = without_le(b->labels, &le);
				bool mine = strcmp(rest, c->labels) == 0;
				free(rest);
				if (!mine) {
					free(le);
					continue;
				}
				double lev;
				if (!le || !read_float(le, strlen(le), &lev)) {
					free(le);
					return fail(p, "%s{%s}: a bucket without a valid le",
						    f->name, c->labels);
				}
				free(le);
				if (inf)
					return fail(p, "%s{%s}: a bucket after +Inf", f->name,
						    c->labels);
				if (!(lev > last_le))
					return fail(p, "%s{%s}: le %g after %g", f->name, c->labels,
						    lev, last_le);
				if (b->value < last_n)
					return fail(
						p,
						"%s{%s}: bucket le=%g has %g, below the one before (%g)",
						f->name, c->labels, lev, b->value, last_n);
				last_le = lev;
				last_n = b->value;
				inf = isinf(lev) && lev > 0;
				n_buckets++;
			}
			if (!inf)
				return fail(p, "%s{%s}: no +Inf bucket (%zu buckets)", f->name,
					    c->labels, n_buckets);
			if (c->value != last_n)
				return fail(p, "%s{%s}: _count %g but the +Inf bucket has %g",
					    f->name, c->labels, c->value, last_n);
			if (!find_with(p->doc, sum, c->labels))
				return fail(p, "%s{%s}: no _sum", f->name, c->labels);
		}
		/* And no bucket without a _count. */
		for (size_t k = 0; k < p->doc->n; k++) {
			const struct prom_sample *b = &p->doc->samples[k];
			if (strcmp(b->name, bucket) != 0)
				continue;
			char *le, *rest = without_le(b->labels, &le);
			bool has = prom_find(p->doc, count, rest) != NULL;
			free(le);
			free(rest);
			if (!has)
				return fail(p, "%s: a bucket of a series without _count: {%s}",
					    f->name, b->labels);
		}
	}
	return true;
}

bool prom_parse(const char *text, struct prom_doc *doc, char *err, size_t errlen)
{
	memset(doc, 0, sizeof(*doc));
	struct parser p = {.doc = doc, .err = err, .errlen = errlen};
	if (errlen)
		err[0] = '\0';
	if (!valid_utf8(text)) {
		p.line = 0;
		return fail(&p, "the document is not UTF-8");
	}
	const char *s = text;
	while (*s && !p.failed) {
		p.line++;
		const char *nl = strchr(s, '\n');
		if (!nl) {
			fail(&p, "the last line has no newline");
			break;
		}
		char *line = strndup(s, (size_t)(nl - s));
		if (line[0] == '\0')
			fail(&p, "blank line");
		else if (line[0] == '#')
			parse_comment(&p, line);
		else
			parse_sample(&p, line);
		free(line);
		s = nl + 1;
	}
	if (!p.failed)
		check_histograms(&p);
	for (size_t i = 0; i < p.n_fam; i++)
		free(p.fam[i].name);
	free(p.fam);
	return !p.failed;
}

void prom_free(struct prom_doc *doc)
{
	for (size_t i = 0; i < doc->n; i++) {
		free(doc->samples[i].name);
		free(doc->samples[i].labels);
	}
	free(doc->samples);
	memset(doc, 0, sizeof(*doc));
}

const struct prom_sample *prom_find(const struct prom_doc *doc, const char *name,
				    const char *labels)
{
	for (size_t i = 0; i < doc->n; i++) {
		if (strcmp(doc->samples[i].name, name) == 0 &&
		    strcmp(doc->samples[i].labels, labels) == 0)
			return &doc->samples[i];
	}
	return NULL;
}

size_t prom_count(const struct prom_doc *doc, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < doc->n; i++)
		n += strcmp(doc->samples[i].name, name) == 0;
	return n;
}
