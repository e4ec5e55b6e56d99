#include "proxy/metrics_prom.h"
#include "proxy/text_out.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/pin_scan.h"

/* One family's samples for one pool or application: its labels, already escaped
 * ("database=\"bench\",user=\"bench\""), and its totals. */
struct subject {
	char *labels;
	const struct stats_totals *t;
};

/* Counters the snapshot has for pools and applications alike (struct stats_totals). */
struct counter_def {
	const char *name; /* after corral_pool_ / corral_app_ */
	const char *help;
	size_t offset; /* of a uint64_t in struct stats_totals */
	bool micros;   /* microseconds, shown as seconds */
};

#define TOTAL(f) offsetof(struct stats_totals, f)

static const struct counter_def counters[] = {
	{"transactions_total", "Transactions that ended (ReadyForQuery idle after them).",
	 TOTAL(xact_count), false},
	{"queries_total", "Requests answered (a pipeline counts once).", TOTAL(query_count), false},
	{"received_bytes_total", "Bytes relayed from clients to servers.", TOTAL(bytes_received),
	 false},
	{"sent_bytes_total", "Bytes relayed from servers to clients.", TOTAL(bytes_sent), false},
	{"query_seconds_total", "Time from requests reaching a server to their last answer.",
	 TOTAL(query_time_us), true},
	{"checkouts_total", "Server connections handed to clients.", TOTAL(checkouts), false},
	{"waits_total", "Checkouts that had to queue first.", TOTAL(wait_count), false},
	{"sheds_total", "Clients refused with 53400 (max_queue_depth).", TOTAL(sheds), false},
	{"timeouts_total", "Clients refused with 57014 after query_wait_timeout in a queue.",
	 TOTAL(timeouts), false},
};

static const char *const client_states[STATS_CL_GROUPS] = {
	[STATS_CL_LOGIN] = "login",
	[STATS_CL_IDLE] = "idle",
	[STATS_CL_WAITING_APP] = "waiting_app",
	[STATS_CL_WAITING] = "waiting",
	[STATS_CL_ACTIVE] = "active",
	[STATS_CL_CLOSING] = "closing",
};

static void family(struct text_out *w, const char *name, const char *type, const char *help)
{
	text_put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Microseconds as seconds, exactly: "1.250000". */
static void put_seconds(struct text_out *w, unsigned long long us)
{
	text_put(w, "%llu.%06llu", us / 1000000, us % 1000000);
}

bool metrics_prom_label_value(struct evbuffer *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;
		if (*p == '\\')
			rc = evbuffer_add(out, "\\\\", 2);
		else if (*p == '"')
			rc = evbuffer_add(out, "\\\"", 2);
		else if (*p == '\n')
			rc = evbuffer_add(out, "\\n", 2);
		else if (*p < 0x20 || *p >= 0x7f)
			rc = evbuffer_add_printf(out, "\\\\x%02X", *p) < 0 ? -1 : 0;
		else
			rc = evbuffer_add(out, p, 1);
		if (rc != 0)
			return false;
	}
	return true;
}

/* name="value" pairs (NULL-terminated list of names and values) as one malloc'd string. */
static char *labels_of(const char *const *kv)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return NULL;
	bool ok = true;
	for (size_t i = 0; ok && kv[i]; i += 2) {
		ok = evbuffer_add_printf(b, "%s%s=\"", i ? "," : "", kv[i]) >= 0 &&
		     metrics_prom_label_value(b, kv[i + 1]) && evbuffer_add(b, "\"", 1) == 0;
	}
	size_t len = evbuffer_get_length(b);
	char *s = ok ? malloc(len + 1) : NULL;
	if (s) {
		evbuffer_remove(b, s, len);
		s[len] = '\0';
	}
	evbuffer_free(b);
	return s;
}

