/*
 * functions/runner/fn_host.c and fn_env.c: real environments.  Each test compiles a tiny
 * function from the C source below with the system compiler into a temp dir, spawns it
 * and checks what the runner would see: cold then warm, logs, a segfault, a memory limit,
 * a function error, a timeout, ABI mismatches, shutdown by message and by SIGTERM, and the
 * event-driven calls the runner uses with libevent.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "functions/corral_fn.h"
#include "functions/runner/fn_host.h"

/* ---- building test functions --------------------------------------------------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/corral-fn-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (tmpdir[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Compiles src into tmpdir/name.so against functions/corral_fn.h; returns its path. */
static const char *build_fn(const char *name, const char *src)
{
	static char so[512];
	char c[512], cmd[2048], root[512];
	cr_assert_not_null(getcwd(root, sizeof(root)));
	struct stat st;
	cr_assert_eq(stat("functions/corral_fn.h", &st), 0, "run the unit tests from the repository root");
	snprintf(c, sizeof(c), "%s/%s.c", tmpdir, name);
	snprintf(so, sizeof(so), "%s/%s.so", tmpdir, name);
	FILE *f = fopen(c, "w");
	cr_assert_not_null(f);
	fputs(src, f);
	fclose(f);
	const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
	snprintf(cmd, sizeof(cmd),
		 "%s -std=c11 -D_GNU_SOURCE -O0 -Wall -Werror -fPIC -shared -I'%s' -o '%s' '%s'", cc,
		 root, so, c);
	cr_assert_eq(system(cmd), 0, "compiling %s failed: %s", name, cmd);
	return so;
}

static void spawn(struct fn_host *h, const char *so, const char *dsn, uint32_t memory_mb)
{
	struct fn_host_config cfg = {
		.so_path = so, .function_name = "testfn", .dsn = dsn, .memory_limit_mb = memory_mb};
	char err[256];
	cr_assert(fn_host_spawn(&cfg, h, err, sizeof(err)), "spawn: %s", err);
	cr_assert_gt(h->pid, 0);
	cr_assert_geq(h->fd, 0);
}

static enum fn_outcome invoke(struct fn_host *h, const char *id, const char *event, usec_t timeout,
			      struct fn_invocation *inv)
{
	return fn_host_invoke(h, id, timeout, event, strlen(event), inv);
}

static bool body_has(const struct fn_invocation *inv, const char *needle)
{
	return inv->result.u.result.body && strstr(inv->result.u.result.body, needle);
}

static const char *header(const struct fn_result *r, const char *want)
{
	size_t pos = 0;
	const char *name, *value;
	while (fn_result_header(r, &pos, &name, &value))
		if (strcmp(name, want) == 0)
			return value;
	return NULL;
}

#define SEC USEC_PER_SEC

/* ---- functions under test ------------------------------------------------------------ */

static const char counter_src[] =
	"#include <stdlib.h>\n"
	"#include <unistd.h>\n"
	"#include \"functions/corral_fn.h\"\n"
	"CORRAL_FN_ABI();\n"
	"static int inits, calls;\n"
	"int fn_init(struct fn_ctx *ctx) {\n"
	"	inits++;\n"
	"	fn_log(ctx, \"init %s dsn=%s env=%s\", ctx->function_name, ctx->dsn, getenv(\"DATABASE_URL\"));\n"
	"	ctx->user = &calls;\n"
	"	return FN_OK;\n"
	"}\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	int *n = ctx->user;\n"
	"	(*n)++;\n"
	"	fn_log(ctx, \"handling %s\\n\", ctx->request_id);\n"
	"	int64_t left = ctx->remaining_ms(ctx);\n"
	"	resp->status = 201;\n"
	"	if (fn_response_header(resp, \"X-Calls\", \"yes\") != FN_OK) return fn_fail(resp, \"header\");\n"
	"	if (fn_response_header(resp, \"Bad\\r\\nInjected\", \"x\") == FN_OK) return fn_fail(resp, \"injection\");\n"
	"	return fn_response_printf(resp, \"{\\\"calls\\\":%d,\\\"inits\\\":%d,\\\"pid\\\":%d,\"\n"
	"		\"\\\"left_ok\\\":%d,\\\"deadline_ok\\\":%d,\\\"event\\\":%s}\", calls, inits, (int)getpid(),\n"
	"		left > 0 && left <= 5000, ctx->deadline_ms > 1600000000000LL, ev->json);\n"
	"}\n";

