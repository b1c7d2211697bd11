/* LayerNorm over the channel dimension (eps 1e-5, as GPT-2). */
#include "sprout/kernels.h"

#include <math.h>

#include "fastmath.h"

#define LN_EPS 1e-5f

/* out[N,C] = (inp - mean) * rstd * w + b;  mean[N], rstd[N] saved;  w, b [C]
 * Two passes for the variance (sum of squared deviations) rather than E[x^2] - E[x]^2: the
 * residual stream can have a large mean relative to its spread. */
SP_HOT void sp_layernorm_forward(float *restrict out, float *restrict mean, float *restrict rstd,
                                 const float *restrict inp, const float *restrict w,
                                 const float *restrict b, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = sp_vsum(x, C) / (float)C;
        /* out is scratch for the deviations: keeps the reduction a plain sp_vdot */
        for (int i = 0; i < C; i++) o[i] = x[i] - m;
        float var = sp_vdot(o, o, C) / (float)C;
        float s = 1.0f / sqrtf(var + LN_EPS);
        for (int i = 0; i < C; i++) o[i] = o[i] * s * w[i] + b[i];
        mean[n] = m;
        rstd[n] = s;
    }
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
