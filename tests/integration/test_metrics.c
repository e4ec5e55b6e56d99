/*
 * The HTTP endpoint ([metrics] listen, proxy/metrics_http.h) against a known workload:
 * /metrics read by a strict Prometheus text-format parser (prom_text.h) and compared with
 * the workload and with the SIGUSR1 dump of the same statistics (test_stats.c reads that
 * dump the same way); /stats.json, /healthz, the answers to what is not served; and the
 * dashboard in a real browser (headless Chromium) while pgbench runs, with a screenshot
 * kept with the test output.
 *
 * Counters are bumped right after the reply is written to the client, so each check
 * scrapes until the expected values show (or 5 s pass).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "tests/integration/harness.h"
#include "tests/integration/prom_text.h"

TestSuite(metrics, H_SUITE);

#define TX_SETTINGS \
	"workers = 2\npool_mode = transaction\nquery_wait_timeout = 60\nadmin_users = bench\n"
#define POOL "database=\"bench\",user=\"bench\""

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* corral with settings plus [metrics] listen on a free port (in *mport), once both ports
 * accept. */
static struct h_corral *start_with_metrics(const char *settings, const char *dbs, int *mport)
{
	*mport = h_free_port();
	char *s = h_printf("%s\n[metrics]\nlisten = 127.0.0.1:%d\n", settings, *mport);
	struct h_corral *c = h_corral_start(s, dbs, NULL);

	free(s);
	h_wait_port("corral's metrics endpoint", c->pid, &c->running, *mport, c->log);
	return c;
}

struct http_reply {
	int status;
	char *head; /* status line and headers */
	char *body;
	size_t body_len;
};

static void http_free(struct http_reply *r)
{
	free(r->head);
	free(r->body);
}

/* One HTTP/1.0 request (the server closes after the reply); fails the test on a socket
 * error or after 10 s.  status 0: the server closed without a reply. */
static struct http_reply http_request(int port, const char *method, const char *path,
				      const char *headers)
{
	int fd = h_tcp_connect(port);
	char *req = h_printf("%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n", method, path,
			     headers ? headers : "");

	h_send_all(fd, req, strlen(req));
	free(req);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	double deadline = h_now() + 10.0;

	for (;;) {
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n == 0)
			break;
		if (n < 0 && errno == ECONNRESET)
			break;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			cr_assert(h_now() < deadline, "no reply to %s %s within 10 s", method,
				  path);
			sleep_ms(5);
			continue;
		}
		cr_assert(n > 0, "recv: %s", strerror(errno));
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	struct http_reply r = {0};
	char *sep = strstr(buf, "\r\n\r\n");
	if (len == 0 || !sep) {
		r.head = buf;
		r.body = strdup("");
		return r;
	}
	*sep = '\0';
	r.head = strdup(buf);
	r.body_len = len - (size_t)(sep + 4 - buf);
	r.body = malloc(r.body_len + 1);
	memcpy(r.body, sep + 4, r.body_len + 1);
	free(buf);
	sscanf(r.head, "HTTP/1.%*d %d", &r.status);
	return r;
}

static struct http_reply http_get(int port, const char *path)
{
	return http_request(port, "GET", path, NULL);
}

/* The value of header name in r (static buffer), or NULL. */
static const char *header(const struct http_reply *r, const char *name)
{
	static char value[256];
	size_t nl = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
			const char *v = p + 3 + nl;
			while (*v == ' ')
				v++;
			size_t vl = strcspn(v, "\r");
			snprintf(value, sizeof value, "%.*s", (int)vl, v);
			return value;
		}
	}
	return NULL;
}

