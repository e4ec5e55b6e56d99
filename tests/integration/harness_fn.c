/*
 * The function runner's part of the integration-test harness (see harness_fn.h).
 * Starting and stopping corral-fn goes through harness.c's daemon helpers (h_spawn,
 * h_wait_port, h_stop_process), the same code that runs corral.
 */
#include "tests/integration/harness_fn.h"

#include <arpa/inet.h>
#include <dirent.h>
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
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "functions/fn_event.h"

static int n_fns; /* corral-fn instances started by this test: their file names */

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

const char *h_fn_bindir(void)
{
	return h_need_env("CORRAL_BINDIR");
}

char *h_fn_bin(const char *name)
{
	return h_printf("%s/%s", h_fn_bindir(), name);
}

const char *h_fn_db(void)
{
	return h_need_env("CORRAL_TEST_FN_DB");
}

/* ---------------------------------------------------------------- corral and PostgreSQL */

struct h_corral *h_fn_corral(int pool_size)
{
	char *dbs = h_printf("%s = host=@PGHOST@ port=@PGPORT@ dbname=%s user=@USER@ password=@PASSWORD@ "
			     "pool_size=%d\n",
			     h_fn_db(), h_fn_db(), pool_size);
	struct h_corral *c = h_corral_start("pool_mode = transaction\n", dbs, NULL);

	free(dbs);
	return c;
}

char *h_fn_database_url(const struct h_corral *c)
{
	return h_printf("postgresql://%s:%s@127.0.0.1:%d/%s", H.user, H.password, c->port, h_fn_db());
}

PGconn *h_fn_pg(void)
{
	char *ci = h_pg_conninfo(H.user, h_fn_db(), H.password);
	PGconn *pg = h_connect(NULL, ci);

	free(ci);
	return pg;
}

char *h_fn_value(const char *sql)
{
	PGconn *pg = h_fn_pg();
	char *v = h_value(pg, sql);

	PQfinish(pg);
	return v;
}

long long h_fn_count(const char *sql)
{
	char *v = h_fn_value(sql);
	long long n = strtoll(v, NULL, 10);

	free(v);
	return n;
}

void h_fn_expect_value(const char *sql, const char *want, const char *what)
{
	char *v = h_fn_value(sql);

	cr_expect_str_eq(v, want, "%s: [%s], want [%s] (%s)", what, v, want, sql);
	free(v);
}

void h_fn_exec(const char *sql)
{
	PGconn *pg = h_fn_pg();

	h_exec_ok(pg, sql);
	PQfinish(pg);
}

bool h_fn_wait_value(const char *sql, const char *want, double timeout_s)
{
	PGconn *pg = h_fn_pg();
	double deadline = h_now() + timeout_s;
	bool found;

	for (;;) {
		char *v = h_value(pg, sql);

		found = strcmp(v, want) == 0;
		free(v);
		if (found || h_now() > deadline)
			break;
		pause_ms(100);
	}
	PQfinish(pg);
	return found;
}

/* ---------------------------------------------------------------- /proc */

struct proc_stat {
	char state;
	pid_t ppid;
	unsigned long long start; /* clock ticks after boot */
};

/* /proc/PID/stat's state, ppid and starttime; false if there is no such process. */
static bool read_stat(pid_t pid, struct proc_stat *st)
{
	char path[64], buf[1024];
	const char *p;
	ssize_t n;
	int fd, ppid = 0;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* Fields after the command (which may hold spaces) start after the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
				&st->state, &ppid, &st->start) != 3)
		return false;
	st->ppid = (pid_t)ppid;
	return true;
}

int h_fn_children(const struct h_fn *f, pid_t *pids, int cap, bool with_zombies)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		struct proc_stat st;
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end != '\0' || pid <= 0 || !read_stat((pid_t)pid, &st) || st.ppid != f->pid)
			continue;
		if (st.state == 'Z' && !with_zombies)
			continue;
		if (pids != NULL && n < cap)
			pids[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}

