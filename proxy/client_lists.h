/*
 * A worker's clients by state, as PgBouncer keeps them: every state belongs to one
 * list of the worker, client_set_state is the one place a client changes state, and
 * every count is a list length (worker->n_client_list) that a console on the worker
 * can walk.  The login list is in accept order, so the login deadline is a scan from
 * its head.
 *
 * Readers on other threads cannot walk a worker's lists; for them the same counts are
 * kept per pool and per application in the worker's stats blocks (pool/stats.h, the
 * clients[] gauges), which client_set_state updates with the lists.  The list indexes
 * are the gauges' indexes (STATS_CL_*), and the dead list comes last, uncounted.
 */
#ifndef CORRAL_PROXY_CLIENT_LISTS_H
#define CORRAL_PROXY_CLIENT_LISTS_H

#include <stddef.h>

#include "pool/stats.h"
#include "proxy/client.h"

enum client_list {
	CLIENT_LIST_LOGIN = STATS_CL_LOGIN,             /* startup, auth, welcome wait */
	CLIENT_LIST_IDLE = STATS_CL_IDLE,               /* idle */
	CLIENT_LIST_WAITING_APP = STATS_CL_WAITING_APP, /* waiting for an application slot */
	CLIENT_LIST_WAITING = STATS_CL_WAITING,         /* waiting for a server */
	CLIENT_LIST_ACTIVE = STATS_CL_ACTIVE,           /* preparing, active */
	CLIENT_LIST_CLOSING = STATS_CL_CLOSING,         /* closing */
	CLIENT_LIST_DEAD = STATS_CL_GROUPS,             /* closed, freed by the reaper */
	CLIENT_LISTS
};

struct worker;

/* The list a state belongs to. */
enum client_list client_list_of(enum client_state st);
/* Empty lists for w. */
void client_lists_init(struct worker *w);
/* A new client enters w's login list (CL_STARTUP) at its tail. */
void client_lists_add(struct worker *w, struct client *c);
/*
 * The one place a client changes state: it moves to the tail of its new state's list
 * when the list changes (so each list stays in the order clients entered it), and the
 * gauges of its pool and application follow.  CL_CLOSED takes it out of the counts
 * (the dead list is not counted, nor in n_clients).
 */
void client_set_state(struct client *c, enum client_state st);
/* c is logged in to a pool: from now on its state counts in these blocks' gauges
 * (either may be NULL). */
void client_stats_attach(struct client *c, struct stats_block *pool_stats,
			 struct stats_block *app_stats);
/* Takes c out of its list and the counts (the reaper, before freeing it). */
void client_lists_remove(struct client *c);
/* The first client of list l of w, or NULL. */
struct client *client_list_first(const struct worker *w, enum client_list l);

#endif
