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

bool pgproto_parse_startup(const uint8_t *data, size_t len, struct pg_startup *out,
			   const char **why)
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

/*
 * A message is written into space reserved at the end of the buffer and committed
 * once: an evbuffer_add per field ran the buffer's callbacks every time, which was
 * most of what a login's reply cost to build.  Out of memory, nothing is added (not
 * half a message).
 */
struct msg {
	struct evbuffer_iovec v;
	uint8_t *p;
};

static bool msg_begin(struct evbuffer *out, struct msg *m, char type, size_t body_len)
{
	if (evbuffer_reserve_space(out, (ev_ssize_t)(PG_HEADER_LEN + body_len), &m->v, 1) != 1)
		return false;
	uint32_t len = htonl((uint32_t)(body_len + 4));
	m->p = m->v.iov_base;
	*m->p++ = (uint8_t)type;
	memcpy(m->p, &len, 4);
	m->p += 4;
	return true;
}

static void msg_bytes(struct msg *m, const void *data, size_t len)
{
	if (len) {
		memcpy(m->p, data, len);
		m->p += len;
	}
}

static void msg_int32(struct msg *m, uint32_t v)
{
	uint32_t be = htonl(v);
	msg_bytes(m, &be, 4);
}

static void msg_end(struct evbuffer *out, struct msg *m)
{
	m->v.iov_len = (size_t)(m->p - (uint8_t *)m->v.iov_base);
	(void)evbuffer_commit_space(out, &m->v, 1);
}

void pgproto_put_auth(struct evbuffer *out, enum pg_auth_code code, const void *data, size_t len)
{
	struct msg m;
	if (!msg_begin(out, &m, 'R', 4 + len))
		return;
	msg_int32(&m, (uint32_t)code);
	msg_bytes(&m, data, len);
	msg_end(out, &m);
}

void pgproto_put_parameter_statuses(struct evbuffer *out, const char *const *names,
				    const char *const *values, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += PG_HEADER_LEN + strlen(names[i]) + 1 + strlen(values[i]) + 1;
	struct evbuffer_iovec v;
	if (total == 0 || evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) != 1)
		return;
	uint8_t *p = v.iov_base;
	for (size_t i = 0; i < n; i++) {
		size_t nlen = strlen(names[i]) + 1, vlen = strlen(values[i]) + 1;
		uint32_t len = htonl((uint32_t)(4 + nlen + vlen));
		*p++ = 'S';
		memcpy(p, &len, 4);
		memcpy(p + 4, names[i], nlen);
		memcpy(p + 4 + nlen, values[i], vlen);
		p += 4 + nlen + vlen;
	}
	v.iov_len = total;
	(void)evbuffer_commit_space(out, &v, 1);
}

void pgproto_put_parameter_status(struct evbuffer *out, const char *name, const char *value)
{
	pgproto_put_parameter_statuses(out, &name, &value, 1);
}

void pgproto_put_backend_key(struct evbuffer *out, uint32_t pid, uint32_t key)
{
	struct msg m;
	if (!msg_begin(out, &m, 'K', 8))
		return;
	msg_int32(&m, pid);
	msg_int32(&m, key);
	msg_end(out, &m);
}

void pgproto_put_ready(struct evbuffer *out, char status)
{
	struct msg m;
	if (!msg_begin(out, &m, 'Z', 1))
		return;
	msg_bytes(&m, &status, 1);
	msg_end(out, &m);
}

void pgproto_put_query(struct evbuffer *out, const char *sql)
{
	size_t len = strlen(sql) + 1;
	struct msg m;
	if (!msg_begin(out, &m, 'Q', len))
		return;
	msg_bytes(&m, sql, len);
	msg_end(out, &m);
}

void pgproto_put_terminate(struct evbuffer *out)
{
	struct msg m;
	if (!msg_begin(out, &m, 'X', 0))
		return;
	msg_end(out, &m);
}

/* Fields as PostgreSQL sends them: S (localised severity), V (severity), C, M. */
static void put_error_like(struct evbuffer *out, char type, const char *severity,
			   const char *sqlstate, const char *message)
{
	size_t sev = strlen(severity) + 1, code = strlen(sqlstate) + 1, msg = strlen(message) + 1;
	struct msg m;
	if (!msg_begin(out, &m, type, 1 + sev + 1 + sev + 1 + code + 1 + msg + 1))
		return;
	msg_bytes(&m, "S", 1);
	msg_bytes(&m, severity, sev);
	msg_bytes(&m, "V", 1);
	msg_bytes(&m, severity, sev);
	msg_bytes(&m, "C", 1);
	msg_bytes(&m, sqlstate, code);
	msg_bytes(&m, "M", 1);
	msg_bytes(&m, message, msg);
	msg_bytes(&m, "", 1);
	msg_end(out, &m);
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
	struct msg m;
	if (!msg_begin(out, &m, 'v', body))
		return;
	msg_int32(&m, newest_version);
	msg_int32(&m, (uint32_t)n_unsupported);
	for (size_t i = 0; i < n_unsupported; i++)
		msg_bytes(&m, unsupported[i], strlen(unsupported[i]) + 1);
	msg_end(out, &m);
}

const char *pgproto_error_field(const uint8_t *body, size_t len, char code)
{
	struct pg_reader r;
	pg_reader_init(&r, body, len);
	for (;;) {
		uint8_t field = pg_read_byte(&r);
		if (r.bad || field == 0)
			return NULL;
		const char *value = pg_read_string(&r);
		if (r.bad)
			return NULL;
		if (field == (uint8_t)code)
			return value;
	}
}
