/*
 * corral-fn, the function runner, end to end: a real corral-fn per test whose functions
 * reach a real PostgreSQL (database fn, functions/examples/schema.sql) through the test's
 * own corral in transaction pooling mode.  The example functions over HTTP with their
 * effect in the database; cold and warm starts; idle environments stopped; concurrency
 * limits under a burst (queue and throttle); queue_depth and queue_timeout; timeouts,
 * crashes and function errors; async invocations, 404s and /metrics; shutdown.
 *
 * Tests run two at a time beside corral's own: each corral has a pool of 5, and what a
 * test writes to database fn carries its own pid so that it never counts another's rows.
 * tests/functions/probe.c is the function that misbehaves on request.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"
#include "tests/integration/harness_fn.h"

TestSuite(fn_runner, H_SUITE);

/* A 37 x 21 RGB PNG, the whole file (92 bytes): what an object store sends as headBase64. */
#define PNG_37X21_BASE64                                                                                  \
	"iVBORw0KGgoAAAANSUhEUgAAACUAAAAVCAIAAABOhrD5AAAAI0lEQVR42mNgaPhPVzRq36h9o/aN2jdq36h9o/aN2jfE7AMATqeKtFk" \
	"UJbIAAAAASUVORK5CYII="
#define PNG_37X21_BYTES 92

#define PROBE_ENVS "corral_fn_environments{function=\"probe\","

/* Section of an example function: [function.NAME] with so = $CORRAL_BINDIR/functions/NAME.so. */
static char *example(const char *name, const char *more)
{
	return h_printf("[function.%s]\nso = %s/functions/%s.so\n%s", name, h_fn_bindir(), name, more ? more : "");
}

/* Section of a function named name that runs tests/functions/probe.c. */
static char *probe_as(const char *name, const char *more)
{
	return h_printf("[function.%s]\nso = %s/test-functions/probe.so\n%s", name, h_fn_bindir(), more ? more : "");
}

/* The test's corral (pool of 5 to database fn) and a corral-fn whose functions use it. */
static struct h_fn *start_fn(struct h_corral **c, const char *config)
{
	*c = h_fn_corral(5);
	return h_fn_start(*c, config);
}

/* start_fn with the example function name alone, every key its default. */
static struct h_fn *start_example(struct h_corral **c, const char *name)
{
	char *cfg = example(name, NULL);
	struct h_fn *f = start_fn(c, cfg);

	free(cfg);
	return f;
}

static void stop_fn(struct h_fn *f, struct h_corral *c)
{
	h_fn_stop(f);
	h_corral_stop(c);
}

/* The response's X-Amzn-RequestId (fails if missing). */
static char *request_id(const struct h_http *r)
{
	char *id = h_http_header(r, "X-Amzn-RequestId");

	cr_assert(id != NULL && *id, "no X-Amzn-RequestId header in:\n%s", r->head);
	return id;
}

/* probe's answer: the pid of the environment that ran it and its invocation number there. */
static void probe_answer(const struct h_http *r, long long *pid, long long *invocation)
{
	cr_assert_eq(r->status, 200, "probe: status %d, body %s", r->status, r->body);
	*pid = h_json_int(r->body, "pid", -1);
	if (invocation != NULL)
		*invocation = h_json_int(r->body, "invocation", -1);
	cr_assert_gt(*pid, 0, "probe's answer has no pid: %s", r->body);
}

/* GET path on f; fails unless the status is want; returns the answer. */
static struct h_http get_expect(const struct h_fn *f, const char *path, int want)
{
	struct h_http r = h_fn_http(f, "GET", path, NULL, NULL);

	cr_assert_eq(r.status, want, "GET %s: status %d (want %d), body %s", path, r.status, want, r.body);
	return r;
}

/* POST body to Lambda's invoke path of name; fails unless the status is want. */
static struct h_http invoke_expect(const struct h_fn *f, const char *name, const char *headers, const char *body,
				   int want)
{
	char *path = h_printf("/2015-03-31/functions/%s/invocations", name);
	struct h_http r = h_fn_http(f, "POST", path, headers, body);

	cr_assert_eq(r.status, want, "POST %s: status %d (want %d), body %s", path, r.status, want, r.body);
	free(path);
	return r;
}

