#include "proxy/client_tls.h"

#include <limits.h>

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include "common/stream.h"
#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/tls_protocols.h"
#include "proxy/client.h"
#include "proxy/config_store.h"
#include "common/stream.h"
#include "proxy/worker.h"

/* ---- the SSL_CTX ---------------------------------------------------------------- */

struct ctx_build {
	const struct corral_config *cfg;
	char *err;
	size_t errlen;
};

/* "FILE:LINE: KEY: why", the last OpenSSL error appended when there is one. */
static bool build_fail(struct ctx_build *b, int line, const char *key, const char *why)
{
	char ssl_err[256] = "";
	unsigned long e = ERR_peek_last_error();
	if (e) {
		strcpy(ssl_err, " (");
		ERR_error_string_n(e, ssl_err + 2, sizeof(ssl_err) - 3);
		strcat(ssl_err, ")");
	}
	ERR_clear_error();
	if (line > 0)
		snprintf(b->err, b->errlen, "%s:%d: %s: %s%s", b->cfg->path, line, key, why,
			 ssl_err);
	else
		snprintf(b->err, b->errlen, "%s: %s: %s%s", b->cfg->path, key, why, ssl_err);
	return false;
}

/* OpenSSL's own messages for a missing file are obscure: look first, say it plainly. */
static bool readable(struct ctx_build *b, int line, const char *key, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f) {
		fclose(f);
		return true;
	}
	char why[600];
	snprintf(why, sizeof(why), "cannot open \"%s\": %s", path, strerror(errno));
	return build_fail(b, line, key, why);
}

