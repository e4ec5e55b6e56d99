/*
 * SipHash-2-4 (Aumasson and Bernstein): a keyed 64-bit hash.  With a key the other side
 * never sees, nobody can make two inputs of their choosing collide, which a plain hash
 * such as FNV does not promise.  Streaming: init, any number of updates, final.
 */
#ifndef CORRAL_COMMON_SIPHASH_H
#define CORRAL_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash {
	uint64_t v0, v1, v2, v3;
	uint64_t tail; /* bytes not yet in a whole 8-byte block, little-endian */
	size_t len;    /* bytes taken so far */
};

void siphash_init(struct siphash *h, const uint8_t key[16]);
void siphash_update(struct siphash *h, const void *data, size_t n);
uint64_t siphash_final(struct siphash *h);

#endif
