/* Hugging Face interchange (docs/interop.md): a sprout checkpoint to a transformers directory of
 * its kind's model (GPT2LMHeadModel, LlamaForCausalLM: config.json, model.safetensors, tokenizer
 * files) and back. Single-process functions: under mpirun the command runs them on rank 0. */
#ifndef SPROUT_HF_H
#define SPROUT_HF_H

#include "sprout/config.h"
#include "sprout/core.h"

/* Writes DIR from the checkpoint file ckpt: everything into a temporary directory beside DIR,
 * renamed into place at the end (an existing DIR is replaced only when it is empty or force is
 * set; otherwise SP_EINPUT naming it). bf16: the tensors as BF16 (round to nearest even of the
 * fp32 weights), else F32. */
int sp_hf_export(const char *ckpt, const char *dir, int bf16, int force, const sp_log *log,
                 sp_err *err);

/* Reads DIR/config.json (its model_type picks the kind) and DIR/model.safetensors (F32, BF16 or
 * F16 tensors) into a sprout checkpoint at step 0 with zero AdamW state, written to out (out.tmp,
 * then renamed; an existing out only with force). cfg: the config the checkpoint will be trained
 * with, stored as its /config (its model before any growth event must be config.json's, its
 * train.seed is the checkpoint's); NULL: the defaults with config.json's model and no growth. Every
 * mismatch is SP_EINPUT in one line naming the file and the tensor or field; nothing is written
 * then. */
int sp_hf_import(const char *dir, const char *out, const sp_config *cfg, int force, sp_err *err);

#endif
