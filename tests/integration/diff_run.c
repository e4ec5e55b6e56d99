/*
 * Running differential-test sequences and comparing their replies (diff_run.h).
 */
#include "tests/integration/diff_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tests/integration/harness.h"

/* Direct run, a chunk whose replies carry no ReadyForQuery: nothing for this long = done. */
#define QUIET_S 0.020
/* Longest a whole run may take (every wait has its own timeout too). */
#define RUN_LIMIT_S 300.0

/* ---------------------------------------------------------------- one client */

enum rc_state {
	RC_PAUSE,       /* before a chunk, until t */
	RC_SEND,        /* writing a chunk; the next write not before t */
	RC_WAIT,        /* for the chunk's replies, until the deadline t */
	RC_LEAVING,     /* closes its socket at t */
	RC_TERMINATING, /* sent Terminate, reads until EOF or t */
	RC_DONE,
};

struct rc {
	int k;
	const struct dg_client *cl;
	struct dr_stream *st;
	const struct dr_stream *want; /* the direct run's (NULL in the direct run) */
	double timeout_scale;
	PGconn *pg;
	int fd;
	size_t chunk;
	enum rc_state state;
	double t;
	unsigned char *out; /* the chunk's bytes */
	size_t out_len, out_off;
	size_t *cuts; /* write boundaries, ascending, the last one out_len */
	size_t n_cuts, cut;
	bool blocked; /* the last write would block: wait for POLLOUT */
	double sent_at, last_rx;
};

