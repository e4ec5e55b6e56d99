/*
 * A corral process's life with its clients: the login deadline
 * (client_login_timeout), max_client_conn as a client sees it, running out of file
 * descriptors, SIGHUP, and what connected clients get at shutdown.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(lifecycle, H_SUITE);

/*
 * client_login_timeout = 1: a client that trickles its startup packet one byte every
 * 0.3 s is disconnected about 1 s after it connected (the deadline is absolute; the
 * trickle does not extend it), while a client that logged in normally stays.
 */
Test(lifecycle, client_login_timeout_is_a_deadline)
{
	struct h_corral *c = h_corral_start("client_login_timeout = 1\n", H_BENCH_DB, NULL);
	PGconn *normal = h_connect_bench(c);
	const char *kv[] = {"user", "bench", "database", "bench", "application_name",
			    "a-slow-client-that-sends-one-byte-at-a-time-for-a-long-while", NULL};
	unsigned char pkt[512];
	size_t n = h_startup_packet(pkt, sizeof pkt, H_PROTOCOL_3_0, kv), sent = 0;
	double t0, next_send, closed_at = -1;
	int fd;

	h_expect_value(normal, "select 'normal client logged in'", "normal client logged in");

	fd = h_tcp_connect(c->port);
	t0 = h_now();
	next_send = t0;
	while (closed_at < 0 && h_now() - t0 < 5.0 && sent < n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int wait_ms;

		if (h_now() >= next_send) {
			if (send(fd, pkt + sent, 1, MSG_NOSIGNAL) != 1) {
				closed_at = h_now();
				break;
			}
			sent++;
			next_send += 0.3;
		}
		wait_ms = (int)((next_send - h_now()) * 1000);
		if (wait_ms > 0 && poll(&pfd, 1, wait_ms) > 0) {
			char buf[1024];
			ssize_t r = recv(fd, buf, sizeof buf, 0);

			if (r == 0 || (r < 0 && errno != EINTR))
				closed_at = h_now();
		}
	}
	close(fd);
	cr_assert(sent < n, "the whole startup packet went out before corral closed (test is moot)");
	cr_assert(closed_at >= 0, "corral kept a trickling login open for %.1f s (%zu bytes sent); log:\n%s",
		  h_now() - t0, sent, h_corral_log_tail(c));
	cr_expect(closed_at - t0 >= 0.8 && closed_at - t0 <= 3.0,
		  "the trickling login was closed after %.2f s, want about 1 s (client_login_timeout = 1)",
		  closed_at - t0);
	cr_expect_geq(sent, 3, "only %zu bytes were sent: the trickle did not run", sent);

	/* The logged-in client has been connected for more than 1 s and is unaffected; new logins work. */
	h_expect_still_serving(c, normal, NULL);
	h_corral_stop(c);
}

/*
 * max_client_conn = 2 with two clients connected: a third psql (sslmode=prefer, so it
 * starts with an SSLRequest) must be told about max_client_conn, not fail the TLS
 * negotiation with an ErrorResponse it cannot read.  One worker: it logs B's leaving and
 * gives B's place back in one go, before it can accept anyone else, so once the log
 * shows B gone there is room.
 */
