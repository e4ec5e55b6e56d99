/*
 * probe: the integration tests' function.  It answers with what a test needs to see
 * (which environment ran it, whether it was the first invocation there) and does on
 * request what a badly behaved function does:
 *
 *   ?sleep_ms=N   sleeps N ms first (timeouts, concurrency)
 *   ?crash=1      dies of SIGSEGV (a crashed environment)
 *   ?fail=1       returns FN_ERROR (a function error)
 *   ?status=N     answers with HTTP status N
 *
 * Any other event (a direct invoke, a queue batch, a scheduled event) is echoed back.
 * Answer: {"pid":123,"invocation":1,"event":<the event>}.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "functions/corral_fn.h"
#include "functions/fn_event.h"

CORRAL_FN_ABI();

static long invocations;

static long query_number(struct fn_json doc, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "queryStringParameters.%s", name);
	char *text = fn_json_cstr(fn_json_path(doc, path));
	long v = text ? atol(text) : 0;
	free(text);
	return v;
}

int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx)
{
	invocations++;
	struct fn_json doc = fn_json_parse(ev->json, ev->len);
	long sleep_ms = query_number(doc, "sleep_ms");
	if (sleep_ms > 0) {
		struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (query_number(doc, "crash"))
		raise(SIGSEGV);
	if (query_number(doc, "fail"))
		return fn_fail(resp, "failed on purpose (invocation %ld)", invocations);
	long status = query_number(doc, "status");
	if (status >= 100 && status <= 599)
		resp->status = (int)status;
	fn_log(ctx, "probe invocation %ld", invocations);
	return fn_response_printf(resp, "{\"pid\":%d,\"invocation\":%ld,\"event\":%.*s}",
				  (int)getpid(), invocations, (int)ev->len, ev->json);
}
