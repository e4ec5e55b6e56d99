/*
 * Function environments, the runner's side: fn_host_spawn() forks a process that loads one
 * function (functions/runner/fn_env.c runs inside it) and talks to it over a socketpair
 * in the frames of functions/runner/fn_frame.h.  One invocation at a time.
 *
 * Two ways to drive an environment:
 *  - event-driven (the runner, with libevent): watch h->fd for reading and call
 *    fn_host_read() then fn_host_next_frame() until NEED_MORE; queue frames with
 *    fn_host_queue_invoke() / fn_host_stop() and call fn_host_flush() (again on EV_WRITE
 *    while it says PENDING).  EOF on h->fd, or h->pidfd becoming readable, means the
 *    environment is gone: fn_host_reap() then fn_host_exit_reason() say why.  The runner
 *    enforces the deadline itself with a timer and fn_host_kill().
 *  - blocking (tests, tools): fn_host_invoke() does all of the above with poll().
 *
 * Ownership: struct fn_host is the caller's; fn_host_close() releases what spawn made and
 * never leaves a zombie.  Reap environments only through fn_host_reap(): a waitpid(-1)
 * elsewhere, or SIGCHLD set to SIG_IGN, would take their exit status away.
 *
 * The environment dies with the thread that spawned it (PR_SET_PDEATHSIG): spawn from the
 * runner's main thread.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_HOST_H
#define CORRAL_FUNCTIONS_RUNNER_FN_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/clock.h"
#include "common/macros.h"
#include "functions/runner/fn_frame.h"

struct fn_host_config {
	const char *so_path;       /* the function's shared object */
	const char *function_name; /* ctx->function_name, CORRAL_FN_NAME */
	const char *dsn;           /* ctx->dsn and DATABASE_URL; NULL: none */
	/* Address space the environment may add to what it inherits at fork (the runner's
	 * own mappings, shared copy-on-write, are not the function's): RLIMIT_AS.  Libraries
	 * the function loads count.  0: no limit. */
	uint32_t memory_limit_mb;
	/* "NAME=value" entries: with DATABASE_URL and CORRAL_FN_NAME, the whole environment
	 * of the process (the runner's own variables are not passed on). */
	char *const *env;
	size_t n_env;
	/* The function's stdout and stderr go to a pipe the caller reads (fn_host_read_output)
	 * rather than straight into the runner's stderr, where a function could forge log
	 * lines or flood it.  Off: they are the runner's stderr (the blocking users). */
	bool capture_output;
};

/* Longest line of a function's output logged; the rest of the line is dropped. */
#define FN_HOST_OUTPUT_LINE_MAX 4096

/*
 * What an environment calls right after the fork, once it has copied what it needs of its
 * fn_host_config: the runner (main.c) frees its configuration there, zeroed, so that the
 * function cannot read the other functions' DATABASE_URLs and variables from the memory it
 * inherited.  Only in the child; none by default (the tests of fn_host).
 */
void fn_host_set_wipe(void (*wipe)(void *arg), void *arg);
void fn_host_wipe_inherited(void);

/*
 * Environments exec path with "--environment" right after the fork (fn_env_exec), so
 * that they start from a fresh memory image: a fork's copy of the runner holds what
 * no wipe reaches (other invocations' events, freed copies of the configuration).
 * corral-fn sets /proc/self/exe; NULL (the default, the tests of fn_host): fork only.
 */
void fn_host_set_exec(const char *path);

struct fn_host {
	pid_t pid;        /* 0 once reaped */
	/* The environment's process group (its pid: it calls setpgid(0, 0) first), so that
	 * a kill reaches what the function forked too.  0 once the group has been killed
	 * after the reap. */
	pid_t pgid;
	int fd;           /* the runner's end: non-blocking, close-on-exec; -1 once closed */
	int pidfd;        /* readable once the process has exited; -1 where unsupported */
	usec_t spawned_at;
	bool ready;       /* READY without error has arrived: fn_init succeeded */
	bool exited;      /* reaped; wait_status holds the waitpid() status */
	int wait_status;
	unsigned invocations; /* INVOKE frames queued so far */
	struct fn_buf in, out; /* received and not yet decoded / queued and not yet written */
	int output_fd;         /* capture_output: the read end of stdout/stderr, else -1 */
	char output_line[FN_HOST_OUTPUT_LINE_MAX]; /* the line being read */
	size_t output_len;
	bool output_cut;       /* the line being read was logged cut: drop the rest */
};

/*
 * Forks an environment for cfg; the process dlopens cfg->so_path, checks its ABI version,
 * runs fn_init and sends READY (with an error if any of that failed).  False only when the
 * process could not be started (err says why); a function that fails to load or
 * initialise is reported by READY.  cfg is not kept.
 */
bool fn_host_spawn(const struct fn_host_config *cfg, struct fn_host *h, char *err,
		   size_t errlen) WARN_UNUSED;

/* ---- event-driven -------------------------------------------------------------------- */

