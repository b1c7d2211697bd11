/* Forward and backward of a BERT stage (kind_bert.c): the embeddings with their LayerNorm, the
 * post-LN blocks and the MLM head. Weights are Hugging Face's [out, in], so every product is
 * y = x W^T + b through sp_gemm_run (fp32 or bf16 alike); the fused q | k | v product reads the
 * three consecutive weights of the slab as one [3C, C] matrix and their biases as one [3C].
 * Attention is bidirectional (sp_attention_*_ex with causal 0), GELU the exact erf form. Each
 * block's two residual branches are scaled by plan.scale as for the other kinds:
 * s1 = x + c attn(x), h = LN1(s1), s2 = h + c mlp(h), out = LN2(s2). The fade-in mask of
 * widen_zero / widen_random applies as on gpt2 (docs/growth.md): every LayerNorm (the embeddings',
 * LN1, LN2, the head transform's) is the masked one while it is on, which also zeroes the new
 * channels of its output at mask_c = 0, and with mask_out the outputs of q | k | v, the attention
 * output dense, the intermediate and output denses and the head's transform dense are masked (the
 * embeddings' sum needs none: their LayerNorm masks it). The stored activations reuse sp_acts:
 * ln1 holds s1 and ln1_mean/rstd its statistics, x2 holds h, fch the intermediate dense output,
 * fchg its GELU, ln2 s2 with ln2_mean/rstd; the head's dense output and GELU are hpre and hact,
 * its LayerNorm output lnf. */
#include "forward.h"

#include <string.h>

typedef struct blk_params {
    float *qkv, *qkvb, *o, *ob, *ln1w, *ln1b, *fc, *fcb, *proj, *projb, *ln2w, *ln2b;
} blk_params;

static blk_params block_params(const sp_model *m, float *slab) {
    const sp_tensor_info *t = m->bt;
    blk_params p = {
        slab + t[SP_B_Q].offset,     slab + t[SP_B_QB].offset,   slab + t[SP_B_O].offset,
        slab + t[SP_B_OB].offset,    slab + t[SP_B_LN1W].offset, slab + t[SP_B_LN1B].offset,
        slab + t[SP_B_FC].offset,    slab + t[SP_B_FCB].offset,  slab + t[SP_B_PROJ].offset,
        slab + t[SP_B_PROJB].offset, slab + t[SP_B_LN2W].offset, slab + t[SP_B_LN2B].offset};
    return p;
}

typedef struct blk_acts {
    float *x, *s1, *mean1, *rstd1, *qkv, *att, *atty, *h, *s2, *mean2, *rstd2, *fc, *fcg, *xout;
} blk_acts;

static blk_acts block_acts(const sp_model *m, const sp_acts *a, int i) {
    const sp_spec *s = &m->spec;
    size_t N = (size_t)a->B * a->T, C = s->d_model, F = s->d_ff;
    size_t A = (size_t)a->B * s->n_head * a->T * a->T, k = (size_t)i;
    blk_acts b = {a->x + k * N * C,    a->ln1 + k * N * C,     a->ln1_mean + k * N,
                  a->ln1_rstd + k * N, a->qkv + k * N * 3 * C, a->att + k * A,
                  a->atty + k * N * C, a->x2 + k * N * C,      a->ln2 + k * N * C,
                  a->ln2_mean + k * N, a->ln2_rstd + k * N,    a->fch + k * N * F,
                  a->fchg + k * N * F, a->x + (k + 1) * N * C};
    return b;
}

/* out[N,OC] = inp[N,IC] W^T + b, W [OC, IC] */
static void lin_forward(const sp_model *m, float *out, const float *inp, const float *W,
                        const float *b, int N, int IC, int OC) {
    sp_gemm_run(m->gemm, 0, 1, N, OC, IC, 1.0f, SP_MAT(inp, IC), (sp_mat){W, w16(m, W), IC}, 0.0f,
                out, OC);
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * OC;
        for (int j = 0; j < OC; j++) o[j] += b[j];
    }
}

/* dinp[N,IC] += dout W (dinp NULL: skipped);  dW[OC,IC] += dout^T inp;  db[OC] += sum dout */
static void lin_backward(const sp_model *m, float *dinp, float *dW, float *db, const float *dout,
                         const float *inp, const float *W, int N, int IC, int OC) {
    if (dinp)
        sp_gemm_run(m->gemm, 0, 0, N, IC, OC, 1.0f, SP_MAT(dout, OC), (sp_mat){W, w16(m, W), IC},
                    1.0f, dinp, IC);
    sp_gemm_run(m->gemm, 1, 0, OC, IC, N, 1.0f, SP_MAT(dout, OC), SP_MAT(inp, IC), 1.0f, dW, IC);
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        for (int j = 0; j < OC; j++) db[j] += d[j];
    }
}

