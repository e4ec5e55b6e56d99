#include "tests/integration/prepared_helpers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

PGresult *pr_prepare(PGconn *conn, const char *name, const char *sql)
{
	PGresult *res = PQprepare(conn, name, sql, 0, NULL);
	cr_assert_not_null(res);
	return res;
}

void pr_prepare_ok(PGconn *conn, const char *name, const char *sql)
{
	PGresult *res = pr_prepare(conn, name, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "prepare %s: %s", name,
		     PQresultErrorMessage(res));
	PQclear(res);
}

void pr_exec_prepared(PGconn *conn, const char *name, const char *arg, const char *want,
		      const char *want_state)
{
	const char *vals[] = {arg};
	PGresult *res = PQexecPrepared(conn, name, arg ? 1 : 0, vals, NULL, NULL, 0);
	if (want) {
		cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s(%s): %s", name,
			     arg ? arg : "", PQresultErrorMessage(res));
		cr_assert_str_eq(PQgetvalue(res, 0, 0), want, "%s(%s) gave %s", name,
				 arg ? arg : "", PQgetvalue(res, 0, 0));
	} else {
		cr_assert_str_eq(h_sqlstate(res), want_state, "%s: %s", name,
				 PQresultErrorMessage(res));
	}
	PQclear(res);
}

void raw_send(int fd, const struct raw_msg *msgs)
{
	unsigned char out[2048];
	size_t n = 0;
	for (const struct raw_msg *m = msgs; m->type; m++) {
		out[n++] = (unsigned char)m->type;
		uint32_t len = (uint32_t)m->len + 4;
		out[n++] = (unsigned char)(len >> 24);
		out[n++] = (unsigned char)(len >> 16);
		out[n++] = (unsigned char)(len >> 8);
		out[n++] = (unsigned char)len;
		memcpy(out + n, m->body, m->len);
		n += m->len;
	}
	cr_assert_eq(write(fd, out, n), (ssize_t)n);
}

char *raw_exchange(int fd, const struct raw_msg *msgs)
{
	raw_send(fd, msgs);
	static unsigned char buf[65536];
	size_t len = 0;
	bool closed;
	cr_assert(h_read_until_msg(fd, buf, sizeof(buf), &len, 'Z', 5, &closed),
		  "no ReadyForQuery");
	struct h_sbuf types = {0};
	for (size_t off = 0; off < len;) {
		char type;
		const unsigned char *body;
		size_t body_len;
		size_t m = h_msg(buf + off, len - off, &type, &body, &body_len);
		cr_assert_gt(m, 0);
		h_sb_add(&types, &type, 1);
		off += m;
	}
	h_sb_add(&types, "", 1);
	return types.p;
}

void expect_raw(int fd, const struct raw_msg *msgs, const char *want)
{
	char *got = raw_exchange(fd, msgs);
	cr_assert_str_eq(got, want);
	free(got);
}
