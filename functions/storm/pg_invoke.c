#include "functions/storm/pg_invoke.h"

#include <stdio.h>
#include <string.h>

#include "functions/storm/pg_error.h"
#include "functions/storm/worker.h"

static void pg_event(evutil_socket_t fd, short what, void *arg);

static void pg_close(struct storm_inv *inv)
{
	if (inv->ev)
		event_del(inv->ev);
	if (inv->conn) {
		PQfinish(inv->conn); /* sends Terminate when logged in; never blocks here */
		inv->conn = NULL;
	}
}

/* A failure without a PGresult: class from the SQLSTATE in libpq's text if the
 * server sent one, else `fallback` (a client-side failure: refused, reset, ...). */
static void fail_from_conn(struct storm_inv *inv, const char *fallback)
{
	char sqlstate[6], msg[STORM_CLASS_MESSAGE];
	const char *text = inv->conn ? PQerrorMessage(inv->conn) : "out of memory";
	if (storm_pg_error_parse(text, sqlstate, msg, sizeof(msg))) {
		pg_close(inv);
		storm_inv_finish(inv, sqlstate, msg);
		return;
	}
	storm_first_line(text, msg, sizeof(msg));
	pg_close(inv);
	storm_inv_finish(inv, fallback, msg[0] ? msg : "unknown error");
}

static void wait_for(struct storm_inv *inv, short what)
{
	usec_t left = inv->deadline - clock_now_usec();
	int fd = PQsocket(inv->conn);
	if (left <= 0) {
		storm_pg_abort(inv, "timeout", "no answer within --timeout");
		return;
	}
	if (fd < 0) {
		fail_from_conn(inv, "connect");
		return;
	}
	struct timeval tv = {.tv_sec = left / USEC_PER_SEC, .tv_usec = left % USEC_PER_SEC};
	if (event_assign(inv->ev, inv->w->base, fd, what, pg_event, inv) != 0 ||
	    event_add(inv->ev, &tv) != 0) {
		pg_close(inv);
		storm_inv_finish(inv, "client", "cannot watch the socket");
	}
}

static void complete(struct storm_inv *inv)
{
	pg_close(inv);
	if (inv->query_failed) {
		char key[STORM_CLASS_KEY], msg[STORM_CLASS_MESSAGE];
		snprintf(key, sizeof(key), "%s", inv->error_key);
		snprintf(msg, sizeof(msg), "%s", inv->error_msg);
		storm_inv_finish(inv, key, msg);
	} else {
		storm_inv_finish(inv, NULL, NULL);
	}
}

/* Keeps the first failed result's SQLSTATE and message. */
static void note_result(struct storm_inv *inv, const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_FATAL_ERROR || inv->query_failed)
		return;
	inv->query_failed = true;
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	snprintf(inv->error_key, sizeof(inv->error_key), "%s", sqlstate ? sqlstate : "query");
	char line[STORM_CLASS_MESSAGE];
	if (primary)
		snprintf(line, sizeof(line), "%s: %s", severity ? severity : "ERROR", primary);
	else
		snprintf(line, sizeof(line), "%s", PQresultErrorMessage(res));
	storm_first_line(line, inv->error_msg, sizeof(inv->error_msg));
}

static void read_results(struct storm_inv *inv)
{
	while (!PQisBusy(inv->conn)) {
		PGresult *res = PQgetResult(inv->conn);
		if (!res) {
			complete(inv);
			return;
		}
		note_result(inv, res);
		PQclear(res);
	}
	wait_for(inv, EV_READ);
}

/* The connection broke mid-query: keep the server's error if one arrived first. */
static void query_broken(struct storm_inv *inv)
{
	if (inv->query_failed)
		complete(inv);
	else
		fail_from_conn(inv, "query");
}

static void flush_query(struct storm_inv *inv)
{
	int r = PQflush(inv->conn);
	if (r < 0) {
		query_broken(inv);
	} else if (r > 0) {
		inv->state = INV_SENDING;
		wait_for(inv, EV_READ | EV_WRITE);
	} else {
		inv->state = INV_READING;
		read_results(inv);
	}
}

static void connected(struct storm_inv *inv)
{
	const struct storm_opts *o = inv->w->shared->opts;
	usec_t now = clock_now_usec();
	hist_record(&inv->w->res->connect,
		    (uint64_t)(now > inv->intended ? now - inv->intended : 0));
	if (!o->sql[0]) {
		complete(inv);
		return;
	}
	if (PQsetnonblocking(inv->conn, 1) != 0 || !PQsendQuery(inv->conn, o->sql)) {
		query_broken(inv);
		return;
	}
	flush_query(inv);
}

static void pg_event(evutil_socket_t fd, short what, void *arg)
{
	struct storm_inv *inv = arg;
	if (what & EV_TIMEOUT) {
		storm_pg_abort(inv, "timeout", "no answer within --timeout");
		return;
	}
	switch (inv->state) {
	case INV_CONNECTING:
		switch (PQconnectPoll(inv->conn)) {
		case PGRES_POLLING_READING:
			wait_for(inv, EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			wait_for(inv, EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			connected(inv);
			return;
		case PGRES_POLLING_FAILED:
		default:
			fail_from_conn(inv, "connect");
			return;
		}
	case INV_SENDING:
		if ((what & EV_READ) && !PQconsumeInput(inv->conn)) {
			query_broken(inv);
			return;
		}
		flush_query(inv);
		return;
	case INV_READING:
		if (!PQconsumeInput(inv->conn)) {
			query_broken(inv);
			return;
		}
		read_results(inv);
		return;
	}
}

void storm_pg_start(struct storm_inv *inv)
{
	const struct storm_opts *o = inv->w->shared->opts;
	static const char *const keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {o->dsn, "corral-storm", NULL};
	inv->conn = PQconnectStartParams(keywords, values, 1);
	if (!inv->conn) {
		storm_inv_finish(inv, "client", "out of memory");
		return;
	}
	/* before the server can answer: puts the SQLSTATE of a refused login into the text */
	PQsetErrorVerbosity(inv->conn, PQERRORS_VERBOSE);
	if (PQstatus(inv->conn) == CONNECTION_BAD) {
		fail_from_conn(inv, "connect");
		return;
	}
	inv->ev = event_new(inv->w->base, -1, 0, pg_event, inv);
	if (!inv->ev) {
		pg_close(inv);
		storm_inv_finish(inv, "client", "out of memory");
		return;
	}
	inv->state = INV_CONNECTING;
	wait_for(inv, EV_WRITE); /* as if PQconnectPoll had said PGRES_POLLING_WRITING */
}

void storm_pg_abort(struct storm_inv *inv, const char *key, const char *message)
{
	pg_close(inv);
	storm_inv_finish(inv, key, message);
}
