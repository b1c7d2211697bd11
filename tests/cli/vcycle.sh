#!/usr/bin/env bash
# Width/depth coalescing and V-cycles on the live job:
#  - round trips: decoalesce then coalesce (width k = 2, and depth), applied at the same step,
#    give back the model bit for bit (the held-out loss after the pair equals the one before,
#    and training continues exactly like the run without the pair), also across a layout change;
#  - decoalesce_width, widen_direct, widen_zero and widen_random (masked norm, new channels at
#    mask 0) preserve the held-out loss (fp32 rounding, 1e-5); a restart inside the fade-in of
#    widen_random continues bit for bit;
#  - a 3-level V-cycle (width and depth halved per level) gives the same losses on 1, 2 and 4
#    ranks within 1e-5; interrupted mid-cycle (saved level models in the checkpoint) and
#    restarted on another layout it ends at the same loss within 1e-5, on the same layout bit for
#    bit; with alpha = 0 the way up returns exactly the saved top-level model;
#  - inspect verifies the saved level models; bad V-cycle configs exit 2 naming the key.
# usage: vcycle.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Row $i: coalescing and de-coalescing a small model, digits $((i * 17))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
base() { # file
  cat >"$1" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 4, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 30, global_batch: 16, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4, seed: 11}
eval: {every: 10, batches: 2}
run: {log_every: 1}
checkpoint: {every: 5, keep: 10}
YAML
}
base "$T/vc.yaml"
cat >>"$T/vc.yaml" <<YAML
vcycle: {levels: 3, coalesce: both, down_steps: 4, bottom_steps: 10, alpha: 0.5, lr_scale: 2.0}
YAML
sed 's/alpha: 0.5/alpha: 0.0/' "$T/vc.yaml" >"$T/vc0.yaml"
base "$T/plain.yaml"
# width: the moments are reset (their transform is an approximation); depth: they are copied,
# and copies of copies averaged are exact, so training goes on as if nothing happened
for pair in "width decoalesce_width coalesce_width reset" "depth decoalesce_depth coalesce_depth copy"; do
  set -- $pair
  base "$T/rt_$1.yaml"
  cat >>"$T/rt_$1.yaml" <<YAML
growth:
  - {at_step: 6, op: $2, factor: 2, pipeline: 2, optimizer: $4}
  - {at_step: 6, op: $3, factor: 2, pipeline: 1, optimizer: $4}
YAML
done
for op in decoalesce_width widen_direct widen_zero widen_random; do
  base "$T/$op.yaml"
  sed -i 's/d_model: 32, n_head: 4/d_model: 64, n_head: 8/' "$T/$op.yaml"
  cat >>"$T/$op.yaml" <<YAML
growth:
  - {at_step: 6, op: $op, factor: 2, optimizer: reset, noise: 0.05, ramp_steps: 6}
YAML
done
fail=0
tr() { # out config np [args...]
  local out=$1 c=$2 np=$3; shift 3
  "${MPIEXEC[@]}" -n "$np" "$SPROUT" train "$T/$c.yaml" --set run.out="$T/$out" "$@" \
    2>"$T/$out.log" || { echo "FAIL: run $out"; cat "$T/$out.log"; exit 1; }
}
ck() { echo "$T/$1/ckpt/step_$(printf %08d "$2").h5"; }
tr P plain 2
tr RW rt_width 2
tr RD rt_depth 2
tr W1 decoalesce_width 1
tr W2 widen_direct 2
tr W3 widen_zero 2
tr W4 widen_random 1
tr W4R widen_random 1 --resume "$(ck W4 10)"   # inside the fade-in of the new channels
tr V1 vc 1
tr V2 vc 2
tr V4 vc 4
tr V4P vc 4 --set parallel.pipeline=2  # pp 2 x dp 2 where a level has 2 blocks or more
tr VS vc 1 --resume "$(ck V1 5)"        # same layout, after the first coalescing
tr VR vc 2 --resume "$(ck V1 10)"       # mid-cycle (two levels saved), other layout
tr VU vc 4 --resume "$(ck V2 20)"       # on the way up, other layout
tr A0 vc0 2
"$SPROUT" inspect "$(ck V1 10)" >"$T/inspect.txt" 2>&1 ||
  { echo "FAIL: inspect of a mid-cycle checkpoint"; cat "$T/inspect.txt"; fail=1; }
grep -q "vcycle/level_1" "$T/inspect.txt" && grep -q "vcycle/level_2" "$T/inspect.txt" ||
  { echo "FAIL: inspect does not list the saved level models"; head -40 "$T/inspect.txt"; fail=1; }
bad() { # expected-message key=value...
  local msg=$1; shift
  "$SPROUT" train "$T/vc.yaml" --set run.out="$T/bad" "$@" 2>"$T/bad.log"
  local rc=$?
  [ "$rc" = 2 ] && grep -q "$msg" "$T/bad.log" || { echo "FAIL: bad V-cycle ($msg): rc $rc"; cat "$T/bad.log"; fail=1; }
}
bad "vcycle.coalesce: 'sideways' is not width, depth or both" --set vcycle.coalesce=sideways
bad "vcycle level 4: 1 blocks cannot be coalesced in pairs" --set vcycle.coalesce=depth --set vcycle.levels=4
bad "leave .* for the way up" --set vcycle.bottom_steps=40

