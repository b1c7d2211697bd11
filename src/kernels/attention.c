/* Multi-head self-attention on the fused qkv activations, causal (GPT-2, LLaMA) or
 * bidirectional (BERT): one code path, each query tile parameterised by its rows' extent.
 *
 * Per (batch, head) every product is one cblas_sgemm on strided views: head h of q is the
 * [T, hd] matrix at qkv + h*hd with row stride 3C (k at +C, v at +2C), and its output goes
 * straight to out + h*hd with row stride C, so nothing is copied. Query rows are processed in
 * tiles of ATT_TILE: a causal tile only multiplies the keys up to its last row, which skips most
 * of the masked upper triangle while keeping each sgemm large enough to run near peak; a
 * bidirectional tile multiplies all T keys.
 *
 * In bf16 (g != NULL) the same tiles run as oneDNN batched products over all heads of a
 * sequence at once (one call per tile and product instead of one per head: these products are
 * small, and a call costs microseconds): q, k, v and the output gradient are rounded to bf16
 * once per sequence, the probabilities and dS once per tile; softmax and its backward stay fp32
 * on fp32 scores. Where oneDNN fails a product (out of memory), that sequence falls back to
 * the fp32 path. */
#include "sprout/kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "fastmath.h"

/* 64 measured best of 32..256 (T = 256, hd = 64, OpenBLAS 0.3.21): smaller tiles waste less of
 * the triangle but their sgemms run much slower */
#ifndef ATT_TILE
#define ATT_TILE 64
#endif

/* the number of keys the query rows r0..r1-1 see: up to the last row's diagonal, or all */
static inline int tile_keys(int r1, int T, int causal) {
    return causal ? r1 : T;
}

/* rows r0..r1-1 of one head's att [T,T], in place: row t <- softmax over t2 <= t, zeros after
 * (the causal mask: exp is never spent on a masked entry), or over all T keys */
SP_HOT static void softmax_tile(float *restrict a, int r0, int r1, int T, int causal) {
    for (int t = r0; t < r1; t++) {
        float *row = a + (size_t)t * T;
        int n = causal ? t + 1 : T;
        float m = sp_vmax(row, n);
        for (int i = 0; i < n; i++) row[i] = sp_fexp(row[i] - m);
        float inv = 1.0f / sp_vsum(row, n);
        for (int i = 0; i < n; i++) row[i] *= inv;
        memset(row + n, 0, (size_t)(T - n) * sizeof(float));
    }
}

/* softmax backward for rows r0..r1-1, in place on ds (row stride ld = the tile's keys, holding
 * dP on entry): dS = P (dP - rowsum(dP P)), and 0 beyond the diagonal up to column ld */
SP_HOT static void softmax_backward_tile(float *restrict ds, int ld, const float *restrict a,
                                         int r0, int r1, int T, int causal) {
    for (int t = r0; t < r1; t++) {
        const float *p = a + (size_t)t * T;
        float *d = ds + (size_t)(t - r0) * ld;
        int n = causal ? t + 1 : ld;
        float s = sp_vdot(d, p, n);
        for (int i = 0; i < n; i++) d[i] = p[i] * (d[i] - s);
        memset(d + n, 0, (size_t)(ld - n) * sizeof(float));
    }
}

size_t sp_attention_scratch_floats(int T, int NH) {
    /* fp32: one head's tile rows at a time (<= T*T); bf16: every head's tile at once */
    size_t tile = (size_t)(T < ATT_TILE ? T : ATT_TILE) * (size_t)T * (size_t)NH;
    return tile > (size_t)T * T ? tile : (size_t)T * T;
}

/* rows r0..r1-1, columns 0..kc-1 of each head's [T,T] matrix in src (head stride hs) rounded to
 * bf16 into dst [NH, r1 - r0, kc] */
static void pack_tile(uint16_t *dst, const float *src, size_t hs, int ld, int NH, int r0, int r1,
                      int kc) {
    int tq = r1 - r0;
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < tq; t++)
            sp_to_bf16(dst + ((size_t)h * tq + t) * kc, src + h * hs + (size_t)(r0 + t) * ld,
                       (size_t)kc);
}

/* A batched operand [NH, rows, cols]: its bf16 copy h and the fp32 original f, each with its
 * strides over (head, row, column) */
typedef struct opnd {
    const uint16_t *h;
    const int64_t *hs;
    const float *f;
    const int64_t *fs;
} opnd;

/* C[i] = alpha A[i] B[i] + beta C[i] for the NH heads: one oneDNN call in bf16; should oneDNN
 * fail (out of memory for a new primitive), one sgemm per head on the fp32 originals, so that a
 * product that accumulates is never lost nor done twice */
