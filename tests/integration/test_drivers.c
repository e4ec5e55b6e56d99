/*
 * Real drivers through corral in transaction pooling: cancels from asyncpg (timeout=)
 * and psycopg 3 (cancel()) end the right statement with 57014 and leave the
 * connection usable, while another client's statement runs on (drivers/cancel.py,
 * run with Debian's python3, whose python3-asyncpg and python3-psycopg deps.sh
 * installs).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/harness.h"

TestSuite(drivers, H_SUITE);

Test(drivers, cancel_from_asyncpg_and_psycopg, .timeout = 60)
{
	struct h_corral *c = h_corral_start("pool_mode = transaction\nworkers = 2\n", H_BENCH_DB,
					    NULL);
	char *script = h_printf("%s/tests/integration/drivers/cancel.py",
				h_need_env("CORRAL_SRCDIR"));
	struct h_cmd r = h_run(50, "/usr/bin/python3 %s postgresql://%s:%s@127.0.0.1:%d/%s", script,
			       H.user, H.password, c->port, H.db);
	cr_assert_eq(r.status, 0,
		     "drivers/cancel.py exited %d\nstdout:\n%s\nstderr:\n%s\ncorral log:\n%s",
		     r.status, r.out, r.err, h_corral_log_tail(c));
	cr_assert(strstr(r.out, "all cancels reached the right statement") != NULL, "%s", r.out);
	cr_log_info("%s", r.out);
	h_cmd_free(&r);
	free(script);
	h_corral_stop(c);
}
