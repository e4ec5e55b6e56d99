/*
 * The auth file in PgBouncer's userlist format, one user per line:
 *   "user" "secret"
 * where secret is a plaintext password, "md5" + md5hex(password || user), or a SCRAM
 * verifier "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>".  Lines starting
 * with ';' or '#' and blank lines are ignored; a doubled quote ("") inside quotes is
 * a literal quote.
 */
#ifndef CORRAL_PROXY_AUTH_FILE_H
#define CORRAL_PROXY_AUTH_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"
#include "proxy/auth_scram.h"

enum secret_kind { SECRET_PLAIN, SECRET_MD5, SECRET_SCRAM };

struct user_secret {
	char *name;
	enum secret_kind kind;
	char *secret; /* the text as written: password, "md5..." or verifier */
	/* SCRAM keys: parsed from the verifier (SECRET_SCRAM) or derived once from the
	 * plaintext password at load time (SECRET_PLAIN) so logins never pay PBKDF2. */
	bool has_scram;
	struct scram_secret scram;
};

struct auth_file {
	struct user_secret *users;
	size_t n_users;
};

/*
 * Loads path; on failure returns false, leaves *out empty (safe to free) and writes
 * "FILE:LINE: why" into err.  The first bad line is the one reported.
 */
bool auth_file_load(const char *path, struct auth_file *out, char *err, size_t errlen) WARN_UNUSED;
/* Same from a string (for tests); name is used in error messages. */
bool auth_file_parse(const char *name, const char *text, struct auth_file *out, char *err,
		     size_t errlen) WARN_UNUSED;
const struct user_secret *auth_file_find(const struct auth_file *af, const char *user);
/* The users whose secret is an md5 hash: under auth_type = scram-sha-256 they can never
 * log in (SCRAM needs the password or a verifier).  Calls each(name, arg) for each. */
size_t auth_file_md5_only(const struct auth_file *af, void (*each)(const char *name, void *arg),
			  void *arg);
void auth_file_free(struct auth_file *af);
/* One secret as the auth file would hold it for user (proxy/auth_query.h: a secret
 * PostgreSQL gave), SCRAM keys derived for a plaintext password; false when text is
 * empty, a bad verifier, or memory is short (out then holds nothing). */
bool auth_secret_parse(const char *user, const char *text, struct user_secret *out) WARN_UNUSED;
/* A deep copy; false when out of memory (dst then holds nothing). */
bool auth_secret_copy(const struct user_secret *src, struct user_secret *dst) WARN_UNUSED;
/* Frees what a parse or copy made, wiping the secret. */
void auth_secret_free(struct user_secret *u);
/* A deep copy (SET keeps the auth file in force); false when out of memory. */
bool auth_file_copy(const struct auth_file *src, struct auth_file *dst) WARN_UNUSED;

#endif
