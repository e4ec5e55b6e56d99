/* common/tls_protocols.c: PgBouncer's client_tls_protocols syntax. */
#include <criterion/criterion.h>

#include "common/tls_protocols.h"

static unsigned parse_ok(const char *text)
{
	unsigned m = 0;
	char bad[32];
	cr_assert(tls_protocols_parse(text, &m, bad, sizeof(bad)), "%s", text);
	return m;
}

Test(tls_protocols, names_and_aliases)
{
	cr_expect_eq(parse_ok("secure"), TLS_PROTO_1_2 | TLS_PROTO_1_3);
	cr_expect_eq(parse_ok("all"), TLS_PROTO_ALL);
	cr_expect_eq(parse_ok("legacy"), TLS_PROTO_ALL);
	cr_expect_eq(parse_ok("tlsv1.3"), TLS_PROTO_1_3);
	cr_expect_eq(parse_ok("tlsv1.2,tlsv1.3"), TLS_PROTO_SECURE);
	cr_expect_eq(parse_ok(" TLSv1.0 , tlsv1.2 "), TLS_PROTO_1_0 | TLS_PROTO_1_2);
	cr_expect_eq(parse_ok("tlsv1.1 tlsv1.2"), TLS_PROTO_1_1 | TLS_PROTO_1_2);
}

Test(tls_protocols, unknown_and_empty_are_refused)
{
	unsigned m = 7;
	char bad[32];
	cr_expect_not(tls_protocols_parse("tlsv1.2,sslv3", &m, bad, sizeof(bad)));
	cr_expect_str_eq(bad, "sslv3");
	cr_expect_eq(m, 7); /* untouched on failure */
	cr_expect_not(tls_protocols_parse("", &m, bad, sizeof(bad)));
	cr_expect_not(tls_protocols_parse(" , ", &m, bad, sizeof(bad)));
	cr_expect_str_eq(bad, "");
}

Test(tls_protocols, format_reads_back)
{
	char out[64];
	tls_protocols_format(TLS_PROTO_SECURE, out, sizeof(out));
	cr_expect_str_eq(out, "secure");
	tls_protocols_format(TLS_PROTO_ALL, out, sizeof(out));
	cr_expect_str_eq(out, "all");
	tls_protocols_format(TLS_PROTO_1_0 | TLS_PROTO_1_3, out, sizeof(out));
	cr_expect_str_eq(out, "tlsv1.0,tlsv1.3");
	cr_expect_eq(parse_ok(out), TLS_PROTO_1_0 | TLS_PROTO_1_3);
}
