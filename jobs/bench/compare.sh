#!/usr/bin/env bash
# sprout vs PyTorch on the same model and batch, interleaved so that both see the same machine
# load, in fp32 and bf16, at 1 and 2 threads, plus sprout on 2 data-parallel ranks with one thread
# each, and the matrix-product peaks on the model's shapes measured in the same run (OpenBLAS
# sgemm; oneDNN bf16 matmul). Prints medians and the sprout/PyTorch ratios. Timings are never
# asserted anywhere.
#
# Three model shapes: configs/bench.yaml (d 384, 6 blocks: every setting below),
# configs/bench-gpt2-small.yaml (d 768, 12 heads, 12 blocks: 1 thread and 2 ranks of sprout, 1
# and 2 threads of PyTorch, both precisions), to show how the cost grows with the model, and
# configs/bench-llama.yaml (bench's size with the LLaMA block, beside PyTorch's LlamaForCausalLM
# of tests/torch/llama_ref.py; the same settings as the GPT-2-small shape).
#
# At 2 threads PyTorch fp32 runs in every threading setting worth trying (its OpenMP pool and the
# OpenBLAS pool sized independently, libgomp's workers passive or spinning) and sprout is
# compared with the best of them; PyTorch bf16 (torch.autocast) runs its matmuls in oneDNN on
# the OpenMP pool, so only that pool's two wait policies are tried.
#
# usage: jobs/bench/compare.sh [ROUNDS (default 3)] [STEPS per run (default 6)]
# env:   SPROUT (binary, default build/sprout), KEEP_OPENBLAS_ENV=1 to keep OPENBLAS_CORETYPE,
#        SHAPES (default "bench bench-gpt2-small bench-llama": names of configs/*.yaml), BIG_STEPS
#        (timed steps per run of bench-gpt2-small; default 3: a GPT-2-small step takes ~10 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
STEPS=${2:-6}
SHAPES=${SHAPES:-"bench bench-gpt2-small bench-llama"}
# shellcheck source=common.sh
. jobs/bench/common.sh
# Some machines force an older OpenBLAS kernel through these; both programs must run the same
# core, and the auto-detected one is the honest peak (see docs/performance.md)
if [ "${KEEP_OPENBLAS_ENV:-0}" != 1 ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS

# the PyTorch model of a config: --vocab .. --n-layer (and --block, --d-ff) from its model section
torch_shape() {
  /usr/bin/python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = dict(re.findall(r"^\s+(vocab|seq_len|d_model|n_head|n_layer|d_ff):\s*(\d+)", t, re.M))
m.update(re.findall(r"^\s+(block):\s*(\w+)", t, re.M))
print(" ".join(f"--{k.replace('_', '-')} {v}" for k, v in m.items()))
PY
}
row() { # shape cfg-label: prefixes every JSON line of stdin
  sed "s/^{/{\"shape\":\"$1\",\"cfg\":\"$2\",/" >>"$OUT"
}

for r in $(seq "$ROUNDS"); do
  for shape in $SHAPES; do
    cfg=configs/$shape.yaml
    read -r -a tshape <<<"$(torch_shape "$cfg")"
    full=0 steps=$STEPS
    [ "$shape" = bench ] && full=1
    [ "$shape" = bench-gpt2-small ] && steps=${BIG_STEPS:-3}
    for prec in fp32 bf16; do
      for t in 1 2; do
        if [ "$t" = 2 ] && [ "$full" = 0 ]; then continue; fi
        echo "round $r/$ROUNDS, $shape, $prec, $t thread(s)" >&2
        "$SPROUT" bench "$cfg" --steps "$steps" --set run.threads="$t" --set run.precision="$prec" \
          --sgemm 2>/dev/null | sed "s/^{/{\"threads\":$t,/" | row "$shape" "sprout-$prec-$t"
        if [ "$t" = 1 ]; then
          /usr/bin/python3 jobs/bench/torch_gpt.py --threads 1 --steps "$steps" --precision "$prec" \
            "${tshape[@]}" | row "$shape" "pytorch-$prec-1"
          continue
        fi
        if [ "$prec" = fp32 ]; then settings=("2 2 passive" "2 2 active" "1 2 passive" "2 1 passive")
        else settings=("2 1 passive" "2 1 active"); fi
        for v in "${settings[@]}"; do
          read -r omp blas wait <<<"$v"
          /usr/bin/python3 jobs/bench/torch_gpt.py --threads "$omp" --blas-threads "$blas" \
            --omp-wait "$wait" --steps "$steps" --precision "$prec" "${tshape[@]}" |
            row "$shape" "pytorch-$prec-2 omp$omp-blas$blas-$wait"
        done
      done
      # the same global batch of 8 sequences, split 4 + 4 over the two replicas
      mpirun -n 2 --bind-to core "$SPROUT" bench "$cfg" --steps "$steps" --set run.threads=1 \
        --set train.micro_batch=4 --set run.precision="$prec" 2>/dev/null |
        row "$shape" "sprout-$prec-2ranks"
    done
  done
done

/usr/bin/python3 - "$OUT" $SHAPES <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
cores = sorted({r.get("openblas_core", "?") for r in rows if "openblas_core" in r})
isas = sorted({r["gemm_isa"] for r in rows if r.get("gemm_isa", "none") != "none"})
print(f"OpenBLAS core(s): {', '.join(cores)}; oneDNN bf16 ISA: {', '.join(isas) or 'none'}; "
      f"{len(rows)} runs, medians")
for shape in sys.argv[2:]:
    R = [r for r in rows if r.get("shape") == shape]
    if not R:
        continue
    def med(cfg, key):
        v = [r[key] for r in R if r.get("cfg") == cfg and r.get("impl") in ("sprout", "pytorch") and key in r]
        return statistics.median(v) if v else float("nan")
    def peak(impl, t):
        v = [r["gflops"] for r in R if r.get("impl") == impl and r.get("threads") == t]
        return statistics.median(v) if v else float("nan")
    s = [r for r in R if r.get("impl") == "sprout"]
    fpt = statistics.median(r["gflops"] * 1e9 / r["tok_per_s"] for r in s)
    print(f"\n{shape}: FLOPs/token {fpt/1e6:.2f} M")
    print(f"{'setting':<34}{'tok/s':>9}{'GFLOP/s':>9}{'% peak':>8}{'RSS MiB':>9}{'vs torch':>10}")
    for prec, pk in (("fp32", "sgemm"), ("bf16", "bf16gemm")):
        torch2 = sorted({r["cfg"] for r in R if r.get("cfg", "").startswith(f"pytorch-{prec}-2 ")})
        best2 = max(torch2, key=lambda c: med(c, "tok_per_s")) if torch2 else f"pytorch-{prec}-1"
        ref_of = {1: f"pytorch-{prec}-1", 2: best2 if torch2 else None}
        order = [(f"sprout-{prec}-1", 1), (f"pytorch-{prec}-1", 1), (f"sprout-{prec}-2", 2)]
        order += [(c, 2) for c in torch2] + [(f"sprout-{prec}-2ranks", 2)]
        for cfg, t in order:
            tps = med(cfg, "tok_per_s")
            if tps != tps:
                continue
            g = tps * fpt / 1e9
            ref = med(ref_of[t], "tok_per_s") if ref_of[t] else float("nan")
            ratio = (f"{tps/ref:.2f}x" if ref == ref else "") if cfg.startswith("sprout") else \
                ("best" if cfg == best2 and torch2 else "")
            pct = 100 * g / peak(pk, t)
            pcts = f"{pct:>7.0f}%" if pct == pct else f"{'—':>8}"  # no peak measured at t threads
            print(f"{cfg:<34}{tps:>9.0f}{g:>9.1f}{pcts}{med(cfg, 'peak_rss_mib'):>9.0f}{ratio:>10}")
        print(f"{pk} peak on the model's shapes: {peak(pk, 1):.1f} GFLOP/s (1 thread), "
              f"{peak(pk, 2):.1f} GFLOP/s (2 threads)")
    b, f = med("sprout-bf16-1", "tok_per_s"), med("sprout-fp32-1", "tok_per_s")
    print(f"sprout bf16 / fp32 at 1 thread: {b / f:.2f}x")
EOF
