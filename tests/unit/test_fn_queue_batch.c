/* functions/runner/fn_queue_batch.c: the queue trigger's SQL, batch events and verdicts. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/fn_event.h"
#include "functions/runner/fn_queue_batch.h"

/* Three claimed messages, ids 41..43, received 1, 2 and 3 times. */
static void three_msgs(struct fn_queue_msg msgs[3])
{
	static const char *const rows[3][FN_QUEUE_CLAIM_COLUMNS] = {
		{"41", "{\"job\":1}", "1", "1710063000000", "1710063000500"},
		{"42", "line1\nline2", "2", "1710063001000", "1710063001500"},
		{"43", "", "3", "1710063002000", "1710063002500"},
	};
	for (int i = 0; i < 3; i++)
		cr_assert(fn_queue_msg_from_row(rows[i], &msgs[i]));
}

static const struct fn_queue_policy policy = {
	.max_receive_count = 3,
	.visibility_usec = 30 * USEC_PER_SEC,
	.release_delay_usec = 500000,
};

/* ---- claim and rows -------------------------------------------------------------------- */

Test(fn_queue_batch, claim_statement)
{
	struct fn_queue_stmt s;
	cr_assert(fn_queue_claim_stmt("jobs", 10, 30 * USEC_PER_SEC, &s));
	cr_assert_eq(s.n_params, 3);
	cr_assert_str_eq(s.params[0], "jobs");
	cr_assert_str_eq(s.params[1], "10");
	cr_assert_str_eq(s.params[2], "30000000");
	cr_assert_str_eq(s.what, "claim");
	cr_assert(strstr(s.sql, "FOR UPDATE SKIP LOCKED"));
	cr_assert(strstr(s.sql, "id = ANY(ARRAY(SELECT"), "the LIMIT subquery runs once");
	cr_assert(strstr(s.sql, "receive_count = receive_count + 1"));
	cr_assert(strstr(s.sql, "coalesce(first_received_at, now())"));
	cr_assert(strstr(s.sql, "ORDER BY id"));
	cr_assert_null(strstr(s.sql, "BEGIN"), "one autocommit statement, no transaction");
	fn_queue_stmt_clear(&s);
	cr_assert_null(s.params[0]);
}

Test(fn_queue_batch, schema_is_idempotent)
{
	for (int i = 0; i < FN_QUEUE_SCHEMA_STATEMENTS; i++) {
		cr_assert(strstr(fn_queue_schema_sql[i], "IF NOT EXISTS"), "%s",
			  fn_queue_schema_sql[i]);
		cr_assert_null(strchr(fn_queue_schema_sql[i], ';'), "one statement each");
	}
	cr_assert(strstr(fn_queue_schema_sql[1], "(queue, visible_at, id)"));
}

Test(fn_queue_batch, row_parsing)
{
	struct fn_queue_msg msgs[3];
	three_msgs(msgs);
	cr_assert_eq(msgs[1].id, 42);
	cr_assert_str_eq(msgs[1].message_id, "42");
	cr_assert_eq(msgs[1].receive_count, 2);
	cr_assert_eq(msgs[1].sent_ms, 1710063001000);
	cr_assert_eq(msgs[1].first_receive_ms, 1710063001500);
	cr_assert_str_eq(msgs[1].body, "line1\nline2");

	struct fn_queue_msg m;
	const char *bad_id[] = {"4x", "b", "1", "0", "0"};
	const char *no_id[] = {"", "b", "1", "0", "0"};
	const char *null_body[] = {"1", NULL, "1", "0", "0"};
	const char *bad_rc[] = {"1", "b", "-1", "0", "0"};
	const char *huge_rc[] = {"1", "b", "99999999999", "0", "0"};
	const char *bad_ms[] = {"1", "b", "1", "1.5", "0"};
	const char *null_ms[] = {"1", "b", "1", "0", NULL};
	cr_assert_not(fn_queue_msg_from_row(bad_id, &m));
	cr_assert_not(fn_queue_msg_from_row(no_id, &m));
	cr_assert_not(fn_queue_msg_from_row(null_body, &m));
	cr_assert_not(fn_queue_msg_from_row(bad_rc, &m));
	cr_assert_not(fn_queue_msg_from_row(huge_rc, &m));
	cr_assert_not(fn_queue_msg_from_row(bad_ms, &m));
	cr_assert_not(fn_queue_msg_from_row(null_ms, &m));
	const char *big[] = {"9223372036854775807", "b", "1", "-5", "0"};
	cr_assert(fn_queue_msg_from_row(big, &m));
	cr_assert_str_eq(m.message_id, "9223372036854775807");
	cr_assert_eq(m.sent_ms, -5);
}

