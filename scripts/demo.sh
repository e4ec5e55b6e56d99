#!/usr/bin/env bash
# demo.sh -- `make demo`: a storm of serverless function invocations against a small
# PostgreSQL, with each function connecting directly, then through corral, then through
# corral with the function's concurrency capped.
#
# Starts a throwaway PostgreSQL (scripts/pgtmp.sh) with max_connections = 50 (3 kept for
# superusers), corral in front of it (transaction pooling, pool_size = 20) and corral-fn
# with the example functions (functions/examples/, tables from schema.sql).  The URL
# shortener is configured twice: url_shortener_direct connects to PostgreSQL itself,
# url_shortener to corral; the same .so.  Then corral-storm releases the same burst of
# DEMO_BURST (default 1000) concurrent HTTP invocations (POST a URL to shorten) at each,
# as a traffic spike does to Lambda: every invocation gets its own environment, and each
# environment opens its own database connection in fn_init.  Between the runs the direct
# environments are reaped (idle_timeout) so they give their connections back.  The third
# run sends the burst to url_shortener_capped, the same function through corral with
# reserved_concurrency = DEMO_LIMIT (default 40) and on_limit = queue: that many warm
# environments take the invocations from the runner's queue one after another.  It
# prints a table (succeeded, failed by cause, cold starts, queue wait, latency of the
# invocations that succeeded, peak server connections), what each column shows, the
# URLs and commands to try by hand (corral's dashboard among them: its URL is printed before
# the bursts, [metrics] listening on a free port), SHOW POOLS and SHOW APPS from corral's
# admin console, and a last line
#   demo: direct <ok>/<n> ok, corral <ok>/<n> ok, peak server connections <p>,
#         corral+limit <ok>/<n> ok, cold starts <k>, peak server connections <q>
# (one line).  Then it stops everything and removes its temp dir, also on error, Ctrl-C
# and SIGTERM.
#
# Environment: DEMO_BURST (default 1000); DEMO_LIMIT (default 40); DEMO_HOLD=1 keeps
# everything running after the table until Ctrl-C (or `kill PID`, PID printed; a
# background job ignores Ctrl-C), to try it by hand; DEMO_KEEP=1 keeps the temp dir (logs, JSON) after
# the demo; PG_BIN, PG_RUN_AS as in scripts/pgtmp.sh.
# Exits 0 when every invocation through corral succeeded, 1 otherwise.
set -euo pipefail

root=$(realpath "$(dirname "$0")/..")
# shellcheck source=scripts/pgtmp.sh
. "$root/scripts/pgtmp.sh"
pgtmp_unset_pgenv

BURST=${DEMO_BURST:-1000} LIMIT=${DEMO_LIMIT:-40} POOL=20 MAXCONN=50
DB=demo USER_=app PASS=secret
bin=$root/bin

tmp=$(mktemp -d /tmp/corral-demo.XXXXXX)
corral_pid='' fn_pid=''

# Waits up to 10 s for PID to exit, then kills it.
stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	[ -z "$fn_pid" ] || stop_pid "$fn_pid"
	[ -z "$corral_pid" ] || stop_pid "$corral_pid"
	pgtmp_stop "$tmp"
	if [ "${DEMO_KEEP:-0}" = 1 ]; then
		echo "demo: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "demo: $*" >&2
	exit 1
}

# Waits up to 10 s for "event=listening" in log LOG of process PID.
wait_listening() {
	local log=$1 pid=$2 what=$3
	for _ in $(seq 100); do
		grep -q 'event=listening' "$log" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -20 "$log" >&2
	fail "$what did not start"
}

# --- PostgreSQL ----------------------------------------------------------------------
pgtmp_start "$tmp" max_connections=$MAXCONN superuser_reserved_connections=3 ||
	fail "PostgreSQL did not start"
