#!/usr/bin/env bash
# The width operators live on a block kind other than gpt2 (SP_BLOCK, read by tests/cli/kind.sh:
# llama or bert), whose weights are nn.Linear's [out, in]:
#  - widen_direct (noise 0.05) doubles d_model, n_head and d_ff (16, 1, 64 -> the configured 32,
#    2, 128 on llama; d_ff 4 d on bert) before step 6 of 12 on 2 ranks
#    while the grid goes from pp 1 x dp 2 to pp 2 x dp 1: the held-out loss just before and just
#    after the event agree within 1e-5 relative (function-preserving up to fp32 rounding); on
#    llama the same with the tied head (model.tie_head: true);
#  - resumed on 2 ranks from the checkpoint after the event (step 8) and from the one before it
#    (step 5: the event runs again) the run is bit-identical to the uninterrupted one: every
#    metrics line after the checkpoint, the final weights and both moments;
#  - decoalesce_width then coalesce_width at the same step, the pair going through pp 2, give
#    the held-out loss before the pair back bit for bit;
#  - widen_random (appended channels, faded in over 4 steps by the masked norms and output masks)
#    through the same pipeline change keeps the held-out loss at the event (mask_c = 0, within
#    1e-5), and a restart inside the fade-in (step 7) continues bit for bit.
# usage: width_kinds.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
. "$(dirname "$0")/kind.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: widening a small model of another kind, digits $((i * 11))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cfg() { # file, then the growth list's lines
  local f=$1; shift
  cat >"$f" <<YAML
model: {vocab: $VOCAB, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4, block: $KIND}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {objective: $OBJECTIVE, steps: 12, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 2, seed: 5}
eval: {every: 6, batches: 2}
run: {log_every: 1}
checkpoint: {every: 1, keep: 20}
growth:
YAML
  printf '  - %s\n' "$@" >>"$f"
}
cfg "$T/direct.yaml" "{at_step: 6, op: widen_direct, factor: 2, noise: 0.05, pipeline: 2}"
cfg "$T/random.yaml" "{at_step: 6, op: widen_random, factor: 2, ramp_steps: 4, pipeline: 2}"
cfg "$T/pair.yaml" "{at_step: 6, op: decoalesce_width, factor: 2, pipeline: 2}" \
  "{at_step: 6, op: coalesce_width, factor: 2, pipeline: 1}"
fail=0
tr() { # out config [args...]
  local out=$1 c=$2; shift 2
  "${MPIEXEC[@]}" -n 2 "$SPROUT" train "$T/$c.yaml" --set run.out="$T/$out" \
    --set parallel.pipeline=1 "$@" 2>"$T/$out.log" || { echo "FAIL: run $out"; cat "$T/$out.log"; exit 1; }
}
ck() { echo "$T/$1/ckpt/step_$(printf %08d "$2").h5"; }
tr A direct
tr B direct --resume "$(ck A 8)"  # after the event, on the grown model and its pp 2 grid
tr C direct --resume "$(ck A 5)"  # before it: the event runs again
tr P pair
tr R random
tr RR random --resume "$(ck R 7)"  # inside the fade-in
TIED=()
if [ "$KIND" = llama ]; then
  tr AT direct --set model.tie_head=true
  TIED=(AT)
fi
grep -q "growth\[0\] before step 6: widen_direct x2, 4 -> 4 blocks, d_model 16 -> 32, pp 1 x dp 2 -> pp 2 x dp 1" "$T/A.log" ||
  { echo "FAIL: A does not log the width event and the new grid"; cat "$T/A.log"; fail=1; }

/usr/bin/python3 - "$T" "$(dirname "$0")" "$KIND" "${TIED[@]}" <<'PY' || fail=1
import sys
sys.path.insert(0, sys.argv[2])
from runs import Runs
R = Runs(sys.argv[1])
kind, check = sys.argv[3], R.check
for n in ["A", "R"] + sys.argv[4:]:
    g = R.growth(n)[0]
    dl = abs(g["loss_after"] - g["loss_before"]) / g["loss_before"]
    print(f"{kind} {n}: {g['op']} d_model {g['d_model_before']} -> {g['d_model_after']}, pp "
          f"{g['pp']}: held-out loss {g['loss_before']:.7f} -> {g['loss_after']:.7f} (rel {dl:.1e})")
    check(dl <= 1e-5, f"{n}: {g['op']} on {kind} is not function-preserving ({dl:.2e})")
    check(g["d_model_before"] == 16 and g["d_model_after"] == 32 and g["pp"] == 2, f"{n}: the event did not widen onto pp 2")
for n, ref, first in (("B", "A", 9), ("C", "A", 6), ("RR", "R", 8)):
    a, r = R.raw_steps(ref), R.raw_steps(n)
    check(sorted(r) == list(range(first, 13)) and all(r[i] == a[i] for i in r),
          f"{n}: resumed run differs from the uninterrupted one")
    check(R.same_weights(ref, n), f"{n}: final weights or moments differ")
g = R.growth("P")
check(len(g) == 2 and g[1]["loss_after"] == g[0]["loss_before"] and g[0]["pp"] == 2,
      f"P: the round trip through pp 2 changed the held-out loss ({g})")
print(f"{kind} P: {g[0]['op']} then {g[1]['op']}: {g[0]['loss_before']:.7f} -> "
      f"{g[0]['loss_after']:.7f} -> {g[1]['loss_after']:.7f}")
sys.exit(R.finish("width_kinds"))
PY
[ "$fail" = 0 ]
