/*
 * corral-fn: a small serverless function runner (DESIGN.md §11).
 *   corral-fn -c conf/corral-fn.ini      run in the foreground; runner log on stderr,
 *                                        START / END / REPORT lines on stdout
 *   corral-fn -t -c conf/corral-fn.ini   check the configuration and exit
 *
 * One event loop on the main thread: environments are forked from it (they die with it,
 * PR_SET_PDEATHSIG) and reaped only through their pidfds, never by waitpid(-1).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "common/cli.h"
#include "common/log.h"
#include "functions/runner/fn_config.h"
#include "functions/runner/fn_cron.h"
#include "functions/runner/fn_env.h"
#include "functions/runner/fn_host.h"
#include "functions/runner/fn_http.h"
#include "functions/runner/fn_queue.h"
#include "functions/runner/fn_runtime.h"

#define CORRAL_FN_VERSION "0.1.0"

struct runner {
	struct event_base *base;
	const struct fn_runner_config *cfg;
	struct fn_runtime *rt;
	struct fn_http *http;
	struct fn_cron *cron;
	struct fn_queue *queue;
	bool stopping;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: corral-fn [-t] -c FILE\n"
		"Runs serverless functions (shared objects, functions/corral_fn.h) in forked\n"
		"environments, triggered over HTTP, by cron schedules and by a PostgreSQL queue.\n\n"
		"  -c, --config FILE  configuration file (INI), e.g. conf/corral-fn.ini\n"
		"  -t, --test         check the configuration, then exit\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n\n"
		"HTTP: /fn/NAME[/...], POST /2015-03-31/functions/NAME/invocations, /metrics.\n"
		"SIGINT or SIGTERM stops corral-fn and its environments.\n");
}

static void runtime_stopped(void *arg)
{
	struct runner *r = arg;
	event_base_loopexit(r->base, NULL);
}

/* The queue's batches in flight have been acknowledged: now the environments go. */
static void queue_stopped(void *arg)
{
	struct runner *r = arg;
	fn_runtime_stop(r->rt, runtime_stopped, r);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct runner *r = arg;
	if (r->stopping) {
		log_warn("event=shutdown_forced signal=%d", (int)sig);
		event_base_loopbreak(r->base);
		return;
	}
	r->stopping = true;
	log_info("event=shutdown signal=%d", (int)sig);
	/* Answers still owed go out through the HTTP connections, so those stay open
	 * until the runtime has ended every invocation (run() frees them last). */
	fn_http_stop_accepting(r->http);
	fn_cron_free(r->cron);
	r->cron = NULL;
	fn_queue_stop(r->queue, queue_stopped, r);
}

static int run(const struct fn_runner_config *cfg)
{
	struct runner r = {.cfg = cfg};
	struct event *sigs[2] = {NULL, NULL};
	int rc = 1;
	char err[512];
	r.base = event_base_new();
	r.rt = r.base ? fn_runtime_new(r.base, cfg) : NULL;
	if (!r.rt) {
		fprintf(stderr, "corral-fn: out of memory\n");
		goto out;
	}
	r.http = fn_http_new(r.base, r.rt, cfg, err, sizeof(err));
	if (!r.http) {
		fprintf(stderr, "corral-fn: %s\n", err);
		goto out;
	}
	if (!fn_runtime_start(r.rt)) {
		fprintf(stderr,
			"corral-fn: could not start the provisioned environments (see the log)\n");
		goto out;
	}
	r.cron = fn_cron_new(r.base, r.rt, cfg);
	r.queue = fn_queue_new(r.base, r.rt, cfg);
	sigs[0] = evsignal_new(r.base, SIGINT, on_signal, &r);
	sigs[1] = evsignal_new(r.base, SIGTERM, on_signal, &r);
	if (!r.cron || !r.queue || !sigs[0] || !sigs[1] || evsignal_add(sigs[0], NULL) != 0 ||
	    evsignal_add(sigs[1], NULL) != 0) {
		fprintf(stderr, "corral-fn: out of memory\n");
		goto out;
	}
	log_info("event=listening addr=%s port=%d functions=%zu max_concurrency=%u",
		 cfg->listen_addr, fn_http_port(r.http), cfg->n_functions, cfg->max_concurrency);
	event_base_dispatch(r.base);
	rc = 0;
	log_info("event=stopped");
out:
	for (size_t i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	fn_cron_free(r.cron);
	fn_queue_free(r.queue);
	fn_runtime_free(r.rt); /* answers what is still pending ... */
	fn_http_free(r.http);  /* ... before the connections go */
	if (r.base)
		event_base_free(r.base);
	return rc;
}

/* In an environment, just forked: the configuration of every function goes, zeroed. */
static void wipe_config(void *arg)
{
	fn_config_wipe(arg);
}

/* Every environment holds a socketpair and a pidfd, every HTTP client a socket. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--environment") == 0)
		fn_env_exec_main(); /* an environment, exec'd by fn_host_spawn */
	struct cli_args args;
	int status = cli_parse(argc, argv, "corral-fn", CORRAL_FN_VERSION, usage, &args);
	if (status >= 0)
		return status;
	const char *path = args.config;
	bool check_only = args.check_only;
	char err[4096];
	struct fn_runner_config cfg;
	if (!fn_config_load(path, &cfg, err, sizeof(err))) {
		cli_print_errors("corral-fn", err);
		return 1;
	}
	enum log_level level;
	if (log_level_parse(cfg.log_level, &level))
		log_set_level(level);
	int rc = 0;
	if (check_only) {
		printf("corral-fn: configuration %s is valid (%zu functions)\n", path,
		       cfg.n_functions);
	} else {
		signal(SIGPIPE, SIG_IGN);
		setvbuf(stdout, NULL, _IOLBF, 0); /* REPORT lines reach a pipe as they happen */
		raise_fd_limit();
		fn_host_set_wipe(wipe_config, &cfg);
		if (cfg.exec_environments)
			fn_host_set_exec("/proc/self/exe");
		rc = run(&cfg);
	}
	fn_config_free(&cfg);
	return rc;
}
