#include "proxy/client_auth.h"

#include "proxy/client_lists.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "proxy/auth_md5.h"
#include "proxy/auth_query.h"
#include "proxy/client.h"
#include "proxy/client_hba.h"
#include "proxy/client_limits.h"
#include "proxy/client_tls.h"
#include "common/stream.h"
#include "proxy/random.h"
#include "proxy/worker.h"

/* A password message is small; PostgreSQL caps it likewise (PG_MAX_AUTH_TOKEN_LENGTH). */
#define MAX_PASSWORD_MESSAGE 65535

/* Why a login failed when it is not the password itself, for corral's log only (as
 * PostgreSQL's server log says "Role does not exist"; the client hears no more than a
 * wrong password would tell it). */
static const char *failure_reason(const struct client *c)
{
	if (!c->login->secret)
		return c->login->authq_tried
			       ? "user not in auth_file, and auth_query found no password for it"
			       : "user not in auth_file";
	if (c->auth_method == AUTH_METHOD_SCRAM && c->login->secret->kind == SECRET_MD5)
		return "auth_file secret is an md5 hash, which cannot serve SCRAM (auth_type = "
		       "scram-sha-256): give its password or a SCRAM verifier";
	return NULL;
}

/* Logged with its reason; counted per source address, past auth_failure_delay the
 * answer waits (client_limits.h). */
static void auth_failed(struct client *c)
{
	const char *why = failure_reason(c);
	if (why) {
		char ids[400];
		log_warn("event=login_refused client=%llu %s reason=\"%s\"",
			 (unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)), why);
	}
	client_limits_auth_failed(c);
}

static void auth_ok(struct client *c)
{
	client_auth_cleanup(c);
	pgproto_put_auth(stream_output(c->io), PG_AUTH_OK, NULL, 0);
	client_authenticated(c);
}

static void begin_scram(struct client *c)
{
	client_auth_cleanup(c); /* (a login has one exchange; this keeps that so) */
	c->login->scram = malloc(sizeof(*c->login->scram));
	if (!c->login->scram) {
		client_fail(c, "53200", "out of memory");
		return;
	}
	c->auth_method = AUTH_METHOD_SCRAM;
	const struct scram_secret *secret = c->login->secret && c->login->secret->has_scram
						    ? &c->login->secret->scram
						    : NULL;
	scram_exchange_init(c->login->scram, secret, c->user);
	/* As PostgreSQL: over TLS SCRAM-SHA-256-PLUS is offered first, bound to the hash
	 * of corral's certificate (libpq's channel_binding=require needs it). */
	unsigned char hash[SCRAM_CBIND_MAX];
	size_t hash_len = 0;
	if (client_tls_active(c) && client_tls_end_point(c, hash, sizeof(hash), &hash_len))
		(void)scram_offer_channel_binding(c->login->scram, hash, hash_len);
	size_t len;
	const char *mechanisms = scram_mechanisms(c->login->scram, &len);
	pgproto_put_auth(stream_output(c->io), PG_AUTH_SASL, mechanisms, len);
}

/* A SCRAM message refused: PostgreSQL's words for why (scram_failure). */
static void scram_refused(struct client *c)
{
	const char *sqlstate;
	const char *message = scram_failure(c->login->scram, &sqlstate);
	client_fail(c, sqlstate, "%s", message);
}

static void begin_md5(struct client *c)
{
	/* As PostgreSQL: a user whose stored secret is a SCRAM verifier uses SCRAM. */
	if (c->login->secret && c->login->secret->kind == SECRET_SCRAM) {
		begin_scram(c);
		return;
	}
	c->auth_method = AUTH_METHOD_MD5;
	if (!random_bytes(c->login->md5_salt, sizeof(c->login->md5_salt))) {
		client_fail(c, "XX000", "could not generate random salt");
		return;
	}
	pgproto_put_auth(stream_output(c->io), PG_AUTH_MD5, c->login->md5_salt,
			 sizeof(c->login->md5_salt));
}

/* auth_type as the method an hba rule would name. */
static enum hba_method method_of(enum auth_type type)
{
	switch (type) {
	case AUTH_TRUST:
		return HBA_TRUST;
	case AUTH_MD5:
		return HBA_MD5;
	case AUTH_SCRAM_SHA_256:
	case AUTH_HBA:
		break;
	}
	return HBA_SCRAM;
}

/* The exchange of method, with the login's secret as it is now (NULL: fails as a wrong
 * password). */
static void begin_method(struct client *c, enum hba_method method)
{
	switch (method) {
	case HBA_TRUST:
		auth_ok(c);
		return;
	case HBA_MD5:
		begin_md5(c);
		return;
	case HBA_PASSWORD:
		c->auth_method = AUTH_METHOD_PASSWORD;
		pgproto_put_auth(stream_output(c->io), PG_AUTH_CLEARTEXT, NULL, 0);
		return;
	case HBA_SCRAM:
		/* A user with only an md5 secret cannot do SCRAM; PostgreSQL fails them too. */
		begin_scram(c);
		return;
	case HBA_REJECT:
	case HBA_CERT: /* client_hba_method refuses both */
		client_fail(c, "28000", "authentication method not available");
		return;
	}
}

