/* Dense layer y = x W + b with W in Conv1D layout [in, out]. */
#include "sprout/kernels.h"

/* channels summed per block in dbias: two 4 KiB stack accumulators */
#define DB_CHUNK 1024
/* rows summed in float before being folded into the running total: keeps the rounding error of
 * the bias gradient ~ (ROWS + N/ROWS) eps instead of N eps */
#define DB_ROWS 32

/* out[N,OC] = inp[N,C] @ w[C,OC] + bias[OC]  (bias may be NULL) */
void sp_matmul_forward_ex(sp_gemm *g, float *restrict out, sp_mat inp, sp_mat w,
                          const float *restrict bias, int N, int C, int OC) {
    if (bias)
        sp_gemm_run_bias(g, 0, 0, N, OC, C, inp, w, bias, out, OC);
    else
        sp_gemm_run(g, 0, 0, N, OC, C, 1.0f, inp, w, 0.0f, out, OC);
}

void sp_matmul_forward(sp_gemm *g, float *restrict out, const float *restrict inp,
                       const float *restrict w, const uint16_t *w16, const float *restrict bias,
                       int N, int C, int OC) {
    sp_matmul_forward_ex(g, out, SP_MAT(inp, C), (sp_mat){w, w16, OC}, bias, N, C, OC);
}

/* dbias[OC] += sum_n dout[n,:], rows outer and channels inner so the inner loop vectorises;
 * with dout16 (bf16 products) the same pass also rounds dout [N,OC] into dout16, so that both
 * products of the backward read one bf16 copy and dout is read once instead of three times */
static void bias_backward(float *restrict dbias, uint16_t *restrict dout16,
                          const float *restrict dout, int N, int OC) {
    for (int c0 = 0; c0 < OC; c0 += DB_CHUNK) {
        int nc = OC - c0 < DB_CHUNK ? OC - c0 : DB_CHUNK;
        float total[DB_CHUNK] = {0}, part[DB_CHUNK];
        for (int n0 = 0; n0 < N; n0 += DB_ROWS) {
            int n1 = n0 + DB_ROWS < N ? n0 + DB_ROWS : N;
            for (int j = 0; j < nc; j++) part[j] = 0.0f;
            for (int n = n0; n < n1; n++) {
                const float *d = dout + (size_t)n * OC + c0;
                if (dout16) sp_to_bf16(dout16 + (size_t)n * OC + c0, d, (size_t)nc);
                if (dbias)
                    for (int j = 0; j < nc; j++) part[j] += d[j];
            }
            for (int j = 0; j < nc; j++) total[j] += part[j];
        }
        if (dbias)
            for (int j = 0; j < nc; j++) dbias[c0 + j] += total[j];
    }
}

void sp_matmul_backward_ex(sp_gemm *g, float *restrict dinp, float dinp_beta, float *restrict dw,
                           float *restrict dbias, const float *restrict dout, sp_mat inp, sp_mat w,
                           int N, int C, int OC) {
    /* bf16: dout is rounded once (slot SP_GEMM_SLOT_DOUT), fused with the bias sum */
    uint16_t *d16 = g ? sp_gemm_buf(g, SP_GEMM_SLOT_DOUT, (size_t)N * OC) : NULL;
    if (dbias || d16) bias_backward(dbias, d16, dout, N, OC);
    sp_mat d = {dout, d16, OC};
    if (dinp) sp_gemm_run(g, 0, 1, N, C, OC, 1.0f, d, w, dinp_beta, dinp, C);
    sp_gemm_run(g, 1, 0, C, OC, N, 1.0f, inp, d, 1.0f, dw, OC);
}

/* dinp[N,C] += dout @ w^T;  dw[C,OC] += inp^T @ dout;  dbias[OC] += sum_n dout
 * (dinp, dbias may be NULL) */
void sp_matmul_backward(sp_gemm *g, float *restrict dinp, float *restrict dw, float *restrict dbias,
                        const float *restrict dout, const float *restrict inp,
                        const float *restrict w, const uint16_t *w16, int N, int C, int OC) {
    sp_matmul_backward_ex(g, dinp, 1.0f, dw, dbias, dout, SP_MAT(inp, C), (sp_mat){w, w16, OC}, N,
                          C, OC);
}
