/*
 * One environment's life on the runner's event loop: fork (fn_host_spawn), READY, one
 * invocation at a time, idle, stop, reap.  Frames come in on the socketpair; the exit is
 * seen on the pidfd (or as EOF); one timer serves whatever the state waits for (init
 * deadline, invocation deadline, idle timeout, stop grace).  The invocation an
 * environment was started for, or runs, ends here when the environment fails; a result
 * or READY goes back to fn_runtime.c, which decides what the environment does next.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/log.h"
#include "functions/corral_fn.h"
#include "functions/runner/fn_runtime_int.h"

/* How long a process that closed its socket gets to exit before SIGKILL. */
#define LOST_GRACE_USEC (1 * USEC_PER_SEC)

static const char *const state_names[ENV_STATES] = {"starting", "idle", "busy", "stopping"};

static struct timeval tv_of(usec_t usec)
{
	if (usec < 0)
		usec = 0;
	return (struct timeval){.tv_sec = usec / USEC_PER_SEC, .tv_usec = usec % USEC_PER_SEC};
}

static void arm_timer(struct fn_env *env, usec_t after)
{
	struct timeval tv = tv_of(after);
	evtimer_add(env->ev_timer, &tv);
}

unsigned fn_function_live(const struct fn_function *fn)
{
	unsigned n = 0;
	for (int s = 0; s < ENV_STATES; s++)
		n += fn->n_envs[s];
	return n;
}

static void set_state(struct fn_env *env, enum fn_env_state state)
{
	struct fn_function *fn = env->fn;
	list_del(&env->link);
	fn->n_envs[env->state]--;
	env->state = state;
	fn->n_envs[state]++;
	/* Idle ones are taken from the front: the most recently used is reused first (its
	 * caches are warm) and the others age towards their idle timeout. */
	if (state == ENV_IDLE)
		list_prepend(&fn->envs[state], &env->link);
	else
		list_append(&fn->envs[state], &env->link);
	env->state_since = clock_now_usec();
	evtimer_del(env->ev_timer);
}

static void flush(struct fn_env *env)
{
	if (fn_host_flush(&env->host) == FN_HOST_IO_PENDING)
		event_add(env->ev_write, NULL);
}

/* The function wrote to stdout or stderr: into the log, line by line, escaped. */
static void on_output(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct fn_env *env = arg;
	enum fn_host_io io = fn_host_read_output(&env->host, env->fn->cfg->name);
	if (io == FN_HOST_IO_EOF || io == FN_HOST_IO_ERROR)
		event_del(env->ev_output);
}

/* Unlinks and frees env (fn_host_close kills and reaps a process still running). */
static void env_release(struct fn_env *env)
{
	struct fn_function *fn = env->fn;
	list_del(&env->link);
	fn->n_envs[env->state]--;
	fn->rt->live_envs--;
	event_free(env->ev_read);
	event_free(env->ev_write);
	if (env->ev_exit)
		event_free(env->ev_exit);
	event_free(env->ev_timer);
	if (env->ev_output) {
		event_free(env->ev_output);
		/* what the environment wrote last, if the pipe's end is not seen yet */
		(void)fn_host_read_output(&env->host, env->fn->cfg->name);
	}
	fn_host_close(&env->host);
	free(env);
}

static void env_free(struct fn_env *env)
{
	struct fn_function *fn = env->fn;
	env_release(env);
	fn_runtime_env_gone(fn);
}

void fn_env_destroy(struct fn_env *env)
{
	env_release(env);
}

/* The process is reaped: whatever it was doing ends with the reason it died. */
static void env_reaped(struct fn_env *env)
{
	char reason[256];
	fn_host_exit_reason(env->host.wait_status, reason, sizeof(reason));
	struct fn_call *call = env->call;
	env->call = NULL;
	if (call) {
		enum fn_call_status st = env->host.ready ? FN_CALL_CRASH : FN_CALL_INIT_ERROR;
		fn_call_finish(call, st, NULL, env->error[0] ? env->error : reason,
			       env->max_rss_kb);
	}
	char why[2 * sizeof(reason)];
	if (env->state != ENV_STOPPING || call)
		log_warn("event=env_exit function=%s pid=%d state=%s reason=\"%s\"",
			 env->fn->cfg->name, (int)env->pid, state_names[env->state],
			 log_clean(reason, why, sizeof(why)));
	else
		log_info("event=env_exit function=%s pid=%d lived_ms=%lld", env->fn->cfg->name,
			 (int)env->pid,
			 (long long)((clock_now_usec() - env->host.spawned_at) / 1000));
	env_free(env);
}

