#!/usr/bin/env bash
# Hugging Face interchange of the bert block (docs/interop.md, "BERT").
#  export: a bert-tiny checkpoint (made small, a few masked-LM steps) is read back by a plain
#    Python safetensors reader into the PyTorch BertForMaskedLM reference
#    (tests/torch/check_hf_export.py): BertConfig fields, the byte tokenizer's files (the 4
#    special ids past them), no cls.predictions.decoder.* (tied),
#    tensors equal to /model (bf16: RNE exactly), the MLM head's logits on the unmasked windows
#    within 1e-5 of sprout's.
#  import: export -> import gives the same /model, logits and `sprout eval` bit for bit, the
#    spec's block bert and norm_eps from config.json; older saves (position_ids buffer, the
#    decoder's weight and bias under their own names) and BertModel-style names import.
#  refusals: type_vocab_size 2, hidden_act gelu_new, is_decoder, a relative position embedding,
#    a missing query weight, a wrong-shape intermediate dense, a decoder bias that is not
#    cls.predictions.bias, a decoder weight that is not word_embeddings: exit 2, one line naming the field or tensor, no file left.
# usage: hf_bert.sh SPROUT SP_HF_LOGITS
set -euo pipefail
SPROUT=$1; LOGITS=$2
source "$(dirname "$0")/hf_lib.sh"

for i in $(seq 300); do echo "Line $i of the bert corpus: masked bytes go to transformers and back."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
VAL=$T/data/val.bin
"$SPROUT" train "$SRC/configs/bert-tiny.yaml" --set model.seq_len=32 --set model.d_model=64 \
  --set model.n_layer=2 --set model.norm_eps=1e-6 --set train.steps=4 --set train.global_batch=4 \
  --set train.micro_batch=2 --set train.warmup_steps=2 --set eval.every=0 \
  --set data.train="$T/data/train.bin" --set data.val="$VAL" --set run.out="$T/b" 2>"$T/log" ||
  { cat "$T/log"; exit 1; }
CK=$T/b/ckpt/$(cat "$T/b/ckpt/latest")

# ---- export ----
"$SPROUT" export "$CK" --format hf "$T/hf" >/dev/null
check "$T/hf" "$CK"; ok "export f32 (no cls.predictions.decoder.*: tied)"
"$SPROUT" export "$T/b" --format hf "$T/hf16" --dtype bfloat16 >/dev/null
check "$T/hf16" "$CK"; ok "export bf16"

# ---- import round trip ----
"$SPROUT" import "$T/hf" --out "$T/imp.h5" --config "$T/b/config.yaml" >/dev/null
same "$CK" "$T/imp.h5"
"$SPROUT" import "$T/hf" --out "$T/imp_def.h5" >/dev/null
same "$CK" "$T/imp_def.h5" noeval
"$SPROUT" inspect "$T/imp_def.h5" >"$T/out" || die "the imported checkpoint does not verify"
grep -q "block bert, .*norm_eps 1e-06, .*tie_head 1" "$T/out" || { cat "$T/out"; die "spec"; }
ok "export -> import: /model, spec, logits and eval bit for bit; without --config: block bert, norm_eps"
$PY "$SRC/tests/torch/hf_craft.py" "$T/hf" "$T/v_hub" bert_hub
"$SPROUT" import "$T/v_hub" --out "$T/v_hub.h5" --config "$T/b/config.yaml" >/dev/null
same "$CK" "$T/v_hub.h5" noeval
$PY "$SRC/tests/torch/hf_craft.py" "$T/hf" "$T/v_bare" bert_bare
"$SPROUT" import "$T/v_bare" --out "$T/v_bare.h5" --config "$T/b/config.yaml" >/dev/null
same "$CK" "$T/v_bare.h5" noeval
ok "a save with position_ids and the decoder's weight and bias, BertModel-style names: import"

# ---- refusals: exit 2, one line naming the field or tensor, nothing written ----
bad_from hf cfg_type_vocab "config.json: type_vocab_size: 2 is not supported"
bad_from hf cfg_gelu_new "config.json: hidden_act: \"gelu_new\" is not supported"
bad_from hf cfg_is_decoder "config.json: is_decoder: true is not supported"
bad_from hf cfg_relative "config.json: position_embedding_type: \"relative_key\" is not supported"
bad_from hf missing_query "tensor bert.encoder.layer.0.attention.self.query.weight: missing"
bad_from hf intermediate_shape "tensor bert.encoder.layer.0.intermediate.dense.weight: shape [64, 256] but config.json implies [256, 64]"
bad_from hf decoder_bias_differs "tensor cls.predictions.decoder.bias: differs from cls.predictions.bias (element 5)"
bad_from hf decoder_untied "tensor cls.predictions.decoder.weight: differs from bert.embeddings.word_embeddings.weight (element 5)"
ls -a "$T" >"$T/ls"; grep -q '\.tmp' "$T/ls" && die "a temporary file is left"
ok "bad imports: 8 faults, each exit 2 in one line naming the field or tensor, nothing left"
echo "cli_hf_bert: $pass passed, 0 failed"
