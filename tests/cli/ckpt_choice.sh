#!/usr/bin/env bash
# Which checkpoint a run resumes from and which it deletes, and how deep verification goes:
#  - --resume of an older file in the same directory starts a new line of history: the old
#    line's newer files are moved to ckpt/superseded/<line>/ (not deleted), the new checkpoints
#    survive pruning, and the run ends bit-identical to the uninterrupted one;
#  - `latest` wins over name order; a stray step_99999999.h5 and a damaged newer file are neither
#    resumed from nor deleted;
#  - a deleted dataset, a changed /train step or data_cursor, a changed /spec or /config and one
#    damaged metadata byte are caught by inspect (exit 1, naming the object) and by --resume auto
#    (falls back to the parent, says so, ends bit-identical); --resume FILE of such a file exits
#    2 naming the object and leaves the checkpoints and `latest` as they were;
#  - with pp = 2, a tensor only rank 1 loads being corrupt is reported naming tensor and rank.
# usage: ckpt_choice.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: which checkpoint is the right one, number $((i * 11))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 60, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4, seed: 5}
eval: {every: 0}
run: {log_every: 10}
checkpoint: {every: 10, keep: 5}
YAML
fail=0
say() { echo "FAIL: $*"; fail=1; }
tr() { # out np pp [args...]: 120 s bounds a hang
  local out=$1 np=$2 pp=$3; shift 3
  timeout 120 "${MPIEXEC[@]}" -n "$np" "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" \
    --set parallel.pipeline="$pp" "$@" 2>"$T/$out.log"
}
# tamper FILE MODE: what a damaged disk or a well-meant edit does to a checkpoint
tamper() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import re, sys, h5py
p, mode = sys.argv[1], sys.argv[2]
def flip(dset, at):
    with h5py.File(p, "r") as f:
        off = f[dset].id.get_offset()
    b = bytearray(open(p, "rb").read()); b[off + at] ^= 0x10; open(p, "wb").write(bytes(b))
if mode == "del":
    with h5py.File(p, "r+") as f: del f["optim/m/transformer.h.2.mlp.c_fc.weight"]
elif mode == "step":
    with h5py.File(p, "r+") as f: f["train"].attrs["step"] = 10
elif mode == "cursor":
    with h5py.File(p, "r+") as f: f["train"].attrs["data_cursor"] = 3
elif mode == "spec":
    with h5py.File(p, "r+") as f: f["spec"].attrs["d_ff"] = 64
elif mode == "config":
    with h5py.File(p, "r+") as f:
        f["config"].attrs["yaml"] = f["config"].attrs["yaml"].replace(b"seed: 5", b"seed: 6")
elif mode == "meta":  # one byte: a group symbol-table node's entry count, hiding entries
    b = bytearray(open(p, "rb").read())
    nodes = [m.start() for m in re.finditer(b"SNOD", b)]
    # the first node is the root group's (made first; it ties with the fullest since /tokenizer)
    o = max(nodes[1:], key=lambda o: b[o + 6])
    b[o + 6] = 1
    open(p, "wb").write(bytes(b))
elif mode == "rank1":  # only the second of two stages loads block 3
    flip("model/transformer.h.3.mlp.c_fc.weight", 40)
elif mode == "flip":
    flip("model/transformer.h.1.attn.c_attn.weight", 12)
PY
}
# dir with U's checkpoints at the given steps and latest -> the last argument
seed_dir() {
  local d=$T/$1; shift
  mkdir -p "$d/ckpt"
  for s in "$@"; do cp "$T/U/ckpt/step_000000$s.h5" "$d/ckpt/"; done
  echo "step_000000${!#}.h5" >"$d/ckpt/latest"
}
tr U 1 1 || { cat "$T/U.log"; exit 1; }

