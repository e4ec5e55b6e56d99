/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, as PostgreSQL speaks it: no
 * channel binding ("n,," or "y,,"), the user name in the client-first message is
 * ignored (PostgreSQL uses the startup packet's user).  Pure computation, no I/O.
 */
#ifndef CORRAL_PROXY_AUTH_SCRAM_H
#define CORRAL_PROXY_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define SCRAM_KEY_LEN 32
#define SCRAM_MAX_SALT 64
#define SCRAM_DEFAULT_ITERATIONS 4096

struct scram_secret {
	int iterations;
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_len;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* Parses "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>". */
bool scram_parse_secret(const char *text, struct scram_secret *out) WARN_UNUSED;
/* Derives the verifier PostgreSQL would store for password with this salt. */
bool scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
				int iterations, struct scram_secret *out) WARN_UNUSED;

enum scram_step { SCRAM_WANT_CLIENT_FIRST, SCRAM_WANT_CLIENT_FINAL, SCRAM_DONE };

/* One exchange.  Owns its strings; scram_exchange_free releases them. */
struct scram_exchange {
	enum scram_step step;
	struct scram_secret secret;
	bool mock; /* unknown user: go through the motions, always fail */
	char *client_first_bare;
	char *server_first;
	char *nonce;     /* client nonce + server nonce */
	char cbind_flag; /* gs2 flag of client-first, 'n' or 'y': fixes final's c= */
	/* The client's ClientKey, recovered from a proof that was right (SCRAM pass-through,
	 * pool/scram_client.h); cleansed by scram_exchange_free. */
	bool have_client_key;
	uint8_t client_key[SCRAM_KEY_LEN];
};

/*
 * Starts an exchange against secret, or with secret == NULL a mock exchange for an
 * unknown user (a salt derived from mock_seed, so the reply does not reveal that the
 * user does not exist), which always fails at the final step.
 */
void scram_exchange_init(struct scram_exchange *ex, const struct scram_secret *secret,
			 const char *mock_seed);
void scram_exchange_free(struct scram_exchange *ex);

/*
 * Handles the client-first message (the SASLInitialResponse data).  server_nonce is
 * the server's nonce part, or NULL to generate 18 random bytes (base64); tests pass
 * RFC 7677's.  On success *server_first is a malloc'd NUL-terminated string to send
 * in AuthenticationSASLContinue.  False: malformed message (a protocol violation).
 */
bool scram_handle_client_first(struct scram_exchange *ex, const char *msg, size_t len,
			       const char *server_nonce, char **server_first) WARN_UNUSED;

enum scram_result { SCRAM_MALFORMED, SCRAM_WRONG_PROOF, SCRAM_OK };

/*
 * Handles the client-final message.  SCRAM_OK: the proof is right and *server_final
 * is a malloc'd "v=..." for AuthenticationSASLFinal.  SCRAM_WRONG_PROOF: the password
 * is wrong (or the exchange is a mock).  SCRAM_MALFORMED: a protocol violation,
 * including a nonce that does not match.
 */
enum scram_result scram_handle_client_final(struct scram_exchange *ex, const char *msg, size_t len,
					    char **server_final) WARN_UNUSED;

/* After SCRAM_OK: the client's ClientKey in out (the caller cleanses it); false before. */
bool scram_exchange_client_key(const struct scram_exchange *ex,
			       uint8_t out[SCRAM_KEY_LEN]) WARN_UNUSED;

#endif
