/*
 * conf/corral-fn.ini -> struct fn_runner_config.
 *
 * The same reading rules as corral's own file (pool/config.c), from common/ini_load.c:
 * inih does the INI grammar, fed through our line reader because Debian's libinih
 * counts no lines for us, knows only ';' comments and takes an indented line for a
 * continuation.  The reader's section hook follows [section] headers here, for two
 * reasons: inih never reports
 * a section without keys, and "[function.url_shortener]" with nothing under it is a
 * function with every default; and inih cuts section names at 49 characters, shorter
 * than "function." plus a 63-character name.  So a key belongs to the section the
 * reader last saw, and inih's section argument is not used.
 *
 * Cross-key rules and the defaults that depend on other keys (so, queue_database_url)
 * are applied once the whole file is read: [runner] may come after the functions.
 * Every error is reported (see ini_load.h); the cross-key rules only once every line is
 * right, since their errors would often follow from an earlier one.
 */
#include "functions/runner/fn_config.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/ini_load.h"
#include "common/parse.h"

#define FUNCTION_PREFIX "function."
#define FUNCTION_NAME_MAX 63
#define QUEUE_NAME_MAX 80 /* SQS's limit for a queue name */
#define MAX_CONCURRENCY 100000
#define MAX_MEMORY_MB 1048576 /* 1 TB: a cap of address space, not of what is used */
#define MAX_QUEUE_DEPTH 1000000
#define MAX_BATCH_SIZE 10000       /* Lambda's largest SQS batch */
#define MAX_QUEUE_CONCURRENCY 1000 /* Lambda's largest maximum concurrency of an SQS source */
#define MAX_RECEIVE_COUNT 1000     /* SQS's largest maxReceiveCount */
#define MAX_CONNECTIONS 1000000

/* Parsers for a struct ini_key (common/ini_load.h) of the runner's or a function's struct;
 * ini_key_int, _nonempty, _address, _log_level and _bool are common/ini_load.c's. */
#define PARSER(name) static INI_KEY_PARSER(name)
PARSER(parse_unsigned_key);
PARSER(parse_u32_key);
PARSER(parse_duration_key);
PARSER(parse_positive_duration_key);
PARSER(parse_database_url_key);
PARSER(parse_so_key);
PARSER(parse_on_limit_key);
PARSER(parse_schedule_key);
PARSER(parse_queue_key);
PARSER(parse_token_file_key);

#define RUNNER(f) offsetof(struct fn_runner_config, f)
#define FUNCTION(f) offsetof(struct fn_function_config, f)

static const struct ini_key runner_keys[] = {
	{ "listen_addr", ini_key_address, RUNNER(listen_addr), 0, 0 },
	{ "listen_port", ini_key_int, RUNNER(listen_port), 1, 65535 },
	{ "database_url", parse_database_url_key, RUNNER(database_url), 0, 0 },
	{ "queue_database_url", parse_database_url_key, RUNNER(queue_database_url), 0, 0 },
	{ "functions_dir", ini_key_nonempty, RUNNER(functions_dir), 0, 0 },
	{ "max_concurrency", parse_unsigned_key, RUNNER(max_concurrency), 1, MAX_CONCURRENCY },
	{ "init_timeout", parse_positive_duration_key, RUNNER(init_timeout_usec), 0, 0 },
	{ "shutdown_grace", parse_duration_key, RUNNER(shutdown_grace_usec), 0, 0 },
	{ "log_level", ini_key_log_level, RUNNER(log_level), 0, 0 },
	{ "log_reports", ini_key_bool, RUNNER(log_reports), 0, 0 },
	{ "request_timeout", parse_positive_duration_key, RUNNER(request_timeout_usec), 0, 0 },
	{ "max_connections", parse_unsigned_key, RUNNER(max_connections), 1, MAX_CONNECTIONS },
	{ "auth_token_file", parse_token_file_key, RUNNER(auth_token), 0, 0 },
	{ "exec_environments", ini_key_bool, RUNNER(exec_environments), 0, 0 },
};

