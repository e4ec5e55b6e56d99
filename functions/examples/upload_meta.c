/*
 * upload_meta: an event pipeline step.  An object store announces new objects with an
 * S3-style "object created" event that carries the first bytes of each object, base64:
 *
 *   {"Records":[{"eventName":"ObjectCreated:Put",
 *                "s3":{"bucket":{"name":"photos"},
 *                      "object":{"key":"cats/1.png","size":48213,"headBase64":"iVBORw0KGgo..."}}}]}
 *
 * For each record the image header is parsed (PNG, JPEG or GIF: format, width, height) and
 * the object's row is upserted into uploads.  Answer: 200 {"processed":[...],"failed":[...]}
 * with the reason for every record that could not be used; 400 when none could, or the
 * event is not one of these.  Records of other events (ObjectRemoved:...) are skipped.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/corral_fn.h"
#include "functions/examples/example_db.h"
#include "functions/fn_event.h"

CORRAL_FN_ABI();

#define HEAD_MAX (256 * 1024) /* decoded header bytes accepted per object */

static const struct ex_stmt stmts[] = {
	{"upsert_upload",
	 "INSERT INTO uploads AS u (bucket, key, size_bytes, format, width, height) "
	 "VALUES ($1, $2, $3, $4, $5, $6) "
	 "ON CONFLICT (bucket, key) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, "
	 "  format = EXCLUDED.format, width = EXCLUDED.width, height = EXCLUDED.height, "
	 "  created_at = now() "
	 "RETURNING u.id, (u.xmax = 0) AS inserted",
	 6},
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

/* ---- image headers ------------------------------------------------------------------- */

struct image_info {
	const char *format;
	uint32_t width, height;
};

static uint32_t be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* JPEG: walk the marker segments up to the first start-of-frame. */
static const char *probe_jpeg(const unsigned char *b, size_t n, struct image_info *out)
{
	size_t i = 2;
	for (;;) {
		if (i >= n)
			return "JPEG header ends before its size (send more of the file)";
		if (b[i] != 0xFF)
			return "corrupt JPEG: expected a marker";
		while (i < n && b[i] == 0xFF) /* fill bytes */
			i++;
		if (i >= n)
			return "JPEG header ends before its size (send more of the file)";
		unsigned char marker = b[i++];
		if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7))
			continue; /* no length */
		if (marker == 0xD9 || marker == 0xDA)
			return "corrupt JPEG: image data before any frame header";
		if (n - i < 2)
			return "JPEG header ends before its size (send more of the file)";
		uint32_t len = be16(b + i);
		if (len < 2)
			return "corrupt JPEG: segment length below 2";
		bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
			   marker != 0xCC;
		if (sof) {
			if (len < 7 || n - i < 7)
				return "JPEG header ends before its size (send more of the file)";
			out->format = "jpeg";
			out->height = be16(b + i + 3);
			out->width = be16(b + i + 5);
			return NULL;
		}
		if (n - i < len)
			return "JPEG header ends before its size (send more of the file)";
		i += len;
	}
}

/* Format and dimensions from the first bytes of an image; NULL, or why not. */
static const char *image_probe(const unsigned char *b, size_t n, struct image_info *out)
{
	const char *why = NULL;
	if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
		if (n < 24 || memcmp(b + 12, "IHDR", 4) != 0)
			return "PNG without its IHDR chunk in the header bytes";
		out->format = "png";
		out->width = be32(b + 16);
		out->height = be32(b + 20);
	} else if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) {
		if (n < 10)
			return "GIF header too short";
		out->format = "gif";
		out->width = (uint32_t)b[6] | (uint32_t)b[7] << 8;
		out->height = (uint32_t)b[8] | (uint32_t)b[9] << 8;
	} else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
		why = probe_jpeg(b, n, out);
	} else {
		return "not a PNG, JPEG or GIF image";
	}
	if (!why && (out->width == 0 || out->height == 0 || out->width > INT32_MAX ||
		     out->height > INT32_MAX))
		why = "image with a zero or absurd dimension";
	return why;
}

/* ---- records ------------------------------------------------------------------------- */

struct outcome {
	int processed, failed, skipped;
	bool db_failed;
	struct fn_response ok, bad; /* two lists, joined at the end (only their bodies used) */
};

static void add_failure(struct outcome *o, const char *key, const char *why)
{
	struct fn_response *l = &o->bad;
	(void)fn_response_write(l, o->failed ? "," : "", o->failed ? 1 : 0);
	(void)fn_response_write(l, "{\"key\":", 7);
	(void)fn_response_json_string(l, key ? key : "");
	(void)fn_response_write(l, ",\"error\":", 9);
	(void)fn_response_json_string(l, why);
	(void)fn_response_write(l, "}", 1);
	o->failed++;
}

