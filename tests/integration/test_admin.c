/*
 * The admin console (proxy/admin.h) through libpq and psql: every SHOW's exact columns,
 * values against a known workload, who may connect and run what, the pgbouncer alias,
 * admin_db, the simple query protocol only.
 *
 * Counters are bumped right after a reply is written to the client, so a console read
 * the moment the client has its answer may be a moment early: value checks poll (5 s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(admin, H_SUITE);

#define USERS                       \
	"\"bench\" \"secret\"\n"    \
	"\"admin\" \"adminpw\"\n"   \
	"\"watcher\" \"watchpw\"\n" \
	"\"stranger\" \"strangepw\"\n"
#define ADMIN_SETTINGS                                                    \
	"workers = 2\npool_mode = transaction\nquery_wait_timeout = 60\n" \
	"admin_users = admin\nstats_users = bench, watcher\n"

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static struct h_corral *start(const char *extra, const char *databases)
{
	char *settings = h_printf("%s%s", ADMIN_SETTINGS, extra ? extra : "");
	struct h_corral *c = h_corral_start(settings, databases, USERS);

	free(settings);
	return c;
}

static PGconn *console(const struct h_corral *c, const char *user, const char *password,
		       const char *db)
{
	char *ci = h_conninfo(c, user, db, password);
	PGconn *conn = h_connect(c, ci);

	free(ci);
	return conn;
}

static PGconn *admin(const struct h_corral *c)
{
	return console(c, "admin", "adminpw", "corral");
}

/* "a,b,c" of a result's column names. */
static char *column_list(const PGresult *r)
{
	struct h_sbuf b = {0};

	for (int i = 0; i < PQnfields(r); i++) {
		if (i)
			h_sb_add(&b, ",", 1);
		h_sb_add(&b, PQfname(r, i), strlen(PQfname(r, i)));
	}
	h_sb_add(&b, "", 0);
	return b.p ? b.p : strdup("");
}

static const char *const POOLS_COLS =
	"database,user,cl_active,cl_waiting,cl_active_cancel_req,cl_waiting_cancel_req,"
	"sv_active,sv_active_cancel,sv_being_canceled,sv_idle,sv_used,sv_tested,sv_login,"
	"maxwait,maxwait_us,pool_mode,load_balance_hosts,"
	"cl_idle,cl_linked,cl_waiting_server,cl_waiting_app,cl_welcome_wait,sv_closing,pool_size,"
	"pinned";
static const char *const STATS_COLS =
	"database,total_server_assignment_count,total_xact_count,total_query_count,"
	"total_received,total_sent,total_xact_time,total_query_time,total_wait_time,"
	"total_client_parse_count,total_server_parse_count,total_bind_count,"
	"total_client_login_count,avg_server_assignment_count,avg_xact_count,avg_query_count,"
	"avg_recv,avg_sent,avg_xact_time,avg_query_time,avg_wait_time,avg_client_parse_count,"
	"avg_server_parse_count,avg_bind_count,avg_client_login_count,"
	"total_sheds,total_timeouts,xact_p50_us,xact_p99_us,wait_p50_us,wait_p99_us";
static const char *const SOCKET_COLS =
	"type,user,database,replication,state,addr,port,local_addr,local_port,connect_time,"
	"request_time,wait,wait_us,close_needed,ptr,link,remote_pid,tls,application_name,"
	"prepared_statements,id,worker,corral_state";

