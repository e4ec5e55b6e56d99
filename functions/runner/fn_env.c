#include "functions/runner/fn_env.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"
#include "functions/corral_fn.h"

/* The environment's end of the socketpair, moved here so that every other fd can go. */
#define ENV_FD 3

/* Exit codes the runner may see (fn_host_exit_reason() prints them). */
enum { ENV_EXIT_OK = 0, ENV_EXIT_INIT_FAILED = 1, ENV_EXIT_PROTOCOL = 2, ENV_EXIT_LOST = 3 };

struct env {
	struct fn_ctx ctx; /* handed to the function; env_of() finds the env from it */
	fn_handle_fn *handle;
	fn_shutdown_fn *shutdown;
	usec_t deadline_usec; /* of the running invocation; 0 between invocations */
	int64_t init_usec;    /* reported with the first invocation, then 0 */
	struct fn_buf in, out;
	/* The last line logged by fn_init: a failed init is reported with it, since the
	 * return code alone says nothing (Lambda shows the init's error message). */
	char init_last_log[512];
	bool in_init;
};

static volatile sig_atomic_t term_requested;

static void on_sigterm(int sig)
{
	(void)sig;
	term_requested = 1;
}

static struct env *env_of(const struct fn_ctx *ctx)
{
	return container_of(ctx, struct env, ctx);
}

/* ---- process setup ---------------------------------------------------------------- */

/* A "Key:   123 kB" line of /proc/self/status, in kB; -1 if absent. */
static int64_t proc_status_kb(const char *key)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	size_t klen = strlen(key);
	const char *line = buf;
	while (*line) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			return strtoll(line + klen + 1, NULL, 10);
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return -1;
}

/* The environment's peak resident set so far: what Lambda calls Max Memory Used. */
static int64_t peak_rss_kb(void)
{
	int64_t kb = proc_status_kb("VmHWM");
	if (kb < 0) {
		struct rusage ru;
		kb = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
	}
	return kb;
}

static int64_t realtime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Makes the forked copy of the runner into a process of its own: dies with the runner,
 * forgets the runner's signal handlers and fds, sends stdout (the function's printf) where
 * stderr goes: the pipe fn_host_spawn() set up, which the runner logs line by line.
 */
static void setup_process(int fd, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(ENV_EXIT_LOST); /* the runner died before the line above */

	/* The runner's handlers are the runner's (what it ignores stays ignored). */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction old;
		if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_IGN &&
		    old.sa_handler != SIG_DFL)
			signal(sig, SIG_DFL);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN); /* ^C goes to the runner, which stops its environments */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigterm; /* no SA_RESTART: interrupts ppoll() */
	sigaction(SIGTERM, &sa, NULL);
	/* SIGTERM is only taken in ppoll() between invocations; the one that arrives during
	 * an invocation stops the environment after it. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_SETMASK, &set, NULL);

	if (fd != ENV_FD) {
		dup2(fd, ENV_FD);
		close(fd);
	}
	if (close_range(ENV_FD + 1, ~0U, 0) != 0) {
		for (int i = ENV_FD + 1; i < 65536; i++)
			close(i);
	}
	int null = open("/dev/null", O_RDONLY);
	if (null >= 0 && null != STDIN_FILENO) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	/* Whatever the runner had buffered in stdout is the runner's to write, not ours. */
	__fpurge(stdout);
	dup2(STDERR_FILENO, STDOUT_FILENO);
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct rlimit no_core = {0, 0}; /* a crashing function must not litter core files */
	setrlimit(RLIMIT_CORE, &no_core);
}

static bool limit_memory(uint32_t mb, char *error, size_t errlen)
{
	if (mb == 0)
		return true;
	int64_t inherited_kb = proc_status_kb("VmSize");
	if (inherited_kb < 0)
		inherited_kb = 0;
	rlim_t limit = (rlim_t)inherited_kb * 1024 + (rlim_t)mb * 1024 * 1024;
	struct rlimit rl = {limit, limit};
	if (setrlimit(RLIMIT_AS, &rl) != 0) {
		snprintf(error, errlen, "setrlimit(RLIMIT_AS, %u MB): %s", mb, strerror(errno));
		return false;
	}
	return true;
}