/* ---- the event ------------------------------------------------------------------------- */

static char *attr(struct fn_json rec, const char *path)
{
	char *s = fn_json_cstr(fn_json_path(rec, path));
	cr_assert_not_null(s, "%s should be a string", path);
	return s;
}

static void expect_attr(struct fn_json rec, const char *path, const char *want)
{
	char *s = attr(rec, path);
	cr_assert_str_eq(s, want, "%s", path);
	free(s);
}

Test(fn_queue_batch, event_shape)
{
	struct fn_queue_msg msgs[3];
	three_msgs(msgs);
	size_t len = 0;
	char *ev = fn_queue_batch_event("jobs", msgs, 3, &len);
	cr_assert_not_null(ev);
	cr_assert_eq(strlen(ev), len);
	struct fn_json doc = fn_json_parse(ev, len);
	cr_assert(fn_json_ok(doc), "%s", ev);
	struct fn_json records = fn_json_get(doc, "Records");
	cr_assert_eq(fn_json_count(records), 3);

	struct fn_json rec = fn_json_next(fn_json_first(records));
	expect_attr(rec, "messageId", "42");
	expect_attr(rec, "receiptHandle", "42");
	expect_attr(rec, "body", "line1\nline2");
	expect_attr(rec, "attributes.ApproximateReceiveCount", "2");
	expect_attr(rec, "attributes.SentTimestamp", "1710063001000");
	expect_attr(rec, "attributes.ApproximateFirstReceiveTimestamp", "1710063001500");
	expect_attr(rec, "eventSource", "aws:sqs");
	expect_attr(rec, "eventSourceARN", "arn:corral:queue:local:jobs");
	cr_assert_eq(fn_json_type(fn_json_get(rec, "messageAttributes")), FN_JSON_OBJECT);
	expect_attr(fn_json_first(records), "body", "{\"job\":1}");
	free(ev);

	ev = fn_queue_batch_event("jobs", NULL, 0, &len);
	cr_assert_str_eq(ev, "{\"Records\":[]}");
	free(ev);
}

Test(fn_queue_batch, source_arn_is_cut_to_fit)
{
	char arn[30];
	fn_queue_source_arn("a-very-long-queue-name", arn, sizeof(arn));
	cr_assert_eq(strlen(arn), sizeof(arn) - 1);
	cr_assert(strncmp(arn, "arn:corral:queue:local:", 23) == 0);
}

/* ---- batchItemFailures ------------------------------------------------------------------ */

static enum fn_queue_verdict parse(const char *body, bool failed[3], char *why, size_t whylen)
{
	struct fn_queue_msg msgs[3];
	three_msgs(msgs);
	return fn_queue_parse_response(body, body ? strlen(body) : 0, msgs, 3, failed, why, whylen);
}

static void expect_ok(const char *body)
{
	bool failed[3] = {true, true, true};
	char why[200];
	cr_assert_eq(parse(body, failed, why, sizeof(why)), FN_QUEUE_ALL_OK, "body %s", body);
	for (int i = 0; i < 3; i++)
		cr_assert_not(failed[i], "body %s: message %d", body, i);
}

static void expect_all_failed(const char *body, const char *want_why)
{
	bool failed[3] = {false, false, false};
	char why[200] = "";
	cr_assert_eq(parse(body, failed, why, sizeof(why)), FN_QUEUE_ALL_FAILED, "body %s", body);
	for (int i = 0; i < 3; i++)
		cr_assert(failed[i], "body %s: message %d", body, i);
	cr_assert(strstr(why, want_why), "body %s: why \"%s\" should mention \"%s\"", body, why,
		  want_why);
}

