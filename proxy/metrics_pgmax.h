/*
 * The max_connections of the PostgreSQL behind each [databases] entry, for the
 * dashboard and /metrics (server connections against what the database allows).
 *
 * PostgreSQL does not report it at login (it is no ParameterStatus), and the pools'
 * own servers belong to clients, so the metrics thread asks once per entry with a
 * connection of its own: "SHOW max_connections", with the line's libpq keywords.  Only
 * entries with a fixed login (user= on the line) are asked: others log in as each
 * client, with the client's password, which corral does not keep.  An answer is kept
 * for the process's life; an entry that could not be asked (PostgreSQL down, full) is
 * asked again after a minute.  Each question blocks the metrics thread for at most
 * connect_timeout (3 s), never a worker.
 */
#ifndef CORRAL_PROXY_METRICS_PGMAX_H
#define CORRAL_PROXY_METRICS_PGMAX_H

#include <stddef.h>

#include "common/clock.h"
#include "pool/config.h"
#include "proxy/metrics_view.h"

struct metrics_pgmax {
	struct metrics_db_limit *limits; /* one per [databases] entry, names copied */
	usec_t *next_try;                /* when to ask again an entry still unknown */
	size_t n;
};

/* Fills pm with every entry of cfg, all unknown; false when out of memory. */
bool metrics_pgmax_init(struct metrics_pgmax *pm, const struct corral_config *cfg) WARN_UNUSED;
/* Asks every entry that is still unknown and due (blocking; the metrics thread only). */
void metrics_pgmax_refresh(struct metrics_pgmax *pm, const struct corral_config *cfg, usec_t now);
void metrics_pgmax_free(struct metrics_pgmax *pm);

#endif