Test(lifecycle, max_client_conn_error_reaches_psql)
{
	struct h_corral *c = h_corral_start("max_client_conn = 2\nworkers = 1\n", H_BENCH_DB, NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c), *d;
	char *ci = h_conninfo(c, H.user, H.db, H.password), *err = NULL;
	struct h_cmd r;

	h_expect_value(a, "select 1", "1");
	r = h_psql(ci, "-c 'select 1'");
	cr_expect_neq(r.status, 0, "a third client got in with max_client_conn = 2: %s", r.out);
	cr_expect(strstr(r.err, "no more connections allowed (max_client_conn = 2)") != NULL,
		  "third psql: stderr [%s]", r.err);
	h_cmd_free(&r);

	d = h_try_connect(ci, H_QUERY_TIMEOUT, &err);
	cr_expect(d == NULL, "a third libpq client got in");
	if (d != NULL)
		PQfinish(d);
	else
		cr_expect(strstr(err, "53300") != NULL, "third libpq client: want 53300 in: %s", err);
	free(err);

	/* A and B are fine; once B has left (corral notices at once), there is room again. */
	h_expect_value(b, "select 'b fine'", "b fine");
	PQfinish(b);
	cr_assert(h_wait_log(c, "reason=\"client sent Terminate\"", 5),
		  "corral did not log B's leaving within 5 s:\n%s", h_corral_log_tail(c));
	d = h_try_connect(ci, H_QUERY_TIMEOUT, &err);
	cr_assert(d != NULL, "no room after B left: %s", err);
	h_expect_value(d, "select 'room again'", "room again");
	PQfinish(d);
	PQfinish(a);
	h_corral_stop(c);
	free(ci);
}

/*
 * corral limited to 40 file descriptors and 60 connections that send nothing: accept()
 * fails with EMFILE while the connections wait in the backlog.  corral must back off
 * (little CPU, few log lines) instead of retrying in a hot loop, and serve again once
 * the connections are gone.  Two workers, each logging one accept_error per failed try
 * and trying again 250 ms later: 8 more lines take at least 3 such pauses (0.75 s),
 * where a hot loop would write them at once.
 */
Test(lifecycle, out_of_file_descriptors_backs_off)
{
	enum { CONNS = 60, RETRIES = 8 };
	const char *wrapper[] = {"prlimit", "--nofile=40:40", "--", NULL};
	struct h_corral *c = h_corral_start_wrapped(wrapper, "workers = 2\n", H_BENCH_DB, NULL);
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	int fds[CONNS];
	double cpu0, cpu1, t0, t1;
	int errors0, closed0;
	struct h_cmd r;

	closed0 = h_log_count(c, "event=client_closed");
	for (int i = 0; i < CONNS; i++)
		fds[i] = h_tcp_connect(c->port);
	cr_assert(h_wait_log(c, "event=accept_error", 5),
		  "no accept_error: corral did not run out of descriptors (test is moot)\n%s",
		  h_corral_log_tail(c));
	errors0 = h_log_count(c, "event=accept_error");
	cpu0 = h_proc_cpu_seconds(c->pid);
	t0 = h_now();
	cr_assert(h_wait_log_count(c, "event=accept_error", errors0 + RETRIES, 10),
		  "corral stopped retrying accept while out of descriptors:\n%s",
		  h_corral_log_tail(c));
	cpu1 = h_proc_cpu_seconds(c->pid);
	t1 = h_now();

	cr_assert(cpu0 >= 0 && cpu1 >= 0, "cannot read /proc/%d/stat", (int)c->pid);
	cr_expect_geq(t1 - t0, 0.6, "%d accept_error lines in %.2f s while out of descriptors",
		      RETRIES, t1 - t0);
	cr_expect_lt(cpu1 - cpu0, (t1 - t0) / 4,
		     "corral used %.2f s of CPU in %.2f s while out of descriptors", cpu1 - cpu0,
		     t1 - t0);
	cr_assert(h_corral_alive(c), "corral died when out of descriptors:\n%s", h_corral_log_tail(c));

	/* Once corral has closed every connection it took, its descriptors are free. */
	for (int i = 0; i < CONNS; i++)
		close(fds[i]);
	cr_assert(h_wait_log_count(c, "event=client_closed", closed0 + CONNS, 10),
		  "corral closed %d of the %d connections within 10 s:\n%s",
		  h_log_count(c, "event=client_closed") - closed0, CONNS, h_corral_log_tail(c));
	r = h_psql(ci, "-c \"select 'served again'\"");
	cr_expect_eq(r.status, 0, "psql after the connections closed: status %d, stderr %s\n%s",
		     r.status, r.err, h_corral_log_tail(c));
	cr_expect_str_eq(r.out, "served again\n");
	h_cmd_free(&r);
	h_corral_stop(c);
	free(ci);
}

