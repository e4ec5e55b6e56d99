/*
 * The console's control commands (proxy/admin_control.c): PAUSE / RESUME under load,
 * KILL, RELOAD and SET, SHUTDOWN WAIT_FOR_CLIENTS.  Server backends are counted by a role
 * of the test's own, so tests beside this one do not count.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(admin_control, H_SUITE);

#define SETTINGS \
	"workers = 2\npool_mode = transaction\nquery_wait_timeout = 60\nadmin_users = admin\n"
#define USERS "\"bench\" \"secret\"\n\"admin\" \"adminpw\"\n"

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

static struct h_corral *start(const char *role, const char *extra)
{
	make_role(role);
	char *settings = h_printf("%s%s", SETTINGS, extra);
	char *dbs =
		h_printf("bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=%s password=secret "
			 "pool_size=5\n",
			 role);
	struct h_corral *c = h_corral_start(settings, dbs, USERS);
	free(settings);
	free(dbs);
	return c;
}

static PGconn *admin(const struct h_corral *c)
{
	char *ci = h_conninfo(c, "admin", "corral", "adminpw");
	PGconn *a = h_connect(c, ci);
	free(ci);
	return a;
}

/* The console command must succeed with tag. */
static void command_ok(PGconn *a, const char *cmd, const char *tag, double timeout_s)
{
	PGresult *r = h_exec_t(a, cmd, timeout_s);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s %s", cmd,
		     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
	cr_expect_str_eq(PQcmdStatus(r), tag, "%s", cmd);
	PQclear(r);
}

static void command_fails(PGconn *a, const char *cmd, const char *sqlstate, const char *text)
{
	PGresult *r = h_exec(a, cmd);
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "%s: %s", cmd,
		     PQresStatus(PQresultStatus(r)));
	cr_expect_str_eq(h_sqlstate(r), sqlstate, "%s: %s", cmd, PQresultErrorMessage(r));
	cr_expect(strstr(PQresultErrorMessage(r), text) != NULL, "%s: [%s] lacks [%s]", cmd,
		  PQresultErrorMessage(r), text);
	PQclear(r);
}

/* conn has sent a query; true if its answer arrives within secs. */
static bool answered_within(PGconn *conn, double secs)
{
	double deadline = h_now() + secs;
	while (h_now() < deadline) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		poll(&pfd, 1, 50);
		cr_assert(PQconsumeInput(conn), "%s", PQerrorMessage(conn));
		if (!PQisBusy(conn))
			return true;
	}
	return false;
}

/* pgbench through corral in the background; status and output at the end. */
static pid_t bench_pid;
static bool bench_running;

static char *bench_start(const struct h_corral *c, int clients, int secs)
{
	char *file = h_path("tx.sql"), *out = h_path("pgbench.out");
	h_write_file(file, "BEGIN;\nSELECT pg_sleep(0.002);\nCOMMIT;\n");
	char *port = h_printf("%d", c->port), *nc = h_printf("%d", clients),
	     *t = h_printf("%d", secs), *pgbench = h_pgtool("pgbench");
	const char *argv[] = {pgbench, "-n", "-h", "127.0.0.1", "-p", port, "-U", H.user,
			      "-c",    nc,   "-T", t,           "-f", file, H.db, NULL};
	setenv("PGPASSWORD", H.password, 1);
	struct h_spawn s = {.argv = argv, .out = out, .err = out};
	bench_pid = h_spawn(&s);
	bench_running = true;
	h_track_daemon(&bench_pid, &bench_running);
	free(file);
	free(port);
	free(nc);
	free(t);
	free(pgbench);
	return out;
}

static void bench_finish(char *out)
{
	int status = 0;
	for (double deadline = h_now() + 60; h_reap(bench_pid, &bench_running, &status);) {
		cr_assert(h_now() < deadline, "pgbench did not end:\n%s", h_log_tail(out));
		usleep(20000);
	}
	char *text = h_read_file(out, NULL);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pgbench failed:\n%s", text);
	const char *failed = strstr(text, "number of failed transactions: ");
	if (failed)
		cr_expect_eq(atol(failed + strlen("number of failed transactions: ")), 0, "%s",
			     text);
	free(text);
	free(out);
}

/*
 * PAUSE under load answers once every server is closed; meanwhile no transaction
 * completes (a client's query waits); RESUME lets it complete; pgbench sees no error.
 */