/* PgBouncer's set of versions as OpenSSL's range plus SSL_OP_NO_* for holes in it. */
static bool set_protocols(SSL_CTX *ctx, unsigned mask)
{
	static const struct {
		unsigned bit;
		int version;
		long no_op;
	} v[] = {
		{TLS_PROTO_1_0, TLS1_VERSION, SSL_OP_NO_TLSv1},
		{TLS_PROTO_1_1, TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
		{TLS_PROTO_1_2, TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
		{TLS_PROTO_1_3, TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
	};
	int lo = 0, hi = 0;
	long no = 0;
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		if (mask & v[i].bit) {
			if (!lo)
				lo = v[i].version;
			hi = v[i].version;
		} else {
			no |= v[i].no_op;
		}
	}
	SSL_CTX_set_options(ctx, no);
	return SSL_CTX_set_min_proto_version(ctx, lo) && SSL_CTX_set_max_proto_version(ctx, hi);
}

/* PgBouncer's (libusual's) names for cipher lists, so its client_tls_ciphers values
 * mean the same here; anything else is an OpenSSL cipher string. */
static const char *cipher_list(const char *value)
{
	static const struct {
		const char *name, *list;
	} alias[] = {
		{"default", "HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL"},
		{"secure", "HIGH+EECDH:HIGH+EDH:!SSLv3:!SHA384:!SHA256:!DSS:!aNULL"},
		{"compat", "HIGH:+3DES:!aNULL"},
		{"legacy", "HIGH:+3DES:!aNULL"},
		{"insecure", "ALL:!aNULL:!eNULL"},
		{"all", "ALL:!aNULL:!eNULL"},
		{"normal", "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+SHA384:+SHA256:+SSLv3:+EDH:+RSA:-3DES:"
			   "3DES+RSA:!CAMELLIA:!DSS:!aNULL"},
		{"fast", "HIGH+EECDH:HIGH+EDH:HIGH+RSA:+AES256:+SHA256:+SHA384:+SSLv3:+EDH:+RSA:"
			 "-3DES:3DES+RSA:!CAMELLIA:!DSS:!aNULL"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(alias); i++)
		if (strcasecmp(value, alias[i].name) == 0)
			return alias[i].list;
	return value;
}

/*
 * ALPN, as PostgreSQL 17's alpn_cb: a client that offers protocols must offer
 * "postgresql", else the handshake fails with a no_application_protocol alert (RFC
 * 7301).  One that offers none is not called here: fine after an SSLRequest, refused
 * after the handshake of a direct TLS connection (client_tls_alpn_used).  The list is
 * the client's bytes: walked with every length checked, not with SSL_select_next_proto
 * (CVE-2024-5535 was in its handling of odd lists).
 */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const char proto[] = "postgresql";
	unsigned int i = 0;
	while (i < inlen) {
		unsigned int n = in[i];
		if (n == 0 || n > inlen - i - 1)
			break; /* a malformed list offers nothing */
		if (n == sizeof(proto) - 1 && memcmp(in + i + 1, proto, n) == 0) {
			*out = in + i + 1; /* OpenSSL copies the selection */
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static bool configure(struct ctx_build *b, SSL_CTX *ctx)
{
	const struct client_tls_config *t = &b->cfg->client_tls;
	/* As PostgreSQL: no compression (CRIME), no renegotiation, no session cache (a
	 * resumed session would skip the client certificate check of verify-*). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Idle clients are most of a pooler's clients: no 34 KB of buffers each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (!set_protocols(ctx, t->protocols))
		return build_fail(b, 0, "client_tls_protocols", "OpenSSL refused the versions");
	if (t->ciphers && !SSL_CTX_set_cipher_list(ctx, cipher_list(t->ciphers)))
		return build_fail(b, t->ciphers_line, "client_tls_ciphers",
				  "OpenSSL knows no cipher in this list");

	if (!readable(b, t->cert_line, "client_tls_cert_file", t->cert_file) ||
	    !readable(b, t->key_line, "client_tls_key_file", t->key_file))
		return false;
	/* The key first: loaded after the certificate, OpenSSL would refuse a key that does
	 * not match it as unreadable; this way the mismatch is found below, and said so. */
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1)
		return build_fail(b, t->key_line, "client_tls_key_file",
				  "not a PEM private key (an encrypted key is not supported)");
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1)
		return build_fail(b, t->cert_line, "client_tls_cert_file",
				  "not a PEM certificate (chain)");
	if (SSL_CTX_check_private_key(ctx) != 1)
		return build_fail(b, t->key_line, "client_tls_key_file",
				  "does not match the certificate of client_tls_cert_file");

	if (!t->ca_file)
		return true;
	if (!readable(b, t->ca_line, "client_tls_ca_file", t->ca_file))
		return false;
	if (SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1)
		return build_fail(b, t->ca_line, "client_tls_ca_file", "not PEM certificates");
	if (t->sslmode < CLIENT_TLS_VERIFY_CA)
		return true; /* PgBouncer: below verify-ca a client certificate is not asked for */
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca_file);
	if (!names)
		return build_fail(b, t->ca_line, "client_tls_ca_file", "no CA names in it");
	SSL_CTX_set_client_CA_list(ctx, names);
	/* verify-full is verify-ca for clients, as in PgBouncer. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return true;
}

bool client_tls_ctx_build(const struct corral_config *cfg, SSL_CTX **out, char *err, size_t errlen)
{
	*out = NULL;
	if (cfg->client_tls.sslmode == CLIENT_TLS_DISABLE)
		return true;
	struct ctx_build b = {cfg, err, errlen};
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return build_fail(&b, 0, "client_tls_sslmode", "cannot make an SSL_CTX");
	if (!configure(&b, ctx)) {
		SSL_CTX_free(ctx);
		return false;
	}
	*out = ctx;
	return true;
}

/* ---- a client's handshake ------------------------------------------------------- */

/* c's stream goes on through OpenSSL, in accepting state; false (c closed) when
 * OpenSSL cannot start. */
static bool take_over(struct client *c, SSL_CTX *ctx)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl || !stream_accept_tls(c->io, ssl)) {
		client_close(c, "could not start TLS");
		return false;
	}
	return true;
}

bool client_tls_accept(struct client *c, bool *closed)
{
	*closed = false;
	SSL_CTX *ctx = c->worker->snap->client_tls;
	if (!ctx) {
		stream_write(c->io, "N", 1); /* TLS off: plain text goes on */
		return NULL;
	}
	/* As PostgreSQL (CVE-2021-23214): bytes behind the SSLRequest came before the
	 * handshake, in plain text, perhaps from a man in the middle: never read them as
	 * if they had been encrypted. */
	if (stream_input_length(c->io) > 0) {
		client_fail(c, "08P01", "received unencrypted data after SSL request");
		*closed = true;
		return NULL;
	}
	/* 'S' goes out on the plain socket before OpenSSL takes the fd over; a fresh
	 * connection's socket buffer takes one byte (and an 'N' to a GSSENCRequest). */
	struct evbuffer *out = stream_output(c->io);
	evbuffer_add(out, "S", 1);
	stream_flush(c->io);
	bool tls = false;
	if (evbuffer_get_length(out) == 0)
		tls = take_over(c, ctx);
	else
		client_close(c, "could not start TLS");
	*closed = !tls;
	return tls;
}

enum client_tls_first client_tls_peek_first(const struct client *c)
{
	if (!c->worker->snap->client_tls)
		return TLS_FIRST_PLAIN; /* nothing to look for: the startup path reads it */
	unsigned char b;
	ssize_t n = recv(stream_fd(c->io), &b, 1, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return TLS_FIRST_NOTHING;
	if (n != 1)
		return TLS_FIRST_PLAIN; /* EOF or an error: the read finds it */
	/* A TLS record of type handshake (22); a startup packet's first byte is the top
	 * byte of its length, 0 for anything PostgreSQL accepts. */
	return b == 0x16 ? TLS_FIRST_HANDSHAKE : TLS_FIRST_PLAIN;
}

bool client_tls_accept_direct(struct client *c)
{
	return take_over(c, c->worker->snap->client_tls);
}

bool client_tls_alpn_used(const struct client *c)
{
	SSL *ssl = c->io ? stream_ssl(c->io) : NULL;
	const unsigned char *proto = NULL;
	unsigned int len = 0;
	if (ssl)
		SSL_get0_alpn_selected(ssl, &proto, &len);
	return len > 0;
}

/*
 * RFC 5929 tls-server-end-point, as PostgreSQL's be_tls_get_certificate_hash: the
 * certificate hashed with its signature's hash algorithm, MD5 and SHA-1 taken as
 * SHA-256.  X509_get_signature_info also knows RSA-PSS.  A certificate whose signature
 * names no hash (Ed25519) has no binding: false, and PLUS is not offered.
 */
bool client_tls_end_point(const struct client *c, unsigned char *out, size_t cap, size_t *len)
{
	SSL *ssl = c->io ? stream_ssl(c->io) : NULL;
	X509 *cert = ssl ? SSL_get_certificate(ssl) : NULL;
	int md_nid = NID_undef;
	if (!cert || !X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL))
		return false;
	const EVP_MD *md = md_nid == NID_md5 || md_nid == NID_sha1 ? EVP_sha256()
								   : EVP_get_digestbynid(md_nid);
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!md || !X509_digest(cert, md, hash, &n) || n > cap)
		return false;
	memcpy(out, hash, n);
	*len = n;
	return true;
}

