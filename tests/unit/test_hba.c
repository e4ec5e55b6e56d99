/* pg_hba.conf rules: parsing, CIDR matching (IPv4, IPv6, v4-mapped), first match,
 * all / sameuser, and every refusal with its file and line. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/hba.h"

static struct sockaddr_storage ss;

/* A sockaddr for a textual IPv4 or IPv6 address (static: one at a time). */
static const struct sockaddr *sa(const char *text)
{
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		cr_assert_fail("bad test address %s", text);
	return (const struct sockaddr *)&ss;
}

static struct hba_rules parse_ok(const char *text)
{
	struct hba_rules r;
	char err[512] = "";
	cr_assert(hba_parse("hba.conf", text, &r, err, sizeof(err)), "parse: %s", err);
	return r;
}

/* The line number of the rule that matches, 0 for none. */
static int match_line(const struct hba_rules *r, const char *addr, const char *user, const char *db)
{
	struct hba_client cl = {.addr = sa(addr), .user = user, .database = db};
	const struct hba_rule *m = hba_match(r, &cl);
	return m ? m->line : 0;
}

static void expect_error(const char *text, const char *want)
{
	struct hba_rules r;
	char err[512] = "";
	cr_expect(!hba_parse("hba.conf", text, &r, err, sizeof(err)), "accepted: %s", text);
	cr_expect(strstr(err, want) != NULL, "error for [%s]: want \"%s\" in \"%s\"", text, want,
		  err);
	cr_expect_eq(r.n, 0);
}

Test(hba, parses_columns_and_methods)
{
	struct hba_rules r = parse_ok("# comment\n"
				      "\n"
				      "host all all 127.0.0.1/32 trust   # trailing comment\n"
				      "hostssl db1,db2 u1,u2 ::1/128 scram-sha-256\n"
				      "hostnossl sameuser all 10.0.0.0 255.0.0.0 md5\n"
				      "host\treplication all samehost password\n"
				      "host all all all reject\n"
				      "hostssl all all 0.0.0.0/0 cert\n");
	cr_assert_eq(r.n, 6);
	cr_expect_eq(r.rules[0].line, 3);
	cr_expect_eq(r.rules[0].method, HBA_TRUST);
	cr_expect(r.rules[0].dbs.all && r.rules[0].users.all);
	cr_expect_eq(r.rules[1].type, HBA_HOSTSSL);
	cr_expect_eq(r.rules[1].family, AF_INET6);
	cr_expect_eq(r.rules[1].dbs.n, 2);
	cr_expect_str_eq(r.rules[1].users.names[1], "u2");
	cr_expect_eq(r.rules[1].method, HBA_SCRAM);
	cr_expect_eq(r.rules[2].type, HBA_HOSTNOSSL);
	cr_expect(r.rules[2].dbs.sameuser);
	cr_expect_eq(r.rules[2].mask[0], 0xff);
	cr_expect_eq(r.rules[2].mask[1], 0);
	cr_expect_eq(r.rules[2].method, HBA_MD5);
	cr_expect_eq(r.rules[3].addr_kind, HBA_ADDR_SAMEHOST);
	cr_expect_eq(r.rules[3].method, HBA_PASSWORD);
	cr_expect_eq(r.rules[4].addr_kind, HBA_ADDR_ALL);
	cr_expect_eq(r.rules[4].method, HBA_REJECT);
	cr_expect_eq(r.rules[5].method, HBA_CERT);
	cr_expect_str_eq(hba_method_name(HBA_SCRAM), "scram-sha-256");
	hba_free(&r);
}

Test(hba, cidr_ipv4)
{
	struct hba_rules r = parse_ok("host all all 192.168.1.0/24 trust\n"
				      "host all all 10.1.2.3/32 md5\n"
				      "host all all 172.16.0.0 255.240.0.0 reject\n");
	cr_expect_eq(match_line(&r, "192.168.1.77", "u", "d"), 1);
	cr_expect_eq(match_line(&r, "192.168.2.1", "u", "d"), 0);
	cr_expect_eq(match_line(&r, "10.1.2.3", "u", "d"), 2);
	cr_expect_eq(match_line(&r, "10.1.2.4", "u", "d"), 0);
	cr_expect_eq(match_line(&r, "172.31.255.255", "u", "d"), 3);
	cr_expect_eq(match_line(&r, "172.32.0.1", "u", "d"), 0);
	/* An IPv4 client seen by a listener on :: matches IPv4 rules, not IPv6 ones. */
	cr_expect_eq(match_line(&r, "::ffff:192.168.1.5", "u", "d"), 1);
	cr_expect_eq(match_line(&r, "::1", "u", "d"), 0);
	hba_free(&r);
}

Test(hba, cidr_ipv6)
{
	struct hba_rules r = parse_ok(
		"host all all ::1/128 trust\n"
		"host all all 2001:db8::/32 md5\n"
		"host all all fe80::1/10 reject\n"); /* host bits are ignored */
	cr_expect_eq(match_line(&r, "::1", "u", "d"), 1);
	cr_expect_eq(match_line(&r, "::2", "u", "d"), 0);
	cr_expect_eq(match_line(&r, "2001:db8:ffff::1", "u", "d"), 2);
	cr_expect_eq(match_line(&r, "2001:db9::1", "u", "d"), 0);
	cr_expect_eq(match_line(&r, "febf::9", "u", "d"), 3);
	cr_expect_eq(match_line(&r, "127.0.0.1", "u", "d"), 0);
	hba_free(&r);
}

