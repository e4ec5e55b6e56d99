/* See fake_server.h. */
#include "tests/integration/fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

int fake_listen(int backlog, int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, backlog) == 0 &&
		  getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
	*port = ntohs(a.sin_port);
	return fd;
}

bool fake_read_full(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

char *fake_read_msg(int fd, bool startup, size_t *len)
{
	char type;
	uint32_t n;
	if ((!startup && !fake_read_full(fd, &type, 1)) || !fake_read_full(fd, &n, 4))
		return NULL;
	n = ntohl(n);
	if (n < 4 || n > 10000)
		return NULL;
	char *body = calloc(1, n - 4 + 1);
	if (!fake_read_full(fd, body, n - 4)) {
		free(body);
		return NULL;
	}
	*len = n - 4;
	return body;
}

bool fake_send_auth(int fd, uint32_t code, const char *data, size_t len)
{
	char buf[512];
	cr_assert(len <= sizeof(buf) - 9);
	uint32_t n = htonl((uint32_t)(4 + 4 + len)), c = htonl(code);
	buf[0] = 'R';
	memcpy(buf + 1, &n, 4);
	memcpy(buf + 5, &c, 4);
	memcpy(buf + 9, data, len);
	return send(fd, buf, 9 + len, MSG_NOSIGNAL) == (ssize_t)(9 + len);
}

void fake_send_ok_ready(int fd)
{
	(void)fake_send_auth(fd, 0, "", 0);
	static const char ready[] = {'Z', 0, 0, 0, 5, 'I'};
	(void)send(fd, ready, sizeof(ready), MSG_NOSIGNAL);
}

char *fake_make_role(PGconn *su, const char *name, const char *password)
{
	char *sql = h_printf("do $$ begin create role %s login password '%s'; "
			     "exception when duplicate_object then null; end $$",
			     name, password);
	h_exec_ok(su, sql);
	free(sql);
	sql = h_printf("select rolpassword from pg_authid where rolname = '%s'", name);
	char *v = h_value(su, sql);
	free(sql);
	cr_assert(strncmp(v, "SCRAM-SHA-256$", 14) == 0, "%s's secret: %s", name, v);
	return v;
}