/* Reads a record's fields and image header; false with *why when it cannot be used. */
static bool read_record(struct fn_json rec, char **bucket, char **key, int64_t *size,
			struct image_info *img, const char **why)
{
	*bucket = fn_json_cstr(fn_json_path(rec, "s3.bucket.name"));
	*key = fn_json_cstr(fn_json_path(rec, "s3.object.key"));
	if (!*bucket || !*key || !**bucket || !**key) {
		*why = "missing s3.bucket.name or s3.object.key";
		return false;
	}
	struct fn_json sz = fn_json_path(rec, "s3.object.size");
	*size = -1;
	if (fn_json_ok(sz) && (!fn_json_int(sz, size) || *size < 0)) {
		*why = "s3.object.size is not a size";
		return false;
	}
	size_t b64len;
	char *b64 = fn_json_strdup(fn_json_path(rec, "s3.object.headBase64"), &b64len);
	if (!b64) {
		*why = "missing s3.object.headBase64 (the object's first bytes)";
		return false;
	}
	size_t cap = b64len / 4 * 3 + 3;
	if (cap > HEAD_MAX + 3) {
		free(b64);
		*why = "headBase64 larger than 256 KB";
		return false;
	}
	unsigned char *head = malloc(cap);
	long n = head ? fn_base64_decode(b64, b64len, head, cap) : -1;
	free(b64);
	if (n < 0) {
		free(head);
		*why = "headBase64 is not base64";
		return false;
	}
	*why = image_probe(head, (size_t)n, img);
	free(head);
	return *why == NULL;
}

/* Upserts one object's row and adds it to the processed list (or to the failed one). */
static void store_record(const char *bucket, const char *key, int64_t size,
			 const struct image_info *img, struct outcome *o, struct fn_ctx *ctx)
{
	char size_s[24], w_s[16], h_s[16];
	snprintf(size_s, sizeof(size_s), "%lld", (long long)size);
	snprintf(w_s, sizeof(w_s), "%u", img->width);
	snprintf(h_s, sizeof(h_s), "%u", img->height);
	const char *params[] = {bucket, key, size >= 0 ? size_s : NULL, img->format, w_s, h_s};
	PGresult *res = ex_db_exec(&db, "upsert_upload", 6, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		char err[256];
		ex_result_error(res, err, sizeof(err));
		fn_log(ctx, "upsert of %s/%s failed: %s", bucket, key, err);
		if (!ex_bad_input(res))
			o->db_failed = true;
		add_failure(o, key, err);
		PQclear(res);
		return;
	}
	struct fn_response *l = &o->ok;
	(void)fn_response_write(l, o->processed ? "," : "", o->processed ? 1 : 0);
	(void)fn_response_printf(l, "{\"id\":%s,\"bucket\":", PQgetvalue(res, 0, 0));
	(void)fn_response_json_string(l, bucket);
	(void)fn_response_write(l, ",\"key\":", 7);
	(void)fn_response_json_string(l, key);
	(void)fn_response_printf(l, ",\"format\":\"%s\",\"width\":%u,\"height\":%u,\"new\":%s}",
				 img->format, img->width, img->height,
				 strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? "true" : "false");
	o->processed++;
	PQclear(res);
}

static void process_record(struct fn_json rec, struct outcome *o, struct fn_ctx *ctx)
{
	char event_name[64];
	if (fn_json_string(fn_json_get(rec, "eventName"), event_name, sizeof(event_name)) ==
		    (size_t)-1 ||
	    strncmp(event_name, "ObjectCreated:", 14) != 0) {
		o->skipped++;
		return;
	}
	char *bucket = NULL, *key = NULL;
	int64_t size = -1;
	struct image_info img = {0};
	const char *why = NULL;
	if (read_record(rec, &bucket, &key, &size, &img, &why))
		store_record(bucket, key, size, &img, o, ctx);
	else
		add_failure(o, key, why);
	free(bucket);
	free(key);
}

int fn_handle(const struct fn_event *event, struct fn_response *resp, struct fn_ctx *ctx)
{
	struct fn_json ev = fn_json_parse(event->json, event->len);
	struct fn_json records = fn_json_get(ev, "Records");
	if (fn_json_type(records) != FN_JSON_ARRAY)
		return fn_response_error(resp, 400,
					 "not an object-created event: no Records array");

	struct outcome o;
	memset(&o, 0, sizeof(o));
	for (struct fn_json rec = fn_json_first(records); fn_json_ok(rec); rec = fn_json_next(rec))
		process_record(rec, &o, ctx);

	int rc = FN_OK;
	if (o.db_failed && o.processed == 0) {
		/* The database, not the event: fail so that the event is delivered again. */
		rc = fn_fail(resp, "database unavailable; %d record(s) not stored", o.failed);
	} else {
		resp->status = o.failed > 0 && o.processed == 0 ? 400 : 200;
		if (fn_response_printf(resp, "{\"processed\":[") != FN_OK ||
		    fn_response_write(resp, o.ok.body, o.ok.body_len) != FN_OK ||
		    fn_response_write(resp, "],\"failed\":[", 12) != FN_OK ||
		    fn_response_write(resp, o.bad.body, o.bad.body_len) != FN_OK ||
		    fn_response_printf(resp, "],\"skipped\":%d}", o.skipped) != FN_OK)
			rc = fn_fail(resp, "response too large");
	}
	fn_log(ctx, "%d stored, %d failed, %d skipped", o.processed, o.failed, o.skipped);
	free(o.ok.body);
	free(o.bad.body);
	return rc;
}