/* Every character of s is a letter or digit (safe to put in SQL and paths). */
static bool alnum(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* ---------------------------------------------------------------- the examples */

/*
 * functions/README.md's advice, "connect and prepare in fn_init", in a burst: 30
 * concurrent invocations of url_shortener (its statements prepared in fn_init, by each
 * of the environments the burst starts) through corral in transaction pooling with a
 * pool of 5: every one succeeds (before corral carried prepared statements, about half
 * failed with 26000).
 */
Test(fn_runner, prepared_in_fn_init_survives_a_burst, .timeout = 90)
{
	struct h_corral *c;
	struct h_fn *f = start_example(&c, "url_shortener");
	char *json = h_storm(60,
			     "--url http://127.0.0.1:%d/fn/url_shortener --body "
			     "'{\"url\":\"https://example.com/burst\"}' --header "
			     "'Content-Type: application/json' --burst 30 --timeout 30",
			     f->port);
	cr_expect_eq(h_json_int(json, "ok", -1), 30, "storm: %s\ncorral log:\n%s", json,
		     h_corral_log_tail(c));
	free(json);
	stop_fn(f, c);
}

/*
 * url_shortener: POST makes a code (a short_urls row), GET /fn/url_shortener/CODE
 * answers 302 to the URL and counts the hit (hits and a url_hits row), an unknown code
 * is a 404.  Its database connection goes through corral (corral logs the client login
 * with the function's name as application_name).
 */
Test(fn_runner, url_shortener_creates_and_redirects)
{
	struct h_corral *c;
	struct h_fn *f = start_example(&c, "url_shortener");
	char *url = h_printf("https://example.com/it/%d/page?q=1", (int)getpid());
	char *body = h_printf("{\"url\":\"%s\"}", url);
	struct h_http r = h_fn_http(f, "POST", "/fn/url_shortener", "Content-Type: application/json", body);
	char *code, *path, *sql, *location, *want_path;

	cr_assert_eq(r.status, 201, "POST /fn/url_shortener: status %d, body %s", r.status, r.body);
	code = h_json_str(r.body, "code");
	cr_assert(alnum(code), "no code in %s", r.body);
	want_path = h_printf("/fn/url_shortener/%s", code);
	path = h_json_str(r.body, "path");
	cr_expect(path != NULL && strcmp(path, want_path) == 0, "path %s, want %s", path, want_path);
	h_http_free(&r);

	sql = h_printf("select url || ' ' || hits from short_urls where code = '%s'", code);
	{
		char *want = h_printf("%s 0", url);

		h_fn_expect_value(sql, want, "the new short_urls row");
		free(want);
	}

	r = get_expect(f, want_path, 302);
	location = h_http_header(&r, "Location");
	cr_expect(location != NULL && strcmp(location, url) == 0, "Location %s, want %s", location, url);
	free(location);
	h_http_free(&r);
	r = get_expect(f, want_path, 302);
	h_http_free(&r);
	free(sql);
	sql = h_printf("select hits || ' ' || (select count(*) from url_hits h where h.code = s.code) "
		       "from short_urls s where code = '%s'",
		       code);
	h_fn_expect_value(sql, "2 2", "hits and url_hits rows after two GETs");

	r = get_expect(f, "/fn/url_shortener/NoSuchCode0", 404);
	h_http_free(&r);
	cr_expect(h_wait_log(c, "app=\"url_shortener\"", 5), "corral logged no client login of url_shortener:\n%s",
		  h_corral_log_tail(c));

	stop_fn(f, c);
	free(sql);
	free(path);
	free(want_path);
	free(code);
	free(body);
	free(url);
}

/*
 * upload_meta: an S3-style object-created event with a real PNG's first bytes (base64)
 * upserts the object's uploads row with the image's format and dimensions; a record that
 * is no image is reported as failed and stores nothing.
 */
/* One S3 "object created" record of bucket it-photos: key, size and the first bytes. */
static char *s3_record(const char *key, int size, const char *head_base64)
{
	return h_printf("{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"it-photos\"},"
			"\"object\":{\"key\":\"%s\",\"size\":%d,\"headBase64\":\"%s\"}}}",
			key, size, head_base64);
}

Test(fn_runner, upload_meta_stores_image_dimensions)
{
	int pid = (int)getpid();
	char *png_key = h_printf("it/%d/cat.png", pid), *text_key = h_printf("it/%d/notes.txt", pid);
	char *png = s3_record(png_key, PNG_37X21_BYTES, PNG_37X21_BASE64), *text = s3_record(text_key, 5, "aGVsbG8=");
	char *event = h_printf("{\"Records\":[%s,%s]}", png, text);
	struct h_corral *c;
	struct h_fn *f = start_example(&c, "upload_meta");
	struct h_http r = invoke_expect(f, "upload_meta", NULL, event, 200);
	char *sql;

	cr_expect(h_http_header(&r, "X-Amz-Function-Error") == NULL, "function error: %s", r.body);
	cr_expect(strstr(r.body, "not a PNG, JPEG or GIF image") != NULL, "the text record is not failed: %s",
		  r.body);
	sql = h_printf("select format || ' ' || width || 'x' || height || ' ' || size_bytes from uploads "
		       "where bucket = 'it-photos' and key = '%s'",
		       png_key);
	h_fn_expect_value(sql, "png 37x21 92", "the uploads row of the PNG");
	free(sql);
	sql = h_printf("select count(*) from uploads where bucket = 'it-photos' and key = '%s'", text_key);
	cr_expect_eq(h_fn_count(sql), 0, "the text object got an uploads row");
	h_http_free(&r);
	stop_fn(f, c);
	free(sql);
	free(event);
	free(text);
	free(png);
	free(text_key);
	free(png_key);
}

/*
 * queue_worker through the invoke path: a {"Records":[...]} batch of three jobs and one
 * bad message stores three jobs rows and answers a partial batch response naming the bad
 * one; the same batch again stores nothing more (idempotent by messageId).
 */
/* A queue record: messageId it-PID-suffix and body (already a JSON string's contents). */
static char *queue_record(int pid, const char *suffix, const char *body)
{
	return h_printf("{\"messageId\":\"it-%d-%s\",\"body\":\"%s\"}", pid, suffix, body);
}

Test(fn_runner, queue_worker_batch_via_invoke)
{
	int pid = (int)getpid();
	char *records[4] = {
		queue_record(pid, "1", "{\\\"kind\\\":\\\"it_batch\\\",\\\"n\\\":1}"),
		queue_record(pid, "2", "{\\\"kind\\\":\\\"it_batch\\\",\\\"n\\\":2}"),
		queue_record(pid, "3", "{\\\"kind\\\":\\\"it_batch\\\",\\\"n\\\":3}"),
		queue_record(pid, "bad", "not json"),
	};
	char *batch = h_printf("{\"Records\":[%s,%s,%s,%s]}", records[0], records[1], records[2], records[3]);
	struct h_corral *c;
	struct h_fn *f = start_example(&c, "queue_worker");
	char *bad = h_printf("{\"itemIdentifier\":\"it-%d-bad\"}", pid);
	char *sql = h_printf("select count(*) || ' ' || string_agg(distinct kind, ',') || ' ' || "
			     "sum((payload->>'n')::int) from jobs where message_id like 'it-%d-%%'",
			     pid);
	struct h_http r = invoke_expect(f, "queue_worker", NULL, batch, 200);

	cr_expect_eq(h_json_int(r.body, "stored", -1), 3, "stored: %s", r.body);
	cr_expect_eq(h_json_int(r.body, "duplicates", -1), 0, "duplicates: %s", r.body);
	cr_expect(strstr(r.body, bad) != NULL, "the bad message is not in batchItemFailures: %s", r.body);
	h_http_free(&r);
	h_fn_expect_value(sql, "3 it_batch 6", "jobs rows of the batch");

	r = invoke_expect(f, "queue_worker", NULL, batch, 200);
	cr_expect_eq(h_json_int(r.body, "stored", -1), 0, "stored on redelivery: %s", r.body);
	cr_expect_eq(h_json_int(r.body, "duplicates", -1), 3, "duplicates on redelivery: %s", r.body);
	h_http_free(&r);
	h_fn_expect_value(sql, "3 it_batch 6", "jobs rows after the batch came again");

	stop_fn(f, c);
	free(sql);
	free(bad);
	free(batch);
	for (int i = 0; i < 4; i++)
		free(records[i]);
}

/*
 * nightly_report: a scheduled event for 2001-02-04T02:00Z reports on 2001-02-03, a day
 * that only this test writes rows for (one URL with two hits, one job): the daily_reports
 * row and the answer carry those counts.
 */
Test(fn_runner, nightly_report_aggregates_a_day)
{
	struct h_corral *c;
	struct h_fn *f;
	char *code = h_printf("nr%d", (int)getpid());
	char *fixture = h_printf(
		"delete from url_hits where hit_at >= '2001-02-03Z' and hit_at < '2001-02-04Z';"
		"delete from short_urls where created_at >= '2001-02-03Z' and created_at < '2001-02-04Z';"
		"delete from jobs where processed_at >= '2001-02-03Z' and processed_at < '2001-02-04Z';"
		"insert into short_urls (code, url, created_at) values ('%s', 'https://example.com/nr', "
		"'2001-02-03 10:00Z');"
		"insert into url_hits (code, hit_at) values ('%s', '2001-02-03 11:00Z'), ('%s', '2001-02-03 12:00Z');"
		"insert into jobs (message_id, kind, payload, processed_at) values ('%s', 'it_nightly', '{}', "
		"'2001-02-03 13:00Z');",
		code, code, code, code);
	const char *event = "{\"version\":\"0\",\"id\":\"it-nightly\",\"detail-type\":\"Scheduled Event\","
			    "\"source\":\"corral.cron\",\"time\":\"2001-02-04T02:00:00Z\",\"resources\":[],"
			    "\"detail\":{}}";
	struct h_http r;
	char *want, *day;

	h_fn_exec(fixture);
	f = start_example(&c, "nightly_report");
	r = invoke_expect(f, "nightly_report", NULL, event, 200);
	cr_expect(h_http_header(&r, "X-Amz-Function-Error") == NULL, "function error: %s", r.body);
	day = h_json_str(r.body, "day");
	cr_expect(day != NULL && strcmp(day, "2001-02-03") == 0, "the report's day: %s", r.body);
	cr_expect_eq(h_json_int(r.body, "url_hits", -1), 2, "url_hits in the answer: %s", r.body);
	want = h_printf("1 2 %s 2 1 1", code);
	h_fn_expect_value("select urls_created || ' ' || url_hits || ' ' || top_code || ' ' || top_code_hits || ' ' "
			  "|| jobs_done || ' ' || (jobs_by_kind->>'it_nightly') from daily_reports "
			  "where day = '2001-02-03'",
			  want, "the daily_reports row of 2001-02-03");
	h_http_free(&r);
	stop_fn(f, c);
	free(want);
	free(day);
	free(fixture);
	free(code);
}

/* ---------------------------------------------------------------- environments */

/*
 * The first invocation starts an environment (fn_init connects through corral and
 * prepares): its REPORT has Init Duration and Cold: true.  The second reuses it: no
 * Init Duration, Cold: false, and it takes less than the first's init plus run.
 */
Test(fn_runner, cold_then_warm)
{
	struct h_corral *c;
	struct h_fn *f = start_example(&c, "url_shortener");
	char *ids[2], *lines[2];
	double cold_total, warm;

	for (int i = 0; i < 2; i++) {
		char *body = h_printf("{\"url\":\"https://example.com/it/%d/warm/%d\"}", (int)getpid(), i);
		struct h_http r = h_fn_http(f, "POST", "/fn/url_shortener", NULL, body);

		cr_assert_eq(r.status, 201, "POST %d: status %d, body %s", i, r.status, r.body);
		ids[i] = request_id(&r);
		lines[i] = h_fn_report_for(f, ids[i], 5);
		h_http_free(&r);
		free(body);
	}
	cr_expect(strstr(lines[0], "\tCold: true") != NULL, "first REPORT: %s", lines[0]);
	cr_expect_geq(h_report_ms(lines[0], "Init Duration"), 0, "first REPORT without Init Duration: %s", lines[0]);
	cr_expect(strstr(lines[1], "\tCold: false") != NULL, "second REPORT: %s", lines[1]);
	cr_expect(strstr(lines[1], "Init Duration") == NULL, "second REPORT with Init Duration: %s", lines[1]);
	cold_total = h_report_ms(lines[0], "Duration") + h_report_ms(lines[0], "Init Duration");
	warm = h_report_ms(lines[1], "Duration");
	cr_expect_gt(warm, 0, "second REPORT without Duration: %s", lines[1]);
	cr_expect_lt(warm, cold_total, "warm %.2f ms is not faster than cold init + run %.2f ms", warm, cold_total);
	cr_expect_eq(h_fn_children(f, NULL, 0, false), 1, "environments after two sequential invocations");
	cr_expect_eq(h_fn_metric(f, "corral_fn_cold_starts_total{function=\"url_shortener\"}"), 1);
	cr_log_info("cold: init + run %.2f ms; warm: run %.2f ms", cold_total, warm);
	stop_fn(f, c);
	for (int i = 0; i < 2; i++) {
		free(ids[i]);
		free(lines[i]);
	}
}

/*
 * idle_timeout = 1: three concurrent invocations leave three environments; a few seconds
 * later none is left (no child process, not even a zombie) and /metrics counts 0.
 */
Test(fn_runner, idle_environments_scale_to_zero)
{
	struct h_corral *c;
	struct h_fn *f = start_fn(&c, "[function.probe]\nidle_timeout = 1\n");
	char *json = h_storm(30, "--url http://127.0.0.1:%d/fn/probe?sleep_ms=300 --burst 3 --timeout 20", f->port);
	int live = h_fn_children(f, NULL, 0, false);
	const char *const starts[] = {"event=env_start", "function=probe", NULL};
	const char *const exits[] = {"event=env_exit", "function=probe", NULL};

	cr_assert_eq(h_json_int(json, "ok", -1), 3, "storm: %s", json);
	cr_expect(live >= 1 && live <= 3, "%d environments right after the burst", live);
	cr_expect(h_fn_wait_children(f, 0, true, 10), "environments still alive 10 s after idle_timeout = 1: %d",
		  h_fn_children(f, NULL, 0, true));
	cr_expect(h_fn_wait_metric(f, PROBE_ENVS, 0, 5), "/metrics counts %g environments",
		  h_fn_metric(f, PROBE_ENVS));
	cr_expect_eq(h_fn_log_lines(f, exits), h_fn_log_lines(f, starts), "env_exit lines vs env_start lines");
	/* And it scales up again. */
	{
		struct h_http r = get_expect(f, "/fn/probe", 200);
		char *id = request_id(&r), *line = h_fn_report_for(f, id, 5);

		cr_expect(strstr(line, "\tCold: true") != NULL, "after scaling to zero: %s", line);
		free(line);
		free(id);
		h_http_free(&r);
	}
	stop_fn(f, c);
	free(json);
}

/*
 * provisioned = 2: two environments start with corral-fn, before any invocation, and
 * stay however idle they are; the first invocation is warm.  Environments started for a
 * burst beyond them are stopped after idle_timeout, down to the two, not to zero: when
 * the idle timers of all four fire, two environments stop and two are kept (env_kept),
 * none of those is stopped and started again.
 */
Test(fn_runner, provisioned_environments_stay_warm)
{
	struct h_corral *c;
	char *cfg = probe_as("probe", "provisioned = 2\nidle_timeout = 1\n");
	struct h_fn *f = start_fn(&c, cfg);
	const char *const kept[] = {"event=env_kept", "function=probe", NULL};
	const char *const exits[] = {"event=env_exit", "function=probe", NULL};
	int kept_before;

	cr_assert(h_fn_wait_metric(f, PROBE_ENVS "state=\"idle\"", 2, 10), "/metrics: %g idle environments",
		  h_fn_metric(f, PROBE_ENVS "state=\"idle\""));
	cr_expect_eq(h_fn_children(f, NULL, 0, false), 2, "environments before any invocation");
	cr_expect_eq(h_fn_metric(f, "corral_fn_cold_starts_total{function=\"probe\"}"), 0,
		     "provisioned environments are no invocation's cold start");
	{
		struct h_http r = get_expect(f, "/fn/probe", 200);
		char *id = request_id(&r), *line = h_fn_report_for(f, id, 5);

		cr_expect(strstr(line, "\tCold: false") != NULL && strstr(line, "Init Duration") == NULL,
			  "the first invocation should find a provisioned environment: %s", line);
		free(line);
		free(id);
		h_http_free(&r);
	}
	{
		char *json = h_storm(30, "--url http://127.0.0.1:%d/fn/probe?sleep_ms=300 --burst 4 --timeout 20",
				     f->port);

		cr_assert_eq(h_json_int(json, "ok", -1), 4, "storm: %s", json);
		free(json);
	}
	cr_expect_eq(h_fn_metric(f, "corral_fn_cold_starts_total{function=\"probe\"}"), 2,
		     "a burst of 4 on 2 provisioned environments starts 2 more");
	/* Past idle_timeout the two extra ones go, the provisioned two stay.  (Provisioned
	 * environments idle before the burst may have been kept once already.) */
	kept_before = h_fn_log_lines(f, kept);
	cr_expect(h_fn_wait_log_lines(f, kept, kept_before + 2, 10),
		  "%d environments kept 10 s after idle_timeout = 1 (want 2):\n%s",
		  h_fn_log_lines(f, kept) - kept_before, h_fn_log_tail(f));
	cr_expect(h_fn_wait_children(f, 2, true, 10), "%d environments 10 s after idle_timeout = 1 (want 2)",
		  h_fn_children(f, NULL, 0, true));
	cr_expect(h_fn_wait_log_lines(f, exits, 2, 5), "no env_exit lines for the two stopped:\n%s",
		  h_fn_log_tail(f));
	cr_expect_eq(h_fn_log_lines(f, exits), 2,
		     "environments stopped, want only the 2 beyond provisioned:\n%s",
		     h_fn_log_tail(f));
	cr_expect_eq(h_fn_children(f, NULL, 0, true), 2, "provisioned environments are never reaped");
	cr_expect_eq(h_fn_metric(f, PROBE_ENVS "state=\"idle\""), 2, "idle environments on /metrics");
	stop_fn(f, c);
	free(cfg);
}

/*
 * max_concurrency = 2 over two functions: with both environments of "a" idle, an
 * invocation of "b" stops the one idle longest and runs in its place (never more than 2
 * processes); with both of a's busy and b throttling, b gets 429.
 */
Test(fn_runner, max_concurrency_makes_room_from_idle_environments)
{
	struct h_corral *c;
	char *a = probe_as("a", "idle_timeout = 300\n"), *b = probe_as("b", "on_limit = throttle\n");
	char *cfg = h_printf("max_concurrency = 2\n%s%s", a, b);
	struct h_fn *f = start_fn(&c, cfg);
	struct h_fn_sampler *s = h_fn_sampler_start(f);
	int samples = 0, peak;
	char *json = h_storm(30, "--url http://127.0.0.1:%d/fn/a?sleep_ms=200 --burst 2 --timeout 20", f->port);

	cr_assert_eq(h_json_int(json, "ok", -1), 2, "storm on a: %s", json);
	cr_assert(h_fn_wait_metric(f, "corral_fn_environments{function=\"a\",state=\"idle\"", 2, 5),
		  "a's environments are not idle");
	{
		struct h_http r = get_expect(f, "/fn/b", 200);
		char *id = request_id(&r), *line = h_fn_report_for(f, id, 5);

		cr_expect(strstr(line, "\tCold: true") != NULL, "b's first invocation: %s", line);
		free(line);
		free(id);
		h_http_free(&r);
	}
	cr_expect(h_fn_wait_metric(f, "corral_fn_environments{function=\"a\"", 1, 5),
		  "a should be down to one environment: %g", h_fn_metric(f, "corral_fn_environments{function=\"a\""));
	/* Both slots busy (a and b each running one), nothing idle: b throttles. */
	{
		struct h_http_bg *busy_a = h_http_start(f->port, "GET", "/fn/a?sleep_ms=1500", NULL, NULL, 20);
		struct h_http_bg *busy_b = h_http_start(f->port, "GET", "/fn/b?sleep_ms=1500", NULL, NULL, 20);
		struct h_http r, ra, rb;

		cr_assert(h_fn_wait_metric(f, "corral_fn_environments{function=\"b\",state=\"busy\"", 1, 5) &&
				  h_fn_wait_metric(f, "corral_fn_environments{function=\"a\",state=\"busy\"", 1, 5),
			  "a and b should both be busy");
		r = h_fn_http(f, "GET", "/fn/b", NULL, NULL);
		cr_expect_eq(r.status, 429, "b at max_concurrency with nothing idle: %d %s", r.status, r.body);
		ra = h_http_join(busy_a);
		rb = h_http_join(busy_b);
		cr_expect_eq(ra.status, 200, "a: %d %s %s", ra.status, ra.body, ra.error);
		cr_expect_eq(rb.status, 200, "b: %d %s %s", rb.status, rb.body, rb.error);
		h_http_free(&r);
		h_http_free(&ra);
		h_http_free(&rb);
	}
	peak = h_fn_sampler_stop(s, &samples);
	cr_expect_leq(peak, 2, "peak environments with max_concurrency = 2: %d", peak);
	cr_expect_gt(samples, 10, "sampler ran %d times", samples);
	stop_fn(f, c);
	free(json);
	free(cfg);
	free(a);
	free(b);
}

/*
 * max_concurrency = 4 held by four idle environments of "a": a burst of four to "b"
 * (queue) gets all four of a's stopped for it and runs at once.  Before, only the first
 * invocation of the burst stopped one (admission evicts for an empty queue only); the
 * other three queued behind it and got 429 at queue_timeout while three of a's sat idle.
 */
Test(fn_runner, max_concurrency_makes_room_for_a_queued_burst)
{
	struct h_corral *c;
	char *a = probe_as("a", "idle_timeout = 300\n"), *b = probe_as("b", "queue_timeout = 2.5\ntimeout = 10\n");
	char *cfg = h_printf("max_concurrency = 4\n%s%s", a, b);
	struct h_fn *f = start_fn(&c, cfg);
	struct h_fn_sampler *s;
	int samples = 0, peak;
	char *json = h_storm(30, "--url http://127.0.0.1:%d/fn/a?sleep_ms=500 --burst 4 --timeout 20", f->port);

	cr_assert_eq(h_json_int(json, "ok", -1), 4, "storm on a: %s", json);
	cr_assert(h_fn_wait_metric(f, "corral_fn_environments{function=\"a\",state=\"idle\"", 4, 5),
		  "a's four environments are not idle");
	free(json);
	s = h_fn_sampler_start(f);
	json = h_storm(30, "--url http://127.0.0.1:%d/fn/b?sleep_ms=3000 --burst 4 --timeout 20", f->port);
	peak = h_fn_sampler_stop(s, &samples);
	cr_expect_eq(h_json_int(json, "ok", -1), 4, "b's burst with a's four idle (429 = queue_timeout): %s", json);
	cr_expect_eq(h_fn_metric(f, "corral_fn_environments{function=\"a\""), 0, "a's environments left");
	cr_expect_leq(peak, 4, "peak environments with max_concurrency = 4: %d", peak);
	stop_fn(f, c);
	free(json);
	free(cfg);
	free(a);
	free(b);
}

/* A burst of 50 on probe?sleep_ms=300 with reserved_concurrency = 5 and on_limit; the peak
 * number of environments (sampled from /proc) and the storm's JSON. */
static char *burst_of_50(const char *on_limit, int *peak, struct h_fn **fp, struct h_corral **cp)
{
	char *cfg = h_printf("[function.probe]\nreserved_concurrency = 5\non_limit = %s\nqueue_timeout = 30\n", on_limit);
	struct h_fn *f = start_fn(cp, cfg);
	struct h_fn_sampler *s = h_fn_sampler_start(f);
	int samples = 0;
	char *json = h_storm(60, "--url http://127.0.0.1:%d/fn/probe?sleep_ms=300 --burst 50 --timeout 40", f->port);

	*peak = h_fn_sampler_stop(s, &samples);
	cr_assert_gt(samples, 10, "the environment sampler ran %d times", samples);
	cr_assert_eq(h_json_int(json, "started", -1), 50, "storm: %s", json);
	*fp = f;
	free(cfg);
	return json;
}

/*
 * reserved_concurrency = 5, on_limit = queue: all 50 of a burst succeed, and there are
 * never more than 5 environments (sampled, env_start lines, /metrics, cold starts).
 */
Test(fn_runner, burst_queues_within_reserved_concurrency)
{
	struct h_corral *c;
	struct h_fn *f;
	int peak;
	char *json = burst_of_50("queue", &peak, &f, &c);
	const char *const starts[] = {"event=env_start", "function=probe", NULL};

	cr_expect_eq(h_json_int(json, "ok", -1), 50, "storm: %s", json);
	cr_expect_eq(h_json_int(json, "status_codes.200", -1), 50, "storm: %s", json);
	cr_expect(peak >= 1 && peak <= 5, "peak of %d environments (reserved_concurrency = 5)", peak);
	cr_expect_leq(h_fn_log_lines(f, starts), 5, "env_start lines");
	cr_expect_leq(h_fn_metric(f, PROBE_ENVS), 5, "environments on /metrics");
	cr_expect_leq(h_fn_metric(f, "corral_fn_cold_starts_total{function=\"probe\"}"), 5, "cold starts");
	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\",outcome=\"ok\"}"), 50);
	cr_expect_eq(h_fn_metric(f, "corral_fn_throttles_total{function=\"probe\"}"), 0);
	cr_log_info("burst of 50, on_limit = queue: peak %d environments", peak);
	stop_fn(f, c);
	free(json);
}

