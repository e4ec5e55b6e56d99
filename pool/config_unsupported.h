/*
 * PgBouncer's settings that corral does not have, each with what to do instead, so a
 * pgbouncer.ini carried over is answered "not supported by corral; ..." rather than
 * "unknown key" (pool/config.c).  The list follows PgBouncer's documentation
 * (doc/config.md, 1.23): every [pgbouncer] setting and every [databases] line parameter
 * corral does not take under the same name.
 */
#ifndef CORRAL_POOL_CONFIG_UNSUPPORTED_H
#define CORRAL_POOL_CONFIG_UNSUPPORTED_H

#include <stddef.h>

#include "common/ini_load.h"

/* [pgbouncer] settings missing from [corral]. */
extern const struct ini_unsupported config_unsupported_keys[];
extern const size_t config_n_unsupported_keys;

/* Parameters of a PgBouncer [databases] line that are neither corral's nor libpq's; NULL
 * if name is none of them. */
const struct ini_unsupported *config_unsupported_db_key(const char *name);

#endif
