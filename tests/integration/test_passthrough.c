/*
 * SCRAM pass-through (pool/server_login_raw.c): a database line without a password,
 * an auth file holding only the user's SCRAM verifier as pg_authid has it, and the
 * cluster demanding scram-sha-256 over TCP (run.sh's pg_hba).  corral logs in to
 * PostgreSQL with the keys of the client's own proof: queries work, a second client
 * and a second server reuse the keys, a wrong password neither gets in nor spoils
 * them, a verifier with another salt than PostgreSQL's gets PostgreSQL's refusal (and
 * a hint in corral's log), TLS to the server and cancel requests work.
 * Each test has roles of its own (tests run two at a time).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/fake_server.h"
#include "tests/integration/harness.h"

TestSuite(passthrough, H_SUITE);

#define PT_PASSWORD "pt-secret"

/* The [databases] line: no user, no password (options: more keywords). */
static char *db_line(const char *options)
{
	return h_printf("pt = host=@PGHOST@ port=@PGPORT@ dbname=bench%s\n", options);
}

static struct h_corral *start(const char *user, const char *verifier, const char *options)
{
	char *users = h_printf("\"%s\" \"%s\"\n", user, verifier);
	char *dbs = db_line(options);
	struct h_corral *c = h_corral_start("", dbs, users);
	free(users);
	free(dbs);
	return c;
}

static char *login_error(const struct h_corral *c, const char *user, const char *password)
{
	char *ci = h_conninfo(c, user, "pt", password), *err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);
	if (conn) {
		PQfinish(conn);
		cr_assert_fail("login %s succeeded; want it refused", ci);
	}
	free(ci);
	return err;
}

Test(passthrough, scram_keys_log_in_and_are_reused, .timeout = 90)
{
	PGconn *su = h_superuser();
	char *verifier = fake_make_role(su, "pt_user1", PT_PASSWORD);
	struct h_corral *c = start("pt_user1", verifier, " pool_size=3");
	char *ci = h_conninfo(c, "pt_user1", "pt", PT_PASSWORD);

	/* The first client's proof gives the keys; the server login uses them. */
	PGconn *a = h_connect(c, ci);
	h_expect_value(a, "select current_user || ' ' || current_database()", "pt_user1 bench");
	cr_expect(h_wait_log(c, "event=server_login ", 5), "no server login:\n%s",
		  h_corral_log_tail(c));

	/* A wrong password is refused by corral and does not spoil the keys. */
	char *err = login_error(c, "pt_user1", "wrong");
	cr_expect(strstr(err, "28P01") != NULL, "wrong password: %s", err);
	free(err);

	/* a holds its server in a transaction: b's needs a second login with the keys. */
	h_exec_ok(a, "begin");
	h_exec_ok(a, "select 1");
	PGconn *b = h_connect(c, ci);
	h_expect_value(b, "select current_user", "pt_user1");
	cr_expect_eq(h_pg_backends("bench", "pt_user1"), 2, "two servers of pt_user1");
	h_exec_ok(a, "commit");

	/* The secret never reaches the log. */
	char *log = h_read_file(c->log, NULL);
	char *stored = strchr(verifier, '$');
	stored = stored ? strchr(stored + 1, '$') : NULL;
	cr_assert(stored);
	char *colon = strchr(stored, ':');
	*colon = '\0';
	cr_expect(strstr(log, stored + 1) == NULL, "the StoredKey is in corral's log");
	cr_expect(strstr(log, PT_PASSWORD) == NULL, "the password is in corral's log");
	free(log);

	/* Cancel requests reach a pass-through server (its own BackendKeyData). */
	cr_assert(PQsendQuery(b, "select pg_sleep(30)"));
	double deadline = h_now() + 10;
	PGresult *res = NULL;
	while (!res && h_now() < deadline) {
		char e[256];
		PGcancel *cn = PQgetCancel(b);
		cr_assert_eq(PQcancel(cn, e, sizeof(e)), 1, "PQcancel: %s", e);
		PQfreeCancel(cn);
		/* A cancel that reached PostgreSQL before the sleep began cancels nothing:
		 * wait a second for the answer, else cancel again. */
		double until = h_now() + 1;
		while (PQisBusy(b) && h_now() < until) {
			struct pollfd pfd = {.fd = PQsocket(b), .events = POLLIN};
			(void)poll(&pfd, 1, 100);
			cr_assert(PQconsumeInput(b), "connection lost: %s", PQerrorMessage(b));
		}
		if (!PQisBusy(b))
			res = PQgetResult(b);
	}
	cr_assert(res, "no answer after cancelling");
	cr_expect_str_eq(h_sqlstate(res), "57014", "cancelled: %s", PQresultErrorMessage(res));
	PQclear(res);
	while ((res = PQgetResult(b)))
		PQclear(res);
	h_expect_value(b, "select 'after cancel'", "after cancel");

	PQfinish(a);
	PQfinish(b);
	h_expect_new_client(c, ci, "select 2", "2");
	free(ci);
	h_corral_stop(c);
	free(verifier);
	PQfinish(su);
}

