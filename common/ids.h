/*
 * Ids of clients and servers in log lines, unique within the process.  Each worker
 * counts its own (no shared counter, no atomic on the accept path) and worker w of n
 * numbers its k-th object k * n + w: no two workers ever give out the same id, the
 * ids stay as short as one counter's, and id % n names the worker that made it.
 */
#ifndef CORRAL_COMMON_IDS_H
#define CORRAL_COMMON_IDS_H

#include <stdint.h>

/* seq: the worker's own count, from 1; worker: 0 to n_workers - 1. */
static inline uint64_t worker_unique_id(uint64_t seq, int worker, int n_workers)
{
	if (n_workers < 1)
		n_workers = 1;
	return seq * (uint64_t)n_workers + (uint64_t)worker;
}

#endif
