/*
 * What only each worker may read (its client lists, its servers), gathered for one
 * console command: a request goes through every worker's inbox, each worker runs
 * collect on its own thread into its own part, the parts come back through the
 * console worker's inbox, and finish runs there once every worker has answered (see
 * DESIGN.md, "The admin console").  No worker touches another's lists.
 */
#ifndef CORRAL_PROXY_ADMIN_GATHER_H
#define CORRAL_PROXY_ADMIN_GATHER_H

#include <stdbool.h>

#include <event2/buffer.h>

#include "proxy/admin_cmd.h"

#define ADMIN_GATHER_COUNTS 16

/* One worker's answer: rows (DataRows, ready to append) and counts, as collect chose. */
struct admin_gather_part {
	struct evbuffer *rows; /* made before collect runs; NULL if that failed */
	long long counts[ADMIN_GATHER_COUNTS];
};

/* Runs on worker w's thread: fills part from what w owns. */
typedef void (*admin_collect_fn)(struct worker *w, struct admin_gather_part *part);
/* Runs on the console client's worker (home) once every part is in (parts[i] is worker
 * i's); writes the answer to out. */
typedef enum admin_result (*admin_finish_fn)(struct worker *home, struct evbuffer *out,
					     const struct admin_gather_part *parts, int n);

/* Starts a gather for ctx's command; returns ADMIN_PENDING (or an error's result). */
enum admin_result admin_gather(struct admin_ctx *ctx, admin_collect_fn collect,
			       admin_finish_fn finish);

#endif
