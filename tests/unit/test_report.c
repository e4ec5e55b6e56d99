/* functions/runner/report.c: Lambda's START / END / REPORT lines and request ids. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

#include "functions/runner/report.h"

static const char *const ID = "8f507cfc-8f25-4a1d-9a4c-0e1b2c3d4e5f";

Test(report, start_and_end)
{
	char buf[128];
	int n = report_start_line(buf, sizeof(buf), ID);
	cr_assert_str_eq(buf,
			 "START RequestId: 8f507cfc-8f25-4a1d-9a4c-0e1b2c3d4e5f Version: $LATEST");
	cr_assert_eq(n, (int)strlen(buf));
	n = report_end_line(buf, sizeof(buf), ID);
	cr_assert_str_eq(buf, "END RequestId: 8f507cfc-8f25-4a1d-9a4c-0e1b2c3d4e5f");
	cr_assert_eq(n, (int)strlen(buf));
}

Test(report, cold_start)
{
	struct report_invocation inv = {
		.duration_us = 12340,
		.memory_size_mb = 128,
		.max_memory_kb = 42 * 1024,
		.cold = true,
		.init_us = 5670,
		.queue_wait_us = 120,
	};
	char buf[512];
	int n = report_report_line(buf, sizeof(buf), ID, &inv);
	cr_assert_str_eq(buf, "REPORT RequestId: 8f507cfc-8f25-4a1d-9a4c-0e1b2c3d4e5f\t"
			      "Duration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
			      "Max Memory Used: 42 MB\tInit Duration: 5.67 ms\t"
			      "Queue Wait: 0.12 ms\tCold: true");
	cr_assert_eq(n, (int)strlen(buf));
}

Test(report, warm_has_no_init_duration)
{
	struct report_invocation inv = {
		.duration_us = 2050,
		.memory_size_mb = 256,
		.max_memory_kb = 65 * 1024 - 1,
		.init_us = 999999, /* ignored when warm */
		.queue_wait_us = -1,
	};
	char buf[512];
	report_report_line(buf, sizeof(buf), ID, &inv);
	cr_assert_str_eq(buf, "REPORT RequestId: 8f507cfc-8f25-4a1d-9a4c-0e1b2c3d4e5f\t"
			      "Duration: 2.05 ms\tBilled Duration: 3 ms\tMemory Size: 256 MB\t"
			      "Max Memory Used: 65 MB\tCold: false");
}

Test(report, billed_duration_rounds_up)
{
	cr_assert_eq(report_billed_ms(0), 1);
	cr_assert_eq(report_billed_ms(1), 1);
	cr_assert_eq(report_billed_ms(999), 1);
	cr_assert_eq(report_billed_ms(1000), 1);
	cr_assert_eq(report_billed_ms(1001), 2);
	cr_assert_eq(report_billed_ms(12340), 13);
	cr_assert_eq(report_billed_ms(13000), 13);
	cr_assert_eq(report_billed_ms(3000000), 3000);
	cr_assert_eq(report_billed_ms(-5), 1);
}

