#!/usr/bin/env bash
# Runs bin/corral under valgrind for the integration suite (make valgrind): any
# memory error or definite leak makes corral exit 99, which fails that test's stop.
here=$(cd "$(dirname "$0")/.." && pwd)
exec valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=99 "$here/bin/corral" "$@"
