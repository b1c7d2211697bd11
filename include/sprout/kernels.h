/* sprout kernels: forward/backward pairs over flat fp32 arrays (llm.c style).
 *
 * Conventions
 *  - N = B*T rows (tokens), C = d_model, OC = output channels, NH = heads, V = vocab.
 *  - Weights use the Hugging Face Conv1D layout [in, out]: y = x W + b.
 *  - Every *_backward ACCUMULATES (+=) into its gradient outputs (dinp, dw, db, ...), so that
 *    residual branches and micro-batches add up without extra copies. Callers zero buffers.
 *  - Every matrix product goes through cblas_sgemm.
 *  - No allocation inside a kernel: scratch is passed in, sizes stated below.
 */
#ifndef SPROUT_KERNELS_H
#define SPROUT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* out[N,C] = wte[inp[n],:] + wpe[n % T,:]            inp: [B,T] token ids, wte [V,C], wpe [T,C] */
void sp_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B,
                        int T, int C);
/* dwte[V,C] += scatter(dout), dwpe[T,C] += sum over batch;  dout [N,C] */
void sp_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, int B,
                         int T, int C);

/* out[N,C] = (inp - mean)/sqrt(var + 1e-5) * w + b;  saves mean[N], rstd[N] */
void sp_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C);
/* dinp[N,C] +=, dw[C] +=, db[C] += */
void sp_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C);

/* Masked LayerNorm for the fade-in of new channels (docs/growth.md, widen_zero / widen_random):
 * channel weights m_i = 1 for i < n_old, c for i >= n_old, W = sum m_i;
 * out[N,C] = m * ((inp - mean) * rstd * w + b) with mean = sum m x / W,
 * var = sum m (x - mean)^2 / W, rstd = 1/sqrt(var + 1e-5);  saves mean[N], rstd[N].
 * c = 1 is sp_layernorm_forward up to the order of the sums; at c = 0 the new channels are 0. */
void sp_layernorm_masked_forward(float *out, float *mean, float *rstd, const float *inp,
                                 const float *w, const float *b, int N, int C, int n_old, float c);
/* dinp[N,C] +=, dw[C] +=, db[C] += (the exact gradient of the weighted statistics) */
void sp_layernorm_masked_backward(float *dinp, float *dw, float *db, const float *dout,
                                  const float *inp, const float *w, const float *mean,
                                  const float *rstd, int N, int C, int n_old, float c);

/* out[N,OC] *= m per column, in place: OC is `sections` equal sections (3 for q|k|v), in each the
 * first n_old columns keep weight 1 and the others get c */
void sp_mask_cols_forward(float *out, int N, int OC, int n_old, int sections, float c);
/* dinp[N,OC] = m * dout: OVERWRITES (the mask is applied in place in the forward, so there is
 * nothing to accumulate into); dinp may alias dout */
void sp_mask_cols_backward(float *dinp, const float *dout, int N, int OC, int n_old, int sections,
                           float c);

/* out[N,OC] = inp[N,C] @ w[C,OC] + bias[OC]  (bias may be NULL) */
void sp_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N,
                       int C, int OC);
/* dinp[N,C] += dout @ w^T;  dw[C,OC] += inp^T @ dout;  dbias[OC] += sum_n dout
 * (dinp, dbias may be NULL to skip) */
void sp_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int C, int OC);

/* Causal multi-head self-attention.
 * qkv [B,T,3C]: q | k | v sections, each head-major (head h = channels h*hd .. h*hd+hd-1)
 * out [B,T,C]: heads concatenated head-major;  att [B,NH,T,T]: softmax probabilities (row t holds
 * weights over t2 <= t, zeros above the diagonal), saved for backward. Scale 1/sqrt(hd). */
void sp_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
/* dqkv[B,T,3C] += ;  scratch: at least T*T floats */
void sp_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                           float *scratch, int B, int T, int C, int NH);

/* GELU, tanh approximation (as GPT-2 / PyTorch approximate="tanh"), elementwise on n values */
void sp_gelu_forward(float *out, const float *inp, size_t n);
/* dinp += dout * gelu'(inp) */
void sp_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* out[i] = a[i] + b[i] */
void sp_residual_forward(float *out, const float *a, const float *b, size_t n);

/* Softmax cross-entropy over V classes.
 * logits [N,V] in, probs [N,V] out (may alias logits), losses [N] = -log p[target];
 * returns the mean loss over the N rows (computed in double). */
float sp_crossentropy_forward(float *probs, float *losses, const float *logits,
                              const int32_t *targets, int N, int V);
/* dlogits[N,V] = (probs - onehot(target)) * scale   (overwrites; scale is usually 1/N_total) */
void sp_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets,
                              float scale, int N, int V);

/* AdamW (PyTorch semantics): p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).   t >= 1 is this tensor's step count. */
void sp_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                     float beta2, float eps, float wd, uint64_t t);

/* sum of squares in double (for global grad-norm clipping) */
double sp_sumsq(const float *x, size_t n);
/* x *= s */
void sp_scale(float *x, size_t n, float s);

#endif