static const struct ini_key function_keys[] = {
	{ "so", parse_so_key, FUNCTION(so_path), 0, 0 },
	{ "database_url", parse_database_url_key, FUNCTION(database_url), 0, 0 },
	{ "timeout", parse_positive_duration_key, FUNCTION(timeout_usec), 0, 0 },
	{ "memory_mb", parse_u32_key, FUNCTION(memory_mb), 0, MAX_MEMORY_MB },
	{ "reserved_concurrency", parse_unsigned_key, FUNCTION(reserved_concurrency), 0,
	  MAX_CONCURRENCY },
	{ "provisioned", parse_unsigned_key, FUNCTION(provisioned), 0, MAX_CONCURRENCY },
	{ "idle_timeout", parse_positive_duration_key, FUNCTION(idle_timeout_usec), 0, 0 },
	{ "on_limit", parse_on_limit_key, FUNCTION(on_limit), 0, 0 },
	{ "queue_depth", parse_unsigned_key, FUNCTION(queue_depth), 1, MAX_QUEUE_DEPTH },
	{ "queue_timeout", parse_positive_duration_key, FUNCTION(queue_timeout_usec), 0, 0 },
	{ "http", ini_key_bool, FUNCTION(http), 0, 0 },
	{ "schedule", parse_schedule_key, FUNCTION(schedule), 0, 0 },
	{ "queue", parse_queue_key, FUNCTION(queue), 0, 0 },
	{ "batch_size", parse_unsigned_key, FUNCTION(batch_size), 1, MAX_BATCH_SIZE },
	{ "queue_concurrency", parse_unsigned_key, FUNCTION(queue_concurrency), 1,
	  MAX_QUEUE_CONCURRENCY },
	{ "max_receive_count", parse_unsigned_key, FUNCTION(max_receive_count), 1,
	  MAX_RECEIVE_COUNT },
	{ "visibility_timeout", parse_positive_duration_key, FUNCTION(visibility_timeout_usec), 0,
	  0 },
	{ "queue_poll", parse_positive_duration_key, FUNCTION(queue_poll_usec), 0, 0 },
};

/* Where a function's section and keys are in the file (cfg->functions[i] <-> lines[i]). */
struct fn_lines {
	int header;
	int seen[ARRAY_SIZE(function_keys)]; /* line each key was set on, 0 = not yet */
};

enum section { SECTION_NONE, SECTION_RUNNER, SECTION_FUNCTION };

struct load_ctx {
	struct ini_load ini; /* path, line, error: common/ini_load.h */
	struct fn_runner_config *cfg;
	enum section section;
	size_t function; /* SECTION_FUNCTION: index in cfg->functions (which realloc moves) */
	int runner_seen[ARRAY_SIZE(runner_keys)];
	struct fn_lines *lines;
};

#define fail(ctx, key, ...) ini_fail(&(ctx)->ini, (key), __VA_ARGS__)
#define fail_line(ctx, line, key, ...) ini_fail_line(&(ctx)->ini, (line), (key), __VA_ARGS__)

/* ---- values ---------------------------------------------------------------------------- */

PARSER(parse_unsigned_key)
{
	int v;
	if (!ini_key_range(ld, spec, value, &v))
		return false;
	*(unsigned *)ini_key_field(obj, spec) = (unsigned)v;
	return true;
}

PARSER(parse_u32_key)
{
	int v;
	if (!ini_key_range(ld, spec, value, &v))
		return false;
	*(uint32_t *)ini_key_field(obj, spec) = (uint32_t)v;
	return true;
}

PARSER(parse_duration_key)
{
	return parse_decimal_usec(value, PARSE_MAX_SECONDS, ini_key_field(obj, spec)) ||
	       ini_key_seconds_fail(ld, spec, value, false, 3);
}

/* For timeouts and intervals where 0 could only mean "at once" or "busy loop". */
PARSER(parse_positive_duration_key)
{
	usec_t v;
	if (!parse_decimal_usec(value, PARSE_MAX_SECONDS, &v) || v <= 0)
		return ini_key_seconds_fail(ld, spec, value, true, 3);
	*(usec_t *)ini_key_field(obj, spec) = v;
	return true;
}

/*
 * libpq's parser, so a typo stops the runner here rather than every cold start later.
 * Neither the value nor libpq's message is repeated: both may hold the password.
 */
PARSER(parse_database_url_key)
{
	if (*value == '\0') {
		ini_fail(ld, spec->name, "must not be empty (leave the key out for none)");
		return false;
	}
	char *why = NULL;
	PQconninfoOption *opts = PQconninfoParse(value, &why);
	if (!opts) {
		ini_fail(ld, spec->name, "%s",
			 why ? "libpq cannot parse it (expected postgresql://user:password@host:port/"
			       "dbname or keyword=value pairs; the value is not shown, it may hold a "
			       "password)"
			     : "out of memory");
		PQfreemem(why);
		return false;
	}
	PQconninfoFree(opts);
	return ini_key_string(ld, spec, obj, value);
}

