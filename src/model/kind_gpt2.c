/* The GPT-2 block kind: pre-LN, GELU MLP, learned positions, biases everywhere, head tied to the
 * token embedding. Hugging Face GPT2LMHeadModel names; weights in its Conv1D layout [in, out],
 * which is also sprout's, so checkpoints hold the slabs as they are. The forward and backward
 * are in forward.c. */
#include "forward.h"

/* axis roles {rows, cols} of the [rows, cols] view (model.h, sp_axis_role); Conv1D's [in, out]:
 * rows are consumed (in_cols 0) */
#define T1(n, d, r, c, g)                                                                          \
    { n, 1, {d, 0}, 0, 0, 0, 0, r, c, 0, g, 0, 0, 0 }
#define T2(n, d0, d1, r, c, rp, z)                                                                 \
    { n, 2, {d0, d1}, 0, 0, 0, rp, r, c, 0, 0, 0, z, 0 }

static int block_tensors(const sp_spec *s, sp_tensor_info *out) {
    int64_t C = s->d_model, F = s->d_ff;
    const sp_tensor_info tab[SP_BLOCK_NT] = {
        [SP_LN1_W] = T1("ln_1.weight", C, SP_AX_FIXED, SP_AX_R, 1),
        [SP_LN1_B] = T1("ln_1.bias", C, SP_AX_FIXED, SP_AX_R, 0),
        [SP_QKV_W] = T2("attn.c_attn.weight", C, 3 * C, SP_AX_R, SP_AX_QKV, 0, 0),
        [SP_QKV_B] = T1("attn.c_attn.bias", 3 * C, SP_AX_FIXED, SP_AX_QKV, 0),
        [SP_ATTPROJ_W] = T2("attn.c_proj.weight", C, C, SP_AX_O, SP_AX_R, 1, 1),
        [SP_ATTPROJ_B] = T1("attn.c_proj.bias", C, SP_AX_FIXED, SP_AX_R, 0),
        [SP_LN2_W] = T1("ln_2.weight", C, SP_AX_FIXED, SP_AX_R, 1),
        [SP_LN2_B] = T1("ln_2.bias", C, SP_AX_FIXED, SP_AX_R, 0),
        [SP_FC_W] = T2("mlp.c_fc.weight", C, F, SP_AX_R, SP_AX_F, 0, 0),
        [SP_FC_B] = T1("mlp.c_fc.bias", F, SP_AX_FIXED, SP_AX_F, 0),
        [SP_FCPROJ_W] = T2("mlp.c_proj.weight", F, C, SP_AX_F, SP_AX_R, 1, 1),
        [SP_FCPROJ_B] = T1("mlp.c_proj.bias", C, SP_AX_FIXED, SP_AX_R, 0),
    };
    for (int i = 0; i < SP_BLOCK_NT; i++) out[i] = tab[i];
    /* the output projections' biases go with their weights: zeroing all four makes a pre-LN
     * block x + 0 + 0 */
    out[SP_ATTPROJ_B].zero_id = out[SP_FCPROJ_B].zero_id = 1;
    return SP_BLOCK_NT;
}

static int global_tensors(const sp_spec *s, sp_tensor_info *out) {
    int64_t C = s->d_model;
    const sp_tensor_info tab[SP_GLOBAL_NT] = {
        /* the token axis is a lookup row, not a channel */
        [SP_WTE] = T2("transformer.wte.weight", s->vocab, C, SP_AX_FIXED, SP_AX_R, 0, 0),
        [SP_WPE] = T2("transformer.wpe.weight", s->seq_len, C, SP_AX_FIXED, SP_AX_R, 0, 0),
        [SP_LNF_W] = T1("transformer.ln_f.weight", C, SP_AX_FIXED, SP_AX_R, 1),
        [SP_LNF_B] = T1("transformer.ln_f.bias", C, SP_AX_FIXED, SP_AX_R, 0),
    };
    for (int i = 0; i < SP_GLOBAL_NT; i++) out[i] = tab[i];
    out[SP_WPE].lookup = 1;
    out[SP_LNF_W].tied = out[SP_LNF_B].tied = 1; /* ln_f feeds the head tied to wte */
    return SP_GLOBAL_NT;
}

static int default_d_ff(int d_model) {
    return 4 * d_model;
}

/* causal attention: QK^T and AV, 2 x 2 C T multiply-adds forward, twice that backward */
static double attn_flops(const sp_spec *s) {
    return 12.0 * (double)s->d_model * s->seq_len;
}

const sp_kind sp_kind_gpt2 = {
    .name = "gpt2",
    .hf_block = "transformer.h.%d.%s",
    .hparams = 0,
    .ff_in = 1,
    .always_tied = 1,
    .objective = "causal",
    .acts16 = 1,
    .default_d_ff = default_d_ff,
    .block_tensors = block_tensors,
    .global_tensors = global_tensors,
    .attn_flops = attn_flops,
    .embed_forward = sp_gpt2_embed_forward,
    .block_forward = sp_gpt2_block_forward,
    .head_forward = sp_gpt2_head_forward,
    .head_backward = sp_gpt2_head_backward,
    .block_backward = sp_gpt2_block_backward,
    .embed_backward = sp_gpt2_embed_backward,
};
