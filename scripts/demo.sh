#!/usr/bin/env bash
# demo.sh -- `make demo`: a storm of serverless function invocations against a small
# PostgreSQL, with each function connecting directly, then through corral.
#
# Starts a throwaway PostgreSQL (scripts/pgtmp.sh) with max_connections = 50 (3 kept for
# superusers), corral in front of it (transaction pooling, pool_size = 20) and corral-fn
# with the example functions (functions/examples/, tables from schema.sql).  The URL
# shortener is configured twice: url_shortener_direct connects to PostgreSQL itself,
# url_shortener to corral; the same .so.  Then corral-storm releases the same burst of
# DEMO_BURST (default 1000) concurrent HTTP invocations (POST a URL to shorten) at each,
# as a traffic spike does to Lambda: every invocation gets its own environment, and each
# environment opens its own database connection in fn_init.  Between the runs the direct
# environments are reaped (idle_timeout) so they give their connections back.  It prints
# a table (succeeded, failed, "too many clients already", latency, peak server
# connections, cold starts), the URLs and commands to try by hand, and a last line
#   demo: direct <ok>/<n> ok, corral <ok>/<n> ok, peak server connections <p>
# Then it stops everything and removes its temp dir, also on error and Ctrl-C.
#
# Environment: DEMO_BURST (default 1000); DEMO_HOLD=1 keeps everything running after the
# table until Ctrl-C, to try it by hand; DEMO_KEEP=1 keeps the temp dir (logs, JSON) after
# the demo; PG_BIN, PG_RUN_AS as in scripts/pgtmp.sh.
# Exits 0 when every invocation through corral succeeded, 1 otherwise.
set -euo pipefail

root=$(realpath "$(dirname "$0")/..")
# shellcheck source=scripts/pgtmp.sh
. "$root/scripts/pgtmp.sh"
pgtmp_unset_pgenv

BURST=${DEMO_BURST:-1000} POOL=20 MAXCONN=50
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

[databases]
$DB = host=127.0.0.1 port=$pgport dbname=$DB user=$USER_ password=$PASS
EOF
"$bin/corral" -c "$tmp/corral.ini" >"$tmp/corral.log" 2>&1 &
corral_pid=$!
wait_listening "$tmp/corral.log" "$corral_pid" corral
echo "demo: corral on 127.0.0.1:$cport (transaction pooling, pool_size = $POOL)"

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
; info: functions' own log lines (event=fn_log), where a refused connection shows
log_level = info

; the same function twice: through corral, and straight at PostgreSQL
[function.url_shortener]
timeout = 10
idle_timeout = 60

[function.url_shortener_direct]
so = $bin/functions/url_shortener.so
database_url = $direct_url
timeout = 10
idle_timeout = 2

[function.upload_meta]
[function.queue_worker]
[function.nightly_report]
EOF
"$bin/corral-fn" -c "$tmp/corral-fn.ini" >"$tmp/reports.log" 2>"$tmp/corral-fn.log" &
fn_pid=$!
wait_listening "$tmp/corral-fn.log" "$fn_pid" corral-fn
echo "demo: corral-fn on 127.0.0.1:$fport with url_shortener (via corral)," \
	"url_shortener_direct, upload_meta, queue_worker, nightly_report"

# --- the runs ------------------------------------------------------------------------
monitor="host=$tmp/pg port=$pgport user=postgres dbname=postgres"
metric() { # metric NAME FUNCTION: the sample's value from /metrics
	curl_metrics | sed -n "s/^$1{function=\"$2\"[^}]*} \([0-9]*\)$/\1/p" | head -1
}
# /metrics without curl (not on a fresh Debian): bash's /dev/tcp.
curl_metrics() {
	exec 3<>"/dev/tcp/127.0.0.1/$fport"
	printf 'GET /metrics HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n' >&3
	cat <&3
	exec 3<&-
}
envs_of() {
	curl_metrics | awk -v f="$1" -F' ' \
		'index($1, "corral_fn_environments{function=\"" f "\"") == 1 { n += $2 } END { print n + 0 }'
}

# run NAME FUNCTION: corral-storm's JSON in $tmp/NAME.json
run() {
	local name=$1 fn=$2
	"$bin/corral-storm" --url "http://127.0.0.1:$fport/fn/$fn" --method POST \
		--header 'Content-Type: application/json' \
		--body '{"url":"https://example.com/articles/serverless-and-postgres"}' \
		--burst "$BURST" --timeout 60 --monitor-dsn "$monitor" --monitor-db "$DB" \
		--label "$name" --json >"$tmp/$name.json" 2>"$tmp/$name.err" ||
		{ cat "$tmp/$name.err" >&2; fail "corral-storm failed ($name)"; }
}

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

