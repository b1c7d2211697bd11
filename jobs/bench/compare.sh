#!/usr/bin/env bash
# sprout vs PyTorch on the same model and batch (configs/bench.yaml), interleaved so that both
# see the same machine load, at 1 and 2 threads, plus sprout on 2 data-parallel ranks with one
# thread each, and the OpenBLAS sgemm rate on the model's matrix shapes measured in the same run.
# Prints medians and the sprout/PyTorch ratio. Timings are never asserted anywhere.
#
# At 2 threads PyTorch runs in every threading setting worth trying (its OpenMP pool and the
# OpenBLAS pool sized independently, libgomp's workers passive or spinning) and sprout is
# compared with the best of them.
#
# usage: jobs/bench/compare.sh [ROUNDS (default 3)] [STEPS per run (default 6)]
# env:   SPROUT (binary, default build/sprout), KEEP_OPENBLAS_ENV=1 to keep OPENBLAS_CORETYPE
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
STEPS=${2:-6}
# shellcheck source=common.sh
. jobs/bench/common.sh
# Some machines force an older OpenBLAS kernel through these; both programs must run the same
# core, and the auto-detected one is the honest peak (see docs/performance.md)
if [ "${KEEP_OPENBLAS_ENV:-0}" != 1 ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS

for r in $(seq "$ROUNDS"); do
  for t in 1 2; do
    echo "round $r/$ROUNDS, $t thread(s)" >&2
    "$SPROUT" bench "$CFG" --steps "$STEPS" --set run.threads="$t" --sgemm 2>/dev/null |
      sed "s/^{/{\"threads\":$t,\"cfg\":\"sprout-$t\",/" >>"$OUT"
    if [ "$t" = 1 ]; then
      /usr/bin/python3 jobs/bench/torch_gpt.py --threads 1 --steps "$STEPS" |
        sed "s/^{/{\"cfg\":\"pytorch-1\",/" >>"$OUT"
      continue
    fi
    for v in "2 2 passive" "2 2 active" "1 2 passive" "2 1 passive"; do
      read -r omp blas wait <<<"$v"
      /usr/bin/python3 jobs/bench/torch_gpt.py --threads "$omp" --blas-threads "$blas" \
        --omp-wait "$wait" --steps "$STEPS" |
        sed "s/^{/{\"cfg\":\"pytorch-2 omp$omp-blas$blas-$wait\",/" >>"$OUT"
    done
  done
  # the same global batch of 8 sequences, split 4 + 4 over the two replicas
  mpirun -n 2 --bind-to core "$SPROUT" bench "$CFG" --steps "$STEPS" --set run.threads=1 \
    --set train.micro_batch=4 \
    2>/dev/null | sed 's/^{/{"cfg":"sprout-2ranks",/' >>"$OUT"
done

/usr/bin/python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
FLOP_PER_TOKEN = None
def med(cfg, key):
    v = [r[key] for r in rows if r.get("cfg") == cfg and r.get("impl") != "sgemm" and key in r]
    return statistics.median(v) if v else float("nan")
def peak(t):
    v = [r["gflops"] for r in rows if r.get("impl") == "sgemm" and r.get("threads") == t]
    return statistics.median(v) if v else float("nan")
# FLOPs per token from sprout's own report (gflops / tok_per_s), the same for both programs
s = [r for r in rows if r.get("impl") == "sprout"]
fpt = statistics.median(r["gflops"] * 1e9 / r["tok_per_s"] for r in s)
cores = sorted({r.get("openblas_core", "?") for r in rows if "openblas_core" in r})
print(f"OpenBLAS core(s): {', '.join(cores)}; FLOPs/token {fpt/1e6:.2f} M; "
      f"{len(rows)} runs, medians")
print(f"{'setting':<30}{'tok/s':>9}{'GFLOP/s':>9}{'% sgemm':>9}{'RSS MiB':>9}{'vs torch':>10}")
# PyTorch at 2 threads: every setting tried, sprout compared with the best median
torch2 = sorted({r["cfg"] for r in rows if r.get("cfg", "").startswith("pytorch-2 ")})
best2 = max(torch2, key=lambda c: med(c, "tok_per_s")) if torch2 else "pytorch-2"
ref_of = {1: "pytorch-1", 2: best2}
order = [("sprout-1", 1), ("pytorch-1", 1), ("sprout-2", 2)]
order += [(c, 2) for c in torch2] + [("sprout-2ranks", 2)]
for cfg, t in order:
    tps = med(cfg, "tok_per_s")
    g = tps * fpt / 1e9
    ref = med(ref_of[t], "tok_per_s")
    ratio = f"{tps/ref:.2f}x" if cfg.startswith("sprout") else ("best" if cfg == best2 else "")
    print(f"{cfg:<30}{tps:>9.0f}{g:>9.1f}{100*g/peak(t):>8.0f}%{med(cfg, 'peak_rss_mib'):>9.0f}"
          f"{ratio:>10}")
print(f"sgemm peak on the model's shapes: {peak(1):.1f} GFLOP/s (1 thread), "
      f"{peak(2):.1f} GFLOP/s (2 threads)")
EOF
