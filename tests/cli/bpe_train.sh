#!/usr/bin/env bash
# A GPT-2-vocabulary model (configs/gpt2-bpe-tiny.yaml) on Brown tokenised with gpt2, 2 ranks,
# 40 steps: the first loss is ln(50257) (a uniform start) and the validation loss falls below
# 3/4 of it; the checkpoint records the tokenizer and its files (inspect verifies /tokenizer),
# sample encodes the prompt and prints decoded text, eval prints val_loss first and the loss per
# byte (= loss x tokens / bytes of the targets). Data of another tokenizer is refused naming
# both: a resume on byte data, train and val of different tokenizers, eval --data of bytes. A
# flipped byte in the stored vocabulary is named by sample and inspect.
# usage: bpe_train.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
SRC=${SPROUT_SOURCE_DIR:?}
# shellcheck source=gpt2_brown.sh
. "$(dirname "$0")/gpt2_brown.sh"
"$SPROUT" prepare brown "$SPROUT_BROWN_DIR" --out "$T/gpt2" --tokenizer gpt2 --vocab-dir "$PKG" \
  >/dev/null 2>&1
"$SPROUT" prepare brown "$SPROUT_BROWN_DIR" --out "$T/bytes" >/dev/null 2>&1
CFG=$SRC/configs/gpt2-bpe-tiny.yaml
sets=(--set train.steps=40 --set train.warmup_steps=10 --set eval.every=40
      --set run.out="$T/run" --set data.train="$T/gpt2/train.bin" --set data.val="$T/gpt2/val.bin")
# the vocabulary is found beside data.train: no SPROUT_VOCAB_DIR, no default directory
(cd "$T" && env -u SPROUT_VOCAB_DIR timeout 300 "${MPIEXEC[@]}" -n 2 "$SPROUT" train "$CFG" \
  "${sets[@]}") 2>"$T/log"
rc=$?
cat "$T/log"
[ $rc = 0 ] || { echo "FAIL: training exited $rc"; exit 1; }
CKPT="$T/run/ckpt/$(cat "$T/run/ckpt/latest")"

"$SPROUT" inspect "$CKPT" >"$T/inspect" || { echo "FAIL: inspect"; cat "$T/inspect"; exit 1; }
grep -E "/tokenizer +attributes +ok|tokenizer +(encoder.json|vocab.bpe) .* ok" "$T/inspect"
[ "$(grep -cE "/tokenizer +attributes +ok|tokenizer +(encoder.json|vocab.bpe) .* ok" \
  "$T/inspect")" = 3 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: inspect"; }

PROMPT="The jury said that"
(cd / && env -u SPROUT_VOCAB_DIR "$SPROUT" sample "$CKPT" --prompt "$PROMPT" --tokens 30 \
  --seed 2) >"$T/sample" 2>"$T/sample.err"
echo "sample: $(cat "$T/sample")"
"$SPROUT" eval "$CKPT" --data "$T/gpt2/val.bin" --windows 64 >"$T/eval"
cat "$T/eval"
/usr/bin/python3 - "$T/run/metrics.jsonl" "$T/sample" "$PROMPT" "$T/eval" <<'PY' && pass=$((pass + 1)) || fail=$((fail + 1))
import json, math, sys
V = 50257
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if "loss" in l and "step" in l]
vals = [l["val_loss"] for l in lines if "val_loss" in l]
first, last_val = steps[0]["loss"], vals[-1]
ok = True
def check(cond, what):
    global ok
    print(("ok  " if cond else "FAIL") + " " + what)
    ok &= cond
check(abs(first - math.log(V)) < 0.05 * math.log(V),
      f"first loss {first:.4f} is ln({V}) = {math.log(V):.4f} within 5%")
check(last_val < 0.75 * math.log(V), f"val loss {last_val:.4f} < 3/4 ln({V}) = {0.75 * math.log(V):.4f}")
text = open(sys.argv[2], "rb").read()
prompt = sys.argv[3].encode()
try:
    s = text.decode("utf-8")
    utf8 = True
except UnicodeDecodeError:
    utf8 = False
cont = text[len(prompt):].strip()
check(text.startswith(prompt) and len(cont) > 20 and utf8 and any(c.isalpha() for c in s[len(sys.argv[3]):]),
      "sample: the prompt, then decoded UTF-8 text with letters")
f = open(sys.argv[4]).read().split()
check(f[0] == "val_loss", "eval prints val_loss first")
def val(k):
    return f[f.index(k) + 1]
loss, toks, lpb, nb = float(val("val_loss")), int(val("tokens")), float(val("loss_per_byte")), int(val("bytes"))
check(nb > toks and abs(lpb - loss * toks / nb) < 1e-5 * lpb,
      f"loss_per_byte {lpb} = val_loss x {toks} tokens / {nb} bytes")
sys.exit(0 if ok else 1)
PY

# another tokenizer's data: refused, naming both
expect 2 "checkpoint was trained on gpt2 tokens but data.train $T/bytes/train.bin holds bytes" -- \
  "$SPROUT" train "$CFG" "${sets[@]}" --set train.steps=50 --set data.train="$T/bytes/train.bin" \
  --set data.val="$T/bytes/val.bin" --resume "$CKPT"
expect 2 "data.train: $T/gpt2/train.bin holds gpt2 .* but data.val: $T/bytes/val.bin holds bytes" -- \
  "$SPROUT" train "$CFG" "${sets[@]}" --set run.out="$T/run2" --set data.val="$T/bytes/val.bin"
expect 2 "--data $T/bytes/val.bin holds bytes tokens but the checkpoint .* was trained on gpt2" -- \
  "$SPROUT" eval "$CKPT" --data "$T/bytes/val.bin"
# gpt2 tokens with no vocabulary anywhere: named
mkdir -p "$T/bare" && cp "$T/gpt2/train.bin" "$T/gpt2/val.bin" "$T/bare/"
SPROUT_VOCAB_DIR=$T/none expect 2 "holds gpt2 tokens, and its vocabulary is neither beside it" -- \
  "$SPROUT" train "$CFG" "${sets[@]}" --set run.out="$T/run3" --set data.train="$T/bare/train.bin" \
  --set data.val="$T/bare/val.bin"
# a flipped byte in the stored vocabulary
cp "$CKPT" "$T/bad.h5"
/usr/bin/python3 -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r+') as f:
    d = f['tokenizer/vocab.bpe']; d[100] = d[100] ^ 1
" "$T/bad.h5"
expect 2 "tokenizer/vocab.bpe fails its crc32 check" -- "$SPROUT" sample "$T/bad.h5" --tokens 2
expect 1 "" -- "$SPROUT" inspect "$T/bad.h5"
grep -q "vocab.bpe.*CRC-MISMATCH" "$T/out" && pass=$((pass + 1)) ||
  { fail=$((fail + 1)); echo "FAIL: inspect does not name vocab.bpe"; cat "$T/out"; }

echo "bpe_train: $pass passed, $fail failed"
[ "$fail" = 0 ]
