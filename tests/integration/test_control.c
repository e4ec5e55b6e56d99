/*
 * Operating a running corral (proxy/control.h) through signals: SIGHUP reloads the
 * configuration and auth file without dropping anyone (pool sizes under load, a broken
 * file refused, databases and users added and removed), SIGTERM stops accepting and
 * waits for the clients (bounded by shutdown_timeout).
 *
 * Server backends are counted in pg_stat_activity by a role of the test's own (the
 * database line logs in as it), so other tests running beside this one do not count.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(control, H_SUITE);

#define TX_SETTINGS "workers = 2\npool_mode = transaction\nquery_wait_timeout = 60\n"

/* A login role of this test's own, password "secret", allowed into database bench. */
static void make_role(const char *role)
{
	PGconn *su = h_superuser();
	char *sql = h_printf("DO $$ BEGIN CREATE ROLE %s LOGIN PASSWORD 'secret'; "
			     "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
			     role);
	h_exec_ok(su, sql);
	free(sql);
	PQfinish(su);
}

/* [databases] line NAME for database bench, logging in to PostgreSQL as role. */
static char *db_line(const char *name, const char *role, const char *options)
{
	return h_printf("%s = host=@PGHOST@ port=@PGPORT@ dbname=bench user=%s password=secret%s\n",
			name, role, options);
}

/* Replaces the first `from` in corral's configuration file with `to` (it must be there). */
static void edit_ini(const struct h_corral *c, const char *from_text, const char *to_text)
{
	char *from = h_subst(from_text), *to = h_subst(to_text);
	char *text = h_read_file(c->ini, NULL);
	cr_assert_not_null(text);
	char *at = strstr(text, from);
	cr_assert_not_null(at, "\"%s\" is not in %s:\n%s", from, c->ini, text);
	*at = '\0';
	char *next = h_printf("%s%s%s", text, to, at + strlen(from));
	h_write_file(c->ini, next);
	free(next);
	free(text);
	free(from);
	free(to);
}

/* SIGHUP, then waits for the reload to be in force on every worker. */
static void reload(const struct h_corral *c)
{
	int before = h_log_count(c, "event=reload_done");
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log_count(c, "event=reload_done", before + 1, 5.0),
		  "the reload was not applied:\n%s", h_corral_log_tail(c));
}

/* The pool_size of the stats_pool line of db in a fresh SIGUSR1 dump, or -1. */
static int dumped_pool_size(const struct h_corral *c, const char *db)
{
	char *match = h_printf("db=\"%s\"", db);
	char *line = h_stats_dump_line(c, "stats_pool", match);
	int size = line ? (int)h_log_field(line, "pool_size") : -1;

	free(match);
	free(line);
	return size;
}

/* pgbench through corral with a script of its own, in the background. */
struct bench {
	pid_t pid;
	bool running;
	char *out;
};

static void bench_start(struct bench *b, const struct h_corral *c, int clients, int secs,
			const char *script)
{
	char *file = h_path("tx.sql");
	h_write_file(file, script);
	b->out = h_path("pgbench.out");
	char *port = h_printf("%d", c->port), *nc = h_printf("%d", clients),
	     *t = h_printf("%d", secs), *pgbench = h_pgtool("pgbench");
	const char *argv[] = {pgbench, "-n", "-h", "127.0.0.1", "-p", port, "-U", H.user, "-c",
			      nc,      "-j", "4",  "-T",        t,    "-f", file, H.db,   NULL};
	setenv("PGPASSWORD", H.password, 1);
	struct h_spawn s = {.argv = argv, .out = b->out, .err = b->out};
	b->pid = h_spawn(&s);
	b->running = true;
	h_track_daemon(&b->pid, &b->running);
	free(file);
	free(port);
	free(nc);
	free(t);
	free(pgbench);
}

/* Waits for pgbench to end; it must have exited 0 with no failed transaction.  Returns
 * the transactions it completed. */
static long bench_finish(struct bench *b, double timeout_s)
{
	int status = 0;
	double deadline = h_now() + timeout_s;
	while (h_reap(b->pid, &b->running, &status)) {
		cr_assert(h_now() < deadline, "pgbench did not end:\n%s", h_log_tail(b->out));
		usleep(20000);
	}
	char *out = h_read_file(b->out, NULL);
	cr_assert_not_null(out);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pgbench failed:\n%s", out);
	const char *failed = strstr(out, "number of failed transactions: ");
	if (failed)
		cr_expect_eq(atol(failed + strlen("number of failed transactions: ")), 0,
			     "failed transactions:\n%s", out);
	const char *done = strstr(out, "number of transactions actually processed: ");
	cr_assert_not_null(done, "no transaction count:\n%s", out);
	long n = atol(done + strlen("number of transactions actually processed: "));
	free(out);
	free(b->out);
	return n;
}

