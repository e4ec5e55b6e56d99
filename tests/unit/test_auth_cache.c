/* The auth_query cache (proxy/auth_cache.h): expiry, negative answers, the
 * configuration signature, bounds; and auth_secret_parse of what PostgreSQL returns. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/auth_cache.h"

#define SEC USEC_PER_SEC
#define VERIFIER                                        \
	"SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$"  \
	"9bsmLtrUJ6IdHU2tT8p9Yhsk0/EM9Pdgb5cT+jbqqtM=:" \
	"0kTq3cy7kKqnxlGxYEWS9O0kBqz4cMi5aMVwbsX6KBM="

static struct user_secret parsed(const char *user, const char *text)
{
	struct user_secret s;
	cr_assert(auth_secret_parse(user, text, &s), "cannot parse %s", text);
	return s;
}

Test(auth_cache, hit_until_the_ttl)
{
	struct auth_cache *ac = auth_cache_new();
	struct user_secret s = parsed("alice", "md5"
					       "0123456789abcdef0123456789abcdef"),
			   out;
	cr_assert_eq(auth_cache_get(ac, "sig", 1, "db", "alice", 0, &out), AUTH_CACHE_MISS);
	cr_assert(auth_cache_put(ac, "sig", 1, "db", "alice", &s, 0, 2 * SEC));
	cr_assert_eq(auth_cache_get(ac, "sig", 1, "db", "alice", 2 * SEC - 1, &out),
		     AUTH_CACHE_FOUND);
	cr_expect_str_eq(out.secret, s.secret);
	cr_expect_eq(out.kind, SECRET_MD5);
	auth_secret_free(&out);
	/* Another key or user is another entry. */
	cr_expect_eq(auth_cache_get(ac, "sig", 1, "db2", "alice", 1, &out), AUTH_CACHE_MISS);
	cr_expect_eq(auth_cache_get(ac, "sig", 1, "db", "bob", 1, &out), AUTH_CACHE_MISS);
	/* Expired: asked again, and the entry is gone. */
	cr_expect_eq(auth_cache_get(ac, "sig", 1, "db", "alice", 2 * SEC, &out), AUTH_CACHE_MISS);
	cr_expect_eq(auth_cache_size(ac), 0);
	auth_secret_free(&s);
	auth_cache_free(ac);
}

Test(auth_cache, no_such_user_is_kept_too)
{
	struct auth_cache *ac = auth_cache_new();
	struct user_secret out;
	cr_assert(auth_cache_put(ac, "sig", 1, "db", "ghost", NULL, 0, SEC));
	cr_expect_eq(auth_cache_get(ac, "sig", 1, "db", "ghost", SEC / 2, &out),
		     AUTH_CACHE_NOT_FOUND);
	cr_expect_eq(auth_cache_get(ac, "sig", 1, "db", "ghost", SEC, &out), AUTH_CACHE_MISS);
	/* ttl 0: nothing is kept. */
	cr_expect_not(auth_cache_put(ac, "sig", 1, "db", "ghost", NULL, 0, 0));
	cr_expect_eq(auth_cache_get(ac, "sig", 1, "db", "ghost", 0, &out), AUTH_CACHE_MISS);
	auth_cache_free(ac);
}

Test(auth_cache, a_new_configuration_drops_everything)
{
	struct auth_cache *ac = auth_cache_new();
	struct user_secret out;
	cr_assert(auth_cache_put(ac, "q1", 1, "db", "a", NULL, 0, 60 * SEC));
	cr_assert(auth_cache_put(ac, "q1", 1, "db", "b", NULL, 0, 60 * SEC));
	/* A reload that changed nothing of the lookup keeps the answers. */
	cr_expect_eq(auth_cache_get(ac, "q1", 2, "db", "a", 1, &out), AUTH_CACHE_NOT_FOUND);
	/* One that changed auth_query drops them. */
	cr_expect_eq(auth_cache_get(ac, "q2", 3, "db", "a", 1, &out), AUTH_CACHE_MISS);
	cr_expect_eq(auth_cache_size(ac), 0);
	/* A lookup started under the old configuration is not cached, nor read. */
	cr_expect_not(auth_cache_put(ac, "q1", 2, "db", "a", NULL, 1, 60 * SEC));
	cr_expect_eq(auth_cache_size(ac), 0);
	cr_expect_eq(auth_cache_get(ac, "q1", 2, "db", "a", 1, &out), AUTH_CACHE_MISS);
	cr_assert(auth_cache_put(ac, "q2", 3, "db", "a", NULL, 1, 60 * SEC));
	cr_expect_eq(auth_cache_size(ac), 1);
	auth_cache_free(ac);
}

