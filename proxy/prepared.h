/*
 * Named prepared statements in transaction pooling (DESIGN.md §7): what each client
 * prepared, what each server connection has, and what must be sent so that a client's
 * statement exists on whichever server it is given.
 *
 * A client's statement (protocol Parse with a name, or SQL PREPARE) is kept in the
 * client's map: name -> content (query text and parameter types, as the Parse carried
 * them after the name).  On the server it is prepared under a name derived from the
 * content alone, "corral_" + a keyed SipHash of it, so every client that prepares the
 * same text shares one server statement, and no client can guess another's names.
 * Each server keeps a registry of the statements it has (an LRU bounded by
 * max_prepared_statements); a statement a client needs and the server lacks is
 * prepared first by an injected Parse whose reply the client never sees.
 *
 * What the server has is known only from its replies: every injected or rewritten
 * request is noted in the protocol tracker (proxy/tracker.h), and its outcome (done,
 * failed, skipped after an earlier error) updates the registry in the order the
 * backend decided.  Until then the statement is "in flight"; within the same Sync
 * segment that is as good as present (if its Parse fails, the backend skips the rest of
 * the segment too), after it corral sends Close + Parse, which is right either way.
 *
 * Pure: no sockets, no libevent loop; messages are written to evbuffers.
 */
#ifndef CORRAL_PROXY_PREPARED_H
#define CORRAL_PROXY_PREPARED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "common/list.h"
#include "common/macros.h"

/* "corral_" + 16 hex digits; "corral_" names of other shapes are corral's own too. */
#define PREP_NAME_LEN 24
/* The statement a client's Parse is checked with when the server already has its
 * statement, and the one a refusal binds (never prepared). */
#define PREP_CHECK_NAME "corral_check"
#define PREP_NONE_NAME "corral_none"
/* A Bind of PREP_UNKNOWN_PREFIX + name fails with PostgreSQL's own 26000 naming it; the
 * relay strips the prefix from the message, so a client's unknown name gets the error a
 * direct connection gives, with no note (it needs no bookkeeping). */
#define PREP_UNKNOWN_PREFIX "corral_none:"

/* Protocol (Parse) or SQL (PREPARE) statement: never shared, even for equal text. */
enum prep_kind { PREP_PROTOCOL = 'P', PREP_SQL = 'Q' };

/* A statement's content; immutable, shared by client maps and server registries of any
 * worker (servers move between workers), so the count is atomic. */
struct prep_content {
	atomic_uint refs;
	uint64_t hash;
	uint64_t env; /* the settings the text is parsed under (prepared_parse_env) */
	char server_name[PREP_NAME_LEN];
	uint8_t kind;
	uint32_t len;
	uint8_t body[]; /* PREP_PROTOCOL: query\0 int16 n int32 oid[n]; PREP_SQL: the text */
};

/*
 * kind + body, parsed under settings env -> a new content (refs 1), NULL if out of
 * memory.  env is part of the identity: PostgreSQL turns a literal into a value when it
 * parses the statement (a timestamptz under TimeZone, a date under DateStyle), so one
 * text under other settings is another statement.
 */
struct prep_content *prep_content_new(enum prep_kind kind, uint64_t env, const void *body,
				      size_t len);
void prep_content_unref(struct prep_content *c);
/* The same statement (equal kind and bytes), whatever the hash says. */
bool prep_content_equal(const struct prep_content *a, const struct prep_content *b);

/* ---- a server's statements ----------------------------------------------------- */

enum prep_op { PREP_OP_NONE, PREP_OP_PARSE, PREP_OP_CLOSE };

struct prep_entry {
	struct prep_entry *next; /* hash chain */
	struct prep_content *content;
	struct list lru; /* in the registry's LRU while on the server (or being put) */
	bool in_lru;
	bool exists;          /* after every answered Parse / Close of it */
	bool uncertain;       /* an answer was lost (client left): exists is unknown */
	uint32_t inflight;    /* Parse / Close of it sent, not yet answered */
	uint32_t stale;       /* of those, sent before a prep_server_forget: their answers
			       * tell nothing about now */
	uint8_t last_op;      /* enum prep_op, the last one sent ... */
	uint64_t last_op_seg; /* ... in this Sync segment of the server */
};

struct prep_server {
	struct prep_entry **buckets;
	uint32_t n_buckets, n_entries;
	struct list lru; /* most recently used first */
	uint32_t n_lru;
	uint64_t seg; /* Syncs sent to this server */
};

