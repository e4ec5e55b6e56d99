#include "pool/config_tls.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/tls_protocols.h"
#include "pool/config.h"

static const char *const sslmodes[] = {"disable", "allow",     "prefer",
				       "require", "verify-ca", "verify-full"};

/* TLS versions in libpq's spelling, oldest first, as the bits of tls_protocols.h. */
static const char *const versions[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
#define N_VERSIONS 4

/*
 * PgBouncer's protocol list (common/tls_protocols.h) as a range of versions; libpq
 * takes only a range, so a list with a gap ("tlsv1.0,tlsv1.3") is refused.  *lo, *hi:
 * indexes into versions.
 */
static bool parse_protocols(const char *text, int *lo, int *hi, char *err, size_t errlen)
{
	unsigned mask;
	char bad[32];
	if (!tls_protocols_parse(text, &mask, bad, sizeof(bad))) {
		snprintf(err, errlen,
			 "unknown TLS protocol \"%s\" (secure, all, or tlsv1.0 to tlsv1.3)", bad);
		return false;
	}
	*lo = -1;
	for (int i = 0; i < N_VERSIONS; i++)
		if (mask & (1u << i)) {
			if (*lo < 0)
				*lo = i;
			*hi = i;
		}
	for (int i = *lo; i <= *hi; i++)
		if (!(mask & (1u << i))) {
			snprintf(err, errlen,
				 "libpq takes a range of TLS versions: \"%s\" leaves out %s", text,
				 versions[i]);
			return false;
		}
	return true;
}

static bool readable(const char *key, const char *path, char *err, size_t errlen)
{
	if (access(path, R_OK) == 0)
		return true;
	snprintf(err, errlen, "cannot read \"%s\" (%s)", path, key);
	return false;
}

bool config_server_tls(const struct corral_config *cfg,
		       struct config_tls_param out[CONFIG_SERVER_TLS_PARAMS], int *n,
		       const char **bad_key, char *err, size_t errlen)
{
	*n = 0;
	*bad_key = NULL;
	if (cfg->server_tls_sslmode) {
		bool known = false;
		for (size_t i = 0; i < sizeof(sslmodes) / sizeof(sslmodes[0]); i++)
			known = known || strcmp(cfg->server_tls_sslmode, sslmodes[i]) == 0;
		if (!known) {
			*bad_key = "server_tls_sslmode";
			snprintf(
				err, errlen,
				"unknown sslmode \"%s\" (disable, allow, prefer, require, verify-ca, "
				"verify-full)",
				cfg->server_tls_sslmode);
			return false;
		}
		out[(*n)++] = (struct config_tls_param){"sslmode", cfg->server_tls_sslmode,
							"server_tls_sslmode"};
	}
	const struct {
		const char *path, *key, *keyword;
	} files[] = {
		{cfg->server_tls_ca_file, "server_tls_ca_file", "sslrootcert"},
		{cfg->server_tls_cert_file, "server_tls_cert_file", "sslcert"},
		{cfg->server_tls_key_file, "server_tls_key_file", "sslkey"},
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (!files[i].path)
			continue;
		if (!readable(files[i].key, files[i].path, err, errlen)) {
			*bad_key = files[i].key;
			return false;
		}
		out[(*n)++] = (struct config_tls_param){files[i].keyword, files[i].path,
							files[i].key};
	}
	if (cfg->server_tls_protocols) {
		int lo = 0, hi = 0;
		if (!parse_protocols(cfg->server_tls_protocols, &lo, &hi, err, errlen)) {
			*bad_key = "server_tls_protocols";
			return false;
		}
		out[(*n)++] = (struct config_tls_param){"ssl_min_protocol_version", versions[lo],
							"server_tls_protocols"};
		out[(*n)++] = (struct config_tls_param){"ssl_max_protocol_version", versions[hi],
							"server_tls_protocols"};
	}
	return true;
}
