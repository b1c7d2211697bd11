#!/usr/bin/env bash
# Hugging Face interchange (docs/interop.md).
#  export: a 1-rank checkpoint and a pp = 2 checkpoint after a G_stack event (exported under
#    mpirun -np 2) are read back by a plain Python safetensors reader into the PyTorch reference:
#    config.json fields, names, tensors equal to /model (bf16: RNE exactly), logits within 1e-5
#    of sprout's (bf16: loss within 1%), tokenizer files = the byte tokenizer;
#    a non-empty DIR is refused without --force and left as it was.
#  import: export -> import gives the same /model bit for bit, the same logits bit for bit and
#    the same `sprout eval` line; `train --resume` from it runs, through a growth event;
#    F16, BF16, the Hub's style (GPT2Model names, causal-mask buffers) and a tied lm_head.weight
#    import.
#  a checkpoint inside a growth ramp (random's branch scales) is refused: exit 2.
#  bad imports: each fault is exit 2, one line naming the tensor or field, no file left.
# usage: hf.sh SPROUT SP_HF_LOGITS MPIEXEC [MPIEXEC_FLAGS...]
set -euo pipefail
SPROUT=$1; LOGITS=$2; shift 2
MPIEXEC=("$@")
source "$(dirname "$0")/hf_lib.sh"

for i in $(seq 300); do echo "Line $i of the export corpus: weights go to transformers and back."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
VAL=$T/data/val.bin
common=(--set model.seq_len=32 --set model.d_model=64 --set train.global_batch=4
        --set train.micro_batch=2 --set train.warmup_steps=2 --set eval.every=0
        --set data.train="$T/data/train.bin" --set data.val="$VAL")
# the growth config: 2 blocks, G_stack to 4 at step 3
cat >"$T/grow.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 64, n_head: 4, d_ff: 0, n_layer: 4}
train: {steps: 6, global_batch: 4, micro_batch: 2, warmup_steps: 2}
eval: {every: 0}
growth:
  - {at_step: 3, op: stack, factor: 2}
YAML
"$SPROUT" train "$SRC/configs/tiny.yaml" "${common[@]}" --set growth=[] --set model.n_layer=2 \
  --set train.steps=6 --set run.out="$T/a" 2>"$T/log" || { cat "$T/log"; exit 1; }
"${MPIEXEC[@]}" -n 2 "$SPROUT" train "$T/grow.yaml" --set parallel.pipeline=2 \
  --set 'growth[0].pipeline=2' --set data.train="$T/data/train.bin" --set data.val="$VAL" \
  --set run.out="$T/b" 2>"$T/log" || { cat "$T/log"; exit 1; }
CKA=$T/a/ckpt/$(cat "$T/a/ckpt/latest")
CKB=$T/b/ckpt/$(cat "$T/b/ckpt/latest")
"$SPROUT" inspect "$CKB" >"$T/out"
grep -q "growth stage 1" "$T/out" || die "run b is not past its growth event"

# ---- export ----
"$SPROUT" export "$CKA" --format hf "$T/hf_a" >/dev/null
check "$T/hf_a" "$CKA" || die "export f32"; ok "export f32"
"$SPROUT" export "$T/a" --format hf "$T/hf_a16" --dtype bfloat16 >/dev/null
check "$T/hf_a16" "$CKA" || die "export bf16 (run directory as CKPT)"; ok "export bf16 (run directory as CKPT)"
"${MPIEXEC[@]}" -n 2 "$SPROUT" export "$T/b" --format hf "$T/hf_b" >"$T/out" 2>"$T/err" ||
  { cat "$T/err"; die "mpirun -np 2 export"; }
check "$T/hf_b" "$CKB" || die "export under mpirun -np 2 of a pp=2 checkpoint after growth"; ok "export under mpirun -np 2 of a pp=2 checkpoint after growth"
[ "$(grep -c . "$T/out")" = 1 ] || die "mpirun export printed $(cat "$T/out")"
ls -a "$T" >"$T/ls"; grep -q '\.tmp' "$T/ls" && die "a temporary directory is left beside DIR"
# inside the ramp of a `random` event the model is no plain GPT-2: refused
sed 's/op: stack, factor: 2}/op: random, factor: 2, ramp_steps: 100}/' "$T/grow.yaml" >"$T/ramp.yaml"
"$SPROUT" train "$T/ramp.yaml" --set data.train="$T/data/train.bin" --set data.val="$VAL" \
  --set run.out="$T/ramp" 2>"$T/log" || { cat "$T/log"; exit 1; }
