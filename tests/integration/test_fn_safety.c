/*
 * corral-fn keeps a function to itself (issue 11): what it forks dies with its
 * environment; it sees only its own environment variables and none of the other
 * functions' configuration.  tests/functions/unsafe.c is the function that tries.  No
 * database: the runner alone (h_fn_start with no corral).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"
#include "tests/integration/harness_fn.h"

TestSuite(fn_safety, H_SUITE);

/* [function.name] running tests/functions/unsafe.c, then more. */
static char *unsafe_as(const char *name, const char *more)
{
	return h_printf("[function.%s]\nso = %s/test-functions/unsafe.so\n%s", name, h_fn_bindir(),
			more ? more : "");
}

/* A live process: /proc/PID/stat exists and its state is not Z (a zombie is dead, only
 * not yet collected by whoever inherited it). */
static bool process_alive(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

Test(fn_safety, timeout_kills_what_the_function_forked)
{
	char *cfg = unsafe_as("unsafe", "timeout = 1\n");
	struct h_fn *f = h_fn_start(NULL, cfg);
	free(cfg);

	struct h_http r = h_fn_http(f, "GET", "/fn/unsafe?sleeper=1", NULL, NULL);
	cr_expect_eq(r.status, 504, "timed out: %d %s", r.status, r.body ? r.body : r.error);
	h_http_free(&r);
	char *pid_text = h_fn_log_value(f, "sleeper_pid=", "msg");
	cr_assert(pid_text, "no sleeper_pid in the log:\n%s", h_fn_log_tail(f));
	const char *eq = strstr(pid_text, "sleeper_pid=");
	pid_t pid = eq ? (pid_t)atoi(eq + strlen("sleeper_pid=")) : 0;
	free(pid_text);
	cr_assert_gt(pid, 0);
	bool alive = true;
	for (int i = 0; i < 200 && (alive = process_alive(pid)); i++)
		usleep(10 * 1000);
	if (alive)
		kill(pid, SIGKILL); /* not left behind by a failed test */
	cr_expect(!alive, "the sleeper %d outlived its environment", (int)pid);
	h_fn_stop(f);
}

/*
 * Two functions, one corral-fn: "other" holds secrets in its DATABASE_URL and an env.
 * variable, the runner holds one in its own environment.  "unsafe" sees its own
 * variables and none of those, in /proc/self/environ, in environ, or anywhere in its
 * memory (a copy of the runner's at fork).  Each secret is two halves that the request
 * names apart, so the request itself never holds one whole.
 */
Test(fn_safety, a_function_sees_only_its_own_configuration)
{
	char half1[64], half2[64], env1[64], env2[64], run1[64], run2[64];
	snprintf(half1, sizeof half1, "dbsecret%dA", (int)getpid());
	snprintf(half2, sizeof half2, "Zq%dxdb", (int)getpid() * 7);
	snprintf(env1, sizeof env1, "envsecret%dB", (int)getpid());
	snprintf(env2, sizeof env2, "Yw%dxenv", (int)getpid() * 11);
	snprintf(run1, sizeof run1, "runsecret%dC", (int)getpid());
	snprintf(run2, sizeof run2, "Xv%dxrun", (int)getpid() * 13);
	char *run_secret = h_printf("%s%s", run1, run2);
	setenv("CORRAL_TEST_RUNNER_SECRET", run_secret, 1); /* corral-fn inherits it */
	/* a scan of its whole memory takes seconds under ASan */
	char *mine = unsafe_as("unsafe", "timeout = 30\nenv.MY_SETTING = mine-42\n");
	char *other = h_printf("%s"
			       "database_url = postgresql://u:%s%s@127.0.0.1:1/db\n"
			       "env.API_KEY = %s%s\n",
			       "", half1, half2, env1, env2);
	char *other_fn = unsafe_as("other", other);
	char *cfg = h_printf("database_url = postgresql://mine@127.0.0.1:1/db\n%s%s", mine,
			     other_fn);
	struct h_fn *f = h_fn_start(NULL, cfg);
	free(cfg);
	free(mine);
	free(other);
	free(other_fn);
	unsetenv("CORRAL_TEST_RUNNER_SECRET");

	struct h_http r = h_fn_http(f, "GET", "/fn/unsafe?environ=1", NULL, NULL);
	cr_assert_eq(r.status, 200, "%d %s", r.status, r.body ? r.body : r.error);
	cr_expect(strstr(r.body, "\nMY_SETTING=mine-42\n"), "own variable missing:\n%s", r.body);
	cr_expect(strstr(r.body, "\nDATABASE_URL=postgresql://mine@127.0.0.1:1/db\n"),
		  "own DATABASE_URL missing:\n%s", r.body);
	cr_expect(strstr(r.body, "\nCORRAL_FN_NAME=unsafe\n"), "CORRAL_FN_NAME missing:\n%s",
		  r.body);
	const char *const secrets[] = {half1, env1, run1, "CORRAL_TEST_RUNNER_SECRET", "API_KEY"};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		cr_expect(!strstr(r.body, secrets[i]), "%s is visible:\n%s", secrets[i], r.body);
	/* nothing but its own three lines after "--" */
	const char *own = strstr(r.body, "--\n");
	int lines = 0;
	for (const char *p = own; p && (p = strchr(p + 3 * (p == own), '\n')); p++)
		lines++;
	cr_expect_eq(lines, 3, "environ holds more than its own:\n%s", r.body);
	h_http_free(&r);

	const char *pairs[][2] = {{half1, half2}, {env1, env2}, {run1, run2}};
	for (size_t i = 0; i < 3; i++) {
		char *path = h_printf("/fn/unsafe?find=%s&then=%s", pairs[i][0], pairs[i][1]);
		r = h_fn_http(f, "GET", path, NULL, NULL);
		cr_expect_eq(r.status, 200, "%d %s", r.status, r.body ? r.body : r.error);
		cr_expect(r.body && strstr(r.body, "\"found\":false"),
			  "%s%s is in the function's memory: %s", pairs[i][0], pairs[i][1],
			  r.body ? r.body : r.error);
		h_http_free(&r);
		free(path);
	}
	/* the scan itself works: the function's own variable is found */
	r = h_fn_http(f, "GET", "/fn/unsafe?find=MY_SETTING=&then=mine-42", NULL, NULL);
	cr_expect(r.body && strstr(r.body, "\"found\":true"), "scan finds nothing: %s",
		  r.body ? r.body : r.error);
	h_http_free(&r);
	free(run_secret);
	h_fn_stop(f);
}

/* exec_environments = no: the fork alone still replaces the environment (the memory is
 * exec's to guarantee, see the test above). */
Test(fn_safety, a_forked_environment_gets_only_its_own_variables)
{
	setenv("CORRAL_TEST_RUNNER_SECRET", "forksecret", 1);
	char *cfg = h_printf("exec_environments = no\n"
			     "[function.unsafe]\nso = %s/test-functions/unsafe.so\nenv.MINE = 1\n"
			     "[function.other]\nso = %s/test-functions/unsafe.so\nenv.THEIRS = 2\n",
			     h_fn_bindir(), h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, cfg);
	free(cfg);
	unsetenv("CORRAL_TEST_RUNNER_SECRET");
	struct h_http r = h_fn_http(f, "GET", "/fn/unsafe?environ=1", NULL, NULL);
	cr_assert_eq(r.status, 200, "%d %s", r.status, r.body ? r.body : r.error);
	const char *own = strstr(r.body, "--\n");
	cr_assert(own, "%s", r.body);
	cr_expect_str_eq(own, "--\nCORRAL_FN_NAME=unsafe\nMINE=1\n");
	cr_expect(!strstr(r.body, "forksecret") && !strstr(r.body, "THEIRS"), "%s", r.body);
	h_http_free(&r);
	h_fn_stop(f);
}

/* Another function's invocation in flight when an environment starts: its event (a
 * secret in the body) is nowhere in the new environment's memory. */
Test(fn_safety, another_invocations_event_is_not_in_a_new_environment)
{
	char *cfg = h_printf("[function.other]\nso = %s/test-functions/probe.so\ntimeout = 10\n"
			     "[function.unsafe]\nso = %s/test-functions/unsafe.so\ntimeout = 30\n",
			     h_fn_bindir(), h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, cfg);
	free(cfg);

	char a[64], b[64];
	snprintf(a, sizeof a, "evsecret%dD", (int)getpid());
	snprintf(b, sizeof b, "Uu%dxev", (int)getpid() * 17);
	char *body = h_printf("{\"card\":\"%s%s\"}", a, b);
	struct h_http_bg *bg = h_http_start(f->port, "POST", "/fn/other?sleep_ms=3000", NULL, body,
					    30.0);
	cr_assert(h_fn_wait_children(f, 1, false, 5.0), "other's environment never started");
	usleep(300 * 1000); /* its event is in the runner, sent to the environment */
	char *path = h_printf("/fn/unsafe?find=%s&then=%s", a, b);
	struct h_http r = h_fn_http(f, "GET", path, NULL, NULL);
	cr_expect_eq(r.status, 200, "%d %s", r.status, r.body ? r.body : r.error);
	cr_expect(r.body && strstr(r.body, "\"found\":false"), "the other event is readable: %s",
		  r.body ? r.body : r.error);
	h_http_free(&r);
	r = h_http_join(bg);
	cr_expect_eq(r.status, 200, "other: %d %s", r.status, r.error);
	cr_expect(r.body && strstr(r.body, a), "other got its event: %s",
		  r.body ? r.body : r.error);
	h_http_free(&r);
	free(path);
	free(body);
	h_fn_stop(f);
}

/* ---- the HTTP listener (fn_http_guard.c) ---- */

/* A TCP connection to corral-fn's port, blocking; -1 if refused. */
static int connect_fn(const struct h_fn *f)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Whether the peer has closed fd (EOF or reset) within ms. */
static bool closed_within(int fd, int ms)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	if (poll(&pfd, 1, ms) <= 0)
		return false;
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	return n <= 0;
}