pgport=$PGTMP_PORT
pgtmp_psql "$tmp" >/dev/null <<EOF || fail "role/database setup failed"
create role $USER_ login password '$PASS';
create database $DB owner $USER_;
EOF
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$pgport" -U "$USER_" -d "$DB" \
	-f "$root/functions/examples/schema.sql" >"$tmp/schema.log" 2>&1 ||
	{ cat "$tmp/schema.log" >&2; fail "creating the example tables failed"; }
echo "demo: PostgreSQL 15 on 127.0.0.1:$pgport, max_connections = $MAXCONN" \
	"(47 for ordinary roles), example tables created"

# --- corral --------------------------------------------------------------------------
cport=$(pgtmp_free_port)
mport=$(pgtmp_free_port)
while [ "$mport" = "$cport" ]; do mport=$(pgtmp_free_port); done
# The userlist holds PostgreSQL's own SCRAM verifier for the role, not the password:
# corral then checks each login without redoing PBKDF2 (a thousand cold starts log in at
# once), and its own server logins use password= on the database line.
verifier=$(pgtmp_psql "$tmp" -At -c "select rolpassword from pg_authid where rolname = '$USER_'")
printf '"%s" "%s"\n' "$USER_" "$verifier" >"$tmp/userlist.txt"
chmod 600 "$tmp/userlist.txt"
cat >"$tmp/corral.ini" <<EOF
[corral]
listen_addr = 127.0.0.1
listen_port = $cport
auth_type = scram-sha-256
auth_file = $tmp/userlist.txt
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = $((BURST + 500))
log_level = info
; the admin console: psql -h 127.0.0.1 -p PORT -U $USER_ corral
admin_users = $USER_

[databases]
$DB = host=127.0.0.1 port=$pgport dbname=$DB user=$USER_ password=$PASS

; the dashboard, /metrics, /stats.json and /healthz
[metrics]
listen = 127.0.0.1:$mport
EOF
"$bin/corral" -c "$tmp/corral.ini" >"$tmp/corral.log" 2>&1 &
corral_pid=$!
wait_listening "$tmp/corral.log" "$corral_pid" corral
echo "demo: corral on 127.0.0.1:$cport (transaction pooling, pool_size = $POOL)"
dashboard=http://127.0.0.1:$mport/

# --- corral-fn -----------------------------------------------------------------------
fport=$(pgtmp_free_port)
direct_url="postgresql://$USER_:$PASS@127.0.0.1:$pgport/$DB"
corral_url="postgresql://$USER_:$PASS@127.0.0.1:$cport/$DB"
cat >"$tmp/corral-fn.ini" <<EOF
[runner]
listen_addr = 127.0.0.1
listen_port = $fport
database_url = $corral_url
functions_dir = $bin/functions
max_concurrency = $((BURST + 100))
; A burst of $BURST cold starts takes 5-15 s on a busy 2-CPU machine; the default 10 s
; would fail the last of them in the corral run, which is not what it is to show.
init_timeout = 30
; info: functions' own log lines (event=fn_log), where a refused connection shows
log_level = info

; the same function twice: through corral, and straight at PostgreSQL.  timeout = 30: on
; a busy 2-CPU machine an invocation behind 1000 cold starts can wait 10 s for a CPU, and
; timeouts are not what the demo is to show.
[function.url_shortener]
timeout = 30
idle_timeout = 60

[function.url_shortener_direct]
so = $bin/functions/url_shortener.so
database_url = $direct_url
timeout = 30
idle_timeout = 2

; through corral, at most $LIMIT environments; the rest of a burst waits in the queue
[function.url_shortener_capped]
so = $bin/functions/url_shortener.so
reserved_concurrency = $LIMIT
on_limit = queue
queue_depth = $BURST
queue_timeout = 60
timeout = 30
idle_timeout = 60

[function.upload_meta]
[function.queue_worker]
[function.nightly_report]
EOF
"$bin/corral-fn" -c "$tmp/corral-fn.ini" >"$tmp/reports.log" 2>"$tmp/corral-fn.log" &
fn_pid=$!
wait_listening "$tmp/corral-fn.log" "$fn_pid" corral-fn
echo "demo: corral-fn on 127.0.0.1:$fport with url_shortener (via corral)," \
	"url_shortener_direct, url_shortener_capped (via corral, at most $LIMIT at once)," \
	"upload_meta, queue_worker, nightly_report"

