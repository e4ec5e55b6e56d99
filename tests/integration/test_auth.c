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

/* The error text (malloc'd) of a libpq login that must fail; the test fails if it succeeds. */
static char *login_error(const struct h_corral *c, const char *user, const char *db,
			 const char *password)
{
	char *ci = h_conninfo(c, user, db, password);
	char *err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);

	if (conn != NULL) {
		PQfinish(conn);
		cr_assert_fail("login %s succeeded; want it refused", ci);
	}
	free(ci);
	return err;
}

/* A login that must fail with sqlstate, the error text containing must_contain. */
static void expect_login_error(const struct h_corral *c, const char *user, const char *db,
			       const char *password, const char *sqlstate, const char *must_contain)
{
	char *err = login_error(c, user, db, password);

	cr_expect(strstr(err, sqlstate) != NULL, "login as %s to %s: want SQLSTATE %s in: %s", user,
		  db, sqlstate, err);
	cr_expect(strstr(err, must_contain) != NULL, "login as %s to %s: want \"%s\" in: %s", user,
		  db, must_contain, err);
	free(err);
}

/* Logs in as user/password and checks who PostgreSQL thinks we are. */
static void expect_login_ok(const struct h_corral *c, const char *user, const char *password,
			    const char *server_user)
{
	char *ci = h_conninfo(c, user, H.db, password);
	PGconn *conn = h_connect(c, ci);
	char *v = h_value(conn, "select current_user || ' ' || session_user || ' ' || "
				"current_database()");
	char *want = h_printf("%s %s %s", server_user, server_user, H.db);

	cr_expect_str_eq(v, want);
	free(v);
	free(want);
	PQfinish(conn);
	free(ci);
}

/* Whether a line of the tail of c's log holds both a and b. */
static bool log_line_has(const struct h_corral *c, const char *a, const char *b)
{
	char *tail = strdup(h_corral_log_tail(c));
	bool found = false;
	for (char *save = NULL, *line = strtok_r(tail, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save))
		found = strstr(line, a) && strstr(line, b);
	free(tail);
	return found;
}

/* libpq's own message when a server asks for a password and it has none (fe-auth.c). */
#define NO_PASSWORD "fe_sendauth: no password supplied"

Test(auth, wrong_password_and_unknown_database)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	char *err;

	expect_login_error(c, H.user, H.db, "wrong", "28P01",
			   "password authentication failed for user \"bench\"");
	/* The failed login's log line says where it came from, with its inner quotes
	 * escaped so the key=value line still parses. */
	cr_expect(h_wait_log(c,
			     "sqlstate=28P01 msg=\"password authentication failed for "
			     "user \\\"bench\\\"\"",
			     5),
		  "no escaped 28P01 line in corral's log:\n%s", h_corral_log_tail(c));
	cr_expect(log_line_has(c, "sqlstate=28P01", " peer=127.0.0.1:"),
		  "the failed login's line has no peer=127.0.0.1:PORT:\n%s", h_corral_log_tail(c));
	expect_login_error(c, H.user, "nosuchdb", H.password, "3D000",
			   "database \"nosuchdb\" does not exist");
	/*
	 * No password: libpq does not send an empty one, it gives up as soon as corral asks
	 * for a password (so nothing from corral, no SQLSTATE, is in the text), and neither
	 * side hangs.  What corral answers a client that does send one: empty_password below.
	 */
	err = login_error(c, H.user, H.db, "");
	cr_expect(strstr(err, "failed: " NO_PASSWORD) != NULL,
		  "login without a password: want \"... failed: %s\", got: %s", NO_PASSWORD, err);
	free(err);
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
	cr_assert(strncmp(verifier, "SCRAM-SHA-256$", 14) == 0, "bench's stored password is %s",
		  verifier);
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
	struct h_corral *c = h_corral_start("",
					    "bench = host=@PGHOST@ port=@PGPORT@ dbname=bench\n",
					    "\"bench\" \"secret\"\n\"md5user\" \"md5pass\"\n");

	expect_login_ok(c, H.user, H.password, H.user);
	expect_login_ok(c, H.md5_user, H.md5_password, H.md5_user);
	expect_login_ok(c, H.user, H.password, H.user);
	h_corral_stop(c);
}

/*
 * Sends a startup packet for user to db on port, expects AuthenticationMD5Password and
 * answers it with an empty PasswordMessage (what libpq never sends, other clients may);
 * returns the final reply, which must be an ErrorResponse and a close.
 */
