/* Forward and backward of a stage: embedding, the block range, and the tied LM head of the GPT-2
 * kind (kind_gpt2.c points here), and the sp_model_* entry points, which dispatch to the kind.
 * The step's plan (m->plan, model.h) says which stored block each position runs; each block's
 * two residual branches are scaled by plan.scale (1 by default: plain GPT-2). While new
 * channels of widen_zero / widen_random fade in (plan.mask_*), the norms are
 * masked and, with mask_out, the outputs of the embedding and of every linear layer but the head
 * are multiplied by the channel mask; with the mask off every helper below runs the plain path. */
#include "forward.h"
#include "sprout/kernels.h"

#include <string.h>

/* ---- the entry points: the model's kind runs them ---- */

void sp_model_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp) {
    m->kind->embed_forward(m, a, inp);
}
/* the positions of the step's plan that fall on this stage, first to last: each runs its
 * stored block on its own activation slot */
void sp_model_blocks_forward(const sp_model *m, sp_acts *a) {
    int p0, p1;
    sp_plan_range(&m->plan, m->lo, m->hi, &p0, &p1);
    a->n_exec = p1 - p0;
    for (int i = 0; i < a->n_exec; i++) m->kind->block_forward(m, a, i, m->plan.pos[p0 + i]);
}
float sp_model_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets) {
    return m->kind->head_forward(m, a, targets);
}
void sp_model_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                            float scale) {
    m->kind->head_backward(m, a, s, targets, scale);
}
void sp_model_blocks_backward(sp_model *m, sp_acts *a, sp_scratch *s, sp_block_done_fn done,
                              void *ctx) {
    int p0, p1;
    sp_plan_range(&m->plan, m->lo, m->hi, &p0, &p1);
    for (int i = p1 - p0 - 1; i >= 0; i--) {
        const int blk = m->plan.pos[p0 + i];
        m->kind->block_backward(m, a, s, i, blk);
        if (done) done(ctx, blk); /* its gradient is complete: its bucket may start */
    }
}
void sp_model_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp) {
    m->kind->embed_backward(m, a, s, inp);
}

/* ---- GPT-2 ---- */

/* named pointers to the tensors of one GPT-2 block slab (params or grads) */
typedef struct blk_params {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *attproj_w, *attproj_b, *ln2_w, *ln2_b, *fc_w, *fc_b,
        *fcproj_w, *fcproj_b;
} blk_params;

static blk_params block_params(const sp_model *m, float *slab) {
    const sp_tensor_info *t = m->bt;
    blk_params p = {
        slab + t[SP_LN1_W].offset, slab + t[SP_LN1_B].offset,     slab + t[SP_QKV_W].offset,
        slab + t[SP_QKV_B].offset, slab + t[SP_ATTPROJ_W].offset, slab + t[SP_ATTPROJ_B].offset,
        slab + t[SP_LN2_W].offset, slab + t[SP_LN2_B].offset,     slab + t[SP_FC_W].offset,
        slab + t[SP_FC_B].offset,  slab + t[SP_FCPROJ_W].offset,  slab + t[SP_FCPROJ_B].offset,
    };
    return p;
}

/* pointers to block i's (local index) stored activations; ln1, ln2 and fchg are in bf16 only
 * (ln1h, ln2h, fchgh, the fp32 pointers NULL) when the acts are (sp_acts) */
typedef struct blk_acts {
    float *x, *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *x2, *ln2, *ln2_mean, *ln2_rstd, *fch,
        *fchg, *xout;
    uint16_t *ln1h, *ln2h, *fchgh;
} blk_acts;

