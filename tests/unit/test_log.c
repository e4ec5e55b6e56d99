/*
 * common/log.c: log_clean escapes values so that every key="value" of a log line can be
 * split off and unescaped again, whatever a client, PostgreSQL or a function put in it.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/log.h"

static void expect_clean(const char *in, size_t outlen, const char *want)
{
	char out[256];
	cr_assert_lt(outlen, sizeof(out));
	memset(out, 'X', sizeof(out));
	const char *got = log_clean(in, out, outlen);
	cr_assert_eq(got, out);
	cr_expect_str_eq(out, want, "log_clean(\"%s\", %zu)", in, outlen);
	cr_expect_lt(strlen(out), outlen);
}

Test(log, plain_text_is_unchanged)
{
	expect_clean("", 16, "");
	expect_clean("sorry, too many clients already", 64, "sorry, too many clients already");
	expect_clean("caf\xc3\xa9", 16, "caf\xc3\xa9"); /* UTF-8 passes as it is */
}

Test(log, quotes_and_backslashes_are_escaped)
{
	/* corral-fn's env_init_failed carries libpq's message, quotes and all. */
	expect_clean("connection to server at \"127.0.0.1\", port 5432 failed", 128,
		     "connection to server at \\\"127.0.0.1\\\", port 5432 failed");
	expect_clean("C:\\dir\\", 32, "C:\\\\dir\\\\");
	expect_clean("\\\"", 16, "\\\\\\\"");
}

Test(log, control_characters_are_escaped)
{
	expect_clean("FATAL:  x\nDETAIL:  y", 64, "FATAL:  x\\nDETAIL:  y");
	expect_clean("a\tb\rc", 16, "a\\tb\\rc");
	expect_clean("bell\x07"
		     "del\x7f"
		     "esc\x1b",
		     64, "bell\\x07del\\x7fesc\\x1b");
}

Test(log, a_forged_field_stays_inside_the_value)
{
	/* A user name that tries to end the value and add a field, or a line. */
	expect_clean("x\" level=error event=forged", 64, "x\\\" level=error event=forged");
	expect_clean("x\nts=0 level=error", 64, "x\\nts=0 level=error");
}

Test(log, truncation_never_splits_an_escape)
{
	expect_clean("abcdef", 4, "abc");
	/* Room for 'a' and one more byte only: a lone backslash would escape the closing
	 * quote of the value, so the escape is left out whole. */
	expect_clean("a\"b", 3, "a");
	expect_clean("a\"b", 4, "a\\\"");
	expect_clean("a\x01", 5, "a");
	expect_clean("a\x01", 6, "a\\x01");
	expect_clean("abc", 1, "");
	/* A zero-length buffer is left alone. */
	char out[1] = {'X'};
	cr_expect_eq(log_clean("abc", out, 0), out);
	cr_expect_eq(out[0], 'X');
}
