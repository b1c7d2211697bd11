/* AdamW optimiser step and the vector helpers of gradient clipping. */
#include "sprout/kernels.h"

#include <math.h>

#include "fastmath.h"

/* p, g, m, v [n].  PyTorch AdamW: decoupled decay p *= 1 - lr wd first, then
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).  The bias corrections are computed once
 * in double; dividing by sqrt(1-b2^t) (not multiplying by its inverse) follows PyTorch's
 * rounding. */
SP_HOT_REPLICA void sp_adamw_update(float *restrict p, const float *restrict g, float *restrict m,
                                    float *restrict v, size_t n, float lr, float beta1, float beta2,
                                    float eps, float wd, uint64_t t) {
    float step = (float)((double)lr / (1.0 - pow((double)beta1, (double)t)));
    float bc2_sqrt = (float)sqrt(1.0 - pow((double)beta2, (double)t));
    float decay = 1.0f - lr * wd, omb1 = 1.0f - beta1, omb2 = 1.0f - beta2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = beta1 * m[i] + omb1 * gi;
        float vi = beta2 * v[i] + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        /* sp_fsqrt, not sqrtf: a libm sqrtf keeps this loop scalar, 4x slower (fastmath.h) */
        p[i] = p[i] * decay - step * mi / (sp_fsqrt(vi) / bc2_sqrt + eps);
    }
}

/* Float partial sums over chunks of this many elements, folded into double per chunk: the
 * float error stays ~ (chunk/lanes) eps relative while the loop vectorises. */
#define SUMSQ_CHUNK 1024

double sp_sumsq(const float *restrict x, size_t n) {
    double total = 0.0;
    for (size_t c0 = 0; c0 < n; c0 += SUMSQ_CHUNK) {
        size_t nc = n - c0 < SUMSQ_CHUNK ? n - c0 : SUMSQ_CHUNK;
        total += (double)sp_vdot(x + c0, x + c0, (int)nc);
    }
    return total;
}

void sp_scale(float *restrict x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* out may be a (the model adds the residual in place); restrict must not be promised then */
static void add_inplace(float *restrict x, const float *restrict y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static void add_to(float *restrict out, const float *restrict a, const float *restrict b,
                   size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void sp_residual_forward(float *out, const float *a, const float *b, size_t n) {
    if (out == a)
        add_inplace(out, b, n);
    else if (out == b)
        add_inplace(out, a, n);
    else
        add_to(out, a, b, n);
}
