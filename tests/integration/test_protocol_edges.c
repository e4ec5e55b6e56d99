/*
 * Protocol edges between client and server: an extended-protocol batch the client
 * leaves before its Sync, extended-protocol COPY FROM STDIN (libpq's two Syncs), a
 * second SSLRequest, NegotiateProtocolVersion for 3.2 and _pq_ options, replication
 * connections, and client-chosen names that must not forge log lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(protocol, H_SUITE);

static const char *const ONE_SERVER_DB = H_BENCH_DB_WITH(" pool_size=1");


/*
 * Client A sends, in pipeline mode and without a Sync, Parse/Bind/Execute of an INSERT
 * and of a SELECT of a secret, flushes and leaves (abrupt: the socket is shut down
 * before libpq could send Terminate; polite: PQfinish sends Terminate).  The server is
 * then inside an implicit transaction holding A's unsent results.  With pool_size = 1
 * and no reset query, B's first query must get only its own result, and A's INSERT must
 * never be committed (a server that went back to the pool mid-batch would send B A's
 * rows and commit A's insert with B's query).
 */
static void unsynced_batch_then_next_client(struct h_corral *c, bool abrupt, const char *tag)
{
	PGconn *a = h_connect_bench(c), *b;
	const char *insert_params[1] = {tag};
	PGresult *r;
	char *v, *sql, *a_pid, *at_server, *what;
	int n_results = 0;
	bool own_seen = false;

	/* A is linked to the server (session mode) before the batch. */
	a_pid = h_value(a, "select pg_backend_pid()");
	cr_assert(PQenterPipelineMode(a), "PQenterPipelineMode: %s", PQerrorMessage(a));
	cr_assert(PQsendQueryParams(a, "insert into unsynced_t values ($1)", 1, NULL, insert_params, NULL,
				    NULL, 0),
		  "send insert: %s", PQerrorMessage(a));
	cr_assert(PQsendQueryParams(a, "select 'SECRET-OF-A'", 0, NULL, NULL, NULL, NULL, 0),
		  "send select: %s", PQerrorMessage(a));
	cr_assert_eq(PQflush(a), 0, "PQflush: %s", PQerrorMessage(a));
	/* corral has relayed the batch and the server has run the INSERT once A's backend is
	 * on the SELECT (its results stay buffered there: no Sync, no Flush). */
	at_server = h_printf("select query = 'select ''SECRET-OF-A''' from pg_stat_activity "
			     "where pid = %s",
			     a_pid);
	cr_assert_geq(h_wait_pg_value(at_server, "t", 10), 0,
		      "%s: A's batch did not reach its server (pid %s) within 10 s", tag, a_pid);
	if (abrupt)
		shutdown(PQsocket(a), SHUT_RDWR);
	PQfinish(a);

	b = h_connect_bench(c);
	cr_assert(PQsendQuery(b, "select 'b-own-result'"), "B: %s", PQerrorMessage(b));
	what = h_printf("%s: B's first query", tag);
	for (;;) {
		h_wait_result(b, h_now() + H_QUERY_TIMEOUT, what);
		r = PQgetResult(b);
		if (r == NULL)
			break;
		n_results++;
		for (int row = 0; row < PQntuples(r); row++)
			for (int col = 0; col < PQnfields(r); col++) {
				cr_expect(strstr(PQgetvalue(r, row, col), "SECRET-OF-A") == NULL,
					  "%s: B's first query returned A's row", tag);
				if (strcmp(PQgetvalue(r, row, col), "b-own-result") == 0)
					own_seen = true;
			}
		cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: B's first query gave %s: %s", tag,
			     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
		PQclear(r);
	}
	cr_expect_eq(n_results, 1, "%s: B's first query gave %d results, want 1", tag, n_results);
	cr_expect(own_seen, "%s: B's first query did not return its own row\ncorral log:\n%s", tag,
		  h_corral_log_tail(c));
	h_expect_value(b, "select 'b again'", "b again");
	PQfinish(b);

	sql = h_printf("select count(*) from unsynced_t where v = '%s'", tag);
	v = h_direct_value(sql);
	cr_expect_str_eq(v, "0", "%s: A's INSERT, never synced, was committed (%s rows)", tag, v);
	free(v);
	free(sql);
	free(what);
	free(at_server);
	free(a_pid);
}

Test(protocol, client_leaves_mid_extended_batch)
{
	struct h_corral *c = h_corral_start("server_reset_query =\n", ONE_SERVER_DB, NULL);

	h_direct_exec("set client_min_messages = warning; drop table if exists unsynced_t; "
		    "create table unsynced_t (v text)");
	unsynced_batch_then_next_client(c, true, "abrupt");
	unsynced_batch_then_next_client(c, false, "terminate");
	h_psql_expect(c, "select count(*) from unsynced_t", "0\n");
	h_direct_exec("drop table unsynced_t");
	h_corral_stop(c);
}