Test(fn_queue_batch, success_responses)
{
	expect_ok(NULL);
	expect_ok("");
	expect_ok(" \n\t");
	expect_ok("null");
	expect_ok("{}");
	expect_ok("{\"stored\":3}");
	expect_ok("{\"batchItemFailures\":null}");
	expect_ok("{\"batchItemFailures\":[]}");
	expect_ok(" { \"batchItemFailures\" : [ ] } ");
}

Test(fn_queue_batch, partial_failures)
{
	bool failed[3];
	char why[200];
	cr_assert_eq(parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"43\"},"
			   "{\"itemIdentifier\":\"41\"}],\"stored\":1}",
			   failed, why, sizeof(why)),
		     FN_QUEUE_SOME_FAILED);
	cr_assert(failed[0]);
	cr_assert_not(failed[1]);
	cr_assert(failed[2]);
	cr_assert(strstr(why, "batchItemFailures"));

	/* the same id twice, an escaped id, and extra members of an item */
	cr_assert_eq(parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"\\u0034\\u0032\","
			   "\"error\":\"x\"},{\"itemIdentifier\":\"42\"}]}",
			   failed, why, sizeof(why)),
		     FN_QUEUE_SOME_FAILED);
	cr_assert_not(failed[0]);
	cr_assert(failed[1]);
	cr_assert_not(failed[2]);

	/* queue_worker's own answer */
	cr_assert_eq(parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"41\"}],\"stored\":2,"
			   "\"duplicates\":0,\"rejected\":[{\"itemIdentifier\":\"41\","
			   "\"error\":\"body is not a JSON object\"}]}",
			   failed, why, sizeof(why)),
		     FN_QUEUE_SOME_FAILED);
	cr_assert(failed[0] && !failed[1] && !failed[2]);
}

Test(fn_queue_batch, malformed_responses_fail_the_batch)
{
	expect_all_failed("{", "not JSON");
	expect_all_failed("OK", "not JSON");
	expect_all_failed("{\"batchItemFailures\":[]} trailing", "not JSON");
	expect_all_failed("[{\"itemIdentifier\":\"41\"}]", "not a JSON object");
	expect_all_failed("\"done\"", "not a JSON object");
	expect_all_failed("{\"batchItemFailures\":\"41\"}", "not an array");
	expect_all_failed("{\"batchItemFailures\":{\"itemIdentifier\":\"41\"}}", "not an array");
	expect_all_failed("{\"batchItemFailures\":[\"41\"]}", "[0] is not an object");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":\"41\"},{}]}",
			  "[1] has no itemIdentifier");
	expect_all_failed("{\"batchItemFailures\":[{\"id\":\"41\"}]}", "no itemIdentifier");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":null}]}",
			  "no itemIdentifier");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":41}]}", "no itemIdentifier");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}",
			  "no itemIdentifier");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":\"44\"}]}", "no message");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":\"41 \"}]}", "no message");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":\"41\\u0000\"}]}",
			  "no message");
	expect_all_failed("{\"batchItemFailures\":[{\"itemIdentifier\":"
			  "\"4111111111111111111111111111111111111111\"}]}",
			  "no message");
}

Test(fn_queue_batch, body_need_not_be_terminated)
{
	struct fn_queue_msg msgs[3];
	three_msgs(msgs);
	const char text[] = "{\"batchItemFailures\":[{\"itemIdentifier\":\"42\"}]}GARBAGE";
	bool failed[3];
	char why[100];
	cr_assert_eq(fn_queue_parse_response(text, strlen(text) - 7, msgs, 3, failed, why,
					     sizeof(why)),
		     FN_QUEUE_SOME_FAILED);
	cr_assert(!failed[0] && failed[1] && !failed[2]);
}

/* ---- verdicts of ended invocations ------------------------------------------------------ */

static enum fn_queue_verdict judge(const struct fn_call_done *done, bool failed[3], char *why,
				   size_t whylen)
{
	struct fn_queue_msg msgs[3];
	three_msgs(msgs);
	return fn_queue_judge(done, msgs, 3, failed, why, whylen);
}

