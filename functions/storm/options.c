#include "functions/storm/options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INVOCATIONS 100000000ULL

enum {
	OPT_CONNECT = 256,
	OPT_DSN,
	OPT_SQL,
	OPT_URL,
	OPT_METHOD,
	OPT_BODY,
	OPT_HEADER,
	OPT_BURST,
	OPT_RATE,
	OPT_DURATION,
	OPT_TIMEOUT,
	OPT_THREADS,
	OPT_MONITOR_DSN,
	OPT_MONITOR_DB,
	OPT_MONITOR_USER,
	OPT_MONITOR_INTERVAL,
	OPT_JSON,
	OPT_LABEL,
};

static const struct option long_opts[] = {
	{"connect", no_argument, NULL, OPT_CONNECT},
	{"dsn", required_argument, NULL, OPT_DSN},
	{"sql", required_argument, NULL, OPT_SQL},
	{"url", required_argument, NULL, OPT_URL},
	{"method", required_argument, NULL, OPT_METHOD},
	{"body", required_argument, NULL, OPT_BODY},
	{"header", required_argument, NULL, OPT_HEADER},
	{"burst", required_argument, NULL, OPT_BURST},
	{"rate", required_argument, NULL, OPT_RATE},
	{"duration", required_argument, NULL, OPT_DURATION},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"threads", required_argument, NULL, OPT_THREADS},
	{"monitor-dsn", required_argument, NULL, OPT_MONITOR_DSN},
	{"monitor-db", required_argument, NULL, OPT_MONITOR_DB},
	{"monitor-user", required_argument, NULL, OPT_MONITOR_USER},
	{"monitor-interval", required_argument, NULL, OPT_MONITOR_INTERVAL},
	{"json", no_argument, NULL, OPT_JSON},
	{"label", required_argument, NULL, OPT_LABEL},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

void storm_usage(const char *prog)
{
	printf("Usage: %s (--url URL | --connect --dsn DSN) (--burst N | --rate R --duration S)"
	       " [options]\n"
	       "\n"
	       "Fires invocations at a function gateway (HTTP) or raw connections at PostgreSQL\n"
	       "or corral, and reports errors by class, latency percentiles and the peak number\n"
	       "of server backends.\n"
	       "\n"
	       "Target (one of):\n"
	       "  --url URL            HTTP: one request per invocation (http:// only)\n"
	       "    --method M         request method (default GET, or POST with --body)\n"
	       "    --body TEXT        request body\n"
	       "    --header 'N: V'    extra request header (repeatable)\n"
	       "  --connect            PostgreSQL: connect, run --sql, disconnect per invocation\n"
	       "    --dsn DSN          libpq connection string or URI\n"
	       "    --sql SQL          query to run (default \"select 1\"; \"\" for none)\n"
	       "\n"
	       "Load (one of):\n"
	       "  --burst N            release N invocations at once\n"
	       "  --rate R             R invocations per second, open loop (latency counts from\n"
	       "    --duration S       each one's intended start), for S seconds\n"
	       "\n"
	       "Options:\n"
	       "  --timeout S          give up on an invocation after S seconds (default 30)\n"
	       "  --threads N          event loops to spread the work over (default: CPUs)\n"
	       "  --monitor-dsn DSN    sample server backends from pg_stat_activity over this\n"
	       "                       connection (client backends, not counting itself)\n"
	       "    --monitor-db DB    count only backends connected to database DB\n"
	       "    --monitor-user U   count only backends of user U\n"
	       "    --monitor-interval S  sampling interval (default 0.1)\n"
	       "  --json               print the summary as one JSON object\n"
	       "  --label NAME         name this run in the summary\n"
	       "  -h, --help           print this and exit\n",
	       prog);
}

PRINTF_LIKE(3, 4)
static int usage_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (*s == '-' || *s == '+')
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

uint64_t storm_opts_total(const struct storm_opts *o)
{
	if (o->burst)
		return o->burst;
	return (uint64_t)(o->rate * o->duration_s + 0.5); /* no libm in the link */
}

