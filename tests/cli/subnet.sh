#!/usr/bin/env bash
# Subnetwork methods on the live job (train.subnet: apollo | raptr), 8 stored blocks, 40 steps in
# four stages of 10 (Apollo U = 1, 2, 4, 8; RaPTr path lengths 4-5-7-8):
#  - plans are the same on every layout: (pp, dp) = (1,1), (2,1), (4,1), (1,2), (2,2) run the
#    same executed depth and FLOPs at every step, with losses within 1e-5 (Apollo's shared
#    blocks then span 2 and 4 pipeline stages, so the cross-stage gradient sum is exercised);
#  - restart mid-stage (step 15): on the same layout the metrics lines (less wall-clock fields)
#    and the final weights and moments equal the uninterrupted run bit for bit; on another
#    layout the losses are within 1e-5; the checkpoint records the stage and the plan step
#    (inspect prints them);
#  - RaPTr with every block kept and Apollo with U = L equal plain training bit for bit
#    (metrics less the method's own fields, weights, moments), on 1 rank and on pp = 2;
#  - Apollo on 10 blocks (U = 1, 2, 5, 10: the expansion 2 -> 5 moves copies between groups):
#    the copies of every unique block are equal bit for bit (weights and moments) in the
#    checkpoints at U = 2 and U = 5, 1x1 and pp = 2 agree within 1e-5, and a restart at the
#    expansion step is bit for bit on 1x1 and within 1e-5 on pp = 2;
#  - a RaPTr step at half the path length skips work: exec_flops below the full step's;
#  - bad inputs exit 2 naming the key: a changed stage boundary on resume, growth events beside
#    a method, an unknown method.
# usage: subnet.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: a small corpus for subnetwork tests, words and digits $((i * 7))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 8}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 40, global_batch: 8, micro_batch: 2, lr: 3.0e-3, min_lr: 0, warmup_steps: 4, seed: 7}
eval: {every: 20, batches: 2}
run: {log_every: 1}
checkpoint: {every: 15, keep: 10}
apollo: {boundaries: "0.25,0.5,0.75"}
YAML
tr() { # out np pp [args...]
  local out=$1 np=$2 pp=$3; shift 3
  "${MPIEXEC[@]}" -n "$np" "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" \
    --set parallel.pipeline="$pp" "$@" 2>"$T/$out.log" ||
    { echo "FAIL: run $out"; cat "$T/$out.log"; exit 1; }
}
for m in apollo raptr; do
  tr "$m-11" 1 1 --set train.subnet=$m
  tr "$m-21" 2 2 --set train.subnet=$m
  tr "$m-41" 4 4 --set train.subnet=$m
  tr "$m-12" 2 1 --set train.subnet=$m
  tr "$m-22" 4 2 --set train.subnet=$m
  tr "$m-r11" 1 1 --set train.subnet=$m --resume "$T/$m-11/ckpt/step_00000015.h5"
  tr "$m-r22" 4 2 --set train.subnet=$m --resume "$T/$m-11/ckpt/step_00000015.h5"
done
A10=(--set train.subnet=apollo --set model.n_layer=10 --set checkpoint.every=5)
tr apollo10-11 1 1 "${A10[@]}"
tr apollo10-21 2 2 "${A10[@]}"
tr apollo10-r11 1 1 "${A10[@]}" --resume "$T/apollo10-11/ckpt/step_00000020.h5"
tr apollo10-r21 2 2 "${A10[@]}" --resume "$T/apollo10-11/ckpt/step_00000020.h5"
tr plain-11 1 1
tr plain-21 2 2
tr raptr-all-11 1 1 --set train.subnet=raptr --set raptr.lengths=8
tr raptr-all-21 2 2 --set train.subnet=raptr --set raptr.lengths=8
tr apollo-all-11 1 1 --set train.subnet=apollo --set apollo.unique=8 --set apollo.boundaries=auto
tr apollo-all-21 2 2 --set train.subnet=apollo --set apollo.unique=8 --set apollo.boundaries=auto
"$SPROUT" inspect "$T/apollo-11/ckpt/step_00000015.h5" >"$T/inspect.txt" 2>&1

bad() { # what expected-key [train args...]
  local what=$1 key=$2; shift 2
  "${MPIEXEC[@]}" -n 1 "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/bad" "$@" >"$T/bad.log" 2>&1
  local rc=$?
  if [ $rc -ne 2 ] || ! grep -q "$key" "$T/bad.log"; then
    echo "FAIL: $what: exit $rc, expected 2 naming $key"; cat "$T/bad.log"; BAD=1
  fi
}
BAD=0
bad "resume with moved boundaries" apollo.boundaries --set train.subnet=apollo \
  --set apollo.boundaries=0.5,0.6,0.7 --resume "$T/apollo-11/ckpt/step_00000015.h5"
