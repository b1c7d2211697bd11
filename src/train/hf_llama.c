/* LLaMA's Hugging Face side (hf_kind.h): LlamaForCausalLM, LlamaConfig. sprout's llama is the
 * config with every head its own k/v head, no biases, unscaled RoPE over the whole head. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hf_kind.h"

static const sp_hf_rule k_rules[] = {
    {"hidden_act", SP_JSON_STRING, "silu", NULL, -1, "sprout's SwiGLU gates with SiLU"},
    {"attention_bias", SP_JSON_FALSE, NULL, NULL, 1, "sprout's llama has no biases"},
    {"mlp_bias", SP_JSON_FALSE, NULL, NULL, 1, "sprout's llama has no biases"},
    {"rope_scaling", SP_JSON_NULL, NULL, NULL, -1, "sprout's RoPE is unscaled"},
    {"partial_rotary_factor", SP_JSON_NULL, NULL, NULL, -1, "sprout rotates the whole head"},
};

static void write_config(char *buf, size_t n, const sp_spec *s) {
    char eps[32], theta[32];
    snprintf(buf, n,
             "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
             "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
             "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n"
             "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %s,\n"
             "  \"rope_theta\": %s,\n  \"rope_scaling\": null,\n  \"hidden_act\": \"silu\",\n"
             "  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n"
             "  \"mlp_bias\": false,\n  \"pretraining_tp\": 1,\n"
             "  \"initializer_range\": 0.02,\n  \"use_cache\": true,\n"
             "  \"tie_word_embeddings\": %s,\n",
             s->d_model, s->d_ff, s->n_layer, s->n_head, s->n_head, s->d_model / s->n_head,
             s->seq_len, sp_hf_num(s->norm_eps, eps, sizeof eps),
             sp_hf_num(s->rope_theta, theta, sizeof theta), s->tie_head ? "true" : "false");
}

/* Newer transformers keep the rotary settings in rope_parameters {rope_type, rope_theta, ...}
 * instead of the top-level rope_theta / rope_scaling: only the default (unscaled) type is
 * sprout's, and its theta must not disagree with a top-level one. */
static int read_rope_parameters(const char *path, const sp_json_value *j, sp_spec *s, sp_err *err) {
    const sp_json_value *rp = sp_json_get(j, "rope_parameters");
    if (!rp || rp->type == SP_JSON_NULL) return SP_OK;
    if (rp->type != SP_JSON_OBJECT)
        return sp_err_set(err, SP_EINPUT, "%s: rope_parameters: %s is not an object", path,
                          sp_json_type_name(rp->type));
    const sp_json_value *ty = sp_json_get(rp, "rope_type");
    if (ty && ty->type != SP_JSON_NULL &&
        (ty->type != SP_JSON_STRING || strcmp(ty->str, "default")))
        return sp_err_set(err, SP_EINPUT,
                          "%s: rope_parameters.rope_type: %s%s%s is not supported (sprout's RoPE "
                          "is unscaled: \"default\")",
                          path, ty->type == SP_JSON_STRING ? "\"" : "",
                          ty->type == SP_JSON_STRING ? ty->str : sp_json_type_name(ty->type),
                          ty->type == SP_JSON_STRING ? "\"" : "");
    const sp_json_value *t = sp_json_get(rp, "rope_theta");
    if (!t || t->type == SP_JSON_NULL) return SP_OK;
    double theta = t->type == SP_JSON_NUMBER ? t->num : 0;
    if (!(theta > 0) || !isfinite(theta))
        return sp_err_set(err, SP_EINPUT,
                          "%s: rope_parameters.rope_theta must be a positive number", path);
    const sp_json_value *top = sp_json_get(j, "rope_theta");
    if (top && top->type != SP_JSON_NULL && s->rope_theta != theta) {
        char a[32], b[32];
        return sp_err_set(err, SP_EINPUT,
                          "%s: rope_parameters.rope_theta: %s differs from rope_theta = %s", path,
                          sp_hf_num(theta, a, sizeof a), sp_hf_num(s->rope_theta, b, sizeof b));
    }
    s->rope_theta = theta;
    return SP_OK;
}

static int read_config(const char *path, const sp_json_value *j, sp_spec *s, sp_err *err) {
    int kv = 0, hd = 0, rc;
    /* absent: LlamaConfig's defaults (kv heads = heads, eps 1e-6, theta 10000, untied) */
    if ((rc = sp_hf_cfg_int(path, j, "num_key_value_heads", s->n_head, &kv, err)) ||
        (rc = sp_hf_cfg_int(path, j, "head_dim", 0, &hd, err)) ||
        (rc = sp_hf_cfg_num(path, j, "rms_norm_eps", 1e-6, &s->norm_eps, err)) ||
        (rc = sp_hf_cfg_num(path, j, "rope_theta", 10000.0, &s->rope_theta, err)) ||
        (rc = read_rope_parameters(path, j, s, err)))
        return rc;
    if (kv != s->n_head)
        return sp_err_set(err, SP_EINPUT,
                          "%s: num_key_value_heads: %d differs from num_attention_heads = %d "
                          "(sprout's llama gives every head its own k/v head)",
                          path, kv, s->n_head);
    if (hd && hd * s->n_head != s->d_model)
        return sp_err_set(err, SP_EINPUT,
                          "%s: head_dim: %d is not hidden_size / num_attention_heads = %d", path,
                          hd, s->d_model / s->n_head);
    const sp_json_value *t = sp_json_get(j, "tie_word_embeddings");
    if (t && t->type != SP_JSON_NULL && t->type != SP_JSON_TRUE && t->type != SP_JSON_FALSE)
        return sp_err_set(err, SP_EINPUT, "%s: tie_word_embeddings: %s is not a boolean", path,
                          sp_json_type_name(t->type));
    s->tie_head = t && t->type == SP_JSON_TRUE;
    return SP_OK;
}

static const char *const k_buffers[] = {".self_attn.rotary_emb.inv_freq", NULL};

const sp_hf_kind sp_hf_llama = {
    .kind = "llama",
    .arch = "LlamaForCausalLM",
    .model_type = "llama",
    .prefix = "model.",
    .block = "layers.",
    .buffers = k_buffers,
    .head = "lm_head.weight",
    .field = {"vocab_size", "max_position_embeddings", "hidden_size", "num_attention_heads",
              "intermediate_size", "num_hidden_layers"},
    .hparam = {"rms_norm_eps", "rope_theta", "tie_word_embeddings"},
    .rules = k_rules,
    .nrules = (int)(sizeof k_rules / sizeof k_rules[0]),
    .write_config = write_config,
    .read_config = read_config,
};