Test(auth_cache, a_new_answer_replaces_the_old)
{
	struct auth_cache *ac = auth_cache_new();
	struct user_secret s = parsed("a", "pw"), out;
	cr_assert(auth_cache_put(ac, "s", 1, "db", "a", NULL, 0, SEC));
	cr_assert(auth_cache_put(ac, "s", 1, "db", "a", &s, 0, SEC));
	cr_expect_eq(auth_cache_size(ac), 1);
	cr_assert_eq(auth_cache_get(ac, "s", 1, "db", "a", 0, &out), AUTH_CACHE_FOUND);
	cr_expect_str_eq(out.secret, "pw");
	auth_secret_free(&out);
	auth_secret_free(&s);
	auth_cache_free(ac);
}

Test(auth_cache, bounded)
{
	struct auth_cache *ac = auth_cache_new();
	char user[32];
	for (int i = 0; i < AUTH_CACHE_MAX + 10; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		/* u0 expires first: it goes when the cache is full. */
		cr_assert(auth_cache_put(ac, "s", 1, "db", user, NULL, 0, (usec_t)(i + 1) * SEC));
	}
	cr_expect_eq(auth_cache_size(ac), AUTH_CACHE_MAX);
	struct user_secret out;
	cr_expect_eq(auth_cache_get(ac, "s", 1, "db", "u0", 0, &out), AUTH_CACHE_MISS);
	cr_expect_eq(auth_cache_get(ac, "s", 1, "db", "u10", 0, &out), AUTH_CACHE_NOT_FOUND);
	auth_cache_free(ac);
}

Test(auth_cache, secrets_as_postgres_returns_them)
{
	struct user_secret s = parsed("alice", VERIFIER);
	cr_expect_eq(s.kind, SECRET_SCRAM);
	cr_expect(s.has_scram);
	cr_expect_eq(s.scram.iterations, 4096);
	auth_secret_free(&s);
	s = parsed("alice", "plain password");
	cr_expect_eq(s.kind, SECRET_PLAIN);
	cr_expect(s.has_scram, "SCRAM keys derived once for a password");
	struct user_secret copy;
	cr_assert(auth_secret_copy(&s, &copy));
	cr_expect_str_eq(copy.secret, "plain password");
	cr_expect_str_eq(copy.name, "alice");
	cr_expect_eq(memcmp(copy.scram.stored_key, s.scram.stored_key, SCRAM_KEY_LEN), 0);
	auth_secret_free(&copy);
	auth_secret_free(&s);
	struct user_secret bad;
	cr_expect_not(auth_secret_parse("alice", "", &bad));
	cr_expect_not(auth_secret_parse("alice", "SCRAM-SHA-256$x", &bad));
}

Test(auth_cache, one_lookup_per_user_in_the_process)
{
	struct auth_cache *ac = auth_cache_new();
	struct user_secret out, s = parsed("a", "pw");
	usec_t stale = 20 * SEC;
	/* Worker 0 claims; workers 1 and 3 wait for it; 0 again is its own (a lookup of
	 * its own would have been found before asking). */
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "a", 0, 0, stale, &out),
		     AUTH_CACHE_CLAIMED);
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "a", 1, 1, stale, &out),
		     AUTH_CACHE_PENDING);
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "a", 1, 3, stale, &out),
		     AUTH_CACHE_PENDING);
	/* Another user is another claim. */
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "b", 1, 1, stale, &out),
		     AUTH_CACHE_CLAIMED);
	struct auth_cache_waiters w;
	auth_cache_finish(ac, "s", 1, "db", "a", &s, false, 2, 60 * SEC, &w);
	cr_expect_eq(w.bits[0], (1ULL << 1) | (1ULL << 3));
	/* Answered: everyone reads the cache now, nobody claims. */
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "a", 3, 2, stale, &out),
		     AUTH_CACHE_FOUND);
	auth_secret_free(&out);
	/* A failed lookup is not cached; the claim goes, its waiters hear. */
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "b", 4, 2, stale, &out),
		     AUTH_CACHE_PENDING);
	auth_cache_finish(ac, "s", 1, "db", "b", NULL, true, 5, 60 * SEC, &w);
	cr_expect_eq(w.bits[0], 1ULL << 2);
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "b", 6, 2, stale, &out),
		     AUTH_CACHE_CLAIMED);
	/* A claim older than stale_after is taken over, its waiters kept. */
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "b", 7, 5, stale, &out),
		     AUTH_CACHE_PENDING);
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "b", 6 + stale, 1, stale, &out),
		     AUTH_CACHE_CLAIMED);
	auth_cache_finish(ac, "s", 1, "db", "b", NULL, false, 7 + stale, 60 * SEC, &w);
	cr_expect_eq(w.bits[0], 1ULL << 5);
	cr_expect_eq(auth_cache_get_or_claim(ac, "s", 1, "db", "b", 8 + stale, 0, stale, &out),
		     AUTH_CACHE_NOT_FOUND);
	/* Finishing what nobody claimed tells nobody. */
	auth_cache_finish(ac, "s", 1, "db", "zz", NULL, true, 0, SEC, &w);
	cr_expect_eq(w.bits[0] | w.bits[1] | w.bits[2] | w.bits[3], 0);
	auth_secret_free(&s);
	auth_cache_free(ac);
}
