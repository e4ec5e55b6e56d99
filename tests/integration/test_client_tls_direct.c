/*
 * PostgreSQL 17's TLS negotiation on corral's listener, and SCRAM channel binding over
 * it.  Direct TLS (the ClientHello as the first bytes, no SSLRequest) with ALPN
 * "postgresql" logs in and runs a query, and is a TLS client to hostssl rules; without
 * ALPN, or with ALPN naming something else, it is refused and corral keeps serving; an
 * SSLRequest inside it is a protocol error; with client TLS off the ClientHello is
 * closed.  SCRAM-SHA-256-PLUS (tls-server-end-point): libpq's channel_binding=require
 * gets in over TLS and is refused in plain text by libpq itself, and the refusals
 * PostgreSQL words (downgrade, a binding that does not match, ...) come on the wire.
 * libpq 15 cannot do direct TLS, so tests/integration/tls_raw.c is the client there.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "tests/integration/harness.h"
#include "tests/integration/tls_raw.h"

TestSuite(client_tls_direct, H_SUITE);

/* A corral with client TLS in mode (NULL: TLS off) and extra [corral] lines. */
static struct h_corral *start(const char *mode, const char *extra)
{
	char *tls =
		mode ? h_printf("client_tls_sslmode = %s\nclient_tls_cert_file = %s/server.crt\n"
				"client_tls_key_file = %s/server.key\n",
				mode, H.dir, H.dir)
		     : strdup("");
	if (mode)
		h_make_certs(false);
	char *settings = h_printf("%s%s", tls, extra ? extra : "");
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, NULL);
	free(settings);
	free(tls);
	return c;
}

/* The first message of type want among buf's whole messages: its body, or NULL. */
static const unsigned char *find_msg(const unsigned char *buf, size_t len, char want,
				     size_t *body_len)
{
	size_t off = 0, n;
	char type;
	const unsigned char *body;
	while ((n = h_msg(buf + off, len - off, &type, &body, body_len)) > 0) {
		if (type == want)
			return body;
		off += n;
	}
	return NULL;
}

/* The ErrorResponse in buf must carry want_state and want_msg. */
static void expect_error(const unsigned char *buf, size_t len, const char *want_state,
			 const char *want_msg, const char *what)
{
	size_t off = 0, n, body_len;
	char type, state[6] = "", msg[256] = "";
	const unsigned char *body;
	while ((n = h_msg(buf + off, len - off, &type, &body, &body_len)) > 0 && type != 'E')
		off += n;
	cr_assert(n > 0 && h_parse_error(buf + off, n, state, msg, sizeof(msg)),
		  "%s: no ErrorResponse in %zu bytes", what, len);
	cr_expect_str_eq(state, want_state, "%s: %s", what, msg);
	cr_expect(strstr(msg, want_msg) != NULL, "%s: [%s], wanted [%s]", what, msg, want_msg);
}

/* SELECT 1 in t's session: one DataRow with "1". */
static void expect_select_1(struct tls_raw *t)
{
	static const unsigned char q[] = "Q\0\0\0\015SELECT 1";
	unsigned char buf[4096];
	size_t len = 0, body_len;
	bool closed;
	cr_assert(tls_raw_send(t, q, sizeof(q)));
	cr_assert(tls_raw_read_until(t, buf, sizeof(buf), &len, 'Z', &closed), "no ReadyForQuery");
	const unsigned char *row = find_msg(buf, len, 'D', &body_len);
	cr_assert_not_null(row, "no DataRow");
	/* one column, 1 byte long, "1" */
	cr_expect(body_len == 7 && memcmp(row,
					  "\0\1\0\0\0\1"
					  "1",
					  7) == 0,
		  "DataRow of %zu bytes", body_len);
}

/* A direct TLS client that offers alpn, logged in and running SELECT 1. */
static void direct_login_and_query(const struct h_corral *c, const char *alpn, size_t alpn_len)
{
	struct tls_raw t;
	unsigned char buf[4096];
	size_t len;
	char proto[64];
	cr_assert(tls_raw_connect(&t, c->port, false, alpn, alpn_len), "handshake: %s\n%s",
		  ERR_reason_error_string(t.err), h_corral_log_tail(c));
	cr_expect_str_eq(tls_raw_alpn(&t, proto, sizeof(proto)), "postgresql");
	cr_assert(tls_raw_login(&t, buf, sizeof(buf), &len), "login failed\n%s",
		  h_corral_log_tail(c));
	expect_select_1(&t);
	tls_raw_close(&t);
}

