/*
 * A thread's inbox: other threads post items, the owning thread's event loop runs
 * them (memcached's dispatch pattern: a locked queue plus an eventfd that wakes the
 * loop).  Each item carries the function that handles it, so modules define their
 * own messages without a central type switch.
 */
#ifndef CORRAL_COMMON_INBOX_H
#define CORRAL_COMMON_INBOX_H

#include <pthread.h>
#include <stdbool.h>

#include <event2/event.h>

#include "common/macros.h"

struct inbox_item {
	struct inbox_item *next;
	/* Runs on the inbox's thread; owns the item (frees it). */
	void (*run)(struct inbox_item *item, void *ctx);
	/* Frees an item that will never run (the inbox is closing). */
	void (*drop)(struct inbox_item *item);
};

struct inbox {
	pthread_mutex_t lock;
	struct inbox_item *head, *tail;
	int efd;
	struct event *ev;
	void *ctx; /* passed to every item's run */
};

bool inbox_init(struct inbox *in, struct event_base *base, void *ctx) WARN_UNUSED;
/* Thread-safe.  The item belongs to the inbox from now on. */
void inbox_post(struct inbox *in, struct inbox_item *item);
/* Drops whatever is still queued and releases the inbox (owning thread, loop over). */
void inbox_close(struct inbox *in);

#endif
