/*
 * SHOW AUTH_QUERY: what auth_query has done since start (proxy/auth_query.h), one row:
 * the queries sent to PostgreSQL and their outcomes, the logins answered from the
 * cache or by joining a lookup already running, and the cache's entries now.  Read
 * from process-wide counters, so no worker is asked.
 */
#include "proxy/admin_rows.h"
#include "proxy/admin_show.h"
#include "proxy/auth_query.h"

enum admin_result admin_show_auth_query(struct admin_ctx *ctx)
{
	static const struct admin_col cols[] = {
		{"lookups", ADMIN_INT8}, {"found", ADMIN_INT8},      {"not_found", ADMIN_INT8},
		{"failed", ADMIN_INT8},  {"cache_hits", ADMIN_INT8}, {"shared", ADMIN_INT8},
		{"cached", ADMIN_INT8},
	};
	struct auth_query_counters n;
	auth_query_counters(&n);
	admin_put_row_description(ctx->out, cols, sizeof(cols) / sizeof(cols[0]));
	struct admin_row r = {0};
	admin_row_int(&r, (long long)n.lookups);
	admin_row_int(&r, (long long)n.found);
	admin_row_int(&r, (long long)n.not_found);
	admin_row_int(&r, (long long)n.failed);
	admin_row_int(&r, (long long)n.cache_hits);
	admin_row_int(&r, (long long)n.shared);
	admin_row_int(&r, (long long)n.cached);
	if (!admin_row_end(&r, ctx->out))
		return admin_error(ctx, "53200", "out of memory");
	admin_put_complete(ctx->out, "SHOW");
	return ADMIN_DONE;
}
