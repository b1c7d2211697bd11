/* The LLaMA block kind (Hugging Face LlamaForCausalLM, every head its own k/v head): pre-norm
 * RMSNorm (model.norm_eps), rotary position embedding on q and k (model.rope_theta, HF's
 * rotate_half), SwiGLU MLP, no biases, no learned positions, the head tied to embed_tokens or
 * its own lm_head.weight (model.tie_head). The forward and backward are in forward_llama.c.
 *
 * Layout: every matrix is stored as Hugging Face stores it, nn.Linear's [out, in], so checkpoints
 * hold the slabs as they are and nothing is ever transposed; the products run as x W^T. q_proj,
 * k_proj and v_proj sit one after the other in the slab, which makes them one [3C, C] matrix
 * whose product is the fused q | k | v the attention kernel reads; gate_proj and up_proj
 * likewise make one [2F, C] matrix whose product is the gate | up buffer of the SwiGLU kernel. */
#include "forward.h"
#include "sprout/kernels.h"

/* Axis roles for the width operators (model.h, sp_axis_role). A weight [out, in] has its produced
 * channels in rows and its consumed ones in cols (in_cols); a norm gain runs over R. */
#define T1(n, d)                                                                                   \
    { n, 1, {d, 0}, 0, 0, 0, 0, SP_AX_FIXED, SP_AX_R, 0, 1, 0, 0, 0 }
#define T2(n, d0, d1, out, in, z)                                                                  \
    { n, 2, {d0, d1}, 0, 0, 0, 0, out, in, 1, 0, 0, z, 0 }
/* a table [vocab, C] read by token: its C axis is copied, on lookup and on the head alike */
#define TV(n, d0, d1)                                                                              \
    { n, 2, {d0, d1}, 0, 0, 0, 0, SP_AX_FIXED, SP_AX_R, 0, 0, 0, 0, 0 }

static int block_tensors(const sp_spec *s, sp_tensor_info *out) {
    int64_t C = s->d_model, F = s->d_ff;
    const sp_tensor_info tab[SP_LLAMA_NT] = {
        [SP_L_LN1] = T1("input_layernorm.weight", C),
        /* q, k, v: three tensors, so each is one head-major R family of its own */
        [SP_L_Q] = T2("self_attn.q_proj.weight", C, C, SP_AX_R, SP_AX_R, 0),
        [SP_L_K] = T2("self_attn.k_proj.weight", C, C, SP_AX_R, SP_AX_R, 0),
        [SP_L_V] = T2("self_attn.v_proj.weight", C, C, SP_AX_R, SP_AX_R, 0),
        /* the two projections onto the residual stream: zeroed, the block is x + 0 + 0 */
        [SP_L_O] = T2("self_attn.o_proj.weight", C, C, SP_AX_R, SP_AX_O, 1),
        [SP_L_LN2] = T1("post_attention_layernorm.weight", C),
        [SP_L_GATE] = T2("mlp.gate_proj.weight", F, C, SP_AX_F, SP_AX_R, 0),
        [SP_L_UP] = T2("mlp.up_proj.weight", F, C, SP_AX_F, SP_AX_R, 0),
        [SP_L_DOWN] = T2("mlp.down_proj.weight", C, F, SP_AX_R, SP_AX_F, 1),
    };
    for (int i = 0; i < SP_LLAMA_NT; i++) out[i] = tab[i];
    return SP_LLAMA_NT;
}

static int global_tensors(const sp_spec *s, sp_tensor_info *out) {
    int64_t C = s->d_model;
    out[SP_L_EMBED] = (sp_tensor_info)TV("model.embed_tokens.weight", s->vocab, C);
    out[SP_L_NORM] = (sp_tensor_info)T1("model.norm.weight", C);
    /* the head reads the norm's output over k copies of each channel when widened, tied or not
     * (lm_head's C axis is copied like embed_tokens'): the width splits divide the gain by k */
    out[SP_L_NORM].tied = 1;
    if (s->tie_head) return 2;  /* the head reads embed_tokens */
    out[SP_L_EMBED].lookup = 1; /* read by index only: the head has its own matrix */
    out[SP_L_HEAD] = (sp_tensor_info)TV("lm_head.weight", s->vocab, C);
    return 3;
}

/* ceil(8 d / 3) rounded up to a multiple of 64 */
static int default_d_ff(int d_model) {
    long long f = (8LL * d_model + 2) / 3;
    f = (f + 63) / 64 * 64;
    return f > 0x7fffffff ? 0x7fffffff : (int)f;
}

static double attn_flops(const sp_spec *s) {
    return 12.0 * (double)s->d_model * s->seq_len;
}

static size_t rope_floats(const sp_spec *s) {
    return (size_t)s->seq_len * (size_t)(s->d_model / s->n_head);
}

static void rope_fill(const sp_spec *s, float *tab) {
    sp_rope_table(tab, s->seq_len, s->d_model / s->n_head, s->rope_theta);
}

const sp_kind sp_kind_llama = {
    .name = "llama",
    .hf_block = "model.layers.%d.%s",
    .hparams = 1,
    .ff_in = 2,
    .default_norm_eps = 1e-5,
    .objective = "causal",
    .acts16 = 1,
    .default_d_ff = default_d_ff,
    .block_tensors = block_tensors,
    .global_tensors = global_tensors,
    .aux_floats = rope_floats,
    .aux_fill = rope_fill,
    .attn_flops = attn_flops,
    .embed_forward = sp_llama_embed_forward,
    .block_forward = sp_llama_block_forward,
    .head_forward = sp_llama_head_forward,
    .head_backward = sp_llama_head_backward,
    .block_backward = sp_llama_block_backward,
    .embed_backward = sp_llama_embed_backward,
};
