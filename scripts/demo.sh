#!/usr/bin/env bash
# demo.sh -- `make demo`: a connection storm against a small PostgreSQL, directly and
# through corral, side by side.
#
# Starts a throwaway PostgreSQL (scripts/pgtmp.sh) with max_connections = 50, of which
# superuser_reserved_connections = 3 are kept for superusers, so ordinary roles get 47
# (46 while the demo's monitoring connection is open), and corral in front of it (session
# pooling, pool_size = 20, scram-sha-256).  Runs the same
#   pgbench -n -C -c 200 -j 2 -T 10 -S        (-C: a new connection per transaction)
# against PostgreSQL, then through corral, counting PostgreSQL's backends for the
# database every 0.2 s, and prints transactions, failures, connection errors, the peak
# number of server connections and tps for both.  Then it stops everything and removes
# its temp dir, also on error and Ctrl-C.
#
# Environment: DEMO_SECONDS (default 10) per run; DEMO_HOLD=1 keeps PostgreSQL and corral
# running after the table until Ctrl-C, to try them by hand; PG_BIN, PG_RUN_AS as in
# scripts/pgtmp.sh.  Exits 0 when the corral run had no failures, 1 otherwise.
set -euo pipefail

root=$(realpath "$(dirname "$0")/..")
# shellcheck source=scripts/pgtmp.sh
. "$root/scripts/pgtmp.sh"
pgtmp_unset_pgenv

CLIENTS=200 THREADS=2 POOL=20 MAXCONN=50
SECS=${DEMO_SECONDS:-10}
DB=bench USER_=bench PASS=secret
BENCH_ARGS=(-n -C -c "$CLIENTS" -j "$THREADS" -T "$SECS" -S)

tmp=$(mktemp -d /tmp/corral-demo.XXXXXX)
sampler='' corral_pid='' bench_pid=''

# Waits up to 5 s for PID to exit, then kills it.
stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	rm -f "$tmp/sampling" # the sampler's loop ends, then its psql
	[ -z "$bench_pid" ] || stop_pid "$bench_pid"
	[ -z "$corral_pid" ] || stop_pid "$corral_pid"
	[ -z "$sampler" ] || wait "$sampler" 2>/dev/null || true
	pgtmp_stop "$tmp"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "demo: $*" >&2
	exit 1
}

# --- PostgreSQL ----------------------------------------------------------------------
pgtmp_start "$tmp" max_connections=$MAXCONN superuser_reserved_connections=3 ||
	fail "PostgreSQL did not start"
pgport=$PGTMP_PORT
pgtmp_psql "$tmp" >/dev/null <<EOF || fail "role/database setup failed"
create role $USER_ login password '$PASS';
create database $DB owner $USER_;
EOF
"$PG_BIN/pgbench" -i -s 1 -q -h "$tmp/pg" -p "$pgport" -U "$USER_" "$DB" >"$tmp/init.log" 2>&1 ||
	{ cat "$tmp/init.log" >&2; fail "pgbench -i failed"; }
echo "demo: PostgreSQL 15 on 127.0.0.1:$pgport, max_connections = $MAXCONN" \
	"(3 reserved for superusers: 47 for ordinary roles, 46 while the demo's monitor is connected)"

# --- corral --------------------------------------------------------------------------
cport=$(pgtmp_free_port)
printf '"%s" "%s"\n' "$USER_" "$PASS" >"$tmp/userlist.txt"
chmod 600 "$tmp/userlist.txt"
cat >"$tmp/corral.ini" <<EOF
[corral]
listen_addr = 127.0.0.1
listen_port = $cport
workers = 1
auth_type = scram-sha-256
auth_file = $tmp/userlist.txt
pool_mode = session
default_pool_size = $POOL
log_level = info

[databases]
; no user=/password=: each client logs in to PostgreSQL as itself (userlist.txt)
$DB = host=127.0.0.1 port=$pgport dbname=$DB pool_size=$POOL
EOF
"$root/bin/corral" -c "$tmp/corral.ini" >"$tmp/corral.log" 2>&1 &
corral_pid=$!
for _ in $(seq 50); do
	grep -q 'event=listening' "$tmp/corral.log" && break
	kill -0 "$corral_pid" 2>/dev/null || break
	sleep 0.1
done
grep -q 'event=listening' "$tmp/corral.log" || { cat "$tmp/corral.log" >&2; fail "corral did not start"; }
echo "demo: corral on 127.0.0.1:$cport in front of it (session pooling, pool_size = $POOL)"

# --- the runs ------------------------------------------------------------------------
# One superuser connection over the unix socket counts the database's backends every 0.2 s
# (a superuser may use the reserved slots, so it is never turned away).
sample_start() {
	: >"$tmp/sampling"
	while [ -e "$tmp/sampling" ]; do
		echo "select count(*) from pg_stat_activity where datname = '$DB'" \
			"and backend_type = 'client backend';"
		sleep 0.2
	done | pgtmp_psql "$tmp" -At >"$1" 2>&1 &
	sampler=$!
}
sample_stop() {
	rm -f "$tmp/sampling"
	wait "$sampler" || true
	sampler=''
}

