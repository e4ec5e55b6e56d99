/* pool/params.c: the ParameterStatus set a pool keeps for welcoming clients. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pool/params.h"

Test(params, set_and_get)
{
	struct param_set ps = {0};
	cr_assert(params_set(&ps, "server_version", "15.4"));
	cr_assert(params_set(&ps, "client_encoding", "UTF8"));
	cr_assert(params_set(&ps, "application_name", ""));
	cr_assert_eq(ps.n, 3);
	cr_assert_str_eq(params_get(&ps, "server_version"), "15.4");
	cr_assert_str_eq(params_get(&ps, "client_encoding"), "UTF8");
	cr_assert_str_eq(params_get(&ps, "application_name"), "");
	cr_assert_null(params_get(&ps, "TimeZone"));
	cr_assert_null(params_get(&ps, ""));
	/* kept in the order first set: that is the order clients are told them */
	cr_assert_str_eq(ps.names[0], "server_version");
	cr_assert_str_eq(ps.names[2], "application_name");
	params_clear(&ps);
}

Test(params, empty_set)
{
	struct param_set ps = {0};
	cr_assert_null(params_get(&ps, "server_version"));
	params_clear(&ps);
	cr_assert_eq(ps.n, 0);
}

/* The set keeps its own copies of what it is given. */
Test(params, owns_its_strings)
{
	struct param_set ps = {0};
	char name[] = "TimeZone", value[] = "UTC";
	cr_assert(params_set(&ps, name, value));
	strcpy(name, "Nothing");
	strcpy(value, "XYZ");
	cr_assert_str_eq(params_get(&ps, "TimeZone"), "UTC");
	cr_assert_neq(ps.values[0], value);
	params_clear(&ps);
}

Test(params, replace)
{
	struct param_set ps = {0};
	cr_assert(params_set(&ps, "TimeZone", "UTC"));
	cr_assert(params_set(&ps, "DateStyle", "ISO, MDY"));
	cr_assert(params_set(&ps, "TimeZone", "Europe/Berlin"));
	cr_assert_eq(ps.n, 2, "replacing must not add an entry");
	cr_assert_str_eq(params_get(&ps, "TimeZone"), "Europe/Berlin");
	cr_assert_str_eq(ps.names[0], "TimeZone", "a replaced entry keeps its place");
	cr_assert(params_set(&ps, "TimeZone", ""));
	cr_assert_str_eq(params_get(&ps, "TimeZone"), "");
	params_clear(&ps);
}

/* DateStyle == datestyle in PostgreSQL. */
Test(params, case_insensitive)
{
	struct param_set ps = {0};
	cr_assert(params_set(&ps, "DateStyle", "ISO, MDY"));
	cr_assert_str_eq(params_get(&ps, "datestyle"), "ISO, MDY");
	cr_assert_str_eq(params_get(&ps, "DATESTYLE"), "ISO, MDY");
	cr_assert(params_set(&ps, "datestyle", "SQL, DMY"));
	cr_assert_eq(ps.n, 1);
	cr_assert_str_eq(params_get(&ps, "DateStyle"), "SQL, DMY");
	cr_assert_str_eq(ps.names[0], "DateStyle", "the name first set is kept");
	/* a prefix is not a match */
	cr_assert_null(params_get(&ps, "Date"));
	cr_assert_null(params_get(&ps, "DateStyleX"));
	params_clear(&ps);
}

static void fill(struct param_set *ps, size_t n, const char *prefix)
{
	for (size_t i = 0; i < n; i++) {
		char name[32], value[32];
		snprintf(name, sizeof(name), "%s%zu", prefix, i);
		snprintf(value, sizeof(value), "value %zu", i);
		cr_assert(params_set(ps, name, value), "%s", name);
	}
}

Test(params, full_set)
{
	struct param_set ps = {0};
	fill(&ps, PARAMS_MAX, "p");
	cr_assert_eq(ps.n, PARAMS_MAX);
	cr_assert_not(params_set(&ps, "one_more", "x"));
	cr_assert_eq(ps.n, PARAMS_MAX);
	cr_assert_null(params_get(&ps, "one_more"));
	/* a full set still takes new values for names it has */
	cr_assert(params_set(&ps, "P7", "seven"));
	cr_assert_str_eq(params_get(&ps, "p7"), "seven");
	cr_assert_str_eq(params_get(&ps, "p31"), "value 31");
	params_clear(&ps);
}

