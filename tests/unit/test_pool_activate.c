/*
 * pool/activate.c: hand-overs to waiters are decided at once (out of the queue, the
 * server or token reserved) but the hooks run only from the activation callback, on
 * the event loop.  A pool_env on a real event_base with fake hooks; servers are
 * socketpairs with a stream and no libpq connection, brought in through
 * pool_login_done as a finished login would be.  Pools of size 1, so a queued waiter
 * never starts a real login (no slot left, one worker).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/stream.h"
#include <event2/event.h>

#include "pool/activate.h"
#include "pool/app_gate.h"
#include "pool/config.h"
#include "pool/pool.h"
#include "tests/unit/pool_fixture.h"

static struct pool_fixture fx;

static void setup(void)
{
	pool_fixture_setup(&fx,
			   "[corral]\nauth_type = trust\nquery_wait_timeout = 1\n"
			   "[databases]\nd = host=127.0.0.1 port=1 dbname=d user=u pool_size=1\n"
			   "[limits]\napp.capped = 1\n");
}

static void teardown(void)
{
	pool_fixture_teardown(&fx);
}

TestSuite(activate, .init = setup, .fini = teardown);

/* A logged-in server of the fx.pool, parked idle; *peer is the "backend's" end. */
static struct server *new_server(int *peer)
{
	int fds[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	struct server *s = pool_fixture_login(&fx, fx.pool->size);
	s->io = stream_socket_new(fx.base, fds[0], true);
	cr_assert(s->io);
	s->id = 1;
	pool_login_done(s, true, NULL, NULL);
	cr_assert_eq(s->state, SV_IDLE);
	*peer = fds[1];
	return s;
}

static void waiter_init(struct pool_waiter *w)
{
	memset(w, 0, sizeof(*w));
	list_init(&w->node);
}

static void run_loop(void)
{
	event_base_loop(fx.base, EVLOOP_NONBLOCK);
}

/* a holds the fx.pool's one server; b waits for it. */
static struct server *busy_pool(struct pool_waiter *a, struct pool_waiter *b, int *peer)
{
	struct server *s = new_server(peer);
	bool full;
	waiter_init(a);
	waiter_init(b);
	cr_assert_eq(pool_checkout(fx.pool, a, &full), s, "an idle server comes back at once");
	cr_assert_null(pool_checkout(fx.pool, b, &full));
	cr_assert(b->queued);
	cr_assert_eq(fx.pool->n_login, 0, "no login at the fx.pool's size");
	return s;
}

Test(activate, release_to_waiter_is_told_on_the_loop)
{
	struct pool_waiter a, b;
	int peer;
	struct server *s = busy_pool(&a, &b, &peer);

	pool_release(s);
	cr_assert_eq(rec.n_ready, 0, "no hook inside pool_release");
	cr_assert_not(b.queued);
	cr_assert_eq(b.pending, PENDING_SERVER);
	cr_assert_eq(fx.pool->waiting.n, 0);
	cr_assert_eq(s->state, SV_ACTIVE, "reserved for b: nobody else can take it");
	cr_assert_eq(fx.pool->n_idle, 0);
	cr_assert_eq(s->reserved_for, &b);

	bool full;
	struct pool_waiter c;
	waiter_init(&c);
	cr_assert_null(pool_checkout(fx.pool, &c, &full), "a newcomer cannot take b's server");
	pool_dequeue(fx.pool, &c);

	run_loop();
	cr_assert_eq(rec.n_ready, 1);
	cr_assert_eq(rec.last_w, &b);
	cr_assert_eq(rec.last_s, s);
	cr_assert_eq(b.pending, PENDING_NONE);
	cr_assert_null(s->reserved_for);
	close(peer);
}

Test(activate, waiter_that_leaves_first_gets_nothing)
{
	struct pool_waiter a, b;
	int peer;
	struct server *s = busy_pool(&a, &b, &peer);

	pool_release(s);
	pool_dequeue(fx.pool, &b); /* b's client closes before the loop turns */
	cr_assert_eq(b.pending, PENDING_NONE);
	cr_assert_eq(s->state, SV_IDLE, "the reserved server is back idle");
	cr_assert_eq(fx.pool->n_idle, 1);
	cr_assert_eq(fx.pool->n_active, 0);
	cr_assert_null(s->reserved_for);

	run_loop();
	cr_assert_eq(rec.n_ready, 0);
	close(peer);
}

Test(activate, waiter_that_leaves_first_passes_server_to_next)
{
	struct pool_waiter a, b, c;
	int peer;
	struct server *s = busy_pool(&a, &b, &peer);
	bool full;
	waiter_init(&c);
	cr_assert_null(pool_checkout(fx.pool, &c, &full));

	pool_release(s);
	pool_dequeue(fx.pool, &b);
	cr_assert_eq(c.pending, PENDING_SERVER, "the next waiter, in order");
	cr_assert_eq(rec.n_ready, 0, "still deferred");
	run_loop();
	cr_assert_eq(rec.n_ready, 1);
	cr_assert_eq(rec.last_w, &c);
	close(peer);
}

Test(activate, reserved_server_closed_puts_waiter_back_at_head)
{
	struct pool_waiter a, b, c;
	int peer;
	struct server *s = busy_pool(&a, &b, &peer);
	bool full;
	waiter_init(&c);
	cr_assert_null(pool_checkout(fx.pool, &c, &full));
	usec_t b_since = b.since;

	pool_release(s);
	cr_assert_eq(b.pending, PENDING_SERVER);
	fx.env.shutting_down = true; /* no real login for the freed slot */
	pool_close_server(s, "test: died while reserved");
	cr_assert(b.queued);
	cr_assert_eq(b.pending, PENDING_NONE);
	cr_assert_eq(wait_queue_head(&fx.pool->waiting), &b, "b keeps its place ahead of c");
	cr_assert_eq(b.since, b_since);
	cr_assert_eq(fx.pool->waiting.n, 2);

	run_loop();
	cr_assert_eq(rec.n_ready, 0);
	cr_assert_eq(rec.n_failed, 0);
	pool_dequeue(fx.pool, &b);
	pool_dequeue(fx.pool, &c);
	close(peer);
}

Test(activate, reserved_server_that_talks_is_closed_and_waiter_requeued)
{
	struct pool_waiter a, b;
	int peer;
	struct server *s = busy_pool(&a, &b, &peer);
	pool_release(s);
	/* The activation has not run: the server is watched as an idle one.  Run only its
	 * read callback (the loop would run the activation first). */
	fx.env.shutting_down = true;
	cr_assert_eq(write(peer, "Z", 1), 1);
	stream_data_cb readcb;
	void *arg;
	stream_getcb(s->io, &readcb, &arg);
	cr_assert(readcb, "a reserved server keeps the idle watch");
	readcb(s->io, arg);
	cr_assert(b.queued, "back in the queue");
	cr_assert_eq(fx.pool->n_active, 0);
	run_loop();
	cr_assert_eq(rec.n_ready, 0);
	pool_dequeue(fx.pool, &b);
	close(peer);
}

/* A client linked from the activation releases its server at once (the first client
 * of a fx.pool in transaction pooling does): the next waiter is told on a later turn,
 * not inside the first one's hook. */
static struct pool_waiter *second;
static bool nested;

static void release_at_once(struct pool_waiter *w, struct server *s)
{
	if (w == second)
		return;
	int before = rec.n_ready;
	pool_release(s);
	nested = rec.n_ready != before;
}

Test(activate, hook_that_releases_does_not_nest)
{
	struct pool_waiter a, b, c;
	int peer;
	struct server *s = busy_pool(&a, &b, &peer);
	bool full;
	waiter_init(&c);
	cr_assert_null(pool_checkout(fx.pool, &c, &full));
	second = &c;
	rec.on_ready = release_at_once;

	pool_release(s);
	run_loop();
	cr_assert_not(nested, "c was told inside b's hook");
	cr_assert_eq(rec.n_ready, 2);
	cr_assert_eq(rec.last_w, &c);
	rec.on_ready = NULL;
	close(peer);
}

Test(activate, wait_failed_is_deferred_and_cancellable)
{
	struct pool_waiter a, b, c;
	int peer;
	(void)busy_pool(&a, &b, &peer);
	bool full;
	waiter_init(&c);
	cr_assert_null(pool_checkout(fx.pool, &c, &full));

	pool_env_tick(&fx.env, clock_now_usec() + 10 * USEC_PER_SEC); /* query_wait_timeout = 1 */
	cr_assert_eq(rec.n_failed, 0, "no hook inside the tick");
	cr_assert_eq(fx.pool->waiting.n, 0);
	cr_assert_eq(b.pending, PENDING_FAIL);
	cr_assert_eq(c.pending, PENDING_FAIL);
	pool_dequeue(fx.pool, &c); /* c's client left meanwhile */

	run_loop();
	cr_assert_eq(rec.n_failed, 1);
	cr_assert_eq(rec.last_w, &b);
	cr_assert_str_eq(rec.last_sqlstate, "57014");
	cr_assert(strstr(rec.last_message, "query_wait_timeout"), "%s", rec.last_message);
	close(peer);
}

Test(activate, app_token_is_told_on_the_loop_or_passed_on)
{
	struct app_gate *g = app_gate_get(&fx.env, "capped");
	cr_assert(g);
	struct pool_waiter x, y, z;
	waiter_init(&x);
	waiter_init(&y);
	waiter_init(&z);
	cr_assert_eq(app_gate_enter(g, &x), GATE_ENTERED);
	cr_assert_eq(app_gate_enter(g, &y), GATE_QUEUED);
	cr_assert_eq(app_gate_enter(g, &z), GATE_QUEUED);

	app_gate_leave(g); /* x's transaction ends */
	cr_assert_eq(rec.n_admitted, 0);
	cr_assert_eq(y.pending, PENDING_ADMIT);
	app_gate_dequeue(g, &y); /* y's client leaves: the token goes on to z */
	cr_assert_eq(z.pending, PENDING_ADMIT);
	cr_assert_eq(atomic_load(&g->shared->active), 1);

	run_loop();
	cr_assert_eq(rec.n_admitted, 1);
	cr_assert_eq(rec.last_w, &z);

	app_gate_leave(g); /* z done, nobody waits */
	cr_assert_eq(atomic_load(&g->shared->active), 0);
}
