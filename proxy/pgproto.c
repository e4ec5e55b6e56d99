#include "proxy/pgproto.h"

#include <arpa/inet.h>
#include <string.h>

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

enum pg_parse_result pgproto_startup_length(struct evbuffer *buf, uint32_t *len, const char **why)
{
	uint8_t hdr[4];
	if (evbuffer_copyout(buf, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return PG_PARSE_INCOMPLETE;
	*len = get_be32(hdr);
	if (*len < 8 || *len > PG_MAX_STARTUP_PACKET) {
		*why = "invalid length of startup packet";
		return PG_PARSE_ERROR;
	}
	return PG_PARSE_OK;
}

bool pgproto_parse_startup(const uint8_t *data, size_t len, struct pg_startup *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	struct pg_reader r;
	pg_reader_init(&r, data, len);
	(void)pg_read_int32(&r); /* the length, already checked by the caller */
	out->code = pg_read_int32(&r);
	if (out->code == PG_CANCEL_REQUEST_CODE) {
		out->cancel_pid = pg_read_int32(&r);
		out->cancel_key = pg_read_int32(&r);
		if (r.bad) {
			*why = "invalid length of cancel request packet";
			return false;
		}
		return true;
	}
	if (out->code == PG_SSL_REQUEST_CODE || out->code == PG_GSSENC_REQUEST_CODE)
		return true;
	if (out->code >> 16 != 3)
		return true; /* the caller rejects other versions with its own message */

	/* name\0value\0 ... \0 */
	for (;;) {
		const char *name = pg_read_string(&r);
		if (r.bad) {
			*why = "invalid startup packet layout: expected terminator as last byte";
			return false;
		}
		if (name[0] == '\0')
			break;
		const char *value = pg_read_string(&r);
		if (r.bad) {
			*why = "invalid startup packet layout: expected terminator as last byte";
			return false;
		}
		if (out->n_params == PG_MAX_STARTUP_PARAMS) {
			*why = "too many parameters in startup packet";
			return false;
		}
		out->names[out->n_params] = name;
		out->values[out->n_params] = value;
		out->n_params++;
	}
	if (r.p != r.end) {
		*why = "invalid startup packet layout: expected terminator as last byte";
		return false;
	}
	return true;
}

const char *pgproto_startup_param(const struct pg_startup *st, const char *name)
{
	for (size_t i = 0; i < st->n_params; i++)
		if (strcmp(st->names[i], name) == 0)
			return st->values[i];
	return NULL;
}

enum pg_parse_result pgproto_peek_header_at(struct evbuffer *buf, size_t offset, char *type,
					    uint32_t *len)
{
	if (evbuffer_get_length(buf) < offset + PG_HEADER_LEN)
		return PG_PARSE_INCOMPLETE;
	uint8_t hdr[PG_HEADER_LEN];
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(buf, &pos, offset, EVBUFFER_PTR_SET) < 0)
		return PG_PARSE_INCOMPLETE;
	if (evbuffer_copyout_from(buf, &pos, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return PG_PARSE_INCOMPLETE;
	*type = (char)hdr[0];
	*len = get_be32(hdr + 1);
	return *len < 4 ? PG_PARSE_ERROR : PG_PARSE_OK;
}

enum pg_parse_result pgproto_peek_header(struct evbuffer *buf, char *type, uint32_t *len)
{
	uint8_t hdr[PG_HEADER_LEN];
	if (evbuffer_copyout(buf, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return PG_PARSE_INCOMPLETE;
	*type = (char)hdr[0];
	*len = get_be32(hdr + 1);
	return *len < 4 ? PG_PARSE_ERROR : PG_PARSE_OK;
}

uint8_t pg_read_byte(struct pg_reader *r)
{
	if (r->bad || r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

uint32_t pg_read_int32(struct pg_reader *r)
{
	if (r->bad || r->end - r->p < 4) {
		r->bad = true;
		return 0;
	}
	uint32_t v = get_be32(r->p);
	r->p += 4;
	return v;
}

const char *pg_read_string(struct pg_reader *r)
{
	if (r->bad)
		return NULL;
	const uint8_t *nul = memchr(r->p, '\0', (size_t)(r->end - r->p));
	if (!nul) {
		r->bad = true;
		return NULL;
	}
	const char *s = (const char *)r->p;
	r->p = nul + 1;
	return s;
}

const uint8_t *pg_read_bytes(struct pg_reader *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *s = r->p;
	r->p += n;
	return s;
}

/* ---- building ------------------------------------------------------------------ */

static void put_header(struct evbuffer *out, char type, size_t body_len)
{
	uint8_t hdr[PG_HEADER_LEN];
	uint32_t len = htonl((uint32_t)(body_len + 4));
	hdr[0] = (uint8_t)type;
	memcpy(hdr + 1, &len, 4);
	evbuffer_add(out, hdr, sizeof(hdr));
}

static void put_int32(struct evbuffer *out, uint32_t v)
{
	uint32_t be = htonl(v);
	evbuffer_add(out, &be, 4);
}

static void put_string(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, s, strlen(s) + 1);
}

void pgproto_put_auth(struct evbuffer *out, enum pg_auth_code code, const void *data, size_t len)
{
	put_header(out, 'R', 4 + len);
	put_int32(out, (uint32_t)code);
	if (len)
		evbuffer_add(out, data, len);
}

void pgproto_put_parameter_status(struct evbuffer *out, const char *name, const char *value)
{
	put_header(out, 'S', strlen(name) + 1 + strlen(value) + 1);
	put_string(out, name);
	put_string(out, value);
}

void pgproto_put_backend_key(struct evbuffer *out, uint32_t pid, uint32_t key)
{
	put_header(out, 'K', 8);
	put_int32(out, pid);
	put_int32(out, key);
}

void pgproto_put_ready(struct evbuffer *out, char status)
{
	put_header(out, 'Z', 1);
	evbuffer_add(out, &status, 1);
}

void pgproto_put_query(struct evbuffer *out, const char *sql)
{
	put_header(out, 'Q', strlen(sql) + 1);
	put_string(out, sql);
}

void pgproto_put_terminate(struct evbuffer *out)
{
	put_header(out, 'X', 0);
}

/* Fields as PostgreSQL sends them: S (localised severity), V (severity), C, M. */
static void put_error_like(struct evbuffer *out, char type, const char *severity,
			   const char *sqlstate, const char *message)
{
	size_t sev = strlen(severity) + 1, code = strlen(sqlstate) + 1, msg = strlen(message) + 1;
	put_header(out, type, 1 + sev + 1 + sev + 1 + code + 1 + msg + 1);
	evbuffer_add(out, "S", 1);
	put_string(out, severity);
	evbuffer_add(out, "V", 1);
	put_string(out, severity);
	evbuffer_add(out, "C", 1);
	put_string(out, sqlstate);
	evbuffer_add(out, "M", 1);
	put_string(out, message);
	evbuffer_add(out, "", 1);
}

void pgproto_put_error(struct evbuffer *out, const char *severity, const char *sqlstate,
		       const char *message)
{
	put_error_like(out, 'E', severity, sqlstate, message);
}

void pgproto_put_notice(struct evbuffer *out, const char *severity, const char *sqlstate,
			const char *message)
{
	put_error_like(out, 'N', severity, sqlstate, message);
}

void pgproto_put_negotiate_version(struct evbuffer *out, uint32_t newest_version,
				   const char *const *unsupported, size_t n_unsupported)
{
	size_t body = 8;
	for (size_t i = 0; i < n_unsupported; i++)
		body += strlen(unsupported[i]) + 1;
	put_header(out, 'v', body);
	put_int32(out, newest_version);
	put_int32(out, (uint32_t)n_unsupported);
	for (size_t i = 0; i < n_unsupported; i++)
		put_string(out, unsupported[i]);
}