set +e
"$SPROUT" export "$T/ramp" --format hf "$T/hf_ramp" 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q "block 2 has branch scale" "$T/err" && [ ! -e "$T/hf_ramp" ] ||
  { cat "$T/err"; die "export inside a ramp (rc $rc)"; }
ok "export inside a growth ramp refused: $(cat "$T/err")"
# a non-empty DIR: refused, untouched; --force replaces it
mkdir "$T/full" && echo keep >"$T/full/mine"
set +e
"${MPIEXEC[@]}" -n 2 "$SPROUT" export "$CKA" --format hf "$T/full" 2>"$T/err"; rc=$?
set -e
# (mpirun adds its own lines: sprout's is said once, by rank 0, and both ranks exit 2)
[ $rc = 2 ] && [ "$(grep -c 'sprout: error' "$T/err")" = 1 ] && grep -q "full: exists and is not empty" "$T/err" &&
  [ "$(cat "$T/full/mine")" = keep ] && [ "$(ls "$T/full")" = mine ] || { cat "$T/err"; die "non-empty DIR (rc $rc)"; }
"$SPROUT" export "$CKA" --format hf "$T/full" --force >/dev/null
[ ! -e "$T/full/mine" ] && cmp -s "$T/full/model.safetensors" "$T/hf_a/model.safetensors" || die "--force"
mkdir "$T/empty" && "$SPROUT" export "$CKA" --format hf "$T/empty" >/dev/null && [ -f "$T/empty/config.json" ] || die "empty DIR"
ok "non-empty DIR refused (exit 2 on both ranks' behalf), --force replaces it, an empty DIR is used"

# ---- import round trip ----
"$SPROUT" import "$T/hf_a" --out "$T/imp_a.h5" --config "$T/a/config.yaml" >/dev/null
$PY - "$CKA" "$T/imp_a.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["model"]) == sorted(b["model"])
for k in a["model"]:
    assert np.array_equal(a["model"][k][()].view(np.uint32), b["model"][k][()].view(np.uint32)), k
for k in b["optim/m"]:
    assert not b["optim/m"][k][()].any() and not b["optim/v"][k][()].any(), k
assert not b["optim/slab_steps"][()].any()
assert b["train"].attrs["step"] == 0 and b["train"].attrs["growth_index"] == 0
print("imported /model equals the original bit for bit; moments and steps zero; step 0")
PY
"$LOGITS" "$CKA" "$VAL" 4 "$T/l1.bin" && "$LOGITS" "$T/imp_a.h5" "$VAL" 4 "$T/l2.bin"
cmp "$T/l1.bin" "$T/l2.bin" || die "logits of the imported checkpoint differ"
A=$("$SPROUT" eval "$CKA" --data "$VAL")
B=$("$SPROUT" eval "$T/imp_a.h5" --data "$VAL")
[ "$A" = "$B" ] || die "eval: '$A' vs '$B'"
echo "eval: $A"
ok "export -> import: /model, logits and eval bit for bit"
"$SPROUT" inspect "$T/imp_a.h5" >/dev/null || die "the imported checkpoint does not verify"
# resume it with the growth config: 2 blocks at stage 0, grown to 4 at step 3
"$SPROUT" train "$T/grow.yaml" --set data.train="$T/data/train.bin" --set data.val="$VAL" \
  --set run.out="$T/r" --resume "$T/imp_a.h5" 2>"$T/log" || { cat "$T/log"; die "resume"; }
"$SPROUT" inspect "$T/r" >"$T/out"
grep -q "resumed from $T/imp_a.h5 at step 0" "$T/log" && grep -q "step 6, .*growth stage 1" "$T/out" ||
  { cat "$T/log"; die "resume did not train through the growth event"; }
ok "train --resume from the imported checkpoint, through a growth event"
# the defaults as /config (no --config), the pp=2 grown export with its config less growth
"$SPROUT" import "$T/hf_a" --out "$T/imp_def.h5" >/dev/null
[ "$("$SPROUT" eval "$T/imp_def.h5" --data "$VAL" | awk '{print $2}')" = "$(echo "$A" | awk '{print $2}')" ] || die "default-config import eval"
"${MPIEXEC[@]}" -n 2 "$SPROUT" import "$T/hf_b" --out "$T/imp_b.h5" --config "$T/grow.yaml" --set growth=[] >/dev/null
"$LOGITS" "$CKB" "$VAL" 4 "$T/l1.bin" && "$LOGITS" "$T/imp_b.h5" "$VAL" 4 "$T/l2.bin" && cmp "$T/l1.bin" "$T/l2.bin" ||
  die "grown model round trip"
