#!/usr/bin/env bash
# bench-fn.sh -- `make bench-fn`: what corral-fn itself costs per invocation.
#
# Starts a throwaway PostgreSQL, corral in front of it (transaction pooling, pool 20)
# and corral-fn, then measures, one phase at a time:
#   cold start, no database  tests/functions/probe.so with idle_timeout = 0.05 s, invoked
#                            BENCH_COLD times (default 200), 8 per second, so every
#                            invocation starts an environment: Init Duration (fork to
#                            READY: fork + dlopen + fn_init) from the REPORT lines
#   cold start + DB connect  the same with functions/examples/url_shortener.so, whose
#                            fn_init connects through corral (SCRAM) and prepares two
#                            statements
#   warm                     probe with a long idle_timeout, BENCH_WARM (default 1000)
#                            invocations one after another, alternating with requests to
#                            /healthz, which invokes nothing (python3 client, a new TCP
#                            connection per request, timed connect to answer): the difference
#                            is what a warm invocation costs in the runner (event, frames
#                            to and from the environment, REPORT), besides the function's
#                            own Duration
# and prints p50 / p99 of each.  Numbers, not pass/fail: compare runs on one machine.
set -euo pipefail
command -v python3 >/dev/null || { echo "bench-fn: python3 is needed" >&2; exit 1; }

root=$(realpath "$(dirname "$0")/..")
# shellcheck source=scripts/pgtmp.sh
. "$root/scripts/pgtmp.sh"
pgtmp_unset_pgenv

COLD=${BENCH_COLD:-200} WARM=${BENCH_WARM:-1000}
DB=bench USER_=app PASS=secret
bin=$root/bin
tmp=$(mktemp -d /tmp/corral-bench-fn.XXXXXX)
corral_pid='' fn_pid=''

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	for p in $fn_pid $corral_pid; do
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	pgtmp_stop "$tmp"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT

fail() {
	echo "bench-fn: $*" >&2
	exit 1
}

wait_listening() {
	for _ in $(seq 100); do
		grep -q 'event=listening' "$1" && return 0
		sleep 0.1
	done
	tail -20 "$1" >&2
	fail "$2 did not start"
}

pgtmp_start "$tmp" max_connections=50 || fail "PostgreSQL did not start"
pgport=$PGTMP_PORT
pgtmp_psql "$tmp" >/dev/null <<EOF || fail "setup failed"
create role $USER_ login password '$PASS';
create database $DB owner $USER_;
EOF
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$pgport" -U "$USER_" -d "$DB" \
	-f "$root/functions/examples/schema.sql" >/dev/null || fail "schema failed"

cport=$(pgtmp_free_port)
verifier=$(pgtmp_psql "$tmp" -At -c "select rolpassword from pg_authid where rolname = '$USER_'")
printf '"%s" "%s"\n' "$USER_" "$verifier" >"$tmp/userlist.txt"
cat >"$tmp/corral.ini" <<EOF
[corral]
listen_port = $cport
auth_type = scram-sha-256
auth_file = $tmp/userlist.txt
pool_mode = transaction
default_pool_size = 20
[databases]
$DB = host=127.0.0.1 port=$pgport dbname=$DB user=$USER_ password=$PASS
EOF
"$bin/corral" -c "$tmp/corral.ini" >"$tmp/corral.log" 2>&1 &
corral_pid=$!
wait_listening "$tmp/corral.log" corral

fport=$(pgtmp_free_port)
cat >"$tmp/corral-fn.ini" <<EOF
[runner]
listen_port = $fport
database_url = postgresql://$USER_:$PASS@127.0.0.1:$cport/$DB
log_level = info
[function.cold_probe]
so = $bin/test-functions/probe.so
idle_timeout = 0.05
[function.cold_db]
so = $bin/functions/url_shortener.so
idle_timeout = 0.05
[function.warm_probe]
so = $bin/test-functions/probe.so
EOF
"$bin/corral-fn" -c "$tmp/corral-fn.ini" >"$tmp/reports.log" 2>"$tmp/corral-fn.log" &
fn_pid=$!
wait_listening "$tmp/corral-fn.log" corral-fn

# p50 p99 max of the numbers on stdin
pct() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) {print "- - -"; exit}
	i50 = int((NR + 1) * 0.50); i99 = int((NR * 0.99) + 0.999); if (i99 > NR) i99 = NR
	printf "%.3f %.3f %.3f\n", a[i50 < 1 ? 1 : i50], a[i99], a[NR]}'; }