static const struct {
	const char *command;
	const char *columns;
} SHOWS[] = {
	{"SHOW POOLS", NULL /* POOLS_COLS */},
	{"SHOW STATS", NULL /* STATS_COLS */},
	{"SHOW STATS_TOTALS",
	 "database,server_assignment_count,xact_count,query_count,bytes_received,bytes_sent,"
	 "xact_time,query_time,wait_time,client_parse_count,server_parse_count,bind_count,"
	 "client_login_count"},
	{"SHOW STATS_AVERAGES",
	 "database,server_assignment_count,xact_count,query_count,bytes_received,bytes_sent,"
	 "xact_time,query_time,wait_time,avg_client_parse_count,avg_server_parse_count,"
	 "avg_bind_count,avg_client_login_count"},
	{"SHOW APPS",
	 "application_name,limit,active,waiting,slots_in_use,queue_depth,cl_idle,maxwait,"
	 "maxwait_us,xact_count,checkouts,admitted,shed,timed_out,wait_p50_us,wait_p99_us,"
	 "xact_p50_us,xact_p99_us,pinned"},
	{"SHOW PINS", "reason,action,database,user,application_name,count"},
	{"SHOW CLIENTS", NULL /* SOCKET_COLS */},
	{"SHOW SERVERS", NULL /* SOCKET_COLS */},
	{"SHOW DATABASES",
	 "name,host,port,database,force_user,pool_size,min_pool_size,reserve_pool_size,"
	 "server_lifetime,pool_mode,load_balance_hosts,max_connections,current_connections,"
	 "max_client_connections,current_client_connections,paused,disabled"},
	{"SHOW USERS",
	 "name,pool_size,reserve_pool_size,pool_mode,max_user_connections,current_connections,"
	 "max_user_client_connections,current_client_connections"},
	{"SHOW CONFIG", "key,value,default,changeable"},
	{"SHOW LISTS", "list,items"},
	{"SHOW VERSION", "version"},
	{"SHOW AUTH_QUERY", "lookups,found,not_found,failed,cache_hits,shared,cached"},
	{"SHOW HELP", "command"},
};

static const char *show_columns(size_t i)
{
	if (SHOWS[i].columns)
		return SHOWS[i].columns;
	if (strcmp(SHOWS[i].command, "SHOW POOLS") == 0)
		return POOLS_COLS;
	if (strcmp(SHOWS[i].command, "SHOW STATS") == 0)
		return STATS_COLS;
	return SOCKET_COLS;
}

/* Row of r whose column col is value, or -1. */
static int find_row(const PGresult *r, const char *col, const char *value)
{
	int f = PQfnumber(r, col);

	cr_assert_geq(f, 0, "no column %s", col);
	for (int i = 0; i < PQntuples(r); i++)
		if (strcmp(PQgetvalue(r, i, f), value) == 0)
			return i;
	return -1;
}

static long long cell(const PGresult *r, int row, const char *col)
{
	int f = PQfnumber(r, col);

	cr_assert_geq(f, 0, "no column %s", col);
	return strtoll(PQgetvalue(r, row, f), NULL, 10);
}

struct want {
	const char *col;
	long long value;
};

/* Runs sql on conn until the row with key = value has every wanted value (5 s). */
static PGresult *wait_row(PGconn *conn, const char *sql, const char *key, const char *value,
			  const struct want *want, size_t n)
{
	double deadline = h_now() + 5.0;

	for (;;) {
		PGresult *r = h_exec(conn, sql);

		cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql,
			     PQresultErrorMessage(r));
		int row = find_row(r, key, value);
		size_t ok = 0;
		while (row >= 0 && ok < n && cell(r, row, want[ok].col) == want[ok].value)
			ok++;
		if (ok == n)
			return r;
		if (h_now() > deadline)
			cr_assert_fail("%s: no row %s=%s with %s=%lld within 5 s (got %lld)", sql,
				       key, value, want[ok].col, want[ok].value,
				       row >= 0 ? cell(r, row, want[ok].col) : -1);
		PQclear(r);
		sleep_ms(50);
	}
}

/* psql -X -A: the header line (column names joined by '|') of the command's output. */
static char *psql_header(const struct h_corral *c, const char *user, const char *password,
			 const char *db, const char *command)
{
	char *psql = h_pgtool("psql"), *q = h_shq(command);
	struct h_cmd r = h_run(H_QUERY_TIMEOUT,
			       "PGPASSWORD=%s %s -X -A -h 127.0.0.1 -p %d -U %s %s -c %s", password,
			       psql, c->port, user, db, q);

	cr_assert_eq(r.status, 0, "psql -c %s: status %d, stderr %s", command, r.status, r.err);
	char *nl = strchr(r.out, '\n');
	if (nl)
		*nl = '\0';
	for (char *p = r.out; *p; p++)
		if (*p == '|')
			*p = ',';
	char *header = strdup(r.out);
	h_cmd_free(&r);
	free(psql);
	free(q);
	return header;
}

