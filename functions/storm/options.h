/* corral-storm's command line, parsed into an immutable snapshot. */
#ifndef CORRAL_FUNCTIONS_STORM_OPTIONS_H
#define CORRAL_FUNCTIONS_STORM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define STORM_MAX_HEADERS 32

enum storm_mode {
	STORM_HTTP,    /* an HTTP request per invocation (--url) */
	STORM_CONNECT, /* a PostgreSQL connect, query, disconnect per invocation (--connect) */
};

struct storm_opts {
	enum storm_mode mode;
	/* HTTP */
	const char *url;
	const char *method; /* NULL: GET, or POST with a body */
	const char *body;
	const char *headers[STORM_MAX_HEADERS]; /* "Name: value" */
	size_t n_headers;
	/* PostgreSQL */
	const char *dsn;
	const char *sql; /* "" connects and disconnects only */
	/* load */
	uint64_t burst;    /* invocations released at once; 0 with --rate */
	double rate;       /* invocations per second, open loop */
	double duration_s; /* with --rate */
	double timeout_s;  /* per invocation */
	int threads;
	/* server backends */
	const char *monitor_dsn;
	const char *monitor_db;   /* count only backends of this database */
	const char *monitor_user; /* and/or this user */
	double monitor_interval_s;
	/* output */
	bool json;
	const char *label;
};

/* Invocations the run will start. */
uint64_t storm_opts_total(const struct storm_opts *o);

/*
 * Parses argv into *o (strings point into argv).  Returns 0 to run, 1 when help was
 * asked for (printed to stdout), -1 on a usage error (err says why).
 */
int storm_opts_parse(int argc, char **argv, struct storm_opts *o, char *err,
		     size_t errlen) WARN_UNUSED;

void storm_usage(const char *prog);

#endif
