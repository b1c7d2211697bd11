#!/usr/bin/env bash
# mpirun wrapper for a workstation: N ranks (default: one per core), root allowed,
# oversubscription allowed, ranks bound to cores when they fit, and --resume auto (a run that
# was stopped continues from its newest good checkpoint).
# Stopping: SIGTERM, SIGINT (Ctrl-C), SIGHUP or SIGUSR1 to this script makes every rank
# checkpoint at the next step and exit with status 3, and this script exits 3 too.
# sprout chooses its MPI-IO layer itself before MPI_Init (docs/checkpoints.md); an OMPI_MCA_io or
# OMPI_MCA_sharedfp exported here reaches every rank and is kept.
# Usage: jobs/workstation/train.sh [-n N] CONFIG.yaml [sprout train options...]
set -euo pipefail
# a stop signal from the first moment on: see below
stop=""
trap 'stop=1' TERM INT HUP USR1
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"
N=$(nproc)
if [ "${1:-}" = "-n" ]; then N=$2; shift 2; fi
BIND="--bind-to core"
[ "$N" -le "$(nproc)" ] || BIND="--bind-to none"
SPROUT=${SPROUT:-$HERE/../../build/sprout}
RESUME="--resume auto"
for a in "$@"; do [ "$a" = "--resume" ] && RESUME=""; done
# Open MPI's mpirun answers SIGTERM and SIGINT by killing the ranks 2 s later and exiting 1,
# whatever they were doing, while it forwards SIGUSR1 to them. So mpirun runs in a session of
# its own, where a terminal's Ctrl-C does not reach it (a background job of a script is not a
# group leader: setsid needs no fork and $! is mpirun), and every stop signal sent here becomes
# a SIGUSR1 for mpirun (a stop before mpirun starts: nothing has run, exit 3). Training reads no
# input: stdin stays with the terminal.
[ -z "$stop" ] || exit 3
# shellcheck disable=SC2086
setsid mpirun -n "$N" $BIND "$SPROUT" train "$@" $RESUME </dev/null &
pid=$!
# A trapped signal interrupts wait: wait again until mpirun has exited. After a stop request,
# SIGUSR1 goes to mpirun 1 s later and again every 5 s until it exits: one that reaches mpirun
# before it has started the ranks is lost, and one in its first moments, before its handler,
# would kill it (the ranks act on the first that reaches them and ignore the others).
n=0
while kill -0 "$pid" 2>/dev/null; do
  if [ -z "$stop" ]; then wait "$pid" || true; continue; fi
  sleep 1
  [ $((n % 5)) != 0 ] || kill -USR1 "$pid" 2>/dev/null || true
  n=$((n + 1))
done
rc=0
wait "$pid" || rc=$?
exit "$rc"
