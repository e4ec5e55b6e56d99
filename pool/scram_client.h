/*
 * SCRAM-SHA-256 client side from keys, not a password (SCRAM pass-through, DESIGN.md
 * §5): a client that proved itself to corral against a stored verifier gave away its
 * ClientKey (proof XOR HMAC(StoredKey, AuthMessage)); with the verifier's salt,
 * iterations and ServerKey that is all a SCRAM client needs to log in to a server
 * that stores the same verifier.  Pure computation, no I/O; no channel binding.
 */
#ifndef CORRAL_POOL_SCRAM_CLIENT_H
#define CORRAL_POOL_SCRAM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define SCRAM_CLIENT_KEY_LEN 32
#define SCRAM_CLIENT_MAX_SALT 64
/* Base64 of 18 random bytes, as libpq's nonce. */
#define SCRAM_CLIENT_NONCE_LEN 24

/* A user's SCRAM keys, secrets all of them: kept in memory only, OPENSSL_cleanse'd. */
struct scram_keys {
	int iterations;
	uint8_t salt[SCRAM_CLIENT_MAX_SALT];
	size_t salt_len;
	uint8_t client_key[SCRAM_CLIENT_KEY_LEN];
	uint8_t stored_key[SCRAM_CLIENT_KEY_LEN];
	uint8_t server_key[SCRAM_CLIENT_KEY_LEN];
};

/* The keys a password gives with this salt (PBKDF2, then HMACs): tests and tools. */
bool scram_keys_from_password(const char *password, const uint8_t *salt, size_t salt_len,
			      int iterations, struct scram_keys *out) WARN_UNUSED;

/* One client exchange: the messages the AuthMessage is made of.  Owned strings. */
struct scram_client {
	char nonce[SCRAM_CLIENT_NONCE_LEN + 1];
	char *client_first_bare; /* "n=<user>,r=<nonce>" */
	char *auth_message;      /* set by scram_client_final */
	/* Set by scram_client_final: the server-first's salt or iterations are not the
	 * keys' (the verifier corral has is not the server's; the proof will fail). */
	bool verifier_differs;
};

/*
 * Starts an exchange: *out is a malloc'd "n,,n=<user>,r=<nonce>" (PostgreSQL ignores the
 * user; libpq sends it empty).  nonce: NULL for 18 random bytes, or a test's.
 */
bool scram_client_first(struct scram_client *sc, const char *user, const char *nonce,
			char **out) WARN_UNUSED;

/*
 * The server-first message (AuthenticationSASLContinue data, len bytes, untrusted):
 * checks it (our nonce as prefix, salt, iterations) and makes *out, a malloc'd
 * "c=biws,r=<nonce>,p=<proof>".  False: malformed.
 */
bool scram_client_final(struct scram_client *sc, const struct scram_keys *keys,
			const char *server_first, size_t len, char **out) WARN_UNUSED;

/* The server-final message (AuthenticationSASLFinal data): true only if its "v=" is
 * HMAC(ServerKey, AuthMessage), i.e. the server knows the verifier too. */
bool scram_client_verify_server(const struct scram_client *sc, const struct scram_keys *keys,
				const char *server_final, size_t len) WARN_UNUSED;

void scram_client_free(struct scram_client *sc);

#endif