/* GET /metrics, parsed strictly: the test fails on the first violation of the format. */
static void scrape(int mport, struct prom_doc *doc)
{
	struct http_reply r = http_get(mport, "/metrics");
	char err[512];

	cr_assert_eq(r.status, 200, "/metrics: %s", r.head);
	cr_assert_str_eq(header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
	cr_assert(prom_parse(r.body, doc, err, sizeof err),
		  "/metrics is not valid text format: %s\n%s", err, r.body);
	http_free(&r);
}

/* A sample's value; -1 (and the test fails if required) when it is missing. */
static double value(const struct prom_doc *doc, const char *name, const char *labels)
{
	const struct prom_sample *s = prom_find(doc, name, labels);

	return s ? s->value : -1;
}

struct want {
	const char *name, *labels;
	double value;
};

/* Scrapes until every wanted sample has its value (5 s); leaves the last scrape in doc. */
static void wait_metrics(int mport, struct prom_doc *doc, const struct want *want, size_t n,
			 double timeout_s)
{
	double deadline = h_now() + timeout_s;

	for (;;) {
		scrape(mport, doc);
		size_t ok = 0;
		while (ok < n && value(doc, want[ok].name, want[ok].labels) == want[ok].value)
			ok++;
		if (ok == n)
			return;
		if (h_now() > deadline)
			cr_assert_fail("%s{%s} is %g, not %g, after %.0f s", want[ok].name,
				       want[ok].labels, value(doc, want[ok].name, want[ok].labels),
				       want[ok].value, timeout_s);
		prom_free(doc);
		sleep_ms(50);
	}
}

/* The dump's line of kind containing match (h_stats_dump_line); fails if there is none. */
static char *dump_line(const struct h_corral *c, const char *kind, const char *match)
{
	char *found = h_stats_dump_line(c, kind, match);

	cr_assert_not_null(found, "no %s line with %s in the dump", kind, match);
	return found;
}

static PGconn *connect_app(const struct h_corral *c, const char *app)
{
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	char *with = h_printf("%s application_name='%s'", ci, app);
	PGconn *conn = h_connect(c, with);

	free(ci);
	free(with);
	return conn;
}

/* ---- the strict parser itself: it must refuse what the format forbids ---- */

Test(metrics, parser_is_strict)
{
	static const char *const bad[] = {
		"x 1\n",                                  /* no TYPE */
		"# TYPE x gauge\nx 1",                    /* no final newline */
		"# TYPE x gauge\n\nx 1\n",                /* blank line */
		"# TYPE x gauge\nx{a=\"1\"} one\n",       /* value */
		"# TYPE x gauge\nx{a=\"\\t\"} 1\n",       /* escape */
		"# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n", /* label twice */
		"# TYPE x gauge\nx{1a=\"1\"} 1\n",        /* label name */
		"# TYPE x gauge\nx{__a=\"1\"} 1\n",       /* reserved label name */
		"# TYPE x gauge\nx 1\nx 2\n",             /* series twice */
		"# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a=\"b\"} 2\n", /* not together */
		"# TYPE x gauge\n# TYPE x gauge\nx 1\n",                    /* TYPE twice */
		"# TYPE x gauge\nx 1\n# HELP x late\n# HELP x again\n",     /* HELP twice */
		"# TYPE x counter\nx 1\n",              /* counter without _total */
		"# TYPE x_total counter\nx_total -1\n", /* negative counter */
		"# TYPE x widget\nx 1\n",               /* type */
		"# a comment\n",                        /* other comments */
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n", /* no count */
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
		"# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
		"h_sum 1\nh_count 1\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
	};
	struct prom_doc doc;
	char err[256];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_not(prom_parse(bad[i], &doc, err, sizeof err), "accepted:\n%s", bad[i]);
		prom_free(&doc);
	}
	const char *good =
		"# HELP h a \\\\ help\\n\n# TYPE h histogram\nh_bucket{a=\"x\\\"\\n\",le=\"0.5\"} 1\n"
		"h_bucket{a=\"x\\\"\\n\",le=\"+Inf\"} 3\nh_sum{a=\"x\\\"\\n\"} 2.5\nh_count{a=\"x\\\"\\n\"} 3\n"
		"# TYPE t_total counter\nt_total 1e3 1700000000000\n";
	cr_assert(prom_parse(good, &doc, err, sizeof err), "%s", err);
	cr_expect_eq(value(&doc, "h_count", "a=\"x\"\n\""), 3);
	cr_expect_eq(value(&doc, "t_total", ""), 1000);
	prom_free(&doc);
}

