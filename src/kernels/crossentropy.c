/* Softmax cross-entropy over a small vocabulary. */
#include "sprout/kernels.h"

#include <math.h>
#include <string.h>

#include "fastmath.h"

/* probs[N,V] = softmax(logits[N,V]) (probs may alias logits); losses[N] = -log p[target];
 * returns the mean loss, accumulated in double.
 * The loss is taken as log(sum) - (x_target - max), not -log(p_target), so a confidently wrong
 * row gives a large finite loss instead of -log(0) = inf. */
SP_HOT float sp_crossentropy_forward(float *probs, float *restrict losses, const float *logits,
                                     const int32_t *restrict targets, int N, int V) {
    double total = 0.0;
    for (int n = 0; n < N; n++) {
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
    return (float)(total / N);
}

/* dlogits[N,V] = (probs - onehot(target)) * scale  (overwrites) */
void sp_crossentropy_backward(float *restrict dlogits, const float *restrict probs,
                              const int32_t *restrict targets, float scale, int N, int V) {
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        for (int i = 0; i < V; i++) d[i] = p[i] * scale;
        d[targets[n]] = (p[targets[n]] - 1.0f) * scale;
    }
}