/*
 * reserved_concurrency = 5, on_limit = throttle: at most 5 of the burst succeed, the rest
 * get 429 at once with the reason; never more than 5 environments.
 */
Test(fn_runner, burst_throttles_past_reserved_concurrency)
{
	struct h_corral *c;
	struct h_fn *f;
	int peak;
	char *json = burst_of_50("throttle", &peak, &f, &c);
	long long ok = h_json_int(json, "ok", -1), throttled = h_json_int(json, "status_codes.429", 0);

	cr_expect(ok >= 1 && ok <= 5, "%lld of 50 succeeded (reserved_concurrency = 5): %s", ok, json);
	cr_expect_eq(h_json_int(json, "status_codes.200", 0), ok, "storm: %s", json);
	cr_expect_eq(throttled, 50 - ok, "429s: %s", json);
	cr_expect(strstr(json, "concurrency limit") != NULL, "the 429s do not say why: %s", json);
	cr_expect(peak >= 1 && peak <= 5, "peak of %d environments (reserved_concurrency = 5)", peak);
	cr_expect_leq(h_fn_metric(f, PROBE_ENVS), 5, "environments on /metrics");
	cr_expect_eq(h_fn_metric(f, "corral_fn_throttles_total{function=\"probe\"}"), throttled);
	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\",outcome=\"throttled\"}"),
		     throttled);
	cr_log_info("burst of 50, on_limit = throttle: %lld ok, %lld throttled, peak %d environments", ok, throttled,
		    peak);
	stop_fn(f, c);
	free(json);
}

