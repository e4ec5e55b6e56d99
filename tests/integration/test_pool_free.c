/*
 * max_pools frees the least recently used idle pool made from a client-chosen user
 * name (pool/pool_retire.c); only when every pool is busy is a new one refused with
 * 53300.  auth_type = trust makes any user name a pool; the bench line's user=bench
 * logs every pool in as bench, so no role needs to be made.
 */
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