Test(params, copy)
{
	struct param_set src = {0}, dst = {0};
	cr_assert(params_set(&src, "server_version", "15.4"));
	cr_assert(params_set(&src, "TimeZone", "UTC"));
	cr_assert(params_set(&dst, "TimeZone", "Asia/Tokyo"));
	cr_assert(params_set(&dst, "stale", "gone after the copy"));

	params_copy(&dst, &src);
	cr_assert_eq(dst.n, 2);
	cr_assert_str_eq(params_get(&dst, "server_version"), "15.4");
	cr_assert_str_eq(params_get(&dst, "TimeZone"), "UTC");
	cr_assert_null(params_get(&dst, "stale"));
	cr_assert_str_eq(dst.names[0], "server_version");

	/* the copy shares the source's allocation, but changing or clearing the source
	 * leaves it alone */
	cr_assert_eq(dst.values[0], src.values[0]);
	cr_assert(params_set(&src, "TimeZone", "Europe/Paris"));
	params_clear(&src);
	cr_assert_str_eq(params_get(&dst, "TimeZone"), "UTC");
	params_clear(&dst);
}

Test(params, copy_full_and_empty)
{
	struct param_set src = {0}, dst = {0};
	fill(&src, PARAMS_MAX, "name_");
	fill(&dst, 3, "other_");
	params_copy(&dst, &src);
	cr_assert_eq(dst.n, PARAMS_MAX);
	for (size_t i = 0; i < PARAMS_MAX; i++)
		cr_assert_str_eq(dst.names[i], src.names[i]);

	struct param_set empty = {0};
	params_copy(&dst, &empty);
	cr_assert_eq(dst.n, 0);
	cr_assert_null(params_get(&dst, "name_0"));
	params_clear(&src);
	params_clear(&dst);
}

Test(params, clear_and_reuse)
{
	struct param_set ps = {0};
	fill(&ps, 5, "x");
	params_clear(&ps);
	cr_assert_eq(ps.n, 0);
	cr_assert_null(params_get(&ps, "x0"));
	params_clear(&ps); /* twice is harmless */
	cr_assert(params_set(&ps, "x0", "again"));
	cr_assert_str_eq(params_get(&ps, "x0"), "again");
	cr_assert_eq(ps.n, 1);
	params_clear(&ps);
}

Test(params, reported_names)
{
	cr_assert_eq(params_reported_count, 13);
	struct param_set ps = {0};
	for (size_t i = 0; i < params_reported_count; i++)
		cr_assert(params_set(&ps, params_reported_names[i], "v"));
	cr_assert_eq(ps.n, params_reported_count, "the reported names are distinct");
	cr_assert_not_null(params_get(&ps, "server_version"));
	cr_assert_not_null(params_get(&ps, "timezone"));
	cr_assert_not_null(params_get(&ps, "standard_conforming_strings"));
	cr_assert_lt(params_reported_count, PARAMS_MAX);
	params_clear(&ps);
}

/* Sets share one allocation after a copy: a change to either is its own. */
Test(params, shared_copies_change_apart)
{
	struct param_set a = {0}, b = {0}, c = {0};
	cr_assert(params_set(&a, "DateStyle", "ISO, MDY"));
	cr_assert(params_set(&a, "TimeZone", "UTC"));
	params_copy(&b, &a);
	params_copy(&c, &b);
	cr_assert(params_set(&b, "TimeZone", "Asia/Tokyo"));
	cr_assert(params_remove(&c, "DateStyle"));
	cr_assert_str_eq(params_get(&a, "TimeZone"), "UTC");
	cr_assert_str_eq(params_get(&a, "DateStyle"), "ISO, MDY");
	cr_assert_str_eq(params_get(&b, "TimeZone"), "Asia/Tokyo");
	cr_assert_str_eq(params_get(&b, "DateStyle"), "ISO, MDY");
	cr_assert_eq(c.n, 1);
	cr_assert_null(params_get(&c, "DateStyle"));
	cr_assert_str_eq(params_get(&c, "TimeZone"), "UTC");
	/* the same value again changes nothing, and copying a set onto itself neither */
	const char *const *before = a.names;
	cr_assert(params_set(&a, "timezone", "UTC"));
	params_copy(&a, &a);
	cr_assert_eq(a.names, before);
	params_clear(&a);
	cr_assert_str_eq(params_get(&b, "DateStyle"), "ISO, MDY");
	params_clear(&b);
	params_clear(&c);
}

/* A name or value taken from the set itself may be given back to it (the welcome
 * respells c->params.values[i] under c->params.names[i]). */
Test(params, set_from_its_own_entries)
{
	struct param_set ps = {0};
	cr_assert(params_set(&ps, "client_encoding", "utf8"));
	cr_assert(params_set(&ps, "DateStyle", "ISO, MDY"));
	cr_assert(params_set(&ps, ps.names[0], "UTF8"));
	cr_assert(params_set(&ps, ps.names[1], ps.values[0]));
	cr_assert_eq(ps.n, 2);
	cr_assert_str_eq(params_get(&ps, "client_encoding"), "UTF8");
	cr_assert_str_eq(params_get(&ps, "DateStyle"), "UTF8");
	cr_assert(params_remove(&ps, ps.names[0]));
	cr_assert(params_remove(&ps, "nothing"));
	cr_assert(params_remove(&ps, ps.names[0]));
	cr_assert_eq(ps.n, 0);
	cr_assert_null(ps.names);
	params_clear(&ps);
}
