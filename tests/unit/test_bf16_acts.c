/* The bf16 step's fused conversions and skipped zeroing passes change no bit:
 *  - a bf16 run of gpt2 stores ln1, ln2, fchg and lnf in bf16 only, and each equals sp_to_bf16 of
 *    the fp32 producer (LayerNorm, GELU) on the stored inputs, bit for bit; the activation set
 *    is smaller than the fp32 one by their halved bytes; llama's likewise (RMSNorm, SwiGLU),
 *    with its head untied and tied, and with d_ff wider than the staging tile (one row of h per
 *    tile: the tile must hold it);
 *  - sp_matmul_backward_ex with dinp_beta 0 over a NaN-filled dinp gives the bits of a zeroed
 *    dinp with beta 1, in fp32 and in bf16; its bias sum in bf16 (fused with the rounding of dout)
 *    is the fp32 one; an operand given only in bf16 gives the product of its fp32 original;
 *  - sp_gelu_backward_set is memset + sp_gelu_backward;
 *  - the bias added by the product (sp_matmul_forward_ex) equals broadcast + beta 1 bit for bit.
 * "Bit for bit" for an overwritten buffer is up to the sign of a zero: 0 + (-0) is +0.
 * The bf16 parts skip (with the reason) where oneDNN refuses the context. */
#include "sprout/kernels.h"
#include "sprout/model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sp_spec k_spec = {96, 32, 64, 4, 256, 2, 0, 0, 0, 0};
enum { B = 2, T_ = 32 };

static void fill(float *x, size_t n, uint64_t stream) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(sp_rng_u64(7, SP_RNG_TEST, stream, i) % 2001) / 1000.0f - 1.0f;
}

/* a[i] == b[i] for all i: bit for bit up to the sign of a zero (0 + -0 is +0), NaN never equal */
static int same_values(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) return 0;
    return 1;
}

/* rounds ref (n fp32) and compares with got (bf16) bit for bit */
static void same16(tu_ctx *t, const uint16_t *got, const float *ref, size_t n, const char *what) {
    uint16_t *r = malloc(n * sizeof *r);
    sp_to_bf16(r, ref, n);
    tu_check(t, got && !memcmp(got, r, n * sizeof *r),
             "%s: stored bf16 differs from the rounded "
             "fp32 producer",
             what);
    free(r);
}

/* A trained-looking model of spec s running its products in g, and its activation set for
 * B x T_; nonzero after a failed check (nothing left to free). */
static int bf16_model(tu_ctx *t, sp_gemm *g, const sp_spec *s, uint64_t seed, sp_model *m,
                      sp_acts *a) {
    sp_err err = {0};
    if (tu_model_trained(m, s, seed, t)) return 1;
    int rc = sp_model_use_gemm(m, g, &err);
    if (!rc) {
        sp_model_sync_bf16(m);
        rc = sp_acts_create(a, m, B, T_, &err);
    }
    tu_check(t, rc == 0, "%s model in bf16 with its activations: %s", sp_kind_of(s)->name, err.msg);
    if (rc) sp_model_free(m);
    return rc;
}

