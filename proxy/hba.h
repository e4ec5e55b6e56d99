/*
 * Access rules in pg_hba.conf format (auth_type = hba, auth_hba_file), the subset
 * PgBouncer reads.  One rule a line:
 *   TYPE  DATABASE  USER  ADDRESS  METHOD
 * TYPE: host, hostssl, hostnossl (corral listens on TCP only: "local" is refused).
 * DATABASE: names, comma lists, all, sameuser, replication (never matches: corral
 * has no replication connections).  USER: names, comma lists, all.
 * ADDRESS: CIDR (IPv4 or IPv6), an address followed by a netmask column, all, samehost.
 * METHOD: trust, reject, md5, scram-sha-256, password, cert (hostssl lines only, as
 * PostgreSQL: the client certificate's common name must be the user name).
 * '#' starts a comment.  +group, @file, samerole, samenet, host names, quoted names
 * and options after the method are refused with the file and line.
 *
 * Pure: parsing and matching only; the file is read by hba_load, and whether an
 * address is one of this host's (samehost) is asked of the caller.
 */
#ifndef CORRAL_PROXY_HBA_H
#define CORRAL_PROXY_HBA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

enum hba_type { HBA_HOST, HBA_HOSTSSL, HBA_HOSTNOSSL };
enum hba_method { HBA_TRUST, HBA_REJECT, HBA_MD5, HBA_SCRAM, HBA_PASSWORD, HBA_CERT };
enum hba_addr_kind { HBA_ADDR_ALL, HBA_ADDR_SAMEHOST, HBA_ADDR_CIDR };

/* A DATABASE or USER column: keyword flags and the names listed. */
struct hba_names {
	bool all, sameuser, replication;
	char **names;
	size_t n;
};

struct hba_rule {
	int line;
	enum hba_type type;
	struct hba_names dbs, users;
	enum hba_addr_kind addr_kind;
	int family; /* AF_INET or AF_INET6 for HBA_ADDR_CIDR */
	uint8_t addr[16], mask[16];
	enum hba_method method;
};

struct hba_rules {
	char *name; /* the file, for messages */
	char *text; /* as read: hba_copy parses it again */
	struct hba_rule *rules;
	size_t n;
};

/* What a login is matched on. */
struct hba_client {
	const struct sockaddr *addr; /* AF_INET or AF_INET6 (v4-mapped counts as IPv4) */
	const char *user, *database;
	bool ssl;
	/* For samehost: whether addr is one of this host's addresses; NULL: never. */
	bool (*is_local)(const struct sockaddr *addr);
};

/* Reads and parses path; false with "FILE:LINE: why" (first bad line) in err, *out empty. */
bool hba_load(const char *path, struct hba_rules *out, char *err, size_t errlen) WARN_UNUSED;
/* The same from text; name is used in messages. */
bool hba_parse(const char *name, const char *text, struct hba_rules *out, char *err,
	       size_t errlen) WARN_UNUSED;
/* The first rule matching the client, or NULL (no pg_hba.conf entry). */
const struct hba_rule *hba_match(const struct hba_rules *rules, const struct hba_client *cl);
/* A deep copy (SET keeps the rules in force); false when out of memory. */
bool hba_copy(const struct hba_rules *src, struct hba_rules *dst) WARN_UNUSED;
void hba_free(struct hba_rules *rules);
const char *hba_method_name(enum hba_method m);

#endif
