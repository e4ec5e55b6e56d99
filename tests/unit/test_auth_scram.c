/*
 * SCRAM-SHA-256 server side: RFC 7677's worked example byte for byte, a verifier
 * PostgreSQL 15 itself stored, the mock exchange, and what a hostile client sends.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proxy/auth_scram.h"

/* RFC 7677 section 3. */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_NONCE ",p=" RFC_PROOF
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The verifier PostgreSQL stores for "pencil" with the RFC's salt (checked with python3). */
#define RFC_VERIFIER                                                           \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"                         \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"                        \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static const uint8_t rfc_salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
				     0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};

/*
 * rolpassword of "CREATE ROLE bench PASSWORD 'pencil-sharpener'" in a PostgreSQL
 * 15.20 cluster (password_encryption = scram-sha-256), copied from pg_authid.
 */
#define PG15_PASSWORD "pencil-sharpener"
#define PG15_VERIFIER                                                          \
	"SCRAM-SHA-256$4096:QjtRuhK86Qre/kMSrnKKNg==$"                         \
	"wuutit1MSOo9J8wgG5thHIhK6df84VciezeQgy6mz1Q=:"                        \
	"vxd/d4DtEaf22E/6YrVQmgnzRZlDEQYRn9IHNhDtVys="

static struct scram_secret rfc_secret(void)
{
	struct scram_secret s;

	cr_assert(scram_secret_from_password("pencil", rfc_salt, sizeof(rfc_salt), 4096, &s));
	return s;
}

/* An exchange against the RFC secret that has already answered the RFC client-first. */
static void rfc_first(struct scram_exchange *ex)
{
	struct scram_secret s = rfc_secret();
	char *sf = NULL;

	scram_exchange_init(ex, &s, NULL);
	cr_assert(scram_handle_client_first(ex, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
					    RFC_SERVER_NONCE, &sf));
	cr_assert_str_eq(sf, RFC_SERVER_FIRST);
	free(sf);
}

/* The RFC client-first with a random server nonce. */
static bool rfc_client_first(struct scram_exchange *ex, char **sf)
{
	return scram_handle_client_first(ex, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), NULL, sf);
}

static enum scram_result final_str(struct scram_exchange *ex, const char *msg, char **sfinal)
{
	return scram_handle_client_final(ex, msg, strlen(msg), sfinal);
}

Test(auth_scram, rfc7677_exchange)
{
	struct scram_exchange ex;
	char *sfinal = NULL;

	rfc_first(&ex);
	cr_assert_eq(final_str(&ex, RFC_CLIENT_FINAL, &sfinal), SCRAM_OK);
	cr_assert_str_eq(sfinal, RFC_SERVER_FINAL);
	cr_assert_eq(ex.step, SCRAM_DONE);
	free(sfinal);
	scram_exchange_free(&ex);
}

Test(auth_scram, rfc7677_verifier_parses_and_matches_derivation)
{
	struct scram_secret parsed, derived = rfc_secret();

	cr_assert(scram_parse_secret(RFC_VERIFIER, &parsed));
	cr_assert_eq(parsed.iterations, 4096);
	cr_assert_eq(parsed.salt_len, sizeof(rfc_salt));
	cr_assert_arr_eq(parsed.salt, rfc_salt, sizeof(rfc_salt));
	cr_assert_arr_eq(parsed.stored_key, derived.stored_key, SCRAM_KEY_LEN);
	cr_assert_arr_eq(parsed.server_key, derived.server_key, SCRAM_KEY_LEN);
}

Test(auth_scram, wrong_proof)
{
	struct scram_exchange ex;
	char *sfinal = (char *)"untouched";
	/* first character of the proof changed: still 32 bytes of valid base64 */
	const char *msg = "c=biws,r=" RFC_NONCE ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

	rfc_first(&ex);
	cr_assert_eq(final_str(&ex, msg, &sfinal), SCRAM_WRONG_PROOF);
	cr_assert_null(sfinal);
	scram_exchange_free(&ex);
}