static const char crash_src[] =
	"#include <string.h>\n"
	"#include \"functions/corral_fn.h\"\n"
	"CORRAL_FN_ABI();\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	if (strstr(ev->json, \"crash\")) {\n"
	"		fn_log(ctx, \"about to crash\");\n"
	"		int *volatile p = 0;\n"
	"		*p = 42;\n"
	"	}\n"
	"	return fn_response_printf(resp, \"fine\");\n"
	"}\n";

/* Allocates the MB the event asks for ({"mb":N}), touching every page. */
static const char hog_src[] =
	"#include <stdlib.h>\n"
	"#include <string.h>\n"
	"#include \"functions/corral_fn.h\"\n"
	"CORRAL_FN_ABI();\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	const char *p = strstr(ev->json, \"\\\"mb\\\":\");\n"
	"	size_t mb = p ? strtoul(p + 5, NULL, 10) : 0;\n"
	"	char *mem = malloc(mb << 20);\n"
	"	if (!mem) return fn_fail(resp, \"malloc(%zu MB) failed\", mb);\n"
	"	memset(mem, 1, mb << 20);\n"
	"	free(mem);\n"
	"	return fn_response_printf(resp, \"{\\\"mb\\\":%zu,\\\"limit\\\":%u}\", mb, ctx->memory_limit_mb);\n"
	"}\n";

static const char error_src[] =
	"#include \"functions/corral_fn.h\"\n"
	"CORRAL_FN_ABI();\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	if (ev->json[0] == '1') return fn_fail(resp, \"database is down: %s\", \"connection refused\");\n"
	"	if (ev->json[0] == '2') return 7;\n"
	"	if (ev->json[0] == '3') { strcpy(resp->content_type, \"text/html\\r\\nSet-Cookie: x\"); return FN_OK; }\n"
	"	if (ev->json[0] == '4') { resp->status = 1000; return FN_OK; }\n"
	"	if (ev->json[0] == '5') return fn_response_error(resp, 400, \"bad \\\"input\\\"\");\n"
	"	return fn_response_printf(resp, \"ok\");\n"
	"}\n";

static const char sleepy_src[] =
	"#include <unistd.h>\n"
	"#include \"functions/corral_fn.h\"\n"
	"CORRAL_FN_ABI();\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	sleep(30);\n"
	"	return FN_OK;\n"
	"}\n";

static const char wrong_abi_src[] =
	"#include <stdint.h>\n"
	"#include \"functions/corral_fn.h\"\n"
	"uint32_t corral_fn_abi_version(void) { return 99; }\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	return FN_OK;\n"
	"}\n";

static const char no_abi_src[] =
	"#include \"functions/corral_fn.h\"\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	return FN_OK;\n"
	"}\n";

static const char init_fails_src[] =
	"#include \"functions/corral_fn.h\"\n"
	"CORRAL_FN_ABI();\n"
	"int fn_init(struct fn_ctx *ctx) {\n"
	"	fn_log(ctx, \"cannot connect to %s\", ctx->dsn);\n"
	"	return FN_ERROR;\n"
	"}\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	return FN_OK;\n"
	"}\n";

/* fn_shutdown leaves a file named by the DSN, so the test can see it ran. */
static const char shutdown_src[] =
	"#include <stdio.h>\n"
	"#include \"functions/corral_fn.h\"\n"
	"CORRAL_FN_ABI();\n"
	"int fn_handle(const struct fn_event *ev, struct fn_response *resp, struct fn_ctx *ctx) {\n"
	"	return fn_response_write(resp, ev->json, ev->len);\n"
	"}\n"
	"void fn_shutdown(struct fn_ctx *ctx) {\n"
	"	fn_log(ctx, \"bye\");\n"
	"	FILE *f = fopen(ctx->dsn, \"w\");\n"
	"	if (f) { fputs(\"shut down\", f); fclose(f); }\n"
	"}\n";

/* ---- tests ----------------------------------------------------------------------------- */

/* Each test builds its functions in a temp dir of its own. */
#define HOST_TEST(name) Test(fn_host, name, .init = make_tmpdir, .fini = remove_tmpdir, .timeout = 60)