bool h_fn_wait_children(const struct h_fn *f, int want, bool with_zombies, double timeout_s)
{
	double deadline = h_now() + timeout_s;

	for (;;) {
		if (h_fn_children(f, NULL, 0, with_zombies) == want)
			return true;
		if (h_now() > deadline)
			return false;
		pause_ms(10);
	}
}

struct h_fn_sampler {
	pthread_t thread;
	const struct h_fn *f;
	atomic_bool stop;
	atomic_int peak;
	atomic_int samples;
};

static void *children_sampler(void *arg)
{
	struct h_fn_sampler *s = arg;

	while (!atomic_load(&s->stop)) {
		int n = h_fn_children(s->f, NULL, 0, false);

		if (n > atomic_load(&s->peak))
			atomic_store(&s->peak, n);
		atomic_fetch_add(&s->samples, 1);
		pause_ms(2);
	}
	return NULL;
}

struct h_fn_sampler *h_fn_sampler_start(const struct h_fn *f)
{
	struct h_fn_sampler *s = calloc(1, sizeof *s);

	s->f = f;
	if (pthread_create(&s->thread, NULL, children_sampler, s) != 0)
		cr_assert_fail("pthread_create failed");
	return s;
}

int h_fn_sampler_stop(struct h_fn_sampler *s, int *samples)
{
	int peak;

	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	peak = atomic_load(&s->peak);
	if (samples != NULL)
		*samples = atomic_load(&s->samples);
	free(s);
	return peak;
}

/* ---------------------------------------------------------------- corral-fn */

static bool fn_spawn(struct h_fn *f, const char *bin, const char *url, const char *s_config);

struct h_fn *h_fn_start(const struct h_corral *db, const char *config)
{
	/* Not freed: h_fini may still need pid and running (h_track_daemon). */
	struct h_fn *f = calloc(1, sizeof *f);
	char *bin = h_fn_bin("corral-fn"), *url = db ? h_fn_database_url(db) : NULL;
	char *s_config;
	int idx = n_fns++;

	h_need_program(bin, "bin/corral-fn");
	snprintf(f->ini, sizeof f->ini, "%s/corral-fn%d.ini", H.dir, idx);
	snprintf(f->log, sizeof f->log, "%s/corral-fn%d.log", H.dir, idx);
	snprintf(f->reports, sizeof f->reports, "%s/corral-fn%d.reports", H.dir, idx);
	s_config = h_subst(config ? config : "");
	/* h_free_port's port may be taken by another test's process before corral-fn binds
	 * it: then another port, a few times. */
	for (int attempt = 0;; attempt++) {
		f->port = h_free_port();
		if (fn_spawn(f, bin, url, s_config) || attempt == 4)
			break;
	}
	free(s_config);
	free(url);
	free(bin);
	h_wait_port("corral-fn", f->pid, &f->running, f->port, f->log);
	/* The port accepts from listen() on; the log line comes once everything started. */
	if (!h_fn_wait_log(f, "event=listening", 10))
		cr_assert_fail("corral-fn did not log event=listening within 10 s; %s:\n%s", f->log,
			       h_fn_log_tail(f));
	return f;
}

/* Writes f's ini for f->port and starts corral-fn; false when it exited at once because
 * the port was taken (the caller tries another). */
static bool fn_spawn(struct h_fn *f, const char *bin, const char *url, const char *s_config)
{
	char *ini = h_printf("; written by tests/integration/harness_fn.c\n"
		       "[runner]\n"
		       "listen_addr = 127.0.0.1\n"
		       "listen_port = %d\n"
		       "functions_dir = %s/test-functions\n"
		       "%s%s%s"
		       "%s\n",
		       f->port, h_fn_bindir(), url ? "database_url = " : "", url ? url : "", url ? "\n" : "",
		       s_config);
	h_write_file(f->ini, ini);
	free(ini);
	f->pid = h_spawn(&(struct h_spawn){.argv = (const char *const[]){bin, "-c", f->ini, NULL},
					   .out = f->reports, .err = f->log});
	f->running = true;
	h_track_daemon(&f->pid, &f->running);
	/* Either it listens (event=listening) or it has exited. */
	for (double end = h_now() + 10; h_now() < end;) {
		int status;
		if (!h_reap(f->pid, &f->running, &status))
			return !strstr(h_log_tail(f->log), "Address already in use");
		if (h_fn_wait_log(f, "event=listening", 0.05))
			return true;
	}
	return true; /* h_wait_port says what is wrong */
}

