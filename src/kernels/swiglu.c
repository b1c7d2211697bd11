/* SwiGLU (LLaMA MLP): h = silu(a) * b on the gate and up projections.
 *
 * The two projections come as ONE buffer ab [N, 2F], row n = a_n (F values) | b_n (F values),
 * so that the model computes both with one matrix product x [N,C] @ [W_gate | W_up] [C, 2F]
 * (the Hugging Face gate_proj and up_proj weights transposed and placed side by side). */
#include "sprout/kernels.h"

#include "fastmath.h"

/* h[N,F] = silu(a) * b,  silu(a) = a sigmoid(a) = a / (1 + exp(-a));  ab [N, 2F] as above.
 * No clamp needed: for a -> -inf exp(-a) saturates to inf and a / inf to -0, as silu does;
 * for a -> +inf the quotient is a. */
SP_HOT void sp_swiglu_forward(float *restrict h, const float *restrict ab, int N, int F) {
    for (int n = 0; n < N; n++) {
        const float *a = ab + (size_t)n * 2 * F, *b = a + F;
        float *o = h + (size_t)n * F;
        for (int i = 0; i < F; i++) o[i] = a[i] / (1.0f + sp_fexp(-a[i])) * b[i];
    }
}

/* dab[N, 2F] += (da | db):  da = dh b silu'(a),  db = dh silu(a);  dh [N,F], ab [N,2F]
 * With s = sigmoid(a) and e = exp(-a): 1 - s = e s, so silu'(a) = s (1 + a e s). a is clamped
 * to [-80, 80] for the derivative: beyond, silu' is 0 or 1 to within 2e-33, and inside, e stays
 * finite (e s is never inf * 0). silu itself uses the unclamped a. */
SP_HOT void sp_swiglu_backward(float *restrict dab, const float *restrict dh,
                               const float *restrict ab, int N, int F) {
    for (int n = 0; n < N; n++) {
        const float *a = ab + (size_t)n * 2 * F, *b = a + F, *d = dh + (size_t)n * F;
        float *da = dab + (size_t)n * 2 * F, *db = da + F;
        for (int i = 0; i < F; i++) {
            float x = sp_clampf(a[i], -80.0f, 80.0f);
            float e = sp_fexp(-x);
            float s = 1.0f / (1.0f + e);
            da[i] += d[i] * b[i] * (s * (1.0f + x * e * s));
            db[i] += d[i] * (a[i] / (1.0f + sp_fexp(-a[i])));
        }
    }
}
