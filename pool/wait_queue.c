#include "pool/wait_queue.h"

void wait_queue_init(struct wait_queue *q, atomic_int *published_len,
		     atomic_llong *published_oldest)
{
	list_init(&q->list);
	q->n = 0;
	q->published_len = published_len;
	q->published_oldest = published_oldest;
}

struct pool_waiter *wait_queue_head(const struct wait_queue *q)
{
	struct list *head = list_first(&q->list);
	return head ? list_entry(head, struct pool_waiter, node) : NULL;
}

static void publish_oldest(struct wait_queue *q)
{
	struct pool_waiter *head = wait_queue_head(q);
	atomic_store(q->published_oldest, head ? head->since : 0);
}

void wait_queue_push(struct wait_queue *q, struct pool_waiter *w, enum wait_kind kind)
{
	w->kind = kind;
	w->since = clock_now_usec();
	w->queued = true;
	list_append(&q->list, &w->node);
	q->n++;
	atomic_fetch_add(q->published_len, 1);
	if (q->n == 1)
		publish_oldest(q);
}

void wait_queue_push_head(struct wait_queue *q, struct pool_waiter *w)
{
	w->queued = true;
	list_prepend(&q->list, &w->node);
	q->n++;
	atomic_fetch_add(q->published_len, 1);
	publish_oldest(q);
}

void wait_queue_remove(struct wait_queue *q, struct pool_waiter *w)
{
	bool was_head = list_first(&q->list) == &w->node;
	list_del(&w->node);
	w->queued = false;
	q->n--;
	atomic_fetch_sub(q->published_len, 1);
	if (was_head)
		publish_oldest(q);
}