static blk_acts block_acts(const sp_model *m, const sp_acts *a, int i) {
    const sp_spec *s = &m->spec;
    size_t N = (size_t)a->B * a->T, C = s->d_model, F = s->d_ff;
    size_t A = (size_t)a->B * s->n_head * a->T * a->T, k = (size_t)i;
    blk_acts b = {
        a->x + k * N * C,       AT(a->ln1, k * N * C),   a->ln1_mean + k * N,
        a->ln1_rstd + k * N,    a->qkv + k * N * 3 * C,  a->att + k * A,
        a->atty + k * N * C,    a->x2 + k * N * C,       AT(a->ln2, k * N * C),
        a->ln2_mean + k * N,    a->ln2_rstd + k * N,     a->fch + k * N * F,
        AT(a->fchg, k * N * F), a->x + (k + 1) * N * C,  AT(a->ln1h, k * N * C),
        AT(a->ln2h, k * N * C), AT(a->fchgh, k * N * F),
    };
    return b;
}

/* one linear layer: out[N,OC] = inp[N,C] @ W + b; inp in fp32 (inp) or bf16 only (inp16) */
static void linear_forward(const sp_model *m, float *out, const float *inp, const uint16_t *inp16,
                           const float *W, const float *b, int N, int C, int OC) {
    sp_matmul_forward_ex(m->gemm, out, (sp_mat){inp, inp16, C}, (sp_mat){W, w16(m, W), OC}, b, N, C,
                         OC);
}

/* dinp = dout @ W^T (overwritten: no zeroing pass before it; beta 0 and a zeroed dinp with beta 1
 * give the same bits in OpenBLAS and oneDNN), dW += inp^T @ dout, db += sum dout */
static void linear_backward(const sp_model *m, float *dinp, float *dW, float *db, const float *dout,
                            const float *inp, const uint16_t *inp16, const float *W, int N, int C,
                            int OC) {
    sp_matmul_backward_ex(m->gemm, dinp, 0.0f, dW, db, dout, (sp_mat){inp, inp16, C},
                          (sp_mat){W, w16(m, W), OC}, N, C, OC);
}

/* GPT-2's LayerNorm (eps 1e-5), masked while the mask is on */
static void norm_forward(const sp_model *m, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N) {
    ln_forward(m, out, mean, rstd, inp, w, b, N, SP_LN_EPS);
}

/* The operand-only activations written in bf16 by their producer (acts16): the producer runs on
 * tiles of ~SP_ACTS_STAGE values into a->stage, rounded from there while cache-resident, so the
 * values are bit for bit those sp_gemm_run would round from an fp32 copy. out16 NULL: fp32. */
static void norm_forward16(const sp_model *m, sp_acts *a, float *out, uint16_t *out16, float *mean,
                           float *rstd, const float *inp, const float *w, const float *b, int N) {
    int C = m->spec.d_model;
    if (!out16) {
        norm_forward(m, out, mean, rstd, inp, w, b, N);
        return;
    }
    int R = stage_rows(a, C);
    for (int r0 = 0; r0 < N; r0 += R) {
        int n = N - r0 < R ? N - r0 : R;
        size_t o = (size_t)r0 * C;
        norm_forward(m, a->stage, mean + r0, rstd + r0, inp + o, w, b, n);
        sp_to_bf16(out16 + o, a->stage, (size_t)n * C);
    }
}

static void gelu_forward16(sp_acts *a, float *out, uint16_t *out16, const float *inp, size_t n) {
    if (!out16) {
        sp_gelu_forward(out, inp, n);
        return;
    }
    for (size_t i = 0; i < n; i += SP_ACTS_STAGE) {
        size_t k = n - i < SP_ACTS_STAGE ? n - i : SP_ACTS_STAGE;
        sp_gelu_forward(a->stage, inp + i, k);
        sp_to_bf16(out16 + i, a->stage, k);
    }
}

void sp_gpt2_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp) {
    const float *g = sp_model_globals(m, m->params);
    int C = m->spec.d_model;
    sp_encoder_forward(a->x, inp, g + m->gt[SP_WTE].offset, g + m->gt[SP_WPE].offset, a->B, a->T,
                       C);
    mask_out(m, a->x, a->B * a->T, C, m->plan.mask_d, 1);
}

