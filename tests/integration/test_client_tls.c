/*
 * TLS between clients and corral (client_tls_* of [corral]): libpq with sslmode=require
 * and verify-full gets TLS (PQsslInUse), a plain client under require is refused with
 * 28000, 20 MB values go both ways, 1000 TLS logins from 4 threads, client certificates under
 * verify-ca, cancel requests in plain text, GSSENCRequest still 'N', and `corral -t`
 * naming a bad key.  The certificates are made here with the openssl CLI: a CA, a
 * server certificate for localhost signed by it, a client certificate signed by it.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"
#include "tests/integration/tls_raw.h"

TestSuite(client_tls, H_SUITE);

/* [corral] lines for sslmode with DIR's server certificate (and CA). */
static char *tls_settings(const char *mode)
{
	return h_printf("client_tls_sslmode = %s\nclient_tls_cert_file = %s/server.crt\n"
			"client_tls_key_file = %s/server.key\nclient_tls_ca_file = %s/ca.crt\n",
			mode, H.dir, H.dir, H.dir);
}

/* corral with tls_settings(mode) and the [corral] lines extra (NULL: none), the
 * certificates already made. */
static struct h_corral *start_with(const char *mode, const char *extra)
{
	char *s = tls_settings(mode);
	char *settings = h_printf("%s%s", s, extra ? extra : "");
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, NULL);
	free(settings);
	free(s);
	return c;
}

static struct h_corral *start_tls(const char *mode)
{
	h_make_certs(true);
	return start_with(mode, NULL);
}

/* bench's conninfo for c with extra libpq keywords (a later keyword wins). */
static char *ci_with(const struct h_corral *c, const char *extra)
{
	char *base = h_conninfo(c, H.user, H.db, H.password);
	char *ci = h_printf("%s %s", base, extra);
	free(base);
	return ci;
}

static PGconn *connect_tls(const struct h_corral *c, const char *extra)
{
	char *ci = ci_with(c, extra);
	PGconn *conn = h_connect(c, ci);
	cr_expect_eq(PQsslInUse(conn), 1, "%s: not TLS", extra);
	free(ci);
	return conn;
}

Test(client_tls, require_serves_tls_and_refuses_plain_text, .timeout = 60)
{
	struct h_corral *c = start_tls("require");
	PGconn *conn = connect_tls(c, "sslmode=require");
	h_expect_value(conn, "select 'over tls'", "over tls");
	cr_expect_str_eq(PQsslAttribute(conn, "library"), "OpenSSL");
	PQfinish(conn);

	/* libpq's default, prefer, asks for TLS and gets it. */
	conn = connect_tls(c, "sslmode=prefer");
	PQfinish(conn);

	/* Plain text: FATAL 28000 that says why. */
	char *ci = ci_with(c, "sslmode=disable"), *err = NULL;
	conn = h_try_connect(ci, 10, &err);
	cr_expect_null(conn, "a plain client got in under client_tls_sslmode = require");
	cr_expect(err && strstr(err, "28000") && strstr(err, "client_tls_sslmode = require"),
		  "plain client's error: [%s]", err ? err : "");
	free(err);
	free(ci);

	/* An error inside TLS reaches the client before the close: a wrong password. */
	char *base = h_conninfo(c, H.user, H.db, "wrong");
	ci = h_printf("%s sslmode=require", base);
	conn = h_try_connect(ci, 10, &err);
	cr_expect(!conn && err && strstr(err, "28P01"), "wrong password over TLS: [%s]",
		  err ? err : "");
	free(err);
	free(ci);
	free(base);
	h_corral_stop(c);
}

Test(client_tls, verify_full_client_with_the_ca, .timeout = 60)
{
	struct h_corral *c = start_tls("prefer");
	char *extra = h_printf("host=localhost sslmode=verify-full sslrootcert=%s/ca.crt", H.dir);
	PGconn *conn = connect_tls(c, extra);
	h_expect_value(conn, "select 1 + 1", "2");
	PQfinish(conn);
	free(extra);

	/* prefer also lets a plain client in. */
	char *ci = ci_with(c, "sslmode=disable");
	conn = h_connect(c, ci);
	cr_expect_eq(PQsslInUse(conn), 0);
	h_expect_value(conn, "select 'plain'", "plain");
	PQfinish(conn);
	free(ci);
	h_corral_stop(c);
}

