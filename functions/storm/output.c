#include "functions/storm/output.h"

#include <inttypes.h>

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static double wall_s(const struct storm_summary *s)
{
	return (double)s->wall / 1e6;
}

static double throughput(const struct storm_summary *s)
{
	uint64_t done = s->results->ok + s->results->failed;
	return s->wall > 0 ? (double)done / wall_s(s) : 0.0;
}

/* Length of a valid UTF-8 sequence starting at p, 0 if invalid. */
static size_t utf8_len(const unsigned char *p)
{
	size_t len = p[0] < 0xC2 ? 0 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : p[0] < 0xF5 ? 4 : 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	}
	if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) ||
	    (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F))
		return 0;
	return len;
}

void storm_json_string(FILE *f, const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	fputc('"', f);
	while (*p) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, f);
		} else {
			size_t n = utf8_len(p);
			if (n == 0) {
				fputc('?', f);
				p++;
			} else {
				fwrite(p, 1, n, f);
				p += n;
			}
		}
	}
	fputc('"', f);
}

static const char *mode_name(const struct storm_opts *o)
{
	return o->mode == STORM_CONNECT ? "connect" : "http";
}

static void text_latency(FILE *f, const char *name, const struct histogram *h)
{
	if (h->count == 0)
		return;
	fprintf(f, "%-13s p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (%" PRIu64 ")\n",
		name, ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)),
		ms(hist_percentile(h, 99)), ms(h->max), h->count);
}

void storm_print_text(FILE *f, const struct storm_summary *s)
{
	const struct storm_opts *o = s->opts;
	const struct storm_results *r = s->results;
	if (o->label)
		fprintf(f, "corral-storm [%s]: ", o->label);
	else
		fprintf(f, "corral-storm: ");
	if (o->burst)
		fprintf(f, "%s, burst of %" PRIu64, mode_name(o), o->burst);
	else
		fprintf(f, "%s, %g/s for %g s", mode_name(o), o->rate, o->duration_s);
	fprintf(f, " (%d thread%s) -> %s\n", o->threads, o->threads == 1 ? "" : "s", s->target);

	fprintf(f,
		"%-13s %" PRIu64 " started, %" PRIu64 " ok, %" PRIu64 " failed in %.3f s "
		"(%.1f/s); peak %" PRIu64 " in flight%s\n",
		"invocations", r->started, r->ok, r->failed, wall_s(s), throughput(s),
		s->peak_in_flight, s->interrupted ? "; INTERRUPTED" : "");
	if (r->started < s->total)
		fprintf(f, "%-13s %" PRIu64 " never started\n", "", s->total - r->started);

	if (o->mode == STORM_HTTP) {
		bool any = false;
		for (int code = 0; code < 600; code++) {
			if (!r->status[code])
				continue;
			fprintf(f, "%s%d: %" PRIu64, any ? "  " : "status        ", code,
				r->status[code]);
			any = true;
		}
		if (any)
			fputc('\n', f);
	}

	for (size_t i = 0; i < r->n_classes; i++)
		fprintf(f, "%-13s %-8" PRIu64 " %-12s %s\n", i == 0 ? "errors" : "",
			r->classes[i].count, r->classes[i].key, r->classes[i].message);
	if (r->unclassified)
		fprintf(f, "%-13s %-8" PRIu64 " %s\n", r->n_classes ? "" : "errors",
			r->unclassified, "(more classes)");

	text_latency(f, "latency ok", &r->latency_ok);
	text_latency(f, "latency error", &r->latency_error);
	if (o->mode == STORM_CONNECT)
		text_latency(f, "connect", &r->connect);

	if (s->have_monitor) {
		const struct storm_monitor_stats *m = &s->monitor;
		fprintf(f,
			"%-13s peak %" PRId64 " (before %" PRId64 ", after %" PRId64 "; %" PRIu64
			" samples every %g ms)%s%s\n",
			"backends", m->peak, m->baseline, m->after, m->samples,
			o->monitor_interval_s * 1000, m->lost ? "; monitor lost: " : "",
			m->lost ? m->error : "");
	}
}