Test(fn_queue_batch, ok_with_partial_failures)
{
	const char body[] = "{\"batchItemFailures\":[{\"itemIdentifier\":\"42\"}]}";
	struct fn_result r = {.rc = 0,
			      .status = 200,
			      .body = body,
			      .body_len = strlen(body),
			      .error = ""};
	struct fn_call_done done = {.status = FN_CALL_OK, .result = &r};
	bool failed[3];
	char why[200];
	cr_assert_eq(judge(&done, failed, why, sizeof(why)), FN_QUEUE_SOME_FAILED);
	cr_assert(!failed[0] && failed[1] && !failed[2]);

	r.body = "";
	r.body_len = 0;
	r.status = 204;
	cr_assert_eq(judge(&done, failed, why, sizeof(why)), FN_QUEUE_ALL_OK);
}

Test(fn_queue_batch, error_statuses_fail_the_batch)
{
	const char body[] = "{\"error\":\"not a queue batch: no Records array\"}";
	struct fn_result r = {.status = 400, .body = body, .body_len = strlen(body), .error = ""};
	struct fn_call_done done = {.status = FN_CALL_OK, .result = &r};
	bool failed[3] = {false, false, false};
	char why[200];
	cr_assert_eq(judge(&done, failed, why, sizeof(why)), FN_QUEUE_ALL_FAILED);
	cr_assert(failed[0] && failed[1] && failed[2]);
	cr_assert_str_eq(why, "the function answered status 400");

	done.result = NULL;
	cr_assert_eq(judge(&done, failed, why, sizeof(why)), FN_QUEUE_ALL_FAILED);

	static const enum fn_call_status failures[] = {FN_CALL_FUNCTION_ERROR, FN_CALL_TIMEOUT,
						       FN_CALL_CRASH, FN_CALL_INIT_ERROR,
						       FN_CALL_TOO_LARGE};
	for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		struct fn_call_done d = {.status = failures[i],
					 .error = "Task timed out after 3.00 seconds"};
		memset(failed, 0, sizeof(failed));
		cr_assert_eq(judge(&d, failed, why, sizeof(why)), FN_QUEUE_ALL_FAILED, "status %d",
			     (int)failures[i]);
		cr_assert(failed[0] && failed[1] && failed[2]);
		cr_assert_str_eq(why, "Task timed out after 3.00 seconds");
	}
}

Test(fn_queue_batch, error_type_and_function_error_text)
{
	struct fn_result r = {.status = 200, .error = "database unavailable"};
	struct fn_call_done done = {.status = FN_CALL_FUNCTION_ERROR,
				    .result = &r,
				    .error = "database unavailable",
				    .error_type = "Runtime.HandlerError"};
	bool failed[3];
	char why[200];
	cr_assert_eq(judge(&done, failed, why, sizeof(why)), FN_QUEUE_ALL_FAILED);
	cr_assert_str_eq(why, "Runtime.HandlerError: database unavailable");

	done.error = NULL; /* falls back on the result's error */
	done.error_type = NULL;
	cr_assert_eq(judge(&done, failed, why, sizeof(why)), FN_QUEUE_ALL_FAILED);
	cr_assert_str_eq(why, "database unavailable");

	done.result = NULL;
	cr_assert_eq(judge(&done, failed, why, sizeof(why)), FN_QUEUE_ALL_FAILED);
	cr_assert_str_eq(why, "invocation failed");
}

Test(fn_queue_batch, undelivered_batches_are_released)
{
	static const enum fn_call_status never_ran[] = {FN_CALL_THROTTLED, FN_CALL_QUEUE_TIMEOUT,
							FN_CALL_SHUTDOWN};
	for (size_t i = 0; i < 3; i++) {
		struct fn_call_done d = {.status = never_ran[i], .error = "Rate Exceeded."};
		bool failed[3];
		char why[200];
		cr_assert_eq(judge(&d, failed, why, sizeof(why)), FN_QUEUE_NOT_DELIVERED);
		cr_assert_str_eq(why, "Rate Exceeded.");
		/* even a message at its last delivery is not dead-lettered for that */
		cr_assert_eq(fn_queue_decide(FN_QUEUE_NOT_DELIVERED, true, 99, &policy),
			     FN_QUEUE_RELEASE);
	}
}

