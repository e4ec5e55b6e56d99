/*
 * The integration-test harness (see harness.h).  Everything here runs inside one
 * Criterion test process; the only thread besides the test's own is a sampler.
 */
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

struct h_env H;

#define MAX_CORRALS 8
#define MAX_SAMPLERS 4
#define MAX_DAEMONS 16
#define MAX_PGS 2

struct h_sampler {
	pthread_t thread;
	char *datname;
	char *usename;
	atomic_bool stop;
	atomic_int peak;
	atomic_int samples;
	char error[512]; /* set by the thread if sampling failed */
	bool joined;
};

/* Per-test registries, so that h_fini can clean up after a failed assertion. */
static struct h_corral *corrals[MAX_CORRALS];
static int n_corrals;
static struct {
	pid_t *pid;
	bool *running;
} daemons[MAX_DAEMONS]; /* corral, corral-fn: h_track_daemon */
static int n_daemons;
static struct h_sampler *samplers[MAX_SAMPLERS];
static int n_samplers;
static struct h_pg *pgs[MAX_PGS]; /* h_pg_start */
static int n_pgs;

static void pg_ctl_quietly(const struct h_pg *pg, const char *args);

static void alone_shared(const char *dir); /* "tests that must run alone", at the end */

/* ---------------------------------------------------------------- setup */

const char *h_need_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		cr_assert_fail("environment variable %s is not set: run the suite through "
			       "tests/integration/run.sh",
			       name);
	return v;
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9')))
			*s = '_';
}

void h_init(void)
{
	char name[128];
	const char *dir;

#ifdef __SANITIZE_ADDRESS__
	/* `make asan` checks corral for leaks.  A failed assertion here never returns to free
	 * what the test allocated, so the test process itself is not leak-checked. */
	__lsan_disable();
#endif
	/* A peer that closes while we write must fail the write, not kill the test. */
	signal(SIGPIPE, SIG_IGN);

	H.corral_bin = h_need_env("CORRAL_BIN");
	H.pghost = h_need_env("CORRAL_TEST_PGHOST");
	H.pgport = atoi(h_need_env("CORRAL_TEST_PGPORT"));
	H.sockdir = h_need_env("CORRAL_TEST_PGSOCKDIR");
	H.user = h_need_env("CORRAL_TEST_USER");
	H.password = h_need_env("CORRAL_TEST_PASSWORD");
	H.md5_user = h_need_env("CORRAL_TEST_MD5_USER");
	H.md5_password = h_need_env("CORRAL_TEST_MD5_PASSWORD");
	H.db = h_need_env("CORRAL_TEST_DB");
	H.pgbench_db = h_need_env("CORRAL_TEST_PGBENCH_DB");
	H.idle_db = h_need_env("CORRAL_TEST_IDLE_DB");
	H.limit_user = h_need_env("CORRAL_TEST_LIMIT_USER");
	H.pg_bindir = h_need_env("CORRAL_TEST_PG_BINDIR");
	dir = h_need_env("CORRAL_TEST_DIR");

	snprintf(name, sizeof name, "%s.%s", criterion_current_suite->name,
		 criterion_current_test->name);
	sanitize(name);
	snprintf(H.dir, sizeof H.dir, "%s/%.60s.XXXXXX", dir, name);
	if (mkdtemp(H.dir) == NULL)
		cr_assert_fail("mkdtemp %s: %s", H.dir, strerror(errno));
	n_corrals = 0;
	n_samplers = 0;
	n_daemons = 0;
	n_pgs = 0;
	alone_shared(dir);
}

void h_fini(void)
{
	for (int i = 0; i < n_samplers; i++) {
		struct h_sampler *s = samplers[i];

		if (!s->joined) {
			atomic_store(&s->stop, true);
			pthread_join(s->thread, NULL);
			s->joined = true;
		}
		free(s->datname);
		free(s->usename);
		free(s);
	}
	n_samplers = 0;
	for (int i = 0; i < n_daemons; i++) {
		if (*daemons[i].running) {
			kill(*daemons[i].pid, SIGKILL);
			waitpid(*daemons[i].pid, NULL, 0);
		}
	}
	n_daemons = 0;
	for (int i = 0; i < n_corrals; i++)
		free(corrals[i]);
	n_corrals = 0;
	for (int i = 0; i < n_pgs; i++) {
		if (pgs[i]->running)
			pg_ctl_quietly(pgs[i], "stop -m immediate");
		free(pgs[i]);
	}
	n_pgs = 0;
}

/* ---------------------------------------------------------------- utilities */

char *h_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

/* Appends n bytes to a growing string. */
void h_sb_add(struct h_sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void h_sb_printf(struct h_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	h_sb_add(b, s, (size_t)n);
	free(s);
}

static void sb_str(struct h_sbuf *b, const char *s)
{
	h_sb_add(b, s, strlen(s));
}

char *h_subst(const char *text)
{
	struct h_sbuf b = {0};
	char port[16];

	snprintf(port, sizeof port, "%d", H.pgport);
	const struct {
		const char *token, *value;
	} subs[] = {
		{"@PGHOST@", H.pghost}, {"@PGPORT@", port},         {"@DIR@", H.dir},
		{"@USER@", H.user},     {"@PASSWORD@", H.password}, {"@DB@", H.db},
	};

	h_sb_add(&b, "", 0);
	while (*text) {
		bool done = false;

		for (size_t i = 0; i < sizeof subs / sizeof subs[0] && !done; i++) {
			size_t n = strlen(subs[i].token);

			if (strncmp(text, subs[i].token, n) == 0) {
				sb_str(&b, subs[i].value);
				text += n;
				done = true;
			}
		}
		if (!done)
			h_sb_add(&b, text++, 1);
	}
	return b.p;
}

char *h_path(const char *name)
{
	return h_printf("%s/%s", H.dir, name);
}

void h_write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		cr_assert_fail("cannot write %s: %s", path, strerror(errno));
	fputs(content, f);
	if (fclose(f) != 0)
		cr_assert_fail("cannot write %s: %s", path, strerror(errno));
}

char *h_read_file(const char *path, size_t *len)
{
	struct h_sbuf b = {0};
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return NULL;
	h_sb_add(&b, "", 0);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		h_sb_add(&b, chunk, n);
	fclose(f);
	if (len != NULL)
		*len = b.len;
	return b.p;
}

char *h_shq(const char *s)
{
	struct h_sbuf b = {0};

	sb_str(&b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			sb_str(&b, "'\\''");
		else
			h_sb_add(&b, s, 1);
	}
	sb_str(&b, "'");
	return b.p;
}

double h_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

void h_md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL) || n != 16)
		cr_assert_fail("EVP_Digest(md5) failed");
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Ports 20000-31999: below the ephemeral range (32768+), where an outgoing connection of
 * anyone on the machine may take the port between this check and its use. */
