/*
 * auth_type = hba at login: the first pg_hba.conf rule matching the client's address,
 * user and database picks the method, as in PostgreSQL; no rule, or a reject rule,
 * ends the login with PostgreSQL's 28000 messages.
 */
#ifndef CORRAL_PROXY_CLIENT_HBA_H
#define CORRAL_PROXY_CLIENT_HBA_H

#include <stdbool.h>

#include "proxy/hba.h"

struct client;

/* The method for c from rules; false when the login was refused (client_fail done). */
bool client_hba_method(struct client *c, const struct hba_rules *rules, enum hba_method *out);

#endif
