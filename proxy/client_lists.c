#include "proxy/client_lists.h"

#include "proxy/worker.h"

enum client_list client_list_of(enum client_state st)
{
	switch (st) {
	case CL_STARTUP:
	case CL_AUTH:
	case CL_WELCOME_WAIT:
		return CLIENT_LIST_LOGIN;
	case CL_IDLE:
		return CLIENT_LIST_IDLE;
	case CL_WAITING_APP:
		return CLIENT_LIST_WAITING_APP;
	case CL_WAITING:
		return CLIENT_LIST_WAITING;
	case CL_PREPARING:
	case CL_ACTIVE:
		return CLIENT_LIST_ACTIVE;
	case CL_CLOSING:
		return CLIENT_LIST_CLOSING;
	case CL_CLOSED:
		break;
	}
	return CLIENT_LIST_DEAD;
}

void client_lists_init(struct worker *w)
{
	for (int i = 0; i < CLIENT_LISTS; i++) {
		list_init(&w->client_list[i]);
		w->n_client_list[i] = 0;
	}
	w->n_clients = 0;
}

/* The gauges of c's pool and application for list l (the dead list has none). */
static void count_gauges(struct client *c, enum client_list l, long long n)
{
	if (l == CLIENT_LIST_DEAD)
		return;
	if (c->pool_stats)
		stats_add(&c->pool_stats->clients[l], n);
	if (c->app_stats)
		stats_add(&c->app_stats->clients[l], n);
}

/* Accepted and not yet authenticated (max_logins_in_progress counts these). */
static bool logging_in(enum client_state st)
{
	return st == CL_STARTUP || st == CL_AUTH;
}

void client_lists_add(struct worker *w, struct client *c)
{
	w->n_logins++;
	c->state = CL_STARTUP;
	list_append(&w->client_list[CLIENT_LIST_LOGIN], &c->node);
	w->n_client_list[CLIENT_LIST_LOGIN]++;
	w->n_clients++;
}

void client_set_state(struct client *c, enum client_state st)
{
	enum client_list from = client_list_of(c->state), to = client_list_of(st);
	if (logging_in(c->state) != logging_in(st)) {
		if (logging_in(st))
			c->worker->n_logins++;
		else
			c->worker->n_logins--;
	}
	c->state = st;
	if (from == to)
		return;
	struct worker *w = c->worker;
	list_del(&c->node);
	list_append(&w->client_list[to], &c->node);
	w->n_client_list[from]--;
	w->n_client_list[to]++;
	count_gauges(c, from, -1);
	count_gauges(c, to, 1);
	if (to == CLIENT_LIST_DEAD)
		w->n_clients--;
}

void client_stats_attach(struct client *c, struct stats_block *pool_stats,
			 struct stats_block *app_stats)
{
	count_gauges(c, client_list_of(c->state), -1); /* out of the blocks it had, if any */
	c->pool_stats = pool_stats;
	c->app_stats = app_stats;
	count_gauges(c, client_list_of(c->state), 1);
}

struct client *client_list_first(const struct worker *w, enum client_list l)
{
	struct list *first = list_first(&w->client_list[l]);
	return first ? list_entry(first, struct client, node) : NULL;
}

void client_lists_remove(struct client *c)
{
	struct worker *w = c->worker;
	enum client_list l = client_list_of(c->state);
	if (logging_in(c->state))
		w->n_logins--;
	list_del(&c->node);
	w->n_client_list[l]--;
	count_gauges(c, l, -1);
	if (l != CLIENT_LIST_DEAD)
		w->n_clients--;
}
