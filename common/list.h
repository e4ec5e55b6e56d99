/*
 * Intrusive circular doubly-linked lists.  Every connection state in corral is a
 * list (PgBouncer's idea): an object is in exactly one state list at a time, counts
 * are list lengths and timeouts are scans of one list.
 */
#ifndef CORRAL_COMMON_LIST_H
#define CORRAL_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

struct list {
	struct list *next, *prev;
};

static inline void list_init(struct list *l)
{
	l->next = l->prev = l;
}

static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}

static inline void list_insert_between(struct list *item, struct list *prev, struct list *next)
{
	item->prev = prev;
	item->next = next;
	prev->next = item;
	next->prev = item;
}

static inline void list_append(struct list *head, struct list *item)
{
	list_insert_between(item, head->prev, head);
}

static inline void list_prepend(struct list *head, struct list *item)
{
	list_insert_between(item, head, head->next);
}

/* Unlinks item and leaves it as an empty list, so a second delete is harmless. */
static inline void list_del(struct list *item)
{
	item->prev->next = item->next;
	item->next->prev = item->prev;
	list_init(item);
}

static inline struct list *list_first(const struct list *head)
{
	return list_empty(head) ? NULL : head->next;
}

static inline struct list *list_last(const struct list *head)
{
	return list_empty(head) ? NULL : head->prev;
}

static inline size_t list_length(const struct list *head)
{
	size_t n = 0;
	for (const struct list *it = head->next; it != head; it = it->next)
		n++;
	return n;
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)

/* Iterates safely against deletion of the current item. */
#define list_for_each_safe(it, tmp, head)                             \
	for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); \
	     (it) = (tmp), (tmp) = (it)->next)

#endif