/* A copy of what points into the runner's configuration, which is about to be wiped. */
static struct fn_host_config own_config(const struct fn_host_config *cfg)
{
	struct fn_host_config own = *cfg;
	own.so_path = cfg->so_path ? strdup(cfg->so_path) : NULL;
	own.function_name = cfg->function_name ? strdup(cfg->function_name) : NULL;
	own.dsn = cfg->dsn ? strdup(cfg->dsn) : NULL;
	char **env = calloc(cfg->n_env + 1, sizeof(*env));
	for (size_t i = 0; env && i < cfg->n_env; i++)
		env[i] = strdup(cfg->env[i]);
	own.env = env;
	own.n_env = env ? cfg->n_env : 0;
	return own;
}

/*
 * The process's environment becomes DATABASE_URL, CORRAL_FN_NAME and the function's own
 * env.NAME variables, nothing of the runner's.  /proc/self/environ shows the block the
 * runner was started with, not environ, so that block is zeroed too (it is this
 * process's copy of the runner's stack).
 */
static void set_environment(const struct fn_host_config *cfg)
{
	unsigned long start = 0, end = 0;
	FILE *f = fopen("/proc/self/stat", "re");
	char line[4096];
	if (f && fgets(line, sizeof(line), f)) {
		/* env_start and env_end are fields 50 and 51; field 2 (comm) may hold spaces */
		const char *p = strrchr(line, ')');
		int field = 2;
		while (p && *p && field < 50) {
			p = strchr(p + 1, ' ');
			if (p)
				field++;
		}
		if (p && sscanf(p + 1, "%lu %lu", &start, &end) != 2)
			start = end = 0;
	}
	if (f)
		fclose(f);
	clearenv();
	if (start && end > start)
		explicit_bzero((void *)start, end - start);
	if (cfg->dsn && *cfg->dsn)
		setenv("DATABASE_URL", cfg->dsn, 1);
	setenv("CORRAL_FN_NAME", cfg->function_name ? cfg->function_name : "", 1);
	for (size_t i = 0; i < cfg->n_env; i++)
		if (cfg->env[i])
			putenv(cfg->env[i]);
}

/* ---- talking to the runner -------------------------------------------------------- */

static bool write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* False when the frame cannot be encoded (too big, out of memory); the runner being gone
 * ends the process. */
static bool env_send(struct env *env, const struct fn_frame *f)
{
	env->out.len = 0;
	if (!fn_frame_encode(&env->out, f))
		return false;
	if (!write_all(ENV_FD, env->out.data, env->out.len))
		_exit(ENV_EXIT_LOST);
	if (env->out.cap > 64 * 1024) /* do not keep a big response's buffer for good */
		fn_buf_free(&env->out);
	return true;
}

static void env_log(const struct fn_ctx *ctx, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	struct env *env = env_of(ctx);
	if (env->in_init) { /* kept cut short: it only has to say why */
		size_t keep = len < sizeof(env->init_last_log) ? len
							       : sizeof(env->init_last_log) - 1;
		memcpy(env->init_last_log, msg, keep);
		env->init_last_log[keep] = '\0';
	}
	struct fn_frame f = {.type = FN_FRAME_LOG};
	f.u.log.request_id = ctx->request_id;
	f.u.log.message = msg;
	(void)env_send(env, &f); /* 4 KB always encodes unless memory is out */
}

static int64_t env_remaining_ms(const struct fn_ctx *ctx)
{
	const struct env *env = env_of(ctx);
	if (env->deadline_usec == 0)
		return 0;
	return (env->deadline_usec - clock_now_usec()) / 1000;
}

/* ---- loading and invoking --------------------------------------------------------- */

