/*
 * Client message sequences for the differential test (test_differential.c): what each
 * client of a sequence sends, cut into chunks, with a model of PostgreSQL that predicts
 * how many ReadyForQuery and CopyInResponse messages each chunk brings back.
 *
 * A sequence is a few clients, each with its own list of frontend messages (wire
 * bytes plus a readable text) cut into chunks.  A chunk is written in one write, one
 * message per write, or in random pieces; after it the client may wait for its
 * replies before it sends the next chunk.  Replies must be a deterministic function of
 * what the client sent: each client uses only its own table, statements with constant
 * results, and names (prepared statements, portals, markers) unique to the client.
 *
 * The model (struct dg_model) follows PostgreSQL 15's postgres.c and copyfromparse.c:
 *   - Query: one ReadyForQuery when it ends; a COPY FROM STDIN in it ends only with
 *     CopyDone, CopyFail or a row COPY rejects.
 *   - An error in Parse/Bind/Describe/Execute (or during an extended-protocol COPY)
 *     makes the server skip every message, Query included, until the next Sync.
 *   - Sync: one ReadyForQuery (also a Sync with no batch before it).
 *   - In COPY FROM STDIN, Sync and Flush are read and ignored.
 *   - CopyData, CopyDone and CopyFail outside COPY are ignored.
 *   - In a failed transaction block, everything but COMMIT/ROLLBACK fails.
 * The generator never sends what would break the connection (another message type in
 * COPY FROM STDIN is a FATAL protocol error) nor anything whose reply varies between
 * runs (pids, times, OIDs, random()).  The direct run checks the model: a wait that
 * never ends there, or a ReadyForQuery count that differs at the end, is a bug here.
 */
#ifndef CORRAL_TESTS_INTEGRATION_DIFF_GEN_H
#define CORRAL_TESTS_INTEGRATION_DIFF_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DG_MAX_CLIENTS 4

/* How a chunk is written. */
enum dg_send {
	DG_SEND_ONE_WRITE,   /* all its messages in one write */
	DG_SEND_PER_MESSAGE, /* one write per message, gap_us apart */
	DG_SEND_SPLIT,       /* writes cut at random bytes (inside messages too), gap_us apart */
};

/* One frontend message. */
struct dg_msg {
	unsigned char *bytes; /* type byte, length, body */
	size_t len;
	char *text; /* readable, e.g. Parse "" "SELECT 1" */
};

struct dg_chunk {
	size_t first, count; /* the client's msgs[first .. first + count) */
	enum dg_send send;
	int gap_us;          /* DG_SEND_PER_MESSAGE, DG_SEND_SPLIT: pause between writes */
	uint64_t split_seed; /* DG_SEND_SPLIT: where the cuts fall */
	int pause_ms;        /* before the chunk is written (after the previous chunk) */
	double start_at;     /* and not before this many seconds after the run started */
	/*
	 * Wait for replies before the next chunk.  The direct run waits until z ReadyForQuery
	 * and g CopyInResponse messages have arrived in all (the model's counts once the
	 * chunk is processed, or fewer if the sequence says so), then, if quiet, until
	 * nothing arrived for 20 ms; it records how many messages it had then, and the run
	 * through corral waits for that many messages.
	 */
	bool wait;
	bool quiet;
	int z, g;
	double wait_timeout; /* seconds: a longer wait through corral is a hang */
};

struct dg_client {
	/* Text that appears in this client's replies and must never reach another client. */
	char marker[48];
	struct dg_msg *msgs;
	size_t n_msgs, cap_msgs;
	struct dg_chunk *chunks;
	size_t n_chunks, cap_chunks;
	/* Leaves without waiting for its last replies (closes its socket): its replies through
	 * corral are compared with the direct ones as a prefix only. */
	bool leave;
	int leave_after_ms;   /* after its last chunk was written */
	int z_total, g_total; /* model: ReadyForQuery / CopyInResponse in the whole reply */
};

