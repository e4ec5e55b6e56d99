/* functions/storm/options.c: corral-storm's command line. */
#include <criterion/criterion.h>
#include <string.h>

#include "functions/storm/options.h"

#define ARGV(...) ((char *[]){"corral-storm", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"corral-storm", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, err, ...) \
	storm_opts_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), o, err, sizeof(err))

static void fails(int rc, const char *err, const char *want)
{
	cr_assert_eq(rc, -1, "should fail with \"%s\"", want);
	cr_assert(strstr(err, want), "error \"%s\" should mention \"%s\"", err, want);
}

Test(storm_options, connect_burst)
{
	struct storm_opts o;
	char err[256] = "";
	int rc = PARSE(&o, err, "--connect", "--dsn", "host=x dbname=y", "--burst", "200",
		       "--monitor-dsn", "host=/tmp", "--monitor-user", "bench", "--json", "--label",
		       "direct", "--threads", "3");
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(o.mode, STORM_CONNECT);
	cr_assert_str_eq(o.dsn, "host=x dbname=y");
	cr_assert_str_eq(o.sql, "select 1");
	cr_assert_eq(o.burst, 200);
	cr_assert_eq(storm_opts_total(&o), 200);
	cr_assert_str_eq(o.monitor_dsn, "host=/tmp");
	cr_assert_str_eq(o.monitor_user, "bench");
	cr_assert_null(o.monitor_db);
	cr_assert(o.json);
	cr_assert_str_eq(o.label, "direct");
	cr_assert_eq(o.threads, 3);
	cr_assert_float_eq(o.timeout_s, 30, 1e-9);
	cr_assert_float_eq(o.monitor_interval_s, 0.1, 1e-9);
}

Test(storm_options, http_rate)
{
	struct storm_opts o;
	char err[256] = "";
	int rc = PARSE(&o, err, "--url", "http://127.0.0.1:9000/fn/hello", "--rate", "250.5",
		       "--duration", "4", "--body", "{}", "--header", "X-A: 1", "--header", "X-B:2",
		       "--timeout", "2.5", "--sql", "x");
	fails(rc, err, "--sql needs --connect");
	rc = PARSE(&o, err, "--url", "http://127.0.0.1:9000/fn/hello", "--rate", "250.5",
		   "--duration", "4", "--body", "{}", "--header", "X-A: 1", "--header", "X-B:2",
		   "--timeout", "2.5");
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(o.mode, STORM_HTTP);
	cr_assert_eq(o.burst, 0);
	cr_assert_float_eq(o.rate, 250.5, 1e-9);
	cr_assert_eq(storm_opts_total(&o), 1002);
	cr_assert_eq(o.n_headers, 2);
	cr_assert_str_eq(o.headers[1], "X-B:2");
	cr_assert_float_eq(o.timeout_s, 2.5, 1e-9);
	cr_assert_leq(o.threads, 16);
	cr_assert_geq(o.threads, 1);
}

Test(storm_options, threads_capped_by_work)
{
	struct storm_opts o;
	char err[256] = "";
	cr_assert_eq(PARSE(&o, err, "--url", "http://h/", "--burst", "2", "--threads", "8"), 0);
	cr_assert_eq(o.threads, 2);
}

Test(storm_options, help)
{
	struct storm_opts o;
	char err[256] = "";
	cr_assert_eq(PARSE(&o, err, "--help"), 1);
	cr_assert_eq(PARSE(&o, err, "-h"), 1);
}

Test(storm_options, usage_errors)
{
	struct storm_opts o;
	char err[256] = "";
	fails(PARSE(&o, err, "--burst", "5"), err, "a target is needed");
	fails(PARSE(&o, err, "--connect", "--burst", "5"), err, "--connect needs --dsn");
	fails(PARSE(&o, err, "--connect", "--dsn", "x", "--url", "http://h/", "--burst", "5"), err,
	      "--url is for HTTP mode");
	fails(PARSE(&o, err, "--connect", "--dsn", "x", "--body", "b", "--burst", "5"), err,
	      "--body is for HTTP mode");
	fails(PARSE(&o, err, "--url", "https://h/", "--burst", "5"), err, "only http://");
	fails(PARSE(&o, err, "--url", "http://h/"), err, "a load is needed");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "5", "--rate", "3"), err,
	      "exclude each other");
	fails(PARSE(&o, err, "--url", "http://h/", "--rate", "3"), err, "--rate needs --duration");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "3", "--duration", "3"), err,
	      "--duration goes with --rate");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "0"), err, "--burst: expected");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "-4"), err, "--burst: expected");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "12x"), err, "--burst: expected");
	fails(PARSE(&o, err, "--url", "http://h/", "--rate", "0", "--duration", "1"), err,
	      "--rate: expected");
	fails(PARSE(&o, err, "--url", "http://h/", "--rate", "nan", "--duration", "1"), err,
	      "--rate: expected");
	fails(PARSE(&o, err, "--url", "http://h/", "--rate", "0.1", "--duration", "1"), err,
	      "less than one invocation");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "3", "--threads", "0"), err,
	      "--threads: expected 1 to 64");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "3", "--timeout", "-1"), err,
	      "--timeout: expected");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "3", "--header", "NoColon"), err,
	      "expected 'Name: value'");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "3", "--monitor-db", "x"), err,
	      "--monitor-db needs --monitor-dsn");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "3", "--frobnicate"), err,
	      "unknown option");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst"), err, "--burst");
	fails(PARSE(&o, err, "--url", "http://h/", "--burst", "3", "extra"), err,
	      "unexpected argument 'extra'");
}
