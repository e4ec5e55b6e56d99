/* common/cli.c: see cli.h. */
#include "common/cli.h"

#include <getopt.h>
#include <string.h>

int cli_parse(int argc, char **argv, const char *name, const char *version,
	      void (*usage)(FILE *out), struct cli_args *out)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	*out = (struct cli_args){0};
	int opt;
	while ((opt = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			out->config = optarg;
			break;
		case 't':
			out->check_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s %s\n", name, version);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!out->config || optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

void cli_print_errors(const char *name, const char *errors)
{
	while (*errors) {
		size_t len = strcspn(errors, "\n");
		fprintf(stderr, "%s: %.*s\n", name, (int)len, errors);
		errors += len;
		if (*errors == '\n')
			errors++;
	}
}