static void st_problem(struct dr_stream *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void st_problem(struct dr_stream *st, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (st->problem != NULL)
		return; /* the first one says it */
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	st->problem = s;
}

/* Appends received bytes and records the messages they complete. */
static void st_add(struct dr_stream *st, const unsigned char *data, size_t n)
{
	size_t off = st->n_msgs ? st->ends[st->n_msgs - 1] : 0;

	if (st->len + n > st->cap) {
		st->cap = (st->len + n) * 2 + 4096;
		st->buf = realloc(st->buf, st->cap);
		if (st->buf == NULL)
			abort();
	}
	memcpy(st->buf + st->len, data, n);
	st->len += n;
	for (;;) {
		const unsigned char *body;
		size_t blen, m;
		char type;

		m = h_msg(st->buf + off, st->len - off, &type, &body, &blen);
		if (m == 0)
			break;
		if (st->n_msgs == st->cap_ends) {
			st->cap_ends = st->cap_ends ? st->cap_ends * 2 : 64;
			st->ends = realloc(st->ends, st->cap_ends * sizeof *st->ends);
			if (st->ends == NULL)
				abort();
		}
		off += m;
		st->ends[st->n_msgs++] = off;
		st->z += type == 'Z';
		st->g += type == 'G';
	}
}

static void rc_close(struct rc *c)
{
	if (c->pg != NULL)
		PQfinish(c->pg); /* its Terminate goes nowhere if the socket is closed */
	c->pg = NULL;
	c->fd = -1;
	c->state = RC_DONE;
}

/* The chunk's bytes and where its writes end. */
static void rc_prepare(struct rc *c, double now)
{
	const struct dg_chunk *ch = &c->cl->chunks[c->chunk];
	uint64_t rng = ch->split_seed ? ch->split_seed : 1;

	c->out_len = 0;
	for (size_t i = ch->first; i < ch->first + ch->count; i++)
		c->out_len += c->cl->msgs[i].len;
	free(c->out);
	free(c->cuts);
	c->out = malloc(c->out_len);
	c->cuts = malloc((ch->count + 9) * sizeof *c->cuts);
	if (c->out == NULL || c->cuts == NULL)
		abort();
	c->out_off = 0;
	c->n_cuts = 0;
	c->cut = 0;
	for (size_t i = ch->first, off = 0; i < ch->first + ch->count; i++) {
		memcpy(c->out + off, c->cl->msgs[i].bytes, c->cl->msgs[i].len);
		off += c->cl->msgs[i].len;
		if (ch->send == DG_SEND_PER_MESSAGE)
			c->cuts[c->n_cuts++] = off;
	}
	if (ch->send == DG_SEND_SPLIT) { /* up to 8 cuts anywhere, headers included */
		size_t n = 1 + h_xorshift64(&rng) % 8;

		for (size_t i = 0; i < n; i++)
			c->cuts[c->n_cuts++] = 1 + h_xorshift64(&rng) % c->out_len;
		for (size_t i = 1; i < c->n_cuts; i++) /* insertion sort */
			for (size_t j = i; j > 0 && c->cuts[j - 1] > c->cuts[j]; j--) {
				size_t x = c->cuts[j];

				c->cuts[j] = c->cuts[j - 1];
				c->cuts[j - 1] = x;
			}
	}
	if (c->n_cuts == 0 || c->cuts[c->n_cuts - 1] != c->out_len)
		c->cuts[c->n_cuts++] = c->out_len;
	c->state = RC_SEND;
	c->t = now;
	c->blocked = false;
}

/* After chunk c->chunk (and its wait): the next chunk, or the end. */
static void rc_next(struct rc *c, double now, double t0)
{
	c->st->chunk_msgs[c->chunk] = c->st->n_msgs;
	c->st->chunks_done = c->chunk + 1;
	c->chunk++;
	if (c->chunk < c->cl->n_chunks) {
		const struct dg_chunk *ch = &c->cl->chunks[c->chunk];
		double at = now + ch->pause_ms / 1000.0;

		c->state = RC_PAUSE;
		c->t = at > t0 + ch->start_at ? at : t0 + ch->start_at;
	} else if (c->cl->leave) {
		c->state = RC_LEAVING;
		c->t = now + c->cl->leave_after_ms / 1000.0;
	} else {
		static const unsigned char terminate[5] = {'X', 0, 0, 0, 4};

		if (send(c->fd, terminate, sizeof terminate, MSG_NOSIGNAL) !=
		    (ssize_t)sizeof terminate)
			st_problem(c->st, "could not send Terminate: %s", strerror(errno));
		c->state = RC_TERMINATING;
		c->t = now + 5.0;
	}
}

static bool rc_wait_done(struct rc *c, double now)
{
	const struct dg_chunk *ch = &c->cl->chunks[c->chunk];
	double since = c->last_rx > c->sent_at ? c->last_rx : c->sent_at;

	if (c->want != NULL)
		return c->st->n_msgs >= c->want->chunk_msgs[c->chunk];
	return c->st->z >= ch->z && c->st->g >= ch->g && (!ch->quiet || now - since >= QUIET_S);
}

/* Does what is due now; returns true if it changed state (call again). */
static bool rc_step(struct rc *c, double now, double t0)
{
	const struct dg_chunk *ch = c->chunk < c->cl->n_chunks ? &c->cl->chunks[c->chunk] : NULL;

	switch (c->state) {
	case RC_PAUSE:
		if (now < c->t)
			return false;
		rc_prepare(c, now);
		return true;
	case RC_SEND:
		if (now < c->t || c->blocked)
			return false;
		while (c->out_off < c->cuts[c->cut]) {
			ssize_t n = send(c->fd, c->out + c->out_off, c->cuts[c->cut] - c->out_off,
					 MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				c->blocked = true;
				return false;
			}
			if (n <= 0) {
				st_problem(c->st, "write of chunk %zu failed: %s", c->chunk,
					   n < 0 ? strerror(errno) : "0 bytes");
				rc_close(c);
				return true;
			}
			c->out_off += (size_t)n;
		}
		c->cut++;
		if (c->cut < c->n_cuts) {
			c->t = now + ch->gap_us / 1e6;
			return ch->gap_us == 0;
		}
		c->sent_at = now;
		if (ch->wait) {
			c->state = RC_WAIT;
			c->t = now + ch->wait_timeout * c->timeout_scale;
			return true;
		}
		rc_next(c, now, t0);
		return true;
	case RC_WAIT:
		if (rc_wait_done(c, now)) {
			rc_next(c, now, t0);
			return true;
		}
		if (now >= c->t || c->st->eof) {
			c->st->hung = true;
			c->st->hung_chunk = c->chunk;
			if (c->want != NULL)
				st_problem(
					c->st,
					"%s after chunk %zu: waited %.1f s for %zu messages, got %zu "
					"(the direct run had them)",
					c->st->eof ? "connection closed" : "hung", c->chunk,
					now - c->sent_at, c->want->chunk_msgs[c->chunk],
					c->st->n_msgs);
			else
				st_problem(
					c->st,
					"%s after chunk %zu: waited %.1f s for ReadyForQuery #%d and "
					"CopyInResponse #%d, got %d and %d",
					c->st->eof ? "connection closed" : "hung", c->chunk,
					now - c->sent_at, ch->z, ch->g, c->st->z, c->st->g);
			rc_close(c);
			return true;
		}
		return false;
	case RC_LEAVING:
		if (now < c->t)
			return false;
		shutdown(c->fd, SHUT_RDWR);
		rc_close(c);
		return true;
	case RC_TERMINATING:
		if (c->st->eof) {
			rc_close(c);
			return true;
		}
		if (now >= c->t) {
			st_problem(c->st, "not closed within 5 s after Terminate");
			rc_close(c);
			return true;
		}
		return false;
	case RC_DONE:
		return false;
	}
	return false;
}

static void rc_read(struct rc *c, double now)
{
	unsigned char buf[65536];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof buf, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->st->eof = true;
			if (c->state != RC_TERMINATING && c->state != RC_LEAVING)
				c->st->early_eof = true;
			return;
		}
		c->last_rx = now;
		st_add(c->st, buf, (size_t)n);
	}
}

