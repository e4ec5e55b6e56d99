#include "pool/activate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stream.h"

static void clear(struct pool_waiter *w)
{
	list_del(&w->node);
	if (w->server)
		w->server->reserved_for = NULL;
	w->server = NULL;
	w->message = NULL;
	w->pending = PENDING_NONE;
}

/* Runs every activation queued before this callback started; those the hooks queue
 * run on the next callback (it is made active again at once). */
static void activate_run(evutil_socket_t fd, short what, void *arg)
{
	struct pool_env *env = arg;
	if (list_empty(&env->activations))
		return;
	struct list batch;
	list_insert_between(&batch, env->activations.prev, &env->activations);
	list_del(&env->activations); /* batch now heads the entries, activations is empty */
	struct list *first;
	/* A hook may cancel a later entry of the batch (its client closes another): take
	 * the head each time rather than walk a list that changes under the walk. */
	while ((first = list_first(&batch)) != NULL) {
		struct pool_waiter *w = list_entry(first, struct pool_waiter, node);
		enum wait_pending p = w->pending;
		struct server *s = w->server;
		char *message = w->message;
		char sqlstate[sizeof(w->sqlstate)];
		memcpy(sqlstate, w->sqlstate, sizeof(sqlstate));
		clear(w);
		switch (p) {
		case PENDING_SERVER:
			/* Its idle watch ends here: the client's code takes over the server. */
			stream_setcb(s->io, NULL, NULL, NULL, NULL);
			env->hooks->server_ready(w, s);
			break;
		case PENDING_ADMIT:
			env->hooks->app_admitted(w);
			break;
		case PENDING_FAIL:
			env->hooks->wait_failed(w, sqlstate, message ? message : "out of memory");
			free(message);
			break;
		case PENDING_NONE:
			break;
		}
	}
}

bool activate_init(struct pool_env *env)
{
	list_init(&env->activations);
	env->activate_ev = event_new(env->base, -1, 0, activate_run, env);
	return env->activate_ev != NULL;
}

void activate_free(struct pool_env *env)
{
	if (!env->activate_ev)
		return;
	struct list *first;
	struct server *s;
	while ((first = list_first(&env->activations)) != NULL)
		(void)activate_cancel(list_entry(first, struct pool_waiter, node), &s);
	event_free(env->activate_ev);
	env->activate_ev = NULL;
}

static void schedule(struct pool_env *env, struct pool_waiter *w, enum wait_pending what)
{
	if (list_empty(&env->activations))
		event_active(env->activate_ev, 0, 0);
	w->pending = what;
	list_append(&env->activations, &w->node);
}

void activate_server(struct pool_env *env, struct pool_waiter *w, struct server *s)
{
	w->server = s;
	s->reserved_for = w;
	schedule(env, w, PENDING_SERVER);
}

void activate_admit(struct pool_env *env, struct pool_waiter *w)
{
	schedule(env, w, PENDING_ADMIT);
}

void activate_fail(struct pool_env *env, struct pool_waiter *w, const char *sqlstate,
		   const char *message)
{
	snprintf(w->sqlstate, sizeof(w->sqlstate), "%s", sqlstate);
	w->message = strdup(message);
	schedule(env, w, PENDING_FAIL);
}

enum wait_pending activate_cancel(struct pool_waiter *w, struct server **reserved)
{
	enum wait_pending p = w->pending;
	*reserved = w->server;
	if (p == PENDING_NONE)
		return p;
	free(w->message);
	clear(w);
	return p;
}