Test(client_tls, twenty_megabytes_each_way, .timeout = 120)
{
	struct h_corral *c = start_tls("require");
	PGconn *conn = connect_tls(c, "sslmode=require");
	h_expect_value(conn, "select length(repeat('x', 20000000))", "20000000");
	PGresult *res = h_exec_t(conn, "select repeat('x', 20000000)", 60);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
	cr_expect_eq(PQgetlength(res, 0, 0), 20000000);
	const char *v = PQgetvalue(res, 0, 0);
	cr_expect(v[0] == 'x' && v[19999999] == 'x');
	PQclear(res);
	/* A 20 MB Bind parameter in, and the same value back in one DataRow. */
	h_big_value_round_trip(conn, 20u * 1000 * 1000, 0x9e3779b97f4a7c15ull);
	h_expect_value(conn, "select 'still fine'", "still fine");
	PQfinish(conn);
	h_corral_stop(c);
}

/* 1000 TLS logins (the count) from 4 threads. */
#define LOGIN_THREADS 4
#define LOGINS_PER_THREAD 250

struct login_run {
	const char *ci;
	int ok;
	char err[256];
};

static void *logins(void *arg)
{
	struct login_run *r = arg;
	for (int i = 0; i < LOGINS_PER_THREAD; i++) {
		PGconn *conn = PQconnectdb(r->ci);
		if (PQstatus(conn) == CONNECTION_OK && PQsslInUse(conn) == 1)
			r->ok++;
		else
			snprintf(r->err, sizeof(r->err), "%s", PQerrorMessage(conn));
		PQfinish(conn);
	}
	return NULL;
}

