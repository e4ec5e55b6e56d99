#include "pool/scram_crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void scram_b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t o = 0;

	if (len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pad = 0;
		uint32_t v = 0;

		for (int k = 0; k < 4; k++) {
			char c = in[i + k];
			int d;

			if (c == '=') {
				/* only "xx==" or "xxx=" at the very end */
				if (!last || k < 2 || (k == 2 && in[i + 3] != '='))
					return false;
				pad++;
				d = 0;
			} else {
				if (pad > 0)
					return false;
				d = b64_value(c);
				if (d < 0)
					return false;
			}
			v = (v << 6) | (uint32_t)d;
		}
		size_t n = 3 - (size_t)pad;
		if (o + n > cap)
			return false;
		out[o++] = (uint8_t)(v >> 16);
		if (n > 1)
			out[o++] = (uint8_t)(v >> 8);
		if (n > 2)
			out[o++] = (uint8_t)v;
	}
	*out_len = o;
	return true;
}

/*
 * SHA-256 and HMAC-SHA-256 on algorithms fetched once.  EVP_sha256() and the
 * one-shot HMAC() look the algorithm up in OpenSSL's provider store on every call
 * (EVP_MD_fetch, EVP_MAC_fetch, parameter parsing, locks): in a pgbench -C storm
 * that was most of a SCRAM login's CPU.  Fetched algorithms may be shared between
 * threads; each thread keeps one HMAC context and re-keys it for every use.
 */
static EVP_MD *sha256_md;
static EVP_MAC *hmac_alg;
static pthread_key_t hmac_ctx_key;
static bool hmac_ctx_key_ok;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_free(void)
{
	EVP_MD_free(sha256_md);
	EVP_MAC_free(hmac_alg);
	sha256_md = NULL;
	hmac_alg = NULL;
}

static void hmac_ctx_free(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void algs_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	hmac_ctx_key_ok = pthread_key_create(&hmac_ctx_key, hmac_ctx_free) == 0;
	/* Registered after OpenSSL's own cleanup, so it runs before it. */
	(void)atexit(algs_free);
}

static const EVP_MD *sha256_alg(void)
{
	(void)pthread_once(&algs_once, algs_init);
	return sha256_md;
}

/* This thread's HMAC-SHA-256 context (freed when the thread ends), or NULL. */
static EVP_MAC_CTX *thread_hmac(void)
{
	static char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;

	(void)pthread_once(&algs_once, algs_init);
	if (hmac_alg == NULL || !hmac_ctx_key_ok)
		return NULL;
	ctx = pthread_getspecific(hmac_ctx_key);
	if (ctx != NULL)
		return ctx;
	ctx = EVP_MAC_CTX_new(hmac_alg);
	if (ctx == NULL || EVP_MAC_CTX_set_params(ctx, params) != 1 ||
	    pthread_setspecific(hmac_ctx_key, ctx) != 0) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

bool scram_sha256(const void *data, size_t len, uint8_t out[SCRAM_HASH_LEN])
{
	const EVP_MD *md = sha256_alg();
	unsigned int n = 0;

	return md != NULL && EVP_Digest(data, len, out, &n, md, NULL) == 1 && n == SCRAM_HASH_LEN;
}

/* Re-keying keeps the digest set in thread_hmac. */
bool scram_hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
		uint8_t out[SCRAM_HASH_LEN])
{
	EVP_MAC_CTX *ctx = thread_hmac();
	size_t n = 0;

	return ctx != NULL && EVP_MAC_init(ctx, key, key_len, NULL) == 1 &&
	       EVP_MAC_update(ctx, data, len) == 1 &&
	       EVP_MAC_final(ctx, out, &n, SCRAM_HASH_LEN) == 1 && n == SCRAM_HASH_LEN;
}

bool scram_password_keys(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			 uint8_t *client_key, uint8_t stored_key[SCRAM_HASH_LEN],
			 uint8_t server_key[SCRAM_HASH_LEN])
{
	uint8_t salted[SCRAM_HASH_LEN], ck[SCRAM_HASH_LEN], sk[SCRAM_HASH_LEN], svk[SCRAM_HASH_LEN];

	if (password == NULL || salt == NULL || salt_len == 0 || salt_len > INT_MAX ||
	    iterations < 1 || strlen(password) > INT_MAX)
		return false;
	bool ok = PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
				    iterations, EVP_sha256(), SCRAM_HASH_LEN, salted) == 1 &&
		  scram_hmac(salted, sizeof(salted), "Client Key", 10, ck) &&
		  scram_sha256(ck, sizeof(ck), sk) &&
		  scram_hmac(salted, sizeof(salted), "Server Key", 10, svk);
	if (ok) {
		if (client_key)
			memcpy(client_key, ck, sizeof(ck));
		memcpy(stored_key, sk, sizeof(sk));
		memcpy(server_key, svk, sizeof(svk));
	}
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(svk, sizeof(svk));
	return ok;
}