/* Waits until f's function name has `want` busy environments (and, if waiting >= 0, that
 * many queued invocations). */
static void wait_busy(const struct h_fn *f, const char *name, int busy, int waiting)
{
	char *b = h_printf("corral_fn_environments{function=\"%s\",state=\"busy\"}", name);
	char *q = h_printf("corral_fn_queue_depth{function=\"%s\"}", name);

	cr_assert(h_fn_wait_metric(f, b, busy, 10), "%s never had %d busy environments", name, busy);
	if (waiting >= 0)
		cr_assert(h_fn_wait_metric(f, q, waiting, 10), "%s never had %d queued invocations", name, waiting);
	free(b);
	free(q);
}

/* GET /fn/NAME?sleep_ms=N on a thread of its own; returns once an environment of name is
 * busy with it. */
static struct h_http_bg *start_busy(const struct h_fn *f, const char *name, int sleep_ms)
{
	char *path = h_printf("/fn/%s?sleep_ms=%d", name, sleep_ms);
	struct h_http_bg *bg = h_http_start(f->port, "GET", path, NULL, NULL, H_HTTP_TIMEOUT);

	wait_busy(f, name, 1, -1);
	free(path);
	return bg;
}

/* Waits for bg; fails (cr_expect) unless it got 200. */
static void join_ok(struct h_http_bg *bg, const char *what)
{
	struct h_http r = h_http_join(bg);

	cr_expect_eq(r.status, 200, "%s: %d %s%s", what, r.status, r.body, r.error);
	h_http_free(&r);
}