Test(client_tls_direct, direct_tls_logs_in_as_a_tls_client, .timeout = 60)
{
	/* hostssl trust, hostnossl reject: getting in proves corral sees TLS. */
	char *hba = h_path("hba.conf");
	h_write_file(hba, "hostssl all all 127.0.0.1/32 trust\n"
			  "hostnossl all all 127.0.0.1/32 reject\n");
	char *extra = h_printf("auth_type = hba\nauth_hba_file = %s\n", hba);
	struct h_corral *c = start("prefer", extra);
	direct_login_and_query(c, TLS_RAW_ALPN_PG, sizeof(TLS_RAW_ALPN_PG) - 1);
	/* postgresql anywhere in the client's list is chosen. */
	static const char two[] = "\x02h2\x0apostgresql";
	direct_login_and_query(c, two, sizeof(two) - 1);

	/* SSLRequest, 'S', then a handshake with ALPN: postgresql is selected too. */
	struct tls_raw t;
	unsigned char buf[4096];
	size_t len;
	char proto[64];
	cr_assert(tls_raw_connect(&t, c->port, true, TLS_RAW_ALPN_PG, sizeof(TLS_RAW_ALPN_PG) - 1));
	cr_expect_str_eq(tls_raw_alpn(&t, proto, sizeof(proto)), "postgresql");
	cr_assert(tls_raw_login(&t, buf, sizeof(buf), &len));
	expect_select_1(&t);
	tls_raw_close(&t);

	/* An SSLRequest inside direct TLS: a second one, a protocol error. */
	cr_assert(
		tls_raw_connect(&t, c->port, false, TLS_RAW_ALPN_PG, sizeof(TLS_RAW_ALPN_PG) - 1));
	unsigned char pkt[8];
	h_request_packet(pkt, H_SSL_REQUEST_CODE);
	cr_assert(tls_raw_send(&t, pkt, sizeof(pkt)));
	bool closed;
	len = 0;
	cr_expect(tls_raw_read_until(&t, buf, sizeof(buf), &len, 'E', &closed));
	expect_error(buf, len, "08P01", "unsupported frontend protocol", "SSLRequest in TLS");
	tls_raw_close(&t);

	/* Plain text still meets the hostnossl line. */
	int fd = h_tcp_connect(c->port);
	const char *kv[] = {"user", "bench", "database", "bench", NULL};
	len = h_startup_packet(buf, sizeof(buf), H_PROTOCOL_3_0, kv);
	h_send_all(fd, buf, len);
	struct h_reply r;
	h_expect_error_then_close(fd, "plain client", "28000", &r);
	free(extra);
	free(hba);
	h_corral_stop(c);
}

Test(client_tls_direct, no_alpn_or_another_protocol_is_refused, .timeout = 60)
{
	struct h_corral *c = start("require", "auth_type = trust\n");
	struct tls_raw t;
	unsigned char buf[4096];
	size_t len = 0;

	/* No ALPN: the handshake may finish, then corral closes without a word. */
	(void)tls_raw_connect(&t, c->port, false, NULL, 0);
	cr_expect(!tls_raw_login(&t, buf, sizeof(buf), &len), "direct TLS without ALPN got in");
	cr_expect_null(find_msg(buf, len, 'R', &len), "direct TLS without ALPN got an answer");
	tls_raw_close(&t);
	cr_expect(h_wait_log(c, "without ALPN", 5), "%s", h_corral_log_tail(c));

	/* ALPN without postgresql: no_application_protocol, directly or after SSLRequest. */
	static const char h2[] = "\x02h2\x08http/1.1";
	cr_expect(!tls_raw_connect(&t, c->port, false, h2, sizeof(h2) - 1));
	cr_expect_eq(ERR_GET_REASON(t.err), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL, "%s",
		     ERR_reason_error_string(t.err));
	tls_raw_close(&t);
	cr_expect(!tls_raw_connect(&t, c->port, true, h2, sizeof(h2) - 1));
	cr_expect_eq(ERR_GET_REASON(t.err), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL, "%s",
		     ERR_reason_error_string(t.err));
	tls_raw_close(&t);

	/* corral goes on serving, directly and through libpq. */
	direct_login_and_query(c, TLS_RAW_ALPN_PG, sizeof(TLS_RAW_ALPN_PG) - 1);
	char *base = h_conninfo(c, H.user, H.db, NULL);
	char *ci = h_printf("%s sslmode=require", base);
	PGconn *conn = h_connect(c, ci);
	h_expect_value(conn, "select 'after the refusals'", "after the refusals");
	PQfinish(conn);
	free(ci);
	free(base);
	h_corral_stop(c);
}

