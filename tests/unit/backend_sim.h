/*
 * A PostgreSQL backend in miniature, for testing the protocol tracker against
 * something it did not write: it takes a client's messages one at a time, in order,
 * as PostgresMain does (skip to Sync after an extended-protocol error; COPY FROM
 * STDIN swallowing CopyData/Flush/Sync and ending on CopyDone, CopyFail, any other
 * message or an error of its own), and answers with the message types PostgreSQL
 * would send.  Every choice the real server makes from data (does this statement
 * fail? return rows? start a COPY? send a notice?) is taken from a decision source, so
 * a fuzzer or a seeded generator explores them.
 *
 * A driver interleaves three steps as a real connection would: the client sends a
 * message (to the tracker and the backend's input), the backend handles its next
 * input, one reply reaches the tracker.  sim_check_step then asks the question that
 * matters: whenever the tracker calls the server settled, has the backend really
 * answered everything, with nothing more to come?  Some requests are sent noted
 * (tracker_client_noted, as the prepared-statement relay does): the outcome the tracker
 * reports for each (done, failed, skipped) must be what the backend did with it.
 */
#ifndef CORRAL_TESTS_BACKEND_SIM_H
#define CORRAL_TESTS_BACKEND_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/tracker.h"

#define SIM_MAX_IN 256
#define SIM_MAX_OUT 4096
#define SIM_MAX_NOTED 1024

/* Where decisions come from: a byte string (fuzzer) or a xorshift seed. */
struct sim_source {
	const uint8_t *data;
	size_t len, pos;
	uint64_t seed; /* used when data is NULL */
};
uint8_t sim_byte(struct sim_source *src);

struct sim {
	struct sim_source *src;
	struct tracker tracker;
	/* Client messages sent, not yet read by the backend (tracker request codes). */
	char in[SIM_MAX_IN];
	bool in_noted[SIM_MAX_IN];
	size_t in_head, in_len;
	/* Replies not yet delivered: type and, for ReadyForQuery, status. */
	char out[SIM_MAX_OUT], out_status[SIM_MAX_OUT];
	size_t out_head, out_len;

	bool skipping;       /* ignore_till_sync */
	int copy;            /* 0, or 'Q' / 'E': COPY FROM STDIN started by that message */
	int statements_left; /* of a simple Query interrupted by its COPY */
	bool open;           /* extended messages handled since the last ReadyForQuery */
	bool copy_failed;    /* some COPY FROM STDIN ended in an error */
	int sent;            /* client messages sent so far */
	/* Noted requests: the outcome the backend gave each (enum tracker_outcome), in the
	 * order it handled them, and what the tracker reported, in its order. */
	uint8_t expect[SIM_MAX_NOTED], got[SIM_MAX_NOTED];
	int n_expect, n_got, n_noted;
	bool cur_noted, cur_failed; /* the message being handled (or its COPY) is noted */
	const char *failure;        /* what sim_check_step found wrong */
};

void sim_init(struct sim *s, struct sim_source *src);
void sim_free(struct sim *s);
/* One step chosen by the source; false once the run is over (or failed). */
bool sim_step(struct sim *s, int max_messages);
/* Runs a whole conversation: steps, then the backend drains and delivers everything.
 * NULL, or what went wrong. */
const char *sim_run(struct sim *s, int max_messages);

#endif
