#include "proxy/admin_gather.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/inbox.h"
#include "proxy/worker.h"

/*
 * A gather is shared by the console's worker and every worker it asks, so it is
 * reference counted: one reference per message (a request that becomes a reply) and one
 * for the console client.  A message dropped by a closing inbox, a client that leaves,
 * and a reply all give theirs back; the last one frees the gather, on whatever thread.
 * Everything else in it is written by one thread at a time: parts[i] by worker i, then
 * (after the reply's inbox handover) read by the console's worker, which alone touches
 * c and remaining.
 */
struct gather {
	atomic_int refs;
	struct client *c;    /* NULL once it left or was answered */
	struct worker *home; /* the console client's worker */
	int from;            /* its id */
	int n, remaining;
	admin_collect_fn collect;
	admin_finish_fn finish;
	struct inbox **inboxes;
	struct admin_gather_part parts[];
};

struct gather_msg {
	struct inbox_item item;
	struct gather *g;
	int worker;
};

static void unref(struct gather *g)
{
	if (atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	for (int i = 0; i < g->n; i++)
		if (g->parts[i].rows)
			evbuffer_free(g->parts[i].rows);
	free(g);
}

static void msg_drop(struct inbox_item *item)
{
	struct gather_msg *m = (struct gather_msg *)item;
	struct gather *g = m->g;
	free(m);
	unref(g);
}

static void reply_run(struct inbox_item *item, void *ctx)
{
	struct gather_msg *m = (struct gather_msg *)item;
	struct gather *g = m->g;
	free(m);
	if (--g->remaining == 0 && g->c) {
		struct client *c = g->c;
		g->c = NULL;
		enum admin_result r = g->finish(g->home, admin_output(c), g->parts, g->n);
		unref(g); /* the client's reference: admin_resume forgets the gone callback */
		admin_resume(c, r);
	}
	unref(g);
}

static void request_run(struct inbox_item *item, void *ctx)
{
	struct gather_msg *m = (struct gather_msg *)item;
	/* A worker's inbox hands its items the worker's pool_env. */
	struct worker *w = container_of(ctx, struct worker, pools);
	struct gather *g = m->g;
	struct admin_gather_part *part = &g->parts[m->worker];
	part->rows = evbuffer_new();
	if (part->rows)
		g->collect(w, part);
	m->item.run = reply_run;
	inbox_post(g->inboxes[g->from], &m->item);
}

static void client_gone(void *arg)
{
	struct gather *g = arg;
	g->c = NULL;
	unref(g);
}

enum admin_result admin_gather(struct admin_ctx *ctx, admin_collect_fn collect,
			       admin_finish_fn finish)
{
	struct worker_shared *sh = ctx->w->shared;
	int n = sh->n_workers;
	struct gather *g = calloc(1, sizeof(*g) + (size_t)n * sizeof(g->parts[0]));
	struct gather_msg **msgs = calloc((size_t)n, sizeof(*msgs));
	bool ok = g && msgs;
	for (int i = 0; ok && i < n; i++)
		ok = (msgs[i] = calloc(1, sizeof(*msgs[i]))) != NULL;
	if (!ok) {
		for (int i = 0; msgs && i < n; i++)
			free(msgs[i]);
		free(msgs);
		free(g);
		return admin_error(ctx, "53200", "out of memory");
	}
	atomic_init(&g->refs, n + 1);
	g->c = ctx->c;
	g->home = ctx->w;
	g->from = ctx->w->id;
	g->n = g->remaining = n;
	g->collect = collect;
	g->finish = finish;
	g->inboxes = sh->inboxes;
	admin_suspend(ctx, client_gone, g);
	/* Its own part too goes through the inbox: one path, and never inside the read
	 * callback that parsed the command. */
	for (int i = 0; i < n; i++) {
		msgs[i]->g = g;
		msgs[i]->worker = i;
		msgs[i]->item.run = request_run;
		msgs[i]->item.drop = msg_drop;
		inbox_post(sh->inboxes[i], &msgs[i]->item);
	}
	free(msgs);
	return ADMIN_PENDING;
}