/* ---- actions ------------------------------------------------------------------------------ */

Test(fn_queue_batch, dead_letter_threshold)
{
	cr_assert_eq(fn_queue_decide(FN_QUEUE_ALL_FAILED, true, 1, &policy), FN_QUEUE_RETRY);
	cr_assert_eq(fn_queue_decide(FN_QUEUE_ALL_FAILED, true, 2, &policy), FN_QUEUE_RETRY);
	cr_assert_eq(fn_queue_decide(FN_QUEUE_ALL_FAILED, true, 3, &policy), FN_QUEUE_DEAD_LETTER);
	cr_assert_eq(fn_queue_decide(FN_QUEUE_ALL_FAILED, true, 7, &policy), FN_QUEUE_DEAD_LETTER);
	cr_assert_eq(fn_queue_decide(FN_QUEUE_SOME_FAILED, true, 3, &policy), FN_QUEUE_DEAD_LETTER);
	cr_assert_eq(fn_queue_decide(FN_QUEUE_SOME_FAILED, false, 3, &policy), FN_QUEUE_DELETE);
	cr_assert_eq(fn_queue_decide(FN_QUEUE_ALL_OK, false, 3, &policy), FN_QUEUE_DELETE);

	struct fn_queue_policy once = policy;
	once.max_receive_count = 1;
	cr_assert_eq(fn_queue_decide(FN_QUEUE_ALL_FAILED, true, 1, &once), FN_QUEUE_DEAD_LETTER);
	struct fn_queue_policy never = policy;
	never.max_receive_count = 0;
	cr_assert_eq(fn_queue_decide(FN_QUEUE_ALL_FAILED, true, 1000, &never), FN_QUEUE_RETRY);
}

Test(fn_queue_batch, retry_backoff)
{
	usec_t vis = 30 * USEC_PER_SEC;
	cr_assert_eq(fn_queue_retry_delay(0, vis), USEC_PER_SEC);
	cr_assert_eq(fn_queue_retry_delay(1, vis), USEC_PER_SEC);
	cr_assert_eq(fn_queue_retry_delay(2, vis), 2 * USEC_PER_SEC);
	cr_assert_eq(fn_queue_retry_delay(3, vis), 4 * USEC_PER_SEC);
	cr_assert_eq(fn_queue_retry_delay(5, vis), 16 * USEC_PER_SEC);
	cr_assert_eq(fn_queue_retry_delay(6, vis), vis);
	cr_assert_eq(fn_queue_retry_delay(4000000000u, vis), vis);
	cr_assert_eq(fn_queue_retry_delay(1, 200000), 200000);
	cr_assert_eq(fn_queue_retry_delay(3, 0), 0);
}

Test(fn_queue_batch, action_names)
{
	cr_assert_str_eq(fn_queue_action_name(FN_QUEUE_DELETE), "delete");
	cr_assert_str_eq(fn_queue_action_name(FN_QUEUE_RETRY), "retry");
	cr_assert_str_eq(fn_queue_action_name(FN_QUEUE_DEAD_LETTER), "dead_letter");
	cr_assert_str_eq(fn_queue_action_name(FN_QUEUE_RELEASE), "release");
}

/* ---- acknowledgement statements ------------------------------------------------------ */

