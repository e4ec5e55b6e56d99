/*
 * pool/pool_control.c: a worker's pools under PAUSE / RESUME and under a new
 * configuration (pool_env_adopt).  The pool fixture's one worker; servers are
 * socketpairs brought in through pool_login_done; closing one sends Terminate and waits
 * for the "backend" (the test) to close its end, as PostgreSQL would.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/stream.h"
#include <event2/event.h>

#include "pool/config.h"
#include "pool/pool.h"
#include "tests/unit/pool_fixture.h"

#define DB_LINE "d = host=127.0.0.1 port=1 dbname=d user=u"

static struct pool_fixture fx;
static struct corral_config next_cfg; /* what pool_env_adopt took; outlives the test */

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as corral: a backend gone before its Terminate is written */
	pool_fixture_setup(&fx, "[corral]\nauth_type = trust\nquery_wait_timeout = 60\n"
				"[databases]\n" DB_LINE " pool_size=2\n");
}

static void teardown(void)
{
	pool_fixture_teardown(&fx);
	config_free(&next_cfg);
}

TestSuite(pool_control, .init = setup, .fini = teardown);

static struct server *new_server(int *peer)
{
	int fds[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	struct server *s = pool_fixture_login(&fx, fx.pool->size);
	s->io = stream_socket_new(fx.base, fds[0], true);
	cr_assert(s->io);
	s->id = 1;
	pool_login_done(s, true, NULL, NULL);
	*peer = fds[1];
	return s;
}

static void run_loop(void)
{
	event_base_loop(fx.base, EVLOOP_NONBLOCK);
}

/* The "backend" exits: corral sees the close and gives the slot back. */
static void backend_exits(int peer)
{
	close(peer);
	for (int i = 0; i < 5; i++)
		run_loop();
}

static void waiter_init(struct pool_waiter *w)
{
	memset(w, 0, sizeof(*w));
	list_init(&w->node);
}

/* A new configuration for the fixture's pool, adopted as a reload would. */
static void adopt(const char *db_options)
{
	char path[] = "/tmp/corral-pool-control-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	char ini[512];
	int n = snprintf(ini, sizeof(ini), "[corral]\nauth_type = trust\n[databases]\n%s\n",
			 db_options);
	cr_assert_eq(write(fd, ini, (size_t)n), n);
	close(fd);
	char err[1024];
	config_free(&next_cfg);
	cr_assert(config_load(path, &next_cfg, err, sizeof(err)), "%s", err);
	unlink(path);
	pool_env_adopt(&fx.env, &next_cfg);
}

Test(pool_control, pause_closes_idle_holds_checkouts_and_resume_serves)
{
	int peer;
	struct server *s = new_server(&peer);
	cr_assert_eq(s->state, SV_IDLE);
	cr_assert(pool_env_pause(&fx.env, "d"));
	cr_expect_eq(s->state, SV_CLOSING, "an idle server closes at PAUSE");
	backend_exits(peer);
	cr_expect_eq(pool_registry_db_servers(&fx.reg, "d"), 0);

	struct pool_waiter w;
	bool full;
	waiter_init(&w);
	cr_expect_null(pool_checkout(fx.pool, &w, &full));
	cr_expect(w.queued, "a client that wants a server waits while paused");
	cr_expect_eq(fx.pool->n_login, 0, "no login while paused");

	pool_env_resume(&fx.env, "d");
	cr_expect_eq(fx.pool->n_login, 1, "RESUME starts a login for the waiter");
	pool_dequeue(fx.pool, &w);
}

Test(pool_control, pause_closes_a_busy_server_when_it_comes_back)
{
	int peer;
	struct server *s = new_server(&peer);
	struct pool_waiter w;
	bool full;
	waiter_init(&w);
	cr_assert_eq(pool_checkout(fx.pool, &w, &full), s);
	cr_assert(pool_env_pause(&fx.env, NULL));
	cr_expect_eq(s->state, SV_ACTIVE, "a busy server finishes its transaction");
	cr_expect_eq(pool_registry_db_servers(&fx.reg, NULL), 1);
	pool_release(s);
	cr_expect_eq(s->state, SV_CLOSING, "and closes when it comes back");
	backend_exits(peer);
	cr_expect_eq(pool_registry_db_servers(&fx.reg, NULL), 0, "PAUSE is done");
	cr_expect(pool_env_paused(&fx.env, "any"), "a pool made later starts paused");
	pool_env_resume(&fx.env, NULL);
	cr_expect_not(pool_env_paused(&fx.env, "d"));
}

Test(pool_control, smaller_pool_closes_idle_surplus_and_busy_ones_on_return)
{
	int p1, p2;
	struct server *a = new_server(&p1), *b = new_server(&p2);
	struct pool_waiter w;
	bool full;
	waiter_init(&w);
	cr_assert_eq(pool_checkout(fx.pool, &w, &full), b, "LIFO: the last one parked");
	adopt(DB_LINE " pool_size=1");
	cr_expect_eq(fx.pool->size, 1);
	cr_expect_eq(a->state, SV_CLOSING, "the idle server over the new size closes");
	backend_exits(p1);
	cr_expect_eq(atomic_load(&fx.pool->shared->servers), 1);
	pool_release(b);
	cr_expect_eq(b->state, SV_IDLE, "at the new size, a server coming back stays");
	close(p2);
}

Test(pool_control, changed_database_line_retires_old_servers)
{
	int p1, p2;
	struct server *idle = new_server(&p1), *busy = new_server(&p2);
	struct pool_waiter w;
	bool full;
	waiter_init(&w);
	cr_assert_eq(pool_checkout(fx.pool, &w, &full), busy);
	uint64_t before = fx.pool->login_sig;
	adopt("d = host=127.0.0.1 port=2 dbname=d user=u pool_size=2");
	cr_expect_neq(fx.pool->login_sig, before);
	cr_expect_eq(idle->state, SV_CLOSING, "an idle server of the old line closes at once");
	pool_release(busy);
	cr_expect_eq(busy->state, SV_CLOSING, "a busy one when it comes back");
	backend_exits(p1);
	backend_exits(p2);
	cr_expect_eq(pool_registry_db_servers(&fx.reg, "d"), 0);
}

Test(pool_control, removed_database_keeps_its_pool)
{
	int p1;
	struct server *s = new_server(&p1);
	adopt("other = host=127.0.0.1 port=1 dbname=d user=u");
	cr_expect(fx.pool->removed);
	cr_expect_eq(s->state, SV_IDLE, "its servers stay while it may have clients");
	close(p1);
}

/* A client's previous server is handed back if it is idle among the last parked; any
 * other idle one otherwise (LIFO). */
Test(pool_control, checkout_prefers_the_previous_server)
{
	int p1, p2;
	struct server *a = new_server(&p1), *b = new_server(&p2);
	a->id = 11;
	b->id = 12;
	struct pool_waiter w;
	bool full;
	waiter_init(&w);
	w.prefer = a->id;
	cr_assert_eq(pool_checkout(fx.pool, &w, &full), a, "its previous server, not LIFO's b");
	w.prefer = a->id; /* busy now: LIFO */
	cr_assert_eq(pool_checkout(fx.pool, &w, &full), b);
	pool_release(a);
	pool_release(b);
	w.prefer = 0;
	cr_assert_eq(pool_checkout(fx.pool, &w, &full), b, "no preference: LIFO");
	pool_release(b);
}
