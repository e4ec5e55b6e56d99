/*
 * The console's commands that change something (PgBouncer's): RELOAD, SET, PAUSE,
 * RESUME, KILL, SHUTDOWN [WAIT_FOR_CLIENTS].  admin_users only (admin_commands.c marks
 * them ADMIN_FULL).  The work is proxy/control.c's; this file parses the arguments and
 * answers.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/admin_cmd.h"
#include "proxy/admin_control.h"
#include "proxy/control.h"

#define ERRLEN 512

/* At most one database name and nothing after it; false (answered) otherwise. */
static bool one_db(struct admin_ctx *ctx, char *db, size_t len, bool required, bool *given)
{
	const char *p = ctx->args;
	*given = admin_next_word(&p, db, len);
	if ((required && !*given) || *p) {
		admin_error(ctx, "42601", "syntax error: %s",
			    required ? "a database name is needed" : "at most one database name");
		return false;
	}
	return true;
}

/* An error from control.c: a database it does not know is 3D000, a state that does not
 * allow the command (already paused, shutting down) 55000. */
static enum admin_result control_error(struct admin_ctx *ctx, const char *err)
{
	return admin_error(ctx, strncmp(err, "no such database", 16) == 0 ? "3D000" : "55000", "%s",
			   err);
}

enum admin_result admin_cmd_reload(struct admin_ctx *ctx)
{
	char err[ERRLEN];
	if (*ctx->args)
		return admin_error(ctx, "42601", "syntax error: RELOAD takes no argument");
	if (!control_reload(err, sizeof(err)))
		return admin_error(ctx, "F0000", "%s", err);
	admin_put_complete(ctx->out, "RELOAD");
	return ADMIN_DONE;
}

/* SET key = value, value bare or 'quoted' ('' for a quote), as PgBouncer takes it. */
enum admin_result admin_cmd_set(struct admin_ctx *ctx)
{
	char key[64], value[1024], err[ERRLEN];
	const char *p = ctx->args;
	if (!admin_next_word(&p, key, sizeof(key)) || *p != '=')
		return admin_error(ctx, "42601", "syntax error: SET key = value");
	for (p++; *p == ' ' || *p == '\t'; p++)
		;
	size_t n = 0;
	if (*p == '\'') {
		for (p++; *p && !(p[0] == '\'' && p[1] != '\''); p += (*p == '\'') ? 2 : 1)
			if (n + 1 < sizeof(value))
				value[n++] = *p;
		if (*p != '\'')
			return admin_error(ctx, "42601", "syntax error: unterminated quoted value");
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		if (*p)
			return admin_error(ctx, "42601",
					   "syntax error: text after the quoted value");
	} else {
		n = strlen(p);
		if (n >= sizeof(value))
			return admin_error(ctx, "22023", "SET: %s: value too long", key);
		memcpy(value, p, n);
	}
	value[n] = '\0';
	if (!control_set(key, value, err, sizeof(err)))
		return admin_error(ctx, "22023", "%s", err);
	admin_put_complete(ctx->out, "SET");
	return ADMIN_DONE;
}

/* A PAUSE waiting for the servers to close, and the console client it answers. */
struct pause_wait {
	struct client *c;
	struct control_wait *wait;
};

static void pause_done(void *arg, const char *err)
{
	struct pause_wait *pw = arg;
	struct client *c = pw->c;
	free(pw); /* control.c has freed its wait */
	admin_put_complete(admin_output(c), "PAUSE");
	admin_resume(c, ADMIN_DONE);
}

/* The console client left while PAUSE waited: the pause stays, nobody is told. */
static void pause_gone(void *arg)
{
	struct pause_wait *pw = arg;
	control_wait_cancel(pw->wait);
	free(pw);
}

enum admin_result admin_cmd_pause(struct admin_ctx *ctx)
{
	char db[256], err[ERRLEN];
	bool given;
	if (!one_db(ctx, db, sizeof(db), false, &given))
		return ADMIN_FAILED;
	struct pause_wait *pw = calloc(1, sizeof(*pw));
	if (!pw)
		return admin_error(ctx, "53200", "out of memory");
	pw->c = ctx->c;
	pw->wait = control_pause(ctx->w, given ? db : NULL, pause_done, pw, err, sizeof(err));
	if (!pw->wait) {
		free(pw);
		return control_error(ctx, err);
	}
	/* Answered when no server of the paused databases is left (pause_done). */
	admin_suspend(ctx, pause_gone, pw);
	return ADMIN_PENDING;
}

enum admin_result admin_cmd_resume(struct admin_ctx *ctx)
{
	char db[256], err[ERRLEN];
	bool given;
	if (!one_db(ctx, db, sizeof(db), false, &given))
		return ADMIN_FAILED;
	if (!control_resume(given ? db : NULL, err, sizeof(err)))
		return control_error(ctx, err);
	admin_put_complete(ctx->out, "RESUME");
	return ADMIN_DONE;
}

enum admin_result admin_cmd_kill(struct admin_ctx *ctx)
{
	char db[256], err[ERRLEN];
	bool given;
	if (!one_db(ctx, db, sizeof(db), true, &given))
		return ADMIN_FAILED;
	if (!control_kill(db, err, sizeof(err)))
		return control_error(ctx, err);
	admin_put_complete(ctx->out, "KILL");
	return ADMIN_DONE;
}

enum admin_result admin_cmd_shutdown(struct admin_ctx *ctx)
{
	if (*ctx->args)
		return admin_error(ctx, "42601", "syntax error: SHUTDOWN [WAIT_FOR_CLIENTS]");
	admin_put_complete(ctx->out, "SHUTDOWN");
	control_shutdown(false, 0); /* every client, this one too, then gets 57P01 */
	return ADMIN_DONE;
}

enum admin_result admin_cmd_shutdown_wait(struct admin_ctx *ctx)
{
	if (*ctx->args)
		return admin_error(ctx, "42601", "syntax error: SHUTDOWN WAIT_FOR_CLIENTS");
	control_shutdown(true, 0);
	admin_put_complete(ctx->out, "SHUTDOWN");
	return ADMIN_DONE;
}
