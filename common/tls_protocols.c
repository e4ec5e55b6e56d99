#include "common/tls_protocols.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/macros.h"

static const struct {
	const char *name;
	unsigned mask;
} names[] = {
	{"tlsv1.0", TLS_PROTO_1_0}, {"tlsv1.1", TLS_PROTO_1_1},   {"tlsv1.2", TLS_PROTO_1_2},
	{"tlsv1.3", TLS_PROTO_1_3}, {"secure", TLS_PROTO_SECURE}, {"all", TLS_PROTO_ALL},
	{"legacy", TLS_PROTO_ALL},
};

bool tls_protocols_parse(const char *text, unsigned *mask, char *bad, size_t badlen)
{
	unsigned m = 0;
	const char *p = text;
	if (badlen)
		bad[0] = '\0';
	for (;;) {
		p += strspn(p, ", \t");
		if (!*p)
			break;
		size_t len = strcspn(p, ", \t");
		size_t i;
		for (i = 0; i < ARRAY_SIZE(names); i++)
			if (strlen(names[i].name) == len && strncasecmp(p, names[i].name, len) == 0)
				break;
		if (i == ARRAY_SIZE(names)) {
			snprintf(bad, badlen, "%.*s", (int)len, p);
			return false;
		}
		m |= names[i].mask;
		p += len;
	}
	if (!m)
		return false;
	*mask = m;
	return true;
}

void tls_protocols_format(unsigned mask, char *out, size_t len)
{
	if (len == 0)
		return;
	out[0] = '\0';
	if (mask == TLS_PROTO_SECURE || mask == TLS_PROTO_ALL) {
		snprintf(out, len, "%s", mask == TLS_PROTO_SECURE ? "secure" : "all");
		return;
	}
	size_t used = 0;
	for (size_t i = 0; i < 4; i++) { /* the four single versions open names[] */
		if (!(mask & names[i].mask))
			continue;
		int n = snprintf(out + used, len - used, "%s%s", used ? "," : "", names[i].name);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}
