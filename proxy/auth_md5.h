/*
 * PostgreSQL's md5 password authentication: the client sends
 * "md5" + md5hex(md5hex(password || user) || salt).  Pure computation, no I/O.
 */
#ifndef CORRAL_PROXY_AUTH_MD5_H
#define CORRAL_PROXY_AUTH_MD5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define MD5_PASSWD_LEN 35 /* "md5" + 32 hex digits */

/* True when s is "md5" + 32 hex digits: a stored hash rather than a password. */
bool md5_is_hash(const char *s) WARN_UNUSED;
/* out = "md5" + md5hex(password || user), NUL-terminated (36 bytes). */
void md5_password_hash(const char *password, const char *user, char out[MD5_PASSWD_LEN + 1]);
/* out = "md5" + md5hex(hash_hex_part || salt), from a stored "md5..." hash. */
void md5_salted_response(const char *stored_md5, const uint8_t salt[4],
			 char out[MD5_PASSWD_LEN + 1]);
/*
 * True when response is what a client knowing the password sends.  stored is the
 * auth file's secret: plaintext (stored_is_md5 false) or "md5..." (true).
 * Compares in constant time.
 */
bool md5_check_response(const char *stored, bool stored_is_md5, const char *user,
			const uint8_t salt[4], const char *response) WARN_UNUSED;

#endif
