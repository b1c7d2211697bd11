/* The matrix-product backends: bf16 rounding (nearest even, NaN kept), and oneDNN's bf16 matmul
 * against a double-precision product of the same bf16-rounded operands (so the only difference
 * left is fp32 accumulation: <= 1e-5 relative) for every transpose combination, alpha, beta = 1
 * accumulation, strided operands and pre-rounded weights; fp32 through the same entry point is
 * sgemm. Skips the bf16 part (with a message) where oneDNN has no native bf16. */
#include "sprout/core.h"
#include "sprout/kernels.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float rnd(uint64_t i) {
    return 2.0f * sp_rng_uniform(7, SP_RNG_TEST, 1, i) - 1.0f;
}

static float r16(float x) {
    uint16_t h;
    sp_to_bf16(&h, &x, 1);
    return sp_bf16_to_f32(h);
}

/* max |C - ref| / max |ref| with ref = alpha op(A16) op(B16) + beta C0 in double */
static double check_case(sp_gemm *g, int ta, int tb, int M, int N, int K, float alpha, float beta,
                         int pad, int pre) {
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * (size_t)ar * lda),
          *B = malloc(sizeof(float) * (size_t)br * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc),
          *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    uint16_t *B16 = malloc(sizeof(uint16_t) * (size_t)br * bc);
    for (int i = 0; i < ar * lda; i++) A[i] = rnd((uint64_t)i);
    for (int i = 0; i < br * ldb; i++) B[i] = rnd(1000000u + (uint64_t)i);
    for (int i = 0; i < M * ldc; i++) C[i] = C0[i] = rnd(2000000u + (uint64_t)i);
    sp_mat Bm = SP_MAT(B, ldb);
    if (pre) { /* a weight with its own bf16 copy: contiguous, so ld = row length */
        ldb = bc;
        for (int r = 0; r < br; r++)
            memmove(B + (size_t)r * ldb, B + (size_t)r * (bc + pad), sizeof(float) * bc);
        sp_to_bf16(B16, B, (size_t)br * bc);
        Bm = (sp_mat){B, B16, ldb};
    }
    sp_gemm_run(g, ta, tb, M, N, K, alpha, SP_MAT(A, lda), Bm, beta, C, ldc);
    double err = 0, big = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += g ? (double)r16(a) * r16(b) : (double)a * b;
            }
            double ref = alpha * s + beta * C0[(size_t)i * ldc + j];
            err = fmax(err, fabs(C[(size_t)i * ldc + j] - ref));
            big = fmax(big, fabs(ref));
        }
    /* the padding of C is never written */
    for (int i = 0; i < M && pad; i++)
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) err = INFINITY;
    free(A), free(B), free(C), free(C0), free(B16);
    return err / big;
}

/* attention in bf16 against fp32 on the same inputs: the bf16 rounding of q, k, v, P, dO and dS
 * bounds the difference (<= 2e-2 of the largest value) but it is not zero */
static void check_attention(tu_ctx *t, sp_gemm *g, int B, int T, int C, int NH) {
    size_t n3 = (size_t)B * T * 3 * C, n1 = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    size_t ns = sp_attention_scratch_floats(T, NH);
    float *qkv = malloc(n3 * 4), *o32 = malloc(n1 * 4), *o16 = malloc(n1 * 4);
    float *a32 = malloc(na * 4), *a16 = malloc(na * 4), *dout = malloc(n1 * 4);
    float *d32 = calloc(n3, 4), *d16 = calloc(n3, 4), *scr = malloc(ns * 4);
    for (size_t i = 0; i < n3; i++) qkv[i] = 2.0f * rnd(3000000u + i);
    for (size_t i = 0; i < n1; i++) dout[i] = rnd(4000000u + i);
    sp_attention_forward(NULL, o32, a32, qkv, B, T, C, NH);
    sp_attention_forward(g, o16, a16, qkv, B, T, C, NH);
    sp_attention_backward(NULL, d32, dout, qkv, a32, scr, B, T, C, NH);
    sp_attention_backward(g, d16, dout, qkv, a16, scr, B, T, C, NH);
    double eo = tu_rel_maxabs(o16, o32, n1), ea = tu_rel_maxabs(a16, a32, na);
    double ed = tu_rel_maxabs(d16, d32, n3);
    int causal = 1;
    for (int b = 0; b < B * NH; b++)
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T; j++) causal &= a16[((size_t)b * T + i) * T + j] == 0.0f;
    tu_check(t, eo <= 2e-2 && ea <= 2e-2 && ed <= 2e-2 && eo > 0 && ed > 0,
             "bf16 attention B %d T %d C %d NH %d: out %.2e, probs %.2e, dqkv %.2e", B, T, C, NH,
             eo, ea, ed);
    tu_check(t, causal, "bf16 attention: a probability above the diagonal is not 0");
    printf("bf16 attention T %d: out %.2e, probs %.2e, dqkv %.2e relative to fp32\n", T, eo, ea,
           ed);
    free(qkv), free(o32), free(o16), free(a32), free(a16), free(dout), free(d32), free(d16);
    free(scr);
}