#define MAX_ENVS 4096

void h_fn_stop(struct h_fn *f)
{
	static pid_t pids[MAX_ENVS];
	static struct proc_stat before[MAX_ENVS];
	int n = h_fn_children(f, pids, MAX_ENVS, true);

	cr_assert(n >= 0 && n <= MAX_ENVS, "cannot list corral-fn's children (%d)", n);
	for (int i = 0; i < n; i++)
		if (!read_stat(pids[i], &before[i]))
			before[i].start = 0; /* gone already */
	h_stop_process("corral-fn", f->pid, &f->running, f->log);
	for (int i = 0; i < n; i++) {
		struct proc_stat now;

		if (before[i].start == 0 || !read_stat(pids[i], &now) || now.start != before[i].start)
			continue;
		cr_assert_fail("environment %d (state %c, now a child of %d) is still there after corral-fn "
			       "exited; %s:\n%s",
			       (int)pids[i], now.state, (int)now.ppid, f->log, h_fn_log_tail(f));
	}
}

bool h_fn_alive(struct h_fn *f)
{
	int status;

	return h_reap(f->pid, &f->running, &status);
}

const char *h_fn_log_tail(const struct h_fn *f)
{
	return h_log_tail(f->log);
}

/* ---------------------------------------------------------------- logs */

bool h_fn_wait_log(const struct h_fn *f, const char *needle, double timeout_s)
{
	return h_wait_file(f->log, needle, timeout_s);
}

/* Calls fn(line, arg) for each line of the file until it returns true; the line is
 * NUL-terminated in place.  Returns whether one did. */
static bool each_line(const char *path, bool (*fn)(char *line, void *arg), void *arg)
{
	char *all = h_read_file(path, NULL), *save = NULL;
	bool hit = false;

	if (all == NULL)
		return false;
	for (char *line = strtok_r(all, "\n", &save); line && !hit; line = strtok_r(NULL, "\n", &save))
		hit = fn(line, arg);
	free(all);
	return hit;
}

struct line_count {
	const char *const *needles;
	const char *key; /* NULL: count the lines */
	long long n;
};

static bool count_line(char *line, void *arg)
{
	struct line_count *c = arg;
	const char *v;

	for (const char *const *n = c->needles; *n; n++)
		if (strstr(line, *n) == NULL)
			return false;
	if (c->key == NULL) {
		c->n++;
	} else {
		char *key = h_printf(" %s=", c->key);

		v = strstr(line, key);
		if (v != NULL)
			c->n += strtoll(v + strlen(key), NULL, 10);
		free(key);
	}
	return false;
}

int h_fn_log_lines(const struct h_fn *f, const char *const *needles)
{
	struct line_count c = {needles, NULL, 0};

	each_line(f->log, count_line, &c);
	return (int)c.n;
}

bool h_fn_wait_log_lines(const struct h_fn *f, const char *const *needles, int want,
			 double timeout_s)
{
	double deadline = h_now() + timeout_s;

	while (h_fn_log_lines(f, needles) < want) {
		if (h_now() > deadline)
			return false;
		pause_ms(10);
	}
	return true;
}

long long h_fn_log_sum(const struct h_fn *f, const char *const *needles, const char *key)
{
	struct line_count c = {needles, key, 0};

	each_line(f->log, count_line, &c);
	return c.n;
}

