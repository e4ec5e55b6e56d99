/*
 * Random bytes for per-connection values (cancel keys, SCRAM nonces, md5 salts),
 * served from a per-thread buffer that one RAND_bytes call refills.  A RAND_bytes
 * call costs about as much for 8 bytes as for 4 KB (DRBG lookup, locks, a getpid
 * for fork detection): at two calls per connection it was ~15% of corral's own CPU
 * in a pgbench -C storm (perf).  The bytes are the same CSPRNG output, fetched ahead.
 */
#ifndef CORRAL_PROXY_RANDOM_H
#define CORRAL_PROXY_RANDOM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

/* Fills out with n random bytes; false if OpenSSL's generator failed. */
bool random_bytes(void *out, size_t n) WARN_UNUSED;

#endif
