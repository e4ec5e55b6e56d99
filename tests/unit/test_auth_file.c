/* The userlist.txt parser: the three kinds of secret, quoting, every error with its line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/auth_file.h"

/* Made by PostgreSQL 15 for the password "pencil-sharpener" (see test_auth_scram.c). */
#define PG15_VERIFIER                                   \
	"SCRAM-SHA-256$4096:QjtRuhK86Qre/kMSrnKKNg==$"  \
	"wuutit1MSOo9J8wgG5thHIhK6df84VciezeQgy6mz1Q=:" \
	"vxd/d4DtEaf22E/6YrVQmgnzRZlDEQYRn9IHNhDtVys="

static const char good[] =
	"; PgBouncer-style comment\n"
	"# shell-style comment\n"
	"\n"
	"   \t\n"
	"\"alice\" \"wonderland\"\n"
	"  \"bob\"\t\"md5889765bdb230b8711fc19d69066b0504\"   anything after is ignored\n"
	"\"carol\" \"" PG15_VERIFIER "\"\r\n"
	"\"dan \"\"the man\"\"\" \"pa\"\"ss\"\n"
	"\"eve\" \"md5-but-not-a-hash-just-a-password\"\n"
	"\"frank\"\t\t\"no newline at the end\"";

Test(auth_file, good_file)
{
	struct auth_file af;
	char err[256] = "";
	const struct user_secret *u;
	struct scram_secret expect;

	cr_assert(auth_file_parse("users.txt", good, &af, err, sizeof(err)), "%s", err);
	cr_assert_eq(af.n_users, 6);

	u = auth_file_find(&af, "alice");
	cr_assert_not_null(u);
	cr_assert_eq(u->kind, SECRET_PLAIN);
	cr_assert_str_eq(u->secret, "wonderland");
	/* keys derived at load with a fresh 16-byte salt, as PostgreSQL would store them */
	cr_assert(u->has_scram);
	cr_assert_eq(u->scram.iterations, SCRAM_DEFAULT_ITERATIONS);
	cr_assert_eq(u->scram.salt_len, 16);
	cr_assert(scram_secret_from_password("wonderland", u->scram.salt, u->scram.salt_len,
					     u->scram.iterations, &expect));
	cr_assert_arr_eq(u->scram.stored_key, expect.stored_key, SCRAM_KEY_LEN);
	cr_assert_arr_eq(u->scram.server_key, expect.server_key, SCRAM_KEY_LEN);

	u = auth_file_find(&af, "bob");
	cr_assert_not_null(u);
	cr_assert_eq(u->kind, SECRET_MD5);
	cr_assert_str_eq(u->secret, "md5889765bdb230b8711fc19d69066b0504");
	cr_assert_not(u->has_scram);

	u = auth_file_find(&af, "carol");
	cr_assert_not_null(u);
	cr_assert_eq(u->kind, SECRET_SCRAM);
	cr_assert_str_eq(u->secret, PG15_VERIFIER);
	cr_assert(u->has_scram);
	cr_assert(scram_secret_from_password("pencil-sharpener", u->scram.salt, u->scram.salt_len,
					     u->scram.iterations, &expect));
	cr_assert_arr_eq(u->scram.stored_key, expect.stored_key, SCRAM_KEY_LEN);

	u = auth_file_find(&af, "dan \"the man\"");
	cr_assert_not_null(u);
	cr_assert_str_eq(u->secret, "pa\"ss");
	cr_assert_eq(u->kind, SECRET_PLAIN);

	u = auth_file_find(&af, "eve");
	cr_assert_not_null(u);
	cr_assert_eq(u->kind, SECRET_PLAIN);

	u = auth_file_find(&af, "frank");
	cr_assert_not_null(u);
	cr_assert_str_eq(u->secret, "no newline at the end");

	cr_assert_null(auth_file_find(&af, "mallory"));
	cr_assert_null(auth_file_find(&af, "Alice"));
	cr_assert_null(auth_file_find(&af, "dan"));
	cr_assert_null(auth_file_find(&af, ""));
	auth_file_free(&af);
	cr_assert_null(af.users);
	cr_assert_eq(af.n_users, 0);
}

Test(auth_file, empty_and_comment_only_files)
{
	struct auth_file af;
	char err[256] = "";

	cr_assert(auth_file_parse("users.txt", "", &af, err, sizeof(err)));
	cr_assert_eq(af.n_users, 0);
	cr_assert_null(auth_file_find(&af, "alice"));
	auth_file_free(&af);

	cr_assert(auth_file_parse("users.txt", "; nobody\n# here\n\n", &af, err, sizeof(err)));
	cr_assert_eq(af.n_users, 0);
	auth_file_free(&af);
}

Test(auth_file, many_users_all_found)
{
	char *text = malloc(300 * 64);
	size_t off = 0;
	struct auth_file af;
	char err[256] = "", name[32];

	cr_assert_not_null(text);
	/* md5 secrets: no PBKDF2 at load, and names in no particular order */
	for (int i = 0; i < 300; i++)
		off += (size_t)sprintf(text + off, "\"user%d\" \"md5%032x\"\n", i * 7919 % 300, i);
	cr_assert(auth_file_parse("users.txt", text, &af, err, sizeof(err)), "%s", err);
	cr_assert_eq(af.n_users, 300);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		cr_assert_not_null(auth_file_find(&af, name), "%s not found", name);
	}
	cr_assert_null(auth_file_find(&af, "user300"));
	auth_file_free(&af);
	free(text);
}

/* Parses text, expects failure with exactly this message and an empty result. */
static void expect_error(const char *text, const char *message)
{
	struct auth_file af = {.users = (struct user_secret *)&af, .n_users = 42};
	char err[256] = "";

	cr_expect_not(auth_file_parse("users.txt", text, &af, err, sizeof(err)), "accepted: %s",
		      text);
	cr_expect_str_eq(err, message);
	cr_expect_null(af.users);
	cr_expect_eq(af.n_users, 0);
	auth_file_free(&af);
}

