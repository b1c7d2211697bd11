#!/usr/bin/env bash
# Pipeline bubble and data-parallel scaling on this machine (2 cores: pp = 2 and dp = 2 are the
# grids that fit without oversubscription; larger grids are projected in docs/performance.md).
#  - bubble: time per step on pp = 2 (1 thread per rank) against the ideal single-stage time / 2,
#    for m = 4, 8, 16 micro-batches per step, beside the 1F1B formula (pp-1)/(m+pp-1); also
#    against the single-stage time measured while the other core is busy too (2 replicas);
#  - dp scaling: tok/s on 2 replicas against twice the tok/s of 1, at the same global batch;
#  - communication (`sprout bench --comm` on 2 ranks): point-to-point bandwidth of one
#    micro-batch's activations, latency, and the bucketed all-reduce of the model's gradients;
#    then the scaling projection (jobs/bench/project.py) fed with these measured costs.
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
echo "comm" >&2
mpirun -n 2 --bind-to core "$SPROUT" bench "$CFG" --comm --steps 30 --set train.micro_batch=$MB \
  2>/dev/null | sed 's/^{/{"label":"comm",/' >>"$OUT"
/usr/bin/python3 - "$OUT" "$MB" "$CFG" <<'PY'
import json, re, subprocess, sys
r = {j["label"]: j for j in map(json.loads, open(sys.argv[1]))}
mb = int(sys.argv[2])
cfg = open(sys.argv[3]).read()
L = int(re.search(r"n_layer:\s*(\d+)", cfg).group(1))
C = int(re.search(r"d_model:\s*(\d+)", cfg).group(1))
T = int(re.search(r"seq_len:\s*(\d+)", cfg).group(1))
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
c = r["comm"]
print(f"communication, 2 ranks: activations {c['act_bytes']/1e6:.2f} MB at {c['p2p_gbs']:.2f} GB/s one way, "
      f"latency {c['p2p_lat_us']:.2f} us; all-reduce of {c['grad_bytes']/1e6:.1f} MB gradients "
      f"{c['allreduce_ms']:.1f} ms, bus {c['allreduce_bus_gbs']:.2f} GB/s")
# the projection from these measurements: one block's share of the 1-stage time at m = 16
t_block = r["pp1_m16"]["ms_per_step"] / 16 / L
args = ["--t-block-ms", f"{t_block:.2f}", "--t-ends-ms", "0", "--layers", "24", "--d-model", str(C),
        "--seq", str(T), "--micro-batch", str(mb), "--b-p2p", f"{c['p2p_gbs'] * 1e9:.4g}",
        "--b-ar", f"{c['allreduce_bus_gbs'] * 1e9:.4g}", "--lat", f"{c['p2p_lat_us'] * 1e-6:.3g}"]
print("projection: python3 jobs/bench/project.py " + " ".join(args))
sys.stdout.flush()
subprocess.run([sys.executable, "jobs/bench/project.py"] + args, check=True)
PY