/* COPY FROM STDIN through libpq's extended protocol: ok, or ended by CopyFail. */
static void extended_copy_in(PGconn *conn, int rows, bool fail)
{
	PGresult *r = PQexecParams(conn, "copy ext_copy_t from stdin", 0, NULL, NULL, NULL, NULL, 0);

	cr_assert_eq(PQresultStatus(r), PGRES_COPY_IN, "COPY: %s %s", PQresStatus(PQresultStatus(r)),
		     PQerrorMessage(conn));
	PQclear(r);
	for (int i = 0; i < rows; i++) {
		char line[32];
		int n = snprintf(line, sizeof line, "%d\n", i);

		cr_assert_eq(PQputCopyData(conn, line, n), 1, "PQputCopyData: %s", PQerrorMessage(conn));
	}
	cr_assert_eq(PQputCopyEnd(conn, fail ? "client gives up" : NULL), 1, "PQputCopyEnd: %s",
		     PQerrorMessage(conn));
	r = h_results(conn, "COPY FROM STDIN", H_QUERY_TIMEOUT);
	if (fail)
		cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "COPY after CopyFail: %s",
			     PQresStatus(PQresultStatus(r)));
	else
		cr_expect_eq(PQresultStatus(r), PGRES_COMMAND_OK, "COPY: %s %s",
			     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
	PQclear(r);
}

/*
 * libpq runs PQexecParams("COPY ... FROM STDIN") as Parse/Bind/Describe/Execute/Sync
 * and sends another Sync after CopyDone (or CopyFail); the server ignores the first, so
 * one ReadyForQuery answers two Syncs.  With pool_size = 1, the client's server must be
 * back in the pool afterwards: the next client gets the same backend, and corral did not
 * close it as "client left while a query was running".
 */
Test(protocol, extended_copy_in_keeps_the_server)
{
	struct h_corral *c = h_corral_start("", ONE_SERVER_DB, NULL);
	PGconn *a, *b;
	char *pid_a, *pid_b, *v, *log;

	h_direct_exec("set client_min_messages = warning; drop table if exists ext_copy_t; "
		    "create table ext_copy_t (n int)");
	a = h_connect_bench(c);
	pid_a = h_value(a, "select pg_backend_pid()");
	extended_copy_in(a, 1000, false);
	v = h_value(a, "select count(*) from ext_copy_t");
	cr_expect_str_eq(v, "1000", "rows after the COPY");
	free(v);
	extended_copy_in(a, 10, true);
	v = h_value(a, "select count(*) || ' ' || pg_backend_pid() from ext_copy_t");
	char *want = h_printf("1000 %s", pid_a);
	cr_expect_str_eq(v, want, "after a failed COPY");
	free(v);
	free(want);
	PQfinish(a);

	b = h_connect_bench(c);
	pid_b = h_value(b, "select pg_backend_pid()");
	cr_expect_str_eq(pid_b, pid_a,
			 "B got backend %s, A had %s: the server was not reused after A's extended COPY",
			 pid_b, pid_a);
	/* B's server works and B can COPY too. */
	extended_copy_in(b, 5, false);
	h_expect_value(b, "select count(*) from ext_copy_t", "1005");
	PQfinish(b);

	h_corral_stop(c);
	log = h_read_file(c->log, NULL);
	cr_expect(log != NULL && strstr(log, "client left while a query was running") == NULL,
		  "corral closed a server after an extended COPY:\n%s", h_corral_log_tail(c));
	free(log);
	h_direct_exec("drop table ext_copy_t");
	free(pid_a);
	free(pid_b);
}

/* PostgreSQL answers one SSLRequest per connection; a second one is a protocol violation. */
Test(protocol, second_ssl_request_is_refused)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	unsigned char ssl_request[8];
	struct h_reply r;
	int fd = h_tcp_connect(c->port);

	h_request_packet(ssl_request, H_SSL_REQUEST_CODE);
	h_send_all(fd, ssl_request, sizeof ssl_request);
	h_expect_byte(fd, 'N', "first SSLRequest");

	h_send_all(fd, ssl_request, sizeof ssl_request);
	h_expect_error_then_close(fd, "second SSLRequest", "08P01", &r);

	cr_assert(h_corral_alive(c), "corral died");
	h_psql_expect(c, "select 'others still served'", "others still served\n");
	h_corral_stop(c);
}

/*
 * Protocol 3.2 with a _pq_ option: corral answers NegotiateProtocolVersion as PostgreSQL
 * does (the newest version it speaks, 3.0 as the full code 0x00030000, and the options
 * it does not know), then goes on with the login.
 */
