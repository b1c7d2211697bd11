/* Token + position embedding. */
#include "sprout/kernels.h"

/* out[N,C] = wte[inp[n],:] + wpe[n % T,:];  inp [B,T], wte [V,C], wpe [T,C] */
void sp_encoder_forward(float *restrict out, const int32_t *restrict inp, const float *restrict wte,
                        const float *restrict wpe, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *we = wte + (size_t)inp[(size_t)b * T + t] * C;
            const float *pe = wpe + (size_t)t * C;
            for (int i = 0; i < C; i++) o[i] = we[i] + pe[i];
        }
    }
}

/* dwte[V,C] +=, dwpe[T,C] +=;  dout [N,C].  A token repeated in the batch adds twice into the
 * same dwte row, hence the sequential loop over positions. */
void sp_encoder_backward(float *restrict dwte, float *restrict dwpe, const float *restrict dout,
                         const int32_t *restrict inp, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *dwe = dwte + (size_t)inp[(size_t)b * T + t] * C;
            float *dpe = dwpe + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                dwe[i] += d[i];
                dpe[i] += d[i];
            }
        }
    }
}
