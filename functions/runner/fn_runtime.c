/*
 * The runtime: functions, their invocations and where each goes (fn_admit.h), the queue
 * of invocations waiting for an environment, and the end of every invocation (Lambda's
 * START / END / REPORT lines, metrics, the trigger's callback).  Environments themselves
 * live in fn_envs.c.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "functions/runner/fn_admit.h"
#include "functions/runner/fn_runtime_int.h"

static struct timeval tv_of(usec_t usec)
{
	if (usec < 0)
		usec = 0;
	return (struct timeval){.tv_sec = usec / USEC_PER_SEC, .tv_usec = usec % USEC_PER_SEC};
}

/* ---- lines and callbacks ------------------------------------------------------------ */

static void print_line(const struct fn_runtime *rt, const char *line)
{
	if (!rt->cfg->log_reports)
		return;
	fputs(line, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

void fn_call_started(struct fn_call *call)
{
	char line[256];
	report_start_line(line, sizeof(line), call->request_id);
	print_line(call->fn->rt, line);
}

static void report(const struct fn_call *call, const struct fn_call_done *d,
		   const struct fn_result *result, int64_t max_rss_kb)
{
	const struct fn_function *fn = call->fn;
	char line[1024];
	report_end_line(line, sizeof(line), call->request_id);
	print_line(fn->rt, line);
	struct report_invocation inv = {
		.duration_us = result ? result->duration_usec : d->duration_usec,
		.memory_size_mb = fn->cfg->memory_mb,
		.max_memory_kb = max_rss_kb,
		.cold = d->cold,
		.init_us = !d->cold ? 0 : result ? result->init_usec : call->init_usec,
		.queue_wait_us = d->queue_wait_usec,
	};
	if (d->status == FN_CALL_TIMEOUT) {
		inv.status = "timeout";
	} else if (d->status == FN_CALL_CRASH || d->status == FN_CALL_SHUTDOWN) {
		inv.status = "error";
		inv.error_type = d->error_type;
	}
	report_report_line(line, sizeof(line), call->request_id, &inv);
	print_line(fn->rt, line);
}

static const char *error_type_of(enum fn_call_status st)
{
	switch (st) {
	case FN_CALL_FUNCTION_ERROR:
		return "Function.Error";
	case FN_CALL_CRASH:
		return "Runtime.ExitError";
	case FN_CALL_INIT_ERROR:
		return "Runtime.InitError";
	case FN_CALL_TIMEOUT:
		return "Sandbox.Timedout";
	case FN_CALL_THROTTLED:
	case FN_CALL_QUEUE_TIMEOUT:
		return "TooManyRequestsException";
	case FN_CALL_TOO_LARGE:
		return "RequestTooLargeException";
	case FN_CALL_SHUTDOWN:
		return "Runtime.Shutdown";
	case FN_CALL_OK:
		break;
	}
	return NULL;
}

static void call_free(struct fn_call *call)
{
	list_del(&call->all_link);
	if (call->queued) {
		list_del(&call->link);
		call->fn->n_waiting--;
	}
	event_free(call->ev_timer);
	free(call->event);
	free(call);
}

void fn_call_finish(struct fn_call *call, enum fn_call_status status,
		    const struct fn_result *result, const char *error, int64_t max_rss_kb)
{
	usec_t now = clock_now_usec();
	bool ran = call->dispatched_at > 0;
	struct fn_call_done d = {
		.status = status,
		.request_id = call->request_id,
		.function_name = call->fn->cfg->name,
		.result = result,
		.error = status == FN_CALL_OK ? NULL : (error && error[0] ? error : "unknown error"),
		.error_type = error_type_of(status),
		.cold = call->cold,
		.queue_wait_usec = call->assigned_at ? call->assigned_at - call->submitted_at : -1,
		.duration_usec = ran ? now - call->dispatched_at : 0,
	};
	if (ran)
		report(call, &d, result, max_rss_kb);
	fn_metrics_record(&call->fn->metrics, &d);
	if (!call->forgotten && call->done)
		call->done(&d, call->arg);
	call_free(call);
}

/* ---- waiting -------------------------------------------------------------------------- */

static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fn_call *call = arg;
	if (call->queued) {
		char why[160];
		snprintf(why, sizeof(why),
			 "waited %.2f seconds for an environment of %s (queue_timeout)",
			 (double)call->fn->cfg->queue_timeout_usec / USEC_PER_SEC, call->fn->cfg->name);
		fn_call_finish(call, FN_CALL_QUEUE_TIMEOUT, NULL, why, 0);
		return;
	}
	fn_call_finish(call, call->end_status, NULL, call->end_error, 0);
}

/* Ends a call from the event loop, so the caller never sees its callback run inside
 * fn_runtime_invoke(). */
static void end_soon(struct fn_call *call, enum fn_call_status status, const char *error)
{
	call->end_status = status;
	snprintf(call->end_error, sizeof(call->end_error), "%s", error);
	struct timeval now = {0, 0};
	evtimer_add(call->ev_timer, &now);
}

static void enqueue(struct fn_call *call)
{
	struct fn_function *fn = call->fn;
	list_append(&fn->waiting, &call->link);
	fn->n_waiting++;
	call->queued = true;
	struct timeval tv = tv_of(fn->cfg->queue_timeout_usec);
	evtimer_add(call->ev_timer, &tv);
}

static struct fn_call *dequeue(struct fn_function *fn)
{
	struct list *first = list_first(&fn->waiting);
	if (!first)
		return NULL;
	struct fn_call *call = list_entry(first, struct fn_call, link);
	list_del(&call->link);
	fn->n_waiting--;
	call->queued = false;
	evtimer_del(call->ev_timer);
	return call;
}

static unsigned idle_elsewhere(const struct fn_runtime *rt, const struct fn_function *except)
{
	unsigned n = 0;
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next) {
		const struct fn_function *f = list_entry(it, struct fn_function, link);
		if (f != except)
			n += f->n_envs[ENV_IDLE];
	}
	return n;
}

