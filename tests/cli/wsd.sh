#!/usr/bin/env bash
# WSD schedule and cooldown branching: a cooldown branched from a stable-phase checkpoint
# (--resume with a new train.steps and train.decay_start) equals, bit for bit, the run configured
# with that end from the start (weights, moments, and the metrics lines less the wall-clock
# fields); the logged learning rates follow the schedule.
# usage: wsd.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: a small corpus for schedule tests, with words and digits $((i * 7))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 2}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 40, global_batch: 4, micro_batch: 2, lr: 3.0e-3, min_lr: 0, warmup_steps: 4,
        seed: 7, schedule: wsd}
eval: {every: 10, batches: 2}
run: {log_every: 1}
checkpoint: {every: 10, keep: 10}
YAML
tr() { # out np [args...]
  local out=$1 np=$2; shift 2
  "${MPIEXEC[@]}" -n "$np" "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" "$@" 2>"$T/$out.log" ||
    { echo "FAIL: run $out"; cat "$T/$out.log"; exit 1; }
}
tr full 1 --set train.decay_start=30
tr stable 1 --set train.steps=30 --set train.decay_fraction=0
tr branch 1 --set train.decay_start=30 --resume "$T/stable/ckpt/step_00000030.h5"
tr branch2 2 --set train.decay_start=30 --set parallel.pipeline=2 \
  --resume "$T/stable/ckpt/step_00000030.h5"
PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T" <<'PY'
import sys
from runs import Runs
R = Runs(sys.argv[1])
f, b = R.raw_steps("full"), R.raw_steps("branch")
tail = [s for s in f if s > 30]
R.check(len(tail) == 10 and all(f[s] == b.get(s) for s in tail), "branched cooldown's metrics differ from the full run's")
R.check(R.same_weights("full", "branch"), "branched cooldown's final weights/moments differ")
R.check(R.rel("full", "branch2", 31, 40) <= 1e-5, "branch on pp=2 differs by more than 1e-5")
# logged lrs are float32 and the step field 1-based: step 31 is the first decay step, r = 1/10
lr = {s: r["lr"] for s, r in R.steps("full").items()}
near = lambda a, b: abs(a - b) <= 1e-6 * b
R.check(near(lr[10], 3e-3) and near(lr[30], 3e-3), f"stable lr {lr[10]} {lr[30]}")
R.check(near(lr[31], 3e-3 * 0.9) and near(lr[35], 3e-3 * 0.5) and lr[40] == 0.0,
        f"decay lrs {lr[31]} {lr[35]} {lr[40]}")
sys.exit(R.finish("wsd"))
PY