/*
 * 100 clients run transactions while the pool shrinks from 10 to 4 and grows to 7 by
 * reloads: no transaction fails, and PostgreSQL sees the new size (busy servers close as
 * their transactions end), as does the statistics snapshot.
 */
Test(control, reload_resizes_pool_under_load, .timeout = 90)
{
	make_role("ctl_resize");
	char *dbs = db_line("bench", "ctl_resize", " pool_size=10");
	struct h_corral *c = h_corral_start(TX_SETTINGS "admin_users = bench\n", dbs, NULL);
	static struct bench b; /* h_fini kills it if the test fails: it must outlive the test */
	bench_start(&b, c, 100, 12, "BEGIN;\nSELECT pg_sleep(0.002);\nSELECT 1;\nCOMMIT;\n");
	cr_assert_geq(h_wait_pg_backends("bench", "ctl_resize", 10, 10), 0,
		      "the load never used 10 servers:\n%s", h_corral_log_tail(c));

	edit_ini(c, "pool_size=10", "pool_size=4");
	reload(c);
	cr_expect_geq(h_wait_pg_backends("bench", "ctl_resize", 4, 10), 0,
		      "PostgreSQL still sees %d backends after the pool shrank to 4:\n%s",
		      h_pg_backends("bench", "ctl_resize"), h_corral_log_tail(c));
	cr_expect_eq(dumped_pool_size(c, "bench"), 4);

	/* The second one through the admin console: RELOAD, then SHOW POOLS. */
	edit_ini(c, "pool_size=4", "pool_size=7");
	char *admin_ci = h_conninfo(c, H.user, "corral", H.password);
	PGconn *admin = h_connect(c, admin_ci);
	free(admin_ci);
	h_exec_ok(admin, "RELOAD");
	cr_expect_geq(h_wait_pg_backends("bench", "ctl_resize", 7, 10), 0,
		      "PostgreSQL sees %d backends after the pool grew to 7:\n%s",
		      h_pg_backends("bench", "ctl_resize"), h_corral_log_tail(c));
	PGresult *pools = h_exec(admin, "SHOW POOLS");
	cr_assert_eq(PQresultStatus(pools), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(pools));
	cr_assert_eq(PQntuples(pools), 1);
	cr_expect_str_eq(PQgetvalue(pools, 0, PQfnumber(pools, "pool_size")), "7");
	PQclear(pools);
	PQfinish(admin);
	cr_expect_eq(dumped_pool_size(c, "bench"), 7);

	long n = bench_finish(&b, 40);
	cr_expect_gt(n, 100, "only %ld transactions", n);
	cr_expect_eq(h_log_count(c, "level=error"), 0, "errors logged:\n%s", h_corral_log_tail(c));
	h_corral_stop(c);
	free(dbs);
}

/*
 * A configuration with errors is refused whole: every FILE:LINE: KEY: why is logged, and
 * the old one stays in force (pool size, clients served).
 */
Test(control, reload_refuses_broken_config)
{
	make_role("ctl_broken");
	char *dbs = db_line("bench", "ctl_broken", " pool_size=3");
	struct h_corral *c = h_corral_start(TX_SETTINGS, dbs, NULL);
	PGconn *a = h_connect_bench(c);
	h_expect_value(a, "select 'before'", "before");

	edit_ini(c, "pool_size=3", "pool_size=5");
	edit_ini(c, "pool_mode = transaction",
		 "pool_mode = transaction\nmax_client_conn = -1\nlisten_prot = 1");
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log(c, "event=reload_failed", 5.0), "no refusal:\n%s",
		  h_corral_log_tail(c));
	const char *name = strrchr(c->ini, '/') + 1;
	cr_expect_geq(h_log_count(c, "event=reload_refused"), 2, "each error on its own line:\n%s",
		      h_corral_log_tail(c));
	char *bad_value = h_printf("%s:9: max_client_conn: must be", name);
	char *bad_key =
		h_printf("%s:10: listen_prot: unknown key in [corral]; did you mean listen_port?",
			 name);
	cr_expect(h_log_count(c, bad_value) >= 1, "%s", h_corral_log_tail(c));
	cr_expect(h_log_count(c, bad_key) >= 1, "%s", h_corral_log_tail(c));
	free(bad_value);
	free(bad_key);
	cr_expect_eq(h_log_count(c, "event=reload_done"), 0);

	/* The old configuration, whole: pool_size 3, and everyone served. */
	cr_expect_eq(dumped_pool_size(c, "bench"), 3);
	h_expect_value(a, "select 'still served'", "still served");
	h_psql_expect(c, "select 'new client'", "new client\n");
	PQfinish(a);
	h_corral_stop(c);
	free(dbs);
}

/*
 * A database added is usable at once; one removed refuses new logins with 3D000 while
 * its connected client goes on (PgBouncer would drop it); a user added to the auth file
 * can log in.
 */