static void check_acts(tu_ctx *t, sp_gemm *g) {
    sp_model m;
    sp_acts a;
    if (bf16_model(t, g, &k_spec, 5, &m, &a)) return;
    size_t N = (size_t)B * T_, C = k_spec.d_model, F = k_spec.d_ff, L = k_spec.n_layer;
    tu_check(t, !a.ln1 && !a.ln2 && !a.fchg && !a.lnf && a.ln1h && a.ln2h && a.fchgh && a.lnfh,
             "bf16 gpt2 acts: operand-only activations not in bf16 only");
    size_t saved = 2 * (L * (2 * N * C + N * F) + N * C),
           full = sp_acts_bytes(&m.spec, L, 1, B, T_);
    size_t wide = C > F ? C : F,
           stage = sizeof(float) * (wide > SP_ACTS_STAGE ? wide : SP_ACTS_STAGE);
    /* each carved buffer is rounded up to 64 bytes: 4 halved ones, the stage */
    tu_check(t,
             a.bytes + saved <= full + stage + 5 * 64 && a.bytes + saved + 5 * 64 >= full + stage,
             "acts bytes %zu: expected %zu - %zu + %zu", a.bytes, full, saved, stage);
    int32_t *inp = malloc(N * sizeof *inp), *tgt = malloc(N * sizeof *tgt);
    for (size_t i = 0; i < N; i++) {
        inp[i] = (int32_t)(sp_rng_u64(7, SP_RNG_TEST, 1, i) % (uint64_t)k_spec.vocab);
        tgt[i] = (int32_t)(sp_rng_u64(7, SP_RNG_TEST, 2, i) % (uint64_t)k_spec.vocab);
    }
    sp_model_embed_forward(&m, &a, inp);
    sp_model_blocks_forward(&m, &a);
    sp_model_head_forward(&m, &a, tgt);
    float *o = malloc(N * F * sizeof *o), *mu = malloc(N * sizeof *mu),
          *rs = malloc(N * sizeof *rs);
    for (size_t i = 0; i < L; i++) {
        const float *p = sp_model_block(&m, m.params, m.plan.pos[i]);
        char what[64];
        sp_layernorm_forward(o, mu, rs, a.x + i * N * C, p + m.bt[SP_LN1_W].offset,
                             p + m.bt[SP_LN1_B].offset, (int)N, (int)C);
        snprintf(what, sizeof what, "block %zu ln1", i);
        same16(t, a.ln1h + i * N * C, o, N * C, what);
        sp_layernorm_forward(o, mu, rs, a.x2 + i * N * C, p + m.bt[SP_LN2_W].offset,
                             p + m.bt[SP_LN2_B].offset, (int)N, (int)C);
        snprintf(what, sizeof what, "block %zu ln2", i);
        same16(t, a.ln2h + i * N * C, o, N * C, what);
        sp_gelu_forward(o, a.fch + i * N * F, N * F);
        snprintf(what, sizeof what, "block %zu fchg", i);
        same16(t, a.fchgh + i * N * F, o, N * F, what);
    }
    const float *gl = sp_model_globals(&m, m.params);
    sp_layernorm_forward(o, mu, rs, a.x + L * N * C, gl + m.gt[SP_LNF_W].offset,
                         gl + m.gt[SP_LNF_B].offset, (int)N, (int)C);
    same16(t, a.lnfh, o, N * C, "lnf");
    free(o), free(mu), free(rs), free(inp), free(tgt);
    sp_acts_free(&a);
    sp_model_free(&m);
}

/* the offset of the tensor named name in a table of n, or SIZE_MAX */
static size_t offset_of(const sp_tensor_info *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return t[i].offset;
    return SIZE_MAX;
}

/* llama's operand-only activations (both RMSNorm outputs, SwiGLU's h, the final norm) in bf16
 * only, each the rounding of its fp32 producer on the stored inputs, untied and tied head */
