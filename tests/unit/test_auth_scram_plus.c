/*
 * SCRAM-SHA-256-PLUS (tls-server-end-point) in proxy/auth_scram.c: the mechanism list and
 * choice, a whole bound exchange computed as a client would, and each refusal with
 * PostgreSQL's SQLSTATE and words (src/backend/libpq/auth-scram.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proxy/auth_scram.h"

#define PASSWORD "pencil"
#define CFIRST_PLUS "p=tls-server-end-point,,n=,r=clientnonce"

static const uint8_t salt[16] = "0123456789abcdef";
/* Stands in for the SHA-256 of corral's certificate. */
static const uint8_t cert_hash[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
				      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
				      23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* An exchange over "TLS": PLUS offered with cert_hash. */
static void init_tls(struct scram_exchange *ex)
{
	struct scram_secret s;
	cr_assert(scram_secret_from_password(PASSWORD, salt, sizeof(salt), 4096, &s));
	scram_exchange_init(ex, &s, NULL);
	cr_assert(scram_offer_channel_binding(ex, cert_hash, sizeof(cert_hash)));
}

static void expect_failure(const struct scram_exchange *ex, const char *state, const char *msg)
{
	const char *got_state;
	const char *got = scram_failure(ex, &got_state);
	cr_expect_str_eq(got_state, state);
	cr_expect_str_eq(got, msg);
}

/* base64 of "p=tls-server-end-point,," followed by hash. */
static void cbind_b64(const uint8_t *hash, size_t len, char *out)
{
	uint8_t in[24 + 64];
	memcpy(in, "p=tls-server-end-point,,", 24);
	memcpy(in + 24, hash, len);
	EVP_EncodeBlock((unsigned char *)out, in, (int)(24 + len));
}

/* The client's proof for auth_msg, base64. */
static void proof_for(const char *auth_msg, char out[64])
{
	uint8_t salted[32], key[32], stored[32], sig[32];
	unsigned int n;
	cr_assert(
		PKCS5_PBKDF2_HMAC(PASSWORD, 6, salt, sizeof(salt), 4096, EVP_sha256(), 32, salted));
	cr_assert(HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, key, &n));
	cr_assert(EVP_Digest(key, 32, stored, &n, EVP_sha256(), NULL));
	cr_assert(HMAC(EVP_sha256(), stored, 32, (const uint8_t *)auth_msg, strlen(auth_msg), sig,
		       &n));
	for (int i = 0; i < 32; i++)
		key[i] ^= sig[i];
	EVP_EncodeBlock((unsigned char *)out, key, 32);
}

/* client-final for ex (after CFIRST_PLUS) binding to hash, with a right proof. */
static char *bound_final(const struct scram_exchange *ex, const char *sf, const uint8_t *hash)
{
	char cb[128], proof[64], *auth = NULL, *final = NULL;
	cbind_b64(hash, 32, cb);
	cr_assert(asprintf(&auth, "n=,r=clientnonce,%s,c=%s,r=%s", sf, cb, ex->nonce) > 0);
	proof_for(auth, proof);
	cr_assert(asprintf(&final, "c=%s,r=%s,p=%s", cb, ex->nonce, proof) > 0);
	free(auth);
	return final;
}