Test(control, reload_adds_and_removes_databases_and_users)
{
	make_role("ctl_dbs");
	char *gone = db_line("gone", "ctl_dbs", "");
	char *dbs = h_printf("%s%s", H_BENCH_DB, gone);
	struct h_corral *c = h_corral_start(TX_SETTINGS, dbs, NULL);
	char *ci_gone = h_conninfo(c, H.user, "gone", H.password);
	PGconn *old = h_connect(c, ci_gone);
	h_expect_value(old, "select current_user", "ctl_dbs");

	char *added = db_line("added", "ctl_dbs", "");
	edit_ini(c, gone, added);
	h_write_file(c->userlist, "\"bench\" \"secret\"\n\"newbie\" \"pw2\"\n");
	reload(c);

	char *ci_added = h_conninfo(c, H.user, "added", H.password);
	h_expect_new_client(c, ci_added, "select current_user", "ctl_dbs");
	char *err = NULL;
	PGconn *refused = h_try_connect(ci_gone, 10, &err);
	cr_expect_null(refused);
	cr_expect(err && strstr(err, "3D000") && strstr(err, "database \"gone\" does not exist"),
		  "a new client of the removed database got: %s", err ? err : "(connected)");
	/* The client that was there goes on, in transactions as before. */
	h_expect_value(old, "select 'still here'", "still here");
	h_expect_value(old, "select 'and again'", "and again");
	PQfinish(old);

	char *ci_newbie = h_conninfo(c, "newbie", H.db, "pw2");
	h_expect_new_client(c, ci_newbie, "select 'newbie'", "newbie");
	h_corral_stop(c);
	free(err);
	free(ci_newbie);
	free(ci_added);
	free(ci_gone);
	free(added);
	free(dbs);
	free(gone);
}

/* A changed connection string: the next transaction gets a server of the new line. */
Test(control, reload_changed_database_line_gets_new_servers)
{
	make_role("ctl_line_a");
	make_role("ctl_line_b");
	char *line_a = db_line("bench", "ctl_line_a", "");
	struct h_corral *c = h_corral_start(TX_SETTINGS, line_a, NULL);
	PGconn *a = h_connect_bench(c);
	h_expect_value(a, "select current_user", "ctl_line_a");
	edit_ini(c, "user=ctl_line_a", "user=ctl_line_b");
	reload(c);
	h_expect_value(a, "select current_user", "ctl_line_b");
	h_expect_new_client(c, NULL, "select current_user", "ctl_line_b");
	cr_expect_geq(h_wait_pg_backends("bench", "ctl_line_a", 0, 5), 0,
		      "servers of the old line are left");
	PQfinish(a);
	h_corral_stop(c);
	free(line_a);
}

/* SIGTERM: no new client gets in, the one connected finishes its work, and corral exits
 * (status 0) once it has left. */
Test(control, sigterm_waits_for_the_last_client)
{
	struct h_corral *c = h_corral_start(TX_SETTINGS "shutdown_timeout = 60\n", H_BENCH_DB,
					    NULL);
	PGconn *a = h_connect_bench(c);
	h_expect_value(a, "select 'before'", "before");
	cr_assert_eq(kill(c->pid, SIGTERM), 0);
	cr_assert(h_wait_log(c, "event=shutdown mode=wait_for_clients", 5.0), "%s",
		  h_corral_log_tail(c));

	h_expect_logins_refused(c);
	h_expect_value(a, "select 'finishing'", "finishing");
	h_exec_ok(a, "begin");
	h_expect_value(a, "select 'in a transaction'", "in a transaction");
	h_exec_ok(a, "commit");
	int status = 0;
	cr_expect(h_reap(c->pid, &c->running, &status), "corral left before its client");
	double left = h_now();
	PQfinish(a);
	while (h_reap(c->pid, &c->running, &status)) {
		cr_assert(h_now() - left < 5,
			  "corral still runs 5 s after its last client left:\n%s",
			  h_corral_log_tail(c));
		usleep(10000);
	}
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "corral exited with %d", status);
	cr_expect(h_log_count(c, "event=shutdown_clients_gone") == 1, "%s", h_corral_log_tail(c));
}

/* SIGTERM with shutdown_timeout = 1: a client that stays gets 57P01 after about a second,
 * and corral exits 0. */
Test(control, sigterm_bounded_by_shutdown_timeout)
{
	struct h_corral *c = h_corral_start(TX_SETTINGS "shutdown_timeout = 1\n", H_BENCH_DB, NULL);
	PGconn *a = h_connect_bench(c);
	h_exec_ok(a, "begin");
	h_expect_value(a, "select 'holding a server'", "holding a server");
	double start = h_now();
	int status = h_corral_sigterm_wait(c);
	double took = h_now() - start;
	cr_expect_geq(took, 0.9, "corral exited after %.2f s, before shutdown_timeout", took);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "corral exited with %d", status);
	cr_expect(h_log_count(c, "event=shutdown_timeout clients=1") == 1, "%s",
		  h_corral_log_tail(c));
	h_expect_admin_terminated(a, "the client");
	PQfinish(a);
}
