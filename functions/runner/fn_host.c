#include "functions/runner/fn_host.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "functions/runner/fn_env.h"

/* ---- spawning ------------------------------------------------------------------------ */

static void (*wipe_fn)(void *arg);
static void *wipe_arg;

void fn_host_set_wipe(void (*wipe)(void *arg), void *arg)
{
	wipe_fn = wipe;
	wipe_arg = arg;
}

static const char *exec_path;

void fn_host_set_exec(const char *path)
{
	exec_path = path;
}

void fn_host_wipe_inherited(void)
{
	if (wipe_fn)
		wipe_fn(wipe_arg);
	wipe_fn = NULL;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by definition */
	return fd < 0 ? -1 : fd;
#else
	return -1;
#endif
}

bool fn_host_spawn(const struct fn_host_config *cfg, struct fn_host *h, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	h->fd = h->pidfd = h->output_fd = -1;
	int sv[2], out[2] = {-1, -1};
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return false;
	}
	if (cfg->capture_output && pipe2(out, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	pid_t parent = getpid();
	h->spawned_at = clock_now_usec(); /* Init Duration covers fork, dlopen and fn_init */
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		if (out[0] >= 0) {
			close(out[0]);
			close(out[1]);
		}
		return false;
	}
	if (pid == 0) {
		/* A group of its own, before the function can fork: one kill(-pgid) reaches
		 * every process it starts (the parent sets it too, whichever runs first). */
		setpgid(0, 0);
		close(sv[0]);
		if (out[1] >= 0) { /* stdout and stderr: the pipe (fn_env.c keeps them so) */
			close(out[0]);
			dup2(out[1], STDOUT_FILENO);
			dup2(out[1], STDERR_FILENO);
			close(out[1]);
		}
		if (exec_path)
			fn_env_exec(exec_path, cfg, sv[1], h->spawned_at, parent);
		fn_env_main(cfg, sv[1], h->spawned_at, parent);
	}
	close(sv[1]);
	if (out[1] >= 0) {
		close(out[1]);
		h->output_fd = out[0];
		int oflags = fcntl(h->output_fd, F_GETFL);
		if (oflags >= 0)
			(void)fcntl(h->output_fd, F_SETFL, oflags | O_NONBLOCK);
	}
	(void)setpgid(pid, pid);
	h->pid = pid;
	h->pgid = pid;
	h->fd = sv[0];
	h->pidfd = open_pidfd(pid);
	int flags = fcntl(h->fd, F_GETFL);
	if (flags < 0 || fcntl(h->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		fn_host_close(h);
		return false;
	}
	return true;
}

/* ---- event-driven -------------------------------------------------------------------- */

enum fn_host_io fn_host_read(struct fn_host *h)
{
	uint8_t chunk[64 * 1024];
	for (;;) {
		ssize_t n = read(h->fd, chunk, sizeof(chunk));
		if (n > 0) {
			if (!fn_buf_append(&h->in, chunk, (size_t)n)) {
				errno = ENOMEM;
				return FN_HOST_IO_ERROR;
			}
			if ((size_t)n < sizeof(chunk))
				return FN_HOST_IO_OK;
			continue;
		}
		if (n == 0)
			return FN_HOST_IO_EOF;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? FN_HOST_IO_OK : FN_HOST_IO_ERROR;
	}
}

enum fn_decode_result fn_host_next_frame(struct fn_host *h, struct fn_frame *out, const char **why)
{
	size_t used = 0;
	enum fn_decode_result d = fn_frame_decode(h->in.data, h->in.len, out, &used, why);
	if (d == FN_DECODE_OK)
		fn_buf_consume(&h->in, used);
	return d;
}

bool fn_host_queue_invoke(struct fn_host *h, const char *request_id, usec_t deadline_usec,
			  const char *event, size_t event_len)
{
	struct fn_frame f = {.type = FN_FRAME_INVOKE};
	f.u.invoke.request_id = request_id;
	f.u.invoke.deadline_usec = deadline_usec;
	f.u.invoke.event = event;
	f.u.invoke.event_len = event_len;
	if (!fn_frame_encode(&h->out, &f))
		return false;
	h->invocations++;
	return true;
}

enum fn_host_io fn_host_flush(struct fn_host *h)
{
	size_t done = 0;
	while (done < h->out.len) {
		ssize_t n = send(h->fd, h->out.data + done, h->out.len - done, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		fn_buf_consume(&h->out, done);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return FN_HOST_IO_PENDING;
		return errno == EPIPE || errno == ECONNRESET ? FN_HOST_IO_EOF : FN_HOST_IO_ERROR;
	}
	h->out.len = 0;
	if (h->out.cap > 256 * 1024) /* a big event's buffer is not kept for the next one */
		fn_buf_free(&h->out);
	return FN_HOST_IO_OK;
}

enum fn_host_io fn_host_stop(struct fn_host *h)
{
	struct fn_frame f = {.type = FN_FRAME_SHUTDOWN};
	if (!fn_frame_encode(&h->out, &f)) {
		errno = ENOMEM;
		return FN_HOST_IO_ERROR;
	}
	return fn_host_flush(h);
}

void fn_host_kill(struct fn_host *h)
{
	if (h->pgid > 0)
		kill(-h->pgid, SIGKILL);
	if (h->pid > 0 && !h->exited)
		kill(h->pid, SIGKILL);
}

/*
 * The environment has exited but is not reaped yet (a zombie): its pid, and so the
 * group id, cannot be reused, so killing the group now cannot hit a stranger.  Whatever
 * the function forked dies here, however the environment ended.
 */
static void kill_group_before_reap(struct fn_host *h)
{
	if (h->pgid > 0) {
		kill(-h->pgid, SIGKILL);
		h->pgid = 0;
	}
}

bool fn_host_reap(struct fn_host *h, bool wait)
{
	if (h->exited)
		return true;
	if (h->pid <= 0)
		return false;
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		int w = waitid(P_PID, (id_t)h->pid, &si, WEXITED | WNOWAIT | (wait ? 0 : WNOHANG));
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0 && si.si_pid == h->pid)
			kill_group_before_reap(h);
		int status;
		pid_t r = waitpid(h->pid, &status, wait ? 0 : WNOHANG);
		if (r == h->pid) {
			h->exited = true;
			h->wait_status = status;
			h->pid = 0;
			return true;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) { /* ECHILD: someone else reaped it; its status is lost */
			h->exited = true;
			h->wait_status = 0;
			h->pid = 0;
			return true;
		}
		return false;
	}
}