/* GET path must be refused with 429 saying why; returns how long the answer took. */
static double expect_refused(const struct h_fn *f, const char *path, const char *why)
{
	struct h_http r = get_expect(f, path, 429);
	double secs = r.secs;

	cr_expect(strstr(r.body, why) != NULL, "the 429 does not say %s: %s", why, r.body);
	h_http_free(&r);
	return secs;
}

/*
 * queue_depth = 1: with the one environment busy and one invocation waiting, the next is
 * refused at once with 429 saying queue_depth.  queue_timeout = 0.5: an invocation that
 * waits that long for the busy environment gets 429 saying queue_timeout.  The ones that
 * were running or waiting succeed.
 */
Test(fn_runner, queue_depth_and_queue_timeout)
{
	struct h_corral *c;
	char *qd = probe_as("qd", "reserved_concurrency = 1\nqueue_depth = 1\nqueue_timeout = 20\ntimeout = 20\n");
	char *qt = probe_as("qt", "reserved_concurrency = 1\nqueue_timeout = 0.5\ntimeout = 20\n");
	char *cfg = h_printf("%s%s", qd, qt);
	struct h_fn *f = start_fn(&c, cfg);
	struct h_http_bg *running, *waiting;
	double secs;

	/* queue_depth */
	running = start_busy(f, "qd", 1500);
	waiting = h_http_start(f->port, "GET", "/fn/qd", NULL, NULL, H_HTTP_TIMEOUT);
	wait_busy(f, "qd", 1, 1);
	secs = expect_refused(f, "/fn/qd", "queue_depth");
	cr_expect_lt(secs, 1.0, "the refusal took %.2f s: it should not wait", secs);
	join_ok(running, "the running invocation");
	join_ok(waiting, "the queued invocation");

	/* queue_timeout */
	running = start_busy(f, "qt", 2500);
	secs = expect_refused(f, "/fn/qt", "queue_timeout");
	cr_expect_geq(secs, 0.45, "refused after %.2f s, before queue_timeout = 0.5", secs);
	join_ok(running, "the running invocation");

	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"qd\",outcome=\"throttled\"}"), 1);
	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"qt\",outcome=\"queue_timeout\"}"), 1);
	stop_fn(f, c);
	free(cfg);
	free(qt);
	free(qd);
}

