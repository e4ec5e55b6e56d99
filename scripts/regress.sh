#!/usr/bin/env bash
# regress.sh -- PostgreSQL 15's own regression suite (`make installcheck`'s schedule)
# run directly, then through corral in session mode, then in transaction mode; prints
# passed / failed for each and the tests that fail through corral but not directly.
#
#   scripts/regress.sh                 (what `make regress` runs)
#   REGRESS_SCHEDULE=serial scripts/regress.sh     serial_schedule instead of parallel
#   REGRESS_MODES="direct transaction" scripts/regress.sh
#   REGRESS_TESTS="boolean char prepare" scripts/regress.sh   these tests only (in order,
#                                      after test_setup, which the others need)
#   REGRESS_OUT=DIR                    results in DIR/<mode>/ (default build/regress/)
#
# What it needs, fetched once into build/regress/ (the cache; delete it to start over):
#   pg_regress       postgresql-server-dev-15, at the installed postgresql-15's version
#   the suite        sql/, expected/, input/, output/, schedules, regress.c: Debian's
#                    source package of that same version (apt-get source; a deb-src entry
#                    is added under /etc/apt/sources.list.d/ when root)
#   regress.so       regress.c built with PGXS against postgresql-server-dev-15
# As root missing packages are installed with apt-get; otherwise the command to run is
# printed and the script fails (as scripts/deps.sh does).
#
# Each run: a throwaway PostgreSQL (scripts/pgtmp.sh; trust for 127.0.0.1, so corral's
# server logins need no password) and corral (auth_type = trust, database lines for
# `regression` and `postgres`, each client logging in to the server as itself).
# pg_regress runs as the superuser "postgres" over TCP; results, regression.diffs,
# pg_regress.log and corral's config and log go to build/regress/<mode>/, the table to
# build/regress/summary.txt.  Ports 20000-31999 on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${REGRESS_DIR:-$ROOT/build/regress}
OUT=${REGRESS_OUT:-$CACHE}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
CORRAL=${CORRAL_BIN:-$ROOT/bin/corral}
MODES=${REGRESS_MODES:-direct session transaction}
SCHEDULE=${REGRESS_SCHEDULE:-parallel}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGXS_DIR=/usr/lib/postgresql/15/lib/pgxs
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
# shellcheck source=scripts/pgtmp.sh
. "$ROOT/scripts/pgtmp.sh"
pgtmp_unset_pgenv

say() { echo "regress: $*" >&2; }
die() { say "$*"; exit 1; }

# ---------------------------------------------------------------- packages, sources

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep 'install ok installed' >/dev/null; }

PGVER=$(pkg_version postgresql-15)
if [ -z "$PGVER" ] || ! installed postgresql-15; then die "postgresql-15 is not installed (make deps)"; fi

need=()
if [ "$(pkg_version postgresql-server-dev-15)" != "$PGVER" ] || ! installed postgresql-server-dev-15; then
	need+=("postgresql-server-dev-15=$PGVER")
fi
installed dpkg-dev || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		say "installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
	else
		say "missing packages: ${need[*]}"
		die "run:  sudo apt-get install -y ${need[*]}"
	fi
fi
[ -x "$PG_REGRESS" ] || die "no $PG_REGRESS (postgresql-server-dev-15)"