/* SIGKILL now; the exit arrives on the pidfd (or is waited for where there is none). */
static void kill_env(struct fn_env *env)
{
	fn_host_kill(&env->host);
	if (env->state != ENV_STOPPING)
		set_state(env, ENV_STOPPING);
	if (env->host.pidfd < 0) {
		(void)fn_host_reap(&env->host, true);
		env_reaped(env);
		return;
	}
	arm_timer(env, LOST_GRACE_USEC); /* only a process stuck in the kernel outlives it */
}

static void protocol_error(struct fn_env *env, const char *why)
{
	char clean[512];
	log_error("event=env_protocol_error function=%s pid=%d why=\"%s\"", env->fn->cfg->name,
		  (int)env->pid, log_clean(why, clean, sizeof(clean)));
	snprintf(env->error, sizeof(env->error), "protocol error: %s", why);
	struct fn_call *call = env->call;
	env->call = NULL;
	if (call)
		fn_call_finish(call, FN_CALL_CRASH, NULL, env->error, env->max_rss_kb);
	kill_env(env);
}

static void on_ready(struct fn_env *env, const struct fn_ready *r)
{
	env->max_rss_kb = r->max_rss_kb;
	if (r->error[0]) {
		/* fn_init failed: the environment exits by itself after READY. */
		snprintf(env->error, sizeof(env->error), "%s", r->error);
		char clean[1024];
		log_warn("event=env_init_failed function=%s pid=%d error=\"%s\"",
			 env->fn->cfg->name, (int)env->pid,
			 log_clean(r->error, clean, sizeof(clean)));
		struct fn_call *call = env->call;
		env->call = NULL;
		set_state(env, ENV_STOPPING);
		arm_timer(env, env->fn->rt->cfg->shutdown_grace_usec);
		if (call)
			fn_call_finish(call, FN_CALL_INIT_ERROR, NULL, env->error, env->max_rss_kb);
		return;
	}
	env->host.ready = true;
	env->init_usec = r->init_usec;
	if (env->call) /* a cold start is one an invocation waited for; provisioned are not */
		fn_metrics_cold_start(&env->fn->metrics, r->init_usec);
	log_info("event=env_ready function=%s pid=%d init_ms=%.2f", env->fn->cfg->name,
		 (int)env->pid, (double)r->init_usec / 1000.0);
	fn_runtime_env_free_for_work(env);
}

static void on_result(struct fn_env *env, const struct fn_result *r)
{
	struct fn_call *call = env->call;
	env->call = NULL;
	env->max_rss_kb = r->max_rss_kb;
	enum fn_call_status st = r->rc == FN_OK ? FN_CALL_OK : FN_CALL_FUNCTION_ERROR;
	fn_call_finish(call, st, r, r->error, r->max_rss_kb);
	fn_runtime_env_free_for_work(env);
}

/* Acts on one frame; false when the environment was given up (killed). */
static bool handle_frame(struct fn_env *env, const struct fn_frame *f)
{
	if (f->type != FN_FRAME_LOG && env->state == ENV_STOPPING)
		return true; /* a READY or RESULT already on its way when a timeout killed it */
	switch (f->type) {
	case FN_FRAME_LOG:
		fn_host_log(env->fn->cfg->name, &f->u.log);
		return true;
	case FN_FRAME_READY:
		if (env->state != ENV_STARTING)
			break;
		on_ready(env, &f->u.ready);
		return true;
	case FN_FRAME_RESULT:
		if (env->state != ENV_BUSY || !env->call ||
		    strcmp(f->u.result.request_id, env->call->request_id) != 0)
			break;
		on_result(env, &f->u.result);
		return true;
	default:
		break;
	}
	char why[96];
	snprintf(why, sizeof(why), "unexpected %s frame while %s", fn_frame_type_name(f->type),
		 state_names[env->state]);
	protocol_error(env, why);
	return false;
}

/* Takes in and acts on what the environment sent; false if it was given up.  *eof says
 * whether its end of the socket is closed. */
static bool drain(struct fn_env *env, bool *eof)
{
	enum fn_host_io io = fn_host_read(&env->host);
	*eof = io == FN_HOST_IO_EOF || io == FN_HOST_IO_ERROR;
	/* Frames that came just before the end still count, but the environment they came
	 * from gets no more work (fn_runtime_env_free_for_work): a RESULT and then a crash
	 * must not hand the next queued invocation to a process that is gone. */
	if (*eof)
		env->lost = true;
	for (;;) {
		struct fn_frame f;
		const char *why = NULL;
		enum fn_decode_result d = fn_host_next_frame(&env->host, &f, &why);
		if (d == FN_DECODE_NEED_MORE)
			return true;
		if (d == FN_DECODE_ERROR) {
			/* The stream cannot be resynchronised: drop what is buffered.  Left there, it
			 * failed again on every later read (the EOF of the killed process keeps the fd
			 * readable), so the runner spun logging protocol errors and never reached
			 * socket_closed() to reap the process (its slot was never given back). */
			fn_buf_free(&env->host.in);
			protocol_error(env, why ? why : "malformed frame");
			return false;
		}
		bool kept = handle_frame(env, &f);
		fn_frame_clear(&f);
		if (!kept)
			return false;
	}
}