/*
 * probe runs once (its environment's pid), then path ends that environment: the answer
 * is want_status with want_text in its body, the process is gone (reaped, not even a
 * zombie), and the next invocation runs in a new environment, its first invocation
 * there, which is returned.  *ended gets the ended environment's pid.
 */
static struct h_http environment_replaced(const struct h_fn *f, const char *path, int want_status,
					  const char *want_text, long long *ended)
{
	struct h_http r = get_expect(f, "/fn/probe", 200);
	long long next, invocation;

	probe_answer(&r, ended, NULL);
	h_http_free(&r);
	r = get_expect(f, path, want_status);
	cr_expect(strstr(r.body, want_text) != NULL, "GET %s: %d %s, want %s in it", path, r.status, r.body,
		  want_text);
	h_http_free(&r);
	cr_expect(h_fn_wait_children(f, 0, true, 5), "environment %lld is still there after GET %s", *ended, path);
	r = get_expect(f, "/fn/probe", 200);
	probe_answer(&r, &next, &invocation);
	cr_expect_neq(next, *ended, "the next invocation ran in the environment that GET %s ended", path);
	cr_expect_eq(invocation, 1, "the next invocation is not its environment's first");
	return r;
}

/*
 * timeout = 1 and a 3 s invocation: 504 "Task timed out after 1.00 seconds" (soon after
 * the second, not after 3), the environment is killed, and the next invocation succeeds
 * in a new, cold one.
 */