static void check_acts_llama(tu_ctx *t, sp_gemm *g, int tie, int d_ff) {
    sp_spec s = k_spec;
    s.kind = sp_kind_find("llama"), s.tie_head = tie, s.norm_eps = 1e-5, s.rope_theta = 1e4;
    s.d_ff = d_ff;
    sp_model m;
    sp_acts a;
    if (bf16_model(t, g, &s, 6, &m, &a)) return;
    size_t N = (size_t)B * T_, C = s.d_model, F = s.d_ff, L = s.n_layer;
    tu_check(t, !a.ln1 && !a.ln2 && !a.fchg && !a.lnf && a.ln1h && a.ln2h && a.fchgh && a.lnfh,
             "bf16 llama acts (tie %d): operand-only activations not in bf16 only", tie);
    /* the SwiGLU and RMSNorm producers write whole rows into the stage */
    tu_check(t, a.stage_n >= F && a.stage_n >= C, "llama (d_ff %zu): a stage of %zu floats", F,
             a.stage_n);
    if (a.stage_n < F || a.stage_n < C) goto out_acts; /* the forward would overrun it */
    size_t o1 = offset_of(m.bt, m.nbt, "input_layernorm.weight"),
           o2 = offset_of(m.bt, m.nbt, "post_attention_layernorm.weight"),
           on = offset_of(m.gt, m.ngt, "model.norm.weight");
    tu_check(t, o1 != SIZE_MAX && o2 != SIZE_MAX && on != SIZE_MAX, "llama norm tensors");
    if (o1 == SIZE_MAX || o2 == SIZE_MAX || on == SIZE_MAX) goto out_acts;
    int32_t *inp = malloc(N * sizeof *inp), *tgt = malloc(N * sizeof *tgt);
    for (size_t i = 0; i < N; i++) {
        inp[i] = (int32_t)(sp_rng_u64(8, SP_RNG_TEST, 1, i) % (uint64_t)s.vocab);
        tgt[i] = (int32_t)(sp_rng_u64(8, SP_RNG_TEST, 2, i) % (uint64_t)s.vocab);
    }
    sp_model_embed_forward(&m, &a, inp);
    sp_model_blocks_forward(&m, &a);
    sp_model_head_forward(&m, &a, tgt);
    float *o = malloc(N * F * sizeof *o), *rs = malloc(N * sizeof *rs), eps = (float)s.norm_eps;
    for (size_t i = 0; i < L; i++) {
        const float *p = sp_model_block(&m, m.params, m.plan.pos[i]);
        char what[64];
        sp_rmsnorm_forward(o, rs, a.x + i * N * C, p + o1, (int)N, (int)C, eps);
        snprintf(what, sizeof what, "llama (tie %d) block %zu ln1", tie, i);
        same16(t, a.ln1h + i * N * C, o, N * C, what);
        sp_rmsnorm_forward(o, rs, a.x2 + i * N * C, p + o2, (int)N, (int)C, eps);
        snprintf(what, sizeof what, "llama (tie %d) block %zu ln2", tie, i);
        same16(t, a.ln2h + i * N * C, o, N * C, what);
        sp_swiglu_forward(o, a.fch + i * N * 2 * F, (int)N, (int)F);
        snprintf(what, sizeof what, "llama (tie %d) block %zu h", tie, i);
        same16(t, a.fchgh + i * N * F, o, N * F, what);
    }
    sp_rmsnorm_forward(o, rs, a.x + L * N * C, sp_model_globals(&m, m.params) + on, (int)N, (int)C,
                       eps);
    same16(t, a.lnfh, o, N * C, tie ? "llama (tied) final norm" : "llama final norm");
    free(o), free(rs), free(inp), free(tgt);
out_acts:
    sp_acts_free(&a);
    sp_model_free(&m);
}

/* dinp, dw, db of one linear backward: dinp_beta 0 over NaNs vs a zeroed dinp with beta 1 */
static void check_backward(tu_ctx *t, sp_gemm *g, const char *prec) {
    enum { N = 64, C = 48, OC = 80 };
    float *dout = malloc(N * OC * sizeof(float)), *inp = malloc(N * C * sizeof(float));
    float *w = malloc(C * OC * sizeof(float)), *d0 = malloc(N * C * sizeof(float));
    float *d1 = malloc(N * C * sizeof(float)), *dw0 = calloc(C * OC, sizeof(float));
    float *dw1 = calloc(C * OC, sizeof(float)), *dw2 = calloc(C * OC, sizeof(float));
    float *db0 = calloc(OC, sizeof(float)), *db1 = calloc(OC, sizeof(float));
    uint16_t *w16 = malloc(C * OC * sizeof *w16), *inp16 = malloc(N * C * sizeof *inp16);
    fill(dout, N * OC, 3), fill(inp, N * C, 4), fill(w, C * OC, 5);
    sp_to_bf16(w16, w, C * OC);
    sp_to_bf16(inp16, inp, N * C);
    const uint16_t *wh = g ? w16 : NULL;
    memset(d0, 0, N * C * sizeof(float));
    sp_matmul_backward(g, d0, dw0, db0, dout, inp, w, wh, N, C, OC);
    for (int i = 0; i < N * C; i++) d1[i] = NAN;
    sp_matmul_backward_ex(g, d1, 0.0f, dw1, db1, dout, SP_MAT(inp, C), (sp_mat){w, wh, OC}, N, C,
                          OC);
    tu_check(t, same_values(d0, d1, N * C) && !memcmp(dw0, dw1, C * OC * sizeof(float)),
             "%s: dinp_beta 0 differs from a zeroed dinp with beta 1", prec);
    /* the bias sum of the plain fp32 path, whatever the context */
    memset(db1, 0, OC * sizeof(float));
    sp_matmul_backward(NULL, NULL, dw2, db1, dout, inp, w, NULL, N, C, OC);
    tu_check(t, !memcmp(db0, db1, OC * sizeof(float)), "%s: bias gradient differs from fp32's",
             prec);
    if (g) { /* inp in bf16 only: the product of its rounded fp32 original */
        memset(dw2, 0, C * OC * sizeof(float));
        sp_matmul_backward_ex(g, NULL, 0.0f, dw2, NULL, dout, (sp_mat){NULL, inp16, C},
                              (sp_mat){w, wh, OC}, N, C, OC);
        tu_check(t, !memcmp(dw0, dw2, C * OC * sizeof(float)),
                 "bf16: dw from a bf16-only operand differs");
    }
    free(dout), free(inp), free(w), free(d0), free(d1), free(dw0), free(dw1), free(dw2);
    free(db0), free(db1), free(w16), free(inp16);
}

