#!/usr/bin/env bash
# Hugging Face interchange of the llama block (docs/interop.md, "LLaMA").
#  export: llama-tiny checkpoints (untied head; tied head; pp = 2 after a G_stack event, exported
#    under mpirun -np 2)
#    are read back by a plain Python safetensors reader into the PyTorch LlamaForCausalLM
#    reference (tests/torch/check_hf_export.py): LlamaConfig fields, HF's separate q/k/v and
#    gate/up tensors, lm_head.weight written untied and omitted tied, tensors equal to /model
#    (bf16: RNE exactly), logits within 1e-5 of sprout's.
#  import: export -> import gives the same /model, logits and `sprout eval` bit for bit, the
#    spec's block llama, norm_eps, rope_theta and tie_head from config.json; LlamaModel names
#    with rotary buffers, a tied model saved with its lm_head copy and rope_theta inside
#    rope_parameters (newer transformers) import.
#  refusals: rope_scaling, a rope_parameters of another type or theta, num_key_value_heads != num_attention_heads, attention_bias, another
#    model_type, a missing q_proj, a wrong-shape up_proj, an untied model without lm_head, a tied
#    lm_head that is not embed_tokens, a config of another block: exit 2, one line naming the
#    field or tensor, no file left.
# usage: hf_llama.sh SPROUT SP_HF_LOGITS MPIEXEC [MPIEXEC_FLAGS...]
set -euo pipefail
SPROUT=$1; LOGITS=$2; shift 2
MPIEXEC=("$@")
source "$(dirname "$0")/hf_lib.sh"

for i in $(seq 300); do echo "Line $i of the llama corpus: rotary weights go to transformers and back."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
VAL=$T/data/val.bin
common=(--set model.seq_len=32 --set model.d_model=64 --set train.steps=4 --set train.global_batch=4 --set train.micro_batch=2
        --set train.warmup_steps=2 --set eval.every=0 --set model.rope_theta=5000
        --set data.train="$T/data/train.bin" --set data.val="$VAL")
CFG=$SRC/configs/llama-tiny.yaml
flat=(--set model.n_layer=2 --set growth=[])
"$SPROUT" train "$CFG" "${common[@]}" "${flat[@]}" --set run.out="$T/u" 2>"$T/log" || { cat "$T/log"; exit 1; }
"$SPROUT" train "$CFG" "${common[@]}" "${flat[@]}" --set model.tie_head=true --set run.out="$T/t" 2>"$T/log" ||
  { cat "$T/log"; exit 1; }
# pp = 2 through llama-tiny's G_stack event (2 -> 4 blocks after 256 tokens)
"${MPIEXEC[@]}" -n 2 "$SPROUT" train "$CFG" "${common[@]}" --set parallel.pipeline=2 \
  --set 'growth[0].at_tokens=256' --set 'growth[0].pipeline=2' --set run.out="$T/p" 2>"$T/log" ||
  { cat "$T/log"; exit 1; }
"$SPROUT" inspect "$T/p" >"$T/out"
grep -q "n_layer 4," "$T/out" && grep -q "growth stage 1" "$T/out" || die "run p is not past its growth event"
ck() { echo "$T/$1/ckpt/$(cat "$T/$1/ckpt/latest")"; }

# ---- export ----
"$SPROUT" export "$(ck u)" --format hf "$T/hf_u" >/dev/null
check "$T/hf_u" "$(ck u)" || die "export f32, untied head (lm_head.weight written)"; ok "export f32, untied head (lm_head.weight written)"
"$SPROUT" export "$T/u" --format hf "$T/hf_u16" --dtype bfloat16 >/dev/null
check "$T/hf_u16" "$(ck u)" || die "export bf16"; ok "export bf16"
"$SPROUT" export "$T/t" --format hf "$T/hf_t" >/dev/null
check "$T/hf_t" "$(ck t)" || die "export f32, tied head (no lm_head.weight)"; ok "export f32, tied head (no lm_head.weight)"
"${MPIEXEC[@]}" -n 2 "$SPROUT" export "$T/p" --format hf "$T/hf_p" >"$T/out" 2>"$T/err" ||
  { cat "$T/err"; die "mpirun -np 2 export"; }
check "$T/hf_p" "$(ck p)" || die "export under mpirun -np 2 of a pp=2 checkpoint after G_stack"; ok "export under mpirun -np 2 of a pp=2 checkpoint after G_stack"

# ---- import round trip ----
"$SPROUT" import "$T/hf_u" --out "$T/imp_u.h5" --config "$T/u/config.yaml" >/dev/null
same "$(ck u)" "$T/imp_u.h5"
"$SPROUT" import "$T/hf_t" --out "$T/imp_t.h5" --config "$T/t/config.yaml" >/dev/null
same "$(ck t)" "$T/imp_t.h5"
"$SPROUT" import "$T/hf_t" --out "$T/imp_def.h5" >/dev/null
same "$(ck t)" "$T/imp_def.h5" noeval
"${MPIEXEC[@]}" -n 2 "$SPROUT" import "$T/hf_p" --out "$T/imp_p.h5" --config "$T/p/config.yaml" \
  --set growth=[] >/dev/null