/* LayerNorm over d_model channels with the spec's eps, masked while the fade-in mask is on */
static void norm_forward(const sp_model *m, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N) {
    ln_forward(m, out, mean, rstd, inp, w, b, N, (float)m->spec.norm_eps);
}

static float *glob(const sp_model *m, float *arena, int j) {
    return sp_model_globals(m, arena) + m->gt[j].offset;
}

/* x[0] = LN(word[tok] + position[t] + token_type[0]) */
void sp_bert_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp) {
    const sp_spec *s = &m->spec;
    const float *we = glob(m, m->params, SP_B_WTE), *pe = glob(m, m->params, SP_B_WPE);
    const float *te = glob(m, m->params, SP_B_TTE);
    int C = s->d_model, T = a->T, N = a->B * a->T;
    for (int n = 0; n < N; n++) {
        float *o = a->emb + (size_t)n * C;
        const float *w = we + (size_t)inp[n] * C, *p = pe + (size_t)(n % T) * C;
        for (int c = 0; c < C; c++) o[c] = w[c] + p[c] + te[c];
    }
    norm_forward(m, a->x, a->emb_mean, a->emb_rstd, a->emb, glob(m, m->params, SP_B_ELNW),
                 glob(m, m->params, SP_B_ELNB), N);
}

void sp_bert_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp) {
    const sp_spec *sp = &m->spec;
    int C = sp->d_model, T = a->T, N = a->B * a->T;
    float *demb = s->dln; /* free after the blocks' backward */
    memset(demb, 0, (size_t)N * C * sizeof(float));
    ln_backward(m, demb, glob(m, m->grads, SP_B_ELNW), glob(m, m->grads, SP_B_ELNB), s->dres,
                a->emb, glob(m, m->params, SP_B_ELNW), a->emb_mean, a->emb_rstd, N);
    float *dwe = glob(m, m->grads, SP_B_WTE), *dpe = glob(m, m->grads, SP_B_WPE);
    float *dte = glob(m, m->grads, SP_B_TTE);
    for (int n = 0; n < N; n++) {
        const float *d = demb + (size_t)n * C;
        float *w = dwe + (size_t)inp[n] * C, *p = dpe + (size_t)(n % T) * C;
        for (int c = 0; c < C; c++) w[c] += d[c], p[c] += d[c], dte[c] += d[c];
    }
}

void sp_bert_block_forward(const sp_model *m, sp_acts *a, int i, int blk) {
    const sp_spec *s = &m->spec;
    int B = a->B, T = a->T, C = s->d_model, F = s->d_ff, N = B * T;
    size_t NC = (size_t)N * C;
    const int md = m->plan.mask_d, mf = m->plan.mask_f;
    const blk_params w = block_params(m, sp_model_block(m, m->params, blk));
    const float c = m->plan.scale[blk];
    blk_acts b = block_acts(m, a, i);
    lin_forward(m, b.qkv, b.x, w.qkv, w.qkvb, N, C, 3 * C);
    mask_out(m, b.qkv, N, C, md, 3);
    sp_attention_forward_ex(m->gemm, b.atty, b.att, b.qkv, B, T, C, s->n_head, 0);
    lin_forward(m, b.s1, b.atty, w.o, w.ob, N, C, C);
    mask_out(m, b.s1, N, C, md, 1);
    add_branch(b.s1, b.x, c, NC);
    norm_forward(m, b.h, b.mean1, b.rstd1, b.s1, w.ln1w, w.ln1b, N);
    lin_forward(m, b.fc, b.h, w.fc, w.fcb, N, C, F);
    mask_out(m, b.fc, N, F, mf, 1); /* before GELU, which keeps 0 at 0 */
    sp_gelu_erf_forward(b.fcg, b.fc, (size_t)N * F);
    lin_forward(m, b.s2, b.fcg, w.proj, w.projb, N, F, C);
    mask_out(m, b.s2, N, C, md, 1);
    add_branch(b.s2, b.h, c, NC);
    norm_forward(m, b.xout, b.mean2, b.rstd2, b.s2, w.ln2w, w.ln2b, N);
}

/* Through a post-LN residual: s->dres holds dL/dLN(in) and gets dL/din, which passes unchanged
 * to the residual input; s->dln gets c dL/din (times the residual mask with output masks), the
 * gradient of the branch output. */
static void ln_residual_backward(const sp_model *m, sp_scratch *s, float *dw, float *db,
                                 const float *in, const float *w, const float *mean,
                                 const float *rstd, float c, int N, int C) {
    size_t NC = (size_t)N * C;
    memset(s->dln, 0, NC * sizeof(float));
    ln_backward(m, s->dln, dw, db, s->dres, in, w, mean, rstd, N);
    memcpy(s->dres, s->dln, NC * sizeof(float));
    mask_grad(m, s->dln, s->dln, N, C, m->plan.mask_d, 1);
    if (c != 1.0f) sp_scale(s->dln, NC, c);
}

