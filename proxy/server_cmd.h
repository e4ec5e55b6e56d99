/*
 * Queries corral runs on a server connection on its own behalf (a reset, session
 * parameters for a new client): sent as simple Query messages, replies swallowed
 * except ParameterStatus (recorded on the server and passed to on_param) and the
 * first ErrorResponse (kept for the caller).
 */
#ifndef CORRAL_PROXY_SERVER_CMD_H
#define CORRAL_PROXY_SERVER_CMD_H

#include <stdbool.h>

#include "pool/server.h"

struct server_cmd_result {
	const char *failure; /* transport problem (timeout, lost, garbage), or NULL */
	bool error;          /* the server answered with an ErrorResponse */
	char sqlstate[6];
	char message[256];
	char status; /* status of the last ReadyForQuery */
};

typedef void (*server_cmd_param_fn)(void *arg, const char *name, const char *value);
/* Called once; s is the caller's again (its callbacks are cleared). */
typedef void (*server_cmd_done_fn)(struct server *s, const struct server_cmd_result *res,
				   void *arg);

/* Runs n queries on s.  on_param may be NULL.  done may run before this returns. */
void server_cmd_run(struct server *s, const char *const *queries, int n,
		    server_cmd_param_fn on_param, server_cmd_done_fn done, void *arg);

/* Replaces the callbacks of the command running on s (its first owner went away). */
void server_cmd_rebind(struct server *s, server_cmd_done_fn done, void *arg);

#endif
