#!/usr/bin/env bash
# deps.sh -- make sure the Debian packages corral builds and tests with are installed.
# As root, missing packages are installed with apt-get; otherwise the exact command is
# printed and the script fails, so `make` stops with something a person can run.
set -euo pipefail

# chromium: the dashboard's test loads it in a real browser (headless).
PKGS="build-essential pkg-config libevent-dev libpq-dev libssl-dev libinih-dev
      libcriterion-dev postgresql-15 postgresql-client-15 pgbouncer valgrind openssl
      python3 python3-asyncpg python3-psycopg chromium"
# node and npm: the node-postgres test (tests/integration/drivers/node, `npm ci`).  Any
# will do, so Debian's are installed only when there are none: NodeSource's nodejs, say,
# brings its own npm and conflicts with Debian's npm package.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # Debian's postgresql and pgbouncer packages start system services where an init
  # system runs; corral's tests and demo start their own throwaway instances instead.
else
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