/* utime + stime of pid in clock ticks. */
static long long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	/* fields after comm: state is 3; utime 14, stime 15 */
	for (int field = 2; p && field < 13; field++)
		p = strchr(p + 1, ' ');
	long long ut = 0, st = 0;
	if (!p || sscanf(p + 1, "%lld %lld", &ut, &st) != 2)
		return -1;
	return ut + st;
}

static int open_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* A client that sends its request a byte a second is cut off at request_timeout, where
 * evhttp's per-read timeout alone would keep it forever. */
Test(fn_safety, slow_loris_is_cut_off_at_request_timeout)
{
	char *cfg = h_printf("request_timeout = 2\n%s", "[function.unsafe]\nso = ");
	char *full = h_printf("%s%s/test-functions/unsafe.so\n", cfg, h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, full);
	free(cfg);
	free(full);

	int fd = connect_fn(f);
	cr_assert_geq(fd, 0);
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n\r\n";
	double start = h_now();
	bool closed = false;
	for (size_t i = 0; req[i] && !closed; i++) {
		if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1)
			closed = true;
		else
			closed = closed_within(fd, 1000);
	}
	double secs = h_now() - start;
	close(fd);
	cr_expect(closed, "the slow client was never cut off");
	cr_expect(secs < 5.0, "cut off after %.1f s (request_timeout = 2)", secs);
	cr_expect(h_fn_wait_log(f, "event=http_request_timeout", 2.0), "no log line:\n%s",
		  h_fn_log_tail(f));
	/* a normal request still works */
	struct h_http r = h_fn_http(f, "GET", "/healthz", NULL, NULL);
	cr_expect_eq(r.status, 200);
	h_http_free(&r);
	h_fn_stop(f);
}

