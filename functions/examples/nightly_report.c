/*
 * nightly_report: run by the cron trigger.  The scheduled event (EventBridge's shape)
 *
 *   {"version":"0","id":"...","detail-type":"Scheduled Event","source":"corral.cron",
 *    "time":"2026-11-27T03:00:00Z","resources":[],"detail":{}}
 *
 * produces the report of the UTC day before "time" ("detail":{"day":"2026-11-20"} asks
 * for another day): one statement aggregates the other examples' tables (URLs created,
 * hits and the most visited code, uploads by format, jobs by kind) and upserts the row of
 * daily_reports, which is also the answer.  Running it again recomputes the day.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/corral_fn.h"
#include "functions/examples/example_db.h"
#include "functions/fn_event.h"

CORRAL_FN_ABI();

/* $1: the event's time (NULL: now), $2: an explicit day (NULL: the day before $1). */
static const struct ex_stmt stmts[] = {
	{"daily_report",
	 "WITH span AS ("
	 "  SELECT d AS day, d::timestamp AT TIME ZONE 'UTC' AS lo,"
	 "         (d + 1)::timestamp AT TIME ZONE 'UTC' AS hi"
	 "  FROM (SELECT coalesce($2::date,"
	 "                (coalesce($1::timestamptz, now()) AT TIME ZONE 'UTC')::date - 1) AS d) x"
	 ") "
	 "INSERT INTO daily_reports AS r (day, urls_created, url_hits, top_code, top_code_hits,"
	 "  uploads, upload_bytes, upload_formats, jobs_done, jobs_by_kind, generated_at) "
	 "SELECT s.day,"
	 "  (SELECT count(*) FROM short_urls WHERE created_at >= s.lo AND created_at < s.hi),"
	 "  (SELECT count(*) FROM url_hits WHERE hit_at >= s.lo AND hit_at < s.hi),"
	 "  top.code, coalesce(top.n, 0),"
	 "  (SELECT count(*) FROM uploads WHERE created_at >= s.lo AND created_at < s.hi),"
	 "  (SELECT coalesce(sum(size_bytes), 0) FROM uploads"
	 "     WHERE created_at >= s.lo AND created_at < s.hi),"
	 "  (SELECT coalesce(jsonb_object_agg(format, n), '{}') FROM"
	 "     (SELECT format, count(*) AS n FROM uploads"
	 "      WHERE created_at >= s.lo AND created_at < s.hi GROUP BY format) f),"
	 "  (SELECT count(*) FROM jobs WHERE processed_at >= s.lo AND processed_at < s.hi),"
	 "  (SELECT coalesce(jsonb_object_agg(kind, n), '{}') FROM"
	 "     (SELECT kind, count(*) AS n FROM jobs"
	 "      WHERE processed_at >= s.lo AND processed_at < s.hi GROUP BY kind) k),"
	 "  now() "
	 "FROM span s LEFT JOIN LATERAL ("
	 "  SELECT code, count(*) AS n FROM url_hits WHERE hit_at >= s.lo AND hit_at < s.hi"
	 "  GROUP BY code ORDER BY n DESC, code LIMIT 1) top ON true "
	 "ON CONFLICT (day) DO UPDATE SET urls_created = EXCLUDED.urls_created,"
	 "  url_hits = EXCLUDED.url_hits, top_code = EXCLUDED.top_code,"
	 "  top_code_hits = EXCLUDED.top_code_hits, uploads = EXCLUDED.uploads,"
	 "  upload_bytes = EXCLUDED.upload_bytes, upload_formats = EXCLUDED.upload_formats,"
	 "  jobs_done = EXCLUDED.jobs_done, jobs_by_kind = EXCLUDED.jobs_by_kind,"
	 "  generated_at = EXCLUDED.generated_at "
	 "RETURNING row_to_json(r)::text",
	 2},
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

/* Only digits, '-', ':', 'T', 'Z', '.', '+' and spaces: what a timestamp or a date holds.
 * PostgreSQL checks the rest. */
static bool plausible_time(const char *s)
{
	if (!*s || strlen(s) > 40)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789-:TZ.+ ", *s))
			return false;
	return true;
}

int fn_handle(const struct fn_event *event, struct fn_response *resp, struct fn_ctx *ctx)
{
	struct fn_json ev = fn_json_parse(event->json, event->len);
	if (fn_json_type(ev) != FN_JSON_OBJECT)
		return fn_response_error(resp, 400, "the event is not a JSON object");
	struct fn_json time_v = fn_json_get(ev, "time"), day_v = fn_json_path(ev, "detail.day");
	char *when = fn_json_cstr(time_v), *day = fn_json_cstr(day_v);
	int rc;
	if ((fn_json_ok(time_v) && (!when || !plausible_time(when))) ||
	    (fn_json_ok(day_v) && (!day || !plausible_time(day)))) {
		rc = fn_response_error(resp, 400, "\"time\" and \"detail.day\" must be ISO 8601");
	} else {
		const char *params[] = {when, day};
		PGresult *res = ex_db_exec(&db, "daily_report", 2, params);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
			const char *row = PQgetvalue(res, 0, 0);
			fn_log(ctx, "report: %s", row);
			rc = fn_response_write(resp, row, strlen(row));
		} else {
			char err[256];
			ex_result_error(res, err, sizeof(err));
			if (ex_bad_input(res)) /* a day PostgreSQL does not accept */
				rc = fn_response_error(resp, 400, err);
			else
				rc = fn_fail(resp, "daily report: %s", err);
		}
		PQclear(res);
	}
	free(when);
	free(day);
	return rc;
}
