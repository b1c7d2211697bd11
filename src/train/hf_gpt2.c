/* GPT-2's Hugging Face side (hf_kind.h): GPT2LMHeadModel, GPT2Config. */
#include <stdio.h>
#include <string.h>

#include "hf_kind.h"
#include "sprout/kernels.h"

static const sp_hf_rule k_rules[] = {
    {"activation_function", SP_JSON_STRING, "gelu_new", "gelu_pytorch_tanh", -1,
     "sprout's GELU is the tanh approximation"},
    {"tie_word_embeddings", SP_JSON_TRUE, NULL, NULL, 0, "sprout ties the head to wte"},
    {"scale_attn_weights", SP_JSON_TRUE, NULL, NULL, 0, "sprout scales attention by 1/sqrt(d)"},
    {"scale_attn_by_inverse_layer_idx", SP_JSON_FALSE, NULL, NULL, 1,
     "sprout does not scale attention by layer"},
    {"add_cross_attention", SP_JSON_FALSE, NULL, NULL, 1, "sprout has no cross-attention"},
};

static void write_config(char *buf, size_t n, const sp_spec *s) {
    snprintf(buf, n,
             "  \"n_positions\": %d,\n  \"n_ctx\": %d,\n"
             "  \"n_embd\": %d,\n  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_inner\": %d,\n"
             "  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": %g,\n"
             "  \"resid_pdrop\": 0.0,\n  \"embd_pdrop\": 0.0,\n  \"attn_pdrop\": 0.0,\n"
             "  \"initializer_range\": 0.02,\n  \"scale_attn_weights\": true,\n"
             "  \"scale_attn_by_inverse_layer_idx\": false,\n"
             "  \"reorder_and_upcast_attn\": false,\n  \"use_cache\": true,\n"
             "  \"tie_word_embeddings\": true,\n",
             s->seq_len, s->seq_len, s->d_model, s->n_layer, s->n_head, s->d_ff, (double)SP_LN_EPS);
}

static int read_config(const char *path, const sp_json_value *j, sp_spec *s, sp_err *err) {
    int n_ctx = 0; /* a legacy alias of n_positions: absent or equal */
    int rc = sp_hf_cfg_int(path, j, "n_ctx", 0, &n_ctx, err);
    if (rc) return rc;
    if (n_ctx && n_ctx != s->seq_len)
        return sp_err_set(err, SP_EINPUT, "%s: n_ctx: %d differs from n_positions = %d", path,
                          n_ctx, s->seq_len);
    /* sprout's LayerNorm eps is a constant of its kernels */
    const sp_json_value *eps = sp_json_get(j, "layer_norm_epsilon");
    if (eps && eps->type != SP_JSON_NULL &&
        (eps->type != SP_JSON_NUMBER || (float)eps->num != SP_LN_EPS)) {
        char v[32];
        snprintf(v, sizeof v, "%.9g", eps->num);
        return sp_err_set(err, SP_EINPUT, "%s: layer_norm_epsilon: %s is not sprout's %g", path,
                          eps->type == SP_JSON_NUMBER ? v : sp_json_type_name(eps->type),
                          (double)SP_LN_EPS);
    }
    return SP_OK;
}

static const char *const k_buffers[] = {".attn.bias", ".attn.masked_bias", NULL};

const sp_hf_kind sp_hf_gpt2 = {
    .kind = "gpt2",
    .arch = "GPT2LMHeadModel",
    .model_type = "gpt2",
    .prefix = "transformer.",
    .block = "h.",
    .buffers = k_buffers,
    .head = "lm_head.weight",
    .field = {"vocab_size", "n_positions", "n_embd", "n_head", "n_inner", "n_layer"},
    .ff_optional = 1,
    .rules = k_rules,
    .nrules = (int)(sizeof k_rules / sizeof k_rules[0]),
    .write_config = write_config,
    .read_config = read_config,
};