/* Out of descriptors, the listener rests instead of failing accept() in a loop: little
 * CPU meanwhile, one warning, and it serves again once descriptors are back. */
Test(fn_safety, descriptor_exhaustion_pauses_the_listener)
{
	char *full = h_printf(
		"request_timeout = 30\n[function.unsafe]\nso = %s/test-functions/unsafe.so\n",
		h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, full);
	free(full);

	int have = open_fds(f->pid);
	cr_assert_gt(have, 0);
	struct rlimit old;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	cr_assert_eq(prlimit(f->pid, RLIMIT_NOFILE, NULL, &old), 0);
	/* the soft limit only: a hard one could not be raised back */
	struct rlimit low = {(rlim_t)have + 8, old.rlim_max};
	cr_assert_eq(prlimit(f->pid, RLIMIT_NOFILE, &low, &old), 0, "prlimit: %s", strerror(errno));
	enum { N = 40 };
	int fds[N];
	for (int i = 0; i < N; i++)
		fds[i] = connect_fn(f); /* the kernel's backlog takes what corral-fn cannot */
	usleep(500 * 1000);
	long long before = cpu_ticks(f->pid);
	sleep(3);
	long long after = cpu_ticks(f->pid);
	long hz = sysconf(_SC_CLK_TCK);
	cr_expect(before >= 0 && after - before < hz / 4,
		  "corral-fn used %lld ticks (of %ld a second) in 3 s out of descriptors",
		  after - before, hz);
	cr_expect(h_fn_wait_log(f, "event=http_accept_paused", 1.0), "no pause logged:\n%s",
		  h_fn_log_tail(f));
	const char *const paused[] = {"event=http_accept_paused", NULL};
	cr_expect_eq(h_fn_log_lines(f, paused), 1, "the pause is logged once per episode:\n%s",
		     h_fn_log_tail(f));
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	cr_assert_eq(prlimit(f->pid, RLIMIT_NOFILE, &old, NULL), 0);
	usleep(500 * 1000);
	struct h_http r = h_fn_http(f, "GET", "/healthz", NULL, NULL);
	cr_expect_eq(r.status, 200, "serves again: %d %s", r.status, r.error);
	h_http_free(&r);
	h_fn_stop(f);
}

