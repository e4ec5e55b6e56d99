/*
 * auth_type = hba over loopback: the first pg_hba.conf line matching address, database
 * and user picks the method (trust, reject, md5, scram-sha-256, password); no line
 * gives PostgreSQL's 28000; a reload reads the rules again; a bad file or trust on a
 * non-loopback listen_addr stops corral at start with the file, line and reason.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(hba, H_SUITE);

#define USERS                     \
	"\"bench\" \"secret\"\n"  \
	"\"alice\" \"wonder\"\n"  \
	"\"mia\" \"md5pass\"\n"   \
	"\"pat\" \"plainpass\"\n" \
	"\"rob\" \"robpass\"\n"   \
	"\"far\" \"farpass\"\n"

/* Writes the rules to DIR/hba.conf and starts corral with auth_type = hba on them. */
static struct h_corral *start_with_rules(const char *rules)
{
	char *path = h_path("hba.conf");
	h_write_file(path, rules);
	char *settings = h_printf("auth_type = hba\nauth_hba_file = %s\n", path);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, USERS);
	free(settings);
	free(path);
	return c;
}

static void expect_login_ok(const struct h_corral *c, const char *user, const char *password)
{
	char *ci = h_conninfo(c, user, H.db, password);
	PGconn *conn = h_connect(c, ci);
	char *v = h_value(conn, "select 40 + 2");
	cr_expect_str_eq(v, "42", "login as %s", user);
	free(v);
	PQfinish(conn);
	free(ci);
}

static void expect_db_login_error(const struct h_corral *c, const char *user, const char *db,
				  const char *password, const char *sqlstate,
				  const char *must_contain)
{
	char *ci = h_conninfo(c, user, db, password);
	char *err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);
	if (conn) {
		PQfinish(conn);
		cr_assert_fail("login as %s succeeded; want it refused", user);
	}
	cr_expect(strstr(err, sqlstate) != NULL, "login as %s: want SQLSTATE %s in: %s", user,
		  sqlstate, err);
	cr_expect(strstr(err, must_contain) != NULL, "login as %s: want \"%s\" in: %s", user,
		  must_contain, err);
	free(err);
	free(ci);
}

static void expect_login_error(const struct h_corral *c, const char *user, const char *password,
			       const char *sqlstate, const char *must_contain)
{
	expect_db_login_error(c, user, H.db, password, sqlstate, must_contain);
}

#define RULES                                                   \
	"# first match decides\n"                               \
	"host bench alice 127.0.0.1/32 trust\n"                 \
	"host all rob 127.0.0.0/8 reject\n"                     \
	"host bench mia 127.0.0.1 255.255.255.255 md5\n"        \
	"host bench pat 127.0.0.1/32 password\n"                \
	"host all far 10.0.0.0/8 trust   # excludes loopback\n" \
	"host bench alice,bench ::1/128 reject\n"               \
	"hostssl all all all trust       # TLS is off: never\n" \
	"hostnossl bench,other bench 127.0.0.1/32 scram-sha-256\n"

Test(hba, methods_by_line)
{
	struct h_corral *c = start_with_rules(RULES);

	/* trust: in without a password. */
	expect_login_ok(c, "alice", NULL);
	/* scram-sha-256: the password is asked for and checked. */
	expect_login_ok(c, "bench", "secret");
	expect_login_error(c, "bench", "wrong", "28P01",
			   "password authentication failed for user \"bench\"");
	expect_login_error(c, "bench", NULL, "", "fe_sendauth: no password supplied");
	/* md5 and password (cleartext) against the auth file's plain secrets. */
	expect_login_ok(c, "mia", "md5pass");
	expect_login_error(c, "mia", "nope", "28P01",
			   "password authentication failed for user \"mia\"");
	expect_login_ok(c, "pat", "plainpass");
	expect_login_error(c, "pat", "nope", "28P01",
			   "password authentication failed for user \"pat\"");
	/* reject: PostgreSQL's wording, even with the right password. */
	expect_login_error(c, "rob", "robpass", "28000",
			   "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"rob\", "
			   "database \"bench\", no encryption");
	/* A CIDR that excludes 127.0.0.1, and a user no line names: no entry. */
	expect_login_error(c, "far", "farpass", "28000",
			   "no pg_hba.conf entry for host \"127.0.0.1\", user \"far\", database "
			   "\"bench\", no encryption");
	expect_login_error(c, "nobody", "x", "28000",
			   "no pg_hba.conf entry for host \"127.0.0.1\", user \"nobody\", "
			   "database \"bench\", no encryption");
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

Test(hba, reload_reads_the_rules_again)
{
	struct h_corral *c = start_with_rules("host all alice 127.0.0.1/32 trust\n");
	expect_login_ok(c, "alice", NULL);

	char *path = h_path("hba.conf");
	h_write_file(path, "host all alice 127.0.0.1/32 reject\n");
	int before = h_log_count(c, "event=reload_done");
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log_count(c, "event=reload_done", before + 1, 5.0),
		  "the reload was not applied:\n%s", h_corral_log_tail(c));
	expect_login_error(c, "alice", NULL, "28000", "pg_hba.conf rejects connection");

	/* A bad file is refused whole: the rules in force stay. */
	h_write_file(path, "host all alice 127.0.0.1/32 trust\nhost all all samenet md5\n");
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log(c, "event=reload_failed", 5.0), "no refusal:\n%s",
		  h_corral_log_tail(c));
	cr_expect(h_wait_log(c, "hba.conf:2: samenet is not supported", 1.0), "%s",
		  h_corral_log_tail(c));
	expect_login_error(c, "alice", NULL, "28000", "pg_hba.conf rejects connection");
	free(path);
	h_corral_stop(c);
}

