/* Forward and backward of a LLaMA stage (kind_llama.c): the token lookup, the blocks and the
 * head. Weights are Hugging Face's [out, in], so every product is y = x W^T through
 * sp_gemm_run (fp32 or bf16 alike), and the fused q | k | v and gate | up products each read
 * consecutive tensors of the slab as one matrix. Each block's two residual branches are scaled by
 * plan.scale, as for gpt2, and the fade-in mask of widen_zero / widen_random applies as on gpt2
 * (docs/growth.md): every RMSNorm is the masked one while it is on, and with mask_out the outputs
 * of the embedding, q | k | v (before the rotation, which keeps a new head's zeros at zero),
 * o_proj, gate | up and down_proj are masked. The stored activations reuse sp_acts: ln1/ln2/lnf the
 * normed inputs with their rstd, qkv after the rotation, fch the gate | up buffer [N, 2F], fchg the
 * SwiGLU output. */
#include "forward.h"

#include <string.h>

/* named pointers to the tensors of one block slab (params or grads) */
typedef struct blk_params {
    float *ln1, *qkv, *o, *ln2, *gu, *down; /* qkv: q|k|v [3C, C]; gu: gate|up [2F, C] */
} blk_params;

static blk_params block_params(const sp_model *m, float *slab) {
    const sp_tensor_info *t = m->bt;
    blk_params p = {slab + t[SP_L_LN1].offset,  slab + t[SP_L_Q].offset,
                    slab + t[SP_L_O].offset,    slab + t[SP_L_LN2].offset,
                    slab + t[SP_L_GATE].offset, slab + t[SP_L_DOWN].offset};
    return p;
}

/* pointers to position i's stored activations; ln1, ln2 and h are in bf16 only (ln1h, ln2h,
 * hh, the fp32 pointers NULL) in a bf16 run: they are read only as product operands */
typedef struct blk_acts {
    float *x, *ln1, *rstd1, *qkv, *att, *atty, *x2, *ln2, *rstd2, *gu, *h, *xout;
    uint16_t *ln1h, *ln2h, *hh;
} blk_acts;

static blk_acts block_acts(const sp_model *m, const sp_acts *a, int i) {
    const sp_spec *s = &m->spec;
    size_t N = (size_t)a->B * a->T, C = s->d_model, F = s->d_ff;
    size_t A = (size_t)a->B * s->n_head * a->T * a->T, k = (size_t)i;
    blk_acts b = {a->x + k * N * C,       AT(a->ln1, k * N * C),  a->ln1_rstd + k * N,
                  a->qkv + k * N * 3 * C, a->att + k * A,         a->atty + k * N * C,
                  a->x2 + k * N * C,      AT(a->ln2, k * N * C),  a->ln2_rstd + k * N,
                  a->fch + k * N * 2 * F, AT(a->fchg, k * N * F), a->x + (k + 1) * N * C,
                  AT(a->ln1h, k * N * C), AT(a->ln2h, k * N * C), AT(a->fchgh, k * N * F)};
    return b;
}

/* out[N,OC] = inp[N,IC] W^T, W [OC, IC]; inp in fp32 (inp) or bf16 only (inp16) */
static void lin_forward(const sp_model *m, float *out, const float *inp, const uint16_t *inp16,
                        const float *W, int N, int IC, int OC) {
    sp_gemm_run(m->gemm, 0, 1, N, OC, IC, 1.0f, (sp_mat){inp, inp16, IC},
                (sp_mat){W, w16(m, W), IC}, 0.0f, out, OC);
}

/* dinp[N,IC] += dout W;  dW[OC,IC] += dout^T inp */
/* dinp = dout @ W (overwritten, beta 0: no zeroing pass before it), dW += dout^T @ inp; in bf16
 * dout is rounded once for both products */
static void lin_backward(const sp_model *m, float *dinp, float *dW, const float *dout,
                         const float *inp, const uint16_t *inp16, const float *W, int N, int IC,
                         int OC) {
    uint16_t *d16 = m->gemm ? sp_gemm_buf(m->gemm, SP_GEMM_SLOT_DOUT, (size_t)N * OC) : NULL;
    if (d16) sp_to_bf16(d16, dout, (size_t)N * OC);
    sp_mat d = {dout, d16, OC};
    sp_gemm_run(m->gemm, 0, 0, N, IC, OC, 1.0f, d, (sp_mat){W, w16(m, W), IC}, 0.0f, dinp, IC);
    sp_gemm_run(m->gemm, 1, 0, OC, IC, N, 1.0f, d, (sp_mat){inp, inp16, IC}, 1.0f, dW, IC);
}

