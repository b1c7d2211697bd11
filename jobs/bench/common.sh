# Sourced by the benchmark scripts (run from the repository root): the binary, the benchmark
# config, the MPI environment of a workstation, and a results file removed on exit.
SPROUT=${SPROUT:-build/sprout}
CFG=${CFG:-configs/bench.yaml}
# shellcheck source=../workstation/env.sh
. jobs/workstation/env.sh
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
# bench_data DIR: a few hundred KB of text as byte tokens in DIR/data/{train,val}.bin
bench_data() {
  /usr/bin/python3 - "$1/text.txt" <<'PY'
import random, sys
random.seed(1)
w = "the model grows a sprout layer by layer while tokens and weights check every point".split()
with open(sys.argv[1], "w") as f:
    for _ in range(6000):
        f.write(" ".join(random.choice(w) for _ in range(12)) + "\n")
PY
  "$SPROUT" prepare text "$1/text.txt" --out "$1/data" >/dev/null 2>&1
}
