/*
 * max_pools frees the least recently used idle pool made from a client-chosen user
 * name (pool/pool_retire.c); only when every pool is busy is a new one refused with
 * 53300.  auth_type = trust makes any user name a pool; the bench line's user=bench
 * logs every pool in as bench, so no role needs to be made.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(poolfree, H_SUITE);

static PGconn *console(const struct h_corral *c)
{
	char *ci = h_conninfo(c, "bench", "corral", NULL), *err = NULL;
	PGconn *conn = h_try_connect(ci, 5, &err);
	cr_assert_not_null(conn, "console: %s", err);
	free(ci);
	return conn;
}

/* Rows of SHOW POOLS (pools of database bench). */
static int show_pools_rows(PGconn *admin)
{
	PGresult *res = PQexec(admin, "SHOW POOLS");
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	int n = 0, col = PQfnumber(res, "database");
	for (int i = 0; i < PQntuples(res); i++)
		n += strcmp(PQgetvalue(res, i, col), "bench") == 0;
	PQclear(res);
	return n;
}

static PGconn *connect_as(const struct h_corral *c, const char *user, char **err)
{
	char *ci = h_conninfo(c, user, "bench", NULL);
	PGconn *conn = h_try_connect(ci, 10, err);
	free(ci);
	return conn;
}

#define FREE_SETTINGS "auth_type = trust\nadmin_users = bench\nmax_pools = 5\n"

/*
 * 20 users one after another, each logging in, running a query and leaving: every one
 * is served (the oldest idle pool makes room), SHOW POOLS never has more than 5 rows,
 * and corral logs the pools it freed.
 */
Test(poolfree, twenty_users_through_five_pools, .timeout = 60)
{
	struct h_corral *c = h_corral_start(FREE_SETTINGS, H_BENCH_DB, NULL);
	PGconn *admin = console(c);
	char user[32];

	for (int i = 0; i < 20; i++) {
		char *err = NULL;
		snprintf(user, sizeof user, "pf_user_%d", i);
		PGconn *conn = connect_as(c, user, &err);
		cr_assert_not_null(conn, "%s refused: %s\n%s", user, err, h_corral_log_tail(c));
		h_expect_value(conn, "select session_user", "bench"); /* the line's user= */
		PQfinish(conn);
		int rows = show_pools_rows(admin);
		cr_assert_leq(rows, 5, "after %s SHOW POOLS has %d rows", user, rows);
	}
	/* 15 pools made past the cap: each freed one is logged by every worker holding a
	 * part of it, at least once. */
	cr_expect(h_wait_log_count(c, "event=pool_freed", 15, 5), "pools freed: %d\n%s",
		  h_log_count(c, "event=pool_freed"), h_corral_log_tail(c));
	PQfinish(admin);
	h_corral_stop(c);
}

/*
 * 5 pools each held by a client inside a transaction: none is idle, so a 6th user is
 * refused at once with 53300 naming max_pools, while another client of a held pool is
 * served; once one holder leaves, the 6th user gets in (its pool freed).
 */
