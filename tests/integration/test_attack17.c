/*
 * Attacks on the streams of commit 6d14e04 (common/stream.c): read watermarks that
 * suspend and resume, backpressure between a client and its server, output that
 * must be flushed by whoever adds it, and streams closed while their output is full
 * or from inside callbacks.  Each test checks that the client under attack gets what
 * PostgreSQL would have given it (or a clear error), that another client keeps being
 * served, and that corral neither spins, nor buffers without bound, nor keeps fds.
 *
 * No timing assertions: "does not spin" is CPU time far below wall time over a
 * window in which corral has nothing to do (a spinning loop would use all of it);
 * "does not buffer without bound" is resident memory far below the result's size,
 * reached once PostgreSQL is seen blocked writing (wait_event ClientWrite).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"
#include "tests/integration/tls_raw.h"

TestSuite(attack17, H_SUITE);

/* Rows of BIG_ROW bytes: BIG_ROWS of them make a 32 MB result. */
#define BIG_ROWS 32000
#define BIG_ROW 1000
#define BIG_MB (BIG_ROWS * BIG_ROW / (1024 * 1024))

static long rss_kb(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	char *status = h_read_file(path, NULL);
	cr_assert_not_null(status);
	const char *line = strstr(status, "VmRSS:");
	long kb = line ? strtol(line + 6, NULL, 10) : -1;
	free(status);
	return kb;
}

/* A bound on corral's growth in kB, or none when corral runs under AddressSanitizer
 * (its quarantine keeps freed memory resident) or valgrind (its translations of code
 * run for the first time grow it): the flood tests also check that the sender stayed
 * blocked, the slow readers that PostgreSQL did, which holds whatever the allocator. */
static long rss_limit(const struct h_corral *c, long kb)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)c->pid);
	char *maps = h_read_file(path, NULL);
	bool instrumented = maps &&
			    (strstr(maps, "libasan") != NULL || strstr(maps, "vgpreload") != NULL);
	free(maps);
	return instrumented ? LONG_MAX : kb;
}

static int fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	cr_assert_not_null(d, "%s: %s", path, strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* corral's fds back to at most want (a closed client's socket, a drained or closed
 * server's); the count when it gave up otherwise. */
static int wait_fds_at_most(const struct h_corral *c, int want, double timeout_s)
{
	double end = h_now() + timeout_s;
	int n;
	while ((n = fd_count(c->pid)) > want && h_now() < end)
		usleep(50 * 1000);
	return n;
}

/* corral's CPU seconds over a quiet window of secs: a spinning event loop would take
 * about all of it. */
static double cpu_over(const struct h_corral *c, double secs)
{
	double before = h_proc_cpu_seconds(c->pid);
	usleep((useconds_t)(secs * 1e6));
	return h_proc_cpu_seconds(c->pid) - before;
}

/* corral's CPU seconds over the first window of secs in which it used less than a
 * third of it, waiting at most max_wait: work still legitimately going on (slow under
 * valgrind or on a loaded machine) ends, a spinning loop never does. */
static double settled_cpu(const struct h_corral *c, double secs, double max_wait)
{
	double end = h_now() + max_wait, cpu;
	do
		cpu = cpu_over(c, secs);
	while (cpu >= secs / 3 && h_now() < end);
	return cpu;
}

static char *big_query(const char *marker)
{
	return h_printf("select repeat('x', %d) as v, '%s' as m from generate_series(1, %d)",
			BIG_ROW, marker, BIG_ROWS);
}

/* The backend running the query with marker is blocked writing to corral. */
static void wait_backend_blocked(const struct h_corral *c, const char *marker)
{
	char *sql =
		h_printf("select count(*) from pg_stat_activity where wait_event = 'ClientWrite' "
			 "and query like '%%%s%%' and pid <> pg_backend_pid()",
			 marker);
	double t = h_wait_pg_value(sql, "1", 60.0);
	cr_assert_geq(t, 0,
		      "the backend of %s never waited on ClientWrite: corral read it all?\n%s",
		      marker, h_corral_log_tail(c));
	free(sql);
}

static void terminate_backend(const char *marker)
{
	char *sql =
		h_printf("select pg_terminate_backend(pid) from pg_stat_activity where query like "
			 "'%%%s%%' and pid <> pg_backend_pid()",
			 marker);
	h_direct_exec(sql);
	free(sql);
}

/* A libpq client that asks for BIG_MB MB and does not read: it sends, then sleeps. */
static PGconn *start_unread_big_result(const struct h_corral *c, const char *ci, const char *marker)
{
	PGconn *a = h_connect(c, ci);
	h_expect_value(a, "select 'A-warm'", "A-warm");
	int small = 64 * 1024;
	(void)setsockopt(PQsocket(a), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	char *q = big_query(marker);
	cr_assert_eq(PQsendQuery(a, q), 1, "%s", PQerrorMessage(a));
	free(q);
	return a;
}

/* The whole result, right. */
/* The results of what a sent (the first error, else the last), read by libpq's own
 * blocking wait: the harness's poll on the socket can miss a TLS record that libpq's
 * OpenSSL already read from it (seen with 32 MB over TLS: every byte delivered, the
 * poll waiting for ever).  A stall in corral still fails, at the test's timeout. */
static PGresult *blocking_results(PGconn *a)
{
	PGresult *keep = NULL, *r;
	while ((r = PQgetResult(a)) != NULL) {
		if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r);
		} else {
			PQclear(keep);
			keep = r;
		}
	}
	cr_assert_not_null(keep, "no result");
	return keep;
}

