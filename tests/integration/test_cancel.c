/*
 * Cancel requests and clients that leave mid-query (proxy/cancel_keys.c, pool/cancel.c,
 * proxy/server_drain.c): the right statement ends with 57014 while another client's
 * keeps running, on whichever worker the cancel lands; a queued client is answered
 * without a server; a wrong key does nothing; and a client that disconnects while its
 * query runs never leaves a backend running beside the pool.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/harness.h"

TestSuite(cancel, H_SUITE);

#define DRAIN_DB   \
	H_BENCH_DB \
	"drain = host=@PGHOST@ port=@PGPORT@ dbname=bench user=drainer password=secret pool_size=2\n"

/* Sends sql without waiting; fails unless it was sent. */
static void send_query(PGconn *conn, const char *sql)
{
	cr_assert(PQsendQuery(conn, sql), "send %s: %s", sql, PQerrorMessage(conn));
}

static void cancel(PGconn *conn)
{
	char err[256];
	PGcancel *cn = PQgetCancel(conn);
	cr_assert_not_null(cn);
	cr_assert_eq(PQcancel(cn, err, sizeof(err)), 1, "PQcancel: %s", err);
	PQfreeCancel(cn);
}

/*
 * Cancels conn's query until its result arrives (a cancel that reaches corral before
 * the query does finds nothing to cancel, as against PostgreSQL), within timeout_s.
 */
static PGresult *cancel_until_answered(PGconn *conn, double timeout_s)
{
	double end = h_now() + timeout_s;
	while (h_now() < end) {
		cancel(conn);
		for (int i = 0; i < 10; i++) {
			cr_assert(PQconsumeInput(conn), "%s", PQerrorMessage(conn));
			if (!PQisBusy(conn))
				return h_results(conn, "cancelled query", 5);
			usleep(10 * 1000);
		}
	}
	cr_assert_fail("no answer %g s after cancelling", timeout_s);
	return NULL;
}

Test(cancel, right_statement_on_any_worker, .timeout = 60)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nworkers = 2\n", H_BENCH_DB,
					    NULL);
	PGconn *other = h_connect_bench(c);
	send_query(other, "SELECT pg_sleep(1.5), 'other'");
	/* Cancel connections land on either worker (SO_REUSEPORT spreads them by port):
	 * over 20 rounds both routes are taken (all on one: 1 in 2^19). */
	for (int round = 0; round < 20; round++) {
		PGconn *victim = h_connect_bench(c);
		send_query(victim, "SELECT pg_sleep(30)");
		PGresult *res = cancel_until_answered(victim, 10);
		cr_assert_str_eq(h_sqlstate(res), "57014", "round %d: %s", round,
				 PQresultErrorMessage(res));
		PQclear(res);
		/* The connection goes on. */
		h_expect_value(victim, "SELECT 'after'", "after");
		PQfinish(victim);
	}
	PGresult *res = h_results(other, "the other client's query", 10);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	cr_assert_str_eq(PQgetvalue(res, 0, 1), "other");
	PQclear(res);
	PQfinish(other);
	cr_assert(h_wait_log(c, "from_worker=0 to_worker=1", 1) ||
			  h_wait_log(c, "from_worker=1 to_worker=0", 1),
		  "no cancel crossed between workers");
	h_corral_stop(c);
}

/* A CancelRequest with the right process ID and a wrong secret does nothing. */
Test(cancel, wrong_key_does_nothing, .timeout = 30)
{
	struct h_corral *c = h_corral_start("workers = 1\n", H_BENCH_DB, NULL);
	PGconn *conn = h_connect_bench(c);
	send_query(conn, "SELECT pg_sleep(1), 'done'");
	unsigned char pkt[16];
	uint32_t v[4] = {htonl(16), htonl(80877102), htonl((uint32_t)PQbackendPID(conn)), 0};
	for (int attempt = 0; attempt < 3; attempt++) {
		v[3] = htonl(0x5eed0000u + (uint32_t)attempt);
		memcpy(pkt, v, sizeof(pkt));
		int fd = h_tcp_connect(c->port);
		h_send_all(fd, pkt, sizeof(pkt));
		struct h_reply r;
		h_read_final_reply(fd, 5, &r);
		cr_assert(r.closed && r.len == 0, "a cancel request gets no reply, only the close");
	}
	PGresult *res = h_results(conn, "query after wrong cancels", 10);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	cr_assert_str_eq(PQgetvalue(res, 0, 1), "done");
	PQclear(res);
	PQfinish(conn);
	h_corral_stop(c);
}

/* A client queued for a server is cancelled: 57014 at once, and it stays usable. */
Test(cancel, queued_client, .timeout = 30)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nworkers = 1\n",
					    H_BENCH_DB_WITH(" pool_size=1"), NULL);
	PGconn *holder = h_connect_bench(c);
	h_exec_ok(holder, "BEGIN");
	h_exec_ok(holder, "SELECT 1");
	PGconn *queued = h_connect_bench(c);
	send_query(queued, "SELECT 'queued'");
	/* It cannot be served while holder keeps the one server in its transaction. */
	PGresult *res = cancel_until_answered(queued, 10);
	cr_assert_str_eq(h_sqlstate(res), "57014", "%s", PQresultErrorMessage(res));
	PQclear(res);
	cr_assert(h_wait_log(c, "event=client_cancelled", 5));
	h_exec_ok(holder, "COMMIT");
	h_expect_value(queued, "SELECT 'served'", "served");
	PQfinish(holder);
	PQfinish(queued);
	h_corral_stop(c);
}