Test(auth_scram, wrong_password)
{
	struct scram_secret s;
	struct scram_exchange ex;
	char *sf = NULL, *sfinal = NULL;

	cr_assert(scram_secret_from_password("pencil2", rfc_salt, sizeof(rfc_salt), 4096, &s));
	scram_exchange_init(&ex, &s, NULL);
	cr_assert(scram_handle_client_first(&ex, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
					    RFC_SERVER_NONCE, &sf));
	cr_assert_str_eq(sf, RFC_SERVER_FIRST);
	cr_assert_eq(final_str(&ex, RFC_CLIENT_FINAL, &sfinal), SCRAM_WRONG_PROOF);
	cr_assert_null(sfinal);
	free(sf);
	scram_exchange_free(&ex);
}

/* What a client does: SaltedPassword, ClientKey, proof; and the signature it expects. */
static void client_side(const char *password, const uint8_t *salt, size_t salt_len, int iter,
			const char *auth_msg, char proof_b64[64], char server_sig_b64[64])
{
	uint8_t salted[32], client_key[32], stored[32], sig[32], server_key[32];
	unsigned int n;

	cr_assert(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iter,
				    EVP_sha256(), 32, salted));
	cr_assert(HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, client_key,
		       &n));
	cr_assert(EVP_Digest(client_key, 32, stored, &n, EVP_sha256(), NULL));
	cr_assert(HMAC(EVP_sha256(), stored, 32, (const uint8_t *)auth_msg, strlen(auth_msg), sig,
		       &n));
	for (int i = 0; i < 32; i++)
		client_key[i] ^= sig[i];
	EVP_EncodeBlock((unsigned char *)proof_b64, client_key, 32);
	cr_assert(HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Server Key", 10, server_key,
		       &n));
	cr_assert(HMAC(EVP_sha256(), server_key, 32, (const uint8_t *)auth_msg, strlen(auth_msg),
		       sig, &n));
	EVP_EncodeBlock((unsigned char *)server_sig_b64, sig, 32);
}

Test(auth_scram, postgres15_verifier)
{
	struct scram_secret parsed, derived;

	cr_assert(scram_parse_secret(PG15_VERIFIER, &parsed));
	cr_assert_eq(parsed.iterations, 4096);
	cr_assert_eq(parsed.salt_len, 16);
	cr_assert(scram_secret_from_password(PG15_PASSWORD, parsed.salt, parsed.salt_len,
					     parsed.iterations, &derived));
	cr_assert_arr_eq(derived.stored_key, parsed.stored_key, SCRAM_KEY_LEN);
	cr_assert_arr_eq(derived.server_key, parsed.server_key, SCRAM_KEY_LEN);
	cr_assert_arr_eq(derived.salt, parsed.salt, parsed.salt_len);
}

/* A full login as libpq sends it (empty n=, random server nonce) against PG's verifier. */
Test(auth_scram, postgres15_verifier_login)
{
	const char *cfirst = "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
	struct scram_secret s;
	struct scram_exchange ex;
	char *sf = NULL, *sfinal = NULL, *auth = NULL, *cfinal = NULL;
	char proof[64], sig[64], expect_final[80];

	cr_assert(scram_parse_secret(PG15_VERIFIER, &s));
	scram_exchange_init(&ex, &s, NULL);
	cr_assert(scram_handle_client_first(&ex, cfirst, strlen(cfirst), NULL, &sf));
	/* 18 random bytes, base64: 24 characters after the client's nonce */
	cr_assert_eq(strlen(ex.nonce), strlen("fyko+d2lbbFgONRv9qkxdawL") + 24);
	cr_assert(strncmp(sf, "r=fyko+d2lbbFgONRv9qkxdawL", 26) == 0);
	cr_assert(strstr(sf, ",s=QjtRuhK86Qre/kMSrnKKNg==,i=4096") != NULL);
	cr_assert(asprintf(&auth, "n=,r=fyko+d2lbbFgONRv9qkxdawL,%s,c=biws,r=%s", sf, ex.nonce) >
		  0);
	client_side(PG15_PASSWORD, s.salt, s.salt_len, 4096, auth, proof, sig);
	cr_assert(asprintf(&cfinal, "c=biws,r=%s,p=%s", ex.nonce, proof) > 0);
	cr_assert_eq(final_str(&ex, cfinal, &sfinal), SCRAM_OK);
	snprintf(expect_final, sizeof(expect_final), "v=%s", sig);
	cr_assert_str_eq(sfinal, expect_final);
	free(sf);
	free(sfinal);
	free(auth);
	free(cfinal);
	scram_exchange_free(&ex);
}