enum fn_host_io {
	FN_HOST_IO_OK,      /* read: took what there was / flush: everything written */
	FN_HOST_IO_PENDING, /* flush: bytes left, wait for the fd to be writable */
	FN_HOST_IO_EOF,     /* read: the environment closed its end (exited or crashed) */
	FN_HOST_IO_ERROR,   /* errno says why; treat as EOF */
};

/* Reads everything available on h->fd into h->in (never blocks). */
enum fn_host_io fn_host_read(struct fn_host *h);
/* Decodes the next frame received (see fn_frame_decode()); the caller clears it. */
enum fn_decode_result fn_host_next_frame(struct fn_host *h, struct fn_frame *out,
					 const char **why);
/* Queues an INVOKE frame in h->out; deadline_usec on CLOCK_MONOTONIC (clock_now_usec()). */
bool fn_host_queue_invoke(struct fn_host *h, const char *request_id, usec_t deadline_usec,
			  const char *event, size_t event_len) WARN_UNUSED;
/* Queues a SHUTDOWN frame and flushes: the environment runs fn_shutdown and exits. */
enum fn_host_io fn_host_stop(struct fn_host *h);
/* Writes what h->out holds, as far as the socket takes it. */
enum fn_host_io fn_host_flush(struct fn_host *h);

/* SIGKILL to the environment's whole process group (timeout, protocol error, shutdown
 * grace over): a sleeper the function forked goes with it.  Reap afterwards; the reap
 * kills the group again, since a function's children outlive a clean exit too. */
void fn_host_kill(struct fn_host *h);
/* Collects the exit status: true once the process is reaped (h->exited, h->wait_status).
 * With wait, blocks until it exits. */
bool fn_host_reap(struct fn_host *h, bool wait);
/* Closes the fds and frees the buffers; a process still running is killed and reaped. */
void fn_host_close(struct fn_host *h);

/*
 * Reads what the function wrote to stdout/stderr (h->output_fd, non-blocking) and logs each
 * line, escaped and cut at FN_HOST_OUTPUT_LINE_MAX:
 *   ... level=info event=fn_log function=NAME request_id=- stream=output msg="..."
 * FN_HOST_IO_EOF once every writer has closed it (the last line is logged then).
 */
enum fn_host_io fn_host_read_output(struct fn_host *h, const char *function_name);

/* Writes a LOG frame to the runner's log (stderr):
 *   ... level=info event=fn_log function=NAME request_id=ID msg="..." */
void fn_host_log(const char *function_name, const struct fn_log *line);

/* "Runtime exited with error: signal: segmentation fault" / "... exit status 3" */
void fn_host_exit_reason(int wait_status, char *buf, size_t len);
/* "Task timed out after 3.00 seconds", Lambda's words. */
void fn_host_timeout_message(usec_t timeout_usec, char *buf, size_t len);

/* ---- blocking ------------------------------------------------------------------------ */

enum fn_outcome {
	FN_OUTCOME_RESULT,     /* fn_handle returned: see result (rc, status, body, error) */
	FN_OUTCOME_INIT_ERROR, /* load, ABI check or fn_init failed; the environment exited */
	FN_OUTCOME_TIMEOUT,    /* init or invocation passed its deadline; environment killed */
	FN_OUTCOME_CRASH,      /* the environment died (signal, exit); see error */
	FN_OUTCOME_PROTOCOL,   /* the environment sent garbage; it was killed */
	FN_OUTCOME_EVENT_TOO_LARGE, /* event over FN_EVENT_MAX: nothing sent, environment untouched */
};

struct fn_invocation {
	enum fn_outcome outcome;
	struct fn_frame result; /* a RESULT frame when outcome is FN_OUTCOME_RESULT */
	char error[512];        /* why, for every other outcome */
	char *logs;             /* LOG messages received meanwhile, one per line; may be NULL */
	size_t logs_len;
};

/* Default time an environment may take from fork to READY (Lambda's init limit). */
#define FN_HOST_INIT_TIMEOUT_USEC (10 * USEC_PER_SEC)

/*
 * Runs one invocation to its end: waits for READY first if the environment is cold (at
 * most FN_HOST_INIT_TIMEOUT_USEC), then sends event and waits up to timeout_usec for the
 * result.  Every outcome but FN_OUTCOME_RESULT and FN_OUTCOME_EVENT_TOO_LARGE leaves the
 * environment dead and reaped: close it and spawn another.  Clear *out with
 * fn_invocation_clear().
 */
enum fn_outcome fn_host_invoke(struct fn_host *h, const char *request_id, usec_t timeout_usec,
			       const char *event, size_t event_len, struct fn_invocation *out);
void fn_invocation_clear(struct fn_invocation *inv);

/*
 * Stops the environment: SHUTDOWN, then up to grace_usec for it to run fn_shutdown and
 * exit, then SIGKILL.  Reaps it; h->wait_status says how it ended.  Logs it sent are
 * dropped.
 */
void fn_host_shutdown(struct fn_host *h, usec_t grace_usec);

#endif
