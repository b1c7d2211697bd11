/* Softmax cross-entropy over a small vocabulary: the language-model loss (every row has a target)
 * and the masked-LM loss (only rows with a target >= 0 count), one code path. */
#include "sprout/kernels.h"

#include <math.h>
#include <string.h>

#include "fastmath.h"

/* probs[N,V] = softmax(logits[N,V]) (probs may alias logits); losses[N] = -log p[target];
 * returns the sum of the losses, accumulated in double. A row whose target is < 0 is ignored:
 * its loss is 0 and its probs row is not written (no exp is spent on it: in masked-LM most rows
 * are ignored).
 * The loss is taken as log(sum) - (x_target - max), not -log(p_target), so a confidently wrong
 * row gives a large finite loss instead of -log(0) = inf. */
SP_HOT static double ce_rows(float *probs, float *restrict losses, const float *logits,
                             const int32_t *restrict targets, int N, int V) {
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) {
            losses[n] = 0.0f;
            continue;
        }
        const float *x = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V;
        float xt = x[targets[n]];
        /* in place on p from here: one pointer, so no aliasing question for the vectoriser */
        if (p != x) memcpy(p, x, (size_t)V * sizeof(float));
        float m = sp_vmax(p, V);
        for (int i = 0; i < V; i++) p[i] = sp_fexp(p[i] - m);
        float sum = sp_vsum(p, V), inv = 1.0f / sum;
        for (int i = 0; i < V; i++) p[i] *= inv;
        losses[n] = logf(sum) - (xt - m);
        total += losses[n];
    }
    return total;
}

/* the mean loss over the N rows */
float sp_crossentropy_forward(float *probs, float *losses, const float *logits,
                              const int32_t *targets, int N, int V) {
    return (float)(ce_rows(probs, losses, logits, targets, N, V) / N);
}

/* dlogits[N,V] = (probs - onehot(target)) * scale, 0 on rows whose target is < 0 (overwrites) */
void sp_crossentropy_backward(float *restrict dlogits, const float *restrict probs,
                              const int32_t *restrict targets, float scale, int N, int V) {
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        if (targets[n] < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        for (int i = 0; i < V; i++) d[i] = p[i] * scale;
        d[targets[n]] = (p[targets[n]] - 1.0f) * scale;
    }
}

/* the sum of the counted rows' losses / norm; 0 when norm <= 0 (nothing selected anywhere) */
float sp_mlm_loss_forward(float *probs, float *losses, const float *logits, const int32_t *targets,
                          int N, int V, double norm) {
    double total = ce_rows(probs, losses, logits, targets, N, V);
    return norm > 0 ? (float)(total / norm) : 0.0f;
}

void sp_mlm_loss_backward(float *dlogits, const float *probs, const int32_t *targets, double norm,
                          int N, int V) {
    sp_crossentropy_backward(dlogits, probs, targets, norm > 0 ? (float)(1.0 / norm) : 0.0f, N, V);
}

int64_t sp_mlm_count(const int32_t *targets, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += targets[i] >= 0;
    return c;
}