static void write_counters(struct text_out *w, const char *prefix, const struct subject *subj,
			   size_t n)
{
	char name[96];
	for (size_t c = 0; c < ARRAY_SIZE(counters); c++) {
		const struct counter_def *d = &counters[c];
		snprintf(name, sizeof(name), "%s_%s", prefix, d->name);
		family(w, name, "counter", d->help);
		for (size_t i = 0; i < n; i++) {
			unsigned long long v = *(const uint64_t *)((const char *)subj[i].t +
								   d->offset);
			text_put(w, "%s{%s} ", name, subj[i].labels);
			if (d->micros)
				put_seconds(w, v);
			else
				text_put(w, "%llu", v);
			text_put(w, "\n");
		}
	}
}

static void write_clients(struct text_out *w, const char *prefix, const char *what,
			  const struct subject *subj, size_t n)
{
	char name[96], help[160];
	snprintf(name, sizeof(name), "%s_clients", prefix);
	snprintf(help, sizeof(help),
		 "Clients of the %s by state (login: waiting for the first server login; "
		 "waiting_app: for an application slot; waiting: for a server).",
		 what);
	family(w, name, "gauge", help);
	for (size_t i = 0; i < n; i++) {
		for (int s = 0; s < STATS_CL_GROUPS; s++)
			text_put(w, "%s{%s,state=\"%s\"} %lld\n", name, subj[i].labels,
				 client_states[s], subj[i].t->clients[s]);
	}
}

/* One histogram family: queue waits (wait) or transaction latency. */
static void write_histogram(struct text_out *w, const char *name, const char *help,
			    const struct subject *subj, size_t n, bool wait)
{
	family(w, name, "histogram", help);
	for (size_t i = 0; i < n; i++) {
		const struct stats_totals *t = subj[i].t;
		const uint64_t *hist = wait ? t->wait_hist : t->xact_hist;
		unsigned long long cum = 0;
		for (unsigned b = 0; b + 1 < STATS_HIST_BUCKETS; b++) {
			cum += hist[b];
			text_put(w, "%s_bucket{%s,le=\"", name, subj[i].labels);
			put_seconds(w, (unsigned long long)(stats_hist_upper(b) - 1));
			text_put(w, "\"} %llu\n", cum);
		}
		cum += hist[STATS_HIST_BUCKETS - 1];
		text_put(w, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, subj[i].labels, cum);
		text_put(w, "%s_sum{%s} ", name, subj[i].labels);
		put_seconds(w, wait ? t->wait_time_us : t->xact_time_us);
		text_put(w, "\n%s_count{%s} %llu\n", name, subj[i].labels, cum);
	}
}

/* What pools and applications both have: clients, counters, the two histograms. */
/* pin_policy's doings (proxy/pin.h) by action and reason; only those that happened. */
static void write_pins(struct text_out *w, const char *prefix, const struct subject *subj, size_t n)
{
	static const char *const actions[STATS_PIN_ACTIONS] = {
		[STATS_PIN] = "pin",
		[STATS_PIN_WARN] = "warn",
		[STATS_PIN_REFUSE] = "error",
	};
	char name[96];
	snprintf(name, sizeof(name), "%s_pins_total", prefix);
	family(w, name, "counter",
	       "SQL whose session state corral cannot carry, by what pin_policy did (pin: the "
	       "client kept its server; warn: a notice; error: refused) and why.");
	for (size_t i = 0; i < n; i++)
		for (int a = 0; a < STATS_PIN_ACTIONS; a++)
			for (int r = 1; r < PIN_REASONS; r++)
				if (subj[i].t->pin_by_reason[a][r])
					text_put(w, "%s{%s,action=\"%s\",reason=\"%s\"} %llu\n",
						 name, subj[i].labels, actions[a],
						 pin_reason_name((enum pin_reason)r),
						 (unsigned long long)subj[i]
							 .t->pin_by_reason[a][r]);
}

