/* LayerNorm over the channel dimension (eps 1e-5, as GPT-2). */
#include "sprout/kernels.h"

#include <math.h>

#include "fastmath.h"

/* out[N,C] = (inp - mean) * rstd * w + b, rstd = 1/sqrt(var + eps);  mean[N], rstd[N] saved;
 * w, b [C]. Two passes for the variance (sum of squared deviations) rather than
 * E[x^2] - E[x]^2: the residual stream can have a large mean relative to its spread. */
SP_HOT void sp_layernorm_forward_eps(float *restrict out, float *restrict mean,
                                     float *restrict rstd, const float *restrict inp,
                                     const float *restrict w, const float *restrict b, int N, int C,
                                     float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = sp_vsum(x, C) / (float)C;
        /* out is scratch for the deviations: keeps the reduction a plain sp_vdot */
        for (int i = 0; i < C; i++) o[i] = x[i] - m;
        float var = sp_vdot(o, o, C) / (float)C;
        float s = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < C; i++) o[i] = o[i] * s * w[i] + b[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

void sp_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C) {
    sp_layernorm_forward_eps(out, mean, rstd, inp, w, b, N, C, SP_LN_EPS);
}

/* dinp[N,C] +=, dw[C] +=, db[C] +=;  dout, inp [N,C]
 * With xhat = (x - mean) rstd and g = dout * w:
 *   dinp = rstd (g - mean(g) - xhat mean(g xhat)). */
SP_HOT void sp_layernorm_backward(float *restrict dinp, float *restrict dw, float *restrict db,
                                  const float *restrict dout, const float *restrict inp,
                                  const float *restrict w, const float *restrict mean,
                                  const float *restrict rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        /* sum(g) and sum(g (x - mean)) in one pass, as explicit vectors (see fastmath.h) */
        sp_vf ag = {0}, agx = {0};
        int i = 0;
        for (; i + 8 <= C; i += 8) {
            sp_vf dv, wv, xv;
            SP_VLOAD(dv, d + i);
            SP_VLOAD(wv, w + i);
            SP_VLOAD(xv, x + i);
            sp_vf g = dv * wv;
            ag += g;
            agx += g * (xv - m);
        }
        float sg = 0.0f, sgx = 0.0f;
        for (; i < C; i++) {
            float g = d[i] * w[i];
            sg += g;
            sgx += g * (x[i] - m);
        }
        for (int j = 0; j < 8; j++) sg += ag[j], sgx += agx[j];
        float g_mean = sg / (float)C, gx_mean = sgx * s / (float)C;
        for (i = 0; i < C; i++) {
            float xhat = (x[i] - m) * s;
            float g = d[i] * w[i];
            dw[i] += d[i] * xhat;
            db[i] += d[i];
            di[i] += (g - g_mean - xhat * gx_mean) * s;
        }
    }
}

/* ---- masked LayerNorm (fade-in of new channels after widen_zero / widen_random) ----
 * Channel weights m_i = 1 for i < n_old, c for i >= n_old, W = sum m_i = n_old + c (C - n_old).
 * The statistics are weighted by m and the output is multiplied by m, so at c = 0 the old
 * channels get the plain LayerNorm of the old channels alone (bit for bit: the same sums over the
 * same leading n_old values) and the new channels 0, whatever they hold; at c = 1 it is the plain
 * LayerNorm up to the order of the sums. The two channel ranges are handled as two contiguous
 * segments of weight 1 and c, so no per-channel weight array is needed. */

/* out[N,C] = m * ((inp - mean) * rstd * w + b);  mean = sum m x / W, var = sum m (x - mean)^2 / W;
 * mean[N], rstd[N] saved;  w, b [C] */