Test(client_tls, a_thousand_tls_logins, .timeout = 120)
{
	struct h_corral *c = start_tls("require");
	char *ci = ci_with(c, "sslmode=require");
	struct login_run runs[LOGIN_THREADS];
	pthread_t th[LOGIN_THREADS];
	for (int i = 0; i < LOGIN_THREADS; i++) {
		runs[i] = (struct login_run){.ci = ci};
		cr_assert_eq(pthread_create(&th[i], NULL, logins, &runs[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < LOGIN_THREADS; i++) {
		pthread_join(th[i], NULL);
		ok += runs[i].ok;
		cr_expect_eq(runs[i].ok, LOGINS_PER_THREAD,
			     "thread %d: %d of %d logins; last error: %s", i, runs[i].ok,
			     LOGINS_PER_THREAD, runs[i].err);
	}
	cr_expect_eq(ok, LOGIN_THREADS * LOGINS_PER_THREAD);
	free(ci);
	h_corral_stop(c);
}

Test(client_tls, verify_ca_wants_a_client_certificate, .timeout = 60)
{
	struct h_corral *c = start_tls("verify-ca");
	/* No certificate (the path names no file: libpq sends none). */
	char *extra = h_printf("sslmode=require sslcert=%s/none.crt sslkey=%s/none.key", H.dir,
			       H.dir);
	char *ci = ci_with(c, extra), *err = NULL;
	PGconn *conn = h_try_connect(ci, 10, &err);
	cr_expect_null(conn, "a client without a certificate got in under verify-ca");
	free(err);
	free(ci);
	free(extra);

	/* Plain text is refused as under require. */
	ci = ci_with(c, "sslmode=disable");
	conn = h_try_connect(ci, 10, &err);
	cr_expect(!conn && err && strstr(err, "28000"), "plain client: [%s]", err ? err : "");
	free(err);
	free(ci);

	extra = h_printf("sslmode=verify-full host=localhost sslrootcert=%s/ca.crt "
			 "sslcert=%s/client.crt sslkey=%s/client.key",
			 H.dir, H.dir, H.dir);
	conn = connect_tls(c, extra);
	h_expect_value(conn, "select 'with a certificate'", "with a certificate");
	PQfinish(conn);
	free(extra);
	h_corral_stop(c);
}

/* libpq's PQcancel sends its CancelRequest in plain text, TLS session or not. */
Test(client_tls, plain_cancel_request_cancels_a_tls_session, .timeout = 60)
{
	struct h_corral *c = start_tls("require");
	PGconn *conn = connect_tls(c, "sslmode=require");
	cr_assert(PQsendQuery(conn, "select pg_sleep(30)"));
	usleep(300 * 1000);
	PGcancel *cancel = PQgetCancel(conn);
	char errbuf[256];
	cr_assert(PQcancel(cancel, errbuf, sizeof(errbuf)), "PQcancel: %s", errbuf);
	PQfreeCancel(cancel);
	PGresult *res = h_results(conn, "the cancelled sleep", 10);
	cr_expect_str_eq(h_sqlstate(res), "57014");
	PQclear(res);
	h_expect_value(conn, "select 'after cancel'", "after cancel");
	PQfinish(conn);
	h_corral_stop(c);
}

/* On the wire: GSSENCRequest 'N', then SSLRequest 'S'; plain bytes behind an SSLRequest
 * are refused before any handshake. */
Test(client_tls, gssenc_refused_ssl_accepted, .timeout = 60)
{
	struct h_corral *c = start_tls("allow");
	unsigned char pkt[16];
	int fd = h_tcp_connect(c->port);
	h_request_packet(pkt, H_GSSENC_REQUEST_CODE);
	h_send_all(fd, pkt, 8);
	h_expect_byte(fd, 'N', "GSSENCRequest");
	h_request_packet(pkt, H_SSL_REQUEST_CODE);
	h_send_all(fd, pkt, 8);
	h_expect_byte(fd, 'S', "SSLRequest");
	close(fd);

	fd = h_tcp_connect(c->port);
	h_request_packet(pkt, H_SSL_REQUEST_CODE);
	h_request_packet(pkt + 8, H_PROTOCOL_3_0); /* plain text behind it, in one write */
	h_send_all(fd, pkt, 16);
	struct h_reply r;
	h_read_final_reply(fd, 5, &r);
	cr_expect(r.closed, "corral kept a connection that sent plain bytes after SSLRequest");
	cr_expect(r.len == 0 || r.buf[0] != 'S', "corral answered 'S' to a spoofable request");
	h_corral_stop(c);
}

/* corral -t on DIR/bad.ini: a non-zero exit and stderr naming key (and want, if set). */
static void expect_t_error(const char *settings, const char *key, const char *want)
{
	char *ini = h_path("bad.ini"), *users = h_path("users.txt");
	h_write_file(users, "\"bench\" \"secret\"\n");
	char *text = h_printf("[corral]\nlisten_port = %d\nauth_file = %s\n%s[databases]\n"
			      "bench = host=127.0.0.1 port=%d dbname=bench\n",
			      h_free_port(), users, settings, H.pgport);
	h_write_file(ini, text);
	struct h_cmd r = h_run(10, "%s -t -c %s", H.corral_bin, ini);
	cr_expect(r.status > 0 && r.status < 128, "%s: status %d", key, r.status);
	cr_expect(strstr(r.err, key) != NULL, "stderr should name %s: [%s]", key, r.err);
	if (want)
		cr_expect(strstr(r.err, want) != NULL, "stderr should say %s: [%s]", want, r.err);
	h_cmd_free(&r);
	free(text);
	free(users);
	free(ini);
}

Test(client_tls, config_check_names_the_key, .timeout = 60)
{
	h_make_certs(true);
	char *s = h_printf("client_tls_sslmode = require\nclient_tls_cert_file = %s/missing.crt\n"
			   "client_tls_key_file = %s/server.key\n",
			   H.dir, H.dir);
	expect_t_error(s, "client_tls_cert_file", "No such file");
	free(s);
	s = h_printf("client_tls_sslmode = require\nclient_tls_cert_file = %s/server.crt\n"
		     "client_tls_key_file = %s/client.key\n",
		     H.dir, H.dir);
	expect_t_error(s, "client_tls_key_file", "does not match");
	free(s);
	s = h_printf("client_tls_sslmode = verify-ca\nclient_tls_cert_file = %s/server.crt\n"
		     "client_tls_key_file = %s/server.key\n",
		     H.dir, H.dir);
	expect_t_error(s, "client_tls_ca_file", "required");
	free(s);
	s = h_printf("client_tls_sslmode = require\nclient_tls_cert_file = %s/server.crt\n"
		     "client_tls_key_file = %s/server.key\nclient_tls_ciphers = NO-SUCH-CIPHER\n",
		     H.dir, H.dir);
	expect_t_error(s, "client_tls_ciphers", "no cipher");
	free(s);
	expect_t_error("client_tls_sslmode = sometimes\n", "client_tls_sslmode", "verify-full");
	expect_t_error("client_tls_protocols = tlsv1.2,sslv3\n", "client_tls_protocols", "sslv3");

	/* And the good one passes. */
	s = tls_settings("verify-full");
	char *ini = h_path("good.ini"), *users = h_path("users.txt");
	char *text = h_printf("[corral]\nlisten_port = %d\nauth_file = %s\n%s"
			      "client_tls_protocols = tlsv1.2,tlsv1.3\nclient_tls_ciphers = fast\n",
			      h_free_port(), users, s);
	h_write_file(ini, text);
	struct h_cmd r = h_run(10, "%s -t -c %s", H.corral_bin, ini);
	cr_expect_eq(r.status, 0, "good TLS config: %s", r.err);
	h_cmd_free(&r);
	free(text);
	free(users);
	free(ini);
	free(s);
}

/* c's configuration file with from replaced by to, then SIGHUP; want: the log event the
 * reload must end with (reload_done or reload_refused). */
static void reload_with(const struct h_corral *c, const char *from, const char *to,
			const char *want)
{
	char *text = h_read_file(c->ini, NULL);
	cr_assert_not_null(text);
	char *at = strstr(text, from);
	cr_assert_not_null(at, "%s not in %s", from, c->ini);
	char *next = h_printf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	h_write_file(c->ini, next);
	int before = h_log_count(c, want);
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log_count(c, want, before + 1, 5.0), "no %s:\n%s", want,
		  h_corral_log_tail(c));
	free(next);
	free(text);
}

Test(client_tls, reload_changes_the_mode_for_new_clients, .timeout = 60)
{
	struct h_corral *c = start_tls("prefer");
	char *plain_ci = ci_with(c, "sslmode=disable");
	PGconn *plain = h_connect(c, plain_ci);
	PGconn *tls = connect_tls(c, "sslmode=require");

	/* A certificate that is not there: the reload is refused whole, TLS goes on. */
	reload_with(c, "server.crt", "gone.crt", "event=reload_refused");
	cr_expect(h_wait_log(c, "client_tls_cert_file", 1), "%s", h_corral_log_tail(c));
	reload_with(c, "gone.crt", "server.crt", "event=reload_done");

	reload_with(c, "client_tls_sslmode = prefer", "client_tls_sslmode = require",
		    "event=reload_done");
	/* Connected clients keep going, plain or not; a new plain one is refused. */
	h_expect_value(plain, "select 'plain still'", "plain still");
	h_expect_value(tls, "select 'tls still'", "tls still");
	char *err = NULL;
	PGconn *refused = h_try_connect(plain_ci, 10, &err);
	cr_expect(!refused && err && strstr(err, "28000"), "new plain client: [%s]",
		  err ? err : "");
	free(err);
	PGconn *again = connect_tls(c, "sslmode=require");
	PQfinish(again);
	PQfinish(tls);
	PQfinish(plain);
	free(plain_ci);
	h_corral_stop(c);
}

/* client_tls_protocols and _ciphers reach OpenSSL: TLS 1.2 only, PgBouncer's "fast". */
Test(client_tls, protocols_and_ciphers, .timeout = 60)
{
	h_make_certs(true);
	struct h_corral *c =
		start_with("require",
			   "client_tls_protocols = tlsv1.2\nclient_tls_ciphers = fast\n");
	PGconn *conn = connect_tls(c, "sslmode=require");
	cr_expect_str_eq(PQsslAttribute(conn, "protocol"), "TLSv1.2");
	h_expect_value(conn, "select 'tls 1.2'", "tls 1.2");
	PQfinish(conn);

	/* A client that wants TLS 1.3 at least finds no common version. */
	char *ci = ci_with(c, "sslmode=require ssl_min_protocol_version=TLSv1.3"), *err = NULL;
	conn = h_try_connect(ci, 10, &err);
	cr_expect_null(conn, "a TLS 1.3 client got in with client_tls_protocols = tlsv1.2");
	free(err);
	free(ci);
	h_corral_stop(c);
}

/* auth_type = hba: hostssl lines match TLS clients, hostnossl lines the others. */
Test(client_tls, hba_hostssl_and_hostnossl, .timeout = 60)
{
	h_make_certs(true);
	char *hba = h_path("hba.conf");
	h_write_file(hba, "hostssl all all 127.0.0.1/32 trust\n"
			  "hostnossl all all 127.0.0.1/32 reject\n");
	char *settings = h_printf("auth_type = hba\nauth_hba_file = %s\n", hba);
	struct h_corral *c = start_with("prefer", settings);

	/* TLS and no password: the hostssl trust line. */
	char *base = h_conninfo(c, H.user, H.db, NULL);
	char *ci = h_printf("%s sslmode=require", base);
	PGconn *conn = h_connect(c, ci);
	cr_expect_eq(PQsslInUse(conn), 1);
	h_expect_value(conn, "select 'hostssl'", "hostssl");
	PQfinish(conn);
	free(ci);

	/* Plain text: the hostnossl reject line, in PostgreSQL's words. */
	ci = h_printf("%s sslmode=disable", base);
	char *err = NULL;
	conn = h_try_connect(ci, 10, &err);
	cr_expect(!conn && err && strstr(err, "pg_hba.conf rejects connection") &&
			  strstr(err, "no encryption"),
		  "plain client: [%s]", err ? err : "");
	free(err);
	free(ci);
	free(base);
	free(settings);
	free(hba);
	h_corral_stop(c);
}

/* hba `cert`: the verified certificate's common name (bench) must be the user name;
 * no password is asked.  Without a certificate corral checked (below verify-ca none
 * is asked for), PostgreSQL's "connection requires a valid client certificate". */
Test(client_tls, hba_cert_matches_common_name, .timeout = 60)
{
	h_make_certs(true);
	char *hba = h_path("hba.conf");
	h_write_file(hba, "hostssl all all 127.0.0.1/32 cert\n");
	const char *modes[] = {"verify-ca", "require"};
	char *settings = h_printf("auth_type = hba\nauth_hba_file = %s\n", hba);
	for (size_t m = 0; m < 2; m++) {
		struct h_corral *c = start_with(modes[m], settings);
		char *certs = h_printf("sslmode=require sslcert=%s/client.crt sslkey=%s/client.key",
				       H.dir, H.dir);
		char *base = h_conninfo(c, H.user, H.db, NULL);
		char *ci = h_printf("%s %s", base, certs), *err = NULL;
		PGconn *conn = h_try_connect(ci, 10, &err);
		if (m == 0) {
			cr_expect_str_eq(H.user, "bench", "the client certificate's CN is bench");
			cr_expect_not_null(conn, "bench with its certificate: [%s]",
					   err ? err : "");
			if (conn)
				h_expect_value(conn, "select 'by certificate'", "by certificate");
		} else {
			cr_expect(!conn && err && strstr(err, "28000") &&
					  strstr(err,
						 "connection requires a valid client certificate"),
				  "no certificate asked under require: [%s]", err ? err : "");
		}
		if (conn)
			PQfinish(conn);
		free(err);
		err = NULL;
		free(ci);
		free(base);

		/* Another user with bench's certificate. */
		base = h_conninfo(c, "someone_else", H.db, NULL);
		ci = h_printf("%s %s", base, certs);
		conn = h_try_connect(ci, 10, &err);
		const char *want = m == 0 ? "certificate authentication failed for user "
					    "\"someone_else\""
					  : "connection requires a valid client certificate";
		cr_expect(!conn && err && strstr(err, "28000") && strstr(err, want),
			  "%s, someone_else with bench's certificate: [%s]", modes[m],
			  err ? err : "");
		if (conn)
			PQfinish(conn);
		free(err);
		free(ci);
		free(base);
		free(certs);
		h_corral_stop(c);
	}
	free(settings);
	free(hba);
}

/*
 * SHOW CLIENTS' tls column names the protocol and cipher of a TLS client
 * ("TLSv1.3/TLS_AES_256_GCM_SHA384", as PgBouncer's does) and is empty for a plain one;
 * and at shutdown (shutdown_timeout reached) a TLS client gets its FATAL 57P01 inside
 * TLS, as libpq reads it, not raw bytes in the TLS stream.
 */
Test(client_tls, show_clients_tls_and_57p01_through_tls_at_shutdown, .timeout = 60)
{
	h_make_certs(true);
	struct h_corral *c = start_with("allow", "admin_users = bench\nshutdown_timeout = 1\n");
	PGconn *tls = connect_tls(c, "sslmode=require");
	h_expect_value(tls, "select 'tls'", "tls");
	char *ci = ci_with(c, "sslmode=disable application_name=plain-one");
	PGconn *plain = h_connect(c, ci);
	free(ci);
	cr_expect_eq(PQsslInUse(plain), 0);
	ci = ci_with(c, "sslmode=disable dbname=corral");
	PGconn *admin = h_connect(c, ci);
	free(ci);

	PGresult *r = h_exec(admin, "SHOW CLIENTS");
	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	int tls_col = PQfnumber(r, "tls"), app_col = PQfnumber(r, "application_name"),
	    db_col = PQfnumber(r, "database");
	cr_assert(tls_col >= 0 && app_col >= 0 && db_col >= 0);
	int seen_tls = 0, seen_plain = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *v = PQgetvalue(r, i, tls_col);
		if (strcmp(PQgetvalue(r, i, db_col), "bench") != 0)
			continue;
		if (strcmp(PQgetvalue(r, i, app_col), "plain-one") == 0) {
			seen_plain++;
			cr_expect_str_eq(v, "", "a plain client's tls column");
		} else {
			seen_tls++;
			char want[160];
			snprintf(want, sizeof want, "%s/%s", PQsslAttribute(tls, "protocol"),
				 PQsslAttribute(tls, "cipher"));
			cr_expect_str_eq(v, want, "the TLS client's tls column");
		}
	}
	cr_expect_eq(seen_tls, 1);
	cr_expect_eq(seen_plain, 1);
	PQclear(r);
	PQfinish(admin);
	PQfinish(plain);

	h_corral_sigterm_wait(c);
	h_expect_admin_terminated(tls, "the TLS client");
	PQfinish(tls);
}

/* A cleartext password message ('p') into buf; returns its length. */
static size_t password_msg(unsigned char *buf, const char *password)
{
	size_t n = strlen(password) + 1;
	buf[0] = 'p';
	uint32_t len = htonl((uint32_t)(4 + n));
	memcpy(buf + 1, &len, 4);
	memcpy(buf + 5, password, n);
	return 5 + n;
}

/*
 * While a wrong password's answer is held back (past auth_failure_delay), the client's
 * further input is not read, over TLS too: a second password sent after the wrong one
 * (the right one here) is no second guess on the same connection, and the answer still
 * waits its second.
 */
Test(client_tls, no_second_guess_while_a_failure_waits, .timeout = 60)
{
	h_make_certs(true);
	char *hba = h_path("hba_password.conf");
	h_write_file(hba, "hostssl all all 127.0.0.1/32 password\n");
	char *extra = h_printf("auth_type = hba\nauth_hba_file = %s\nauth_failure_delay = 1\n"
			       "auth_failure_max = 100\n",
			       hba);
	struct h_corral *c = start_with("require", extra);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct tls_raw t;
		cr_assert(tls_raw_connect(&t, c->port, true, NULL, 0), "TLS handshake");
		unsigned char buf[4096];
		size_t n, len;
		bool closed = false;
		cr_assert(tls_raw_until_auth(&t, buf, sizeof(buf), &len), "asked for a password");
		/* The wrong password, then (0.2 s later, a read of its own) the right one. */
		n = password_msg(buf, "not-the-password");
		double t0 = h_now();
		cr_assert(tls_raw_send(&t, buf, n));
		if (attempt == 1) {
			usleep(200 * 1000);
			n = password_msg(buf, H.password);
			cr_assert(tls_raw_send(&t, buf, n));
		}
		len = 0;
		(void)tls_raw_read_until(&t, buf, sizeof(buf), &len, 'E', &closed);
		double took = h_now() - t0;
		char type;
		const unsigned char *body;
		size_t body_len;
		cr_assert(h_msg(buf, len, &type, &body, &body_len) > 0, "no answer (%zu bytes)",
			  len);
		cr_expect_eq(type, 'E', "attempt %d: the first answer is '%c', not the failure",
			     attempt + 1, type);
		cr_expect(memmem(body, body_len, "28P01", 5) != NULL, "attempt %d: not 28P01",
			  attempt + 1);
		if (attempt == 1)
			cr_expect_geq(took, 0.9, "the held-back failure came after %.2f s", took);
		tls_raw_close(&t);
	}
	cr_expect_eq(h_log_count(c, "event=client_login"), 0, "a guess behind a failure got in");
	free(extra);
	free(hba);
	h_corral_stop(c);
}