static struct fn_admit_counts counts_of(const struct fn_function *fn)
{
	return (struct fn_admit_counts){
		.idle = fn->n_envs[ENV_IDLE],
		.live = fn_function_live(fn),
		.waiting = fn->n_waiting,
		.global_live = fn->rt->live_envs,
		.idle_elsewhere = idle_elsewhere(fn->rt, fn),
	};
}

static bool may_start(const struct fn_function *fn)
{
	struct fn_admit_counts c = counts_of(fn);
	return fn_admit_may_start(fn->cfg, fn->rt->cfg->max_concurrency, &c);
}

static void start_failed(struct fn_call *call)
{
	char why[160];
	snprintf(why, sizeof(why), "could not start an environment for %s (see the runner's log)",
		 call->fn->cfg->name);
	end_soon(call, FN_CALL_INIT_ERROR, why);
}

/* Starts environments for queued invocations while the limits allow. */
static void serve_queue(struct fn_function *fn)
{
	while (fn->n_waiting > 0 && !fn->rt->stopping) {
		if (fn->n_envs[ENV_IDLE] > 0) {
			struct fn_env *env = list_entry(list_first(&fn->envs[ENV_IDLE]), struct fn_env, link);
			fn_env_dispatch(env, dequeue(fn));
			continue;
		}
		if (!may_start(fn))
			return;
		struct fn_call *call = dequeue(fn);
		if (!fn_env_start(fn, call))
			start_failed(call);
	}
}

/* Keeps `provisioned` environments alive (started without an invocation). */
static void keep_provisioned(struct fn_function *fn)
{
	while (!fn->rt->stopping && fn_function_live(fn) < fn->cfg->provisioned && may_start(fn)) {
		if (!fn_env_start(fn, NULL))
			return;
	}
}

/* The idle environment that has waited longest, of any function but except. */
static struct fn_env *oldest_idle_elsewhere(struct fn_runtime *rt, const struct fn_function *except)
{
	struct fn_env *oldest = NULL;
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next) {
		struct fn_function *f = list_entry(it, struct fn_function, link);
		struct list *last = f == except ? NULL : list_last(&f->envs[ENV_IDLE]);
		if (!last)
			continue;
		struct fn_env *env = list_entry(last, struct fn_env, link);
		if (!oldest || env->state_since < oldest->state_since)
			oldest = env;
	}
	return oldest;
}

