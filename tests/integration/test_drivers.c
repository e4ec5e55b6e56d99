/*
 * Real drivers through corral in transaction pooling: cancels from asyncpg (timeout=)
 * and psycopg 3 (cancel()) end the right statement with 57014 and leave the
 * connection usable, while another client's statement runs on (drivers/cancel.py,
 * run with Debian's python3, whose python3-asyncpg and python3-psycopg deps.sh
 * installs); and node-postgres named queries (drivers/node/named.js, issue 10) from 50
 * separate connections on a pool of 5: every one of them ok and checked, never more
 * than 5 server connections, and with max_prepared_statements = 0 an error naming that
 * setting instead.  The node tests run `node` from PATH with the pg package that `make
 * test` installs with npm ci (drivers/node/package-lock.json); they never install it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(drivers, H_SUITE);

Test(drivers, cancel_from_asyncpg_and_psycopg, .timeout = 60)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nworkers = 2\n", H_BENCH_DB,
					    NULL);
	char *script = h_printf("%s/tests/integration/drivers/cancel.py",
				h_need_env("CORRAL_SRCDIR"));
	struct h_cmd r = h_run(50, "/usr/bin/python3 %s postgresql://%s:%s@127.0.0.1:%d/%s", script,
			       H.user, H.password, c->port, H.db);
	cr_assert_eq(r.status, 0,
		     "drivers/cancel.py exited %d\nstdout:\n%s\nstderr:\n%s\ncorral log:\n%s",
		     r.status, r.out, r.err, h_corral_log_tail(c));
	cr_assert(strstr(r.out, "all cancels reached the right statement") != NULL, "%s", r.out);
	cr_log_info("%s", r.out);
	h_cmd_free(&r);
	free(script);
	h_corral_stop(c);
}

/* ---- node-postgres ---------------------------------------------------------------- */

#define NODE_CLIENTS 50
#define NODE_ROUNDS 8
#define NODE_QUERIES_PER_ROUND 5 /* named.js's QUERIES_PER_ROUND */
#define NODE_TOTAL (NODE_CLIENTS * NODE_ROUNDS * NODE_QUERIES_PER_ROUND)

/* A database no other test uses (the test without prepared statements uses bench), so
 * that its backends are this pool's alone. */
#define NODE_DB "node_named"
#define NODE_DB_LINE(options)                                    \
	NODE_DB " = host=@PGHOST@ port=@PGPORT@ dbname=" NODE_DB \
		" user=bench password=secret" options "\n"

/* node named.js against database db of c; fails the test with a pointer to make if pg
 * is not installed. */
static struct h_cmd run_named_js(const struct h_corral *c, const char *db)
{
	const char *src = h_need_env("CORRAL_SRCDIR");
	char *dir = h_printf("%s/tests/integration/drivers/node", src);
	char *pg = h_printf("%s/node_modules/pg/package.json", dir);
	struct stat st;
	if (stat(pg, &st) != 0)
		cr_assert_fail(
			"%s is missing: `make test` installs node-postgres there (npm ci in %s)",
			pg, dir);
	char *qdir = h_shq(dir);
	struct h_cmd r = h_run(90,
			       "cd %s && node named.js postgresql://%s:%s@127.0.0.1:%d/%s %d %d",
			       qdir, H.user, H.password, c->port, db, NODE_CLIENTS, NODE_ROUNDS);
	free(qdir);
	free(pg);
	free(dir);
	return r;
}

/* Issue 10: before corral carried prepared statements, 182 of 400 failed with 26000 (and
 * this script got 171 of 2000 ok from that corral: 42P05, other clients' statements). */
Test(drivers, node_postgres_named_queries, .timeout = 100)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\n",
					    NODE_DB_LINE(" pool_size=5"), NULL);
	struct h_sampler *s = h_sampler_start(NODE_DB, H.user);
	struct h_cmd r = run_named_js(c, NODE_DB);
	int samples = 0, peak = h_sampler_stop(s, &samples);
	char *want = h_printf("node-postgres: %d of %d named queries ok", NODE_TOTAL, NODE_TOTAL);
	cr_assert_eq(r.status, 0,
		     "named.js exited %d\nstdout:\n%s\nstderr:\n%.3000s\ncorral log:\n%s", r.status,
		     r.out, r.err, h_corral_log_tail(c));
	cr_assert(strstr(r.out, want) != NULL, "wanted \"%s\"\nstdout:\n%s\nstderr:\n%s", want,
		  r.out, r.err);
	cr_log_info("%s  peak %d backends of " NODE_DB " (%d samples)", r.out, peak, samples);
	cr_assert_gt(samples, 0);
	cr_assert_gt(peak, 0, "no backend of " NODE_DB " was ever seen");
	cr_assert_leq(peak, 5, "the pool of 5 had %d server connections", peak);
	free(want);
	h_cmd_free(&r);
	h_corral_stop(c);
}

/* With prepared statements off, the same script fails, and says which setting to look at. */
Test(drivers, node_postgres_named_queries_without_prepared_statements, .timeout = 100)
{
	struct h_corral *c =
		h_corral_start("pool_mode = transaction\nmax_prepared_statements = 0\n",
			       H_BENCH_DB_WITH(" pool_size=5"), NULL);
	struct h_cmd r = run_named_js(c, H.db);
	cr_assert_neq(r.status, 0, "named.js succeeded with max_prepared_statements = 0\n%s",
		      r.out);
	cr_assert(r.status > 0 && r.status < 128, "named.js did not exit by itself: %d\n%s\n%s",
		  r.status, r.out, r.err);
	cr_assert(strstr(r.err, "0A000") != NULL &&
			  strstr(r.err, "max_prepared_statements") != NULL,
		  "no 0A000 naming max_prepared_statements\nstdout:\n%s\nstderr:\n%.3000s", r.out,
		  r.err);
	cr_assert(strstr(r.out, "node-postgres: 0 of ") != NULL, "%s", r.out);
	cr_log_info("%s%.500s", r.out, r.err);
	h_cmd_free(&r);
	h_corral_stop(c);
}
