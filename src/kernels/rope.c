/* Rotary position embedding (LLaMA), Hugging Face convention: within each head of hd channels,
 * channel i < hd/2 is paired with channel i + hd/2 (rotate_half), and the pair at position t
 * (its index in the sequence) turns by the angle t * theta^(-2i/hd). */
#include "sprout/kernels.h"

#include <math.h>

#include "fastmath.h"

/* tab [T, hd]: row t holds cos(t f_i) for i < hd/2, then sin(t f_i), f_i = theta^(-2i/hd).
 * In double, then rounded: Hugging Face computes t * f_i in float32, which is off by up to
 * t ulp(t f_i) (about 3e-5 rad at t = 512), so this table is the more accurate of the two. */
void sp_rope_table(float *tab, int T, int hd, double theta) {
    int h2 = hd / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < h2; i++) {
            double a = (double)t * pow(theta, -2.0 * i / hd);
            tab[(size_t)t * hd + i] = (float)cos(a);
            tab[(size_t)t * hd + h2 + i] = (float)sin(a);
        }
}

/* the q and k sections of qkv [B,T,3C] turned by +angle (dir = 1) or -angle (dir = -1): one
 * pass over both sections, since they share the position's angles */
SP_HOT static void rope_turn(float *restrict qkv, const float *restrict tab, int B, int T, int C,
                             int NH, float dir) {
    int hd = C / NH, h2 = hd / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *cs = tab + (size_t)t * hd, *sn = cs + h2;
            float *row = qkv + ((size_t)b * T + t) * 3 * C;
            for (int h = 0; h < 2 * NH; h++) { /* q heads, then k heads: channels 0 .. 2C-1 */
                float *x1 = row + (size_t)h * hd, *x2 = x1 + h2;
                for (int i = 0; i < h2; i++) {
                    float a = x1[i], c = x2[i], s = dir * sn[i];
                    x1[i] = a * cs[i] - c * s;
                    x2[i] = c * cs[i] + a * s;
                }
            }
        }
}

/* In place on the q and k sections of qkv [B,T,3C] (v untouched): for each head's channels
 * x1 = [0, hd/2), x2 = [hd/2, hd):  x1' = x1 cos - x2 sin,  x2' = x2 cos + x1 sin.
 * tab from sp_rope_table(tab, T, hd, theta); hd = C/NH must be even. */
void sp_rope_forward(float *qkv, const float *tab, int B, int T, int C, int NH) {
    rope_turn(qkv, tab, B, T, C, NH, 1.0f);
}

/* In place on the q and k sections of dqkv [B,T,3C]: the rotation is orthogonal, so the gradient
 * of the unrotated q, k is the rotated gradient turned back (the transpose). OVERWRITES those
 * sections (it maps them, there is nothing to accumulate into): dqkv must hold only the gradient
 * of the rotated q, k when it is called; the v section is untouched. */
void sp_rope_backward(float *dqkv, const float *tab, int B, int T, int C, int NH) {
    rope_turn(dqkv, tab, B, T, C, NH, -1.0f);
}