void sp_bert_block_backward(sp_model *m, sp_acts *a, sp_scratch *s, int i, int blk) {
    const sp_spec *sp = &m->spec;
    int B = a->B, T = a->T, C = sp->d_model, F = sp->d_ff, N = B * T;
    size_t NC = (size_t)N * C, NF = (size_t)N * F;
    const blk_params w = block_params(m, sp_model_block(m, m->params, blk));
    const blk_params dw = block_params(m, sp_model_block(m, m->grads, blk));
    blk_acts b = block_acts(m, a, i);
    const float c = m->plan.scale[blk];
    /* s->dres = dL/dout; the branches' input gradients add onto the residual's in dres */
    ln_residual_backward(m, s, dw.ln2w, dw.ln2b, b.s2, w.ln2w, b.mean2, b.rstd2, c, N, C);
    memset(s->dfchg, 0, NF * sizeof(float));
    lin_backward(m, s->dfchg, dw.proj, dw.projb, s->dln, b.fcg, w.proj, N, F, C);
    memset(s->dfch, 0, NF * sizeof(float));
    sp_gelu_erf_backward(s->dfch, b.fc, s->dfchg, NF);
    mask_grad(m, s->dfch, s->dfch, N, F, m->plan.mask_f, 1);
    lin_backward(m, s->dres, dw.fc, dw.fcb, s->dfch, b.h, w.fc, N, C, F);
    ln_residual_backward(m, s, dw.ln1w, dw.ln1b, b.s1, w.ln1w, b.mean1, b.rstd1, c, N, C);
    memset(s->datty, 0, NC * sizeof(float));
    lin_backward(m, s->datty, dw.o, dw.ob, s->dln, b.atty, w.o, N, C, C);
    memset(s->dqkv, 0, 3 * NC * sizeof(float));
    sp_attention_backward_ex(m->gemm, s->dqkv, s->datty, b.qkv, b.att, s->datt, B, T, C, sp->n_head,
                             0);
    mask_grad(m, s->dqkv, s->dqkv, N, C, m->plan.mask_d, 3);
    lin_backward(m, s->dres, dw.qkv, dw.qkvb, s->dqkv, b.x, w.qkv, N, C, 3 * C);
}

/* logits = LN(gelu(x Wd^T + bd)) word_embeddings^T + bias */
float sp_bert_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets) {
    const sp_spec *s = &m->spec;
    int N = a->B * a->T, C = s->d_model, V = s->vocab;
    const float *x = a->x + (size_t)a->n_exec * N * C;
    lin_forward(m, a->hpre, x, glob(m, m->params, SP_B_HD), glob(m, m->params, SP_B_HDB), N, C, C);
    mask_out(m, a->hpre, N, C, m->plan.mask_d, 1);
    sp_gelu_erf_forward(a->hact, a->hpre, (size_t)N * C);
    norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, a->hact, glob(m, m->params, SP_B_HLNW),
                 glob(m, m->params, SP_B_HLNB), N);
    lin_forward(m, a->probs, a->lnf, glob(m, m->params, SP_B_WTE), glob(m, m->params, SP_B_HB), N,
                C, V);
    if (!targets) return 0.0f; /* raw logits */
    return m->obj->loss_forward(a->probs, a->losses, a->probs, targets, N, V);
}

void sp_bert_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                           float scale) {
    const sp_spec *sp = &m->spec;
    int N = a->B * a->T, C = sp->d_model, V = sp->vocab;
    size_t NC = (size_t)N * C;
    m->obj->loss_backward(s->dprobs, a->probs, targets, scale, N, V);
    /* dln: the LayerNorm output's gradient; datty: its input's; dres: the GELU input's, then
     * (overwritten at the end) the head input's */
    memset(s->dln, 0, NC * sizeof(float));
    lin_backward(m, s->dln, glob(m, m->grads, SP_B_WTE), glob(m, m->grads, SP_B_HB), s->dprobs,
                 a->lnf, glob(m, m->params, SP_B_WTE), N, C, V);
    memset(s->datty, 0, NC * sizeof(float));
    ln_backward(m, s->datty, glob(m, m->grads, SP_B_HLNW), glob(m, m->grads, SP_B_HLNB), s->dln,
                a->hact, glob(m, m->params, SP_B_HLNW), a->lnf_mean, a->lnf_rstd, N);
    memset(s->dln, 0, NC * sizeof(float));
    sp_gelu_erf_backward(s->dln, a->hpre, s->datty, NC);
    mask_grad(m, s->dln, s->dln, N, C, m->plan.mask_d, 1);
    memset(s->dres, 0, NC * sizeof(float));
    lin_backward(m, s->dres, glob(m, m->grads, SP_B_HD), glob(m, m->grads, SP_B_HDB), s->dln,
                 a->x + (size_t)a->n_exec * NC, glob(m, m->params, SP_B_HD), N, C, C);
}
