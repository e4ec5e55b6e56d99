/*
 * SCRAM-SHA-256 client from keys (RFC 5802 §3): ClientProof = ClientKey XOR
 * HMAC(StoredKey, AuthMessage), ServerSignature = HMAC(ServerKey, AuthMessage).
 * One-shot OpenSSL calls: this runs once per server login, not per client.
 */
#include "pool/scram_client.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* A server-first message is under 200 bytes; more is a broken or hostile server. */
#define MAX_SERVER_MESSAGE 1024
#define B64_LEN(n) ((((n) + 2) / 3) * 4)

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64_chars[(v >> 18) & 63];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_chars[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;
	return p ? (int)(p - b64_chars) : -1;
}

/* Strict: whole quads, padding only at the end. */
static bool b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t n = 0;
	if (len == 0 || len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int j = 0; j < 4; j++) {
			char c = in[i + j];
			if (c == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
			} else if (pad || (v[j] = b64_value(c)) < 0) {
				return false;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		size_t take = 3 - (size_t)pad;
		if (n + take > cap)
			return false;
		for (size_t j = 0; j < take; j++)
			out[n++] = (uint8_t)(w >> (16 - 8 * j));
	}
	*out_len = n;
	return true;
}

static bool hmac256(const uint8_t *key, size_t key_len, const void *data, size_t len,
		    uint8_t out[SCRAM_CLIENT_KEY_LEN])
{
	unsigned int n = 0;
	return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) != NULL &&
	       n == SCRAM_CLIENT_KEY_LEN;
}

static bool sha256(const void *data, size_t len, uint8_t out[SCRAM_CLIENT_KEY_LEN])
{
	unsigned int n = 0;
	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == SCRAM_CLIENT_KEY_LEN;
}

bool scram_keys_from_password(const char *password, const uint8_t *salt, size_t salt_len,
			      int iterations, struct scram_keys *out)
{
	uint8_t salted[SCRAM_CLIENT_KEY_LEN];
	if (!password || !salt || salt_len == 0 || salt_len > SCRAM_CLIENT_MAX_SALT ||
	    iterations < 1 || strlen(password) > INT_MAX)
		return false;
	memset(out, 0, sizeof(*out));
	bool ok = PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
				    iterations, EVP_sha256(), SCRAM_CLIENT_KEY_LEN, salted) == 1 &&
		  hmac256(salted, sizeof(salted), "Client Key", 10, out->client_key) &&
		  sha256(out->client_key, SCRAM_CLIENT_KEY_LEN, out->stored_key) &&
		  hmac256(salted, sizeof(salted), "Server Key", 10, out->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	out->iterations = iterations;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	if (!ok)
		OPENSSL_cleanse(out, sizeof(*out));
	return ok;
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
		b64_encode(raw, sizeof(raw), sc->nonce);
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
	    !b64_decode(s, (size_t)(comma - s), salt, SCRAM_CLIENT_MAX_SALT, salt_len))
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
	*out = malloc(wp_len + strlen(",p=") + B64_LEN(SCRAM_CLIENT_KEY_LEN) + 1);
	if (!sc->auth_message || !*out) {
		free(*out);
		*out = NULL;
		return false;
	}
	snprintf(*out, wp_len + 1, "c=biws,r=%.*s", (int)nonce_len, nonce);
	snprintf(sc->auth_message, am_len + 1, "%s,%s,%s", sc->client_first_bare, msg, *out);

	uint8_t sig[SCRAM_CLIENT_KEY_LEN], proof[SCRAM_CLIENT_KEY_LEN];
	bool ok = hmac256(keys->stored_key, SCRAM_CLIENT_KEY_LEN, sc->auth_message, am_len, sig);
	for (size_t i = 0; i < SCRAM_CLIENT_KEY_LEN; i++)
		proof[i] = keys->client_key[i] ^ sig[i];
	strcat(*out, ",p=");
	b64_encode(proof, sizeof(proof), *out + wp_len + 3);
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
	    !b64_decode(server_final + 2, len - 2, got, sizeof(got), &got_len) ||
	    got_len != SCRAM_CLIENT_KEY_LEN)
		return false;
	return hmac256(keys->server_key, SCRAM_CLIENT_KEY_LEN, sc->auth_message,
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
