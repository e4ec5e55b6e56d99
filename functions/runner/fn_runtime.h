/*
 * The runner's core: every configured function with its environments (warm ones reused,
 * idle ones stopped after idle_timeout, `provisioned` kept), its limits
 * (reserved_concurrency, the global max_concurrency, on_limit queue | throttle) and the
 * invocations in flight (timeout, START/END/REPORT lines, metrics).  Triggers (HTTP, cron,
 * queue) only build an event and call fn_runtime_invoke(); the callback tells them how it
 * ended.  Single-threaded: everything runs on the runner's event_base, the thread that
 * created the runtime (environments die with the thread that forked them).
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_RUNTIME_H
#define CORRAL_FUNCTIONS_RUNNER_FN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/macros.h"
#include "functions/runner/fn_config.h"
#include "functions/runner/fn_frame.h"
#include "functions/runner/report.h"

struct event_base;
struct evbuffer;
struct fn_runtime;
struct fn_function;
struct fn_call;

enum fn_call_status {
	FN_CALL_OK,             /* the function returned: result holds its answer (rc FN_OK) */
	FN_CALL_FUNCTION_ERROR, /* the function returned FN_ERROR: result->error says why */
	FN_CALL_THROTTLED, /* at its concurrency limit with on_limit = throttle, or queue full */
	FN_CALL_QUEUE_TIMEOUT, /* waited queue_timeout for an environment */
	FN_CALL_TIMEOUT,       /* ran past its timeout: the environment was killed */
	FN_CALL_CRASH,         /* the environment died during the invocation (signal, exit) */
	FN_CALL_INIT_ERROR,    /* load, ABI check or fn_init failed, or init timed out */
	FN_CALL_TOO_LARGE,     /* event over FN_EVENT_MAX */
	FN_CALL_SHUTDOWN,      /* the runner is stopping */
};

/* How an invocation ended, handed to its callback (valid during the call only). */
struct fn_call_done {
	enum fn_call_status status;
	const char *request_id;
	const char *function_name;
	const struct fn_result *result; /* FN_CALL_OK and FN_CALL_FUNCTION_ERROR only */
	const char *error;              /* every status but FN_CALL_OK: why, in words */
	const char *error_type;         /* Lambda's errorType ("Runtime.ExitError", ...) or NULL */
	bool cold;                      /* the invocation started its environment */
	usec_t queue_wait_usec;         /* submit to getting an environment; -1: never got one */
	usec_t duration_usec;           /* event sent to end; 0: never sent */
};

typedef void fn_call_done_fn(const struct fn_call_done *done, void *arg);

struct fn_runtime *fn_runtime_new(struct event_base *base, const struct fn_runner_config *cfg);
/* Starts what runs without a caller: provisioned environments. */
bool fn_runtime_start(struct fn_runtime *rt) WARN_UNUSED;
/*
 * Stops everything: waiting and running invocations end with FN_CALL_SHUTDOWN, every
 * environment gets SHUTDOWN then SIGKILL after shutdown_grace.  done_cb runs once no
 * environment is left (at once if none).
 */
void fn_runtime_stop(struct fn_runtime *rt, void (*done_cb)(void *arg), void *arg);
void fn_runtime_free(struct fn_runtime *rt);

struct fn_function *fn_runtime_find(struct fn_runtime *rt, const char *name);
const struct fn_function_config *fn_function_config(const struct fn_function *f);

/*
 * Invokes f with event (len bytes, need not be NUL-terminated; copied).  request_id NULL:
 * a fresh one.  done(…, arg) is called exactly once, never from inside this call (it is
 * scheduled on the event loop even when the answer is immediate, e.g. throttled), unless
 * fn_call_forget() came first.  Returns the call, for fn_call_forget().
 */
struct fn_call *fn_runtime_invoke(struct fn_function *f, const char *request_id, const char *event,
				  size_t len, fn_call_done_fn *done, void *arg);
/* The caller no longer wants the answer (HTTP client gone): done will not be called.
 * The invocation itself goes on (or leaves the queue). */
void fn_call_forget(struct fn_call *call);
const char *fn_call_request_id(const struct fn_call *call);

/* Prometheus text of the runner's metrics, appended to out. */
void fn_runtime_metrics(struct fn_runtime *rt, struct evbuffer *out);

/* Live environments of a function, by state (tests, /metrics). */
struct fn_function_stats {
	unsigned starting, idle, busy, stopping;
	unsigned waiting; /* invocations in the queue */
};
void fn_function_stats(const struct fn_function *f, struct fn_function_stats *out);

#endif
