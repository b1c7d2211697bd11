#!/usr/bin/env bash
# Faults: kill -9 of one rank during training, and during a checkpoint write (fault injection
# through SPROUT_FAULT_KILL_IN_CKPT=STEP), end the job; --resume auto then continues from the
# last complete checkpoint and the final weights and moments equal the uninterrupted run's bit
# for bit. A truncated file and a file with flipped bytes in one tensor are reported by inspect
# (exit 1), and --resume auto skips a truncated newest checkpoint.
# usage: faults.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'pkill -9 -f "run.out=$T/" 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: faults happen; restarts must not notice $((i * 3))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 300, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4, seed: 7}
eval: {every: 0}
run: {log_every: 50}
checkpoint: {every: 10, keep: 3}
YAML
fail=0
tr() { local out=$1; shift; "${MPIEXEC[@]}" -n 2 "$@" "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" --resume auto 2>>"$T/$out.log"; }
tr U || { cat "$T/U.log"; exit 1; }

# 1. kill -9 of one rank while it trains
tr K1 &
job=$!
for i in $(seq 600); do
  [ -f "$T/K1/ckpt/latest" ] && [ "$(cat "$T/K1/ckpt/latest")" \> "step_00000030.h5" ] && break; sleep 0.05
done
# a rank, not mpirun: its command line starts with the binary
victim=$(pgrep -f "^$SPROUT train .*run.out=$T/K1" | tail -1)
kill -9 "$victim"
wait "$job"; rc=$?
[ "$rc" != 0 ] || { echo "FAIL: the job survived a killed rank"; fail=1; }
echo "killed rank pid $victim during training at $(cat "$T/K1/ckpt/latest"); job exit $rc"
tr K1 || { cat "$T/K1.log"; exit 1; }

# 2. kill -9 of one rank in the middle of writing the step-30 checkpoint
SPROUT_FAULT_KILL_IN_CKPT=30 tr K2 -x SPROUT_FAULT_KILL_IN_CKPT
rc=$?
[ "$rc" != 0 ] || { echo "FAIL: the job survived a rank killed in a checkpoint"; fail=1; }
[ ! -e "$T/K2/ckpt/step_00000030.h5" ] || { echo "FAIL: a half-written checkpoint was committed"; fail=1; }
[ "$(cat "$T/K2/ckpt/latest")" = step_00000020.h5 ] || { echo "FAIL: latest moved"; fail=1; }
echo "killed a rank inside the step-30 checkpoint; job exit $rc; latest = $(cat "$T/K2/ckpt/latest")"
tr K2 || { cat "$T/K2.log"; exit 1; }
grep -q "resumed from .*step_00000020.h5" "$T/K2.log" || { echo "FAIL: K2 did not resume from step 20"; fail=1; }

# 3. inspect names the damage
C="$T/U/ckpt/$(cat "$T/U/ckpt/latest")"
head -c 20000 "$C" >"$T/trunc.h5"
"$SPROUT" inspect "$T/trunc.h5" >"$T/i1" 2>&1; rc=$?
[ "$rc" = 1 ] || { echo "FAIL: inspect of a truncated file exited $rc, want 1"; fail=1; }
grep -q "trunc.h5" "$T/i1" || { echo "FAIL: inspect did not name the truncated file"; cat "$T/i1"; fail=1; }
"$SPROUT" inspect "$T/absent.h5" >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || { echo "FAIL: inspect of a missing file exited $rc, want 2"; fail=1; }
# --resume auto skips a truncated newest checkpoint and takes the one before it
mkdir -p "$T/AT/ckpt"
cp "$T/U/ckpt/step_00000290.h5" "$T/AT/ckpt/"
head -c 30000 "$T/U/ckpt/step_00000300.h5" >"$T/AT/ckpt/step_00000300.h5"
tr AT || { cat "$T/AT.log"; exit 1; }
grep -q "skipping .*step_00000300.h5" "$T/AT.log" && grep -q "resumed from .*step_00000290.h5" "$T/AT.log" ||
  { echo "FAIL: auto did not skip the truncated checkpoint"; cat "$T/AT.log"; fail=1; }
cp "$C" "$T/flip.h5"
/usr/bin/python3 - "$T/flip.h5" <<'PY'
import sys, h5py
p = sys.argv[1]
with h5py.File(p, "r") as f:
    off = f["optim/v/transformer.h.2.attn.c_attn.weight"].id.get_offset()
b = bytearray(open(p, "rb").read()); b[off + 64] ^= 0x10; open(p, "wb").write(bytes(b))
PY
"$SPROUT" inspect "$T/flip.h5" >"$T/i2" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q "transformer.h.2.attn.c_attn.weight .*CRC-MISMATCH" "$T/i2" ||
  { echo "FAIL: inspect (rc $rc) did not name the flipped tensor"; cat "$T/i2"; fail=1; }

/usr/bin/python3 - "$T" <<'PY' || fail=1
import glob, sys, h5py, numpy as np
d = sys.argv[1]
def final(n):
    f = h5py.File(sorted(glob.glob(f"{d}/{n}/ckpt/step_*.h5"))[-1], "r")
    return f["train"].attrs["step"], {g + k: f[g][k][()] for g in ("model/", "optim/m/", "optim/v/") for k in f[g]}
su, u = final("U")
bad = 0
for n in ("K1", "K2", "AT"):
    s, w = final(n)
    same = s == su and w.keys() == u.keys() and all(np.array_equal(w[k], u[k]) for k in u)
    print(f"{n}: step {s}, {'bit-identical to' if same else 'DIFFERS from'} the uninterrupted run")
    bad += not same
sys.exit(bad)
PY
[ "$fail" = 0 ] && echo "faults: 1 passed, 0 failed"
[ "$fail" = 0 ]
