#!/usr/bin/env bash
# run.precision: bf16. On a small model: the bf16 run's losses follow the fp32 run's (within 3%
# at every step, the same trend), its checkpoints stay fp32 and restart bit for bit (weights,
# moments, metrics less the wall-clock fields), it runs on pp = 2 x dp = 1 and 1 x 2 within 1e-3
# of one rank; the start-up log names the ISA. Exits 77 (skip) where oneDNN has no native bf16.
# usage: bf16.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 400); do echo "Line $i: a small corpus for precision tests, with words and digits $((i * 7))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 64, d_model: 64, n_head: 4, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 30, global_batch: 8, micro_batch: 4, lr: 3.0e-3, warmup_steps: 4, seed: 5}
eval: {every: 10, batches: 2}
run: {log_every: 1}
checkpoint: {every: 10, keep: 5}
YAML
tr() { # out np pp [args...]
  local out=$1 np=$2 pp=$3; shift 3
  "${MPIEXEC[@]}" -n "$np" "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" \
    --set parallel.pipeline="$pp" "$@" 2>"$T/$out.log"
}
tr probe 1 1 --set run.precision=bf16 --set train.steps=1 --set train.warmup_steps=0
rc=$?
if [ "$rc" = 2 ] && grep -q "run.precision: bf16 needs" "$T/probe.log"; then
  echo "skipped: $(grep 'run.precision' "$T/probe.log")"; exit 77
fi
[ "$rc" = 0 ] || { echo "FAIL: bf16 probe run exited $rc"; cat "$T/probe.log"; exit 1; }
grep -q "precision bf16: matrix products through oneDNN on avx512" "$T/probe.log" ||
  { echo "FAIL: the start-up log does not name the ISA"; cat "$T/probe.log"; exit 1; }
tr F 1 1 || { cat "$T/F.log"; exit 1; }
tr H 1 1 --set run.precision=bf16 || { cat "$T/H.log"; exit 1; }
tr R 1 1 --set run.precision=bf16 --resume "$T/H/ckpt/step_00000010.h5" || { cat "$T/R.log"; exit 1; }
tr P 2 2 --set run.precision=bf16 || { cat "$T/P.log"; exit 1; }
tr D 2 1 --set run.precision=bf16 || { cat "$T/D.log"; exit 1; }
PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T" <<'PY'
import sys, h5py
from runs import Runs
R = Runs(sys.argv[1])
f, h = R.steps("F"), R.steps("H")
worst = max(abs(h[i]["loss"] - f[i]["loss"]) / f[i]["loss"] for i in range(1, 31))
print(f"bf16 vs fp32: worst step loss rel {worst:.2e}; final {h[30]['loss']:.4f} vs {f[30]['loss']:.4f}")
R.check(worst <= 0.03, f"bf16 losses stray from fp32 by {worst:.2e}")
R.check(h[30]["loss"] < 0.8 * h[1]["loss"], "bf16 run does not learn")
R.check(worst > 0, "bf16 losses equal fp32 bit for bit: the bf16 path did not run")
with h5py.File(f"{R.root}/H/ckpt/step_00000030.h5", "r") as c:
    R.check(all(c["model"][k].dtype == "float32" for k in c["model"]), "bf16 checkpoint is not fp32")
a, b = R.raw_steps("H"), R.raw_steps("R")
R.check(all(a[i] == b.get(i) for i in range(11, 31)), "bf16 restart: metrics differ")
R.check(R.same_weights("H", "R"), "bf16 restart: weights/moments differ")
for n in ("P", "D"):
    r = R.rel("H", n, 1, 30)
    print(f"{n}: bf16 on another layout, loss rel {r:.2e}")
    R.check(r <= 1e-3, f"{n}: bf16 on another layout differs by {r:.2e}")
sys.exit(R.finish("bf16"))
PY