# phase NAME FUNCTION STORM-ARGS...: REPORT lines of the phase in $tmp/NAME.reports
phase() {
	local name=$1 fn=$2
	shift 2
	local before
	before=$(wc -l <"$tmp/reports.log")
	"$bin/corral-storm" --url "http://127.0.0.1:$fport/fn/$fn" "$@" --json \
		>"$tmp/$name.json" 2>"$tmp/$name.err" || { cat "$tmp/$name.err" >&2; fail "$name failed"; }
	sleep 0.2
	tail -n +"$((before + 1))" "$tmp/reports.log" | grep '^REPORT' >"$tmp/$name.reports" || true
}
field() { sed -n "s/.*	$1: \([0-9.]*\) ms.*/\1/p" "$2"; }

# sequential N PATH...: N rounds of one request to each PATH in turn, each on a new
# connection (as a function gateway's client would), timed from connect to the last
# byte of the answer; prints "PATH ms" lines.  python3, as make bench uses: a client
# started per request (corral-storm, curl) would add its own start-up to every sample.
sequential() {
	python3 - "$fport" "$@" <<'PY'
import socket, sys, time
port, n, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
for _ in range(n):
    for path in paths:
        t0 = time.perf_counter_ns()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        ms = (time.perf_counter_ns() - t0) / 1e6
        if not data.startswith(b"HTTP/1.1 200"):
            sys.exit(f"{path}: {data[:200]!r}")
        print(path, f"{ms:.4f}")
PY
}

echo "bench-fn: $COLD cold starts each (8/s), then $WARM warm invocations one at a time"
phase cold_probe cold_probe --rate 8 --duration "$(awk -v n="$COLD" 'BEGIN{print n/8}')"
phase cold_db cold_db --rate 8 --duration "$(awk -v n="$COLD" 'BEGIN{print n/8}')"
phase warm_first warm_probe --burst 1 # its one cold start, outside the measurement
before=$(wc -l <"$tmp/reports.log")
sequential "$WARM" /fn/warm_probe /healthz >"$tmp/warm.seq" || fail "warm invocations failed"
sleep 0.2
tail -n +"$((before + 1))" "$tmp/reports.log" | grep '^REPORT' >"$tmp/warm.reports" || true
awk '$1 == "/fn/warm_probe" { print $2 }' "$tmp/warm.seq" >"$tmp/warm.ms"
awk '$1 == "/healthz" { print $2 }' "$tmp/warm.seq" >"$tmp/healthz.ms"

printf '\n%-48s %8s %8s %8s %6s\n' "" "p50 ms" "p99 ms" "max ms" "n"
row() { printf '%-48s %8s %8s %8s %6s\n' "$1" $2 "$3"; }
row "cold: Init Duration, fork+dlopen+fn_init" "$(field 'Init Duration' "$tmp/cold_probe.reports" | pct)" \
	"$(grep -c 'Cold: true' "$tmp/cold_probe.reports" || true)"
row "cold: the same + DB connect through corral" "$(field 'Init Duration' "$tmp/cold_db.reports" | pct)" \
	"$(grep -c 'Cold: true' "$tmp/cold_db.reports" || true)"
row "warm: HTTP latency of an invocation" "$(pct <"$tmp/warm.ms")" "$(grep -c . "$tmp/warm.ms")"
row "warm: HTTP latency of /healthz (no invocation)" "$(pct <"$tmp/healthz.ms")" "$(grep -c . "$tmp/healthz.ms")"
row "warm: the function's own Duration (REPORT)" "$(field Duration "$tmp/warm.reports" | pct)" \
	"$(grep -c . "$tmp/warm.reports" || true)"
w50=$(pct <"$tmp/warm.ms" | cut -d' ' -f1) h50=$(pct <"$tmp/healthz.ms" | cut -d' ' -f1)
echo
echo "bench-fn: warm invocation overhead in the runner, p50: $(awk -v a="$w50" -v b="$h50" \
	'BEGIN{printf "%.0f", (a - b) * 1000}') us (invocation minus /healthz);" \
	"cold starts in the warm phase: $(grep -c 'Cold: true' "$tmp/warm.reports" || true)"
