/*
 * pool/config.c: config_set (the console's SET) parses a value as the file would, and
 * config_copy copies every part of a snapshot.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/config.h"

static struct corral_config cfg;

static void setup(void)
{
	char path[] = "/tmp/corral-config-set-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	static const char ini[] =
		"[corral]\nauth_type = trust\nserver_reset_query = RESET ALL\n"
		"[databases]\nd = host=127.0.0.1 dbname=d user=u password=p pool_size=3\n"
		"[users]\nu = pool_mode=transaction\n[limits]\napp.a = 2\n";
	cr_assert_eq(write(fd, ini, sizeof(ini) - 1), (ssize_t)sizeof(ini) - 1);
	close(fd);
	char err[1024];
	cr_assert(config_load(path, &cfg, err, sizeof(err)), "%s", err);
	unlink(path);
}

static void teardown(void)
{
	config_free(&cfg);
}

TestSuite(config_set, .init = setup, .fini = teardown);

Test(config_set, copies_and_changes_one_key)
{
	struct corral_config out;
	char err[512];
	cr_assert(config_set(&cfg, "default_pool_size", "7", &out, err, sizeof(err)), "%s", err);
	cr_expect_eq(out.default_pool_size, 7);
	cr_expect_eq(cfg.default_pool_size, 20, "the snapshot in force is not touched");
	cr_expect_str_eq(out.server_reset_query, "RESET ALL");
	cr_expect_neq(out.server_reset_query, cfg.server_reset_query, "strings are copies");
	cr_expect_eq(out.n_dbs, 1);
	cr_expect_str_eq(config_find_db(&out, "d")->password, "p");
	cr_expect_eq(config_pool_size(&out, config_find_db(&out, "d")), 3);
	cr_expect_eq(config_pool_mode(&out, NULL, "u"), POOL_MODE_TRANSACTION);
	cr_expect_eq(config_app_limit(&out, "a"), 2);
	config_free(&out);
}

Test(config_set, refuses_what_the_file_would_refuse)
{
	struct corral_config out;
	char err[512];
	cr_expect_not(config_set(&cfg, "default_pool_size", "-1", &out, err, sizeof(err)));
	cr_expect(strstr(err, "SET: default_pool_size: must be") != NULL, "%s", err);
	cr_expect_not(config_set(&cfg, "query_wait_timout", "5", &out, err, sizeof(err)));
	cr_expect(strstr(err, "did you mean query_wait_timeout?") != NULL, "%s", err);
	cr_expect_not(config_set(&cfg, "min_pool_size", "50", &out, err, sizeof(err)));
	cr_expect(strstr(err, "min_pool_size: must be at most default_pool_size") != NULL, "%s",
		  err);
}