/* Backends of role drainer right now (every one is corral's), or only the active ones. */
static int drainer_backends(PGconn *su, bool active)
{
	char *v =
		h_value(su,
			active ? "SELECT count(*) FROM pg_stat_activity WHERE usename = "
				 "'drainer' AND state = 'active'"
			       : "SELECT count(*) FROM pg_stat_activity WHERE usename = 'drainer'");
	int n = atoi(v);
	free(v);
	return n;
}

/* Polls until n queries of role drainer run; returns the most backends seen. */
static int wait_running(PGconn *su, int n)
{
	double end = h_now() + 10;
	int most = 0;
	for (;;) {
		int all = drainer_backends(su, false);
		most = all > most ? all : most;
		if (drainer_backends(su, true) >= n)
			return most;
		cr_assert_lt(h_now(), end, "the queries did not start");
		usleep(5 * 1000);
	}
}

/*
 * Clients leave mid-query, 5 kinds x 5 rounds x 2 clients, with pool_size 2 and the role's CONNECTION
 * LIMIT 2: PostgreSQL never has a third backend of the pool (a login would fail), no
 * query of a gone client keeps running, and the pool serves the next clients.
 */
Test(cancel, disconnect_mid_query_leaves_nothing, .timeout = 120)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nworkers = 1\n", DRAIN_DB,
					    NULL);
	char *ci = h_conninfo(c, "bench", "drain", "secret");
	PGconn *su = h_superuser();
	const char *kinds[] = {
		"SELECT pg_sleep(30)",
		"SELECT count(*) FROM generate_series(1, 500000000)",
		"BEGIN; SELECT pg_sleep(30)",
		"COPY (SELECT 1) TO STDOUT; SELECT pg_sleep(30)",
		"CREATE TEMP TABLE t(x int); COPY t FROM STDIN",
	};
	int max_seen = 0;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (int round = 0; round < 5; round++) {
			PGconn *a = h_connect(c, ci);
			PGconn *b = h_connect(c, ci);
			send_query(a, kinds[k]);
			send_query(b, kinds[k]);
			int n = wait_running(su, 2);
			max_seen = n > max_seen ? n : max_seen;
			PQfinish(a);
			PQfinish(b);
			/* The next client is served (a third login would fail on the limit). */
			PGconn *next = h_connect(c, ci);
			h_expect_value(next, "SELECT 'next'", "next");
			PQfinish(next);
			n = drainer_backends(su, false);
			max_seen = n > max_seen ? n : max_seen;
		}
	}
	cr_assert_leq(max_seen, 2, "PostgreSQL saw %d backends of a pool of 2", max_seen);
	/* The last round's drains end as their cancels land. */
	double end = h_now() + 10;
	while (drainer_backends(su, true) > 0 && h_now() < end)
		usleep(10 * 1000);
	cr_assert_eq(drainer_backends(su, true), 0, "a gone client's query still runs");
	cr_assert_leq(drainer_backends(su, false), 2);
	cr_assert_null(strstr(h_corral_log_tail(c), "too many connections"));
	PQfinish(su);
	free(ci);
	h_corral_stop(c);
}

/*
 * A query that ignores cancels (it catches query_canceled and sleeps on): the drain
 * gives up after 10 s and closes the server, but its slot stays taken while the backend
 * runs, so a new client of the pool of 1 waits (and is refused at query_wait_timeout)
 * instead of getting a second backend; once the backend is gone, the pool serves again.
 */
Test(cancel, backend_that_ignores_cancel_keeps_its_slot, .timeout = 90)
{
	struct h_corral *c =
		h_corral_start("pool_mode = transaction\nworkers = 1\nquery_wait_timeout = 2\n",
			       H_BENCH_DB
			       "one = host=@PGHOST@ port=@PGPORT@ dbname=bench user=stubborn "
			       "password=secret pool_size=1\n",
			       NULL);
	char *ci = h_conninfo(c, "bench", "one", "secret");
	PGconn *su = h_superuser();
	PGconn *a = h_connect(c, ci);
	send_query(a, "DO $$BEGIN LOOP BEGIN PERFORM pg_sleep(60); "
		      "EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END$$");
	cr_assert_geq(
		h_wait_pg_value(
			"SELECT count(*) FROM pg_stat_activity WHERE usename = 'stubborn' AND state = 'active'",
			"1", 10),
		0, "the query did not start");
	PQfinish(a);
	cr_assert(h_wait_log(c, "server did not come back from the cancel in time", 20),
		  "the drain did not give up:\n%s", h_corral_log_tail(c));
	/* Closed, but PostgreSQL still runs it: no second backend for the next client. */
	PGconn *b = h_connect(c, ci);
	PGresult *res = h_exec_t(b, "SELECT 'b'", 10);
	cr_expect_str_eq(h_sqlstate(res), "57014", "served while the old backend ran: %s",
			 PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(b);
	char *left = h_value(su,
			     "SELECT count(*) FROM pg_stat_activity WHERE usename = 'stubborn'");
	cr_assert_str_eq(left, "1");
	free(left);
	char *n = h_value(su, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			      "WHERE usename = 'stubborn'");
	cr_assert_str_eq(n, "1");
	free(n);
	/* Its backend gone, the slot is back. */
	PGconn *d = h_connect(c, ci);
	h_expect_value(d, "SELECT 'served again'", "served again");
	PQfinish(d);
	PQfinish(su);
	free(ci);
	h_corral_stop(c);
}
