/*
 * proxy/client_lists.c: client_set_state keeps every client on the one list of its
 * state, each list's count equal to its length, and the gauges of the client's pool
 * and application equal to the number of their clients on each list.  No sockets: the
 * clients are bare structs on a bare worker.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "proxy/client_lists.h"
#include "proxy/worker.h"

static struct worker w;
static struct stats_block pool_stats, app_stats;

static void setup(void)
{
	memset(&w, 0, sizeof(w));
	memset(&pool_stats, 0, sizeof(pool_stats));
	memset(&app_stats, 0, sizeof(app_stats));
	client_lists_init(&w);
}

TestSuite(client_lists, .init = setup);

static struct client *new_client(void)
{
	struct client *c = calloc(1, sizeof(*c));
	cr_assert_not_null(c);
	c->worker = &w;
	client_lists_add(&w, c);
	return c;
}

static bool on_list(const struct client *c, enum client_list l)
{
	for (const struct list *it = w.client_list[l].next; it != &w.client_list[l]; it = it->next)
		if (it == &c->node)
			return true;
	return false;
}

/* Every count is its list's length; the gauges are the counts of attached clients. */
static void check_counts(long long attached_per_list[CLIENT_LISTS])
{
	size_t live = 0;
	for (int l = 0; l < CLIENT_LISTS; l++) {
		cr_assert_eq(w.n_client_list[l], list_length(&w.client_list[l]), "list %d", l);
		if (l != CLIENT_LIST_DEAD) {
			live += w.n_client_list[l];
			cr_assert_eq(stats_read(&pool_stats.clients[l]), attached_per_list[l],
				     "pool gauge %d", l);
			cr_assert_eq(stats_read(&app_stats.clients[l]), attached_per_list[l],
				     "app gauge %d", l);
		}
	}
	cr_assert_eq(w.n_clients, live);
}

Test(client_lists, states_map_to_lists)
{
	cr_expect_eq(client_list_of(CL_STARTUP), CLIENT_LIST_LOGIN);
	cr_expect_eq(client_list_of(CL_AUTH), CLIENT_LIST_LOGIN);
	cr_expect_eq(client_list_of(CL_WELCOME_WAIT), CLIENT_LIST_LOGIN);
	cr_expect_eq(client_list_of(CL_IDLE), CLIENT_LIST_IDLE);
	cr_expect_eq(client_list_of(CL_WAITING_APP), CLIENT_LIST_WAITING_APP);
	cr_expect_eq(client_list_of(CL_WAITING), CLIENT_LIST_WAITING);
	cr_expect_eq(client_list_of(CL_PREPARING), CLIENT_LIST_ACTIVE);
	cr_expect_eq(client_list_of(CL_ACTIVE), CLIENT_LIST_ACTIVE);
	cr_expect_eq(client_list_of(CL_CLOSING), CLIENT_LIST_CLOSING);
	cr_expect_eq(client_list_of(CL_CLOSED), CLIENT_LIST_DEAD);
}

/* One client through every state, attached to its pool once logged in. */
Test(client_lists, every_transition_moves_lists_and_gauges)
{
	long long gauges[CLIENT_LISTS] = {0};
	struct client *c = new_client();
	cr_assert(on_list(c, CLIENT_LIST_LOGIN));
	check_counts(gauges);

	client_set_state(c, CL_AUTH);
	client_set_state(c, CL_WELCOME_WAIT);
	cr_assert(on_list(c, CLIENT_LIST_LOGIN));
	check_counts(gauges);
	client_stats_attach(c, &pool_stats, &app_stats);
	gauges[CLIENT_LIST_LOGIN] = 1;
	check_counts(gauges);

	static const enum client_state path[] = {
		CL_WAITING_APP, CL_WAITING, CL_PREPARING,   CL_ACTIVE, CL_IDLE,    CL_WAITING,
		CL_ACTIVE,      CL_IDLE,    CL_WAITING_APP, CL_IDLE,   CL_CLOSING,
	};
	for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
		enum client_list from = client_list_of(c->state), to = client_list_of(path[i]);
		client_set_state(c, path[i]);
		cr_assert_eq(c->state, path[i]);
		for (int l = 0; l < CLIENT_LISTS; l++)
			cr_assert_eq(on_list(c, l), l == (int)to, "step %zu: list %d", i, l);
		gauges[from]--;
		gauges[to]++;
		check_counts(gauges);
	}
	client_set_state(c, CL_CLOSED);
	cr_assert(on_list(c, CLIENT_LIST_DEAD));
	gauges[CLIENT_LIST_CLOSING]--;
	check_counts(gauges);
	cr_assert_eq(w.n_clients, 0);
	client_lists_remove(c);
	cr_assert_eq(w.n_client_list[CLIENT_LIST_DEAD], 0);
	check_counts(gauges);
	free(c);
}

/* The login deadline scans the login list from its head: it stays in accept order
 * whatever the clients' login states are. */
Test(client_lists, login_list_keeps_accept_order)
{
	struct client *c[4];
	for (int i = 0; i < 4; i++)
		c[i] = new_client();
	client_set_state(c[2], CL_AUTH);
	client_set_state(c[0], CL_AUTH);
	client_set_state(c[0], CL_WELCOME_WAIT);
	const struct list *it = w.client_list[CLIENT_LIST_LOGIN].next;
	for (int i = 0; i < 4; i++, it = it->next)
		cr_assert_eq(it, &c[i]->node, "position %d", i);
	cr_assert_eq(client_list_first(&w, CLIENT_LIST_LOGIN), c[0]);

	/* Leaving for another list and coming back appends (entry order). */
	client_set_state(c[1], CL_IDLE);
	client_set_state(c[3], CL_IDLE);
	cr_assert_eq(client_list_first(&w, CLIENT_LIST_IDLE), c[1]);
	client_set_state(c[1], CL_ACTIVE);
	client_set_state(c[1], CL_IDLE);
	cr_assert_eq(client_list_first(&w, CLIENT_LIST_IDLE), c[3]);
	cr_assert_null(client_list_first(&w, CLIENT_LIST_WAITING));
	long long none[CLIENT_LISTS] = {0};
	check_counts(none);
	for (int i = 0; i < 4; i++) {
		client_set_state(c[i], CL_CLOSED);
		client_lists_remove(c[i]);
		free(c[i]);
	}
	check_counts(none);
}

/* Attached late (while idle) or never: the gauges count exactly the attached clients,
 * and a closed client leaves them. */
Test(client_lists, gauges_count_attached_clients_only)
{
	struct client *a = new_client(), *b = new_client();
	client_set_state(a, CL_IDLE);
	client_set_state(b, CL_IDLE);
	client_stats_attach(a, &pool_stats, &app_stats);
	long long gauges[CLIENT_LISTS] = {0};
	gauges[CLIENT_LIST_IDLE] = 1;
	check_counts(gauges);
	client_set_state(a, CL_ACTIVE);
	client_set_state(b, CL_ACTIVE);
	gauges[CLIENT_LIST_IDLE] = 0;
	gauges[CLIENT_LIST_ACTIVE] = 1;
	check_counts(gauges);
	cr_assert_eq(w.n_client_list[CLIENT_LIST_ACTIVE], 2);
	client_set_state(a, CL_CLOSED);
	gauges[CLIENT_LIST_ACTIVE] = 0;
	check_counts(gauges);
	client_lists_remove(a);
	client_set_state(b, CL_CLOSED);
	client_lists_remove(b);
	free(a);
	free(b);
	check_counts(gauges);
}