# 1. resume an older file in the same directory, keep fewer files: the new ones survive
cp -r "$T/U" "$T/B"
tr B 1 1 --set checkpoint.keep=3 --resume "$T/B/ckpt/step_00000020.h5" || { cat "$T/B.log"; exit 1; }
for s in 40 50 60; do [ -f "$T/B/ckpt/step_000000$s.h5" ] || say "branch: new step $s was deleted"; done
[ "$(ls "$T/B/ckpt" | grep -c '^step_')" = 3 ] || say "branch: keep=3 not honoured: $(ls "$T/B/ckpt")"
[ "$(cat "$T/B/ckpt/latest")" = step_00000060.h5 ] || say "branch: latest is $(cat "$T/B/ckpt/latest")"
n_old=$(ls "$T"/B/ckpt/superseded/*/ 2>/dev/null | grep -c '^step_')
[ "$n_old" = 4 ] || say "branch: the old line's steps 30..60 were not kept aside ($n_old files)"
grep -q "new line of history .* branches off it at step 20" "$T/B.log" || say "branch not reported"
# and --resume auto continues the branch (its latest), not the old line
sed -i 's/steps: 60,/steps: 70,/' "$T/cfg.yaml"
tr B 1 1 --set checkpoint.keep=3 --resume auto || { cat "$T/B.log"; exit 1; }
grep -q "resume: step_00000060.h5 (latest, step 60, verified)" "$T/B.log" || say "auto after branch: $(grep resume: "$T/B.log")"
sed -i 's/steps: 70,/steps: 60,/' "$T/cfg.yaml"

# 2. latest wins over name order; a stray file and a damaged newer one stay untouched
seed_dir L 20 30 40
echo step_00000030.h5 >"$T/L/ckpt/latest"
cp "$T/U/ckpt/step_00000050.h5" "$T/L/ckpt/step_99999999.h5"
cp "$T/U/ckpt/step_00000060.h5" "$T/L/ckpt/step_00000090.h5"
tamper "$T/L/ckpt/step_00000090.h5" flip
cp "$T/L/ckpt/step_99999999.h5" "$T/L/ckpt/step_00000090.h5" "$T/"
tr L 1 1 --resume auto || { cat "$T/L.log"; exit 1; }
grep -q "resume: step_00000030.h5 (latest, step 30, verified)" "$T/L.log" || say "latest did not win: $(grep resume: "$T/L.log")"
cmp -s "$T/L/ckpt/step_99999999.h5" "$T/step_99999999.h5" || say "the stray step_99999999.h5 was touched"
cmp -s "$T/L/ckpt/step_00000090.h5" "$T/step_00000090.h5" || say "the damaged newer file was touched"

# 3. damage of every kind: inspect names it, auto falls back to the parent, FILE is strict
for m in del:optim/m/transformer.h.2.mlp.c_fc.weight step:/train cursor:/train spec:/spec \
  config:/config meta:MISSING; do
  mode=${m%%:*} what=${m#*:}
  seed_dir "D$mode" 20 30
  tamper "$T/D$mode/ckpt/step_00000030.h5" "$mode"
  "$SPROUT" inspect "$T/D$mode/ckpt/step_00000030.h5" >"$T/i$mode" 2>&1; rc=$?
  [ "$rc" = 1 ] && grep -q -- "$what" "$T/i$mode" || { say "inspect ($mode) rc $rc, not naming $what"; cat "$T/i$mode"; }
  cp -r "$T/D$mode/ckpt" "$T/D$mode.before"
  tr "D$mode" 1 1 --resume "$T/D$mode/ckpt/step_00000030.h5"; rc=$?
  [ "$rc" = 2 ] && [ "$(grep -c 'sprout: error' "$T/D$mode.log")" = 1 ] ||
    { say "--resume FILE ($mode) exited $rc"; cat "$T/D$mode.log"; }
  diff -r "$T/D$mode/ckpt" "$T/D$mode.before" >/dev/null || say "a failed --resume FILE ($mode) changed the checkpoints"
  tr "D$mode" 1 1 --resume auto || { cat "$T/D$mode.log"; exit 1; }
  grep -q "resume: step_00000030.h5 (latest) damaged: .*; falling back to step_00000020.h5" "$T/D$mode.log" ||
    { say "auto ($mode) did not fall back"; cat "$T/D$mode.log"; }
done
grep -q "step_00000030.h5: .*model/transformer.h.0.*MISSING" "$T/Dmeta.log" "$T/imeta" ||
  say "the hidden datasets were not named"

# 4. pp = 2 on 2 ranks: a tensor only rank 1 reads
seed_dir P 20 30
tamper "$T/P/ckpt/step_00000030.h5" rank1
tr P 2 2 --resume "$T/P/ckpt/step_00000030.h5"; rc=$?
[ "$rc" = 2 ] && grep -q "rank 1: tensor model/transformer.h.3.mlp.c_fc.weight fails its crc32" "$T/P.log" ||
  { say "pp=2: rank 1's reason missing (rc $rc)"; cat "$T/P.log"; }
tr P 2 2 --resume auto || { cat "$T/P.log"; exit 1; }
tr Q 2 2 --resume "$T/U/ckpt/step_00000020.h5" || { cat "$T/Q.log"; exit 1; }
grep -q "skipping .*step_00000030.h5: rank 1: tensor model/transformer.h.3.mlp.c_fc.weight" "$T/P.log" &&
  grep -q "falling back to step_00000020.h5" "$T/P.log" || { say "pp=2: auto did not fall back"; cat "$T/P.log"; }

/usr/bin/python3 - "$T" <<'PY' || fail=1
import sys, h5py, numpy as np
d = sys.argv[1]
def load(p):
    f = h5py.File(p, "r")
    return {g + k: f[g][k][()] for g in ("model/", "optim/m/", "optim/v/") for k in f[g]}
u = load(f"{d}/U/ckpt/step_00000060.h5")
bad = 0
for run in ["B", "L"] + ["D" + m for m in ("del", "step", "cursor", "spec", "config", "meta")]:
    w = load(f"{d}/{run}/ckpt/step_00000060.h5")
    same = w.keys() == u.keys() and all(np.array_equal(w[k], u[k]) for k in u)
    print(f"{run}: step 60 {'bit-identical to' if same else 'DIFFERS from'} the uninterrupted run")
    bad += not same
# the fallback on another layout is the explicit resume of the file it fell back to
w, q = load(f"{d}/P/ckpt/step_00000060.h5"), load(f"{d}/Q/ckpt/step_00000060.h5")
same = w.keys() == q.keys() and all(np.array_equal(w[k], q[k]) for k in q)
print(f"P (pp=2, fell back to step 20): {'bit-identical to' if same else 'DIFFERS from'} resuming step 20 by name")
bad += not same
sys.exit(1 if bad else 0)
PY
[ "$fail" = 0 ] && echo "ckpt_choice: all passed"
[ "$fail" = 0 ]