Test(admin, every_show_has_its_columns_through_libpq_and_psql, .timeout = 60)
{
	struct h_corral *c = start(NULL, H_BENCH_DB);
	PGconn *conn = admin(c);
	PGconn *client = h_connect_bench(c); /* so that some lists have rows */

	h_exec_ok(client, "SELECT 1");
	for (size_t i = 0; i < sizeof SHOWS / sizeof SHOWS[0]; i++) {
		PGresult *r = h_exec(conn, SHOWS[i].command);

		cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s%s", SHOWS[i].command,
			     PQresultErrorMessage(r), PQerrorMessage(conn));
		char *cols = column_list(r);
		cr_expect_str_eq(cols, show_columns(i), "%s", SHOWS[i].command);
		free(cols);
		PQclear(r);
		char *header = psql_header(c, "admin", "adminpw", "corral", SHOWS[i].command);
		cr_expect_str_eq(header, show_columns(i), "psql %s", SHOWS[i].command);
		free(header);
	}
	/* Case, blanks and a trailing ';' do not matter. */
	PGresult *r = h_exec(conn, "  show\tpools ; ");
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	/* changeable: what SET may change live; what needs a restart may not. */
	r = h_exec(conn, "SHOW CONFIG");
	int row = find_row(r, "key", "default_pool_size");
	cr_assert_geq(row, 0);
	cr_expect_str_eq(PQgetvalue(r, row, PQfnumber(r, "changeable")), "yes");
	row = find_row(r, "key", "listen_port");
	cr_assert_geq(row, 0);
	cr_expect_str_eq(PQgetvalue(r, row, PQfnumber(r, "changeable")), "no");
	PQclear(r);
	PQfinish(client);
	PQfinish(conn);
	h_corral_stop(c);
}

/* 1000 transactions from 10 clients: SHOW STATS counts 1000 for the database. */
Test(admin, stats_count_a_known_workload, .timeout = 60)
{
	struct h_corral *c = start(NULL, H_BENCH_DB_WITH(" pool_size=10"));
	PGconn *conn[10];

	for (int i = 0; i < 10; i++)
		conn[i] = h_connect_bench(c);
	for (int round = 0; round < 100; round++)
		for (int i = 0; i < 10; i++)
			h_exec_ok(conn[i], "SELECT 1");
	PGconn *adm = admin(c);
	const struct want stats[] = {
		{"total_xact_count", 1000},
		{"total_query_count", 1000},
		{"total_server_assignment_count", 1000},
		{"total_client_login_count", 10},
		{"total_sheds", 0},
		{"total_timeouts", 0},
	};
	PGresult *r = wait_row(adm, "SHOW STATS", "database", "bench", stats, 6);
	int row = find_row(r, "database", "bench");
	cr_expect_geq(cell(r, row, "total_received"), 1000 * 14); /* 'Q' + "SELECT 1" each */
	cr_expect_gt(cell(r, row, "total_sent"), 1000 * 6);
	cr_expect_gt(cell(r, row, "total_xact_time"), 0);
	cr_expect_gt(cell(r, row, "xact_p99_us"), 0);
	PQclear(r);
	const struct want totals[] = {{"xact_count", 1000}, {"query_count", 1000}};
	PQclear(wait_row(adm, "SHOW STATS_TOTALS", "database", "bench", totals, 2));
	/* Ten logged-in clients, all idle between transactions: PgBouncer's cl_active. */
	const struct want pools[] = {{"cl_active", 10},
				     {"cl_idle", 10},
				     {"cl_linked", 0},
				     {"cl_waiting", 0},
				     {"pool_size", 10}};
	PQclear(wait_row(adm, "SHOW POOLS", "database", "bench", pools, 5));
	for (int i = 0; i < 10; i++)
		PQfinish(conn[i]);
	PQfinish(adm);
	h_corral_stop(c);
}

/* avg_* are rates over the last stats_period (here 1 s). */
Test(admin, averages_cover_the_last_stats_period, .timeout = 60)
{
	struct h_corral *c = start("stats_period = 1\n", H_BENCH_DB);
	PGconn *conn = h_connect_bench(c), *adm = admin(c);

	for (int i = 0; i < 200; i++)
		h_exec_ok(conn, "SELECT 1");
	double deadline = h_now() + 5.0;
	long long avg = 0;
	while (avg == 0 && h_now() < deadline) {
		PGresult *r = h_exec(adm, "SHOW STATS_AVERAGES");
		int row = find_row(r, "database", "bench");
		avg = row >= 0 ? cell(r, row, "xact_count") : 0;
		PQclear(r);
		if (!avg)
			sleep_ms(100);
	}
	/* 200 transactions spread over one or two periods of a second. */
	cr_expect(avg >= 50 && avg <= 200, "avg_xact_count %lld", avg);
	PQfinish(conn);
	PQfinish(adm);
	h_corral_stop(c);
}