UPSTREAM=${PGVER%%-*}          # 15.18-0+deb12u1 -> 15.18
SRC=$CACHE/src/postgresql-15-$UPSTREAM
REGRESS_SRC=$SRC/src/test/regress
mkdir -p "$CACHE/src"
if [ ! -f "$REGRESS_SRC/parallel_schedule" ]; then
	have_src() { apt-cache showsrc postgresql-15 2>/dev/null | grep -x "Version: $PGVER" >/dev/null; }
	if ! have_src; then
		if [ "$(id -u)" = 0 ]; then
			list=/etc/apt/sources.list.d/corral-regress-src.sources
			say "adding deb-src entries ($list)"
			cat >"$list" <<-'SRCS'
				# added by corral's scripts/regress.sh: PostgreSQL's regression suite
				Types: deb-src
				URIs: http://deb.debian.org/debian
				Suites: bookworm bookworm-updates
				Components: main
				Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

				Types: deb-src
				URIs: http://deb.debian.org/debian-security
				Suites: bookworm-security
				Components: main
				Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
			SRCS
			apt-get update -qq
		fi
		have_src || die "no source package postgresql-15=$PGVER; add deb-src lines for bookworm, bookworm-updates and bookworm-security and run apt-get update"
	fi
	say "fetching the source package postgresql-15=$PGVER"
	rm -rf "$CACHE/src" && mkdir -p "$CACHE/src"
	# as root apt-get source warns that it cannot drop privileges to _apt; harmless
	(cd "$CACHE/src" && apt-get source -qq "postgresql-15=$PGVER" >"$CACHE/src/apt-source.log" 2>&1) ||
		{ cat "$CACHE/src/apt-source.log" >&2; die "apt-get source failed"; }
	[ -f "$REGRESS_SRC/parallel_schedule" ] || die "no $REGRESS_SRC/parallel_schedule after apt-get source"
fi

# regress.so (the suite's C functions) built with PGXS; refint.so and autoinc.so (the
# triggers test) are contrib/spi's, which postgresql-15 ships: --dlpath holds all three.
LIB=$CACHE/lib-$UPSTREAM
if [ ! -f "$LIB/regress.so" ]; then
	say "building regress.so"
	rm -rf "$LIB" && mkdir -p "$LIB/build"
	cp "$REGRESS_SRC/regress.c" "$LIB/build/"
	# shellcheck disable=SC2016  # make's $(...), not the shell's
	printf 'MODULES = regress\nPG_CONFIG = %s/pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n' \
		"$PG_BIN" >"$LIB/build/Makefile"
	make -C "$LIB/build" >"$LIB/build.log" 2>&1 || { cat "$LIB/build.log" >&2; die "regress.so did not build"; }
	cp "$LIB/build/regress.so" "$LIB/"
	for so in refint autoinc; do ln -sf "/usr/lib/postgresql/15/lib/$so.so" "$LIB/$so.so"; done
fi

# ---------------------------------------------------------------- runs

[ "$SCHEDULE" = parallel ] || [ "$SCHEDULE" = serial ] || die "REGRESS_SCHEDULE: parallel or serial"
case " $MODES " in *" session "* | *" transaction "*) [ -x "$CORRAL" ] || die "no $CORRAL (make)" ;; esac
for mode in $MODES; do
	case $mode in direct | session | transaction) ;; *) die "unknown mode $mode" ;; esac
done

TMP=$(mktemp -d /tmp/corral-regress.XXXXXX)
chmod 755 "$TMP"
CORRAL_PID=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	[ -z "$CORRAL_PID" ] || { kill -INT "$CORRAL_PID" 2>/dev/null; wait "$CORRAL_PID" 2>/dev/null; } || true
	[ -d "$TMP/pg" ] && pgtmp_stop "$TMP/pg"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The outputs are written by pg_regress and, for COPY ... TO a file in results/, by the
# server: as root both run as PostgreSQL's OS user, which must be able to reach them.
as_owner() { pgtmp_as_owner "$@"; }