/* corral -t (and a real start) on DIR/x.ini: non-zero, and stderr holds want. */
static void expect_start_refused(const char *ini_text, const char *want)
{
	char *ini = h_path("x.ini");
	h_write_file(ini, ini_text);
	const char *modes[] = {"-t -c", "-c"};
	for (size_t i = 0; i < 2; i++) {
		struct h_cmd r = h_run(10, "%s %s %s", H.corral_bin, modes[i], ini);
		cr_expect_eq(r.status, 1, "corral %s: status %d\nstderr: %s", modes[i], r.status,
			     r.err);
		cr_expect(strstr(r.err, want) != NULL, "corral %s: want \"%s\" in stderr: [%s]",
			  modes[i], want, r.err);
		h_cmd_free(&r);
	}
	free(ini);
}

Test(hba, refused_at_start)
{
	int port = h_free_port();
	char *hba = h_path("bad-hba.conf"), *text, *want;
	h_write_file(hba, "host all all 127.0.0.1/32 trust\n\nhost all +admins all md5\n");

	text = h_printf("[corral]\nlisten_port = %d\nauth_type = hba\nauth_hba_file = %s\n", port,
			hba);
	want = h_printf("corral: %s:3: \"+admins\": +group membership is not supported", hba);
	expect_start_refused(text, want);
	free(text);
	free(want);

	text = h_printf("[corral]\nlisten_port = %d\nauth_type = hba\n"
			"auth_hba_file = no-such-hba.conf\n",
			port);
	expect_start_refused(text, ":4: auth_hba_file: cannot open \"no-such-hba.conf\"");
	free(text);

	/* trust for every host that reaches a public address: only an hba file may say so. */
	text = h_printf("[corral]\nlisten_addr = 0.0.0.0\nlisten_port = %d\nauth_type = trust\n",
			port);
	expect_start_refused(text, ":4: auth_type: trust lets anyone who reaches listen_addr = "
				   "0.0.0.0 log in as any user without a password; listen on "
				   "127.0.0.1 or ::1, or use auth_type = hba");
	free(text);

	/* The same address with hba and a trust line is accepted. */
	h_write_file(hba, "host all all 127.0.0.1/32 trust\n");
	text = h_printf("[corral]\nlisten_addr = 0.0.0.0\nlisten_port = %d\nauth_type = hba\n"
			"auth_hba_file = %s\n",
			port, hba);
	char *ini = h_path("ok.ini");
	h_write_file(ini, text);
	struct h_cmd r = h_run(10, "%s -t -c %s", H.corral_bin, ini);
	cr_expect_eq(r.status, 0, "hba with trust on 0.0.0.0: status %d\nstderr: %s", r.status,
		     r.err);
	h_cmd_free(&r);
	free(ini);
	free(text);
	free(hba);
}

/* A console command's error text (malloc'd), "" when it succeeded. */
static char *console_error(PGconn *a, const char *cmd)
{
	PGresult *r = h_exec(a, cmd);
	char *msg = strdup(PQresultStatus(r) == PGRES_COMMAND_OK ? "" : PQresultErrorMessage(r));
	PQclear(r);
	return msg;
}

/* SET keeps the rules in force; the rules' file and a switch to hba need a RELOAD. */
Test(hba, set_keeps_the_rules)
{
	char *path = h_path("hba.conf");
	h_write_file(path, "host corral bench 127.0.0.1/32 scram-sha-256\n"
			   "host bench alice 127.0.0.1/32 trust\n"
			   "host all rob all reject\n");
	char *settings = h_printf("auth_type = hba\nauth_hba_file = %s\nadmin_users = bench\n",
				  path);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, USERS);
	/* The console (admin_db) is a database like any other for the rules. */
	expect_db_login_error(c, "alice", "corral", NULL, "28000",
			      "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", "
			      "database \"corral\"");
	char *ci = h_conninfo(c, "bench", "corral", "secret");
	PGconn *a = h_connect(c, ci);
	char *msg = console_error(a, "SET default_pool_size = 7");
	cr_expect_str_eq(msg, "");
	free(msg);
	msg = console_error(a, "SET auth_hba_file = /etc/passwd");
	cr_expect(strstr(msg, "SET: auth_hba_file: change it in the file and RELOAD"), "%s", msg);
	free(msg);
	/* After the SET the same rules decide. */
	expect_login_ok(c, "alice", NULL);
	expect_login_error(c, "rob", "robpass", "28000", "pg_hba.conf rejects connection");
	/* Leaving hba by SET is allowed: the auth file decides again. */
	msg = console_error(a, "SET auth_type = scram-sha-256");
	cr_expect_str_eq(msg, "");
	free(msg);
	expect_login_error(c, "alice", NULL, "", "fe_sendauth: no password supplied");
	expect_login_ok(c, "rob", "robpass");
	/* ... and coming back needs the file read again. */
	msg = console_error(a, "SET auth_type = hba");
	cr_expect(strstr(msg, "hba reads auth_hba_file: change it in the file and RELOAD"), "%s",
		  msg);
	free(msg);
	PQfinish(a);
	free(ci);
	free(settings);
	free(path);
	h_corral_stop(c);
}

/* samehost: 127.0.0.1 is an address of this machine (lo); a sameuser database line. */
Test(hba, samehost_and_sameuser)
{
	struct h_corral *c = start_with_rules("host sameuser all all reject\n"
					      "host all alice samehost trust\n");
	expect_login_ok(c, "alice", NULL);
	expect_db_login_error(c, "bench", "bench", "secret", "28000",
			      "pg_hba.conf rejects connection for host \"127.0.0.1\", user "
			      "\"bench\", database \"bench\"");
	expect_login_error(c, "rob", "robpass", "28000", "no pg_hba.conf entry");
	h_corral_stop(c);
}
