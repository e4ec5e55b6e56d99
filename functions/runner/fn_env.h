/*
 * Inside an environment: the process fn_host_spawn() forks.  It loads one function, runs
 * fn_init, then serves INVOKE frames one at a time until SHUTDOWN, SIGTERM or the runner's
 * end of the socket closes, and runs fn_shutdown.  Never returns.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_ENV_H
#define CORRAL_FUNCTIONS_RUNNER_FN_ENV_H

#include <sys/types.h>

#include "common/clock.h"
#include "functions/runner/fn_host.h"

/* fd: the environment's end of the socketpair.  spawned_at: CLOCK_MONOTONIC before the
 * fork, where Init Duration starts.  parent: the runner's pid. */
_Noreturn void fn_env_main(const struct fn_host_config *cfg, int fd, usec_t spawned_at,
			   pid_t parent);

/* In the forked child instead of fn_env_main: execs path ("--environment") with fd as fd 3
 * and cfg in the new process's environment; fn_env_exec_main() takes it up there. */
_Noreturn void fn_env_exec(const char *path, const struct fn_host_config *cfg, int fd,
			   usec_t spawned_at, pid_t parent);
/* corral-fn --environment: rebuilds the fn_host_config fn_env_exec() passed and runs
 * fn_env_main. */
_Noreturn void fn_env_exec_main(void);

#endif
