/*
 * A small JSON writer into a growable buffer, and the Lambda-shaped events
 * corral-fn hands to functions: an API Gateway proxy request (REST API, payload
 * format 1.0), an SQS batch and an EventBridge scheduled event.
 *
 * The writer puts commas and colons itself: call json_key() before each member
 * of an object, then one value call.  Errors (out of memory, a value where a key
 * is due, too deep) are sticky and reported once, by json_finish().
 *
 *	struct json_writer w;
 *	json_init(&w);
 *	json_object_begin(&w);
 *	json_key(&w, "statusCode");
 *	json_int(&w, 200);
 *	json_object_end(&w);
 *	if (!json_finish(&w)) ...;   // w.buf holds {"statusCode":200}, w.len its length
 *	json_free(&w);
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_JSON_H
#define CORRAL_FUNCTIONS_RUNNER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/macros.h"

#define JSON_MAX_DEPTH 32

struct json_writer {
	char *buf;  /* NUL-terminated once anything is written; owned, see json_free */
	size_t len; /* bytes in buf, without the NUL */
	size_t cap;
	bool failed;
	int depth;
	/* per open container: it is an object, it has a member already, a key waits */
	bool is_object[JSON_MAX_DEPTH];
	bool has_items[JSON_MAX_DEPTH];
	bool key_pending;
};

void json_init(struct json_writer *w);
/* Frees the buffer; w may be initialised again afterwards. */
void json_free(struct json_writer *w);
/* True when the document is complete (every container closed, one top-level
 * value) and nothing failed; w->buf then holds it, NUL-terminated. */
bool json_finish(const struct json_writer *w) WARN_UNUSED;
/* Hands the buffer to the caller (free() it) and resets w; NULL unless
 * json_finish(w) holds. */
char *json_take(struct json_writer *w, size_t *len) WARN_UNUSED;

void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);

/* Strings are UTF-8: valid sequences are copied as they are, '"', '\\' and control
 * characters are escaped, and each byte of an invalid sequence becomes U+FFFD. */
void json_string(struct json_writer *w, const char *s);
void json_string_len(struct json_writer *w, const char *s, size_t len);
/* Whether n bytes are valid UTF-8 without a NUL: text a JSON string carries as it is
 * (anything else goes base64, as API Gateway sends binary bodies). */
bool json_text_is_utf8(const char *s, size_t n);
/* A string value or null when s is NULL. */
void json_string_or_null(struct json_writer *w, const char *s);
/* len bytes of any content, as a base64 string. */
void json_base64(struct json_writer *w, const void *data, size_t len);
void json_int(struct json_writer *w, int64_t v);
void json_uint(struct json_writer *w, uint64_t v);
/* Shortest form that reads back as the same double; NaN and infinities, which JSON
 * cannot hold, become null. */
void json_double(struct json_writer *w, double v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
/* An RFC 3339 UTC timestamp string: "2024-03-10T09:30:00Z". */
void json_time(struct json_writer *w, time_t t);

/* key + value shorthands for object members */
void json_kv_string(struct json_writer *w, const char *key, const char *value);
void json_kv_int(struct json_writer *w, const char *key, int64_t value);
void json_kv_bool(struct json_writer *w, const char *key, bool value);

/* ---- Lambda events ---- */

struct json_pair {
	const char *name;
	const char *value;
};

/*
 * API Gateway proxy request (REST API).  Headers and query parameters may repeat:
 * "headers" and "queryStringParameters" keep the last value of a name,
 * "multiValueHeaders" and "multiValueQueryStringParameters" all of them, as API
 * Gateway does; both are null when there are none.  body may hold any bytes: with
 * body_base64 it is sent base64-encoded and "isBase64Encoded" is true.
 */
struct json_http_request {
	const char *method;     /* "GET" */
	const char *path;       /* "/fn/hello", without the query string */
	const char *resource;   /* NULL: "/{proxy+}" */
	const char *stage;      /* NULL: "$default" */
	const char *request_id; /* requestContext.requestId */
	const char *source_ip;  /* requestContext.identity.sourceIp, NULL: null */
	int64_t time_epoch_ms;  /* requestContext.requestTimeEpoch */
	const struct json_pair *headers;
	size_t n_headers;
	const struct json_pair *query;
	size_t n_query;
	const char *body; /* NULL: null */
	size_t body_len;
	bool body_base64;
};

void json_http_request_event(struct json_writer *w, const struct json_http_request *r);

/* One message of an SQS-like batch; corral-fn's queue table stands in for SQS. */
struct json_queue_message {
	const char *message_id;
	const char *receipt_handle; /* NULL: the message id */
	const char *body;
	unsigned receive_count;   /* attributes.ApproximateReceiveCount */
	int64_t sent_ms;          /* attributes.SentTimestamp, ms since the epoch */
	int64_t first_receive_ms; /* attributes.ApproximateFirstReceiveTimestamp */
};

/* {"Records":[...]}; source_arn names the queue ("arn:corral:queue:local:jobs"). */
void json_queue_batch_event(struct json_writer *w, const char *source_arn,
			    const struct json_queue_message *msgs, size_t n);

/* EventBridge "Scheduled Event" for a cron trigger that fired at `time`. */
struct json_schedule {
	const char *id;
	time_t time;
	const char *account;          /* NULL: "000000000000" */
	const char *region;           /* NULL: "local" */
	const char *const *resources; /* rule ARNs */
	size_t n_resources;
};

void json_scheduled_event(struct json_writer *w, const struct json_schedule *s);

#endif