static void write_common(struct text_out *w, const char *prefix, const char *what,
			 const struct subject *subj, size_t n)
{
	char name[96];
	write_clients(w, prefix, what, subj, n);
	write_counters(w, prefix, subj, n);
	write_pins(w, prefix, subj, n);
	snprintf(name, sizeof(name), "%s_transaction_duration_seconds", prefix);
	write_histogram(w, name,
			"Transaction latency: first request at the server to the ReadyForQuery "
			"that ended it.",
			subj, n, false);
	snprintf(name, sizeof(name), "%s_wait_duration_seconds", prefix);
	write_histogram(w, name,
			"Time each checkout waited in a queue (application slot and server; 0 "
			"when it did not queue).",
			subj, n, true);
}

static void write_process(struct text_out *w, const struct stats_snapshot *snap,
			  const struct metrics_process *proc)
{
	family(w, "corral_up", "gauge", "1: corral is running (it serves this endpoint).");
	text_put(w, "corral_up 1\n");
	family(w, "corral_serving_state", "gauge",
	       "1 for the state corral is in: serving, paused (PAUSE: new transactions held) "
	       "or shutting_down.");
	static const enum serving_state states[] = {SERVING_UP, SERVING_PAUSED,
						    SERVING_SHUTTING_DOWN};
	for (size_t i = 0; i < ARRAY_SIZE(states); i++)
		text_put(w, "corral_serving_state{state=\"%s\"} %d\n", serving_name(states[i]),
			 proc->serving == states[i]);
	family(w, "corral_workers", "gauge", "Worker threads (event loops).");
	text_put(w, "corral_workers %d\n", snap->n_workers);
	family(w, "corral_pools", "gauge", "Pools (database, user) that have had a client.");
	text_put(w, "corral_pools %zu\n", snap->n_pools);
	family(w, "corral_apps", "gauge", "Applications (application_name) with a record.");
	text_put(w, "corral_apps %zu\n", snap->n_apps);
}

static void write_databases(struct text_out *w, const struct metrics_process *proc)
{
	bool any = false;
	for (size_t i = 0; i < proc->n_db_limits; i++)
		any |= proc->db_limits[i].max_connections >= 0;
	if (!any)
		return;
	family(w, "corral_database_max_connections", "gauge",
	       "max_connections of the PostgreSQL server behind a [databases] entry.");
	struct evbuffer *out = w->out;
	for (size_t i = 0; w->ok && i < proc->n_db_limits; i++) {
		if (proc->db_limits[i].max_connections < 0)
			continue;
		text_put(w, "corral_database_max_connections{database=\"");
		w->ok = w->ok && metrics_prom_label_value(out, proc->db_limits[i].database);
		text_put(w, "\"} %d\n", proc->db_limits[i].max_connections);
	}
}

static void write_pools(struct text_out *w, const struct stats_snapshot *snap,
			const struct subject *subj)
{
	size_t n = snap->n_pools;
	if (n == 0)
		return;
	family(w, "corral_pool_info", "gauge", "1 per pool; pool_mode as a label.");
	for (size_t i = 0; i < n; i++)
		text_put(w, "corral_pool_info{%s,pool_mode=\"%s\"} 1\n", subj[i].labels,
			 pool_mode_name(snap->pools[i].pool_mode));
	family(w, "corral_pool_size", "gauge", "Server connections the pool may open (pool_size).");
	for (size_t i = 0; i < n; i++)
		text_put(w, "corral_pool_size{%s} %d\n", subj[i].labels, snap->pools[i].pool_size);
	family(w, "corral_pool_servers", "gauge",
	       "Server connections of the pool by state (closing: Terminate sent, backend not "
	       "gone yet; still counted against pool_size).");
	for (size_t i = 0; i < n; i++) {
		const struct stats_pool *p = &snap->pools[i];
		const int v[] = {p->sv_login, p->sv_idle, p->sv_active, p->sv_closing};
		const char *const s[] = {"login", "idle", "active", "closing"};
		for (size_t k = 0; k < ARRAY_SIZE(v); k++)
			text_put(w, "corral_pool_servers{%s,state=\"%s\"} %d\n", subj[i].labels,
				 s[k], v[k]);
	}
	family(w, "corral_pool_queue_depth", "gauge", "Clients queued for a server now.");
	for (size_t i = 0; i < n; i++)
		text_put(w, "corral_pool_queue_depth{%s} %d\n", subj[i].labels,
			 snap->pools[i].queue_depth);
	family(w, "corral_pool_maxwait_seconds", "gauge",
	       "How long the longest-waiting client of the pool has waited (0: none waits).");
	for (size_t i = 0; i < n; i++) {
		text_put(w, "corral_pool_maxwait_seconds{%s} ", subj[i].labels);
		put_seconds(w, (unsigned long long)snap->pools[i].maxwait_us);
		text_put(w, "\n");
	}
	write_common(w, "corral_pool", "pool", subj, n);
}

