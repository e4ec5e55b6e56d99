/*
 * SHOW CLIENTS, SERVERS and LISTS: each worker lists what it owns (admin_gather.h);
 * the console's worker puts the parts together in worker order.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include "common/macros.h"
#include "pool/server.h"
#include "pool/stats.h"
#include "proxy/admin_gather.h"
#include "proxy/admin_show.h"
#include "proxy/client.h"
#include "proxy/client_tls.h"
#include "proxy/worker.h"

/* PgBouncer's SHOW CLIENTS / SHOW SERVERS columns, then corral's. */
static const struct admin_col socket_cols[] = {
	{"type", ADMIN_TEXT},
	{"user", ADMIN_TEXT},
	{"database", ADMIN_TEXT},
	{"replication", ADMIN_TEXT},
	{"state", ADMIN_TEXT},
	{"addr", ADMIN_TEXT},
	{"port", ADMIN_INT4},
	{"local_addr", ADMIN_TEXT},
	{"local_port", ADMIN_INT4},
	{"connect_time", ADMIN_TEXT},
	{"request_time", ADMIN_TEXT},
	{"wait", ADMIN_INT4},
	{"wait_us", ADMIN_INT4},
	{"close_needed", ADMIN_INT4},
	{"ptr", ADMIN_TEXT},
	{"link", ADMIN_TEXT},
	{"remote_pid", ADMIN_INT4},
	{"tls", ADMIN_TEXT},
	{"application_name", ADMIN_TEXT},
	{"prepared_statements", ADMIN_INT4},
	{"id", ADMIN_INT8},
	/* corral's */
	{"worker", ADMIN_INT4},
	{"corral_state", ADMIN_TEXT},
};

/* An address and port as text columns ("unix", 0 for what is not IP). */
static void addr_cols(struct admin_row *r, const struct sockaddr_storage *ss, bool known)
{
	char host[INET6_ADDRSTRLEN] = "";
	int port = 0;
	if (known && ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (known && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	} else if (known && ss->ss_family == AF_UNIX) {
		snprintf(host, sizeof(host), "unix");
	}
	admin_row_text(r, host[0] ? host : NULL);
	admin_row_int(r, port);
}

static void sock_addr_cols(struct admin_row *r, int fd, bool peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	bool known = fd >= 0 && (peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
				      : getsockname(fd, (struct sockaddr *)&ss, &len)) == 0;
	addr_cols(r, &ss, known);
}

/* PgBouncer shows object addresses (ptr, link): unique while the object lives. */
static void ptr_col(struct admin_row *r, const void *p)
{
	if (p)
		admin_row_printf(r, "0x%llx", (unsigned long long)(uintptr_t)p);
	else
		admin_row_null(r);
}

static void wait_cols(struct admin_row *r, usec_t since, usec_t now)
{
	long long waited = since && now > since ? now - since : 0;
	admin_row_int(r, waited / USEC_PER_SEC);
	admin_row_int(r, waited % USEC_PER_SEC);
}

/* ---- SHOW CLIENTS ----------------------------------------------------------------------- */

/* PgBouncer's client states (login, waiting, active, idle), from corral's. */
static const char *pgbouncer_client_state(enum client_state st)
{
	switch (st) {
	case CL_STARTUP:
	case CL_AUTH:
		return "login";
	case CL_WELCOME_WAIT:
	case CL_WAITING_APP:
	case CL_WAITING:
		return "waiting";
	case CL_PREPARING:
	case CL_ACTIVE:
		return "active";
	case CL_IDLE:
		return "idle";
	case CL_CLOSING:
	case CL_CLOSED:
		break;
	}
	return "closing";
}

static void client_row(struct admin_row *r, const struct worker *w, const struct client *c,
		       usec_t now)
{
	int fd = c->io ? stream_fd(c->io) : -1;
	struct sockaddr_storage peer;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, &c->peer, sizeof(c->peer));
	admin_row_text(r, "C");
	admin_row_text(r, c->user ? c->user : "(nouser)");
	admin_row_text(r, c->database ? c->database : "(nodb)");
	admin_row_text(r, "none");
	admin_row_text(r, pgbouncer_client_state(c->state));
	addr_cols(r, &peer, true);
	sock_addr_cols(r, fd, false);
	admin_row_mono_time(r, (long long)c->connected_at);
	admin_row_mono_time(r, (long long)c->last_active);
	wait_cols(r, c->wait_start, now);
	admin_row_int(r, 0);
	ptr_col(r, c);
	ptr_col(r, c->server);
	admin_row_int(r, 0);
	char tls[128];
	admin_row_text(r, client_tls_describe(c, tls, sizeof(tls)));
	admin_row_text(r, c->application_name ? c->application_name : "");
	admin_row_int(r, 0);
	admin_row_uint(r, c->id);
	admin_row_int(r, w->id);
	admin_row_text(r, client_state_name(c->state));
}