Test(poolfree, busy_pools_refuse_the_sixth_user, .timeout = 60)
{
	struct h_corral *c = h_corral_start(FREE_SETTINGS, H_BENCH_DB, NULL);
	PGconn *held[5];
	char user[32];

	for (int i = 0; i < 5; i++) {
		char *err = NULL;
		snprintf(user, sizeof user, "pf_busy_%d", i);
		held[i] = connect_as(c, user, &err);
		cr_assert_not_null(held[i], "%s refused: %s", user, err);
		PQclear(h_exec(held[i], "begin"));
		h_expect_value(held[i], "select 1", "1");
	}
	char *err = NULL;
	double t0 = h_now();
	PGconn *sixth = connect_as(c, "pf_busy_new", &err);
	double took = h_now() - t0;
	cr_assert_null(sixth, "a sixth pool was made while 5 were busy");
	cr_expect(err && strstr(err, "53300") && strstr(err, "max_pools = 5"), "sixth: %s", err);
	cr_expect_lt(took, 2.0, "the refusal took %.2f s", took);
	free(err);

	err = NULL;
	PGconn *again = connect_as(c, "pf_busy_2", &err);
	cr_assert_not_null(again, "a client of an existing pool refused: %s", err);
	h_expect_value(again, "select 'served'", "served");
	PQfinish(again);

	/* pf_busy_0 leaves: its pool is idle now, and makes room. */
	PQfinish(held[0]);
	err = NULL;
	for (int tries = 0; tries < 50 && !sixth; tries++) {
		free(err);
		err = NULL;
		sixth = connect_as(c, "pf_busy_new", &err);
		if (!sixth)
			usleep(100 * 1000);
	}
	cr_assert_not_null(sixth, "the sixth user after one left: %s", err);
	h_expect_value(sixth, "select 'in'", "in");
	/* The held transactions were never touched. */
	for (int i = 1; i < 5; i++) {
		h_expect_value(held[i], "select 2", "2");
		PQclear(h_exec(held[i], "commit"));
		PQfinish(held[i]);
	}
	PQfinish(sixth);
	h_corral_stop(c);
}

struct churn {
	const struct h_corral *c;
	int thread;
	int served, refused, other;
	char first_other[300];
};

/* 50 logins as users drawn from 40, each running a query; 53300 is allowed (a pool
 * just left may still be resetting its server, so not idle yet), anything else is not. */
static void *churn_thread(void *arg)
{
	struct churn *t = arg;
	char user[32];
	for (int i = 0; i < 50; i++) {
		snprintf(user, sizeof user, "pf_churn_%d", (t->thread * 7 + i * 3) % 40);
		char *ci = h_conninfo(t->c, user, "bench", NULL), *err = NULL;
		PGconn *conn = h_try_connect(ci, 10, &err);
		free(ci);
		if (!conn) {
			if (err && strstr(err, "53300"))
				t->refused++;
			else if (t->other++ == 0)
				snprintf(t->first_other, sizeof t->first_other, "%s: %s", user,
					 err);
			free(err);
			continue;
		}
		PGresult *res = PQexec(conn, "select session_user");
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    strcmp(PQgetvalue(res, 0, 0), "bench") == 0)
			t->served++;
		else if (t->other++ == 0)
			snprintf(t->first_other, sizeof t->first_other, "%s: query: %s", user,
				 PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(conn);
	}
	return NULL;
}

/*
 * 4 threads logging in as 40 users through max_pools = 5 on 2 workers (at most 4 pools
 * busy at once, so one can always be freed once its last server is back): pools are
 * freed and made again while other workers hold parts of them.  Every login is served
 * or refused with 53300 (never anything else), most are served, corral stays up, and
 * at the end SHOW POOLS has at most 5 rows.  (Under `make asan` this is the use-after-free test of freeing.)
 */
Test(poolfree, concurrent_churn_through_five_pools, .timeout = 120)
{
	struct h_corral *c = h_corral_start(FREE_SETTINGS "workers = 2\n", H_BENCH_DB, NULL);
	struct churn t[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		t[i] = (struct churn){.c = c, .thread = i};
		cr_assert_eq(pthread_create(&th[i], NULL, churn_thread, &t[i]), 0);
	}
	int served = 0, refused = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		served += t[i].served;
		refused += t[i].refused;
		cr_expect_eq(t[i].other, 0, "thread %d: %s", i, t[i].first_other);
	}
	cr_log_info("churn: %d served, %d refused with 53300", served, refused);
	cr_expect_gt(served, 100, "only %d of 200 served", served);
	cr_assert(h_corral_alive(c), "corral died\n%s", h_corral_log_tail(c));
	PGconn *admin = console(c);
	cr_expect_leq(show_pools_rows(admin), 5);
	PQfinish(admin);
	h_corral_stop(c);
}