/* ---- /metrics against a known workload ---- */

/* 1000 transactions from 10 clients: 900 autocommit SELECTs and 100 BEGIN / SELECT /
 * COMMIT (three queries each), as in test_stats.c. */
Test(metrics, counters_match_the_workload_and_the_dump, .timeout = 60)
{
	int mport;
	struct h_corral *c = start_with_metrics(TX_SETTINGS, H_BENCH_DB_WITH(" pool_size=10"),
						&mport);
	PGconn *conn[10];

	for (int i = 0; i < 10; i++)
		conn[i] = connect_app(c, "metrics_counts");
	h_known_workload(conn);
	const struct want want[] = {
		{"corral_pool_transactions_total", POOL, 1000},
		{"corral_pool_queries_total", POOL, 1200},
		{"corral_pool_checkouts_total", POOL, 1000},
		{"corral_pool_transaction_duration_seconds_count", POOL, 1000},
		{"corral_pool_wait_duration_seconds_count", POOL, 1000},
		{"corral_pool_clients", "database=\"bench\",state=\"idle\",user=\"bench\"", 10},
		{"corral_pool_clients", "database=\"bench\",state=\"active\",user=\"bench\"", 0},
		{"corral_pool_clients", "database=\"bench\",state=\"waiting\",user=\"bench\"", 0},
		{"corral_pool_sheds_total", POOL, 0},
		{"corral_pool_timeouts_total", POOL, 0},
		{"corral_pool_size", POOL, 10},
		{"corral_pool_queue_depth", POOL, 0},
		{"corral_app_transactions_total", "app=\"metrics_counts\"", 1000},
		{"corral_app_queries_total", "app=\"metrics_counts\"", 1200},
		{"corral_app_clients", "app=\"metrics_counts\",state=\"idle\"", 10},
		{"corral_app_limit", "app=\"metrics_counts\"", 0},
		{"corral_up", "", 1},
		{"corral_workers", "", 2},
		{"corral_serving_state", "state=\"serving\"", 1},
		{"corral_serving_state", "state=\"paused\"", 0},
		{"corral_pools", "", 1},
		{"corral_pool_info", "database=\"bench\",pool_mode=\"transaction\",user=\"bench\"",
		 1},
	};
	struct prom_doc doc;

	wait_metrics(mport, &doc, want, sizeof want / sizeof want[0], 5.0);
	/* Nothing runs now: the dump taken next must say exactly what /metrics said. */
	char *line = dump_line(c, "stats_pool", "db=\"bench\"");
	static const struct {
		const char *metric, *key;
		double scale;
	} same[] = {
		{"corral_pool_transactions_total", "xact_count", 1},
		{"corral_pool_queries_total", "query_count", 1},
		{"corral_pool_received_bytes_total", "bytes_received", 1},
		{"corral_pool_sent_bytes_total", "bytes_sent", 1},
		{"corral_pool_query_seconds_total", "query_time_us", 1e-6},
		{"corral_pool_transaction_duration_seconds_sum", "xact_time_us", 1e-6},
		{"corral_pool_wait_duration_seconds_sum", "wait_time_us", 1e-6},
		{"corral_pool_checkouts_total", "checkouts", 1},
		{"corral_pool_waits_total", "wait_count", 1},
		{"corral_pool_sheds_total", "sheds", 1},
		{"corral_pool_timeouts_total", "timeouts", 1},
		{"corral_pool_size", "pool_size", 1},
	};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		double m = value(&doc, same[i].metric, POOL),
		       d = (double)h_log_field(line, same[i].key) * same[i].scale;
		cr_expect(fabs(m - d) < 1e-9, "%s = %.6f but the dump's %s gives %.6f\n%s",
			  same[i].metric, m, same[i].key, d, line);
	}
	cr_expect_gt(value(&doc, "corral_pool_received_bytes_total", POOL), 1000 * 14);
	/* The servers the pool has, by state, add up to what the dump calls servers. */
	double sv = 0;
	for (const char *const *st =
		     (const char *const[]){"login", "idle", "active", "closing", NULL};
	     *st; st++) {
		char *l = h_printf("database=\"bench\",state=\"%s\",user=\"bench\"", *st);
		sv += value(&doc, "corral_pool_servers", l);
		free(l);
	}
	cr_expect_eq(sv, (double)h_log_field(line, "servers"), "%s", line);
	/* The p99 the dump reports is the upper edge of a bucket: the histogram's cumulative
	 * count there covers at least 99% of the transactions. */
	char *le = h_printf("database=\"bench\",le=\"%lld.%06lld\",user=\"bench\"",
			    h_log_field(line, "xact_p99_us") / 1000000,
			    h_log_field(line, "xact_p99_us") % 1000000);
	cr_expect_geq(value(&doc, "corral_pool_transaction_duration_seconds_bucket", le), 990, "%s",
		      le);
	free(le);
	free(line);
	prom_free(&doc);

	/* The admin console reads the same snapshot: SHOW STATS and SHOW POOLS agree. */
	scrape(mport, &doc);
	char *ci = h_conninfo(c, H.user, "corral", H.password);
	PGconn *console = h_connect(c, ci);
	free(ci);
	static const struct {
		const char *command, *column, *metric, *labels;
		double scale;
	} console_same[] = {
		{"SHOW STATS", "total_xact_count", "corral_pool_transactions_total", POOL, 1},
		{"SHOW STATS", "total_query_count", "corral_pool_queries_total", POOL, 1},
		{"SHOW STATS", "total_received", "corral_pool_received_bytes_total", POOL, 1},
		{"SHOW STATS", "total_sent", "corral_pool_sent_bytes_total", POOL, 1},
		{"SHOW STATS", "total_server_assignment_count", "corral_pool_checkouts_total", POOL,
		 1},
		{"SHOW STATS", "total_xact_time", "corral_pool_transaction_duration_seconds_sum",
		 POOL, 1e-6},
		{"SHOW POOLS", "sv_idle", "corral_pool_servers",
		 "database=\"bench\",state=\"idle\",user=\"bench\"", 1},
		{"SHOW POOLS", "cl_idle", "corral_pool_clients",
		 "database=\"bench\",state=\"idle\",user=\"bench\"", 1},
		{"SHOW POOLS", "pool_size", "corral_pool_size", POOL, 1},
	};
	for (size_t i = 0; i < sizeof console_same / sizeof console_same[0]; i++) {
		PGresult *r = PQexec(console, console_same[i].command);
		cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", console_same[i].command,
			     PQerrorMessage(console));
		int col = PQfnumber(r, console_same[i].column), row = -1;
		for (int k = 0; k < PQntuples(r); k++)
			if (strcmp(PQgetvalue(r, k, 0), "bench") == 0)
				row = k;
		cr_assert(col >= 0 && row >= 0, "%s has no %s for bench", console_same[i].command,
			  console_same[i].column);
		double shown = atof(PQgetvalue(r, row, col)) * console_same[i].scale;
		double m = value(&doc, console_same[i].metric, console_same[i].labels);
		cr_expect(fabs(m - shown) < 1e-9, "%s: %s = %.6f but /metrics' %s is %.6f",
			  console_same[i].command, console_same[i].column, shown,
			  console_same[i].metric, m);
		PQclear(r);
	}
	PQfinish(console);
	prom_free(&doc);

	line = dump_line(c, "stats_app", "app=\"metrics_counts\"");
	scrape(mport, &doc);
	cr_expect_eq(value(&doc, "corral_app_sent_bytes_total", "app=\"metrics_counts\""),
		     (double)h_log_field(line, "bytes_sent"));
	free(line);
	prom_free(&doc);

	/* The database's max_connections, asked for by the metrics thread on its own. */
	char *max = h_direct_value("SHOW max_connections");
	const struct want mc[] = {
		{"corral_database_max_connections", "database=\"bench\"", atof(max)}};
	wait_metrics(mport, &doc, mc, 1, 10.0);
	prom_free(&doc);
	free(max);
	for (int i = 0; i < 10; i++)
		PQfinish(conn[i]);
	h_corral_stop(c);
}