static void send_empty_md5_password(int port, const char *user, const char *db, const char *what,
				    struct h_reply *r)
{
	static const unsigned char empty_password[] = {'p', 0, 0, 0, 5, '\0'};
	const char *const kv[] = {"user", user, "database", db, NULL};
	unsigned char buf[1024];
	size_t len = h_startup_packet(buf, sizeof buf, H_PROTOCOL_3_0, kv), body_len;
	const unsigned char *body;
	int fd = h_tcp_connect(port);
	bool closed;
	char type;

	h_send_all(fd, buf, len);
	len = 0;
	cr_assert(h_read_until_msg(fd, buf, sizeof buf, &len, 'R', 5.0, &closed),
		  "%s: no authentication request within 5 s (closed: %d)", what, closed);
	h_msg(buf, len, &type, &body, &body_len);
	cr_assert(type == 'R' && body_len == 8 && h_be32(body) == 5,
		  "%s: want AuthenticationMD5Password first, got '%c' of %zu bytes", what, type,
		  body_len);
	h_send_all(fd, empty_password, sizeof empty_password);
	h_expect_error_then_close(fd, what, "28P01", r);
}

/*
 * An empty password is refused as such, before any check against the secret: PostgreSQL
 * (auth.c, recv_password_packet) answers FATAL 28P01 "empty password returned by client",
 * which this test checks on the test cluster itself (md5user logs in with md5), and corral
 * answers the same.
 */
Test(auth, empty_password)
{
	static const char want[] = "empty password returned by client";
	struct h_corral *c = h_corral_start("auth_type = md5\n", H_BENCH_DB, NULL);
	struct h_reply r;

	send_empty_md5_password(H.pgport, H.md5_user, H.db, "PostgreSQL", &r);
	cr_expect_str_eq(r.msg, want, "PostgreSQL's message for an empty password: [%s]", r.msg);
	send_empty_md5_password(c->port, H.user, H.db, "corral", &r);
	cr_expect_str_eq(r.msg, want, "corral's message for an empty password: [%s]", r.msg);
	expect_login_ok(c, H.user, H.password, H.user);
	h_corral_stop(c);
}

/*
 * An md5 hash in the auth file cannot serve auth_type = scram-sha-256: corral -t warns
 * naming the user, and a login of that user is refused as a wrong password would be,
 * while corral's log says why (never the client's error).  A user not in the auth file
 * is logged as such too.
 */
Test(auth, md5_secret_under_scram_is_explained)
{
	char md5[33], *both = h_printf("%s%s", H.password, H.user);
	h_md5_hex(both, strlen(both), md5);
	char *users = h_printf("\"bench\" \"md5%s\"\n\"other\" \"secret\"\n", md5);
	char *ini = h_path("md5scram.ini"), *file = h_path("md5scram.txt");
	h_write_file(file, users);
	char *text = h_printf("[corral]\nlisten_port = %d\nauth_type = scram-sha-256\n"
			      "auth_file = %s\n[databases]\nbench = host=127.0.0.1 port=%d\n",
			      h_free_port(), file, H.pgport);
	h_write_file(ini, text);
	struct h_cmd r = h_run(10, "%s -t -c %s", H.corral_bin, ini);
	cr_expect_eq(r.status, 0, "corral -t: %d %s", r.status, r.err);
	cr_expect(strstr(r.err, "user bench: its secret in") &&
			  strstr(r.err, "is an md5 hash, which cannot serve auth_type = "
					"scram-sha-256"),
		  "corral -t did not warn: [%s]", r.err);
	cr_expect(!strstr(r.err, "user other"), "warned about a plaintext secret: [%s]", r.err);
	h_cmd_free(&r);

	struct h_corral *c = h_corral_start("auth_type = scram-sha-256\n", H_BENCH_DB, users);
	char *err = login_error(c, H.user, H.db, H.password);
	cr_expect(strstr(err, "28P01") && strstr(err, "password authentication failed"), "%s", err);
	cr_expect(!strstr(err, "md5"), "the client's error says too much: %s", err);
	free(err);
	cr_expect(h_wait_log(c, "event=login_refused", 5));
	cr_expect(log_line_has(c, "event=login_refused", "md5 hash, which cannot serve SCRAM"),
		  "%s", h_corral_log_tail(c));
	err = login_error(c, "nobody", H.db, "x");
	free(err);
	cr_expect(h_wait_log(c, "user not in auth_file", 5), "%s", h_corral_log_tail(c));
	h_corral_stop(c);
	free(text);
	free(ini);
	free(file);
	free(users);
	free(both);
}