Test(admin_control, pause_resume_under_load, .timeout = 90)
{
	struct h_corral *c = start("adm_pause", "");
	char *out = bench_start(c, 50, 8);
	cr_assert_geq(h_wait_pg_backends("bench", "adm_pause", 5, 10), 0,
		      "the load never used 5 servers");
	PGconn *a = admin(c);
	command_ok(a, "PAUSE", "PAUSE", 20);
	cr_expect_eq(h_pg_backends("bench", "adm_pause"), 0, "servers left after PAUSE answered");

	PGconn *b = h_connect_bench(c);
	cr_assert(PQsendQuery(b, "select 'held'"));
	cr_expect_not(answered_within(b, 1.0), "a transaction completed while paused");
	command_fails(a, "PAUSE", "55000", "already paused");
	command_ok(a, "RESUME", "RESUME", 5);
	PGresult *r = h_results(b, "select 'held'", H_QUERY_TIMEOUT);
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	command_fails(a, "RESUME", "55000", "not paused");
	bench_finish(out);
	PQfinish(b);
	PQfinish(a);
	h_corral_stop(c);
}

/* KILL db: its clients are gone at once (57P01), the database stays paused until RESUME. */
Test(admin_control, kill_disconnects_and_pauses)
{
	struct h_corral *c = start("adm_kill", "");
	PGconn *b = h_connect_bench(c);
	h_expect_value(b, "select 'before'", "before");
	PGconn *a = admin(c);
	command_fails(a, "KILL nosuch", "3D000", "no such database: nosuch");
	command_ok(a, "KILL bench", "KILL", 5);
	PGresult *r = h_exec(b, "select 1");
	cr_expect_str_eq(h_sqlstate(r), "57P01", "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(b);
	cr_expect_geq(h_wait_pg_backends("bench", "adm_kill", 0, 5), 0);

	PGconn *d = h_connect_bench(c);
	cr_assert(PQsendQuery(d, "select 'after resume'"));
	cr_expect_not(answered_within(d, 0.5), "served while killed (paused)");
	command_ok(a, "RESUME bench", "RESUME", 5);
	r = h_results(d, "select 'after resume'", H_QUERY_TIMEOUT);
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(d);
	PQfinish(a);
	h_corral_stop(c);
}

/* SET and RELOAD from the console: the file's checks, settings that need a restart. */
Test(admin_control, set_and_reload)
{
	struct h_corral *c = start("adm_set", "");
	PGconn *a = admin(c);
	command_ok(a, "SET query_wait_timeout = 30", "SET", 5);
	command_ok(a, "SET server_reset_query = 'DISCARD ALL'", "SET", 5);
	command_fails(a, "SET default_pool_size = -1", "22023", "SET: default_pool_size: must be");
	command_fails(a, "SET query_wait_timout = 3", "22023", "did you mean query_wait_timeout?");
	command_fails(a, "SET listen_port = 7000", "22023", "needs a restart");
	command_fails(a, "SET default_pool_size", "42601", "SET key = value");
	command_ok(a, "RELOAD", "RELOAD", 5);
	cr_expect(h_wait_log_count(c, "event=reload_done", 1, 5), "%s", h_corral_log_tail(c));
	h_psql_expect(c, "select 'served'", "served\n");
	PQfinish(a);
	h_corral_stop(c);
}

/* SHUTDOWN WAIT_FOR_CLIENTS: nobody new gets in, the client there finishes, corral exits
 * once it has left. */
Test(admin_control, shutdown_wait_for_clients)
{
	struct h_corral *c = start("adm_shutdown", "");
	PGconn *b = h_connect_bench(c);
	h_expect_value(b, "select 'before'", "before");
	PGconn *a = admin(c);
	command_ok(a, "SHUTDOWN WAIT_FOR_CLIENTS", "SHUTDOWN", 5);
	PQfinish(a);
	h_expect_logins_refused(c);
	h_expect_value(b, "select 'finishing'", "finishing");
	int status = 0;
	cr_expect(h_reap(c->pid, &c->running, &status), "corral left before its client");
	double left = h_now();
	PQfinish(b);
	while (h_reap(c->pid, &c->running, &status)) {
		cr_assert(h_now() - left < 5, "corral still runs 5 s after its last client left");
		usleep(10000);
	}
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "corral exited with %d", status);
}