same "$(ck p)" "$T/imp_p.h5" noeval
# its /config's growth event runs pp = 2: eval it on 2 ranks
A=$("${MPIEXEC[@]}" -n 2 "$SPROUT" eval "$(ck p)" --data "$VAL")
B=$("${MPIEXEC[@]}" -n 2 "$SPROUT" eval "$T/imp_p.h5" --data "$VAL")
[ "$A" = "$B" ] || die "pp=2 import: eval '$A' vs '$B'"
echo "  eval (mpirun -np 2): $B"
"$SPROUT" inspect "$T/imp_def.h5" >"$T/out" || die "the imported checkpoint does not verify"
grep -q "block llama, .*norm_eps 1e-05, rope_theta 5000, tie_head 1" "$T/out" || { cat "$T/out"; die "spec"; }
$PY - "$T/imp_def.h5" <<'PY'
import sys, h5py
y = h5py.File(sys.argv[1], "r")["config"].attrs["yaml"].decode()
for want in ('block: "llama"', "norm_eps: 1e-05", "rope_theta: 5000", 'tie_head: "true"'):
    assert f"\n  {want}\n" in y, f"/config lacks {want}:\n{y}"
PY
ok "export -> import (untied, tied, pp=2 under mpirun): /model, spec, logits and eval bit for bit; without --config: /config block llama and its settings"
# variants that import: LlamaModel names with rotary buffers; a tied save with its lm_head copy
$PY "$SRC/tests/torch/hf_craft.py" "$T/hf_u" "$T/v_hub" llama_hub
"$SPROUT" import "$T/v_hub" --out "$T/v_hub.h5" --config "$T/u/config.yaml" >/dev/null
same "$(ck u)" "$T/v_hub.h5"
$PY "$SRC/tests/torch/hf_craft.py" "$T/hf_t" "$T/v_lm" lm_head
"$SPROUT" import "$T/v_lm" --out "$T/v_lm.h5" --config "$T/t/config.yaml" >/dev/null
same "$(ck t)" "$T/v_lm.h5"
# rope_theta 5000 only inside rope_parameters: the default 10000 would be wrong and rejected by
# the config's model.rope_theta
$PY "$SRC/tests/torch/hf_craft.py" "$T/hf_u" "$T/v_rp" rope_parameters
"$SPROUT" import "$T/v_rp" --out "$T/v_rp.h5" --config "$T/u/config.yaml" >/dev/null
same "$(ck u)" "$T/v_rp.h5"
ok "LlamaModel names with inv_freq buffers, a tied model saved with lm_head, rope_parameters: import"

# ---- refusals: exit 2, one line naming the field or tensor, nothing written ----
bad_from hf_u cfg_rope_scaling "config.json: rope_scaling: an object is not supported"
bad_from hf_u cfg_rope_type "config.json: rope_parameters.rope_type: \"llama3\" is not supported"
bad_from hf_u cfg_rope_theta2 "config.json: rope_parameters.rope_theta: 10000.0 differs from rope_theta = 5000.0"
bad_from hf_u cfg_kv_heads "config.json: num_key_value_heads: 2 differs from num_attention_heads = 4"
bad_from hf_u cfg_attention_bias "config.json: attention_bias: true is not supported"
bad_from hf_u cfg_model_type "config.json: model_type: 'mistral' is not one sprout reads (gpt2, llama, bert)"
bad_from hf_u missing_q_proj "tensor model.layers.1.self_attn.q_proj.weight: missing"
bad_from hf_u up_proj_shape "tensor model.layers.0.mlp.up_proj.weight: shape [64, 192] but config.json implies [192, 64]"
bad_from hf_u lm_head_missing "tensor lm_head.weight: missing"
bad_from hf_t lm_head_untied "tensor lm_head.weight: differs from model.embed_tokens.weight"
set +e
"$SPROUT" import "$T/hf_u" --out "$T/x.h5" --config "$SRC/configs/tiny.yaml" 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "model_type llama is a llama model but the config's model.block is gpt2" "$T/err" &&
  [ ! -e "$T/x.h5" ] || { cat "$T/err"; die "config of another block (rc $rc)"; }
set +e
"$SPROUT" import "$T/hf_u" --out "$T/x.h5" --config "$T/u/config.yaml" --set model.rope_theta=10000 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "rope_theta = 5000.0 but the config's model.rope_theta is 10000.0" "$T/err" &&
  [ ! -e "$T/x.h5" ] || { cat "$T/err"; die "config of another rope_theta (rc $rc)"; }
ls -a "$T" >"$T/ls"; grep -q '\.tmp' "$T/ls" && die "a temporary file is left"
ok "bad imports: 12 faults, each exit 2 in one line naming the field or tensor, nothing left"
echo "cli_hf_llama: $pass passed, 0 failed"