# --- the runs ------------------------------------------------------------------------
monitor="host=$tmp/pg port=$pgport user=postgres dbname=postgres"
# http_get PORT PATH without curl (not on a fresh Debian): bash's /dev/tcp.
http_get() {
	exec 3<>"/dev/tcp/127.0.0.1/$1"
	printf 'GET %s HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n' "$2" >&3
	cat <&3
	exec 3<&-
}
curl_metrics() { http_get "$fport" /metrics; }
envs_of() {
	curl_metrics | awk -v f="$1" -F' ' \
		'index($1, "corral_fn_environments{function=\"" f "\"") == 1 { n += $2 } END { print n + 0 }'
}

# run NAME FUNCTION: corral-storm's JSON in $tmp/NAME.json; the run's part of corral-fn's
# log and of its REPORT lines in $tmp/run-NAME.log and $tmp/run-NAME.reports (the runs take
# turns, so what the files gained meanwhile is the run's).
run() {
	local name=$1 fn=$2
	local log0 rep0
	log0=$(wc -l <"$tmp/corral-fn.log") rep0=$(wc -l <"$tmp/reports.log")
	"$bin/corral-storm" --url "http://127.0.0.1:$fport/fn/$fn" --method POST \
		--header 'Content-Type: application/json' \
		--body '{"url":"https://example.com/articles/serverless-and-postgres"}' \
		--burst "$BURST" --timeout 60 --monitor-dsn "$monitor" --monitor-db "$DB" \
		--label "$name" --json >"$tmp/$name.json" 2>"$tmp/$name.err" ||
		{ cat "$tmp/$name.err" >&2; fail "corral-storm failed ($name)"; }
	tail -n +$((log0 + 1)) "$tmp/corral-fn.log" >"$tmp/run-$name.log"
	tail -n +$((rep0 + 1)) "$tmp/reports.log" | grep '^REPORT' >"$tmp/run-$name.reports" || true
}

echo "demo: watch it live in a browser: $dashboard  (corral's dashboard; /metrics for Prometheus)"
echo "demo: a burst of $BURST concurrent invocations of the URL shortener, each in its own environment:"
printf 'demo:   functions connecting directly to PostgreSQL ... '
run direct url_shortener_direct
echo "done"
printf 'demo:   waiting for the direct environments to be reaped (idle_timeout = 2 s) ... '
for _ in $(seq 100); do
	[ "$(envs_of url_shortener_direct)" = 0 ] && break
	sleep 0.2
done
echo "done"
printf 'demo:   functions connecting through corral ... '
run corral url_shortener
echo "done"
printf 'demo:   the same through corral, at most %d environments at once ... ' "$LIMIT"
run capped url_shortener_capped
echo "done"

# --- results -------------------------------------------------------------------------
# j FILE KEY: a number from corral-storm's JSON (python3 is not on a fresh Debian: sed).
j() {
	local file=$1 key=$2
	case $key in
	ok | failed) sed -n "s/.*\"$key\":\([0-9]*\).*/\1/p" "$file" | head -1 ;;
	count | min | p50 | p99 | max)
		sed -n "s/.*[{,]\"latency_ms\":{[^}]*\"$key\":\([0-9.]*\).*/\1/p" "$file" | head -1 ;;
	peak) sed -n 's/.*"server_backends":{[^}]*"peak":\([0-9]*\).*/\1/p' "$file" | head -1 ;;
	esac
}
# status CODE FILE: how many answers had that HTTP status.
status() { sed -n "s/.*\"status_codes\":{[^}]*\"$1\":\([0-9]*\).*/\1/p" "$2" | head -1; }
# pct P: the P-th percentile (nearest rank) of the numbers on stdin, "-" if none.
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END {
	if (NR == 0) { print "-"; exit }
	r = int(p * NR / 100); if (r < p * NR / 100) r++; if (r < 1) r = 1; print v[r] }'; }
