/*
 * The console's SHOW commands (handlers of admin_commands[], proxy/admin_cmd.h).
 * Column lists and meanings: README.md, "Admin console".
 *   admin_show_stats.c    POOLS, STATS, STATS_TOTALS, STATS_AVERAGES, APPS, PINS (statistics)
 *   admin_show_config.c   DATABASES, USERS, CONFIG, VERSION, HELP (configuration)
 *   admin_show_conns.c    CLIENTS, SERVERS, LISTS (gathered from every worker)
 *   admin_show_auth.c     AUTH_QUERY (auth_query's counters)
 */
#ifndef CORRAL_PROXY_ADMIN_SHOW_H
#define CORRAL_PROXY_ADMIN_SHOW_H

#include "proxy/admin_cmd.h"

enum admin_result admin_show_pools(struct admin_ctx *ctx);
enum admin_result admin_show_stats(struct admin_ctx *ctx);
enum admin_result admin_show_stats_totals(struct admin_ctx *ctx);
enum admin_result admin_show_stats_averages(struct admin_ctx *ctx);
enum admin_result admin_show_apps(struct admin_ctx *ctx);
enum admin_result admin_show_pins(struct admin_ctx *ctx);

enum admin_result admin_show_databases(struct admin_ctx *ctx);
enum admin_result admin_show_users(struct admin_ctx *ctx);
enum admin_result admin_show_config(struct admin_ctx *ctx);
enum admin_result admin_show_version(struct admin_ctx *ctx);
enum admin_result admin_show_help(struct admin_ctx *ctx);

enum admin_result admin_show_clients(struct admin_ctx *ctx);
enum admin_result admin_show_servers(struct admin_ctx *ctx);
enum admin_result admin_show_lists(struct admin_ctx *ctx);

enum admin_result admin_show_auth_query(struct admin_ctx *ctx); /* admin_show_auth.c */

#endif
