/*
 * What an operator does to a running corral (DESIGN.md §10): reload, SET, PAUSE, RESUME,
 * KILL, SHUTDOWN.  Signals (proxy/main.c) and the admin console call these; each may be
 * called on any worker's thread.  What every worker must do goes to it through its inbox,
 * so no worker's state is touched by another thread; what takes time (PAUSE) reports back
 * on the calling worker's own loop.
 *
 * Errors are written into err as one line meant for the operator (the console sends it
 * as the command's ErrorResponse); the details are logged.
 */
#ifndef CORRAL_PROXY_CONTROL_H
#define CORRAL_PROXY_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

struct workers;
struct worker;

/* Once the workers are set up (worker 0's loop holds the shutdown timers). */
bool control_init(struct workers *ws) WARN_UNUSED;
/* After workers_run returned, before workers_shutdown. */
void control_free(void);

/*
 * RELOAD / SIGHUP: reads the configuration file in force and its auth file again.  A new
 * configuration with any error is refused, every "FILE:LINE: KEY: why" logged, and the
 * old one stays in force whole.  Otherwise it is published, and every worker adopts it
 * (event=reload_done once the last one has); settings that need a restart (listen_addr,
 * listen_port, workers, so_reuseport) are logged and keep their old values.  No client
 * is dropped (pool/pool.h: pool_env_adopt).
 */
bool control_reload(char *err, size_t errlen) WARN_UNUSED;
/* SET key = value: a [corral] setting changed as a reload would change it, validated by
 * the file's own parser.  Settings that need a restart, and auth_file, are refused. */
bool control_set(const char *key, const char *value, char *err, size_t errlen) WARN_UNUSED;
/* Whether SET may change key while corral runs (SHOW CONFIG's changeable). */
bool control_settable(const char *key);

/* PAUSE finished (err NULL: every server of the paused databases is closed) or failed. */
typedef void (*control_done_fn)(void *arg, const char *err);
struct control_wait;
/*
 * PAUSE db (NULL: every database, and /healthz says paused): no server is handed out from
 * now on, idle servers are closed, busy ones close when their transaction (in session
 * pooling: their client) is done; clients that want a server wait (query_wait_timeout
 * still applies, as in PgBouncer).  done runs on caller's loop once no server of those
 * databases is left (or at once, next loop turn, if none is).  NULL with err when refused
 * (no such database, already paused, shutting down).  The returned wait is the caller's
 * until done runs or it calls control_wait_cancel.
 */
struct control_wait *control_pause(struct worker *caller, const char *db, control_done_fn done,
				   void *arg, char *err, size_t errlen);
/* The caller (a console client that left) no longer wants done to run. */
void control_wait_cancel(struct control_wait *wait);
/* RESUME db (NULL: everything paused): waiting clients are served again. */
bool control_resume(const char *db, char *err, size_t errlen) WARN_UNUSED;
/* KILL db: as PgBouncer, the database is paused (RESUME db undoes it) and every client of
 * it is disconnected at once (FATAL 57P01), its servers closed. */
bool control_kill(const char *db, char *err, size_t errlen) WARN_UNUSED;

/*
 * SHUTDOWN: wait_for_clients false: at once, every client gets FATAL 57P01.  True
 * (SHUTDOWN WAIT_FOR_CLIENTS, SIGTERM): stop accepting (listeners closed, /healthz says
 * shutting_down) and exit once the last client has left; timeout > 0 (SIGTERM's
 * shutdown_timeout) bounds the wait, after which the clients left get 57P01.  A second
 * request while waiting shuts down at once if it does not wait itself.
 */
void control_shutdown(bool wait_for_clients, double timeout);

#endif