/* ---------------------------------------------------------------- a run */

/* Direct run: a quiet wait needs the loop to come round soon. */
static bool c_quiet_tick(const struct rc *cs, int n)
{
	for (int k = 0; k < n; k++)
		if (cs[k].state == RC_WAIT && cs[k].want == NULL &&
		    cs[k].cl->chunks[cs[k].chunk].quiet)
			return true;
	return false;
}

void dr_run(const struct dg_seq *s, const char *conninfo, const struct dr_run *direct,
	    double timeout_scale, struct dr_run *out)
{
	struct rc cs[DG_MAX_CLIENTS];
	double t0, limit;

	memset(out, 0, sizeof *out);
	memset(cs, 0, sizeof cs);
	out->n = s->n_clients;
	for (int k = 0; k < s->n_clients; k++) {
		struct rc *c = &cs[k];

		c->k = k;
		c->cl = &s->clients[k];
		c->st = &out->c[k];
		c->want = direct ? &direct->c[k] : NULL;
		c->timeout_scale = timeout_scale;
		c->fd = -1;
		c->st->chunk_msgs = calloc(c->cl->n_chunks + 1, sizeof *c->st->chunk_msgs);
		c->pg = PQconnectdb(conninfo);
		if (PQstatus(c->pg) != CONNECTION_OK) {
			st_problem(c->st, "login failed: %s", PQerrorMessage(c->pg));
			rc_close(c);
			continue;
		}
		c->fd = PQsocket(c->pg);
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	}
	t0 = h_now();
	limit = t0 + RUN_LIMIT_S;
	for (int k = 0; k < s->n_clients; k++) {
		struct rc *c = &cs[k];

		if (c->state == RC_DONE)
			continue;
		c->state = RC_PAUSE;
		c->t = t0 + c->cl->chunks[0].start_at + c->cl->chunks[0].pause_ms / 1000.0;
		c->sent_at = c->last_rx = t0;
	}
	for (;;) {
		struct pollfd pfd[DG_MAX_CLIENTS];
		int idx[DG_MAX_CLIENTS], n = 0, running = 0;
		double now = h_now(), next = now + 0.010;

		for (int k = 0; k < s->n_clients; k++) {
			struct rc *c = &cs[k];

			while (rc_step(c, now, t0))
				;
			if (c->state == RC_DONE)
				continue;
			running++;
			if (now >= limit) {
				st_problem(c->st, "the run took more than %.0f s", RUN_LIMIT_S);
				c->st->hung = true;
				c->st->hung_chunk = c->chunk;
				rc_close(c);
				continue;
			}
			if (c->t > now && c->t < next && c->state != RC_WAIT)
				next = c->t;
			pfd[n] = (struct pollfd){.fd = c->fd,
						 .events = POLLIN |
							   (c->state == RC_SEND && c->blocked
								    ? POLLOUT
								    : 0)};
			idx[n++] = k;
		}
		if (running == 0)
			break;
		if (c_quiet_tick(cs, s->n_clients))
			next = now + 0.002;
		{
			int ms = (int)((next - now) * 1000 + 0.999);

			if (poll(pfd, (nfds_t)n, ms < 0 ? 0 : ms) < 0 && errno != EINTR)
				abort();
		}
		now = h_now();
		for (int i = 0; i < n; i++) {
			struct rc *c = &cs[idx[i]];

			if (pfd[i].revents & POLLOUT)
				c->blocked = false;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				rc_read(c, now);
		}
	}
	for (int k = 0; k < s->n_clients; k++) {
		free(cs[k].out);
		free(cs[k].cuts);
	}
	out->secs = h_now() - t0;
}

