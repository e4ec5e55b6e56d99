/*
 * SCRAM-SHA-256 client from keys (RFC 5802 §3): ClientProof = ClientKey XOR
 * HMAC(StoredKey, AuthMessage), ServerSignature = HMAC(ServerKey, AuthMessage).
 * The primitives are pool/scram_crypto.h's, shared with the server side.
 */
#include "pool/scram_client.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "pool/scram_crypto.h"

/* A server-first message is under 200 bytes; more is a broken or hostile server. */
#define MAX_SERVER_MESSAGE 1024

bool scram_keys_from_password(const char *password, const uint8_t *salt, size_t salt_len,
			      int iterations, struct scram_keys *out)
{
	memset(out, 0, sizeof(*out));
	if (salt_len > SCRAM_CLIENT_MAX_SALT ||
	    !scram_password_keys(password, salt, salt_len, iterations, out->client_key,
				 out->stored_key, out->server_key))
		return false;
	out->iterations = iterations;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	return true;
}

bool scram_client_first(struct scram_client *sc, const char *user, const char *nonce, char **out)
{
	memset(sc, 0, sizeof(*sc));
	*out = NULL;
	if (nonce) {
		if (strlen(nonce) > SCRAM_CLIENT_NONCE_LEN)
			return false;
		strcpy(sc->nonce, nonce);
	} else {
		uint8_t raw[18];
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return false;
		scram_b64_encode(raw, sizeof(raw), sc->nonce);
	}
	/* A user with ',' or '=' would need escaping; PostgreSQL ignores the name anyway. */
	if (strpbrk(user, ",="))
		user = "";
	size_t len = strlen("n=,r=") + strlen(user) + strlen(sc->nonce);
	sc->client_first_bare = malloc(len + 1);
	*out = malloc(len + 3 + 1);
	if (!sc->client_first_bare || !*out) {
		scram_client_free(sc);
		free(*out);
		*out = NULL;
		return false;
	}
	snprintf(sc->client_first_bare, len + 1, "n=%s,r=%s", user, sc->nonce);
	snprintf(*out, len + 4, "n,,%s", sc->client_first_bare);
	return true;
}

/* server-first = "r=<nonce>,s=<salt>,i=<iterations>"[,extensions]. */
static bool parse_server_first(const char *msg, const char **nonce, size_t *nonce_len,
			       uint8_t *salt, size_t *salt_len, int *iterations)
{
	if (strncmp(msg, "r=", 2) != 0)
		return false;
	*nonce = msg + 2;
	const char *comma = strchr(*nonce, ',');
	if (!comma || strncmp(comma, ",s=", 3) != 0)
		return false;
	*nonce_len = (size_t)(comma - *nonce);
	const char *s = comma + 3;
	comma = strchr(s, ',');
	if (!comma || strncmp(comma, ",i=", 3) != 0 ||
	    !scram_b64_decode(s, (size_t)(comma - s), salt, SCRAM_CLIENT_MAX_SALT, salt_len))
		return false;
	char *end;
	long it = strtol(comma + 3, &end, 10);
	if (end == comma + 3 || (*end != '\0' && *end != ',') || it < 1 || it > INT_MAX)
		return false;
	*iterations = (int)it;
	return true;
}

bool scram_client_final(struct scram_client *sc, const struct scram_keys *keys,
			const char *server_first, size_t len, char **out)
{
	*out = NULL;
	if (!sc->client_first_bare || sc->auth_message || len == 0 || len > MAX_SERVER_MESSAGE ||
	    memchr(server_first, '\0', len))
		return false;
	char msg[MAX_SERVER_MESSAGE + 1];
	memcpy(msg, server_first, len);
	msg[len] = '\0';
	const char *nonce;
	size_t nonce_len, salt_len;
	uint8_t salt[SCRAM_CLIENT_MAX_SALT];
	int iterations;
	size_t ours = strlen(sc->nonce);
	/* The server's nonce must extend ours (RFC 5802 §5.1), or this is a replay. */
	if (!parse_server_first(msg, &nonce, &nonce_len, salt, &salt_len, &iterations) ||
	    nonce_len <= ours || memcmp(nonce, sc->nonce, ours) != 0)
		return false;
	sc->verifier_differs = iterations != keys->iterations || salt_len != keys->salt_len ||
			       memcmp(salt, keys->salt, salt_len) != 0;

	/* client-final-without-proof: "c=biws" is base64 of "n,,", no channel binding. */
	size_t wp_len = strlen("c=biws,r=") + nonce_len;
	size_t am_len = strlen(sc->client_first_bare) + 1 + len + 1 + wp_len;
	sc->auth_message = malloc(am_len + 1);
	*out = malloc(wp_len + strlen(",p=") + SCRAM_B64_LEN(SCRAM_CLIENT_KEY_LEN) + 1);
	if (!sc->auth_message || !*out) {
		free(*out);
		*out = NULL;
		return false;
	}
	snprintf(*out, wp_len + 1, "c=biws,r=%.*s", (int)nonce_len, nonce);
	snprintf(sc->auth_message, am_len + 1, "%s,%s,%s", sc->client_first_bare, msg, *out);

	uint8_t sig[SCRAM_CLIENT_KEY_LEN], proof[SCRAM_CLIENT_KEY_LEN];
	bool ok = scram_hmac(keys->stored_key, SCRAM_CLIENT_KEY_LEN, sc->auth_message, am_len, sig);
	for (size_t i = 0; i < SCRAM_CLIENT_KEY_LEN; i++)
		proof[i] = keys->client_key[i] ^ sig[i];
	strcat(*out, ",p=");
	scram_b64_encode(proof, sizeof(proof), *out + wp_len + 3);
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(sig, sizeof(sig));
	if (!ok) {
		free(*out);
		*out = NULL;
	}
	return ok;
}

bool scram_client_verify_server(const struct scram_client *sc, const struct scram_keys *keys,
				const char *server_final, size_t len)
{
	uint8_t want[SCRAM_CLIENT_KEY_LEN], got[SCRAM_CLIENT_KEY_LEN];
	size_t got_len = 0;
	/* "v=" + 44 characters; PostgreSQL adds nothing after it. */
	if (!sc->auth_message || len < 2 || len > MAX_SERVER_MESSAGE ||
	    memcmp(server_final, "v=", 2) != 0 ||
	    !scram_b64_decode(server_final + 2, len - 2, got, sizeof(got), &got_len) ||
	    got_len != SCRAM_CLIENT_KEY_LEN)
		return false;
	return scram_hmac(keys->server_key, SCRAM_CLIENT_KEY_LEN, sc->auth_message,
			  strlen(sc->auth_message), want) &&
	       CRYPTO_memcmp(want, got, SCRAM_CLIENT_KEY_LEN) == 0;
}

void scram_client_free(struct scram_client *sc)
{
	free(sc->client_first_bare);
	free(sc->auth_message);
	sc->client_first_bare = NULL;
	sc->auth_message = NULL;
}