static bool load(struct env *env, const char *so_path, char *error, size_t errlen)
{
	void *dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		snprintf(error, errlen, "cannot load function: %s", dlerror());
		return false;
	}
	fn_abi_version_fn *abi = (fn_abi_version_fn *)dlsym(dl, "corral_fn_abi_version");
	if (!abi) {
		snprintf(error, errlen,
			 "%s is not a corral function: no corral_fn_abi_version "
			 "(CORRAL_FN_ABI())",
			 so_path);
		return false;
	}
	uint32_t version = abi();
	if (version != CORRAL_FN_ABI_VERSION) {
		snprintf(error, errlen,
			 "%s was built for corral_fn ABI version %u; this runner "
			 "speaks version %u",
			 so_path, version, CORRAL_FN_ABI_VERSION);
		return false;
	}
	env->handle = (fn_handle_fn *)dlsym(dl, "fn_handle");
	if (!env->handle) {
		snprintf(error, errlen, "%s has no fn_handle", so_path);
		return false;
	}
	env->shutdown = (fn_shutdown_fn *)dlsym(dl, "fn_shutdown");
	fn_init_fn *init = (fn_init_fn *)dlsym(dl, "fn_init");
	if (init) {
		env->in_init = true;
		int rc = init(&env->ctx);
		env->in_init = false;
		if (rc != FN_OK) {
			if (env->init_last_log[0])
				snprintf(error, errlen, "fn_init failed (returned %d): %.400s", rc,
					 env->init_last_log);
			else
				snprintf(error, errlen, "fn_init failed (returned %d)", rc);
			return false;
		}
	}
	return true;
}

static void send_result(struct env *env, struct fn_result *r)
{
	struct fn_frame f = {.type = FN_FRAME_RESULT};
	f.u.result = *r;
	if (env_send(env, &f))
		return;
	/* Could not encode it (memory ran out): say so without the body. */
	f.u.result.rc = FN_ERROR;
	f.u.result.status = 500;
	f.u.result.n_headers = 0;
	f.u.result.headers = NULL;
	f.u.result.headers_len = 0;
	f.u.result.body = NULL;
	f.u.result.body_len = 0;
	f.u.result.error = "the response could not be sent (out of memory)";
	if (!env_send(env, &f))
		_exit(ENV_EXIT_LOST);
}

static void invoke(struct env *env, const struct fn_invoke *inv)
{
	usec_t now = clock_now_usec();
	env->ctx.request_id = inv->request_id;
	env->deadline_usec = inv->deadline_usec;
	env->ctx.deadline_ms = realtime_ms() + (inv->deadline_usec - now) / 1000;

	struct fn_response resp;
	memset(&resp, 0, sizeof(resp));
	resp.size = sizeof(resp);
	resp.status = 200;
	strcpy(resp.content_type, "application/json");
	struct fn_event ev = {sizeof(ev), inv->event, inv->event_len};

	usec_t start = clock_now_usec();
	int rc = env->handle(&ev, &resp, &env->ctx);
	usec_t duration = clock_now_usec() - start;
	fflush(stdout);

	resp.content_type[sizeof(resp.content_type) - 1] = '\0';
	resp.error[sizeof(resp.error) - 1] = '\0';
	if (rc != FN_OK && rc != FN_ERROR) {
		snprintf(resp.error, sizeof(resp.error), "fn_handle returned %d", rc);
		rc = FN_ERROR;
	}
	if (rc == FN_OK)
		resp.error[0] = '\0';
	else if (!resp.error[0])
		strcpy(resp.error, "fn_handle failed");

	struct fn_result r = {
		.request_id = inv->request_id,
		.rc = rc,
		.status = resp.status,
		.content_type = resp.content_type,
		.n_headers = resp.n_headers,
		.headers = resp.headers,
		.headers_len = resp.headers_len,
		.body = resp.body,
		.body_len = resp.body_len,
		.duration_usec = duration,
		.init_usec = env->init_usec,
		.error = resp.error,
	};
	const char *bad = NULL;
	if (resp.body_len > FN_BODY_MAX)
		bad = "body larger than FN_BODY_MAX";
	else if (resp.n_headers > FN_HEADERS_MAX)
		bad = "more than FN_HEADERS_MAX headers";
	if (bad || !fn_result_check(&r, &bad)) {
		snprintf(resp.error, sizeof(resp.error), "invalid response: %s", bad);
		r.rc = FN_ERROR;
		r.status = 500;
		strcpy(resp.content_type, "application/json");
		r.n_headers = 0;
		r.headers = NULL;
		r.headers_len = 0;
		r.body = NULL;
		r.body_len = 0;
	}
	r.max_rss_kb = peak_rss_kb();
	send_result(env, &r);
	env->init_usec = 0;

	free(resp.body);
	free(resp.headers);
	env->ctx.request_id = "";
	env->ctx.deadline_ms = 0;
	env->deadline_usec = 0;
}