Test(passthrough, verifier_with_another_salt_is_refused_by_postgres, .timeout = 60)
{
	PGconn *su = h_superuser();
	char *mine = fake_make_role(su, "pt_user2", PT_PASSWORD);
	/* The same password, another salt: right for corral, wrong for PostgreSQL. */
	char *other = fake_make_role(su, "pt_other2", PT_PASSWORD);
	cr_assert_str_neq(mine, other);
	struct h_corral *c = start("pt_user2", other, "");

	char *err = login_error(c, "pt_user2", PT_PASSWORD);
	cr_expect(strstr(err, "password authentication failed for user \"pt_user2\"") != NULL,
		  "want PostgreSQL's refusal: %s", err);
	free(err);
	cr_expect(h_wait_log(c, "event=scram_passthrough_refused", 5),
		  "no hint in corral's log:\n%s", h_corral_log_tail(c));
	cr_expect(h_wait_log(c, "verifier=other_salt_or_iterations", 1), "%s",
		  h_corral_log_tail(c));
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
	free(mine);
	free(other);
	PQfinish(su);
}

/* "t" if the server connection behind conn is TLS (pg_stat_ssl), else "f". */
static char *server_ssl(PGconn *su, PGconn *conn)
{
	char *pid = h_value(conn, "select pg_backend_pid()");
	char *sql = h_printf("select case when ssl then 't' else 'f' end from pg_stat_ssl "
			     "where pid = %s",
			     pid);
	char *v = h_value(su, sql);
	free(sql);
	free(pid);
	return v;
}