/* 30 clients hold pg_sleep with pool size 10: 10 active, 20 waiting, in the gauges. */
Test(metrics, gauges_while_clients_wait, .timeout = 60)
{
	int mport;
	struct h_corral *c = start_with_metrics(TX_SETTINGS, H_BENCH_DB_WITH(" pool_size=10"),
						&mport);
	PGconn *conn[30];

	for (int i = 0; i < 30; i++)
		conn[i] = connect_app(c, "metrics_gauges");
	for (int i = 0; i < 30; i++)
		cr_assert(PQsendQuery(conn[i], "SELECT pg_sleep(2)"), "%s",
			  PQerrorMessage(conn[i]));
	const struct want busy[] = {
		{"corral_pool_clients", "database=\"bench\",state=\"active\",user=\"bench\"", 10},
		{"corral_pool_clients", "database=\"bench\",state=\"waiting\",user=\"bench\"", 20},
		{"corral_pool_servers", "database=\"bench\",state=\"active\",user=\"bench\"", 10},
		{"corral_pool_queue_depth", POOL, 20},
		{"corral_app_clients", "app=\"metrics_gauges\",state=\"waiting\"", 20},
	};
	struct prom_doc doc;

	wait_metrics(mport, &doc, busy, sizeof busy / sizeof busy[0], 5.0);
	cr_expect_gt(value(&doc, "corral_pool_maxwait_seconds", POOL), 0);
	prom_free(&doc);
	for (int i = 0; i < 30; i++) {
		PGresult *r = h_results(conn[i], "pg_sleep", 30.0);
		cr_expect_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
		PQclear(r);
	}
	const struct want done[] = {
		{"corral_pool_clients", "database=\"bench\",state=\"waiting\",user=\"bench\"", 0},
		{"corral_pool_transactions_total", POOL, 30},
		{"corral_pool_maxwait_seconds", POOL, 0},
	};
	wait_metrics(mport, &doc, done, sizeof done / sizeof done[0], 5.0);
	/* 20 of them waited for a pg_sleep(2): the wait histogram has them past 1 s. */
	cr_expect_geq(value(&doc, "corral_pool_waits_total", POOL), 20);
	double under_1s = -1;
	for (size_t i = 0; i < doc.n; i++) {
		const struct prom_sample *s = &doc.samples[i];
		double le;
		const char *p = strstr(s->labels, "le=\"");
		if (strcmp(s->name, "corral_pool_wait_duration_seconds_bucket") == 0 && p &&
		    sscanf(p + 4, "%lf", &le) == 1 && le < 1.0)
			under_1s = s->value;
	}
	cr_expect_leq(under_1s, 10, "at most the first ten got a server within a second");
	prom_free(&doc);
	for (int i = 0; i < 30; i++)
		PQfinish(conn[i]);
	h_corral_stop(c);
}