/*
 * A function whose queued invocations wait only for the global limit (its own would let
 * it start one).  Idle environments of other functions are stopped for it.
 */
static struct fn_function *starved_by_global_limit(struct fn_runtime *rt)
{
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next) {
		struct fn_function *f = list_entry(it, struct fn_function, link);
		if (f->n_waiting == 0 || f->n_envs[ENV_IDLE] > 0)
			continue;
		unsigned reserved = f->cfg->reserved_concurrency;
		if (reserved == 0 || fn_function_live(f) < reserved)
			return f;
	}
	return NULL;
}

/*
 * At the global limit, idle environments of other functions are stopped for the queued
 * invocations of a function held back only by that limit: one per invocation waiting
 * (within its reserved_concurrency), less the environments already stopping (each frees
 * a slot once reaped, and fn_runtime_env_gone() starts one of them in it).  Admission
 * said FN_ADMIT_EVICT for the first invocation only; those queued behind it joined the
 * FIFO without stopping anything, and would wait for the one environment started (or
 * for queue_timeout: 429) while idle environments elsewhere sat out their idle_timeout.
 * One mechanism for every moment room may be needed: an invocation queued (or admitted
 * as FN_ADMIT_EVICT), an environment going idle, one reaped.
 */
static void make_room(struct fn_runtime *rt)
{
	if (rt->stopping || rt->cfg->max_concurrency == 0 || rt->live_envs < rt->cfg->max_concurrency)
		return;
	struct fn_function *starved = starved_by_global_limit(rt);
	if (!starved)
		return;
	unsigned want = starved->n_waiting;
	unsigned reserved = starved->cfg->reserved_concurrency;
	if (reserved > 0 && reserved - fn_function_live(starved) < want)
		want = reserved - fn_function_live(starved); /* > 0: starved_by_global_limit() */
	unsigned stopping = 0;
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next)
		stopping += list_entry(it, struct fn_function, link)->n_envs[ENV_STOPPING];
	while (stopping < want) {
		struct fn_env *victim = oldest_idle_elsewhere(rt, starved);
		if (!victim)
			return;
		fn_env_stop(victim);
		stopping++;
	}
}

void fn_runtime_env_free_for_work(struct fn_env *env)
{
	struct fn_function *fn = env->fn;
	struct fn_runtime *rt = fn->rt;
	struct fn_call *call = env->call;
	if (env->lost)
		return; /* its socket closed: it is reaped next, and a call it holds ends then */
	if (call) { /* it was started for this one */
		env->call = NULL;
		fn_env_dispatch(env, call);
		return;
	}
	if (rt->stopping) {
		fn_env_stop(env);
		return;
	}
	if (fn->n_waiting > 0) {
		fn_env_dispatch(env, dequeue(fn));
		return;
	}
	if (env->state != ENV_IDLE) {
		list_del(&env->link);
		fn->n_envs[env->state]--;
		env->state = ENV_IDLE;
		fn->n_envs[ENV_IDLE]++;
		list_prepend(&fn->envs[ENV_IDLE], &env->link);
		env->state_since = clock_now_usec();
	}
	evtimer_del(env->ev_timer);
	struct timeval tv = tv_of(fn->cfg->idle_timeout_usec);
	evtimer_add(env->ev_timer, &tv);
	make_room(rt); /* another function may be waiting for this very slot */
}

void fn_runtime_env_gone(struct fn_function *fn)
{
	struct fn_runtime *rt = fn->rt;
	if (rt->stopping) {
		if (rt->live_envs == 0 && rt->stopped_cb) {
			void (*cb)(void *) = rt->stopped_cb;
			rt->stopped_cb = NULL;
			cb(rt->stopped_arg);
		}
		return;
	}
	/* Its own queue first, then any function the global limit held back. */
	serve_queue(fn);
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next)
		serve_queue(list_entry(it, struct fn_function, link));
	keep_provisioned(fn);
	make_room(rt); /* still held back by the global limit: the next idle one elsewhere */
}

/* ---- the API ------------------------------------------------------------------------ */

