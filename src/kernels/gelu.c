/* GELU, tanh approximation (GPT-2; PyTorch approximate="tanh"). */
#include "sprout/kernels.h"

#include "fastmath.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* out[n] = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3),  inp[n]
 *
 * 0.5 (1 + tanh u) is the logistic sigmoid of 2u, so gelu(x) = x / (1 + exp(-2u)): one fast
 * exp and one division, and none of the cancellation that 1 + tanh(u) suffers for x < 0. */
SP_HOT void sp_gelu_forward(float *restrict out, const float *restrict inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        /* no clamp needed here: for huge |x|, u = +-inf saturates the exp to 0 or inf and the
         * quotient to x or -0, as gelu itself does in float */
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        out[i] = x / (1.0f + sp_fexp(-2.0f * u));
    }
}

/* dinp[n] (+)= dout * gelu'(x), accumulating when acc (a constant once inlined below)
 *
 * With s = sigmoid(2u) and e = exp(-2u): 1 - s = e s and 1 - tanh^2 u = 4 s (1 - s), so
 * gelu'(x) = s + 2 x s (1 - s) u'.  x is first clamped to [-10, 30]: beyond, gelu' is 0 or 1 to
 * within 3e-36, and inside, -2u <= 87.3 keeps e finite (e*s is never inf*0) and x^2 u' cannot
 * overflow, whatever the input. */
static inline void gelu_backward(float *restrict dinp, const float *restrict inp,
                                 const float *restrict dout, size_t n, int acc) {
    for (size_t i = 0; i < n; i++) {
        float x = sp_clampf(inp[i], -10.0f, 30.0f);
        float x2 = x * x;
        float u = GELU_K * (x + GELU_A * x2 * x);
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x2);
        float e = sp_fexp(-2.0f * u);
        float s = 1.0f / (1.0f + e);
        float g = s + 2.0f * x * s * (e * s) * du;
        dinp[i] = acc ? dinp[i] + dout[i] * g : dout[i] * g;
    }
}

SP_HOT void sp_gelu_backward(float *restrict dinp, const float *restrict inp,
                             const float *restrict dout, size_t n) {
    gelu_backward(dinp, inp, dout, n, 1);
}

/* the overwriting form: spares zeroing dinp before the call (0 + v is v, up to the sign of a
 * zero, which no later sum or product can tell) */
SP_HOT void sp_gelu_backward_set(float *restrict dinp, const float *restrict inp,
                                 const float *restrict dout, size_t n) {
    gelu_backward(dinp, inp, dout, n, 0);
}
