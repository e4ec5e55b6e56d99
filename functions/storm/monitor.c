#include "functions/storm/monitor.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions/storm/pg_error.h"

static const char count_sql[] =
	"select count(*) from pg_stat_activity"
	" where backend_type = 'client backend' and pid <> pg_backend_pid()"
	" and ($1::text is null or datname = $1) and ($2::text is null or usename = $2)";

struct storm_monitor {
	PGconn *conn;
	const char *params[2];
	struct event *tick;
	struct event *readable;
	bool busy; /* a sample query is in flight */
	bool stopped;
	struct storm_monitor_stats stats;
};

static void take(struct storm_monitor *m, const PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return;
	int64_t n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	m->stats.last = n;
	if (m->stats.samples == 0 || n > m->stats.peak)
		m->stats.peak = n;
	m->stats.samples++;
}

static void lose(struct storm_monitor *m, const char *why)
{
	if (!m->stats.lost) {
		m->stats.lost = true;
		char line[200];
		storm_first_line(why, line, sizeof(line));
		snprintf(m->stats.error, sizeof(m->stats.error), "%s", line);
	}
	storm_monitor_stop(m);
}

static void readable_cb(evutil_socket_t fd, short what, void *arg)
{
	struct storm_monitor *m = arg;
	if (!PQconsumeInput(m->conn)) {
		lose(m, PQerrorMessage(m->conn));
		return;
	}
	while (m->busy && !PQisBusy(m->conn)) {
		PGresult *res = PQgetResult(m->conn);
		if (!res) {
			m->busy = false;
			break;
		}
		take(m, res);
		PQclear(res);
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct storm_monitor *m = arg;
	if (m->stopped)
		return;
	if (m->busy) {
		/* the last sample is still running: skip one, pushing out what is unsent */
		if (PQflush(m->conn) < 0)
			lose(m, PQerrorMessage(m->conn));
		return;
	}
	if (!PQsendQueryParams(m->conn, count_sql, 2, NULL, m->params, NULL, NULL, 0)) {
		lose(m, PQerrorMessage(m->conn));
		return;
	}
	m->busy = true;
	if (PQflush(m->conn) < 0)
		lose(m, PQerrorMessage(m->conn));
}

struct storm_monitor *storm_monitor_start(struct event_base *base, const struct storm_opts *o,
					  char *err, size_t errlen)
{
	struct storm_monitor *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->stats.after = -1;
	m->params[0] = o->monitor_db;
	m->params[1] = o->monitor_user;
	static const char *const keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {o->monitor_dsn, "corral-storm-monitor", NULL};
	m->conn = PQconnectdbParams(keywords, values, 1);
	if (!m->conn || PQstatus(m->conn) != CONNECTION_OK) {
		char line[200];
		storm_first_line(m->conn ? PQerrorMessage(m->conn) : "out of memory", line,
				 sizeof(line));
		snprintf(err, errlen, "--monitor-dsn: %s", line);
		storm_monitor_free(m);
		return NULL;
	}
	PGresult *res = PQexecParams(m->conn, count_sql, 2, NULL, m->params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char line[200];
		storm_first_line(PQresultErrorMessage(res), line, sizeof(line));
		snprintf(err, errlen, "--monitor-dsn: sampling pg_stat_activity failed: %s", line);
		PQclear(res);
		storm_monitor_free(m);
		return NULL;
	}
	take(m, res);
	PQclear(res);
	m->stats.baseline = m->stats.last;
	/* the storm's own peak starts from the baseline */
	m->stats.peak = m->stats.baseline;

	if (PQsetnonblocking(m->conn, 1) != 0) {
		snprintf(err, errlen, "--monitor-dsn: cannot make the connection non-blocking");
		storm_monitor_free(m);
		return NULL;
	}
	m->tick = event_new(base, -1, EV_PERSIST, tick_cb, m);
	m->readable = event_new(base, PQsocket(m->conn), EV_READ | EV_PERSIST, readable_cb, m);
	double s = o->monitor_interval_s;
	struct timeval tv = {.tv_sec = (time_t)s,
			     .tv_usec = (suseconds_t)((s - (double)(time_t)s) * 1e6)};
	if (!m->tick || !m->readable || event_add(m->tick, &tv) != 0 ||
	    event_add(m->readable, NULL) != 0) {
		snprintf(err, errlen, "--monitor-dsn: cannot watch the connection");
		storm_monitor_free(m);
		return NULL;
	}
	return m;
}

void storm_monitor_stop(struct storm_monitor *m)
{
	m->stopped = true;
	if (m->tick)
		event_del(m->tick);
	if (m->readable)
		event_del(m->readable);
}

void storm_monitor_finish(struct storm_monitor *m)
{
	bool lost = m->stats.lost;
	storm_monitor_stop(m);
	if (lost || PQsetnonblocking(m->conn, 0) != 0)
		return;
	PGresult *res;
	while ((res = PQgetResult(m->conn)) != NULL) { /* the sample in flight, if any */
		take(m, res);
		PQclear(res);
	}
	m->busy = false;
	res = PQexecParams(m->conn, count_sql, 2, NULL, m->params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		m->stats.after = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
}

void storm_monitor_get(const struct storm_monitor *m, struct storm_monitor_stats *out)
{
	*out = m->stats;
}

void storm_monitor_free(struct storm_monitor *m)
{
	if (!m)
		return;
	storm_monitor_stop(m);
	if (m->tick)
		event_free(m->tick);
	if (m->readable)
		event_free(m->readable);
	if (m->conn)
		PQfinish(m->conn);
	free(m);
}
