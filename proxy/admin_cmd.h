/*
 * Admin console commands: what a command is, and what its handler may do.
 *
 * Adding a command takes one entry in admin_commands[] (proxy/admin_commands.c) and
 * one handler:
 *
 *   { "RELOAD", ADMIN_FULL, admin_cmd_reload, "RELOAD" },
 *
 *   enum admin_result admin_cmd_reload(struct admin_ctx *ctx)
 *   {
 *       if (!reload_config(ctx->w))
 *           return admin_error(ctx, "F0000", "could not reload: %s", why);
 *       admin_put_complete(ctx->out, "RELOAD");
 *       return ADMIN_DONE;
 *   }
 *
 * words are matched word by word, case ignored, against the start of a statement; the
 * entry with the most matching words wins ("SHUTDOWN WAIT_FOR_CLIENTS" over
 * "SHUTDOWN"), and the rest of the statement is ctx->args.  A Query may hold several
 * statements separated by ';' (quotes respected); each gets its answer, the first error
 * skips the rest, one ReadyForQuery ends them, as PostgreSQL does.
 *
 * Privilege: ADMIN_READ_ONLY commands (SHOW) are open to stats_users; the others
 * need admin_users and answer stats_users 42501 before their handler runs.  The verbs
 * of admin_privileged_verbs[] answer stats_users 42501 even before they exist in the
 * table, so a stats user never learns which of them are implemented.
 */
#ifndef CORRAL_PROXY_ADMIN_CMD_H
#define CORRAL_PROXY_ADMIN_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "common/macros.h"
#include "proxy/admin_rows.h"

struct client;
struct worker;

enum admin_result {
	ADMIN_DONE,   /* answered (rows and CommandComplete are in ctx->out) */
	ADMIN_FAILED, /* answered with an ErrorResponse; the Query's later statements are skipped */
	ADMIN_PENDING, /* will answer later: see admin_suspend */
};

struct admin_ctx {
	struct client *c;
	struct worker *w;      /* c's worker: the thread everything here runs on */
	struct evbuffer *out;  /* c's output */
	const char *statement; /* the whole statement, trimmed (for messages) */
	const char *args;      /* what follows the command's words, trimmed; "" if nothing */
	bool full;             /* an admin_users user; false: stats_users (SHOW only) */
};

typedef enum admin_result (*admin_handler)(struct admin_ctx *ctx);

enum admin_access { ADMIN_READ_ONLY, ADMIN_FULL };

struct admin_command {
	const char *words; /* "SHOW POOLS", "RELOAD", "SHUTDOWN WAIT_FOR_CLIENTS" */
	enum admin_access access;
	admin_handler run;
	const char *help; /* its line in SHOW HELP, e.g. "PAUSE [db]" */
};

/* The table (proxy/admin_commands.c), ended by an entry with words NULL. */
extern const struct admin_command admin_commands[];
/* Verbs only admin_users may use, whether or not the table has them yet (NULL-ended). */
extern const char *const admin_privileged_verbs[];

/* An ERROR with sqlstate and message to ctx's client; returns ADMIN_FAILED. */
enum admin_result admin_error(struct admin_ctx *ctx, const char *sqlstate, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

/*
 * For a command that answers later (it waits for other workers, or for transactions to
 * end): call this, then return ADMIN_PENDING.  Nothing else the client sent runs until
 * the command ends with admin_resume(c, result) on c's worker, after writing its answer
 * to admin_output(c).  If the client leaves first, gone(arg) runs instead (on c's worker,
 * from inside the close) and c must not be used after it.
 */
void admin_suspend(struct admin_ctx *ctx, void (*gone)(void *arg), void *arg);
void admin_resume(struct client *c, enum admin_result result);
struct evbuffer *admin_output(struct client *c);

/*
 * The next word of *p: a bare word (up to a blank, ',', ';', '=') or a "double-quoted"
 * one ("" inside stands for "), copied to out without quotes; *p moves past it and the
 * blanks after it.  False when there is no word or it does not fit.
 */
bool admin_next_word(const char **p, char *out, size_t len);

#endif