static void bprod(sp_gemm *g, int NH, int M, int N, int K, float alpha, opnd A, opnd B, float beta,
                  float *C, const int64_t cs[3]) {
    if (!sp_gemm_batched(g, NH, M, N, K, alpha, A.h, A.hs, B.h, B.hs, beta, C, cs)) return;
    int ta = A.fs[2] != 1, tb = B.fs[2] != 1;
    for (int i = 0; i < NH; i++)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A.f + i * A.fs[0], (int)(ta ? A.fs[2] : A.fs[1]),
                    B.f + i * B.fs[0], (int)(tb ? B.fs[2] : B.fs[1]), beta, C + i * cs[0],
                    (int)cs[1]);
}

/* one sequence's forward in bf16; -1 (nothing done) when its buffers cannot be had */
static int forward_bf16(sp_gemm *g, float *out, float *att, const float *qkv, int T, int C, int NH,
                        int causal) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    uint16_t *q16 = sp_gemm_buf(g, 2, (size_t)T * C3);
    uint16_t *p16 = sp_gemm_buf(g, 3, (size_t)NH * ATT_TILE * T);
    if (!q16 || !p16) return -1;
    sp_to_bf16(q16, qkv, (size_t)T * C3);
    size_t TT = (size_t)T * T;
    int64_t xs[3] = {hd, C3, 1}, xts[3] = {hd, 1, C3}, ats[3] = {(int64_t)TT, T, 1};
    int64_t os[3] = {hd, C, 1};
    for (int r0 = 0; r0 < T; r0 += ATT_TILE) {
        int r1 = r0 + ATT_TILE < T ? r0 + ATT_TILE : T, tq = r1 - r0, kc = tile_keys(r1, T, causal);
        int64_t ps[3] = {(int64_t)tq * kc, kc, 1};
        size_t qo = (size_t)r0 * C3;
        /* scores[h, r0:r1, 0:kc] = scale Q K^T: Q [NH, tq, hd], K^T [NH, hd, kc] */
        bprod(g, NH, tq, kc, hd, scale, (opnd){q16 + qo, xs, qkv + qo, xs},
              (opnd){q16 + C, xts, qkv + C, xts}, 0.0f, att + (size_t)r0 * T, ats);
        for (int h = 0; h < NH; h++) softmax_tile(att + h * TT, r0, r1, T, causal);
        pack_tile(p16, att, TT, T, NH, r0, r1, kc);
        /* out[r0:r1, h] = P V: P [NH, tq, kc], V [NH, kc, hd] */
        bprod(g, NH, tq, hd, kc, 1.0f, (opnd){p16, ps, att + (size_t)r0 * T, ats},
              (opnd){q16 + 2 * C, xs, qkv + 2 * C, xs}, 0.0f, out + (size_t)r0 * C, os);
    }
    return 0;
}

/* one sequence's backward in bf16; -1 (nothing done) when its buffers cannot be had */
static int backward_bf16(sp_gemm *g, float *dqkv, const float *dout, const float *qkv,
                         const float *att, float *scratch, int T, int C, int NH, int causal) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    uint16_t *q16 = sp_gemm_buf(g, 2, (size_t)T * C3);
    uint16_t *p16 = sp_gemm_buf(g, 3, (size_t)NH * ATT_TILE * T);
    uint16_t *d16 = sp_gemm_buf(g, 4, (size_t)T * C);
    uint16_t *s16 = sp_gemm_buf(g, 5, (size_t)NH * ATT_TILE * T);
    if (!q16 || !p16 || !d16 || !s16) return -1;
    sp_to_bf16(q16, qkv, (size_t)T * C3);
    sp_to_bf16(d16, dout, (size_t)T * C);
    size_t TT = (size_t)T * T;
    int64_t xs[3] = {hd, C3, 1}, xts[3] = {hd, 1, C3}, ds[3] = {hd, C, 1};
    int64_t atts[3] = {(int64_t)TT, 1, T};
    for (int r0 = 0; r0 < T; r0 += ATT_TILE) {
        int r1 = r0 + ATT_TILE < T ? r0 + ATT_TILE : T, tq = r1 - r0, kc = tile_keys(r1, T, causal);
        size_t hs = (size_t)tq * kc; /* one head's tile in scratch, p16 and s16 */
        int64_t ts[3] = {(int64_t)hs, kc, 1}, tts[3] = {(int64_t)hs, 1, kc};
        size_t qo = (size_t)r0 * C3, dof = (size_t)r0 * C;
        const float *pt = att + (size_t)r0 * T;
        /* dP [NH, tq, kc] = dO [NH, tq, hd] V^T [NH, hd, kc] */
        bprod(g, NH, tq, kc, hd, 1.0f, (opnd){d16 + dof, ds, dout + dof, ds},
              (opnd){q16 + 2 * C, xts, qkv + 2 * C, xts}, 0.0f, scratch, ts);
        pack_tile(p16, att, TT, T, NH, r0, r1, kc);
        /* dV [NH, kc, hd] += P^T [NH, kc, tq] dO [NH, tq, hd] */
        bprod(g, NH, kc, hd, tq, 1.0f, (opnd){p16, tts, pt, atts},
              (opnd){d16 + dof, ds, dout + dof, ds}, 1.0f, dqkv + 2 * C, xs);
        for (int h = 0; h < NH; h++)
            softmax_backward_tile(scratch + h * hs, kc, att + h * TT, r0, r1, T, causal);
        sp_to_bf16(s16, scratch, (size_t)NH * hs); /* dS tiles are packed already */
        /* dQ [NH, tq, hd] += scale dS [NH, tq, kc] K [NH, kc, hd] */
        bprod(g, NH, tq, hd, kc, scale, (opnd){s16, ts, scratch, ts},
              (opnd){q16 + C, xs, qkv + C, xs}, 1.0f, dqkv + qo, xs);
        /* dK [NH, kc, hd] += scale dS^T [NH, kc, tq] Q [NH, tq, hd] */
        bprod(g, NH, kc, hd, tq, scale, (opnd){s16, tts, scratch, tts},
              (opnd){q16 + qo, xs, qkv + qo, xs}, 1.0f, dqkv + C, xs);
    }
    return 0;
}