Test(auth_scram_plus, mechanism_list_and_choice)
{
	struct scram_exchange ex;
	size_t len;
	struct scram_secret s;
	cr_assert(scram_secret_from_password(PASSWORD, salt, sizeof(salt), 4096, &s));
	scram_exchange_init(&ex, &s, NULL);
	const char *m = scram_mechanisms(&ex, &len);
	cr_expect(len == sizeof("SCRAM-SHA-256") + 1 && memcmp(m, "SCRAM-SHA-256\0", len) == 0);
	cr_expect(!scram_select_mechanism(&ex, "SCRAM-SHA-256-PLUS"), "PLUS without TLS");
	cr_expect(!scram_select_mechanism(&ex, "SCRAM-SHA-1"));
	cr_expect(scram_select_mechanism(&ex, "SCRAM-SHA-256"));
	scram_exchange_free(&ex);

	init_tls(&ex);
	m = scram_mechanisms(&ex, &len);
	static const char plus[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
	cr_expect(len == sizeof(plus) && memcmp(m, plus, len) == 0);
	cr_expect(scram_select_mechanism(&ex, "SCRAM-SHA-256-PLUS"));
	cr_expect(ex.cbind_in_use);
	cr_expect(scram_select_mechanism(&ex, "SCRAM-SHA-256"));
	cr_expect(!ex.cbind_in_use);
	scram_exchange_free(&ex);

	/* Nothing to bind to: not offered. */
	scram_exchange_init(&ex, &s, NULL);
	uint8_t big[SCRAM_CBIND_MAX + 1] = {0};
	cr_expect(!scram_offer_channel_binding(&ex, big, 0));
	cr_expect(!scram_offer_channel_binding(&ex, big, sizeof(big)));
	cr_expect(!ex.cbind_offered);
	scram_exchange_free(&ex);
}

Test(auth_scram_plus, bound_exchange_succeeds)
{
	struct scram_exchange ex;
	char *sf = NULL, *sfinal = NULL;
	init_tls(&ex);
	cr_assert(scram_select_mechanism(&ex, "SCRAM-SHA-256-PLUS"));
	cr_assert(scram_handle_client_first(&ex, CFIRST_PLUS, strlen(CFIRST_PLUS), NULL, &sf));
	char *final = bound_final(&ex, sf, cert_hash);
	cr_expect_eq(scram_handle_client_final(&ex, final, strlen(final), &sfinal), SCRAM_OK);
	cr_expect(sfinal && strncmp(sfinal, "v=", 2) == 0);
	free(sfinal);
	free(final);
	free(sf);
	scram_exchange_free(&ex);
}

Test(auth_scram_plus, binding_of_another_certificate_fails_the_check)
{
	struct scram_exchange ex;
	char *sf = NULL, *sfinal = NULL;
	uint8_t other[32];
	memcpy(other, cert_hash, sizeof(other));
	other[31] ^= 1;
	init_tls(&ex);
	cr_assert(scram_select_mechanism(&ex, "SCRAM-SHA-256-PLUS"));
	cr_assert(scram_handle_client_first(&ex, CFIRST_PLUS, strlen(CFIRST_PLUS), NULL, &sf));
	char *final = bound_final(&ex, sf, other);
	cr_expect_eq(scram_handle_client_final(&ex, final, strlen(final), &sfinal),
		     SCRAM_MALFORMED);
	cr_expect_null(sfinal);
	expect_failure(&ex, "28000", "SCRAM channel binding check failed");
	free(final);
	free(sf);
	scram_exchange_free(&ex);
}

Test(auth_scram_plus, plus_client_final_with_plain_binding_is_refused)
{
	struct scram_exchange ex;
	char *sf = NULL, *sfinal = NULL, *final = NULL;
	init_tls(&ex);
	cr_assert(scram_select_mechanism(&ex, "SCRAM-SHA-256-PLUS"));
	cr_assert(scram_handle_client_first(&ex, CFIRST_PLUS, strlen(CFIRST_PLUS), NULL, &sf));
	cr_assert(asprintf(&final, "c=biws,r=%s,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			   ex.nonce) > 0);
	cr_expect_eq(scram_handle_client_final(&ex, final, strlen(final), &sfinal),
		     SCRAM_MALFORMED);
	expect_failure(&ex, "28000", "SCRAM channel binding check failed");
	free(final);
	free(sf);
	scram_exchange_free(&ex);
}

/* client-first msg after choosing mech must be refused with state and words. */
static void expect_first_refused(bool tls, const char *mech, const char *msg, const char *state,
				 const char *words)
{
	struct scram_exchange ex;
	char *sf = NULL;
	struct scram_secret s;
	cr_assert(scram_secret_from_password(PASSWORD, salt, sizeof(salt), 4096, &s));
	scram_exchange_init(&ex, &s, NULL);
	if (tls)
		cr_assert(scram_offer_channel_binding(&ex, cert_hash, sizeof(cert_hash)));
	cr_assert(scram_select_mechanism(&ex, mech));
	cr_expect(!scram_handle_client_first(&ex, msg, strlen(msg), NULL, &sf), "%s accepted", msg);
	cr_expect_null(sf);
	expect_failure(&ex, state, words);
	scram_exchange_free(&ex);
}

Test(auth_scram_plus, gs2_header_refusals)
{
	/* Downgrade: the client can bind, believes the server cannot, yet PLUS was offered. */
	expect_first_refused(true, "SCRAM-SHA-256", "y,,n=,r=abc", "08P01",
			     "SCRAM channel binding negotiation error");
	/* PLUS chosen, then no binding data. */
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "n,,n=,r=abc", "08P01",
			     "malformed SCRAM message");
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "y,,n=,r=abc", "08P01",
			     "malformed SCRAM message");
	/* Binding data with the plain mechanism, TLS or not. */
	expect_first_refused(true, "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc", "08P01",
			     "malformed SCRAM message");
	expect_first_refused(false, "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc", "08P01",
			     "malformed SCRAM message");
	/* Another binding type. */
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=abc", "08P01",
			     "unsupported SCRAM channel-binding type");
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "p=tls-server-end-pointX,,n=,r=abc",
			     "08P01", "unsupported SCRAM channel-binding type");
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point", "08P01",
			     "malformed SCRAM message");
	/* Malformed around it: PostgreSQL's catch-all words. */
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "p,,n=,r=abc", "08P01",
			     "malformed SCRAM message");
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,a=u,n=,r=abc",
			     "08P01", "malformed SCRAM message");
	expect_first_refused(true, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,", "08P01",
			     "malformed SCRAM message");
}

Test(auth_scram_plus, y_without_tls_is_honest)
{
	struct scram_exchange ex;
	char *sf = NULL;
	struct scram_secret s;
	cr_assert(scram_secret_from_password(PASSWORD, salt, sizeof(salt), 4096, &s));
	scram_exchange_init(&ex, &s, NULL);
	cr_assert(scram_select_mechanism(&ex, "SCRAM-SHA-256"));
	cr_expect(scram_handle_client_first(&ex, "y,,n=,r=abc", 11, NULL, &sf));
	free(sf);
	scram_exchange_free(&ex);
}

/* Over TLS without PLUS chosen, "n" is fine (libpq's channel_binding=disable). */
Test(auth_scram_plus, n_over_tls_is_fine)
{
	struct scram_exchange ex;
	char *sf = NULL;
	init_tls(&ex);
	cr_assert(scram_select_mechanism(&ex, "SCRAM-SHA-256"));
	cr_expect(scram_handle_client_first(&ex, "n,,n=,r=abc", 11, NULL, &sf));
	free(sf);
	scram_exchange_free(&ex);
}