Test(passthrough, tls_to_the_server, .timeout = 60)
{
	PGconn *su = h_superuser();
	char *verifier = fake_make_role(su, "pt_user3", PT_PASSWORD);
	char *users0 = h_printf("\"pt_user3\" \"%s\"\n\"ptadmin\" \"adminpw\"\n", verifier);
	char *dbs0 = db_line(" sslmode=require");
	struct h_corral *c = h_corral_start("admin_users = ptadmin\n", dbs0, users0);
	free(users0);
	free(dbs0);
	char *ci = h_conninfo(c, "pt_user3", "pt", PT_PASSWORD);
	PGconn *conn = h_connect(c, ci);
	char *v = server_ssl(su, conn);
	cr_expect_str_eq(v, "t", "pg_stat_ssl for a sslmode=require pass-through server");
	free(v);
	h_expect_value(conn, "select count(*) from generate_series(1, 100000)", "100000");

	/* SHOW SERVERS knows the pass-through server's socket, TLS and backend pid. */
	char *adm_ci = h_conninfo(c, "ptadmin", "corral", "adminpw");
	PGconn *adm = h_connect(c, adm_ci);
	PGresult *r = h_exec(adm, "SHOW SERVERS");
	cr_assert_eq(PQntuples(r), 1, "%s", PQresultErrorMessage(r));
	cr_expect(strncmp(PQgetvalue(r, 0, PQfnumber(r, "tls")), "TLSv1.", 6) == 0, "tls: [%s]",
		  PQgetvalue(r, 0, PQfnumber(r, "tls")));
	cr_expect_gt(atoi(PQgetvalue(r, 0, PQfnumber(r, "remote_pid"))), 0);
	cr_expect_gt(atoi(PQgetvalue(r, 0, PQfnumber(r, "port"))), 0);
	PQclear(r);
	PQfinish(adm);
	free(adm_ci);
	PQfinish(conn);

	/* verify-full without a CA file: refused with a clear reason, corral stays up. */
	h_corral_stop(c);
	c = start("pt_user3", verifier, " sslmode=verify-full");
	char *err = login_error(c, "pt_user3", PT_PASSWORD);
	cr_expect(strstr(err, "sslrootcert") != NULL, "verify-full without a CA: %s", err);
	free(err);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
	free(ci);

	/* verify-full against the cluster's certificate (CN=localhost, its own root); the
	 * name "localhost" may resolve to ::1 first, where nothing listens. */
	char *dbs = h_printf("pt = host=localhost port=@PGPORT@ dbname=bench sslmode=verify-full "
			     "sslrootcert=%s/server.crt\n",
			     H.sockdir);
	char *users = h_printf("\"pt_user3\" \"%s\"\n", verifier);
	c = h_corral_start("", dbs, users);
	ci = h_conninfo(c, "pt_user3", "pt", PT_PASSWORD);
	conn = h_connect(c, ci);
	v = server_ssl(su, conn);
	cr_expect_str_eq(v, "t", "pg_stat_ssl for a verify-full pass-through server");
	free(v);
	PQfinish(conn);
	free(ci);
	h_corral_stop(c);
	free(dbs);

	/* Another root: the certificate check fails, the log says so. */
	dbs = h_printf("pt = host=localhost port=@PGPORT@ dbname=bench sslmode=verify-ca "
		       "sslrootcert=/etc/ssl/certs/ca-certificates.crt\n");
	c = h_corral_start("", dbs, users);
	err = login_error(c, "pt_user3", PT_PASSWORD);
	cr_expect(strstr(err, "certificate verify failed") != NULL, "another root: %s", err);
	free(err);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
	free(dbs);
	free(users);
	free(verifier);
	PQfinish(su);
}

/* Role user (its verifier alone in the auth file) logs in with PT_PASSWORD to pt of
 * corral with the [databases] lines dbs; its session's current_user is want. */
static void expect_pt_login(const char *user, const char *dbs, const char *want)
{
	PGconn *su = h_superuser();
	char *verifier = fake_make_role(su, user, PT_PASSWORD);
	char *users = h_printf("\"%s\" \"%s\"\n", user, verifier);
	struct h_corral *c = h_corral_start("", dbs, users);
	char *ci = h_conninfo(c, user, "pt", PT_PASSWORD);
	PGconn *conn = h_connect(c, ci);
	h_expect_value(conn, "select current_user", want);
	PQfinish(conn);
	free(ci);
	free(users);
	h_corral_stop(c);
	free(verifier);
	PQfinish(su);
}

/* A Unix socket (trust in the harness: the server says AuthenticationOk at once). */
Test(passthrough, unix_socket, .timeout = 60)
{
	char *dbs = h_printf("pt = host=%s port=@PGPORT@ dbname=bench\n", H.sockdir);
	expect_pt_login("pt_user5", dbs, "pt_user5");
	free(dbs);
}

Test(passthrough, no_keys_no_passthrough_for_a_fixed_user, .timeout = 60)
{
	/* A line with user= logs in as that user: no pass-through, the line's password. */
	expect_pt_login(
		"pt_user4",
		"pt = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret\n",
		"bench");
}

/* md5 pass-through: the auth file's md5 hash (as pg_authid has it) answers the
 * server's md5 request (run.sh's pg_hba asks md5user for md5 over TCP). */