/* Past max_connections a connection is closed at once, unanswered. */
Test(fn_safety, connections_beyond_max_connections_are_refused)
{
	char *full = h_printf(
		"max_connections = 3\n[function.unsafe]\nso = %s/test-functions/unsafe.so\n",
		h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, full);
	free(full);

	usleep(200 * 1000); /* the harness's own probe of the port is closed */
	int held[3];
	for (int i = 0; i < 3; i++)
		held[i] = connect_fn(f);
	usleep(200 * 1000);
	int extra = connect_fn(f);
	cr_assert_geq(extra, 0);
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	(void)send(extra, req, strlen(req), MSG_NOSIGNAL);
	cr_expect(closed_within(extra, 2000), "a 4th connection was served");
	close(extra);
	cr_expect(h_fn_wait_log(f, "event=http_connection_refused", 1.0), "%s", h_fn_log_tail(f));
	for (int i = 0; i < 3; i++)
		if (held[i] >= 0)
			close(held[i]);
	usleep(200 * 1000);
	struct h_http r = h_fn_http(f, "GET", "/healthz", NULL, NULL);
	cr_expect_eq(r.status, 200);
	h_http_free(&r);
	h_fn_stop(f);
}

/* ---- what a function writes ---- */

/* Headers that frame the answer are the runner's: a function's are dropped, logged. */
Test(fn_safety, framing_headers_of_a_function_are_dropped)
{
	char *full = h_printf("[function.unsafe]\nso = %s/test-functions/unsafe.so\n",
			      h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, full);
	free(full);

	const char *names[] = {"Content-Length", "Transfer-Encoding", "Connection"};
	for (size_t i = 0; i < 3; i++) {
		char *path = h_printf("/fn/unsafe?header=%s", names[i]);
		struct h_http r = h_fn_http(f, "GET", path, NULL, NULL);
		cr_expect_eq(r.status, 200, "%s: %d %s", names[i], r.status, r.error);
		cr_expect_str_eq(r.body ? r.body : "", "{\"ok\":true}");
		char *v = h_http_header(&r, names[i]);
		if (i == 0)
			cr_expect(v && strcmp(v, "11") == 0, "Content-Length: %s",
				  v ? v : "(none)");
		else
			cr_expect(!v || strcmp(v, "1") != 0, "%s: 1 went through:\n%s", names[i],
				  r.head);
		free(v);
		h_http_free(&r);
		free(path);
	}
	const char *const dropped[] = {"event=fn_header_dropped", "function=unsafe", NULL};
	cr_expect(h_fn_wait_log_lines(f, dropped, 3, 2.0), "%s", h_fn_log_tail(f));
	h_fn_stop(f);
}

