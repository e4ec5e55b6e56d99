/*
 * Text written into an evbuffer with printf-style calls, where an add that fails (out of
 * memory) is remembered once and later adds are skipped: the caller checks ok at the end
 * instead of after every line (the /metrics and /stats.json writers).
 */
#ifndef CORRAL_PROXY_TEXT_OUT_H
#define CORRAL_PROXY_TEXT_OUT_H

#include <stdarg.h>
#include <stdbool.h>

#include <event2/buffer.h>

#include "common/macros.h"

struct text_out {
	struct evbuffer *out;
	bool ok;
};

static inline void PRINTF_LIKE(2, 3) text_put(struct text_out *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (w->ok && evbuffer_add_vprintf(w->out, fmt, ap) < 0)
		w->ok = false;
	va_end(ap);
}

#endif
