/*
 * Errors of PostgreSQL invocations, reduced to a class and a message.  A refused
 * login has no PGresult, so its SQLSTATE is read back from libpq's error text:
 * with PQERRORS_VERBOSE set on the connection before the server answers, libpq
 * writes "FATAL:  53300: sorry, too many clients already" (after PostgreSQL 14's
 * "connection to server at ... failed: " prefix).
 */
#ifndef CORRAL_FUNCTIONS_STORM_PG_ERROR_H
#define CORRAL_FUNCTIONS_STORM_PG_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

/* Finds the first "SEVERITY:  XXXXX: message" in text: sqlstate gets XXXXX, msg
 * "SEVERITY: message" (that line only).  False if there is none. */
bool storm_pg_error_parse(const char *text, char sqlstate[6], char *msg, size_t msglen) WARN_UNUSED;

/* The first non-empty line of text, trimmed, control characters as spaces. */
void storm_first_line(const char *text, char *out, size_t outlen);

#endif