void sp_gpt2_block_forward(const sp_model *m, sp_acts *a, int i, int blk) {
    const sp_spec *s = &m->spec;
    int B = a->B, T = a->T, C = s->d_model, F = s->d_ff, N = B * T;
    const blk_params w = block_params(m, sp_model_block(m, m->params, blk));
    const float c = m->plan.scale[blk];
    blk_acts b = block_acts(m, a, i);
    norm_forward16(m, a, b.ln1, b.ln1h, b.ln1_mean, b.ln1_rstd, b.x, w.ln1_w, w.ln1_b, N);
    linear_forward(m, b.qkv, b.ln1, b.ln1h, w.qkv_w, w.qkv_b, N, C, 3 * C);
    mask_out(m, b.qkv, N, C, m->plan.mask_d, 3); /* q, k, v sections of C each */
    sp_attention_forward(m->gemm, b.atty, b.att, b.qkv, B, T, C, s->n_head);
    /* the projection is written to x2 and the residual added in place: one pass fewer */
    linear_forward(m, b.x2, b.atty, NULL, w.attproj_w, w.attproj_b, N, C, C);
    mask_out(m, b.x2, N, C, m->plan.mask_d, 1);
    add_branch(b.x2, b.x, c, (size_t)N * C);
    norm_forward16(m, a, b.ln2, b.ln2h, b.ln2_mean, b.ln2_rstd, b.x2, w.ln2_w, w.ln2_b, N);
    linear_forward(m, b.fch, b.ln2, b.ln2h, w.fc_w, w.fc_b, N, C, F);
    mask_out(m, b.fch, N, F, m->plan.mask_f, 1); /* before GELU, which keeps 0 at 0 */
    gelu_forward16(a, b.fchg, b.fchgh, b.fch, (size_t)N * F);
    linear_forward(m, b.xout, b.fchg, b.fchgh, w.fcproj_w, w.fcproj_b, N, F, C);
    mask_out(m, b.xout, N, C, m->plan.mask_d, 1);
    add_branch(b.xout, b.x2, c, (size_t)N * C);
}

float sp_gpt2_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets) {
    const sp_spec *s = &m->spec;
    int N = a->B * a->T, C = s->d_model, V = s->vocab;
    const float *g = sp_model_globals(m, m->params);
    norm_forward16(m, a, a->lnf, a->lnfh, a->lnf_mean, a->lnf_rstd,
                   a->x + (size_t)a->n_exec * N * C, g + m->gt[SP_LNF_W].offset,
                   g + m->gt[SP_LNF_B].offset, N);
    /* tied head: logits[N,V] = lnf[N,C] @ wte[V,C]^T */
    const float *wte = g + m->gt[SP_WTE].offset;
    sp_gemm_run(m->gemm, 0, 1, N, V, C, 1.0f, (sp_mat){a->lnf, a->lnfh, C},
                (sp_mat){wte, w16(m, wte), C}, 0.0f, a->probs, V);
    if (!targets) return 0.0f; /* probs hold raw logits: the sampler applies its temperature */
    return m->obj->loss_forward(a->probs, a->losses, a->probs, targets, N, V);
}

void sp_gpt2_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                           float scale) {
    const sp_spec *sp = &m->spec;
    int N = a->B * a->T, C = sp->d_model, V = sp->vocab;
    const float *g = sp_model_globals(m, m->params);
    float *dg = sp_model_globals(m, m->grads);
    m->obj->loss_backward(s->dprobs, a->probs, targets, scale, N, V);
    /* dwte[V,C] += dlogits^T @ lnf ;  dlnf[N,C] = dlogits @ wte */
    const float *wte = g + m->gt[SP_WTE].offset;
    sp_gemm_run(m->gemm, 1, 0, V, C, N, 1.0f, SP_MAT(s->dprobs, V), (sp_mat){a->lnf, a->lnfh, C},
                1.0f, dg + m->gt[SP_WTE].offset, C);
    sp_gemm_run(m->gemm, 0, 0, N, C, V, 1.0f, SP_MAT(s->dprobs, V), (sp_mat){wte, w16(m, wte), C},
                0.0f, s->dln, C);
    memset(s->dres, 0, (size_t)N * C * sizeof(float));
    ln_backward(m, s->dres, dg + m->gt[SP_LNF_W].offset, dg + m->gt[SP_LNF_B].offset, s->dln,
                a->x + (size_t)a->n_exec * N * C, g + m->gt[SP_LNF_W].offset, a->lnf_mean,
                a->lnf_rstd, N);
}

