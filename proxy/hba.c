/*
 * pg_hba.conf parsing and first-match lookup (proxy/hba.h).  Unsupported forms are
 * refused at load, naming the line, rather than read as something they are not: a
 * rule that silently never matches would let a later, looser rule decide.
 */
#include "proxy/hba.h"

#include "common/macros.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* An hba file is a few hundred lines at most; anything bigger is the wrong file. */
#define HBA_MAX_SIZE (16 * 1024 * 1024)
#define MAX_FIELDS 8

static const char *const method_names[] = {
	[HBA_TRUST] = "trust",         [HBA_REJECT] = "reject",     [HBA_MD5] = "md5",
	[HBA_SCRAM] = "scram-sha-256", [HBA_PASSWORD] = "password", [HBA_CERT] = "cert",
};

struct parser {
	const char *name;
	int line;
	char *err;
	size_t errlen;
};

static bool PRINTF_LIKE(2, 3) fail(struct parser *ps, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (ps->err && ps->errlen)
		snprintf(ps->err, ps->errlen, "%s:%d: %s", ps->name, ps->line, why);
	return false;
}

const char *hba_method_name(enum hba_method m)
{
	return (size_t)m < ARRAY_SIZE(method_names) ? method_names[m] : "?";
}

static void free_names(struct hba_names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->names[i]);
	free(n->names);
	*n = (struct hba_names){0};
}

/* A DATABASE or USER column: comma-separated names and keywords. */
static bool parse_names(struct parser *ps, char *field, bool is_db, struct hba_names *out)
{
	const char *col = is_db ? "database" : "user";
	if (strchr(field, '"'))
		return fail(ps, "quoted %s names are not supported", col);
	for (char *save = NULL, *tok = strtok_r(field, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (tok[0] == '@')
			return fail(ps,
				    "\"%s\": @file inclusion is not supported; list the %s "
				    "names on the line",
				    tok, col);
		if (tok[0] == '+')
			return fail(ps,
				    "\"%s\": +group membership is not supported (as in "
				    "PgBouncer); list the user names",
				    tok);
		if (strcmp(tok, "all") == 0) {
			out->all = true;
			continue;
		}
		if (is_db && strcmp(tok, "sameuser") == 0) {
			out->sameuser = true;
			continue;
		}
		if (is_db && strcmp(tok, "replication") == 0) {
			out->replication = true;
			continue;
		}
		if (is_db && (strcmp(tok, "samerole") == 0 || strcmp(tok, "samegroup") == 0))
			return fail(ps, "\"%s\" is not supported (corral does not know roles)",
				    tok);
		char **grown = realloc(out->names, (out->n + 1) * sizeof(*grown));
		if (!grown)
			return fail(ps, "out of memory");
		out->names = grown;
		if (!(out->names[out->n] = strdup(tok)))
			return fail(ps, "out of memory");
		out->n++;
	}
	if (!out->all && !out->sameuser && !out->replication && out->n == 0)
		return fail(ps, "empty %s column", col);
	return true;
}

/* Whether mask is n ones then zeros (a netmask column such as 255.255.0.0). */
static bool mask_contiguous(const uint8_t *mask, size_t len)
{
	bool zero_seen = false;
	for (size_t i = 0; i < len * 8; i++) {
		bool bit = mask[i / 8] & (0x80 >> (i % 8));
		if (bit && zero_seen)
			return false;
		zero_seen |= !bit;
	}
	return true;
}

/* ADDRESS (and a netmask column if the address has no /len); *used: columns taken. */
static bool parse_address(struct parser *ps, char **f, size_t nf, struct hba_rule *r, size_t *used)
{
	char *a = f[0];
	*used = 1;
	if (strcmp(a, "all") == 0) {
		r->addr_kind = HBA_ADDR_ALL;
		return true;
	}
	if (strcmp(a, "samehost") == 0) {
		r->addr_kind = HBA_ADDR_SAMEHOST;
		return true;
	}
	if (strcmp(a, "samenet") == 0)
		return fail(ps, "samenet is not supported; write the network in CIDR form "
				"(e.g. 10.0.0.0/8)");
	r->addr_kind = HBA_ADDR_CIDR;
	char *slash = strchr(a, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, a, r->addr) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, a, r->addr) == 1)
		r->family = AF_INET6;
	else
		return fail(ps,
			    "invalid IP address \"%s\" (host names are not supported; use an "
			    "address in CIDR form)",
			    a);
	int maxbits = r->family == AF_INET ? 32 : 128;
	size_t bytes = (size_t)maxbits / 8;
	if (slash) {
		char *end;
		long bits = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end || bits < 0 || bits > maxbits)
			return fail(ps, "invalid CIDR mask in address \"%s/%s\"", a, slash + 1);
		for (long i = 0; i < bits; i++)
			r->mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	} else {
		/* PostgreSQL's other form: the address, then a netmask column. */
		if (nf < 2)
			return fail(ps, "address \"%s\" needs a CIDR mask (e.g. %s/%d)", a, a,
				    maxbits);
		uint8_t m[16];
		if (inet_pton(r->family, f[1], m) != 1 || !mask_contiguous(m, bytes))
			return fail(ps, "invalid IP mask \"%s\"", f[1]);
		memcpy(r->mask, m, bytes);
		*used = 2;
	}
	for (size_t i = 0; i < bytes; i++)
		r->addr[i] &= r->mask[i];
	return true;
}