void dr_free(struct dr_run *r)
{
	for (int k = 0; k < r->n; k++) {
		free(r->c[k].buf);
		free(r->c[k].ends);
		free(r->c[k].chunk_msgs);
		free(r->c[k].problem);
	}
	memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- checks */

static const unsigned char *msg_at(const struct dr_stream *st, size_t i, size_t *len)
{
	size_t start = i ? st->ends[i - 1] : 0;

	*len = st->ends[i] - start;
	return st->buf + start;
}

static void sb_msg(struct h_sbuf *b, const struct dr_stream *st, size_t i)
{
	size_t len;
	const unsigned char *m;
	char *t;

	if (i >= st->n_msgs) {
		h_sb_printf(b, "(nothing)");
		return;
	}
	m = msg_at(st, i, &len);
	t = dg_reply_text(m, len);
	h_sb_printf(b, "%s", t);
	free(t);
}

char *dr_stream_text(const struct dr_stream *st, size_t max)
{
	struct h_sbuf b = {0};
	size_t chunk = 0;

	h_sb_printf(&b, "%s", "");
	for (size_t i = 0; i < st->n_msgs && i < max; i++) {
		/* chunk: the first one the client had not moved on from when i arrived */
		while (chunk < st->chunks_done && st->chunk_msgs[chunk] <= i)
			chunk++;
		h_sb_printf(&b, "    #%zu (chunk %zu) ", i, chunk);
		sb_msg(&b, st, i);
		h_sb_printf(&b, "\n");
	}
	if (st->n_msgs > max)
		h_sb_printf(&b, "    ... %zu more\n", st->n_msgs - max);
	if (st->len > (st->n_msgs ? st->ends[st->n_msgs - 1] : 0))
		h_sb_printf(&b, "    + %zu bytes of an incomplete message\n",
			    st->len - (st->n_msgs ? st->ends[st->n_msgs - 1] : 0));
	return b.p;
}

char *dr_check_model(const struct dg_seq *s, const struct dr_run *d)
{
	struct h_sbuf b = {0};

	for (int k = 0; k < s->n_clients; k++) {
		const struct dg_client *cl = &s->clients[k];
		const struct dr_stream *st = &d->c[k];

		if (st->problem != NULL)
			h_sb_printf(&b, "client %d: %s\n", k, st->problem);
		else if (!cl->leave && (st->z != cl->z_total || st->g != cl->g_total))
			h_sb_printf(
				&b,
				"client %d: %d ReadyForQuery and %d CopyInResponse in all, the model "
				"said %d and %d\n",
				k, st->z, st->g, cl->z_total, cl->g_total);
		else if (!cl->leave && st->early_eof)
			h_sb_printf(&b, "client %d: PostgreSQL closed the connection\n", k);
	}
	return b.p;
}

/* The chunk that was being sent or waited for when message i arrived (as recorded). */
static size_t chunk_of(const struct dr_stream *st, size_t i)
{
	size_t c = 0;

	while (c < st->chunks_done && st->chunk_msgs[c] <= i)
		c++;
	return c;
}

/* Every occurrence of another client's marker in st (text found in its replies). */
static void check_markers(struct h_sbuf *b, const struct dg_seq *s, int k,
			  const struct dr_stream *st, const char *got_name)
{
	for (size_t i = 0; i < st->n_msgs; i++) {
		size_t len;
		const unsigned char *m = msg_at(st, i, &len);

		for (int j = 0; j < s->n_clients; j++) {
			const char *mk = s->clients[j].marker;

			if (j == k || *mk == '\0' || memmem(m, len, mk, strlen(mk)) == NULL)
				continue;
			h_sb_printf(
				b,
				"client %d received client %d's marker \"%s\" (%s, message #%zu): ",
				k, j, mk, got_name, i);
			sb_msg(b, st, i);
			h_sb_printf(b, "\n");
		}
		/* Markers of other sequences' clients: "mk<seqno>c<client>s" */
		for (size_t p = 0; p + 2 < len; p++) {
			size_t q = p + 2;
			long seq = 0, cli = 0;

			if (m[p] != 'm' || m[p + 1] != 'k')
				continue;
			for (; q < len && m[q] >= '0' && m[q] <= '9'; q++)
				seq = seq * 10 + (m[q] - '0');
			if (q == p + 2 || q >= len || m[q] != 'c')
				continue;
			for (q++; q < len && m[q] >= '0' && m[q] <= '9'; q++)
				cli = cli * 10 + (m[q] - '0');
			if (q >= len || m[q] != 's' || seq == s->seqno)
				continue;
			h_sb_printf(
				b,
				"client %d received a marker of sequence %ld client %ld (%s, message #%zu)\n",
				k, seq, cli, got_name, i);
		}
	}
}

char *dr_compare(const struct dg_seq *s, const struct dr_run *want, const struct dr_run *got,
		 const char *want_name, const char *got_name)
{
	struct h_sbuf b = {0};

	for (int k = 0; k < s->n_clients; k++) {
		const struct dg_client *cl = &s->clients[k];
		const struct dr_stream *w = &want->c[k], *g = &got->c[k];
		size_t n = w->n_msgs < g->n_msgs ? w->n_msgs : g->n_msgs, i;

		for (i = 0; i < n; i++) {
			size_t lw, lg;
			const unsigned char *mw = msg_at(w, i, &lw), *mg = msg_at(g, i, &lg);

			if (lw != lg || memcmp(mw, mg, lw) != 0)
				break;
		}
		if (i < n || (!cl->leave && w->n_msgs != g->n_msgs)) {
			size_t from = i > 3 ? i - 3 : 0;

			h_sb_printf(
				&b,
				"client %d: reply message #%zu differs (answering chunk %zu of %zu)\n",
				k, i, chunk_of(w, i), cl->n_chunks);
			h_sb_printf(&b, "  %-7s: ", want_name);
			sb_msg(&b, w, i);
			h_sb_printf(&b, "\n  %-7s: ", got_name);
			sb_msg(&b, g, i);
			h_sb_printf(&b, "\n  (%s: %zu messages in all, %s: %zu)\n", want_name,
				    w->n_msgs, got_name, g->n_msgs);
			for (size_t x = from; x < i; x++) {
				h_sb_printf(&b, "  before, #%zu: ", x);
				sb_msg(&b, w, x);
				h_sb_printf(&b, "\n");
			}
		}
		if (g->problem != NULL)
			h_sb_printf(&b, "client %d (%s): %s\n", k, got_name, g->problem);
		if (g->early_eof && !w->early_eof)
			h_sb_printf(&b,
				    "client %d (%s): connection closed before the client left\n", k,
				    got_name);
		check_markers(&b, s, k, g, got_name);
	}
	return b.p;
}
