#!/usr/bin/env bash
# mpirun wrapper for a workstation: N ranks (default: one per core), root allowed,
# oversubscription allowed, ranks bound to cores when they fit, and --resume auto (a run that
# was stopped continues from its newest good checkpoint; `kill -USR1 <mpirun pid>` makes every
# rank checkpoint at the next step and exit with status 3).
# sprout chooses its MPI-IO layer itself before MPI_Init (docs/checkpoints.md); an OMPI_MCA_io or
# OMPI_MCA_sharedfp exported here reaches every rank and is kept.
# Usage: jobs/workstation/train.sh [-n N] CONFIG.yaml [sprout train options...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"
N=$(nproc)
if [ "${1:-}" = "-n" ]; then N=$2; shift 2; fi
BIND="--bind-to core"
[ "$N" -le "$(nproc)" ] || BIND="--bind-to none"
SPROUT=${SPROUT:-$HERE/../../build/sprout}
# shellcheck disable=SC2086
RESUME="--resume auto"
for a in "$@"; do [ "$a" = "--resume" ] && RESUME=""; done
# shellcheck disable=SC2086
exec mpirun -n "$N" $BIND "$SPROUT" train "$@" $RESUME
