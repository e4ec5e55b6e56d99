/*
 * unsafe: the function of the safety tests (tests/integration/test_fn_safety.c).  It does
 * on request what a function must not get away with, and reports what it could see:
 *
 *   ?sleeper=1       forks a "sleep 60", logs "sleeper_pid=PID", then sleeps past any
 *                    timeout: the sleeper must die with the environment
 *   ?environ=1       answers with /proc/self/environ (NULs as '\n'), a line "--", then
 *                    environ (what getenv sees), one variable a line
 *   ?find=A&then=B   scans its own readable memory (/proc/self/maps, /proc/self/mem) for
 *                    A immediately followed by B, and answers {"found":true|false}; the
 *                    two halves come apart so that the request itself never holds A+B
 *   ?header=NAME     sets header NAME: 1 (framing headers the runner must not pass on)
 *   ?print=N         writes N bytes of 'x' and a control character to stdout, then a line
 *                    to stderr ("stderr line"), as a careless function would
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "functions/corral_fn.h"
#include "functions/fn_event.h"

CORRAL_FN_ABI();

static char *query(struct fn_json doc, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "queryStringParameters.%s", name);
	return fn_json_cstr(fn_json_path(doc, path));
}

static int sleeper(struct fn_ctx *ctx)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	fn_log(ctx, "sleeper_pid=%d", (int)pid);
	struct timespec ts = {60, 0};
	nanosleep(&ts, NULL);
	return FN_OK;
}

static int environ_answer(struct fn_response *resp)
{
	char buf[16384];
	size_t len = 0;
	int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n;
		while (len < sizeof(buf) - 1 &&
		       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)n;
		close(fd);
	}
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			buf[i] = '\n';
	fn_response_content_type(resp, "text/plain");
	int rc = fn_response_printf(resp, "%.*s--\n", (int)len, buf);
	for (char **e = environ; rc == FN_OK && e && *e; e++)
		rc = fn_response_printf(resp, "%s\n", *e);
	return rc;
}

/* Whether a then b lies in one readable mapping of this process. */
static bool memory_holds(const char *a, const char *b)
{
	size_t al = strlen(a), bl = strlen(b);
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	bool found = false;
	char line[512];
	while (maps && mem >= 0 && !found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
			continue;
		if (strstr(line, "[vvar]") || strstr(line, "[vsyscall]"))
			continue;
		if (hi - lo > (1UL << 32)) /* ASan's shadow: terabytes of zero pages */
			continue;
		static char chunk[1 << 20];
		for (unsigned long at = lo; at < hi && !found;) {
			size_t want = hi - at < sizeof(chunk) ? hi - at : sizeof(chunk);
			ssize_t n = pread(mem, chunk, want, (off_t)at);
			if (n <= 0)
				break;
			for (ssize_t i = 0; i + (ssize_t)(al + bl) <= n; i++) {
				if (chunk[i] == a[0] && memcmp(chunk + i, a, al) == 0 &&
				    memcmp(chunk + i + al, b, bl) == 0) {
					found = true;
					break;
				}
			}
			/* overlap: a match across two chunks is not lost */
			at += (size_t)n > al + bl ? (size_t)n - (al + bl) : (size_t)n;
		}
	}
	if (maps)
		fclose(maps);
	if (mem >= 0)
		close(mem);
	return found;
}

int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx)
{
	struct fn_json doc = fn_json_parse(ev->json, ev->len);
	char *v;
	if ((v = query(doc, "sleeper"))) {
		free(v);
		return sleeper(ctx);
	}
	if ((v = query(doc, "environ"))) {
		free(v);
		return environ_answer(resp);
	}
	char *a = query(doc, "find"), *b = query(doc, "then");
	if (a && b) {
		bool found = memory_holds(a, b);
		free(a);
		free(b);
		return fn_response_printf(resp, "{\"found\":%s}", found ? "true" : "false");
	}
	free(a);
	free(b);
	if ((v = query(doc, "header"))) {
		fn_response_header(resp, v, "1");
		free(v);
	}
	if ((v = query(doc, "print"))) {
		long n = atol(v);
		free(v);
		for (long i = 0; i < n; i++)
			putchar('x');
		printf("\x1b[31m\n");
		fflush(stdout);
		fprintf(stderr, "stderr line\n");
	}
	return fn_response_printf(resp, "{\"ok\":true}");
}
