/*
 * pool/keepalive.c: [corral] tcp_keepalive* become libpq's keepalives* keywords for
 * server logins, unless the database line sets them.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "pool/keepalive.h"

static const char *value_of(const char **keys, const char **vals, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0)
			return vals[i];
	return NULL;
}

Test(keepalive, defaults_add_nothing)
{
	struct corral_config cfg = {.tcp_keepalive = true};
	struct db_config db = {0};
	const char *k[KEEPALIVE_PARAMS], *v[KEEPALIVE_PARAMS];
	char buf[KEEPALIVE_PARAMS][16];
	cr_expect_eq(keepalive_login_params(&cfg, &db, k, v, buf), 0);
}

Test(keepalive, settings_become_libpq_keywords)
{
	struct corral_config cfg = {.tcp_keepalive = true,
				    .tcp_keepidle = 30,
				    .tcp_keepintvl = 5,
				    .tcp_keepcnt = 3};
	struct db_config db = {0};
	const char *k[KEEPALIVE_PARAMS], *v[KEEPALIVE_PARAMS];
	char buf[KEEPALIVE_PARAMS][16];
	size_t n = keepalive_login_params(&cfg, &db, k, v, buf);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(value_of(k, v, n, "keepalives_idle"), "30");
	cr_expect_str_eq(value_of(k, v, n, "keepalives_interval"), "5");
	cr_expect_str_eq(value_of(k, v, n, "keepalives_count"), "3");
	cr_expect_null(value_of(k, v, n, "keepalives"));
}

Test(keepalive, off_says_keepalives_0_only)
{
	struct corral_config cfg = {.tcp_keepalive = false, .tcp_keepidle = 30};
	struct db_config db = {0};
	const char *k[KEEPALIVE_PARAMS], *v[KEEPALIVE_PARAMS];
	char buf[KEEPALIVE_PARAMS][16];
	size_t n = keepalive_login_params(&cfg, &db, k, v, buf);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(k[0], "keepalives");
	cr_expect_str_eq(v[0], "0");
}

Test(keepalive, the_database_line_wins)
{
	struct corral_config cfg = {.tcp_keepalive = true, .tcp_keepidle = 30, .tcp_keepcnt = 3};
	char *keys[] = {"host", "keepalives_idle", NULL}, *vals[] = {"h", "99", NULL};
	struct db_config db = {.conn_keys = keys, .conn_vals = vals, .n_conn = 2};
	const char *k[KEEPALIVE_PARAMS], *v[KEEPALIVE_PARAMS];
	char buf[KEEPALIVE_PARAMS][16];
	size_t n = keepalive_login_params(&cfg, &db, k, v, buf);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(k[0], "keepalives_count");
	cr_expect_str_eq(v[0], "3");
}