static void collect_clients(struct worker *w, struct admin_gather_part *part)
{
	usec_t now = clock_now_usec();
	for (int l = 0; l < CLIENT_LIST_DEAD; l++) {
		struct list *it, *tmp;
		list_for_each_safe(it, tmp, &w->client_list[l])
		{
			const struct client *c = list_entry(it, struct client, node);
			struct admin_row r = {0};
			client_row(&r, w, c, now);
			if (admin_row_end(&r, part->rows))
				part->counts[0]++;
		}
	}
}

static enum admin_result finish_rows(struct worker *home, struct evbuffer *out,
				     const struct admin_gather_part *parts, int n)
{
	admin_put_row_description(out, socket_cols, ARRAY_SIZE(socket_cols));
	for (int i = 0; i < n; i++)
		if (parts[i].rows)
			evbuffer_add_buffer(out, parts[i].rows);
	admin_put_complete(out, "SHOW");
	return ADMIN_DONE;
}

enum admin_result admin_show_clients(struct admin_ctx *ctx)
{
	return admin_gather(ctx, collect_clients, finish_rows);
}

/* ---- SHOW SERVERS ----------------------------------------------------------------------- */

/* PgBouncer's server states: new (logging in), idle, active; corral's closing (Terminate
 * sent, the backend not gone yet) has no counterpart there. */
static const char *pgbouncer_server_state(enum server_state st)
{
	switch (st) {
	case SV_LOGIN:
		return "new";
	case SV_IDLE:
		return "idle";
	case SV_ACTIVE:
		return "active";
	case SV_CLOSING:
	case SV_CLOSED:
		break;
	}
	return "closing";
}

static const char *login_user(const struct pool *p)
{
	for (size_t i = 0; p->login_keys[i]; i++)
		if (strcmp(p->login_keys[i], "user") == 0)
			return p->login_vals[i];
	return p->user;
}

static void server_row(struct admin_row *r, const struct worker *w, const struct server *s)
{
	int fd = server_socket(s);
	/* While relaying, the owner is the client the server is linked to (relay.c). */
	const struct client *c = s->state == SV_ACTIVE ? s->owner : NULL;
	admin_row_text(r, "S");
	admin_row_text(r, login_user(s->pool));
	admin_row_text(r, s->pool->db_name);
	admin_row_text(r, "none");
	admin_row_text(r, pgbouncer_server_state(s->state));
	sock_addr_cols(r, fd, true);
	sock_addr_cols(r, fd, false);
	admin_row_mono_time(r, (long long)s->created);
	admin_row_mono_time(r, (long long)s->state_since);
	admin_row_int(r, 0);
	admin_row_int(r, 0);
	admin_row_int(r, 0);
	ptr_col(r, s);
	ptr_col(r, c);
	admin_row_int(r, s->backend_pid);
	char tls[128];
	server_tls_text(s, tls, sizeof(tls));
	admin_row_text(r, tls);
	admin_row_text(r, c && c->application_name ? c->application_name : "");
	admin_row_int(r, 0);
	admin_row_uint(r, s->id);
	admin_row_int(r, w->id);
	admin_row_text(r, server_state_name(s->state));
}

static void collect_servers(struct worker *w, struct admin_gather_part *part)
{
	struct list *pit, *ptmp;
	list_for_each_safe(pit, ptmp, &w->pools.pools)
	{
		struct pool *p = list_entry(pit, struct pool, node);
		struct list *lists[] = {&p->active, &p->idle, &p->login, &p->closing};
		for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
			struct list *it, *tmp;
			list_for_each_safe(it, tmp, lists[l])
			{
				const struct server *s = list_entry(it, struct server, node);
				struct admin_row r = {0};
				server_row(&r, w, s);
				if (admin_row_end(&r, part->rows))
					part->counts[0]++;
			}
		}
	}
}

