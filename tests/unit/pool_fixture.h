/*
 * What the pool/ unit tests share: one worker's pool_env on a real event_base with the
 * test's hooks, built from an INI text, and the one pool of its first database (user
 * "u").  No sockets and no PostgreSQL: logins are ended by the test through
 * pool_login_done, as server.c would.
 */
#ifndef CORRAL_TESTS_UNIT_POOL_FIXTURE_H
#define CORRAL_TESTS_UNIT_POOL_FIXTURE_H

#include <event2/event.h>

#include "pool/config.h"
#include "pool/pool.h"

/* What the pool told the test through its hooks (pool_fixture_hooks). */
struct pool_record {
	int n_ready, n_admitted, n_failed;
	struct pool_waiter *last_w;
	struct server *last_s;
	char last_sqlstate[6];
	char last_message[400];
	double failed_at; /* monotonic seconds */
	/* Called from server_ready, to act as a client would from inside the hook. */
	void (*on_ready)(struct pool_waiter *w, struct server *s);
};
extern struct pool_record rec;
/* Hooks that record into rec (pool_fixture_setup clears it). */
extern const struct pool_hooks pool_fixture_hooks;

struct pool_fixture {
	char conf_path[64];
	struct corral_config cfg;
	struct pool_registry reg;
	struct event_base *base;
	struct pool_env env;
	struct pool *pool;
};

/* Fails the test on any error; the pool reports through pool_fixture_hooks. */
void pool_fixture_setup(struct pool_fixture *f, const char *ini);
void pool_fixture_teardown(struct pool_fixture *f);
/* A server of f's pool whose login is under way since now (its slot taken within
 * pool_limit), for pool_login_done to end. */
struct server *pool_fixture_login(struct pool_fixture *f, int pool_limit);

#endif