/* 30 clients hold pg_sleep with pool size 10 (two workers): SHOW POOLS, CLIENTS and
 * SERVERS agree, the last two gathered from both workers' lists. */
Test(admin, pools_clients_and_servers_while_clients_wait, .timeout = 60)
{
	struct h_corral *c = start(NULL, H_BENCH_DB_WITH(" pool_size=10"));
	PGconn *conn[30];

	for (int i = 0; i < 30; i++)
		conn[i] = h_connect_bench(c);
	for (int i = 0; i < 30; i++)
		cr_assert(PQsendQuery(conn[i], "SELECT pg_sleep(1.5)"), "%s",
			  PQerrorMessage(conn[i]));
	PGconn *adm = admin(c);
	const struct want busy[] = {
		{"cl_active", 10}, {"cl_waiting", 20}, {"sv_active", 10},
		{"sv_idle", 0},    {"cl_linked", 10},  {"cl_waiting_server", 20},
	};
	PGresult *r = wait_row(adm, "SHOW POOLS", "database", "bench", busy, 6);
	cr_expect_gt(cell(r, find_row(r, "database", "bench"), "maxwait_us") +
			     cell(r, find_row(r, "database", "bench"), "maxwait"),
		     0);
	PQclear(r);

	r = h_exec(adm, "SHOW CLIENTS");
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	int active = 0, waiting = 0, consoles = 0, workers[2] = {0, 0};
	for (int i = 0; i < PQntuples(r); i++) {
		const char *db = PQgetvalue(r, i, PQfnumber(r, "database"));
		const char *state = PQgetvalue(r, i, PQfnumber(r, "state"));
		if (strcmp(db, "corral") == 0) {
			consoles++;
			continue;
		}
		active += strcmp(state, "active") == 0;
		waiting += strcmp(state, "waiting") == 0;
		workers[cell(r, i, "worker") & 1]++;
	}
	cr_expect_eq(active, 10);
	cr_expect_eq(waiting, 20);
	cr_expect_eq(consoles, 1);
	cr_expect_eq(workers[0] + workers[1], 30);
	PQclear(r);

	r = h_exec(adm, "SHOW SERVERS");
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	int sv_active = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		sv_active += strcmp(PQgetvalue(r, i, PQfnumber(r, "state")), "active") == 0;
		cr_expect_gt(cell(r, i, "remote_pid"), 0);
	}
	cr_expect_eq(sv_active, 10);
	PQclear(r);

	r = h_exec(adm, "SHOW LISTS");
	cr_expect_eq(cell(r, find_row(r, "list", "used_clients"), "items"), 31);
	cr_expect_eq(cell(r, find_row(r, "list", "used_servers"), "items"), 10);
	cr_expect_eq(cell(r, find_row(r, "list", "workers"), "items"), 2);
	PQclear(r);

	for (int i = 0; i < 30; i++) {
		PQclear(h_results(conn[i], "pg_sleep", 30));
		PQfinish(conn[i]);
	}
	PQfinish(adm);
	h_corral_stop(c);
}

static void expect_error(PGconn *conn, const char *sql, const char *sqlstate, const char *needle)
{
	PGresult *r = h_exec(conn, sql);

	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "%s", sql);
	cr_expect_str_eq(h_sqlstate(r), sqlstate, "%s: %s", sql, PQresultErrorMessage(r));
	cr_expect(strstr(PQresultErrorMessage(r), needle) != NULL, "%s: %s", sql,
		  PQresultErrorMessage(r));
	PQclear(r);
}