struct line_value {
	const char *needle, *key;
	char *value;
};

static bool value_of_line(char *line, void *arg)
{
	struct line_value *v = arg;
	char *key = h_printf(" %s=", v->key);
	char *p = strstr(line, v->needle) ? strstr(line, key) : NULL;

	if (p != NULL) {
		p += strlen(key);
		if (*p == '"')
			v->value = strndup(p + 1, strcspn(p + 1, "\""));
		else
			v->value = strndup(p, strcspn(p, " "));
	}
	free(key);
	return p != NULL;
}

char *h_fn_log_value(const struct h_fn *f, const char *needle, const char *key)
{
	struct line_value v = {needle, key, NULL};

	each_line(f->log, value_of_line, &v);
	return v.value;
}

static bool count_report(char *line, void *arg)
{
	if (strncmp(line, "REPORT RequestId: ", 18) == 0)
		(*(int *)arg)++;
	return false;
}

int h_fn_report_count(const struct h_fn *f)
{
	int n = 0;

	each_line(f->reports, count_report, &n);
	return n;
}

struct report_find {
	const char *prefix;
	char *line;
};

static bool find_report(char *line, void *arg)
{
	struct report_find *r = arg;

	if (strncmp(line, r->prefix, strlen(r->prefix)) != 0)
		return false;
	r->line = strdup(line);
	return true;
}

char *h_fn_report_for(const struct h_fn *f, const char *request_id, double timeout_s)
{
	char *prefix = h_printf("REPORT RequestId: %s\t", request_id);
	struct report_find r = {prefix, NULL};
	double deadline = h_now() + timeout_s;

	while (!each_line(f->reports, find_report, &r)) {
		if (h_now() > deadline) {
			char *all = h_read_file(f->reports, NULL);

			cr_assert_fail("no REPORT line for request %s within %.0f s; %s:\n%.3000s", request_id,
				       timeout_s, f->reports, all ? all : "(none)");
		}
		pause_ms(10);
	}
	free(prefix);
	return r.line;
}

double h_report_ms(const char *line, const char *name)
{
	char *needle = h_printf("\t%s: ", name);
	const char *p = strstr(line, needle);
	double v = p ? strtod(p + strlen(needle), NULL) : -1;

	free(needle);
	return v;
}

/* ---------------------------------------------------------------- HTTP */

static void http_fail(struct h_http *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void http_fail(struct h_http *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof r->error, fmt, ap);
	va_end(ap);
}

/* The request's text: request line, headers (given ones with CRLFs), body. */
static char *http_request(int port, const char *method, const char *path, const char *headers,
			  const char *body, size_t *len)
{
	size_t hlen = headers ? strlen(headers) : 0, cap = strlen(method) + strlen(path) + 2 * hlen + 200 +
							      (body ? strlen(body) : 0);
	char *req = malloc(cap);
	size_t n = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n",
				    method, path, port);

	for (const char *h = headers; h && *h;) {
		size_t l = strcspn(h, "\n");

		if (l > 0) {
			memcpy(req + n, h, l);
			n += l;
			memcpy(req + n, "\r\n", 2);
			n += 2;
		}
		h += l + (h[l] == '\n');
	}
	if (body)
		n += (size_t)snprintf(req + n, cap - n, "Content-Length: %zu\r\n", strlen(body));
	n += (size_t)snprintf(req + n, cap - n, "\r\n%s", body ? body : "");
	*len = n;
	return req;
}

/* Once the head is complete: the status into r and the body's length (-1: to EOF). */
static bool http_parse_head(const char *buf, size_t len, struct h_http *r, long *content_length)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	char *head;

	if (end == NULL)
		return false;
	head = strndup(buf, (size_t)(end - buf) + 4);
	r->head = head;
	if (sscanf(head, "HTTP/1.%*d %d", &r->status) != 1)
		r->status = -1;
	*content_length = -1;
	{
		char *cl = h_http_header(r, "Content-Length");

		if (cl != NULL)
			*content_length = strtol(cl, NULL, 10);
		free(cl);
	}
	return true;
}

