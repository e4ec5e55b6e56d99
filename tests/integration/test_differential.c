/*
 * Differential test of transaction pooling: several clients share one server
 * connection (pool_size = 1) and each must get, message by message, exactly the replies
 * PostgreSQL gives the same client directly.  A server handed to the next client before
 * PostgreSQL has answered everything the last one sent shows up as a reply that
 * differs, a wait that never ends, or a client reading another client's marker.
 *
 * Sequences are random (tests/integration/diff_gen.c: simple and extended queries,
 * pipelines with errors in the middle, COPY both ways, messages at odd places,
 * transactions, short sleeps and notices), written in chunks of one write, one write
 * per message, or random pieces, with waits for replies between some chunks.  Each
 * sequence runs first straight against PostgreSQL, then through corral with all its
 * clients at once (tests/integration/diff_run.c); tables are emptied before each run.
 *
 * Environment (all optional):
 *   CORRAL_DIFF_SEQUENCES=N   random sequences in all (default 240; 24 with corral under
 *                             valgrind), split over the four random_N tests: sequence i
 *                             runs in random_(i % 4 + 1) and has seed SEED + i
 *   CORRAL_DIFF_SEED=S        the first seed (default 1)
 *   CORRAL_DIFF_ONLY=I        run sequence I alone (its failure report says how)
 *   CORRAL_DIFF_KEEP_GOING=1  report every failing sequence (corral is restarted after
 *                             each, at most 6 times per test) instead of the first one
 *   CORRAL_DIFF_VERBOSE=1     print every sequence and its direct replies to stderr
 *   CORRAL_DIFF_POOL_MODE=M   corral's pool_mode (default transaction); session checks
 *                             the test itself: a client keeps its server, nothing can mix
 * A failure prints the seed, the whole sequence, both reply streams and the line that
 * reruns that one sequence.
 *
 * What is compared: everything a client receives after its login.  Clients log in with
 * libpq and then speak the raw protocol on PQsocket(), so the login's ParameterStatus
 * values and BackendKeyData (which legitimately differ: corral issues its own keys) are
 * never compared.  After the login nothing needs normalising: the replies come from the
 * same PostgreSQL (ErrorResponse File/Line/Routine fields included), the statements
 * return constants, the tables are the same (truncated, not recreated, so RowDescription's
 * table OIDs match), and corral adds nothing with these settings (query_wait_notify,
 * idle timeouts off; every client has the same startup parameters, so no SET is seen).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/integration/diff_gen.h"
#include "tests/integration/diff_run.h"
#include "tests/integration/harness.h"

TestSuite(differential, H_SUITE);

#define RANDOM_TESTS 4
#define DEFAULT_SEQUENCES 240
#define MAX_RESTARTS 6

/* One server connection; trust: logins cost nothing here. */
static const char *const ONE_SERVER_DB = H_BENCH_DB_WITH(" pool_size=1");

struct diff {
	const char *test; /* this test's name, for the rerun line */
	struct h_corral *c;
	PGconn *admin; /* PostgreSQL directly: the tables */
	char *direct_ci, *corral_ci;
	char tables[DG_MAX_CLIENTS][48];
	const char *table_names[DG_MAX_CLIENTS];
	bool keep_going;
	double timeout_scale; /* corral under valgrind: waits longer */
	int restarts;
	double direct_secs, corral_secs; /* time in runs */
	char *failures;                  /* keep-going: one line per failing sequence */
	int n_failures;
};

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : dflt;
}

/* make valgrind runs corral through scripts/valgrind-corral.sh. */
static bool slow_corral(void)
{
	return strstr(H.corral_bin, "valgrind") != NULL;
}

static unsigned long long env_seed(void)
{
	const char *v = getenv("CORRAL_DIFF_SEED");

	return v && *v ? strtoull(v, NULL, 0) : 1;
}

