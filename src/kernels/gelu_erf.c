/* GELU, exact form 0.5 x (1 + erf(x / sqrt 2)) (BERT; PyTorch's default approximate="none",
 * Hugging Face hidden_act "gelu"). sp_gelu_* is the tanh approximation GPT-2 uses; the two
 * differ by up to 4.7e-4 (near |x| = 2), too much for a BERT block to match Hugging Face. */
#include "sprout/kernels.h"

#include <math.h>

#include "fastmath.h"

#define SQRT1_2     0.70710678118654752f /* 1/sqrt(2) */
#define INV_SQRT2PI 0.39894228040143268f /* 1/sqrt(2 pi) */

/* 0.5 erfc(z) for z >= 0 as t exp(-z^2 + P(t)) / 2, t = 1/(1 + z/2): the Chebyshev fit of
 * Numerical Recipes (erfcc), fractional error below 1.2e-7 for every z >= 0. A relative bound,
 * which keeps the tiny left tail of GELU accurate too; libm's erff would be as good but is an
 * opaque call that keeps the loops scalar (fastmath.h). */
static inline float half_erfc(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return 0.5f * t * sp_fexp(p - z * z);
}

/* out[n] = x Phi(x), Phi the standard normal CDF;  inp[n]
 * With z = |x|/sqrt 2 and q = x half_erfc(z): Phi(x) = 0.5 erfc(z) for x < 0 and 1 - 0.5 erfc(z)
 * for x >= 0, so gelu = q or x - q, chosen arithmetically (a select keeps the loop vectorised).
 * x is clamped to [-20, 20] inside q only: beyond, q is 0 to within 1e-87, and inside, nothing
 * overflows; the x - q branch uses the unclamped x, so +-inf and NaN pass through as gelu's. */
SP_HOT void sp_gelu_erf_forward(float *restrict out, const float *restrict inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], xc = sp_clampf(x, -20.0f, 20.0f);
        float pos = (float)(x >= 0.0f);
        float q = xc * half_erfc(fabsf(xc) * SQRT1_2);
        out[i] = q + pos * (x - 2.0f * q);
    }
}

/* dinp[n] += dout * gelu'(x),  gelu'(x) = Phi(x) + x phi(x),  phi(x) = exp(-x^2/2)/sqrt(2 pi);
 * x clamped to [-20, 20] (beyond, gelu' is 0 or 1 to within 1e-85). */
SP_HOT void sp_gelu_erf_backward(float *restrict dinp, const float *restrict inp,
                                 const float *restrict dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = sp_clampf(inp[i], -20.0f, 20.0f);
        float pos = (float)(x >= 0.0f);
        float he = half_erfc(fabsf(x) * SQRT1_2);
        float cdf = he + pos * (1.0f - 2.0f * he);
        float g = cdf + x * INV_SQRT2PI * sp_fexp(-0.5f * x * x);
        dinp[i] += dout[i] * g;
    }
}