/* Serves frames until SHUTDOWN, SIGTERM or EOF. */
static void serve(struct env *env)
{
	static uint8_t chunk[64 * 1024];
	sigset_t none;
	sigemptyset(&none);
	for (;;) {
		struct fn_frame f;
		size_t used;
		const char *why = NULL;
		enum fn_decode_result d = fn_frame_decode(env->in.data, env->in.len, &f, &used,
							  &why);
		if (d == FN_DECODE_ERROR) {
			char clean[512];
			log_error("event=fn_env_protocol_error function=%s why=\"%s\"",
				  env->ctx.function_name, log_clean(why, clean, sizeof(clean)));
			_exit(ENV_EXIT_PROTOCOL);
		}
		if (d == FN_DECODE_OK) {
			fn_buf_consume(&env->in, used);
			enum fn_frame_type type = f.type;
			if (type == FN_FRAME_INVOKE)
				invoke(env, &f.u.invoke);
			fn_frame_clear(&f);
			if (type == FN_FRAME_SHUTDOWN)
				return;
			if (type != FN_FRAME_INVOKE) {
				log_error(
					"event=fn_env_protocol_error function=%s why=\"unexpected %s frame\"",
					env->ctx.function_name, fn_frame_type_name(type));
				_exit(ENV_EXIT_PROTOCOL);
			}
			if (env->in.cap > 64 * 1024 && env->in.len == 0)
				fn_buf_free(&env->in);
			continue;
		}
		if (term_requested)
			return;
		struct pollfd pfd = {ENV_FD, POLLIN, 0};
		if (ppoll(&pfd, 1, NULL, &none) < 0) {
			if (errno == EINTR)
				continue;
			_exit(ENV_EXIT_LOST);
		}
		ssize_t n = read(ENV_FD, chunk, sizeof(chunk));
		if (n == 0)
			return; /* the runner closed its end */
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return;
		}
		if (!fn_buf_append(&env->in, chunk, (size_t)n)) {
			log_error("event=fn_env_out_of_memory function=%s", env->ctx.function_name);
			_exit(ENV_EXIT_LOST);
		}
	}
}

/* ---- exec'd environments ----------------------------------------------------------- */

/* What fn_env_exec passes besides the function's own variables; gone before the .so loads
 * (set_environment rebuilds the environment from scratch). */
#define EXEC_SO "CORRAL_FN_ENV_SO"
#define EXEC_MEMORY "CORRAL_FN_ENV_MEMORY_MB"
#define EXEC_SPAWNED "CORRAL_FN_ENV_SPAWNED_AT"
#define EXEC_PARENT "CORRAL_FN_ENV_PARENT"

