/*
 * SCRAM-SHA-256 server side, following PostgreSQL's src/backend/libpq/auth-scram.c
 * check for check, so that any client PostgreSQL accepts is accepted here and
 * anything it rejects as malformed is rejected too.  Every byte of the client's
 * messages is untrusted: lengths are capped, NULs refused, attributes required in
 * order, base64 decoded strictly into fixed-size buffers.
 */
#include "proxy/auth_scram.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "pool/scram_crypto.h"
#include "proxy/random.h"

/* Real messages are under 200 bytes; anything near this is an attack or a bug. */
#define SCRAM_MAX_MESSAGE_LEN 2048
/* PostgreSQL's SCRAM_RAW_NONCE_LEN and SCRAM_DEFAULT_SALT_LEN. */
#define SCRAM_RAW_NONCE_LEN 18
#define SCRAM_SALT_LEN 16

struct span {
	const char *s;
	size_t len;
};

/* The parts one after another, NUL-terminated and malloc'd (asprintf's printf
 * machinery cost more than the rest of a login's string handling). */
static char *concat(const struct span *parts, size_t n)
{
	size_t len = 0, o = 0;
	char *out;

	for (size_t i = 0; i < n; i++)
		len += parts[i].len;
	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		memcpy(out + o, parts[i].s, parts[i].len);
		o += parts[i].len;
	}
	out[o] = '\0';
	return out;
}

#define SPAN(str) ((struct span){(str), strlen(str)})

bool scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
				int iterations, struct scram_secret *out)
{
	if (salt_len > SCRAM_MAX_SALT)
		return false;
	/*
	 * PostgreSQL runs the password through SASLprep first.  That is the identity
	 * for ASCII, and for most NFC text; we have no Unicode tables, so other
	 * non-ASCII passwords are used as given (libpq does the same when SASLprep
	 * fails) and may not match what a client derives.
	 */
	if (!scram_password_keys(password, salt, salt_len, iterations, NULL, out->stored_key,
				 out->server_key))
		return false;
	out->iterations = iterations;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	return true;
}

static bool decode_field(const char *s, const char *end, uint8_t *out, size_t cap, size_t want,
			 size_t *got)
{
	size_t n = 0;

	if (end == NULL || !scram_b64_decode(s, (size_t)(end - s), out, cap, &n))
		return false;
	if (want != 0 ? n != want : n == 0)
		return false;
	if (got != NULL)
		*got = n;
	return true;
}

bool scram_parse_secret(const char *text, struct scram_secret *out)
{
	static const char prefix[] = "SCRAM-SHA-256$";
	struct scram_secret s;
	const char *p, *colon, *dollar, *colon2, *end;
	char *num_end;
	long iter;

	if (text == NULL || strncmp(text, prefix, sizeof(prefix) - 1) != 0)
		return false;
	p = text + sizeof(prefix) - 1;
	colon = strchr(p, ':');
	dollar = colon != NULL ? strchr(colon + 1, '$') : NULL;
	colon2 = dollar != NULL ? strchr(dollar + 1, ':') : NULL;
	if (colon2 == NULL)
		return false;
	end = colon2 + 1 + strlen(colon2 + 1);

	/* strtol would accept leading blanks and a sign; a verifier has neither */
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	iter = strtol(p, &num_end, 10);
	if (errno != 0 || num_end != colon || iter < 1 || iter > INT_MAX)
		return false;

	memset(&s, 0, sizeof(s));
	s.iterations = (int)iter;
	if (!decode_field(colon + 1, dollar, s.salt, sizeof(s.salt), 0, &s.salt_len) ||
	    !decode_field(dollar + 1, colon2, s.stored_key, sizeof(s.stored_key), SCRAM_KEY_LEN,
			  NULL) ||
	    !decode_field(colon2 + 1, end, s.server_key, sizeof(s.server_key), SCRAM_KEY_LEN, NULL))
		return false;
	*out = s;
	OPENSSL_cleanse(&s, sizeof(s));
	return true;
}