bad "method beside growth" train.subnet --set train.subnet=raptr --set model.n_layer=8 \
  --set "growth=[]" --set vcycle.levels=2
bad "unknown method" train.subnet --set train.subnet=layerdrop

PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T" "$BAD" <<'PY'
import re, sys
from runs import Runs, strip_timing
R = Runs(sys.argv[1])
R.check(sys.argv[2] == "0", "a bad input was not refused as expected (above)")
def raw(n, strip_method=False):
    out = {}
    for line in open(f"{R.root}/{n}/metrics.jsonl", "rb"):
        if b'"event"' in line: continue
        line = strip_timing(line)
        if strip_method:
            line = re.sub(rb',"(subnet_stage|exec_depth|exec_flops)":[^,}]*', b"", line)
        out[int(re.search(rb'"step":(\d+)', line).group(1))] = line
    return out
for m in ("apollo", "raptr"):
    ref = R.steps(f"{m}-11")
    plan = lambda n: [(s, r["exec_depth"], r["exec_flops"], r["subnet_stage"]) for s, r in sorted(R.steps(n).items())]
    depths = [d for _, d, _, _ in plan(f"{m}-11")]
    R.check(len(depths) == 40 and min(depths) < 8 and depths[-1] == 8 and len(set(depths)) > 2,
            f"{m}: executed depths {depths}")
    R.check([st for *_, st in plan(f"{m}-11")] == [s // 10 for s in range(40)], f"{m}: stages")
    for n in ("21", "41", "12", "22"):
        R.check(plan(f"{m}-{n}") == plan(f"{m}-11"), f"{m}: plans on layout {n} differ from 1x1")
        R.check(R.rel(f"{m}-11", f"{m}-{n}", 1, 40) <= 1e-5, f"{m}: losses on layout {n} differ by more than 1e-5")
    a, b = raw(f"{m}-11"), raw(f"{m}-r11")
    tail = [s for s in a if s > 15]
    R.check(len(tail) == 25 and all(a[s] == b.get(s) for s in tail), f"{m}: restart at 15 on 1x1 is not bit for bit")
    R.check(R.same_weights(f"{m}-11", f"{m}-r11"), f"{m}: restart at 15: final weights/moments differ")
    R.check(R.rel(f"{m}-11", f"{m}-r22", 16, 40) <= 1e-5, f"{m}: restart at 15 on 2x2 differs by more than 1e-5")
    R.check(plan(f"{m}-r22") == [p for p in plan(f"{m}-11") if p[0] > 15], f"{m}: plans after the restart differ")
for m in ("raptr-all", "apollo-all"):
    for n in ("11", "21"):
        a, b = raw(f"plain-{n}"), raw(f"{m}-{n}", True)
        R.check(len(a) == 40 and a == b, f"{m} on {n}: metrics differ from plain training")
        R.check(R.same_weights(f"plain-{n}", f"{m}-{n}"), f"{m} on {n}: weights differ from plain training")
# Apollo on 10 blocks: groups of copies equal at U = 2 (step 15) and U = 5 (step 30, after the
# moving expansion at step 20)
import h5py, numpy as np
for step, U in ((15, 2), (30, 5)):
    f = h5py.File(f"{R.root}/apollo10-11/ckpt/step_{step:08d}.h5", "r")
    same = True
    for g in ("model", "optim/m", "optim/v"):
        names = [n for n in f[g].keys()]
        for j in range(10):
            first = next(i for i in range(10) if i * U // 10 == j * U // 10)
            for n in names:
                if f".h.{j}." in n:
                    same &= np.array_equal(f[g][n][()], f[g][n.replace(f".h.{j}.", f".h.{first}.")][()])
    R.check(same, f"apollo10: copies of a unique block differ in the checkpoint at step {step}")
R.check(R.rel("apollo10-11", "apollo10-21", 1, 40) <= 1e-5, "apollo10: pp=2 differs by more than 1e-5")
a, b = raw("apollo10-11"), raw("apollo10-r11")
R.check(all(a[s] == b.get(s) for s in a if s > 20) and len(b) == 20, "apollo10: restart at the expansion is not bit for bit")
R.check(R.same_weights("apollo10-11", "apollo10-r11"), "apollo10: restart at the expansion: final weights differ")
R.check(R.rel("apollo10-11", "apollo10-r21", 21, 40) <= 1e-5, "apollo10: restart at the expansion on pp=2 differs by more than 1e-5")
full = R.steps("plain-11")[1]["flops"]
half = [r for r in R.steps("raptr-11").values() if r["exec_depth"] == 4]
R.check(half and all(r["exec_flops"] < 0.6 * full for r in half), "raptr: a 4-block step is not counted below 60% of a full step's FLOPs")
ins = open(f"{R.root}/inspect.txt").read()
R.check("subnet: stage 1, next plan drawn for step 15" in ins, f"inspect: {ins}")
sys.exit(R.finish("subnet"))
PY
