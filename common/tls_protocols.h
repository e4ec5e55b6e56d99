/*
 * PgBouncer's tls_protocols syntax (client_tls_protocols): a list, separated by commas
 * or spaces, of tlsv1.0 tlsv1.1 tlsv1.2 tlsv1.3, "secure" (tlsv1.2,tlsv1.3), "all" and
 * "legacy" (every version).  Kept free of OpenSSL so the unit tests need none.
 */
#ifndef CORRAL_COMMON_TLS_PROTOCOLS_H
#define CORRAL_COMMON_TLS_PROTOCOLS_H

#include <stdbool.h>
#include <stddef.h>

enum {
	TLS_PROTO_1_0 = 1 << 0,
	TLS_PROTO_1_1 = 1 << 1,
	TLS_PROTO_1_2 = 1 << 2,
	TLS_PROTO_1_3 = 1 << 3,
	TLS_PROTO_SECURE = TLS_PROTO_1_2 | TLS_PROTO_1_3,
	TLS_PROTO_ALL = TLS_PROTO_1_0 | TLS_PROTO_1_1 | TLS_PROTO_1_2 | TLS_PROTO_1_3,
};

/*
 * The set of versions text names into *mask.  False on an unknown name (a copy of it,
 * cut to badlen, goes to bad) or an empty list.
 */
bool tls_protocols_parse(const char *text, unsigned *mask, char *bad, size_t badlen);

/* mask as the configuration would spell it: "secure", "all" or a list of versions. */
void tls_protocols_format(unsigned mask, char *out, size_t len);

#endif
