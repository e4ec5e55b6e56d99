#!/usr/bin/env bash
# run.sh -- run corral's integration tests against a throwaway PostgreSQL cluster.
#
# Usage: tests/integration/run.sh BINARY [criterion args...]
#   e.g. tests/integration/run.sh ./bin/integration-tests --filter 'auth/*'
#
# Creates a short temp dir (/tmp/corral-it.XXXXXX), initdb's a cluster there with
# scripts/pgtmp.sh (as OS user postgres when run as root; PG_BIN and PG_RUN_AS as
# documented there), starts it on 127.0.0.1 and a free port, creates the roles
# and databases below, runs BINARY with `--jobs 2 --timeout 120` plus the given args, then
# always stops PostgreSQL and removes the dir (set CORRAL_TEST_KEEP=1 to keep it).
# Exits with BINARY's exit code; Criterion's "[====] Synthesis" line is the last output.
#
# Cluster: listen_addresses = 127.0.0.1 only, max_connections = 50 (low so that limits
# show; 3 of them reserved for superusers), fsync off, ssl = on with a self-signed
# certificate (TLS is offered, never required: libpq's default sslmode=prefer uses it,
# sslmode=disable does not; the harness runs corral with PGSSLMODE=disable so its server
# logins stay plain text unless a database line asks).  pg_hba: unix socket (in the data
# dir, mode 0700) = trust for everyone; TCP: md5user = md5, everyone else = scram-sha-256.
#   role postgres  superuser, unix socket only (setup and monitoring)
#   role bench     password 'secret' (SCRAM verifier), owns databases bench, pgb, idle
#   role md5user   password 'md5pass', stored as an md5 hash (password_encryption = md5)
#   database pgb   pgbench -i -s 1 (pgbench tables), used only by the pgbench test
#   database idle  empty, used only by the server_idle_timeout test (it counts backends)
#   role limited   password 'secret', used only by the stranded-waiter test (it changes
#                  the role's CONNECTION LIMIT)
#   role drainer   password 'secret', CONNECTION LIMIT 2, used only by test_cancel.c:
#                  a pool of size 2 that ever had a third backend fails a login
#   role stubborn  password 'secret', used only by test_cancel.c's query that ignores
#                  cancels
#   database fn    the example functions' tables (functions/examples/schema.sql) and
#                  corral-fn's queue tables: the function runner tests (test_fn_*.c)
#   databases txpool_w1, txpool_w2, txpool_ext, prep_bench
#                  copies of pgb (template), each used by one test of test_txpool.c
#                  only (transaction-pooling pgbench runs that count backends), and
#                  prep_bench by test_prepared.c's pgbench runs
#   database node_named  empty, used only by test_drivers.c's node-postgres test (it
#                  counts the pool's backends)
#   role corral_auth  password 'authpass', SELECT on pg_shadow in bench and pgb (a view,
#                  so the grant is enough without superuser): auth_user of test_auth_query.c
#   roles authq_user / authq_rot / authq_many  passwords 'aqpass' / 'rot1' / 'manypass'
#                  (SCRAM verifiers), in PostgreSQL only: test_auth_query.c logs in as
#                  them through auth_query; authq_rot's password is changed by its test
#
# Environment contract for BINARY (read by tests/integration/harness.c):
#   CORRAL_BIN               absolute path of bin/corral (an already-set CORRAL_BIN wins,
#                            e.g. to test an ASan build kept elsewhere)
#   CORRAL_TEST_PGHOST       127.0.0.1
#   CORRAL_TEST_PGPORT       the cluster's TCP port
#   CORRAL_TEST_PGSOCKDIR    unix socket dir: superuser "postgres", trust
#   CORRAL_TEST_DIR          scratch dir (tests make their own subdirs in it)
#   CORRAL_TEST_USER / CORRAL_TEST_PASSWORD          bench / secret
#   CORRAL_TEST_MD5_USER / CORRAL_TEST_MD5_PASSWORD  md5user / md5pass
#   CORRAL_TEST_DB           bench
#   CORRAL_TEST_PGBENCH_DB   pgb
#   CORRAL_TEST_IDLE_DB      idle
#   CORRAL_TEST_LIMIT_USER   limited
#   CORRAL_TEST_PG_BINDIR    PostgreSQL's bin dir (psql, pgbench are taken from there)
#   CORRAL_TEST_PGTMP        scripts/pgtmp.sh, for tests that start a PostgreSQL of their own
#                            (h_pg_start: to restart or stop it without disturbing others)
#   CORRAL_SRCDIR            the source tree (scripts the tests run, e.g. drivers/)
#   CORRAL_BINDIR            where corral-fn, corral-storm, functions/NAME.so (examples)
#                            and test-functions/NAME.so are (default: the repo's bin/)
#   CORRAL_TEST_FN_DB        fn
# Other PG* variables are unset so that libpq, psql and pgbench only use what tests pass.
#
# Why --jobs 2 is safe: every test starts its own corral on its own port, the two
# tests that count PostgreSQL backends (pgbench, server_idle_timeout) use databases no
# other test touches, and the one that changes a role's CONNECTION LIMIT uses role
# limited, which no other test logs in as.  max_connections = 50 leaves room for two
# tests at once (two pools of 20 plus samplers).  A test that exhausts PostgreSQL's
# connection slots on purpose calls h_run_alone() (harness.h), which waits for the other
# running test to end and keeps new ones from starting until it is done.
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
bin=$(realpath "$1")
shift
root=$(realpath "$(dirname "$0")/../..")
# shellcheck source=scripts/pgtmp.sh
. "$root/scripts/pgtmp.sh"   # PG_BIN, PG_RUN_AS; the cluster is DIR/pg