/usr/bin/python3 - "$T" "$(dirname "$0")" <<'PY' || fail=1
import sys
sys.path.insert(0, sys.argv[2])
import numpy as np
from runs import Runs, strip
R = Runs(sys.argv[1])
rows, steps, growth, final, check, rel = R.rows, R.steps, R.growth, R.final, R.check, R.rel
same_weights = R.same_weights

# round trips: the model after the pair is the model before it, bit for bit
for n in ("RW", "RD"):
    g = growth(n)
    check(len(g) == 2, f"{n}: two growth lines")
    print(f"{n}: {g[0]['op']} then {g[1]['op']}: held-out loss {g[0]['loss_before']:.7f} -> "
          f"{g[0]['loss_after']:.7f} -> {g[1]['loss_after']:.7f}")
    check(g[1]["loss_after"] == g[0]["loss_before"], f"{n}: round trip changed the held-out loss")
    check(g[0]["pp"] == 2 and g[1]["pp"] == 1, f"{n}: the round trip went through pp 2")
p, r = steps("P"), steps("RD")
check(all(strip(p[i]) == strip(r[i]) for i in range(1, 31)), "RD: training differs from the plain run")
for n in ("W1", "W2", "W3", "W4"):
    g = growth(n)[0]
    dl = abs(g["loss_after"] - g["loss_before"]) / g["loss_before"]
    print(f"{n}: {g['op']} d_model {g['d_model_before']} -> {g['d_model_after']}: held-out loss "
          f"{g['loss_before']:.7f} -> {g['loss_after']:.7f} (rel {dl:.1e})")
    check(dl <= 1e-5 and g["d_model_after"] == 2 * g["d_model_before"], f"{n}: not function-preserving ({dl:.2e})")

check(all(strip(steps("W4")[i]) == strip(steps("W4R")[i]) for i in range(11, 31)),
      "W4R (resumed inside the widen_random fade-in) differs")
wa, wb = final("W4"), final("W4R")
check(wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa), "W4R final weights differ")
# the new channels do learn once faded in: the widened run ends below where it started
check(steps("W3")[30]["loss"] < steps("W3")[6]["loss"], "widen_zero stopped learning")
# the V-cycle: 4 events, widths and depths per level
g = growth("V1")
want = [("coalesce", 32, 16, 4, 2, 2), ("coalesce", 16, 8, 2, 1, 3),
        ("decoalesce", 8, 16, 1, 2, 2), ("decoalesce", 16, 32, 2, 4, 1)]
got = [(r["op"], r["d_model_before"], r["d_model_after"], r["n_layer_before"], r["n_layer_after"], r["level"]) for r in g]
check(got == want, f"V-cycle events {got}")
check([r["step"] for r in g] == [4, 8, 18, 24], f"V-cycle steps {[r['step'] for r in g]}")
s = steps("V1")
check([r["pp"] for r in growth("V4P")] == [2, 1, 2, 2], f"V4P layouts {[r['pp'] for r in growth('V4P')]}")
for n in ("V2", "V4", "V4P"):
    r = rel("V1", n, 1, 30)
    print(f"{n}: V-cycle losses vs 1 rank: rel {r:.2e}")
    check(r <= 1e-5, f"{n}: V-cycle losses differ by {r:.2e}")
check(all(strip(steps("V1")[i]) == strip(steps("VS")[i]) for i in range(6, 31)), "VS (same layout) metrics differ")
wa, wb = final("V1"), final("VS")
check(wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa), "VS final weights differ")
for n, lo in (("VR", 11), ("VU", 21)):
    r = rel("V1", n, lo, 30)
    print(f"{n}: restarted mid-cycle on another layout: loss rel {r:.2e}")
    check(r <= 1e-5, f"{n}: losses differ by {r:.2e}")
# alpha = 0: the way up ends on the saved top-level model exactly
g0 = growth("A0")
check(g0[3]["loss_after"] == g0[0]["loss_before"], f"alpha 0: {g0[3]['loss_after']} vs {g0[0]['loss_before']}")
# the level learning rate: lr_scale^(level-1) on the schedule
def sched(t, lr=3e-3, lo=6e-5, warm=4, total=30):
    import math
    return lr * (t + 1) / warm if t < warm else lo + 0.5 * (1 + math.cos(math.pi * (t - warm) / (total - warm))) * (lr - lo)
ratios = [s[t + 1]["lr"] / sched(t) for t in (3, 5, 12, 20, 27)]
check(all(abs(a - b) < 1e-5 for a, b in zip(ratios, [1, 2, 4, 2, 1])), f"level lr factors {ratios}")
sys.exit(R.finish("vcycle"))
PY
[ "$fail" = 0 ]