struct prep_server *prep_server_new(void);
void prep_server_free(struct prep_server *s);
/* Something outside corral's view dropped statements (DISCARD ALL, DEALLOCATE ALL, an
 * error naming a statement of corral's): nothing is known to exist any more. */
void prep_server_forget(struct prep_server *s);

/* ---- a client's statements and the notes of a link ----------------------------- */

struct prep_stmt {
	struct prep_stmt *next;
	struct prep_content *content;
	uint64_t gen; /* tells a re-prepared name from the one a note meant */
	bool pending; /* the client's Parse of it is unanswered, sent ... */
	/* The client's Close / DEALLOCATE / DISCARD ALL of it is unanswered, sent ... (it
	 * is gone for the client's later messages, and back if PostgreSQL skips or refuses
	 * that request; close_ticket: the one request that closes it) */
	bool closing;
	uint64_t close_ticket;
	uint64_t seg; /* ... in this Sync segment of the server */
	/* Another of the client's names had the same content (one server statement) when
	 * this one was made: an error naming the server statement could be either's, so
	 * its Binds and Describes are noted (NOTE_CLIENT_USE). */
	bool twin;
	char name[];
};

enum prep_note_kind {
	NOTE_INJECT_PARSE, /* corral's Parse: reply swallowed, an error stands for the next */
	NOTE_INJECT_CLOSE, /* corral's Close (eviction, or before a re-Parse): swallowed */
	NOTE_CHECK_CLOSE,  /* the Close after a check Parse: swallowed */
	NOTE_CLIENT_PARSE, /* the client's Parse (as X or as the check): the client sees it */
	NOTE_REFUSE,       /* a Bind that fails: its error is replaced by corral's */
	NOTE_SQL_PREPARE,  /* the client's PREPARE, sent as PREPARE X */
	NOTE_SQL_EXECUTE,  /* PREPARE X ...; EXECUTE X: the first CommandComplete is swallowed */
	/* The client's request that forgets names (ticket): Close, SQL DEALLOCATE (sent as
	 * NOTE_SQL_EXECUTE's PREPARE + DEALLOCATE of a scratch name), DEALLOCATE ALL or
	 * DISCARD ALL.  Done: they go; skipped or refused: they are back. */
	NOTE_CLIENT_CLOSE,
	NOTE_SQL_DEALLOCATE,
	NOTE_SQL_CLEAR,
	NOTE_SQL_TEXT, /* a rewritten Query with nothing else to note: its error position */
	/* A Bind or Describe of a twin (prep_stmt.twin): its error names the client's name. */
	NOTE_CLIENT_USE,
};

/*
 * Where a rewritten Query's text differs from the client's, in characters: corral's own
 * PREPARE first (skip), then the client's text with its statement name (name_len, at
 * name_at) replaced by one of repl_len.  An error position is given back in the
 * client's text, or left out when it points into what corral wrote.
 */
struct prep_pos_map {
	bool set;
	uint32_t skip, name_at, repl_len, name_len;
};

struct prep_note {
	uint8_t kind;
	bool swallowed_cc;        /* NOTE_SQL_EXECUTE: its PREPARE's CommandComplete went */
	struct prep_entry *entry; /* the server statement it changes, or NULL */
	char *stmt_name;          /* NOTE_CLIENT_PARSE / SQL: the client's name and ... */
	uint64_t stmt_gen;        /* ... generation, forgotten if the Parse fails */
	struct prep_pos_map pos;  /* a rewritten Query's */
	uint64_t ticket;          /* NOTE_CLIENT_CLOSE, _SQL_DEALLOCATE, _SQL_CLEAR, ... */
	uint64_t seg;             /* ... sent in this Sync segment */
	char sqlstate[6];         /* NOTE_REFUSE */
	char *message;
};

struct prep_client {
	struct prep_stmt **buckets;
	uint32_t n_buckets, n_stmts;
	uint64_t gen;
	/* Requests that forget names, unanswered (NOTE_CLIENT_CLOSE ...): how many, and the
	 * Sync segment of the oldest (a message of a later segment waits for them: names
	 * are only sure once PostgreSQL has said whether it ran them). */
	uint64_t tickets;
	uint32_t n_closing;
	uint64_t closing_seg;
	/* Notes of the current link, oldest first (a ring; the tracker notes them in order). */
	struct prep_note *notes;
	uint32_t notes_cap, notes_head, notes_len;
	struct evbuffer *reply;      /* an error of corral's in place of a server's (the relay) */
	struct prep_stmt *forgotten; /* removed during this link (prep_client_forget_buried) */
};

