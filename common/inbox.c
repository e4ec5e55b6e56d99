#include "common/inbox.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct inbox_item *take_all(struct inbox *in)
{
	pthread_mutex_lock(&in->lock);
	struct inbox_item *items = in->head;
	in->head = in->tail = NULL;
	pthread_mutex_unlock(&in->lock);
	return items;
}

static void on_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct inbox *in = arg;
	uint64_t n;
	while (read(in->efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	struct inbox_item *item = take_all(in);
	while (item) {
		struct inbox_item *next = item->next;
		item->run(item, in->ctx);
		item = next;
	}
}

bool inbox_init(struct inbox *in, struct event_base *base, void *ctx)
{
	in->head = in->tail = NULL;
	in->ctx = ctx;
	in->ev = NULL;
	in->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (in->efd < 0)
		return false;
	if (pthread_mutex_init(&in->lock, NULL) != 0) {
		close(in->efd);
		in->efd = -1;
		return false;
	}
	in->ev = event_new(base, in->efd, EV_READ | EV_PERSIST, on_wakeup, in);
	return in->ev && event_add(in->ev, NULL) == 0;
}

void inbox_post(struct inbox *in, struct inbox_item *item)
{
	item->next = NULL;
	pthread_mutex_lock(&in->lock);
	if (in->tail)
		in->tail->next = item;
	else
		in->head = item;
	in->tail = item;
	pthread_mutex_unlock(&in->lock);
	uint64_t one = 1;
	/* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
	while (write(in->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void inbox_close(struct inbox *in)
{
	if (in->efd < 0)
		return;
	struct inbox_item *item = take_all(in);
	while (item) {
		struct inbox_item *next = item->next;
		item->drop(item);
		item = next;
	}
	if (in->ev)
		event_free(in->ev);
	in->ev = NULL;
	close(in->efd);
	in->efd = -1;
	pthread_mutex_destroy(&in->lock);
}
