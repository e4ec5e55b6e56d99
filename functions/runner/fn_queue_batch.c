#include "functions/runner/fn_queue_batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/fn_event.h"
#include "functions/runner/json.h"

/* ---- SQL ------------------------------------------------------------------------------ */

const char *const fn_queue_schema_sql[FN_QUEUE_SCHEMA_STATEMENTS] = {
	"CREATE TABLE IF NOT EXISTS corral_queue ("
	" id bigserial PRIMARY KEY,"
	" queue text NOT NULL,"
	" body text NOT NULL,"
	" receive_count integer NOT NULL DEFAULT 0,"
	" enqueued_at timestamptz NOT NULL DEFAULT now(),"
	" visible_at timestamptz NOT NULL DEFAULT now(),"
	" first_received_at timestamptz)",
	/* The claim's scan: the visible messages of one queue, oldest first. */
	"CREATE INDEX IF NOT EXISTS corral_queue_visible_idx"
	" ON corral_queue (queue, visible_at, id)",
	/* id is the message's own: a redriven message keeps it (see the dead-letter
	 * statement's ON CONFLICT). */
	"CREATE TABLE IF NOT EXISTS corral_queue_dead_letter ("
	" id bigint PRIMARY KEY,"
	" queue text NOT NULL,"
	" body text NOT NULL,"
	" receive_count integer NOT NULL,"
	" enqueued_at timestamptz NOT NULL,"
	" failed_at timestamptz NOT NULL DEFAULT now(),"
	" error text NOT NULL DEFAULT '')",
};

/*
 * = ANY(ARRAY(subquery)) rather than IN (subquery): the array is an InitPlan, evaluated
 * exactly once, so the LIMIT holds whatever join the planner picks (a semi-join that
 * rescans a SKIP LOCKED subquery could lock and update more than LIMIT rows).  The CTE only
 * orders the result and turns the times into milliseconds; it is still one statement.
 */
static const char claim_sql[] =
	"WITH claimed AS ("
	"UPDATE corral_queue SET receive_count = receive_count + 1,"
	" visible_at = now() + $3::bigint * interval '1 microsecond',"
	" first_received_at = coalesce(first_received_at, now())"
	" WHERE id = ANY(ARRAY(SELECT id FROM corral_queue"
	" WHERE queue = $1::text AND visible_at <= now()"
	" ORDER BY id LIMIT $2::integer FOR UPDATE SKIP LOCKED))"
	" RETURNING id, body, receive_count, enqueued_at, first_received_at)"
	" SELECT id, body, receive_count,"
	" floor(extract(epoch FROM enqueued_at) * 1000)::bigint,"
	" floor(extract(epoch FROM first_received_at) * 1000)::bigint"
	" FROM claimed ORDER BY id";

/* Receipts: (id, receive_count) pairs; a message claimed again since does not match. */
static const char delete_sql[] =
	"DELETE FROM corral_queue q"
	" USING unnest($1::bigint[], $2::integer[]) AS a(id, receive_count)"
	" WHERE q.id = a.id AND q.receive_count = a.receive_count";

static const char requeue_sql[] =
	"UPDATE corral_queue q"
	" SET visible_at = now() + a.delay_us * interval '1 microsecond',"
	" receive_count = q.receive_count - a.uncount"
	" FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::integer[])"
	" AS a(id, receive_count, delay_us, uncount)"
	" WHERE q.id = a.id AND q.receive_count = a.receive_count";

static const char dead_letter_sql[] =
	"WITH moved AS ("
	"DELETE FROM corral_queue q"
	" USING unnest($1::bigint[], $2::integer[]) AS a(id, receive_count)"
	" WHERE q.id = a.id AND q.receive_count = a.receive_count"
	" RETURNING q.id, q.queue, q.body, q.receive_count, q.enqueued_at)"
	" INSERT INTO corral_queue_dead_letter"
	" (id, queue, body, receive_count, enqueued_at, failed_at, error)"
	" SELECT id, queue, body, receive_count, enqueued_at, now(), $3::text FROM moved"
	" ON CONFLICT (id) DO UPDATE SET queue = EXCLUDED.queue, body = EXCLUDED.body,"
	" receive_count = EXCLUDED.receive_count, enqueued_at = EXCLUDED.enqueued_at,"
	" failed_at = EXCLUDED.failed_at, error = EXCLUDED.error";

void fn_queue_stmt_clear(struct fn_queue_stmt *s)
{
	for (int i = 0; i < FN_QUEUE_PARAMS_MAX; i++)
		free(s->params[i]);
	memset(s, 0, sizeof(*s));
}

