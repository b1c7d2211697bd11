#!/usr/bin/env bash
# A checkpoint written by a 2-rank pipeline (pp = 2) is read by h5dump and h5py, and the
# PyTorch reference loaded from /model gets the same loss as `sprout eval` (within 1e-5).
# SP_BLOCK=llama does it on the LLaMA block (tests/cli/kind.sh): /model is then
# LlamaForCausalLM's state dict, loaded into llama_ref as it is; SP_BLOCK=bert on the BERT block
# with the masked objective: BertForMaskedLM's state dict, and the eval's fixed masking restated
# in Python (bert_ref.mlm_mask) gives the same loss.
# usage: ckpt_interop.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -euo pipefail
. "$(dirname "$0")/kind.sh"
SPROUT=$1; shift
MPIEXEC=("$@")
SRC=${SPROUT_SOURCE_DIR:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i of the interop corpus: checkpoints are plain HDF5."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
"${MPIEXEC[@]}" -n 2 "$SPROUT" train "$SRC/configs/tiny.yaml" --set train.steps=15 --set train.warmup_steps=3 \
  --set model.seq_len=32 --set model.d_model=64 --set train.global_batch=8 --set train.micro_batch=2 \
  --set parallel.pipeline=2 --set eval.every=0 --set run.out="$T/run" --set model.block="$KIND" \
  --set model.vocab="$VOCAB" --set train.objective="$OBJECTIVE" \
  --set data.train="$T/data/train.bin" --set data.val="$T/data/val.bin" 2>"$T/log" || { cat "$T/log"; exit 1; }
CKPT="$T/run/ckpt/$(cat "$T/run/ckpt/latest")"
h5dump -H "$CKPT" >"$T/dump" && grep -q "DATASET \"$PROJ3_TENSOR\"" "$T/dump"
/usr/bin/python3 -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert f['model/' + sys.argv[2]].shape == (int(sys.argv[4]), 64); assert f['optim/m/' + sys.argv[3]].shape == (64,)" "$CKPT" "$EMBED_TENSOR" "$NORM_TENSOR" "$VOCAB"
A=$("$SPROUT" eval "$CKPT" --data "$T/data/val.bin" --batches 4 | awk '{print $2}')
B=$(/usr/bin/python3 "$SRC/tests/torch/eval_ckpt.py" "$CKPT" "$T/data/val.bin" $((4 * 2)) | awk '{print $2}')
/usr/bin/python3 -c "
import sys; a, b = float(sys.argv[1]), float(sys.argv[2])
print(f'sprout eval {a:.6f}, PyTorch on /model {b:.6f}, rel {abs(a-b)/b:.2e}')
assert abs(a - b) <= 1e-5 * b, 'losses differ'
print('ckpt_interop: 1 passed, 0 failed')" "$A" "$B"
