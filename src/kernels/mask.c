/* Output masks of the width fade-in (widen_random): new channels of a layer's output scaled. */
#include "sprout/kernels.h"

#include <string.h>

/* dst[N,OC] = m * src, m per column: OC is `sections` equal sections, in each the first n_old
 * columns have weight 1 and the rest c. dst may alias src. */
static void mask_cols(float *dst, const float *src, int N, int OC, int n_old, int sections,
                      float c) {
    int sec = OC / sections;
    for (int n = 0; n < N; n++) {
        const float *x = src + (size_t)n * OC;
        float *y = dst + (size_t)n * OC;
        if (y != x) memcpy(y, x, (size_t)OC * sizeof(float));
        for (int s = 0; s < sections; s++)
            for (int i = s * sec + n_old; i < (s + 1) * sec; i++) y[i] = c * x[i];
    }
}

void sp_mask_cols_forward(float *out, int N, int OC, int n_old, int sections, float c) {
    mask_cols(out, out, N, OC, n_old, sections, c);
}

/* the mask is diagonal, so its backward is the same scaling of the gradient */
void sp_mask_cols_backward(float *dinp, const float *dout, int N, int OC, int n_old, int sections,
                           float c) {
    mask_cols(dinp, dout, N, OC, n_old, sections, c);
}