struct fn_call *fn_runtime_invoke(struct fn_function *fn, const char *request_id,
				  const char *event, size_t len, fn_call_done_fn *done, void *arg)
{
	struct fn_runtime *rt = fn->rt;
	struct fn_call *call = calloc(1, sizeof(*call));
	if (!call)
		return NULL;
	list_init(&call->link);
	list_append(&rt->calls, &call->all_link);
	call->fn = fn;
	call->done = done;
	call->arg = arg;
	call->submitted_at = clock_now_usec();
	call->ev_timer = evtimer_new(rt->base, on_call_timer, call);
	if (request_id)
		snprintf(call->request_id, sizeof(call->request_id), "%s", request_id);
	else if (!report_request_id(call->request_id))
		snprintf(call->request_id, sizeof(call->request_id), "%016llx",
			 (unsigned long long)call->submitted_at);
	bool too_large = len > FN_EVENT_MAX;
	call->event = malloc(too_large ? 1 : len + 1);
	if (!call->ev_timer || !call->event) {
		list_del(&call->all_link);
		if (call->ev_timer)
			event_free(call->ev_timer);
		free(call->event);
		free(call);
		return NULL;
	}
	call->event_len = too_large ? 0 : len;
	if (!too_large)
		memcpy(call->event, event, len);
	call->event[call->event_len] = '\0';

	char why[200];
	if (rt->stopping) {
		end_soon(call, FN_CALL_SHUTDOWN, "corral-fn is shutting down");
		return call;
	}
	if (too_large) {
		snprintf(why, sizeof(why), "event of %zu bytes is over the %u byte limit", len,
			 FN_EVENT_MAX);
		end_soon(call, FN_CALL_TOO_LARGE, why);
		return call;
	}
	struct fn_admit_counts c = counts_of(fn);
	enum fn_admit a = fn_admit_decide(fn->cfg, rt->cfg->max_concurrency, &c);
	switch (a) {
	case FN_ADMIT_WARM:
		fn_env_dispatch(list_entry(list_first(&fn->envs[ENV_IDLE]), struct fn_env, link), call);
		break;
	case FN_ADMIT_COLD:
		if (!fn_env_start(fn, call))
			start_failed(call);
		break;
	case FN_ADMIT_EVICT:
		enqueue(call);
		make_room(rt);
		break;
	case FN_ADMIT_QUEUE:
		enqueue(call);
		serve_queue(fn);
		make_room(rt);
		break;
	case FN_ADMIT_THROTTLE:
		snprintf(why, sizeof(why),
			 "Rate Exceeded: %s is at its concurrency limit (%u environments)",
			 fn->cfg->name, fn_function_live(fn));
		end_soon(call, FN_CALL_THROTTLED, why);
		break;
	case FN_ADMIT_QUEUE_FULL:
		snprintf(why, sizeof(why),
			 "Rate Exceeded: %u invocations of %s are queued already (queue_depth)",
			 fn->n_waiting, fn->cfg->name);
		end_soon(call, FN_CALL_THROTTLED, why);
		break;
	}
	return call;
}

void fn_call_forget(struct fn_call *call)
{
	call->forgotten = true;
}

const char *fn_call_request_id(const struct fn_call *call)
{
	return call->request_id;
}

struct fn_runtime *fn_runtime_new(struct event_base *base, const struct fn_runner_config *cfg)
{
	struct fn_runtime *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return NULL;
	rt->base = base;
	rt->cfg = cfg;
	list_init(&rt->functions);
	list_init(&rt->calls);
	for (size_t i = 0; i < cfg->n_functions; i++) {
		struct fn_function *fn = calloc(1, sizeof(*fn));
		if (!fn) {
			fn_runtime_free(rt);
			return NULL;
		}
		fn->rt = rt;
		fn->cfg = &cfg->functions[i];
		fn->dsn = fn->cfg->database_url ? fn->cfg->database_url : cfg->database_url;
		for (int s = 0; s < ENV_STATES; s++)
			list_init(&fn->envs[s]);
		list_init(&fn->waiting);
		list_append(&rt->functions, &fn->link);
	}
	return rt;
}