/* A name without '/' gets "./": dlopen() would search the library path for it instead. */
PARSER(parse_so_key)
{
	if (*value == '\0') {
		ini_fail(ld, spec->name,
			 "must not be empty (leave the key out for functions_dir/NAME.so)");
		return false;
	}
	if (strchr(value, '/'))
		return ini_key_string(ld, spec, obj, value);
	char *path;
	if (asprintf(&path, "./%s", value) < 0) {
		ini_fail(ld, spec->name, "out of memory");
		return false;
	}
	bool ok = ini_key_string(ld, spec, obj, path);
	free(path);
	return ok;
}

/* auth_token_file = PATH: the token is the file's first line (its end of line and
 * trailing blanks dropped), read now; the path is not kept. */
PARSER(parse_token_file_key)
{
	FILE *in = fopen(value, "re");
	if (!in) {
		ini_fail(ld, spec->name, "cannot read \"%s\": %s", value, strerror(errno));
		return false;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);
	fclose(in);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
			 line[n - 1] == '\t'))
		line[--n] = '\0';
	bool ok = n > 0;
	for (ssize_t i = 0; ok && i < n; i++)
		ok = line[i] > 0x20 && line[i] < 0x7f; /* what a Bearer token may hold */
	if (!ok)
		ini_fail(ld, spec->name, "\"%s\": the first line must be the token, printable "
					 "and without blanks",
			 value);
	else
		*(char **)ini_key_field(obj, spec) = line;
	if (!ok && line) {
		explicit_bzero(line, cap);
		free(line);
	}
	return ok;
}

PARSER(parse_on_limit_key)
{
	enum fn_on_limit *slot = ini_key_field(obj, spec);
	if (strcasecmp(value, "queue") == 0) {
		*slot = FN_ON_LIMIT_QUEUE;
		return true;
	}
	if (strcasecmp(value, "throttle") == 0) {
		*slot = FN_ON_LIMIT_THROTTLE;
		return true;
	}
	ini_fail(ld, spec->name, "must be queue or throttle, got \"%s\"", value);
	return false;
}

PARSER(parse_schedule_key)
{
	struct fn_function_config *fn = obj;
	char why[160];
	if (!cron_parse(value, &fn->cron, why, sizeof(why))) {
		ini_fail(ld, spec->name, "%s", why);
		return false;
	}
	fn->has_schedule = true;
	return ini_key_string(ld, spec, obj, value);
}

/* Names end up in URL paths (/fn/NAME), log lines and metric labels: kept to an alphabet
 * that needs escaping in none of them. */
static bool valid_name(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	}
	return true;
}

PARSER(parse_queue_key)
{
	if (valid_name(value, strlen(value), QUEUE_NAME_MAX))
		return ini_key_string(ld, spec, obj, value);
	ini_fail(ld, spec->name,
		 "must be a queue name of 1 to %d letters, digits, '_' or '-', got \"%s\"",
		 QUEUE_NAME_MAX, value);
	return false;
}

/* ---- keys and sections ----------------------------------------------------------------- */

#define ENV_PREFIX "env."

/* env.NAME = value: NAME as a shell variable's (letters, digits, '_', not first a digit);
 * DATABASE_URL and CORRAL_FN_NAME are the runner's to set. */
