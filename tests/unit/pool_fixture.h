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

struct pool_fixture {
	char conf_path[64];
	struct corral_config cfg;
	struct pool_registry reg;
	struct event_base *base;
	struct pool_env env;
	struct pool *pool;
};

/* Fails the test on any error. */
void pool_fixture_setup(struct pool_fixture *f, const char *ini, const struct pool_hooks *hooks);
void pool_fixture_teardown(struct pool_fixture *f);
/* A server of f's pool whose login is under way since now (its slot taken within
 * pool_limit), for pool_login_done to end. */
struct server *pool_fixture_login(struct pool_fixture *f, int pool_limit);

#endif