int h_free_port(void)
{
	static atomic_uint seq;
	unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);

	for (int tries = 0; tries < 200; tries++) {
		int port = 20000 + (int)((seed + atomic_fetch_add(&seq, 7919u)) % 12000u);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			cr_assert_fail("socket: %s", strerror(errno));
		bool free_now = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
		close(fd);
		if (free_now)
			return port;
	}
	cr_assert_fail("no free port in 20000-31999");
	return -1;
}

uint64_t h_xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

char *h_make_text(size_t len, uint64_t seed)
{
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < len; i++)
		s[i] = (char)('a' + (h_xorshift64(&seed) % 26));
	s[len] = '\0';
	return s;
}

/* ---------------------------------------------------------------- corral */

bool h_has_key(const char *settings, const char *key)
{
	size_t n = strlen(key);

	for (const char *line = settings; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (strncmp(line, key, n) == 0 &&
		    (line[n] == ' ' || line[n] == '\t' || line[n] == '='))
			return true;
	}
	return false;
}

const char *h_log_tail(const char *path)
{
	/* Static: failure messages use it, and a failed assertion never returns to free. */
	static char tail[3000];
	size_t len = 0;
	char *all = h_read_file(path, &len);

	if (all == NULL)
		snprintf(tail, sizeof tail, "(no log at %s)", path);
	else
		snprintf(tail, sizeof tail, "%s",
			 len >= sizeof tail ? all + len - (sizeof tail - 1) : all);
	free(all);
	return tail;
}

const char *h_corral_log_tail(const struct h_corral *c)
{
	return h_log_tail(c->log);
}

int h_file_count(const char *path, const char *needle)
{
	char *all = h_read_file(path, NULL);
	int n = 0;

	for (const char *p = all ? strstr(all, needle) : NULL; p != NULL; p = strstr(p + 1, needle))
		n++;
	free(all);
	return n;
}

bool h_wait_file_count(const char *path, const char *needle, int want, double timeout_s)
{
	double deadline = h_now() + timeout_s;

	while (h_file_count(path, needle) < want) {
		if (h_now() > deadline)
			return false;
		sleep_ms(10);
	}
	return true;
}

bool h_wait_file(const char *path, const char *needle, double timeout_s)
{
	return h_wait_file_count(path, needle, 1, timeout_s);
}

bool h_wait_log(const struct h_corral *c, const char *needle, double timeout_s)
{
	return h_wait_file(c->log, needle, timeout_s);
}

int h_log_count(const struct h_corral *c, const char *needle)
{
	return h_file_count(c->log, needle);
}

bool h_wait_log_count(const struct h_corral *c, const char *needle, int want, double timeout_s)
{
	return h_wait_file_count(c->log, needle, want, timeout_s);
}

void h_corral_edit_reload(const struct h_corral *c, const char *from, const char *to)
{
	char *text = h_read_file(c->ini, NULL);
	cr_assert_not_null(text);
	char *at = strstr(text, from);
	cr_assert_not_null(at, "\"%s\" is not in %s", from, c->ini);
	*at = '\0';
	char *next = h_printf("%s%s%s", text, to, at + strlen(from));
	h_write_file(c->ini, next);
	free(next);
	free(text);
	int before = h_log_count(c, "event=reload_done");
	cr_assert_eq(kill(c->pid, SIGHUP), 0);
	cr_assert(h_wait_log_count(c, "event=reload_done", before + 1, 5.0), "%s",
		  h_corral_log_tail(c));
}

int h_corral_sigterm_wait(struct h_corral *c)
{
	double start = h_now();
	cr_assert_eq(kill(c->pid, SIGTERM), 0);
	int status = 0;
	while (h_reap(c->pid, &c->running, &status)) {
		cr_assert(h_now() - start < 5, "corral still runs 5 s after SIGTERM:\n%s",
			  h_corral_log_tail(c));
		usleep(10000);
	}
	return status;
}

void h_expect_admin_terminated(PGconn *conn, const char *who)
{
	PGresult *r = h_exec(conn, "select 1");
	cr_expect_str_eq(h_sqlstate(r), "57P01", "%s got: %s", who, PQresultErrorMessage(r));
	cr_expect(strstr(PQresultErrorMessage(r),
			 "terminating connection due to administrator command"),
		  "%s", PQresultErrorMessage(r));
	PQclear(r);
}

static void *h_login_main(void *p)
{
	struct h_login *l = p;
	PGconn *conn = PQconnectdb(l->ci);
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(l->err, sizeof(l->err), "%s", PQerrorMessage(conn));
	} else if (!l->sql) {
		l->ok = true;
	} else {
		PGresult *res = PQexec(conn, l->sql);
		l->ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		if (!l->ok)
			snprintf(l->err, sizeof(l->err), "%s", PQresultErrorMessage(res));
		PQclear(res);
	}
	PQfinish(conn);
	return NULL;
}

void h_logins_start(struct h_login *l, int n, const char *ci, const char *sql)
{
	for (int i = 0; i < n; i++) {
		l[i] = (struct h_login){.ci = ci, .sql = sql};
		cr_assert_eq(pthread_create(&l[i].thread, NULL, h_login_main, &l[i]), 0);
	}
}

int h_logins_join(struct h_login *l, int n)
{
	int ok = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(l[i].thread, NULL);
		ok += l[i].ok;
	}
	return ok;
}

double h_proc_cpu_seconds(pid_t pid)
{
	char path[64], *stat, *p;
	unsigned long long utime = 0, stime = 0;
	long hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	stat = h_read_file(path, NULL);
	if (stat == NULL)
		return -1;
	/* Fields after the command (which may hold spaces) start after the last ')'. */
	p = strrchr(stat, ')');
	if (p == NULL || hz <= 0 ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
		   &stime) != 2) {
		free(stat);
		return -1;
	}
	free(stat);
	return (double)(utime + stime) / (double)hz;
}

/* ---------------------------------------------------------------- daemons */

void h_need_program(const char *path, const char *make_target)
{
	if (access(path, X_OK) != 0)
		cr_assert_fail("%s is not an executable (%s): build it with `make %s`", path,
			       strerror(errno), make_target);
}

void h_track_daemon(pid_t *pid, bool *running)
{
	if (n_daemons == MAX_DAEMONS)
		cr_assert_fail("too many processes started in one test");
	daemons[n_daemons].pid = pid;
	daemons[n_daemons].running = running;
	n_daemons++;
}

bool h_reap(pid_t pid, bool *running, int *status)
{
	pid_t r;

	if (!*running)
		return false;
	r = waitpid(pid, status, WNOHANG);
	if (r == pid) {
		*running = false;
		return false;
	}
	return true;
}

static bool port_accepts(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

const char *h_status_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status 0x%x", status);
	return buf;
}

