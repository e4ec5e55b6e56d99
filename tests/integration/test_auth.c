/*
 * Client authentication against corral (trust, md5, scram-sha-256 with every kind of
 * auth-file secret), login errors, and server logins as the client's own user.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(auth, H_SUITE);

/* A login that must fail with sqlstate, the error text containing must_contain. */
static void expect_login_error(const struct h_corral *c, const char *user, const char *db,
			       const char *password, const char *sqlstate, const char *must_contain)
{
	char *ci = h_conninfo(c, user, db, password);
	char *err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);

	if (conn != NULL) {
		PQfinish(conn);
		cr_assert_fail("login %s succeeded; want %s", ci, sqlstate);
	}
	cr_expect(strstr(err, sqlstate) != NULL, "login %s: want SQLSTATE %s in: %s", ci, sqlstate, err);
	cr_expect(strstr(err, must_contain) != NULL, "login %s: want \"%s\" in: %s", ci, must_contain, err);
	free(err);
	free(ci);
}

/* Logs in as user/password and checks who PostgreSQL thinks we are. */
static void expect_login_ok(const struct h_corral *c, const char *user, const char *password,
			    const char *server_user)
{
	char *ci = h_conninfo(c, user, H.db, password);
	PGconn *conn = h_connect(c, ci);
	char *v = h_value(conn, "select current_user || ' ' || session_user || ' ' || current_database()");
	char *want = h_printf("%s %s %s", server_user, server_user, H.db);

	cr_expect_str_eq(v, want);
	free(v);
	free(want);
	PQfinish(conn);
	free(ci);
}

Test(auth, wrong_password_and_unknown_database)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);

	expect_login_error(c, H.user, H.db, "wrong", "28P01",
			   "password authentication failed for user \"bench\"");
	expect_login_error(c, H.user, "nosuchdb", H.password, "3D000",
			   "database \"nosuchdb\" does not exist");
	/* No password at all is a failed password login too, not a hang. */
	expect_login_error(c, H.user, H.db, "", "", "");
	/* corral keeps serving. */
	expect_login_ok(c, H.user, H.password, H.user);
	h_psql_expect(c, "select 'ok'", "ok\n");
	h_corral_stop(c);
}

static void check_auth(const char *auth_type, const char *secret, bool check_wrong_password)
{
	char *settings = h_printf("auth_type = %s\n", auth_type);
	char *users = h_printf("\"bench\" \"%s\"\n", secret);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, users);

	expect_login_ok(c, H.user, H.password, H.user);
	if (check_wrong_password)
		expect_login_error(c, H.user, H.db, "wrong", "28P01",
				   "password authentication failed for user \"bench\"");
	expect_login_ok(c, H.user, H.password, H.user);
	h_corral_stop(c);
	free(settings);
	free(users);
}

Test(auth, md5_with_plaintext_secret)
{
	check_auth("md5", "secret", true);
}

Test(auth, md5_with_md5_secret)
{
	char md5[33], *secret, *both = h_printf("%s%s", H.password, H.user);

	h_md5_hex(both, strlen(both), md5);
	secret = h_printf("md5%s", md5);
	check_auth("md5", secret, true);
	free(secret);
	free(both);
}

Test(auth, scram_with_plaintext_secret)
{
	check_auth("scram-sha-256", "secret", true);
}

Test(auth, scram_with_verifier_from_postgres)
{
	PGconn *su = h_superuser();
	char *verifier = h_value(su, "select rolpassword from pg_authid where rolname = 'bench'");

	PQfinish(su);
	cr_assert(strncmp(verifier, "SCRAM-SHA-256$", 14) == 0, "bench's stored password is %s", verifier);
	check_auth("scram-sha-256", verifier, true);
	free(verifier);
}

Test(auth, trust)
{
	struct h_corral *c = h_corral_start("auth_type = trust\n", H_BENCH_DB, NULL);

	expect_login_ok(c, H.user, NULL, H.user);
	expect_login_ok(c, H.user, "anything", H.user);
	h_corral_stop(c);
}

/*
 * A database line without user= and password=: corral logs in to PostgreSQL as the
 * client's user with the plaintext password from the auth file.  md5user's password
 * is stored as md5 in PostgreSQL, so that login is an md5 one.
 */
Test(auth, server_login_as_client_user)
{
	struct h_corral *c = h_corral_start("", "bench = host=@PGHOST@ port=@PGPORT@ dbname=bench\n",
					    "\"bench\" \"secret\"\n\"md5user\" \"md5pass\"\n");

	expect_login_ok(c, H.user, H.password, H.user);
	expect_login_ok(c, H.md5_user, H.md5_password, H.md5_user);
	expect_login_ok(c, H.user, H.password, H.user);
	h_corral_stop(c);
}