static void read_big_result(PGconn *a, const char *marker)
{
	PGresult *res = blocking_results(a);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	cr_expect_eq(PQntuples(res), BIG_ROWS);
	cr_expect_eq(PQgetlength(res, BIG_ROWS - 1, 0), BIG_ROW);
	cr_expect_str_eq(PQgetvalue(res, BIG_ROWS - 1, 1), marker);
	PQclear(res);
}

/* A corral and a client B of it (conninfo + extra_ci), served once: the bystander
 * each test checks is still served while another client misbehaves. */
struct scene {
	struct h_corral *c;
	char *base, *ci;
	PGconn *b;
};

static struct scene scene_open(const char *settings, const char *databases, const char *extra_ci)
{
	struct scene sc;
	sc.c = h_corral_start(settings, databases, NULL);
	sc.base = h_conninfo(sc.c, H.user, H.db, H.password);
	sc.ci = h_printf("%s %s", sc.base, extra_ci);
	sc.b = h_connect(sc.c, sc.ci);
	h_expect_value(sc.b, "select 'B-warm'", "B-warm");
	return sc;
}

/* A transaction-pooling corral with auth_type = trust, pool_size 2 and client B of it
 * (not yet served), for tests that log a raw client in without a password. */
static struct scene trust_scene(void)
{
	struct scene sc;
	sc.c = h_corral_start("auth_type = trust\npool_mode = transaction\nworkers = 1\n",
			      H_BENCH_DB_WITH(" pool_size=2"), NULL);
	sc.base = h_conninfo(sc.c, "bench", "bench", NULL);
	sc.ci = h_printf("%s", sc.base);
	sc.b = h_connect(sc.c, sc.ci);
	return sc;
}

static void scene_close(struct scene *sc)
{
	PQfinish(sc->b);
	free(sc->ci);
	free(sc->base);
	h_corral_stop(sc->c);
}

/*
 * A client that does not read a 32 MB result: PostgreSQL ends up blocked writing
 * (corral stopped reading it at RELAY_HIGH_WATER), corral holds far less than the
 * result and does not spin, another client is served meanwhile, and once the client
 * reads it gets every row and can go on.
 */
static void slow_reader(const char *settings, const char *extra_ci)
{
	struct scene sc = scene_open(settings, H_BENCH_DB_WITH(" pool_size=2"), extra_ci);
	struct h_corral *c = sc.c;
	const char *ci = sc.ci;
	PGconn *b = sc.b;
	long rss0 = rss_kb(c->pid);

	PGconn *a = start_unread_big_result(c, ci, "slow-reader-17");
	wait_backend_blocked(c, "slow-reader-17");
	double cpu = settled_cpu(c, 1.5, 30.0);
	long grown = rss_kb(c->pid) - rss0;
	cr_log_info("slow reader (%s): corral grew %ld kB, %.2f s CPU in 1.5 s", extra_ci, grown,
		    cpu);
	cr_expect_lt(grown, rss_limit(c, (long)BIG_MB * 1024 / 2),
		     "corral grew by %ld kB while a client did not read a %d MB result", grown,
		     BIG_MB);
	cr_expect_lt(cpu, 0.75, "corral used %.2f s of CPU in 1.5 s with a client not reading",
		     cpu);
	h_expect_value(b, "select 'B-served'", "B-served");
	h_expect_value(b, "select count(*) from generate_series(1, 1000)", "1000");

	read_big_result(a, "slow-reader-17");
	h_expect_value(a, "select 'A-again'", "A-again");
	h_expect_value(b, "select 'B-after'", "B-after");
	PQfinish(a);
	scene_close(&sc);
}

Test(attack17, slow_reader_big_result_bounded_then_complete, .timeout = 180)
{
	slow_reader("pool_mode = transaction\nworkers = 1\n", "sslmode=disable");
}