Test(passthrough, md5_hash_logs_in, .timeout = 60)
{
	PGconn *su = h_superuser();
	char *sql = h_printf("select rolpassword from pg_authid where rolname = '%s'", H.md5_user);
	char *hash = h_value(su, sql);
	cr_assert(strncmp(hash, "md5", 3) == 0, "%s's secret: %s", H.md5_user, hash);
	char *users = h_printf("\"%s\" \"%s\"\n", H.md5_user, hash);
	char *dbs = db_line("");
	struct h_corral *c = h_corral_start("auth_type = md5\n", dbs, users);
	char *ci = h_conninfo(c, H.md5_user, "pt", H.md5_password);
	PGconn *conn = h_connect(c, ci);
	h_expect_value(conn, "select current_user", H.md5_user);
	PQfinish(conn);
	char *log = h_read_file(c->log, NULL);
	cr_expect(strstr(log, hash + 3) == NULL, "the md5 hash is in corral's log");
	free(log);
	free(ci);
	h_corral_stop(c);
	free(dbs);
	free(users);
	free(hash);
	free(sql);
	PQfinish(su);
}

/* A cleartext password (hba method "password") checked against the verifier gives the
 * same keys a SCRAM proof would. */
Test(passthrough, cleartext_password_gives_the_keys_too, .timeout = 60)
{
	PGconn *su = h_superuser();
	char *verifier = fake_make_role(su, "pt_user6", PT_PASSWORD);
	char *hba = h_path("hba.conf");
	h_write_file(hba, "host all all 127.0.0.1/32 password\n");
	char *settings = h_printf("auth_type = hba\nauth_hba_file = %s\n", hba);
	char *users = h_printf("\"pt_user6\" \"%s\"\n", verifier);
	char *dbs = db_line("");
	struct h_corral *c = h_corral_start(settings, dbs, users);
	char *ci = h_conninfo(c, "pt_user6", "pt", PT_PASSWORD);
	PGconn *conn = h_connect(c, ci);
	h_expect_value(conn, "select current_user", "pt_user6");
	PQfinish(conn);
	char *err = login_error(c, "pt_user6", "wrong");
	cr_expect(strstr(err, "28P01") != NULL, "wrong password: %s", err);
	free(err);
	free(ci);
	h_corral_stop(c);
	free(dbs);
	free(users);
	free(settings);
	free(hba);
	free(verifier);
	PQfinish(su);
}

/* ---- a server that does not know the verifier ---- */

struct fake_pg {
	int listen_fd;
	char server_first_tail[200]; /* ",s=<salt>,i=<iterations>" from the verifier */
	bool sent_final;
};

static void *fake_pg_main(void *arg)
{
	struct fake_pg *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t len;
	char *m = fake_read_msg(fd, true, &len); /* StartupMessage (sslmode=disable) */
	free(m);
	cr_assert(fake_send_auth(fd, 10, "SCRAM-SHA-256\0", 15));
	m = fake_read_msg(fd, false, &len); /* SASLInitialResponse */
	if (m) {
		const char *r = memmem(m, len, ",r=", 3);
		char first[400];
		snprintf(first, sizeof(first), "r=%.*sFAKESERVERNONCE%s", r ? 24 : 0,
			 r ? r + 3 : "", f->server_first_tail);
		cr_assert(fake_send_auth(fd, 11, first, strlen(first)));
		free(m);
		m = fake_read_msg(fd, false, &len); /* client-final */
	}
	if (m) {
		/* A signature made without ServerKey, then "ok" as if all were well. */
		const char *v = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
		cr_assert(fake_send_auth(fd, 12, v, strlen(v)));
		cr_assert(fake_send_auth(fd, 0, "", 0));
		static const char ready[] = {'Z', 0, 0, 0, 5, 'I'};
		send(fd, ready, sizeof(ready), MSG_NOSIGNAL);
		f->sent_final = true;
		free(m);
		char b;
		while (recv(fd, &b, 1, 0) > 0) /* until corral hangs up */
			;
	}
	close(fd);
	return NULL;
}

