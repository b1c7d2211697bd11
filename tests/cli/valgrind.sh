#!/usr/bin/env bash
# A 2-step training of a small model under valgrind: no invalid access, no use of
# uninitialised memory, and no definite leak in sprout's code (exit status 1 otherwise).
# Open MPI's own start-up reports are suppressed with the file Debian ships and
# tests/cli/mpi-valgrind.supp.
# SP_BLOCK=llama runs the same on the LLaMA block (tests/cli/kind.sh).
# usage: valgrind.sh SPROUT_BINARY
set -euo pipefail
SPROUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kind.sh"
SRC=${SPROUT_SOURCE_DIR:-$HERE/../..}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 400); do echo "Line $i of a small corpus, with some words to learn from."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
SUPP=()
for s in /usr/share/openmpi/openmpi-valgrind.supp "$HERE/mpi-valgrind.supp"; do
  [ -f "$s" ] && SUPP+=("--suppressions=$s")
done
valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite "${SUPP[@]}" \
  "$SPROUT" train "$SRC/configs/tiny.yaml" --set train.steps=2 --set train.warmup_steps=1 \
  --set model.n_layer=2 --set model.d_model=64 --set model.seq_len=32 --set eval.every=2 \
  --set eval.batches=1 --set data.train="$T/data/train.bin" --set data.val="$T/data/val.bin" \
  --set run.out="$T/run" --set model.block="$KIND"
echo "valgrind: 1 passed, 0 failed"
