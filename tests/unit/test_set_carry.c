/*
 * SET / RESET corral carries to the client's next server (proxy/set_carry.c): the value
 * as SET stores it, and everything it must not carry.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <strings.h>

#include "proxy/set_carry.h"

static struct set_carry sc;

static bool carry(const char *sql)
{
	return set_carry_parse(sql, strlen(sql), &sc);
}

#define CARRIES(sql, name_, value_)                            \
	do {                                                   \
		cr_assert(carry(sql), "%s", sql);              \
		cr_expect_str_eq(sc.name, name_, "%s", sql);   \
		cr_expect_str_eq(sc.value, value_, "%s", sql); \
		cr_expect_not(sc.reset, "%s", sql);            \
	} while (0)

Test(set_carry, values_as_set_stores_them)
{
	CARRIES("SET work_mem = '64MB'", "work_mem", "64MB");
	CARRIES("set Work_Mem to 65536;", "work_mem", "65536");
	CARRIES("SET SESSION statement_timeout = '5s' -- x", "statement_timeout", "5s");
	CARRIES("set enable_seqscan = OFF", "enable_seqscan", "off");
	CARRIES("set extra_float_digits = -1", "extra_float_digits", "-1");
	CARRIES("set myapp.tenant = 'it''s'", "myapp.tenant", "it's");
	CARRIES("set search_path = Pin_Nowhere, public", "search_path", "pin_nowhere, public");
	CARRIES("set search_path to \"$user\", \"My Schema\"", "search_path",
		"\"$user\", \"My Schema\"");
	CARRIES("SET search_path = x", "search_path", "x");
}

Test(set_carry, resets)
{
	cr_assert(carry("RESET work_mem"));
	cr_expect(sc.reset);
	cr_expect_str_eq(sc.name, "work_mem");
	cr_assert(carry("set work_mem to default;"));
	cr_expect(sc.reset);
}

Test(set_carry, not_carried)
{
	const char *no[] = {
		"SET LOCAL work_mem = '1MB'",
		"SET ROLE bob",
		"SET SESSION AUTHORIZATION bob",
		"RESET ROLE",
		"SET TIME ZONE 'UTC'",
		"SET work_mem = '1MB'; SELECT 1",
		"SET work_mem = E'1MB'",
		"SET work_mem = $$1MB$$",
		"SET work_mem = \"1MB\"",
		"SET search_path = 'a,b'",
		"SET search_path = a, 'b'",
		"SET plpgsql.extra_warnings = a, b",
		"SET work_mem = 64MB",
		"SET work_mem",
		"SET seed = 0.5",
		"SELECT set_config('work_mem', '1MB', false)",
		"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
		"SET work_mem = 'unterminated",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_expect_not(carry(no[i]), "%s", no[i]);
}

static bool pins_set(const char *stmt, size_t len, void *arg)
{
	(void)arg;
	return len >= 3 &&
	       (strncasecmp(stmt, "set", 3) == 0 || strncasecmp(stmt, "reset", 5) == 0 ||
		strncasecmp(stmt, "listen", 6) == 0);
}

Test(set_carry, several_statements)
{
	struct set_carry out[SET_CARRY_MAX];
	int n;
	const char *asyncpg =
		"SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;";
	cr_assert(set_carry_collect(asyncpg, strlen(asyncpg), pins_set, NULL, out, &n));
	cr_assert_eq(n, 1);
	cr_expect_str_eq(out[0].name, "all");
	cr_expect(out[0].reset);
	const char *two = "set work_mem = '2MB'; select 1; set search_path = a";
	cr_assert(set_carry_collect(two, strlen(two), pins_set, NULL, out, &n));
	cr_assert_eq(n, 2);
	cr_expect_str_eq(out[1].value, "a");
	const char *no[] = {
		"begin; set work_mem = '2MB'; commit",
		"set work_mem = '2MB'; listen x",
		"set role bob; select 1",
		"select 'x",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_expect_not(set_carry_collect(no[i], strlen(no[i]), pins_set, NULL, out, &n),
			      "%s", no[i]);
}