static char *tls_settings(const char *more)
{
	h_make_certs(false);
	return h_printf("client_tls_sslmode = require\nclient_tls_cert_file = %s/server.crt\n"
			"client_tls_key_file = %s/server.key\n%s",
			H.dir, H.dir, more);
}

Test(attack17, tls_slow_reader_big_result_bounded_then_complete, .timeout = 180)
{
	char *s = tls_settings("pool_mode = transaction\nworkers = 1\n");
	slow_reader(s, "sslmode=require");
	free(s);
}

/*
 * The server of a client that does not read is terminated (pg_terminate_backend)
 * while blocked writing: the client gets an error once it reads (not a hang, not a
 * truncated result passed off as complete), the one pool slot serves the next client,
 * and corral's fds go back to what they were.
 */
static void server_killed_under_slow_reader(const char *settings, const char *extra_ci)
{
	struct scene sc = scene_open(settings, H_BENCH_DB_WITH(" pool_size=1"), extra_ci);
	struct h_corral *c = sc.c;
	PGconn *b = sc.b;
	int fds0 = fd_count(c->pid);

	PGconn *a = start_unread_big_result(c, sc.ci, "killed-under-17");
	wait_backend_blocked(c, "killed-under-17");
	terminate_backend("killed-under-17");
	PGresult *res = blocking_results(a);
	cr_expect_neq(PQresultStatus(res), PGRES_TUPLES_OK,
		      "a result cut by a terminated server came out complete");
	PQclear(res);
	PQfinish(a);

	h_expect_value(b, "select 'B-after-kill'", "B-after-kill");
	h_expect_value(b, "select 'B-again'", "B-again");
	int fds = wait_fds_at_most(c, fds0, 15.0);
	cr_expect_leq(fds, fds0, "corral holds %d fds, %d before the client came", fds, fds0);
	scene_close(&sc);
}

Test(attack17, server_terminated_under_a_slow_reader, .timeout = 180)
{
	server_killed_under_slow_reader("pool_mode = transaction\nworkers = 1\n",
					"sslmode=disable");
}

Test(attack17, tls_server_terminated_under_a_slow_reader, .timeout = 180)
{
	char *s = tls_settings("pool_mode = transaction\nworkers = 1\n");
	server_killed_under_slow_reader(s, "sslmode=require");
	free(s);
}

/* How the client under attack goes away while its output is full. */
enum leave { LEAVE_RESET, LEAVE_FIN_NO_CLOSE_NOTIFY };

/* The socket under libpq goes (RST, or FIN without a TLS close_notify); libpq keeps an
 * fd number of /dev/null to close later. */
static void vanish(PGconn *a, enum leave how)
{
	int fd = PQsocket(a);
	if (how == LEAVE_RESET) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	} else {
		cr_assert_eq(shutdown(fd, SHUT_WR), 0, "%s", strerror(errno));
		return; /* half closed: corral sees EOF, its writes still land here */
	}
	int nul = open("/dev/null", O_RDWR);
	cr_assert_geq(nul, 0);
	cr_assert_geq(dup2(nul, fd), 0);
	close(nul);
}

/*
 * A client leaves while its output is full and its server blocked writing (the
 * server's read suspended by backpressure): the server is drained or closed, the
 * slot serves the next client (transaction pooling: B waits for A's one server), fds
 * go back.
 */
static void leave_while_output_full(const char *settings, const char *extra_ci, enum leave how)
{
	/* Session pooling: B keeps its server, A needs one of its own. */
	struct scene sc = scene_open(settings,
				     strstr(settings, "session") ? H_BENCH_DB_WITH(" pool_size=2")
								 : H_BENCH_DB_WITH(" pool_size=1"),
				     extra_ci);
	struct h_corral *c = sc.c;
	const char *ci = sc.ci;
	PGconn *b = sc.b;
	int fds0 = fd_count(c->pid);

	PGconn *a = start_unread_big_result(c, ci, "vanish-17");
	wait_backend_blocked(c, "vanish-17");
	vanish(a, how);
	cr_assert(h_wait_log(c, "event=client_closed", 30.0),
		  "corral did not notice the client leave\n%s", h_corral_log_tail(c));

	/* The server is cancelled and drained for reuse: the drain must skip the rest
	 * of the DataRow that was half relayed to A, not parse it as messages. */
	cr_expect(h_wait_log(c, "event=server_drained", 30.0),
		  "the server of the client that left was not drained\n%s", h_corral_log_tail(c));
	h_expect_value(b, "select 'B-after'", "B-after");
	h_expect_value(b, "select 'B-again'", "B-again");
	cr_expect_eq(h_log_count(c, "event=server_closed"), 0,
		     "the server of the client that left was closed, not drained\n%s",
		     h_corral_log_tail(c));
	cr_expect_eq(h_log_count(c, "event=server_login"), strstr(settings, "session") ? 2 : 1,
		     "a server was logged in again\n%s", h_corral_log_tail(c));
	PQfinish(a);
	if (strstr(settings, "session"))
		fds0++; /* A's server, drained, stays in the pool */
	int fds = wait_fds_at_most(c, fds0, 30.0);
	cr_expect_leq(fds, fds0, "corral holds %d fds, %d before the client came\n%s", fds, fds0,
		      h_corral_log_tail(c));
	cr_expect_lt(settled_cpu(c, 1.0, 30.0), 0.5, "corral busy after the client left");
	scene_close(&sc);
}

