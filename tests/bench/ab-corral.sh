#!/bin/sh
# ab-corral.sh -- compare two corral builds in one interleaved bench run.  Given as
# CORRAL_BIN, it runs $CORRAL_A for the "corral-w1" target and $CORRAL_B, with workers
# forced to 1, for "corral-w2": both columns are then 1-worker corrals, A and B.
#   CORRAL_A=/tmp/corral-old CORRAL_B=bin/corral CORRAL_BIN=$PWD/tests/bench/ab-corral.sh \
#       tests/bench/run.sh --rounds 7 --duration 8 --scenarios select \
#       --targets pgbouncer,corral-w1,corral-w2
: "${CORRAL_A:?set CORRAL_A}" "${CORRAL_B:?set CORRAL_B}"
if [ "$1" = "-c" ] && grep -q '^workers = 2' "$2"; then
	sed -i 's/^workers = 2/workers = 1/' "$2"
	exec "$CORRAL_B" "$@"
fi
exec "$CORRAL_A" "$@"
