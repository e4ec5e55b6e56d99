/*
 * The function runner's part of the integration-test harness: a real corral-fn process
 * per test (beside the test's own corral, harness.h), a blocking HTTP/1.1 client for its
 * routes, its logs (the key=value runner log on stderr, START/END/REPORT lines on
 * stdout), its environments (the processes it forked), /metrics, and corral-storm runs.
 *
 * Binaries come from $CORRAL_BINDIR (run.sh): corral-fn, corral-storm, functions/NAME.so
 * (the examples) and test-functions/NAME.so (tests/functions/).  Suites use H_SUITE:
 * h_fini kills a corral-fn that a failed test left running, as it kills corral.
 *
 * As in harness.h, helpers that can fail fail the current test themselves; the HTTP
 * client fails it when the peer does not answer in time, so a hung request never hangs
 * the suite.  Only what is marked so may run on another thread than the test's.
 */
#ifndef CORRAL_TESTS_INTEGRATION_HARNESS_FN_H
#define CORRAL_TESTS_INTEGRATION_HARNESS_FN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/integration/harness.h"

/* Seconds an HTTP request of a test may take before the test fails as "hung". */
#define H_HTTP_TIMEOUT 30.0

/* $CORRAL_BINDIR, and a path in it ("corral-storm", "functions/url_shortener.so"). */
const char *h_fn_bindir(void);
char *h_fn_bin(const char *name);
/* $CORRAL_TEST_FN_DB: the example functions' database (fn). */
const char *h_fn_db(void);

/* ---- corral in front of database fn ---- */
/*
 * A corral for the function tests: pool_mode = transaction and a [databases] line for
 * database fn as bench/secret with pool_size = pool_size (small: two tests run at once
 * against PostgreSQL's max_connections = 50).
 */
struct h_corral *h_fn_corral(int pool_size);
/* postgresql://bench:secret@127.0.0.1:PORT/fn: database fn through corral c. */
char *h_fn_database_url(const struct h_corral *c);

/* ---- PostgreSQL directly, as bench in database fn ---- */
PGconn *h_fn_pg(void);
/* The one value sql returns in database fn (malloc'd); fails unless exactly one row. */
char *h_fn_value(const char *sql);
long long h_fn_count(const char *sql); /* h_fn_value as a number */
/* Fails (cr_expect, naming what) unless sql's one value in database fn is want. */
void h_fn_expect_value(const char *sql, const char *want, const char *what);
void h_fn_exec(const char *sql);
/* Polls (100 ms) until sql's one value equals want; false after timeout_s. */
bool h_fn_wait_value(const char *sql, const char *want, double timeout_s);

/* ---- corral-fn processes ---- */
struct h_fn {
	pid_t pid;
	bool running;
	int port;
	char ini[600];
	char log[600];     /* stderr: the runner's key=value log */
	char reports[600]; /* stdout: START / END / REPORT lines */
};

/*
 * Writes DIR/corral-fnN.ini: [runner] with listen_addr 127.0.0.1, listen_port (a free
 * port), functions_dir ($CORRAL_BINDIR/test-functions) and, when db != NULL,
 * database_url = h_fn_database_url(db); then config (h_subst'ed): more [runner] lines
 * first, then [function.NAME] sections.  Starts "$CORRAL_BINDIR/corral-fn -c ini" with
 * stderr to DIR/corral-fnN.log and stdout to DIR/corral-fnN.reports and returns once
 * the port accepts (10 s, else the test fails with the log tail).
 */
struct h_fn *h_fn_start(const struct h_corral *db, const char *config);
/*
 * SIGTERM; the test fails unless corral-fn exits with status 0 within 5 s and, once it
 * has, none of the environments it had when it was told to stop is left (exited and
 * reaped: no process with that pid and start time remains).
 */
void h_fn_stop(struct h_fn *f);
bool h_fn_alive(struct h_fn *f);
const char *h_fn_log_tail(const struct h_fn *f);

/*
 * corral-fn's environments: its child processes (/proc/PID/stat whose ppid is f->pid),
 * zombies (exited, not yet reaped) left out unless with_zombies.  Fills up to cap pids
 * (pids may be NULL) and returns how many there are.  Safe on any thread.
 */
