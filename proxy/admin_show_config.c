/*
 * SHOW DATABASES, USERS, CONFIG, VERSION and HELP: the configuration snapshot of the
 * console's worker, with connection counts from the statistics snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"
#include "pool/stats.h"
#include "proxy/admin_show.h"
#include "proxy/control.h"
#include "proxy/serving.h"
#include "proxy/version.h"
#include "proxy/worker.h"

static enum admin_result no_memory(struct admin_ctx *ctx)
{
	return admin_error(ctx, "53200", "out of memory");
}

static enum admin_result end_show(struct admin_ctx *ctx, bool ok)
{
	if (!ok)
		return no_memory(ctx);
	admin_put_complete(ctx->out, "SHOW");
	return ADMIN_DONE;
}

static long long pool_clients(const struct stats_pool *p)
{
	long long n = 0;
	for (int g = 0; g < STATS_CL_GROUPS; g++)
		n += p->t.clients[g];
	return n;
}

/* Server slots and clients of the pools whose database (or, if user, user) matches. */
static void count_conns(const struct stats_snapshot *snap, const char *db, const char *user,
			long long *servers, long long *clients)
{
	*servers = *clients = 0;
	for (size_t i = 0; i < snap->n_pools; i++) {
		const struct stats_pool *p = &snap->pools[i];
		if ((db && strcmp(p->database, db) != 0) || (user && strcmp(p->user, user) != 0))
			continue;
		*servers += p->servers;
		*clients += pool_clients(p);
	}
}

static const char *conn_value(const struct db_config *db, const char *key)
{
	for (size_t i = 0; i < db->n_conn; i++)
		if (strcmp(db->conn_keys[i], key) == 0)
			return db->conn_vals[i];
	return NULL;
}

/* ---- SHOW DATABASES -------------------------------------------------------------------- */

static const struct admin_col db_cols[] = {
	{"name", ADMIN_TEXT},
	{"host", ADMIN_TEXT},
	{"port", ADMIN_INT4},
	{"database", ADMIN_TEXT},
	{"force_user", ADMIN_TEXT},
	{"pool_size", ADMIN_INT4},
	{"min_pool_size", ADMIN_INT4},
	{"reserve_pool_size", ADMIN_INT4},
	{"server_lifetime", ADMIN_INT4},
	{"pool_mode", ADMIN_TEXT},
	{"load_balance_hosts", ADMIN_TEXT},
	{"max_connections", ADMIN_INT4},
	{"current_connections", ADMIN_INT4},
	{"max_client_connections", ADMIN_INT4},
	{"current_client_connections", ADMIN_INT4},
	{"paused", ADMIN_INT4},
	{"disabled", ADMIN_INT4},
};

static void db_row(struct admin_row *r, const struct corral_config *cfg, const struct db_config *db,
		   const struct stats_snapshot *snap)
{
	long long servers, clients;
	count_conns(snap, db->name, NULL, &servers, &clients);
	const char *port = conn_value(db, "port");
	admin_row_text(r, db->name);
	admin_row_text(r, conn_value(db, "host") ? conn_value(db, "host")
						 : conn_value(db, "hostaddr"));
	admin_row_int(r, port ? atoi(port) : 5432);
	admin_row_text(r, conn_value(db, "dbname"));
	admin_row_text(r, db->user);
	admin_row_int(r, config_pool_size(cfg, db));
	admin_row_int(r, config_min_pool_size(cfg, db));
	admin_row_int(r, config_reserve_pool(cfg, db));
	admin_row_int(r, (long long)cfg->server_lifetime);
	admin_row_text(r,
		       db->pool_mode >= 0 ? pool_mode_name((enum pool_mode)db->pool_mode) : NULL);
	admin_row_null(r);
	admin_row_int(r, config_max_db_connections(cfg, db));
	admin_row_int(r, servers);
	admin_row_int(r, 0); /* no max_db_client_connections: max_client_conn is global */
	admin_row_int(r, clients);
	admin_row_int(r, serving_get() == SERVING_PAUSED);
	admin_row_int(r, 0);
}

/* The console's own line, as PgBouncer lists its "pgbouncer" database. */
static void admin_db_row(struct admin_row *r, const struct corral_config *cfg)
{
	admin_row_text(r, cfg->admin_db);
	admin_row_null(r);
	admin_row_int(r, cfg->listen_port);
	admin_row_text(r, cfg->admin_db);
	admin_row_null(r);
	for (int i = 0; i < 4; i++)
		admin_row_int(r, 0);
	admin_row_text(r, "statement");
	admin_row_null(r);
	for (int i = 0; i < 6; i++)
		admin_row_int(r, 0);
}

enum admin_result admin_show_databases(struct admin_ctx *ctx)
{
	const struct corral_config *cfg = ctx->w->cfg;
	struct stats_snapshot snap;
	if (!stats_snapshot(&ctx->w->shared->registry, cfg, &snap))
		return no_memory(ctx);
	admin_put_row_description(ctx->out, db_cols, ARRAY_SIZE(db_cols));
	bool ok = true;
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		struct admin_row r = {0};
		db_row(&r, cfg, &cfg->dbs[i], &snap);
		ok = admin_row_end(&r, ctx->out) && ok;
	}
	struct admin_row r = {0};
	admin_db_row(&r, cfg);
	ok = admin_row_end(&r, ctx->out) && ok;
	stats_snapshot_free(&snap);
	return end_show(ctx, ok);
}

/* ---- SHOW USERS ------------------------------------------------------------------------ */