Test(fn_runner, timeout_kills_the_environment)
{
	struct h_corral *c;
	struct h_fn *f = start_fn(&c, "[function.probe]\ntimeout = 1\n");
	double t0 = h_now();
	long long ended;
	struct h_http r = environment_replaced(f, "/fn/probe?sleep_ms=3000", 504, "Task timed out after 1.00 seconds",
					       &ended);
	char *id = request_id(&r), *line = h_fn_report_for(f, id, 5), *pid;

	cr_expect_lt(h_now() - t0, 2.9, "three invocations took %.2f s: the timeout did not cut the 3 s one short",
		     h_now() - t0);
	cr_expect(strstr(line, "\tCold: true") != NULL, "after the timeout: %s", line);
	pid = h_fn_log_value(f, "event=invocation_timeout", "pid");
	cr_expect(pid != NULL && atoll(pid) == ended, "invocation_timeout logged for pid %s, want %lld", pid, ended);
	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\",outcome=\"timeout\"}"), 1);
	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\",outcome=\"ok\"}"), 2);
	h_http_free(&r);
	stop_fn(f, c);
	free(pid);
	free(line);
	free(id);
}

/*
 * ?crash=1 (SIGSEGV): 502 "signal: segmentation fault" (Runtime.ExitError); the
 * environment is replaced, the next invocation works in another process.
 */
Test(fn_runner, crash_replaces_the_environment)
{
	struct h_corral *c;
	struct h_fn *f = start_fn(&c, "[function.probe]\n");
	long long ended;
	struct h_http r = environment_replaced(f, "/fn/probe?crash=1", 502,
					       "\"errorMessage\":\"Runtime exited with error: signal: segmentation fault\","
					       "\"errorType\":\"Runtime.ExitError\"",
					       &ended);

	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\",outcome=\"crash\"}"), 1);
	cr_expect_eq(h_fn_metric(f, "corral_fn_cold_starts_total{function=\"probe\"}"), 2);
	h_http_free(&r);
	stop_fn(f, c);
}

/*
 * Function errors (502 on /fn, 200 + X-Amz-Function-Error on the invoke path), a status
 * of the function's own, an async invocation (202, then its REPORT), unknown functions
 * (404), /healthz, and /metrics counting exactly what was done.
 */
Test(fn_runner, errors_async_unknown_and_metrics)
{
	struct h_corral *c;
	struct h_fn *f = start_fn(&c, "[function.probe]\n");
	struct h_http r;
	char *header, *id, *line;

	r = get_expect(f, "/fn/probe", 200); /* ok 1 */
	h_http_free(&r);
	r = get_expect(f, "/fn/probe?fail=1", 502); /* function_error 1 */
	cr_expect(strstr(r.body, "failed on purpose") != NULL, "502 body: %s", r.body);
	h_http_free(&r);
	r = invoke_expect(f, "probe", NULL, "{\"queryStringParameters\":{\"fail\":\"1\"}}", 200); /* function_error 2 */
	header = h_http_header(&r, "X-Amz-Function-Error");
	cr_expect(header != NULL && strcmp(header, "Unhandled") == 0, "X-Amz-Function-Error: %s", header);
	cr_expect(strstr(r.body, "\"errorMessage\":\"failed on purpose") != NULL, "invoke body: %s", r.body);
	free(header);
	h_http_free(&r);
	r = invoke_expect(f, "probe", NULL, "{\"hello\":\"world\"}", 200); /* ok 2 */
	cr_expect(h_http_header(&r, "X-Amz-Function-Error") == NULL, "function error: %s", r.body);
	cr_expect(strstr(r.body, "\"event\":{\"hello\":\"world\"}") != NULL, "invoke body: %s", r.body);
	h_http_free(&r);
	r = get_expect(f, "/fn/probe?status=418", 418); /* ok 3 */
	h_http_free(&r);

	r = invoke_expect(f, "probe", "X-Amz-Invocation-Type: Event", "{\"async\":true}", 202); /* ok 4 */
	id = request_id(&r);
	line = h_fn_report_for(f, id, 10);
	cr_expect(strstr(line, "\tStatus:") == NULL, "the async invocation failed: %s", line);
	h_http_free(&r);

	r = get_expect(f, "/fn/nope", 404);
	cr_expect(strstr(r.body, "Function not found: nope") != NULL, "404 body: %s", r.body);
	h_http_free(&r);
	r = invoke_expect(f, "nope", NULL, "{}", 404);
	h_http_free(&r);
	r = get_expect(f, "/healthz", 200);
	h_http_free(&r);

	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\",outcome=\"ok\"}"), 4);
	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\",outcome=\"function_error\"}"),
		     2);
	cr_expect_eq(h_fn_metric(f, "corral_fn_invocations_total{function=\"probe\","), 6, "all outcomes");
	cr_expect_eq(h_fn_metric(f, "corral_fn_cold_starts_total{function=\"probe\"}"), 1);
	cr_expect_eq(h_fn_metric(f, "corral_fn_duration_seconds_count{function=\"probe\"}"), 6);
	cr_expect_eq(h_fn_metric(f, "corral_fn_up"), 1);
	cr_expect_eq(h_fn_report_count(f), 6, "REPORT lines");
	stop_fn(f, c);
	free(line);
	free(id);
}

