/*
 * queue_worker: consumes a batch of queue messages, SQS-style:
 *
 *   {"Records":[{"messageId":"m-1","body":"{\"kind\":\"welcome_email\",\"user_id\":42}"}, ...]}
 *
 * Each message body is a JSON job with a "kind"; each becomes one row of jobs (its own
 * statement, so one bad message does not undo the others).  A message delivered again
 * (same messageId) is recognised and not stored twice.  The answer is Lambda's partial
 * batch response: the messages that failed are listed for redelivery,
 *
 *   {"batchItemFailures":[{"itemIdentifier":"m-7"}],"stored":9,"duplicates":0,
 *    "rejected":[{"itemIdentifier":"m-7","error":"..."}]}
 *
 * and a batch none of which could be stored because the database failed is an error (the
 * whole batch comes back).  400 when the event is not a batch.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/corral_fn.h"
#include "functions/examples/example_db.h"
#include "functions/fn_event.h"

CORRAL_FN_ABI();

#define KIND_MAX 64

static const struct ex_stmt stmts[] = {
	{"store_job",
	 "INSERT INTO jobs (message_id, kind, payload) VALUES ($1, $2, $3::jsonb) "
	 "ON CONFLICT (message_id) DO NOTHING RETURNING id",
	 3},
};

static struct ex_db db;

int fn_init(struct fn_ctx *ctx)
{
	return ex_db_open(&db, ctx, stmts, sizeof(stmts) / sizeof(stmts[0]));
}

void fn_shutdown(struct fn_ctx *ctx)
{
	ex_db_close(&db);
}

struct batch {
	int stored, duplicates, failed;
	bool db_failed;
	struct fn_response failures, rejected; /* list bodies, joined at the end */
};

static void add_failure(struct batch *b, const char *id, const char *why)
{
	(void)fn_response_write(&b->failures, b->failed ? "," : "", b->failed ? 1 : 0);
	(void)fn_response_write(&b->failures, "{\"itemIdentifier\":", 18);
	(void)fn_response_json_string(&b->failures, id);
	(void)fn_response_write(&b->failures, "}", 1);
	(void)fn_response_write(&b->rejected, b->failed ? "," : "", b->failed ? 1 : 0);
	(void)fn_response_write(&b->rejected, "{\"itemIdentifier\":", 18);
	(void)fn_response_json_string(&b->rejected, id);
	(void)fn_response_write(&b->rejected, ",\"error\":", 9);
	(void)fn_response_json_string(&b->rejected, why);
	(void)fn_response_write(&b->rejected, "}", 1);
	b->failed++;
}

static bool valid_kind(const char *kind)
{
	size_t n = strlen(kind);
	if (n == 0 || n > KIND_MAX)
		return false;
	for (const char *p = kind; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '.'))
			return false;
	return true;
}

/* Why the job in body cannot be stored, or NULL with *kind set (malloc'd). */
static const char *check_job(const char *body, size_t len, char **kind)
{
	struct fn_json job = fn_json_parse(body, len);
	if (fn_json_type(job) != FN_JSON_OBJECT)
		return "body is not a JSON object";
	*kind = fn_json_cstr(fn_json_get(job, "kind"));
	if (!*kind)
		return "body has no \"kind\" string";
	if (!valid_kind(*kind))
		return "\"kind\" must be 1-64 characters of a-z, 0-9, '_' and '.'";
	return NULL;
}

static void process(struct fn_json rec, size_t index, struct batch *b, struct fn_ctx *ctx)
{
	char *id = fn_json_cstr(fn_json_get(rec, "messageId"));
	char fallback[32];
	if (!id || !*id) {
		snprintf(fallback, sizeof(fallback), "#%zu", index);
		add_failure(b, fallback, "record without a messageId");
		free(id);
		return;
	}
	size_t len = 0;
	char *body = fn_json_strdup(fn_json_get(rec, "body"), &len);
	char *kind = NULL;
	const char *why = body ? check_job(body, len, &kind) : "record without a body string";
	if (why) {
		add_failure(b, id, why);
	} else {
		const char *params[] = {id, kind, body};
		PGresult *res = ex_db_exec(&db, "store_job", 3, params);
		if (PQresultStatus(res) == PGRES_TUPLES_OK) {
			if (PQntuples(res) == 1)
				b->stored++;
			else
				b->duplicates++;
		} else {
			char err[256];
			ex_result_error(res, err, sizeof(err));
			fn_log(ctx, "message %s: %s", id, err);
			if (!ex_bad_input(res))
				b->db_failed = true;
			add_failure(b, id, err);
		}
		PQclear(res);
	}
	free(kind);
	free(body);
	free(id);
}

int fn_handle(const struct fn_event *event, struct fn_response *resp, struct fn_ctx *ctx)
{
	struct fn_json ev = fn_json_parse(event->json, event->len);
	struct fn_json records = fn_json_get(ev, "Records");
	if (fn_json_type(records) != FN_JSON_ARRAY)
		return fn_response_error(resp, 400, "not a queue batch: no Records array");

	struct batch b;
	memset(&b, 0, sizeof(b));
	size_t i = 0;
	for (struct fn_json rec = fn_json_first(records); fn_json_ok(rec); rec = fn_json_next(rec))
		process(rec, i++, &b, ctx);

	int rc = FN_OK;
	if (b.db_failed && b.stored == 0 && b.duplicates == 0) {
		rc = fn_fail(resp, "database unavailable; none of %zu messages stored", i);
	} else if (fn_response_write(resp, "{\"batchItemFailures\":[", 22) != FN_OK ||
		   fn_response_write(resp, b.failures.body, b.failures.body_len) != FN_OK ||
		   fn_response_printf(resp, "],\"stored\":%d,\"duplicates\":%d,\"rejected\":[",
				      b.stored, b.duplicates) != FN_OK ||
		   fn_response_write(resp, b.rejected.body, b.rejected.body_len) != FN_OK ||
		   fn_response_write(resp, "]}", 2) != FN_OK) {
		rc = fn_fail(resp, "response too large");
	}
	fn_log(ctx, "batch of %zu: %d stored, %d duplicates, %d failed", i, b.stored, b.duplicates,
	       b.failed);
	free(b.failures.body);
	free(b.rejected.body);
	return rc;
}