Test(attack17, client_reset_while_its_output_is_full, .timeout = 180)
{
	leave_while_output_full("pool_mode = transaction\nworkers = 1\n", "sslmode=disable",
				LEAVE_RESET);
}

Test(attack17, client_fin_while_its_output_is_full_session_mode, .timeout = 180)
{
	leave_while_output_full("pool_mode = session\nworkers = 1\n", "sslmode=disable",
				LEAVE_FIN_NO_CLOSE_NOTIFY);
}

Test(attack17, tls_client_reset_while_its_output_is_full, .timeout = 180)
{
	char *s = tls_settings("pool_mode = transaction\nworkers = 1\n");
	leave_while_output_full(s, "sslmode=require", LEAVE_RESET);
	free(s);
}

Test(attack17, tls_client_leaves_without_close_notify_while_output_full, .timeout = 180)
{
	char *s = tls_settings("pool_mode = transaction\nworkers = 1\n");
	leave_while_output_full(s, "sslmode=require", LEAVE_FIN_NO_CLOSE_NOTIFY);
	free(s);
}

/* ---- a client that sends a lot while it waits for a server ---------------------- */

#define FLOOD_QUERIES 12000
#define FLOOD_PAD 4000 /* 48 MB of queries in all */

struct flood {
	int fd;
	unsigned char *msgs;
	size_t len;
	atomic_bool done;
	int err;
};

static void *flood_send(void *arg)
{
	struct flood *f = arg;
	size_t off = 0;
	while (off < f->len) {
		ssize_t n = send(f->fd, f->msgs + off, f->len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			f->err = errno;
			break;
		}
		off += (size_t)n;
	}
	atomic_store(&f->done, true);
	return NULL;
}

static unsigned char *flood_messages(size_t *len)
{
	char *q = malloc(FLOOD_PAD + 64);
	cr_assert_not_null(q);
	int ql = snprintf(q, 64, "select 'f' /* ");
	memset(q + ql, 'p', FLOOD_PAD);
	ql += FLOOD_PAD;
	ql += sprintf(q + ql, " */");
	size_t one = 5 + (size_t)ql + 1;
	unsigned char *m = malloc(one * FLOOD_QUERIES);
	cr_assert_not_null(m);
	for (int i = 0; i < FLOOD_QUERIES; i++) {
		unsigned char *p = m + one * (size_t)i;
		p[0] = 'Q';
		uint32_t n = htonl((uint32_t)(one - 1));
		memcpy(p + 1, &n, 4);
		memcpy(p + 5, q, (size_t)ql + 1);
	}
	free(q);
	*len = one * FLOOD_QUERIES;
	return m;
}