/*
 * A function that writes bytes that are no frame to the runner's socket (fd 3, as a
 * buggy function writing to a descriptor it does not own would) costs one invocation and
 * its environment: 502 "protocol error", one env_protocol_error line, the process killed
 * and reaped (no zombie: its slot is given back and the next invocation gets a new
 * environment), and corral-fn still stops cleanly.  Before, the undecodable bytes stayed
 * buffered and failed again on every read of the dead process's EOF: the runner spun at
 * 100% CPU writing the error line, never reaped the process, and SIGTERM hung.  The
 * function is built here with cc (tests/functions/ holds only well-formed ones).
 */
Test(fn_runner, garbage_from_an_environment_is_one_protocol_error)
{
	const char *const errors[] = {"event=env_protocol_error", "function=garbage", NULL};
	const char *const exits[] = {"event=env_exit", "function=garbage", NULL};
	char *src = h_path("garbage.c"), *so = h_path("garbage.so"), *cfg;
	struct h_cmd cc;
	struct h_fn *f;
	struct h_http r;

	h_write_file(src, "#include <stdint.h>\n#include <unistd.h>\n"
			  "uint32_t corral_fn_abi_version(void) { return 1; }\n"
			  "int fn_handle(const void *event, void *resp, void *ctx)\n{\n"
			  "\tstatic const unsigned char junk[] = {0, 0, 0, 8, 0xee, 1, 2, 3, 4, 5, 6, 7};\n"
			  "\t(void)event; (void)resp; (void)ctx;\n"
			  "\tif (write(3, junk, sizeof junk) < 0)\n\t\treturn -1;\n"
			  "\tsleep(5);\n\treturn 0;\n}\n");
	cc = h_run(60, "cc -shared -fPIC -o %s %s", so, src);
	cr_assert_eq(cc.status, 0, "cc: %s%s", cc.out, cc.err);
	cfg = h_printf("[function.garbage]\nso = %s\ntimeout = 20\n", so);
	f = h_fn_start(NULL, cfg);
	for (int i = 1; i <= 2; i++) {
		r = get_expect(f, "/fn/garbage", 502);
		cr_expect(strstr(r.body, "protocol error: unknown frame type") != NULL, "502 body: %s", r.body);
		h_http_free(&r);
		cr_expect(h_fn_wait_children(f, 0, true, 5), "the environment is still there (a zombie?)");
		cr_expect(h_fn_wait_metric(f, "corral_fn_environments{function=\"garbage\",", 0, 5),
			  "the environment still counts against the limits");
		/* The exit is logged once the process is reaped: a repeat of the error line (as
		 * on every read of the dead process's EOF before) would be logged before it. */
		cr_expect(h_fn_wait_log_lines(f, exits, i, 5),
			  "no env_exit line for environment %d", i);
		cr_expect_eq(h_fn_log_lines(f, errors), i, "env_protocol_error lines after %d invocations", i);
	}
	h_fn_stop(f); /* exit 0 within 5 s, no environment left */
	h_cmd_free(&cc);
	free(cfg);
	free(so);
	free(src);
}

/*
 * HTTP clients cannot make the runner buffer without bound: a request whose headers pass
 * the limit (64 KB) is refused, not read on (libevent's default has no limit: a header
 * line without an end was buffered and rescanned for as long as the client sent it).
 */
Test(fn_runner, oversized_request_headers_are_refused)
{
	struct h_fn *f = h_fn_start(NULL, "[function.probe]\n");
	size_t n = 1024 * 1024;
	char *big = malloc(n + 16), *hdr;
	struct h_http r;

	memset(big, 'a', n);
	big[n] = '\0';
	hdr = h_printf("X-Big: %s", big);
	r = h_http_join(h_http_start(f->port, "GET", "/healthz", hdr, NULL, 20));
	cr_expect(r.status != 200, "1 MB of headers answered %d (want a refusal or a closed connection)", r.status);
	cr_expect(strstr(r.error, "no complete answer") == NULL, "no answer to 1 MB of headers: %s", r.error);
	h_http_free(&r);
	r = get_expect(f, "/healthz", 200); /* and the runner goes on */
	h_http_free(&r);
	h_fn_stop(f);
	free(hdr);
	free(big);
}

/* ---------------------------------------------------------------- shutdown */

/* SIGTERM with three idle environments alive: exit status 0 within 5 s, no child left. */
Test(fn_runner, sigterm_stops_idle_environments)
{
	struct h_corral *c;
	struct h_fn *f = start_fn(&c, "[function.probe]\n");
	char *json = h_storm(30, "--url http://127.0.0.1:%d/fn/probe?sleep_ms=300 --burst 3 --timeout 20", f->port);

	cr_assert_eq(h_json_int(json, "ok", -1), 3, "storm: %s", json);
	cr_assert_geq(h_fn_children(f, NULL, 0, false), 1, "no environment alive before SIGTERM");
	stop_fn(f, c); /* h_fn_stop: exit 0 within 5 s and none of the environments left */
	cr_expect(h_wait_file(f->log, "event=stopped", 0), "no event=stopped in the log:\n%s", h_fn_log_tail(f));
	free(json);
}

/*
 * SIGTERM while an invocation runs (one environment busy, one idle): corral-fn still
 * exits 0 within 5 s with no child left, and the running invocation is answered 503
 * (FN_CALL_SHUTDOWN, API Gateway's "Service Unavailable"), not dropped or hung.
 */
Test(fn_runner, sigterm_during_an_invocation)
{
	struct h_corral *c;
	struct h_fn *f = start_fn(&c, "[function.probe]\n");
	struct h_http_bg *bg;
	struct h_http r;

	bg = start_busy(f, "probe", 1500);
	r = get_expect(f, "/fn/probe", 200); /* a second environment, idle beside the busy one */
	h_http_free(&r);
	cr_assert_eq(h_fn_children(f, NULL, 0, false), 2, "environments before SIGTERM");
	h_fn_stop(f);
	r = h_http_join(bg);
	cr_expect_eq(r.status, 503, "the running invocation got %d %s%s", r.status, r.body, r.error);
	cr_expect(strstr(r.body, "shutting down") != NULL, "503 body: %s", r.body);
	h_http_free(&r);
	h_corral_stop(c);
}