/*
 * Mock salts are SHA-256(seed || process_secret): stable for one user name, so
 * asking twice gives the same answer as for a real user, and unpredictable from
 * outside, so a client cannot compute it and tell that the user does not exist.
 */
static uint8_t mock_process_secret[32];
static pthread_once_t mock_once = PTHREAD_ONCE_INIT;

static void mock_secret_init(void)
{
	if (RAND_bytes(mock_process_secret, sizeof(mock_process_secret)) != 1)
		log_error("event=scram_mock_init_failed why=\"RAND_bytes failed; mock salts are "
			  "predictable\"");
}

static void mock_secret(const char *seed, struct scram_secret *out)
{
	uint8_t digest[SCRAM_KEY_LEN];

	(void)pthread_once(&mock_once, mock_secret_init);
	if (seed == NULL)
		seed = "";
	bool ok = scram_hmac(mock_process_secret, sizeof(mock_process_secret), seed, strlen(seed),
			     digest);
	if (!ok)
		memset(digest, 0x5a, sizeof(digest));
	memset(out, 0, sizeof(*out));
	out->iterations = SCRAM_DEFAULT_ITERATIONS;
	memcpy(out->salt, digest, SCRAM_SALT_LEN);
	out->salt_len = SCRAM_SALT_LEN;
	/* Keys nobody can match; only there so a mock final step costs the same. */
	memcpy(out->stored_key, digest, SCRAM_KEY_LEN);
	out->stored_key[0] ^= 0xff;
}

void scram_exchange_init(struct scram_exchange *ex, const struct scram_secret *secret,
			 const char *mock_seed)
{
	memset(ex, 0, sizeof(*ex));
	ex->step = SCRAM_WANT_CLIENT_FIRST;
	if (secret != NULL) {
		ex->secret = *secret;
	} else {
		ex->mock = true;
		mock_secret(mock_seed, &ex->secret);
	}
}

void scram_exchange_free(struct scram_exchange *ex)
{
	free(ex->client_first_bare);
	free(ex->server_first);
	free(ex->nonce);
	OPENSSL_cleanse(&ex->secret, sizeof(ex->secret));
	OPENSSL_cleanse(ex->client_key, sizeof(ex->client_key));
	ex->have_client_key = false;
	ex->client_first_bare = NULL;
	ex->server_first = NULL;
	ex->nonce = NULL;
	ex->step = SCRAM_DONE;
}

/* RFC 5802 "printable": %x21-2B / %x2D-7E, i.e. visible ASCII except ','. */
static bool is_printable(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	}
	return true;
}

/*
 * Reads one "x=value" attribute at *p, up to the next ',' (consumed) or the end.
 * want is the attribute letter required, or 0 for any letter (extensions).  A
 * trailing ',' with nothing after it is refused.
 */
static bool read_attr(const char **p, char want, char *attr, const char **val, size_t *val_len)
{
	const char *s = *p;
	const char *comma;
	char a = s[0];

	if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || s[1] != '=')
		return false;
	if (want != 0 && a != want)
		return false;
	s += 2;
	comma = strchr(s, ',');
	*val = s;
	*val_len = comma != NULL ? (size_t)(comma - s) : strlen(s);
	if (comma != NULL) {
		if (comma[1] == '\0')
			return false;
		*p = comma + 1;
	} else {
		*p = s + *val_len;
	}
	if (attr != NULL)
		*attr = a;
	return true;
}

/* A NUL-terminated copy of a client message in buf (the caller's stack: no allocation
 * per message), or NULL if it cannot be one. */
static char *copy_message(const char *msg, size_t len, const char *what,
			  char buf[SCRAM_MAX_MESSAGE_LEN + 1])
{
	if (msg == NULL || len == 0 || len > SCRAM_MAX_MESSAGE_LEN) {
		log_debug("event=scram_malformed msg=%s why=length len=%zu", what, len);
		return NULL;
	}
	if (memchr(msg, '\0', len) != NULL) {
		log_debug("event=scram_malformed msg=%s why=embedded_nul", what);
		return NULL;
	}
	memcpy(buf, msg, len);
	buf[len] = '\0';
	return buf;
}

