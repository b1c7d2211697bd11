#!/usr/bin/env bash
# Pipeline bubble and data-parallel scaling on this machine (2 cores: pp = 2 and dp = 2 are the
# grids that fit without oversubscription; larger grids are projected in docs/performance.md).
#  - bubble: time per step on pp = 2 (1 thread per rank) against the ideal single-stage time / 2,
#    for m = 4, 8, 16 micro-batches per step, beside the 1F1B formula (pp-1)/(m+pp-1); also
#    against the single-stage time measured while the other core is busy too (2 replicas);
#  - dp scaling: tok/s on 2 replicas against twice the tok/s of 1, at the same global batch.
# usage: jobs/bench/pipeline.sh [STEPS per run (default 3)] [MICRO_BATCH (default 2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-3}
MB=${2:-2}
# shellcheck source=common.sh
. jobs/bench/common.sh
bench() { # label np args...
  local label=$1 np=$2; shift 2
  mpirun -n "$np" --bind-to core "$SPROUT" bench "$CFG" --steps "$STEPS" --set run.threads=1 "$@" \
    2>/dev/null | sed "s/^{/{\"label\":\"$label\",/" >>"$OUT"
}
for m in 4 8 16; do
  gb=$((m * MB))
  echo "m = $m" >&2
  bench "pp1_m$m" 1 --set train.global_batch=$gb --set train.micro_batch=$MB --set parallel.pipeline=1
  bench "pp2_m$m" 2 --set train.global_batch=$gb --set train.micro_batch=$MB --set parallel.pipeline=2
  # the same per-replica work with both cores busy: the single-stage time under the node load
  # that a 2-stage pipeline also runs under
  bench "dp2_m$m" 2 --set train.global_batch=$((2 * gb)) --set train.micro_batch=$MB --set parallel.pipeline=1
done
echo "dp" >&2
bench dp1 1 --set train.global_batch=16 --set train.micro_batch=8 --set parallel.pipeline=1
bench dp2 2 --set train.global_batch=16 --set train.micro_batch=8 --set parallel.pipeline=1
/usr/bin/python3 - "$OUT" "$MB" <<'PY'
import json, sys
r = {j["label"]: j for j in map(json.loads, open(sys.argv[1]))}
mb = int(sys.argv[2])
print(f"pipeline bubble, pp = 2, micro-batch {mb}, 1 thread per rank (median ms per step)")
print("  ideal = 1-stage time / 2; 'loaded' uses the 1-stage time measured with both cores busy")
print(f"{'m':>4}{'1 stage ms':>12}{'2 stages ms':>13}{'ideal ms':>10}{'measured':>10}"
      f"{'loaded':>9}{'formula':>9}")
for m in (4, 8, 16):
    t1, t2 = r[f"pp1_m{m}"]["ms_per_step"], r[f"pp2_m{m}"]["ms_per_step"]
    t1l = r[f"dp2_m{m}"]["ms_per_step"]
    ideal = t1 / 2
    print(f"{m:>4}{t1:>12.0f}{t2:>13.0f}{ideal:>10.0f}{1 - ideal / t2:>10.1%}"
          f"{1 - t1l / 2 / t2:>9.1%}{1 / (m + 1):>9.1%}")
e = r["dp2"]["tok_per_s"] / (2 * r["dp1"]["tok_per_s"])
print(f"data parallel: dp=1 {r['dp1']['tok_per_s']:.0f} tok/s, dp=2 {r['dp2']['tok_per_s']:.0f} tok/s, "
      f"scaling efficiency {e:.1%}")
PY
