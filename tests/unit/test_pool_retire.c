/*
 * pool/shared.c: max_pools retires the least recently used idle record that is not a
 * database line's own (keep), frees it only once nothing holds it, frees the per-user
 * server counts no record names any more; and application names past STATS_MAX_APPS
 * share "(other)", app_default's limit included.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pool/shared.h"

#define N_WORKERS 2

static struct pool_registry reg;

static void setup(void)
{
	cr_assert(pool_registry_init(&reg, N_WORKERS));
}

static void teardown(void)
{
	pool_registry_free(&reg);
}

TestSuite(pool_retire, .init = setup, .fini = teardown);

static struct pool_shared *get(const char *user, int max, bool keep, enum registry_get_result *why)
{
	return pool_registry_get_ex(&reg, "db", user, 0, max, keep, why);
}

static bool listed(const struct pool_shared *ps)
{
	for (struct pool_shared *p = reg.head; p; p = p->next)
		if (p == ps)
			return true;
	return false;
}

static size_t count_list(const struct pool_shared *p)
{
	size_t n = 0;
	for (; p; p = p->next)
		n++;
	return n;
}

static bool user_count_exists(const char *user)
{
	for (struct server_count *sc = reg.counts; sc; sc = sc->next)
		if (sc->is_user && strcmp(sc->name, user) == 0)
			return true;
	return false;
}

Test(pool_retire, least_recently_used_idle_record_makes_room)
{
	enum registry_get_result why;
	struct pool_shared *a = get("a", 3, false, &why), *b = get("b", 3, false, &why),
			   *c = get("c", 3, false, &why);
	cr_assert(a && b && c);
	atomic_store(&a->last_used, 300);
	atomic_store(&b->last_used, 100); /* the oldest */
	atomic_store(&c->last_used, 200);
	struct pool_shared *d = get("d", 3, false, &why);
	cr_assert_not_null(d);
	cr_expect_eq(why, REG_OK);
	cr_expect(atomic_load(&b->retiring));
	cr_expect_not(listed(b), "b is off the list");
	cr_expect(listed(a) && listed(c) && listed(d));
	cr_expect_eq(reg.n_pools, 3);
	cr_expect_eq(count_list(reg.head), 3);
	cr_expect_eq(reg.retired, b);
	cr_expect_eq(reg.n_retired, 1);
	cr_expect_not(pool_shared_attach(b), "nobody joins a retiring record");
	cr_expect_eq(atomic_load(&b->clients), 0);

	/* b is held by its struct pool (locals 1) until that worker lets go. */
	pool_registry_sweep(&reg);
	cr_expect_eq(reg.retired, b);
	cr_expect(user_count_exists("b"));
	atomic_fetch_sub(&b->locals, 1);
	atomic_fetch_add(&b->msgs, 1); /* a message still names it */
	pool_registry_sweep(&reg);
	cr_expect_eq(reg.retired, b);
	atomic_fetch_sub(&b->msgs, 1);
	pool_registry_sweep(&reg);
	cr_expect_null(reg.retired, "freed once nothing holds it");
	cr_expect_not(user_count_exists("b"), "its user's server count went with it");
	cr_expect(user_count_exists("a"));

	/* "b" again: a new record, made by retiring the next oldest (c). */
	struct pool_shared *b2 = get("b", 3, false, &why);
	cr_assert_not_null(b2);
	cr_expect(atomic_load(&c->retiring));
	cr_expect(listed(b2) && !atomic_load(&b2->retiring));
}

Test(pool_retire, busy_and_kept_records_are_never_retired)
{
	enum registry_get_result why;
	struct pool_shared *kept = get("owner", 3, true, &why);
	struct pool_shared *busy = get("busy", 3, false, &why);
	struct pool_shared *queued = get("queued", 3, false, &why);
	cr_assert(kept && busy && queued);
	atomic_store(&kept->last_used, 1); /* oldest of all, but the operator's */
	cr_assert(pool_shared_attach(busy));
	atomic_store(&queued->slots[1].pub.waiting, 1);
	cr_expect_null(get("new", 3, false, &why));
	cr_expect_eq(why, REG_FULL);
	cr_expect_eq(reg.n_pools, 3);

	/* A server in use (counted, not idle) keeps it too. */
	atomic_store(&queued->slots[1].pub.waiting, 0);
	atomic_store(&queued->servers, 2);
	atomic_store(&queued->slots[0].pub.idle, 1);
	cr_expect_null(get("new", 3, false, &why));
	atomic_store(&queued->slots[1].pub.idle, 1); /* both idle now: closing them is fine */
	struct pool_shared *fresh = get("new", 3, false, &why);
	cr_expect_not_null(fresh);
	cr_expect(atomic_load(&queued->retiring));
	cr_expect_not(atomic_load(&busy->retiring));
	cr_expect_not(atomic_load(&kept->retiring));

	/* The busy one's client leaves: it is the oldest idle one now. */
	atomic_store(&queued->servers, 0); /* (what the retired one's servers did) */
	pool_shared_detach(busy);
	atomic_store(&busy->last_used, 2);
	atomic_store(&fresh->last_used, 3);
	cr_expect_not_null(get("newer", 3, false, &why));
	cr_expect(atomic_load(&busy->retiring));
}