int h_fn_children(const struct h_fn *f, pid_t *pids, int cap, bool with_zombies);
/* Polls (10 ms) until h_fn_children(f, NULL, 0, with_zombies) == want; false after timeout_s. */
bool h_fn_wait_children(const struct h_fn *f, int want, bool with_zombies, double timeout_s);
/* Samples h_fn_children (live ones) in a thread every 2 ms and keeps the peak. */
struct h_fn_sampler;
struct h_fn_sampler *h_fn_sampler_start(const struct h_fn *f);
int h_fn_sampler_stop(struct h_fn_sampler *s, int *samples); /* the peak */

/* ---- logs ---- */
/* Polls (10 ms) the runner log until it contains needle; false after timeout_s. */
bool h_fn_wait_log(const struct h_fn *f, const char *needle, double timeout_s);
/* Lines of the runner log containing every one of the needles (NULL-terminated). */
int h_fn_log_lines(const struct h_fn *f, const char *const *needles);
/* Polls (10 ms) until h_fn_log_lines(f, needles) >= want; false after timeout_s. */
bool h_fn_wait_log_lines(const struct h_fn *f, const char *const *needles, int want,
			 double timeout_s);
/* The sum of the numbers key=N on the runner-log lines containing every one of the needles. */
long long h_fn_log_sum(const struct h_fn *f, const char *const *needles, const char *key);
/* The value of key= on the first runner-log line that contains needle, malloc'd; NULL if none. */
char *h_fn_log_value(const struct h_fn *f, const char *needle, const char *key);
/* REPORT lines so far. */
int h_fn_report_count(const struct h_fn *f);
/* Polls until the REPORT line of request_id is written; returns it (malloc'd) or fails. */
char *h_fn_report_for(const struct h_fn *f, const char *request_id, double timeout_s);
/* A REPORT line's "Name: 12.34 ms" field in ms (Duration, Init Duration, ...); -1 if absent. */
double h_report_ms(const char *line, const char *name);

/* ---- HTTP/1.1 over loopback ---- */
struct h_http {
	int status; /* 0: no complete answer (see error) */
	char *head; /* the status line and the headers, CRLFs included */
	char *body; /* NUL-terminated */
	size_t body_len;
	double secs;     /* request sent to answer read */
	char error[200]; /* why there is no answer; "" if there is one */
};
/*
 * "METHOD path HTTP/1.1" to 127.0.0.1:port with Host, Connection: close, Content-Length
 * (when body != NULL) and headers ("Name: value" lines separated by '\n', may be NULL),
 * then body.  Reads the answer (Content-Length, or to EOF).  The test fails if the
 * connection fails or no full answer arrives within timeout_s.
 */
struct h_http h_http(int port, const char *method, const char *path, const char *headers,
		     const char *body, double timeout_s);
/* h_http to corral-fn with H_HTTP_TIMEOUT. */
struct h_http h_fn_http(const struct h_fn *f, const char *method, const char *path,
			const char *headers, const char *body);
/* The value of header name (case-insensitive), malloc'd; NULL if absent. */
char *h_http_header(const struct h_http *r, const char *name);
void h_http_free(struct h_http *r);
/* The same request on a thread of its own, for invocations that must be in flight. */
struct h_http_bg;
struct h_http_bg *h_http_start(int port, const char *method, const char *path, const char *headers,
			       const char *body, double timeout_s);
/* Waits for it; never fails the test: an error (even a timeout) is in the result's error. */
struct h_http h_http_join(struct h_http_bg *bg);

/* ---- /metrics ---- */
/* The sum of the samples on /metrics whose line starts with prefix (a name and labels,
 * e.g. "corral_fn_environments{function=\"probe\","); fails if none does. */
double h_fn_metric(const struct h_fn *f, const char *prefix);
/* Polls /metrics (50 ms) until h_fn_metric(f, prefix) == want; false after timeout_s. */
bool h_fn_wait_metric(const struct h_fn *f, const char *prefix, double want, double timeout_s);

/* ---- corral-storm ---- */
/*
 * Runs "$CORRAL_BINDIR/corral-storm --json ARGS" (h_run, timeout_s); fails unless it
 * exits 0 with a JSON object on stdout, which is returned (malloc'd).
 */
char *h_storm(double timeout_s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reading JSON text (functions/fn_event.h): a dotted path of member keys ("status_codes.200"). */
bool h_json_has(const char *json, const char *path);
long long h_json_int(const char *json, const char *path, long long absent);
char *h_json_str(const char *json, const char *path); /* malloc'd, NULL if absent or not a string */

#endif
