/*
 * TLS on the listener: client_tls_* of [corral] (README "TLS for clients").  A client
 * asks with an SSLRequest; when TLS is on it is answered 'S' and its stream goes on
 * through an OpenSSL bufferevent on the same fd (common/stream.h), through which everything
 * after (handshake, startup packet, login, relay) goes.  The SSL_CTX is built when the
 * configuration is read and lives in its snapshot, so RELOAD swaps certificates for
 * the clients that connect afterwards; connected ones keep theirs (SSL_new holds a
 * reference to its SSL_CTX).
 */
#ifndef CORRAL_PROXY_CLIENT_TLS_H
#define CORRAL_PROXY_CLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "common/macros.h"
#include "pool/config.h"

struct client;

/*
 * The SSL_CTX cfg->client_tls describes into *out: NULL with client_tls_sslmode =
 * disable.  False with "FILE:LINE: KEY: why" in err when a file cannot be read, the key
 * does not match the certificate or OpenSSL refuses a setting.
 */
bool client_tls_ctx_build(const struct corral_config *cfg, SSL_CTX **out, char *err,
			  size_t errlen) WARN_UNUSED;

/*
 * c's SSLRequest has been taken from its input: answers 'N' when TLS is off, else 'S'
 * and starts the handshake: c->io is a TLS stream from then on, callbacks and limits
 * kept.  False when TLS is off or c was ended; *closed says which.
 */
bool client_tls_accept(struct client *c, bool *closed);

/*
 * PostgreSQL 17's direct TLS (sslnegotiation=direct): a client may open with its TLS
 * ClientHello instead of an SSLRequest.  Looked at (MSG_PEEK, nothing taken from the
 * socket) before the first read, only when client TLS is on: TLS_FIRST_NOTHING while
 * no byte has come, TLS_FIRST_PLAIN for anything else (TLS off, EOF, errors included).
 */
enum client_tls_first { TLS_FIRST_NOTHING, TLS_FIRST_PLAIN, TLS_FIRST_HANDSHAKE };
enum client_tls_first client_tls_peek_first(const struct client *c);

/* The handshake starts at once on the ClientHello still in the socket: as
 * client_tls_accept, without the 'S'.  False: c was closed. */
bool client_tls_accept_direct(struct client *c);

/* After the handshake: the client offered ALPN and "postgresql" was selected (a client
 * offering ALPN without it fails the handshake: no_application_protocol). */
bool client_tls_alpn_used(const struct client *c);

/* The tls-server-end-point channel binding data (RFC 5929) of c's TLS session: the
 * hash of corral's certificate into out; false when there is none. */
bool client_tls_end_point(const struct client *c, unsigned char *out, size_t cap, size_t *len);

/* True for a client whose stream is a TLS one. */
bool client_tls_active(const struct client *c);
/* c is TLS and its handshake has not finished (a direct TLS client still in it). */
bool client_tls_in_handshake(const struct client *c);

/* The common name of the certificate c presented and corral verified against
 * client_tls_ca_file, into out (NUL-terminated); false when there is none (no TLS, no
 * certificate asked or sent, or a name that does not fit or holds a NUL). */
bool client_tls_peer_cn(const struct client *c, char *out, size_t cap);

/* Shutdown, the loop over: writes what c's TLS stream holds for it (a FATAL put
 * last) through its SSL session at once, as far as the socket takes it without
 * waiting; true if all of it went.  False at once for a client without TLS. */
bool client_tls_write_now(struct client *c);
/* PgBouncer's SHOW CLIENTS tls column: "TLSv1.3/TLS_AES_256_GCM_SHA384" once the
 * handshake is done, "" for a plain client. */
const char *client_tls_describe(const struct client *c, char *buf, size_t len);
/* Why the TLS stream of c failed, for the log (into buf). */
const char *client_tls_error(const struct client *c, char *buf, size_t len);

#endif