bool fn_runtime_start(struct fn_runtime *rt)
{
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next) {
		struct fn_function *fn = list_entry(it, struct fn_function, link);
		keep_provisioned(fn);
		if (fn_function_live(fn) < fn->cfg->provisioned) {
			log_error("event=provision_failed function=%s wanted=%u live=%u",
				  fn->cfg->name, fn->cfg->provisioned, fn_function_live(fn));
			return false;
		}
	}
	return true;
}

void fn_runtime_stop(struct fn_runtime *rt, void (*done_cb)(void *arg), void *arg)
{
	rt->stopping = true;
	rt->stopped_cb = done_cb;
	rt->stopped_arg = arg;
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next) {
		struct fn_function *fn = list_entry(it, struct fn_function, link);
		struct fn_call *call;
		while ((call = dequeue(fn)))
			fn_call_finish(call, FN_CALL_SHUTDOWN, NULL, "corral-fn is shutting down", 0);
		struct list *e, *tmp;
		list_for_each_safe(e, tmp, &fn->envs[ENV_IDLE])
			fn_env_stop(list_entry(e, struct fn_env, link));
		list_for_each_safe(e, tmp, &fn->envs[ENV_BUSY])
			fn_env_kill(list_entry(e, struct fn_env, link));
		list_for_each_safe(e, tmp, &fn->envs[ENV_STARTING])
			fn_env_kill(list_entry(e, struct fn_env, link));
	}
	if (rt->live_envs == 0 && rt->stopped_cb) {
		rt->stopped_cb = NULL;
		done_cb(arg);
	}
}

void fn_runtime_free(struct fn_runtime *rt)
{
	if (!rt)
		return;
	struct list *it, *tmp;
	/* Answers still pending (a deferred refusal, a stop that was not waited for) are
	 * given now, so no caller is left without one. */
	while ((it = list_first(&rt->calls))) {
		struct fn_call *call = list_entry(it, struct fn_call, all_link);
		if (call->env)
			call->env->call = NULL;
		fn_call_finish(call, FN_CALL_SHUTDOWN, NULL, "corral-fn is shutting down", 0);
	}
	list_for_each_safe(it, tmp, &rt->functions) {
		struct fn_function *fn = list_entry(it, struct fn_function, link);
		/* Whatever is still alive goes now (a stop that was not waited for). */
		rt->stopping = true;
		rt->stopped_cb = NULL;
		for (int s = 0; s < ENV_STATES; s++) {
			struct list *e, *etmp;
			list_for_each_safe(e, etmp, &fn->envs[s])
				fn_env_destroy(list_entry(e, struct fn_env, link));
		}
		struct fn_call *call;
		while ((call = dequeue(fn)))
			fn_call_finish(call, FN_CALL_SHUTDOWN, NULL, "corral-fn is shutting down", 0);
		list_del(&fn->link);
		free(fn);
	}
	free(rt);
}

struct fn_function *fn_runtime_find(struct fn_runtime *rt, const char *name)
{
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next) {
		struct fn_function *fn = list_entry(it, struct fn_function, link);
		if (strcmp(fn->cfg->name, name) == 0)
			return fn;
	}
	return NULL;
}

const struct fn_function_config *fn_function_config(const struct fn_function *f)
{
	return f->cfg;
}

void fn_function_stats(const struct fn_function *f, struct fn_function_stats *out)
{
	out->starting = f->n_envs[ENV_STARTING];
	out->idle = f->n_envs[ENV_IDLE];
	out->busy = f->n_envs[ENV_BUSY];
	out->stopping = f->n_envs[ENV_STOPPING];
	out->waiting = f->n_waiting;
}

void fn_runtime_metrics(struct fn_runtime *rt, struct evbuffer *out)
{
	size_t n = list_length(&rt->functions), i = 0;
	struct fn_metrics_row *rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return;
	for (struct list *it = rt->functions.next; it != &rt->functions; it = it->next, i++) {
		const struct fn_function *fn = list_entry(it, struct fn_function, link);
		rows[i].function = fn->cfg->name;
		rows[i].metrics = &fn->metrics;
		fn_function_stats(fn, &rows[i].stats);
	}
	fn_metrics_render(out, rows, n);
	free(rows);
}