Test(auth_file, errors_name_file_line_and_why)
{
	expect_error("\"alice\" \"wonderland\n", "users.txt:1: missing closing quote");
	expect_error("; c\n\"alice\" \"wonderland\"\n\"bob\n",
		     "users.txt:3: missing closing quote");
	/* a quoted field ends at the end of its line */
	expect_error("\"alice\" \"wonder\nland\"\n", "users.txt:1: missing closing quote");
	expect_error("\n\n\"alice\"\n", "users.txt:3: missing secret for user \"alice\"");
	expect_error("\"alice\"   \t\n", "users.txt:1: missing secret for user \"alice\"");
	expect_error("\"alice\" wonderland\n", "users.txt:1: missing secret for user \"alice\"");
	expect_error("alice \"wonderland\"\n", "users.txt:1: expected a quoted user name");
	/* no blank between the fields: "" is an escaped quote, so this is one field */
	expect_error("\"frank\"\"x\"\n", "users.txt:1: missing secret for user \"frank\"x\"");
	expect_error("\"\" \"wonderland\"\n", "users.txt:1: empty user name");
	expect_error("\"alice\" \"\"\n", "users.txt:1: empty secret for user \"alice\"");
	expect_error("\"alice\" \"x\"\n\"bob\" \"y\"\n# c\n\"alice\" \"z\"\n",
		     "users.txt:4: duplicate user \"alice\" (first on line 1)");
	expect_error("\"carol\" \"SCRAM-SHA-256$4096:bad$salt:here\"\n",
		     "users.txt:1: bad SCRAM verifier for user \"carol\"");
	/* a truncated copy of a real verifier */
	expect_error("\"a\" \"x\"\n\"carol\" \"SCRAM-SHA-256$4096:QjtRuhK86Qre/kMSrnKKNg==$"
		     "wuutit1MSOo9J8wgG5thHIhK6df84VciezeQgy6mz1Q=:vxd/d4DtEaf22E\"\n",
		     "users.txt:2: bad SCRAM verifier for user \"carol\"");
}

Test(auth_file, first_bad_line_is_reported)
{
	/* duplicate on line 2 comes before the syntax error on line 3 */
	expect_error("\"a\" \"x\"\n\"a\" \"y\"\n\"b\n",
		     "users.txt:2: duplicate user \"a\" (first on line 1)");
	/* the syntax error on line 2 comes before a duplicate on line 3 */
	expect_error("\"a\" \"x\"\n\"b\n\"a\" \"y\"\n", "users.txt:2: missing closing quote");
	/* three of a kind: the second one is the error */
	expect_error("\"a\" \"x\"\n\"b\" \"x\"\n\"a\" \"y\"\n\"a\" \"z\"\n",
		     "users.txt:3: duplicate user \"a\" (first on line 1)");
}

Test(auth_file, error_never_shows_the_secret)
{
	struct auth_file af;
	char err[256] = "";

	cr_assert_not(auth_file_parse("u", "\"carol\" \"SCRAM-SHA-256$hunter2\"\n", &af, err,
				      sizeof(err)));
	cr_assert_null(strstr(err, "hunter2"));
}

Test(auth_file, small_or_missing_error_buffer)
{
	struct auth_file af;
	char err[8];

	cr_assert_not(auth_file_parse("users.txt", "\"alice\n", &af, err, sizeof(err)));
	cr_assert_str_eq(err, "users.t");
	cr_assert_not(auth_file_parse("users.txt", "\"alice\n", &af, NULL, 0));
	cr_assert_not(auth_file_load("/nonexistent/users.txt", &af, NULL, 0));
}

static char *write_temp(const char *data, size_t len)
{
	char *path = strdup("/tmp/corral-test-userlist-XXXXXX");
	int fd;

	cr_assert_not_null(path);
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

Test(auth_file, load_from_disk)
{
	char *path = write_temp(good, sizeof(good) - 1);
	struct auth_file af;
	char err[256] = "";

	cr_assert(auth_file_load(path, &af, err, sizeof(err)), "%s", err);
	cr_assert_eq(af.n_users, 6);
	cr_assert_not_null(auth_file_find(&af, "carol"));
	auth_file_free(&af);
	unlink(path);
	free(path);
}

Test(auth_file, load_errors)
{
	static const char with_nul[] = "\"a\" \"x\"\n\"b\" \"y\0z\"\n";
	char *path = write_temp(with_nul, sizeof(with_nul) - 1);
	struct auth_file af;
	char err[512] = "", expect[512];

	cr_assert_not(auth_file_load(path, &af, err, sizeof(err)));
	snprintf(expect, sizeof(expect), "%s:2: NUL byte in file", path);
	cr_assert_str_eq(err, expect);
	unlink(path);
	free(path);

	path = write_temp("\"a\" \"x\"\n\"a\" \"y\"\n", 16);
	cr_assert_not(auth_file_load(path, &af, err, sizeof(err)));
	snprintf(expect, sizeof(expect), "%s:2: duplicate user \"a\" (first on line 1)", path);
	cr_assert_str_eq(err, expect);
	unlink(path);
	free(path);

	cr_assert_not(auth_file_load("/nonexistent/users.txt", &af, err, sizeof(err)));
	cr_assert_str_eq(err, "/nonexistent/users.txt: cannot open: No such file or directory");
	cr_assert_null(af.users);

	cr_assert_not(auth_file_load("/tmp", &af, err, sizeof(err)));
	cr_assert(strncmp(err, "/tmp: ", 6) == 0, "%s", err);
}
