#!/usr/bin/env bash
# Checkpoint/restart: bit-exact continuation on the same layout (1x1 and 2x2), resharding of a
# 2x2 checkpoint onto 1x1, 4x1 and 1x2 (losses within 1e-5), a SIGUSR1 stop (exit 3) and
# --resume auto finishing bit-identically, auto skipping a corrupt newest checkpoint, and a
# spec mismatch refused naming the field. SP_PRECISION=bf16 runs all of it in bf16 (resharding
# within the bf16 tolerance of tests/cli/precision.sh).
# usage: restart.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
. "$(dirname "$0")/precision.sh"
. "$(dirname "$0")/kind.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: a small corpus for restart tests, with words and digits $((i * 7))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: $VOCAB, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4, block: $KIND}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {objective: $OBJECTIVE, steps: 20, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4, seed: 99}
eval: {every: 10, batches: 2}
run: {log_every: 1, precision: $PREC}
checkpoint: {every: 10, keep: 5}
YAML
fail=0
tr() { # out np pp [args...]
  local out=$1 np=$2 pp=$3; shift 3
  "${MPIEXEC[@]}" -n "$np" "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" \
    --set parallel.pipeline="$pp" "$@" 2>"$T/$out.log"
}
tr A 1 1 || { prec_skip "$T/A.log" $?; cat "$T/A.log"; exit 1; }
prec_active "$T/A.log"
tr B 1 1 --resume "$T/A/ckpt/step_00000010.h5" || { cat "$T/B.log"; exit 1; }
tr C 4 2 || { cat "$T/C.log"; exit 1; }
tr D 4 2 --resume "$T/C/ckpt/step_00000010.h5" || { cat "$T/D.log"; exit 1; }
for lay in "R11 1 1" "R41 4 4" "R12 2 1"; do
  set -- $lay
  tr "$1" "$2" "$3" --resume "$T/C/ckpt/step_00000010.h5" || { cat "$T/$1.log"; exit 1; }
done
# auto skips a corrupt newest checkpoint
mkdir -p "$T/G/ckpt"
cp "$T/A/ckpt/step_00000010.h5" "$T/A/ckpt/step_00000020.h5" "$T/G/ckpt/"
/usr/bin/python3 - "$T/G/ckpt/step_00000020.h5" "$FC_TENSOR" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
import h5py
with h5py.File(p, "r") as f:
    off = f["model/" + sys.argv[2]].id.get_offset()
b[off + 100] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
tr G 1 1 --resume auto || { cat "$T/G.log"; exit 1; }
grep -q "skipping .*step_00000020.h5.*$FC_TENSOR" "$T/G.log" ||
  { echo "FAIL: auto did not report the corrupt checkpoint"; cat "$T/G.log"; fail=1; }
# a spec mismatch names the field
tr H 1 1 --resume "$T/A/ckpt/step_00000010.h5" --set model.n_layer=3
rc=$?
grep -q "model.n_layer = 4 but the config says 3" "$T/H.log" && [ "$rc" = 2 ] ||
  { echo "FAIL: spec mismatch (rc $rc)"; cat "$T/H.log"; fail=1; }
# another block kind is refused by name
tr K 1 1 --resume "$T/A/ckpt/step_00000010.h5" --set model.block="$OTHER_KIND" "${OTHER_SETS[@]}"
rc=$?
grep -q "model.block = $KIND but the config says $OTHER_KIND" "$T/K.log" && [ "$rc" = 2 ] ||
  { echo "FAIL: block kind mismatch (rc $rc)"; cat "$T/K.log"; fail=1; }
if [ "$KIND" = llama ]; then # and another rotary base of the same kind
  tr L 1 1 --resume "$T/A/ckpt/step_00000010.h5" --set model.rope_theta=500
  rc=$?
  grep -q "rope_theta 10000, tie_head 0 but the config says 1e-05, 500, 0" "$T/L.log" && [ "$rc" = 2 ] ||
    { echo "FAIL: rope_theta mismatch (rc $rc)"; cat "$T/L.log"; fail=1; }
fi
# SIGUSR1: checkpoint, exit 3; --resume auto then finishes like the straight run
sed -i 's/steps: 20,/steps: 400,/' "$T/cfg.yaml"
"${MPIEXEC[@]}" -n 2 "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/S" --set parallel.pipeline=1 \
  --set eval.every=0 2>"$T/S.log" &
pid=$! # mpirun itself: it forwards SIGUSR1 to every rank
for i in $(seq 300); do [ -s "$T/S/metrics.jsonl" ] && [ "$(wc -l <"$T/S/metrics.jsonl")" -ge 3 ] && break; sleep 0.1; done
kill -USR1 "$pid"
wait "$pid"
rc=$?
[ "$rc" = 3 ] || { echo "FAIL: signal stop exited $rc, want 3"; cat "$T/S.log"; fail=1; }
tr S 2 1 --set eval.every=0 --resume auto || { cat "$T/S.log"; exit 1; }
tr U 2 1 --set eval.every=0 || { cat "$T/U.log"; exit 1; }
PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T" "$XTOL" <<'PY' || fail=1
import sys
from runs import Runs
R = Runs(sys.argv[1])
xtol = float(sys.argv[2])
rows, steps, raw_steps, check, same_weights = R.rows, R.steps, R.raw_steps, R.check, R.same_weights
for straight, resumed in (("A", "B"), ("C", "D"), ("U", "S")):
    check(same_weights(straight, resumed), f"{resumed} final weights/moments differ from {straight}")
    # the lines as bytes, less the two wall-clock fields (which no rerun can reproduce)
    s, r = raw_steps(straight), raw_steps(resumed)
    common = [k for k in r if k > 10 or straight == "U"]
    same = all(r[i] == s[i] for i in common)
    check(same and len(common) >= 10, f"{resumed} metrics lines differ from {straight}")
check(any(r.get("event") == "restart" for r in rows("B")), "no restart event line")
c = steps("C")
for n in ("R11", "R41", "R12"):
    r = steps(n)
    rel = max(abs(r[i]["loss"] - c[i]["loss"]) / abs(c[i]["loss"]) for i in range(11, 21))
    check(rel <= xtol, f"{n}: resharded losses differ by {rel:.2e} (tol {xtol:g})")
    print(f"{n}: resharded 2x2 checkpoint, loss rel {rel:.2e}")
check(same_weights("A", "G"), "G (auto after skipping a corrupt file) differs from A")
sys.exit(R.finish("restart"))
PY
[ "$fail" = 0 ]