_Noreturn void fn_env_exec(const char *path, const struct fn_host_config *cfg, int fd,
			   usec_t spawned_at, pid_t parent)
{
	/* fd 3 survives the exec; nothing else of the runner's does */
	if (fd != ENV_FD) {
		dup2(fd, ENV_FD);
		close(fd);
	} else {
		fcntl(ENV_FD, F_SETFD, 0);
	}
	if (close_range(ENV_FD + 1, ~0U, 0) != 0) {
		for (int i = ENV_FD + 1; i < 65536; i++)
			close(i);
	}
	size_t n = 0;
	char **envp = calloc(cfg->n_env + 7, sizeof(*envp));
	if (!envp)
		_exit(ENV_EXIT_LOST);
	if (asprintf(&envp[n++], EXEC_SO "=%s", cfg->so_path ? cfg->so_path : "") < 0 ||
	    asprintf(&envp[n++], EXEC_MEMORY "=%u", cfg->memory_limit_mb) < 0 ||
	    asprintf(&envp[n++], EXEC_SPAWNED "=%lld", (long long)spawned_at) < 0 ||
	    asprintf(&envp[n++], EXEC_PARENT "=%d", (int)parent) < 0 ||
	    asprintf(&envp[n++], "CORRAL_FN_NAME=%s",
		     cfg->function_name ? cfg->function_name : "") < 0)
		_exit(ENV_EXIT_LOST);
	if (cfg->dsn && *cfg->dsn && asprintf(&envp[n++], "DATABASE_URL=%s", cfg->dsn) < 0)
		_exit(ENV_EXIT_LOST);
	for (size_t i = 0; i < cfg->n_env; i++)
		envp[n++] = cfg->env[i];
	char *const argv[] = {"corral-fn", "--environment", NULL};
	execve(path, argv, envp);
	fprintf(stderr, "corral-fn: exec %s: %s\n", path, strerror(errno));
	_exit(ENV_EXIT_LOST);
}

static char *take_env(const char *name)
{
	const char *v = getenv(name);
	char *copy = strdup(v ? v : "");
	unsetenv(name);
	return copy;
}

_Noreturn void fn_env_exec_main(void)
{
	struct fn_host_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	char *so = take_env(EXEC_SO), *mem = take_env(EXEC_MEMORY);
	char *spawned = take_env(EXEC_SPAWNED), *parent = take_env(EXEC_PARENT);
	char *name = take_env("CORRAL_FN_NAME"), *dsn = take_env("DATABASE_URL");
	if (!so || !mem || !spawned || !parent || !name || !dsn)
		_exit(ENV_EXIT_LOST);
	cfg.so_path = so;
	cfg.function_name = name;
	cfg.dsn = *dsn ? dsn : NULL;
	cfg.memory_limit_mb = (uint32_t)strtoul(mem, NULL, 10);
	/* what is left is the function's own env.NAME variables */
	size_t n = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	char **env = calloc(n + 1, sizeof(*env));
	for (size_t i = 0; env && i < n; i++)
		env[i] = environ[i];
	cfg.env = env;
	cfg.n_env = env ? n : 0;
	fn_env_main(&cfg, ENV_FD, (usec_t)strtoll(spawned, NULL, 10), (pid_t)atoi(parent));
}

_Noreturn void fn_env_main(const struct fn_host_config *cfg, int fd, usec_t spawned_at,
			   pid_t parent)
{
	setup_process(fd, parent);
	struct fn_host_config own = own_config(cfg);
	cfg = &own;
	fn_host_wipe_inherited();
	set_environment(cfg);

	struct env env;
	memset(&env, 0, sizeof(env));
	env.ctx.size = sizeof(env.ctx);
	env.ctx.abi_version = CORRAL_FN_ABI_VERSION;
	env.ctx.function_name = cfg->function_name ? cfg->function_name : "";
	env.ctx.request_id = "";
	env.ctx.dsn = cfg->dsn ? cfg->dsn : "";
	env.ctx.memory_limit_mb = cfg->memory_limit_mb;
	env.ctx.log = env_log;
	env.ctx.remaining_ms = env_remaining_ms;

	char error[512] = "";
	bool ok = limit_memory(cfg->memory_limit_mb, error, sizeof(error)) &&
		  load(&env, cfg->so_path, error, sizeof(error));
	env.init_usec = clock_now_usec() - spawned_at;

	struct fn_frame ready = {.type = FN_FRAME_READY};
	ready.u.ready.init_usec = env.init_usec;
	ready.u.ready.max_rss_kb = peak_rss_kb();
	ready.u.ready.error = ok ? "" : error;
	if (!env_send(&env, &ready))
		_exit(ENV_EXIT_LOST);
	if (!ok) {
		fflush(stdout);
		_exit(ENV_EXIT_INIT_FAILED);
	}

	serve(&env);
	if (env.shutdown)
		env.shutdown(&env.ctx);
	fflush(stdout);
	_exit(ENV_EXIT_OK);
}
