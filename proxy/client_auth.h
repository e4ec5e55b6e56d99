/*
 * The password exchange with a client (trust, md5, scram-sha-256) against the auth
 * file, as PostgreSQL's server does it.  An unknown user goes through the same
 * exchange (with a mock SCRAM salt) and fails with the same message as a wrong
 * password, so the reply does not reveal which users exist.
 */
#ifndef CORRAL_PROXY_CLIENT_AUTH_H
#define CORRAL_PROXY_CLIENT_AUTH_H

struct client;

/* Sends the first authentication request, or finishes at once for trust. */
void client_auth_begin(struct client *c);
/* Handles what the client sent while CL_AUTH. */
void client_auth_read(struct client *c);
/* auth_query's lookup for c is over (proxy/auth_query.h): with sqlstate NULL the
 * exchange starts with c->secret (NULL: no such user), else c fails with the
 * lookup's error (message: why, without secrets). */
void client_auth_resume(struct client *c, const char *sqlstate, const char *message);
/* Releases exchange state. */
void client_auth_cleanup(struct client *c);

#endif
