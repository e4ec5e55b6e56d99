/*
 * pool/pool.c, logins that fail: the backoff grows per failed round (logins already
 * under way when one failed do not double it), a login that works ends it, and a
 * queued client waits out a failure that passes (server_login_wait) but not one that
 * does not.  A pool_env on a real event_base with fake hooks, one worker, pool_size 1;
 * failed logins are brought in through pool_login_done as server.c would, and the
 * logins the pool starts itself go to 127.0.0.1 port 1 (refused at once).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/stream.h"
#include <event2/event.h>

#include "pool/config.h"
#include "pool/pool.h"
#include "tests/unit/pool_fixture.h"

static struct pool_fixture fx;

static double now_s(void)
{
	return (double)clock_now_usec() / USEC_PER_SEC;
}

static void setup(void)
{
	pool_fixture_setup(&fx,
			   "[corral]\nauth_type = trust\nserver_login_wait = 0.3\n"
			   "[databases]\nd = host=127.0.0.1 port=1 dbname=d user=u pool_size=1\n");
}

static void teardown(void)
{
	pool_fixture_teardown(&fx);
}

TestSuite(backoff, .init = setup, .fini = teardown);

/* A login under way since now (its server slot taken), for pool_login_done to end. */
static struct server *login_under_way(void)
{
	return pool_fixture_login(&fx, 100);
}

