/*
 * url_shortener: a URL-shortener API behind the HTTP trigger (API Gateway proxy events).
 *
 *   POST /fn/url_shortener        body {"url":"https://..."} or the bare URL
 *        -> 201 {"code":"aZ3kP9x","url":"...","path":"/fn/url_shortener/aZ3kP9x"}
 *   GET  /fn/url_shortener/CODE   -> 302 Location: URL (the hit is counted and logged)
 *                                 -> 404 for an unknown code
 *
 * Per invocation: one INSERT (POST) or one UPDATE + INSERT in a single statement (GET),
 * each a prepared statement made in fn_init.  Tables: functions/examples/schema.sql.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "functions/corral_fn.h"
#include "functions/examples/example_db.h"
#include "functions/fn_event.h"

CORRAL_FN_ABI();

#define CODE_LEN 7
#define CODE_MAX 32
#define URL_MAX 2048
#define CREATE_ATTEMPTS 5 /* a new code colliding with an old one is rare; five in a row is not */

static const struct ex_stmt stmts[] = {
	{"create",
	 "INSERT INTO short_urls (code, url) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING "
	 "RETURNING code",
	 2},
	{"resolve",
	 "WITH hit AS (UPDATE short_urls SET hits = hits + 1, last_hit_at = now() "
	 "             WHERE code = $1 RETURNING code, url),"
	 "     logged AS (INSERT INTO url_hits (code) SELECT code FROM hit) "
	 "SELECT url FROM hit",
	 1},
};

static struct ex_db db;

int fn_init(struct fn_ctx *ctx)
{
	return ex_db_open(&db, ctx, stmts, sizeof(stmts) / sizeof(stmts[0]));
}

void fn_shutdown(struct fn_ctx *ctx)
{
	ex_db_close(&db);
}

/* ---- input ------------------------------------------------------------------------- */

/*
 * The URL as it will be stored and sent in Location: an http(s) URL with a host, non-ASCII
 * bytes percent-encoded (an IRI pasted from a browser), nothing that could break out of a
 * header or an attribute.  malloc'd, or NULL when the input is not such a URL.
 */
static char *normalize_url(const char *url)
{
	size_t scheme = strncasecmp(url, "https://", 8) == 0  ? 8
			: strncasecmp(url, "http://", 7) == 0 ? 7
							      : 0;
	if (scheme == 0 || url[scheme] == '\0' || url[scheme] == '/')
		return NULL; /* not http(s), or no host */
	size_t n = strlen(url);
	if (n > URL_MAX)
		return NULL;
	char *out = malloc(3 * n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\') {
			free(out);
			return NULL;
		}
		if (*p < 0x80) {
			out[o++] = (char)*p;
		} else {
			o += (size_t)sprintf(out + o, "%%%02X", *p);
		}
	}
	out[o] = '\0';
	if (o > URL_MAX) {
		free(out);
		return NULL;
	}
	return out;
}

static bool valid_code(const char *code)
{
	size_t n = strlen(code);
	if (n == 0 || n > CODE_MAX)
		return false;
	for (const char *p = code; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

/* The request body, decoded from base64 when the event says so; malloc'd, NULL if none. */
static char *request_body(struct fn_json ev, size_t *len)
{
	char *body = fn_json_strdup(fn_json_get(ev, "body"), len);
	if (!body || !fn_json_is_true(fn_json_get(ev, "isBase64Encoded")))
		return body;
	unsigned char *raw = malloc(*len / 4 * 3 + 4);
	long n = raw ? fn_base64_decode(body, *len, raw, *len / 4 * 3 + 3) : -1;
	free(body);
	if (n < 0) {
		free(raw);
		return NULL;
	}
	raw[n] = '\0';
	*len = (size_t)n;
	return (char *)raw;
}

/* The URL to shorten: {"url": "..."} or the whole body, trimmed.  malloc'd or NULL. */
static char *url_from_body(const char *body, size_t len)
{
	struct fn_json doc = fn_json_parse(body, len);
	if (fn_json_type(doc) == FN_JSON_OBJECT)
		return fn_json_cstr(fn_json_get(doc, "url"));
	if (fn_json_type(doc) == FN_JSON_STRING)
		return fn_json_cstr(doc);
	if (strlen(body) != len)
		return NULL;
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' '))
		len--;
	while (len > 0 && *body == ' ')
		body++, len--;
	return strndup(body, len);
}

/* The CODE of GET /fn/NAME/CODE (or pathParameters.code); malloc'd, NULL if none. */
static char *code_from_request(struct fn_json ev, const struct fn_ctx *ctx)
{
	char *code = fn_json_cstr(fn_json_path(ev, "pathParameters.code"));
	if (code)
		return code;
	char *path = fn_json_cstr(fn_json_get(ev, "path"));
	if (!path)
		return NULL;
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "/fn/%s/", ctx->function_name);
	size_t n = strlen(prefix);
	if (strncmp(path, prefix, n) == 0 && path[n])
		code = strndup(path + n, strcspn(path + n, "/?"));
	free(path);
	return code;
}

