#!/usr/bin/env bash
# pgtmp.sh -- a throwaway PostgreSQL cluster in a directory, for the tests and the demo.
#
# Source it for its functions (tests/integration/run.sh and scripts/demo.sh do):
#   . scripts/pgtmp.sh
#   pgtmp_start DIR [--ssl] [--hba LINE]... [NAME=VALUE]...
#                     initdb DIR/pg, start it on 127.0.0.1 and a free port (port=N picks
#                     one), log to DIR/postgres.log; sets PGTMP_PORT.  Returns non-zero
#                     (after printing the log's tail) if PostgreSQL does not come up.
#                     --ssl: ssl = on with a fresh self-signed certificate (CN=localhost,
#                     DIR/pg/server.crt and server.key); clients that do not ask for
#                     TLS are served as before (pg_hba's "host" lines match both).
#   pgtmp_psql DIR [PSQL ARGS]...
#                     psql -X -q -v ON_ERROR_STOP=1 as superuser "postgres", database
#                     postgres, over the unix socket (trust)
#   pgtmp_port DIR    print the running cluster's TCP port
#   pgtmp_stop DIR    stop the cluster if it runs (immediate mode); DIR is left alone
#   pgtmp_free_port   print a TCP port below the ephemeral range (32768+) on which
#                     nothing answers on 127.0.0.1
#   pgtmp_unset_pgenv unset PG* variables, so libpq, psql and pgbench only use what
#                     they are given
#   pgtmp_as_owner CMD...  run CMD as the cluster's OS user (when run as root)
# or run it:  scripts/pgtmp.sh start DIR [...]   (prints the port)
#             scripts/pgtmp.sh stop|port|psql DIR [...]  |  scripts/pgtmp.sh free-port
#
# DIR must exist; as root it is given to the cluster's OS user (PostgreSQL refuses to
# run as root) and made world-readable; the caller removes it.  Layout: DIR/pg data
# directory and unix socket directory (mode 0700), DIR/postgres.log, DIR/initdb.log.
#
# Settings (pgtmp.conf, included from postgresql.conf): listen_addresses = '127.0.0.1',
# unix_socket_directories = DIR/pg, superuser_reserved_connections = 3, shared_buffers
# = 32MB, fsync / synchronous_commit / full_page_writes off, password_encryption =
# 'scram-sha-256', log_min_messages = warning, log_connections = off.  Each NAME=VALUE
# is added after them as "NAME = VALUE" (quote string values: listen_addresses="'*'").
# pg_hba: unix socket = trust for everyone, then each --hba LINE, then TCP from
# 127.0.0.1 = scram-sha-256 for everyone.  openssl makes the --ssl certificate.
#
# Environment: PG_BIN (default /usr/lib/postgresql/15/bin), PG_RUN_AS (default postgres).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGTMP_RUN_AS=${PG_RUN_AS:-postgres}
PGTMP_PORT=

pgtmp_as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u "$PGTMP_RUN_AS" -- "$@"; else "$@"; fi
}

pgtmp_free_port() {
	local port
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "pgtmp: no free port found" >&2
	return 1
}

pgtmp_unset_pgenv() {
	unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGPASSFILE PGDATABASE PGSERVICE \
		PGSERVICEFILE PGOPTIONS PGSSLMODE PGREQUIRESSL PGCONNECT_TIMEOUT PGAPPNAME \
		PGTARGETSESSIONATTRS PGCHANNELBINDING PGGSSENCMODE PGCLIENTENCODING PGTZ PGDATESTYLE
}

pgtmp_start() {
	local dir=$1 data=$1/pg port='' hba=() settings=() arg ssl=0
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--hba) hba+=("$2"); shift 2 ;;
		--ssl) ssl=1; shift ;;
		port=*) port=${1#port=}; shift ;;
		*=*) settings+=("${1%%=*} = ${1#*=}"); shift ;;
		*) echo "pgtmp: bad argument: $1" >&2; return 2 ;;
		esac
	done
	[ -d "$dir" ] || { echo "pgtmp: no directory $dir" >&2; return 2; }
	if [ "$(id -u)" = 0 ]; then chown "$PGTMP_RUN_AS" "$dir" || return 1; fi
	chmod 755 "$dir" || return 1

	pgtmp_as_owner "$PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
		--auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; echo "pgtmp: initdb failed" >&2; return 1; }
	{
		echo "# written by scripts/pgtmp.sh"
		echo "local all all trust"
		for arg in ${hba[@]+"${hba[@]}"}; do echo "$arg"; done
		echo "host  all all 127.0.0.1/32 scram-sha-256"
	} | pgtmp_as_owner tee "$data/pg_hba.conf" >/dev/null || return 1
	echo "include 'pgtmp.conf'" | pgtmp_as_owner tee -a "$data/postgresql.conf" >/dev/null ||
		return 1
	if [ "$ssl" = 1 ]; then
		# PostgreSQL wants the key private to its owner (ssl_cert_file and
		# ssl_key_file default to these names in the data directory).
		pgtmp_as_owner openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
			-keyout "$data/server.key" -out "$data/server.crt" >"$dir/openssl.log" 2>&1 ||
			{ cat "$dir/openssl.log" >&2; echo "pgtmp: openssl req failed" >&2; return 1; }
		pgtmp_as_owner chmod 600 "$data/server.key" || return 1
		settings=("ssl = on" ${settings[@]+"${settings[@]}"})
	fi

	# Retry with another port if the start fails anyway (someone took it meanwhile).
	local fixed=$port
	for _ in 1 2 3 4 5; do
		[ -n "$fixed" ] || port=$(pgtmp_free_port) || return 1
		{
			cat <<-EOF
				listen_addresses = '127.0.0.1'
				port = $port
				unix_socket_directories = '$data'
				superuser_reserved_connections = 3
				shared_buffers = 32MB
				fsync = off
				synchronous_commit = off
				full_page_writes = off
				password_encryption = 'scram-sha-256'
				log_min_messages = warning
				log_connections = off
			EOF
			for arg in ${settings[@]+"${settings[@]}"}; do echo "$arg"; done
		} | pgtmp_as_owner tee "$data/pgtmp.conf" >/dev/null || return 1
		if pgtmp_as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start \
			>/dev/null 2>&1; then
			PGTMP_PORT=$port
			return 0
		fi
		[ -z "$fixed" ] || break
	done
	echo "pgtmp: PostgreSQL did not start" >&2
	[ -f "$dir/postgres.log" ] && tail -20 "$dir/postgres.log" >&2
	return 1
}

pgtmp_port() {
	# Line 4 of postmaster.pid is the port.
	sed -n 4p "$1/pg/postmaster.pid" 2>/dev/null | grep -E '^[0-9]+$' ||
		{ echo "pgtmp: no cluster running in $1" >&2; return 1; }
}

pgtmp_psql() {
	local dir=$1 port
	shift
	port=$(pgtmp_port "$dir") || return 1
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/pg" -p "$port" -U postgres -d postgres "$@"
}

pgtmp_stop() {
	[ -f "$1/pg/postmaster.pid" ] || return 0
	pgtmp_as_owner "$PG_BIN/pg_ctl" -D "$1/pg" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cmd=${1:-}
	shift || true
	case $cmd in
	start) pgtmp_start "$@" && echo "$PGTMP_PORT" ;;
	stop | port | psql) "pgtmp_$cmd" "$@" ;;
	free-port) pgtmp_free_port ;;
	*) sed -n '2,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
fi
