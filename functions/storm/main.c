/*
 * corral-storm: a load generator for corral and corral-fn.  Releases a burst of
 * invocations at once, or an open-loop steady rate, as HTTP requests or as raw
 * PostgreSQL connect / query / disconnect cycles, and reports errors by class,
 * latency percentiles and the peak number of server backends.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/clock.h"
#include "functions/storm/monitor.h"
#include "functions/storm/options.h"
#include "functions/storm/output.h"
#include "functions/storm/worker.h"

/* Time for every worker thread to be waiting before the release. */
#define RELEASE_DELAY_USEC 50000

struct run {
	struct storm_opts opts;
	struct storm_shared shared;
	struct event_base *base;
	struct storm_worker *workers[64];
	int n_workers;
	int workers_done;
	int done_pipe[2];
	struct event *done_ev;
	struct event *sigint_ev, *sigterm_ev;
	struct storm_monitor *monitor;
	char target[512];
};

/* Each invocation holds a socket; a burst of thousands needs the hard limit. */
static void raise_nofile(const struct storm_opts *o, uint64_t total)
{
	uint64_t concurrent = o->burst ? o->burst : (uint64_t)(o->rate * o->timeout_s) + 1;
	if (concurrent > total)
		concurrent = total;
	rlim_t need = (rlim_t)concurrent + 64;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		struct rlimit more = {need, need};
		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < need)
		fprintf(stderr,
			"corral-storm: warning: the open files limit is %llu but this run may hold "
			"%llu connections; raise it (ulimit -n) or expect EMFILE errors\n",
			(unsigned long long)rl.rlim_cur, (unsigned long long)concurrent);
}

/* "host=... port=... dbname=... user=..." from a DSN, without its password. */
static bool describe_dsn(const char *dsn, char *out, size_t outlen, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &msg);
	if (!opts) {
		snprintf(err, errlen, "--dsn: %s", msg ? msg : "out of memory");
		if (msg)
			PQfreemem(msg);
		return false;
	}
	static const char *const shown[] = {"host", "hostaddr", "port", "dbname", "user"};
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		for (PQconninfoOption *p = opts; p->keyword; p++) {
			if (strcmp(p->keyword, shown[i]) != 0 || !p->val || !*p->val)
				continue;
			int w = snprintf(out + n, outlen - n, "%s%s=%s", n ? " " : "", p->keyword,
					 p->val);
			if (w > 0 && (size_t)w < outlen - n)
				n += (size_t)w;
		}
	}
	if (n == 0)
		snprintf(out, outlen, "(libpq defaults)");
	PQconninfoFree(opts);
	return true;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *run = arg;
	char buf[64];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		run->workers_done += (int)n;
	if (run->workers_done >= run->n_workers)
		event_base_loopbreak(run->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct run *run = arg;
	if (atomic_exchange(&run->shared.stop, true))
		event_base_loopbreak(run->base); /* the second Ctrl-C: do not wait */
}