Test(passthrough, server_without_the_verifier_is_refused, .timeout = 60)
{
	PGconn *su = h_superuser();
	char *verifier = fake_make_role(su, "pt_user7", PT_PASSWORD);
	struct fake_pg f = {0};
	/* "SCRAM-SHA-256$<iter>:<salt>$...": the salt and iterations a real server would send. */
	const char *iter = strchr(verifier, '$') + 1, *salt = strchr(iter, ':') + 1;
	const char *salt_end = strchr(salt, '$');
	snprintf(f.server_first_tail, sizeof(f.server_first_tail), ",s=%.*s,i=%.*s",
		 (int)(salt_end - salt), salt, (int)(salt - 1 - iter), iter);
	int port;
	f.listen_fd = fake_listen(4, &port);
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, fake_pg_main, &f) == 0);

	char *users = h_printf("\"pt_user7\" \"%s\"\n", verifier);
	char *dbs = h_printf("pt = host=127.0.0.1 port=%d dbname=bench sslmode=disable\n", port);
	struct h_corral *c = h_corral_start("", dbs, users);
	char *err = login_error(c, "pt_user7", PT_PASSWORD);
	cr_expect(strstr(err, "SCRAM signature is wrong") != NULL, "want a refusal: %s", err);
	free(err);
	shutdown(f.listen_fd, SHUT_RDWR);
	pthread_join(t, NULL);
	close(f.listen_fd);
	cr_expect(f.sent_final, "the fake server did not get to its signature");
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
	free(dbs);
	free(users);
	free(verifier);
	PQfinish(su);
}

/* ---- auth_query + pass-through: no password on disk for the user ---- */

/*
 * A user that exists only in PostgreSQL: the auth file holds auth_user's password and
 * the admin's, nothing of the user's; auth_query fetches its SCRAM verifier from
 * pg_shadow, and the database line has neither user= nor password=, so the server
 * login is a pass-through one with the keys of the client's proof.
 */
#define AQ_USERS "\"corral_auth\" \"authpass\"\n\"ptadmin\" \"adminpw\"\n"

static struct h_corral *start_aq(int ttl)
{
	char *settings = h_printf("auth_user = corral_auth\nadmin_users = ptadmin\n"
				  "auth_query_cache_ttl = %d\n",
				  ttl);
	char *dbs = db_line("");
	struct h_corral *c = h_corral_start(settings, dbs, AQ_USERS);
	free(dbs);
	free(settings);
	return c;
}

/* PostgreSQL itself demands the password of name over TCP: trust cannot make a test
 * pass by accident. */
static void expect_postgres_wants_a_password(const char *name)
{
	char *ci = h_pg_conninfo(name, H.db, NULL), *err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);
	if (conn) {
		PQfinish(conn);
		cr_assert_fail("%s logged in to PostgreSQL without a password", name);
	}
	cr_expect(strstr(err, "no password supplied") != NULL, "direct login: %s", err);
	free(err);
	free(ci);
	ci = h_pg_conninfo(name, H.db, "wrong");
	conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);
	if (conn) {
		PQfinish(conn);
		cr_assert_fail("%s logged in to PostgreSQL with a wrong password", name);
	}
	cr_expect(strstr(err, "28P01") != NULL, "direct login, wrong password: %s", err);
	free(err);
	free(ci);
}

/* The server behind conn is logged in as name (pg_stat_activity, not only current_user). */
static void expect_server_user(PGconn *su, PGconn *conn, const char *name)
{
	char *pid = h_value(conn, "select pg_backend_pid()");
	char *sql = h_printf("select usename from pg_stat_activity where pid = %s", pid);
	char *v = h_value(su, sql);
	cr_expect_str_eq(v, name, "pg_stat_activity.usename of the server");
	free(v);
	free(sql);
	free(pid);
}

/* SHOW SERVERS: want servers of pool pt, each with user name. */
static void expect_show_servers(const struct h_corral *c, const char *name, int want)
{
	char *ci = h_conninfo(c, "ptadmin", "corral", "adminpw");
	PGconn *adm = h_connect(c, ci);
	PGresult *r = h_exec(adm, "SHOW SERVERS");
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	cr_expect_eq(PQntuples(r), want, "SHOW SERVERS rows");
	for (int i = 0; i < PQntuples(r); i++) {
		cr_expect_str_eq(PQgetvalue(r, i, PQfnumber(r, "user")), name);
		cr_expect_str_eq(PQgetvalue(r, i, PQfnumber(r, "database")), "pt");
	}
	PQclear(r);
	PQfinish(adm);
	free(ci);
}

