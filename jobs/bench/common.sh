# Sourced by the benchmark scripts (run from the repository root): the binary, the benchmark
# config, the MPI environment of a workstation, and a results file removed on exit.
SPROUT=${SPROUT:-build/sprout}
CFG=${CFG:-configs/bench.yaml}
# shellcheck source=../workstation/env.sh
. jobs/workstation/env.sh
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