/* The request without assertions (threads use it too): errors go to r->error. */
static void http_do(int port, const char *method, const char *path, const char *headers, const char *body,
		    double timeout_s, struct h_http *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	double start = h_now(), deadline = start + timeout_s;
	size_t req_len, sent = 0, got = 0, cap = 65536, head_len = 0;
	char *req = http_request(port, method, path, headers, body, &req_len), *buf = malloc(cap + 1);
	long content_length = -1;
	bool have_head = false, eof = false;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	memset(r, 0, sizeof *r);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		http_fail(r, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
		goto out;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (!eof && !(have_head && content_length >= 0 && got - head_len >= (size_t)content_length)) {
		struct pollfd pfd = {.fd = fd, .events = sent < req_len ? POLLOUT : POLLIN};
		int left = (int)((deadline - h_now()) * 1000);
		ssize_t n;

		if (left <= 0) {
			http_fail(r, "%s %s: no complete answer within %.0f s (%zu bytes so far)", method, path,
				  timeout_s, got);
			goto out;
		}
		if (poll(&pfd, 1, left) <= 0)
			continue;
		if (sent < req_len) {
			n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				http_fail(r, "%s %s: send: %s", method, path, strerror(errno));
				goto out;
			}
			continue;
		}
		if (got == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		n = recv(fd, buf + got, cap - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			eof = true; /* EOF or reset */
		if (!have_head && http_parse_head(buf, got, r, &content_length)) {
			have_head = true;
			head_len = strlen(r->head);
		}
	}
	if (!have_head) {
		http_fail(r, "%s %s: the connection closed after %zu bytes, before a full answer", method, path,
			  got);
		goto out;
	}
	r->body_len = got - head_len;
	if (content_length >= 0 && r->body_len > (size_t)content_length)
		r->body_len = (size_t)content_length;
	if (content_length >= 0 && r->body_len < (size_t)content_length) {
		http_fail(r, "%s %s: the connection closed after %zu of %ld body bytes", method, path, r->body_len,
			  content_length);
		goto out;
	}
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, buf + head_len, r->body_len);
	r->body[r->body_len] = '\0';
out:
	if (r->error[0]) {
		r->status = 0;
		free(r->head);
		r->head = NULL;
	}
	if (r->body == NULL)
		r->body = strdup("");
	if (r->head == NULL)
		r->head = strdup("");
	r->secs = h_now() - start;
	if (fd >= 0)
		close(fd);
	free(req);
	free(buf);
}

struct h_http h_http(int port, const char *method, const char *path, const char *headers, const char *body,
		     double timeout_s)
{
	struct h_http r;

	http_do(port, method, path, headers, body, timeout_s, &r);
	if (r.error[0])
		cr_assert_fail("HTTP: %s", r.error);
	return r;
}

struct h_http h_fn_http(const struct h_fn *f, const char *method, const char *path, const char *headers,
			const char *body)
{
	struct h_http r;

	http_do(f->port, method, path, headers, body, H_HTTP_TIMEOUT, &r);
	if (r.error[0])
		cr_assert_fail("HTTP to corral-fn: %s; %s:\n%s", r.error, f->log, h_fn_log_tail(f));
	return r;
}

char *h_http_header(const struct h_http *r, const char *name)
{
	size_t n = strlen(name);

	/* Header lines follow the status line, each after a CRLF. */
	for (const char *p = r->head ? strstr(r->head, "\r\n") : NULL; p && p[2] != '\r' && p[2] != '\0';
	     p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;

		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			return strndup(v, strcspn(v, "\r"));
		}
	}
	return NULL;
}

void h_http_free(struct h_http *r)
{
	free(r->head);
	free(r->body);
	r->head = r->body = NULL;
}

struct h_http_bg {
	pthread_t thread;
	int port;
	char *method, *path, *headers, *body;
	double timeout_s;
	struct h_http result;
};