# An environment whose fn_init could not connect reports PostgreSQL's refusal (corral-fn's
# log, event=env_init_failed): "sorry, too many clients already", or for ordinary roles once
# only the superusers' slots are left, "remaining connection slots are reserved ...".
full_re='too many clients already|remaining connection slots are reserved'
declare -A R
for n in direct corral capped; do
	f=$tmp/$n.json
	for k in ok failed count min p50 p99 max peak; do R[$n.$k]=$(j "$f" $k); done
	# Failures by cause, from corral-fn's log: fn_init refused by PostgreSQL (53300), other
	# fn_init errors, fn_init not done within init_timeout; throttled or queue full (429);
	# the rest (a crash, a timeout: see the log).
	log=$tmp/run-$n.log
	R[$n.full]=$(grep 'event=env_init_failed ' "$log" | grep -cE "$full_re" || true)
	R[$n.init_other]=$(($(grep -c 'event=env_init_failed ' "$log" || true) - R[$n.full]))
	R[$n.init_timeout]=$(grep -c 'event=env_init_timeout ' "$log" || true)
	R[$n.throttled]=$(status 429 "$f")
	R[$n.throttled]=${R[$n.throttled]:-0}
	R[$n.other]=$((${R[$n.failed]:-0} - R[$n.full] - R[$n.init_other] - R[$n.init_timeout] -
		R[$n.throttled]))
	R[$n.cold]=$(grep -c 'event=env_start ' "$log" || true)
	qw() { sed -n 's/.*Queue Wait: \([0-9.]*\) ms.*/\1/p' "$tmp/run-$n.reports"; }
	R[$n.qw50]=$(qw | pct 50) R[$n.qw99]=$(qw | pct 99)
done
ms() { [ -n "$1" ] && [ "$1" != - ] && printf '%.0f' "$1" || echo -; }
pair() { echo "$(ms "$1") / $(ms "$2") ms"; }

row() { printf '%-36s %18s %18s %18s\n' "$1" "$2" "$3" "$4"; }
rown() { row "$1" "${R[direct.$2]:-0}" "${R[corral.$2]:-0}" "${R[capped.$2]:-0}"; }
echo
row "$BURST invocations at once" "direct PostgreSQL" "through corral" "corral + limit $LIMIT"
rown "succeeded" ok
rown "failed" failed
rown "  53300 too many connections" full
rown "  other fn_init errors" init_other
rown "  fn_init took over init_timeout" init_timeout
rown "  throttled, queue full (429)" throttled
rown "  other" other
rown "cold starts (environments started)" cold
row "queue wait p50 / p99" "$(pair "${R[direct.qw50]}" "${R[direct.qw99]}")" \
	"$(pair "${R[corral.qw50]}" "${R[corral.qw99]}")" "$(pair "${R[capped.qw50]}" "${R[capped.qw99]}")"
row "latency p50 / p99 of the ok ones" "$(pair "${R[direct.p50]}" "${R[direct.p99]}")" \
	"$(pair "${R[corral.p50]}" "${R[corral.p99]}")" "$(pair "${R[capped.p50]}" "${R[capped.p99]}")"
row "  first / last ok answer" "$(pair "${R[direct.min]}" "${R[direct.max]}")" \
	"$(pair "${R[corral.min]}" "${R[corral.max]}")" "$(pair "${R[capped.min]}" "${R[capped.max]}")"
row "  (invocations they cover)" "${R[direct.count]:-0}" "${R[corral.count]:-0}" "${R[capped.count]:-0}"
rown "peak server connections" peak
# PostgreSQL says "sorry, too many clients already" when every slot is taken, and turns
# ordinary roles away earlier, once only the superusers' reserved slots are left.
msg=$(grep -oE "FATAL: +($full_re)[^\"\\]*" "$tmp/run-direct.log" | sort | uniq -c | sort -rn |
	head -1 | sed 's/^ *[0-9]* //; s/  */ /g' || true)