/* Counts ReadyForQuery messages on fd until want came (or it closed, or timed out). */
static int count_ready(int fd, int want, double timeout_s, bool *closed)
{
	static unsigned char buf[1 << 16];
	size_t have = 0;
	int n = 0;
	double end = h_now() + timeout_s;
	*closed = false;
	while (n < want && h_now() < end) {
		struct timeval tv = {0, 200 * 1000};
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
		if (r == 0 ||
		    (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			*closed = true;
			break;
		}
		if (r < 0)
			continue;
		have += (size_t)r;
		size_t off = 0;
		while (have - off >= 5) {
			uint32_t len = h_be32(buf + off + 1);
			cr_assert(len >= 4 && len < sizeof buf, "bad message length %u", len);
			if (have - off < 1 + (size_t)len)
				break;
			if (buf[off] == 'Z')
				n++;
			cr_assert_neq(buf[off], 'E', "an error among the answers");
			off += 1 + len;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	return n;
}

/*
 * Transaction pooling, one server, held by B's open transaction.  A (raw) sends 48 MB
 * of queries while it waits: corral reads at most WAITING_READ_LIMIT of them and
 * stops (no spinning, no memory), and once B commits, every one of A's queries is
 * answered in order.
 */
Test(attack17, client_floods_queries_while_waiting, .timeout = 240)
{
	struct h_corral *c =
		h_corral_start("auth_type = trust\npool_mode = transaction\nworkers = 1\n"
			       "query_wait_timeout = 0\n",
			       H_BENCH_DB_WITH(" pool_size=1"), NULL);
	char *ci = h_conninfo(c, "bench", "bench", NULL);
	PGconn *b = h_connect(c, ci);
	h_exec_ok(b, "begin");
	h_expect_value(b, "select 'B-holds'", "B-holds");
	int a = h_raw_login(c->port, NULL);
	long rss0 = rss_kb(c->pid);

	struct flood f = {.fd = a};
	f.msgs = flood_messages(&f.len);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, flood_send, &f), 0);
	/* The sender blocks once corral and both kernel buffers (a few MB) are full. */
	usleep(2000 * 1000);
	cr_expect(!atomic_load(&f.done), "48 MB of queries all went into corral while A waited");
	double cpu = settled_cpu(c, 1.5, 30.0);
	long grown = rss_kb(c->pid) - rss0;
	cr_log_info("flood while waiting: corral grew %ld kB, %.2f s CPU in 1.5 s", grown, cpu);
	cr_expect_lt(cpu, 0.75, "corral used %.2f s of CPU in 1.5 s while a client waited", cpu);
	cr_expect_lt(grown, rss_limit(c, 8 * 1024L), "corral grew by %ld kB while a client waited",
		     grown);

	h_exec_ok(b, "commit");
	bool closed;
	int got = count_ready(a, FLOOD_QUERIES, 180.0, &closed);
	cr_expect_eq(got, FLOOD_QUERIES, "A got %d of %d answers (closed: %d)\n%s", got,
		     FLOOD_QUERIES, closed, h_corral_log_tail(c));
	pthread_join(th, NULL);
	cr_expect_eq(f.err, 0, "A's sender: %s", strerror(f.err));
	h_expect_value(b, "select 'B-after'", "B-after");
	close(a);
	free(f.msgs);
	free(ci);
	PQfinish(b);
	h_corral_stop(c);
}

/* ---- a TLS client that sends more than a login while its failure is held -------- */

struct tls_flood {
	struct tls_raw *t;
	size_t len;
	atomic_bool done;
};

static void *tls_flood_send(void *arg)
{
	struct tls_flood *f = arg;
	unsigned char *junk = calloc(1, f->len);
	if (junk)
		(void)tls_raw_send(f->t, junk, f->len); /* fails once corral closes */
	free(junk);
	atomic_store(&f->done, true);
	return NULL;
}

/*
 * Password login over TLS, a wrong password, and 16 MB behind it while the failure is
 * held back (auth_failure_delay): the TLS stream stops reading at LOGIN_READ_LIMIT
 * (no spinning, no memory), the failure comes, the client is closed, the sender is
 * released, and another client logs in meanwhile and after.
 */
Test(attack17, tls_login_flood_while_a_failure_is_held, .timeout = 120)
{
	h_make_certs(false);
	char *hba = h_path("hba17.conf");
	h_write_file(hba, "hostssl all all 127.0.0.1/32 password\n");
	char *s = tls_settings("");
	char *settings = h_printf("%sauth_type = hba\nauth_hba_file = %s\nauth_failure_delay = 3\n"
				  "auth_failure_max = 100\nworkers = 1\n",
				  s, hba);
	struct h_corral *c = h_corral_start(settings, H_BENCH_DB, NULL);
	char *base = h_conninfo(c, H.user, H.db, H.password);
	char *ci = h_printf("%s sslmode=require", base);
	PGconn *b = h_connect(c, ci);
	h_expect_value(b, "select 'B-warm'", "B-warm");
	long rss0 = rss_kb(c->pid);

	struct tls_raw t;
	cr_assert(tls_raw_connect(&t, c->port, true, NULL, 0), "TLS handshake");
	unsigned char buf[4096];
	size_t len;
	cr_assert(tls_raw_until_auth(&t, buf, sizeof(buf), &len), "no password asked");
	static const char wrong[] = "not-the-password";
	buf[0] = 'p';
	uint32_t l = htonl((uint32_t)(4 + sizeof(wrong)));
	memcpy(buf + 1, &l, 4);
	memcpy(buf + 5, wrong, sizeof(wrong));
	cr_assert(tls_raw_send(&t, buf, 5 + sizeof(wrong)));

	struct tls_flood f = {.t = &t, .len = 16u << 20};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, tls_flood_send, &f), 0);
	usleep(1000 * 1000);
	double cpu = settled_cpu(c, 1.0, 30.0);
	long grown = rss_kb(c->pid) - rss0;
	cr_log_info("TLS login flood: corral grew %ld kB, %.2f s CPU in 1 s", grown, cpu);
	cr_expect_lt(cpu, 0.5, "corral used %.2f s of CPU in 1 s with a login's input held", cpu);
	cr_expect_lt(grown, rss_limit(c, 4 * 1024L),
		     "corral grew by %ld kB holding a login's input", grown);
	h_expect_value(b, "select 'B-during'", "B-during");

	cr_assert(h_wait_log(c, "sqlstate=28P01", 30.0), "the failure never came\n%s",
		  h_corral_log_tail(c));
	cr_assert(h_wait_log_count(c, "event=client_closed", 2, 30.0),
		  "the flooding client was not closed\n%s", h_corral_log_tail(c));
	pthread_join(th, NULL);
	cr_expect(atomic_load(&f.done));
	tls_raw_close(&t);
	h_expect_new_client(c, ci, "select 'C-after'", "C-after");
	h_expect_value(b, "select 'B-after'", "B-after");
	PQfinish(b);
	free(ci);
	free(base);
	free(settings);
	free(s);
	free(hba);
	h_corral_stop(c);
}

