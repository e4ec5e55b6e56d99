/*
 * The primitives both SCRAM sides share (proxy/auth_scram.c, corral's server side;
 * pool/scram_client.c, its client side for pass-through): SHA-256, HMAC-SHA-256 and
 * the keys a password gives (RFC 5802 §3), and strict base64.
 */
#ifndef CORRAL_POOL_SCRAM_CRYPTO_H
#define CORRAL_POOL_SCRAM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define SCRAM_HASH_LEN 32
/* Characters base64 makes of n bytes (without the NUL). */
#define SCRAM_B64_LEN(n) ((((n) + 2) / 3) * 4)

bool scram_sha256(const void *data, size_t len, uint8_t out[SCRAM_HASH_LEN]) WARN_UNUSED;
bool scram_hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
		uint8_t out[SCRAM_HASH_LEN]) WARN_UNUSED;

/*
 * SaltedPassword = PBKDF2(password, salt, iterations), then ClientKey, StoredKey and
 * ServerKey from it.  client_key may be NULL (a verifier needs only the other two).
 * Nothing is written unless all of it worked; the intermediate values are cleansed.
 */
bool scram_password_keys(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			 uint8_t *client_key, uint8_t stored_key[SCRAM_HASH_LEN],
			 uint8_t server_key[SCRAM_HASH_LEN]) WARN_UNUSED;

/* out must hold SCRAM_B64_LEN(len) + 1 bytes; NUL-terminated. */
void scram_b64_encode(const uint8_t *in, size_t len, char *out);
/*
 * Strict decoding: padded to a multiple of 4, '=' only as the last one or two
 * characters, no whitespace.  False also when the result would exceed cap, so a peer
 * can never make us write past a fixed buffer.
 */
bool scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap,
		      size_t *out_len) WARN_UNUSED;

#endif
