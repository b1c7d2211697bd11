/* Causal multi-head self-attention on the fused qkv activations.
 *
 * Per (batch, head) every product is one cblas_sgemm on strided views: head h of q is the
 * [T, hd] matrix at qkv + h*hd with row stride 3C (k at +C, v at +2C), and its output goes
 * straight to out + h*hd with row stride C, so nothing is copied. Query rows are processed in
 * tiles of ATT_TILE: a tile only multiplies the keys up to its last row, which skips most of
 * the masked upper triangle while keeping each sgemm large enough to run near peak. */
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

/* rows r0..r1-1 of one head's att [T,T], in place: row t <- softmax over t2 <= t, zeros after
 * (the causal mask: exp is never spent on a masked entry) */
SP_HOT static void softmax_causal_tile(float *restrict a, int r0, int r1, int T) {
    for (int t = r0; t < r1; t++) {
        float *row = a + (size_t)t * T;
        int n = t + 1;
        float m = sp_vmax(row, n);
        for (int i = 0; i < n; i++) row[i] = sp_fexp(row[i] - m);
        float inv = 1.0f / sp_vsum(row, n);
        for (int i = 0; i < n; i++) row[i] *= inv;
        memset(row + n, 0, (size_t)(T - n) * sizeof(float));
    }
}

/* softmax backward for rows r0..r1-1, in place on ds (row stride ld, holding dP on entry):
 * dS = P (dP - rowsum(dP P)), and 0 beyond the diagonal up to column r1 */
SP_HOT static void softmax_backward_tile(float *restrict ds, int ld, const float *restrict a,
                                         int r0, int r1, int T) {
    for (int t = r0; t < r1; t++) {
        const float *p = a + (size_t)t * T;
        float *d = ds + (size_t)(t - r0) * ld;
        int n = t + 1;
        float s = sp_vdot(d, p, n);
        for (int i = 0; i < n; i++) d[i] = p[i] * (d[i] - s);
        memset(d + n, 0, (size_t)(r1 - n) * sizeof(float));
    }
}

/* out[B,T,C], att[B,NH,T,T] (softmax probabilities, exact zeros above the diagonal);
 * qkv[B,T,3C] */
void sp_attention_forward(float *restrict out, float *restrict att, const float *restrict qkv,
                          int B, int T, int C, int NH) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hd;
            const float *k = q + C, *v = q + 2 * C;
            float *a = att + ((size_t)b * NH + h) * T * T;
            float *o = out + (size_t)b * T * C + (size_t)h * hd;
            for (int r0 = 0; r0 < T; r0 += ATT_TILE) {
                int r1 = r0 + ATT_TILE < T ? r0 + ATT_TILE : T, tq = r1 - r0;
                float *at = a + (size_t)r0 * T;
                /* scores[r0:r1, 0:r1] = scale * Q K^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, r1, hd, scale,
                            q + (size_t)r0 * C3, C3, k, C3, 0.0f, at, T);
                softmax_causal_tile(a, r0, r1, T);
                /* out[r0:r1] = P V; P is zero beyond each row's diagonal */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, hd, r1, 1.0f, at, T, v,
                            C3, 0.0f, o + (size_t)r0 * C, C);
            }
        }
    }
}

/* dqkv[B,T,3C] +=;  dout[B,T,C], qkv[B,T,3C], att[B,NH,T,T];  scratch >= T*T floats
 *   dP = dout V^T,  dV += P^T dout,  dS = P (dP - rowsum(dP P)),
 *   dQ += scale dS K,  dK += scale dS^T Q */
void sp_attention_backward(float *restrict dqkv, const float *restrict dout,
                           const float *restrict qkv, const float *restrict att,
                           float *restrict scratch, int B, int T, int C, int NH) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t off = (size_t)b * T * C3 + (size_t)h * hd;
            const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
            const float *a = att + ((size_t)b * NH + h) * T * T;
            const float *d = dout + (size_t)b * T * C + (size_t)h * hd;
            for (int r0 = 0; r0 < T; r0 += ATT_TILE) {
                int r1 = r0 + ATT_TILE < T ? r0 + ATT_TILE : T, tq = r1 - r0;
                const float *at = a + (size_t)r0 * T, *dt = d + (size_t)r0 * C;
                /* the tile's dP / dS rows live in scratch with row stride r1 */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, r1, hd, 1.0f, dt, C, v, C3,
                            0.0f, scratch, r1);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, tq, 1.0f, at, T, dt, C,
                            1.0f, dv, C3);
                softmax_backward_tile(scratch, r1, a, r0, r1, T);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, hd, r1, scale, scratch,
                            r1, k, C3, 1.0f, dq + (size_t)r0 * C3, C3);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, tq, scale, scratch, r1,
                            q + (size_t)r0 * C3, C3, 1.0f, dk, C3);
            }
        }
    }
}