/* ---- /stats.json, /healthz, and what is not served ---- */

/* A JSON value at *s (RFC 8259, strict); advances *s.  Depth-limited. */
static bool json_value(const char **s, int depth);

static void json_ws(const char **s)
{
	while (**s == ' ' || **s == '\n' || **s == '\t' || **s == '\r')
		(*s)++;
}

static bool json_string(const char **s)
{
	const char *p = *s + 1;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return false;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						return false;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || !*p) {
				return false;
			}
		}
	}
	*s = p + 1;
	return true;
}

static bool json_value(const char **s, int depth)
{
	json_ws(s);
	if (depth > 32)
		return false;
	if (**s == '{' || **s == '[') {
		char close = **s == '{' ? '}' : ']';
		bool object = close == '}';
		(*s)++;
		json_ws(s);
		if (**s == close) {
			(*s)++;
			return true;
		}
		for (;;) {
			if (object) {
				json_ws(s);
				if (**s != '"' || !json_string(s))
					return false;
				json_ws(s);
				if (*(*s)++ != ':')
					return false;
			}
			if (!json_value(s, depth + 1))
				return false;
			json_ws(s);
			if (**s == ',') {
				(*s)++;
				continue;
			}
			if (**s != close)
				return false;
			(*s)++;
			return true;
		}
	}
	if (**s == '"')
		return json_string(s);
	static const char *const literals[] = {"true", "false", "null"};
	for (size_t i = 0; i < 3; i++) {
		if (strncmp(*s, literals[i], strlen(literals[i])) == 0) {
			*s += strlen(literals[i]);
			return true;
		}
	}
	/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
	const char *p = *s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (isdigit((unsigned char)*p))
		while (isdigit((unsigned char)*p))
			p++;
	else
		return false;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	*s = p;
	return true;
}

