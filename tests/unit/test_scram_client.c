/*
 * SCRAM-SHA-256 client from keys (SCRAM pass-through): RFC 7677's worked example
 * byte for byte from keys alone, the server signature check, a verifier with another
 * salt, and what a broken or hostile server sends.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pool/scram_client.h"

/* RFC 7677 section 3. */
#define RFC_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_NONCE RFC_CLIENT_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const uint8_t rfc_salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
				     0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};

static struct scram_keys pencil(void)
{
	struct scram_keys k;
	cr_assert(scram_keys_from_password("pencil", rfc_salt, sizeof(rfc_salt), 4096, &k));
	return k;
}

/* Up to the client-final message; returns it (malloc'd). */
static char *exchange(struct scram_client *sc, const struct scram_keys *k, const char *server_first)
{
	char *first = NULL, *final = NULL;
	cr_assert(scram_client_first(sc, "user", RFC_CLIENT_NONCE, &first));
	cr_expect_str_eq(first, "n,,n=user,r=" RFC_CLIENT_NONCE);
	free(first);
	cr_assert(scram_client_final(sc, k, server_first, strlen(server_first), &final));
	return final;
}

Test(scram_client, rfc7677_from_keys)
{
	struct scram_keys k = pencil();
	struct scram_client sc;
	char *final = exchange(&sc, &k, RFC_SERVER_FIRST);
	cr_expect_str_eq(final, RFC_CLIENT_FINAL);
	cr_expect_not(sc.verifier_differs);
	cr_expect(scram_client_verify_server(&sc, &k, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)));
	free(final);
	scram_client_free(&sc);
}

Test(scram_client, wrong_server_signature_fails_closed)
{
	struct scram_keys k = pencil();
	struct scram_client sc;
	free(exchange(&sc, &k, RFC_SERVER_FIRST));
	const char *bad = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
	cr_expect_not(scram_client_verify_server(&sc, &k, bad, strlen(bad)));
	cr_expect_not(scram_client_verify_server(&sc, &k, "v=", 2));
	cr_expect_not(scram_client_verify_server(&sc, &k, "e=invalid-proof", 15));
	/* A server that does not know the verifier (another ServerKey) is refused too. */
	struct scram_keys other = k;
	other.server_key[0] ^= 1;
	cr_expect_not(scram_client_verify_server(&sc, &other, RFC_SERVER_FINAL,
						 strlen(RFC_SERVER_FINAL)));
	scram_client_free(&sc);
}

Test(scram_client, other_salt_is_noticed)
{
	struct scram_keys k = pencil();
	struct scram_client sc;
	free(exchange(&sc, &k, "r=" RFC_NONCE ",s=QSXCR+Q6sek8bf92,i=4096"));
	cr_expect(sc.verifier_differs);
	scram_client_free(&sc);
	free(exchange(&sc, &k, "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095"));
	cr_expect(sc.verifier_differs);
	scram_client_free(&sc);
}

Test(scram_client, malformed_server_first)
{
	static const char *const bad[] = {
		"",
		"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"r=" RFC_CLIENT_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /* no server part */
		"r=someoneelse%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		"r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
		"r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
		"r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",
		"r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==",
		"r=" RFC_NONCE ",i=4096",
	};
	struct scram_keys k = pencil();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct scram_client sc;
		char *first = NULL, *final = NULL;
		cr_assert(scram_client_first(&sc, "", RFC_CLIENT_NONCE, &first));
		free(first);
		cr_expect_not(scram_client_final(&sc, &k, bad[i], strlen(bad[i]), &final),
			      "accepted [%s]", bad[i]);
		cr_expect_null(final);
		scram_client_free(&sc);
	}
}

Test(scram_client, random_nonce_and_empty_user)
{
	struct scram_client sc;
	char *first = NULL;
	cr_assert(scram_client_first(&sc, "", NULL, &first));
	cr_expect_eq(strlen(sc.nonce), SCRAM_CLIENT_NONCE_LEN);
	cr_expect(strncmp(first, "n,,n=,r=", 8) == 0);
	cr_expect_str_eq(first + 8, sc.nonce);
	free(first);
	scram_client_free(&sc);
}
