/* functions/storm/pg_error.c, results.c and output.c: error classes and the summary. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/storm/output.h"
#include "functions/storm/pg_error.h"
#include "functions/storm/results.h"

Test(storm_pg_error, refused_login)
{
	char state[6], msg[256];
	/* libpq 15 with PQERRORS_VERBOSE */
	cr_assert(storm_pg_error_parse(
		"connection to server at \"127.0.0.1\", port 55471 failed: FATAL:  53300: sorry, "
		"too many clients already\nLOCATION:  InitProcess, proc.c:362\n",
		state, msg, sizeof(msg)));
	cr_assert_str_eq(state, "53300");
	cr_assert_str_eq(msg, "FATAL: sorry, too many clients already");

	/* older libpq, no prefix */
	cr_assert(storm_pg_error_parse("FATAL:  28P01: password authentication failed for user "
				       "\"bench\"\n",
				       state, msg, sizeof(msg)));
	cr_assert_str_eq(state, "28P01");
	cr_assert_str_eq(msg, "FATAL: password authentication failed for user \"bench\"");

	/* the first server error of several attempts (two hosts) */
	cr_assert(storm_pg_error_parse(
		"connection to server at \"a\" failed: Connection refused\n"
		"connection to server at \"b\" failed: FATAL:  57P03: the database system is "
		"starting up\n",
		state, msg, sizeof(msg)));
	cr_assert_str_eq(state, "57P03");
	cr_assert_str_eq(msg, "FATAL: the database system is starting up");
}

Test(storm_pg_error, client_side_errors_have_no_sqlstate)
{
	char state[6], msg[256];
	cr_assert_not(storm_pg_error_parse(
		"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs "
		"the server running on that host and accepting TCP/IP connections?\n",
		state, msg, sizeof(msg)));
	cr_assert_not(storm_pg_error_parse("FATAL:  sorry, too many clients already\n", state, msg,
					   sizeof(msg)));
	cr_assert_not(storm_pg_error_parse("", state, msg, sizeof(msg)));
	cr_assert_not(storm_pg_error_parse(":  53300: no severity", state, msg, sizeof(msg)));
}

Test(storm_pg_error, first_line)
{
	char out[32];
	storm_first_line("  \n  first line \t \nsecond\n", out, sizeof(out));
	cr_assert_str_eq(out, "first line");
	storm_first_line("tab\there", out, sizeof(out));
	cr_assert_str_eq(out, "tab here");
	storm_first_line("", out, sizeof(out));
	cr_assert_str_eq(out, "");
	char tiny[8];
	storm_first_line("abcdefghijkl", tiny, sizeof(tiny));
	cr_assert_str_eq(tiny, "abcdefg");
	/* never cuts a UTF-8 sequence in two */
	storm_first_line("abcdef\xC3\xA9xyz", tiny, sizeof(tiny));
	cr_assert_str_eq(tiny, "abcdef");
}

Test(storm_results, classes_and_merge)
{
	struct storm_results *a = storm_results_new(), *b = storm_results_new();
	cr_assert(a && b);
	storm_results_ok(a, 1000, 50);
	storm_results_error(a, "53300", "FATAL: sorry, too many clients already", 200, 30);
	storm_results_error(a, "53300", "FATAL: too many connections for role \"bench\"", 300, 40);
	storm_results_error(b, "53300", "FATAL: earlier one", 100, 10);
	storm_results_error(b, "timeout", "no answer", 5000, 99);
	storm_results_error(b, "timeout", "no answer", 5000, 98);
	storm_results_error(b, "timeout", "no answer", 5000, 97);
	storm_results_error(b, "timeout", "no answer", 5000, 96);
	storm_results_status(b, 200);
	storm_results_status(b, 429);
	storm_results_status(b, 429);
	storm_results_status(b, 9999); /* ignored */
	cr_assert_eq(a->n_classes, 1);
	cr_assert_eq(a->classes[0].count, 2);
	cr_assert_str_eq(a->classes[0].message, "FATAL: sorry, too many clients already");

	storm_results_merge(a, b);
	cr_assert_eq(a->ok, 1);
	cr_assert_eq(a->failed, 7);
	cr_assert_eq(a->latency_error.count, 7);
	cr_assert_eq(a->last_done, 99);
	cr_assert_eq(a->status[429], 2);
	cr_assert_eq(a->status[200], 1);
	storm_results_sort(a);
	cr_assert_str_eq(a->classes[0].key, "timeout");
	cr_assert_eq(a->classes[0].count, 4);
	cr_assert_str_eq(a->classes[1].key, "53300");
	cr_assert_eq(a->classes[1].count, 3);
	/* the first message seen over all threads */
	cr_assert_str_eq(a->classes[1].message, "FATAL: earlier one");
	storm_results_free(a);
	storm_results_free(b);
}