static bool setup(struct run *run, char *err, size_t errlen)
{
	const struct storm_opts *o = &run->opts;
	struct storm_shared *s = &run->shared;
	s->opts = o;
	s->total = storm_opts_total(o);
	if (o->mode == STORM_HTTP) {
		if (!storm_http_target_init(&s->http, o, err, errlen))
			return false;
		snprintf(run->target, sizeof(run->target), "%s %s", s->http.method_name, o->url);
	} else if (!describe_dsn(o->dsn, run->target, sizeof(run->target), err, errlen)) {
		return false;
	}
	if (pipe2(run->done_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return false;
	}
	s->done_fd = run->done_pipe[1];
	run->base = event_base_new();
	if (!run->base) {
		snprintf(err, errlen, "cannot create an event base");
		return false;
	}
	run->done_ev = event_new(run->base, run->done_pipe[0], EV_READ | EV_PERSIST, done_cb, run);
	run->sigint_ev = evsignal_new(run->base, SIGINT, signal_cb, run);
	run->sigterm_ev = evsignal_new(run->base, SIGTERM, signal_cb, run);
	if (!run->done_ev || !run->sigint_ev || !run->sigterm_ev ||
	    event_add(run->done_ev, NULL) != 0 || event_add(run->sigint_ev, NULL) != 0 ||
	    event_add(run->sigterm_ev, NULL) != 0) {
		snprintf(err, errlen, "cannot set up events");
		return false;
	}
	if (o->monitor_dsn) {
		run->monitor = storm_monitor_start(run->base, o, err, errlen);
		if (!run->monitor)
			return false;
	}
	for (int i = 0; i < o->threads; i++) {
		run->workers[i] = storm_worker_new(s, i, o->threads);
		if (!run->workers[i]) {
			snprintf(err, errlen, "cannot create worker %d (out of memory?)", i);
			return false;
		}
		run->n_workers++;
	}
	return true;
}

/* Starts the workers with SIGINT and SIGTERM blocked, so only this thread gets them. */
static bool start_workers(struct run *run, char *err, size_t errlen)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	run->shared.t0 = clock_now_usec() + RELEASE_DELAY_USEC;
	bool ok = true;
	for (int i = 0; i < run->n_workers && ok; i++) {
		if (!storm_worker_start(run->workers[i])) {
			snprintf(err, errlen, "cannot start worker thread %d", i);
			atomic_store(&run->shared.stop, true);
			ok = false;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ok;
}

static void report(struct run *run)
{
	const struct storm_opts *o = &run->opts;
	struct storm_results *all = storm_results_new();
	if (!all) {
		fprintf(stderr, "corral-storm: out of memory for the results\n");
		return;
	}
	for (int i = 0; i < run->n_workers; i++)
		storm_results_merge(all, run->workers[i]->res);
	storm_results_sort(all);
	struct storm_summary sum = {
		.opts = o,
		.target = run->target,
		.total = run->shared.total,
		.results = all,
		.wall = all->last_done > run->shared.t0 ? all->last_done - run->shared.t0 : 0,
		.peak_in_flight = atomic_load(&run->shared.peak_in_flight),
		.interrupted = atomic_load(&run->shared.stop),
		.have_monitor = run->monitor != NULL,
	};
	if (run->monitor)
		storm_monitor_get(run->monitor, &sum.monitor);
	if (o->json)
		storm_print_json(stdout, &sum);
	else
		storm_print_text(stdout, &sum);
	fflush(stdout);
	storm_results_free(all);
}

static void teardown(struct run *run)
{
	for (int i = 0; i < run->n_workers; i++)
		storm_worker_free(run->workers[i]);
	storm_monitor_free(run->monitor);
	if (run->done_ev)
		event_free(run->done_ev);
	if (run->sigint_ev)
		event_free(run->sigint_ev);
	if (run->sigterm_ev)
		event_free(run->sigterm_ev);
	if (run->base)
		event_base_free(run->base);
	if (run->done_pipe[0] >= 0)
		close(run->done_pipe[0]);
	if (run->done_pipe[1] >= 0)
		close(run->done_pipe[1]);
}

int main(int argc, char **argv)
{
	static struct run run = {.done_pipe = {-1, -1}};
	char err[512] = "";
	int rc = storm_opts_parse(argc, argv, &run.opts, err, sizeof(err));
	if (rc == 1) {
		storm_usage(argv[0]);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "corral-storm: %s (see --help)\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(&run.opts, storm_opts_total(&run.opts));

	int status = 1;
	if (!setup(&run, err, sizeof(err)) || !start_workers(&run, err, sizeof(err))) {
		fprintf(stderr, "corral-storm: %s\n", err);
		goto out;
	}
	if (run.workers_done < run.n_workers)
		event_base_dispatch(run.base);
	for (int i = 0; i < run.n_workers; i++)
		storm_worker_join(run.workers[i]);
	if (run.monitor)
		storm_monitor_finish(run.monitor);
	report(&run);
	status = atomic_load(&run.shared.stop) ? 130 : 0;
out:
	atomic_store(&run.shared.stop, true);
	teardown(&run);
	return status;
}