static void admin_exec(struct diff *d, const char *sql)
{
	PGresult *r = h_exec(d->admin, sql);

	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

static char *conninfo(const char *host, int port)
{
	return h_printf(
		"host='%s' port=%d user='%s' dbname='%s' sslmode=disable gssencmode=disable "
		"connect_timeout=10",
		host, port, H.user, H.db);
}

static void start_corral(struct diff *d)
{
	const char *mode = getenv("CORRAL_DIFF_POOL_MODE");
	char *settings = h_printf("pool_mode = %s\nauth_type = trust\n",
				  mode && *mode ? mode : "transaction");

	d->c = h_corral_start(settings, ONE_SERVER_DB, NULL);
	free(settings);
	free(d->corral_ci);
	d->corral_ci = conninfo("127.0.0.1", d->c->port);
}

/*
 * corral (transaction pooling, pool_size = 1), a direct connection for the tables, and
 * the tables: dt_TAG_cK (id int primary key, v text), one per client.  The direct runs
 * log in over the unix socket (trust; the replies after login do not depend on it).
 */
static void diff_setup(struct diff *d, const char *test, const char *tag)
{
	char *sql;

	memset(d, 0, sizeof *d);
	d->test = test;
	d->keep_going = env_long("CORRAL_DIFF_KEEP_GOING", 0) != 0;
	d->timeout_scale = slow_corral() ? 6.0 : 1.0;
	start_corral(d);
	d->direct_ci = conninfo(H.sockdir, H.pgport);
	d->admin = h_connect(NULL, d->direct_ci);
	admin_exec(d, "SET client_min_messages = warning");
	admin_exec(d, "SET lock_timeout = '5s'");
	for (int k = 0; k < DG_MAX_CLIENTS; k++) {
		snprintf(d->tables[k], sizeof d->tables[k], "dt_%s_c%d", tag, k);
		d->table_names[k] = d->tables[k];
		sql = h_printf(
			"DROP TABLE IF EXISTS %s; CREATE TABLE %s (id int PRIMARY KEY, v text)",
			d->tables[k], d->tables[k]);
		admin_exec(d, sql);
		free(sql);
	}
}

static void reset_tables(struct diff *d)
{
	char *sql = h_printf("TRUNCATE %s, %s, %s, %s", d->tables[0], d->tables[1], d->tables[2],
			     d->tables[3]);

	admin_exec(d, sql);
	free(sql);
}

static void diff_teardown(struct diff *d)
{
	for (int k = 0; k < DG_MAX_CLIENTS; k++) {
		char *sql = h_printf("DROP TABLE IF EXISTS %s", d->tables[k]);

		admin_exec(d, sql);
		free(sql);
	}
	PQfinish(d->admin);
	h_corral_stop(d->c);
	free(d->direct_ci);
	free(d->corral_ci);
	free(d->failures);
}

/* The report of a failed sequence: what went wrong, the sequence, both reply streams. */
static char *report(const struct diff *d, const struct dg_seq *s, const char *what,
		    const char *problems, const struct dr_run *want, const char *want_name,
		    const struct dr_run *got, const char *got_name)
{
	char *seq = dg_seq_text(s), *out, *streams = strdup(""), *rerun;

	for (int k = 0; k < s->n_clients; k++) {
		char *a = dr_stream_text(&want->c[k], 120),
		     *b = got ? dr_stream_text(&got->c[k], 120) : NULL;
		char *more = h_printf("%sclient %d, %s:\n%sclient %d, %s:\n%s", streams, k,
				      want_name, a, k, got ? got_name : "-", b ? b : "");

		free(streams);
		streams = more;
		free(a);
		free(b);
	}
	if (s->seqno >= 0 && s->seqno < 1000000)
		rerun = h_printf(
			"rerun it alone: CORRAL_DIFF_SEED=%llu CORRAL_DIFF_ONLY=%d "
			"tests/integration/run.sh bin/integration-tests --filter 'differential/random_%d'\n",
			(unsigned long long)s->seed - (unsigned long long)s->seqno, s->seqno,
			s->seqno % RANDOM_TESTS + 1);
	else
		rerun = strdup("");
	if (s->seqno >= 0)
		out = h_printf(
			"differential/%s: sequence %d (seed %llu): %s\n%s%s\n%s\nreplies:\n%s",
			d->test, s->seqno, (unsigned long long)s->seed, what, problems, rerun, seq,
			streams);
	else /* a fixed case */
		out = h_printf("differential/%s: %s\n%s\n%s\nreplies:\n%s", d->test, what, problems,
			       seq, streams);
	free(seq);
	free(streams);
	free(rerun);
	return out;
}

/*
 * Runs s directly (and checks the model), then through corral; returns a report of what
 * differs (malloc'd) or NULL.
 */
static char *run_sequence(struct diff *d, const struct dg_seq *s)
{
	struct dr_run direct, via;
	char *p, *out = NULL;

	reset_tables(d);
	dr_run(s, d->direct_ci, NULL, 1.0, &direct);
	p = dr_check_model(s, &direct);
	if (env_long("CORRAL_DIFF_VERBOSE", 0)) {
		char *v = report(d, s, "verbose", "", &direct, "direct", NULL, NULL);

		fprintf(stderr, "%s\n", v);
		free(v);
	}
	if (p != NULL) {
		out = report(
			d, s,
			"the direct run does not match the test's model of PostgreSQL (a bug in the test)",
			p, &direct, "direct", NULL, NULL);
		cr_assert_fail("%s", out);
	}
	reset_tables(d);
	dr_run(s, d->corral_ci, &direct, d->timeout_scale, &via);
	d->direct_secs += direct.secs;
	d->corral_secs += via.secs;
	p = dr_compare(s, &direct, &via, "direct", "corral");
	if (p != NULL) {
		char *log = h_printf("%s\ncorral log (tail):\n%s", p, h_corral_log_tail(d->c));

		out = report(d, s, "through corral, replies differ from PostgreSQL's", log, &direct,
			     "direct", &via, "corral");
		free(log);
		free(p);
	}
	dr_free(&direct);
	dr_free(&via);
	return out;
}

/* A failing sequence: the test fails, or (keep-going) it is noted and corral restarted. */
static void failed(struct diff *d, const struct dg_seq *s, char *rep)
{
	char *line;

	if (!d->keep_going)
		cr_assert_fail("%s", rep);
	fprintf(stderr, "%s\n", rep);
	line = h_printf("%s  sequence %d seed %llu: %.300s\n", d->failures ? d->failures : "",
			s->seqno, (unsigned long long)s->seed, strstr(rep, "\n") + 1);
	free(d->failures);
	d->failures = line;
	d->n_failures++;
	free(rep);
	h_corral_stop(d->c);
	d->restarts++;
	start_corral(d);
}

/* Random sequences part (of RANDOM_TESTS): i = part, part + RANDOM_TESTS, ... */
static void random_part(const char *test, const char *tag, int part)
{
	struct diff d;
	long n = env_long("CORRAL_DIFF_SEQUENCES",
			  slow_corral() ? DEFAULT_SEQUENCES / 10 : DEFAULT_SEQUENCES);
	long only = env_long("CORRAL_DIFF_ONLY", -1);
	unsigned long long seed = env_seed();
	double t0 = h_now();
	int ran = 0;
	long first = part;

	if (only >= 0) { /* that one sequence, in the test it belongs to */
		if (only % RANDOM_TESTS != part)
			return;
		first = only;
		n = only + 1;
	}
	diff_setup(&d, test, tag);
	for (long i = first; i < n && d.restarts <= MAX_RESTARTS; i += RANDOM_TESTS) {
		struct dg_seq s;
		char *rep;

		dg_generate(&s, seed + (unsigned long long)i, (int)i, d.table_names);
		rep = run_sequence(&d, &s);
		if (rep != NULL)
			failed(&d, &s, rep);
		dg_free(&s);
		ran++;
	}
	fprintf(stderr,
		"differential/%s: %d sequences (CORRAL_DIFF_SEED=%llu) in %.1f s (runs: direct %.1f s, "
		"corral %.1f s), %d failed\n",
		test, ran, seed, h_now() - t0, d.direct_secs, d.corral_secs, d.n_failures);
	if (d.n_failures)
		cr_assert_fail("differential/%s: %d of %d sequences failed%s:\n%s", test,
			       d.n_failures, ran,
			       d.restarts > MAX_RESTARTS ? " (stopped after too many)" : "",
			       d.failures);
	diff_teardown(&d);
}

Test(differential, random_1)
{
	random_part("random_1", "r1", 0);
}

Test(differential, random_2)
{
	random_part("random_2", "r2", 1);
}

Test(differential, random_3)
{
	random_part("random_3", "r3", 2);
}

Test(differential, random_4)
{
	random_part("random_4", "r4", 3);
}

/*
 * The test itself: a sequence run straight against PostgreSQL twice gives the same
 * replies both times (nothing in them varies between runs), and both runs agree with
 * the model.
 */
Test(differential, direct_runs_repeat)
{
	struct diff d;
	unsigned long long seed = env_seed() + 1000000;

	diff_setup(&d, "direct_runs_repeat", "dd");
	for (int i = 0; i < 8; i++) {
		struct dg_seq s;
		struct dr_run one, two;
		char *p;

		dg_generate(&s, seed + (unsigned long long)i, 1000000 + i, d.table_names);
		reset_tables(&d);
		dr_run(&s, d.direct_ci, NULL, 1.0, &one);
		p = dr_check_model(&s, &one);
		if (p != NULL)
			cr_assert_fail("%s", report(&d, &s, "first direct run: the model is wrong",
						    p, &one, "direct", NULL, NULL));
		reset_tables(&d);
		dr_run(&s, d.direct_ci, &one, 1.0, &two);
		p = dr_compare(&s, &one, &two, "first", "second");
		if (p == NULL)
			p = dr_check_model(&s, &two);
		if (p != NULL)
			cr_assert_fail("%s", report(&d, &s, "two direct runs differ", p, &one,
						    "first", &two, "second"));
		dr_free(&one);
		dr_free(&two);
		dg_free(&s);
	}
	diff_teardown(&d);
}

/*
 * The confirmed bug, as a fixed case.  Client A sends in one write a Query that creates a
 * temp table and starts COPY FROM STDIN, CopyDone, then Parse/Bind/Execute of a DO block
 * that sleeps 1 s, raises a NOTICE and sleeps 3 s more, and Sync.  Once the COPY's
 * ReadyForQuery is back it sends one more CopyDone (PostgreSQL ignores it).  B sends
 * its query at 0.5 s and A2, a second connection of A's application, at 0.7 s; both
 * queue for the one server.  Counting messages, corral believed nothing was in flight
 * when the NOTICE came and gave the server to B: B got A's CommandComplete "DO", and A2
 * got B's row.  Each must get exactly its own replies, and A all of its.
 */
Test(differential, stray_copy_done_while_do_block_runs)
{
	struct diff d;
	struct dg_seq s = {.seqno = -1, .n_clients = 3}; /* -1: not a random sequence */
	struct dg_builder a, b, a2;
	const struct dg_sem copy = {.copy_in = true};
	struct dg_chunk *ch;
	struct dr_run direct, via;
	char *p;

	dg_builder_init(&a, &s.clients[0], "tick");
	dg_query(&a, "CREATE TEMP TABLE IF NOT EXISTS cp(x int); COPY cp FROM STDIN", &copy);
	dg_copy_done(&a);
	dg_parse(&a, "",
		 "DO $$BEGIN PERFORM pg_sleep(1); RAISE NOTICE 'tick'; PERFORM pg_sleep(3); END$$",
		 NULL);
	dg_bind(&a, "", "", 0, NULL, NULL);
	dg_execute(&a, "", 0, NULL);
	dg_sync(&a);
	dg_end_chunk(&a, true, 1, -1); /* the COPY's ReadyForQuery */
	dg_copy_done(&a);
	ch = dg_end_chunk(&a, true, -1, -1);
	ch->wait_timeout = 8;
	dg_builder_finish(&a);

	dg_builder_init(&b, &s.clients[1], "B-secret");
	dg_query(&b, "SELECT pg_sleep(0.3), 'B-secret'", NULL);
	ch = dg_end_chunk(&b, true, -1, -1);
	ch->start_at = 0.5;
	ch->wait_timeout = 8;
	dg_builder_finish(&b);

	dg_builder_init(&a2, &s.clients[2], "A2-own");
	dg_query(&a2, "SELECT 'A2-own'", NULL);
	ch = dg_end_chunk(&a2, true, -1, -1);
	ch->start_at = 0.7;
	ch->wait_timeout = 8;
	dg_builder_finish(&a2);

	diff_setup(&d, "stray_copy_done_while_do_block_runs", "fx");
	dr_run(&s, d.direct_ci, NULL, 1.0, &direct);
	p = dr_check_model(&s, &direct);
	if (p != NULL)
		cr_assert_fail("%s", report(&d, &s, "the direct run does not match the model", p,
					    &direct, "direct", NULL, NULL));
	/* What B must get: its row, and nothing of A's. */
	{
		char *t = dr_stream_text(&direct.c[1], 10);

		cr_assert_eq(direct.c[1].n_msgs, 4, "B directly: %s", t);
		cr_assert(memmem(direct.c[1].buf, direct.c[1].len, "B-secret", 8) != NULL,
			  "B directly: %s", t);
		free(t);
	}
	dr_run(&s, d.corral_ci, &direct, d.timeout_scale, &via);
	{
		char *t = dr_stream_text(&via.c[1], 10);

		cr_expect(
			via.c[1].len == direct.c[1].len &&
				memcmp(via.c[1].buf, direct.c[1].buf, direct.c[1].len) == 0,
			"B did not get exactly its own reply (RowDescription, DataRow \"B-secret\", "
			"CommandComplete, ReadyForQuery), but:\n%s",
			t);
		free(t);
	}
	p = dr_compare(&s, &direct, &via, "direct", "corral");
	if (p != NULL) {
		char *log = h_printf("(client 0 is A, 1 is B, 2 is A2)\n%s\ncorral log (tail):\n%s",
				     p, h_corral_log_tail(d.c));

		cr_assert_fail("%s",
			       report(&d, &s, "through corral, replies differ from PostgreSQL's",
				      log, &direct, "direct", &via, "corral"));
	}
	dr_free(&direct);
	dr_free(&via);
	dg_free(&s);
	diff_teardown(&d);
}