static bool parse_method(struct parser *ps, const char *m, struct hba_rule *r)
{
	for (size_t i = 0; i < ARRAY_SIZE(method_names); i++) {
		if (strcmp(m, method_names[i]) == 0) {
			r->method = (enum hba_method)i;
			return true;
		}
	}
	return fail(ps,
		    "authentication method \"%s\" is not supported (corral knows trust, "
		    "reject, md5, scram-sha-256, password and cert)",
		    m);
}

/* One non-blank line into r; false with the error set. */
static bool parse_line(struct parser *ps, char *line, struct hba_rule *r)
{
	char *f[MAX_FIELDS + 1] = {0};
	size_t nf = 0;
	for (char *save = NULL, *tok = strtok_r(line, " \t\r", &save); tok;
	     tok = strtok_r(NULL, " \t\r", &save)) {
		if (nf == MAX_FIELDS)
			return fail(ps, "too many columns");
		f[nf++] = tok;
	}
	r->line = ps->line;
	if (nf == 0) /* the caller skips blank lines; this keeps f[0] defined */
		return fail(ps, "empty line");
	if (strcmp(f[0], "host") == 0)
		r->type = HBA_HOST;
	else if (strcmp(f[0], "hostssl") == 0)
		r->type = HBA_HOSTSSL;
	else if (strcmp(f[0], "hostnossl") == 0)
		r->type = HBA_HOSTNOSSL;
	else if (strcmp(f[0], "local") == 0)
		return fail(ps, "\"local\" lines are not supported: corral listens on TCP only; "
				"use host lines");
	else if (strncmp(f[0], "hostgss", 7) == 0 || strncmp(f[0], "hostnogss", 9) == 0)
		return fail(ps, "connection type \"%s\" is not supported (no GSSAPI)", f[0]);
	else
		return fail(ps, "invalid connection type \"%s\" (host, hostssl or hostnossl)",
			    f[0]);
	if (nf < 5)
		return fail(ps, "end-of-line before %s",
			    nf < 2   ? "database specification"
			    : nf < 3 ? "role specification"
			    : nf < 4 ? "IP address specification"
				     : "authentication method");
	if (!parse_names(ps, f[1], true, &r->dbs) || !parse_names(ps, f[2], false, &r->users))
		return false;
	size_t used;
	if (!parse_address(ps, f + 3, nf - 3, r, &used))
		return false;
	size_t mi = 3 + used;
	if (mi >= nf)
		return fail(ps, "end-of-line before authentication method");
	if (!parse_method(ps, f[mi], r))
		return false;
	/* PostgreSQL's rule: without TLS there is no certificate to check. */
	if (r->method == HBA_CERT && r->type != HBA_HOSTSSL)
		return fail(ps, "cert authentication is only supported on hostssl connections");
	if (mi + 1 < nf)
		return fail(ps, "option \"%s\" after the method is not supported", f[mi + 1]);
	return true;
}

static void free_rule(struct hba_rule *r)
{
	free_names(&r->dbs);
	free_names(&r->users);
}