/* The socket closed: the process is exiting (or has); reap it, or wait a little. */
static void socket_closed(struct fn_env *env)
{
	event_del(env->ev_read);
	event_del(env->ev_write);
	if (fn_host_reap(&env->host, env->host.pidfd < 0)) {
		env_reaped(env);
		return;
	}
	/* The exit comes on the pidfd; one that closed fd 3 and lives on is killed.  Meanwhile
	 * it is not idle: nobody may be dispatched to it. */
	env->lost = true;
	if (env->state == ENV_IDLE)
		set_state(env, ENV_STOPPING);
	evtimer_del(env->ev_timer);
	arm_timer(env, LOST_GRACE_USEC);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct fn_env *env = arg;
	bool eof;
	if (drain(env, &eof) && eof)
		socket_closed(env);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	flush(arg);
}

static void on_exited(evutil_socket_t fd, short what, void *arg)
{
	struct fn_env *env = arg;
	bool eof;
	/* Frames sent just before the exit (READY with an error, a last LOG) come first. */
	if (!drain(env, &eof))
		return;
	event_del(env->ev_exit);
	if (fn_host_reap(&env->host, false))
		env_reaped(env);
	else
		socket_closed(env);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fn_env *env = arg;
	char msg[128];
	struct fn_call *call = env->call;
	if (env->lost) {
		kill_env(env); /* its socket is closed: only the exit is missing */
		return;
	}
	switch (env->state) {
	case ENV_STARTING:
		snprintf(msg, sizeof(msg), "Init timed out after %.2f seconds",
			 (double)env->fn->rt->cfg->init_timeout_usec / USEC_PER_SEC);
		/* As env_init_failed for an fn_init that returned: the cause is in the log. */
		log_warn("event=env_init_timeout function=%s pid=%d init_timeout_s=%.2f",
			 env->fn->cfg->name, (int)env->pid,
			 (double)env->fn->rt->cfg->init_timeout_usec / USEC_PER_SEC);
		snprintf(env->error, sizeof(env->error), "%s", msg);
		env->call = NULL;
		if (call)
			fn_call_finish(call, FN_CALL_INIT_ERROR, NULL, msg, env->max_rss_kb);
		kill_env(env);
		return;
	case ENV_BUSY:
		fn_host_timeout_message(env->fn->cfg->timeout_usec, msg, sizeof(msg));
		log_warn("event=invocation_timeout function=%s pid=%d request_id=%s",
			 env->fn->cfg->name, (int)env->pid, call ? call->request_id : "-");
		env->call = NULL;
		snprintf(env->error, sizeof(env->error), "%s", msg);
		if (call)
			fn_call_finish(call, FN_CALL_TIMEOUT, NULL, msg, env->max_rss_kb);
		kill_env(env);
		return;
	case ENV_IDLE:
		/* Scale to zero, but never below what is provisioned.  Environments already
		 * stopping are on their way out: counted, idle timers firing together would
		 * stop the provisioned ones too (they were started again once reaped). */
		if (fn_function_live(env->fn) - env->fn->n_envs[ENV_STOPPING] >
		    env->fn->cfg->provisioned) {
			fn_env_stop(env);
			return;
		}
		log_info("event=env_kept function=%s pid=%d reason=provisioned", env->fn->cfg->name,
			 (int)env->pid);
		return;
	case ENV_STOPPING:
	case ENV_STATES:
		kill_env(env);
		return;
	}
}