/* RMSNorm over d_model channels, masked while the fade-in mask is on */
static void norm_forward(const sp_model *m, float *out, float *rstd, const float *inp,
                         const float *w, int N) {
    int C = m->spec.d_model;
    float eps = (float)m->spec.norm_eps;
    if (masked(m))
        sp_rmsnorm_masked_forward(out, rstd, inp, w, N, C, m->plan.mask_d, m->plan.mask_c, eps);
    else
        sp_rmsnorm_forward(out, rstd, inp, w, N, C, eps);
}

static void norm_backward(const sp_model *m, float *dinp, float *dw, const float *dout,
                          const float *inp, const float *w, const float *rstd, int N) {
    int C = m->spec.d_model;
    if (masked(m))
        sp_rmsnorm_masked_backward(dinp, dw, dout, inp, w, rstd, N, C, m->plan.mask_d,
                                   m->plan.mask_c);
    else
        sp_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C);
}

/* The operand-only activations in bf16 (acts16), as gpt2's (forward.c): the producer writes
 * tiles of whole rows into a->stage, rounded from there while cache-resident, so the values are
 * bit for bit those sp_gemm_run would round from an fp32 copy. out16 NULL: fp32 into out. */
static void norm_forward16(const sp_model *m, sp_acts *a, float *out, uint16_t *out16, float *rstd,
                           const float *inp, const float *w, int N) {
    int C = m->spec.d_model;
    if (!out16) {
        norm_forward(m, out, rstd, inp, w, N);
        return;
    }
    int R = stage_rows(a, C);
    for (int r0 = 0; r0 < N; r0 += R) {
        int n = N - r0 < R ? N - r0 : R;
        norm_forward(m, a->stage, rstd + r0, inp + (size_t)r0 * C, w, n);
        sp_to_bf16(out16 + (size_t)r0 * C, a->stage, (size_t)n * C);
    }
}

/* h[N,F] = SwiGLU of gu[N,2F] (the gate | up rows), in fp32 or bf16 as norm_forward16 */
static void swiglu_forward16(sp_acts *a, float *out, uint16_t *out16, const float *gu, int N,
                             int F) {
    if (!out16) {
        sp_swiglu_forward(out, gu, N, F);
        return;
    }
    int R = stage_rows(a, F);
    for (int r0 = 0; r0 < N; r0 += R) {
        int n = N - r0 < R ? N - r0 : R;
        sp_swiglu_forward(a->stage, gu + (size_t)r0 * 2 * F, n, F);
        sp_to_bf16(out16 + (size_t)r0 * F, a->stage, (size_t)n * F);
    }
}

/* the head's matrix: lm_head, or embed_tokens when tied */
static int head_tensor(const sp_model *m) {
    return m->spec.tie_head ? SP_L_EMBED : SP_L_HEAD;
}

void sp_llama_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp) {
    const float *e = sp_model_globals(m, m->params) + m->gt[SP_L_EMBED].offset;
    size_t C = (size_t)m->spec.d_model, N = (size_t)a->B * a->T;
    for (size_t n = 0; n < N; n++) memcpy(a->x + n * C, e + (size_t)inp[n] * C, C * sizeof(float));
    mask_out(m, a->x, (int)N, (int)C, m->plan.mask_d, 1);
}

void sp_llama_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp) {
    float *de = sp_model_globals(m, m->grads) + m->gt[SP_L_EMBED].offset;
    size_t C = (size_t)m->spec.d_model, N = (size_t)a->B * a->T;
    /* with the output mask, m * dres is staged in dln (free once the blocks are done), so that
     * dres keeps dL/dx[0] */
    const float *dres = s->dres;
    if (out_masked(m)) {
        mask_grad(m, s->dln, s->dres, (int)N, (int)C, m->plan.mask_d, 1);
        dres = s->dln;
    }
    for (size_t n = 0; n < N; n++) {
        float *row = de + (size_t)inp[n] * C;
        const float *d = dres + n * C;
        for (size_t c = 0; c < C; c++) row[c] += d[c];
    }
}

void sp_llama_block_forward(const sp_model *m, sp_acts *a, int i, int blk) {
    const sp_spec *s = &m->spec;
    int B = a->B, T = a->T, C = s->d_model, F = s->d_ff, N = B * T;
    const int md = m->plan.mask_d, mf = m->plan.mask_f;
    const blk_params w = block_params(m, sp_model_block(m, m->params, blk));
    const float c = m->plan.scale[blk];
    blk_acts b = block_acts(m, a, i);
    norm_forward16(m, a, b.ln1, b.ln1h, b.rstd1, b.x, w.ln1, N);
    lin_forward(m, b.qkv, b.ln1, b.ln1h, w.qkv, N, C, 3 * C);
    mask_out(m, b.qkv, N, C, md, 3); /* whole heads: the rotation keeps them masked */
    sp_rope_forward(b.qkv, m->aux, B, T, C, s->n_head);
    sp_attention_forward(m->gemm, b.atty, b.att, b.qkv, B, T, C, s->n_head);
    lin_forward(m, b.x2, b.atty, NULL, w.o, N, C, C);
    mask_out(m, b.x2, N, C, md, 1);
    add_branch(b.x2, b.x, c, (size_t)N * C);
    norm_forward16(m, a, b.ln2, b.ln2h, b.rstd2, b.x2, w.ln2, N);
    lin_forward(m, b.gu, b.ln2, b.ln2h, w.gu, N, C, 2 * F);
    mask_out(m, b.gu, N, F, mf, 2); /* gate | up; silu(0) * 0 = 0 */
    swiglu_forward16(a, b.h, b.hh, b.gu, N, F);
    lin_forward(m, b.xout, b.h, b.hh, w.down, N, F, C);
    mask_out(m, b.xout, N, C, md, 1);
    add_branch(b.xout, b.x2, c, (size_t)N * C);
}