void hba_free(struct hba_rules *rules)
{
	for (size_t i = 0; i < rules->n; i++)
		free_rule(&rules->rules[i]);
	free(rules->rules);
	free(rules->name);
	free(rules->text);
	*rules = (struct hba_rules){0};
}

bool hba_parse(const char *name, const char *text, struct hba_rules *out, char *err, size_t errlen)
{
	*out = (struct hba_rules){0};
	struct parser ps = {.name = name, .err = err, .errlen = errlen};
	char *work = strdup(text);
	out->name = strdup(name);
	out->text = strdup(text);
	if (!work || !out->name || !out->text) {
		free(work);
		hba_free(out);
		return fail(&ps, "out of memory");
	}
	bool ok = true;
	char *line = work;
	while (ok && line) {
		ps.line++;
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		if (line[strspn(line, " \t\r")] != '\0') {
			struct hba_rule *grown = realloc(out->rules, (out->n + 1) * sizeof(*grown));
			if (!grown) {
				ok = fail(&ps, "out of memory");
				break;
			}
			out->rules = grown;
			struct hba_rule *r = &out->rules[out->n++];
			*r = (struct hba_rule){0};
			ok = parse_line(&ps, line, r);
		}
		line = next;
	}
	free(work);
	if (!ok)
		hba_free(out);
	return ok;
}

bool hba_load(const char *path, struct hba_rules *out, char *err, size_t errlen)
{
	*out = (struct hba_rules){0};
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	char *text = malloc(HBA_MAX_SIZE + 1);
	size_t n = text ? fread(text, 1, HBA_MAX_SIZE + 1, f) : 0;
	bool read_err = ferror(f);
	fclose(f);
	if (!text || read_err || n > HBA_MAX_SIZE) {
		snprintf(err, errlen, "%s: %s", path,
			 !text      ? "out of memory"
			 : read_err ? "read error"
				    : "file too large");
		free(text);
		return false;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n)) {
		snprintf(err, errlen, "%s: contains a NUL byte: not a text file", path);
		free(text);
		return false;
	}
	bool ok = hba_parse(path, text, out, err, errlen);
	free(text);
	return ok;
}

bool hba_copy(const struct hba_rules *src, struct hba_rules *dst)
{
	if (!src->text) {
		*dst = (struct hba_rules){0};
		return true;
	}
	/* It parsed once; parsing it again can only fail for memory. */
	return hba_parse(src->name, src->text, dst, NULL, 0);
}

static bool names_match(const struct hba_names *n, const char *name, const char *user)
{
	if (n->all || (n->sameuser && strcmp(name, user) == 0))
		return true;
	for (size_t i = 0; i < n->n; i++) {
		if (strcmp(n->names[i], name) == 0)
			return true;
	}
	return false;
}

/* The client's address as family + bytes; a v4-mapped IPv6 address counts as IPv4
 * (a listener on :: sees IPv4 clients that way), as PostgreSQL's check_ip does. */
static int client_bytes(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family != AF_INET6)
		return AF_UNSPEC;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		memcpy(out, a6->s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(out, a6->s6_addr, 16);
	return AF_INET6;
}

static bool addr_match(const struct hba_rule *r, const struct hba_client *cl)
{
	if (r->addr_kind == HBA_ADDR_ALL)
		return true;
	if (r->addr_kind == HBA_ADDR_SAMEHOST)
		return cl->is_local && cl->is_local(cl->addr);
	uint8_t a[16];
	if (client_bytes(cl->addr, a) != r->family)
		return false;
	size_t bytes = r->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < bytes; i++) {
		if ((a[i] & r->mask[i]) != r->addr[i])
			return false;
	}
	return true;
}

const struct hba_rule *hba_match(const struct hba_rules *rules, const struct hba_client *cl)
{
	for (size_t i = 0; i < rules->n; i++) {
		const struct hba_rule *r = &rules->rules[i];
		if ((r->type == HBA_HOSTSSL && !cl->ssl) || (r->type == HBA_HOSTNOSSL && cl->ssl))
			continue;
		if (!addr_match(r, cl))
			continue;
		if (!names_match(&r->dbs, cl->database, cl->user) ||
		    !names_match(&r->users, cl->user, cl->user))
			continue;
		return r;
	}
	return NULL;
}
