/*
 * md5 password authentication as PostgreSQL does it.  A failed digest (an OpenSSL
 * build without MD5, say) yields an empty string, which no response can match.
 */
#include "proxy/auth_md5.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define MD5_HEX_LEN 32

/* out = "md5" + hex(MD5(a || b)); "" if the digest cannot be computed. */
static void md5_hex2(const void *a, size_t a_len, const void *b, size_t b_len,
		     char out[MD5_PASSWD_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, a, a_len) == 1 && EVP_DigestUpdate(ctx, b, b_len) == 1 &&
	     EVP_DigestFinal_ex(ctx, digest, &n) == 1 && n == MD5_HEX_LEN / 2;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		out[0] = '\0';
		return;
	}
	memcpy(out, "md5", 3);
	for (unsigned int i = 0; i < n; i++) {
		out[3 + 2 * i] = hex[digest[i] >> 4];
		out[3 + 2 * i + 1] = hex[digest[i] & 15];
	}
	out[MD5_PASSWD_LEN] = '\0';
	OPENSSL_cleanse(digest, sizeof(digest));
}

/* Either case: a hand-edited auth file may well have uppercase hex. */
bool md5_is_hash(const char *s)
{
	if (strlen(s) != MD5_PASSWD_LEN || strncmp(s, "md5", 3) != 0)
		return false;
	for (size_t i = 3; i < MD5_PASSWD_LEN; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

void md5_password_hash(const char *password, const char *user, char out[MD5_PASSWD_LEN + 1])
{
	md5_hex2(password, strlen(password), user, strlen(user), out);
}

void md5_salted_response(const char *stored_md5, const uint8_t salt[4],
			 char out[MD5_PASSWD_LEN + 1])
{
	char hex[MD5_HEX_LEN];

	if (!md5_is_hash(stored_md5)) {
		out[0] = '\0';
		return;
	}
	/* Clients hash the lowercase hex PostgreSQL produces; accept an uppercase file. */
	for (size_t i = 0; i < MD5_HEX_LEN; i++) {
		char c = stored_md5[3 + i];
		hex[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
	}
	md5_hex2(hex, sizeof(hex), salt, 4, out);
	OPENSSL_cleanse(hex, sizeof(hex));
}

bool md5_check_response(const char *stored, bool stored_is_md5, const char *user,
			const uint8_t salt[4], const char *response)
{
	char hashed[MD5_PASSWD_LEN + 1];
	char expect[MD5_PASSWD_LEN + 1];
	bool ok;

	if (stored == NULL || response == NULL || (!stored_is_md5 && user == NULL))
		return false;
	if (stored_is_md5) {
		md5_salted_response(stored, salt, expect);
	} else {
		md5_password_hash(stored, user, hashed);
		md5_salted_response(hashed, salt, expect);
		OPENSSL_cleanse(hashed, sizeof(hashed));
	}
	/* The response's length is the client's, not a secret; only the bytes need care. */
	ok = expect[0] != '\0' && strlen(response) == MD5_PASSWD_LEN &&
	     CRYPTO_memcmp(expect, response, MD5_PASSWD_LEN) == 0;
	OPENSSL_cleanse(expect, sizeof(expect));
	return ok;
}
