/*
 * TCP keepalives on server connections: [corral] tcp_keepalive, tcp_keepidle,
 * tcp_keepintvl, tcp_keepcnt (PgBouncer's names) become libpq's keepalives,
 * keepalives_idle, keepalives_interval and keepalives_count for each server login,
 * except those the database line sets itself (the line wins, key by key).
 */
#ifndef CORRAL_POOL_KEEPALIVE_H
#define CORRAL_POOL_KEEPALIVE_H

#include <stddef.h>

#include "pool/config.h"

#define KEEPALIVE_PARAMS 4

/* Up to KEEPALIVE_PARAMS keyword/value pairs into keys/vals (values written into buf);
 * returns how many.  libpq turns keepalives on by default, so tcp_keepalive = yes
 * alone adds nothing; a value of 0 leaves the kernel's default. */
size_t keepalive_login_params(const struct corral_config *cfg, const struct db_config *db,
			      const char *keys[KEEPALIVE_PARAMS],
			      const char *vals[KEEPALIVE_PARAMS], char buf[KEEPALIVE_PARAMS][16]);

#endif
