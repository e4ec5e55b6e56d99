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

static const char *BENCH_DB_LINE =
	"bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret\n";

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
			     BENCH_DB_LINE, dead_port);
	struct h_corral *c = h_corral_start("server_connect_timeout = 3\n", dbs, NULL);

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
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c), *su = h_superuser(), *d;
	char *pid = h_value(a, "select pg_backend_pid()"), *sql, *v;
	const char *state;
	PGresult *r;

	h_exec_ok(a, "BEGIN");
	v = h_value(a, "select 'in a transaction'");
	free(v);
	v = h_value(b, "select 'b is here'");
	free(v);

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

	v = h_value(b, "select 'b still works'");
	cr_expect_str_eq(v, "b still works");
	free(v);
	PQfinish(b);
	d = h_connect_bench(c);
	v = h_value(d, "select 'new client works'");
	cr_expect_str_eq(v, "new client works");
	free(v);
	PQfinish(d);
	free(pid);
	h_corral_stop(c);
}

/* A v3-style startup packet for user/database with the given protocol version. */
static size_t startup_packet(unsigned char *buf, uint32_t version, const char *user, const char *db)
{
	size_t n = 8;

	n += (size_t)sprintf((char *)buf + n, "user") + 1;
	n += (size_t)sprintf((char *)buf + n, "%s", user) + 1;
	n += (size_t)sprintf((char *)buf + n, "database") + 1;
	n += (size_t)sprintf((char *)buf + n, "%s", db) + 1;
	buf[n++] = 0;
	buf[0] = (unsigned char)(n >> 24);
	buf[1] = (unsigned char)(n >> 16);
	buf[2] = (unsigned char)(n >> 8);
	buf[3] = (unsigned char)n;
	buf[4] = (unsigned char)(version >> 24);
	buf[5] = (unsigned char)(version >> 16);
	buf[6] = (unsigned char)(version >> 8);
	buf[7] = (unsigned char)version;
	return n;
}

/*
 * Sends bytes and expects corral to answer with an ErrorResponse (with want_state
 * unless NULL) and/or close the connection, within 5 s.
 */
static void expect_rejected(int port, const char *what, const void *bytes, size_t len, bool half_close,
			    const char *want_state)
{
	unsigned char reply[4096];
	char state[6], msg[256];
	bool closed = false;
	int fd = h_tcp_connect(port);
	size_t got;

	/* corral may close before it has read everything: a failed send is fine here. */
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, (const char *)bytes + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	got = h_read_reply(fd, reply, sizeof reply, 5.0, &closed);
	close(fd);
	cr_expect(
		closed,
		"%s: corral neither closed the connection nor finished replying within 5 s (%zu bytes read)",
		what, got);
	if (got > 0) {
		cr_expect_eq(reply[0], 'E', "%s: reply starts with 0x%02x, want an ErrorResponse", what,
			     reply[0]);
		if (h_parse_error(reply, got, state, msg, sizeof msg) && want_state != NULL)
			cr_expect_str_eq(state, want_state, "%s: SQLSTATE %s (%s)", what, state, msg);
	}
}

