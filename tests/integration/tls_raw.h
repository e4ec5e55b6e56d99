/*
 * A TLS client on a raw socket, for what libpq 15 cannot send: PostgreSQL 17's direct
 * TLS (the ClientHello as the first bytes, no SSLRequest), chosen ALPN lists, and
 * hand-made SCRAM messages inside TLS.  Blocking socket with 5 s timeouts both ways, so a
 * server that says nothing fails the test instead of hanging it.  The server's
 * certificate is not verified (the tests are about what comes after).
 */
#ifndef CORRAL_TESTS_TLS_RAW_H
#define CORRAL_TESTS_TLS_RAW_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* The wire-format ALPN list of PostgreSQL 17's libpq: one name, "postgresql". */
#define TLS_RAW_ALPN_PG "\x0apostgresql"

struct tls_raw {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	unsigned long err; /* the first OpenSSL error of a failed handshake, or 0 */
};

/*
 * Connects to 127.0.0.1:port and does the TLS handshake: directly (ssl_request false)
 * or after an SSLRequest answered 'S' (a test failure otherwise).  alpn: a wire-format
 * protocol list to offer, or NULL for none.  True when the handshake succeeded; either
 * way tls_raw_close frees t.
 */
bool tls_raw_connect(struct tls_raw *t, int port, bool ssl_request, const char *alpn,
		     size_t alpn_len);
/* The ALPN protocol the server selected ("" for none), into out. */
const char *tls_raw_alpn(const struct tls_raw *t, char *out, size_t cap);
/* Writes all of buf inside TLS; false if the connection is gone. */
bool tls_raw_send(struct tls_raw *t, const void *buf, size_t len);
/*
 * h_read_until_msg inside TLS: reads into buf (appending at *len) until a complete
 * message of type want is in it (true), or the peer closes (*closed), cap is reached or
 * 5 s pass.
 */
bool tls_raw_read_until(struct tls_raw *t, unsigned char *buf, size_t cap, size_t *len, char want,
			bool *closed);
/* A startup packet as bench to database bench, then messages up to ReadyForQuery (true),
 * or up to an ErrorResponse or the close (false); what came is in buf / *len. */
bool tls_raw_login(struct tls_raw *t, unsigned char *buf, size_t cap, size_t *len);
/* A startup packet as the tests' user to their database, then messages up to an
 * Authentication request (true: a password is asked); what came is in buf / *len. */
bool tls_raw_until_auth(struct tls_raw *t, unsigned char *buf, size_t cap, size_t *len);
void tls_raw_close(struct tls_raw *t);

#endif
