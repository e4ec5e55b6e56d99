/*
 * Running a differential-test sequence (diff_gen.h) and comparing what came back.
 *
 * Every client of the sequence logs in with libpq, then speaks the raw protocol on
 * PQsocket(): its chunks are written as the sequence says, and its replies are recorded
 * message by message.  All clients run at once from one poll loop in the test's thread.
 *
 * The direct run (against PostgreSQL) waits after a chunk as the model predicts and
 * records how many messages each client had when it moved on; the run through corral
 * waits for those many messages instead, so its pacing does not depend on corral being
 * right, and a wait that does not end there (5 s by default) is a hang.
 */
#ifndef CORRAL_TESTS_INTEGRATION_DIFF_RUN_H
#define CORRAL_TESTS_INTEGRATION_DIFF_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/integration/diff_gen.h"

/* What one client received. */
struct dr_stream {
	unsigned char *buf;
	size_t len, cap;
	size_t *ends; /* ends[i]: offset just past message i */
	size_t n_msgs, cap_ends;
	size_t *chunk_msgs; /* messages received when the client moved on from chunk c */
	size_t chunks_done; /* chunks the client moved on from */
	int z, g;           /* ReadyForQuery, CopyInResponse received */
	bool eof;           /* the peer closed the connection */
	bool early_eof;     /* ... before the client sent Terminate (or left) */
	bool hung;          /* a wait did not end in time */
	size_t hung_chunk;
	char *problem; /* malloc'd: why this client's run went wrong (login, hang, ...) */
};

struct dr_run {
	int n;
	struct dr_stream c[DG_MAX_CLIENTS];
	double secs;
};

/*
 * Runs s with every client logging in with conninfo.  direct NULL: this is the direct
 * run (model waits); otherwise waits follow direct's recorded counts.  Wait timeouts
 * are multiplied by timeout_scale (a corral under valgrind answers slowly).
 */
void dr_run(const struct dg_seq *s, const char *conninfo, const struct dr_run *direct,
	    double timeout_scale, struct dr_run *out);
void dr_free(struct dr_run *r);

/* NULL if the direct run agrees with the model, else why not (malloc'd). */
char *dr_check_model(const struct dg_seq *s, const struct dr_run *d);
/*
 * NULL if got's replies equal want's, client by client and message by message (a
 * client that leaves early: the shorter stream must be a prefix of the other), and no
 * client received another client's marker; else the differences (malloc'd), each with
 * the client, the message index, the chunk it answered, and both messages.
 */
char *dr_compare(const struct dg_seq *s, const struct dr_run *want, const struct dr_run *got,
		 const char *want_name, const char *got_name);
/* A client's replies, one line per message, each marked with the chunk the client was
 * sending or waiting for when it came (malloc'd), at most max lines. */
char *dr_stream_text(const struct dr_stream *st, size_t max);

#endif
