/* pool/server.c: a failed login's verbose libpq message, split into SQLSTATE and text. */
#include <criterion/criterion.h>
#include <string.h>

#include "pool/server.h"

static void expect_split(const char *raw, const char *want_msg, const char *want_state)
{
	char msg[512], state[6];

	server_split_login_error(raw, msg, sizeof(msg), state);
	cr_assert_str_eq(msg, want_msg, "message of [%s]", raw);
	cr_assert_str_eq(state, want_state, "SQLSTATE of [%s]", raw);
}

Test(login_error, server_refusal_carries_its_sqlstate)
{
	/* As libpq 15 writes them with PQERRORS_VERBOSE (seen against PostgreSQL 15). */
	expect_split(
		"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  57P03: the "
		"database system is shutting down\nLOCATION:  ProcessStartupPacket, "
		"postmaster.c:2475\n",
		"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database "
		"system is shutting down\n",
		"57P03");
	expect_split(
		"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: password "
		"authentication failed for user \"nobody\"\nLOCATION:  auth_failed, auth.c:334\n",
		"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password "
		"authentication failed for user \"nobody\"\n",
		"28P01");
	/* DETAIL and HINT lines stay. */
	expect_split(
		"connection to server at \"h\", port 1 failed: FATAL:  53300: sorry, too many "
		"clients already\nDETAIL:  x\nLOCATION:  InitProcess, proc.c:1\n",
		"connection to server at \"h\", port 1 failed: FATAL:  sorry, too many clients "
		"already\nDETAIL:  x\n",
		"53300");
}

Test(login_error, no_sqlstate_when_the_server_said_nothing)
{
	const char *refused =
		"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
		"\tIs the server running on that host and accepting TCP/IP connections?\n";

	expect_split(refused, refused, "");
	expect_split("timed out after 1 s (server_connect_timeout)",
		     "timed out after 1 s (server_connect_timeout)", "");
	expect_split("", "", "");
}

Test(login_error, several_hosts_the_last_refusal_counts)
{
	expect_split("connection to server at \"a\", port 1 failed: Connection refused\n"
		     "connection to server at \"b\", port 2 failed: FATAL:  57P03: the database "
		     "system is starting up\nLOCATION:  x, y.c:1\n",
		     "connection to server at \"a\", port 1 failed: Connection refused\n"
		     "connection to server at \"b\", port 2 failed: FATAL:  the database system is "
		     "starting up\n",
		     "57P03");
}

Test(login_error, truncated_to_the_buffer)
{
	char msg[16], state[6];

	server_split_login_error("connection to server failed: FATAL:  57P01: terminating", msg,
				 sizeof(msg), state);
	cr_assert_str_eq(msg, "connection to s");
	cr_assert_str_eq(state, "57P01");
}