/* out[B,T,C], att[B,NH,T,T] (softmax probabilities; causal: exact zeros above the diagonal);
 * qkv[B,T,3C] */
void sp_attention_forward_ex(sp_gemm *g, float *restrict out, float *restrict att,
                             const float *restrict qkv, int B, int T, int C, int NH, int causal) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++) {
        if (g && !forward_bf16(g, out + (size_t)b * T * C, att + (size_t)b * NH * T * T,
                               qkv + (size_t)b * T * C3, T, C, NH, causal))
            continue;
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hd;
            const float *k = q + C, *v = q + 2 * C;
            float *a = att + ((size_t)b * NH + h) * T * T;
            float *o = out + (size_t)b * T * C + (size_t)h * hd;
            for (int r0 = 0; r0 < T; r0 += ATT_TILE) {
                int r1 = r0 + ATT_TILE < T ? r0 + ATT_TILE : T, tq = r1 - r0;
                int kc = tile_keys(r1, T, causal);
                float *at = a + (size_t)r0 * T;
                /* scores[r0:r1, 0:kc] = scale * Q K^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, kc, hd, scale,
                            q + (size_t)r0 * C3, C3, k, C3, 0.0f, at, T);
                softmax_tile(a, r0, r1, T, causal);
                /* out[r0:r1] = P V; causal: P is zero beyond each row's diagonal */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, hd, kc, 1.0f, at, T, v,
                            C3, 0.0f, o + (size_t)r0 * C, C);
            }
        }
    }
}

/* dqkv[B,T,3C] +=;  dout[B,T,C], qkv[B,T,3C], att[B,NH,T,T];  scratch >= T*T floats
 *   dP = dout V^T,  dV += P^T dout,  dS = P (dP - rowsum(dP P)),
 *   dQ += scale dS K,  dK += scale dS^T Q */
void sp_attention_backward_ex(sp_gemm *g, float *restrict dqkv, const float *restrict dout,
                              const float *restrict qkv, const float *restrict att,
                              float *restrict scratch, int B, int T, int C, int NH, int causal) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++) {
        if (g && !backward_bf16(g, dqkv + (size_t)b * T * C3, dout + (size_t)b * T * C,
                                qkv + (size_t)b * T * C3, att + (size_t)b * NH * T * T, scratch, T,
                                C, NH, causal))
            continue;
        for (int h = 0; h < NH; h++) {
            size_t off = (size_t)b * T * C3 + (size_t)h * hd;
            const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
            const float *a = att + ((size_t)b * NH + h) * T * T;
            const float *d = dout + (size_t)b * T * C + (size_t)h * hd;
            for (int r0 = 0; r0 < T; r0 += ATT_TILE) {
                int r1 = r0 + ATT_TILE < T ? r0 + ATT_TILE : T, tq = r1 - r0;
                int kc = tile_keys(r1, T, causal);
                const float *at = a + (size_t)r0 * T, *dt = d + (size_t)r0 * C;
                /* the tile's dP / dS rows live in scratch with row stride kc */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, kc, hd, 1.0f, dt, C, v, C3,
                            0.0f, scratch, kc);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kc, hd, tq, 1.0f, at, T, dt, C,
                            1.0f, dv, C3);
                softmax_backward_tile(scratch, kc, a, r0, r1, T, causal);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, hd, kc, scale, scratch,
                            kc, k, C3, 1.0f, dq + (size_t)r0 * C3, C3);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kc, hd, tq, scale, scratch, kc,
                            q + (size_t)r0 * C3, C3, 1.0f, dk, C3);
            }
        }
    }
}

void sp_attention_forward(sp_gemm *g, float *out, float *att, const float *qkv, int B, int T, int C,
                          int NH) {
    sp_attention_forward_ex(g, out, att, qkv, B, T, C, NH, 1);
}

void sp_attention_backward(sp_gemm *g, float *dqkv, const float *dout, const float *qkv,
                           const float *att, float *scratch, int B, int T, int C, int NH) {
    sp_attention_backward_ex(g, dqkv, dout, qkv, att, scratch, B, T, C, NH, 1);
}
