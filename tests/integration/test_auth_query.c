/*
 * auth_user + auth_query (proxy/auth_query.h): users that exist only in PostgreSQL log
 * in through corral with their SCRAM verifier fetched by auth_query; wrong passwords
 * and unknown users get the same 28P01; the answer is cached for auth_query_cache_ttl;
 * concurrent logins share a lookup; a lookup that fails names its cause and the
 * others go on being served.  Roles: run.sh (corral_auth, authq_user, authq_rot,
 * authq_many).  Lookups are counted from corral's log (event=auth_query_lookup).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(auth_query, H_SUITE);

#define AUTH_USERS "\"bench\" \"secret\"\n\"corral_auth\" \"authpass\"\n"
#define LOOKUP "event=auth_query_lookup "

static char *login_error(const struct h_corral *c, const char *user, const char *password)
{
	char *ci = h_conninfo(c, user, H.db, password);
	char *err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);
	if (conn) {
		PQfinish(conn);
		cr_assert_fail("login as %s/%s succeeded; want it refused", user, password);
	}
	free(ci);
	return err;
}

static void expect_refused(const struct h_corral *c, const char *user, const char *password,
			   const char *sqlstate, const char *must_contain)
{
	char *err = login_error(c, user, password);
	cr_expect(strstr(err, sqlstate) && strstr(err, must_contain),
		  "login as %s: want %s \"%s\" in: %s\n%s", user, sqlstate, must_contain, err,
		  h_corral_log_tail(c));
	free(err);
}

static void expect_wrong_password(const struct h_corral *c, const char *user, const char *pw)
{
	char *want = h_printf("password authentication failed for user \"%s\"", user);
	expect_refused(c, user, pw, "28P01", want);
	free(want);
}

static void expect_login_ok(const struct h_corral *c, const char *user, const char *password)
{
	char *ci = h_conninfo(c, user, H.db, password);
	PGconn *conn = h_connect(c, ci);
	h_expect_value(conn, "select 40 + 2", "42");
	PQfinish(conn);
	free(ci);
}

/* As PostgreSQL's superuser (roles and pg_authid are not bench's to touch). */
static void su_exec(const char *sql)
{
	PGconn *su = h_superuser();
	h_exec_ok(su, sql);
	PQfinish(su);
}

static char *su_value(const char *sql)
{
	PGconn *su = h_superuser();
	char *v = h_value(su, sql);
	PQfinish(su);
	return v;
}

static int lookups(const struct h_corral *c, const char *user, const char *result)
{
	char *needle = h_printf("user=\"%s\" db=\"bench\" auth_user=\"corral_auth\" result=%s",
				user, result);
	int n = h_log_count(c, needle);
	free(needle);
	return n;
}

Test(auth_query, user_only_in_postgres_logs_in_with_scram)
{
	struct h_corral *c = h_corral_start("auth_user = corral_auth\n", H_BENCH_DB, AUTH_USERS);
	expect_login_ok(c, "authq_user", "aqpass");
	cr_expect_eq(lookups(c, "authq_user", "found"), 1, "%s", h_corral_log_tail(c));
	/* The secret is cached: no second query, and a wrong password is refused as one. */
	expect_wrong_password(c, "authq_user", "wrong");
	expect_login_ok(c, "authq_user", "aqpass");
	cr_expect_eq(h_log_count(c, LOOKUP), 1, "%s", h_corral_log_tail(c));
	/* The fetched secret is never logged. */
	char *verifier = su_value("select passwd from pg_shadow where usename = 'authq_user'");
	cr_expect_eq(h_log_count(c, verifier), 0, "corral logged the verifier");
	cr_expect_eq(h_log_count(c, "aqpass"), 0);
	free(verifier);
	/* auth_file users are not looked up. */
	expect_login_ok(c, H.user, H.password);
	cr_expect_eq(h_log_count(c, LOOKUP), 1);
	h_corral_stop(c);
}