echo
echo "direct: every environment opens its own connection, and PostgreSQL (max_connections ="
echo "  $MAXCONN) turns away all but a few dozen${msg:+:}"
[ -z "$msg" ] || echo "  \"$msg\"."
echo "  Those few answer only once the runner has started the other environments (first /"
echo "  last ok answer), so their latency is the whole burst's."
echo "through corral: pooling; every connection is accepted and the burst shares $POOL server"
echo "  connections, so all can succeed, but each invocation still starts its own environment:"
echo "  $BURST cold starts (fork, dlopen, connect) queue for $(nproc) CPUs, which is the latency."
echo "corral + limit $LIMIT: load leveling and concurrency limits; $LIMIT warm environments take the"
echo "  burst from the runner's queue (the queue wait), so few cold starts and a lower latency."

# What corral saw, per pool and per function (application_name): its admin console.
admin() {
	PGPASSWORD=$PASS "$PG_BIN/psql" -X -P pager=off -h 127.0.0.1 -p "$cport" -U "$USER_" \
		-d corral -c "$1" 2>&1 | sed 's/^/  /'
}
echo
echo "corral after the bursts: psql -h 127.0.0.1 -p $cport -U $USER_ corral -c 'SHOW POOLS'"
admin "SHOW POOLS"
echo "corral per function: SHOW APPS (application_name = the function)"
admin "SHOW APPS"

echo
if [ "${DEMO_HOLD:-0}" = 1 ]; then
	echo "to look at and try (everything keeps running until Ctrl-C, or kill $$):"
else
	echo "to look at and try (gone when the demo exits; DEMO_HOLD=1 make demo keeps them):"
fi
echo "  $dashboard                          corral's live dashboard (also /metrics, /stats.json, /healthz)"
echo "  http://127.0.0.1:$fport/metrics                      corral-fn's metrics"
echo "  curl -si -XPOST -d '{\"url\":\"https://example.com\"}' http://127.0.0.1:$fport/fn/url_shortener"
echo "  curl -si http://127.0.0.1:$fport/fn/url_shortener/CODE   (CODE from the answer above)"
echo "  curl -s -XPOST -d '{}' http://127.0.0.1:$fport/2015-03-31/functions/nightly_report/invocations"
echo "  $bin/corral-storm --url http://127.0.0.1:$fport/fn/url_shortener --method POST \\"
echo "      --body '{\"url\":\"https://example.com\"}' --rate 200 --duration 10"
echo "  psql '$corral_url'                  (through corral)"
echo "  logs: $tmp/corral-fn.log, $tmp/reports.log (REPORT lines), $tmp/corral.log" \
	"(DEMO_KEEP=1 keeps them)"

ok=1
for n in corral capped; do
	if [ "${R[$n.ok]:-0}" != "$BURST" ]; then
		ok=0
		echo "demo: the $n run had failures: $(head -c 600 "$tmp/$n.json")" >&2
	fi
done
if ! kill -0 "$corral_pid" 2>/dev/null; then
	ok=0
	echo "demo: corral is gone" >&2
fi
[ "$ok" = 1 ] || grep -E 'level=(warn|error)' "$tmp/corral-fn.log" | grep -v direct | head -5 >&2 || true
echo
echo "demo: direct ${R[direct.ok]:-0}/$BURST ok, corral ${R[corral.ok]:-0}/$BURST ok," \
	"peak server connections ${R[corral.peak]:--}, corral+limit ${R[capped.ok]:-0}/$BURST ok," \
	"cold starts ${R[capped.cold]:-0}, peak server connections ${R[capped.peak]:--}"
if [ "${DEMO_HOLD:-0}" = 1 ]; then
	# In the foreground Ctrl-C ends it (the INT trap); a background job ignores SIGINT,
	# so say how else: SIGTERM runs the same cleanup.
	echo "demo: holding (pid $$); Ctrl-C, or kill $$, stops everything"
	while sleep 1; do :; done
fi
[ "$ok" = 1 ]