# pgbench -c 500 and 1000 libpq clients at once (test_txpool.c) need more than 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d /tmp/corral-it.XXXXXX)
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	pgtmp_stop "$tmp"
	if [ "${CORRAL_TEST_KEEP:-0}" = 1 ]; then
		echo "run.sh: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "run.sh: $*" >&2
	[ -f "$tmp/postgres.log" ] && tail -20 "$tmp/postgres.log" >&2
	exit 1
}

pgtmp_start "$tmp" --ssl max_connections=50 --hba "host all md5user 127.0.0.1/32 md5" ||
	{ echo "run.sh: PostgreSQL did not start" >&2; exit 1; }   # pgtmp showed its log
port=$PGTMP_PORT
data=$tmp/pg

su_psql() { pgtmp_psql "$tmp" "$@"; }
su_psql >/dev/null <<'EOF' || fail "role/database setup failed"
create role bench login password 'secret';
create database bench owner bench;
create database pgb owner bench;
create database idle owner bench;
set password_encryption = 'md5';
create role md5user login password 'md5pass';
set password_encryption = 'scram-sha-256';
create role limited login password 'secret';
create role drainer login password 'secret' connection limit 2;
create role stubborn login password 'secret';
create role corral_auth login password 'authpass';
create role authq_user login password 'aqpass';
create role authq_rot login password 'rot1';
create role authq_many login password 'manypass';
EOF
[ "$(su_psql -Atc "select left(rolpassword, 3) from pg_authid where rolname = 'md5user'")" = md5 ] ||
	fail "md5user's password is not stored as md5"
"$PG_BIN/pgbench" -i -s 1 -q -h "$data" -p "$port" -U bench pgb >"$tmp/pgbench-init.log" 2>&1 ||
	{ cat "$tmp/pgbench-init.log" >&2; fail "pgbench -i failed"; }
su_psql >/dev/null <<'EOF' || fail "txpool database setup failed"
create database txpool_w1 owner bench template pgb;
create database txpool_w2 owner bench template pgb;
create database txpool_ext owner bench template pgb;
create database prep_bench owner bench template pgb;
create database fn owner bench;
create database node_named owner bench;
EOF
# pg_shadow is a view in each database's pg_catalog: the grant is per database.
su_psql >/dev/null <<'EOF' || fail "auth_query grant failed"
\c bench
grant select on pg_shadow to corral_auth;
\c pgb
grant select on pg_shadow to corral_auth;
EOF
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U bench -d fn \
	-f "$root/functions/examples/schema.sql" >"$tmp/schema.log" 2>&1 ||
	{ cat "$tmp/schema.log" >&2; fail "example schema failed"; }

pgtmp_unset_pgenv

mkdir -p "$tmp/t"
CORRAL_BIN=$(realpath -m "${CORRAL_BIN:-$root/bin/corral}")
export CORRAL_BIN
export CORRAL_TEST_PGHOST=127.0.0.1
export CORRAL_TEST_PGPORT=$port
export CORRAL_TEST_PGSOCKDIR=$data
export CORRAL_TEST_DIR=$tmp/t
export CORRAL_TEST_USER=bench CORRAL_TEST_PASSWORD=secret
export CORRAL_TEST_MD5_USER=md5user CORRAL_TEST_MD5_PASSWORD=md5pass
export CORRAL_TEST_DB=bench CORRAL_TEST_PGBENCH_DB=pgb CORRAL_TEST_IDLE_DB=idle
export CORRAL_TEST_LIMIT_USER=limited
export CORRAL_TEST_PG_BINDIR=$PG_BIN
export CORRAL_TEST_PGTMP=$root/scripts/pgtmp.sh
CORRAL_BINDIR=$(realpath -m "${CORRAL_BINDIR:-$root/bin}")
export CORRAL_BINDIR
export CORRAL_SRCDIR=$root
export CORRAL_TEST_FN_DB=fn

rc=0
# 120 s: the cron trigger's test waits for the next minute (up to 60 s) after its setup.
"$bin" --jobs 2 --timeout 120 "$@" || rc=$?
exit $rc