Test(storm_results, too_many_classes)
{
	struct storm_results *r = storm_results_new();
	char key[16];
	for (int i = 0; i < STORM_MAX_CLASSES + 5; i++) {
		snprintf(key, sizeof(key), "K%d", i);
		storm_results_error(r, key, "m", 1, 1);
	}
	storm_results_error(r, "K0", "m", 1, 1);
	cr_assert_eq(r->n_classes, STORM_MAX_CLASSES);
	cr_assert_eq(r->unclassified, 5);
	cr_assert_eq(r->classes[0].count, 2);
	storm_results_free(r);
}

static char *capture_json(const struct storm_summary *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	storm_print_json(f, s);
	fclose(f);
	return buf;
}

Test(storm_output, json_summary)
{
	struct storm_opts o = {.mode = STORM_CONNECT, .dsn = "x", .sql = "select 1", .burst = 3,
			       .threads = 1, .timeout_s = 30, .monitor_interval_s = 0.1,
			       .label = "direct \"run\""};
	struct storm_results *r = storm_results_new();
	r->started = 3;
	storm_results_ok(r, 2000, 10);
	storm_results_error(r, "53300", "FATAL: sorry, too many clients already", 500, 5);
	storm_results_error(r, "connect", "tab\there \xff bad", 500, 5);
	struct storm_summary s = {.opts = &o, .target = "host=127.0.0.1 port=5432", .total = 3,
				  .results = r, .wall = 250000, .peak_in_flight = 3,
				  .have_monitor = true,
				  .monitor = {.baseline = 1, .peak = 25, .after = 0, .samples = 4}};
	char *out = capture_json(&s);
	cr_assert(strstr(out, "{\"label\":\"direct \\\"run\\\"\",\"mode\":\"connect\","
			      "\"target\":\"host=127.0.0.1 port=5432\",\"sql\":\"select 1\","
			      "\"load\":{\"burst\":3},\"threads\":1,\"timeout_s\":30,"
			      "\"invocations\":3,\"started\":3,\"ok\":1,\"failed\":2,"
			      "\"interrupted\":false,\"wall_s\":0.250000,"
			      "\"throughput_per_s\":12.000,\"peak_in_flight\":3,"
			      "\"errors\":[{\"class\":\"53300\",\"count\":1,"
			      "\"message\":\"FATAL: sorry, too many clients already\"},"
			      "{\"class\":\"connect\",\"count\":1,\"message\":\"tab\\u0009here ? bad\"}],"
			      "\"unclassified_errors\":0,\"status_codes\":{},"
			      "\"latency_ms\":{\"count\":1,\"min\":2.000,\"mean\":2.000,"
			      "\"p50\":2.000,\"p90\":2.000,\"p99\":2.000,\"p999\":2.000,"
			      "\"max\":2.000}"),
		  "%s", out);
	cr_assert(strstr(out, ",\"server_backends\":{\"baseline\":1,\"peak\":25,\"after\":0,"
			      "\"samples\":4,\"interval_ms\":100,\"lost\":false,\"error\":null}}\n"),
		  "%s", out);
	free(out);
	storm_results_free(r);
}

Test(storm_output, json_http_and_no_monitor)
{
	struct storm_opts o = {.mode = STORM_HTTP, .url = "http://h/", .rate = 50,
			       .duration_s = 2, .threads = 2, .timeout_s = 5};
	struct storm_results *r = storm_results_new();
	storm_results_status(r, 200);
	storm_results_status(r, 503);
	struct storm_summary s = {.opts = &o, .target = "GET http://h/", .total = 100,
				  .results = r};
	char *out = capture_json(&s);
	cr_assert(strstr(out, "\"label\":null"), "%s", out);
	cr_assert(strstr(out, "\"load\":{\"rate\":50,\"duration_s\":2}"), "%s", out);
	cr_assert(strstr(out, "\"status_codes\":{\"200\":1,\"503\":1}"), "%s", out);
	cr_assert(strstr(out, "\"latency_ms\":{\"count\":0}"), "%s", out);
	cr_assert(strstr(out, "\"connect_ms\":null,\"server_backends\":null}"), "%s", out);
	free(out);
	storm_results_free(r);
}
