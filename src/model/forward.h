/* Inside the model module: the forward and backward of each kind, which its descriptor
 * (kind_<name>.c) points to. */
#ifndef SPROUT_MODEL_FORWARD_H
#define SPROUT_MODEL_FORWARD_H

#include "sprout/kernels.h"
#include "sprout/model.h"

/* whole rows of width w per tile of a->stage (at least one: acts.c sizes it so) */
static inline int stage_rows(const sp_acts *a, int w) {
    return (int)(a->stage_n / (size_t)w);
}

/* p + off, NULL staying NULL (an activation stored in the other precision) */
#define AT(p, off) ((p) ? (p) + (off) : NULL)

/* the bf16 copy of weight w (a pointer into the params arena), NULL in fp32 */
static inline const uint16_t *w16(const sp_model *m, const float *w) {
    return m->params16 ? m->params16 + (w - m->params) : NULL;
}

/* y[n] = x[n] + c * y[n]: a residual branch (y holds its output) added onto the stream x. c = 1
 * is the plain residual add, bit for bit; c = 0 gives x + 0 = x for any finite branch output, so
 * a block whose branches are scaled to 0 is the identity. */
static inline void add_branch(float *y, const float *x, float c, size_t n) {
    if (c == 1.0f) {
        sp_residual_forward(y, y, x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) y[i] = x[i] + c * y[i];
}

/* ---- the fade-in mask of widen_zero / widen_random (sp_plan.mask_*, docs/growth.md), shared by
 * the kinds' forwards ---- */

static inline int masked(const sp_model *m) {
    return m->plan.mask_d > 0 && m->plan.mask_c < 1.0f;
}

static inline int out_masked(const sp_model *m) {
    return masked(m) && m->plan.mask_out;
}

/* LayerNorm over d_model channels with epsilon eps (gpt2: SP_LN_EPS, bert: model.norm_eps),
 * masked while the mask is on; and its backward, for either eps (it reads the saved rstd) */
static inline void ln_forward(const sp_model *m, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b, int N, float eps) {
    int C = m->spec.d_model;
    if (masked(m))
        sp_layernorm_masked_forward_eps(out, mean, rstd, inp, w, b, N, C, m->plan.mask_d,
                                        m->plan.mask_c, eps);
    else
        sp_layernorm_forward_eps(out, mean, rstd, inp, w, b, N, C, eps);
}

static inline void ln_backward(const sp_model *m, float *dinp, float *dw, float *db,
                               const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N) {
    int C = m->spec.d_model;
    if (masked(m))
        sp_layernorm_masked_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, m->plan.mask_d,
                                     m->plan.mask_c);
    else
        sp_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

/* Output mask of a layer writing [N, sections * n] of the family whose old channels are the
 * first n_old of each section (residual and attention: mask_d, MLP: mask_f). The forward masks
 * the stored output in place; mask_grad writes m * src to dst (in place when dst == src). */
static inline void mask_out(const sp_model *m, float *x, int N, int n, int n_old, int sections) {
    if (out_masked(m)) sp_mask_cols_forward(x, N, sections * n, n_old, sections, m->plan.mask_c);
}

static inline void mask_grad(const sp_model *m, float *dst, const float *src, int N, int n,
                             int n_old, int sections) {
    if (out_masked(m))
        sp_mask_cols_backward(dst, src, N, sections * n, n_old, sections, m->plan.mask_c);
}

/* The gradient reaching a branch output [N,C]: c * dout, times the residual mask when the outputs
 * are masked; dout itself on the plain path, else staged in out. */
static inline const float *branch_dout(const sp_model *m, float *out, const float *dout, float c,
                                       int N) {
    int C = m->spec.d_model;
    size_t n = (size_t)N * C;
    if (out_masked(m)) {
        mask_grad(m, out, dout, N, C, m->plan.mask_d, 1);
        if (c != 1.0f) sp_scale(out, n, c);
        return out;
    }
    if (c == 1.0f) return dout;
    for (size_t i = 0; i < n; i++) out[i] = c * dout[i];
    return out;
}

void sp_gpt2_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
void sp_gpt2_block_forward(const sp_model *m, sp_acts *a, int i, int blk);
float sp_gpt2_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
void sp_gpt2_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                           float scale);
void sp_gpt2_block_backward(sp_model *m, sp_acts *a, sp_scratch *s, int i, int blk);
void sp_gpt2_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

/* LLaMA's tensors in the order of its block slab and of its globals slab (kind_llama.c) */
enum {
    SP_L_LN1,
    SP_L_Q,
    SP_L_K,
    SP_L_V,
    SP_L_O,
    SP_L_LN2,
    SP_L_GATE,
    SP_L_UP,
    SP_L_DOWN,
    SP_LLAMA_NT
};
enum { SP_L_EMBED, SP_L_NORM, SP_L_HEAD };

void sp_llama_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
void sp_llama_block_forward(const sp_model *m, sp_acts *a, int i, int blk);
float sp_llama_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
void sp_llama_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                            float scale);
void sp_llama_block_backward(sp_model *m, sp_acts *a, sp_scratch *s, int i, int blk);
void sp_llama_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

/* BERT's tensors in the order of its block slab and of its globals slab (kind_bert.c) */
enum {
    SP_B_Q,
    SP_B_K,
    SP_B_V,
    SP_B_QB,
    SP_B_KB,
    SP_B_VB,
    SP_B_O,
    SP_B_OB,
    SP_B_LN1W,
    SP_B_LN1B,
    SP_B_FC,
    SP_B_FCB,
    SP_B_PROJ,
    SP_B_PROJB,
    SP_B_LN2W,
    SP_B_LN2B,
    SP_BERT_NT
};
enum {
    SP_B_WTE,
    SP_B_WPE,
    SP_B_TTE,
    SP_B_ELNW,
    SP_B_ELNB,
    SP_B_HD,
    SP_B_HDB,
    SP_B_HLNW,
    SP_B_HLNB,
    SP_B_HB,
    SP_BERT_NG
};

void sp_bert_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
void sp_bert_block_forward(const sp_model *m, sp_acts *a, int i, int blk);
float sp_bert_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
void sp_bert_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                           float scale);
void sp_bert_block_backward(sp_model *m, sp_acts *a, sp_scratch *s, int i, int blk);
void sp_bert_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

#endif
