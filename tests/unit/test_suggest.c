/* common/suggest.c: "did you mean" for misspelt configuration keys. */
#include <criterion/criterion.h>

#include "common/suggest.h"

Test(suggest, distance)
{
	cr_expect_eq(suggest_distance("", ""), 0);
	cr_expect_eq(suggest_distance("abc", ""), 3);
	cr_expect_eq(suggest_distance("listen_port", "listen_port"), 0);
	cr_expect_eq(suggest_distance("Listen_Port", "listen_port"), 0); /* case ignored */
	cr_expect_eq(suggest_distance("listen_prot", "listen_port"), 1); /* a swap costs 1 */
	cr_expect_eq(suggest_distance("wrkers", "workers"), 1);
	cr_expect_eq(suggest_distance("workerss", "workers"), 1);
	cr_expect_eq(suggest_distance("wurkers", "workers"), 1);
	cr_expect_eq(suggest_distance("max_clinet_con", "max_client_conn"), 2);
	cr_expect_eq(suggest_distance("kitten", "sitting"), 3);
	char longer[80];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	cr_expect_gt(suggest_distance(longer, "a"), 1000);
}

static const char *best_of(const char *name, const char *const *candidates)
{
	struct suggest s;
	suggest_begin(&s, name);
	for (; *candidates; candidates++)
		suggest_consider(&s, *candidates);
	return suggest_result(&s);
}

Test(suggest, close_names_are_offered_far_ones_not)
{
	const char *const keys[] = {"listen_addr",     "listen_port", "workers",   "pool_mode",
				    "max_client_conn", "auth_type",   "auth_file", NULL};
	cr_expect_str_eq(best_of("listen_prot", keys), "listen_port");
	cr_expect_str_eq(best_of("listen_adr", keys), "listen_addr");
	cr_expect_str_eq(best_of("worker", keys), "workers");
	cr_expect_str_eq(best_of("Pool_Mode", keys), "pool_mode");
	cr_expect_str_eq(best_of("max_clinet_con", keys), "max_client_conn");
	cr_expect_str_eq(best_of("auth_typ", keys), "auth_type");
	/* Nothing near: no guess. */
	cr_expect_null(best_of("logfile", keys));
	cr_expect_null(best_of("compression", keys));
	cr_expect_null(best_of("ab", keys));
	const char *const none[] = {NULL};
	cr_expect_null(best_of("workers", none));
}

Test(suggest, the_first_of_equally_close_candidates_wins)
{
	const char *const keys[] = {"auth_file", "auth_type", NULL};
	cr_expect_str_eq(best_of("auth_fyle", keys), "auth_file");
	cr_expect_str_eq(best_of("auth_tyle", keys), "auth_type");
}