struct prep_client *prep_client_new(void);
void prep_client_free(struct prep_client *pc);
/* The client's statement name (closing ones are gone already), or NULL. */
struct prep_stmt *prep_client_find(const struct prep_client *pc, const char *name);
/* Adds name -> content (a new reference is taken); NULL if out of memory. */
struct prep_stmt *prep_client_add(struct prep_client *pc, const char *name,
				  struct prep_content *content);
/* Marks st, and every other name of the client with its server statement, as twins
 * (prep_stmt.twin) if there is any: one pass over the client's names. */
void prep_client_mark_twins(struct prep_client *pc, struct prep_stmt *st);
/* Forgets name at once (a Parse corral refused); false if it was not there. */
bool prep_client_remove(struct prep_client *pc, const char *name);
/* Forgets every name at once (the client is freed). */
void prep_client_clear(struct prep_client *pc);
/*
 * The client's request that forgets name (all names when name is NULL: DEALLOCATE ALL,
 * DISCARD ALL), sent in Sync segment seg: they are closing until the note of kind
 * (NOTE_CLIENT_CLOSE ...) pushed here is resolved.  False: none of them (nothing is
 * pushed), or out of memory (*oom).
 */
bool prep_client_close(struct prep_client *pc, const char *name, enum prep_note_kind kind,
		       uint64_t seg, bool *oom);
/* A message of Sync segment seg that names statements must wait for the answers to
 * requests of earlier segments that forget names. */
static inline bool prep_client_closing_before(const struct prep_client *pc, uint64_t seg)
{
	return pc && pc->n_closing && pc->closing_seg != seg;
}
/* Frees the statements removed since the last call (kept for errors in flight). */
void prep_client_forget_buried(struct prep_client *pc);

/* ---- what to send ---------------------------------------------------------------- */

/* How a statement the client needs is made present on the server. */
struct prep_ctx {
	struct prep_client *pc;
	struct prep_server *srv;
	int max_statements;   /* max_prepared_statements (> 0) */
	struct evbuffer *out; /* to the server */
	/* Called for each request written to out, in order: the relay tells the tracker
	 * (flags: TRACKER_NOTED or TRACKER_HIDDEN when a note was pushed for it). */
	bool (*sent)(void *arg, char type, const uint8_t *body, size_t len, int flags);
	void *arg;
};

enum prep_need {
	PREP_PRESENT,     /* on the server (or parsed in this segment): just rename */
	PREP_PARSE,       /* absent: Parse it */
	PREP_CLOSE_PARSE, /* unknown: Close, then Parse */
};

/* The entry of content on the server (made if new); NULL on a hash collision with
 * other content (then *collision) or out of memory. */
struct prep_entry *prep_server_entry(struct prep_server *s, struct prep_content *content,
				     bool *collision);
/* What sending a message that uses e needs now. */
enum prep_need prep_need(const struct prep_server *s, const struct prep_entry *e);
/*
 * Makes e present for a message that follows: touches it in the LRU, and as needed
 * writes Close / Parse (noted; the Parse hidden unless visible_parse, when it is the
 * client's own and noted as NOTE_CLIENT_PARSE of stmt) and evicts the least recently
 * used statements past the limit (hidden Closes).  False: out of memory.
 */
bool prep_make_present(struct prep_ctx *ctx, struct prep_entry *e, bool visible_parse,
		       const struct prep_stmt *stmt) WARN_UNUSED;
/*
 * For a statement the caller creates itself (SQL PREPARE in a Query it sends next,
 * noted as kind): evicts past the limit, closes e first unless it is known absent, and
 * counts the creation in flight.  False: out of memory.
 */
bool prep_begin_create(struct prep_ctx *ctx, struct prep_entry *e, enum prep_note_kind kind,
		       const struct prep_stmt *stmt) WARN_UNUSED;
/* Pushes a note (copies stmt's name); false if out of memory. */
bool prep_note_push(struct prep_client *pc, enum prep_note_kind kind, struct prep_entry *e,
		    const struct prep_stmt *stmt) WARN_UNUSED;
struct prep_note *prep_note_front(struct prep_client *pc);
/* The front note's request was decided (enum tracker_outcome): updates the registry
 * and the client's map, then drops the note. */
void prep_note_resolve(struct prep_client *pc, struct prep_server *srv, int outcome);
/* The link ends with notes unanswered (the client left mid-query, the server failed):
 * what they would have told is unknown. */
void prep_notes_abandon(struct prep_client *pc);
/* Statement s is used now (not yet in flight): moves it to the front of the LRU. */
void prep_touch(struct prep_server *s, struct prep_entry *e);

#endif