# --- results -------------------------------------------------------------------------
# j FILE PATH: a number from corral-storm's JSON (python3 is not on a fresh Debian: sed).
j() {
	local file=$1 key=$2
	case $key in
	ok | failed) sed -n "s/.*\"$key\":\([0-9]*\).*/\1/p" "$file" | head -1 ;;
	p50 | p99) sed -n "s/.*[{,]\"latency_ms\":{[^}]*\"$key\":\([0-9.]*\).*/\1/p" "$file" | head -1 ;;
	peak) sed -n 's/.*"server_backends":{[^}]*"peak":\([0-9]*\).*/\1/p' "$file" | head -1 ;;
	esac
}
declare -A R
for n in direct corral; do
	f=$tmp/$n.json
	R[$n.ok]=$(j "$f" ok) R[$n.failed]=$(j "$f" failed)
	R[$n.p50]=$(j "$f" p50) R[$n.p99]=$(j "$f" p99) R[$n.peak]=$(j "$f" peak)
done
R[direct.cold]=$(metric corral_fn_cold_starts_total url_shortener_direct)
R[corral.cold]=$(metric corral_fn_cold_starts_total url_shortener)
# An environment whose fn_init could not connect reports PostgreSQL's refusal (corral-fn's
# log, event=env_init_failed): "sorry, too many clients already", or for ordinary roles once only
# the superusers' slots are left, "remaining connection slots are reserved ...".
full_re='too many clients already|remaining connection slots are reserved'
full() { grep "event=env_init_failed function=$1 " "$tmp/corral-fn.log" | grep -cE "$full_re" || true; }
R[direct.full]=$(full url_shortener_direct)
R[corral.full]=$(full url_shortener)
ms() { [ -n "$1" ] && printf '%.0f ms' "$1" || echo -; }

row() { printf '%-38s %18s %18s\n' "$1" "$2" "$3"; }
echo
row "$BURST invocations at once" "direct PostgreSQL" "through corral"
row "succeeded" "${R[direct.ok]:-0}" "${R[corral.ok]:-0}"
row "failed" "${R[direct.failed]:-0}" "${R[corral.failed]:-0}"
row "  of them server full (53300)" "${R[direct.full]}" "${R[corral.full]}"
row "latency p50" "$(ms "${R[direct.p50]}")" "$(ms "${R[corral.p50]}")"
row "latency p99" "$(ms "${R[direct.p99]}")" "$(ms "${R[corral.p99]}")"
row "peak server connections" "${R[direct.peak]:--}" "${R[corral.peak]:--}"
row "cold starts" "${R[direct.cold]:--}" "${R[corral.cold]:--}"
# PostgreSQL says "sorry, too many clients already" when every slot is taken, and turns
# ordinary roles away earlier, once only the superusers' reserved slots are left.
msg=$(grep -oE "FATAL: +($full_re)[^\"]*" "$tmp/corral-fn.log" | sort | uniq -c | sort -rn |
	head -1 | sed 's/^ *[0-9]* //; s/  */ /g' || true)
[ -z "$msg" ] || echo "(direct, most often: \"$msg\")"

echo
if [ "${DEMO_HOLD:-0}" = 1 ]; then
	echo "to look at and try (everything keeps running until Ctrl-C):"
else
	echo "to look at and try (gone when the demo exits; DEMO_HOLD=1 make demo keeps them):"
fi
echo "  http://127.0.0.1:$fport/metrics                      corral-fn's metrics"
echo "  curl -si -XPOST -d '{\"url\":\"https://example.com\"}' http://127.0.0.1:$fport/fn/url_shortener"
echo "  curl -si http://127.0.0.1:$fport/fn/url_shortener/CODE   (CODE from the answer above)"
echo "  curl -s -XPOST -d '{}' http://127.0.0.1:$fport/2015-03-31/functions/nightly_report/invocations"
echo "  $bin/corral-storm --url http://127.0.0.1:$fport/fn/url_shortener --method POST \\"
echo "      --body '{\"url\":\"https://example.com\"}' --rate 200 --duration 10"
echo "  psql '$corral_url'                  (through corral)"
echo "  logs: $tmp/corral-fn.log, $tmp/reports.log (REPORT lines), $tmp/corral.log" \
	"(DEMO_KEEP=1 keeps them)"

corral_ok=${R[corral.ok]:-0}
ok=1
if [ "$corral_ok" != "$BURST" ] || ! kill -0 "$corral_pid" 2>/dev/null; then
	ok=0
	echo "demo: the corral run had failures: $(head -c 600 "$tmp/corral.json")" >&2
	grep -E 'level=(warn|error)' "$tmp/corral-fn.log" | grep -v direct | head -5 >&2 || true
fi
if [ "${DEMO_HOLD:-0}" = 1 ]; then
	while sleep 1; do :; done
fi
echo
echo "demo: direct ${R[direct.ok]:-0}/$BURST ok, corral $corral_ok/$BURST ok," \
	"peak server connections ${R[corral.peak]:--}"
[ "$ok" = 1 ]
