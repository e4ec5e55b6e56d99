#include "tests/unit/pool_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pool_record rec;

static void hook_ready(struct pool_waiter *w, struct server *s)
{
	rec.n_ready++;
	rec.last_w = w;
	rec.last_s = s;
	if (rec.on_ready)
		rec.on_ready(w, s);
}

static void hook_admitted(struct pool_waiter *w)
{
	rec.n_admitted++;
	rec.last_w = w;
}

static void hook_failed(struct pool_waiter *w, const char *sqlstate, const char *message)
{
	rec.n_failed++;
	rec.last_w = w;
	rec.failed_at = (double)clock_now_usec() / USEC_PER_SEC;
	snprintf(rec.last_sqlstate, sizeof(rec.last_sqlstate), "%s", sqlstate);
	snprintf(rec.last_message, sizeof(rec.last_message), "%s", message);
}

static void hook_notice(struct pool_waiter *w, const char *message)
{
}

const struct pool_hooks pool_fixture_hooks = {
	.server_ready = hook_ready,
	.app_admitted = hook_admitted,
	.wait_failed = hook_failed,
	.wait_notice = hook_notice,
};

void pool_fixture_setup(struct pool_fixture *f, const char *ini)
{
	memset(f, 0, sizeof(*f));
	memset(&rec, 0, sizeof(rec));
	strcpy(f->conf_path, "/tmp/corral-pool-test-XXXXXX");
	int fd = mkstemp(f->conf_path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
	close(fd);
	char err[256] = "";
	cr_assert(config_load(f->conf_path, &f->cfg, err, sizeof(err)), "%s", err);
	cr_assert(pool_registry_init(&f->reg, 1));
	f->base = event_base_new();
	cr_assert(f->base);
	cr_assert(pool_env_init(&f->env, f->base, &f->cfg, &pool_fixture_hooks));
	pool_env_connect(&f->env, 0, 1, &f->reg, NULL);
	f->pool = pool_get(&f->env, &f->cfg.dbs[0], "u", NULL);
	cr_assert(f->pool);
}

void pool_fixture_teardown(struct pool_fixture *f)
{
	pool_env_shutdown(&f->env);
	event_base_free(f->base);
	pool_registry_free(&f->reg);
	config_free(&f->cfg);
	unlink(f->conf_path);
}

struct server *pool_fixture_login(struct pool_fixture *f, int pool_limit)
{
	struct server *s = calloc(1, sizeof(*s));
	cr_assert(s);
	s->pool = f->pool;
	s->created = clock_now_usec();
	s->login_fd = -1;
	s->login_sig = f->pool->login_sig; /* as launch_login */
	s->state = SV_CLOSED;
	list_init(&s->node);
	cr_assert_eq(pool_shared_take_slot(f->pool->shared, pool_limit, 0, 0), SLOT_TAKEN);
	return s;
}
