/*
 * The admin console, as the client state machine sees it: a virtual database
 * (admin_db, "corral" by default; "pgbouncer" too, unless [databases] has a database of
 * that name) that users of admin_users and stats_users reach after authenticating like
 * everyone else.  It speaks the simple query protocol only; commands are
 * proxy/admin_cmd.h's.  Everything here runs on the client's worker.
 */
#ifndef CORRAL_PROXY_ADMIN_H
#define CORRAL_PROXY_ADMIN_H

#include <stdbool.h>

#include "pool/config.h"

struct client;

/* Whether a client asking for database name gets the console. */
bool admin_is_console(const struct corral_config *cfg, const char *name);
/* c authenticated for the console: refused (28000) unless its user is in admin_users or
 * stats_users, else welcomed (CL_IDLE, c->admin set). */
void admin_login(struct client *c);
/* c (a console client, CL_IDLE) has input: runs whole Query messages until a command
 * answers later or the input is used up. */
void admin_read(struct client *c);
/* c's output drained (its write callback, CL_IDLE): reads again what admin_read
 * stopped reading while the client had not read its answers. */
void admin_drained(struct client *c);
/* c is closing: a command still answering is told (its gone callback), nothing more
 * runs. */
void admin_client_gone(struct client *c);
/* Frees c's console session (client_free). */
void admin_session_free(struct client *c);

#endif