static char *format_alloc(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *format_alloc(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* Takes ownership of the n params (NULL ones mean memory ran out: all are freed). */
static bool stmt_set(struct fn_queue_stmt *s, const char *sql, const char *what,
		     size_t n_messages, int n, char *const params[])
{
	memset(s, 0, sizeof(*s));
	s->sql = sql;
	s->what = what;
	s->n_params = n;
	s->n_messages = n_messages;
	bool ok = true;
	for (int i = 0; i < n; i++) {
		s->params[i] = params[i];
		ok = ok && params[i];
	}
	if (!ok)
		fn_queue_stmt_clear(s);
	return ok;
}

bool fn_queue_claim_stmt(const char *queue, unsigned batch_size, usec_t visibility_usec,
			 struct fn_queue_stmt *out)
{
	char *params[3] = {
		strdup(queue),
		format_alloc("%u", batch_size),
		format_alloc("%" PRId64, (int64_t)visibility_usec),
	};
	return stmt_set(out, claim_sql, "claim", 0, 3, params);
}

/* ---- claimed rows and the event ----------------------------------------------------- */

/* A whole decimal integer (optional '-'), nothing else. */
static bool parse_i64(const char *s, int64_t *out)
{
	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

bool fn_queue_msg_from_row(const char *const cols[FN_QUEUE_CLAIM_COLUMNS],
			   struct fn_queue_msg *out)
{
	int64_t rc;
	memset(out, 0, sizeof(*out));
	if (!parse_i64(cols[0], &out->id) || !cols[1] || !parse_i64(cols[2], &rc) || rc < 0 ||
	    rc > UINT32_MAX || !parse_i64(cols[3], &out->sent_ms) ||
	    !parse_i64(cols[4], &out->first_receive_ms))
		return false;
	out->receive_count = (unsigned)rc;
	out->body = cols[1];
	snprintf(out->message_id, sizeof(out->message_id), "%" PRId64, out->id);
	return true;
}

void fn_queue_source_arn(const char *queue, char *out, size_t len)
{
	snprintf(out, len, "arn:corral:queue:local:%s", queue);
}

char *fn_queue_batch_event(const char *queue, const struct fn_queue_msg *msgs, size_t n,
			   size_t *len)
{
	struct json_queue_message *jm = calloc(n ? n : 1, sizeof(*jm));
	if (!jm)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		jm[i].message_id = msgs[i].message_id;
		jm[i].body = msgs[i].body;
		jm[i].receive_count = msgs[i].receive_count;
		jm[i].sent_ms = msgs[i].sent_ms;
		jm[i].first_receive_ms = msgs[i].first_receive_ms;
	}
	char arn[256];
	fn_queue_source_arn(queue, arn, sizeof(arn));
	struct json_writer w;
	json_init(&w);
	json_queue_batch_event(&w, arn, jm, n);
	free(jm);
	char *event = json_take(&w, len);
	json_free(&w);
	return event;
}

/* ---- the verdict ------------------------------------------------------------------------ */

static void set_why(char *why, size_t whylen, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	if (!whylen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static enum fn_queue_verdict all_failed(bool *failed, size_t n)
{
	for (size_t i = 0; i < n; i++)
		failed[i] = true;
	return FN_QUEUE_ALL_FAILED;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* The message whose id is the string value v, or n when none is. */
static size_t find_message(struct fn_json v, const struct fn_queue_msg *msgs, size_t n)
{
	char id[sizeof(msgs[0].message_id) + 1];
	size_t len = fn_json_string(v, id, sizeof(id));
	if (len >= sizeof(id) - 1 || strlen(id) != len)
		return n; /* too long or holds a NUL: no message id looks like that */
	for (size_t i = 0; i < n; i++)
		if (strcmp(msgs[i].message_id, id) == 0)
			return i;
	return n;
}

/* Marks the message an item names; false (with why) when the item is not valid. */
static bool mark_item(struct fn_json item, size_t index, const struct fn_queue_msg *msgs,
		      size_t n, bool *failed, char *why, size_t whylen)
{
	if (fn_json_type(item) != FN_JSON_OBJECT) {
		set_why(why, whylen, "batchItemFailures[%zu] is not an object", index);
		return false;
	}
	struct fn_json id = fn_json_get(item, "itemIdentifier");
	if (fn_json_type(id) != FN_JSON_STRING || id.end - id.p <= 2) {
		set_why(why, whylen, "batchItemFailures[%zu] has no itemIdentifier string", index);
		return false;
	}
	size_t i = find_message(id, msgs, n);
	if (i == n) {
		set_why(why, whylen, "batchItemFailures[%zu]: no message of the batch has that id",
			index);
		return false;
	}
	failed[i] = true;
	return true;
}

enum fn_queue_verdict fn_queue_parse_response(const char *body, size_t len,
					      const struct fn_queue_msg *msgs, size_t n,
					      bool *failed, char *why, size_t whylen)
{
	for (size_t i = 0; i < n; i++)
		failed[i] = false;
	set_why(why, whylen, "%s", "");
	if (!body || blank(body, len))
		return FN_QUEUE_ALL_OK;
	struct fn_json doc = fn_json_parse(body, len);
	if (!fn_json_ok(doc)) {
		set_why(why, whylen, "the response is not JSON");
		return all_failed(failed, n);
	}
	if (fn_json_type(doc) == FN_JSON_NULL)
		return FN_QUEUE_ALL_OK;
	if (fn_json_type(doc) != FN_JSON_OBJECT) {
		set_why(why, whylen, "the response is not a JSON object");
		return all_failed(failed, n);
	}
	struct fn_json list = fn_json_get(doc, "batchItemFailures");
	if (fn_json_type(list) == FN_JSON_NONE || fn_json_type(list) == FN_JSON_NULL)
		return FN_QUEUE_ALL_OK;
	if (fn_json_type(list) != FN_JSON_ARRAY) {
		set_why(why, whylen, "batchItemFailures is not an array");
		return all_failed(failed, n);
	}
	size_t index = 0;
	for (struct fn_json it = fn_json_first(list); fn_json_ok(it); it = fn_json_next(it))
		if (!mark_item(it, index++, msgs, n, failed, why, whylen))
			return all_failed(failed, n);
	if (index == 0)
		return FN_QUEUE_ALL_OK;
	set_why(why, whylen, "listed in batchItemFailures");
	return FN_QUEUE_SOME_FAILED;
}

/* "errorType: error", or either alone. */
static void call_error(const struct fn_call_done *done, char *why, size_t whylen)
{
	const char *error = done->error && *done->error ? done->error : NULL;
	if (!error && done->result && done->result->error && *done->result->error)
		error = done->result->error;
	if (!error)
		error = "invocation failed";
	if (done->error_type && *done->error_type)
		set_why(why, whylen, "%s: %s", done->error_type, error);
	else
		set_why(why, whylen, "%s", error);
}

enum fn_queue_verdict fn_queue_judge(const struct fn_call_done *done,
				     const struct fn_queue_msg *msgs, size_t n, bool *failed,
				     char *why, size_t whylen)
{
	switch (done->status) {
	case FN_CALL_OK: {
		const struct fn_result *r = done->result;
		if (!r) {
			set_why(why, whylen, "the invocation has no result");
			return all_failed(failed, n);
		}
		if (r->status < 200 || r->status > 299) {
			set_why(why, whylen, "the function answered status %d", (int)r->status);
			return all_failed(failed, n);
		}
		return fn_queue_parse_response(r->body, r->body_len, msgs, n, failed, why, whylen);
	}
	case FN_CALL_THROTTLED:
	case FN_CALL_QUEUE_TIMEOUT:
	case FN_CALL_SHUTDOWN:
		call_error(done, why, whylen);
		(void)all_failed(failed, n);
		return FN_QUEUE_NOT_DELIVERED;
	case FN_CALL_FUNCTION_ERROR:
	case FN_CALL_TIMEOUT:
	case FN_CALL_CRASH:
	case FN_CALL_INIT_ERROR:
	case FN_CALL_TOO_LARGE:
	default:
		call_error(done, why, whylen);
		return all_failed(failed, n);
	}
}

/* ---- actions ------------------------------------------------------------------------------ */

const char *fn_queue_action_name(enum fn_queue_action a)
{
	switch (a) {
	case FN_QUEUE_DELETE:
		return "delete";
	case FN_QUEUE_RETRY:
		return "retry";
	case FN_QUEUE_DEAD_LETTER:
		return "dead_letter";
	case FN_QUEUE_RELEASE:
		return "release";
	case FN_QUEUE_ACTIONS:
		break;
	}
	return "?";
}

enum fn_queue_action fn_queue_decide(enum fn_queue_verdict verdict, bool failed,
				     unsigned receive_count, const struct fn_queue_policy *p)
{
	if (verdict == FN_QUEUE_NOT_DELIVERED)
		return FN_QUEUE_RELEASE;
	if (verdict == FN_QUEUE_ALL_OK || (verdict == FN_QUEUE_SOME_FAILED && !failed))
		return FN_QUEUE_DELETE;
	if (p->max_receive_count && receive_count >= p->max_receive_count)
		return FN_QUEUE_DEAD_LETTER;
	return FN_QUEUE_RETRY;
}

usec_t fn_queue_retry_delay(unsigned receive_count, usec_t visibility_usec)
{
	unsigned doublings = receive_count > 1 ? receive_count - 1 : 0;
	usec_t delay = FN_QUEUE_RETRY_BASE_USEC;
	for (unsigned i = 0; i < doublings && i < 40 && delay < visibility_usec; i++)
		delay *= 2;
	return delay < visibility_usec ? delay : (visibility_usec > 0 ? visibility_usec : 0);
}

/* ---- acknowledgement statements ------------------------------------------------------ */

/* A PostgreSQL array literal "{a,b,c}" of one number per message with the action. */
enum array_of { ARRAY_ID, ARRAY_RECEIVE_COUNT, ARRAY_DELAY, ARRAY_UNCOUNT };

static int64_t array_value(enum array_of what, const struct fn_queue_msg *m,
			   enum fn_queue_action a, const struct fn_queue_policy *p)
{
	switch (what) {
	case ARRAY_ID:
		return m->id;
	case ARRAY_RECEIVE_COUNT:
		return m->receive_count;
	case ARRAY_DELAY:
		return a == FN_QUEUE_RELEASE ? p->release_delay_usec
					     : fn_queue_retry_delay(m->receive_count, p->visibility_usec);
	case ARRAY_UNCOUNT:
		return a == FN_QUEUE_RELEASE ? 1 : 0;
	}
	return 0;
}

static bool in_stmt(enum fn_queue_action a, enum fn_queue_action stmt)
{
	return a == stmt || (stmt == FN_QUEUE_RETRY && a == FN_QUEUE_RELEASE);
}

static char *number_array(const struct fn_queue_msg *msgs, size_t n,
			  const enum fn_queue_action *actions, enum fn_queue_action stmt,
			  enum array_of what, const struct fn_queue_policy *p)
{
	char *out = malloc(n * 22 + 3); /* 20 digits and a sign per value, a comma, braces */
	if (!out)
		return NULL;
	size_t len = 0;
	out[len++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (!in_stmt(actions[i], stmt))
			continue;
		if (len > 1)
			out[len++] = ',';
		len += (size_t)sprintf(out + len, "%" PRId64, array_value(what, &msgs[i], actions[i], p));
	}
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

/*
 * The text as PostgreSQL takes it: valid UTF-8, no NUL (the error comes from a function
 * and may hold anything).  Invalid bytes and control characters become '?'.
 */
static size_t utf8_sequence(const unsigned char *s)
{
	size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
	if (s[0] >= 0xF5)
		n = 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
		return 0; /* overlong, surrogate */
	if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
		return 0; /* overlong, past U+10FFFF */
	return n;
}

static char *clean_text(const char *in)
{
	size_t len = strlen(in);
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = s[i] < 0x80 ? 1 : utf8_sequence(s + i);
		if (n == 0 || (n == 1 && (s[i] < 0x20 || s[i] == 0x7f) && s[i] != '\t')) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static size_t count_in(const enum fn_queue_action *actions, size_t n, enum fn_queue_action stmt)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += in_stmt(actions[i], stmt);
	return c;
}

static bool ack_stmt(const struct fn_queue_msg *msgs, size_t n,
		     const enum fn_queue_action *actions, const struct fn_queue_policy *p,
		     enum fn_queue_action stmt, const char *error, struct fn_queue_stmt *out)
{
	size_t count = count_in(actions, n, stmt);
	char *params[FN_QUEUE_PARAMS_MAX] = {
		number_array(msgs, n, actions, stmt, ARRAY_ID, p),
		number_array(msgs, n, actions, stmt, ARRAY_RECEIVE_COUNT, p),
	};
	switch (stmt) {
	case FN_QUEUE_DELETE:
		return stmt_set(out, delete_sql, "delete", count, 2, params);
	case FN_QUEUE_RETRY:
		params[2] = number_array(msgs, n, actions, stmt, ARRAY_DELAY, p);
		params[3] = number_array(msgs, n, actions, stmt, ARRAY_UNCOUNT, p);
		return stmt_set(out, requeue_sql, "requeue", count, 4, params);
	default:
		params[2] = clean_text(error ? error : "");
		return stmt_set(out, dead_letter_sql, "dead_letter", count, 3, params);
	}
}

int fn_queue_ack_stmts(const struct fn_queue_msg *msgs, size_t n,
		       const enum fn_queue_action *actions, const struct fn_queue_policy *p,
		       const char *error, struct fn_queue_stmt out[FN_QUEUE_ACK_STATEMENTS])
{
	static const enum fn_queue_action order[FN_QUEUE_ACK_STATEMENTS] = {
		FN_QUEUE_DELETE, FN_QUEUE_RETRY, FN_QUEUE_DEAD_LETTER};
	int written = 0;
	for (size_t k = 0; k < FN_QUEUE_ACK_STATEMENTS; k++) {
		if (count_in(actions, n, order[k]) == 0)
			continue;
		if (!ack_stmt(msgs, n, actions, p, order[k], error, &out[written])) {
			while (written > 0)
				fn_queue_stmt_clear(&out[--written]);
			return -1;
		}
		written++;
	}
	return written;
}
