/*
 * corral-fn's configuration: an INI file (conf/corral-fn.ini documents every key).
 *
 *   [runner]                 the daemon: listen address, DATABASE_URL, global limits
 *   [function.NAME]          one function: its .so, limits and triggers
 *
 * Durations are seconds ("3", "0.5"); unknown sections and keys, bad values and
 * a function without any way to run (no .so) are refused with file:line: key: why.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_CONFIG_H
#define CORRAL_FUNCTIONS_RUNNER_FN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/macros.h"
#include "functions/runner/cron.h"

enum fn_on_limit {
	FN_ON_LIMIT_QUEUE,    /* wait FIFO for an environment (queue_depth, queue_timeout) */
	FN_ON_LIMIT_THROTTLE, /* answer at once: HTTP 429, as Lambda's TooManyRequestsException */
};

struct fn_function_config {
	char *name;            /* [function.NAME]: letters, digits, '_' and '-' */
	char *so_path;         /* so = ...; default <functions_dir>/<name>.so */
	char *database_url;    /* database_url = ...; NULL: the runner's */
	usec_t timeout_usec;   /* timeout: per invocation; default 3 s (Lambda's) */
	uint32_t memory_mb;    /* memory_mb: RLIMIT_AS of the environment; default 128; 0: none */
	unsigned reserved_concurrency; /* most environments of this function; 0: only max_concurrency */
	unsigned provisioned;  /* environments kept warm from the start; <= reserved_concurrency */
	usec_t idle_timeout_usec; /* an idle environment is stopped after it; default 300 s */
	enum fn_on_limit on_limit; /* default queue */
	unsigned queue_depth;  /* most invocations waiting; default 100 */
	usec_t queue_timeout_usec; /* longest wait for an environment; default 10 s */
	bool http;             /* reachable over HTTP (/fn/NAME, the Lambda invoke path); default yes */
	/* env.NAME = value: the environment variables of its environments, "NAME=value"
	 * each; with DATABASE_URL and CORRAL_FN_NAME, all the environment they get. */
	char **env;
	size_t n_env;

	/* cron trigger: schedule = 5 fields (cron.h); has_schedule when set */
	bool has_schedule;
	char *schedule;
	struct cron_expr cron;

	/* queue trigger: queue = NAME consumes messages of that queue (corral_queue table) */
	char *queue;
	unsigned batch_size;         /* messages per invocation; default 10 */
	unsigned queue_concurrency;  /* batches in flight at once; default 2 */
	unsigned max_receive_count;  /* deliveries before a message goes to the dead letters; default 3 */
	usec_t visibility_timeout_usec; /* a claimed message reappears after it; default 30 s */
	usec_t queue_poll_usec;      /* idle queue polled this often; default 1 s */
};

struct fn_runner_config {
	char *listen_addr;      /* default 127.0.0.1 */
	int listen_port;        /* default 9000 */
	char *database_url;     /* DATABASE_URL of functions; default none */
	char *queue_database_url; /* where the queue tables are; default database_url */
	char *functions_dir;    /* default bin/functions */
	unsigned max_concurrency; /* live environments of all functions; default 1000 */
	usec_t init_timeout_usec; /* fork to READY; default 10 s (Lambda's) */
	usec_t shutdown_grace_usec; /* SHUTDOWN to SIGKILL; default 2 s */
	char *log_level;        /* default info */
	bool log_reports;       /* START/END/REPORT lines on stdout; default yes */
	usec_t request_timeout_usec; /* a whole HTTP request (headers and body); default 10 s */
	unsigned max_connections; /* HTTP connections open at once; default 10000 */
	/* auth_token_file = PATH: its first line; the invoke paths and /metrics then need
	 * "Authorization: Bearer <token>".  NULL: no authentication (the default). */
	char *auth_token;
	/* exec_environments: each environment execs corral-fn (a fresh memory image, nothing
	 * of the runner's in it) rather than running in the fork; default yes */
	bool exec_environments;

	struct fn_function_config *functions;
	size_t n_functions;
};

/* Loads path into *out (defaults first).  False with "file:line: key: why" in err. */
bool fn_config_load(const char *path, struct fn_runner_config *out, char *err,
		    size_t errlen) WARN_UNUSED;
void fn_config_free(struct fn_runner_config *cfg);
/* fn_config_free that zeroes every string first: in an environment, so that the .so it
 * loads cannot read the other functions' DATABASE_URLs and variables from the runner's
 * memory it inherited. */
void fn_config_wipe(struct fn_runner_config *cfg);
const struct fn_function_config *fn_config_find(const struct fn_runner_config *cfg,
						const char *name);

#endif
