/*
 * Things going wrong: PostgreSQL unreachable or refusing corral's login, clients that
 * send garbage, unsupported protocol versions, SSL/GSS encryption requests.  Every
 * case ends in an ErrorResponse or a close (never a hang), and corral keeps serving.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(failures, H_SUITE);

static bool has_ci(const char *s, const char *needle)
{
	return strcasestr(s, needle) != NULL;
}

/*
 * A client of db logs in to corral and runs a query; corral's login to PostgreSQL
 * fails.  The client must get a connection-class error (08006 or 08001) that says so,
 * either at login or at the query, well within the time limit.
 */
static void expect_server_login_error(const struct h_corral *c, const char *db)
{
	char *ci = h_conninfo(c, H.user, db, H.password), *err = NULL;
	const char *tail;
	double t0 = h_now(), took;
	PGconn *conn = h_try_connect(ci, 15, &err);
	const char *text, *sqlstate;
	char state[6] = "";
	PGresult *r = NULL;

	if (conn == NULL) {
		text = err;
		const char *p = strstr(err, "FATAL:  ");
		if (p != NULL)
			snprintf(state, sizeof state, "%.5s", p + 8);
		sqlstate = state;
	} else {
		r = h_exec_t(conn, "select 1", 15);
		cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "query on %s: %s, want an error", db,
			     PQresStatus(PQresultStatus(r)));
		text = h_err_field(r, PG_DIAG_MESSAGE_PRIMARY);
		if (*text == '\0')
			text = PQresultErrorMessage(r);
		sqlstate = h_sqlstate(r);
	}
	took = h_now() - t0;
	tail = h_corral_log_tail(c);
	cr_expect(strcmp(sqlstate, "08006") == 0 || strcmp(sqlstate, "08001") == 0,
		  "database %s: SQLSTATE [%s], want 08006 or 08001; message: %s\ncorral log:\n%s", db,
		  sqlstate, text, tail);
	cr_expect(has_ci(text, "server"), "database %s: the message should say the server login failed: %s",
		  db, text);
	cr_expect_lt(took, 10.0, "database %s: the error took %.1f s", db, took);
	PQclear(r);
	if (conn != NULL)
		PQfinish(conn);
	free(err);
	free(ci);
}

Test(failures, server_down_or_refusing_login)
{
	int dead_port = h_free_port();
	char *dbs = h_printf("%s"
			     "dead = host=127.0.0.1 port=%d dbname=bench user=bench password=secret\n"
			     "badpw = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=wrong\n",
			     H_BENCH_DB, dead_port);
	/* Clients of "dead" wait server_login_wait for PostgreSQL to come up, then fail. */
	struct h_corral *c = h_corral_start("server_connect_timeout = 3\nserver_login_wait = 1\n", dbs, NULL);

	expect_server_login_error(c, "dead");
	expect_server_login_error(c, "badpw");
	h_psql_expect(c, "select 'bench still works'", "bench still works\n");
	/* A second try fails the same way (no hang on a pool that failed before). */
	expect_server_login_error(c, "badpw");
	expect_server_login_error(c, "dead");
	h_psql_expect(c, "select 'and again'", "and again\n");
	h_corral_stop(c);
	free(dbs);
}

/*
 * PostgreSQL ends the backend of a client that is inside a transaction: that client
 * gets an error with a SQLSTATE at its next query (not a hang, not a bare close), and
 * another client and new clients keep working.
 */