ok "import with default /config; mpirun -np 2 import of the grown model, logits bit for bit"
# variants that import: BF16 (exactly its values), F16, GPT2Model names, a tied lm_head copy
"$SPROUT" import "$T/hf_a16" --out "$T/imp16.h5" >/dev/null
for c in f16 hub_style lm_head; do
  $PY "$SRC/tests/torch/hf_craft.py" "$T/hf_a" "$T/v_$c" "$c"
  "$SPROUT" import "$T/v_$c" --out "$T/v_$c.h5" >/dev/null || die "import $c"
done
$PY - "$T" <<'PY'
import sys, h5py, numpy as np
sys.path.insert(0, __import__("os").environ["SPROUT_SOURCE_DIR"] + "/tests/torch")
import safetensors_ref
T = sys.argv[1]
t16, _, _ = safetensors_ref.read(f"{T}/hf_a16/model.safetensors")
t32, _, _ = safetensors_ref.read(f"{T}/hf_a/model.safetensors")
for path, want in ((f"{T}/imp16.h5", {k: safetensors_ref.bf16_to_f32(v) for k, v in t16.items()}),
                   (f"{T}/v_f16.h5", {k: v.astype(np.float16).astype(np.float32) for k, v in t32.items()}),
                   (f"{T}/v_hub_style.h5", t32), (f"{T}/v_lm_head.h5", t32)):
    m = h5py.File(path, "r")["model"]
    for k, v in want.items():
        assert np.array_equal(m[k][()], v), f"{path}: {k}"
print("BF16, F16, Hub-style and lm_head imports hold exactly the file's values")
PY
ok "BF16, F16, Hub-style (bare names, mask buffers) and tied-lm_head imports"

# ---- bad imports: exit 2, one line naming the tensor or field, nothing written ----
bad() { bad_from hf_a "$@"; } # CASE EXPECTED-SUBSTRING
bad wrong_shape "tensor transformer.h.0.ln_1.weight: shape [32, 2] but config.json implies [64]"
bad missing "tensor transformer.h.1.mlp.c_fc.bias: missing"
bad unexpected "tensor transformer.h.7.ln_1.weight: unexpected"
bad unknown_dtype "tensor transformer.h.0.ln_1.weight: dtype 'Q4' is not one sprout reads"
bad f64 "tensor transformer.ln_f.bias: dtype 'F64'"
bad out_of_range "tensor transformer.ln_f.bias: data_offsets"
bad overlap "overlap those of transformer.h.0.ln_1.weight"
bad size_mismatch "tensor transformer.h.0.ln_1.weight: data_offsets span 252 bytes"
bad truncated_header "truncated header"
bad not_json "the header is not JSON"
bad absurd_length "header length 1099511627776 is absurd"
bad short_file "truncated"
bad lm_head_untied "tensor lm_head.weight: differs from transformer.wte.weight"
bad cfg_missing "config.json: n_embd is missing"
bad cfg_relu "config.json: activation_function"
bad cfg_untied "config.json: tie_word_embeddings"
bad cfg_n_ctx "config.json: n_ctx"
bad cfg_eps "config.json: layer_norm_epsilon"
bad cfg_not_json "config.json: line 1"
# a config whose model is not the file's, and an existing --out
set +e
"$SPROUT" import "$T/hf_a" --out "$T/x.h5" --config "$T/grow.yaml" --set model.d_model=128 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "n_embd = 64 but the config's model.d_model is 128" "$T/err" && [ ! -e "$T/x.h5" ] ||
  { cat "$T/err"; die "config mismatch (rc $rc)"; }
set +e
"$SPROUT" import "$T/hf_a" --out "$T/imp_a.h5" 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "imp_a.h5: exists" "$T/err" || die "existing --out"
ls -a "$T" >"$T/ls"; grep -q '\.tmp' "$T/ls" && die "a .tmp file is left"
ok "bad imports: 20 faults, each exit 2 in one line naming the tensor or field, nothing left"
echo "cli_hf: $pass passed, 0 failed"