Test(admin, who_may_run_what, .timeout = 60)
{
	struct h_corral *c = start(NULL, H_BENCH_DB);
	/* bench is a stats user; so is watcher, through PgBouncer's name of the console. */
	PGconn *stats = console(c, "watcher", "watchpw", "pgbouncer");
	PGresult *r = h_exec(stats, "SHOW POOLS");
	cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	/* Admin commands answer a stats user 42501, implemented or not. */
	expect_error(stats, "RELOAD", "42501", "admin access needed");
	expect_error(stats, "pause bench", "42501", "admin access needed");
	expect_error(stats, "SHUTDOWN WAIT_FOR_CLIENTS", "42501", "admin access needed");
	/* The session goes on after an error. */
	h_expect_value(stats, "SHOW VERSION", "corral 0.1.0");
	PQfinish(stats);

	PGconn *adm = admin(c);
	expect_error(adm, "SHOW NOTHING", "42601", "use SHOW HELP");
	expect_error(adm, "FLY AWAY", "42601", "invalid command 'FLY AWAY', use SHOW HELP;");
	PQfinish(adm);

	/* Not in admin_users or stats_users: refused after a correct password. */
	char *err = NULL;
	char *ci = h_conninfo(c, "stranger", "corral", "strangepw");
	PGconn *no = h_try_connect(ci, 10, &err);
	cr_expect_null(no);
	cr_expect(err && strstr(err, "28000") && strstr(err, "admin console"), "%s", err);
	free(err);
	free(ci);
	/* A wrong password is a wrong password, for the console too. */
	ci = h_conninfo(c, "admin", "corral", "wrong");
	no = h_try_connect(ci, 10, &err);
	cr_expect_null(no);
	cr_expect(err && strstr(err, "28P01"), "%s", err);
	free(err);
	free(ci);
	h_corral_stop(c);
}

Test(admin, statements_and_protocol, .timeout = 60)
{
	struct h_corral *c = start("admin_db = console\n", H_BENCH_DB);
	PGconn *adm = console(c, "admin", "adminpw", "console");

	/* Several statements in one Query: one result each, in order. */
	cr_assert(PQsendQuery(adm, "SHOW VERSION; show lists;"), "%s", PQerrorMessage(adm));
	PGresult *a = h_results(adm, "two statements", 10); /* the last result */
	cr_expect_eq(PQresultStatus(a), PGRES_TUPLES_OK);
	cr_expect_str_eq(PQfname(a, 0), "list");
	PQclear(a);
	/* The first error ends the Query, as in PostgreSQL. */
	cr_assert(PQsendQuery(adm, "NONSENSE; SHOW VERSION"), "%s", PQerrorMessage(adm));
	int results = 0;
	PGresult *r;
	h_wait_result(adm, h_now() + 10, "error then nothing");
	while ((r = PQgetResult(adm)) != NULL) {
		results++;
		cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
		PQclear(r);
		h_wait_result(adm, h_now() + 10, "error then nothing");
	}
	cr_expect_eq(results, 1);
	/* An empty query. */
	r = h_exec(adm, " ; ");
	cr_expect_eq(PQresultStatus(r), PGRES_EMPTY_QUERY);
	PQclear(r);
	/* The renamed console has no "corral" any more; "pgbouncer" still works. */
	char *err = NULL, *ci = h_conninfo(c, "admin", "corral", "adminpw");
	cr_expect_null(h_try_connect(ci, 10, &err));
	cr_expect(err && strstr(err, "3D000"), "%s", err);
	free(err);
	free(ci);
	PGconn *alias = console(c, "admin", "adminpw", "pgbouncer");
	h_expect_value(alias, "SHOW VERSION", "corral 0.1.0");
	PQfinish(alias);
	/* The extended query protocol is refused and the connection ends (as PgBouncer). */
	r = h_exec_params(adm, "SHOW POOLS", 0, NULL, 10);
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	cr_expect(strstr(PQresultErrorMessage(r), "extended query protocol not supported"), "%s",
		  PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(adm);
	h_corral_stop(c);
}

/* The console needs no [databases] entry; psql works as the README says. */
Test(admin, psql_without_databases, .timeout = 60)
{
	struct h_corral *c = start(NULL, "");
	char *psql = h_pgtool("psql");
	struct h_cmd r = h_run(H_QUERY_TIMEOUT,
			       "PGPASSWORD=adminpw %s -X -At -h 127.0.0.1 -p %d -U admin corral "
			       "-c 'SHOW VERSION' -c 'SHOW LISTS'",
			       psql, c->port);

	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strncmp(r.out, "corral 0.1.0\ndatabases|1\n", 25) == 0, "%s", r.out);
	h_cmd_free(&r);
	free(psql);
	h_corral_stop(c);
}