/* A logged-in server (its stream on one end of a socketpair; *peer is the other). */
static struct server *login_that_works(int *peer)
{
	int fds[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	struct server *s = login_under_way();
	s->io = stream_socket_new(fx.base, fds[0], true);
	cr_assert(s->io);
	pool_login_done(s, true, NULL, NULL);
	*peer = fds[1];
	return s;
}

static double backoff_left(void)
{
	long long at = atomic_load(&fx.pool->shared->retry_at);
	return at ? (double)(at - clock_now_usec()) / USEC_PER_SEC : 0;
}

static void run_until(bool (*done)(void), double timeout_s)
{
	double end = now_s() + timeout_s;
	while (!done() && now_s() < end) {
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

static bool one_failure_told(void)
{
	return rec.n_failed > 0;
}

Test(backoff, logins_in_flight_fail_as_one_round)
{
	struct server *a = login_under_way(), *b = login_under_way(), *c = login_under_way();

	pool_login_done(a, false, "the database system is shutting down", "57P03");
	cr_assert_eq(atomic_load(&fx.pool->shared->failed_rounds), 1);
	double first = backoff_left();
	cr_assert(first > 0.2 && first <= 0.25, "first backoff %.3f s, want 0.25", first);
	long long retry_at = atomic_load(&fx.pool->shared->retry_at);

	/* b and c were under way when a failed: the same round. */
	pool_login_done(b, false, "the database system is shutting down", "57P03");
	pool_login_done(c, false, "connection refused", NULL);
	cr_assert_eq(atomic_load(&fx.pool->shared->failed_rounds), 1,
		     "in-flight failures doubled the backoff");
	cr_assert_eq(atomic_load(&fx.pool->shared->retry_at), retry_at);

	/* A login started after that failure is the next round: 0.5 s. */
	usleep(1000);
	struct server *d = login_under_way();
	pool_login_done(d, false, "connection refused", NULL);
	cr_assert_eq(atomic_load(&fx.pool->shared->failed_rounds), 2);
	double second = backoff_left();
	cr_assert(second > 0.45 && second <= 0.5, "second backoff %.3f s, want 0.5", second);
	cr_assert_eq(atomic_load(&fx.pool->shared->servers), 0, "every slot given back");
}

Test(backoff, login_that_works_ends_the_backoff)
{
	int peer;

	pool_login_done(login_under_way(), false, "connection refused", NULL);
	cr_assert_gt(atomic_load(&fx.pool->shared->retry_at), 0);
	cr_assert_gt(atomic_load(&fx.pool->shared->failing_since), 0);
	usleep(1000);
	struct server *late = login_under_way();

	/* A login succeeds: the backoff is over at once. */
	usleep(1000);
	struct server *s = login_that_works(&peer);
	cr_assert_eq(atomic_load(&fx.pool->shared->retry_at), 0);
	cr_assert_eq(atomic_load(&fx.pool->shared->failed_rounds), 0);
	cr_assert_eq(atomic_load(&fx.pool->shared->failing_since), 0);
	cr_assert_eq(s->state, SV_IDLE);

	/* One that started before that success and fails after it starts no new backoff. */
	pool_login_done(late, false, "connection refused", NULL);
	cr_assert_eq(atomic_load(&fx.pool->shared->retry_at), 0);
	cr_assert_eq(atomic_load(&fx.pool->shared->failed_rounds), 0);
	cr_assert_eq(atomic_load(&fx.pool->shared->failing_since), 0);
	close(peer);
}

Test(backoff, waiter_waits_out_a_failure_that_passes_then_fails_at_the_window_end)
{
	struct pool_waiter w;
	bool full;
	memset(&w, 0, sizeof(w));
	list_init(&w.node);

	/* PostgreSQL starting up: the waiter stays queued. */
	struct server *probe = login_under_way();
	cr_assert_null(pool_checkout(fx.pool, &w, &full));
	cr_assert(w.queued);
	double t0 = now_s();
	pool_login_done(probe, false, "the database system is starting up", "57P03");
	event_base_loop(fx.base, EVLOOP_NONBLOCK);
	cr_assert_eq(rec.n_failed, 0, "failed at once: %s", rec.last_message);
	cr_assert(w.queued);

	/* Probes (refused logins to port 1) go on; at server_login_wait (0.3 s) it fails. */
	run_until(one_failure_told, 3);
	cr_assert_eq(rec.n_failed, 1, "the waiter was never told");
	double waited = rec.failed_at - t0;
	cr_assert(waited >= 0.29 && waited < 0.8, "failed after %.3f s, server_login_wait is 0.3 s",
		  waited);
	cr_assert_str_eq(rec.last_sqlstate, "08006");
	cr_assert(strstr(rec.last_message, "server login failed") &&
			  strstr(rec.last_message, "server_login_wait") &&
			  strstr(rec.last_message, "next login attempt in"),
		  "%s", rec.last_message);
	cr_assert_geq(atomic_load(&fx.pool->shared->failed_rounds), 2,
		      "no probe while the client waited");
}

Test(backoff, failure_that_does_not_pass_fails_the_waiter_at_once)
{
	struct pool_waiter w;
	bool full;
	memset(&w, 0, sizeof(w));
	list_init(&w.node);

	struct server *probe = login_under_way();
	cr_assert_null(pool_checkout(fx.pool, &w, &full));
	cr_assert(w.queued);
	pool_login_done(probe, false, "password authentication failed for user \"u\"", "28P01");
	cr_assert_not(w.queued, "still queued after a wrong password");
	event_base_loop(fx.base, EVLOOP_NONBLOCK);
	cr_assert_eq(rec.n_failed, 1);
	cr_assert_str_eq(rec.last_sqlstate, "08006");
	cr_assert(strstr(rec.last_message, "password authentication failed") &&
			  strstr(rec.last_message, "next login attempt in"),
		  "%s", rec.last_message);

	/* A newcomer during the backoff fails at once too (fail fast). */
	struct pool_waiter w2;
	memset(&w2, 0, sizeof(w2));
	list_init(&w2.node);
	cr_assert_null(pool_checkout(fx.pool, &w2, &full));
	cr_assert_not(w2.queued);
	event_base_loop(fx.base, EVLOOP_NONBLOCK);
	cr_assert_eq(rec.n_failed, 2);
}

/* Pass-through: keys other than the pool's (a password changed in PostgreSQL) end the
 * backoff the old ones earned; the same keys again (or the same md5 hash) do not. */
Test(backoff, new_passthrough_secret_ends_the_backoff)
{
	struct scram_keys k = {.iterations = 4096, .salt_len = 16};
	memset(k.client_key, 1, sizeof(k.client_key));
	pool_shared_set_scram_keys(fx.pool->shared, &k);
	pool_login_done(login_under_way(), false, "password authentication failed", "28P01");
	cr_assert_gt(atomic_load(&fx.pool->shared->retry_at), 0);
	pool_shared_set_scram_keys(fx.pool->shared, &k);
	cr_assert_gt(atomic_load(&fx.pool->shared->retry_at), 0, "the same keys again");

	k.salt[0] = 7; /* ALTER ROLE ... PASSWORD: another salt, other keys */
	memset(k.client_key, 2, sizeof(k.client_key));
	pool_shared_set_scram_keys(fx.pool->shared, &k);
	cr_assert_eq(atomic_load(&fx.pool->shared->retry_at), 0);
	cr_assert_eq(atomic_load(&fx.pool->shared->failed_rounds), 1, "only the wait ends");

	usleep(1000);
	pool_login_done(login_under_way(), false, "password authentication failed", "28P01");
	cr_assert_gt(atomic_load(&fx.pool->shared->retry_at), 0);
	pool_shared_set_md5(fx.pool->shared, "md5"
					     "0123456789abcdef0123456789abcdef");
	cr_assert_eq(atomic_load(&fx.pool->shared->retry_at), 0, "a first md5 hash");
	usleep(1000);
	pool_login_done(login_under_way(), false, "password authentication failed", "28P01");
	pool_shared_set_md5(fx.pool->shared, "md5"
					     "0123456789abcdef0123456789abcdef");
	cr_assert_gt(atomic_load(&fx.pool->shared->retry_at), 0, "the same hash again");
}
