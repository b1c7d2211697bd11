/* The BERT block kind (Hugging Face BertForMaskedLM, bidirectional): post-LN blocks
 * x = LN1(x + attn(x)), x = LN2(x + mlp(x)) with LayerNorm eps model.norm_eps (1e-12 by default,
 * HF's layer_norm_eps), exact erf GELU, biases everywhere, learned positions, one token type
 * (token_type_embeddings [1, C]: HF's config with type_vocab_size 1; every token has type 0), the
 * embeddings' LayerNorm, and the MLM head: cls.predictions.transform (dense, GELU, LayerNorm),
 * then the decoder tied to word_embeddings plus its own bias cls.predictions.bias. It trains
 * with train.objective: masked. The forward and backward are in forward_bert.c.
 *
 * Layout: every matrix is stored as Hugging Face stores it, nn.Linear's [out, in], so checkpoints
 * hold the slabs as they are and nothing is ever transposed (as for llama); the products run as
 * x W^T. query, key and value weights sit one after the other in the slab, then their three
 * biases, so each triple is one [3C, C] matrix and one [3C] bias whose product is the fused
 * q | k | v the attention kernel reads. */
#include "forward.h"

/* Axis roles for the width operators (model.h, sp_axis_role). A weight [out, in] has its produced
 * channels in rows and its consumed ones in cols (in_cols); a vector runs over its out-axis. */
#define T1(n, d, c, g)                                                                             \
    { n, 1, {d, 0}, 0, 0, 0, 0, SP_AX_FIXED, c, 0, g, 0, 0, 0 }
#define T2(n, d0, d1, out, in, z)                                                                  \
    { n, 2, {d0, d1}, 0, 0, 0, 0, out, in, 1, 0, 0, z, 0 }
/* a table [rows, C] read by index (and word_embeddings by the tied decoder too): C is copied */
#define TV(n, d0, d1)                                                                              \
    { n, 2, {d0, d1}, 0, 0, 0, 0, SP_AX_FIXED, SP_AX_R, 0, 0, 0, 0, 0 }

static int block_tensors(const sp_spec *s, sp_tensor_info *out) {
    int64_t C = s->d_model, F = s->d_ff;
    const sp_tensor_info tab[SP_BERT_NT] = {
        [SP_B_Q] = T2("attention.self.query.weight", C, C, SP_AX_R, SP_AX_R, 0),
        [SP_B_K] = T2("attention.self.key.weight", C, C, SP_AX_R, SP_AX_R, 0),
        [SP_B_V] = T2("attention.self.value.weight", C, C, SP_AX_R, SP_AX_R, 0),
        [SP_B_QB] = T1("attention.self.query.bias", C, SP_AX_R, 0),
        [SP_B_KB] = T1("attention.self.key.bias", C, SP_AX_R, 0),
        [SP_B_VB] = T1("attention.self.value.bias", C, SP_AX_R, 0),
        /* the two projections onto the residual stream (G_zero zeroes them; on a post-LN block
         * that leaves LN2(LN1(x)), not x: the operator runs but does not preserve the function) */
        [SP_B_O] = T2("attention.output.dense.weight", C, C, SP_AX_R, SP_AX_O, 1),
        [SP_B_OB] = T1("attention.output.dense.bias", C, SP_AX_R, 0),
        [SP_B_LN1W] = T1("attention.output.LayerNorm.weight", C, SP_AX_R, 1),
        [SP_B_LN1B] = T1("attention.output.LayerNorm.bias", C, SP_AX_R, 0),
        [SP_B_FC] = T2("intermediate.dense.weight", F, C, SP_AX_F, SP_AX_R, 0),
        [SP_B_FCB] = T1("intermediate.dense.bias", F, SP_AX_F, 0),
        [SP_B_PROJ] = T2("output.dense.weight", C, F, SP_AX_R, SP_AX_F, 1),
        [SP_B_PROJB] = T1("output.dense.bias", C, SP_AX_R, 0),
        [SP_B_LN2W] = T1("output.LayerNorm.weight", C, SP_AX_R, 1),
        [SP_B_LN2B] = T1("output.LayerNorm.bias", C, SP_AX_R, 0),
    };
    for (int i = 0; i < SP_BERT_NT; i++) out[i] = tab[i];
    out[SP_B_OB].zero_id = out[SP_B_PROJB].zero_id = 1;
    return SP_BERT_NT;
}

static int global_tensors(const sp_spec *s, sp_tensor_info *out) {
    int64_t C = s->d_model;
    const sp_tensor_info tab[SP_BERT_NG] = {
        [SP_B_WTE] = TV("bert.embeddings.word_embeddings.weight", s->vocab, C),
        [SP_B_WPE] = TV("bert.embeddings.position_embeddings.weight", s->seq_len, C),
        [SP_B_TTE] = TV("bert.embeddings.token_type_embeddings.weight", 1, C),
        [SP_B_ELNW] = T1("bert.embeddings.LayerNorm.weight", C, SP_AX_R, 1),
        [SP_B_ELNB] = T1("bert.embeddings.LayerNorm.bias", C, SP_AX_R, 0),
        [SP_B_HD] = T2("cls.predictions.transform.dense.weight", C, C, SP_AX_R, SP_AX_R, 0),
        [SP_B_HDB] = T1("cls.predictions.transform.dense.bias", C, SP_AX_R, 0),
        [SP_B_HLNW] = T1("cls.predictions.transform.LayerNorm.weight", C, SP_AX_R, 1),
        [SP_B_HLNB] = T1("cls.predictions.transform.LayerNorm.bias", C, SP_AX_R, 0),
        [SP_B_HB] = T1("cls.predictions.bias", s->vocab, SP_AX_FIXED, 0),
    };
    for (int i = 0; i < SP_BERT_NG; i++) out[i] = tab[i];
    out[SP_B_WPE].lookup = out[SP_B_TTE].lookup = 1;
    /* the transform's LayerNorm feeds the decoder tied to word_embeddings, which sums over k
     * copies of each channel when widened: the width splits divide its weight and bias by k */
    out[SP_B_HLNW].tied = out[SP_B_HLNB].tied = 1;
    return SP_BERT_NG;
}

static int default_d_ff(int d_model) {
    return 4 * d_model;
}

/* bidirectional attention: QK^T and AV over all T keys, 2 x 2 C T multiply-adds forward per
 * token, twice that backward (the causal kernels do the same products, masked) */
static double attn_flops(const sp_spec *s) {
    return 12.0 * (double)s->d_model * s->seq_len;
}

const sp_kind sp_kind_bert = {
    .name = "bert",
    .hf_block = "bert.encoder.layer.%d.%s",
    .hparams = 1,
    .ff_in = 1,
    .default_norm_eps = 1e-12,
    .always_tied = 1,
    .objective = "masked",
    .embed_ln = 1,
    .head_transform = 1,
    .default_d_ff = default_d_ff,
    .block_tensors = block_tensors,
    .global_tensors = global_tensors,
    .attn_flops = attn_flops,
    .embed_forward = sp_bert_embed_forward,
    .block_forward = sp_bert_block_forward,
    .head_forward = sp_bert_head_forward,
    .head_backward = sp_bert_head_backward,
    .block_backward = sp_bert_block_backward,
    .embed_backward = sp_bert_embed_backward,
};