Test(report, duration_rounding)
{
	char buf[512];
	struct report_invocation inv = {.memory_size_mb = 128, .queue_wait_us = -1};
	static const struct {
		int64_t us;
		const char *shown;
	} cases[] = {
		{0, "Duration: 0.00 ms\tBilled Duration: 1 ms"},
		{4, "Duration: 0.00 ms\tBilled Duration: 1 ms"},
		{5, "Duration: 0.01 ms\tBilled Duration: 1 ms"},
		{12345, "Duration: 12.35 ms\tBilled Duration: 13 ms"},
		{12001, "Duration: 12.00 ms\tBilled Duration: 13 ms"},
		{999995, "Duration: 1000.00 ms\tBilled Duration: 1000 ms"},
		{3600000000, "Duration: 3600000.00 ms\tBilled Duration: 3600000 ms"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		inv.duration_us = cases[i].us;
		report_report_line(buf, sizeof(buf), ID, &inv);
		cr_assert(strstr(buf, cases[i].shown), "%lld us: %s", (long long)cases[i].us, buf);
	}
}

Test(report, memory_rounds_up)
{
	cr_assert_eq(report_memory_mb(0), 0);
	cr_assert_eq(report_memory_mb(1), 1);
	cr_assert_eq(report_memory_mb(1024), 1);
	cr_assert_eq(report_memory_mb(1025), 2);
	cr_assert_eq(report_memory_mb(43008), 42);
}

Test(report, status_and_extras)
{
	static const struct report_extra extra[] = {{"Environment", "3"}, {"Function", "report"}};
	struct report_invocation inv = {
		.duration_us = 3000000,
		.memory_size_mb = 128,
		.max_memory_kb = 2048,
		.status = "timeout",
		.queue_wait_us = 0,
		.extra = extra,
		.n_extra = 2,
	};
	char buf[512];
	report_report_line(buf, sizeof(buf), ID, &inv);
	cr_assert_str_eq(buf,
			 "REPORT RequestId: 8f507cfc-8f25-4a1d-9a4c-0e1b2c3d4e5f\t"
			 "Duration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
			 "Max Memory Used: 2 MB\tStatus: timeout\tQueue Wait: 0.00 ms\t"
			 "Cold: false\tEnvironment: 3\tFunction: report");
	inv.status = "error";
	inv.error_type = "Runtime.ExitError";
	inv.n_extra = 0;
	report_report_line(buf, sizeof(buf), ID, &inv);
	cr_assert(strstr(buf, "\tStatus: error\tError Type: Runtime.ExitError\tQueue Wait:"), "%s",
		  buf);
}

Test(report, truncation_like_snprintf)
{
	struct report_invocation inv = {.duration_us = 12340,
					.memory_size_mb = 128,
					.queue_wait_us = -1};
	char full[512];
	int n = report_report_line(full, sizeof(full), ID, &inv);
	char small[40];
	memset(small, 'x', sizeof(small));
	int m = report_report_line(small, sizeof(small), ID, &inv);
	cr_assert_eq(m, n, "the result is the full length");
	cr_assert_eq(strlen(small), sizeof(small) - 1);
	cr_assert(strncmp(small, full, sizeof(small) - 1) == 0);
	cr_assert_eq(report_report_line(NULL, 0, ID, &inv), n);
	char one[1] = {'x'};
	cr_assert_eq(report_start_line(one, 1, ID),
		     (int)strlen("START RequestId:  Version: $LATEST") + 36);
	cr_assert_eq(one[0], '\0');
}

static void check_uuid_v4(const char *id)
{
	cr_assert_eq(strlen(id), 36, "%s", id);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			cr_assert_eq(id[i], '-', "%s", id);
		else
			cr_assert(isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]),
				  "%s", id);
	}
	cr_assert_eq(id[14], '4', "version nibble: %s", id);
	cr_assert(strchr("89ab", id[19]), "variant: %s", id);
}

Test(report, uuid_format)
{
	uint8_t zeros[16] = {0}, ones[16];
	memset(ones, 0xff, sizeof(ones));
	char id[REPORT_ID_SIZE];
	report_uuid_format(zeros, id);
	cr_assert_str_eq(id, "00000000-0000-4000-8000-000000000000");
	report_uuid_format(ones, id);
	cr_assert_str_eq(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
	uint8_t seq[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
			   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
	report_uuid_format(seq, id);
	cr_assert_str_eq(id, "01234567-89ab-4def-8123-456789abcdef");
	check_uuid_v4(id);
}

Test(report, request_ids_are_random_v4)
{
	char ids[200][REPORT_ID_SIZE];
	for (int i = 0; i < 200; i++) {
		cr_assert(report_request_id(ids[i]));
		check_uuid_v4(ids[i]);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(ids[i], ids[j]);
	}
}