/* the rounding, written out independently: nearest even on the upper half, NaN kept quiet,
 * subnormals to a signed zero */
static uint16_t ref_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    uint32_t lower = u & 0xffffu, upper = u >> 16;
    if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) upper++;
    return (uint16_t)upper;
}

int main(void) {
    tu_ctx t = {0};
    /* the vectorised conversion (where the CPU has it) against the reference, on every kind of
     * value and on lengths that leave a tail */
    {
        size_t n = 100003;
        float *x = malloc(n * sizeof *x);
        uint16_t *h = malloc(n * sizeof *h);
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)sp_rng_u64(9, SP_RNG_TEST, 2, i);
            if (i % 7 == 0) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
            memcpy(&x[i], &u, 4);
        }
        x[0] = NAN, x[1] = INFINITY, x[2] = -0.0f, x[3] = 1e-42f /* subnormal */;
        sp_to_bf16(h, x, n);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += h[i] != ref_bf16(x[i]) && !(isnan(x[i]) && isnan(sp_bf16_to_f32(h[i])));
        tu_check(&t, bad == 0,
                 "sp_to_bf16 differs from the reference rounding on %zu of %zu values", bad, n);
        free(x), free(h);
    }
    /* rounding: nearest, ties to even, NaN stays NaN, infinities kept */
    float xs[] = {1.0f,
                  1.00390625f /* 1 + 2^-8: tie, to even (1) */,
                  1.01171875f /* tie, up */,
                  -3.14159f,
                  65504.0f,
                  INFINITY,
                  -INFINITY};
    float want[] = {1.0f, 1.0f, 1.015625f, -3.140625f, 65536.0f, INFINITY, -INFINITY};
    for (int i = 0; i < 7; i++)
        tu_check(&t, r16(xs[i]) == want[i], "bf16(%g) = %g, want %g", xs[i], r16(xs[i]), want[i]);
    tu_check(&t, isnan(r16(NAN)), "bf16(NaN) is not NaN");

    int shapes[][3] = {{64, 48, 32}, {17, 33, 65}, {256, 192, 64}, {5, 300, 7}};
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                double e = check_case(NULL, ta, tb, M, N, K, 0.5f, 1.0f, 3, 0);
                tu_check(&t, e <= 1e-5, "fp32 %dx%dx%d ta %d tb %d: rel %.2e", M, N, K, ta, tb, e);
            }
    sp_gemm *g = NULL;
    sp_err err = {0};
    if (sp_gemm_create(&g, 1, &err)) {
        printf("bf16 part skipped: %s\n", err.msg);
        tu_check(&t, err.code == SP_EINPUT && strstr(err.msg, "run.precision"),
                 "refusal names the key: %s", err.msg);
        return tu_finish(&t, "unit_gemm");
    }
    printf("oneDNN ISA: %s\n", sp_gemm_isa(g));
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int v = 0; v < 4; v++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    float alpha = v & 1 ? 0.125f : 1.0f, beta = v & 2 ? 1.0f : 0.0f;
                    int pad = v == 3 ? 5 : 0, pre = v == 2 && !tb ? 1 : v == 1;
                    double e = check_case(g, ta, tb, M, N, K, alpha, beta, pad, pre);
                    tu_check(&t, e <= 1e-5,
                             "bf16 %dx%dx%d ta %d tb %d alpha %g beta %g pad %d pre %d: rel %.2e",
                             M, N, K, ta, tb, alpha, beta, pad, pre, e);
                }
    check_attention(&t, g, 2, 130, 64, 4); /* a short last tile */
    check_attention(&t, g, 1, 64, 96, 3);
    /* the same call twice reuses its primitive and gives the same bits */
    double e1 = check_case(g, 0, 0, 64, 48, 32, 1.0f, 0.0f, 0, 0),
           e2 = check_case(g, 0, 0, 64, 48, 32, 1.0f, 0.0f, 0, 0);
    tu_check(&t, e1 == e2, "repeat differs: %.3e vs %.3e", e1, e2);
    /* bf16 is not fp32: the rounding is really applied */
    double e32 = 0;
    {
        float A[4] = {1.00390625f, 0, 0, 0}, B[4] = {1, 0, 0, 0}, C[4] = {0};
        sp_gemm_run(g, 0, 0, 2, 2, 2, 1.0f, SP_MAT(A, 2), SP_MAT(B, 2), 0.0f, C, 2);
        e32 = C[0];
    }
    tu_check(&t, e32 == 1.0, "bf16 product of 1+2^-8 and 1 is %g, want 1 (rounded input)", e32);
    sp_gemm_free(g);
    return tu_finish(&t, "unit_gemm");
}
