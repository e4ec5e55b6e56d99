/*
 * corral's own non-blocking server login, for SCRAM pass-through (DESIGN.md §5):
 * libpq 15 cannot log in with SCRAM keys instead of a password, so this speaks the
 * startup protocol itself on the worker's event loop: connect (TCP or Unix socket, as
 * the database line says), SSLRequest and an OpenSSL handshake per its sslmode,
 * StartupMessage, SCRAM-SHA-256 from the client's keys (the server's signature is
 * checked: a server that does not know the verifier is refused), then ParameterStatus
 * and BackendKeyData up to ReadyForQuery.  It ends in pool_login_done like a libpq
 * login; the server has s->raw instead of s->conn from then on.
 */
#ifndef CORRAL_POOL_SERVER_LOGIN_RAW_H
#define CORRAL_POOL_SERVER_LOGIN_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/macros.h"
#include "pool/scram_client.h"

struct server;
struct server_raw;

/* What a pass-through login answers the server with: SCRAM keys from a client's
 * proof, and/or the auth file's md5 hash ("md5" + 32 hex), which is as good as the
 * password for md5 authentication.  Secrets: memory only, OPENSSL_cleanse'd. */
struct login_secret {
	bool have_scram;
	struct scram_keys scram;
	bool have_md5;
	char md5[36];
};

/*
 * Starts the login of s (on its pool's login list) with the database line's libpq
 * keywords and values (NULL-terminated) and the user's secret (copied).  False with err
 * when it cannot start: a keyword it cannot honour (several hosts, sslcrl, ...), no
 * socket; the caller then ends the login (pool_login_done).
 */
bool server_login_raw_start(struct server *s, const char *const *keys, const char *const *vals,
			    const struct login_secret *sec, char *err, size_t errlen) WARN_UNUSED;

/* The socket (-1 if none yet), and the SSL object (NULL: plain) once logged in. */
int server_raw_fd(const struct server_raw *raw);
void *server_raw_ssl(const struct server_raw *raw);

/* Where and how to send a CancelRequest for the backend (no TLS, as libpq 15 does). */
struct server_raw_cancel {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint32_t pid, key;
};
bool server_raw_cancel_target(const struct server_raw *raw, struct server_raw_cancel *out);
/* Sends it and waits for the server to close the connection: blocking, for the cancel
 * thread (pool/cancel.c) only; at most a few seconds. */
bool server_raw_cancel_send(const struct server_raw_cancel *c);

/* Sends Terminate if it can without blocking, closes the socket, frees everything
 * (the keys cleansed).  The bufferevent must be gone already (server_detach). */
void server_raw_free(struct server_raw *raw);

#endif