void client_auth_begin(struct client *c)
{
	const struct corral_config *cfg = c->worker->cfg;
	c->login = calloc(1, sizeof(*c->login));
	if (!c->login) {
		client_fail(c, "53200", "out of memory");
		return;
	}
	c->login->client = c;
	c->login->auth_snap = c->worker->snap;
	snapshot_hold(c->login->auth_snap);
	c->login->secret = auth_file_find(c->worker->auth, c->user);
	client_set_state(c, CL_AUTH);

	enum hba_method method = method_of(cfg->auth_type);
	if (cfg->auth_type == AUTH_HBA && !client_hba_method(c, &c->login->auth_snap->hba, &method))
		return;
	/* A user auth_file does not know may be PostgreSQL's: ask (the exchange waits,
	 * nothing is sent to the client meanwhile). */
	if (!c->login->secret && method != HBA_TRUST && method != HBA_REJECT &&
	    method != HBA_CERT && auth_query_start(c, (int)method))
		return;
	begin_method(c, method);
}

void client_auth_resume(struct client *c, const char *sqlstate, const char *message)
{
	if (sqlstate)
		client_fail(c, sqlstate, "%s", message);
	else
		begin_method(c, (enum hba_method)c->login->authq_method);
	if (c->state != CL_CLOSING && c->state != CL_CLOSED)
		stream_flush(c->io);
}

/* A cleartext password against any kind of stored secret; against a SCRAM verifier
 * the keys it gives go to keys when it is right (pass-through). */
static bool password_matches(const struct user_secret *sec, const char *user, const char *pw,
			     struct scram_keys *keys)
{
	if (!sec)
		return false;
	switch (sec->kind) {
	case SECRET_PLAIN: {
		size_t n = strlen(sec->secret);
		return strlen(pw) == n && CRYPTO_memcmp(sec->secret, pw, n) == 0;
	}
	case SECRET_MD5: {
		char hash[MD5_PASSWD_LEN + 1];
		md5_password_hash(pw, user, hash);
		return CRYPTO_memcmp(hash, sec->secret, sizeof(hash)) == 0;
	}
	case SECRET_SCRAM: {
		/* The keys, ClientKey included, as a SCRAM proof would give them. */
		const struct scram_secret *s = &sec->scram;
		bool ok = scram_keys_from_password(pw, s->salt, s->salt_len, s->iterations, keys) &&
			  CRYPTO_memcmp(keys->stored_key, s->stored_key, SCRAM_KEY_LEN) == 0 &&
			  CRYPTO_memcmp(keys->server_key, s->server_key, SCRAM_KEY_LEN) == 0;
		if (!ok)
			OPENSSL_cleanse(keys, sizeof(*keys));
		return ok;
	}
	}
	return false;
}

static void handle_password(struct client *c, struct pg_reader *r)
{
	const char *pw = pg_read_string(r);
	if (r->bad || r->p != r->end) {
		client_fail(c, "08P01", "invalid password packet");
		return;
	}
	if (pw[0] == '\0') {
		client_fail(c, "28P01", "empty password returned by client");
		return;
	}
	struct scram_keys keys = {0};
	if (!password_matches(c->login->secret, c->user, pw, &keys)) {
		auth_failed(c);
		return;
	}
	if (keys.salt_len)
		c->scram_keys = &keys; /* a cleartext password against a verifier: its keys too */
	auth_ok(c);                    /* c is freed by the reaper, never inside this call */
	c->scram_keys = NULL;
	OPENSSL_cleanse(&keys, sizeof(keys));
}

static void handle_md5(struct client *c, struct pg_reader *r)
{
	const char *response = pg_read_string(r);
	if (r->bad || r->p != r->end) {
		client_fail(c, "08P01", "invalid password packet");
		return;
	}
	/* As PostgreSQL (auth.c, recv_password_packet): an empty password is refused as such,
	 * before any check, known user or not.  libpq never sends one; other clients may. */
	if (response[0] == '\0') {
		client_fail(c, "28P01", "empty password returned by client");
		return;
	}
	const struct user_secret *sec = c->login->secret;
	bool ok = sec && sec->kind != SECRET_SCRAM &&
		  md5_check_response(sec->secret, sec->kind == SECRET_MD5, c->user,
				     c->login->md5_salt, response);
	if (ok)
		auth_ok(c);
	else
		auth_failed(c);
}