/* sp_matmul_forward's bias added by the product (sp_gemm_run_bias) vs broadcast + beta 1 */
static void check_forward(tu_ctx *t, sp_gemm *g, const char *prec) {
    enum { N = 64, C = 1536, OC = 96 }; /* a long K, as the MLP's second product */
    float *inp = malloc(N * C * sizeof(float)), *w = malloc(C * OC * sizeof(float));
    float *bias = malloc(OC * sizeof(float)), *o0 = malloc(N * OC * sizeof(float));
    float *o1 = malloc(N * OC * sizeof(float));
    uint16_t *w16 = malloc(C * OC * sizeof *w16);
    fill(inp, N * C, 10), fill(w, C * OC, 11), fill(bias, OC, 12);
    sp_to_bf16(w16, w, C * OC);
    sp_mat W = {w, g ? w16 : NULL, OC};
    for (int n = 0; n < N; n++) memcpy(o0 + n * OC, bias, OC * sizeof(float));
    sp_gemm_run(g, 0, 0, N, OC, C, 1.0f, SP_MAT(inp, C), W, 1.0f, o0, OC);
    for (int i = 0; i < N * OC; i++) o1[i] = NAN;
    sp_matmul_forward_ex(g, o1, SP_MAT(inp, C), W, bias, N, C, OC);
    tu_check(t, !memcmp(o0, o1, N * OC * sizeof(float)),
             "%s: bias added by the product differs from broadcast + beta 1", prec);
    free(inp), free(w), free(bias), free(o0), free(o1), free(w16);
}

static void check_gelu(tu_ctx *t) {
    enum { n = 1000 };
    float x[n], d[n], a[n], b[n];
    fill(x, n, 8), fill(d, n, 9);
    for (int i = 0; i < n; i++) x[i] *= 8.0f, a[i] = 0.0f, b[i] = NAN;
    sp_gelu_backward(a, x, d, n);
    sp_gelu_backward_set(b, x, d, n);
    tu_check(t, same_values(a, b, n), "sp_gelu_backward_set differs from memset + backward");
}

int main(void) {
    tu_ctx t = {0};
    sp_err err = {0};
    sp_gemm *g = NULL;
    check_gelu(&t);
    check_backward(&t, NULL, "fp32");
    check_forward(&t, NULL, "fp32");
    if (sp_gemm_create(&g, 1, &err)) {
        printf("bf16 parts skipped: %s\n", err.msg);
        return tu_finish(&t, "bf16_acts");
    }
    check_backward(&t, g, "bf16");
    check_forward(&t, g, "bf16");
    check_acts(&t, g);
    check_acts_llama(&t, g, 0, 192);
    check_acts_llama(&t, g, 1, 192);
    check_acts_llama(&t, g, 0, SP_ACTS_STAGE + 64);
    sp_gemm_free(g);
    return tu_finish(&t, "bf16_acts");
}