void sp_llama_block_backward(sp_model *m, sp_acts *a, sp_scratch *s, int i, int blk) {
    const sp_spec *sp = &m->spec;
    int B = a->B, T = a->T, C = sp->d_model, F = sp->d_ff, N = B * T;
    size_t NC = (size_t)N * C, NF = (size_t)N * F;
    const int md = m->plan.mask_d, mf = m->plan.mask_f;
    const blk_params w = block_params(m, sp_model_block(m, m->params, blk));
    const blk_params dw = block_params(m, sp_model_block(m, m->grads, blk));
    blk_acts b = block_acts(m, a, i);
    const float c = m->plan.scale[blk];
    /* s->dres is dL/dxout and passes straight to x2 and x; the branches add onto it. A scaled
     * (or masked) branch gradient is staged in a buffer free at that point (datty before its
     * own use, dln after the ln2 backward consumed it), as in gpt2's backward; the gate | up
     * and q | k | v masks are applied in place to dfch and dqkv. */
    const float *dout = branch_dout(m, s->datty, s->dres, c, N);
    lin_backward(m, s->dfchg, dw.down, dout, b.h, b.hh, w.down, N, F, C);
    memset(s->dfch, 0, 2 * NF * sizeof(float));
    sp_swiglu_backward(s->dfch, s->dfchg, b.gu, N, F);
    mask_grad(m, s->dfch, s->dfch, N, F, mf, 2);
    lin_backward(m, s->dln, dw.gu, s->dfch, b.ln2, b.ln2h, w.gu, N, C, 2 * F);
    norm_backward(m, s->dres, dw.ln2, s->dln, b.x2, w.ln2, b.rstd2, N);
    dout = branch_dout(m, s->dln, s->dres, c, N);
    lin_backward(m, s->datty, dw.o, dout, b.atty, NULL, w.o, N, C, C);
    memset(s->dqkv, 0, 3 * NC * sizeof(float));
    sp_attention_backward(m->gemm, s->dqkv, s->datty, b.qkv, b.att, s->datt, B, T, C, sp->n_head);
    sp_rope_backward(s->dqkv, m->aux, B, T, C, sp->n_head); /* to the unrotated q, k */
    mask_grad(m, s->dqkv, s->dqkv, N, C, md, 3);
    lin_backward(m, s->dln, dw.qkv, s->dqkv, b.ln1, b.ln1h, w.qkv, N, C, 3 * C);
    norm_backward(m, s->dres, dw.ln1, s->dln, b.x, w.ln1, b.rstd1, N);
}

float sp_llama_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets) {
    const sp_spec *s = &m->spec;
    int N = a->B * a->T, C = s->d_model, V = s->vocab;
    const float *g = sp_model_globals(m, m->params);
    norm_forward16(m, a, a->lnf, a->lnfh, a->lnf_rstd, a->x + (size_t)a->n_exec * N * C,
                   g + m->gt[SP_L_NORM].offset, N);
    lin_forward(m, a->probs, a->lnf, a->lnfh, g + m->gt[head_tensor(m)].offset, N, C, V);
    if (!targets) return 0.0f; /* raw logits, for sampling */
    return m->obj->loss_forward(a->probs, a->losses, a->probs, targets, N, V);
}

void sp_llama_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                            float scale) {
    const sp_spec *sp = &m->spec;
    int N = a->B * a->T, C = sp->d_model, V = sp->vocab;
    const float *g = sp_model_globals(m, m->params);
    float *dg = sp_model_globals(m, m->grads);
    size_t oh = m->gt[head_tensor(m)].offset, on = m->gt[SP_L_NORM].offset;
    m->obj->loss_backward(s->dprobs, a->probs, targets, scale, N, V);
    lin_backward(m, s->dln, dg + oh, s->dprobs, a->lnf, a->lnfh, g + oh, N, C, V);
    memset(s->dres, 0, (size_t)N * C * sizeof(float));
    norm_backward(m, s->dres, dg + on, s->dln, a->x + (size_t)a->n_exec * N * C, g + on,
                  a->lnf_rstd, N);
}
