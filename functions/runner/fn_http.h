/* The HTTP trigger of corral-fn: /fn/NAME, Lambda's Invoke path, /metrics (fn_http.c). */
#ifndef CORRAL_FUNCTIONS_RUNNER_FN_HTTP_H
#define CORRAL_FUNCTIONS_RUNNER_FN_HTTP_H

#include <stddef.h>

#include "functions/runner/fn_config.h"
#include "functions/runner/fn_runtime.h"

struct event_base;
struct fn_http;

/* Listens on cfg->listen_addr:listen_port (port 0: any free one, see fn_http_port()).
 * NULL with the reason in err. */
struct fn_http *fn_http_new(struct event_base *base, struct fn_runtime *rt,
			    const struct fn_runner_config *cfg, char *err, size_t errlen);
int fn_http_port(const struct fn_http *h);
/* Closes the listener; connections already open are served until fn_http_free(). */
void fn_http_stop_accepting(struct fn_http *h);
/* Closes the listener and every connection (answers not sent yet are dropped). */
void fn_http_free(struct fn_http *h);

#endif
