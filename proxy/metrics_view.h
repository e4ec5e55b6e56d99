/*
 * What the HTTP endpoint's formats (proxy/metrics_prom.h, proxy/metrics_json.h) show
 * besides the statistics snapshot: the process's state, taken by the server thread
 * (proxy/metrics_http.c) at the moment of the request, and what it has learnt about
 * each database (proxy/metrics_pgmax.h).
 */
#ifndef CORRAL_PROXY_METRICS_VIEW_H
#define CORRAL_PROXY_METRICS_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxy/serving.h"

/* A [databases] entry's max_connections as PostgreSQL reported it. */
struct metrics_db_limit {
	const char *database;
	int max_connections; /* -1: not known (yet) */
};

struct metrics_process {
	enum serving_state serving;
	int64_t unix_ms; /* wall clock when the snapshot was taken */
	const struct metrics_db_limit *db_limits;
	size_t n_db_limits;
};

/* database's max_connections, -1 if not known. */
static inline int metrics_max_connections(const struct metrics_process *p, const char *database)
{
	for (size_t i = 0; i < p->n_db_limits; i++) {
		if (strcmp(p->db_limits[i].database, database) == 0)
			return p->db_limits[i].max_connections;
	}
	return -1;
}

#endif