static void write_apps(struct text_out *w, const struct stats_snapshot *snap,
		       const struct subject *subj)
{
	size_t n = snap->n_apps;
	if (n == 0)
		return;
	family(w, "corral_app_limit", "gauge",
	       "Concurrent transactions the application may run ([limits]; 0: no limit).");
	for (size_t i = 0; i < n; i++)
		text_put(w, "corral_app_limit{%s} %d\n", subj[i].labels, snap->apps[i].limit);
	family(w, "corral_app_slots_in_use", "gauge",
	       "Transactions holding one of the application's slots now.");
	for (size_t i = 0; i < n; i++)
		text_put(w, "corral_app_slots_in_use{%s} %d\n", subj[i].labels,
			 snap->apps[i].slots_in_use);
	family(w, "corral_app_queue_depth", "gauge",
	       "Clients queued for one of the application's slots now.");
	for (size_t i = 0; i < n; i++)
		text_put(w, "corral_app_queue_depth{%s} %d\n", subj[i].labels,
			 snap->apps[i].queue_depth);
	family(w, "corral_app_maxwait_seconds", "gauge",
	       "How long the application's longest-waiting client has waited for a slot.");
	for (size_t i = 0; i < n; i++) {
		text_put(w, "corral_app_maxwait_seconds{%s} ", subj[i].labels);
		put_seconds(w, (unsigned long long)snap->apps[i].maxwait_us);
		text_put(w, "\n");
	}
	family(w, "corral_app_admitted_total", "counter",
	       "Checkouts of clients holding an application slot (limited applications).");
	for (size_t i = 0; i < n; i++)
		text_put(w, "corral_app_admitted_total{%s} %llu\n", subj[i].labels,
			 (unsigned long long)snap->apps[i].t.admitted);
	write_common(w, "corral_app", "application", subj, n);
}

static void free_subjects(struct subject *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		free(s[i].labels);
	free(s);
}

bool metrics_prom_write(struct evbuffer *out, const struct stats_snapshot *snap,
			const struct metrics_process *proc)
{
	struct text_out w = {.out = out, .ok = true};
	struct subject *pools = calloc(snap->n_pools + 1, sizeof(*pools));
	struct subject *apps = calloc(snap->n_apps + 1, sizeof(*apps));
	w.ok = pools && apps;
	for (size_t i = 0; w.ok && i < snap->n_pools; i++) {
		const char *kv[] = {"database", snap->pools[i].database, "user",
				    snap->pools[i].user, NULL};
		pools[i] = (struct subject){.labels = labels_of(kv), .t = &snap->pools[i].t};
		w.ok = pools[i].labels != NULL;
	}
	for (size_t i = 0; w.ok && i < snap->n_apps; i++) {
		const char *kv[] = {"app", snap->apps[i].name, NULL};
		apps[i] = (struct subject){.labels = labels_of(kv), .t = &snap->apps[i].t};
		w.ok = apps[i].labels != NULL;
	}
	if (w.ok) {
		write_process(&w, snap, proc);
		write_databases(&w, proc);
		write_pools(&w, snap, pools);
		write_apps(&w, snap, apps);
	}
	free_subjects(pools, snap->n_pools);
	free_subjects(apps, snap->n_apps);
	return w.ok;
}