Test(client_tls_direct, client_hello_with_tls_off_is_closed, .timeout = 60)
{
	struct h_corral *c = start(NULL, "auth_type = trust\n");
	struct tls_raw t;
	cr_expect(!tls_raw_connect(&t, c->port, false, TLS_RAW_ALPN_PG,
				   sizeof(TLS_RAW_ALPN_PG) - 1),
		  "a TLS handshake with client TLS off");
	tls_raw_close(&t);
	cr_expect(h_wait_log(c, "TLS handshake without SSLRequest", 5), "%s", h_corral_log_tail(c));
	close(h_raw_login(c->port, "select 1"));
	h_corral_stop(c);
}

/* ---- SCRAM-SHA-256-PLUS --------------------------------------------------------- */

Test(client_tls_direct, libpq_channel_binding, .timeout = 60)
{
	struct h_corral *c = start("prefer", NULL);
	char *base = h_conninfo(c, H.user, H.db, H.password);

	char *ci = h_printf("%s sslmode=require channel_binding=require", base);
	PGconn *conn = h_connect(c, ci);
	cr_expect_eq(PQsslInUse(conn), 1);
	h_expect_value(conn, "select 'bound'", "bound");
	PQfinish(conn);
	free(ci);

	/* Plain text offers no PLUS: libpq itself refuses to go on. */
	char *err = NULL;
	ci = h_printf("%s sslmode=disable channel_binding=require", base);
	conn = h_try_connect(ci, 10, &err);
	cr_expect(!conn && err && strstr(err, "channel binding"), "plain text: [%s]",
		  err ? err : "");
	free(err);
	free(ci);

	/* SCRAM-SHA-256 over TLS, binding declined: still in. */
	ci = h_printf("%s sslmode=require channel_binding=disable", base);
	conn = h_connect(c, ci);
	h_expect_value(conn, "select 'unbound'", "unbound");
	PQfinish(conn);
	free(ci);

	/* A wrong password over PLUS is still a wrong password. */
	free(base);
	base = h_conninfo(c, H.user, H.db, "wrong");
	ci = h_printf("%s sslmode=require channel_binding=require", base);
	conn = h_try_connect(ci, 10, &err);
	cr_expect(!conn && err && strstr(err, "28P01"), "wrong password: [%s]", err ? err : "");
	free(err);
	free(ci);
	free(base);
	h_corral_stop(c);
}

/* A SASLInitialResponse ('p') naming mech with data into out; its length. */
static size_t sasl_initial(unsigned char *out, const char *mech, const char *data)
{
	size_t ml = strlen(mech) + 1, dl = strlen(data);
	uint32_t len = (uint32_t)(4 + ml + 4 + dl);
	out[0] = 'p';
	for (int i = 0; i < 4; i++) {
		out[1 + i] = (unsigned char)(len >> (24 - 8 * i));
		out[5 + ml + i] = (unsigned char)(dl >> (24 - 8 * i));
	}
	memcpy(out + 5, mech, ml);
	memcpy(out + 9 + ml, data, dl);
	return 1 + len;
}

/* A TLS session (direct, or after an SSLRequest as libpq 15) up to AuthenticationSASL,
 * whose mechanism list must be PLUS then SCRAM-SHA-256. */
static void tls_to_sasl(const struct h_corral *c, struct tls_raw *t, bool direct)
{
	unsigned char buf[4096];
	size_t len = 0, body_len;
	bool closed;
	const char *kv[] = {"user", "bench", "database", "bench", NULL};
	if (direct)
		cr_assert(tls_raw_connect(t, c->port, false, TLS_RAW_ALPN_PG,
					  sizeof(TLS_RAW_ALPN_PG) - 1));
	else
		cr_assert(tls_raw_connect(t, c->port, true, NULL, 0));
	size_t n = h_startup_packet(buf, sizeof(buf), H_PROTOCOL_3_0, kv);
	cr_assert(tls_raw_send(t, buf, n));
	cr_assert(tls_raw_read_until(t, buf, sizeof(buf), &len, 'R', &closed));
	const unsigned char *body = find_msg(buf, len, 'R', &body_len);
	static const char want[] = "\0\0\0\012SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
	cr_assert(body_len == sizeof(want) && memcmp(body, want, sizeof(want)) == 0,
		  "AuthenticationSASL over TLS: %zu bytes", body_len);
}

