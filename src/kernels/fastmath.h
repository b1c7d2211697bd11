/* Vectorisable exp and lane-parallel reductions shared by the kernels (internal header).
 *
 * Everything here is static inline and branch-free so that gcc -O3 vectorises the loops that
 * call it, without -ffast-math: libm's expf/tanhf are opaque calls that keep the loops scalar,
 * and strict IEEE forbids gcc from reassociating a float reduction, so the reductions below
 * spell out their partial sums as explicit vectors. */
#ifndef SPROUT_KERNELS_FASTMATH_H
#define SPROUT_KERNELS_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* The hot loops are compiled three times, for baseline x86-64 (SSE2), x86-64-v3 (AVX2 + FMA) and
 * x86-64-v4 (AVX-512), and the dynamic loader picks one per function at start-up (GCC function
 * multiversioning): AVX2 + FMA runs the exp-heavy loops ~3x faster than SSE2, AVX-512 GELU ~1.7x
 * faster again (a perf profile of the bf16 bench step: GELU 8.2% -> 4.9% of the products' time),
 * and the build still needs no -march flag. Built with -march=native (or a non-GCC compiler, or
 * -DSP_NO_CLONES to test the baseline path) the attribute is dropped.
 *
 * The clones agree to rounding, not bit for bit (measured: a 30-step run's weights differ in the
 * last bits between the v3 and v4 clones), so a run is bit-exact on machines of one ISA level.
 * That is harmless in the forward and backward: replicas reduce their gradients, and every
 * replica receives the same sum. The optimizer step, which every replica applies to its own copy
 * of the weights, is compiled with SP_HOT_REPLICA instead (no AVX-512 clone), so that a job spread
 * over AVX2 and AVX-512 nodes keeps its replicas identical. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__) &&       \
    !defined(SP_NO_CLONES)
#define SP_HOT         __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define SP_HOT_REPLICA __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SP_HOT
#define SP_HOT_REPLICA
#endif

static inline uint32_t sp_f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float sp_u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* min(max(x, lo), hi) as bit selects: written with ?: gcc's jump threading splits the loop body
 * into branches on the clamp and, under the default -ftrapping-math, can then no longer
 * if-convert it back, which silently stops vectorisation. NaN passes through. */
static inline float sp_clampf(float x, float lo, float hi) {
    uint32_t below = 0u - (uint32_t)(x < lo), above = 0u - (uint32_t)(x > hi);
    uint32_t b = (sp_f2u(x) & ~below) | (sp_f2u(lo) & below);
    return sp_u2f((b & ~above) | (sp_f2u(hi) & above));
}

/* exp(x) for float x, relative error <= 2.5e-7 where the result is a normal float (tested in
 * test_kernels.c). Returns +inf above ~88.72, 0 or a denormal below ~-87.3, NaN for NaN.
 *
 * Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then the Cephes expf polynomial for e^r.
 * n is rounded with the 1.5*2^23 trick (plain float adds, unlike rintf, vectorise on SSE2),
 * and 2^n is built from exponent bits in two factors so that n may run from -151 to 145: the
 * result then underflows gracefully into denormals and overflows to inf, with no branch. */
static inline float sp_fexp(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    x = sp_clampf(x, -104.0f, 100.0f);
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    /* C1 has 9 significant bits, so n*C1 is exact for |n| < 2^15 */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* unsigned arithmetic: NaN inputs give garbage bits here but no signed overflow */
    uint32_t ni = sp_f2u(t) - sp_f2u(magic);
    uint32_t n1 = (uint32_t)((int32_t)ni >> 1);
    uint32_t n2 = ni - n1;
    float s1 = sp_u2f((n1 + 127u) << 23);
    float s2 = sp_u2f((n2 + 127u) << 23);
    return p * s1 * s2;
}

