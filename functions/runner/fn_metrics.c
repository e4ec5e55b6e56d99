#include "functions/runner/fn_metrics.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macros.h"

/*
 * Bucket upper bounds, kept in integer microseconds so that fn_histogram_observe()
 * compares integers (a value exactly on a bound lands in that bucket, as `le` promises,
 * with no floating-point doubt).  The steps follow Prometheus' usual 1-2.5-5 ladder from
 * 100 us (a warm call of a trivial function) to 1 s, then thin out: 2.5 s, 10 s and 60 s
 * cover cold starts and long functions up to a typical timeout.  Longer observations
 * count only in +Inf.
 */
static const usec_t bucket_usec[FN_METRICS_BUCKETS] = {
	100,   250,    500,    1000,   2500,    5000,    10000,    25000,
	50000, 100000, 250000, 500000, 1000000, 2500000, 10000000, 60000000,
};

void fn_histogram_observe(struct fn_histogram *h, usec_t value)
{
	/* The clock is monotonic, but a caller's subtraction may still come out negative
	 * (an unset start); such a value counts as zero rather than skewing the sum. */
	if (value < 0)
		value = 0;
	for (size_t i = 0; i < FN_METRICS_BUCKETS; i++) {
		if (value <= bucket_usec[i]) {
			h->counts[i]++;
			break;
		}
	}
	h->count++;
	h->sum_seconds += (double)value / (double)USEC_PER_SEC;
}

double fn_histogram_bound(size_t i)
{
	/* Past the last bound is the implicit +Inf bucket. */
	if (i >= FN_METRICS_BUCKETS)
		return INFINITY;
	/* Both operands are exact, so the quotient is the double nearest the decimal bound
	 * (100 -> the same double as the literal 0.0001). */
	return (double)bucket_usec[i] / (double)USEC_PER_SEC;
}

const char *fn_call_status_label(enum fn_call_status status)
{
	switch (status) {
	case FN_CALL_OK:
		return "ok";
	case FN_CALL_FUNCTION_ERROR:
		return "function_error";
	case FN_CALL_THROTTLED:
		return "throttled";
	case FN_CALL_QUEUE_TIMEOUT:
		return "queue_timeout";
	case FN_CALL_TIMEOUT:
		return "timeout";
	case FN_CALL_CRASH:
		return "crash";
	case FN_CALL_INIT_ERROR:
		return "init_error";
	case FN_CALL_TOO_LARGE:
		return "too_large";
	case FN_CALL_SHUTDOWN:
		return "shutdown";
	}
	return "unknown";
}

/* The function's code ran in an environment, so dispatch-to-end is a real duration. */
static bool call_ran(enum fn_call_status status)
{
	return status == FN_CALL_OK || status == FN_CALL_FUNCTION_ERROR ||
	       status == FN_CALL_TIMEOUT || status == FN_CALL_CRASH;
}

/*
 * The call left the queue for an environment.  Throttled, queue-timed-out and too-large
 * calls never do, whatever queue_wait_usec says (a queue timeout would otherwise add
 * queue_timeout itself to every such sample).  INIT_ERROR and SHUTDOWN may end a call
 * before or after dispatch; for those a negative queue_wait_usec (report.h's "no queue
 * wait") means before, so the runtime decides by what it puts there.
 */
static bool call_dispatched(const struct fn_call_done *done)
{
	switch (done->status) {
	case FN_CALL_THROTTLED:
	case FN_CALL_QUEUE_TIMEOUT:
	case FN_CALL_TOO_LARGE:
		return false;
	default:
		return done->queue_wait_usec >= 0;
	}
}

void fn_metrics_record(struct fn_metrics *m, const struct fn_call_done *done)
{
	/* An out-of-range status would index past the array: count nothing rather. */
	if ((unsigned)done->status > FN_CALL_SHUTDOWN)
		return;
	m->invocations[done->status]++;
	if (done->status == FN_CALL_THROTTLED)
		m->throttles++;
	if (call_ran(done->status))
		fn_histogram_observe(&m->duration, done->duration_usec);
	if (call_dispatched(done))
		fn_histogram_observe(&m->queue_wait, done->queue_wait_usec);
}

