/*
 * Attack 16: the listener's direct TLS (proxy/client.c direct_tls, proxy/client_tls.c)
 * and the SCRAM pass-through server login (pool/server_login_raw.c,
 * pool/scram_client.c) driven by a hostile client and a hostile server.
 *
 * Client side: a lone 0x16 (or a few bytes of a TLS record) must not hold its login
 * slot past client_login_timeout; an SSLRequest with a ClientHello behind it in the same
 * write is plain text before the handshake (CVE-2021-23214) and refused; a real
 * ClientHello written one byte at a time still logs in; a storm of half-started
 * handshakes leaves corral serving.
 *
 * Server side (a fake PostgreSQL on a loopback socket): a server-first with a nonce
 * that does not extend corral's, one with i=1000000000 (corral must not run PBKDF2: the
 * keys are the client's), an AuthenticationOk with no SASLFinal, a SASLFinal before any
 * server-first, an oversized message, and a server that never answers: every one is
 * refused, promptly, and corral goes on serving.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tests/integration/fake_server.h"
#include "tests/integration/harness.h"
#include "tests/integration/tls_raw.h"

TestSuite(attack16, H_SUITE);

/* ---- client side: direct TLS ---- */

/* A new client of bench logs in and runs a query: corral goes on serving. */
static void expect_serves_bench(struct h_corral *c)
{
	PGconn *conn = h_connect_bench(c);
	h_expect_value(conn, "SELECT 1", "1");
	PQfinish(conn);
}

static struct h_corral *start_tls(const char *extra)
{
	h_make_certs(false);
	char *settings =
		h_printf("client_tls_sslmode = allow\nclient_tls_cert_file = %s/server.crt\n"
			 "client_tls_key_file = %s/server.key\n%s",
			 H.dir, H.dir, extra ? extra : "");
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, NULL);
	free(settings);
	return c;
}

/* Seconds until the peer closes fd (up to limit; limit + 1 if it never does). */
static double seconds_to_close(int fd, double limit)
{
	double t0 = h_now();
	unsigned char buf[4096];
	bool closed = false;
	(void)h_read_reply(fd, buf, sizeof(buf), limit, &closed);
	return closed ? h_now() - t0 : limit + 1;
}

/* A lone handshake byte, a record header and a half record: each is closed at
 * client_login_timeout, as PostgreSQL's authentication_timeout closes them. */
Test(attack16, direct_tls_partial_hello_closed_at_login_timeout, .timeout = 60)
{
	struct h_corral *c = start_tls("client_login_timeout = 1\n");
	static const unsigned char parts[][9] = {
		{0x16},
		{0x16, 0x03, 0x01, 0x02, 0x00},
		{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc},
	};
	static const size_t lens[] = {1, 5, 9};
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = h_tcp_connect(c->port);
		h_send_all(fds[i], parts[i], lens[i]);
	}
	for (int i = 0; i < 3; i++) {
		double s = seconds_to_close(fds[i], 8);
		cr_expect(s <= 5, "a %zu-byte TLS start was held %.1f s (login timeout 1 s)",
			  lens[i], s);
		close(fds[i]);
	}
	expect_serves_bench(c);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

/* SSLRequest and the ClientHello in one write: the hello was plain text before the
 * handshake (CVE-2021-23214): refused with 08P01, no 'S'. */
Test(attack16, sslrequest_with_clienthello_in_one_write_refused, .timeout = 60)
{
	struct h_corral *c = start_tls(NULL);
	unsigned char buf[64];
	h_request_packet(buf, H_SSL_REQUEST_CODE);
	static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0x05,
					      0x01, 0x00, 0x00, 0x01, 0x03};
	memcpy(buf + 8, hello, sizeof(hello));
	int fd = h_tcp_connect(c->port);
	h_send_all(fd, buf, 8 + sizeof(hello));
	struct h_reply r;
	h_read_final_reply(fd, 5, &r);
	cr_expect(r.len == 0 || r.buf[0] != 'S', "corral answered 'S' to a pipelined hello");
	cr_expect(r.closed, "corral kept the connection");
	cr_expect(r.error && strcmp(r.sqlstate, "08P01") == 0 &&
			  strstr(r.msg, "unencrypted data after SSL request") != NULL,
		  "want 08P01 unencrypted data: error=%d %s %s", r.error, r.sqlstate, r.msg);
	expect_serves_bench(c);
	h_corral_stop(c);
}

/* A real ClientHello (ALPN postgresql) captured from a memory BIO, sent one byte per
 * write with pauses, then the handshake finished on the socket: corral's MSG_PEEK of
 * the first byte and the handshake must cope, and the login work. */