void sp_gpt2_block_backward(sp_model *m, sp_acts *a, sp_scratch *s, int i, int blk) {
    const sp_spec *sp = &m->spec;
    int B = a->B, T = a->T, C = sp->d_model, F = sp->d_ff, N = B * T;
    size_t NC = (size_t)N * C, NF = (size_t)N * F;
    const blk_params w = block_params(m, sp_model_block(m, m->params, blk));
    const blk_params dw = block_params(m, sp_model_block(m, m->grads, blk));
    blk_acts b = block_acts(m, a, i);
    const float c = m->plan.scale[blk];
    /* s->dres is dL/dxout; the residual path passes it straight to x2 and then to x, so the
     * branch gradients are added onto it in place. The branch outputs see c * dres (times
     * the residual mask with output masks); when that is not dres itself it is staged in a
     * scratch buffer that is free at that point (datty is overwritten below by its own
     * product, dln is consumed by the ln2 backward before the attn-proj backward and
     * overwritten after it). The masks of fc and qkv are applied in place to dfch and dqkv,
     * which hold the gradient at the masked output and are read only after that. */
    const float *dout = branch_dout(m, s->datty, s->dres, c, N); /* [N,C] */
    linear_backward(m, s->dfchg, dw.fcproj_w, dw.fcproj_b, dout, b.fchg, b.fchgh, w.fcproj_w, N, F,
                    C);
    sp_gelu_backward_set(s->dfch, b.fch, s->dfchg, NF);
    mask_grad(m, s->dfch, s->dfch, N, F, m->plan.mask_f, 1);
    linear_backward(m, s->dln, dw.fc_w, dw.fc_b, s->dfch, b.ln2, b.ln2h, w.fc_w, N, C, F);
    ln_backward(m, s->dres, dw.ln2_w, dw.ln2_b, s->dln, b.x2, w.ln2_w, b.ln2_mean, b.ln2_rstd, N);
    dout = branch_dout(m, s->dln, s->dres, c, N);
    linear_backward(m, s->datty, dw.attproj_w, dw.attproj_b, dout, b.atty, NULL, w.attproj_w, N, C,
                    C);
    memset(s->dqkv, 0, 3 * NC * sizeof(float));
    sp_attention_backward(m->gemm, s->dqkv, s->datty, b.qkv, b.att, s->datt, B, T, C, sp->n_head);
    mask_grad(m, s->dqkv, s->dqkv, N, C, m->plan.mask_d, 3);
    linear_backward(m, s->dln, dw.qkv_w, dw.qkv_b, s->dqkv, b.ln1, b.ln1h, w.qkv_w, N, C, 3 * C);
    ln_backward(m, s->dres, dw.ln1_w, dw.ln1_b, s->dln, b.x, w.ln1_w, b.ln1_mean, b.ln1_rstd, N);
}

void sp_gpt2_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp) {
    float *dg = sp_model_globals(m, m->grads);
    int N = a->B * a->T, C = m->spec.d_model;
    /* with the output mask, m * dres is staged in dln (free once the blocks are done), so that
     * dres keeps dL/dx[0] as the header promises */
    const float *dout = s->dres;
    if (out_masked(m)) {
        mask_grad(m, s->dln, s->dres, N, C, m->plan.mask_d, 1);
        dout = s->dln;
    }
    sp_encoder_backward(dg + m->gt[SP_WTE].offset, dg + m->gt[SP_WPE].offset, dout, inp, a->B, a->T,
                        C);
}
