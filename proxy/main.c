/*
 * corral: a PostgreSQL connection-pooling proxy for serverless workloads.
 *   corral -c conf/corral.ini      run in the foreground, log to stderr
 *   corral -t -c conf/corral.ini   check the configuration and exit
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/cli.h"
#include "common/log.h"
#include "pool/config.h"
#include "proxy/auth_file.h"
#include "proxy/listen_guard.h"
#include "proxy/metrics_http.h"
#include "proxy/stats_dump.h"
#include "proxy/version.h"
#include "proxy/workers.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: corral [-t] -c FILE\n"
		"PostgreSQL connection-pooling proxy for serverless workloads.\n\n"
		"  -c, --config FILE  configuration file (INI), e.g. conf/corral.ini\n"
		"  -t, --test         check the configuration and auth file, then exit\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n\n"
		"SIGINT or SIGTERM stops corral; SIGUSR1 logs pool and application statistics.\n");
}

/* Each client costs a descriptor and each server one more: raise the soft limit as
 * far as the hard one allows, and say so when max_client_conn cannot be reached. */
static void raise_fd_limit(int max_client_conn)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)max_client_conn + 100 > rl.rlim_cur)
		log_warn("event=config_warning msg=\"max_client_conn = %d but only %llu file descriptors; raise ulimit -n\"",
			 max_client_conn, (unsigned long long)rl.rlim_cur);
}

/*
 * An auth_file that cannot be opened is a mistake in the configuration: say where it was
 * set, and where a relative path was looked for (the working directory, not the
 * configuration file's directory).  Errors inside the file name the file's own lines.
 */
static bool auth_file_readable(const struct corral_config *cfg, char *err, size_t errlen)
{
	int fd = open(cfg->auth_file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	int e = errno;
	char where[PATH_MAX + 64] = "";
	char cwd[PATH_MAX];
	if (cfg->auth_file[0] != '/')
		snprintf(where, sizeof(where), " (relative to the working directory %s)",
			 getcwd(cwd, sizeof(cwd)) ? cwd : "?");
	snprintf(err, errlen, "%s:%d: auth_file: cannot open \"%s\"%s: %s", cfg->path,
		 cfg->auth_file_line, cfg->auth_file, where, strerror(e));
	return false;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	log_info("event=shutdown signal=%d", (int)sig);
	workers_stop(arg);
}

/* Reloading the configuration is a later step; until then SIGHUP must not kill us. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	log_warn("event=reload_ignored msg=\"SIGHUP: configuration reload is not supported yet; restart corral to apply changes\"");
}

/* The statistics of every pool and application, as log lines (proxy/stats_dump.h). */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	struct workers *ws = arg;
	stats_dump_log(&ws->shared.registry, ws->shared.cfg);
}

static int run(const struct corral_config *cfg, const struct auth_file *auth)
{
	struct workers ws;
	int rc = 1;
	struct event *sigs[4] = { NULL, NULL, NULL, NULL };
	struct listen_guard guard;
	struct metrics_http *metrics = NULL;
	char err[256];
	if (!listen_guard_claim(&guard, cfg->listen_addr, cfg->listen_port, cfg->so_reuseport, err,
				sizeof(err))) {
		fprintf(stderr, "corral: %s\n", err);
		return 1;
	}
	if (!workers_init(&ws, cfg->workers, cfg, auth))
		goto out;
	if (!listen_guard_confirm(&guard, cfg->listen_addr, cfg->listen_port, cfg->so_reuseport,
				  err, sizeof(err))) {
		fprintf(stderr, "corral: %s\n", err);
		goto out;
	}
	/* [metrics] listen: the HTTP endpoint, on a thread of its own (proxy/metrics_http.h). */
	if (cfg->metrics_addr && !(metrics = metrics_http_start(&ws.shared, err, sizeof(err)))) {
		fprintf(stderr, "corral: %s\n", err);
		goto out;
	}
	/* Signals are caught on worker 0's loop, which runs on this (the main) thread. */
	struct event_base *base = ws.w[0].base;
	sigs[0] = evsignal_new(base, SIGINT, on_signal, &ws);
	sigs[1] = evsignal_new(base, SIGTERM, on_signal, &ws);
	sigs[2] = evsignal_new(base, SIGHUP, on_sighup, &ws);
	sigs[3] = evsignal_new(base, SIGUSR1, on_sigusr1, &ws);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (!sigs[i] || evsignal_add(sigs[i], NULL) != 0)
			goto out;
	log_info("event=listening addr=%s port=%d workers=%d so_reuseport=%s pool_mode=%s auth_type=%s "
		 "databases=%zu",
		 cfg->listen_addr, cfg->listen_port, cfg->workers, cfg->so_reuseport ? "yes" : "no",
		 pool_mode_name(cfg->pool_mode), auth_type_name(cfg->auth_type), cfg->n_dbs);
	workers_run(&ws);
	rc = 0;
out:
	/* Before the workers' shutdown frees the registry it reads. */
	metrics_http_stop(metrics);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (sigs[i])
			event_free(sigs[i]);
	workers_shutdown(&ws);
	listen_guard_release(&guard);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli_args args;
	int status = cli_parse(argc, argv, "corral", CORRAL_VERSION, usage, &args);
	if (status >= 0)
		return status;
	const char *path = args.config;
	bool check_only = args.check_only;

	char err[4096];
	struct corral_config cfg;
	if (!config_load(path, &cfg, err, sizeof(err))) {
		cli_print_errors("corral", err);
		return 1;
	}
	enum log_level level;
	if (log_level_parse(cfg.log_level, &level))
		log_set_level(level);
	struct auth_file auth = { 0 };
	if (cfg.auth_file && cfg.auth_file[0] &&
	    (!auth_file_readable(&cfg, err, sizeof(err)) ||
	     !auth_file_load(cfg.auth_file, &auth, err, sizeof(err)))) {
		fprintf(stderr, "corral: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (cfg.auth_type != AUTH_TRUST && auth.n_users == 0)
		log_warn("event=config_warning msg=\"auth_type %s but no users in auth_file\"",
			 auth_type_name(cfg.auth_type));

	int rc = 0;
	if (check_only)
		printf("corral: configuration %s is valid\n", path);
	else {
		signal(SIGPIPE, SIG_IGN);
		raise_fd_limit(cfg.max_client_conn);
		rc = run(&cfg, &auth);
	}
	auth_file_free(&auth);
	config_free(&cfg);
	return rc;
}
