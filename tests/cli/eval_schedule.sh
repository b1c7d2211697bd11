#!/usr/bin/env bash
# `sprout eval` of a grown checkpoint evaluates the model the run trained, whatever batch it
# evaluates with: a growth event given in tokens (at_tokens) resolves to its step through the
# training's global batch, so its ramps and fade-in masks at the checkpoint's step are the trained
# ones. The run trains on 1 rank with global_batch 16 = 2 micro-batches of 8, where eval batches
# 8 windows: a widen_zero event at 8192 tokens (step 32 of 16 x 16 tokens) with a 4-step fade-in,
# and a G_random event with its 4-step branch ramp, both long over at step 48. The run's last
# evaluation (every window of data.val) and `sprout eval` of its final checkpoint, on 1 and on 2
# ranks, must agree within 1e-5.
# usage: eval_schedule.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
for i in $(seq 400); do echo "Line $i: the grown model is evaluated as it was trained, $((i * 7))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" >/dev/null 2>&1 || { echo "FAIL: prepare"; exit 1; }
for op in widen_zero random; do
  f=$T/$op.yaml
  cat >"$f" <<EOF
model: {vocab: 256, seq_len: 16, d_model: 32, n_head: 4, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 48, global_batch: 16, micro_batch: 8, warmup_steps: 4, lr: 3.0e-3}
eval: {every: 48, windows: 0}
run: {out: $T/run-$op, log_every: 16}
checkpoint: {every: 48}
growth:
  - {at_tokens: 8192, op: $op, factor: 2, ramp_steps: 4}
EOF
  "$SPROUT" train "$f" >"$T/$op.log" 2>&1 || { echo "FAIL: $op: training"; tail -5 "$T/$op.log"; exit 1; }
  grep -q "growth\[0\] before step 32" "$T/$op.log" || { echo "FAIL: $op: the event is not at step 32"; fail=1; }
  want=$(grep -o '"val_loss":[0-9.]*' "$T/run-$op/metrics.jsonl" | tail -1 | cut -d: -f2)
  ck=$T/run-$op/ckpt/step_00000048.h5
  one=$("$SPROUT" eval "$ck" --data "$T/data/val.bin" | awk '{print $2}')
  two=$("${MPIEXEC[@]}" -n 2 "$SPROUT" eval "$ck" --data "$T/data/val.bin" 2>/dev/null | grep '^val_loss' | awk '{print $2}')
  for got in "$one" "$two"; do
    if ! /usr/bin/python3 -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-5 * abs(a))" "$want" "$got"; then
      echo "FAIL: $op: eval gives $got, the run's own evaluation $want"; fail=1
    fi
  done
  echo "$op: run $want, eval 1 rank $one, 2 ranks $two"
done
exit $fail