void fn_host_close(struct fn_host *h)
{
	if (h->pid > 0 && !h->exited) {
		fn_host_kill(h);
		(void)fn_host_reap(h, true);
	}
	if (h->fd >= 0)
		close(h->fd);
	if (h->pidfd >= 0)
		close(h->pidfd);
	if (h->output_fd >= 0)
		close(h->output_fd);
	h->fd = h->pidfd = h->output_fd = -1;
	fn_buf_free(&h->in);
	fn_buf_free(&h->out);
}

static void log_output_line(const char *function_name, const char *line, size_t len, bool cut)
{
	char text[FN_HOST_OUTPUT_LINE_MAX + 1], msg[4 * FN_HOST_OUTPUT_LINE_MAX + 1], name[128];
	memcpy(text, line, len);
	text[len] = '\0'; /* a NUL the function wrote ends the line early: log_clean stops there */
	log_info("event=fn_log function=%s request_id=- stream=output%s msg=\"%s\"",
		 log_clean(function_name ? function_name : "", name, sizeof(name)),
		 cut ? " truncated=true" : "", log_clean(text, msg, sizeof(msg)));
}

enum fn_host_io fn_host_read_output(struct fn_host *h, const char *function_name)
{
	char chunk[16 * 1024];
	for (;;) {
		ssize_t n = read(h->output_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return FN_HOST_IO_OK;
		if (n <= 0) { /* EOF (or an error, taken as one): the last, unended line */
			if (h->output_len > 0 && !h->output_cut)
				log_output_line(function_name, h->output_line, h->output_len,
						false);
			h->output_len = 0;
			return n == 0 ? FN_HOST_IO_EOF : FN_HOST_IO_ERROR;
		}
		for (ssize_t i = 0; i < n; i++) {
			char c = chunk[i];
			if (c == '\n') {
				if (!h->output_cut)
					log_output_line(function_name, h->output_line,
							h->output_len, false);
				h->output_len = 0;
				h->output_cut = false;
				continue;
			}
			if (h->output_cut)
				continue;
			h->output_line[h->output_len++] = c;
			if (h->output_len == sizeof(h->output_line)) {
				log_output_line(function_name, h->output_line, h->output_len, true);
				h->output_len = 0;
				h->output_cut = true;
			}
		}
	}
}

void fn_host_log(const char *function_name, const struct fn_log *line)
{
	char msg[1024], name[128], id[128];
	log_info("event=fn_log function=%s request_id=%s msg=\"%s\"",
		 log_clean(function_name ? function_name : "", name, sizeof(name)),
		 log_clean(line->request_id[0] ? line->request_id : "-", id, sizeof(id)),
		 log_clean(line->message, msg, sizeof(msg)));
}

void fn_host_exit_reason(int wait_status, char *buf, size_t len)
{
	if (WIFSIGNALED(wait_status)) {
		int sig = WTERMSIG(wait_status);
		const char *name = strsignal(sig);
		char lower[64];
		snprintf(lower, sizeof(lower), "%s", name ? name : "unknown signal");
		if (lower[0] >= 'A' && lower[0] <= 'Z')
			lower[0] = (char)(lower[0] - 'A' + 'a');
		snprintf(buf, len, "Runtime exited with error: signal: %s%s", lower,
			 WCOREDUMP(wait_status) ? " (core dumped)" : "");
	} else if (WIFEXITED(wait_status)) {
		if (WEXITSTATUS(wait_status) == 0)
			snprintf(buf, len, "Runtime exited without providing a reason");
		else
			snprintf(buf, len, "Runtime exited with error: exit status %d",
				 WEXITSTATUS(wait_status));
	} else {
		snprintf(buf, len, "Runtime exited (wait status %#x)", (unsigned)wait_status);
	}
}

void fn_host_timeout_message(usec_t timeout_usec, char *buf, size_t len)
{
	snprintf(buf, len, "Task timed out after %.2f seconds",
		 (double)timeout_usec / USEC_PER_SEC);
}

/* ---- blocking ------------------------------------------------------------------------ */

enum wait_result { WAIT_FRAME, WAIT_TIMEOUT, WAIT_EOF, WAIT_GARBAGE };

/* The next frame from the environment, flushing h->out meanwhile, until deadline. */
static enum wait_result wait_frame(struct fn_host *h, usec_t deadline, struct fn_frame *f,
				   const char **why)
{
	for (;;) {
		enum fn_decode_result d = fn_host_next_frame(h, f, why);
		if (d == FN_DECODE_OK)
			return WAIT_FRAME;
		if (d == FN_DECODE_ERROR)
			return WAIT_GARBAGE;
		if (h->out.len > 0) {
			enum fn_host_io io = fn_host_flush(h);
			if (io == FN_HOST_IO_EOF || io == FN_HOST_IO_ERROR)
				return WAIT_EOF;
		}
		usec_t left = deadline - clock_now_usec();
		if (left <= 0)
			return WAIT_TIMEOUT;
		struct pollfd pfd = {h->fd, (short)(POLLIN | (h->out.len ? POLLOUT : 0)), 0};
		int ms = left > 3600 * USEC_PER_SEC ? 3600 * 1000 : (int)((left + 999) / 1000);
		int n = poll(&pfd, 1, ms);
		if (n < 0 && errno != EINTR)
			return WAIT_EOF;
		if (n <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		enum fn_host_io io = fn_host_read(h);
		if (io == FN_HOST_IO_EOF || io == FN_HOST_IO_ERROR) {
			/* Frames sent just before the end still count. */
			d = fn_host_next_frame(h, f, why);
			if (d == FN_DECODE_OK)
				return WAIT_FRAME;
			return WAIT_EOF;
		}
	}
}

/*
 * Reaps an environment whose socket closed.  It is normally exiting already; one that
 * closed fd 3 and lives on gets a second and then SIGKILL.
 */
static void reap_after_eof(struct fn_host *h)
{
	if (h->pidfd >= 0) {
		struct pollfd pfd = {h->pidfd, POLLIN, 0};
		while (poll(&pfd, 1, 1000) < 0 && errno == EINTR)
			;
	}
	if (!fn_host_reap(h, h->pidfd < 0)) {
		fn_host_kill(h);
		(void)fn_host_reap(h, true);
	}
}

static void add_log(struct fn_invocation *inv, const char *msg)
{
	size_t n = strlen(msg);
	char *logs = realloc(inv->logs, inv->logs_len + n + 2);
	if (!logs)
		return;
	memcpy(logs + inv->logs_len, msg, n);
	logs[inv->logs_len + n] = '\n';
	logs[inv->logs_len + n + 1] = '\0';
	inv->logs = logs;
	inv->logs_len += n + 1;
}

/* Ends an invocation that got no result: the environment is killed if need be and reaped. */
static enum fn_outcome fail(struct fn_host *h, struct fn_invocation *out, enum wait_result w,
			    const char *why, usec_t timeout)
{
	enum fn_outcome outcome = FN_OUTCOME_PROTOCOL;
	switch (w) {
	case WAIT_TIMEOUT:
		fn_host_kill(h);
		(void)fn_host_reap(h, true);
		outcome = FN_OUTCOME_TIMEOUT;
		fn_host_timeout_message(timeout, out->error, sizeof(out->error));
		break;
	case WAIT_EOF:
		reap_after_eof(h);
		outcome = FN_OUTCOME_CRASH;
		fn_host_exit_reason(h->wait_status, out->error, sizeof(out->error));
		break;
	case WAIT_GARBAGE:
	case WAIT_FRAME: /* a frame that does not belong here */
		fn_host_kill(h);
		(void)fn_host_reap(h, true);
		outcome = FN_OUTCOME_PROTOCOL;
		snprintf(out->error, sizeof(out->error), "protocol error: %s", why);
		break;
	}
	out->outcome = outcome;
	return outcome;
}

static enum fn_outcome wait_ready(struct fn_host *h, struct fn_invocation *out)
{
	usec_t deadline = h->spawned_at + FN_HOST_INIT_TIMEOUT_USEC;
	for (;;) {
		struct fn_frame f;
		const char *why = NULL;
		enum wait_result w = wait_frame(h, deadline, &f, &why);
		if (w == WAIT_TIMEOUT) {
			fail(h, out, w, why, FN_HOST_INIT_TIMEOUT_USEC);
			snprintf(out->error, sizeof(out->error),
				 "Init timed out after %.2f seconds",
				 (double)FN_HOST_INIT_TIMEOUT_USEC / USEC_PER_SEC);
			return out->outcome;
		}
		if (w != WAIT_FRAME)
			return fail(h, out, w, why, 0);
		if (f.type == FN_FRAME_LOG) {
			add_log(out, f.u.log.message);
			fn_frame_clear(&f);
			continue;
		}
		if (f.type != FN_FRAME_READY) {
			why = "expected READY";
			fn_frame_clear(&f);
			return fail(h, out, WAIT_FRAME, why, 0);
		}
		if (f.u.ready.error[0]) {
			snprintf(out->error, sizeof(out->error), "%s", f.u.ready.error);
			fn_frame_clear(&f);
			reap_after_eof(h);
			out->outcome = FN_OUTCOME_INIT_ERROR;
			return out->outcome;
		}
		fn_frame_clear(&f);
		h->ready = true;
		return FN_OUTCOME_RESULT;
	}
}

enum fn_outcome fn_host_invoke(struct fn_host *h, const char *request_id, usec_t timeout_usec,
			       const char *event, size_t event_len, struct fn_invocation *out)
{
	memset(out, 0, sizeof(*out));
	if (h->exited || h->fd < 0) {
		snprintf(out->error, sizeof(out->error), "environment is gone");
		out->outcome = FN_OUTCOME_CRASH;
		return out->outcome;
	}
	if (event_len > FN_EVENT_MAX) {
		snprintf(out->error, sizeof(out->error),
			 "event of %zu bytes is over the %u byte limit", event_len, FN_EVENT_MAX);
		out->outcome = FN_OUTCOME_EVENT_TOO_LARGE;
		return out->outcome;
	}
	if (!h->ready && wait_ready(h, out) != FN_OUTCOME_RESULT)
		return out->outcome;

	usec_t deadline = clock_now_usec() + timeout_usec;
	if (!fn_host_queue_invoke(h, request_id, deadline, event, event_len)) {
		/* Only memory can fail here: no frame, no answer; do not leave a half state. */
		fn_host_kill(h);
		(void)fn_host_reap(h, true);
		snprintf(out->error, sizeof(out->error), "out of memory queueing the event");
		out->outcome = FN_OUTCOME_PROTOCOL;
		return out->outcome;
	}
	for (;;) {
		struct fn_frame f;
		const char *why = NULL;
		enum wait_result w = wait_frame(h, deadline, &f, &why);
		if (w != WAIT_FRAME)
			return fail(h, out, w, why, timeout_usec);
		if (f.type == FN_FRAME_LOG) {
			add_log(out, f.u.log.message);
			fn_frame_clear(&f);
			continue;
		}
		if (f.type != FN_FRAME_RESULT || strcmp(f.u.result.request_id, request_id) != 0) {
			why = f.type != FN_FRAME_RESULT ? "expected RESULT"
							: "RESULT for another request";
			fn_frame_clear(&f);
			return fail(h, out, WAIT_FRAME, why, 0);
		}
		out->result = f;
		out->outcome = FN_OUTCOME_RESULT;
		return out->outcome;
	}
}

void fn_invocation_clear(struct fn_invocation *inv)
{
	fn_frame_clear(&inv->result);
	free(inv->logs);
	memset(inv, 0, sizeof(*inv));
}

void fn_host_shutdown(struct fn_host *h, usec_t grace_usec)
{
	if (h->exited || h->pid <= 0)
		return;
	usec_t deadline = clock_now_usec() + grace_usec;
	enum wait_result w = WAIT_EOF;
	enum fn_host_io io = fn_host_stop(h);
	while (io == FN_HOST_IO_OK || io == FN_HOST_IO_PENDING) {
		struct fn_frame f;
		const char *why;
		w = wait_frame(h, deadline, &f, &why);
		if (w != WAIT_FRAME)
			break;
		fn_frame_clear(&f); /* fn_shutdown's logs */
	}
	if (w == WAIT_EOF) {
		reap_after_eof(h);
	} else {
		fn_host_kill(h);
		(void)fn_host_reap(h, true);
	}
}
