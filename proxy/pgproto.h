/*
 * The PostgreSQL v3 wire protocol codec: builds the messages corral says itself and
 * parses the few it must understand.  No I/O: functions append to or read from
 * evbuffers and plain memory, so all of it can be unit-tested and fuzzed.
 */
#ifndef CORRAL_PROXY_PGPROTO_H
#define CORRAL_PROXY_PGPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "common/macros.h"

#define PG_PROTOCOL(major, minor) (((uint32_t)(major) << 16) | (minor))
#define PG_PROTOCOL_LATEST PG_PROTOCOL(3, 0)
#define PG_SSL_REQUEST_CODE PG_PROTOCOL(1234, 5679)
#define PG_CANCEL_REQUEST_CODE PG_PROTOCOL(1234, 5678)
#define PG_GSSENC_REQUEST_CODE PG_PROTOCOL(1234, 5680)

/* PostgreSQL's own limit for the startup packet (MAX_STARTUP_PACKET_LENGTH). */
#define PG_MAX_STARTUP_PACKET 10000
#define PG_HEADER_LEN 5 /* type byte + int32 length */

/* Authentication request codes (the int32 after 'R'). */
enum pg_auth_code {
	PG_AUTH_OK = 0,
	PG_AUTH_CLEARTEXT = 3,
	PG_AUTH_MD5 = 5,
	PG_AUTH_SASL = 10,
	PG_AUTH_SASL_CONTINUE = 11,
	PG_AUTH_SASL_FINAL = 12,
};

/* ---- startup packet --------------------------------------------------------- */

#define PG_MAX_STARTUP_PARAMS 64

struct pg_startup {
	uint32_t code; /* protocol version or a request code */
	/* Cancel request */
	uint32_t cancel_pid, cancel_key;
	/* StartupMessage: name/value pairs pointing into the caller's buffer */
	size_t n_params;
	const char *names[PG_MAX_STARTUP_PARAMS];
	const char *values[PG_MAX_STARTUP_PARAMS];
};

enum pg_parse_result { PG_PARSE_OK, PG_PARSE_INCOMPLETE, PG_PARSE_ERROR };

/*
 * Length of the startup packet at the head of buf (its first int32), or a parse
 * error with a message in *why when the length is outside 8..PG_MAX_STARTUP_PACKET.
 */
enum pg_parse_result pgproto_startup_length(struct evbuffer *buf, uint32_t *len, const char **why);
/*
 * Parses a whole startup packet held in data[0..len).  The packet memory must stay
 * alive as long as *out is used (names/values point into it).  False with *why on
 * malformed input.
 */
bool pgproto_parse_startup(const uint8_t *data, size_t len, struct pg_startup *out,
			   const char **why) WARN_UNUSED;
const char *pgproto_startup_param(const struct pg_startup *st, const char *name);

/* ---- regular messages -------------------------------------------------------- */

/*
 * Reads the header at the head of buf: *type and *len (the length field, which
 * counts itself but not the type byte).  INCOMPLETE: fewer than 5 bytes.  ERROR: a
 * length below 4.
 */
enum pg_parse_result pgproto_peek_header(struct evbuffer *buf, char *type, uint32_t *len);
/* Same at an offset into buf (for walking several messages without removing them). */
enum pg_parse_result pgproto_peek_header_at(struct evbuffer *buf, size_t offset, char *type,
					    uint32_t *len);

/* A cursor over one message body, for the small messages corral parses. */
struct pg_reader {
	const uint8_t *p, *end;
	bool bad;
};

static inline void pg_reader_init(struct pg_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->end = r->p + len;
	r->bad = false;
}
uint8_t pg_read_byte(struct pg_reader *r);
uint32_t pg_read_int32(struct pg_reader *r);
/* A NUL-terminated string inside the body, or NULL (and r->bad) if unterminated. */
const char *pg_read_string(struct pg_reader *r);
/* n bytes, or NULL (and r->bad) if the body is shorter. */
const uint8_t *pg_read_bytes(struct pg_reader *r, size_t n);
/* The value of field code ('S', 'V', 'C', 'M', ...) of an ErrorResponse or
 * NoticeResponse body, pointing into body; NULL if absent or malformed before it. */
const char *pgproto_error_field(const uint8_t *body, size_t len, char code);

/* ---- messages corral sends --------------------------------------------------- */

void pgproto_put_auth(struct evbuffer *out, enum pg_auth_code code, const void *data, size_t len);
void pgproto_put_parameter_status(struct evbuffer *out, const char *name, const char *value);
/* A ParameterStatus for each names[i] = values[i], in order, appended at once. */
void pgproto_put_parameter_statuses(struct evbuffer *out, const char *const *names,
				    const char *const *values, size_t n);
void pgproto_put_backend_key(struct evbuffer *out, uint32_t pid, uint32_t key);
void pgproto_put_ready(struct evbuffer *out, char status);
void pgproto_put_query(struct evbuffer *out, const char *sql);
void pgproto_put_terminate(struct evbuffer *out);
/* ErrorResponse ('E') or NoticeResponse ('N') with severity, SQLSTATE and message. */
void pgproto_put_error(struct evbuffer *out, const char *severity, const char *sqlstate,
		       const char *message);
void pgproto_put_notice(struct evbuffer *out, const char *severity, const char *sqlstate,
			const char *message);
/* NegotiateProtocolVersion: the newest version we speak (the full code, e.g.
 * PG_PROTOCOL_LATEST, as PostgreSQL sends it) and the options we do not know. */
void pgproto_put_negotiate_version(struct evbuffer *out, uint32_t newest_version,
				   const char *const *unsupported, size_t n_unsupported);

#endif
