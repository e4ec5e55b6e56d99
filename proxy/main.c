/*
 * corral: a PostgreSQL connection-pooling proxy for serverless workloads.
 *   corral -c conf/corral.ini      run in the foreground, log to stderr
 *   corral -t -c conf/corral.ini   check the configuration and exit
 */
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
#include "proxy/config_store.h"
#include "proxy/control.h"
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
		"SIGHUP reloads the configuration and auth file; SIGTERM stops accepting and exits\n"
		"once the last client has left (at most shutdown_timeout seconds); SIGINT exits at\n"
		"once; SIGUSR1 logs pool and application statistics.\n");
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

/* SIGINT: at once, every client gets 57P01 (PgBouncer's SIGINT waits for servers
 * first; corral's never did, and Ctrl-C in a terminal wants it gone). */
static void on_sigint(evutil_socket_t sig, short what, void *arg)
{
	log_info("event=signal signal=SIGINT");
	control_shutdown(false, 0);
}

/* SIGTERM: SHUTDOWN WAIT_FOR_CLIENTS bounded by shutdown_timeout, what a service manager
 * or Kubernetes wants; a second SIGTERM shuts down at once. */
static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct workers *ws = arg;
	static bool again;
	log_info("event=signal signal=SIGTERM");
	control_shutdown(!again, ws->w[0].cfg->shutdown_timeout);
	again = true;
}

/* SIGHUP: RELOAD.  A refused configuration is logged line by line and changes nothing. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	char err[512], clean[1024];
	log_info("event=signal signal=SIGHUP");
	if (!control_reload(err, sizeof(err)))
		log_warn("event=reload_failed msg=\"%s\"", log_clean(err, clean, sizeof(clean)));
}

/* The statistics of every pool and application, as log lines (proxy/stats_dump.h). */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
	struct workers *ws = arg;
	stats_dump_log(&ws->shared.registry, ws->w[0].cfg); /* worker 0's: this thread's */
}

static int run(struct snapshot *snap)
{
	const struct corral_config *cfg = &snap->cfg;
	struct workers ws;
	int rc = 1;
	struct event *sigs[4] = { NULL, NULL, NULL, NULL };
	struct listen_guard guard;
	struct metrics_http *metrics = NULL;
	char err[256];
	if (!listen_guard_claim(&guard, cfg->listen_addr, cfg->listen_port, cfg->so_reuseport, err,
				sizeof(err))) {
		fprintf(stderr, "corral: %s\n", err);
		snapshot_release(snap);
		return 1;
	}
	/* The workers' store owns snap from here on (a reload may free it): what the
	 * listener guard needs again is copied first. */
	int n_workers = cfg->workers;
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", cfg->listen_addr);
	int port = cfg->listen_port;
	bool reuseport = cfg->so_reuseport;
	if (!workers_init(&ws, n_workers, snap) || !control_init(&ws))
		goto out;
	cfg = ws.w[0].cfg;
	if (!listen_guard_confirm(&guard, addr, port, reuseport, err, sizeof(err))) {
		fprintf(stderr, "corral: %s\n", err);
		goto out;
	}
	/* [metrics] listen: the HTTP endpoint, on a thread of its own (proxy/metrics_http.h). */
	if (cfg->metrics_addr) {
		struct snapshot *conf = config_store_acquire(&ws.shared.store);
		metrics = metrics_http_start(&ws.shared, conf, err, sizeof(err));
		snapshot_release(conf);
		if (!metrics) {
			fprintf(stderr, "corral: %s\n", err);
			goto out;
		}
	}
	/* Signals are caught on worker 0's loop, which runs on this (the main) thread. */
	struct event_base *base = ws.w[0].base;
	sigs[0] = evsignal_new(base, SIGINT, on_sigint, &ws);
	sigs[1] = evsignal_new(base, SIGTERM, on_sigterm, &ws);
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
	control_free();
	workers_shutdown(&ws);
	listen_guard_release(&guard);
	return rc;
}

/* An md5 hash in the auth file cannot serve SCRAM: said at start and by corral -t. */
static void warn_md5_only(const char *user, void *auth_file)
{
	char name[200];
	log_warn("event=config_warning msg=\"user %s: its secret in %s is an md5 hash, which "
		 "cannot serve auth_type = scram-sha-256 (its logins will fail): give the "
		 "password or a SCRAM verifier\"",
		 log_clean(user, name, sizeof(name)), (const char *)auth_file);
}

int main(int argc, char **argv)
{
	struct cli_args args;
	int status = cli_parse(argc, argv, "corral", CORRAL_VERSION, usage, &args);
	if (status >= 0)
		return status;
	const char *path = args.config;
	bool check_only = args.check_only;

	char err[16384];
	struct snapshot *snap = snapshot_load(path, err, sizeof(err));
	if (!snap) {
		cli_print_errors("corral", err);
		return 1;
	}
	const struct corral_config *cfg = &snap->cfg;
	enum log_level level;
	if (log_level_parse(cfg->log_level, &level))
		log_set_level(level);
	if (cfg->auth_type != AUTH_TRUST && cfg->auth_type != AUTH_HBA && snap->auth.n_users == 0)
		log_warn("event=config_warning msg=\"auth_type %s but no users in auth_file\"",
			 auth_type_name(cfg->auth_type));
	if (cfg->auth_type == AUTH_SCRAM_SHA_256)
		auth_file_md5_only(&snap->auth, warn_md5_only, cfg->auth_file);

	if (check_only) {
		printf("corral: configuration %s is valid\n", path);
		snapshot_release(snap);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(cfg->max_client_conn);
	return run(snap); /* run owns snap */
}
