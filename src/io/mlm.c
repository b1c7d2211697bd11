/* Masked-LM masking (include/sprout/mlm.h): BERT's 15% / 80-10-10 rule on counter-based draws. */
#include "sprout/mlm.h"

#include "sprout/core.h"

/* thresholds on 32-bit uniform words w: w < ceil(p 2^32) is exactly w / 2^32 < p */
#define MLM_SELECT  644245095u  /* 0.15 */
#define MLM_TO_MASK 3435973837u /* 0.8 */
#define MLM_TO_RAND 3865470567u /* 0.9: [0.8, 0.9) a random token, [0.9, 1) unchanged */

int sp_mlm_mask(uint64_t seed, uint64_t step, uint64_t k, const int32_t *tok, int T,
                int32_t n_normal, int32_t *inp, int32_t *tgt) {
    int selected = 0;
    for (int t = 0; t < T; t++) {
        int32_t x = tok[t];
        uint32_t r[4];
        /* one call per position, all four words used independently: select, branch, token */
        sp_rng4(seed, SP_RNG_MLM, step, (k << 32) | (uint64_t)t, r);
        if (x < 0 || x >= n_normal || r[0] >= MLM_SELECT) {
            inp[t] = x;
            tgt[t] = -1;
            continue;
        }
        selected++;
        tgt[t] = x;
        if (r[1] < MLM_TO_MASK)
            inp[t] = n_normal + SP_MLM_MASK;
        else if (r[1] < MLM_TO_RAND)
            /* multiply-shift: uniform over [0, n_normal) with a bias below n_normal / 2^32 */
            inp[t] = (int32_t)(((uint64_t)r[2] * (uint64_t)n_normal) >> 32);
        else
            inp[t] = x;
    }
    return selected;
}