/* sqrt(x) for x >= 0 within 1 ulp (tested) for normal x, exact for 0; for denormal x it is
 * inaccurate but < 1e-19 (the only caller adds eps = 1e-8 to it).
 * gcc keeps libm sqrtf scalar under the default -fmath-errno (a negative argument must set errno),
 * and optimize("no-math-errno") on a function does not lift that. Two Newton steps on the
 * classic bit-trick 1/sqrt seed (3.4e-2 -> 1.7e-3 -> 4.5e-6), then one Heron correction of
 * s = x/sqrt(x). */
static inline float sp_fsqrt(float x) {
    float y = sp_u2f(0x5f3759dfu - (sp_f2u(x) >> 1));
    float h = 0.5f * x;
    y = y * (1.5f - h * y * y);
    y = y * (1.5f - h * y * y);
    float s = x * y;
    return s + (h * y) * (1.0f - s * y);
}

/* Reductions use GCC vector extensions: 8-float vectors (one AVX register, or two SSE ones
 * without -march=native), two accumulators each for 16 independent partial results. Vectors
 * never cross a function boundary, so there is no vector-ABI dependence on -march. */
typedef float sp_vf __attribute__((vector_size(32)));
typedef int32_t sp_vi __attribute__((vector_size(32)));

/* unaligned vector load (a macro: a function returning sp_vf would depend on the vector ABI) */
#define SP_VLOAD(v, p) memcpy(&(v), (p), sizeof(v))

/* sum of x[0..n) */
static inline float sp_vsum(const float *restrict x, int n) {
    sp_vf a0 = {0}, a1 = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        sp_vf x0, x1;
        SP_VLOAD(x0, x + i);
        SP_VLOAD(x1, x + i + 8);
        a0 += x0;
        a1 += x1;
    }
    a0 += a1;
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < 8; j++) s += a0[j];
    return s;
}

/* sum of x[i]*y[i] */
static inline float sp_vdot(const float *restrict x, const float *restrict y, int n) {
    sp_vf a0 = {0}, a1 = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        sp_vf x0, x1, y0, y1;
        SP_VLOAD(x0, x + i);
        SP_VLOAD(x1, x + i + 8);
        SP_VLOAD(y0, y + i);
        SP_VLOAD(y1, y + i + 8);
        a0 += x0 * y0;
        a1 += x1 * y1;
    }
    a0 += a1;
    float s = 0.0f;
    for (; i < n; i++) s += x[i] * y[i];
    for (int j = 0; j < 8; j++) s += a0[j];
    return s;
}

/* sum of x[i]*y[i]*z[i] */
static inline float sp_vdot3(const float *restrict x, const float *restrict y,
                             const float *restrict z, int n) {
    sp_vf a0 = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        sp_vf x0, y0, z0;
        SP_VLOAD(x0, x + i);
        SP_VLOAD(y0, y + i);
        SP_VLOAD(z0, z + i);
        a0 += x0 * y0 * z0;
    }
    float s = 0.0f;
    for (; i < n; i++) s += x[i] * y[i] * z[i];
    for (int j = 0; j < 8; j++) s += a0[j];
    return s;
}

/* max of x[0..n), n >= 1 (callers feed finite values; a NaN is not reliably propagated) */
static inline float sp_vmax(const float *restrict x, int n) {
    sp_vf a0 = {0}, a1;
    a0 += x[0];
    a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        sp_vf v0, v1;
        SP_VLOAD(v0, x + i);
        SP_VLOAD(v1, x + i + 8);
        sp_vi m0 = v0 > a0, m1 = v1 > a1;
        a0 = (sp_vf)(((sp_vi)v0 & m0) | ((sp_vi)a0 & ~m0));
        a1 = (sp_vf)(((sp_vi)v1 & m1) | ((sp_vi)a1 & ~m1));
    }
    float m = x[0];
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int j = 0; j < 8; j++) {
        m = a0[j] > m ? a0[j] : m;
        m = a1[j] > m ? a1[j] : m;
    }
    return m;
}

#endif