static void set_env_var(struct load_ctx *ctx, struct fn_function_config *fn, const char *key,
			const char *value)
{
	const char *var = key + strlen(ENV_PREFIX);
	size_t len = strlen(var);
	bool ok = len > 0 && !(var[0] >= '0' && var[0] <= '9');
	for (size_t i = 0; ok && i < len; i++)
		ok = var[i] == '_' || (var[i] >= '0' && var[i] <= '9') ||
		     (var[i] >= 'a' && var[i] <= 'z') || (var[i] >= 'A' && var[i] <= 'Z');
	if (!ok) {
		fail(ctx, key, "an environment variable's name is letters, digits and '_', "
			       "not starting with a digit");
		return;
	}
	if (strcmp(var, "DATABASE_URL") == 0 || strcmp(var, "CORRAL_FN_NAME") == 0) {
		fail(ctx, key, "is set by corral-fn (database_url = sets DATABASE_URL)");
		return;
	}
	for (size_t i = 0; i < fn->n_env; i++) {
		if (strncmp(fn->env[i], var, len) == 0 && fn->env[i][len] == '=') {
			fail(ctx, key, "set twice");
			return;
		}
	}
	char **env = realloc(fn->env, (fn->n_env + 1) * sizeof(*env));
	if (env)
		fn->env = env;
	size_t vlen = strlen(value);
	char *entry = malloc(len + vlen + 2);
	if (!env || !entry) {
		free(entry);
		fail(ctx, key, "out of memory");
		return;
	}
	memcpy(entry, var, len);
	entry[len] = '=';
	memcpy(entry + len + 1, value, vlen + 1);
	fn->env[fn->n_env++] = entry;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	(void)section; /* cut at 49 characters by inih; ctx->section is the whole truth */
	struct fn_runner_config *cfg = ctx->cfg;
	if (!value) {
		fail(ctx, name, "has no value");
	} else if (ctx->section == SECTION_RUNNER) {
		ini_key_set(&ctx->ini, runner_keys, ARRAY_SIZE(runner_keys), ctx->runner_seen, cfg,
			    "runner", name, value);
	} else if (ctx->section == SECTION_FUNCTION &&
		   strncmp(name, ENV_PREFIX, strlen(ENV_PREFIX)) == 0) {
		set_env_var(ctx, &cfg->functions[ctx->function], name, value);
	} else if (ctx->section == SECTION_FUNCTION) {
		struct fn_function_config *fn = &cfg->functions[ctx->function];
		char section_name[sizeof(FUNCTION_PREFIX) + FUNCTION_NAME_MAX];
		snprintf(section_name, sizeof(section_name), FUNCTION_PREFIX "%s", fn->name);
		ini_key_set(&ctx->ini, function_keys, ARRAY_SIZE(function_keys),
			    ctx->lines[ctx->function].seen, fn, section_name, name, value);
	} else {
		fail(ctx, name,
		     "comes before any section; put it under [runner] or [function.NAME]");
	}
	return !ctx->ini.failed;
}

static void function_defaults(struct fn_function_config *fn)
{
	*fn = (struct fn_function_config){
		.timeout_usec = 3 * USEC_PER_SEC,
		.memory_mb = 128,
		.idle_timeout_usec = 300 * USEC_PER_SEC,
		.on_limit = FN_ON_LIMIT_QUEUE,
		.queue_depth = 100,
		.queue_timeout_usec = 10 * USEC_PER_SEC,
		.http = true,
		.batch_size = 10,
		.queue_concurrency = 2,
		.max_receive_count = 3,
		.visibility_timeout_usec = 30 * USEC_PER_SEC,
		.queue_poll_usec = 1 * USEC_PER_SEC,
	};
}

static const struct fn_function_config *find_function(const struct fn_runner_config *cfg,
						      const char *name, size_t len, size_t *index)
{
	for (size_t i = 0; i < cfg->n_functions; i++) {
		const char *have = cfg->functions[i].name;
		if (strlen(have) == len && memcmp(have, name, len) == 0) {
			*index = i;
			return &cfg->functions[i];
		}
	}
	return NULL;
}

/* [function.NAME]: a new function with every default, from this line on. */
static void open_function(struct load_ctx *ctx, const char *name, size_t len)
{
	struct fn_runner_config *cfg = ctx->cfg;
	size_t old;
	if (!valid_name(name, len, FUNCTION_NAME_MAX)) {
		fail(ctx, NULL,
		     "[" FUNCTION_PREFIX "%.*s]: a function name is 1 to %d letters, digits, '_' "
		     "or '-'",
		     (int)len, name, FUNCTION_NAME_MAX);
		return;
	}
	if (find_function(cfg, name, len, &old)) {
		fail(ctx, NULL,
		     "[" FUNCTION_PREFIX "%.*s]: function defined twice (first on line %d)",
		     (int)len, name, ctx->lines[old].header);
		return;
	}
	size_t n = cfg->n_functions;
	struct fn_function_config *fns = realloc(cfg->functions, (n + 1) * sizeof(*fns));
	if (fns)
		cfg->functions = fns;
	struct fn_lines *lines = realloc(ctx->lines, (n + 1) * sizeof(*lines));
	if (lines)
		ctx->lines = lines;
	char *copy = strndup(name, len);
	if (!fns || !lines || !copy) {
		free(copy);
		fail(ctx, NULL, "out of memory");
		return;
	}
	function_defaults(&fns[n]);
	fns[n].name = copy;
	lines[n] = (struct fn_lines){ .header = ctx->ini.lineno };
	cfg->n_functions = n + 1;
	ctx->section = SECTION_FUNCTION;
	ctx->function = n;
}