# run NAME PORT: pgbench output in $tmp/NAME.out/.err, samples in $tmp/NAME.samples
run() {
	local name=$1 port=$2 rc=0
	sample_start "$tmp/$name.samples"
	sleep 0.3
	PGPASSWORD=$PASS "$PG_BIN/pgbench" "${BENCH_ARGS[@]}" -h 127.0.0.1 -p "$port" -U "$USER_" "$DB" \
		>"$tmp/$name.out" 2>"$tmp/$name.err" &
	bench_pid=$!
	wait "$bench_pid" || rc=$?
	bench_pid=''
	sleep 0.3
	sample_stop
	echo "$rc" >"$tmp/$name.rc"
}

echo "demo: pgbench ${BENCH_ARGS[*]} (a new connection per transaction), ${SECS} s each:"
printf 'demo:   directly against PostgreSQL ... '
run direct "$pgport"
echo "done"
printf 'demo:   through corral ... '
run corral "$cport"
echo "done"

# --- results -------------------------------------------------------------------------
num() { sed -n "s/^$1\([0-9.]*\).*/\1/p" "$2" | head -1; }
declare -A R
for n in direct corral; do
	R[$n.tx]=$(num 'number of transactions actually processed: ' "$tmp/$n.out")
	R[$n.failed]=$(num 'number of failed transactions: ' "$tmp/$n.out")
	R[$n.tps]=$(num 'tps = ' "$tmp/$n.out")
	R[$n.aborted]=$(grep -cE 'client [0-9]+ aborted' "$tmp/$n.err" || true)
	R[$n.connerr]=$(grep -cE 'too many clients already|remaining connection slots are reserved' \
		"$tmp/$n.err" || true)
	R[$n.peak]=$(grep -E '^[0-9]+$' "$tmp/$n.samples" | sort -n | tail -1 || true)
	R[$n.tx]=${R[$n.tx]:-0} R[$n.failed]=${R[$n.failed]:-0}
	R[$n.tps]=${R[$n.tps]:--} R[$n.peak]=${R[$n.peak]:--}
	[ "${R[$n.tps]}" = - ] || R[$n.tps]=$(printf '%.0f' "${R[$n.tps]}")
done

row() { printf '%-40s %17s %16s\n' "$1" "$2" "$3"; }
echo
row "" "direct PostgreSQL" "through corral"
row "transactions" "${R[direct.tx]}" "${R[corral.tx]}"
row "failed transactions / aborted clients" "${R[direct.failed]} / ${R[direct.aborted]}" \
	"${R[corral.failed]} / ${R[corral.aborted]}"
row "connection errors (server full)" "${R[direct.connerr]}" "${R[corral.connerr]}"
row "peak server connections" "${R[direct.peak]}" "${R[corral.peak]}"
row "tps (including reconnects)" "${R[direct.tps]}" "${R[corral.tps]}"
# PostgreSQL says "sorry, too many clients already" when every slot is taken, and turns
# ordinary roles away earlier, when only the superusers' reserved slots are left.
msg=$(grep -oE 'FATAL: .*(too many clients already|remaining connection slots are reserved).*' \
	"$tmp/direct.err" | sort | uniq -c | sort -rn | head -1 | sed 's/^ *[0-9]* //; s/  */ /g' || true)
[ -z "$msg" ] || echo "(direct: \"$msg\")"
echo
corral_failures=$((${R[corral.failed]} + ${R[corral.aborted]} + ${R[corral.connerr]}))
echo "demo: direct ${R[direct.tx]} tx, ${R[direct.aborted]} clients aborted;" \
	"corral ${R[corral.tx]} tx, $corral_failures failures, peak server connections ${R[corral.peak]}"

ok=1
if [ "$corral_failures" != 0 ] || [ "${R[corral.tx]}" = 0 ] || [ "$(cat "$tmp/corral.rc")" != 0 ] ||
	! kill -0 "$corral_pid" 2>/dev/null; then
	ok=0
	log=$(mktemp /tmp/corral-demo-log.XXXXXX)
	{
		cat "$tmp/corral.log"
		echo "--- pgbench through corral: exit $(cat "$tmp/corral.rc"), stderr:"
		cat "$tmp/corral.err"
	} >"$log"
	echo "demo: the corral run failed; corral's log and pgbench's stderr: $log" >&2
	head -5 "$tmp/corral.err" >&2
fi

dsn="postgresql://$USER_:$PASS@127.0.0.1:$cport/$DB"
echo
if [ "${DEMO_HOLD:-0}" = 1 ]; then
	echo "by hand (PostgreSQL and corral keep running until Ctrl-C):"
else
	echo "by hand (these ports are gone when the demo exits; DEMO_HOLD=1 make demo keeps them):"
fi
echo "  psql '$dsn'"
echo "  PGPASSWORD=$PASS pgbench ${BENCH_ARGS[*]} -h 127.0.0.1 -p $cport -U $USER_ $DB"
if [ "${DEMO_HOLD:-0}" = 1 ]; then
	while sleep 1; do :; done
fi
[ "$ok" = 1 ]