struct dg_seq {
	uint64_t seed;
	int seqno;
	int n_clients;
	struct dg_client clients[DG_MAX_CLIENTS];
};

/* ---- the model ---- */
enum dg_copy {
	DG_COPY_NONE,
	DG_COPY_SIMPLE, /* COPY FROM STDIN started by a Query */
	DG_COPY_EXT,    /* ... by an Execute */
};
enum dg_tx { DG_TX_NONE, DG_TX_BEGIN, DG_TX_END /* COMMIT or ROLLBACK */ };

/* What a message does, as the sequence's author knows it. */
struct dg_sem {
	bool error;            /* fails whatever the state (bad SQL, 1/0, no such statement) */
	bool copy_in;          /* Query/Execute: starts COPY FROM STDIN (unless it fails first) */
	bool error_after_copy; /* Query: a statement after its COPY fails */
	bool bad_row;          /* CopyData: a row COPY rejects */
	bool tx_control;       /* COMMIT/ROLLBACK: allowed in a failed transaction */
	enum dg_tx tx;
};

struct dg_model {
	int z, g; /* ReadyForQuery, CopyInResponse sent so far */
	enum dg_copy copy;
	bool ignore;    /* skipping messages until Sync */
	bool tx_block;  /* inside BEGIN ... COMMIT */
	bool tx_failed; /* ... after an error */
	bool after_copy_error;
};
void dg_model_step(struct dg_model *m, char type, const struct dg_sem *sem);

/* ---- building sequences (the generator uses these; fixed cases too) ---- */
struct dg_builder {
	struct dg_client *cl;
	struct dg_model m;
	size_t chunk_first; /* first message not yet in a chunk */
};
void dg_builder_init(struct dg_builder *b, struct dg_client *cl, const char *marker);
/* Appends one message (sem NULL: nothing special) and steps the model. */
void dg_query(struct dg_builder *b, const char *sql, const struct dg_sem *sem);
void dg_parse(struct dg_builder *b, const char *name, const char *sql, const struct dg_sem *sem);
void dg_bind(struct dg_builder *b, const char *portal, const char *stmt, int n,
	     const char *const *params, const struct dg_sem *sem);
void dg_describe(struct dg_builder *b, char what, const char *name, const struct dg_sem *sem);
void dg_execute(struct dg_builder *b, const char *portal, int max_rows, const struct dg_sem *sem);
void dg_close(struct dg_builder *b, char what, const char *name);
void dg_flush(struct dg_builder *b);
void dg_sync(struct dg_builder *b);
void dg_copy_data(struct dg_builder *b, const char *data, bool bad_row);
void dg_copy_done(struct dg_builder *b);
void dg_copy_fail(struct dg_builder *b, const char *why);
/*
 * Ends the current chunk (no-op if it is empty).  The chunk's z/g are the model's
 * counts now; wait_z/wait_g >= 0 wait for fewer (a client that reacts to an earlier
 * reply).  Returns the chunk (valid until the next chunk is added) for other settings.
 */
struct dg_chunk *dg_end_chunk(struct dg_builder *b, bool wait, int wait_z, int wait_g);
/* Sets z_total/g_total from the model: call once the client's messages are complete. */
void dg_builder_finish(struct dg_builder *b);

/* ---- random sequences ---- */
/*
 * A random sequence of 3 or DG_MAX_CLIENTS (4) clients from seed (the same seed, seqno
 * and tables give the same sequence).  Client k uses table tables[k] (created by the
 * caller: id int primary key, v text) and its markers are "mk<seqno>c<k>s".
 */
void dg_generate(struct dg_seq *s, uint64_t seed, int seqno, const char *const *tables);
void dg_free(struct dg_seq *s);

/* ---- text ---- */
/* The whole sequence, client by client and chunk by chunk (malloc'd). */
char *dg_seq_text(const struct dg_seq *s);
/* One backend message, readable (malloc'd). */
char *dg_reply_text(const unsigned char *msg, size_t len);

#endif
