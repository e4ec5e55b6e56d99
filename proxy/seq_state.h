/*
 * Sequence values across server connections in transaction pooling.  nextval() leaves
 * its value on the server connection (a column DEFAULT calls it unseen), and currval()
 * / lastval() read it back: a client given a connection another client used could read
 * that client's value, which no direct connection ever shows.  corral cannot carry
 * these values, so it fails closed: a link whose first message reads them (the Query
 * or Parse text names currval / lastval) runs DISCARD SEQUENCES first unless every value
 * on the connection is the client's own and current (it holds only this client's
 * values, and the client's previous link was on it).  The client then gets its own
 * value, or PostgreSQL's 55000 ("not yet defined in this session"), never another's.
 * Such statements also pin the client (proxy/pin_scan.h, sequence_state), so its later
 * transactions stay where its values are.
 */
#ifndef CORRAL_PROXY_SEQ_STATE_H
#define CORRAL_PROXY_SEQ_STATE_H

#include <stdbool.h>

#include <event2/buffer.h>

struct client;
struct server;

/* c gets s, with its next messages in input: true when DISCARD SEQUENCES must run on s
 * before them.  Records the link. */
bool seq_state_link(struct client *c, struct server *s, struct evbuffer *input);
/* DISCARD ALL ran on s: it holds nobody's values. */
void seq_state_reset(struct server *s);

#endif
