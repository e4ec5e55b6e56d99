#include "functions/storm/pg_error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool sqlstate_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

bool storm_pg_error_parse(const char *text, char sqlstate[6], char *msg, size_t msglen)
{
	for (const char *p = strstr(text, ":  "); p; p = strstr(p + 1, ":  ")) {
		const char *code = p + 3;
		bool ok = true;
		for (int i = 0; i < 5 && ok; i++)
			ok = sqlstate_char(code[i]);
		if (!ok || code[5] != ':' || code[6] != ' ')
			continue;
		/* the severity is the word in capitals before ":  " */
		const char *sev = p;
		while (sev > text && isupper((unsigned char)sev[-1]))
			sev--;
		if (sev == p)
			continue;
		memcpy(sqlstate, code, 5);
		sqlstate[5] = '\0';
		const char *m = code + 7;
		size_t mlen = strcspn(m, "\n");
		char line[512];
		snprintf(line, sizeof(line), "%.*s: %.*s", (int)(p - sev), sev, (int)mlen, m);
		storm_first_line(line, msg, msglen);
		return true;
	}
	return false;
}

void storm_first_line(const char *text, char *out, size_t outlen)
{
	if (!outlen)
		return;
	while (*text && isspace((unsigned char)*text))
		text++;
	size_t n = strcspn(text, "\r\n");
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	if (n >= outlen) {
		n = outlen - 1;
		while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
			n--; /* do not cut a UTF-8 sequence */
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[n] = '\0';
}
