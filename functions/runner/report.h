/*
 * Lambda's per-invocation log lines, so that tools written for CloudWatch logs read
 * corral-fn's output:
 *
 *   START RequestId: <id> Version: $LATEST
 *   END RequestId: <id>
 *   REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\t
 *     Memory Size: 128 MB\tMax Memory Used: 42 MB\tInit Duration: 5.67 ms
 *
 * (one line, fields separated by tabs), then corral-fn's own fields
 * (`\tQueue Wait: 0.12 ms\tCold: true`), and request ids (UUID v4).
 *
 * Durations are integer microseconds, so billing is exact: Billed Duration is the
 * duration rounded up to the next whole millisecond (at least 1 ms), as Lambda
 * bills since December 2020.  Init Duration appears only on a cold start.
 */
#ifndef CORRAL_FUNCTIONS_RUNNER_REPORT_H
#define CORRAL_FUNCTIONS_RUNNER_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" and its NUL */
#define REPORT_ID_SIZE 37

/* A fresh random request id from getrandom(2); false if the kernel gave none. */
bool report_request_id(char out[REPORT_ID_SIZE]) WARN_UNUSED;
/* The UUID v4 text of 16 random bytes (version and variant bits are set here). */
void report_uuid_format(const uint8_t bytes[16], char out[REPORT_ID_SIZE]);

/* A name and value appended as `\tName: value`, for fields of later issues. */
struct report_extra {
	const char *name;
	const char *value;
};

struct report_invocation {
	int64_t duration_us;     /* the handler's run time */
	unsigned memory_size_mb; /* configured memory */
	int64_t max_memory_kb;   /* peak RSS of the environment (getrusage ru_maxrss) */
	bool cold;               /* this invocation paid the init */
	int64_t init_us;         /* fork + dlopen + fn_init, on a cold start */
	/* Lambda's own failure fields: `\tStatus: timeout` and, with an error type,
	 * `\tStatus: error\tError Type: Runtime.ExitError`; NULL when it succeeded. */
	const char *status;
	const char *error_type;
	/* corral-fn's fields: */
	int64_t queue_wait_us; /* time waiting for an environment; < 0 leaves it out */
	const struct report_extra *extra;
	size_t n_extra;
};

/* Billed milliseconds for a duration: rounded up, at least 1. */
int64_t report_billed_ms(int64_t duration_us);
/* Megabytes as Lambda shows Max Memory Used: rounded up. */
int64_t report_memory_mb(int64_t kb);

/*
 * Each writes its line, without a newline, into buf like snprintf: the result is
 * the line's length; a result >= len means it was cut short (always
 * NUL-terminated when len > 0).
 */
int report_start_line(char *buf, size_t len, const char *request_id);
int report_end_line(char *buf, size_t len, const char *request_id);
int report_report_line(char *buf, size_t len, const char *request_id,
		       const struct report_invocation *inv);

#endif