# run_mode MODE: a fresh PostgreSQL (and corral), the schedule, the results in $OUT/MODE.
run_mode() {
	local mode=$1 out=$OUT/$1 port args=()
	rm -rf "$out" "$TMP/pg" && mkdir -p "$out" "$TMP/pg"
	[ "$(id -u)" = 0 ] && chown "$PGTMP_RUN_AS" "$out"
	# Trust over TCP: pg_regress logs in as postgres, corral logs in as each client.
	pgtmp_start "$TMP/pg" --hba "host all all 127.0.0.1/32 trust" max_connections=150 ||
		die "$mode: PostgreSQL did not start"
	port=$PGTMP_PORT
	if [ "$mode" != direct ]; then
		port=$(pgtmp_free_port)
		cat >"$out/corral.ini" <<-INI
			; written by scripts/regress.sh
			[corral]
			listen_addr = 127.0.0.1
			listen_port = $port
			auth_type = trust
			pool_mode = $mode
			default_pool_size = 40
			workers = 2
			log_level = warn

			[databases]
			regression = host=127.0.0.1 port=$PGTMP_PORT dbname=regression
			postgres = host=127.0.0.1 port=$PGTMP_PORT dbname=postgres
		INI
		"$CORRAL" -c "$out/corral.ini" >"$out/corral.log" 2>&1 &
		CORRAL_PID=$!
		for _ in $(seq 100); do
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
			kill -0 "$CORRAL_PID" 2>/dev/null || { cat "$out/corral.log" >&2; die "$mode: corral did not start"; }
			sleep 0.1
		done
	fi
	args=(--inputdir="$REGRESS_SRC" --outputdir="$out" --bindir="$PG_BIN" --dlpath="$LIB"
		--host=127.0.0.1 --port="$port" --user=postgres --dbname=regression)
	if [ -n "${REGRESS_TESTS:-}" ]; then
		# shellcheck disable=SC2206
		args+=(test_setup $REGRESS_TESTS)
	elif [ "$SCHEDULE" = serial ]; then
		args+=(--schedule="$REGRESS_SRC/parallel_schedule" --max-connections=1) # make installcheck
	else
		args+=(--schedule="$REGRESS_SRC/parallel_schedule" --max-concurrent-tests=20) # installcheck-parallel
	fi
	say "$mode: pg_regress on port $port (log: $out/pg_regress.log)"
	local t0=$SECONDS
	(cd "$out" && as_owner env PGAPPNAME= "$PG_REGRESS" "${args[@]}") >"$out/pg_regress.log" 2>&1 || true
	echo $((SECONDS - t0)) >"$out/seconds"
	# One line per test: NAME ok|FAILED|ignored.
	sed -nE 's/^(test| ) *([A-Za-z0-9_.-]+) +\.\.\. (ok|FAILED|failed \(ignored\)).*/\2 \3/p' \
		"$out/pg_regress.log" | sed 's/failed (ignored)/ignored/' >"$out/status"
	if [ "$mode" != direct ]; then
		kill -INT "$CORRAL_PID" 2>/dev/null || true
		wait "$CORRAL_PID" 2>/dev/null || true
		CORRAL_PID=
	fi
	pgtmp_stop "$TMP/pg"
	[ -s "$out/status" ] || { tail -20 "$out/pg_regress.log" >&2; die "$mode: pg_regress ran no test"; }
}

for mode in $MODES; do run_mode "$mode"; done

# ---------------------------------------------------------------- report

count() { grep -c " $2\$" "$OUT/$1/status" || true; }
failed() { awk '$2 != "ok" { print $1 }' "$OUT/$1/status" | sort; }
report() {
	echo
	printf '%-12s %7s %7s %6s  %s\n' mode passed failed secs 'fail here but not directly (+) / pass here but not directly (-)'
	for mode in $MODES; do
		diffs=
		if [ "$mode" != direct ] && [ -f "$OUT/direct/status" ]; then
			diffs=$(comm -23 <(failed "$mode") <(failed direct) | sed 's/^/+/' | tr '\n' ' ')
			diffs+=$(comm -13 <(failed "$mode") <(failed direct) | sed 's/^/-/' | tr '\n' ' ')
		fi
		printf '%-12s %7s %7s %6s  %s\n' "$mode" "$(count "$mode" ok)" \
			"$(($(count "$mode" FAILED) + $(count "$mode" ignored)))" "$(cat "$OUT/$mode/seconds")" "$diffs"
	done
	echo
	for mode in $MODES; do
		if [ -s "$OUT/$mode/regression.diffs" ]; then
			echo "$mode: $OUT/$mode/regression.diffs"
		else
			echo "$mode: no differences"
		fi
	done
}
report | tee "$OUT/summary.txt"