Test(auth_query, unknown_user_gets_a_wrong_passwords_error_once_per_ttl)
{
	struct h_corral *c = h_corral_start("auth_user = corral_auth\n", H_BENCH_DB, AUTH_USERS);
	expect_wrong_password(c, "authq_nobody", "whatever");
	cr_expect_eq(lookups(c, "authq_nobody", "not_found"), 1, "%s", h_corral_log_tail(c));
	expect_wrong_password(c, "authq_nobody", "whatever");
	cr_expect_eq(h_log_count(c, LOOKUP), 1, "a user that does not exist is cached too");
	cr_expect(h_wait_log(c, "auth_query found no password for it", 5),
		  "the refusal's reason is logged:\n%s", h_corral_log_tail(c));
	/* md5: the same answer, the same error. */
	h_corral_stop(c);
	c = h_corral_start("auth_type = md5\nauth_user = corral_auth\n", H_BENCH_DB, AUTH_USERS);
	expect_wrong_password(c, "authq_nobody", "whatever");
	expect_login_ok(c, "authq_user", "aqpass"); /* a SCRAM verifier: SCRAM is asked */
	expect_wrong_password(c, "authq_user", "wrong");
	h_corral_stop(c);
}

Test(auth_query, cache_expires_after_the_ttl)
{
	su_exec("alter role authq_rot password 'rot1'");
	struct h_corral *c = h_corral_start("auth_user = corral_auth\nauth_query_cache_ttl = 3\n",
					    H_BENCH_DB, AUTH_USERS);
	expect_login_ok(c, "authq_rot", "rot1");
	double fetched = h_now();
	su_exec("alter role authq_rot password 'rot2'");
	/* Within the TTL corral still has the old verifier and does not ask again. */
	expect_login_ok(c, "authq_rot", "rot1");
	expect_wrong_password(c, "authq_rot", "rot2");
	cr_assert_lt(h_now() - fetched, 3, "the checks took longer than the TTL");
	cr_expect_eq(h_log_count(c, LOOKUP), 1, "%s", h_corral_log_tail(c));
	usleep((useconds_t)((3.3 - (h_now() - fetched)) * 1e6));
	/* After it: the new password works, the old one does not. */
	expect_login_ok(c, "authq_rot", "rot2");
	expect_wrong_password(c, "authq_rot", "rot1");
	cr_expect_eq(h_log_count(c, LOOKUP), 2, "%s", h_corral_log_tail(c));
	h_corral_stop(c);
}

Test(auth_query, fifty_concurrent_logins_share_the_lookup)
{
	struct h_corral *c = h_corral_start(
		"auth_user = corral_auth\npool_mode = transaction\nadmin_users = admin\n",
		H_BENCH_DB_WITH(" pool_size=5"), AUTH_USERS "\"admin\" \"adminpw\"\n");
	enum { N = 50 };
	struct h_login a[N];
	char *ci = h_conninfo(c, "authq_many", H.db, "manypass");
	h_logins_start(a, N, ci, "select 1");
	int ok = h_logins_join(a, N);
	for (int i = 0; i < N; i++)
		cr_expect(a[i].ok, "login %d failed: %s", i, a[i].err);
	free(ci);
	cr_expect_eq(ok, N);
	/* One lookup in all (workers = 2): the rest joined it, on either worker, or read the
	 * cache. */
	int n = h_log_count(c, LOOKUP);
	cr_expect_eq(n, 1, "%d lookups for one user:\n%s", n, h_corral_log_tail(c));
	/* SHOW AUTH_QUERY: every login either ran the lookup, joined it or hit the cache. */
	char *aci = h_conninfo(c, "admin", "corral", "adminpw");
	PGconn *adm = h_connect(c, aci);
	PGresult *r = h_exec(adm, "SHOW AUTH_QUERY");
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	long long lk = atoll(PQgetvalue(r, 0, 0)), found = atoll(PQgetvalue(r, 0, 1)),
		  hits = atoll(PQgetvalue(r, 0, 4)), shared = atoll(PQgetvalue(r, 0, 5)),
		  cached = atoll(PQgetvalue(r, 0, 6));
	cr_expect_eq(lk, n, "SHOW AUTH_QUERY lookups %lld, log %d", lk, n);
	cr_expect_eq(found, n);
	cr_expect_eq(lk + shared + hits, N, "lookups %lld + shared %lld + hits %lld", lk, shared,
		     hits);
	cr_expect_eq(cached, 1);
	PQclear(r);
	PQfinish(adm);
	free(aci);
	h_corral_stop(c);
}