enum admin_result admin_show_servers(struct admin_ctx *ctx)
{
	return admin_gather(ctx, collect_servers, finish_rows);
}

/* ---- SHOW LISTS ------------------------------------------------------------------------- */

/* What each worker counts (counts[] indexes). */
enum {
	LIST_CLIENTS,
	LIST_SERVERS,
	LIST_CL_FIRST, /* n_client_list[CLIENT_LIST_LOGIN ...] follow */
};

static void collect_lists(struct worker *w, struct admin_gather_part *part)
{
	part->counts[LIST_CLIENTS] = (long long)w->n_clients;
	for (int l = 0; l < CLIENT_LIST_DEAD; l++)
		part->counts[LIST_CL_FIRST + l] = (long long)w->n_client_list[l];
	struct list *pit, *ptmp;
	list_for_each_safe(pit, ptmp, &w->pools.pools)
	{
		const struct pool *p = list_entry(pit, struct pool, node);
		part->counts[LIST_SERVERS] += (long long)(p->n_login + p->n_idle + p->n_active +
							  p->n_closing);
	}
}

static long long count_users(const struct worker *w)
{
	long long n = w->auth ? (long long)w->auth->n_users : 0;
	for (size_t i = 0; i < w->cfg->n_users; i++)
		if (!w->auth || !auth_file_find(w->auth, w->cfg->users[i].name))
			n++;
	return n;
}

static bool list_row(struct evbuffer *out, const char *name, long long items)
{
	struct admin_row r = {0};
	admin_row_text(&r, name);
	admin_row_int(&r, items);
	return admin_row_end(&r, out);
}

static enum admin_result finish_lists(struct worker *home, struct evbuffer *out,
				      const struct admin_gather_part *parts, int n)
{
	long long sum[ADMIN_GATHER_COUNTS] = {0};
	for (int i = 0; i < n; i++)
		for (int k = 0; k < ADMIN_GATHER_COUNTS; k++)
			sum[k] += parts[i].counts[k];
	struct stats_snapshot snap;
	if (!stats_snapshot(&home->shared->registry, home->cfg, &snap)) {
		pgproto_put_error(out, "ERROR", "53200", "out of memory");
		return ADMIN_FAILED;
	}
	static const struct admin_col cols[] = {{"list", ADMIN_TEXT}, {"items", ADMIN_INT4}};
	admin_put_row_description(out, cols, ARRAY_SIZE(cols));
	const long long *cl = &sum[LIST_CL_FIRST];
	const struct {
		const char *name;
		long long items;
	} rows[] = {
		/* PgBouncer's; corral keeps no free lists, peers or DNS cache */
		{"databases", (long long)home->cfg->n_dbs + 1}, /* + the console */
		{"users", count_users(home)},
		{"peers", 0},
		{"pools", (long long)snap.n_pools},
		{"peer_pools", 0},
		{"free_clients", 0},
		{"used_clients", sum[LIST_CLIENTS]},
		{"login_clients", cl[CLIENT_LIST_LOGIN]},
		{"free_servers", 0},
		{"used_servers", sum[LIST_SERVERS]},
		{"dns_names", 0},
		{"dns_zones", 0},
		{"dns_queries", 0},
		{"dns_pending", 0},
		/* corral's: the client lists (proxy/client_lists.h), applications, workers */
		{"idle_clients", cl[CLIENT_LIST_IDLE]},
		{"waiting_app_clients", cl[CLIENT_LIST_WAITING_APP]},
		{"waiting_clients", cl[CLIENT_LIST_WAITING]},
		{"active_clients", cl[CLIENT_LIST_ACTIVE]},
		{"closing_clients", cl[CLIENT_LIST_CLOSING]},
		{"apps", (long long)snap.n_apps},
		{"workers", n},
	};
	stats_snapshot_free(&snap);
	bool ok = true;
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		ok = list_row(out, rows[i].name, rows[i].items) && ok;
	if (!ok) {
		pgproto_put_error(out, "ERROR", "53200", "out of memory");
		return ADMIN_FAILED;
	}
	admin_put_complete(out, "SHOW");
	return ADMIN_DONE;
}

enum admin_result admin_show_lists(struct admin_ctx *ctx)
{
	return admin_gather(ctx, collect_lists, finish_lists);
}