/* A client of c by ci, logged in as user, whose server is user's own too. */
static PGconn *pt_connect(PGconn *su, struct h_corral *c, const char *ci, const char *user)
{
	PGconn *conn = h_connect(c, ci);
	h_expect_value(conn, "select current_user", user);
	expect_server_user(su, conn, user);
	return conn;
}

static int aq_lookups(const struct h_corral *c, const char *name, const char *result)
{
	char *needle = h_printf("event=auth_query_lookup user=\"%s\" db=\"pt\" "
				"auth_user=\"corral_auth\" result=%s",
				name, result);
	int n = h_log_count(c, needle);
	free(needle);
	return n;
}

/* A test of user, a role in PostgreSQL only, through start_aq(ttl): the superuser, the
 * role's verifier, corral and the conninfo of user with PT_PASSWORD. */
struct aq_case {
	PGconn *su;
	char *verifier;
	struct h_corral *c;
	char *ci;
};

static void aq_case_start(struct aq_case *k, const char *user, int ttl)
{
	k->su = h_superuser();
	k->verifier = fake_make_role(k->su, user, PT_PASSWORD);
	expect_postgres_wants_a_password(user);
	k->c = start_aq(ttl);
	k->ci = h_conninfo(k->c, user, "pt", PT_PASSWORD);
}

static void aq_case_end(struct aq_case *k)
{
	free(k->ci);
	h_corral_stop(k->c);
	free(k->verifier);
	PQfinish(k->su);
}

Test(passthrough, auth_query_user_logs_in_with_passthrough, .timeout = 90)
{
	struct aq_case k;
	aq_case_start(&k, "ptaq_user1", 60);
	PGconn *su = k.su;
	struct h_corral *c = k.c;
	const char *ci = k.ci;

	PGconn *a = h_connect(c, ci);
	h_expect_value(a, "select current_user || ' ' || current_database()", "ptaq_user1 bench");
	expect_server_user(su, a, "ptaq_user1");
	cr_expect_eq(aq_lookups(c, "ptaq_user1", "found"), 1, "%s", h_corral_log_tail(c));
	cr_expect(h_wait_log(c, "event=server_login server=", 5), "no server login:\n%s",
		  h_corral_log_tail(c));
	cr_expect(h_wait_log(c, "db=pt user=ptaq_user1 pid=", 1), "%s", h_corral_log_tail(c));
	cr_expect_eq(h_pg_backends("bench", "ptaq_user1"), 1);
	expect_show_servers(c, "ptaq_user1", 1);

	/* A second server login of the pool reuses the keys (a holds its server). */
	h_exec_ok(a, "begin");
	h_exec_ok(a, "select 1");
	PGconn *b = pt_connect(su, c, ci, "ptaq_user1");
	cr_expect_eq(h_pg_backends("bench", "ptaq_user1"), 2, "two servers of ptaq_user1");
	expect_show_servers(c, "ptaq_user1", 2);
	h_exec_ok(a, "commit");
	cr_expect_eq(aq_lookups(c, "ptaq_user1", "found"), 1, "cached: %s", h_corral_log_tail(c));

	/* Neither the fetched verifier's keys nor the password reach the log. */
	char *log = h_read_file(c->log, NULL);
	cr_expect(strstr(log, k.verifier) == NULL, "the verifier is in corral's log");
	cr_expect(strstr(log, PT_PASSWORD) == NULL, "the password is in corral's log");
	cr_expect(strstr(log, "scram_passthrough_refused") == NULL, "%s", log);
	free(log);

	PQfinish(a);
	PQfinish(b);
	aq_case_end(&k);
}