HOST_TEST(cold_then_warm)
{
	struct fn_host h;
	spawn(&h, build_fn("counter", counter_src), "postgresql://u@127.0.0.1:6432/db", 0);
	struct fn_invocation a, b;

	cr_assert_eq(invoke(&h, "req-1", "{\"n\":1}", 5 * SEC, &a), FN_OUTCOME_RESULT, "%s", a.error);
	const struct fn_result *r = &a.result.u.result;
	cr_assert_eq(r->rc, FN_OK, "%s", r->error);
	cr_assert_eq(r->status, 201);
	cr_assert_str_eq(r->content_type, "application/json");
	cr_assert_str_eq(r->request_id, "req-1");
	cr_assert(body_has(&a, "\"calls\":1,\"inits\":1"), "%s", r->body);
	cr_assert(body_has(&a, "\"left_ok\":1,\"deadline_ok\":1,\"event\":{\"n\":1}"), "%s", r->body);
	cr_assert_gt(r->init_usec, 0, "the cold invocation reports Init Duration");
	cr_assert_lt(r->init_usec, 10 * SEC);
	cr_assert_geq(r->duration_usec, 0);
	cr_assert_gt(r->max_rss_kb, 0);
	cr_assert_str_eq(header(r, "X-Calls"), "yes");
	cr_assert_null(header(r, "Bad\r\nInjected"));
	cr_assert_not_null(a.logs);
	cr_assert(strstr(a.logs, "init testfn dsn=postgresql://u@127.0.0.1:6432/db "
				 "env=postgresql://u@127.0.0.1:6432/db\n"), "%s", a.logs);
	cr_assert(strstr(a.logs, "handling req-1\n"), "%s", a.logs);
	cr_assert_null(strstr(a.logs, "req-1\n\n"), "trailing newlines are trimmed");
	cr_assert(h.ready);

	cr_assert_eq(invoke(&h, "req-2", "[]", 5 * SEC, &b), FN_OUTCOME_RESULT, "%s", b.error);
	r = &b.result.u.result;
	cr_assert(body_has(&b, "\"calls\":2,\"inits\":1"), "%s", r->body);
	cr_assert_eq(r->init_usec, 0, "a warm invocation reports no Init Duration");
	cr_assert(strstr(b.logs, "handling req-2"));
	cr_assert_null(strstr(b.logs, "init"), "init logs belong to the cold invocation");
	/* Same process both times. */
	const char *pa = strstr(a.result.u.result.body, "\"pid\":");
	const char *pb = strstr(b.result.u.result.body, "\"pid\":");
	cr_assert_eq(atoi(pa + 6), atoi(pb + 6));
	cr_assert_eq(atoi(pa + 6), h.pid);
	cr_assert_eq(h.invocations, 2);

	fn_invocation_clear(&a);
	fn_invocation_clear(&b);
	fn_host_shutdown(&h, 2 * SEC);
	cr_assert(h.exited);
	cr_assert(WIFEXITED(h.wait_status) && WEXITSTATUS(h.wait_status) == 0);
	fn_host_close(&h);
}

