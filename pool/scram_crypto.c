#include "pool/scram_crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
 * SHA-256 and HMAC-SHA-256 on an algorithm fetched once.  EVP_sha256() and the
 * one-shot HMAC() look the algorithm up in OpenSSL's provider store on every call
 * (EVP_MD_fetch, EVP_MAC_fetch, parameter parsing, locks): in a pgbench -C storm
 * that was most of a SCRAM login's CPU.  HMAC is RFC 2104 written out on one digest
 * context per thread, re-initialised for each hash: EVP_MAC's HMAC re-keyed for every
 * use set up three digest contexts and copied two of them each time (~800 ns per
 * HMAC against ~500 here; a SCRAM login makes two).  The fetched algorithm may be
 * shared between threads.
 */
#define SHA256_BLOCK_LEN 64

static EVP_MD *sha256_md;
static pthread_key_t md_ctx_key;
static bool md_ctx_key_ok;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_free(void)
{
	EVP_MD_free(sha256_md);
	sha256_md = NULL;
}

static void md_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void algs_init(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_ctx_key_ok = pthread_key_create(&md_ctx_key, md_ctx_free) == 0;
	/* Registered after OpenSSL's own cleanup, so it runs before it. */
	(void)atexit(algs_free);
}

/* This thread's digest context (freed when the thread ends), or NULL. */
static EVP_MD_CTX *thread_md_ctx(void)
{
	EVP_MD_CTX *ctx;

	(void)pthread_once(&algs_once, algs_init);
	if (sha256_md == NULL || !md_ctx_key_ok)
		return NULL;
	ctx = pthread_getspecific(md_ctx_key);
	if (ctx != NULL)
		return ctx;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || pthread_setspecific(md_ctx_key, ctx) != 0) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* SHA-256 of a, then b (b may be empty), on ctx. */
static bool digest2(EVP_MD_CTX *ctx, const void *a, size_t a_len, const void *b, size_t b_len,
		    uint8_t out[SCRAM_HASH_LEN])
{
	unsigned int n = 0;

	return EVP_DigestInit_ex2(ctx, sha256_md, NULL) == 1 &&
	       EVP_DigestUpdate(ctx, a, a_len) == 1 &&
	       (b_len == 0 || EVP_DigestUpdate(ctx, b, b_len) == 1) &&
	       EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == SCRAM_HASH_LEN;
}

bool scram_sha256(const void *data, size_t len, uint8_t out[SCRAM_HASH_LEN])
{
	EVP_MD_CTX *ctx = thread_md_ctx();

	return ctx != NULL && digest2(ctx, data, len, NULL, 0, out);
}

/* HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m)), K' = K, or H(K) when K is longer
 * than a block, zero-padded to a block (RFC 2104). */
bool scram_hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
		uint8_t out[SCRAM_HASH_LEN])
{
	EVP_MD_CTX *ctx = thread_md_ctx();
	uint8_t pad[SHA256_BLOCK_LEN], inner[SCRAM_HASH_LEN], hashed_key[SCRAM_HASH_LEN];
	bool ok;

	if (ctx == NULL)
		return false;
	if (key_len > SHA256_BLOCK_LEN) {
		if (!digest2(ctx, key, key_len, NULL, 0, hashed_key))
			return false;
		key = hashed_key;
		key_len = sizeof(hashed_key);
	}
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < key_len; i++)
		pad[i] ^= key[i];
	ok = digest2(ctx, pad, sizeof(pad), data, len, inner);
	/* 0x36 ^ 0x5c turns the inner pad into the outer one, key bytes and all. */
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] ^= 0x36 ^ 0x5c;
	ok = ok && digest2(ctx, pad, sizeof(pad), inner, sizeof(inner), out);
	/* Key material: none stays on the stack. */
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(inner, sizeof(inner));
	OPENSSL_cleanse(hashed_key, sizeof(hashed_key));
	return ok;
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