/* "[NAME]", the reader's section hook: followed here (see the comment at the top). */
static void open_section(struct ini_load *ld, const char *name, size_t len)
{
	struct load_ctx *ctx = container_of(ld, struct load_ctx, ini);
	size_t prefix = strlen(FUNCTION_PREFIX);
	if (len == strlen("runner") && memcmp(name, "runner", len) == 0)
		ctx->section = SECTION_RUNNER;
	else if (len >= prefix && memcmp(name, FUNCTION_PREFIX, prefix) == 0)
		open_function(ctx, name + prefix, len - prefix);
	else
		fail(ctx, NULL,
		     "[%.*s]: unknown section (corral-fn knows [runner] and [function.NAME])",
		     (int)len, name);
}

/* ---- the whole file -------------------------------------------------------------------- */

static bool runner_defaults(struct load_ctx *ctx)
{
	struct fn_runner_config *cfg = ctx->cfg;
	cfg->listen_port = 9000;
	cfg->max_concurrency = 1000;
	cfg->init_timeout_usec = 10 * USEC_PER_SEC;
	cfg->shutdown_grace_usec = 2 * USEC_PER_SEC;
	cfg->log_reports = true;
	cfg->request_timeout_usec = 10 * USEC_PER_SEC;
	cfg->max_connections = 10000;
	cfg->exec_environments = true;
	cfg->listen_addr = strdup("127.0.0.1");
	cfg->functions_dir = strdup("bin/functions");
	cfg->log_level = strdup("info");
	if (cfg->listen_addr && cfg->functions_dir && cfg->log_level)
		return true;
	fail_line(ctx, 0, NULL, "out of memory");
	return false;
}

/* The line a function's key was set on, else its section header's. */
static int function_line(const struct load_ctx *ctx, size_t i, const char *key)
{
	int k = ini_key_index(function_keys, ARRAY_SIZE(function_keys), key);
	int line = k >= 0 ? ctx->lines[i].seen[k] : 0;
	return line ? line : ctx->lines[i].header;
}

static int runner_line(const struct load_ctx *ctx, const char *key)
{
	int k = ini_key_index(runner_keys, ARRAY_SIZE(runner_keys), key);
	return k >= 0 ? ctx->runner_seen[k] : 0;
}

/* so defaults to functions_dir/NAME.so; either way the file must be there now, so a
 * typo is reported with its line at start rather than as a failed cold start. */
static void resolve_so(struct load_ctx *ctx, size_t i)
{
	struct fn_function_config *fn = &ctx->cfg->functions[i];
	bool by_default = !fn->so_path;
	if (by_default) {
		const char *dir = ctx->cfg->functions_dir;
		int len = (int)strlen(dir);
		while (len > 0 && dir[len - 1] == '/')
			len--;
		if (asprintf(&fn->so_path, "%.*s/%s.so", len, dir, fn->name) < 0) {
			fn->so_path = NULL;
			fail_line(ctx, 0, NULL, "out of memory");
			return;
		}
	}
	if (access(fn->so_path, R_OK) == 0)
		return;
	int e = errno;
	fail_line(ctx, function_line(ctx, i, "so"), "so", "cannot read \"%s\"%s: %s",
		  fn->so_path, by_default ? " (functions_dir/NAME.so, the default)" : "",
		  strerror(e));
}

static double seconds(usec_t usec)
{
	return (double)usec / USEC_PER_SEC;
}