static bool malformed(const char *what, const char *why)
{
	log_debug("event=scram_malformed msg=%s why=%s", what, why);
	return false;
}

/* ---- channel binding (tls-server-end-point) ----------------------------------- */

/* The one binding type PostgreSQL (and so libpq) knows; the gs2 header that names it,
 * without authzid (refused anyway), is what client-final's c= starts with. */
#define CBIND_TYPE "tls-server-end-point"
#define CBIND_HEADER "p=" CBIND_TYPE ",,"

static const char mechanisms_plain[] = "SCRAM-SHA-256\0";
static const char mechanisms_plus[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";

bool scram_offer_channel_binding(struct scram_exchange *ex, const uint8_t *cert_hash, size_t len)
{
	if (len == 0 || len > sizeof(ex->cbind_data))
		return false;
	memcpy(ex->cbind_data, cert_hash, len);
	ex->cbind_len = len;
	ex->cbind_offered = true;
	return true;
}

const char *scram_mechanisms(const struct scram_exchange *ex, size_t *len)
{
	/* sizeof counts the string's own NUL: the empty name that ends the list. */
	*len = ex->cbind_offered ? sizeof(mechanisms_plus) : sizeof(mechanisms_plain);
	return ex->cbind_offered ? mechanisms_plus : mechanisms_plain;
}

bool scram_select_mechanism(struct scram_exchange *ex, const char *mechanism)
{
	if (strcmp(mechanism, "SCRAM-SHA-256") == 0) {
		ex->cbind_in_use = false;
		return true;
	}
	/* PLUS where it was not offered (no TLS) is no mechanism of this server. */
	if (ex->cbind_offered && strcmp(mechanism, "SCRAM-SHA-256-PLUS") == 0) {
		ex->cbind_in_use = true;
		return true;
	}
	return false;
}

const char *scram_failure(const struct scram_exchange *ex, const char **sqlstate)
{
	*sqlstate = ex->fail_sqlstate ? ex->fail_sqlstate : "08P01";
	return ex->fail_message ? ex->fail_message : "malformed SCRAM message";
}

/* A refusal PostgreSQL words itself (auth-scram.c), kept for scram_failure. */
static bool refuse(struct scram_exchange *ex, const char *sqlstate, const char *message,
		   const char *why)
{
	ex->fail_sqlstate = sqlstate;
	ex->fail_message = message;
	log_debug("event=scram_refused why=%s", why);
	return false;
}

/*
 * The gs2 flag of client-first against the mechanism chosen, as PostgreSQL checks it:
 * 'n' and 'y' only without PLUS, and 'y' (the client can bind but believes we cannot)
 * refused when PLUS was offered: someone in the middle took it out of the list; 'p'
 * only with PLUS, and only for tls-server-end-point.  *p moves past the flag (and its
 * "=type") to the ',' that ends it.
 */
static bool check_gs2_flag(struct scram_exchange *ex, const char **p)
{
	const char *s = *p;

	switch (s[0]) {
	case 'n':
	case 'y':
		if (ex->cbind_in_use)
			return refuse(ex, "08P01", "malformed SCRAM message",
				      "plus_without_binding_data");
		if (s[0] == 'y' && ex->cbind_offered)
			return refuse(ex, "08P01", "SCRAM channel binding negotiation error",
				      "binding_downgrade");
		*p = s + 1;
		return true;
	case 'p':
		if (!ex->cbind_in_use)
			return refuse(ex, "08P01", "malformed SCRAM message",
				      "binding_data_without_plus");
		const char *end = s[1] == '=' ? strchr(s + 2, ',') : NULL;
		if (!end)
			return malformed("client-first", "bad_gs2_header");
		if ((size_t)(end - s - 2) != strlen(CBIND_TYPE) ||
		    memcmp(s + 2, CBIND_TYPE, strlen(CBIND_TYPE)) != 0)
			return refuse(ex, "08P01", "unsupported SCRAM channel-binding type",
				      "binding_type");
		*p = end;
		return true;
	default:
		return malformed("client-first", "bad_gs2_flag");
	}
}

/*
 * client-final's c=: base64 of the gs2 header, followed under PLUS by the certificate
 * hash; a PLUS client that finds another hash talks to another certificate than ours,
 * i.e. through someone who holds the TLS session in the middle.
 */
static bool check_binding(struct scram_exchange *ex, const char *val, size_t len)
{
	if (!ex->cbind_in_use) {
		const char *expect = ex->cbind_flag == 'y' ? "eSws" : "biws";
		if (len != 4 || memcmp(val, expect, 4) != 0)
			return refuse(ex, "08P01",
				      "unexpected SCRAM channel-binding attribute in "
				      "client-final-message",
				      "unexpected_channel_binding");
		return true;
	}
	uint8_t input[sizeof(CBIND_HEADER) - 1 + SCRAM_CBIND_MAX];
	char expect[SCRAM_B64_LEN(sizeof(input)) + 1];
	size_t header_len = sizeof(CBIND_HEADER) - 1;
	memcpy(input, CBIND_HEADER, header_len);
	memcpy(input + header_len, ex->cbind_data, ex->cbind_len);
	scram_b64_encode(input, header_len + ex->cbind_len, expect);
	if (len != strlen(expect) || CRYPTO_memcmp(val, expect, len) != 0)
		return refuse(ex, "28000", "SCRAM channel binding check failed",
			      "binding_mismatch");
	return true;
}

/*
 * Parses gs2-header and client-first-message-bare.  PostgreSQL's rules: the gs2 flag
 * as check_gs2_flag says, no authzid, no mandatory extension, then n= (ignored: the
 * startup packet names the user), r= with a printable nonce, then any optional
 * extensions.
 */
static bool parse_client_first(struct scram_exchange *ex, const char *buf, char *cbind_flag,
			       const char **bare, const char **nonce, size_t *nonce_len)
{
	const char *p = buf;
	const char *val;
	size_t len;

	if (!check_gs2_flag(ex, &p))
		return false;
	if (p[0] != ',')
		return malformed("client-first", "bad_gs2_header");
	if (p[1] == 'a')
		return malformed("client-first", "authzid_unsupported");
	if (p[1] != ',')
		return malformed("client-first", "bad_gs2_header");
	*cbind_flag = buf[0];
	p += 2;
	*bare = p;
	if (*p == 'm')
		return malformed("client-first", "mandatory_extension");
	if (!read_attr(&p, 'n', NULL, &val, &len))
		return malformed("client-first", "missing_username");
	if (!read_attr(&p, 'r', NULL, nonce, nonce_len))
		return malformed("client-first", "missing_nonce");
	if (!is_printable(*nonce, *nonce_len))
		return malformed("client-first", "bad_nonce");
	while (*p != '\0') {
		if (!read_attr(&p, 0, NULL, &val, &len))
			return malformed("client-first", "bad_extension");
	}
	return true;
}

static bool make_server_nonce(const char *given, char *out, size_t cap)
{
	uint8_t raw[SCRAM_RAW_NONCE_LEN];

	if (given != NULL) {
		size_t n = strlen(given);
		if (!is_printable(given, n) || n >= cap)
			return false;
		memcpy(out, given, n + 1);
		return true;
	}
	if (cap < SCRAM_B64_LEN(sizeof(raw)) + 1 || !random_bytes(raw, sizeof(raw))) {
		log_error("event=scram_nonce_failed why=\"RAND_bytes failed\"");
		return false;
	}
	scram_b64_encode(raw, sizeof(raw), out);
	return true;
}

/* n in decimal, as "%d" would write it; snprintf's format parsing cost more than the
 * rest of server-first. */
static const char *format_count(int n, char out[12])
{
	unsigned int u = n < 0 ? 0u - (unsigned int)n : (unsigned int)n;
	char *p = out + 11;

	*p = '\0';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (n < 0)
		*--p = '-';
	return p;
}

/* ex->nonce (client's + server's) and ex->server_first "r=<nonce>,s=<salt>,i=<n>";
 * false when out of memory. */
static bool make_server_first(struct scram_exchange *ex, const char *cnonce, size_t cnonce_len,
			      const char *snonce)
{
	char salt_b64[SCRAM_B64_LEN(SCRAM_MAX_SALT) + 1];
	char iterations_buf[12];
	const struct span nonce[] = {{cnonce, cnonce_len}, SPAN(snonce)};

	ex->nonce = concat(nonce, ARRAY_SIZE(nonce));
	if (ex->nonce == NULL)
		return false;
	scram_b64_encode(ex->secret.salt, ex->secret.salt_len, salt_b64);
	const char *iterations = format_count(ex->secret.iterations, iterations_buf);
	const struct span first[] = {SPAN("r="),     SPAN(ex->nonce), SPAN(",s="),
				     SPAN(salt_b64), SPAN(",i="),     SPAN(iterations)};
	ex->server_first = concat(first, ARRAY_SIZE(first));
	return ex->server_first != NULL;
}

bool scram_handle_client_first(struct scram_exchange *ex, const char *msg, size_t len,
			       const char *server_nonce, char **server_first)
{
	char snonce[SCRAM_MAX_MESSAGE_LEN], copy[SCRAM_MAX_MESSAGE_LEN + 1];
	const char *bare, *cnonce;
	size_t cnonce_len;
	char *buf, *out = NULL;
	char cbind_flag;

	*server_first = NULL;
	if (ex->step != SCRAM_WANT_CLIENT_FIRST)
		return malformed("client-first", "out_of_order");
	ex->step = SCRAM_DONE; /* a failed first step ends the exchange */
	buf = copy_message(msg, len, "client-first", copy);
	if (buf == NULL)
		return false;
	if (!parse_client_first(ex, buf, &cbind_flag, &bare, &cnonce, &cnonce_len) ||
	    !make_server_nonce(server_nonce, snonce, sizeof(snonce)))
		goto fail;

	ex->client_first_bare = strdup(bare);
	if (!make_server_first(ex, cnonce, cnonce_len, snonce))
		goto fail;
	out = strdup(ex->server_first);
	if (ex->client_first_bare == NULL || out == NULL)
		goto fail;
	ex->cbind_flag = cbind_flag;
	ex->step = SCRAM_WANT_CLIENT_FINAL;
	*server_first = out;
	return true;
fail:
	free(out);
	return false;
}

/*
 * Parses client-final-message: c= as check_binding says, r= must be the whole nonce,
 * optional extensions, then p= with a 32-byte proof as the very last attribute.
 * without_proof ends where ",p=" starts: it is part of the AuthMessage.
 */
static bool parse_client_final(struct scram_exchange *ex, const char *buf, size_t *without_proof,
			       uint8_t proof[SCRAM_KEY_LEN])
{
	const char *p = buf;
	const char *attr_start, *val;
	size_t len, n;
	char attr;

	if (!read_attr(&p, 'c', NULL, &val, &len))
		return malformed("client-final", "missing_channel_binding");
	if (!check_binding(ex, val, len))
		return false;
	if (!read_attr(&p, 'r', NULL, &val, &len))
		return malformed("client-final", "missing_nonce");
	if (len != strlen(ex->nonce) || memcmp(val, ex->nonce, len) != 0)
		return malformed("client-final", "nonce_mismatch");
	do {
		attr_start = p;
		if (*p == '\0' || !read_attr(&p, 0, &attr, &val, &len))
			return malformed("client-final", "missing_proof");
	} while (attr != 'p');
	if (*p != '\0')
		return malformed("client-final", "garbage_after_proof");
	if (!scram_b64_decode(val, len, proof, SCRAM_KEY_LEN, &n) || n != SCRAM_KEY_LEN)
		return malformed("client-final", "bad_proof");
	*without_proof = (size_t)(attr_start - 1 - buf);
	return true;
}

/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof. */
static char *make_auth_message(const struct scram_exchange *ex, const char *final,
			       size_t without_proof)
{
	const struct span parts[] = {SPAN(ex->client_first_bare),
				     SPAN(","),
				     SPAN(ex->server_first),
				     SPAN(","),
				     {final, without_proof}};

	return concat(parts, ARRAY_SIZE(parts));
}

/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); right if H(ClientKey) == StoredKey. */
static bool proof_matches(const struct scram_secret *s, const char *auth_msg,
			  const uint8_t proof[SCRAM_KEY_LEN], uint8_t keep[SCRAM_KEY_LEN])
{
	uint8_t sig[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	bool ok;

	ok = scram_hmac(s->stored_key, SCRAM_KEY_LEN, auth_msg, strlen(auth_msg), sig);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ sig[i];
	ok = ok && scram_sha256(client_key, SCRAM_KEY_LEN, stored) &&
	     CRYPTO_memcmp(stored, s->stored_key, SCRAM_KEY_LEN) == 0;
	if (ok)
		memcpy(keep, client_key, SCRAM_KEY_LEN);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

static char *make_server_final(const struct scram_secret *s, const char *auth_msg)
{
	uint8_t sig[SCRAM_KEY_LEN];
	char *out = malloc(2 + SCRAM_B64_LEN(SCRAM_KEY_LEN) + 1);

	if (out == NULL)
		return NULL;
	if (!scram_hmac(s->server_key, SCRAM_KEY_LEN, auth_msg, strlen(auth_msg), sig)) {
		free(out);
		return NULL;
	}
	memcpy(out, "v=", 2);
	scram_b64_encode(sig, sizeof(sig), out + 2);
	return out;
}

enum scram_result scram_handle_client_final(struct scram_exchange *ex, const char *msg, size_t len,
					    char **server_final)
{
	uint8_t proof[SCRAM_KEY_LEN];
	enum scram_result res = SCRAM_MALFORMED;
	size_t without_proof = 0;
	char copy[SCRAM_MAX_MESSAGE_LEN + 1];
	char *buf, *auth_msg = NULL;
	bool right;

	*server_final = NULL;
	if (ex->step != SCRAM_WANT_CLIENT_FINAL) {
		(void)malformed("client-final", "out_of_order");
		return SCRAM_MALFORMED;
	}
	ex->step = SCRAM_DONE; /* one attempt per exchange, whatever happens */
	buf = copy_message(msg, len, "client-final", copy);
	if (buf == NULL)
		return SCRAM_MALFORMED;
	if (!parse_client_final(ex, buf, &without_proof, proof))
		goto out;
	auth_msg = make_auth_message(ex, buf, without_proof);
	if (auth_msg == NULL)
		goto out;
	/* The mock verifies too, so an unknown user costs what a wrong password does. */
	right = proof_matches(&ex->secret, auth_msg, proof, ex->client_key);
	if (!right || ex->mock) {
		OPENSSL_cleanse(ex->client_key, sizeof(ex->client_key));
		res = SCRAM_WRONG_PROOF;
		goto out;
	}
	*server_final = make_server_final(&ex->secret, auth_msg);
	/* Out of memory is no protocol violation, but it must not let anyone in. */
	res = *server_final != NULL ? SCRAM_OK : SCRAM_WRONG_PROOF;
	ex->have_client_key = res == SCRAM_OK;
out:
	free(auth_msg);
	return res;
}

bool scram_exchange_client_key(const struct scram_exchange *ex, uint8_t out[SCRAM_KEY_LEN])
{
	if (!ex->have_client_key)
		return false;
	memcpy(out, ex->client_key, SCRAM_KEY_LEN);
	return true;
}