/* Sends a SASLInitialResponse in a fresh TLS session; expects PostgreSQL's refusal. */
static void refused_first(const struct h_corral *c, bool direct, const char *mech, const char *data,
			  const char *want_state, const char *want_msg)
{
	struct tls_raw t;
	unsigned char buf[4096];
	size_t len = 0;
	bool closed;
	tls_to_sasl(c, &t, direct);
	size_t n = sasl_initial(buf, mech, data);
	cr_assert(tls_raw_send(&t, buf, n));
	cr_expect(tls_raw_read_until(&t, buf, sizeof(buf), &len, 'E', &closed));
	expect_error(buf, len, want_state, want_msg, data);
	tls_raw_close(&t);
}

Test(client_tls_direct, scram_binding_refusals_on_the_wire, .timeout = 60)
{
	struct h_corral *c = start("prefer", NULL);
	/* The client can bind and thinks we cannot: PLUS was taken out of the list. */
	refused_first(c, false, "SCRAM-SHA-256", "y,,n=,r=abcdefgh", "08P01",
		      "SCRAM channel binding negotiation error");
	refused_first(c, true, "SCRAM-SHA-256", "y,,n=,r=abcdefgh", "08P01",
		      "SCRAM channel binding negotiation error");
	refused_first(c, false, "SCRAM-SHA-256-PLUS", "n,,n=,r=abcdefgh", "08P01",
		      "malformed SCRAM message");
	refused_first(c, false, "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abcdefgh", "08P01",
		      "malformed SCRAM message");
	refused_first(c, false, "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=abcdefgh", "08P01",
		      "unsupported SCRAM channel-binding type");

	/* PLUS with binding data of another certificate: 28000. */
	struct tls_raw t;
	unsigned char buf[4096];
	size_t len = 0, body_len;
	bool closed;
	tls_to_sasl(c, &t, true); /* direct TLS: a TLS session like any other */
	size_t n = sasl_initial(buf, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abcdefgh");
	cr_assert(tls_raw_send(&t, buf, n));
	cr_assert(tls_raw_read_until(&t, buf, sizeof(buf), &len, 'R', &closed));
	const unsigned char *body = find_msg(buf, len, 'R', &body_len);
	cr_assert(body_len > 6 && body[3] == 11 && memcmp(body + 4, "r=abcdefgh", 10) == 0);
	char nonce[128];
	const unsigned char *comma = memchr(body + 6, ',', body_len - 6);
	cr_assert_not_null(comma);
	snprintf(nonce, sizeof(nonce), "%.*s", (int)(comma - body - 6), (const char *)body + 6);
	unsigned char cbind[24 + 32] = "p=tls-server-end-point,,"; /* and 32 zero bytes */
	char cbind_b64[80], final[300];
	EVP_EncodeBlock((unsigned char *)cbind_b64, cbind, sizeof(cbind));
	snprintf(final, sizeof(final),
		 "c=%s,r=%s,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", cbind_b64, nonce);
	uint32_t flen = (uint32_t)(4 + strlen(final));
	unsigned char msg[400] = {'p', 0, 0, (unsigned char)(flen >> 8), (unsigned char)flen};
	memcpy(msg + 5, final, strlen(final));
	cr_assert(tls_raw_send(&t, msg, 1 + flen));
	len = 0;
	cr_expect(tls_raw_read_until(&t, buf, sizeof(buf), &len, 'E', &closed));
	expect_error(buf, len, "28000", "SCRAM channel binding check failed", "wrong binding");
	tls_raw_close(&t);

	/* Plain text: SCRAM-SHA-256 alone is offered, PLUS is no mechanism of ours. */
	int fd = h_tcp_connect(c->port);
	const char *kv[] = {"user", "bench", "database", "bench", NULL};
	len = h_startup_packet(buf, sizeof(buf), H_PROTOCOL_3_0, kv);
	h_send_all(fd, buf, len);
	len = 0;
	cr_assert(h_read_until_msg(fd, buf, sizeof(buf), &len, 'R', 5, &closed));
	body = find_msg(buf, len, 'R', &body_len);
	cr_expect(body_len == 4 + sizeof("SCRAM-SHA-256") + 1, "plain-text mechanism list");
	n = sasl_initial(buf, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abcdefgh");
	h_send_all(fd, buf, n);
	struct h_reply r;
	h_expect_error_then_close(fd, "PLUS in plain text", "08P01", &r);
	cr_expect(strstr(r.msg, "invalid SASL authentication mechanism"), "%s", r.msg);

	/* And the server is fine. */
	PGconn *conn = h_connect_bench(c);
	h_expect_value(conn, "select 'still'", "still");
	PQfinish(conn);
	h_corral_stop(c);
}
