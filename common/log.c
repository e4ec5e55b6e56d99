#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static _Atomic int min_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warn",
	[LOG_ERROR] = "error",
};

void log_set_level(enum log_level level)
{
	min_level = level;
}

bool log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

bool log_enabled(enum log_level level)
{
	return (int)level >= min_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);

	/* Build the whole line first so lines from several threads never interleave. */
	char line[2048];
	int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (long)(tv.tv_usec / 1000), level_names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

/* The letter after the backslash for the characters with a short escape, else 0. */
static char short_escape(unsigned char ch)
{
	switch (ch) {
	case '"':
	case '\\':
		return (char)ch;
	case '\n':
		return 'n';
	case '\r':
		return 'r';
	case '\t':
		return 't';
	default:
		return 0;
	}
}

/* The escape of ch into esc (2 or 4 bytes), or 0 when ch stands as it is. */
static size_t escape_char(unsigned char ch, char esc[4])
{
	static const char hex[] = "0123456789abcdef";
	esc[0] = '\\';
	esc[1] = short_escape(ch);
	if (esc[1])
		return 2;
	if (ch >= 0x20 && ch != 0x7f)
		return 0;
	esc[1] = 'x';
	esc[2] = hex[ch >> 4];
	esc[3] = hex[ch & 15];
	return 4;
}

const char *log_clean(const char *in, char *out, size_t outlen)
{
	if (outlen == 0)
		return out;
	size_t n = 0;
	for (; *in; in++) {
		char esc[4];
		size_t len = escape_char((unsigned char)*in, esc);
		/* Never half an escape: a value cut after a lone backslash would escape
		 * the closing quote. */
		if (n + (len ? len : 1) >= outlen)
			break;
		if (len) {
			memcpy(out + n, esc, len);
			n += len;
		} else {
			out[n++] = *in;
		}
	}
	out[n] = '\0';
	return out;
}