/* ---- handlers ---------------------------------------------------------------------- */

static void random_code(char code[CODE_LEN + 1])
{
	static const char alphabet[] =
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	size_t n = 0;
	while (n < CODE_LEN) {
		unsigned char bytes[16];
		if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
			continue;
		for (size_t i = 0; i < sizeof(bytes) && n < CODE_LEN; i++)
			if (bytes[i] < 248) /* 248 = 4 * 62: no bias */
				code[n++] = alphabet[bytes[i] % 62];
	}
	code[CODE_LEN] = '\0';
}

static int db_failure(struct fn_response *resp, PGresult *res, const char *what)
{
	char err[256];
	ex_result_error(res, err, sizeof(err));
	PQclear(res);
	return fn_fail(resp, "%s: %s", what, err);
}

static int create(struct fn_json ev, struct fn_response *resp, struct fn_ctx *ctx)
{
	size_t len = 0;
	char *body = request_body(ev, &len);
	if (!body)
		return fn_response_error(resp, 400, "POST a URL: {\"url\":\"https://...\"}");
	char *given = url_from_body(body, len);
	free(body);
	char *url = given ? normalize_url(given) : NULL;
	free(given);
	if (!url)
		return fn_response_error(resp, 400,
					 "not an http(s) URL of at most 2048 characters");
	for (int attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
		char code[CODE_LEN + 1];
		random_code(code);
		const char *params[] = {code, url};
		PGresult *res = ex_db_exec(&db, "create", 2, params);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			free(url);
			return db_failure(resp, res, "create");
		}
		bool created = PQntuples(res) == 1;
		PQclear(res);
		if (!created)
			continue; /* the code is taken: draw another */
		char location[64 + CODE_MAX + 256];
		snprintf(location, sizeof(location), "/fn/%s/%s", ctx->function_name, code);
		resp->status = 201;
		int rc = fn_response_header(resp, "Location", location);
		if (rc == FN_OK)
			rc = fn_response_printf(resp, "{\"code\":\"%s\",\"url\":", code);
		if (rc == FN_OK)
			rc = fn_response_json_string(resp, url);
		if (rc == FN_OK)
			rc = fn_response_printf(resp, ",\"path\":\"%s\"}", location);
		free(url);
		return rc == FN_OK ? FN_OK : fn_fail(resp, "cannot build the response");
	}
	free(url);
	return fn_fail(resp, "no free code after %d attempts", CREATE_ATTEMPTS);
}

static int resolve(struct fn_json ev, struct fn_response *resp, struct fn_ctx *ctx)
{
	char *code = code_from_request(ev, ctx);
	if (!code)
		return fn_response_error(resp, 400, "GET /fn/url_shortener/CODE");
	if (!valid_code(code)) {
		free(code);
		return fn_response_error(resp, 404, "no such code");
	}
	const char *params[] = {code};
	PGresult *res = ex_db_exec(&db, "resolve", 1, params);
	free(code);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return db_failure(resp, res, "resolve");
	if (PQntuples(res) == 0) {
		PQclear(res);
		return fn_response_error(resp, 404, "no such code");
	}
	resp->status = 302;
	int rc = fn_response_header(resp, "Location", PQgetvalue(res, 0, 0));
	if (rc == FN_OK)
		rc = fn_response_header(resp, "Cache-Control", "no-store"); /* count every hit */
	if (rc == FN_OK)
		rc = fn_response_content_type(resp, "text/plain; charset=utf-8");
	PQclear(res);
	return rc == FN_OK ? FN_OK : fn_fail(resp, "cannot build the response");
}

int fn_handle(const struct fn_event *event, struct fn_response *resp, struct fn_ctx *ctx)
{
	struct fn_json ev = fn_json_parse(event->json, event->len);
	if (fn_json_type(ev) != FN_JSON_OBJECT)
		return fn_response_error(resp, 400, "the event is not a JSON object");
	struct fn_json method = fn_json_get(ev, "httpMethod");
	if (fn_json_streq(method, "POST"))
		return create(ev, resp, ctx);
	if (fn_json_streq(method, "GET") || fn_json_streq(method, "HEAD"))
		return resolve(ev, resp, ctx);
	if (!fn_json_ok(method))
		return fn_response_error(resp, 400, "not an HTTP event (no httpMethod)");
	int rc = fn_response_error(resp, 405, "use POST to create, GET to resolve");
	if (rc == FN_OK)
		rc = fn_response_header(resp, "Allow", "GET, HEAD, POST");
	return rc;
}