/* ---- a client gone in the middle of a COPY FROM STDIN ---------------------------- */

static void put_msg(unsigned char **p, char type, const void *body, size_t len)
{
	(*p)[0] = (unsigned char)type;
	uint32_t n = htonl((uint32_t)(4 + len));
	memcpy(*p + 1, &n, 4);
	memcpy(*p + 5, body, len);
	*p += 5 + len;
}

/*
 * Transaction pooling, one server: A starts COPY FROM STDIN, sends 8 MB of rows and
 * leaves (RST) without CopyDone.  What corral had not read is lost with the reset, so
 * the server usually got half a CopyData: it cannot be drained and is closed, and its
 * backend, reading corral's Terminate as more of that message, must still be made to
 * exit (or the pool's one slot stays taken for ever and B waits for ever).  If the
 * cut fell between messages it is drained instead.  Either way nothing of A's COPY
 * is committed and B is served.
 */
Test(attack17, client_gone_in_the_middle_of_copy_in, .timeout = 120)
{
	struct h_corral *c =
		h_corral_start("auth_type = trust\npool_mode = transaction\nworkers = 1\n",
			       H_BENCH_DB_WITH(" pool_size=1"), NULL);
	char *ci = h_conninfo(c, "bench", "bench", NULL);
	PGconn *b = h_connect(c, ci);
	h_exec_ok(b, "drop table if exists copy17; create table copy17 (v text)");
	int fds0 = fd_count(c->pid);

	int a = h_raw_login(c->port, NULL);
	static const char copy[] = "copy copy17 from stdin";
	unsigned char q[64], *p = q;
	put_msg(&p, 'Q', copy, sizeof(copy));
	h_send_all(a, q, (size_t)(p - q));
	unsigned char buf[4096];
	size_t len = 0;
	bool closed;
	cr_assert(h_read_until_msg(a, buf, sizeof(buf), &len, 'G', 10.0, &closed),
		  "no CopyInResponse");
	size_t row = 8192, rows = 1024;
	unsigned char *data = malloc((5 + row) * rows), *d = data;
	cr_assert_not_null(data);
	char *line = malloc(row);
	memset(line, 'c', row - 1);
	line[row - 1] = '\n';
	for (size_t i = 0; i < rows; i++)
		put_msg(&d, 'd', line, row);
	h_send_all(a, data, (size_t)(d - data));
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	cr_assert_eq(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(a);

	h_expect_value(b, "select count(*) from copy17", "0");
	h_expect_value(b, "select 'B-after'", "B-after");
	cr_log_info("mid-COPY client gone: server %s",
		    h_log_count(c, "client left in the middle of a message") ? "closed mid-message"
									     : "drained");
	cr_expect_eq(h_log_count(c, "event=server_exit_wait"), 0,
		     "a backend did not exit after its server was closed\n%s",
		     h_corral_log_tail(c));
	int fds = wait_fds_at_most(c, fds0, 15.0);
	cr_expect_leq(fds, fds0, "corral holds %d fds, %d before the client came", fds, fds0);
	h_exec_ok(b, "drop table copy17");
	free(data);
	free(line);
	free(ci);
	PQfinish(b);
	h_corral_stop(c);
}

/* ---- the admin console's output, bigger than the socket takes ------------------ */

/* A corral with an admin user, and a console client of it (conninfo + extra_ci). */
static PGconn *admin_console(struct h_corral **c, char **ci, const char *extra_ci)
{
	*c = h_corral_start("workers = 1\nadmin_users = admin\n", H_BENCH_DB,
			    "\"bench\" \"secret\"\n\"admin\" \"adminpw\"\n");
	char *base = h_conninfo(*c, "admin", "corral", "adminpw");
	*ci = h_printf("%s %s", base, extra_ci);
	free(base);
	return h_connect(*c, *ci);
}

/*
 * One Query of 4000 "show config;" statements to the admin console, read only a
 * second later through a small receive buffer: megabytes of answers that the socket
 * does not take at once.  They are written as the socket drains (the console's
 * output is flushed, the rest goes on the write event), every result arrives, and
 * the console answers again after.
 */
Test(attack17, admin_console_output_bigger_than_the_socket, .timeout = 120)
{
	struct h_corral *c;
	char *ci;
	PGconn *a = admin_console(&c, &ci, "");
	int small = 32 * 1024;
	(void)setsockopt(PQsocket(a), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	enum { N = 4000 };
	struct h_sbuf q = {0};
	for (int i = 0; i < N; i++)
		h_sb_add(&q, "show config;", 12);
	h_sb_add(&q, "", 1);
	cr_assert_eq(PQsendQuery(a, q.p), 1, "%s", PQerrorMessage(a));
	usleep(1000 * 1000);
	int results = 0;
	long rows = 0;
	PGresult *res;
	while ((res = PQgetResult(a)) != NULL) {
		cr_expect_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
		rows += PQntuples(res);
		results++;
		PQclear(res);
	}
	cr_log_info("admin console: %d results, %ld rows", results, rows);
	cr_expect_eq(results, N, "%d results of %d", results, N);
	cr_expect_gt(rows, (long)N * 10);
	res = h_exec(a, "show version");
	cr_expect_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(a);
	free(q.p);
	free(ci);
	h_corral_stop(c);
}

/*
 * A console client that sends Query after Query and never reads: each Query of 250
 * "show config;" is ~15000 rows of answers (~15 MB of evbuffer chains).  corral must
 * stop running statements and reading while its output is full (as it stops reading
 * a server for a slow client), not hold the answers to every Query it is sent (before
 * the fix: ~470 MB); once the client reads, every answer comes.
 */
Test(attack17, admin_console_client_not_reading_is_not_buffered_without_bound, .timeout = 240)
{
	struct h_corral *c;
	char *ci;
	PGconn *a = admin_console(&c, &ci, "sslmode=disable");
	int fd = PQsocket(a);
	long rss0 = rss_kb(c->pid);
	enum { STMTS = 250, QUERIES = 32 };
	size_t body = STMTS * 12 + 1, one = 5 + body;
	unsigned char *msgs = malloc(one * QUERIES);
	cr_assert_not_null(msgs);
	for (int i = 0; i < QUERIES; i++) {
		unsigned char *p = msgs + one * (size_t)i;
		p[0] = 'Q';
		uint32_t n = htonl((uint32_t)(4 + body));
		memcpy(p + 1, &n, 4);
		for (int j = 0; j < STMTS; j++)
			memcpy(p + 5 + 12 * j, "show config;", 12);
		p[one - 1] = '\0';
	}
	/* Sent by a thread: with corral not reading, the send blocks. */
	struct flood f = {.fd = fd, .msgs = msgs, .len = one * QUERIES};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, flood_send, &f), 0);
	usleep(2000 * 1000);
	long grown = rss_kb(c->pid) - rss0;
	double cpu = settled_cpu(c, 1.0, 60.0);
	cr_log_info("admin console not reading: corral grew %ld kB, %.2f s CPU in 1 s", grown, cpu);
	cr_expect_lt(grown, rss_limit(c, 64 * 1024L),
		     "corral grew by %ld kB holding answers for a console client not reading",
		     grown);
	cr_expect_lt(cpu, 0.5, "corral used %.2f s of CPU in 1 s", cpu);
	bool closed;
	int got = count_ready(fd, QUERIES, 180.0, &closed);
	cr_expect_eq(got, QUERIES, "%d answers of %d (closed: %d)", got, QUERIES, closed);
	pthread_join(th, NULL);
	cr_expect_eq(f.err, 0, "sender: %s", strerror(f.err));
	PQfinish(a);
	free(msgs);
	free(ci);
	h_corral_stop(c);
}