Test(passthrough, auth_query_wrong_password_spoils_no_keys, .timeout = 90)
{
	struct aq_case k;
	aq_case_start(&k, "ptaq_user2", 60);
	PGconn *su = k.su;
	struct h_corral *c = k.c;
	const char *ci = k.ci;

	/* Before any keys: refused by corral, no server login tried. */
	char *err = login_error(c, "ptaq_user2", "wrong");
	cr_expect(strstr(err, "28P01") && strstr(err, "password authentication failed for user "
						      "\"ptaq_user2\""),
		  "wrong password: %s", err);
	free(err);
	cr_expect_eq(aq_lookups(c, "ptaq_user2", "found"), 1, "%s", h_corral_log_tail(c));
	cr_expect_eq(h_pg_backends("bench", "ptaq_user2"), 0);
	cr_expect_eq(h_log_count(c, "event=server_login"), 0, "%s", h_corral_log_tail(c));

	PGconn *a = pt_connect(su, c, ci, "ptaq_user2");

	/* With keys: a wrong password neither gets in nor replaces them; the next server
	 * login (a holds its server) works. */
	h_exec_ok(a, "begin");
	err = login_error(c, "ptaq_user2", "wrong");
	cr_expect(strstr(err, "28P01") != NULL, "wrong password: %s", err);
	free(err);
	PGconn *b = pt_connect(su, c, ci, "ptaq_user2");
	cr_expect_eq(h_pg_backends("bench", "ptaq_user2"), 2);
	h_exec_ok(a, "commit");
	cr_expect_eq(h_log_count(c, "event=server_login_failed"), 0, "%s", h_corral_log_tail(c));
	cr_expect_eq(aq_lookups(c, "ptaq_user2", "found"), 1, "%s", h_corral_log_tail(c));

	PQfinish(a);
	PQfinish(b);
	aq_case_end(&k);
}

Test(passthrough, auth_query_password_change_gives_new_keys, .timeout = 90)
{
	PGconn *su = h_superuser();
	char *old_verifier = fake_make_role(su, "ptaq_rot", PT_PASSWORD);
	h_exec_ok(su, "alter role ptaq_rot password '" PT_PASSWORD "'"); /* a rerun's leftover */
	free(old_verifier);
	old_verifier = h_value(su, "select rolpassword from pg_authid where rolname = 'ptaq_rot'");
	expect_postgres_wants_a_password("ptaq_rot");
	struct h_corral *c = start_aq(2);
	char *old_ci = h_conninfo(c, "ptaq_rot", "pt", PT_PASSWORD);
	char *new_ci = h_conninfo(c, "ptaq_rot", "pt", "pt-rotated");

	/* a's server (logged in with the old keys) stays busy: every later client of the
	 * pool needs a login of its own (corral has several workers; an idle server could
	 * serve a client of any of them). */
	PGconn *a = h_connect(c, old_ci);
	h_expect_value(a, "select current_user", "ptaq_rot");
	double fetched = h_now();
	h_exec_ok(a, "begin");
	h_exec_ok(a, "select 1");

	/* A new password: a new salt, new keys. */
	h_exec_ok(su, "alter role ptaq_rot password 'pt-rotated'");
	char *new_verifier =
		h_value(su, "select rolpassword from pg_authid where rolname = 'ptaq_rot'");
	cr_assert_str_neq(new_verifier, old_verifier);
	cr_expect_eq(aq_lookups(c, "ptaq_rot", "found"), 1, "%s", h_corral_log_tail(c));

	/* After the TTL: the new password logs in, and server logins made with its keys
	 * work (b's, then d's while b holds its server). */
	double left = 2.3 - (h_now() - fetched);
	if (left > 0)
		usleep((useconds_t)(left * 1e6));
	PGconn *b = pt_connect(su, c, new_ci, "ptaq_rot");
	cr_expect_eq(aq_lookups(c, "ptaq_rot", "found"), 2, "%s", h_corral_log_tail(c));
	h_exec_ok(b, "begin");
	h_exec_ok(b, "select 1");
	PGconn *d = pt_connect(su, c, new_ci, "ptaq_rot");
	cr_expect_eq(h_pg_backends("bench", "ptaq_rot"), 3, "three servers of ptaq_rot");
	cr_expect_eq(h_log_count(c, "event=server_login server="), 3, "%s", h_corral_log_tail(c));
	cr_expect_eq(h_log_count(c, "event=server_login_failed"), 0, "%s", h_corral_log_tail(c));
	cr_expect_eq(h_log_count(c, "scram_passthrough_refused"), 0, "%s", h_corral_log_tail(c));
	h_exec_ok(b, "commit");
	h_exec_ok(a, "commit"); /* the old keys' server still serves */
	h_expect_value(a, "select current_user", "ptaq_rot");

	/* The old password no longer gets in. */
	char *err = login_error(c, "ptaq_rot", PT_PASSWORD);
	cr_expect(strstr(err, "28P01") != NULL, "old password: %s", err);
	free(err);

	PQfinish(a);
	PQfinish(b);
	PQfinish(d);
	h_expect_new_client(c, new_ci, "select 3", "3");

	free(new_ci);
	free(old_ci);
	free(new_verifier);
	free(old_verifier);
	h_corral_stop(c);
	PQfinish(su);
}