Test(hba, first_match_decides)
{
	struct hba_rules r = parse_ok("host app alice 0.0.0.0/0 reject\n"
				      "host app all 127.0.0.0/8 scram-sha-256\n"
				      "host all all 0.0.0.0/0 md5\n");
	cr_expect_eq(match_line(&r, "127.0.0.1", "alice", "app"), 1);
	cr_expect_eq(match_line(&r, "127.0.0.1", "bob", "app"), 2);
	cr_expect_eq(match_line(&r, "10.0.0.1", "bob", "app"), 3);
	cr_expect_eq(match_line(&r, "10.0.0.1", "alice", "other"), 3);
	hba_free(&r);
}

Test(hba, names_all_sameuser_replication)
{
	struct hba_rules r = parse_ok("host replication all all trust\n"
				      "host sameuser all all md5\n"
				      "host a,b x,y all password\n"
				      "host all all 127.0.0.1/32 reject\n");
	cr_expect_eq(match_line(&r, "127.0.0.1", "carol", "carol"), 2);
	cr_expect_eq(match_line(&r, "127.0.0.1", "x", "b"), 3);
	cr_expect_eq(match_line(&r, "127.0.0.1", "y", "a"), 3);
	cr_expect_eq(match_line(&r, "127.0.0.1", "z", "a"), 4);
	/* "replication" matches no ordinary connection, even to a database so named. */
	cr_expect_eq(match_line(&r, "127.0.0.1", "u", "replication"), 4);
	cr_expect_eq(match_line(&r, "10.0.0.1", "u", "a"), 0);
	hba_free(&r);
}

Test(hba, ssl_types_and_samehost)
{
	struct hba_rules r = parse_ok("hostssl all all all trust\n"
				      "hostnossl all all samehost md5\n");
	struct hba_client cl = {.addr = sa("10.0.0.9"), .user = "u", .database = "d"};
	cr_expect_null(hba_match(&r, &cl), "no is_local: samehost never matches");
	cl.ssl = true;
	cr_expect_eq(hba_match(&r, &cl)->line, 1);
	hba_free(&r);
}

static bool always_local(const struct sockaddr *a)
{
	(void)a;
	return true;
}

Test(hba, samehost_asks_the_caller)
{
	struct hba_rules r = parse_ok("host all all samehost trust\n");
	struct hba_client cl = {.addr = sa("10.0.0.9"),
				.user = "u",
				.database = "d",
				.is_local = always_local};
	cr_expect_eq(hba_match(&r, &cl)->line, 1);
	hba_free(&r);
}

Test(hba, errors_name_the_line)
{
	expect_error("host all all all trust\n\nhost all all all ident\n",
		     "hba.conf:3: authentication method \"ident\" is not supported");
	expect_error("local all all trust\n", "hba.conf:1: \"local\" lines are not supported");
	expect_error("# x\nhots all all all trust\n",
		     "hba.conf:2: invalid connection type \"hots\"");
	expect_error("host all +admins all md5\n", "hba.conf:1: \"+admins\": +group membership");
	expect_error("host @dbs all all md5\n", "hba.conf:1: \"@dbs\": @file inclusion");
	expect_error("host all all samenet md5\n", "hba.conf:1: samenet is not supported");
	expect_error("host all all db.example.com md5\n", "hba.conf:1: invalid IP address");
	expect_error("host all all 10.0.0.0/33 md5\n", "hba.conf:1: invalid CIDR mask");
	expect_error("host all all ::/129 md5\n", "invalid CIDR mask");
	expect_error("host all all 10.0.0.0 md5\n", "hba.conf:1: invalid IP mask \"md5\"");
	expect_error("host all all 10.0.0.0 255.0.255.0 md5\n", "invalid IP mask");
	expect_error("host all all 10.0.0.0\n", "end-of-line before authentication method");
	expect_error("host all all\n", "hba.conf:1: end-of-line before IP address specification");
	expect_error("host all all 10.0.0.0/8\n", "end-of-line before authentication method");
	expect_error("host\n", "end-of-line before database specification");
	expect_error("host all all all md5 clientcert=verify-full\n",
		     "option \"clientcert=verify-full\" after the method is not supported");
	expect_error("host all all all cert\n",
		     "hba.conf:1: cert authentication is only supported on hostssl connections");
	expect_error("hostnossl all all all cert\n", "only supported on hostssl");
	expect_error("host \"all\" all all md5\n", "quoted database names are not supported");
	expect_error("host samerole all all md5\n", "\"samerole\" is not supported");
	expect_error("hostgssenc all all all md5\n", "not supported (no GSSAPI)");
}

Test(hba, copy_and_load)
{
	char path[] = "/tmp/corral-hba-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	const char text[] = "host all all 127.0.0.1/32 trust\nhost all all ::1/128 md5\n";
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	struct hba_rules r, c;
	char err[512] = "";
	cr_assert(hba_load(path, &r, err, sizeof(err)), "%s", err);
	cr_assert(hba_copy(&r, &c));
	hba_free(&r);
	cr_expect_eq(c.n, 2);
	cr_expect_eq(match_line(&c, "::1", "u", "d"), 2);
	hba_free(&c);
	unlink(path);
	cr_expect(!hba_load(path, &r, err, sizeof(err)));
	cr_expect(strstr(err, "cannot open") != NULL, "%s", err);
}

Test(hba, reference_file_loads)
{
	/* conf/hba.conf is documentation; it must also stay valid.  Tests run from the
	 * repository root (make unit); elsewhere there is nothing to check. */
	if (access("conf/hba.conf", R_OK) != 0)
		return;
	struct hba_rules r;
	char err[512] = "";
	cr_assert(hba_load("conf/hba.conf", &r, err, sizeof(err)), "%s", err);
	cr_expect_eq(match_line(&r, "127.0.0.1", "u", "d"), 7);
	cr_expect_eq(match_line(&r, "10.0.0.1", "u", "d"), 10);
	cr_expect_eq(r.rules[2].method, HBA_SCRAM);
	hba_free(&r);
}