void fn_metrics_cold_start(struct fn_metrics *m, usec_t init_usec)
{
	m->cold_starts++;
	fn_histogram_observe(&m->init_duration, init_usec);
}

/* ---- rendering ---- */

/* %.*g of v, and whether it reads back as v itself. */
static bool format_exact(char *buf, size_t len, double v, int precision)
{
	snprintf(buf, len, "%.*g", precision, v);
	return strtod(buf, NULL) == v;
}

/*
 * The shortest %g text that reads back as the same double: "0.001" rather than
 * %.17g's "0.0010000000000000000208", and still exact for any sum.  Plain notation is
 * preferred where a few more digits give it ("60", not %.1g's "6e+01", for le labels
 * that match the usual spelling); very large or small values keep the exponent.  The
 * format spells the non-finite values +Inf, -Inf and NaN.
 */
static void format_double(char *buf, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	int shortest = 1;
	while (shortest < 17 && !format_exact(buf, len, v, shortest))
		shortest++;
	/* %g switches to an exponent when the exponent is >= the precision; %.17g always
	 * reads back, so some precision up to it is plain if any is. */
	for (int precision = shortest; precision <= 17; precision++) {
		if (format_exact(buf, len, v, precision) && !strchr(buf, 'e'))
			return;
	}
	format_exact(buf, len, v, shortest);
}

/* How a label value spells c, or NULL when c stands for itself. */
static const char *label_escape(char c)
{
	switch (c) {
	case '\\':
		return "\\\\";
	case '"':
		return "\\\"";
	case '\n':
		return "\\n";
	default:
		return NULL;
	}
}

/* A label value as the format wants it: backslash, double quote and line feed escaped
 * (anything else, UTF-8 included, goes as is). */
static void add_escaped(struct evbuffer *out, const char *s)
{
	const char *run = s; /* start of the bytes not yet written */
	for (; *s; s++) {
		const char *esc = label_escape(*s);
		if (!esc)
			continue;
		evbuffer_add(out, run, (size_t)(s - run));
		evbuffer_add(out, esc, 2);
		run = s + 1;
	}
	evbuffer_add(out, run, (size_t)(s - run));
}

/* `name{function="f"` -- every sample but corral_fn_up starts so; the caller adds any
 * further labels, then close_u64() or close_double(). */
static void open_sample(struct evbuffer *out, const char *name, const char *suffix,
			const char *function)
{
	evbuffer_add_printf(out, "%s%s{function=\"", name, suffix);
	add_escaped(out, function ? function : "");
	evbuffer_add(out, "\"", 1);
}

static void add_label(struct evbuffer *out, const char *key, const char *value)
{
	evbuffer_add_printf(out, ",%s=\"", key);
	add_escaped(out, value);
	evbuffer_add(out, "\"", 1);
}

static void close_u64(struct evbuffer *out, uint64_t value)
{
	evbuffer_add_printf(out, "} %" PRIu64 "\n", value);
}

static void close_double(struct evbuffer *out, double value)
{
	char num[64];
	format_double(num, sizeof(num), value);
	evbuffer_add_printf(out, "} %s\n", num);
}

/* The counters and histograms of a row; a row without them reads as all zero. */
static const struct fn_metrics *row_metrics(const struct fn_metrics_row *row)
{
	static const struct fn_metrics none;
	return row->metrics ? row->metrics : &none;
}

static void invocations_row(struct evbuffer *out, const char *name,
			    const struct fn_metrics_row *row)
{
	/* Every outcome, zeros too: a series that appears only on its first event makes
	 * rate() miss that event. */
	for (int s = FN_CALL_OK; s <= FN_CALL_SHUTDOWN; s++) {
		open_sample(out, name, "", row->function);
		add_label(out, "outcome", fn_call_status_label((enum fn_call_status)s));
		close_u64(out, row_metrics(row)->invocations[s]);
	}
}

static void cold_starts_row(struct evbuffer *out, const char *name,
			    const struct fn_metrics_row *row)
{
	open_sample(out, name, "", row->function);
	close_u64(out, row_metrics(row)->cold_starts);
}