pid_t h_spawn(const struct h_spawn *s)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		cr_assert_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int out = open(s->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = strcmp(s->err, s->out) == 0
				  ? out
				  : open(s->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open("/dev/null", O_RDONLY);

		/* Die with the test process, even if Criterion kills it on a timeout. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (out < 0 || err < 0 || null < 0)
			_exit(127);
		dup2(null, 0);
		dup2(out, 1);
		dup2(err, 2);
		signal(SIGPIPE, SIG_DFL);
		/* Server logins in plain text unless a database line asks for TLS (harness.h). */
		setenv("PGSSLMODE", "disable", 1);
		if (s->search_path)
			execvp(s->argv[0], (char *const *)s->argv);
		else
			execv(s->argv[0], (char *const *)s->argv);
		dprintf(2, "harness: exec %s: %s\n", s->argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

void h_wait_port(const char *what, pid_t pid, bool *running, int port, const char *log)
{
	double deadline = h_now() + 10.0;
	int status = 0;

	for (;;) {
		if (!h_reap(pid, running, &status)) {
			char st[64];
			const char *tail = h_log_tail(log);

			cr_assert_fail("%s exited during startup (%s); %s:\n%s", what,
				       h_status_text(status, st, sizeof st), log, tail);
		}
		if (port_accepts(port))
			return;
		if (h_now() > deadline) {
			const char *tail = h_log_tail(log);

			cr_assert_fail("%s did not accept on port %d within 10 s; %s:\n%s", what,
				       port, log, tail);
		}
		sleep_ms(10);
	}
}

void h_stop_process(const char *what, pid_t pid, bool *running, const char *log)
{
	h_stop_process_with(what, pid, running, log, SIGTERM);
}

void h_stop_process_with(const char *what, pid_t pid, bool *running, const char *log, int sig)
{
	int status = 0;
	double deadline = h_now() + 5.0;
	char st[64];

	if (!h_reap(pid, running, &status)) {
		const char *tail = h_log_tail(log);

		cr_assert_fail("%s was no longer running before SIG%s (%s); %s:\n%s", what,
			       sigabbrev_np(sig), h_status_text(status, st, sizeof st), log, tail);
	}
	kill(pid, sig);
	while (h_reap(pid, running, &status)) {
		if (h_now() > deadline) {
			const char *tail = h_log_tail(log);

			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			*running = false;
			cr_assert_fail("%s did not exit within 5 s of SIG%s; %s:\n%s", what,
				       sigabbrev_np(sig), log, tail);
		}
		sleep_ms(10);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		const char *tail = h_log_tail(log);

		cr_assert_fail("%s ended with %s after SIG%s (want exit status 0); %s:\n%s", what,
			       h_status_text(status, st, sizeof st), sigabbrev_np(sig), log, tail);
	}
}

/* ---------------------------------------------------------------- corral */

bool h_corral_alive(struct h_corral *c)
{
	int status;

	return h_reap(c->pid, &c->running, &status);
}

struct h_corral *h_corral_start(const char *settings, const char *databases, const char *users)
{
	return h_corral_start_wrapped(NULL, settings, databases, users);
}

struct h_corral *h_corral_start_wrapped(const char *const *wrapper, const char *settings,
					const char *databases, const char *users)
{
	struct h_corral *c;
	char *s_settings, *s_dbs, *s_users, *ini;
	const char *argv[32];
	int idx = n_corrals, n = 0;

	h_need_program(H.corral_bin, "bin/corral");
	if (n_corrals == MAX_CORRALS)
		cr_assert_fail("too many corral instances in one test");
	c = calloc(1, sizeof *c);
	corrals[n_corrals++] = c;
	snprintf(c->ini, sizeof c->ini, "%s/corral%d.ini", H.dir, idx);
	snprintf(c->userlist, sizeof c->userlist, "%s/userlist%d.txt", H.dir, idx);
	snprintf(c->log, sizeof c->log, "%s/corral%d.log", H.dir, idx);
	c->port = h_free_port();

	s_settings = h_subst(settings ? settings : "");
	s_dbs = h_subst(databases ? databases : "");
	s_users = h_subst(users ? users : "\"@USER@\" \"@PASSWORD@\"\n");
	ini = h_printf("; written by tests/integration/harness.c\n"
		       "[corral]\n"
		       "listen_addr = 127.0.0.1\n"
		       "listen_port = %d\n"
		       "auth_file = %s\n"
		       "%s%s"
		       "%s\n"
		       "[databases]\n"
		       "%s\n",
		       c->port, c->userlist,
		       h_has_key(s_settings, "auth_type") ? "" : "auth_type = scram-sha-256\n",
		       h_has_key(s_settings, "workers") ? "" : "workers = 2\n", s_settings, s_dbs);
	h_write_file(c->ini, ini);
	h_write_file(c->userlist, s_users);
	free(ini);
	free(s_settings);
	free(s_dbs);
	free(s_users);

	/* "WRAPPER... $CORRAL_BIN -c ini"; the wrapper is looked up in PATH, corral is not. */
	while (wrapper != NULL && wrapper[n] != NULL && n < 28) {
		argv[n] = wrapper[n];
		n++;
	}
	argv[n++] = H.corral_bin;
	argv[n++] = "-c";
	argv[n++] = c->ini;
	argv[n] = NULL;
	c->pid = h_spawn(&(struct h_spawn){.argv = argv,
					   .search_path = wrapper != NULL && wrapper[0] != NULL,
					   .out = c->log,
					   .err = c->log});
	c->running = true;
	h_track_daemon(&c->pid, &c->running);
	h_wait_port("corral", c->pid, &c->running, c->port, c->log);
	return c;
}

/* SIGINT: corral exits at once (SIGTERM would wait for the test's clients to leave). */
void h_corral_stop(struct h_corral *c)
{
	h_stop_process_with("corral", c->pid, &c->running, c->log, SIGINT);
}

/* A conninfo value in single quotes, as libpq wants it. */
static void ci_add(struct h_sbuf *b, const char *key, const char *value)
{
	if (b->len > 0)
		sb_str(b, " ");
	sb_str(b, key);
	sb_str(b, "='");
	for (; *value; value++) {
		if (*value == '\'' || *value == '\\')
			sb_str(b, "\\");
		h_sb_add(b, value, 1);
	}
	sb_str(b, "'");
}

static char *conninfo(int port, const char *user, const char *db, const char *password)
{
	struct h_sbuf b = {0};
	char p[16];

	snprintf(p, sizeof p, "%d", port);
	h_sb_add(&b, "", 0);
	ci_add(&b, "host", "127.0.0.1");
	ci_add(&b, "port", p);
	ci_add(&b, "user", user);
	ci_add(&b, "dbname", db);
	if (password != NULL)
		ci_add(&b, "password", password);
	ci_add(&b, "connect_timeout", "10");
	return b.p;
}

char *h_conninfo(const struct h_corral *c, const char *user, const char *db, const char *password)
{
	return conninfo(c->port, user, db, password);
}

char *h_pg_conninfo(const char *user, const char *db, const char *password)
{
	return conninfo(H.pgport, user, db, password);
}

/* ---------------------------------------------------------------- libpq */

PGconn *h_try_connect(const char *ci, double timeout_s, char **err)
{
	PGconn *conn = PQconnectStart(ci);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double deadline = h_now() + timeout_s;

	*err = NULL;
	if (conn == NULL)
		cr_assert_fail("PQconnectStart: out of memory");
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	if (PQstatus(conn) == CONNECTION_BAD)
		st = PGRES_POLLING_FAILED;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = {.fd = PQsocket(conn),
				     .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
		int left = (int)((deadline - h_now()) * 1000);

		if (left <= 0 || (poll(&pfd, 1, left) == 0 && h_now() >= deadline)) {
			PQfinish(conn);
			cr_assert_fail("login did not finish within %.0f s (%s)", timeout_s, ci);
		}
		st = PQconnectPoll(conn);
	}
	if (st == PGRES_POLLING_OK)
		return conn;
	*err = strdup(PQerrorMessage(conn));
	PQfinish(conn);
	return NULL;
}

PGconn *h_connect(const struct h_corral *c, const char *ci)
{
	char *err = NULL;
	PGconn *conn = h_try_connect(ci, H_QUERY_TIMEOUT, &err);

	if (conn == NULL) {
		static char msg[1024];
		const char *tail = c ? h_corral_log_tail(c) : "";

		snprintf(msg, sizeof msg, "%s", err);
		free(err);
		cr_assert_fail("connection failed: %s(%s)%s%s", msg, ci, c ? "\ncorral log:\n" : "",
			       tail);
	}
	return conn;
}

PGconn *h_connect_bench(const struct h_corral *c)
{
	char *ci = h_conninfo(c, H.user, H.db, H.password);
	PGconn *conn = h_connect(c, ci);

	free(ci);
	return conn;
}

/* Waits for the results of what was sent; see h_exec_t. */
void h_wait_result(PGconn *conn, double deadline, const char *what)
{
	while (PQisBusy(conn)) {
		struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
		int left = (int)((deadline - h_now()) * 1000);

		if (left <= 0)
			cr_assert_fail("no reply in time to: %.200s", what);
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			cr_assert_fail("poll: %s", strerror(errno));
		if (!PQconsumeInput(conn))
			return; /* the error surfaces as a result */
	}
}

static PGresult *collect(PGconn *conn, const char *what, double timeout_s)
{
	double deadline = h_now() + timeout_s;
	PGresult *keep = NULL, *r;

	for (;;) {
		h_wait_result(conn, deadline, what);
		r = PQgetResult(conn);
		if (r == NULL)
			break;
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r); /* keep the first error */
		} else {
			PQclear(keep);
			keep = r;
		}
		if (PQstatus(conn) == CONNECTION_BAD && PQresultStatus(keep) == PGRES_FATAL_ERROR)
			break;
	}
	if (keep == NULL)
		keep = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	return keep;
}

PGresult *h_results(PGconn *conn, const char *what, double timeout_s)
{
	return collect(conn, what, timeout_s);
}

PGresult *h_exec_t(PGconn *conn, const char *sql, double timeout_s)
{
	if (!PQsendQuery(conn, sql))
		return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	return collect(conn, sql, timeout_s);
}

PGresult *h_exec(PGconn *conn, const char *sql)
{
	return h_exec_t(conn, sql, H_QUERY_TIMEOUT);
}

PGresult *h_exec_params(PGconn *conn, const char *sql, int n, const char *const *values,
			double timeout_s)
{
	if (!PQsendQueryParams(conn, sql, n, NULL, values, NULL, NULL, 0))
		return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	return collect(conn, sql, timeout_s);
}

const char *h_err_field(const PGresult *res, int field)
{
	const char *v = res ? PQresultErrorField(res, field) : NULL;

	return v ? v : "";
}

const char *h_sqlstate(const PGresult *res)
{
	return h_err_field(res, PG_DIAG_SQLSTATE);
}

void h_exec_ok(PGconn *conn, const char *sql)
{
	PGresult *r = h_exec(conn, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		cr_assert_fail("%.200s: %s %s%s", sql, PQresStatus(st), PQresultErrorMessage(r),
			       PQerrorMessage(conn));
	PQclear(r);
}

char *h_value(PGconn *conn, const char *sql)
{
	PGresult *r = h_exec(conn, sql);
	char *v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		cr_assert_fail("%.200s: %s (%d rows) %s%s", sql, PQresStatus(PQresultStatus(r)),
			       PQntuples(r), PQresultErrorMessage(r), PQerrorMessage(conn));
	v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

void h_expect_value(PGconn *conn, const char *sql, const char *want)
{
	char *v = h_value(conn, sql);

	cr_expect_str_eq(v, want, "%.200s: got [%s], want [%s]", sql, v, want);
	free(v);
}

void h_expect_show(PGconn *conn, const char *name, const char *want)
{
	char *sql = h_printf("SHOW %s", name);

	h_expect_value(conn, sql, want);
	free(sql);
}

void h_expect_new_client(const struct h_corral *c, const char *ci, const char *sql,
			 const char *want)
{
	PGconn *conn = ci != NULL ? h_connect(c, ci) : h_connect_bench(c);

	h_expect_value(conn, sql, want);
	PQfinish(conn);
}

void h_expect_still_serving(const struct h_corral *c, PGconn *conn, const char *ci)
{
	h_expect_value(conn, "select 'old client still served'", "old client still served");
	PQfinish(conn);
	h_expect_new_client(c, ci, "select 'new client served'", "new client served");
}

/* ---------------------------------------------------------------- PostgreSQL */

static PGconn *superuser_conn(char *err, size_t errlen)
{
	const char *keys[] = {"host", "port", "user", "dbname", "application_name", NULL};
	char port[16];
	const char *vals[] = {H.sockdir, port, "postgres", "postgres", "corral-test-monitor", NULL};
	PGconn *conn;

	snprintf(port, sizeof port, "%d", H.pgport);
	conn = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "superuser connection over %s failed: %s", H.sockdir,
			 PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *h_superuser(void)
{
	char err[512];
	PGconn *conn = superuser_conn(err, sizeof err);

	if (conn == NULL)
		cr_assert_fail("%s", err);
	return conn;
}

static const char *count_sql =
	"select count(*) from pg_stat_activity where backend_type = 'client backend'"
	" and datname = $1 and ($2::text is null or usename = $2)";

static int count_backends(PGconn *conn, const char *datname, const char *usename, char *err,
			  size_t errlen)
{
	const char *params[2] = {datname, usename};
	PGresult *r = PQexecParams(conn, count_sql, 2, NULL, params, NULL, NULL, 0);
	int n = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = atoi(PQgetvalue(r, 0, 0));
	else
		snprintf(err, errlen, "pg_stat_activity query failed: %s", PQerrorMessage(conn));
	PQclear(r);
	return n;
}

int h_pg_backends(const char *datname, const char *usename)
{
	char err[512];
	PGconn *conn = h_superuser();
	int n = count_backends(conn, datname, usename, err, sizeof err);

	PQfinish(conn);
	if (n < 0)
		cr_assert_fail("%s", err);
	return n;
}

double h_wait_pg_backends(const char *datname, const char *usename, int want, double timeout_s)
{
	char err[512];
	PGconn *conn = h_superuser();
	double start = h_now();
	int n;

	for (;;) {
		/* pg_stat_activity is a snapshot per transaction; outside one, each query is fresh. */
		n = count_backends(conn, datname, usename, err, sizeof err);
		if (n < 0) {
			PQfinish(conn);
			cr_assert_fail("%s", err);
		}
		if (n == want)
			break;
		if (h_now() - start > timeout_s) {
			PQfinish(conn);
			return -1;
		}
		sleep_ms(10);
	}
	PQfinish(conn);
	return h_now() - start;
}

double h_wait_pg_value(const char *sql, const char *want, double timeout_s)
{
	PGconn *conn = h_superuser();
	double start = h_now();

	for (;;) {
		/* Outside a transaction, each query sees a fresh pg_stat_activity snapshot. */
		PGresult *r = PQexec(conn, sql);
		bool match;

		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			char *err = h_printf("%s: %s (%d rows)", sql, PQresultErrorMessage(r),
					     PQntuples(r));

			PQclear(r);
			PQfinish(conn);
			cr_assert_fail("%s", err);
		}
		match = strcmp(PQgetvalue(r, 0, 0), want) == 0;
		PQclear(r);
		if (match)
			break;
		if (h_now() - start > timeout_s) {
			PQfinish(conn);
			return -1;
		}
		sleep_ms(10);
	}
	PQfinish(conn);
	return h_now() - start;
}

static void *sampler_main(void *arg)
{
	struct h_sampler *s = arg;
	PGconn *conn = superuser_conn(s->error, sizeof s->error);

	if (conn == NULL)
		return NULL;
	while (!atomic_load(&s->stop)) {
		int n = count_backends(conn, s->datname, s->usename, s->error, sizeof s->error);

		if (n < 0)
			break;
		if (n > atomic_load(&s->peak))
			atomic_store(&s->peak, n);
		atomic_fetch_add(&s->samples, 1);
		sleep_ms(5);
	}
	PQfinish(conn);
	return NULL;
}

struct h_sampler *h_sampler_start(const char *datname, const char *usename)
{
	struct h_sampler *s = calloc(1, sizeof *s);

	if (n_samplers == MAX_SAMPLERS)
		cr_assert_fail("too many samplers in one test");
	s->datname = strdup(datname);
	s->usename = usename ? strdup(usename) : NULL;
	atomic_init(&s->stop, false);
	atomic_init(&s->peak, 0);
	atomic_init(&s->samples, 0);
	if (pthread_create(&s->thread, NULL, sampler_main, s) != 0)
		cr_assert_fail("pthread_create failed");
	samplers[n_samplers++] = s;
	/* Report only once sampling runs, so the caller's workload is fully observed. */
	for (double deadline = h_now() + 10;
	     atomic_load(&s->samples) == 0 && s->error[0] == '\0';) {
		if (h_now() > deadline)
			cr_assert_fail("pg_stat_activity sampler did not start");
		sleep_ms(1);
	}
	return s;
}

int h_sampler_stop(struct h_sampler *s, int *samples)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->joined = true;
	if (s->error[0] != '\0')
		cr_assert_fail("pg_stat_activity sampler failed: %s", s->error);
	if (samples != NULL)
		*samples = atomic_load(&s->samples);
	return atomic_load(&s->peak);
}

/* ---------------------------------------------------------------- a PostgreSQL of the test's own */

/* "runuser -u USER -- " when root (PostgreSQL refuses to run as root), as pgtmp.sh does. */
static const char *as_pg_owner(char *buf, size_t len)
{
	const char *user = getenv("PG_RUN_AS");

	if (geteuid() != 0)
		return "";
	snprintf(buf, len, "runuser -u %s -- ", user && *user ? user : "postgres");
	return buf;
}

static char *pg_ctl_command(const struct h_pg *pg, const char *args)
{
	char owner[128];

	return h_printf("%s%s/pg_ctl -w -t 60 -D %s/pg -l %s/postgres.log %s",
			as_pg_owner(owner, sizeof owner), H.pg_bindir, pg->dir, pg->dir, args);
}

/* For h_fini: no assertion, no output. */
static void pg_ctl_quietly(const struct h_pg *pg, const char *args)
{
	char *cmd = pg_ctl_command(pg, args);
	char *quiet = h_printf("%s >/dev/null 2>&1", cmd);

	if (system(quiet) != 0)
		fprintf(stderr, "harness: %s failed\n", cmd);
	free(quiet);
	free(cmd);
}

struct h_pg *h_pg_start(const char *name, const char *args)
{
	const char *pgtmp = h_need_env("CORRAL_TEST_PGTMP");
	struct h_pg *pg;
	struct h_cmd r;
	char *q_bin, *q_dir;

	if (n_pgs == MAX_PGS)
		cr_assert_fail("too many PostgreSQL clusters in one test");
	pg = calloc(1, sizeof *pg);
	pgs[n_pgs++] = pg;
	snprintf(pg->dir, sizeof pg->dir, "%s/%s", H.dir, name);
	if (mkdir(pg->dir, 0755) != 0)
		cr_assert_fail("mkdir %s: %s", pg->dir, strerror(errno));
	/* The cluster's OS user must reach its directory through the test's (mkdtemp: 0700). */
	if (geteuid() == 0 && chmod(H.dir, 0755) != 0)
		cr_assert_fail("chmod %s: %s", H.dir, strerror(errno));
	q_bin = h_shq(H.pg_bindir);
	q_dir = h_shq(pg->dir);
	r = h_run(120,
		  "PG_BIN=%s bash %s start %s --hba 'host all all 127.0.0.1/32 trust' "
		  "synchronous_commit=on %s",
		  q_bin, pgtmp, q_dir, args ? args : "");
	free(q_bin);
	free(q_dir);
	pg->port = atoi(r.out);
	if (r.status != 0 || pg->port <= 0)
		cr_assert_fail("pgtmp.sh start %s: status %d, port [%s]\n%s", pg->dir, r.status,
			       r.out, r.err);
	pg->running = true;
	h_cmd_free(&r);
	return pg;
}

double h_pg_ctl(struct h_pg *pg, const char *args)
{
	char *cmd = pg_ctl_command(pg, args);
	struct h_cmd r = h_run(90, "%s", cmd);
	double secs = r.secs;

	if (r.status != 0) {
		char *log = h_printf("%s/postgres.log", pg->dir);

		cr_assert_fail("%s: status %d\n%s%s\n%s:\n%s", cmd, r.status, r.out, r.err, log,
			       h_log_tail(log));
	}
	if (strncmp(args, "stop", 4) == 0)
		pg->running = false;
	else if (strncmp(args, "start", 5) == 0 || strncmp(args, "restart", 7) == 0)
		pg->running = true;
	h_cmd_free(&r);
	free(cmd);
	return secs;
}

char *h_pg_own_conninfo(const struct h_pg *pg, const char *db)
{
	return conninfo(pg->port, "postgres", db, NULL);
}

/* ---------------------------------------------------------------- shell */

char *h_pgtool(const char *name)
{
	return h_printf("%s/%s", H.pg_bindir, name);
}

struct h_cmd h_psql(const char *ci, const char *args)
{
	char *q_ci = h_shq(ci), *psql = h_pgtool("psql");
	struct h_cmd r = h_run(H_QUERY_TIMEOUT, "%s -X -At -d %s %s", psql, q_ci, args);

	free(q_ci);
	free(psql);
	return r;
}

void h_psql_expect(const struct h_corral *c, const char *sql, const char *want)
{
	char *ci = h_conninfo(c, H.user, H.db, H.password), *q_sql = h_shq(sql);
	char *args = h_printf("-v ON_ERROR_STOP=1 -c %s", q_sql);
	struct h_cmd r = h_psql(ci, args);

	if (r.status != 0 || strcmp(r.out, want) != 0) {
		const char *tail = h_corral_log_tail(c);

		cr_assert_fail(
			"psql -c %s: status %d, stdout [%s] (want [%s]), stderr [%s]\ncorral log:\n%s",
			q_sql, r.status, r.out, want, r.err, tail);
	}
	h_cmd_free(&r);
	free(ci);
	free(q_sql);
	free(args);
}

void h_psql_run(const char *ci, const char *cmd, const char *want_out)
{
	char *q_ci = h_shq(ci), *q_cmd = h_shq(cmd), *psql = h_pgtool("psql");
	struct h_cmd r = h_run(60, "PGCLIENTENCODING=UTF8 %s -X -v ON_ERROR_STOP=1 -d %s -c %s",
			       psql, q_ci, q_cmd);

	cr_assert_eq(r.status, 0, "psql -c %s: status %d, stderr: %s", q_cmd, r.status, r.err);
	cr_assert_str_eq(r.out, want_out, "psql -c %s: stdout [%s], want [%s]", q_cmd, r.out,
			 want_out);
	h_cmd_free(&r);
	free(q_ci);
	free(q_cmd);
	free(psql);
}

struct h_cmd h_run(double timeout_s, const char *fmt, ...)
{
	struct h_cmd r = {0};
	struct h_sbuf out = {0}, err = {0};
	int po[2], pe[2], status = 0;
	double start = h_now(), deadline = start + timeout_s;
	bool timed_out = false;
	va_list ap;
	char *cmd;
	pid_t pid;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	h_sb_add(&out, "", 0);
	h_sb_add(&err, "", 0);
	if (pipe(po) != 0 || pipe(pe) != 0)
		cr_assert_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		cr_assert_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		close(po[1]);
		close(pe[1]);
		signal(SIGPIPE, SIG_DFL);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	close(po[1]);
	close(pe[1]);

	struct pollfd pfd[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
	int open_fds = 2;

	while (open_fds > 0) {
		int left = (int)((deadline - h_now()) * 1000);

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(pfd, 2, left) < 0 && errno != EINTR)
			cr_assert_fail("poll: %s", strerror(errno));
		for (int i = 0; i < 2; i++) {
			char buf[65536];
			ssize_t n;

			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, buf, sizeof buf);
			if (n > 0) {
				h_sb_add(i == 0 ? &out : &err, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_fds--;
			}
		}
	}
	if (timed_out)
		kill(-pid, SIGKILL);
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	if (!timed_out) {
		/* Output closed; the process may still be exiting. */
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (h_now() > deadline) {
				timed_out = true;
				kill(-pid, SIGKILL);
				break;
			}
			sleep_ms(5);
		}
	}
	if (timed_out) {
		waitpid(pid, &status, 0);
		r.status = -1;
	} else if (WIFEXITED(status)) {
		r.status = WEXITSTATUS(status);
	} else {
		r.status = 128 + WTERMSIG(status);
	}
	r.out = out.p;
	r.err = err.p;
	r.secs = h_now() - start;
	free(cmd);
	return r;
}

void h_cmd_free(struct h_cmd *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

void h_make_certs(bool client_cert)
{
	struct h_cmd r =
		h_run(60,
		      "cd %s && "
		      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=corral-test-ca "
		      "-keyout ca.key -out ca.crt && "
		      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
		      "-out server.csr && "
		      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >san.ext && "
		      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		      "-days 2 -extfile san.ext -out server.crt && %s"
		      "chmod 600 ca.key server.key%s",
		      H.dir,
		      client_cert ? "openssl req -newkey rsa:2048 -nodes -subj /CN=bench "
				    "-keyout client.key -out client.csr && "
				    "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
				    "-CAcreateserial -days 2 -out client.crt && "
				  : "",
		      client_cert ? " client.key" : "");
	cr_assert_eq(r.status, 0, "openssl: status %d\n%s\n%s", r.status, r.out, r.err);
	h_cmd_free(&r);
}

/* ---------------------------------------------------------------- workloads */

/* Client to server: text as the parameter of a Bind message. */
static void insert_big_value(PGconn *conn, const char *text, size_t len)
{
	const char *params[1] = {text};
	PGresult *r = h_exec_params(conn, "insert into big values ($1)", 1, params, 60);

	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "insert of %zu bytes: %s %s", len,
		     PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
	PQclear(r);
}

/* What PostgreSQL stored: its length and md5 must be the text's. */
static void expect_stored_value(PGconn *conn, const char *text, size_t len)
{
	char md5[33], *v, *want;

	h_md5_hex(text, len, md5);
	v = h_value(conn, "select length(v) || ' ' || md5(v) from big");
	want = h_printf("%zu %s", len, md5);
	cr_expect_str_eq(v, want, "PostgreSQL stored something else");
	free(v);
	free(want);
}

/* Server to client: the value in one DataRow. */
static void expect_big_value_back(PGconn *conn, const char *text, size_t len)
{
	PGresult *r = h_exec_t(conn, "select v from big", 60);

	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
	cr_assert_eq(PQntuples(r), 1);
	cr_assert_eq((size_t)PQgetlength(r, 0, 0), len);
	cr_expect(memcmp(PQgetvalue(r, 0, 0), text, len) == 0,
		  "the %zu-byte value came back changed", len);
	PQclear(r);
}

void h_big_value_round_trip(PGconn *conn, size_t len, uint64_t seed)
{
	char *text = h_make_text(len, seed);

	h_exec_ok(conn, "create temp table big (v text)");
	insert_big_value(conn, text, len);
	expect_stored_value(conn, text, len);
	expect_big_value_back(conn, text, len);
	free(text);
}

/* Writes n rows "id<TAB>text" (with a non-ASCII character) to path and gives the file's md5. */
static void write_rows(const char *path, int n, char md5[33])
{
	size_t cap = (size_t)n * 64, len = 0;
	char *buf = malloc(cap);
	FILE *f;

	if (buf == NULL)
		abort();
	for (int i = 1; i <= n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%d\trow %d caf\xc3\xa9 %08x\n", i, i,
					(unsigned)i * 2654435761u);
	f = fopen(path, "w");
	cr_assert(f != NULL, "cannot write %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	h_md5_hex(buf, len, md5);
	free(buf);
}

static void file_md5(const char *path, char md5[33], size_t *len)
{
	char *data = h_read_file(path, len);

	cr_assert(data != NULL, "cannot read %s", path);
	h_md5_hex(data, *len, md5);
	free(data);
}

void h_copy_in(const char *ci, const char *table, int n, char md5[33])
{
	char *path = h_printf("%s/%s-in.tsv", H.dir, table), *tag = h_printf("COPY %d\n", n);
	char *create = h_printf("set client_min_messages = warning; drop table if exists %s; "
				"create table %s (id int primary key, v text)",
				table, table);
	char *copy = h_printf("\\copy %s from '%s'", table, path);

	write_rows(path, n, md5);
	h_psql_run(ci, create, "SET\nDROP TABLE\nCREATE TABLE\n");
	h_psql_run(ci, copy, tag);
	free(path);
	free(tag);
	free(create);
	free(copy);
}

void h_copy_out(const char *ci, const char *table, int n, const char *name, char md5[33],
		size_t *len)
{
	char *path = h_path(name), *tag = h_printf("COPY %d\n", n);
	char *copy = h_printf("\\copy (select id, v from %s order by id) to '%s'", table, path);

	h_psql_run(ci, copy, tag);
	file_md5(path, md5, len);
	free(path);
	free(tag);
	free(copy);
}

/* ---------------------------------------------------------------- raw sockets */

int h_tcp_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		cr_assert_fail("connect to 127.0.0.1:%d: %s", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

void h_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			cr_assert_fail("send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

size_t h_read_reply(int fd, void *buf, size_t cap, double timeout_s, bool *closed)
{
	double deadline = h_now() + timeout_s;
	size_t got = 0;

	*closed = false;
	while (got < cap) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = (int)((deadline - h_now()) * 1000);
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, left) == 0)
			break;
		n = recv(fd, (char *)buf + got, cap - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*closed = true; /* EOF or reset */
			break;
		}
		got += (size_t)n;
	}
	return got;
}

/* The first ErrorResponse among the complete messages in buf, parsed as h_parse_error does. */
static bool find_error(const unsigned char *buf, size_t len, char sqlstate[6], char *msg,
		       size_t msglen)
{
	size_t off = 0, n, blen;
	const unsigned char *body;
	char type;

	while ((n = h_msg(buf + off, len - off, &type, &body, &blen)) > 0) {
		if (type == 'E')
			return h_parse_error(buf + off, n, sqlstate, msg, msglen);
		off += n;
	}
	return false;
}

void h_read_final_reply(int fd, double timeout_s, struct h_reply *r)
{
	r->len = h_read_reply(fd, r->buf, sizeof r->buf, timeout_s, &r->closed);
	close(fd);
	r->sqlstate[0] = '\0';
	r->msg[0] = '\0';
	r->error = find_error(r->buf, r->len, r->sqlstate, r->msg, sizeof r->msg);
}

void h_expect_error_then_close(int fd, const char *what, const char *want_state, struct h_reply *r)
{
	h_read_final_reply(fd, 5.0, r);
	cr_expect(r->closed, "%s: connection not closed within 5 s (%zu bytes read)", what, r->len);
	cr_expect(r->error, "%s: no ErrorResponse before the close (%zu bytes, the first 0x%02x)",
		  what, r->len, r->len > 0 ? r->buf[0] : 0);
	cr_expect_str_eq(r->sqlstate, want_state, "%s: SQLSTATE [%s] %s", what, r->sqlstate,
			 r->msg);
}

void h_expect_byte(int fd, char want, const char *what)
{
	unsigned char b = 0;
	bool closed = false;
	size_t got = h_read_reply(fd, &b, 1, 5.0, &closed);

	cr_assert_eq(got, 1, "%s: no answer within 5 s (closed: %d)", what, closed);
	cr_expect_eq(b, (unsigned char)want, "%s: answer 0x%02x, want '%c'", what, b, want);
}

uint32_t h_be32(const void *ptr)
{
	const unsigned char *p = ptr;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool h_parse_error(const void *buf, size_t len, char sqlstate[6], char *msg, size_t msglen)
{
	const unsigned char *p = buf;
	uint32_t mlen;
	size_t i;

	sqlstate[0] = '\0';
	if (msglen > 0)
		msg[0] = '\0';
	if (len < 5 || p[0] != 'E')
		return false;
	mlen = h_be32(p + 1);
	if (mlen < 4 || (size_t)mlen + 1 > len)
		return false;
	for (i = 5; i < (size_t)mlen + 1 && p[i] != 0;) {
		char type = (char)p[i++];
		const char *val = (const char *)p + i;
		size_t vlen = strnlen(val, (size_t)mlen + 1 - i);

		if (type == 'C')
			snprintf(sqlstate, 6, "%.5s", val);
		else if (type == 'M')
			snprintf(msg, msglen, "%.*s", (int)vlen, val);
		i += vlen + 1;
	}
	return true;
}

/* ---------------------------------------------------------------- raw protocol */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

void h_request_packet(unsigned char buf[8], uint32_t code)
{
	put_be32(buf, 8);
	put_be32(buf + 4, code);
}

size_t h_startup_packet(unsigned char *buf, size_t cap, uint32_t version, const char *const *kv)
{
	size_t n = 8;

	for (; kv != NULL && *kv != NULL; kv++) {
		size_t l = strlen(*kv) + 1;

		if (n + l + 1 > cap)
			cr_assert_fail("startup packet larger than %zu bytes", cap);
		memcpy(buf + n, *kv, l);
		n += l;
	}
	buf[n++] = 0;
	put_be32(buf, (uint32_t)n);
	put_be32(buf + 4, version);
	return n;
}

size_t h_msg(const unsigned char *buf, size_t len, char *type, const unsigned char **body,
	     size_t *body_len)
{
	uint32_t mlen;

	if (len < 5)
		return 0;
	mlen = h_be32(buf + 1);
	if (mlen < 4 || (size_t)mlen + 1 > len)
		return 0;
	*type = (char)buf[0];
	*body = buf + 5;
	*body_len = mlen - 4;
	return (size_t)mlen + 1;
}

/* True if the complete messages at buf[0..len) include one of type want. */
static bool has_msg(const unsigned char *buf, size_t len, char want)
{
	size_t off = 0, n;
	const unsigned char *body;
	size_t blen;
	char type;

	while ((n = h_msg(buf + off, len - off, &type, &body, &blen)) > 0) {
		if (type == want)
			return true;
		off += n;
	}
	return false;
}

bool h_read_until_msg(int fd, unsigned char *buf, size_t cap, size_t *len, char want,
		      double timeout_s, bool *closed)
{
	double deadline = h_now() + timeout_s;

	*closed = false;
	while (!has_msg(buf, *len, want)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int left = (int)((deadline - h_now()) * 1000);
		ssize_t n;

		if (*len >= cap || left <= 0 || poll(&pfd, 1, left) == 0)
			return false;
		n = recv(fd, buf + *len, cap - *len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*closed = true;
			return has_msg(buf, *len, want);
		}
		*len += (size_t)n;
	}
	return true;
}

/* ---------------------------------------------------------------- tests that run alone */

/*
 * Two flock(2) files in CORRAL_TEST_DIR, shared by every test process of the run:
 * ".alone" is held shared by every test from h_init on and exclusively by a test that
 * must run alone; ".alone-gate" is taken briefly by each h_init and held for good by a
 * test that runs alone (or waits to), so that new tests cannot keep it waiting for
 * ever.  Locks are released when the test process exits; the descriptors are
 * close-on-exec, so corral, psql and pgbench never hold them.
 */
static int alone_fd = -1;
static char alone_dir[512];

static int alone_open(const char *name)
{
	char path[600];
	int fd;

	snprintf(path, sizeof path, "%s/%s", alone_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		cr_assert_fail("cannot open %s: %s", path, strerror(errno));
	return fd;
}

static void alone_flock(int fd, int op, const char *what)
{
	while (flock(fd, op) != 0)
		if (errno != EINTR)
			cr_assert_fail("flock(%s): %s", what, strerror(errno));
}

static void alone_shared(const char *dir)
{
	int gate;

	snprintf(alone_dir, sizeof alone_dir, "%s", dir);
	gate = alone_open(".alone-gate");
	alone_flock(gate, LOCK_EX, ".alone-gate");
	alone_fd = alone_open(".alone");
	alone_flock(alone_fd, LOCK_SH, ".alone");
	close(gate);
}

void h_run_alone(void)
{
	int gate;

	if (alone_fd < 0)
		cr_assert_fail("h_run_alone before h_init");
	/* Holding nothing while queueing at the gate: two lone tests cannot deadlock. */
	alone_flock(alone_fd, LOCK_UN, ".alone");
	gate = alone_open(".alone-gate");
	alone_flock(gate, LOCK_EX, ".alone-gate"); /* kept: new tests wait in h_init */
	alone_flock(alone_fd, LOCK_EX, ".alone");  /* the running tests have ended */
}

void h_direct_exec(const char *sql)
{
	char *ci = h_pg_conninfo(H.user, H.db, H.password);
	PGconn *pg = h_connect(NULL, ci);

	h_exec_ok(pg, sql);
	PQfinish(pg);
	free(ci);
}

char *h_direct_value(const char *sql)
{
	char *ci = h_pg_conninfo(H.user, H.db, H.password);
	PGconn *pg = h_connect(NULL, ci);
	char *v = h_value(pg, sql);

	PQfinish(pg);
	free(ci);
	return v;
}

/* A raw trust login up to ReadyForQuery; with query, runs it (linking a server) too. */
int h_raw_login(int port, const char *query)
{
	const char *kv[] = {"user", "bench", "database", "bench", NULL};
	unsigned char pkt[256], buf[16384];
	size_t n = h_startup_packet(pkt, sizeof pkt, H_PROTOCOL_3_0, kv), len = 0;
	bool closed;
	int fd = h_tcp_connect(port);

	h_send_all(fd, pkt, n);
	cr_assert(h_read_until_msg(fd, buf, sizeof buf, &len, 'Z', 10.0, &closed),
		  "raw login: no ReadyForQuery");
	if (query != NULL) {
		size_t qlen = strlen(query) + 1;
		unsigned char q[256] = {'Q', 0, 0, 0, (unsigned char)(qlen + 4)};

		memcpy(q + 5, query, qlen);
		h_send_all(fd, q, 5 + qlen);
		len = 0;
		cr_assert(h_read_until_msg(fd, buf, sizeof buf, &len, 'Z', 10.0, &closed),
			  "raw query: no ReadyForQuery");
	}
	return fd;
}

char *h_stats_dump_line(const struct h_corral *c, const char *kind, const char *match)
{
	int before = h_log_count(c, "event=stats_dump ");

	cr_assert_eq(kill(c->pid, SIGUSR1), 0);
	cr_assert(h_wait_log_count(c, "event=stats_dump ", before + 1, 5.0), "no stats dump:\n%s",
		  h_corral_log_tail(c));
	char *log = h_read_file(c->log, NULL);
	cr_assert_not_null(log);
	/* The lines between the previous dump's end line and this one's. */
	char *start = log;
	for (int i = 0; i < before; i++)
		start = strstr(start, "event=stats_dump ") + 1;
	*strstr(start, "event=stats_dump ") = '\0';
	char want[64], *found = NULL;
	snprintf(want, sizeof want, "event=%s ", kind);
	for (char *line = start; line && *line && !found;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strstr(line, want) && strstr(line, match))
			found = strdup(line);
		line = nl ? nl + 1 : NULL;
	}
	free(log);
	return found;
}

long long h_log_field(const char *line, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=')
			return strtoll(p + klen + 1, NULL, 10);
	}
	return -1;
}

void h_known_workload(PGconn *const conn[10])
{
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 10; i++) {
			if (i == 0) {
				h_exec_ok(conn[i], "BEGIN");
				h_exec_ok(conn[i], "SELECT 1");
				h_exec_ok(conn[i], "COMMIT");
			} else {
				h_exec_ok(conn[i], "SELECT 1");
			}
		}
	}
}

void h_expect_logins_refused(const struct h_corral *c)
{
	char *ci = h_conninfo(c, H.user, H.db, H.password), *err = NULL;
	PGconn *late = NULL;
	for (double deadline = h_now() + 5; h_now() < deadline; usleep(20000)) {
		late = h_try_connect(ci, 5, &err);
		if (!late)
			break;
		PQfinish(late);
		free(err);
		err = NULL;
	}
	cr_expect_null(late, "a new client got in while shutting down");
	free(err);
	free(ci);
}