static void *http_thread(void *arg)
{
	struct h_http_bg *bg = arg;

	http_do(bg->port, bg->method, bg->path, bg->headers, bg->body, bg->timeout_s, &bg->result);
	return NULL;
}

struct h_http_bg *h_http_start(int port, const char *method, const char *path, const char *headers,
			       const char *body, double timeout_s)
{
	struct h_http_bg *bg = calloc(1, sizeof *bg);

	bg->port = port;
	bg->method = strdup(method);
	bg->path = strdup(path);
	bg->headers = headers ? strdup(headers) : NULL;
	bg->body = body ? strdup(body) : NULL;
	bg->timeout_s = timeout_s;
	if (pthread_create(&bg->thread, NULL, http_thread, bg) != 0)
		cr_assert_fail("pthread_create failed");
	return bg;
}

struct h_http h_http_join(struct h_http_bg *bg)
{
	struct h_http r;

	pthread_join(bg->thread, NULL);
	r = bg->result;
	free(bg->method);
	free(bg->path);
	free(bg->headers);
	free(bg->body);
	free(bg);
	return r;
}

/* ---------------------------------------------------------------- /metrics */

/* Sums the samples of text starting with prefix; returns how many there were. */
static int metric_sum(const char *text, const char *prefix, double *sum)
{
	size_t n = strlen(prefix);
	int count = 0;

	*sum = 0;
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *space;

		if (strncmp(line, prefix, n) != 0)
			continue;
		space = strchr(line, ' ');
		if (space == NULL)
			continue;
		*sum += strtod(space + 1, NULL);
		count++;
	}
	return count;
}

double h_fn_metric(const struct h_fn *f, const char *prefix)
{
	struct h_http r = h_fn_http(f, "GET", "/metrics", NULL, NULL);
	double sum;
	int n;

	cr_assert_eq(r.status, 200, "GET /metrics: %d %s", r.status, r.body);
	n = metric_sum(r.body, prefix, &sum);
	if (n == 0)
		cr_assert_fail("no sample on /metrics starts with %s:\n%.4000s", prefix, r.body);
	h_http_free(&r);
	return sum;
}

bool h_fn_wait_metric(const struct h_fn *f, const char *prefix, double want, double timeout_s)
{
	double deadline = h_now() + timeout_s;

	for (;;) {
		if (h_fn_metric(f, prefix) == want)
			return true;
		if (h_now() > deadline)
			return false;
		pause_ms(50);
	}
}

/* ---------------------------------------------------------------- corral-storm and JSON */

char *h_storm(double timeout_s, const char *fmt, ...)
{
	char *bin = h_fn_bin("corral-storm"), *q = h_shq(bin), *args, *json;
	struct h_cmd r;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		abort();
	va_end(ap);
	r = h_run(timeout_s, "%s --json %s", q, args);
	if (r.status != 0)
		cr_assert_fail("corral-storm %s: status %d\nstdout: %s\nstderr: %s", args, r.status, r.out, r.err);
	if (!fn_json_ok(fn_json_parse(r.out, strlen(r.out))) || r.out[0] != '{')
		cr_assert_fail("corral-storm %s: stdout is not a JSON object: %s", args, r.out);
	json = r.out;
	r.out = NULL;
	h_cmd_free(&r);
	free(args);
	free(q);
	free(bin);
	return json;
}

static struct fn_json json_at(const char *json, const char *path)
{
	return fn_json_path(fn_json_parse(json, strlen(json)), path);
}

bool h_json_has(const char *json, const char *path)
{
	return fn_json_ok(json_at(json, path));
}

long long h_json_int(const char *json, const char *path, long long absent)
{
	int64_t v;

	return fn_json_int(json_at(json, path), &v) ? (long long)v : absent;
}

char *h_json_str(const char *json, const char *path)
{
	return fn_json_cstr(json_at(json, path));
}