static void throttles_row(struct evbuffer *out, const char *name, const struct fn_metrics_row *row)
{
	open_sample(out, name, "", row->function);
	close_u64(out, row_metrics(row)->throttles);
}

static void environments_row(struct evbuffer *out, const char *name,
			     const struct fn_metrics_row *row)
{
	const struct {
		const char *state;
		unsigned n;
	} states[] = {
		{"starting", row->stats.starting},
		{"idle", row->stats.idle},
		{"busy", row->stats.busy},
		{"stopping", row->stats.stopping},
	};
	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		open_sample(out, name, "", row->function);
		add_label(out, "state", states[i].state);
		close_u64(out, states[i].n);
	}
}

static void queue_depth_row(struct evbuffer *out, const char *name,
			    const struct fn_metrics_row *row)
{
	open_sample(out, name, "", row->function);
	close_u64(out, row->stats.waiting);
}

/* _bucket lines cumulative (the struct keeps them per bucket), then +Inf, _sum, _count. */
static void histogram_samples(struct evbuffer *out, const char *name, const char *function,
			      const struct fn_histogram *h)
{
	uint64_t cumulative = 0;
	char le[64];
	for (size_t i = 0; i < FN_METRICS_BUCKETS; i++) {
		cumulative += h->counts[i];
		format_double(le, sizeof(le), fn_histogram_bound(i));
		open_sample(out, name, "_bucket", function);
		add_label(out, "le", le);
		close_u64(out, cumulative);
	}
	open_sample(out, name, "_bucket", function);
	add_label(out, "le", "+Inf");
	close_u64(out, h->count);
	open_sample(out, name, "_sum", function);
	close_double(out, h->sum_seconds);
	open_sample(out, name, "_count", function);
	close_u64(out, h->count);
}

static void duration_row(struct evbuffer *out, const char *name, const struct fn_metrics_row *row)
{
	histogram_samples(out, name, row->function, &row_metrics(row)->duration);
}

static void init_duration_row(struct evbuffer *out, const char *name,
			      const struct fn_metrics_row *row)
{
	histogram_samples(out, name, row->function, &row_metrics(row)->init_duration);
}

static void queue_wait_row(struct evbuffer *out, const char *name, const struct fn_metrics_row *row)
{
	histogram_samples(out, name, row->function, &row_metrics(row)->queue_wait);
}

/* One metric family: its HELP and TYPE, and how one function's samples of it read. */
struct family {
	const char *name;
	const char *type;
	const char *help;
	void (*row)(struct evbuffer *out, const char *name, const struct fn_metrics_row *row);
};

/* The format wants a family's samples together, so the page goes family by family,
 * each over every row, rather than function by function. */
static const struct family families[] = {
	{"corral_fn_invocations_total", "counter", "Invocations that ended, by outcome.",
	 invocations_row},
	{"corral_fn_cold_starts_total", "counter",
	 "Environments started for an invocation (fork to READY).", cold_starts_row},
	{"corral_fn_throttles_total", "counter",
	 "Invocations refused at the concurrency limit or with the queue full.", throttles_row},
	{"corral_fn_environments", "gauge", "Live environments by state.", environments_row},
	{"corral_fn_queue_depth", "gauge", "Invocations waiting for an environment.",
	 queue_depth_row},
	{"corral_fn_duration_seconds", "histogram",
	 "Invocation duration, dispatch to end, of invocations that ran.", duration_row},
	{"corral_fn_init_duration_seconds", "histogram", "Cold start duration, fork to READY.",
	 init_duration_row},
	{"corral_fn_queue_wait_seconds", "histogram",
	 "Time from submit to dispatch of dispatched invocations.", queue_wait_row},
};

static void family_header(struct evbuffer *out, const char *name, const char *type,
			  const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void fn_metrics_render(struct evbuffer *out, const struct fn_metrics_row *rows, size_t n)
{
	family_header(out, "corral_fn_up", "gauge", "1 while the function runner serves.");
	evbuffer_add_printf(out, "corral_fn_up 1\n");
	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		family_header(out, families[f].name, families[f].type, families[f].help);
		for (size_t i = 0; i < n; i++)
			families[f].row(out, families[f].name, &rows[i]);
	}
}
