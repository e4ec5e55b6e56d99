/*
 * The statistics snapshot (pool/stats.h) as log lines, written when corral gets
 * SIGUSR1: one line per pool and per application, key=value, then an end line.
 *   event=stats_pool db="bench" user="bench" pool_mode=transaction pool_size=10
 *     cl_active=10 cl_waiting=20 ... xact_count=1000 ...
 *   event=stats_app app="checkout" limit=5 slots_in_use=5 ... wait_p99_us=1023
 *   event=stats_dump seq=1 pools=1 apps=2
 * A look for operators (and the integration tests) until the admin console and the
 * metrics endpoint read the same snapshot.
 */
#ifndef CORRAL_PROXY_STATS_DUMP_H
#define CORRAL_PROXY_STATS_DUMP_H

#include "pool/config.h"
#include "pool/shared.h"

/* Takes a snapshot of reg and logs it (whatever log_level says: it was asked for). */
void stats_dump_log(struct pool_registry *reg, const struct corral_config *cfg);

#endif