int storm_opts_parse(int argc, char **argv, struct storm_opts *o, char *err, size_t errlen)
{
	*o = (struct storm_opts){
		.mode = STORM_HTTP,
		.sql = "select 1",
		.timeout_s = 30,
		.monitor_interval_s = 0.1,
	};
	bool have_url = false, have_dsn = false, have_sql = false, have_http_opt = false;
	bool have_rate = false, have_duration = false, have_threads = false;
	const char *http_opt = NULL;
	uint64_t threads = 0;

	optind = 0; /* GNU: start over, so tests can parse several times */
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONNECT: o->mode = STORM_CONNECT; break;
		case OPT_DSN:
			o->dsn = optarg;
			have_dsn = true;
			break;
		case OPT_SQL:
			o->sql = optarg;
			have_sql = true;
			break;
		case OPT_URL:
			o->url = optarg;
			have_url = true;
			break;
		case OPT_METHOD:
			o->method = optarg;
			have_http_opt = true;
			http_opt = "--method";
			break;
		case OPT_BODY:
			o->body = optarg;
			have_http_opt = true;
			http_opt = "--body";
			break;
		case OPT_HEADER:
			if (o->n_headers == STORM_MAX_HEADERS)
				return usage_error(err, errlen, "--header: at most %d headers",
						   STORM_MAX_HEADERS);
			if (!strchr(optarg, ':') || *optarg == ':')
				return usage_error(err, errlen,
						   "--header: expected 'Name: value', got '%s'",
						   optarg);
			o->headers[o->n_headers++] = optarg;
			have_http_opt = true;
			http_opt = "--header";
			break;
		case OPT_BURST:
			if (!parse_u64(optarg, &o->burst) || o->burst < 1 ||
			    o->burst > MAX_INVOCATIONS)
				return usage_error(err, errlen,
						   "--burst: expected a count from 1 to %llu, got '%s'",
						   MAX_INVOCATIONS, optarg);
			break;
		case OPT_RATE:
			if (!parse_double(optarg, &o->rate) || o->rate <= 0 || o->rate > 1e7)
				return usage_error(err, errlen,
						   "--rate: expected invocations per second (> 0, "
						   "at most 1e7), got '%s'",
						   optarg);
			have_rate = true;
			break;
		case OPT_DURATION:
			if (!parse_double(optarg, &o->duration_s) || o->duration_s <= 0 ||
			    o->duration_s > 86400)
				return usage_error(err, errlen,
						   "--duration: expected seconds (> 0, at most 86400), "
						   "got '%s'",
						   optarg);
			have_duration = true;
			break;
		case OPT_TIMEOUT:
			if (!parse_double(optarg, &o->timeout_s) || o->timeout_s <= 0 ||
			    o->timeout_s > 86400)
				return usage_error(err, errlen,
						   "--timeout: expected seconds (> 0), got '%s'",
						   optarg);
			break;
		case OPT_THREADS:
			if (!parse_u64(optarg, &threads) || threads < 1 || threads > 64)
				return usage_error(err, errlen,
						   "--threads: expected 1 to 64, got '%s'", optarg);
			have_threads = true;
			break;
		case OPT_MONITOR_DSN: o->monitor_dsn = optarg; break;
		case OPT_MONITOR_DB: o->monitor_db = optarg; break;
		case OPT_MONITOR_USER: o->monitor_user = optarg; break;
		case OPT_MONITOR_INTERVAL:
			if (!parse_double(optarg, &o->monitor_interval_s) ||
			    o->monitor_interval_s < 0.001 || o->monitor_interval_s > 3600)
				return usage_error(err, errlen,
						   "--monitor-interval: expected seconds "
						   "(0.001 to 3600), got '%s'",
						   optarg);
			break;
		case OPT_JSON: o->json = true; break;
		case OPT_LABEL: o->label = optarg; break;
		case 'h': return 1;
		case '?':
		default:
			if (optopt > 0 && optopt < 256)
				return usage_error(err, errlen, "option -%c is unknown or needs a value",
						   optopt);
			return usage_error(err, errlen, "unknown option or missing value: %s",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(err, errlen, "unexpected argument '%s'", argv[optind]);

	if (o->mode == STORM_CONNECT) {
		if (!have_dsn)
			return usage_error(err, errlen, "--connect needs --dsn");
		if (have_url || have_http_opt)
			return usage_error(err, errlen, "%s is for HTTP mode, not --connect",
					   have_url ? "--url" : http_opt);
	} else {
		if (!have_url)
			return usage_error(err, errlen,
					   "a target is needed: --url URL, or --connect --dsn DSN");
		if (have_dsn || have_sql)
			return usage_error(err, errlen, "%s needs --connect",
					   have_dsn ? "--dsn" : "--sql");
		if (strncmp(o->url, "http://", 7) != 0)
			return usage_error(err, errlen, "--url: only http:// URLs, got '%s'",
					   o->url);
	}
	if (o->burst && have_rate)
		return usage_error(err, errlen, "--burst and --rate exclude each other");
	if (!o->burst && !have_rate)
		return usage_error(err, errlen, "a load is needed: --burst N, or --rate R "
						"--duration S");
	if (have_rate && !have_duration)
		return usage_error(err, errlen, "--rate needs --duration");
	if (have_duration && !have_rate)
		return usage_error(err, errlen, "--duration goes with --rate");
	uint64_t total = storm_opts_total(o);
	if (total < 1)
		return usage_error(err, errlen,
				   "--rate %g for %g s is less than one invocation", o->rate,
				   o->duration_s);
	if (total > MAX_INVOCATIONS)
		return usage_error(err, errlen, "%llu invocations is more than %llu",
				   (unsigned long long)total, MAX_INVOCATIONS);
	if ((o->monitor_db || o->monitor_user) && !o->monitor_dsn)
		return usage_error(err, errlen, "%s needs --monitor-dsn",
				   o->monitor_db ? "--monitor-db" : "--monitor-user");

	if (have_threads) {
		o->threads = (int)threads;
	} else {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		o->threads = ncpu < 1 ? 1 : ncpu > 16 ? 16 : (int)ncpu;
	}
	if ((uint64_t)o->threads > total)
		o->threads = (int)total;
	return 0;
}
