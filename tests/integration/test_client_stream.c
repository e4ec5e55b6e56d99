/*
 * Client bytes PostgreSQL would end the connection for without answering (postgres.c:
 * SocketBackend): an unknown message type, a small message over 10000 bytes.  corral
 * must refuse them itself (08P01) and never pass them on: the server would die after
 * corral had handed it, idle as far as corral could tell, to the next client.  With
 * transaction pooling and one server, B's statements must keep working.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(client_stream, H_SUITE);

static struct h_corral *start_one_server(void)
{
	return h_corral_start("auth_type = trust\npool_mode = transaction\nworkers = 1\n",
			      H_BENCH_DB_WITH(" pool_size=1"), NULL);
}

/* B, a libpq client of the one server, gets its own answers. */
static void b_still_served(PGconn *b)
{
	h_expect_value(b, "select 'B-marker'", "B-marker");
	h_expect_value(b, "select 'B-again'", "B-again");
}

static PGconn *connect_b(struct h_corral *c)
{
	char *ci = h_conninfo(c, "bench", "bench", NULL);
	PGconn *b = h_connect(c, ci);
	free(ci);
	h_expect_value(b, "select 'warm'", "warm");
	return b;
}

Test(client_stream, unknown_message_type)
{
	struct h_corral *c = start_one_server();
	PGconn *b = connect_b(c);
	int a = h_raw_login(c->port, "select 1");
	static const unsigned char junk[] = {'y', 0, 0, 0, 8, 'j', 'u', 'n', 'k'};
	h_send_all(a, junk, sizeof(junk));
	struct h_reply r;
	h_expect_error_then_close(a, "unknown message type", "08P01", &r);
	cr_expect(strstr(r.msg, "invalid frontend message type 121") != NULL, "message: %s", r.msg);
	b_still_served(b);
	PQfinish(b);
	h_corral_stop(c);
}

/* A CopyDone of 20000 bytes after a query: PostgreSQL would read it once the query
 * is answered, log "invalid message length" and exit. */
Test(client_stream, oversized_copy_done_after_a_query)
{
	struct h_corral *c = start_one_server();
	PGconn *b = connect_b(c);
	int a = h_raw_login(c->port, NULL);
	static const char sql[] = "select pg_sleep(0.2)";
	size_t qlen = 5 + sizeof(sql), clen = 5 + 20000;
	unsigned char *msg = calloc(1, qlen + clen);
	cr_assert_not_null(msg);
	msg[0] = 'Q';
	uint32_t n = htonl((uint32_t)(4 + sizeof(sql)));
	memcpy(msg + 1, &n, 4);
	memcpy(msg + 5, sql, sizeof(sql));
	msg[qlen] = 'c';
	n = htonl(4 + 20000);
	memcpy(msg + qlen + 1, &n, 4);
	memset(msg + qlen + 5, 'x', 20000);
	h_send_all(a, msg, qlen + clen);
	free(msg);
	/* B queues behind A's query and must get its own answers. */
	b_still_served(b);
	struct h_reply r;
	h_expect_error_then_close(a, "oversized CopyDone", "08P01", &r);
	cr_expect(strstr(r.msg, "invalid message length") != NULL, "message: %s", r.msg);
	b_still_served(b);
	PQfinish(b);
	h_corral_stop(c);
}