Test(auth_query, auth_user_that_cannot_log_in)
{
	struct h_corral *c = h_corral_start("auth_user = corral_auth\n", H_BENCH_DB,
					    "\"bench\" \"secret\"\n\"corral_auth\" \"wrong\"\n");
	expect_refused(c, "authq_user", "aqpass", "08006",
		       "auth_query could not log in as auth_user \"corral_auth\" to database "
		       "\"bench\"");
	cr_expect(h_wait_log(c, "event=auth_query_failed user=\"authq_user\"", 5), "%s",
		  h_corral_log_tail(c));
	/* Not cached: the next login asks again (and fails again). */
	expect_refused(c, "authq_user", "aqpass", "08006", "auth_query could not log in");
	cr_expect_eq(h_log_count(c, "event=auth_query_failed "), 2);
	/* Other clients are served. */
	expect_login_ok(c, H.user, H.password);
	h_corral_stop(c);
}

Test(auth_query, slow_lookup_times_out_and_a_client_that_leaves_is_forgotten)
{
	/* pg_sleep in FROM holds the query; the answer is the same otherwise. */
	struct h_corral *c = h_corral_start(
		"auth_user = corral_auth\nserver_connect_timeout = 1\n"
		"auth_query = SELECT usename, passwd FROM pg_shadow, pg_sleep(3) WHERE usename=$1\n",
		H_BENCH_DB, AUTH_USERS);
	double t0 = h_now();
	expect_refused(c, "authq_user", "aqpass", "08006", "timed out");
	cr_expect_lt(h_now() - t0, 2.5, "the timeout took %.1f s", h_now() - t0);
	/* A client that sends its startup packet and leaves while the lookup runs. */
	int fd = h_tcp_connect(c->port);
	unsigned char pkt[256];
	const char *kv[] = {"user", "authq_user", "database", "bench", NULL};
	h_send_all(fd, pkt, h_startup_packet(pkt, sizeof(pkt), H_PROTOCOL_3_0, kv));
	usleep(200000);
	close(fd);
	/* corral goes on serving; the lookup ends (timeout) with nobody to tell. */
	expect_login_ok(c, H.user, H.password);
	cr_expect(h_wait_log_count(c, "event=auth_query_failed ", 2, 5), "%s",
		  h_corral_log_tail(c));
	expect_login_ok(c, H.user, H.password);
	cr_expect(h_corral_alive(c));
	/* Stopped while a lookup runs, with its client waiting: a clean exit (no leak, no
	 * use after free under ASan). */
	fd = h_tcp_connect(c->port);
	h_send_all(fd, pkt, h_startup_packet(pkt, sizeof(pkt), H_PROTOCOL_3_0, kv));
	usleep(300000);
	h_corral_stop(c);
	close(fd);
}

Test(auth_query, auth_dbname_and_a_database_lines_auth_user)
{
	/* The query runs in auth_dbname's database; the line's auth_user wins over [corral]'s
	 * (here the global one does not exist, so only the line's can work). */
	struct h_corral *c = h_corral_start(
		"auth_user = nobody_at_all\nauth_dbname = authdb\n",
		"bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret "
		"auth_user=corral_auth\n"
		"authdb = host=@PGHOST@ port=@PGPORT@ dbname=pgb user=bench password=secret\n",
		AUTH_USERS);
	expect_login_ok(c, "authq_user", "aqpass");
	cr_expect(h_wait_log(c, "db=\"authdb\" auth_user=\"corral_auth\" result=found", 5), "%s",
		  h_corral_log_tail(c));
	h_corral_stop(c);
}

Test(auth_query, reload_that_changes_the_query_drops_the_cache)
{
	struct h_corral *c = h_corral_start("auth_user = corral_auth\n"
					    "auth_query = SELECT usename, passwd FROM pg_shadow "
					    "WHERE usename=$1\n",
					    H_BENCH_DB, AUTH_USERS);
	expect_login_ok(c, "authq_user", "aqpass");
	/* A reload that leaves the lookup alone keeps the answer. */
	h_corral_edit_reload(c, "auth_user = corral_auth\n",
			     "auth_user = corral_auth\nlog_level = info\n");
	expect_login_ok(c, "authq_user", "aqpass");
	cr_expect_eq(h_log_count(c, LOOKUP), 1, "%s", h_corral_log_tail(c));
	/* One that changes auth_query asks again, with the new query. */
	h_corral_edit_reload(c, "WHERE usename=$1", "WHERE usename = $1 AND true");
	expect_login_ok(c, "authq_user", "aqpass");
	cr_expect_eq(h_log_count(c, LOOKUP), 2, "%s", h_corral_log_tail(c));
	h_corral_stop(c);
}

