#!/usr/bin/env bash
# run.sh -- `make bench`: the same pgbench workloads against PostgreSQL directly,
# PgBouncer and corral (1 and 2 workers), interleaved over several rounds; prints a
# markdown table of medians per scenario and writes it to WORKDIR/results.md.
#
# Usage: tests/bench/run.sh [--rounds 3] [--duration 10]
#            [--scenarios select,tpcb,connect,idle5000] [--idle-clients 5000]
#            [--targets direct,pgbouncer,corral-w1,corral-w2] [--scale 10]
#            [--quiet-gate 40] [--workdir DIR] [--keep]
#   make bench BENCH_ARGS="--rounds 1 --duration 5 --scenarios select"
# Env: BENCH_ROUNDS, BENCH_DURATION, BENCH_SCENARIOS, BENCH_TARGETS, BENCH_WORKDIR,
#      CORRAL_BIN (default bin/corral), PGBOUNCER (default /usr/sbin/pgbouncer),
#      PG_BIN (default /usr/lib/postgresql/15/bin), PG_RUN_AS (default postgres).
# Everything is in tests/bench/bench.py (python3, standard library only); see its
# docstring for the method.  This wrapper only raises the descriptor limit (idle5000
# holds 5000 client sockets in idle_crowd.py and in the proxy; both inherit it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
command -v python3 >/dev/null || { echo "bench: python3 is needed" >&2; exit 1; }
exec python3 "$here/bench.py" "$@"