Test(pool_retire, no_cap_never_retires)
{
	char user[16];
	for (int i = 0; i < 50; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		cr_assert_not_null(get(user, 0, false, NULL));
	}
	cr_expect_eq(reg.n_pools, 50);
	cr_expect_null(reg.retired);
}

Test(pool_retire, busy_app_default_names_past_the_cap_share_other_and_its_limit)
{
	char name[32];
	for (int i = 0; i < STATS_MAX_APPS; i++) {
		snprintf(name, sizeof(name), "fn%d", i);
		struct app_shared *a = pool_registry_app_ex(&reg, name, 20, false);
		cr_assert_not_null(a);
		cr_expect_str_eq(a->app, name);
		cr_expect_eq(atomic_load(&a->limit), 20);
		cr_assert(app_shared_attach(a)); /* in use: not retired */
	}
	struct app_shared *other = pool_registry_app_ex(&reg, "fn-over", 20, false);
	cr_assert_not_null(other);
	cr_expect_str_eq(other->app, STATS_OTHER_APP);
	cr_expect_eq(atomic_load(&other->limit), 20, "app_default's limit, shared");
	cr_expect_eq(pool_registry_app_ex(&reg, "fn-over-2", 20, false), other);
	/* A name [limits] lists keeps a record of its own. */
	struct app_shared *named = pool_registry_app_ex(&reg, "checkout", 5, true);
	cr_assert_not_null(named);
	cr_expect_str_eq(named->app, "checkout");
	cr_expect_eq(atomic_load(&named->limit), 5);
}

static struct app_shared *find_app(struct app_shared *list, const char *name)
{
	for (; list; list = list->next)
		if (strcmp(list->app, name) == 0)
			return list;
	return NULL;
}

Test(pool_retire, idle_application_records_make_room_and_are_freed_once_let_go)
{
	char name[32];
	struct app_shared *apps[STATS_MAX_APPS];
	for (int i = 0; i < STATS_MAX_APPS; i++) {
		snprintf(name, sizeof(name), "fn%d", i);
		apps[i] = pool_registry_app_ex(&reg, name, 0, false);
		cr_assert_not_null(apps[i]);
		atomic_store(&apps[i]->last_used, 1000 + i);
	}
	atomic_store(&apps[7]->last_used, 1); /* the least recently used */
	struct app_shared *named = pool_registry_app_ex(&reg, "checkout", 5, true);
	atomic_store(&named->last_used, 0); /* older still, but named in [limits] */
	cr_assert(app_shared_attach(apps[3]));
	atomic_store(&apps[3]->last_used, 0); /* older, but a client is attached */

	struct app_shared *fresh = pool_registry_app_ex(&reg, "fn-new", 0, false);
	cr_assert_not_null(fresh);
	cr_expect_str_eq(fresh->app, "fn-new", "its own record, not (other)");
	cr_expect(atomic_load(&apps[7]->retiring));
	cr_expect_null(find_app(reg.apps, "fn7"), "off the list (SHOW APPS)");
	cr_expect_eq(find_app(reg.retired_apps, "fn7"), apps[7]);
	cr_expect_not(app_shared_attach(apps[7]), "nobody joins a retiring record");
	cr_expect_not(atomic_load(&named->retiring));
	cr_expect_not(atomic_load(&apps[3]->retiring));

	/* Held by its gate (locals 1) and a token in flight, then let go. */
	atomic_fetch_add(&apps[7]->msgs, 1);
	atomic_fetch_sub(&apps[7]->locals, 1);
	pool_registry_sweep(&reg);
	cr_expect_eq(reg.retired_apps, apps[7]);
	atomic_fetch_sub(&apps[7]->msgs, 1);
	pool_registry_sweep(&reg);
	cr_expect_null(reg.retired_apps, "freed once nothing holds it");

	/* A token in use keeps a record from being chosen at all. */
	atomic_store(&apps[8]->last_used, 2);
	atomic_store(&apps[8]->active, 1);
	cr_assert_not_null(pool_registry_app_ex(&reg, "fn-newer", 0, false));
	cr_expect_not(atomic_load(&apps[8]->retiring));
}
