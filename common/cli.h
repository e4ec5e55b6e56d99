/*
 * The command line every corral daemon takes (corral, corral-fn):
 *   -c, --config FILE   the INI file (required)
 *   -t, --test          check the configuration and exit
 *   -h, --help          usage on stdout, exit 0
 *   -V, --version       "NAME VERSION" on stdout, exit 0
 * Anything else (or no -c, or extra arguments) prints usage on stderr: exit 2.
 */
#ifndef CORRAL_COMMON_CLI_H
#define CORRAL_COMMON_CLI_H

#include <stdbool.h>
#include <stdio.h>

struct cli_args {
	const char *config; /* -c */
	bool check_only;    /* -t */
};

/* -1: run with *out; otherwise the exit status main() returns (help, version, usage). */
int cli_parse(int argc, char **argv, const char *name, const char *version,
	      void (*usage)(FILE *out), struct cli_args *out);

/* Each line of errors (a loader's "FILE:LINE: KEY: why" lines) on stderr as "NAME: line". */
void cli_print_errors(const char *name, const char *errors);

#endif
