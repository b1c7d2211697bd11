#!/usr/bin/env bash
# G_learn on the live job (growth op learn, 2 -> 8 blocks at step 10 of 20, 6 data steps of
# learning, from pp 1 x dp 2 to pp 2 x dp 1):
#  - the same run on pp 1 x dp 4 -> pp 2 x dp 2, and resumed before the event on one rank, gives
#    the same losses within 1e-5; resumed before the event on its own layout, bit for bit; resumed
#    after it on one rank, within 1e-5: the learned slabs are ordinary ones;
#  - with learn_lr 0 the event is G_stack's bit for bit (the held-out loss after it); with
#    learning it is not;
#  - everything but the coefficients frozen (train.lr 1e-30): the globals at the end equal the
#    initial ones bit for bit, and every grown tensor is a mix of the base's (least squares
#    residual <= 1e-6 relative) that is not G_stack's copy; `sprout eval` of the checkpointed
#    slabs on one rank (the run was grown onto pp 2) gives the event's held-out loss after it
#    (1e-5): the materialised model is the operator-parametrised one;
#  - the learning's data steps are counted: tokens and FLOPs of 6 full steps at depth 8.
# usage: learn.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: growing a small model, with words and digits $((i * 13))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cfg() { # file op lr learn_lr
  cat >"$1" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 8}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 20, global_batch: 16, micro_batch: 2, lr: $3, min_lr: 0, warmup_steps: 4, seed: 7}
eval: {every: 10, batches: 2}
run: {log_every: 1}
checkpoint: {every: 5, keep: 10}
growth:
  - {at_step: 10, op: $2, factor: 4, pipeline: 2, learn_steps: 6, learn_lr: $4}
YAML
}
cfg "$T/learn.yaml" learn 3.0e-3 0.01
cfg "$T/lr0.yaml" learn 3.0e-3 0
cfg "$T/stack.yaml" stack 3.0e-3 0.01
# train.lr must be > 0: 1e-30 moves no weight (every update is far below half an ulp)
cfg "$T/frozen.yaml" learn 1.0e-30 0.05
fail=0
tr() { # out config np pp [args...]
  local out=$1 c=$2 np=$3 pp=$4; shift 4
  "${MPIEXEC[@]}" -n "$np" "$SPROUT" train "$T/$c.yaml" --set run.out="$T/$out" \
    --set parallel.pipeline="$pp" "$@" 2>"$T/$out.log" ||
    { echo "FAIL: run $out"; cat "$T/$out.log"; exit 1; }
}
ck() { echo "$T/$1/ckpt/step_$(printf %08d "$2").h5"; }
tr A learn 2 1                                                      # 1x2 -> 2x1
tr B learn 2 1 --resume "$(ck A 5)"                                 # same layouts: bit for bit
tr C learn 1 1 --set 'growth[0].pipeline=1' --resume "$(ck A 5)"    # one rank
tr D learn 4 1                                                      # 1x4 -> 2x2
tr E learn 1 1 --set 'growth[0].pipeline=1' --resume "$(ck A 15)"   # after the event
tr L0 lr0 2 1
tr S stack 2 1
tr F frozen 2 1
grep -q "growth\[0\]: learns its map for 6 data steps" "$T/A.log" &&
  grep -q "growth\[0\]: learned its map over 6 data steps, train loss" "$T/A.log" ||
  { echo "FAIL: A does not describe the learning"; cat "$T/A.log"; fail=1; }
ev=$("$SPROUT" eval "$(ck F 20)" --data "$T/data/val.bin" --windows 4) ||
  { echo "FAIL: eval of F"; fail=1; }
/usr/bin/python3 - "$T" "$(dirname "$0")" "$ev" <<'PY' || fail=1
import sys
sys.path.insert(0, sys.argv[2])
import h5py
import numpy as np
from runs import Runs
T, ev = sys.argv[1], sys.argv[3].split()
R = Runs(T)
check, steps, growth, rel = R.check, R.steps, R.growth, R.rel
g = growth("A")[0]
check((g["step"], g["op"], g["n_layer_before"], g["n_layer_after"], g["pp"], g["dp"],
       g["learn_steps"]) == (10, "learn", 2, 8, 2, 1, 6), f"growth line {g}")
