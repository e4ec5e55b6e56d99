/*
 * The framing between corral-fn and an environment (functions/runner/fn_host.c), over a
 * socketpair.  No I/O here: frames are encoded into a struct fn_buf and decoded from
 * plain memory, so the runner can feed bytes as libevent hands them over and the codec can
 * be unit-tested byte by byte.
 *
 * A frame is  uint32 length | uint8 type | payload,  length counting type and payload,
 * all integers big-endian.  A string field is uint32 length | bytes.
 *
 *   runner -> environment
 *     INVOKE    request_id:str  deadline_usec:i64  event:str
 *     SHUTDOWN  (no payload)
 *   environment -> runner
 *     READY     init_usec:i64  max_rss_kb:i64  error:str
 *     LOG       request_id:str  message:str
 *     RESULT    request_id:str  rc:i32  status:i32  content_type:str  n_headers:u32
 *               headers:str  body:str  duration_usec:i64  init_usec:i64  max_rss_kb:i64
 *               error:str
 *
 * deadline_usec is on CLOCK_MONOTONIC (common/clock.h), the same clock in both processes.
 * READY follows fn_init (error "" when it succeeded; otherwise the environment exits after
 * sending it).  LOG frames of an invocation precede its RESULT.  RESULT.init_usec is the
 * Init Duration on an environment's first invocation and 0 afterwards.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_FRAME_H
#define CORRAL_FUNCTIONS_RUNNER_FN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

/* Largest frame either side accepts: a 6 MB event or body plus the other fields. */
#define FN_FRAME_MAX (8u * 1024 * 1024)
/* Largest event the runner sends (Lambda's 6 MB synchronous payload); above it the
 * runner answers 413 without bothering an environment. */
#define FN_EVENT_MAX (6u * 1024 * 1024)
#define FN_FRAME_HEADER 5 /* uint32 length + type byte */

enum fn_frame_type {
	FN_FRAME_INVOKE = 1,
	FN_FRAME_SHUTDOWN = 2,
	FN_FRAME_READY = 3,
	FN_FRAME_LOG = 4,
	FN_FRAME_RESULT = 5,
};

struct fn_invoke {
	const char *request_id;
	int64_t deadline_usec;
	const char *event;
	size_t event_len;
};

struct fn_ready {
	int64_t init_usec;
	int64_t max_rss_kb;
	const char *error; /* "" when fn_init succeeded */
};

struct fn_log {
	const char *request_id; /* "" during fn_init / fn_shutdown */
	const char *message;
};

struct fn_result {
	const char *request_id;
	int32_t rc;     /* fn_handle's return code (FN_OK / FN_ERROR) */
	int32_t status; /* HTTP status the function set */
	const char *content_type;
	uint32_t n_headers;
	const char *headers; /* n_headers pairs "name\0value\0"; see fn_result_header() */
	size_t headers_len;
	const char *body;
	size_t body_len;
	int64_t duration_usec; /* fn_handle alone */
	int64_t init_usec;     /* Init Duration: the environment's first invocation only */
	int64_t max_rss_kb;    /* peak RSS of the environment so far (VmHWM) */
	const char *error;     /* "" unless rc is FN_ERROR */
};

/*
 * A decoded frame.  Every string (and event, headers, body) points into one block owned
 * by the frame, NUL-terminated even where a length is given; fn_frame_clear() frees it.
 * For encoding, the caller fills in the union member and owns what it points to; NULL
 * strings encode as "".
 */
struct fn_frame {
	enum fn_frame_type type;
	union {
		struct fn_invoke invoke;
		struct fn_ready ready;
		struct fn_log log;
		struct fn_result result;
	} u;
	void *block;
};

/* A growable byte buffer (malloc'd). */
struct fn_buf {
	uint8_t *data;
	size_t len, cap;
};

void fn_buf_free(struct fn_buf *buf);
/* Removes the first n bytes (after they were written out). */
void fn_buf_consume(struct fn_buf *buf, size_t n);
bool fn_buf_append(struct fn_buf *buf, const void *data, size_t len) WARN_UNUSED;

/* Appends the frame to buf.  False (buf unchanged) when it would pass FN_FRAME_MAX or
 * memory runs out. */
bool fn_frame_encode(struct fn_buf *buf, const struct fn_frame *frame) WARN_UNUSED;

enum fn_decode_result {
	FN_DECODE_OK,
	FN_DECODE_NEED_MORE, /* not a whole frame yet: call again with more bytes */
	FN_DECODE_ERROR,     /* malformed: the peer cannot be trusted any more */
};

/*
 * Decodes the frame at the head of data[0..len).  OK: *out is filled (clear it with
 * fn_frame_clear()) and *consumed says how many bytes it took.  NEED_MORE: nothing
 * changed.  ERROR: *why says what was wrong.
 */
enum fn_decode_result fn_frame_decode(const uint8_t *data, size_t len, struct fn_frame *out,
				      size_t *consumed, const char **why);
/* Length of the whole frame at the head of data (0 if fewer than 4 bytes), so a caller
 * reading from a socket knows how much to wait for. */
size_t fn_frame_peek_length(const uint8_t *data, size_t len);
void fn_frame_clear(struct fn_frame *frame);

/*
 * Walks the headers of a result: start with *pos = 0; each call gives the next pair and
 * returns false after the last one.
 */
bool fn_result_header(const struct fn_result *r, size_t *pos, const char **name,
		      const char **value);

/*
 * Whether a result can be handed to an HTTP client as it is: status 100..599 when rc is
 * FN_OK, no control characters in the content type or header values, header names that
 * are HTTP tokens, n_headers pairs filling headers_len exactly.  The decoder applies it to
 * every RESULT; the environment applies it before sending.
 */
bool fn_result_check(const struct fn_result *r, const char **why) WARN_UNUSED;

const char *fn_frame_type_name(enum fn_frame_type type);

#endif