bool client_tls_active(const struct client *c)
{
	return c->io && stream_ssl(c->io) != NULL;
}

bool client_tls_in_handshake(const struct client *c)
{
	SSL *ssl = c->io ? stream_ssl(c->io) : NULL;
	return ssl && !SSL_is_init_finished(ssl);
}

bool client_tls_peer_cn(const struct client *c, char *out, size_t cap)
{
	SSL *ssl = c->io ? stream_ssl(c->io) : NULL;
	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return false; /* none asked (below verify-ca) or none sent */
	bool ok = false;
	X509_NAME *subject = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	const ASN1_STRING *cn = i < 0 ? NULL
				      : X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
	if (cn) {
		size_t n = (size_t)ASN1_STRING_length(cn);
		const unsigned char *d = ASN1_STRING_get0_data(cn);
		/* As PostgreSQL: a NUL inside the name would let "admin\0.evil" pass as "admin". */
		if (n < cap && !memchr(d, 0, n)) {
			memcpy(out, d, n);
			out[n] = '\0';
			ok = true;
		}
	}
	X509_free(cert);
	return ok;
}

bool client_tls_write_now(struct client *c)
{
	SSL *ssl = c->io ? stream_ssl(c->io) : NULL;
	if (!ssl || !SSL_is_init_finished(ssl))
		return false;
	struct evbuffer *out = stream_output(c->io);
	evbuffer_unfreeze(out, 1);
	/* From the front of the output, as libevent would have: a write it left half done
	 * (SSL_ERROR_WANT_WRITE) is retried with the same bytes first, as SSL requires. */
	while (evbuffer_get_length(out) > 0) {
		size_t len = evbuffer_get_contiguous_space(out);
		const unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)len);
		ERR_clear_error();
		int n = SSL_write(ssl, p, len > INT_MAX ? INT_MAX : (int)len);
		if (n <= 0)
			break; /* the socket is full or the session broken: best effort */
		if (evbuffer_drain(out, (size_t)n) != 0)
			break;
	}
	bool all = evbuffer_get_length(out) == 0;
	evbuffer_freeze(out, 1);
	return all;
}

const char *client_tls_describe(const struct client *c, char *buf, size_t len)
{
	SSL *ssl = c->io ? stream_ssl(c->io) : NULL;
	if (!ssl || !SSL_is_init_finished(ssl))
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%s/%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	return buf;
}

const char *client_tls_error(const struct client *c, char *buf, size_t len)
{
	unsigned long e = c->io ? stream_tls_error(c->io) : 0;
	if (!e)
		snprintf(buf, len, "TLS connection failed");
	else
		ERR_error_string_n(e, buf, len);
	return buf;
}