/* Rules that involve more than one key of a function. */
static void check_function(struct load_ctx *ctx, size_t i)
{
	const struct fn_function_config *fn = &ctx->cfg->functions[i];
	if (!fn->http && !fn->has_schedule && !fn->queue)
		fail_line(ctx, function_line(ctx, i, "http"), "http",
			  "is no, and neither schedule nor queue is set: nothing could invoke "
			  "the function");
	if (fn->reserved_concurrency && fn->provisioned > fn->reserved_concurrency)
		fail_line(ctx, function_line(ctx, i, "provisioned"), "provisioned",
			  "must be at most reserved_concurrency (%u), got %u",
			  fn->reserved_concurrency, fn->provisioned);
	if (!fn->queue)
		return;
	if (!ctx->cfg->queue_database_url)
		fail_line(ctx, function_line(ctx, i, "queue"), "queue",
			  "needs the queue tables' database: set queue_database_url or "
			  "database_url in [runner]");
	/* As Lambda refuses an SQS source whose visibility timeout is shorter than the
	 * function's: messages would reappear, and be handled twice, while still running. */
	if (fn->visibility_timeout_usec < fn->timeout_usec) {
		bool set = ctx->lines[i].seen[ini_key_index(function_keys, ARRAY_SIZE(function_keys),
							"visibility_timeout")];
		const char *key = set ? "visibility_timeout" : "queue";
		fail_line(ctx, function_line(ctx, i, key), key,
			  "visibility_timeout (%g s) must be at least the function's timeout "
			  "(%g s), or messages reappear while they are being handled",
			  seconds(fn->visibility_timeout_usec), seconds(fn->timeout_usec));
	}
}

/* Provisioned environments all live at once from the start, within max_concurrency. */
static void check_provisioned_total(struct load_ctx *ctx)
{
	struct fn_runner_config *cfg = ctx->cfg;
	uint64_t total = 0;
	for (size_t i = 0; i < cfg->n_functions; i++) {
		total += cfg->functions[i].provisioned;
		if (total <= cfg->max_concurrency)
			continue;
		fail_line(ctx, function_line(ctx, i, "provisioned"), "provisioned",
			  "provisioned environments of all functions add up to %llu, more than "
			  "max_concurrency (%u)%s",
			  (unsigned long long)total, cfg->max_concurrency,
			  runner_line(ctx, "max_concurrency") ? "" : " (the default)");
		return;
	}
}

static void finish(struct load_ctx *ctx)
{
	struct fn_runner_config *cfg = ctx->cfg;
	if (!cfg->queue_database_url && cfg->database_url) {
		cfg->queue_database_url = strdup(cfg->database_url);
		if (!cfg->queue_database_url) {
			fail_line(ctx, 0, NULL, "out of memory");
			return;
		}
	}
	for (size_t i = 0; i < cfg->n_functions; i++) {
		int before = ctx->ini.n_errors;
		resolve_so(ctx, i);
		if (ctx->ini.n_errors == before)
			check_function(ctx, i);
	}
	check_provisioned_total(ctx);
}

bool fn_config_load(const char *path, struct fn_runner_config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct load_ctx ctx = { .cfg = out };
	ini_load_begin(&ctx.ini, path, err, errlen);
	ctx.ini.section = open_section; /* once the line is known to fit */
	if (runner_defaults(&ctx))
		ini_load_parse_file(&ctx.ini, on_entry, &ctx);
	if (!ctx.ini.failed)
		finish(&ctx);
	free(ctx.lines);
	if (ctx.ini.failed) {
		fn_config_free(out);
		return false;
	}
	return true;
}

/* Frees s, zeroing it first when wipe: free() alone leaves the bytes in the heap. */
static void release(char *s, bool wipe)
{
	if (s && wipe)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void config_free(struct fn_runner_config *cfg, bool wipe)
{
	for (size_t i = 0; i < cfg->n_functions; i++) {
		struct fn_function_config *fn = &cfg->functions[i];
		release(fn->name, wipe);
		release(fn->so_path, wipe);
		release(fn->database_url, wipe);
		release(fn->schedule, wipe);
		release(fn->queue, wipe);
		for (size_t j = 0; j < fn->n_env; j++)
			release(fn->env[j], wipe);
		free(fn->env);
	}
	free(cfg->functions);
	release(cfg->listen_addr, wipe);
	release(cfg->database_url, wipe);
	release(cfg->queue_database_url, wipe);
	release(cfg->functions_dir, wipe);
	release(cfg->log_level, wipe);
	release(cfg->auth_token, true); /* a secret: zeroed however it goes */
	memset(cfg, 0, sizeof(*cfg));
}

void fn_config_free(struct fn_runner_config *cfg)
{
	config_free(cfg, false);
}

void fn_config_wipe(struct fn_runner_config *cfg)
{
	config_free(cfg, true);
}

const struct fn_function_config *fn_config_find(const struct fn_runner_config *cfg,
						const char *name)
{
	size_t i;
	return name ? find_function(cfg, name, strlen(name), &i) : NULL;
}
