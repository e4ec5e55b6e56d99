/*
 * md5 authentication.  Expected values: `printf 'secretbench' | md5sum`, and
 * "md5c41f..." is what PostgreSQL 15 stored for CREATE ROLE bench2 PASSWORD 'secret'
 * with password_encryption = md5.  The salted response was computed with python3.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "proxy/auth_md5.h"

#define BENCH_HASH "md5889765bdb230b8711fc19d69066b0504"
#define BENCH2_HASH_FROM_PG "md5c41fd6fde05c2d13ba8975297f9289e4"
/* "md5" + md5hex("889765bd...0504" || 01 02 03 04) */
#define BENCH_RESPONSE "md58d824187b66621214caa97994f319ba8"

static const uint8_t salt[4] = {1, 2, 3, 4};

Test(auth_md5, password_hash_known_values)
{
	char out[MD5_PASSWD_LEN + 1];

	md5_password_hash("secret", "bench", out);
	cr_assert_str_eq(out, BENCH_HASH);
	md5_password_hash("secret", "bench2", out);
	cr_assert_str_eq(out, BENCH2_HASH_FROM_PG);
}

Test(auth_md5, salted_response_known_value)
{
	char out[MD5_PASSWD_LEN + 1];

	md5_salted_response(BENCH_HASH, salt, out);
	cr_assert_str_eq(out, BENCH_RESPONSE);
	/* an uppercase hash in a hand-edited file means the same password */
	md5_salted_response("md5889765BDB230B8711FC19D69066B0504", salt, out);
	cr_assert_str_eq(out, BENCH_RESPONSE);
	/* not a hash: nothing any client could send */
	md5_salted_response("secret", salt, out);
	cr_assert_str_eq(out, "");
}

Test(auth_md5, check_plaintext_secret)
{
	cr_assert(md5_check_response("secret", false, "bench", salt, BENCH_RESPONSE));
	cr_assert_not(md5_check_response("Secret", false, "bench", salt, BENCH_RESPONSE));
	cr_assert_not(md5_check_response("secret", false, "bench2", salt, BENCH_RESPONSE));
	cr_assert_not(md5_check_response("secret", false, "bench", (const uint8_t[4]){1, 2, 3, 5},
					 BENCH_RESPONSE));
}

Test(auth_md5, check_md5_secret)
{
	cr_assert(md5_check_response(BENCH_HASH, true, "bench", salt, BENCH_RESPONSE));
	cr_assert_not(
		md5_check_response(BENCH2_HASH_FROM_PG, true, "bench2", salt, BENCH_RESPONSE));
	/* the user name is already inside a stored hash */
	cr_assert(md5_check_response(BENCH_HASH, true, "anyone", salt, BENCH_RESPONSE));
}

Test(auth_md5, check_rejects_malformed_responses)
{
	cr_assert_not(md5_check_response("secret", false, "bench", salt, ""));
	cr_assert_not(md5_check_response("secret", false, "bench", salt, "md5"));
	cr_assert_not(md5_check_response("secret", false, "bench", salt, BENCH_RESPONSE "0"));
	cr_assert_not(md5_check_response("secret", false, "bench", salt,
					 "md58d824187b66621214caa97994f319ba"));
	cr_assert_not(md5_check_response("secret", false, "bench", salt,
					 "MD58d824187b66621214caa97994f319ba8"));
	cr_assert_not(md5_check_response("secret", false, "bench", salt, NULL));
	/* a client that sends the stored hash itself has not proven anything */
	cr_assert_not(md5_check_response(BENCH_HASH, true, "bench", salt, BENCH_HASH));
	/* a "stored md5" that is not one never matches */
	cr_assert_not(md5_check_response("md5nothex", true, "bench", salt, BENCH_RESPONSE));
}

Test(auth_md5, is_hash)
{
	cr_assert(md5_is_hash(BENCH_HASH));
	cr_assert(md5_is_hash("md5889765BDB230B8711FC19D69066B0504"));
	cr_assert_not(md5_is_hash("md5889765bdb230b8711fc19d69066b050"));
	cr_assert_not(md5_is_hash("md5889765bdb230b8711fc19d69066b05044"));
	cr_assert_not(md5_is_hash("md5889765bdb230b8711fc19d69066b050g"));
	cr_assert_not(md5_is_hash("xyz889765bdb230b8711fc19d69066b0504"));
	cr_assert_not(md5_is_hash(""));
}