Test(auth_scram, server_nonces_are_random)
{
	struct scram_secret s = rfc_secret();
	struct scram_exchange a, b;
	char *sa = NULL, *sb = NULL;

	scram_exchange_init(&a, &s, NULL);
	scram_exchange_init(&b, &s, NULL);
	cr_assert(rfc_client_first(&a, &sa));
	cr_assert(rfc_client_first(&b, &sb));
	cr_assert_str_neq(a.nonce, b.nonce);
	for (const char *p = a.nonce; *p != '\0'; p++)
		cr_assert(*p > 0x20 && *p < 0x7f && *p != ',');
	free(sa);
	free(sb);
	scram_exchange_free(&a);
	scram_exchange_free(&b);
}

/* Server-first of a mock exchange for seed, checked to look like a real one. */
static char *mock_server_first(const char *seed, struct scram_exchange *ex)
{
	char *sf = NULL;
	size_t n;

	scram_exchange_init(ex, NULL, seed);
	cr_assert(ex->mock);
	cr_assert(rfc_client_first(ex, &sf));
	n = strlen(sf);
	cr_assert(strncmp(sf, "r=rOprNGfwEbeRWgbNEkqO", 22) == 0);
	cr_assert(n > 9 && strcmp(sf + n - 7, ",i=4096") == 0);
	/* ",s=" + 24 base64 characters for a 16-byte salt, like a real verifier */
	cr_assert(strncmp(sf + n - 7 - 27, ",s=", 3) == 0);
	cr_assert_eq(sf[n - 7 - 1], '=');
	cr_assert_eq(sf[n - 7 - 2], '=');
	return sf;
}

Test(auth_scram, mock_exchange_looks_real_and_always_fails)
{
	struct scram_exchange a, b, c;
	char *sa = mock_server_first("ghost", &a);
	char *sb = mock_server_first("ghost", &b);
	char *sc = mock_server_first("phantom", &c);
	char *auth = NULL, *cfinal = NULL, *sfinal = NULL;
	char proof[64], sig[64];
	const char *salt_a = strstr(sa, ",s="), *salt_b = strstr(sb, ",s=");
	const char *salt_c = strstr(sc, ",s=");

	/* same user, same salt (asking twice reveals nothing); another user, another salt */
	cr_assert_str_eq(salt_a, salt_b);
	cr_assert_str_neq(salt_a, salt_c);

	/* even a proof computed correctly from the mock salt for some password fails */
	cr_assert(asprintf(&auth, "n=user,r=rOprNGfwEbeRWgbNEkqO,%s,c=biws,r=%s", sa, a.nonce) > 0);
	client_side("pencil", a.secret.salt, a.secret.salt_len, 4096, auth, proof, sig);
	cr_assert(asprintf(&cfinal, "c=biws,r=%s,p=%s", a.nonce, proof) > 0);
	cr_assert_eq(final_str(&a, cfinal, &sfinal), SCRAM_WRONG_PROOF);
	cr_assert_null(sfinal);

	/* and a malformed final is still reported as malformed */
	cr_assert_eq(final_str(&b, "c=biws", &sfinal), SCRAM_MALFORMED);

	free(auth);
	free(cfinal);
	free(sa);
	free(sb);
	free(sc);
	scram_exchange_free(&a);
	scram_exchange_free(&b);
	scram_exchange_free(&c);
}