Test(failures, server_killed_mid_transaction)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c), *su = h_superuser();
	char *pid = h_value(a, "select pg_backend_pid()"), *sql, *v;
	const char *state;
	PGresult *r;

	h_exec_ok(a, "BEGIN");
	h_expect_value(a, "select 'in a transaction'", "in a transaction");
	h_expect_value(b, "select 'b is here'", "b is here");

	sql = h_printf("select pg_terminate_backend(%s)", pid);
	v = h_value(su, sql);
	cr_assert_str_eq(v, "t");
	free(v);
	free(sql);
	PQfinish(su);

	r = h_exec_t(a, "select 'after the kill'", 10);
	state = h_sqlstate(r);
	cr_expect_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "A's query after its backend was killed: %s",
		     PQresStatus(PQresultStatus(r)));
	cr_expect(strcmp(state, "57P01") == 0 || strncmp(state, "08", 2) == 0,
		  "A's error has SQLSTATE [%s], want 57P01 or class 08: %s", state, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(a);

	/* B, whose backend lived, and new clients keep working. */
	h_expect_still_serving(c, b, NULL);
	free(pid);
	h_corral_stop(c);
}

/* A startup packet for user bench, database bench, with the given protocol version. */
static size_t bench_startup_packet(unsigned char buf[256], uint32_t version)
{
	const char *kv[] = {"user", "bench", "database", "bench", NULL};

	return h_startup_packet(buf, 256, version, kv);
}

/*
 * Sends bytes and expects corral to answer with an ErrorResponse (with want_state
 * unless NULL) and/or close the connection, within 5 s.
 */
static void expect_rejected(int port, const char *what, const void *bytes, size_t len, bool half_close,
			    const char *want_state)
{
	struct h_reply r;
	int fd = h_tcp_connect(port);

	/* corral may close before it has read everything: a failed send is fine here. */
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, (const char *)bytes + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	h_read_final_reply(fd, 5.0, &r);
	cr_expect(
		r.closed,
		"%s: corral neither closed the connection nor finished replying within 5 s (%zu bytes read)",
		what, r.len);
	if (r.len > 0) {
		cr_expect_eq(r.buf[0], 'E', "%s: reply starts with 0x%02x, want an ErrorResponse", what,
			     r.buf[0]);
		if (r.error && want_state != NULL)
			cr_expect_str_eq(r.sqlstate, want_state, "%s: SQLSTATE %s (%s)", what, r.sqlstate,
					 r.msg);
	}
}

Test(failures, garbage_from_clients)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	unsigned char buf[4096], startup[256];
	uint64_t x = 0x2545f4914f6cdd1dull;
	size_t n;
	int fd;

	/* A startup packet that claims to be 2 GB long. */
	const unsigned char huge[8] = {0x7f, 0xff, 0xff, 0xff, 0x00, 0x03, 0x00, 0x00};
	expect_rejected(c->port, "length 0x7fffffff", huge, sizeof huge, false, "08P01");

	/* Lengths below the 8-byte minimum, and negative. */
	const unsigned char tiny[8] = {0x00, 0x00, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00};
	expect_rejected(c->port, "length 4", tiny, sizeof tiny, false, "08P01");
	const unsigned char negative[8] = {0xff, 0xff, 0xff, 0xf0, 0x00, 0x03, 0x00, 0x00};
	expect_rejected(c->port, "length -16", negative, sizeof negative, false, "08P01");

	/* Random bytes, then the end of the stream. */
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)h_xorshift64(&x);
	expect_rejected(c->port, "4 KB of random bytes", buf, sizeof buf, true, NULL);

	/* A packet of the right length whose protocol code and body are random. */
	buf[0] = 0, buf[1] = 0, buf[2] = 0x10, buf[3] = 0; /* 4096 */
	buf[4] = 0x12, buf[5] = 0x34;
	expect_rejected(c->port, "4 KB packet with a random protocol code", buf, sizeof buf, false, NULL);

	/* Somebody speaking HTTP. */
	const char *http = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	expect_rejected(c->port, "an HTTP request", http, strlen(http), false, NULL);

	/* A v3 startup packet without the terminating zero / with an odd parameter list. */
	n = bench_startup_packet(startup, H_PROTOCOL_3_0);
	startup[n - 1] = 'x';
	expect_rejected(c->port, "startup without its final zero", startup, n, false, NULL);
	const unsigned char odd[] = {0, 0, 0, 14, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 0};
	expect_rejected(c->port, "startup with 'user' and no value", odd, sizeof odd, false, NULL);

	/* Connect and close at once; half a startup packet and close; half and half-close. */
	fd = h_tcp_connect(c->port);
	close(fd);
	n = bench_startup_packet(startup, H_PROTOCOL_3_0);
	fd = h_tcp_connect(c->port);
	h_send_all(fd, startup, n / 2);
	close(fd);
	expect_rejected(c->port, "half a startup packet, then EOF", startup, n / 2, true, NULL);

	/* A normal client after all of it. */
	cr_assert(h_corral_alive(c), "corral died");
	h_psql_expect(c, "select 'survived'", "survived\n");
	h_corral_stop(c);
}