SP_HOT void sp_layernorm_masked_forward_eps(float *restrict out, float *restrict mean,
                                            float *restrict rstd, const float *restrict inp,
                                            const float *restrict w, const float *restrict b, int N,
                                            int C, int n_old, float c, float eps) {
    int nn = C - n_old;
    float W = (float)n_old + c * (float)nn;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = (sp_vsum(x, n_old) + c * sp_vsum(x + n_old, nn)) / W;
        for (int i = 0; i < C; i++) o[i] = x[i] - m;
        float var = (sp_vdot(o, o, n_old) + c * sp_vdot(o + n_old, o + n_old, nn)) / W;
        float s = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < n_old; i++) o[i] = o[i] * s * w[i] + b[i];
        for (int i = n_old; i < C; i++) o[i] = c * (o[i] * s * w[i] + b[i]);
        mean[n] = m;
        rstd[n] = s;
    }
}

void sp_layernorm_masked_forward(float *out, float *mean, float *rstd, const float *inp,
                                 const float *w, const float *b, int N, int C, int n_old, float c) {
    sp_layernorm_masked_forward_eps(out, mean, rstd, inp, w, b, N, C, n_old, c, SP_LN_EPS);
}

/* sum of d w and of d w (x - m) over one segment of a row */
static void ln_seg_sums(const float *restrict d, const float *restrict x, const float *restrict w,
                        float m, int n, float *sg, float *sgx) {
    float a = 0.0f, ax = 0.0f;
    for (int i = 0; i < n; i++) {
        float g = d[i] * w[i];
        a += g;
        ax += g * (x[i] - m);
    }
    *sg = a, *sgx = ax;
}

/* the gradients of one segment of weight q, given the row's weighted means of g and g xhat */
static void ln_seg_grads(float *restrict di, float *restrict dw, float *restrict db,
                         const float *restrict d, const float *restrict x, const float *restrict w,
                         float m, float s, float g_mean, float gx_mean, float q, int n) {
    for (int i = 0; i < n; i++) {
        float xhat = (x[i] - m) * s;
        dw[i] += q * d[i] * xhat;
        db[i] += q * d[i];
        di[i] += q * (d[i] * w[i] - g_mean - xhat * gx_mean) * s;
    }
}

/* dinp[N,C] +=, dw[C] +=, db[C] +=;  dout, inp [N,C]
 * With xhat = (x - mean) rstd and g = m dout w (the gradient reaching xhat), using
 * d mean / dx_j = m_j / W and d rstd / dx_j = -rstd^2 m_j xhat_j / W (sum m (x - mean) = 0):
 *   dinp_j = rstd (g_j - m_j sum(g) / W - m_j xhat_j sum(g xhat) / W)
 *          = m_j rstd (dout_j w_j - sum(g) / W - xhat_j sum(g xhat) / W)
 *   dw_j = m_j dout_j xhat_j,  db_j = m_j dout_j.
 * At c = 0 every new channel gets exactly zero gradient (its g and m are 0). */
SP_HOT void sp_layernorm_masked_backward(float *restrict dinp, float *restrict dw,
                                         float *restrict db, const float *restrict dout,
                                         const float *restrict inp, const float *restrict w,
                                         const float *restrict mean, const float *restrict rstd,
                                         int N, int C, int n_old, float c) {
    int nn = C - n_old;
    float W = (float)n_old + c * (float)nn;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        float sg0, sgx0, sg1, sgx1;
        ln_seg_sums(d, x, w, m, n_old, &sg0, &sgx0);
        ln_seg_sums(d + n_old, x + n_old, w + n_old, m, nn, &sg1, &sgx1);
        float g_mean = (sg0 + c * sg1) / W, gx_mean = (sgx0 + c * sgx1) * s / W;
        ln_seg_grads(di, dw, db, d, x, w, m, s, g_mean, gx_mean, 1.0f, n_old);
        ln_seg_grads(di + n_old, dw + n_old, db + n_old, d + n_old, x + n_old, w + n_old, m, s,
                     g_mean, gx_mean, c, nn);
    }
}