static void expect_bad_first(const char *msg, size_t len)
{
	struct scram_secret s = rfc_secret();
	struct scram_exchange ex;
	char *sf = (char *)"untouched";

	scram_exchange_init(&ex, &s, NULL);
	cr_expect_not(scram_handle_client_first(&ex, msg, len, RFC_SERVER_NONCE, &sf),
		      "accepted client-first \"%.*s\"", (int)len, msg);
	cr_expect_null(sf);
	scram_exchange_free(&ex);
}

#define BAD_FIRST(s) expect_bad_first((s), sizeof(s) - 1)

Test(auth_scram, malformed_client_first)
{
	char *huge;

	BAD_FIRST("");
	BAD_FIRST("n");
	BAD_FIRST("n,");
	BAD_FIRST("n,,");
	BAD_FIRST("p=tls-server-end-point,,n=user,r=abc");  /* channel binding not offered */
	BAD_FIRST("x,,n=user,r=abc");                       /* bad gs2 flag */
	BAD_FIRST("n,a=admin,n=user,r=abc");                /* authzid */
	BAD_FIRST("n,n=user,r=abc");                        /* short gs2 header */
	BAD_FIRST("n,,m=ext,n=user,r=abc");                 /* mandatory extension */
	BAD_FIRST("n,,r=abc");                              /* no user name */
	BAD_FIRST("n,,n=user");                             /* no nonce */
	BAD_FIRST("n,,n=user,");                            /* no nonce */
	BAD_FIRST("n,,n=user,r=");                          /* empty nonce */
	BAD_FIRST("n,,n=user,r=ab cd");                     /* space in nonce */
	BAD_FIRST("n,,n=user,r=ab\x01" "cd");               /* control character */
	BAD_FIRST("n,,n=user,r=ab\xc3\xa9" "cd");           /* non-ASCII */
	BAD_FIRST("n,,n=user,r=abc,");                      /* trailing comma */
	BAD_FIRST("n,,n=user,r=abc,junk");                  /* extension without '=' */
	BAD_FIRST("n,,n=user,r=abc,1=x");                   /* extension name not a letter */
	BAD_FIRST("n,,u=user,r=abc");                       /* wrong attribute */
	BAD_FIRST("n,,n=user,r=abc\0,x=1");                 /* embedded NUL */
	BAD_FIRST("n,,n=us\0er,r=abc");

	huge = malloc(100000);
	cr_assert_not_null(huge);
	memset(huge, 'a', 100000);
	memcpy(huge, "n,,n=user,r=", 12);
	expect_bad_first(huge, 100000);
	free(huge);
}