Test(failures, garbage_from_clients)
{
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
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
	for (size_t i = 0; i < sizeof buf; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	expect_rejected(c->port, "4 KB of random bytes", buf, sizeof buf, true, NULL);

	/* A packet of the right length whose protocol code and body are random. */
	buf[0] = 0, buf[1] = 0, buf[2] = 0x10, buf[3] = 0; /* 4096 */
	buf[4] = 0x12, buf[5] = 0x34;
	expect_rejected(c->port, "4 KB packet with a random protocol code", buf, sizeof buf, false, NULL);

	/* Somebody speaking HTTP. */
	const char *http = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	expect_rejected(c->port, "an HTTP request", http, strlen(http), false, NULL);

	/* A v3 startup packet without the terminating zero / with an odd parameter list. */
	n = startup_packet(startup, 0x00030000, "bench", "bench");
	startup[n - 1] = 'x';
	expect_rejected(c->port, "startup without its final zero", startup, n, false, NULL);
	const unsigned char odd[] = {0, 0, 0, 14, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 0};
	expect_rejected(c->port, "startup with 'user' and no value", odd, sizeof odd, false, NULL);

	/* Connect and close at once; half a startup packet and close; half and half-close. */
	fd = h_tcp_connect(c->port);
	close(fd);
	n = startup_packet(startup, 0x00030000, "bench", "bench");
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
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	const uint32_t versions[] = {0x00020000, 0x00040000, 0x00010000};

	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		unsigned char pkt[256], reply[4096];
		char state[6], msg[256], what[64];
		bool closed = false;
		size_t n = startup_packet(pkt, versions[i], "bench", "bench"), got;
		int fd = h_tcp_connect(c->port);

		snprintf(what, sizeof what, "protocol %u.%u", versions[i] >> 16, versions[i] & 0xffff);
		h_send_all(fd, pkt, n);
		got = h_read_reply(fd, reply, sizeof reply, 5.0, &closed);
		close(fd);
		cr_expect(closed, "%s: connection not closed within 5 s", what);
		cr_assert_gt(got, 0, "%s: corral closed without an ErrorResponse", what);
		cr_expect_eq(reply[0], 'E', "%s: reply starts with 0x%02x", what, reply[0]);
		if (h_parse_error(reply, got, state, msg, sizeof msg)) {
			cr_expect_str_eq(state, "0A000", "%s: SQLSTATE %s (%s)", what, state, msg);
			cr_expect(has_ci(msg, "protocol"), "%s: message %s", what, msg);
		} else {
			/* A protocol-2 style error: 'E' and a C string. */
			reply[got < sizeof reply ? got : sizeof reply - 1] = 0;
			cr_expect(has_ci((char *)reply + 1, "protocol"), "%s: reply %s", what, reply + 1);
		}
	}
	h_psql_expect(c, "select 'v3 works'", "v3 works\n");
	h_corral_stop(c);
}

/* Sends an 8-byte request code and expects the one byte 'N', then a working startup. */
static void expect_refused_encryption(int port, uint32_t code, const char *what)
{
	unsigned char req[8] = {0,
				0,
				0,
				8,
				(unsigned char)(code >> 24),
				(unsigned char)(code >> 16),
				(unsigned char)(code >> 8),
				(unsigned char)code};
	unsigned char reply[64], pkt[256];
	bool closed = false;
	int fd = h_tcp_connect(port);
	size_t got, n;

	h_send_all(fd, req, sizeof req);
	got = h_read_reply(fd, reply, 1, 5.0, &closed);
	cr_assert_eq(got, 1, "%s: no answer within 5 s (closed: %d)", what, closed);
	cr_expect_eq(reply[0], 'N', "%s: answer 0x%02x, want 'N'", what, reply[0]);

	/* The same connection goes on in plain text: the startup gets an auth request. */
	n = startup_packet(pkt, 0x00030000, "bench", "bench");
	h_send_all(fd, pkt, n);
	got = h_read_reply(fd, reply, 1, 5.0, &closed);
	cr_assert_eq(got, 1, "%s: no answer to the startup after 'N' (closed: %d)", what, closed);
	cr_expect_eq(reply[0], 'R', "%s: answer to the startup 0x%02x, want 'R'", what, reply[0]);
	close(fd);
}

Test(failures, ssl_and_gss_requests_get_n)
{
	struct h_corral *c = h_corral_start("", BENCH_DB_LINE, NULL);
	char *ci = h_conninfo(c, H.user, H.db, H.password), *psql = h_pgtool("psql");
	char *prefer = h_printf("%s sslmode=prefer", ci), *require = h_printf("%s sslmode=require", ci);
	char *q_prefer = h_shq(prefer), *q_require = h_shq(require);
	struct h_cmd r;

	expect_refused_encryption(c->port, 80877103, "SSLRequest");
	expect_refused_encryption(c->port, 80877104, "GSSENCRequest");

	r = h_run(H_QUERY_TIMEOUT, "%s -X -At -d %s -c 'select 1'", psql, q_prefer);
	cr_expect_eq(r.status, 0, "sslmode=prefer: status %d, stderr %s", r.status, r.err);
	cr_expect_str_eq(r.out, "1\n");
	h_cmd_free(&r);

	r = h_run(H_QUERY_TIMEOUT, "%s -X -At -d %s -c 'select 1'", psql, q_require);
	cr_expect_neq(r.status, 0, "sslmode=require succeeded without TLS configured");
	cr_expect(strstr(r.err, "server does not support SSL") != NULL, "sslmode=require: stderr %s", r.err);
	h_cmd_free(&r);

	h_corral_stop(c);
	free(ci);
	free(psql);
	free(prefer);
	free(require);
	free(q_prefer);
	free(q_require);
}
