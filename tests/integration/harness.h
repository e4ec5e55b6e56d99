/*
 * Integration-test harness: a real corral process per test, real libpq clients, a
 * pg_stat_activity sampler and a shell runner, against the throwaway PostgreSQL that
 * tests/integration/run.sh starts (its environment contract is documented there).
 *
 * Every suite uses H_SUITE (.init = h_init, .fini = h_fini).  Criterion runs each
 * test in its own process, so the harness keeps per-test state in globals; h_fini
 * kills whatever a failed test left running (corral, samplers), and a corral child
 * also dies with its test process (PR_SET_PDEATHSIG) if a test times out.
 *
 * Helpers that can fail fail the current test themselves (cr_assert_fail) with the
 * reason and, where it helps, the tail of corral's log; they return only on success.
 */
#ifndef CORRAL_TESTS_INTEGRATION_HARNESS_H
#define CORRAL_TESTS_INTEGRATION_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define H_SUITE .init = h_init, .fini = h_fini

/* corral's [databases] line for database bench as bench/secret, with more options (" pool_size=1"). */
#define H_BENCH_DB_WITH(options) \
	"bench = host=@PGHOST@ port=@PGPORT@ dbname=bench user=bench password=secret" options "\n"
#define H_BENCH_DB H_BENCH_DB_WITH("")

/* Seconds any single query or login may take before the test fails as "hung". */
#define H_QUERY_TIMEOUT 15.0

/* What run.sh exported; filled by h_init. */
struct h_env {
	const char *corral_bin;
	const char *pghost;
	int pgport;
	const char *sockdir;  /* superuser "postgres", trust */
	const char *user;     /* bench */
	const char *password; /* secret */
	const char *md5_user; /* md5user, stored as md5 in PostgreSQL */
	const char *md5_password;
	const char *db;         /* bench */
	const char *pgbench_db; /* pgb: pgbench tables, only the pgbench test uses it */
	const char *idle_db;    /* idle: only the server_idle_timeout test uses it */
	const char *limit_user; /* limited: password secret, only the stranded-waiter test */
	const char *pg_bindir;
	char dir[512]; /* this test's own scratch dir (made by h_init) */
};
extern struct h_env H;

void h_init(void);
void h_fini(void);
/* Environment variable name; the test fails unless it is set and not empty. */
const char *h_need_env(const char *name);

