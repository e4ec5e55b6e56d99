/* An HTTP invocation with libevent's evhttp client: one connection per request. */
#ifndef CORRAL_FUNCTIONS_STORM_HTTP_INVOKE_H
#define CORRAL_FUNCTIONS_STORM_HTTP_INVOKE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"
#include "functions/storm/options.h"

struct storm_inv;

/* The parsed --url, --method and --body. */
struct storm_http_target {
	char host[256];
	int port;
	char path[4096]; /* path and query string */
	char host_header[300];
	int method; /* enum evhttp_cmd_type */
	const char *method_name;
};

bool storm_http_target_init(struct storm_http_target *t, const struct storm_opts *o, char *err,
			    size_t errlen) WARN_UNUSED;
/* Sends the request; the invocation ends in storm_inv_finish(). */
void storm_http_start(struct storm_inv *inv);
/* Cancels it (--timeout, Ctrl-C); also ends in storm_inv_finish(). */
void storm_http_abort(struct storm_inv *inv, const char *key, const char *message);

#endif