struct fn_env *fn_env_start(struct fn_function *fn, struct fn_call *call)
{
	struct fn_runtime *rt = fn->rt;
	struct fn_env *env = calloc(1, sizeof(*env));
	if (!env)
		return NULL;
	struct fn_host_config hc = {
		.so_path = fn->cfg->so_path,
		.function_name = fn->cfg->name,
		.dsn = fn->dsn,
		.memory_limit_mb = fn->cfg->memory_mb,
		.env = fn->cfg->env,
		.n_env = fn->cfg->n_env,
		.capture_output = true,
	};
	char err[256];
	if (!fn_host_spawn(&hc, &env->host, err, sizeof(err))) {
		char clean[2 * sizeof(err)];
		log_error("event=env_spawn_failed function=%s error=\"%s\"", fn->cfg->name,
			  log_clean(err, clean, sizeof(clean)));
		free(env);
		return NULL;
	}
	env->fn = fn;
	env->pid = env->host.pid;
	env->ev_read = event_new(rt->base, env->host.fd, EV_READ | EV_PERSIST, on_read, env);
	env->ev_write = event_new(rt->base, env->host.fd, EV_WRITE, on_write, env);
	env->ev_timer = evtimer_new(rt->base, on_timer, env);
	if (env->host.pidfd >= 0)
		env->ev_exit = event_new(rt->base, env->host.pidfd, EV_READ, on_exited, env);
	if (env->host.output_fd >= 0) {
		env->ev_output = event_new(rt->base, env->host.output_fd, EV_READ | EV_PERSIST,
					   on_output, env);
		if (env->ev_output)
			event_add(env->ev_output, NULL);
	}
	if (!env->ev_read || !env->ev_write || !env->ev_timer ||
	    (env->host.pidfd >= 0 && !env->ev_exit)) {
		log_error("event=env_spawn_failed function=%s error=\"out of memory\"",
			  fn->cfg->name);
		if (env->ev_read)
			event_free(env->ev_read);
		if (env->ev_write)
			event_free(env->ev_write);
		if (env->ev_timer)
			event_free(env->ev_timer);
		if (env->ev_exit)
			event_free(env->ev_exit);
		if (env->ev_output)
			event_free(env->ev_output);
		fn_host_close(&env->host);
		free(env);
		return NULL;
	}
	event_add(env->ev_read, NULL);
	if (env->ev_exit)
		event_add(env->ev_exit, NULL);
	env->state = ENV_STARTING;
	list_append(&fn->envs[ENV_STARTING], &env->link);
	fn->n_envs[ENV_STARTING]++;
	rt->live_envs++;
	env->state_since = clock_now_usec();
	/* An environment started ahead of demand (provisioned) serves its first invocation
	 * warm, as Lambda's provisioned concurrency does: nobody waited for its init. */
	env->first_call = call != NULL;
	arm_timer(env, rt->cfg->init_timeout_usec);
	if (call) {
		env->call = call;
		call->env = env;
		call->cold = true;
		call->assigned_at = clock_now_usec();
	}
	log_info("event=env_start function=%s pid=%d", fn->cfg->name, (int)env->pid);
	return env;
}

void fn_env_dispatch(struct fn_env *env, struct fn_call *call)
{
	set_state(env, ENV_BUSY);
	env->call = call;
	call->env = env;
	call->dispatched_at = clock_now_usec();
	if (!call->assigned_at)
		call->assigned_at = call->dispatched_at;
	call->cold = env->first_call;
	call->init_usec = call->cold ? env->init_usec : 0;
	env->first_call = false;
	fn_call_started(call);
	usec_t timeout = env->fn->cfg->timeout_usec;
	if (!fn_host_queue_invoke(&env->host, call->request_id, call->dispatched_at + timeout,
				  call->event, call->event_len)) {
		/* Answered from the loop, as fn_runtime.c's end_soon() does: a warm dispatch runs
		 * inside fn_runtime_invoke(), whose caller must not see its callback before it
		 * has the call (cron and the queue store the returned pointer: they kept a freed
		 * one).  The call is no longer this environment's (it is killed and freed). */
		env->call = NULL;
		call->env = NULL;
		call->end_status = FN_CALL_CRASH;
		snprintf(call->end_error, sizeof(call->end_error),
			 "out of memory sending the event");
		struct timeval now = {0, 0};
		evtimer_add(call->ev_timer, &now);
		kill_env(env);
		return;
	}
	flush(env);
	arm_timer(env, timeout);
}

void fn_env_stop(struct fn_env *env)
{
	if (env->state == ENV_STOPPING)
		return;
	set_state(env, ENV_STOPPING);
	enum fn_host_io io = fn_host_stop(&env->host);
	if (io == FN_HOST_IO_PENDING)
		event_add(env->ev_write, NULL);
	arm_timer(env, env->fn->rt->cfg->shutdown_grace_usec);
}

void fn_env_kill(struct fn_env *env)
{
	struct fn_call *call = env->call;
	env->call = NULL;
	if (call)
		fn_call_finish(call, FN_CALL_SHUTDOWN, NULL, "corral-fn is shutting down",
			       env->max_rss_kb);
	kill_env(env);
}