static void handle_scram_first(struct client *c, struct pg_reader *r)
{
	const char *mech = pg_read_string(r);
	uint32_t len = pg_read_int32(r);
	if (r->bad) {
		client_fail(c, "08P01", "malformed SASLInitialResponse message");
		return;
	}
	if (!scram_select_mechanism(c->login->scram, mech)) {
		client_fail(c, "08P01", "client selected an invalid SASL authentication mechanism");
		return;
	}
	const uint8_t *data = len == UINT32_MAX ? NULL : pg_read_bytes(r, len);
	if (!data || r->p != r->end) {
		client_fail(c, "08P01", "malformed SASLInitialResponse message");
		return;
	}
	char *server_first = NULL;
	if (!scram_handle_client_first(c->login->scram, (const char *)data, len, NULL,
				       &server_first)) {
		scram_refused(c);
		return;
	}
	pgproto_put_auth(stream_output(c->io), PG_AUTH_SASL_CONTINUE, server_first,
			 strlen(server_first));
	free(server_first);
}

/* The keys of a SCRAM exchange that worked, for SCRAM pass-through. */
static bool scram_keys_of(const struct scram_exchange *ex, struct scram_keys *out)
{
	memset(out, 0, sizeof(*out));
	if (ex->secret.salt_len > sizeof(out->salt) ||
	    !scram_exchange_client_key(ex, out->client_key))
		return false;
	out->iterations = ex->secret.iterations;
	memcpy(out->salt, ex->secret.salt, ex->secret.salt_len);
	out->salt_len = ex->secret.salt_len;
	memcpy(out->stored_key, ex->secret.stored_key, sizeof(out->stored_key));
	memcpy(out->server_key, ex->secret.server_key, sizeof(out->server_key));
	return true;
}

static void handle_scram_final(struct client *c, struct pg_reader *r)
{
	size_t len = (size_t)(r->end - r->p);
	char *server_final = NULL;
	struct scram_keys keys;
	switch (scram_handle_client_final(c->login->scram, (const char *)r->p, len,
					  &server_final)) {
	case SCRAM_OK:
		pgproto_put_auth(stream_output(c->io), PG_AUTH_SASL_FINAL, server_final,
				 strlen(server_final));
		free(server_final);
		/* The proof gave away the ClientKey: with the verifier's salt, iterations and
		 * keys it logs in to PostgreSQL if that stores the same verifier. */
		if (scram_keys_of(c->login->scram, &keys))
			c->scram_keys = &keys;
		auth_ok(c); /* c is freed by the reaper, never inside this call */
		c->scram_keys = NULL;
		OPENSSL_cleanse(&keys, sizeof(keys));
		return;
	case SCRAM_WRONG_PROOF:
		auth_failed(c);
		return;
	case SCRAM_MALFORMED:
		scram_refused(c);
		return;
	}
}

void client_auth_read(struct client *c)
{
	if (!c->login || c->login->authq)
		return; /* nothing was asked yet while auth_query runs: kept for later */
	/* A failure's answer is held back (client_limits_auth_failed): what the client
	 * sends meanwhile is no second guess on this connection.  The plain-text login
	 * reader is stopped then, but a TLS client's stream goes on reading. */
	if (c->delay_ev)
		return;
	struct evbuffer *in = stream_input(c->io);
	char type;
	uint32_t len;
	enum pg_parse_result pr = pgproto_peek_header(in, &type, &len);
	if (pr == PG_PARSE_INCOMPLETE)
		return;
	if (pr == PG_PARSE_ERROR || type != 'p') {
		client_fail(c, "08P01", "expected password response, got message type %d", type);
		return;
	}
	if (len > MAX_PASSWORD_MESSAGE) {
		client_fail(c, "08P01", "invalid password packet size");
		return;
	}
	if (evbuffer_get_length(in) < (size_t)len + 1)
		return;
	/* Take the message out first: finishing auth may go on to read what follows. */
	size_t body_len = len - 4;
	uint8_t *body = malloc(body_len ? body_len : 1);
	if (!body) {
		client_fail(c, "53200", "out of memory");
		return;
	}
	evbuffer_drain(in, PG_HEADER_LEN);
	evbuffer_remove(in, body, body_len);
	struct pg_reader r;
	pg_reader_init(&r, body, body_len);

	if (c->auth_method == AUTH_METHOD_MD5)
		handle_md5(c, &r);
	else if (c->auth_method == AUTH_METHOD_PASSWORD)
		handle_password(c, &r);
	else if (c->auth_method == AUTH_METHOD_SCRAM &&
		 c->login->scram->step == SCRAM_WANT_CLIENT_FIRST)
		handle_scram_first(c, &r);
	else if (c->auth_method == AUTH_METHOD_SCRAM &&
		 c->login->scram->step == SCRAM_WANT_CLIENT_FINAL)
		handle_scram_final(c, &r);
	else
		client_fail(c, "08P01", "unexpected password message");
	free(body);
}

void client_auth_cleanup(struct client *c)
{
	if (c->login && c->login->scram) {
		scram_exchange_free(c->login->scram); /* cleanses the secret and the ClientKey */
		free(c->login->scram);
		c->login->scram = NULL;
	}
	c->auth_method = AUTH_METHOD_NONE;
}