static bool json_valid(const char *text)
{
	const char *s = text;
	if (!json_value(&s, 0))
		return false;
	json_ws(&s);
	return *s == '\0';
}

Test(metrics, stats_json_healthz_and_refusals, .timeout = 60)
{
	int mport;
	struct h_corral *c = start_with_metrics(TX_SETTINGS, H_BENCH_DB_WITH(" pool_size=3"),
						&mport);
	PGconn *conn = connect_app(c, "metrics_json");

	h_exec_ok(conn, "SELECT 1");
	struct http_reply r = http_get(mport, "/healthz");
	cr_expect_eq(r.status, 200, "%s", r.head);
	cr_expect_str_eq(r.body, "ok\n");
	http_free(&r);

	double deadline = h_now() + 5.0;
	for (;;) {
		r = http_get(mport, "/stats.json");
		cr_assert_eq(r.status, 200, "%s", r.head);
		cr_assert_str_eq(header(&r, "Content-Type"), "application/json");
		cr_assert(json_valid(r.body), "/stats.json is not valid JSON:\n%s", r.body);
		if (strstr(r.body, "\"xact_count\":1,") || h_now() > deadline)
			break;
		http_free(&r);
		sleep_ms(50);
	}
	cr_expect(
		strstr(r.body,
		       "\"pools\":[{\"database\":\"bench\",\"user\":\"bench\",\"pool_mode\":\"transaction\",\"pool_size\":3") !=
			NULL,
		"%s", r.body);
	cr_expect(strstr(r.body, "{\"name\":\"metrics_json\",") != NULL, "%s", r.body);
	static const char *const keys[] = {"\"ts_ms\":",       "\"serving\":\"serving\"",
					   "\"workers\":2",    "\"totals\":{",
					   "\"xact_p50_us\":", "\"xact_p95_us\":",
					   "\"xact_p99_us\":", "\"wait_p99_us\":",
					   "\"wait_hist\":[",  "\"hist_le_us\":[0,1,2,3,5,"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		cr_expect(strstr(r.body, keys[i]) != NULL, "no %s in %s", keys[i], r.body);
	cr_expect(strstr(r.body, "\"xact_count\":1,") != NULL, "%s", r.body);
	http_free(&r);

	/* The dashboard: one page, nothing fetched from elsewhere. */
	r = http_get(mport, "/");
	cr_expect_eq(r.status, 200);
	cr_expect_str_eq(header(&r, "Content-Type"), "text/html; charset=utf-8");
	cr_expect(strstr(r.body, "<span id=\"samples\">") != NULL);
	cr_expect(strstr(r.body, "stats.json") != NULL);
	cr_expect(strstr(r.body, "src=") == NULL && strstr(r.body, "href=") == NULL &&
			  strstr(r.body, "@import") == NULL,
		  "the dashboard loads something from elsewhere");
	size_t page_len = r.body_len;
	http_free(&r);
	r = http_request(mport, "HEAD", "/", NULL);
	cr_expect_eq(r.status, 200);
	cr_expect_eq(r.body_len, 0, "HEAD got a body");
	cr_expect_eq(atol(header(&r, "Content-Length") ? header(&r, "Content-Length") : "0"),
		     (long)page_len);
	http_free(&r);

	r = http_get(mport, "/nothing-here");
	cr_expect_eq(r.status, 404, "%s", r.head);
	http_free(&r);
	r = http_request(mport, "POST", "/metrics", "Content-Length: 0\r\n");
	cr_expect_eq(r.status, 405, "%s", r.head);
	cr_expect_str_eq(header(&r, "Allow"), "GET, HEAD");
	http_free(&r);
	/* Headers past 8 KB are refused before any handler runs. */
	char *big = malloc(20000);
	memset(big, 'a', 19990);
	memcpy(big, "X-Big: ", 7);
	strcpy(big + 19990, "\r\n");
	r = http_request(mport, "GET", "/metrics", big);
	cr_expect(r.status == 0 || (r.status >= 400 && r.status < 500), "oversized headers got %d",
		  r.status);
	http_free(&r);
	free(big);
	/* Still serving after all that. */
	r = http_get(mport, "/healthz");
	cr_expect_eq(r.status, 200);
	http_free(&r);
	PQfinish(conn);

	/* PAUSE (every database): 503 until RESUME. */
	char *ci = h_conninfo(c, H.user, "corral", H.password);
	PGconn *console = h_connect(c, ci);
	free(ci);
	h_exec_ok(console, "PAUSE");
	r = http_get(mport, "/healthz");
	cr_expect_eq(r.status, 503, "paused: %s", r.head);
	http_free(&r);
	h_exec_ok(console, "RESUME");
	r = http_get(mport, "/healthz");
	cr_expect_eq(r.status, 200, "resumed: %s", r.head);
	http_free(&r);
	PQfinish(console);
	h_corral_stop(c);
}

/* ---- the dashboard in a real browser ---- */

/* Where screenshots go: $CORRAL_TEST_OUTPUT, else build/test-output in the source tree
 * (the test's own dir is removed with the cluster). */
static char *output_dir(void)
{
	const char *env = getenv("CORRAL_TEST_OUTPUT");
	char *dir = env && *env ? strdup(env)
				: h_printf("%s/build/test-output", h_need_env("CORRAL_SRCDIR"));
	struct h_cmd r = h_run(10, "mkdir -p %s", dir);

	cr_assert_eq(r.status, 0, "cannot make %s: %s", dir, r.err);
	h_cmd_free(&r);
	return dir;
}

/* chromium (or $CORRAL_CHROMIUM); the test fails, saying how to get it, if it is not there. */
static char *chromium(void)
{
	const char *env = getenv("CORRAL_CHROMIUM");
	if (env && *env)
		return strdup(env);
	struct h_cmd r = h_run(10, "command -v chromium || command -v chromium-browser");
	if (r.status != 0)
		cr_assert_fail(
			"the dashboard test needs a real browser, and chromium is not installed: "
			"apt-get install -y chromium (scripts/deps.sh installs it), or set CORRAL_CHROMIUM");
	char *path = strndup(r.out, strcspn(r.out, "\n"));
	h_cmd_free(&r);
	return path;
}

/* Runs headless chromium on url with more arguments (shell words); returns its stdout. */
static char *run_chromium(const char *browser, const char *args, const char *url)
{
	char *profile = h_path("chromium-profile");
	struct h_cmd r = h_run(
		90,
		"%s --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
		"--hide-scrollbars --user-data-dir=%s --window-size=1280,900 %s '%s'",
		browser, profile, args, url);
	if (r.status != 0)
		cr_assert_fail(
			"chromium could not run (status %d; a container may lack what it needs):\n%s",
			r.status, r.err);
	char *out = r.out;
	r.out = NULL;
	h_cmd_free(&r);
	free(profile);
	return out;
}

Test(metrics, dashboard_in_headless_chromium, .timeout = 120)
{
	char *browser = chromium();
	int mport;
	struct h_corral *c =
		start_with_metrics("workers = 2\npool_mode = transaction\nquery_wait_timeout = 60\n"
				   "\n[limits]\napp.dash_capped = 2\n",
				   H_BENCH_DB_WITH(" pool_size=4"), &mport);
	/* Load for the charts: pgbench through corral, more clients than servers, and an
	 * application capped below its clients, so some wait. */
	char *script = h_path("sleep.sql"), *pgbench = h_pgtool("pgbench"),
	     *port = h_printf("%d", c->port);
	h_write_file(script, "select pg_sleep(0.005);\n");
	setenv("PGPASSWORD", H.password, 1);
	/* static: h_fini reads them through the pointers h_track_daemon keeps. */
	static pid_t load[2];
	static bool running[2];
	const char *apps[2] = {"dbname=bench application_name=dash_load",
			       "dbname=bench application_name=dash_capped"};
	const char *clients[2] = {"8", "4"};
	for (int i = 0; i < 2; i++) {
		char *out = h_printf("%s/pgbench%d.log", H.dir, i);
		const char *argv[] = {pgbench, "-n", "-f", script, "-c",    clients[i],
				      "-j",    "2",  "-T", "30",   "-h",    "127.0.0.1",
				      "-p",    port, "-U", H.user, apps[i], NULL};
		load[i] = h_spawn(&(struct h_spawn){.argv = argv, .out = out, .err = out});
		running[i] = true;
		h_track_daemon(&load[i], &running[i]);
		free(out);
	}
	/* Wait for the load to show (its transactions counted) before the browser looks. */
	double deadline = h_now() + 15.0;
	for (;;) {
		struct prom_doc doc;
		scrape(mport, &doc);
		double tx = value(&doc, "corral_pool_transactions_total", POOL);
		prom_free(&doc);
		if (tx > 100)
			break;
		cr_assert(h_now() < deadline, "pgbench's transactions do not show in /metrics:\n%s",
			  h_corral_log_tail(c));
		sleep_ms(100);
	}

	char *url = h_printf("http://127.0.0.1:%d/", mport);
	/* Virtual time: the page's 1-second timer runs as fast as fetches allow. */
	char *dom = run_chromium(browser, "--virtual-time-budget=8000 --dump-dom", url);
	const char *at = strstr(dom, "<span id=\"samples\">");
	cr_assert_not_null(at, "no sample count in the dashboard's DOM:\n%.2000s", dom);
	long samples = strtol(at + strlen("<span id=\"samples\">"), NULL, 10);
	cr_expect_gt(samples, 0, "the dashboard received no samples:\n%.3000s", dom);
	/* The tables were drawn from those samples: the pool and both applications. */
	cr_expect(strstr(dom, "<td>bench/bench</td>") != NULL, "no pool row:\n%.3000s", dom);
	cr_expect(strstr(dom, "<td>dash_capped</td>") != NULL, "no row for dash_capped:\n%.3000s",
		  dom);
	cr_expect(strstr(dom, ">unreachable<") == NULL, "the page could not reach /stats.json");
	free(dom);

	char *dir = output_dir(), *png = h_printf("%s/dashboard.png", dir);
	unlink(png);
	char *args = h_printf("--virtual-time-budget=20000 --screenshot=%s", png);
	free(run_chromium(browser, args, url));
	struct stat st;
	cr_assert(stat(png, &st) == 0 && st.st_size > 10000, "no screenshot at %s", png);
	char *head = h_read_file(png, NULL);
	cr_expect(memcmp(head, "\x89PNG", 4) == 0, "%s is not a PNG", png);
	free(head);
	cr_log_info("dashboard screenshot (%ld samples in the DOM): %s", samples, png);
	fprintf(stderr, "metrics: dashboard screenshot: %s\n", png);

	for (int i = 0; i < 2; i++) {
		kill(load[i], SIGTERM);
		int status;
		waitpid(load[i], &status, 0);
		running[i] = false;
	}
	free(args);
	free(png);
	free(dir);
	free(url);
	free(script);
	free(pgbench);
	free(port);
	free(browser);
	h_corral_stop(c);
}