/*
 * The same flood while A is linked and its server busy (pg_sleep(6) first): the
 * server stops reading, corral stops reading A once 256 KB wait for the server
 * (backpressure the other way), nothing spins, and once the sleep ends every query
 * is answered in order.
 */
Test(attack17, client_floods_queries_while_its_server_is_busy, .timeout = 240)
{
	struct scene sc = trust_scene();
	struct h_corral *c = sc.c;
	PGconn *b = sc.b;
	h_expect_value(b, "select 'B-warm'", "B-warm");
	int a = h_raw_login(c->port, NULL);
	long rss0 = rss_kb(c->pid);

	static const char sleep_sql[] = "select pg_sleep(6)";
	unsigned char q[64], *p = q;
	put_msg(&p, 'Q', sleep_sql, sizeof(sleep_sql));
	h_send_all(a, q, (size_t)(p - q));
	struct flood f = {.fd = a};
	f.msgs = flood_messages(&f.len);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, flood_send, &f), 0);
	usleep(1500 * 1000);
	cr_expect(!atomic_load(&f.done),
		  "48 MB of queries all went into corral while its server slept");
	double cpu = settled_cpu(c, 1.0, 30.0);
	long grown = rss_kb(c->pid) - rss0;
	cr_log_info("flood behind a busy server: corral grew %ld kB, %.2f s CPU in 1 s", grown,
		    cpu);
	cr_expect_lt(cpu, 0.5, "corral used %.2f s of CPU in 1 s while a server was busy", cpu);
	cr_expect_lt(grown, rss_limit(c, 8 * 1024L),
		     "corral grew by %ld kB while a server was busy", grown);
	h_expect_value(b, "select 'B-during'", "B-during");

	bool closed;
	int got = count_ready(a, FLOOD_QUERIES + 1, 180.0, &closed);
	cr_expect_eq(got, FLOOD_QUERIES + 1, "A got %d of %d answers (closed: %d)\n%s", got,
		     FLOOD_QUERIES + 1, closed, h_corral_log_tail(c));
	pthread_join(th, NULL);
	cr_expect_eq(f.err, 0, "A's sender: %s", strerror(f.err));
	h_expect_value(b, "select 'B-after'", "B-after");
	close(a);
	free(f.msgs);
	scene_close(&sc);
}

