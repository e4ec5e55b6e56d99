/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, as PostgreSQL speaks it: the user
 * name in the client-first message is ignored (PostgreSQL uses the startup packet's
 * user).  Over TLS SCRAM-SHA-256-PLUS is offered too, with channel binding
 * tls-server-end-point (RFC 5929): the caller gives the hash of its certificate.
 * Pure computation, no I/O.
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
/* EVP_MAX_MD_SIZE: the longest certificate hash tls-server-end-point can bind to. */
#define SCRAM_CBIND_MAX 64

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
	char cbind_flag; /* gs2 flag of client-first, 'n', 'y' or 'p': fixes final's c= */
	/* Channel binding: offered over TLS (scram_offer_channel_binding), in use when the
	 * client chose SCRAM-SHA-256-PLUS; cbind_data is the server certificate's hash. */
	bool cbind_offered, cbind_in_use;
	uint8_t cbind_data[SCRAM_CBIND_MAX];
	size_t cbind_len;
	/* Set by a failed step that PostgreSQL words otherwise than "malformed SCRAM
	 * message" (scram_failure). */
	const char *fail_sqlstate, *fail_message;
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
 * The connection is TLS: offers SCRAM-SHA-256-PLUS with tls-server-end-point binding to
 * cert_hash (RFC 5929's hash of the server certificate).  After scram_exchange_init,
 * before the client's first message; false (nothing offered) if len is 0 or too long.
 */
bool scram_offer_channel_binding(struct scram_exchange *ex, const uint8_t *cert_hash, size_t len);

/* The AuthenticationSASL mechanism list ("SCRAM-SHA-256-PLUS" first when offered, as
 * PostgreSQL), NUL-separated with an empty name at its end; *len counts every byte. */
const char *scram_mechanisms(const struct scram_exchange *ex, size_t *len);

/* The mechanism of the SASLInitialResponse: false if it is not one offered (PostgreSQL:
 * "client selected an invalid SASL authentication mechanism"). */
bool scram_select_mechanism(struct scram_exchange *ex, const char *mechanism) WARN_UNUSED;

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

/*
 * After a step refused a message: the message and SQLSTATE PostgreSQL sends for it
 * ("SCRAM channel binding negotiation error" 08P01, "SCRAM channel binding check failed"
 * 28000, ...), "malformed SCRAM message" 08P01 for the rest.
 */
const char *scram_failure(const struct scram_exchange *ex, const char **sqlstate);

#endif
