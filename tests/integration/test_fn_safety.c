/*
 * corral-fn keeps a function to itself (issue 11): what it forks dies with its
 * environment; it sees only its own environment variables and none of the other
 * functions' configuration.  tests/functions/unsafe.c is the function that tries.  No
 * database: the runner alone (h_fn_start with no corral).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	char *mine = unsafe_as("unsafe", "env.MY_SETTING = mine-42\n");
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