Test(auth_query, a_slow_lookup_is_shared_by_every_worker)
{
	/* The lookup takes a second, so all ten logins arrive while it runs, on both
	 * workers (SO_REUSEPORT spreads them): the worker that did not run it waits for
	 * the other's answer instead of asking PostgreSQL itself. */
	struct h_corral *c = h_corral_start(
		"auth_user = corral_auth\nlog_level = debug\n"
		"auth_query = SELECT usename, passwd FROM pg_shadow, pg_sleep(1) WHERE usename=$1\n",
		H_BENCH_DB, AUTH_USERS);
	enum { N = 10 };
	struct h_login a[N];
	char *ci = h_conninfo(c, "authq_many", H.db, "manypass");
	h_logins_start(a, N, ci, "select 1");
	h_logins_join(a, N);
	for (int i = 0; i < N; i++)
		cr_expect(a[i].ok, "login %d failed: %s", i, a[i].err);
	free(ci);
	cr_expect_eq(h_log_count(c, LOOKUP), 1, "%s", h_corral_log_tail(c));
	h_corral_stop(c);
}

struct refused_arg {
	char *ci;
	char *err; /* NULL: logged in */
};

static void *refused_login(void *p)
{
	struct refused_arg *a = p;
	PGconn *conn = h_try_connect(a->ci, H_QUERY_TIMEOUT, &a->err);
	if (conn)
		PQfinish(conn);
	return NULL;
}

Test(auth_query, lookups_past_the_cap_wait_their_turn)
{
	/* One worker, lookups of a second each, seven users at once: four run, three wait
	 * for a place, and every client gets its answer (six names that do not exist, and
	 * one that does). */
	/* The sleep is the outer side, so a name that does not exist sleeps too (and comes
	 * back as a row of NULLs: no password, no such user). */
	struct h_corral *c = h_corral_start(
		"auth_user = corral_auth\nworkers = 1\n"
		"auth_query = SELECT u.usename, u.passwd FROM (SELECT pg_sleep(1)) s "
		"LEFT JOIN pg_shadow u ON u.usename = $1\n",
		H_BENCH_DB, AUTH_USERS);
	enum { N = 7 };
	pthread_t t[N];
	struct refused_arg a[N];
	double t0 = h_now();
	for (int i = 0; i < N; i++) {
		char user[32];
		if (i == 0)
			snprintf(user, sizeof(user), "authq_user");
		else
			snprintf(user, sizeof(user), "authq_ghost%d", i);
		a[i] = (struct refused_arg){.ci = h_conninfo(c, user, H.db, "aqpass")};
		cr_assert_eq(pthread_create(&t[i], NULL, refused_login, &a[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		if (i == 0)
			cr_expect_null(a[i].err, "authq_user refused: %s", a[i].err);
		else
			cr_expect(a[i].err && strstr(a[i].err, "28P01"), "ghost %d: %s", i,
				  a[i].err ? a[i].err : "logged in");
		free(a[i].err);
		free(a[i].ci);
	}
	double took = h_now() - t0;
	cr_expect(took >= 1.9 && took < 6, "seven lookups of 1 s, four at a time, took %.1f s",
		  took);
	cr_expect_eq(h_log_count(c, LOOKUP), N, "%s", h_corral_log_tail(c));
	h_corral_stop(c);
}

Test(auth_query, hba_rules_pick_the_method_for_a_looked_up_secret)
{
	char *path = h_path("authq-hba.conf");
	h_write_file(path, "host all authq_many 127.0.0.1/32 password\n"
			   "host all authq_rot 127.0.0.1/32 reject\n"
			   "host all all 127.0.0.1/32 md5\n");
	char *settings = h_printf("auth_type = hba\nauth_hba_file = %s\nauth_user = corral_auth\n",
				  path);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, AUTH_USERS);
	/* md5 with a SCRAM verifier: SCRAM, as PostgreSQL; password: the cleartext checked
	 * against the verifier. */
	expect_login_ok(c, "authq_user", "aqpass");
	expect_wrong_password(c, "authq_user", "wrong");
	expect_login_ok(c, "authq_many", "manypass");
	expect_wrong_password(c, "authq_many", "wrong");
	/* A rejected user is refused before anything is asked of PostgreSQL. */
	expect_refused(c, "authq_rot", "rot1", "28000", "pg_hba.conf rejects connection");
	cr_expect_eq(h_log_count(c, LOOKUP), 2, "%s", h_corral_log_tail(c));
	h_corral_stop(c);
	free(settings);
	free(path);
}
