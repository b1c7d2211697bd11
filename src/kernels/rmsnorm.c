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