Test(protocol, negotiate_protocol_version)
{
	struct h_corral *c = h_corral_start("auth_type = trust\n", H_BENCH_DB, NULL);
	const char *kv[] = {"user", "bench", "database", "bench", "_pq_.test_option", "on", NULL};
	unsigned char pkt[256], buf[16384];
	const unsigned char *body;
	size_t n = h_startup_packet(pkt, sizeof pkt, 0x00030002, kv), len = 0, off, blen;
	bool closed = false, ready;
	int fd = h_tcp_connect(c->port);
	char type;

	h_send_all(fd, pkt, n);
	ready = h_read_until_msg(fd, buf, sizeof buf, &len, 'Z', 10.0, &closed);
	close(fd);
	cr_assert(len > 0, "no answer to a 3.2 startup (closed: %d)", closed);

	off = h_msg(buf, len, &type, &body, &blen);
	cr_assert(off > 0, "incomplete first message");
	cr_assert_eq(type, 'v', "first message is '%c', want NegotiateProtocolVersion 'v'", type);
	cr_assert_geq(blen, 8);
	cr_expect_eq(h_be32(body), 0x00030000u,
		     "NegotiateProtocolVersion version field 0x%08x, want 0x00030000",
		     h_be32(body));
	cr_expect_eq(h_be32(body + 4), 1u, "%u unsupported options listed, want 1", h_be32(body + 4));
	cr_expect(blen >= 8 + sizeof "_pq_.test_option" &&
			  strcmp((const char *)body + 8, "_pq_.test_option") == 0,
		  "option listed: %.*s", (int)(blen > 8 ? blen - 8 : 0), body + 8);

	n = h_msg(buf + off, len - off, &type, &body, &blen);
	cr_assert(n > 0 && type == 'R' && blen >= 4 && h_be32(body) == 0,
		  "after 'v': want AuthenticationOk, got '%c'", n ? type : '?');
	cr_expect(ready, "no ReadyForQuery after the login (closed: %d)\n%s", closed, h_corral_log_tail(c));
	h_corral_stop(c);
}

/* psql "replication=database": corral cannot relay replication, so it says so at login. */
Test(protocol, replication_connection_refused)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	const char *modes[] = {"database", "true"};

	for (size_t i = 0; i < 2; i++) {
		char *ci = h_conninfo(c, H.user, H.db, H.password);
		char *rci = h_printf("%s replication=%s", ci, modes[i]);
		struct h_cmd r = h_psql(rci, "-c 'select 1'");
		char *err = NULL;
		PGconn *conn;

		cr_expect_neq(r.status, 0, "psql replication=%s succeeded: %s", modes[i], r.out);
		cr_expect(strstr(r.err, "replication") != NULL, "psql replication=%s: stderr %s", modes[i],
			  r.err);
		h_cmd_free(&r);

		conn = h_try_connect(rci, H_QUERY_TIMEOUT, &err);
		if (conn != NULL) {
			PQfinish(conn);
			cr_assert_fail("replication=%s: login succeeded", modes[i]);
		}
		cr_expect(strstr(err, "08P01") != NULL, "replication=%s: want 08P01 in: %s", modes[i], err);
		cr_expect(strstr(err, "replication") != NULL, "replication=%s: %s", modes[i], err);
		free(err);
		free(ci);
		free(rci);
	}
	h_psql_expect(c, "select 'plain works'", "plain works\n");
	h_corral_stop(c);
}

/*
 * Names chosen by the client (application_name, user, database) with a newline and a
 * forged "ts=... event=..." must stay inside their quoted field: no log line may start
 * with the forged text, and every event=forged must sit inside quotes.
 */
Test(protocol, client_names_cannot_forge_log_lines)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	const char *forged = "x\nts=x level=error event=forged";
	const char *keys[] = {"host", "port", "user", "password", "dbname", "application_name", NULL};
	char port[16], *log, *line, *save = NULL;
	const char *vals[7] = {"127.0.0.1", port, H.user, H.password, H.db, forged, NULL};
	PGconn *conn;
	unsigned char pkt[512], reply[4096];
	bool closed;
	int fd;
	size_t n;

	snprintf(port, sizeof port, "%d", c->port);
	conn = PQconnectdbParams(keys, vals, 0);
	cr_assert_eq(PQstatus(conn), CONNECTION_OK, "login with a forged application_name: %s",
		     PQerrorMessage(conn));
	h_expect_value(conn, "select 'logged in'", "logged in");
	PQfinish(conn);

	/* Unknown user and unknown database with the same payload: they are logged too. */
	const char *kv_user[] = {"user", "nobody\nts=x level=error event=forged", "database", "bench", NULL};
	const char *kv_db[] = {"user", "bench", "database", "nodb\nts=x level=error event=forged", NULL};
	const char *const *kvs[] = {kv_user, kv_db};
	for (size_t i = 0; i < 2; i++) {
		n = h_startup_packet(pkt, sizeof pkt, H_PROTOCOL_3_0, kvs[i]);
		fd = h_tcp_connect(c->port);
		h_send_all(fd, pkt, n);
		/* An auth request or an error; then close our side so corral logs the end. */
		h_read_reply(fd, reply, 1, 2.0, &closed);
		close(fd);
	}
	h_corral_stop(c);

	log = h_read_file(c->log, NULL);
	cr_assert(log != NULL);
	cr_expect(strstr(log, "event=forged") != NULL,
		  "the forged text never reached the log (test is moot):\n%s", log);
	for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const char *p = strstr(line, "event=forged");
		int quotes = 0;

		cr_expect(strncmp(line, "ts=x", 4) != 0, "forged log line: %s", line);
		if (p == NULL)
			continue;
		for (const char *q = line; q < p; q++)
			quotes += *q == '"';
		cr_expect(quotes % 2 == 1, "event=forged outside a quoted value: %s", line);
	}
	free(log);
}