Test(fn_queue_batch, ack_statements_by_action)
{
	struct fn_queue_msg msgs[4];
	three_msgs(msgs);
	const char *row[] = {"-7", "b", "1", "0", "0"};
	cr_assert(fn_queue_msg_from_row(row, &msgs[3]));
	enum fn_queue_action actions[4] = {FN_QUEUE_DELETE, FN_QUEUE_RETRY, FN_QUEUE_DEAD_LETTER,
					   FN_QUEUE_RELEASE};
	struct fn_queue_stmt s[FN_QUEUE_ACK_STATEMENTS];
	cr_assert_eq(fn_queue_ack_stmts(msgs, 4, actions, &policy, "boom", s), 3);

	cr_assert_str_eq(s[0].what, "delete");
	cr_assert(strstr(s[0].sql, "DELETE FROM corral_queue"));
	cr_assert_null(strstr(s[0].sql, "dead_letter"));
	cr_assert_eq(s[0].n_params, 2);
	cr_assert_eq(s[0].n_messages, 1);
	cr_assert_str_eq(s[0].params[0], "{41}");
	cr_assert_str_eq(s[0].params[1], "{1}");

	cr_assert_str_eq(s[1].what, "requeue");
	cr_assert(strstr(s[1].sql, "UPDATE corral_queue"));
	cr_assert_eq(s[1].n_params, 4);
	cr_assert_eq(s[1].n_messages, 2);
	cr_assert_str_eq(s[1].params[0], "{42,-7}");
	cr_assert_str_eq(s[1].params[1], "{2,1}");
	cr_assert_str_eq(s[1].params[2], "{2000000,500000}"); /* backoff; release delay */
	cr_assert_str_eq(s[1].params[3], "{0,1}");            /* only the release is uncounted */

	cr_assert_str_eq(s[2].what, "dead_letter");
	cr_assert(strstr(s[2].sql, "INSERT INTO corral_queue_dead_letter"));
	cr_assert(strstr(s[2].sql, "WITH moved AS (DELETE"));
	cr_assert_eq(s[2].n_params, 3);
	cr_assert_eq(s[2].n_messages, 1);
	cr_assert_str_eq(s[2].params[0], "{43}");
	cr_assert_str_eq(s[2].params[1], "{3}");
	cr_assert_str_eq(s[2].params[2], "boom");
	for (int i = 0; i < 3; i++) {
		cr_assert(strstr(s[i].sql, "q.receive_count = a.receive_count"),
			  "every acknowledgement matches the receipt");
		fn_queue_stmt_clear(&s[i]);
	}
}

Test(fn_queue_batch, ack_statements_only_for_present_actions)
{
	struct fn_queue_msg msgs[3];
	three_msgs(msgs);
	enum fn_queue_action all_deleted[3] = {FN_QUEUE_DELETE, FN_QUEUE_DELETE, FN_QUEUE_DELETE};
	struct fn_queue_stmt s[FN_QUEUE_ACK_STATEMENTS];
	cr_assert_eq(fn_queue_ack_stmts(msgs, 3, all_deleted, &policy, NULL, s), 1);
	cr_assert_str_eq(s[0].params[0], "{41,42,43}");
	cr_assert_str_eq(s[0].params[1], "{1,2,3}");
	fn_queue_stmt_clear(&s[0]);

	enum fn_queue_action dead[3] = {FN_QUEUE_DEAD_LETTER, FN_QUEUE_DEAD_LETTER,
					FN_QUEUE_DEAD_LETTER};
	cr_assert_eq(fn_queue_ack_stmts(msgs, 3, dead, &policy, NULL, s), 1);
	cr_assert(strstr(s[0].sql, "corral_queue_dead_letter"));
	cr_assert_str_eq(s[0].params[2], "");
	fn_queue_stmt_clear(&s[0]);

	cr_assert_eq(fn_queue_ack_stmts(msgs, 0, dead, &policy, NULL, s), 0);
}

Test(fn_queue_batch, dead_letter_error_is_valid_text)
{
	struct fn_queue_msg msgs[3];
	three_msgs(msgs);
	enum fn_queue_action dead[3] = {FN_QUEUE_DEAD_LETTER, FN_QUEUE_DELETE, FN_QUEUE_DELETE};
	struct fn_queue_stmt s[FN_QUEUE_ACK_STATEMENTS];
	/* a stray byte, a control character, a surrogate; UTF-8 and tabs stay */
	const char error[] = "bad \xff byte\x01\ttab \xed\xa0\x80 caf\xc3\xa9 \xf0\x9f\x90\x84";
	cr_assert_eq(fn_queue_ack_stmts(msgs, 3, dead, &policy, error, s), 2);
	cr_assert_str_eq(s[1].params[2], "bad ? byte?\ttab ??? caf\xc3\xa9 \xf0\x9f\x90\x84");
	fn_queue_stmt_clear(&s[0]);
	fn_queue_stmt_clear(&s[1]);
}
