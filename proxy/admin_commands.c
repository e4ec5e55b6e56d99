/* The admin console's commands (proxy/admin_cmd.h says how to add one). */
#include "proxy/admin_cmd.h"
#include "proxy/admin_control.h"
#include "proxy/admin_show.h"

const struct admin_command admin_commands[] = {
	{"SHOW HELP", ADMIN_READ_ONLY, admin_show_help, "SHOW HELP"},
	{"SHOW POOLS", ADMIN_READ_ONLY, admin_show_pools, "SHOW POOLS"},
	{"SHOW STATS", ADMIN_READ_ONLY, admin_show_stats, "SHOW STATS"},
	{"SHOW STATS_TOTALS", ADMIN_READ_ONLY, admin_show_stats_totals, "SHOW STATS_TOTALS"},
	{"SHOW STATS_AVERAGES", ADMIN_READ_ONLY, admin_show_stats_averages, "SHOW STATS_AVERAGES"},
	{"SHOW APPS", ADMIN_READ_ONLY, admin_show_apps, "SHOW APPS"},
	{"SHOW PINS", ADMIN_READ_ONLY, admin_show_pins, "SHOW PINS"},
	{"SHOW CLIENTS", ADMIN_READ_ONLY, admin_show_clients, "SHOW CLIENTS"},
	{"SHOW SERVERS", ADMIN_READ_ONLY, admin_show_servers, "SHOW SERVERS"},
	{"SHOW DATABASES", ADMIN_READ_ONLY, admin_show_databases, "SHOW DATABASES"},
	{"SHOW USERS", ADMIN_READ_ONLY, admin_show_users, "SHOW USERS"},
	{"SHOW CONFIG", ADMIN_READ_ONLY, admin_show_config, "SHOW CONFIG"},
	{"SHOW LISTS", ADMIN_READ_ONLY, admin_show_lists, "SHOW LISTS"},
	{"SHOW VERSION", ADMIN_READ_ONLY, admin_show_version, "SHOW VERSION"},
	{"SHOW AUTH_QUERY", ADMIN_READ_ONLY, admin_show_auth_query, "SHOW AUTH_QUERY"},
	{"RELOAD", ADMIN_FULL, admin_cmd_reload, "RELOAD"},
	{"SET", ADMIN_FULL, admin_cmd_set, "SET key = value"},
	{"PAUSE", ADMIN_FULL, admin_cmd_pause, "PAUSE [db]"},
	{"RESUME", ADMIN_FULL, admin_cmd_resume, "RESUME [db]"},
	{"KILL", ADMIN_FULL, admin_cmd_kill, "KILL db"},
	{"SHUTDOWN", ADMIN_FULL, admin_cmd_shutdown, "SHUTDOWN"},
	{"SHUTDOWN WAIT_FOR_CLIENTS", ADMIN_FULL, admin_cmd_shutdown_wait,
	 "SHUTDOWN WAIT_FOR_CLIENTS"},
	{NULL, ADMIN_READ_ONLY, NULL, NULL},
};

/* PgBouncer's commands that change something: stats_users get 42501 for these whether
 * or not corral has them. */
const char *const admin_privileged_verbs[] = {
	"PAUSE",   "RESUME", "RELOAD",  "KILL",      "KILL_CLIENT", "SHUTDOWN", "SET",
	"SUSPEND", "ENABLE", "DISABLE", "RECONNECT", "WAIT_CLOSE",  NULL,
};
