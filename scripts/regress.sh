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
# pg_regress runs as the superuser "postgres" over TCP; results, regression.diffs and
# corral's log go to build/regress/<mode>/.  Ports 20000-31999 on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${REGRESS_DIR:-$ROOT/build/regress}
CORRAL=${CORRAL_BIN:-$ROOT/bin/corral}
MODES=${REGRESS_MODES:-direct session transaction}
SCHEDULE=${REGRESS_SCHEDULE:-parallel}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGXS_DIR=/usr/lib/postgresql/15/lib/pgxs
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
. "$ROOT/scripts/pgtmp.sh"
pgtmp_unset_pgenv

say() { echo "regress: $*" >&2; }
die() { say "$*"; exit 1; }

# ---------------------------------------------------------------- packages, sources

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep 'install ok installed' >/dev/null; }

PGVER=$(pkg_version postgresql-15)
[ -n "$PGVER" ] && installed postgresql-15 || die "postgresql-15 is not installed (make deps)"

need=()
[ "$(pkg_version postgresql-server-dev-15)" = "$PGVER" ] && installed postgresql-server-dev-15 ||
	need+=("postgresql-server-dev-15=$PGVER")
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
	printf 'MODULES = regress\nPG_CONFIG = %s/pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n' \
		"$PG_BIN" >"$LIB/build/Makefile"
	make -C "$LIB/build" >"$LIB/build.log" 2>&1 || { cat "$LIB/build.log" >&2; die "regress.so did not build"; }
	cp "$LIB/build/regress.so" "$LIB/"
	for so in refint autoinc; do ln -sf "/usr/lib/postgresql/15/lib/$so.so" "$LIB/$so.so"; done
fi
