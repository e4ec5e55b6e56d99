#!/usr/bin/env bash
# Starts corral the way ../shared/bench/compare starts a third proxy: in the foreground,
# on 127.0.0.1:$PROXY_PORT, in front of $BENCH_PG_HOST:$BENCH_PG_PORT, with the same
# SCRAM auth file as PgBouncer ($BENCH_USERLIST) and the same pool settings.
#   compare --proxy-name corral --proxy-cmd 'exec /path/to/tests/bench/corral-proxy-cmd.sh'
# Env: POOL_MODE (default transaction), POOL_SIZE (20), CORRAL_WORKERS (1).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
ini=${BENCH_WORKDIR:-/tmp}/corral-bench.ini
cat >"$ini" <<INI
[corral]
listen_addr = 127.0.0.1
listen_port = $PROXY_PORT
workers = ${CORRAL_WORKERS:-1}
auth_type = scram-sha-256
auth_file = $BENCH_USERLIST
pool_mode = ${POOL_MODE:-transaction}
default_pool_size = ${POOL_SIZE:-20}
max_client_conn = 20000
log_level = warn
[databases]
$BENCH_DB = host=$BENCH_PG_HOST port=$BENCH_PG_PORT dbname=$BENCH_DB user=$BENCH_USER password=$BENCH_PASSWORD
INI
exec "$here/bin/corral" -c "$ini"