/*
 * Within the TTL after ALTER ROLE, the old password still gets in to corral (its
 * cached verifier) but PostgreSQL refuses the server logins made with its keys, and
 * those failed rounds back the pool's logins off.  The first client with the new
 * password after the TTL brings new keys, which end the backoff: it logs in at once
 * rather than getting the old keys' refusal until server_login_retry.
 */
Test(passthrough, auth_query_new_keys_end_the_old_keys_backoff, .timeout = 90)
{
	PGconn *su = h_superuser();
	char *verifier = fake_make_role(su, "ptaq_stale", PT_PASSWORD);
	h_exec_ok(su, "alter role ptaq_stale password '" PT_PASSWORD "'"); /* a rerun's leftover */
	struct h_corral *c = start_aq(6);

	/* A wrong password caches the verifier, and no server is opened. */
	char *err = login_error(c, "ptaq_stale", "wrong");
	cr_expect(strstr(err, "28P01") != NULL, "wrong password: %s", err);
	free(err);
	double fetched = h_now();
	h_exec_ok(su, "alter role ptaq_stale password 'pt-new'");

	/* Until the TTL ends: corral takes the old password, PostgreSQL does not. */
	int refused = 0;
	while (h_now() - fetched < 5.5) {
		err = login_error(c, "ptaq_stale", PT_PASSWORD);
		cr_expect(strstr(err, "password authentication failed for user \"ptaq_stale\""),
			  "old password within the TTL: %s", err);
		free(err);
		refused++;
		usleep(100000);
	}
	cr_expect_gt(h_log_count(c, "event=scram_passthrough_refused"), 1, "%s",
		     h_corral_log_tail(c));
	cr_expect_gt(h_log_count(c, "round=new"), 3, "%s", h_corral_log_tail(c));

	/* Rounds at about 0, 0.25, 0.75, 1.75 and 3.75 s: the backoff (4 s) outlasts the
	 * TTL. */
	double left = 6.3 - (h_now() - fetched);
	if (left > 0)
		usleep((useconds_t)(left * 1e6));
	char *ci = h_conninfo(c, "ptaq_stale", "pt", "pt-new");
	PGconn *conn = pt_connect(su, c, ci, "ptaq_stale");
	PQfinish(conn);
	err = login_error(c, "ptaq_stale", PT_PASSWORD);
	cr_expect(strstr(err, "28P01") != NULL, "old password after the TTL: %s", err);
	free(err);

	free(ci);
	h_corral_stop(c);
	free(verifier);
	PQfinish(su);
}

/* md5 pass-through with auth_query: md5user's hash comes from pg_shadow, not the auth
 * file, and answers the server's md5 request (run.sh's pg_hba). */
Test(passthrough, auth_query_md5_hash_logs_in, .timeout = 60)
{
	char *settings = h_printf("auth_type = md5\nauth_user = corral_auth\n");
	char *dbs = db_line("");
	struct h_corral *c = h_corral_start(settings, dbs, AQ_USERS);
	char *ci = h_conninfo(c, H.md5_user, "pt", H.md5_password);
	PGconn *conn = h_connect(c, ci);
	h_expect_value(conn, "select current_user", H.md5_user);
	PQfinish(conn);
	cr_expect_eq(aq_lookups(c, H.md5_user, "found"), 1, "%s", h_corral_log_tail(c));
	char *err = login_error(c, H.md5_user, "wrong");
	cr_expect(strstr(err, "28P01") != NULL, "wrong password: %s", err);
	free(err);
	free(ci);
	h_corral_stop(c);
	free(dbs);
	free(settings);
}