HOST_TEST(segfault_is_seen_as_a_crash)
{
	struct fn_host h;
	spawn(&h, build_fn("crash", crash_src), NULL, 0);
	struct fn_invocation inv;
	cr_assert_eq(invoke(&h, "ok", "{}", 5 * SEC, &inv), FN_OUTCOME_RESULT, "%s", inv.error);
	fn_invocation_clear(&inv);

	cr_assert_eq(invoke(&h, "boom", "\"crash\"", 5 * SEC, &inv), FN_OUTCOME_CRASH);
	cr_assert_str_eq(inv.error, "Runtime exited with error: signal: segmentation fault");
	cr_assert(strstr(inv.logs, "about to crash"), "logs sent before the crash arrive");
	cr_assert(h.exited);
	cr_assert(WIFSIGNALED(h.wait_status));
	cr_assert_eq(WTERMSIG(h.wait_status), SIGSEGV);
	cr_assert(!WCOREDUMP(h.wait_status), "environments dump no core");
	fn_invocation_clear(&inv);

	/* The environment is gone; the next invocation is told so, and a new one works. */
	cr_assert_eq(invoke(&h, "after", "{}", 5 * SEC, &inv), FN_OUTCOME_CRASH);
	fn_invocation_clear(&inv);
	fn_host_close(&h);
	spawn(&h, build_fn("crash", crash_src), NULL, 0);
	cr_assert_eq(invoke(&h, "fresh", "{}", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_gt(inv.result.u.result.init_usec, 0);
	fn_invocation_clear(&inv);
	fn_host_close(&h);
}

HOST_TEST(memory_limit_refuses_allocations)
{
#ifdef __SANITIZE_ADDRESS__
	/* ASan's allocator aborts the process rather than return NULL past RLIMIT_AS. */
	cr_skip_test("the memory limit is not testable under AddressSanitizer");
#endif
	struct fn_host h;
	spawn(&h, build_fn("hog", hog_src), NULL, 64);
	struct fn_invocation inv;

	/* Within the limit: fine, and Max Memory Used shows the pages really touched. */
	cr_assert_eq(invoke(&h, "small", "{\"mb\":24}", 10 * SEC, &inv), FN_OUTCOME_RESULT, "%s",
		     inv.error);
	cr_assert_eq(inv.result.u.result.rc, FN_OK, "%s", inv.result.u.result.error);
	cr_assert(body_has(&inv, "\"mb\":24,\"limit\":64"));
	int64_t rss_after_24 = inv.result.u.result.max_rss_kb;
	cr_assert_geq(rss_after_24, 24 * 1024, "Max Memory Used %lld kB", (long long)rss_after_24);
	fn_invocation_clear(&inv);

	/* Past it: the allocation fails and the function says so. */
	cr_assert_eq(invoke(&h, "big", "{\"mb\":256}", 10 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_ERROR);
	cr_assert_str_eq(inv.result.u.result.error, "malloc(256 MB) failed");
	cr_assert_lt(inv.result.u.result.max_rss_kb, rss_after_24 + 64 * 1024);
	fn_invocation_clear(&inv);

	/* The environment survives a refused allocation. */
	cr_assert_eq(invoke(&h, "again", "{\"mb\":8}", 10 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_OK);
	fn_invocation_clear(&inv);
	fn_host_close(&h);

	/* Without a limit the same 256 MB is fine (the limit above was the cause). */
	spawn(&h, build_fn("hog", hog_src), NULL, 0);
	cr_assert_eq(invoke(&h, "big", "{\"mb\":256}", 20 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_OK, "%s", inv.result.u.result.error);
	cr_assert_geq(inv.result.u.result.max_rss_kb, 256 * 1024);
	fn_invocation_clear(&inv);
	fn_host_close(&h);
}

HOST_TEST(function_errors_keep_the_environment)
{
	struct fn_host h;
	spawn(&h, build_fn("errors", error_src), NULL, 0);
	struct fn_invocation inv;

	cr_assert_eq(invoke(&h, "e1", "1", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_ERROR);
	cr_assert_str_eq(inv.result.u.result.error, "database is down: connection refused");
	fn_invocation_clear(&inv);

	cr_assert_eq(invoke(&h, "e2", "2", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_ERROR);
	cr_assert_str_eq(inv.result.u.result.error, "fn_handle returned 7");
	fn_invocation_clear(&inv);

	cr_assert_eq(invoke(&h, "e3", "3", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_ERROR, "a header injection never reaches the runner");
	cr_assert(strstr(inv.result.u.result.error, "invalid response"));
	cr_assert_eq(inv.result.u.result.body_len, 0);
	fn_invocation_clear(&inv);

	cr_assert_eq(invoke(&h, "e4", "4", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_ERROR);
	cr_assert(strstr(inv.result.u.result.error, "HTTP status"));
	fn_invocation_clear(&inv);

	cr_assert_eq(invoke(&h, "e5", "5", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_OK);
	cr_assert_eq(inv.result.u.result.status, 400);
	cr_assert_str_eq(inv.result.u.result.body, "{\"error\":\"bad \\\"input\\\"\"}");
	cr_assert_str_eq(inv.result.u.result.error, "");
	fn_invocation_clear(&inv);

	/* An event over the limit is refused before it reaches the environment. */
	char *huge = malloc(FN_EVENT_MAX + 1);
	cr_assert_not_null(huge);
	memset(huge, '0', FN_EVENT_MAX + 1);
	cr_assert_eq(fn_host_invoke(&h, "huge", 5 * SEC, huge, FN_EVENT_MAX + 1, &inv),
		     FN_OUTCOME_EVENT_TOO_LARGE);
	free(huge);
	fn_invocation_clear(&inv);

	cr_assert_eq(invoke(&h, "ok", "0", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_eq(inv.result.u.result.rc, FN_OK);
	cr_assert_str_eq(inv.result.u.result.body, "ok");
	fn_invocation_clear(&inv);
	fn_host_close(&h);
}

HOST_TEST(timeout_kills_the_environment)
{
	struct fn_host h;
	spawn(&h, build_fn("sleepy", sleepy_src), NULL, 0);
	struct fn_invocation inv;
	usec_t start = clock_now_usec();
	cr_assert_eq(invoke(&h, "slow", "{}", 300 * 1000, &inv), FN_OUTCOME_TIMEOUT);
	usec_t took = clock_now_usec() - start;
	cr_assert_str_eq(inv.error, "Task timed out after 0.30 seconds");
	cr_assert_lt(took, 5 * SEC, "took %lld us", (long long)took);
	cr_assert(h.exited);
	cr_assert(WIFSIGNALED(h.wait_status) && WTERMSIG(h.wait_status) == SIGKILL);
	fn_invocation_clear(&inv);
	fn_host_close(&h);
}

HOST_TEST(abi_mismatch_is_refused)
{
	struct fn_host h;
	struct fn_invocation inv;
	spawn(&h, build_fn("wrong_abi", wrong_abi_src), NULL, 0);
	cr_assert_eq(invoke(&h, "x", "{}", 5 * SEC, &inv), FN_OUTCOME_INIT_ERROR);
	cr_assert(strstr(inv.error, "built for corral_fn ABI version 99; this runner speaks version 1"),
		  "%s", inv.error);
	cr_assert(h.exited);
	cr_assert(WIFEXITED(h.wait_status) && WEXITSTATUS(h.wait_status) == 1);
	fn_invocation_clear(&inv);
	fn_host_close(&h);

	spawn(&h, build_fn("no_abi", no_abi_src), NULL, 0);
	cr_assert_eq(invoke(&h, "x", "{}", 5 * SEC, &inv), FN_OUTCOME_INIT_ERROR);
	cr_assert(strstr(inv.error, "is not a corral function"), "%s", inv.error);
	fn_invocation_clear(&inv);
	fn_host_close(&h);

	spawn(&h, "/nonexistent/fn.so", NULL, 0);
	cr_assert_eq(invoke(&h, "x", "{}", 5 * SEC, &inv), FN_OUTCOME_INIT_ERROR);
	cr_assert(strstr(inv.error, "cannot load function"), "%s", inv.error);
	fn_invocation_clear(&inv);
	fn_host_close(&h);
}

HOST_TEST(init_failure)
{
	struct fn_host h;
	struct fn_invocation inv;
	spawn(&h, build_fn("init_fails", init_fails_src), "host=nowhere", 0);
	cr_assert_eq(invoke(&h, "x", "{}", 5 * SEC, &inv), FN_OUTCOME_INIT_ERROR);
	/* The function's last line from fn_init says why: the return code alone would not. */
	cr_assert_str_eq(inv.error, "fn_init failed (returned -1): cannot connect to host=nowhere");
	cr_assert(strstr(inv.logs, "cannot connect to host=nowhere"), "%s", inv.logs);
	fn_invocation_clear(&inv);
	fn_host_close(&h);
}

static bool file_says(const char *path, const char *want)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strcmp(buf, want) == 0;
}

HOST_TEST(shutdown_message_and_sigterm_run_fn_shutdown)
{
	char marker[512];
	snprintf(marker, sizeof(marker), "%s/shutdown-marker", tmpdir);
	const char *so = build_fn("shutdown", shutdown_src);
	struct fn_host h;
	struct fn_invocation inv;

	spawn(&h, so, marker, 0);
	cr_assert_eq(invoke(&h, "x", "{\"a\":1}", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	cr_assert_str_eq(inv.result.u.result.body, "{\"a\":1}");
	fn_invocation_clear(&inv);
	fn_host_shutdown(&h, 5 * SEC);
	cr_assert(WIFEXITED(h.wait_status) && WEXITSTATUS(h.wait_status) == 0);
	cr_assert(file_says(marker, "shut down"));
	fn_host_close(&h);
	unlink(marker);

	/* SIGTERM while idle (after READY): fn_shutdown, exit 0, EOF for the runner. */
	spawn(&h, so, marker, 0);
	cr_assert_eq(invoke(&h, "y", "{}", 5 * SEC, &inv), FN_OUTCOME_RESULT);
	fn_invocation_clear(&inv);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	cr_assert(fn_host_reap(&h, true));
	cr_assert(WIFEXITED(h.wait_status) && WEXITSTATUS(h.wait_status) == 0);
	cr_assert(file_says(marker, "shut down"));
	fn_host_close(&h);
}

/* Reads frames the way the runner does: poll the fd, fn_host_read, fn_host_next_frame. */
static enum fn_frame_type next_frame(struct fn_host *h, struct fn_frame *f)
{
	usec_t deadline = clock_now_usec() + 10 * SEC;
	for (;;) {
		const char *why = NULL;
		enum fn_decode_result d = fn_host_next_frame(h, f, &why);
		cr_assert_neq(d, FN_DECODE_ERROR, "%s", why);
		if (d == FN_DECODE_OK)
			return f->type;
		if (h->out.len)
			cr_assert_neq(fn_host_flush(h), FN_HOST_IO_ERROR);
		struct pollfd pfd = {h->fd, (short)(POLLIN | (h->out.len ? POLLOUT : 0)), 0};
		cr_assert_geq(poll(&pfd, 1, 1000), 0);
		cr_assert_lt(clock_now_usec(), deadline, "no frame");
		if (pfd.revents & (POLLIN | POLLHUP))
			cr_assert_eq(fn_host_read(h), FN_HOST_IO_OK, "unexpected EOF");
	}
}

HOST_TEST(event_driven_api_with_a_large_event)
{
	struct fn_host h;
	spawn(&h, build_fn("echo", shutdown_src), "/dev/null", 0);
	struct fn_frame f;
	cr_assert_eq(next_frame(&h, &f), FN_FRAME_READY);
	cr_assert_str_eq(f.u.ready.error, "");
	cr_assert_gt(f.u.ready.init_usec, 0);
	fn_frame_clear(&f);

	/* 3 MB: more than a socket buffer, so the first flush normally stops at PENDING (or
	 * not, when the environment reads fast enough) and next_frame() writes the rest. */
	size_t len = 3u << 20;
	char *event = malloc(len + 1);
	cr_assert_not_null(event);
	event[0] = '"';
	for (size_t i = 1; i < len - 1; i++)
		event[i] = (char)('a' + i % 26);
	event[len - 1] = '"';
	event[len] = '\0';
	cr_assert(fn_host_queue_invoke(&h, "big", clock_now_usec() + 10 * SEC, event, len));
	enum fn_host_io io = fn_host_flush(&h);
	cr_assert(io == FN_HOST_IO_PENDING || io == FN_HOST_IO_OK, "%d", io);
	cr_assert_eq(next_frame(&h, &f), FN_FRAME_RESULT);
	cr_assert_str_eq(f.u.result.request_id, "big");
	cr_assert_eq(f.u.result.body_len, len);
	cr_assert_eq(memcmp(f.u.result.body, event, len), 0);
	cr_assert_gt(f.u.result.init_usec, 0);
	fn_frame_clear(&f);

	cr_assert(fn_host_queue_invoke(&h, "small", clock_now_usec() + 10 * SEC, "1", 1));
	cr_assert_eq(fn_host_flush(&h), FN_HOST_IO_OK);
	cr_assert_eq(next_frame(&h, &f), FN_FRAME_RESULT);
	cr_assert_str_eq(f.u.result.body, "1");
	cr_assert_eq(f.u.result.init_usec, 0);
	fn_frame_clear(&f);

	/* SHUTDOWN: fn_shutdown's log line, then EOF and a clean exit. */
	cr_assert_eq(fn_host_stop(&h), FN_HOST_IO_OK);
	cr_assert_eq(next_frame(&h, &f), FN_FRAME_LOG);
	cr_assert_str_eq(f.u.log.message, "bye");
	cr_assert_str_eq(f.u.log.request_id, "");
	fn_frame_clear(&f);
	struct pollfd pfd = {h.fd, POLLIN, 0};
	cr_assert_eq(poll(&pfd, 1, 5000), 1);
	cr_assert_eq(fn_host_read(&h), FN_HOST_IO_EOF);
	if (h.pidfd >= 0) {
		struct pollfd pp = {h.pidfd, POLLIN, 0};
		cr_assert_eq(poll(&pp, 1, 5000), 1, "the pidfd reports the exit");
	}
	cr_assert(fn_host_reap(&h, true));
	cr_assert(WIFEXITED(h.wait_status) && WEXITSTATUS(h.wait_status) == 0);
	free(event);
	fn_host_close(&h);
}

HOST_TEST(close_kills_a_running_environment)
{
	struct fn_host h;
	spawn(&h, build_fn("sleepy", sleepy_src), NULL, 0);
	pid_t pid = h.pid;
	cr_assert(fn_host_queue_invoke(&h, "z", clock_now_usec() + 60 * SEC, "{}", 2));
	cr_assert_eq(fn_host_flush(&h), FN_HOST_IO_OK);
	fn_host_close(&h);
	cr_assert_eq(kill(pid, 0), -1, "no process and no zombie left");
	cr_assert_eq(errno, ESRCH);
	cr_assert_eq(h.fd, -1);
}