static const struct admin_col user_cols[] = {
	{"name", ADMIN_TEXT},
	{"pool_size", ADMIN_TEXT},
	{"reserve_pool_size", ADMIN_TEXT},
	{"pool_mode", ADMIN_TEXT},
	{"max_user_connections", ADMIN_INT4},
	{"current_connections", ADMIN_INT4},
	{"max_user_client_connections", ADMIN_INT4},
	{"current_client_connections", ADMIN_INT4},
};

static bool user_row(struct evbuffer *out, const struct corral_config *cfg, const char *name,
		     const struct stats_snapshot *snap)
{
	const struct user_config *u = config_find_user(cfg, name);
	long long servers, clients;
	count_conns(snap, NULL, name, &servers, &clients);
	struct admin_row r = {0};
	admin_row_text(&r, name);
	admin_row_null(&r); /* corral has no per-user pool_size or reserve */
	admin_row_null(&r);
	admin_row_text(&r, u && u->pool_mode >= 0 ? pool_mode_name((enum pool_mode)u->pool_mode)
						  : NULL);
	admin_row_int(&r, config_max_user_connections(cfg, name));
	admin_row_int(&r, servers);
	admin_row_int(&r, 0);
	admin_row_int(&r, clients);
	return admin_row_end(&r, out);
}

/* Whether name came before index `before` of the lists shown ahead of it. */
static bool shown_before(const struct worker *w, const char *name, size_t auth_before,
			 size_t users_before, size_t pools_before,
			 const struct stats_snapshot *snap)
{
	for (size_t i = 0; i < auth_before; i++)
		if (strcmp(w->auth->users[i].name, name) == 0)
			return true;
	for (size_t i = 0; i < users_before; i++)
		if (strcmp(w->cfg->users[i].name, name) == 0)
			return true;
	for (size_t i = 0; i < pools_before; i++)
		if (strcmp(snap->pools[i].user, name) == 0)
			return true;
	return false;
}

/* The users of the auth file, then those of [users], then any other pool's user. */
enum admin_result admin_show_users(struct admin_ctx *ctx)
{
	const struct worker *w = ctx->w;
	const struct corral_config *cfg = w->cfg;
	struct stats_snapshot snap;
	if (!stats_snapshot(&ctx->w->shared->registry, cfg, &snap))
		return no_memory(ctx);
	admin_put_row_description(ctx->out, user_cols, ARRAY_SIZE(user_cols));
	bool ok = true;
	size_t n_auth = w->auth ? w->auth->n_users : 0;
	for (size_t i = 0; i < n_auth; i++)
		if (!shown_before(w, w->auth->users[i].name, i, 0, 0, &snap))
			ok = user_row(ctx->out, cfg, w->auth->users[i].name, &snap) && ok;
	for (size_t i = 0; i < cfg->n_users; i++)
		if (!shown_before(w, cfg->users[i].name, n_auth, i, 0, &snap))
			ok = user_row(ctx->out, cfg, cfg->users[i].name, &snap) && ok;
	for (size_t i = 0; i < snap.n_pools; i++)
		if (!shown_before(w, snap.pools[i].user, n_auth, cfg->n_users, i, &snap))
			ok = user_row(ctx->out, cfg, snap.pools[i].user, &snap) && ok;
	stats_snapshot_free(&snap);
	return end_show(ctx, ok);
}

/* ---- SHOW CONFIG ------------------------------------------------------------------------ */

static const struct admin_col config_cols[] = {
	{"key", ADMIN_TEXT},
	{"value", ADMIN_TEXT},
	{"default", ADMIN_TEXT},
	{"changeable", ADMIN_TEXT},
};

struct config_rows {
	struct evbuffer *out;
	bool ok;
};

static void config_row(void *arg, const char *key, const char *value, const char *deflt)
{
	struct config_rows *cr = arg;
	struct admin_row r = {0};
	admin_row_text(&r, key);
	admin_row_text(&r, value);
	admin_row_text(&r, deflt);
	admin_row_text(&r, control_settable(key) ? "yes" : "no");
	cr->ok = admin_row_end(&r, cr->out) && cr->ok;
}

enum admin_result admin_show_config(struct admin_ctx *ctx)
{
	admin_put_row_description(ctx->out, config_cols, ARRAY_SIZE(config_cols));
	struct config_rows cr = {ctx->out, true};
	bool ok = config_show(ctx->w->cfg, config_row, &cr);
	return end_show(ctx, ok && cr.ok);
}

/* ---- SHOW VERSION, SHOW HELP ------------------------------------------------------------ */

enum admin_result admin_show_version(struct admin_ctx *ctx)
{
	static const struct admin_col cols[] = {{"version", ADMIN_TEXT}};
	admin_put_row_description(ctx->out, cols, 1);
	struct admin_row r = {0};
	admin_row_text(&r, "corral " CORRAL_VERSION);
	return end_show(ctx, admin_row_end(&r, ctx->out));
}

/* PgBouncer answers SHOW HELP with a NOTICE; rows show in any client, psql or driver. */
enum admin_result admin_show_help(struct admin_ctx *ctx)
{
	static const struct admin_col cols[] = {{"command", ADMIN_TEXT}};
	admin_put_row_description(ctx->out, cols, 1);
	bool ok = true;
	for (const struct admin_command *cmd = admin_commands; cmd->words; cmd++) {
		if (cmd->access == ADMIN_FULL && !ctx->full)
			continue; /* a stats user sees what it may run */
		struct admin_row r = {0};
		admin_row_text(&r, cmd->help);
		ok = admin_row_end(&r, ctx->out) && ok;
	}
	return end_show(ctx, ok);
}