Test(attack16, direct_tls_hello_one_byte_at_a_time, .timeout = 60)
{
	struct h_corral *c = start_tls("auth_type = trust\n");
	struct tls_raw t = {.fd = -1};
	t.ctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(t.ctx);
	t.ssl = SSL_new(t.ctx);
	cr_assert_not_null(t.ssl);
	cr_assert_eq(SSL_set_alpn_protos(t.ssl, (const unsigned char *)TLS_RAW_ALPN_PG,
					 sizeof(TLS_RAW_ALPN_PG) - 1),
		     0);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(t.ssl, rb, wb);
	cr_assert_eq(SSL_connect(t.ssl), -1);
	cr_assert_eq(SSL_get_error(t.ssl, -1), SSL_ERROR_WANT_READ);
	char *hello;
	long n = BIO_get_mem_data(wb, &hello);
	cr_assert(n > 50 && (unsigned char)hello[0] == 0x16, "hello of %ld bytes", n);
	unsigned char *copy = malloc((size_t)n);
	memcpy(copy, hello, (size_t)n);

	t.fd = h_tcp_connect(c->port);
	int one = 1;
	setsockopt(t.fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	for (long i = 0; i < n; i++) {
		h_send_all(t.fd, copy + i, 1);
		if (i < 8 || i % 64 == 0)
			usleep(20000);
	}
	free(copy);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(t.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	SSL_set_fd(t.ssl, t.fd); /* frees the memory BIOs; the state machine goes on */
	ERR_clear_error();
	cr_assert_eq(SSL_connect(t.ssl), 1, "handshake after a split hello failed: %s",
		     ERR_error_string(ERR_get_error(), NULL));
	unsigned char buf[8192];
	size_t len = 0;
	cr_expect(tls_raw_login(&t, buf, sizeof(buf), &len), "login after a split hello failed\n%s",
		  h_corral_log_tail(c));
	tls_raw_close(&t);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

/* 400 connections that start a handshake and vanish (0x16 alone, a half record, a reset
 * after a real hello's first bytes) with workers = 2: corral serves after, and SHOW
 * CLIENTS holds none of them. */
Test(attack16, direct_tls_half_handshake_storm, .timeout = 120)
{
	struct h_corral *c = start_tls("workers = 2\nadmin_users = bench\n");
	static const unsigned char rec[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01};
	for (int i = 0; i < 400; i++) {
		int fd = h_tcp_connect(c->port);
		h_send_all(fd, rec, (size_t)(1 + i % (int)sizeof(rec)));
		if (i % 3 == 0) { /* a reset rather than a FIN */
			struct linger lg = {1, 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(fd);
	}
	expect_serves_bench(c);
	char *aci = h_conninfo(c, "bench", "corral", "secret");
	PGconn *admin = h_connect(c, aci);
	free(aci);
	double deadline = h_now() + 10;
	int rows = -1;
	while (h_now() < deadline) {
		PGresult *r = h_exec(admin, "SHOW CLIENTS");
		cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
		rows = PQntuples(r);
		PQclear(r);
		if (rows <= 1)
			break;
		usleep(100000);
	}
	cr_expect(rows <= 1, "SHOW CLIENTS still has %d rows after the storm", rows);
	PQfinish(admin);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

/* ---- server side: a hostile server to a SCRAM pass-through login ---- */

#define PT_PASSWORD "atk16-secret"

enum fake_mode {
	FAKE_BAD_NONCE,      /* server-first's nonce does not start with corral's */
	FAKE_HUGE_ITER,      /* i=1000000000, then AuthenticationOk with no SASLFinal */
	FAKE_FINAL_FIRST,    /* SASLFinal in answer to the client-first */
	FAKE_HUGE_MESSAGE,   /* an AuthenticationSASLContinue of 100 MB announced */
	FAKE_SILENT,         /* reads the startup packet, never answers */
	FAKE_OK_AFTER_FIRST, /* AuthenticationOk + ReadyForQuery after the client-first */
	FAKE_S_THEN_PLAIN,   /* 'S' to the SSLRequest with AuthenticationOk + Z behind it */
};

struct fake_pg {
	int listen_fd;
	enum fake_mode mode;
	bool got_final; /* corral sent a client-final */
	bool done;
};

static void serve_one(struct fake_pg *f, int fd)
{
	struct timeval tv = {30, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t len;
	char *m = fake_read_msg(fd, true, &len);
	if (!m)
		return;
	free(m);
	if (f->mode == FAKE_SILENT)
		return; /* the caller waits for corral to hang up */
	if (f->mode == FAKE_S_THEN_PLAIN) {
		/* CVE-2021-23222's server side: plain bytes behind the 'S', before any
		 * handshake, must never be read as the server's answers. */
		static const char stuffed[] = {'S', 'R', 0,   0, 0, 8, 0, 0,
					       0,   0,   'Z', 0, 0, 0, 5, 'I'};
		(void)send(fd, stuffed, sizeof(stuffed), MSG_NOSIGNAL);
		return;
	}
	(void)fake_send_auth(fd, 10, "SCRAM-SHA-256\0", 15);
	m = fake_read_msg(fd, false, &len); /* SASLInitialResponse */
	if (!m)
		return;
	const char *r = memmem(m, len, ",r=", 3);
	char first[400];
	switch (f->mode) {
	case FAKE_BAD_NONCE:
		snprintf(first, sizeof(first),
			 "r=NOTYOURNONCEATALLXXXXXXXXXXXXXXXX,s=c2FsdA==,i=4096");
		(void)fake_send_auth(fd, 11, first, strlen(first));
		break;
	case FAKE_HUGE_ITER:
		snprintf(first, sizeof(first), "r=%.*sFAKE,s=c2FsdA==,i=1000000000", r ? 24 : 0,
			 r ? r + 3 : "");
		(void)fake_send_auth(fd, 11, first, strlen(first));
		free(m);
		m = fake_read_msg(fd, false, &len);
		if (m)
			f->got_final = true;
		fake_send_ok_ready(fd); /* no SASLFinal: the server never proved itself */
		break;
	case FAKE_FINAL_FIRST: {
		const char *v = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
		(void)fake_send_auth(fd, 12, v, strlen(v));
		fake_send_ok_ready(fd);
		break;
	}
	case FAKE_HUGE_MESSAGE: {
		char hdr[9] = {'R'};
		uint32_t n = htonl(100u * 1024 * 1024), c = htonl(11);
		memcpy(hdr + 1, &n, 4);
		memcpy(hdr + 5, &c, 4);
		(void)send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
		char zeros[4096] = {0};
		for (int i = 0; i < 64; i++)
			if (send(fd, zeros, sizeof(zeros), MSG_NOSIGNAL) <= 0)
				break;
		break;
	}
	case FAKE_OK_AFTER_FIRST:
		fake_send_ok_ready(fd);
		break;
	case FAKE_SILENT:
	case FAKE_S_THEN_PLAIN:
		break;
	}
	free(m);
}

static void *fake_pg_main(void *arg)
{
	struct fake_pg *f = arg;
	for (;;) {
		int fd = accept(f->listen_fd, NULL, NULL);
		if (fd < 0)
			break;
		serve_one(f, fd);
		char b;
		while (recv(fd, &b, 1, 0) > 0) /* until corral hangs up */
			;
		close(fd);
	}
	f->done = true;
	return NULL;
}

/* Logs in through corral to the fake server in mode; returns the error and how long
 * the refusal took. */
static char *fake_server_login(enum fake_mode mode, double *took, bool *got_final)
{
	PGconn *su = h_superuser();
	char *verifier = fake_make_role(su, "atk16_pt", PT_PASSWORD);
	PQfinish(su);
	struct fake_pg f = {.mode = mode};
	int port;
	f.listen_fd = fake_listen(16, &port);
	pthread_t t;
	cr_assert(pthread_create(&t, NULL, fake_pg_main, &f) == 0);

	char *users = h_printf("\"atk16_pt\" \"%s\"\n", verifier);
	char *dbs = h_printf("pt = host=127.0.0.1 port=%d dbname=bench sslmode=%s\n", port,
			     mode == FAKE_S_THEN_PLAIN ? "require" : "disable");
	struct h_corral *c = h_corral_start("server_connect_timeout = 3\nserver_login_wait = 0\n"
					    "server_login_retry = 1\n",
					    dbs, users);
	char *ci = h_conninfo(c, "atk16_pt", "pt", PT_PASSWORD);
	double t0 = h_now();
	PGconn *conn = PQconnectdb(ci);
	char *err = NULL;
	if (PQstatus(conn) == CONNECTION_OK) {
		PGresult *r = PQexec(conn, "SELECT 1");
		err = h_printf("%s%s", PQresultStatus(r) == PGRES_TUPLES_OK ? "GOT IN: " : "",
			       PQresultErrorMessage(r));
		PQclear(r);
	} else {
		err = strdup(PQerrorMessage(conn));
	}
	*took = h_now() - t0;
	PQfinish(conn);
	free(ci);
	cr_expect(h_corral_alive(c), "corral died against fake server mode %d", mode);
	h_corral_stop(c);
	shutdown(f.listen_fd, SHUT_RDWR);
	pthread_join(t, NULL);
	close(f.listen_fd);
	*got_final = f.got_final;
	free(dbs);
	free(users);
	free(verifier);
	return err;
}

static void expect_refused(enum fake_mode mode, double max_s, const char *want)
{
	double took;
	bool got_final;
	char *err = fake_server_login(mode, &took, &got_final);
	cr_expect(strstr(err, "GOT IN") == NULL, "mode %d: the client got in: %s", mode, err);
	cr_expect(want == NULL || strstr(err, want) != NULL, "mode %d: want \"%s\" in: %s", mode,
		  want, err);
	cr_expect(took <= max_s, "mode %d: the refusal took %.1f s (want <= %.1f)", mode, took,
		  max_s);
	free(err);
}

Test(attack16, fake_server_bad_nonce_refused, .timeout = 60)
{
	expect_refused(FAKE_BAD_NONCE, 10, "malformed SCRAM server-first");
}

/* PBKDF2 of 10^9 iterations takes minutes: corral must not compute it (it has the
 * client's keys), and the AuthenticationOk without SASLFinal is a server that never
 * proved it knows ServerKey. */
Test(attack16, fake_server_huge_iterations_no_final_refused_fast, .timeout = 60)
{
	double took;
	bool got_final;
	char *err = fake_server_login(FAKE_HUGE_ITER, &took, &got_final);
	cr_expect(got_final, "corral sent no client-final");
	cr_expect(strstr(err, "GOT IN") == NULL, "the client got in: %s", err);
	cr_expect(strstr(err, "without its signature") != NULL, "want a refusal: %s", err);
	cr_expect(took < 10, "the login took %.1f s: PBKDF2 run on a server's iteration count?",
		  took);
	free(err);
}

Test(attack16, fake_server_final_before_first_refused, .timeout = 60)
{
	expect_refused(FAKE_FINAL_FIRST, 10, "signature is wrong");
}

Test(attack16, fake_server_ok_after_client_first_refused, .timeout = 60)
{
	expect_refused(FAKE_OK_AFTER_FIRST, 10, "without its signature");
}

Test(attack16, fake_server_huge_message_refused, .timeout = 60)
{
	expect_refused(FAKE_HUGE_MESSAGE, 10, "invalid message length");
}

/* A server that takes the startup packet and says nothing: server_connect_timeout
 * (3 s) bounds the login, as libpq's connect_timeout. */
Test(attack16, fake_server_silent_times_out, .timeout = 60)
{
	expect_refused(FAKE_SILENT, 15, NULL);
}

/* ---- user names past 63 bytes ---- */

#define AQ_USERS "\"bench\" \"secret\"\n\"corral_auth\" \"authpass\"\n"
/* 63 bytes: PostgreSQL keeps a name's first NAMEDATALEN - 1 bytes. */
#define ROLE63 "atk16_role63_llllllllllllllllllllllllllllllllllllllllllllllllll"
#define ROLE63_PW "r63pass"

/* Tries user/password; the role PostgreSQL gave the session, or NULL (*err set). */
static char *login_as(const char *ci, char **err)
{
	*err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, err);
	if (!conn)
		return NULL;
	char *who = h_value(conn, "select current_user");
	PQfinish(conn);
	return who;
}

/*
 * PostgreSQL cuts the startup packet's user name to 63 bytes before pg_hba.conf and
 * the role lookup (ProcessStartupPacket): ROLE63 + "_evil" is ROLE63, and a reject
 * line for ROLE63 refuses it.  corral must match names as PostgreSQL will: otherwise a
 * 64+ byte name slips past corral's hba line (and per-user limits), auth_query's
 * usename = $1 (a name: cut too) finds ROLE63's verifier, and the server login as the
 * long name is ROLE63's session.
 */
Test(attack16, user_name_past_63_bytes_is_cut_as_postgres_does, .timeout = 60)
{
	cr_assert_eq(strlen(ROLE63), 63);
	PGconn *su = h_superuser();
	h_exec_ok(su, "do $$ begin create role " ROLE63 " login password '" ROLE63_PW "'; "
		      "exception when duplicate_object then null; end $$");
	PQfinish(su);
	const char *longer = ROLE63 "_evil";

	/* PostgreSQL itself: the long name is ROLE63. */
	char *err;
	char *pci = h_pg_conninfo(longer, "bench", ROLE63_PW);
	char *who = login_as(pci, &err);
	cr_assert_not_null(who, "PostgreSQL refused the long name: %s", err);
	cr_expect_str_eq(who, ROLE63);
	free(who);
	free(pci);

	char *path = h_path("atk16-hba.conf");
	h_write_file(path, "host all " ROLE63 " 127.0.0.1/32 reject\n"
			   "host all all 127.0.0.1/32 scram-sha-256\n");
	char *settings = h_printf("auth_type = hba\nauth_hba_file = %s\nauth_user = corral_auth\n",
				  path);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, AQ_USERS);
	char *ci = h_conninfo(c, ROLE63, "bench", ROLE63_PW);
	who = login_as(ci, &err);
	cr_expect(who == NULL && err && strstr(err, "pg_hba.conf rejects"),
		  "the reject line let %s in: %s", ROLE63, who ? who : err);
	free(who);
	free(err);
	free(ci);
	/* The same role, spelled 68 bytes long: PostgreSQL's pg_hba would reject it too. */
	ci = h_conninfo(c, longer, "bench", ROLE63_PW);
	who = login_as(ci, &err);
	cr_expect(who == NULL, "a name past 63 bytes got past the reject line for %s as \"%s\"",
		  ROLE63, who ? who : "");
	cr_expect(who != NULL || (err && strstr(err, "pg_hba.conf rejects")),
		  "want pg_hba.conf's refusal: %s", err ? err : "");
	free(who);
	free(err);
	free(ci);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
	free(settings);
	free(path);
}

/* ---- pass-through pools freed by max_pools while two workers churn ---- */

#define PF_USERS 6
#define PF_THREADS 4
#define PF_ROUNDS 25

struct pf_arg {
	const struct h_corral *c;
	int id;
	int ok, refused, full, wrong_user;
	char last_err[300];
};

static void *pf_churn(void *p)
{
	struct pf_arg *a = p;
	for (int i = 0; i < PF_ROUNDS; i++) {
		int u = (a->id + i) % PF_USERS;
		char user[32];
		snprintf(user, sizeof(user), "atk16_pf%d", u);
		char *ci = h_conninfo(a->c, user, "pt", PT_PASSWORD);
		PGconn *conn = PQconnectdb(ci);
		free(ci);
		if (PQstatus(conn) != CONNECTION_OK) {
			/* All pools in use at that moment (a pool just left is idle only once
			 * its server is back from its reset): README's 53300, not a failure. */
			if (strstr(PQerrorMessage(conn), "too many pools")) {
				a->full++;
				PQfinish(conn);
				continue;
			}
			snprintf(a->last_err, sizeof(a->last_err), "%s", PQerrorMessage(conn));
			a->refused++;
			PQfinish(conn);
			continue;
		}
		PGresult *r = PQexec(conn, "select current_user, pg_backend_pid()");
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			if (strcmp(PQgetvalue(r, 0, 0), user) == 0)
				a->ok++;
			else
				a->wrong_user++;
		} else {
			snprintf(a->last_err, sizeof(a->last_err), "%s", PQresultErrorMessage(r));
			a->refused++;
		}
		PQclear(r);
		PQfinish(conn);
	}
	return NULL;
}

struct pf_admin {
	const struct h_corral *c;
	volatile bool stop;
	int rounds;
};

static void *pf_admin_loop(void *p)
{
	struct pf_admin *a = p;
	char *ci = h_conninfo(a->c, "bench", "corral", "secret");
	PGconn *admin = PQconnectdb(ci);
	free(ci);
	static const char *const cmds[] = {"SHOW POOLS", "SHOW SERVERS", "SHOW CLIENTS",
					   "SHOW STATS", "RELOAD"};
	while (!a->stop && PQstatus(admin) == CONNECTION_OK) {
		PGresult *r = PQexec(admin, cmds[a->rounds % 5]);
		PQclear(r);
		a->rounds++;
		usleep(5000);
	}
	PQfinish(admin);
	return NULL;
}

/*
 * Six pass-through users (the auth file holds only their verifiers, PostgreSQL asks
 * for SCRAM over TCP), four at a time, max_pools = 4, two workers: every login frees another user's
 * idle pool, whose keys leave with it, while SHOW and RELOAD run.  Every session must
 * be its own user's (current_user), every login must work, and corral must live.
 */
Test(attack16, passthrough_pools_freed_under_churn_two_workers, .timeout = 180)
{
	PGconn *su = h_superuser();
	struct h_sbuf users = {0};
	h_sb_printf(&users, "\"bench\" \"secret\"\n");
	for (int u = 0; u < PF_USERS; u++) {
		char name[32];
		snprintf(name, sizeof(name), "atk16_pf%d", u);
		char *v = fake_make_role(su, name, PT_PASSWORD);
		h_sb_printf(&users, "\"%s\" \"%s\"\n", name, v);
		free(v);
	}
	PQfinish(su);
	const char *dbs = "pt = host=127.0.0.1 port=@PGPORT@ dbname=bench sslmode=disable\n";
	struct h_corral *c = h_corral_start("workers = 2\nmax_pools = 4\nadmin_users = bench\n"
					    "pool_mode = transaction\n",
					    dbs, users.p);
	struct pf_arg args[PF_THREADS];
	pthread_t t[PF_THREADS], at;
	struct pf_admin adm = {.c = c};
	cr_assert(pthread_create(&at, NULL, pf_admin_loop, &adm) == 0);
	for (int i = 0; i < PF_THREADS; i++) {
		args[i] = (struct pf_arg){.c = c, .id = i};
		cr_assert(pthread_create(&t[i], NULL, pf_churn, &args[i]) == 0);
	}
	int ok = 0, refused = 0, full = 0, wrong = 0;
	for (int i = 0; i < PF_THREADS; i++) {
		pthread_join(t[i], NULL);
		ok += args[i].ok;
		refused += args[i].refused;
		wrong += args[i].wrong_user;
		full += args[i].full;
		if (args[i].refused)
			cr_log_warn("thread %d: %d refused, last: %s", i, args[i].refused,
				    args[i].last_err);
	}
	adm.stop = true;
	pthread_join(at, NULL);
	cr_expect_eq(wrong, 0, "%d sessions were another user's", wrong);
	cr_expect_eq(refused, 0, "%d of %d logins failed\n%s", refused, PF_THREADS * PF_ROUNDS,
		     h_corral_log_tail(c));
	cr_expect_eq(ok + full, PF_THREADS * PF_ROUNDS);
	cr_expect(full <= PF_THREADS * PF_ROUNDS / 4, "%d logins found every pool busy", full);
	cr_expect(h_log_count(c, "event=pool_freed") > 0, "no pool was freed:\n%s",
		  h_corral_log_tail(c));
	cr_expect(adm.rounds > 0);
	cr_expect(h_corral_alive(c), "corral died:\n%s", h_corral_log_tail(c));
	h_corral_stop(c);
	free(users.p);
}

/* ---- CancelRequest inside direct TLS ---- */

static bool find_key(const unsigned char *buf, size_t len, uint32_t *pid, uint32_t *key)
{
	size_t off = 0, n, blen;
	char type;
	const unsigned char *body;
	while ((n = h_msg(buf + off, len - off, &type, &body, &blen)) > 0) {
		if (type == 'K' && blen == 8) {
			*pid = h_be32(body);
			*key = h_be32(body + 4);
			return true;
		}
		off += n;
	}
	return false;
}

/*
 * PostgreSQL takes a CancelRequest as the first packet inside TLS (after an SSLRequest,
 * or direct TLS in 17).  Client A (direct TLS) runs pg_sleep(30); B opens direct TLS
 * and sends A's key inside it: A's query ends with 57014 within seconds.  A wrong key
 * inside TLS cancels nothing.
 */
Test(attack16, cancel_request_inside_direct_tls, .timeout = 90)
{
	struct h_corral *c = start_tls("auth_type = trust\n");
	struct tls_raw a;
	unsigned char buf[8192];
	size_t len = 0;
	cr_assert(
		tls_raw_connect(&a, c->port, false, TLS_RAW_ALPN_PG, sizeof(TLS_RAW_ALPN_PG) - 1));
	cr_assert(tls_raw_login(&a, buf, sizeof(buf), &len), "login\n%s", h_corral_log_tail(c));
	uint32_t pid, key;
	cr_assert(find_key(buf, len, &pid, &key), "no BackendKeyData");

	static const char q[] = "select pg_sleep(30)";
	unsigned char msg[64];
	msg[0] = 'Q';
	uint32_t n = htonl((uint32_t)(4 + sizeof(q)));
	memcpy(msg + 1, &n, 4);
	memcpy(msg + 5, q, sizeof(q));
	cr_assert(tls_raw_send(&a, msg, 5 + sizeof(q)));
	usleep(500000);

	/* A wrong key first: nothing is cancelled. */
	size_t rl = 0;
	bool closed;
	unsigned char reply[4096];
	for (int round = 0; round < 2; round++) {
		struct tls_raw b;
		cr_assert(tls_raw_connect(&b, c->port, false, TLS_RAW_ALPN_PG,
					  sizeof(TLS_RAW_ALPN_PG) - 1));
		unsigned char cancel[16];
		uint32_t v[4] = {htonl(16), htonl(80877102u), htonl(pid),
				 htonl(round == 0 ? key ^ 0x5a5a5a5au : key)};
		memcpy(cancel, v, 16);
		cr_assert(tls_raw_send(&b, cancel, 16));
		unsigned char junk[64];
		size_t jl = 0;
		(void)tls_raw_read_until(&b, junk, sizeof(junk), &jl, 'Z', &closed);
		cr_expect_eq(jl, 0, "corral answered a CancelRequest");
		tls_raw_close(&b);
		if (round == 0) {
			struct timeval one = {.tv_sec = 2};
			setsockopt(a.fd, SOL_SOCKET, SO_RCVTIMEO, &one, sizeof(one));
			cr_expect(!tls_raw_read_until(&a, reply, sizeof(reply), &rl, 'E', &closed),
				  "a wrong key inside TLS cancelled the query");
		}
	}
	double t0 = h_now();
	struct timeval tv = {.tv_sec = 20};
	setsockopt(a.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert(tls_raw_read_until(&a, reply, sizeof(reply), &rl, 'Z', &closed),
		  "no answer to the query\n%s", h_corral_log_tail(c));
	double took = h_now() - t0;
	char state[6] = "", text[256] = "";
	size_t off = 0, m, blen;
	char type;
	const unsigned char *body;
	bool error = false;
	while ((m = h_msg(reply + off, rl - off, &type, &body, &blen)) > 0) {
		if (type == 'E')
			error = h_parse_error(reply + off, rl - off, state, text, sizeof(text));
		off += m;
	}
	cr_expect(error && strcmp(state, "57014") == 0,
		  "want 57014 (canceled by the key inside TLS): error=%d %s %s", error, state,
		  text);
	cr_expect(took < 10, "the cancel took %.1f s", took);
	tls_raw_close(&a);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

/* ---- hba cert: odd common names ---- */

/* A client key and certificate signed by DIR's ca.key, subject given as one openssl
 * -subj string, into DIR/<name>.crt and .key. */
static void client_cert(const char *name, const char *subj, const char *ca)
{
	struct h_cmd r = h_run(60,
			       "cd %s && openssl req -newkey rsa:2048 -nodes -subj '%s' "
			       "-keyout %s.key -out %s.csr && openssl x509 -req -in %s.csr "
			       "-CA %s.crt -CAkey %s.key -CAcreateserial -days 2 -out %s.crt && "
			       "chmod 600 %s.key",
			       H.dir, subj, name, name, name, ca, ca, name, name);
	cr_assert_eq(r.status, 0, "openssl: status %d\n%s\n%s", r.status, r.out, r.err);
	h_cmd_free(&r);
}

/* A certificate whose CN is the 10 bytes "bench\0evil", signed by DIR's CA. */
static void client_cert_nul_cn(void)
{
	char *path = h_printf("%s/ca.key", H.dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	EVP_PKEY *cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	free(path);
	path = h_printf("%s/ca.crt", H.dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	free(path);
	cr_assert(cakey && ca);
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	cr_assert(key && x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME *n = X509_get_subject_name(x);
	cr_assert(X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC,
					     (const unsigned char *)"bench\0evil", 10, -1, 0));
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_set_pubkey(x, key);
	cr_assert(X509_sign(x, cakey, EVP_sha256()) > 0);
	path = h_printf("%s/nul.crt", H.dir);
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	free(path);
	path = h_printf("%s/nul.key", H.dir);
	f = fopen(path, "w");
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	chmod(path, 0600);
	free(path);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
}

/* Logs in as user with DIR/<cert>.crt: NULL if in (with *who the session's user), else
 * the error. */
static char *cert_login(const struct h_corral *c, const char *user, const char *cert)
{
	char *base = h_conninfo(c, user, "bench", NULL);
	char *ci = h_printf("%s sslmode=require sslcert=%s/%s.crt sslkey=%s/%s.key", base, H.dir,
			    cert, H.dir, cert);
	char *err = NULL;
	PGconn *conn = h_try_connect(ci, 10, &err);
	free(ci);
	free(base);
	if (conn) {
		PQfinish(conn);
		free(err);
		return NULL;
	}
	return err ? err : strdup("(no error)");
}

/*
 * hba cert as PostgreSQL's: the first CN of a certificate the CA signed, compared byte
 * for byte with the user name.  BENCH is not bench; /CN=bench/CN=other is bench and
 * /CN=other/CN=bench is not (PostgreSQL's X509_NAME_get_text_by_NID takes the first);
 * a CN with a NUL inside ("bench\0evil") is no name at all; a certificate from another
 * CA fails the handshake.
 */
Test(attack16, hba_cert_odd_common_names, .timeout = 120)
{
	h_make_certs(false);
	client_cert("upper", "/CN=BENCH", "ca");
	client_cert("first_bench", "/CN=bench/CN=other", "ca");
	client_cert("second_bench", "/CN=other/CN=bench", "ca");
	client_cert_nul_cn();
	struct h_cmd r = h_run(60,
			       "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
			       "-subj /CN=evil-ca -keyout evilca.key -out evilca.crt",
			       H.dir);
	cr_assert_eq(r.status, 0, "%s", r.err);
	h_cmd_free(&r);
	client_cert("evil", "/CN=bench", "evilca");

	char *hba = h_path("atk16-cert-hba.conf");
	h_write_file(hba, "hostssl all all 127.0.0.1/32 cert\n");
	char *settings = h_printf("client_tls_sslmode = verify-ca\nclient_tls_cert_file = "
				  "%s/server.crt\nclient_tls_key_file = %s/server.key\n"
				  "client_tls_ca_file = %s/ca.crt\nauth_type = hba\n"
				  "auth_hba_file = %s\n",
				  H.dir, H.dir, H.dir, hba);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, NULL);

	char *err = cert_login(c, "bench", "upper");
	cr_expect(err && strstr(err, "certificate authentication failed for user \"bench\""),
		  "CN=BENCH as bench: %s", err ? err : "got in");
	free(err);
	err = cert_login(c, "BENCH", "upper");
	cr_expect(err == NULL || strstr(err, "certificate authentication failed") == NULL,
		  "CN=BENCH as BENCH: the names match, yet: %s", err);
	free(err);
	err = cert_login(c, "bench", "first_bench");
	cr_expect(err == NULL, "/CN=bench/CN=other as bench: %s", err);
	free(err);
	err = cert_login(c, "bench", "second_bench");
	cr_expect(err && strstr(err, "certificate authentication failed for user \"bench\""),
		  "/CN=other/CN=bench as bench: %s", err ? err : "got in");
	free(err);
	err = cert_login(c, "bench", "nul");
	cr_expect(err != NULL, "a CN of bench\\0evil got in as bench");
	free(err);
	err = cert_login(c, "bench", "evil");
	cr_expect(err != NULL, "a certificate of another CA got in");
	free(err);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
	free(settings);
	free(hba);
}

/* ---- auth_query: a RELOAD while a lookup runs ---- */

/*
 * Lookups of authq_many run 2 s on both workers when a RELOAD makes auth_query one
 * that finds nobody.  Whatever the logins already waiting get, the old query's answer
 * must not be cached for the new one: a login after the reload is refused, on either
 * worker, as PostgreSQL's new answer says.
 */
Test(attack16, reload_mid_lookup_does_not_cache_the_old_answer, .timeout = 90)
{
	struct h_corral *c = h_corral_start(
		"workers = 2\nauth_user = corral_auth\n"
		"auth_query = SELECT usename, passwd FROM pg_shadow, pg_sleep(2) WHERE usename=$1\n",
		H_BENCH_DB, AQ_USERS);
	enum { N = 6 };
	struct h_login a[N];
	char *many_ci = h_conninfo(c, "authq_many", "bench", "manypass");
	h_logins_start(a, N, many_ci, NULL);
	usleep(500000);
	h_corral_edit_reload(c, "pg_sleep(2) WHERE usename=$1",
			     "pg_sleep(0) WHERE usename=$1 AND false");
	h_logins_join(a, N);
	free(many_ci);
	for (int i = 0; i < 6; i++) { /* both workers */
		char *ci = h_conninfo(c, "authq_many", "bench", "manypass");
		char *err = NULL;
		PGconn *conn = h_try_connect(ci, 10, &err);
		cr_expect(conn == NULL && err && strstr(err, "28P01"),
			  "login %d after the reload: the old query's answer let authq_many in "
			  "(%s)\n%s",
			  i, err ? err : "", h_corral_log_tail(c));
		if (conn)
			PQfinish(conn);
		free(err);
		free(ci);
	}
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

/* ---- auth_query: user names PostgreSQL cannot take as text ---- */

/*
 * A user name that is not UTF-8 ("\xff\xfe"): PostgreSQL itself answers such a login
 * with 28P01 (the role is looked up as bytes and not found; the password exchange runs
 * on a mock secret).  Through corral the lookup's $1 is refused by PostgreSQL (22021),
 * which corral told the client as 58000 "auth_query failed in database ...: invalid
 * byte sequence": now no such user, 28P01 as PostgreSQL; no lookup may stay claimed,
 * and a real user logs in right after, on both workers.
 */
Test(attack16, auth_query_user_name_not_utf8, .timeout = 60)
{
	const char *bad = "atk16_\xff\xfe";
	char *pci = h_pg_conninfo(bad, "bench", "x");
	char *perr = NULL;
	PGconn *pconn = h_try_connect(pci, 10, &perr);
	cr_expect(pconn == NULL && perr && strstr(perr, "28P01"), "PostgreSQL: %s",
		  perr ? perr : "got in");
	if (pconn)
		PQfinish(pconn);
	free(perr);
	free(pci);

	struct h_corral *c = h_corral_start("workers = 2\nauth_user = corral_auth\n", H_BENCH_DB,
					    AQ_USERS);
	for (int i = 0; i < 4; i++) {
		char *ci = h_conninfo(c, bad, "bench", "x"), *err = NULL;
		PGconn *conn = h_try_connect(ci, 10, &err);
		cr_expect(conn == NULL && err && strstr(err, "28P01") &&
				  strstr(err, "auth_query") == NULL,
			  "a non-UTF-8 user name: want PostgreSQL's 28P01, got %s",
			  err ? err : "in");
		if (conn)
			PQfinish(conn);
		free(err);
		free(ci);
	}
	for (int i = 0; i < 4; i++) {
		char *ci = h_conninfo(c, "authq_many", "bench", "manypass");
		PGconn *conn = h_connect(c, ci);
		h_expect_value(conn, "select 1", "1");
		PQfinish(conn);
		free(ci);
	}
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

Test(attack16, fake_server_plain_bytes_behind_its_s_refused, .timeout = 60)
{
	expect_refused(FAKE_S_THEN_PLAIN, 10, NULL);
}

/* 0x16 and then plain text, a record header announcing 16 KB of garbage, and 1 MB of
 * handshake-typed junk: each is closed promptly (a failed handshake, not a login
 * slot held to the timeout), and corral serves after. */
Test(attack16, direct_tls_garbage_hellos_closed, .timeout = 60)
{
	struct h_corral *c = start_tls("client_login_timeout = 30\n");
	size_t big = 1 << 20;
	unsigned char *junk = malloc(big);
	cr_assert_not_null(junk);
	for (size_t i = 0; i < big; i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	static const char plain[] = "\x16GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const unsigned char hdr16k[] = {0x16, 0x03, 0x01, 0x40, 0x00};
	for (int v = 0; v < 3; v++) {
		int fd = h_tcp_connect(c->port);
		if (v == 0) {
			h_send_all(fd, plain, sizeof(plain) - 1);
		} else if (v == 1) {
			h_send_all(fd, hdr16k, sizeof(hdr16k));
			h_send_all(fd, junk, 16384);
		} else {
			junk[0] = 0x16;
			struct timeval tv = {.tv_sec = 5};
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			size_t off = 0;
			while (off < big) { /* corral may close before all of it is sent */
				ssize_t n = send(fd, junk + off, big - off, MSG_NOSIGNAL);
				if (n <= 0)
					break;
				off += (size_t)n;
			}
		}
		double s = seconds_to_close(fd, 10);
		cr_expect(s <= 5, "variant %d: the connection was held %.1f s", v, s);
		close(fd);
	}
	free(junk);
	expect_serves_bench(c);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}

/* ---- direct TLS and max_client_conn ---- */

/*
 * README: a client over max_client_conn "is given 1 s for its packet" and then told
 * 53300.  One that starts direct TLS (0x16) and stalls must not hold on until
 * client_login_timeout either (it was: the grace was the timeout of the login reader
 * that direct TLS stops): the grace is the same whatever its first byte.  (0x16 alone,
 * and a whole handshake with no startup packet after it: 53300 inside TLS.)
 */
Test(attack16, direct_tls_over_max_client_conn_gets_the_grace_only, .timeout = 90)
{
	struct h_corral *c = start_tls("max_client_conn = 2\nclient_login_timeout = 30\n"
				       "auth_type = trust\n");
	PGconn *a = h_connect_bench(c), *b = h_connect_bench(c);
	h_expect_value(a, "SELECT 1", "1");
	h_expect_value(b, "SELECT 1", "1");

	int plain = h_tcp_connect(c->port);
	double sp = seconds_to_close(plain, 10);
	close(plain);
	cr_expect(sp <= 4, "a silent plain socket over the limit was held %.1f s", sp);

	int fd = h_tcp_connect(c->port);
	h_send_all(fd, "\x16", 1);
	double s = seconds_to_close(fd, 10);
	close(fd);
	/* The grace, then closed: no handshake, no way to tell it anything. */
	cr_expect(s <= 4, "a lone 0x16 over max_client_conn was held %.1f s (plain: %.1f s)", s,
		  sp);

	/* 100 at once: past the 64 held per worker the oldest is refused at once, and a
	 * refusal in mid-handshake must close it, not leave it open outside every count. */
	enum { MANY = 100 };
	int fds[MANY];
	for (int i = 0; i < MANY; i++) {
		fds[i] = h_tcp_connect(c->port);
		h_send_all(fds[i], "\x16", 1);
	}
	double m0 = h_now();
	int late = 0;
	for (int i = 0; i < MANY; i++) {
		if (seconds_to_close(fds[i], 10) > 10)
			late++;
		close(fds[i]);
	}
	cr_expect_eq(late, 0, "%d of %d refused direct TLS sockets still open after %.1f s", late,
		     MANY, h_now() - m0);

	struct tls_raw t;
	bool hs = tls_raw_connect(&t, c->port, false, TLS_RAW_ALPN_PG, sizeof(TLS_RAW_ALPN_PG) - 1);
	double t0 = h_now();
	unsigned char buf[2048];
	size_t len = 0;
	bool closed = false;
	struct timeval tv = {.tv_sec = 10};
	if (hs) {
		setsockopt(t.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)tls_raw_read_until(&t, buf, sizeof(buf), &len, 'E', &closed);
	}
	double s2 = h_now() - t0;
	char state[6] = "", text[256] = "";
	cr_expect(!hs || (h_parse_error(buf, len, state, text, sizeof(text)) &&
			  strcmp(state, "53300") == 0),
		  "want 53300 inside TLS: %s %s", state, text);
	cr_expect(!hs || s2 <= 4,
		  "a direct TLS client with no startup packet over the limit was "
		  "held %.1f s",
		  s2);
	tls_raw_close(&t);

	PQfinish(a);
	PQfinish(b);
	cr_expect(h_corral_alive(c));
	h_corral_stop(c);
}
