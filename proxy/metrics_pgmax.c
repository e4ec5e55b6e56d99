#include "proxy/metrics_pgmax.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/log.h"

/* Asking again too often would add logins to a database that is down or full. */
#define RETRY_USEC (60 * 1000000LL)

bool metrics_pgmax_init(struct metrics_pgmax *pm, const struct corral_config *cfg)
{
	memset(pm, 0, sizeof(*pm));
	pm->limits = calloc(cfg->n_dbs + 1, sizeof(*pm->limits));
	pm->next_try = calloc(cfg->n_dbs + 1, sizeof(*pm->next_try));
	if (!pm->limits || !pm->next_try) {
		metrics_pgmax_free(pm);
		return false;
	}
	for (size_t i = 0; i < cfg->n_dbs; i++) {
		pm->limits[i].database = strdup(cfg->dbs[i].name);
		pm->limits[i].max_connections = -1;
		pm->n = i + 1;
		if (!pm->limits[i].database) {
			metrics_pgmax_free(pm);
			return false;
		}
	}
	return true;
}

void metrics_pgmax_free(struct metrics_pgmax *pm)
{
	for (size_t i = 0; pm->limits && i < pm->n; i++)
		free((char *)pm->limits[i].database);
	free(pm->limits);
	free(pm->next_try);
	memset(pm, 0, sizeof(*pm));
}

/* SHOW max_connections through a login with db's keywords; -1 if that fails. */
static int ask(const struct db_config *db)
{
	const char *keys[db->n_conn + 3];
	const char *vals[db->n_conn + 3];
	size_t n = 0;
	for (size_t i = 0; i < db->n_conn; i++) {
		if (strcmp(db->conn_keys[i], "connect_timeout") == 0)
			continue;
		keys[n] = db->conn_keys[i];
		vals[n++] = db->conn_vals[i];
	}
	keys[n] = "connect_timeout";
	vals[n++] = "3";
	keys[n] = "fallback_application_name";
	vals[n++] = "corral-metrics";
	keys[n] = NULL;
	vals[n] = NULL;
	PGconn *conn = PQconnectdbParams(keys, vals, 0);
	int max = -1;
	if (PQstatus(conn) == CONNECTION_OK) {
		PGresult *res = PQexec(conn, "SHOW max_connections");
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			max = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	if (max < 0) {
		char msg[256];
		log_warn(
			"event=metrics_max_connections_unknown db=\"%s\" error=\"%s\" retry_s=%lld",
			db->name, log_clean(PQerrorMessage(conn), msg, sizeof(msg)),
			RETRY_USEC / 1000000);
	}
	PQfinish(conn);
	return max;
}

void metrics_pgmax_refresh(struct metrics_pgmax *pm, const struct corral_config *cfg, usec_t now)
{
	for (size_t i = 0; i < pm->n && i < cfg->n_dbs; i++) {
		const struct db_config *db = &cfg->dbs[i];
		if (pm->limits[i].max_connections >= 0 || !db->user || now < pm->next_try[i] ||
		    strcmp(db->name, pm->limits[i].database) != 0)
			continue;
		pm->limits[i].max_connections = ask(db);
		pm->next_try[i] = now + RETRY_USEC;
	}
}