Test(auth_scram, client_first_accepts_y_and_extensions)
{
	struct scram_secret s = rfc_secret();
	struct scram_exchange ex;
	const char *msg = "y,,n=user,r=abc,x=some-extension";
	char *sf = NULL, *sfinal = NULL;

	scram_exchange_init(&ex, &s, NULL);
	cr_assert(scram_handle_client_first(&ex, msg, strlen(msg), "srv", &sf));
	cr_assert_str_eq(sf, "r=abcsrv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
	cr_assert_str_eq(ex.client_first_bare, "n=user,r=abc,x=some-extension");
	/* "y,," was sent, so c= must be "eSws", not "biws" */
	cr_assert_eq(final_str(&ex, "c=biws,r=abcsrv,p=" RFC_PROOF, &sfinal), SCRAM_MALFORMED);
	free(sf);
	scram_exchange_free(&ex);

	scram_exchange_init(&ex, &s, NULL);
	cr_assert(scram_handle_client_first(&ex, msg, strlen(msg), "srv", &sf));
	cr_assert_eq(final_str(&ex, "c=eSws,r=abcsrv,p=" RFC_PROOF, &sfinal), SCRAM_WRONG_PROOF);
	free(sf);
	scram_exchange_free(&ex);
}

Test(auth_scram, bad_server_nonce_refused)
{
	struct scram_secret s = rfc_secret();
	struct scram_exchange ex;
	char *sf = NULL;

	scram_exchange_init(&ex, &s, NULL);
	cr_assert_not(scram_handle_client_first(&ex, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						"a,b", &sf));
	scram_exchange_free(&ex);
}

static void expect_bad_final(const char *msg, size_t len)
{
	struct scram_exchange ex;
	char *sfinal = (char *)"untouched";

	rfc_first(&ex);
	cr_expect_eq(scram_handle_client_final(&ex, msg, len, &sfinal), SCRAM_MALFORMED,
		     "client-final \"%.*s\" not malformed", (int)len, msg);
	cr_expect_null(sfinal);
	scram_exchange_free(&ex);
}

#define BAD_FINAL(s) expect_bad_final((s), sizeof(s) - 1)

Test(auth_scram, malformed_client_final)
{
	BAD_FINAL("");
	BAD_FINAL("r=" RFC_NONCE ",p=" RFC_PROOF);                  /* no c= */
	BAD_FINAL("c=eSws,r=" RFC_NONCE ",p=" RFC_PROOF);           /* "y,," for a "n,," client */
	BAD_FINAL("c=cD10bHMtdW5pcXVlLCw=,r=" RFC_NONCE ",p=" RFC_PROOF); /* "p=tls-unique,," */
	BAD_FINAL("c=biws,p=" RFC_PROOF);                           /* no r= */
	BAD_FINAL("c=biws,r=" RFC_NONCE);                           /* no p= */
	BAD_FINAL("c=biws,r=" RFC_NONCE ",");                       /* no p= */
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=");                     /* empty proof */
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=dHzb*apWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ");
	/* 31 bytes */
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==");
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=" RFC_PROOF "AAAA");    /* 35 bytes */
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7An dVQ=");
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=" RFC_PROOF ",x=1");    /* proof not last */
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=" RFC_PROOF ",");
	BAD_FINAL("c=biws,r=" RFC_NONCE ",p=" RFC_PROOF "\0");      /* embedded NUL */
	BAD_FINAL("c=biws,r=" RFC_NONCE "\0,p=" RFC_PROOF);
	BAD_FINAL("c=biws,r=" RFC_NONCE ",1=x,p=" RFC_PROOF);       /* bad extension name */
}

Test(auth_scram, nonce_mismatch_is_malformed)
{
	BAD_FINAL("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=" RFC_PROOF);                /* client part */
	BAD_FINAL("c=biws,r=" RFC_NONCE "x,p=" RFC_PROOF);                      /* longer */
	BAD_FINAL("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=" RFC_PROOF);
	BAD_FINAL("c=biws,r=,p=" RFC_PROOF);
}

Test(auth_scram, extension_before_proof_is_well_formed)
{
	struct scram_exchange ex;
	char *sfinal = NULL;

	rfc_first(&ex);
	/* well formed, but the extension is part of the AuthMessage, so the RFC proof is wrong */
	cr_assert_eq(final_str(&ex, "c=biws,r=" RFC_NONCE ",x=ext,p=" RFC_PROOF, &sfinal),
		     SCRAM_WRONG_PROOF);
	scram_exchange_free(&ex);
}

Test(auth_scram, steps_out_of_order)
{
	struct scram_secret s = rfc_secret();
	struct scram_exchange ex;
	char *sf = NULL, *sfinal = NULL;

	scram_exchange_init(&ex, &s, NULL);
	cr_assert_eq(final_str(&ex, RFC_CLIENT_FINAL, &sfinal), SCRAM_MALFORMED);
	scram_exchange_free(&ex);

	rfc_first(&ex);
	cr_assert_not(scram_handle_client_first(&ex, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						RFC_SERVER_NONCE, &sf));
	cr_assert_null(sf);
	scram_exchange_free(&ex);

	/* one attempt per exchange: a right proof after a wrong one is refused */
	rfc_first(&ex);
	cr_assert_eq(final_str(&ex, "c=biws,r=" RFC_NONCE ",p=" RFC_PROOF ",", &sfinal),
		     SCRAM_MALFORMED);
	cr_assert_eq(final_str(&ex, RFC_CLIENT_FINAL, &sfinal), SCRAM_MALFORMED);
	cr_assert_null(sfinal);
	scram_exchange_free(&ex);

	/* a failed first step ends the exchange too */
	scram_exchange_init(&ex, &s, NULL);
	cr_assert_not(scram_handle_client_first(&ex, "n,,r=abc", 8, NULL, &sf));
	cr_assert_not(scram_handle_client_first(&ex, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
						NULL, &sf));
	scram_exchange_free(&ex);
}

/* Pieces of RFC_VERIFIER, to build broken ones from. */
#define V_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define V_STORED "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
#define V_SERVER "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define V_KEYS V_STORED ":" V_SERVER
#define B64_31 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
#define B64_33 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define B64_66 B64_33 B64_33

Test(auth_scram, bad_verifiers)
{
	static const char *const bad[] = {
		"",
		"md5c41fd6fde05c2d13ba8975297f9289e4",
		"SCRAM-SHA-1$4096:" V_SALT "$" V_KEYS,
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$4096",
		"SCRAM-SHA-256$4096:" V_SALT,
		"SCRAM-SHA-256$4096:" V_SALT "$" V_STORED,
		"SCRAM-SHA-256$4096:" V_SALT "$" V_STORED ":",
		/* iterations: zero, negative, blank, trailing junk, beyond int */
		"SCRAM-SHA-256$0:" V_SALT "$" V_KEYS,
		"SCRAM-SHA-256$-1:" V_SALT "$" V_KEYS,
		"SCRAM-SHA-256$ 4096:" V_SALT "$" V_KEYS,
		"SCRAM-SHA-256$4096x:" V_SALT "$" V_KEYS,
		"SCRAM-SHA-256$99999999999:" V_SALT "$" V_KEYS,
		"SCRAM-SHA-256$:" V_SALT "$" V_KEYS,
		/* salt: empty, not a multiple of 4, '=' in the middle, bad character, too long */
		"SCRAM-SHA-256$4096:$" V_KEYS,
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$" V_KEYS,
		"SCRAM-SHA-256$4096:W22Z=J0SNY7soEsUEjb6gQ==$" V_KEYS,
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7s!EsUEjb6gQ==$" V_KEYS,
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7s EsUEjb6gQ==$" V_KEYS,
		"SCRAM-SHA-256$4096:" B64_66 "$" V_KEYS,
		/* keys of 31 and 33 bytes, trailing garbage, whitespace, an extra field */
		"SCRAM-SHA-256$4096:" V_SALT "$" B64_31 ":" V_SERVER,
		"SCRAM-SHA-256$4096:" V_SALT "$" V_STORED ":" B64_33,
		"SCRAM-SHA-256$4096:" V_SALT "$" V_KEYS "x",
		"SCRAM-SHA-256$4096:" V_SALT "$" V_KEYS " ",
		"SCRAM-SHA-256$4096:" V_SALT "$" V_KEYS ":x",
	};
	struct scram_secret s;

	cr_assert(scram_parse_secret("SCRAM-SHA-256$4096:" V_SALT "$" V_KEYS, &s));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_not(scram_parse_secret(bad[i], &s), "accepted %zu: %s", i, bad[i]);
	cr_expect_not(scram_parse_secret(NULL, &s));
}

Test(auth_scram, derivation_refuses_bad_parameters)
{
	uint8_t big[SCRAM_MAX_SALT + 1] = {0};
	struct scram_secret s;

	cr_expect_not(scram_secret_from_password("pw", rfc_salt, 0, 4096, &s));
	cr_expect_not(scram_secret_from_password("pw", big, sizeof(big), 4096, &s));
	cr_expect_not(scram_secret_from_password("pw", rfc_salt, sizeof(rfc_salt), 0, &s));
	cr_expect_not(scram_secret_from_password(NULL, rfc_salt, sizeof(rfc_salt), 4096, &s));
}
