/*
 * Pieces of a fake PostgreSQL server for the tests of corral's server-side login
 * (test_passthrough.c, test_attack16.c): a loopback listener, the reading of one
 * message, Authentication messages, and a role with a SCRAM verifier for the auth file.
 */
#ifndef CORRAL_TESTS_FAKE_SERVER_H
#define CORRAL_TESTS_FAKE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* A socket listening on 127.0.0.1 on a port of the kernel's choice (into *port); a test
 * failure if it cannot. */
int fake_listen(int backlog, int *port);
/* Reads exactly n bytes; false on EOF, error or timeout. */
bool fake_read_full(int fd, void *buf, size_t n);
/* One message (type byte unless startup) into a malloc'd, NUL-ended body (*len bytes);
 * NULL on EOF or a length outside 4..10000. */
char *fake_read_msg(int fd, bool startup, size_t *len);
/* Sends an Authentication message ('R') with code and data (len up to 500); true when
 * all of it was sent. */
bool fake_send_auth(int fd, uint32_t code, const char *data, size_t len);
/* AuthenticationOk, then ReadyForQuery (idle); errors ignored. */
void fake_send_ok_ready(int fd);
/* Creates role name with password (a SCRAM verifier of its own salt) if it does not
 * exist; returns the verifier as pg_authid has it (malloc'd). */
char *fake_make_role(PGconn *su, const char *name, const char *password);

#endif
