#include "pool/keepalive.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool line_sets(const struct db_config *db, const char *key)
{
	for (size_t i = 0; i < db->n_conn; i++)
		if (strcmp(db->conn_keys[i], key) == 0)
			return true;
	return false;
}

size_t keepalive_login_params(const struct corral_config *cfg, const struct db_config *db,
			      const char *keys[KEEPALIVE_PARAMS],
			      const char *vals[KEEPALIVE_PARAMS], char buf[KEEPALIVE_PARAMS][16])
{
	const struct {
		const char *key;
		int value;
	} want[KEEPALIVE_PARAMS] = {
		/* keepalives=1 is libpq's default: said only to turn them off */
		{"keepalives", cfg->tcp_keepalive ? -1 : 0},
		{"keepalives_idle", cfg->tcp_keepalive ? cfg->tcp_keepidle : 0},
		{"keepalives_interval", cfg->tcp_keepalive ? cfg->tcp_keepintvl : 0},
		{"keepalives_count", cfg->tcp_keepalive ? cfg->tcp_keepcnt : 0},
	};
	size_t n = 0;
	for (size_t i = 0; i < KEEPALIVE_PARAMS; i++) {
		bool off = i == 0 && want[i].value == 0;
		if ((!off && want[i].value <= 0) || line_sets(db, want[i].key))
			continue;
		snprintf(buf[n], sizeof(buf[n]), "%d", want[i].value);
		keys[n] = want[i].key;
		vals[n] = buf[n];
		n++;
	}
	return n;
}
