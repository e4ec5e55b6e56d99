/*
 * pool/scram_crypto.c's HMAC-SHA-256 and SHA-256 are written out on one digest context
 * per thread (RFC 2104) for speed: they must agree with OpenSSL's one-shot HMAC() and
 * SHA256() for every key length (shorter than, equal to and longer than the 64-byte
 * block, where the key is hashed first) and message length, and with RFC 4231.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "pool/scram_crypto.h"

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
}

Test(scram_crypto, hmac_matches_openssl_for_every_key_length)
{
	uint8_t key[200], msg[300];
	for (size_t klen = 0; klen <= sizeof(key); klen++) {
		fill(key, klen, (uint8_t)klen);
		for (size_t mlen = 0; mlen <= sizeof(msg); mlen += 37) {
			fill(msg, mlen, (uint8_t)(mlen + 3));
			uint8_t want[SCRAM_HASH_LEN], got[SCRAM_HASH_LEN];
			unsigned int wlen = 0;
			cr_assert(HMAC(EVP_sha256(), key, (int)klen, msg, mlen, want, &wlen));
			cr_assert(scram_hmac(key, klen, msg, mlen, got));
			cr_assert_eq(wlen, SCRAM_HASH_LEN);
			cr_assert_arr_eq(got, want, SCRAM_HASH_LEN, "key %zu bytes, message %zu",
					 klen, mlen);
		}
	}
}

Test(scram_crypto, hmac_rfc4231_case_2)
{
	/* Key "Jefe", data "what do ya want for nothing?". */
	static const uint8_t want[SCRAM_HASH_LEN] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
		0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
		0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	const char *data = "what do ya want for nothing?";
	uint8_t got[SCRAM_HASH_LEN];
	cr_assert(scram_hmac((const uint8_t *)"Jefe", 4, data, strlen(data), got));
	cr_assert_arr_eq(got, want, SCRAM_HASH_LEN);
}

Test(scram_crypto, sha256_matches_openssl)
{
	uint8_t msg[300];
	for (size_t mlen = 0; mlen <= sizeof(msg); mlen += 13) {
		fill(msg, mlen, (uint8_t)mlen);
		uint8_t want[SCRAM_HASH_LEN], got[SCRAM_HASH_LEN];
		SHA256(msg, mlen, want);
		cr_assert(scram_sha256(msg, mlen, got));
		cr_assert_arr_eq(got, want, SCRAM_HASH_LEN, "message %zu", mlen);
	}
}