/* ---- small utilities (results are malloc'd; the caller frees) ---- */
/* A growing string, always NUL-terminated once anything was added ({0} is empty). */
struct h_sbuf {
	char *p;
	size_t len, cap;
};
void h_sb_add(struct h_sbuf *b, const char *s, size_t n);
void h_sb_printf(struct h_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *h_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Replaces @PGHOST@, @PGPORT@, @DIR@ (the test dir), @USER@, @PASSWORD@, @DB@. */
char *h_subst(const char *text);
char *h_path(const char *name); /* H.dir + "/" + name */
void h_write_file(const char *path, const char *content);
char *h_read_file(const char *path, size_t *len); /* NULL if it cannot be read */
char *h_shq(const char *s);                       /* single-quoted for sh */
double h_now(void);                               /* monotonic seconds */
void h_md5_hex(const void *data, size_t len, char out[33]);
int h_free_port(void); /* a loopback port below 32768 nothing listens on now */
/* The next value of a xorshift64 sequence in *state (never 0): reproducible noise. */
uint64_t h_xorshift64(uint64_t *state);
/* len deterministic letters a-z from seed (xorshift64), NUL-terminated. */
char *h_make_text(size_t len, uint64_t seed);

/* ---- daemons: what starting and stopping corral and corral-fn share ---- */
/* How h_spawn starts a program. */
struct h_spawn {
	const char *const *argv; /* NULL-terminated; argv[0] is the program */
	bool search_path;        /* look argv[0] up in PATH (execvp), else exec it as given */
	const char *out;         /* stdout to this file (created, truncated) */
	const char *err;         /* stderr likewise; the same path as out: both to one file */
};
/*
 * Forks and execs s->argv with stdin /dev/null and PGSSLMODE=disable in its environment;
 * the child dies with the test process (PR_SET_PDEATHSIG), even if Criterion kills it on
 * a timeout.  An exec that fails writes "harness: exec ..." to s->err and exits 127.
 */
pid_t h_spawn(const struct h_spawn *s);
/* Fails the test unless path is an executable, naming `make make_target` to build it. */
void h_need_program(const char *path, const char *make_target);
/* h_fini SIGKILLs and reaps the process *pid if *running still says it runs: a process
 * the test started and a failed assertion left behind. */
void h_track_daemon(pid_t *pid, bool *running);
/* Reaps pid if it has exited (then *running = false and *status is its wait status);
 * returns true while it runs.  Nothing is waited for once *running is false. */
bool h_reap(pid_t pid, bool *running, int *status);
/* "exit status N", "killed by signal N (name)", ... of a wait status, into buf. */
const char *h_status_text(int status, char *buf, size_t len);
/*
 * Polls (10 ms) until 127.0.0.1:port accepts; the test fails (naming what, with the tail
 * of log) if the process exits first or 10 s pass.
 */
void h_wait_port(const char *what, pid_t pid, bool *running, int port, const char *log);
/* SIGTERM; the test fails unless the process exits with status 0 within 5 s (it is
 * SIGKILLed after that). */
void h_stop_process(const char *what, pid_t pid, bool *running, const char *log);
/* The same with signal sig. */
void h_stop_process_with(const char *what, pid_t pid, bool *running, const char *log, int sig);
/* The last 3 KB of a log file, in a static buffer (valid until the next call). */
const char *h_log_tail(const char *path);
/* Polls (10 ms) the file until it contains needle; false after timeout_s. */
bool h_wait_file(const char *path, const char *needle, double timeout_s);
/* How often needle occurs in the file (0 if it cannot be read). */
int h_file_count(const char *path, const char *needle);
/* Polls (10 ms) until needle occurs in the file at least want times; false after timeout_s. */
bool h_wait_file_count(const char *path, const char *needle, int want, double timeout_s);
/* Whether an INI text has a line "key = ..." (any indentation). */
bool h_has_key(const char *settings, const char *key);

/* ---- corral processes ---- */
struct h_corral {
	pid_t pid;
	int port;
	char ini[600];
	char userlist[600];
	char log[600];
	bool running;
};

/*
 * Writes DIR/corralN.ini and DIR/userlistN.txt and starts "$CORRAL_BIN -c ini" with
 * stdout/stderr to DIR/corralN.log; returns once the port accepts (10 s, else the test
 * fails with the log tail).  settings: extra [corral] lines; listen_addr, listen_port
 * and auth_file are always the harness's, auth_type (scram-sha-256) and workers (2)
 * are defaults the settings may override.  databases: the [databases] lines.  users:
 * the auth file (NULL: "bench" "secret").  All three go through h_subst.
 */
struct h_corral *h_corral_start(const char *settings, const char *databases, const char *users);
/*
 * The same, started as "WRAPPER... $CORRAL_BIN -c ini" (wrapper: a NULL-terminated argv
 * prefix looked up in PATH, e.g. {"prlimit", "--nofile=40:40", "--", NULL}; it must exec
 * corral so that c->pid is corral's pid).  NULL wrapper: h_corral_start.
 *
 * Every corral runs with PGSSLMODE=disable in its environment: its server logins are
 * plain text (as before the cluster had TLS) unless a database line says sslmode=.
 */
struct h_corral *h_corral_start_wrapped(const char *const *wrapper, const char *settings,
					const char *databases, const char *users);
/* SIGINT (shut down at once; SIGTERM waits for clients); the test fails unless corral
 * exits with status 0 within 5 s. */
void h_corral_stop(struct h_corral *c);
bool h_corral_alive(struct h_corral *c);
/* The last 3 KB of corral's log, in a static buffer (valid until the next call). */
const char *h_corral_log_tail(const struct h_corral *c);
/*
 * Asks corral for a statistics dump (SIGUSR1, proxy/stats_dump.c) and returns (malloc'd)
 * the line of that dump of kind ("stats_pool", "stats_app") containing match (e.g.
 * db="bench"), or NULL if the dump has none.
 */
char *h_stats_dump_line(const struct h_corral *c, const char *kind, const char *match);
/* The integer value of key=... in a key=value log line, or -1 if the key is not there. */
long long h_log_field(const char *line, const char *key);
/* The statistics tests' known workload on 10 connections: 1000 transactions, of which
 * 900 autocommit SELECTs (a query each) and 100 BEGIN / SELECT / COMMIT (three each). */
void h_known_workload(PGconn *const conn[10]);
/* Within 5 s, new logins to c fail (corral shutting down: the listeners close on every
 * worker's next loop turn). */
void h_expect_logins_refused(const struct h_corral *c);
/* Polls (10 ms) corral's log until it contains needle; false after timeout_s. */
bool h_wait_log(const struct h_corral *c, const char *needle, double timeout_s);
/* h_file_count and h_wait_file_count on corral's log. */
int h_log_count(const struct h_corral *c, const char *needle);
bool h_wait_log_count(const struct h_corral *c, const char *needle, int want, double timeout_s);
/* Replaces the first from in c's ini with to, then SIGHUP and waits (5 s) until every
 * worker has reloaded (one more event=reload_done); a test failure otherwise. */
void h_corral_edit_reload(const struct h_corral *c, const char *from, const char *to);
/* SIGTERMs c and waits (10 ms polls) until it has exited, a test failure after 5 s;
 * returns its wait status. */
int h_corral_sigterm_wait(struct h_corral *c);
/* The next query on conn gets 57P01 "terminating connection due to administrator command"
 * (corral shut down); who names conn in the failure messages. */
void h_expect_admin_terminated(PGconn *conn, const char *who);

/* ---- logins at once ---- */
struct h_login {
	const char *ci;
	const char *sql; /* run once logged in (NULL: none) */
	pthread_t thread;
	bool ok; /* logged in (and sql gave rows) */
	char err[300];
};
/* Starts n logins with conninfo ci (kept until h_logins_join), each on a thread of its
 * own; sql (NULL: none) runs once logged in. */
void h_logins_start(struct h_login *l, int n, const char *ci, const char *sql);
/* Waits for the n logins; returns how many are ok. */
int h_logins_join(struct h_login *l, int n);
/* User + system CPU seconds a process has used so far (/proc/PID/stat); -1 if unknown. */
double h_proc_cpu_seconds(pid_t pid);
/* libpq conninfo for corral (password NULL: none), with connect_timeout. */
char *h_conninfo(const struct h_corral *c, const char *user, const char *db, const char *password);
/* Same for PostgreSQL directly over TCP. */
char *h_pg_conninfo(const char *user, const char *db, const char *password);

/* ---- libpq ---- */
/* Connects; fails the test (with message and, if c != NULL, corral's log) unless OK. */
PGconn *h_connect(const struct h_corral *c, const char *conninfo);
PGconn *h_connect_bench(const struct h_corral *c); /* bench/secret to database bench */
/*
 * Login that is allowed to fail, with PQERRORS_VERBOSE set before the first poll so
 * that the error text carries the SQLSTATE ("FATAL:  28P01: ...").  Returns the
 * connection on success; otherwise NULL and the error text in *err (malloc'd).
 */
PGconn *h_try_connect(const char *conninfo, double timeout_s, char **err);
/*
 * Sends sql (simple protocol) and waits up to timeout_s for all its results; the test
 * fails as hung otherwise.  Returns the first error result if there was one, else the
 * last result (never NULL).
 */
PGresult *h_exec_t(PGconn *conn, const char *sql, double timeout_s);
PGresult *h_exec(PGconn *conn, const char *sql);
/*
 * Waits (poll on its socket) until conn has a whole result for PQgetResult or has failed,
 * so that PQgetResult does not block; fails the test, naming what, once deadline (h_now())
 * passes.
 */
void h_wait_result(PGconn *conn, double deadline, const char *what);
/* The results of what was already sent on conn (PQsendQuery...), as h_exec_t; what names it. */
PGresult *h_results(PGconn *conn, const char *what, double timeout_s);
/* Extended protocol with text parameters. */
PGresult *h_exec_params(PGconn *conn, const char *sql, int n, const char *const *values,
			double timeout_s);
/* Fails the test unless the command succeeds. */
void h_exec_ok(PGconn *conn, const char *sql);
/* Fails unless sql returns exactly one row; returns its first value. */
char *h_value(PGconn *conn, const char *sql);
/* A field of an error result, or "" (never NULL). */
const char *h_err_field(const PGresult *res, int field);
const char *h_sqlstate(const PGresult *res);
/* Fails (cr_expect) unless sql returns exactly one row whose first value is want. */
void h_expect_value(PGconn *conn, const char *sql, const char *want);
/* The same for "SHOW name". */
void h_expect_show(PGconn *conn, const char *name, const char *want);
/* A new client logs in to c with ci (NULL: bench/secret to bench), runs sql, must get want, and leaves. */
void h_expect_new_client(const struct h_corral *c, const char *ci, const char *sql,
			 const char *want);
/*
 * conn, a client of c that the test disturbed or kept waiting, still gets answers and
 * leaves (PQfinish); then a new client logs in with ci (as h_expect_new_client) and gets
 * answers too.
 */
void h_expect_still_serving(const struct h_corral *c, PGconn *conn, const char *ci);

/* ---- PostgreSQL directly, as bench in database bench ---- */
/* Runs sql; fails the test unless it succeeds. */
void h_direct_exec(const char *sql);
/* The one value sql returns (malloc'd). */
char *h_direct_value(const char *sql);

/* ---- PostgreSQL as superuser over the unix socket ---- */
PGconn *h_superuser(void);
/* Client backends of datname (and usename unless NULL) right now. */
int h_pg_backends(const char *datname, const char *usename);
/* Polls (10 ms) until the count equals want; returns the seconds it took, or -1. */
double h_wait_pg_backends(const char *datname, const char *usename, int want, double timeout_s);
/*
 * Polls (10 ms) until sql (one row; e.g. about pg_stat_activity, whose own row is the
 * poller's) returns want as its first value; returns the seconds it took, or -1.
 */
double h_wait_pg_value(const char *sql, const char *want, double timeout_s);

/* Samples pg_stat_activity in a thread and keeps the peak backend count. */
struct h_sampler;
struct h_sampler *h_sampler_start(const char *datname, const char *usename);
/* Stops the thread; fails the test if sampling failed; returns the peak. */
int h_sampler_stop(struct h_sampler *s, int *samples);

/* ---- a PostgreSQL of the test's own (to restart or stop it) ---- */
struct h_pg {
	char dir[600]; /* scripts/pgtmp.sh's DIR: DIR/pg data directory and unix socket, DIR/postgres.log */
	int port;
	bool running;
};
/*
 * initdb's and starts a PostgreSQL cluster for this test alone in DIR/name with
 * scripts/pgtmp.sh (CORRAL_TEST_PGTMP), as run.sh does for the shared one: 127.0.0.1 on a
 * free port below 32768, the OS user of run.sh's cluster, superuser "postgres", trust for
 * every user over TCP from 127.0.0.1, shared_buffers 32MB, synchronous_commit = on (a
 * commit acknowledged before an immediate shutdown must survive it; fsync stays off: the
 * machine does not crash), plus args (more pgtmp.sh arguments, shell words, e.g.
 * "max_connections=30"; NULL: none).  Restarting or stopping it disturbs no other test;
 * h_fini stops it (immediate mode) if the test has not.  About a second (initdb).
 */
struct h_pg *h_pg_start(const char *name, const char *args);
/*
 * "pg_ctl -w -t 60 -D DIR/pg -l DIR/postgres.log ARGS" as the cluster's OS user, e.g.
 * "restart -m fast", "stop -m immediate", "start"; the test fails unless it exits 0.
 * Returns the seconds it took.
 */
double h_pg_ctl(struct h_pg *pg, const char *args);
/* libpq conninfo for the cluster over TCP as postgres to db, with connect_timeout 10. */
char *h_pg_own_conninfo(const struct h_pg *pg, const char *db);

/* ---- shell commands ---- */
struct h_cmd {
	int status; /* exit code; 128+N if killed by signal N; -1 if it timed out */
	char *out;
	char *err;
	double secs;
};
/* Runs "sh -c CMD" (stdin /dev/null) and captures stdout and stderr separately. */
struct h_cmd h_run(double timeout_s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void h_cmd_free(struct h_cmd *r);
/*
 * In H.dir: a CA (ca.crt/ca.key) and a server certificate for localhost signed by it
 * (server.crt/server.key, SAN DNS:localhost and IP:127.0.0.1); with client_cert also a
 * client certificate for CN=bench (client.crt/client.key).  Keys 0600 (libpq wants that).
 */
void h_make_certs(bool client_cert);
/* PostgreSQL's psql / pgbench, full paths, for commands. */
char *h_pgtool(const char *name);
/* psql -X -At -d CI ARGS (further arguments, already shell words), within H_QUERY_TIMEOUT. */
struct h_cmd h_psql(const char *ci, const char *args);
/* psql -X -At -c SQL through corral as bench/secret to bench; fails unless the output is want. */
void h_psql_expect(const struct h_corral *c, const char *sql, const char *want);
/*
 * psql -X -v ON_ERROR_STOP=1 -d CI -c CMD with PGCLIENTENCODING=UTF8, within 60 s: fails
 * unless it exits 0 and prints exactly want_out (command tags, e.g. "COPY 100000\n").
 */
void h_psql_run(const char *ci, const char *cmd, const char *want_out);

/* ---- shared workloads (each fails the test itself) ---- */
/*
 * A len-byte value of h_make_text(len, seed) goes to the server as a Bind parameter into
 * a new temp table "big"; PostgreSQL must store it unchanged (length and md5), and it
 * must come back unchanged in one DataRow.
 */
void h_big_value_round_trip(PGconn *conn, size_t len, uint64_t seed);
/*
 * \copy through psql (h_psql_run) on ci.  h_copy_in writes n rows "id<TAB>text" (ids 1..n,
 * text "row ID cafe HEX" with a UTF-8 e-acute for the last e) to DIR/TABLE-in.tsv,
 * (re)creates table (id int primary key, v text), copies the file in and gives the file's
 * md5.  h_copy_out copies the rows out in id order to DIR/name and gives that file's md5
 * and length.  Both want psql to report "COPY n".
 */
void h_copy_in(const char *ci, const char *table, int n, char md5[33]);
void h_copy_out(const char *ci, const char *table, int n, const char *name, char md5[33],
		size_t *len);

/* ---- raw sockets (for bad input) ---- */
int h_tcp_connect(int port);
void h_send_all(int fd, const void *buf, size_t len);
/*
 * Reads until the peer closes (EOF or reset), cap bytes arrived, or timeout_s passed.
 * Returns the bytes read; *closed tells whether the peer closed.
 */
size_t h_read_reply(int fd, void *buf, size_t cap, double timeout_s, bool *closed);
/*
 * If buf starts with a complete v3 ErrorResponse, copies its SQLSTATE and message
 * (may be truncated) and returns true.
 */
bool h_parse_error(const void *buf, size_t len, char sqlstate[6], char *msg, size_t msglen);
/* What a peer sent before it closed (h_read_final_reply). */
struct h_reply {
	unsigned char buf[4096];
	size_t len;
	bool closed;      /* the peer closed (EOF or reset) within the time */
	bool error;       /* an ErrorResponse is among the complete messages in buf */
	char sqlstate[6]; /* the first ErrorResponse's, if error */
	char msg[256];
};
/* Reads fd until the peer closes or timeout_s passes, closes fd, and looks for an ErrorResponse. */
void h_read_final_reply(int fd, double timeout_s, struct h_reply *r);
/*
 * h_read_final_reply for 5 s; fails (messages start with what) unless the peer sent an
 * ErrorResponse with SQLSTATE want_state and closed.
 */
void h_expect_error_then_close(int fd, const char *what, const char *want_state, struct h_reply *r);
/* A raw login as bench to database bench on a corral with auth_type = trust, up to
 * ReadyForQuery; with query, runs it (linking a server) too.  Returns the socket. */
int h_raw_login(int port, const char *query);
/* Reads one byte within 5 s; fails unless it is want (e.g. 'N' refusing an SSLRequest). */
void h_expect_byte(int fd, char want, const char *what);

/* ---- raw protocol ---- */
#define H_PROTOCOL_3_0 0x00030000u
#define H_SSL_REQUEST_CODE 80877103u
#define H_GSSENC_REQUEST_CODE 80877104u
/* An 8-byte packet of length and code only (SSLRequest, GSSENCRequest) into buf. */
void h_request_packet(unsigned char buf[8], uint32_t code);
/*
 * A startup packet with protocol code version and the parameters kv ("name", "value",
 * ..., NULL) into buf; returns its length.
 */
size_t h_startup_packet(unsigned char *buf, size_t cap, uint32_t version, const char *const *kv);
/*
 * The backend message at buf (len bytes available): its type, body and body length.
 * Returns the message's full size (1 + its length field), or 0 if it is incomplete or
 * its length field is below 4.
 */
size_t h_msg(const unsigned char *buf, size_t len, char *type, const unsigned char **body,
	     size_t *body_len);
/*
 * Reads into buf (appending at *len) until a complete message of type want is in it
 * (true), or the peer closes, cap is reached or timeout_s passes (false).  *closed tells
 * whether the peer closed.  Scans whole messages only: buf must start at a message.
 */
bool h_read_until_msg(int fd, unsigned char *buf, size_t cap, size_t *len, char want,
		      double timeout_s, bool *closed);
/* Big-endian int32 at p. */
uint32_t h_be32(const void *p);

/* ---- tests that must run alone ---- */
/*
 * For a test that exhausts PostgreSQL's connection slots on purpose: waits until every
 * other test that is running has ended and keeps new tests from starting (they wait in
 * h_init) until this test's process ends.  Every test holds a shared lock from h_init
 * on; this takes it exclusively.  Give such a test a .timeout that covers the wait for
 * the longest other test.
 */
void h_run_alone(void);

#endif
