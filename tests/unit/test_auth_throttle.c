/*
 * proxy/auth_throttle.c: failed logins by source address, delayed past
 * auth_failure_delay, refused past auth_failure_max, forgotten after the window, and
 * a table that stays its size under many addresses.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy/auth_throttle.h"

#define SEC USEC_PER_SEC

static struct sockaddr_in v4(const char *ip, int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static enum auth_throttle_verdict fail_once(struct auth_throttle *t, const char *ip, usec_t now)
{
	struct sockaddr_in a = v4(ip, 40000);
	return auth_throttle_failed(t, (struct sockaddr *)&a, now, 5, 20, NULL);
}

static bool refused(struct auth_throttle *t, const char *ip, usec_t now)
{
	struct sockaddr_in a = v4(ip, 1);
	return auth_throttle_refused(t, (struct sockaddr *)&a, now);
}

Test(auth_throttle, delays_after_delay_then_refuses_at_max)
{
	struct auth_throttle *t = auth_throttle_new(64);
	usec_t now = 1000 * SEC;
	for (int i = 1; i <= 5; i++)
		cr_expect_eq(fail_once(t, "10.0.0.1", now + i), THROTTLE_ANSWER, "failure %d", i);
	for (int i = 6; i < 20; i++)
		cr_expect_eq(fail_once(t, "10.0.0.1", now + i), THROTTLE_DELAY, "failure %d", i);
	cr_expect_not(refused(t, "10.0.0.1", now + 20));
	cr_expect_eq(fail_once(t, "10.0.0.1", now + 20), THROTTLE_REFUSE);
	cr_expect(refused(t, "10.0.0.1", now + 21));
	/* another address, and the same one on another port, as counted */
	cr_expect_not(refused(t, "10.0.0.2", now + 21));
	cr_expect_eq(fail_once(t, "10.0.0.2", now + 21), THROTTLE_ANSWER);
	/* refused for AUTH_THROTTLE_REFUSE_SEC, then forgiven */
	cr_expect(refused(t, "10.0.0.1", now + 20 + (AUTH_THROTTLE_REFUSE_SEC * SEC) - 1));
	cr_expect_not(refused(t, "10.0.0.1", now + 20 + AUTH_THROTTLE_REFUSE_SEC * SEC));
	auth_throttle_free(t);
}

Test(auth_throttle, window_restarts_the_count)
{
	struct auth_throttle *t = auth_throttle_new(64);
	usec_t now = 1000 * SEC;
	int n = 0;
	for (int i = 0; i < 5; i++)
		fail_once(t, "10.0.0.3", now);
	struct sockaddr_in a = v4("10.0.0.3", 5);
	cr_expect_eq(auth_throttle_failed(t, (struct sockaddr *)&a,
					  now + AUTH_THROTTLE_WINDOW_SEC * SEC, 5, 20, &n),
		     THROTTLE_ANSWER);
	cr_expect_eq(n, 1, "a new window counts from 1, got %d", n);
	auth_throttle_free(t);
}

Test(auth_throttle, zero_thresholds_never_throttle)
{
	struct auth_throttle *t = auth_throttle_new(64);
	struct sockaddr_in a = v4("10.0.0.4", 5);
	for (int i = 0; i < 100; i++)
		cr_expect_eq(auth_throttle_failed(t, (struct sockaddr *)&a, 1, 0, 0, NULL),
			     THROTTLE_ANSWER);
	cr_expect_not(auth_throttle_refused(t, (struct sockaddr *)&a, 2));
	auth_throttle_free(t);
}

Test(auth_throttle, ipv6_and_unix_addresses)
{
	struct auth_throttle *t = auth_throttle_new(64);
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &a.sin6_addr);
	for (int i = 0; i < 3; i++)
		auth_throttle_failed(t, (struct sockaddr *)&a, 1, 1, 3, NULL);
	cr_expect(auth_throttle_refused(t, (struct sockaddr *)&a, 2));
	struct sockaddr other = {.sa_family = AF_UNIX};
	cr_expect_eq(auth_throttle_failed(t, &other, 1, 1, 1, NULL), THROTTLE_ANSWER);
	auth_throttle_free(t);
}

/* 100000 addresses through a 256-slot table: it never holds more than 256, and the
 * newest failure of each is counted (the least recently seen is given up). */
Test(auth_throttle, bounded_under_many_addresses)
{
	struct auth_throttle *t = auth_throttle_new(256);
	for (int i = 0; i < 100000; i++) {
		struct sockaddr_in a = v4("10.0.0.0", 1);
		a.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
		auth_throttle_failed(t, (struct sockaddr *)&a, 1000 * SEC + i, 5, 20, NULL);
	}
	cr_expect_leq(auth_throttle_size(t), 256);
	/* a hot address keeps its count among the churn */
	for (int i = 0; i < 20; i++) {
		fail_once(t, "192.168.1.1", 2000 * SEC + i);
		struct sockaddr_in a = v4("10.0.0.0", 1);
		a.sin_addr.s_addr = htonl(0x0b000000u + (uint32_t)i);
		auth_throttle_failed(t, (struct sockaddr *)&a, 2000 * SEC + i, 5, 20, NULL);
	}
	cr_expect(refused(t, "192.168.1.1", 2000 * SEC + 30));
	auth_throttle_free(t);
}