Test(failures, unsupported_protocol_version)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	const uint32_t versions[] = {0x00020000, 0x00040000, 0x00010000};

	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		unsigned char pkt[256];
		char what[64];
		struct h_reply r;
		size_t n = bench_startup_packet(pkt, versions[i]);
		int fd = h_tcp_connect(c->port);

		snprintf(what, sizeof what, "protocol %u.%u", versions[i] >> 16, versions[i] & 0xffff);
		h_send_all(fd, pkt, n);
		h_read_final_reply(fd, 5.0, &r);
		cr_expect(r.closed, "%s: connection not closed within 5 s", what);
		cr_assert_gt(r.len, 0, "%s: corral closed without an ErrorResponse", what);
		cr_expect_eq(r.buf[0], 'E', "%s: reply starts with 0x%02x", what, r.buf[0]);
		if (r.error) {
			cr_expect_str_eq(r.sqlstate, "0A000", "%s: SQLSTATE %s (%s)", what, r.sqlstate,
					 r.msg);
			cr_expect(has_ci(r.msg, "protocol"), "%s: message %s", what, r.msg);
		} else {
			/* A protocol-2 style error: 'E' and a C string. */
			r.buf[r.len < sizeof r.buf ? r.len : sizeof r.buf - 1] = 0;
			cr_expect(has_ci((char *)r.buf + 1, "protocol"), "%s: reply %s", what, r.buf + 1);
		}
	}
	h_psql_expect(c, "select 'v3 works'", "v3 works\n");
	h_corral_stop(c);
}

/* Sends an 8-byte request code and expects the one byte 'N', then a working startup. */
static void expect_refused_encryption(int port, uint32_t code, const char *what)
{
	unsigned char req[8], pkt[256];
	char *after = h_printf("%s, then the startup after 'N'", what);
	int fd = h_tcp_connect(port);
	size_t n;

	h_request_packet(req, code);
	h_send_all(fd, req, sizeof req);
	h_expect_byte(fd, 'N', what);

	/* The same connection goes on in plain text: the startup gets an auth request. */
	n = bench_startup_packet(pkt, H_PROTOCOL_3_0);
	h_send_all(fd, pkt, n);
	h_expect_byte(fd, 'R', after);
	close(fd);
	free(after);
}

Test(failures, ssl_and_gss_requests_get_n)
{
	struct h_corral *c = h_corral_start("", H_BENCH_DB, NULL);
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	char *prefer = h_printf("%s sslmode=prefer", ci), *require = h_printf("%s sslmode=require", ci);
	struct h_cmd r;

	expect_refused_encryption(c->port, H_SSL_REQUEST_CODE, "SSLRequest");
	expect_refused_encryption(c->port, H_GSSENC_REQUEST_CODE, "GSSENCRequest");

	r = h_psql(prefer, "-c 'select 1'");
	cr_expect_eq(r.status, 0, "sslmode=prefer: status %d, stderr %s", r.status, r.err);
	cr_expect_str_eq(r.out, "1\n");
	h_cmd_free(&r);

	r = h_psql(require, "-c 'select 1'");
	cr_expect_neq(r.status, 0, "sslmode=require succeeded without TLS configured");
	cr_expect(strstr(r.err, "server does not support SSL") != NULL, "sslmode=require: stderr %s", r.err);
	h_cmd_free(&r);

	h_corral_stop(c);
	free(ci);
	free(prefer);
	free(require);
}