/* The runner log's whole text. */
static char *read_log(const struct h_fn *f, size_t *len)
{
	FILE *in = fopen(f->log, "rb");
	cr_assert(in);
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	for (;;) {
		if (*len + 4096 + 1 > cap) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
			cr_assert(buf);
		}
		size_t n = fread(buf + *len, 1, 4096, in);
		*len += n;
		if (n == 0)
			break;
	}
	fclose(in);
	buf[*len] = '\0';
	return buf;
}

/* stdout and stderr become fn_log lines: escaped, cut at 4 KB, never raw in the log. */
Test(fn_safety, function_output_is_logged_escaped_and_bounded)
{
	char *full = h_printf("[function.unsafe]\nso = %s/test-functions/unsafe.so\n",
			      h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, full);
	free(full);

	struct h_http r = h_fn_http(f, "GET", "/fn/unsafe?print=10", NULL, NULL);
	cr_expect_eq(r.status, 200);
	h_http_free(&r);
	r = h_fn_http(f, "GET", "/fn/unsafe?print=10000", NULL, NULL);
	cr_expect_eq(r.status, 200);
	h_http_free(&r);
	const char *const err[] = {"event=fn_log", "stream=output", "msg=\"stderr line\"", NULL};
	cr_expect(h_fn_wait_log_lines(f, err, 2, 3.0), "stderr not logged:\n%s", h_fn_log_tail(f));
	const char *const cut[] = {"event=fn_log", "stream=output", "truncated=true", NULL};
	cr_expect(h_fn_wait_log_lines(f, cut, 1, 3.0), "no cut line:\n%s", h_fn_log_tail(f));

	size_t len;
	char *log = read_log(f, &len);
	cr_expect(!memchr(log, 0x1b, len), "a raw escape character reached the runner's log");
	cr_expect(strstr(log, "msg=\"xxxxxxxxxx\\x1b[31m\""), "escaped line missing:\n%s",
		  h_fn_log_tail(f));
	/* every line of the log is bounded: 4096 characters escaped at most 4 each, plus keys */
	size_t longest = 0;
	for (char *p = log, *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p) - 1;
		if ((size_t)(nl - p) > longest)
			longest = (size_t)(nl - p);
	}
	cr_expect(longest < 4096 + 300, "a log line of %zu characters", longest);
	free(log);
	h_fn_stop(f);
}

/* ---- auth_token_file ---- */

Test(fn_safety, bearer_token_guards_invocations_and_metrics)
{
	char path[] = "/tmp/corral-fn-token.XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char *token = "s3cr3t-Token_42";
	cr_assert_eq(write(fd, "s3cr3t-Token_42\n", 16), 16);
	close(fd);
	char *full = h_printf(
		"auth_token_file = %s\n[function.unsafe]\nso = %s/test-functions/unsafe.so\n", path,
		h_fn_bindir());
	struct h_fn *f = h_fn_start(NULL, full);
	free(full);
	unlink(path); /* read at start, not kept */

	const char *routes[][2] = {
		{"GET", "/fn/unsafe"},
		{"POST", "/2015-03-31/functions/unsafe/invocations"},
		{"GET", "/metrics"},
	};
	char *good = h_printf("Authorization: Bearer %s", token);
	const char *bad[] = {NULL, "Authorization: Bearer s3cr3t-Token_4",
			     "Authorization: Bearer s3cr3t-Token_43",
			     "Authorization: Basic czNjcjN0", "Authorization: Bearer "};
	for (size_t i = 0; i < 3; i++) {
		const char *body = routes[i][0][0] == 'P' ? "{}" : NULL;
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			struct h_http r = h_fn_http(f, routes[i][0], routes[i][1], bad[j], body);
			cr_expect_eq(r.status, 401, "%s %s with %s: %d", routes[i][0], routes[i][1],
				     bad[j] ? bad[j] : "no header", r.status);
			h_http_free(&r);
		}
		struct h_http r = h_fn_http(f, routes[i][0], routes[i][1], good, body);
		cr_expect_eq(r.status, 200, "%s %s with the token: %d %s", routes[i][0],
			     routes[i][1], r.status, r.body ? r.body : r.error);
		h_http_free(&r);
	}
	struct h_http r = h_fn_http(f, "GET", "/healthz", NULL, NULL);
	cr_expect_eq(r.status, 200, "/healthz stays open for liveness probes");
	h_http_free(&r);
	free(good);
	h_fn_stop(f);
}
