#include "proxy/client_hba.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "proxy/client.h"
#include "proxy/client_tls.h"

/* Whether the client came over TLS (client_tls_sslmode, proxy/client_tls.h): hostssl
 * rules match it, hostnossl ones do not, and messages say "SSL encryption". */
static bool client_over_tls(const struct client *c)
{
	return client_tls_active(c);
}

/* The client's address without its port, as PostgreSQL names it in its messages. */
static const char *peer_host(const struct client *c, char *out, size_t len)
{
	const void *a = c->peer.sa.sa_family == AF_INET6 ? (const void *)&c->peer.in6.sin6_addr
							 : (const void *)&c->peer.in.sin_addr;
	if (!inet_ntop(c->peer.sa.sa_family, a, out, (socklen_t)len))
		snprintf(out, len, "?");
	return out;
}

static bool same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)(const void *)a)->sin_addr,
			      &((const struct sockaddr_in *)(const void *)b)->sin_addr,
			      sizeof(struct in_addr)) == 0;
	return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
		      sizeof(struct in6_addr)) == 0;
}

/* samehost: the address is one of this machine's interfaces' (PostgreSQL asks the same
 * of getifaddrs).  Only asked when a samehost rule is reached. */
static bool is_local_address(const struct sockaddr *addr)
{
	struct sockaddr_in v4;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
	if (addr->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		memset(&v4, 0, sizeof(v4));
		v4.sin_family = AF_INET;
		memcpy(&v4.sin_addr, in6->sin6_addr.s6_addr + 12, 4);
		addr = (const struct sockaddr *)&v4;
	}
	struct ifaddrs *list;
	if (getifaddrs(&list) != 0)
		return false;
	bool found = false;
	for (struct ifaddrs *i = list; i && !found; i = i->ifa_next)
		found = i->ifa_addr && same_ip(i->ifa_addr, addr);
	freeifaddrs(list);
	return found;
}

bool client_hba_method(struct client *c, const struct hba_rules *rules, enum hba_method *out)
{
	bool tls = client_over_tls(c);
	struct hba_client cl = {.addr = &c->peer.sa,
				.user = c->user,
				.database = c->database,
				.ssl = tls,
				.is_local = is_local_address};
	const struct hba_rule *r = hba_match(rules, &cl);
	char host[INET6_ADDRSTRLEN];
	const char *enc = tls ? "SSL encryption" : "no encryption";
	if (!r) {
		client_fail(
			c, "28000",
			"no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", %s",
			peer_host(c, host, sizeof(host)), c->user, c->database, enc);
		return false;
	}
	log_debug("event=hba_match file=%s line=%d method=%s", rules->name, r->line,
		  hba_method_name(r->method));
	if (r->method == HBA_REJECT) {
		client_fail(c, "28000",
			    "pg_hba.conf rejects connection for host \"%s\", user \"%s\", database "
			    "\"%s\", %s",
			    peer_host(c, host, sizeof(host)), c->user, c->database, enc);
		return false;
	}
	if (r->method == HBA_CERT) {
		/* As PostgreSQL: a certificate corral verified, whose common name is the user
		 * name (no user name maps); then no password is asked. */
		char cn[256];
		if (!client_tls_peer_cn(c, cn, sizeof(cn))) {
			client_fail(c, "28000", "connection requires a valid client certificate");
			return false;
		}
		if (strcmp(cn, c->user) != 0) {
			char ids[400];
			log_warn(
				"event=login_refused client=%llu %s reason=\"the certificate's common "
				"name is not the user name (cert rule, %s line %d)\"",
				(unsigned long long)c->id, client_log_who(c, ids, sizeof(ids)),
				rules->name, r->line);
			client_fail(c, "28000", "certificate authentication failed for user \"%s\"",
				    c->user);
			return false;
		}
		*out = HBA_TRUST;
		return true;
	}
	*out = r->method;
	return true;
}