static void json_latency(FILE *f, const char *key, const struct histogram *h)
{
	fprintf(f, ",\"%s\":", key);
	if (h->count == 0) {
		fprintf(f, "{\"count\":0}");
		return;
	}
	fprintf(f,
		"{\"count\":%" PRIu64 ",\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
		"\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
		h->count, ms(h->min), hist_mean(h) / 1000.0, ms(hist_percentile(h, 50)),
		ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)),
		ms(hist_percentile(h, 99.9)), ms(h->max));
}

void storm_print_json(FILE *f, const struct storm_summary *s)
{
	const struct storm_opts *o = s->opts;
	const struct storm_results *r = s->results;
	fprintf(f, "{\"label\":");
	if (o->label)
		storm_json_string(f, o->label);
	else
		fprintf(f, "null");
	fprintf(f, ",\"mode\":\"%s\",\"target\":", mode_name(o));
	storm_json_string(f, s->target);
	if (o->mode == STORM_CONNECT) {
		fprintf(f, ",\"sql\":");
		storm_json_string(f, o->sql);
	}
	if (o->burst)
		fprintf(f, ",\"load\":{\"burst\":%" PRIu64 "}", o->burst);
	else
		fprintf(f, ",\"load\":{\"rate\":%g,\"duration_s\":%g}", o->rate, o->duration_s);
	fprintf(f, ",\"threads\":%d,\"timeout_s\":%g", o->threads, o->timeout_s);
	fprintf(f,
		",\"invocations\":%" PRIu64 ",\"started\":%" PRIu64 ",\"ok\":%" PRIu64
		",\"failed\":%" PRIu64 ",\"interrupted\":%s,\"wall_s\":%.6f,"
		"\"throughput_per_s\":%.3f,\"peak_in_flight\":%" PRIu64,
		s->total, r->started, r->ok, r->failed, s->interrupted ? "true" : "false",
		wall_s(s), throughput(s), s->peak_in_flight);

	fprintf(f, ",\"errors\":[");
	for (size_t i = 0; i < r->n_classes; i++) {
		fprintf(f, "%s{\"class\":", i ? "," : "");
		storm_json_string(f, r->classes[i].key);
		fprintf(f, ",\"count\":%" PRIu64 ",\"message\":", r->classes[i].count);
		storm_json_string(f, r->classes[i].message);
		fputc('}', f);
	}
	fprintf(f, "],\"unclassified_errors\":%" PRIu64, r->unclassified);

	fprintf(f, ",\"status_codes\":{");
	bool any = false;
	for (int code = 0; code < 600; code++) {
		if (!r->status[code])
			continue;
		fprintf(f, "%s\"%d\":%" PRIu64, any ? "," : "", code, r->status[code]);
		any = true;
	}
	fputc('}', f);

	json_latency(f, "latency_ms", &r->latency_ok);
	json_latency(f, "error_latency_ms", &r->latency_error);
	if (o->mode == STORM_CONNECT)
		json_latency(f, "connect_ms", &r->connect);
	else
		fprintf(f, ",\"connect_ms\":null");

	fprintf(f, ",\"server_backends\":");
	if (s->have_monitor) {
		const struct storm_monitor_stats *m = &s->monitor;
		fprintf(f,
			"{\"baseline\":%" PRId64 ",\"peak\":%" PRId64 ",\"after\":%" PRId64
			",\"samples\":%" PRIu64 ",\"interval_ms\":%g,\"lost\":%s,\"error\":",
			m->baseline, m->peak, m->after, m->samples, o->monitor_interval_s * 1000,
			m->lost ? "true" : "false");
		if (m->lost)
			storm_json_string(f, m->error);
		else
			fprintf(f, "null");
		fputc('}', f);
	} else {
		fprintf(f, "null");
	}
	fprintf(f, "}\n");
}