/* SIGHUP reloads (tests/integration/test_control.c): it must not end corral or its
 * clients. */
Test(lifecycle, sighup_keeps_serving)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	PGconn *a = h_connect_bench(c);

	h_expect_value(a, "select 'before'", "before");
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log(c, "event=reload_done", 5),
		  "no reload_done line for SIGHUP:\n%s", h_corral_log_tail(c));
	cr_assert(h_corral_alive(c), "corral died of SIGHUP:\n%s", h_corral_log_tail(c));
	h_expect_value(a, "select 'after sighup'", "after sighup");
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log_count(c, "event=reload_done", 2, 5),
		  "no reload_done line for the second SIGHUP:\n%s", h_corral_log_tail(c));
	h_psql_expect(c, "select 'new client after two sighups'", "new client after two sighups\n");
	PQfinish(a);
	h_corral_stop(c);
}

struct fatal_notice {
	char sqlstate[8];
	char severity[16];
	char message[128];
};

static void on_notice(void *arg, const PGresult *res)
{
	struct fatal_notice *f = arg;

	snprintf(f->sqlstate, sizeof f->sqlstate, "%s", h_sqlstate(res));
	snprintf(f->severity, sizeof f->severity, "%s", h_err_field(res, PG_DIAG_SEVERITY_NONLOCALIZED));
	snprintf(f->message, sizeof f->message, "%s", h_err_field(res, PG_DIAG_MESSAGE_PRIMARY));
}

/*
 * SIGINT (h_corral_stop; SHUTDOWN, and SIGTERM past shutdown_timeout, likewise): every
 * connected client hears why it is being disconnected, as from
 * PostgreSQL's smart shutdown: FATAL 57P01 "terminating connection due to administrator
 * command" -- an idle client that never ran a query, one that holds a server, and a
 * libpq client (whose notice receiver gets an error that arrives while it is idle).
 */
Test(lifecycle, shutdown_tells_clients_57p01)
{
	struct h_corral *c = h_corral_start("auth_type = trust\n", H_BENCH_DB, NULL);
	int idle = h_raw_login(c->port, NULL), linked = h_raw_login(c->port, "select 1");
	int fds[2] = {idle, linked};
	const char *what[2] = {"idle client", "client holding a server"};
	char *ci = h_conninfo(c, H.user, H.db, NULL);
	PGconn *pq = h_connect(c, ci);
	struct fatal_notice fatal = {0};

	h_expect_value(pq, "select 'libpq linked'", "libpq linked");
	PQsetNoticeReceiver(pq, on_notice, &fatal);
	h_corral_stop(c);

	for (int i = 0; i < 2; i++) {
		struct h_reply r;

		h_expect_error_then_close(fds[i], what[i], "57P01", &r);
		cr_expect_str_eq(r.msg, "terminating connection due to administrator command", "%s", what[i]);
	}

	/* libpq reads the FATAL as it consumes input; then the connection is gone. */
	for (double deadline = h_now() + 5.0; fatal.sqlstate[0] == '\0' && h_now() < deadline;) {
		struct pollfd pfd = {.fd = PQsocket(pq), .events = POLLIN};

		int ok;

		poll(&pfd, 1, 100);
		ok = PQconsumeInput(pq);
		(void)PQisBusy(pq); /* parses what arrived: the notice receiver runs here */
		if (!ok)
			break;
	}
	cr_expect_str_eq(fatal.sqlstate, "57P01", "libpq client: SQLSTATE [%s] %s (%s)", fatal.sqlstate,
			 fatal.message, PQerrorMessage(pq));
	cr_expect_str_eq(fatal.severity, "FATAL");
	cr_expect_str_eq(fatal.message, "terminating connection due to administrator command");
	PQfinish(pq);
	free(ci);
}