/*
 * A client that reads an 8 MB result in sips (16 KB, then a pause): reading its
 * server stops and resumes many times (each time the output drains to half), every
 * row arrives whole and in order, and B is served throughout.
 */
Test(attack17, client_sipping_a_big_result_gets_all_of_it, .timeout = 180)
{
	struct scene sc = trust_scene();
	struct h_corral *c = sc.c;
	PGconn *b = sc.b;
	int a = h_raw_login(c->port, NULL);
	enum { ROWS = 8000, WIDTH = 1000 };
	char *sql = h_printf("select lpad(i::text, %d, '.') from generate_series(1, %d) i", WIDTH,
			     ROWS);
	unsigned char q[128], *p = q;
	put_msg(&p, 'Q', sql, strlen(sql) + 1);
	h_send_all(a, q, (size_t)(p - q));
	static unsigned char buf[1 << 16];
	size_t have = 0;
	int rows = 0, sips = 0;
	bool ready = false, bad = false;
	double end = h_now() + 120.0;
	while (!ready && !bad && h_now() < end) {
		ssize_t n = recv(a, buf + have,
				 16 * 1024 < sizeof buf - have ? 16 * 1024 : sizeof buf - have, 0);
		cr_assert_gt(n, 0, "recv: %zd (%s) after %d rows", n, strerror(errno), rows);
		have += (size_t)n;
		size_t off = 0;
		while (have - off >= 5) {
			uint32_t len = h_be32(buf + off + 1);
			if (have - off < 1 + (size_t)len)
				break;
			if (buf[off] == 'D') {
				/* one column: int16 count, int32 length, the value */
				char want[16];
				int wl = snprintf(want, sizeof want, "%d", rows + 1);
				const unsigned char *v = buf + off + 11;
				if (h_be32(buf + off + 7) != WIDTH ||
				    memcmp(v + WIDTH - wl, want, (size_t)wl) != 0)
					bad = true;
				rows++;
			} else if (buf[off] == 'Z') {
				ready = true;
			} else if (buf[off] == 'E') {
				bad = true;
			}
			off += 1 + len;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		if (++sips % 64 == 0)
			h_expect_value(b, "select 'B-meanwhile'", "B-meanwhile");
		usleep(2000);
	}
	cr_log_info("sipping: %d sips", sips);
	cr_expect(ready && !bad, "ready %d, bad %d, %d rows of %d", ready, bad, rows, ROWS);
	cr_expect_eq(rows, ROWS);
	close(a);
	free(sql);
	scene_close(&sc);
}