check(np.isfinite(g["learn_loss_first"]) and np.isfinite(g["learn_loss_last"]), "learn losses")
# layouts and restarts
check(R.same_weights("A", "B") and all(R.raw_steps("A")[s] == R.raw_steps("B")[s] for s in range(6, 21)),
      "B (resumed before the event, same layout) differs from A")
for n, lo in (("C", 6), ("D", 1), ("E", 16)):
    e = rel("A", n, lo, 20)
    check(e <= 1e-5, f"{n}: losses differ from A by {e:.3g} relative")
    print(f"{n}: losses within {e:.3g} of A")
# learn_lr 0 is G_stack at the event; learning moves it
l0, s0 = growth("L0")[0], growth("S")[0]
check(l0["loss_after"] == s0["loss_after"], f"learn_lr 0 {l0['loss_after']} vs stack {s0['loss_after']}")
check(abs(g["loss_after"] - s0["loss_after"]) > 1e-4, f"learning did not move the loss: {g['loss_after']}")
# the data steps of the learning are counted: 6 steps of 16 x 32 tokens at depth 8
s = steps("A")
check(s[11]["tokens"] == (11 + 6) * 512 and s[10]["tokens"] == 10 * 512, f"tokens {s[10]['tokens']} {s[11]['tokens']}")
C, V = 32, 256
fpt = 6 * (V * C + 2 * C + 8 * (12 * C * C + 13 * C)) + 12 * 8 * C * 32
step8 = s[12]["flops"] - s[11]["flops"]
check(abs(step8 - fpt * 512) <= 1e-8 * s[12]["flops"], f"one step at depth 8: {step8} vs {fpt * 512}")
learn = s[11]["flops"] - s[10]["flops"] - step8
check(abs(learn - 6 * fpt * 512) <= 1e-8 * s[11]["flops"] * 6, f"the learning's FLOPs {learn} vs {6 * fpt * 512}")
# F: only the coefficients train
def load(p):
    with h5py.File(p, "r") as f:
        return {k: f["model"][k][()] for k in f["model"]}
w0, w1 = load(f"{T}/F/ckpt/step_00000005.h5"), load(f"{T}/F/ckpt/step_00000020.h5")
glob = [k for k in w1 if not k.startswith("transformer.h.")]
# (zero-initialised entries take the 1e-30 updates: they stay below 1e-20)
check(glob and all(np.abs(w0[k] - w1[k]).max() <= 1e-20 for k in glob), "F: the globals changed")
worst, moved = 0.0, 0.0
for k in w1:
    if not k.startswith("transformer.h."):
        continue
    p, suffix = k.split(".", 3)[2], k.split(".", 3)[3]
    A = np.stack([w0[f"transformer.h.{j}.{suffix}"].ravel() for j in range(2)], 1).astype(np.float64)
    y = w1[k].ravel().astype(np.float64)
    c, *_ = np.linalg.lstsq(A, y, rcond=None)
    worst = max(worst, np.abs(A @ c - y).max() / max(np.abs(y).max(), 1e-6))
    moved = max(moved, np.abs(y - A[:, int(p) % 2]).max())
check(worst <= 1e-6, f"F: a grown tensor is not a mix of the base's: residual {worst:.3g}")
check(moved > 1e-4, f"F: the grown blocks are G_stack's copies (moved {moved:.3g})")
fg = growth("F")[0]
el = float(ev[ev.index("val_loss") + 1])
check(abs(el - fg["loss_after"]) <= 1e-5 * abs(el), f"F: eval {el} vs the event's loss after {fg['loss_after']}")
print(f"F: mix residual {worst:.3g}, away from the stack copy by {moved:.3g}; eval {el:.6f} vs {fg['loss_after']:.6f}")
sys.exit(R.finish("learn"))
PY
exit $fail
