/*
 * The runtime's insides, shared by fn_runtime.c (functions, invocations, admission) and
 * fn_envs.c (one environment's life on the event loop).  Not for triggers: they use
 * fn_runtime.h.
 *
 * Every environment is in exactly one list of its function, the list of its state; an
 * invocation is either in its function's FIFO (waiting), bound to an environment
 * (starting for it, or running it), or being finished.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_RUNTIME_INT_H
#define CORRAL_FUNCTIONS_RUNNER_FN_RUNTIME_INT_H

#include <stdbool.h>

#include "common/list.h"
#include "functions/runner/fn_host.h"
#include "functions/runner/fn_metrics.h"
#include "functions/runner/fn_runtime.h"

enum fn_env_state {
	ENV_STARTING, /* forked, fn_init running; READY not yet received */
	ENV_IDLE,     /* warm, waiting for an invocation (idle timer armed) */
	ENV_BUSY,     /* running one invocation (deadline timer armed) */
	ENV_STOPPING, /* told to stop or killed; waiting to reap it */
	ENV_STATES
};

struct fn_env {
	struct list link; /* in fn->envs[state] */
	struct fn_function *fn;
	enum fn_env_state state;
	struct fn_host host;
	struct event *ev_read, *ev_write, *ev_exit, *ev_timer;
	/* the function's stdout/stderr (fn_host_read_output) */
	struct event *ev_output;
	struct fn_call *call; /* the invocation it runs, or starts for */
	bool first_call;      /* the next invocation is the cold one */
	bool lost;            /* its socket closed: waiting for the exit, then reaping */
	int64_t max_rss_kb;   /* last known peak RSS (READY, RESULT) */
	usec_t init_usec;     /* fork to READY */
	pid_t pid;            /* for the log after it is reaped */
	usec_t state_since;
	char error[512]; /* why it failed to start (READY's error) */
};

struct fn_call {
	struct list link;     /* in fn->waiting while queued */
	struct list all_link; /* in rt->calls from submit to finish */
	struct fn_function *fn;
	char request_id[REPORT_ID_SIZE + 64];
	char *event;
	size_t event_len;
	fn_call_done_fn *done;
	void *arg;
	bool forgotten;
	bool cold;
	usec_t init_usec; /* its environment's init, when cold */
	bool queued;
	usec_t submitted_at;
	usec_t assigned_at;   /* got its environment: a warm one, or one started for it */
	usec_t dispatched_at; /* the event went to the environment (after READY when cold) */
	struct fn_env *env;
	struct event *ev_timer; /* queue timeout; or the deferred answer of an early end */
	/* set once the end is known, handed over from the deferred timer */
	enum fn_call_status end_status;
	char end_error[512];
};

struct fn_function {
	struct list link; /* in rt->functions */
	struct fn_runtime *rt;
	const struct fn_function_config *cfg;
	const char *dsn; /* cfg->database_url or the runner's */
	struct list envs[ENV_STATES];
	unsigned n_envs[ENV_STATES];
	struct list waiting; /* FIFO of struct fn_call */
	unsigned n_waiting;
	struct fn_metrics metrics;
};

struct fn_runtime {
	struct event_base *base;
	const struct fn_runner_config *cfg;
	struct list functions;
	struct list calls;  /* every invocation not finished yet */
	unsigned live_envs; /* every function's environments, any state */
	bool stopping;
	void (*stopped_cb)(void *arg);
	void *stopped_arg;
};

/* fn_envs.c */
struct fn_env *fn_env_start(struct fn_function *fn, struct fn_call *call);
/* Hands an invocation to an idle environment. */
void fn_env_dispatch(struct fn_env *env, struct fn_call *call);
/* Stops an idle environment (SHUTDOWN, SIGKILL after the grace). */
void fn_env_stop(struct fn_env *env);
/* Kills any environment at once (runner shutdown with its grace over). */
void fn_env_kill(struct fn_env *env);
/* Kills, reaps (waiting) and frees it, without telling anyone: fn_runtime_free() only,
 * once its invocation (if any) has been answered. */
void fn_env_destroy(struct fn_env *env);
unsigned fn_function_live(const struct fn_function *fn);

/* fn_runtime.c, called by fn_envs.c */
/* The environment is ready (call bound: run it) or finished one (serve the queue). */
void fn_runtime_env_free_for_work(struct fn_env *env);
/* An environment was reaped: capacity is back. */
void fn_runtime_env_gone(struct fn_function *fn);
/* Ends an invocation: START/END/REPORT lines, metrics, the caller's callback. */
void fn_call_finish(struct fn_call *call, enum fn_call_status status,
		    const struct fn_result *result, const char *error, int64_t max_rss_kb);
/* The invocation reached its environment: the START line. */
void fn_call_started(struct fn_call *call);

#endif
