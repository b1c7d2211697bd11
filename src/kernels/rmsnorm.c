/* RMSNorm over the channel dimension (LLaMA; Hugging Face LlamaRMSNorm): no mean, no bias. */
#include "sprout/kernels.h"

#include <math.h>

#include "fastmath.h"

/* out[N,C] = inp * rstd * w,  rstd = 1/sqrt(mean(inp^2) + eps);  rstd[N] saved;  w [C]
 * out may not alias inp (the backward needs inp). */
SP_HOT void sp_rmsnorm_forward(float *restrict out, float *restrict rstd, const float *restrict inp,
                               const float *restrict w, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 1.0f / sqrtf(sp_vdot(x, x, C) / (float)C + eps);
        for (int i = 0; i < C; i++) o[i] = x[i] * s * w[i];
        rstd[n] = s;
    }
}

/* dinp[N,C] +=, dw[C] +=;  dout, inp [N,C]
 * With xhat = x rstd and g = dout * w (the gradient reaching xhat), d rstd / dx_j = -rstd^3 x_j /
 * C: dinp = rstd (g - xhat mean(g xhat)),  dw = dout xhat. */
SP_HOT void sp_rmsnorm_backward(float *restrict dinp, float *restrict dw,
                                const float *restrict dout, const float *restrict inp,
                                const float *restrict w, const float *restrict rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        float s = rstd[n];
        float gx_mean = sp_vdot3(d, w, x, C) * s / (float)C;
        for (int i = 0; i < C; i++) {
            float xhat = x[i] * s;
            dw[i] += d[i] * xhat;
            di[i] += (d[i] * w[i] - xhat * gx_mean) * s;
        }
    }
}

/* ---- masked RMSNorm (fade-in of new channels after widen_zero / widen_random) ----
 * As the masked LayerNorm (layernorm.c): channel weights m_i = 1 for i < n_old, c for the others,
 * W = n_old + c (C - n_old); the mean square is weighted by m and the output multiplied by m. At
 * c = 0 the old channels get the plain RMSNorm of the old channels alone (the same sum over the
 * same leading n_old values, bit for bit) and the new ones 0; c = 1 is the plain RMSNorm up to the
 * order of the sums. */

/* out[N,C] = m * inp * rstd * w,  rstd = 1/sqrt(sum m inp^2 / W + eps);  rstd[N] saved */
SP_HOT void sp_rmsnorm_masked_forward(float *restrict out, float *restrict rstd,
                                      const float *restrict inp, const float *restrict w, int N,
                                      int C, int n_old, float c, float eps) {
    int nn = C - n_old;
    float W = (float)n_old + c * (float)nn;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float ms = (sp_vdot(x, x, n_old) + c * sp_vdot(x + n_old, x + n_old, nn)) / W;
        float s = 1.0f / sqrtf(ms + eps);
        for (int i = 0; i < n_old; i++) o[i] = x[i] * s * w[i];
        for (int i = n_old; i < C; i++) o[i] = c * (x[i] * s * w[i]);
        rstd[n] = s;
    }
}

/* dinp[N,C] +=, dw[C] +=;  dout, inp [N,C]
 * With xhat = x rstd and g = m dout w (the gradient reaching xhat), d rstd / dx_j =
 * -rstd^3 m_j x_j / W:  dinp_j = m_j rstd (dout_j w_j - xhat_j sum(g xhat) / W),
 * dw_j = m_j dout_j xhat_j. At c = 0 every new channel gets exactly zero gradient. */
SP_HOT void sp_rmsnorm_masked_backward(float *restrict dinp, float *restrict dw,
                                       const float *restrict dout, const float *restrict inp,
                                       const float *restrict w, const float *restrict rstd, int N,
                                       int C, int n_old, float c) {
    int nn = C - n_old;
    float W = (float)n_old + c * (float)nn;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        float s = rstd[n];
        float gx_mean =
            (sp_vdot3(d, w, x, n_old) + c * sp_vdot3(d + n_old, w + n_old, x + n_old, nn)) * s / W;
        for (int i = 0; i < C; i++) {
            float q = i < n_old ? 1.0f : c, xhat = x[i] * s;
            dw[i] += q * d[i] * xhat;
            di[i] += q * (d[i] * w[i] - xhat * gx_mean) * s;
        }
    }
}
