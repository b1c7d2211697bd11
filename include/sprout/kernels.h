/* sprout kernels: forward/backward pairs over flat fp32 arrays (llm.c style).
 *
 * Conventions
 *  - N = B*T rows (tokens), C = d_model, OC = output channels, NH = heads, V = vocab.
 *  - Weights use the Hugging Face Conv1D layout [in, out]: y = x W + b.
 *  - Every *_backward ACCUMULATES (+=) into its gradient outputs (dinp, dw, db, ...), so that
 *    residual branches and micro-batches add up without extra copies. Callers zero buffers.
 *  - Every matrix product goes through sp_gemm: OpenBLAS sgemm in fp32 (g == NULL), or oneDNN
 *    matmul with bf16 inputs, fp32 accumulation and fp32 output (a bf16 context).
 *  - No allocation inside a kernel: scratch is passed in, sizes stated below (the bf16 context
 *    keeps its own packing buffers and compiled primitives, grown on first use).
 */
#ifndef SPROUT_KERNELS_H
#define SPROUT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/core.h"

/* ---- matrix products ---- */

/* A bf16 matrix-product context (run.precision: bf16): oneDNN's engine, the primitives compiled
 * so far, packing buffers. NULL everywhere means fp32 through OpenBLAS. Not thread-safe: one per
 * process (a rank), like the trainer that owns it. */
typedef struct sp_gemm sp_gemm;
/* Refuses (SP_EINPUT, naming what is missing) when oneDNN offers no native bf16 products on this
 * CPU or sprout was built without oneDNN. threads: oneDNN's OpenMP pool size. */
int sp_gemm_create(sp_gemm **g, int threads, sp_err *err);
void sp_gemm_free(sp_gemm *g);
/* the instruction set oneDNN runs on, e.g. "avx512_core_bf16"; "none" for NULL */
const char *sp_gemm_isa(const sp_gemm *g);

/* An operand: fp32 values f, row-major with leading dimension ld, and optionally the same values
 * already rounded to bf16 in h (contiguous: only used when ld equals the row length). In a bf16
 * context f may be NULL: the operand then exists only in bf16 (h contiguous). */
typedef struct sp_mat {
    const float *f;
    const uint16_t *h;
    int ld;
} sp_mat;
#define SP_MAT(f, ld) ((sp_mat){(f), NULL, (ld)})
/* C[M,N] = alpha op(A) op(B) + beta C, op = transpose when ta / tb; beta is 0 or 1 */
void sp_gemm_run(sp_gemm *g, int ta, int tb, int M, int N, int K, float alpha, sp_mat A, sp_mat B,
                 float beta, float *C, int ldc);
/* C[M,N] = op(A) op(B) + bias[N] on every row */
void sp_gemm_run_bias(sp_gemm *g, int ta, int tb, int M, int N, int K, sp_mat A, sp_mat B,
                      const float *bias, float *C, int ldc);
/* bf16 context only: batch products C[i] = alpha A[i] B[i] + beta C[i] of bf16 operands with
 * explicit strides over (batch, row, column): A [batch, M, K], B [batch, K, N], C fp32
 * [batch, M, N] (a transposed view is a swapped stride). 0 on success, -1 when oneDNN failed
 * (the caller computes the product otherwise). */
int sp_gemm_batched(sp_gemm *g, int batch, int M, int N, int K, float alpha, const uint16_t *A,
                    const int64_t as[3], const uint16_t *B, const int64_t bs[3], float beta,
                    float *C, const int64_t cs[3]);
/* the slot of sp_matmul_backward's rounded dout (attention uses 2..5) */
#define SP_GEMM_SLOT_DOUT 6
/* bf16 scratch buffer `slot` (2..6; 0 and 1 are sp_gemm_run's) of at least n values, owned by
 * the context and grown on demand; NULL when out of memory (or in fp32) */
uint16_t *sp_gemm_buf(sp_gemm *g, int slot, size_t n);
/* dst[i] = src[i] rounded to bf16 (nearest even; fp32 subnormals to a signed zero, as the
 * vcvtne2ps2bf16 instruction does) */
void sp_to_bf16(uint16_t *dst, const float *src, size_t n);
float sp_bf16_to_f32(uint16_t h);

/* out[N,C] = wte[inp[n],:] + wpe[n % T,:]            inp: [B,T] token ids, wte [V,C], wpe [T,C] */
void sp_encoder_forward(float *out, const int32_t *inp, const float *wte, const float *wpe, int B,
                        int T, int C);
/* dwte[V,C] += scatter(dout), dwpe[T,C] += sum over batch;  dout [N,C] */
void sp_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *inp, int B,
                         int T, int C);

/* the LayerNorm epsilon (GPT-2's): exported as layer_norm_epsilon, checked on import */
#define SP_LN_EPS 1e-5f
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

/* out[N,OC] = inp[N,C] @ w[C,OC] + bias[OC]  (bias may be NULL; w16: w's bf16 copy or NULL) */
void sp_matmul_forward(sp_gemm *g, float *out, const float *inp, const float *w,
                       const uint16_t *w16, const float *bias, int N, int C, int OC);
/* the same with the operands as sp_mat (inp's ld C, w's OC; an activation stored in bf16 only has
 * f NULL) */
void sp_matmul_forward_ex(sp_gemm *g, float *out, sp_mat inp, sp_mat w, const float *bias, int N,
                          int C, int OC);
/* dinp[N,C] += dout @ w^T;  dw[C,OC] += inp^T @ dout;  dbias[OC] += sum_n dout
 * (dinp, dbias may be NULL to skip) */
void sp_matmul_backward(sp_gemm *g, float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, const uint16_t *w16, int N, int C,
                        int OC);
/* The same with the operands as sp_mat (an activation stored in bf16 only: f NULL, h set; w's
 * ld is OC, inp's C) and dinp = dout @ w^T + dinp_beta dinp (dinp_beta 0 or 1: 0 spares the
 * caller zeroing dinp first) */
void sp_matmul_backward_ex(sp_gemm *g, float *dinp, float dinp_beta, float *dw, float *dbias,
                           const float *dout, sp_mat inp, sp_mat w, int N, int C, int OC);

/* Causal multi-head self-attention.
 * qkv [B,T,3C]: q | k | v sections, each head-major (head h = channels h*hd .. h*hd+hd-1)
 * out [B,T,C]: heads concatenated head-major;  att [B,NH,T,T]: softmax probabilities (row t holds
 * weights over t2 <= t, zeros above the diagonal), saved for backward. Scale 1/sqrt(hd). */
void sp_attention_forward(sp_gemm *g, float *out, float *att, const float *qkv, int B, int T, int C,
                          int NH);
/* dqkv[B,T,3C] += ;  scratch: sp_attention_scratch_floats(T, NH) floats */
void sp_attention_backward(sp_gemm *g, float *dqkv, const float *dout, const float *qkv,
                           const float *att, float *scratch, int B, int T, int C, int NH);
size_t sp_attention_scratch_floats(int T, int NH);
/* The same with the mask chosen: causal = 1 is sp_attention_forward/backward, causal = 0 lets
 * every row attend to all T positions (BERT; att rows then have no zeros). Same buffers and
 * scratch size. */
void sp_attention_forward_ex(sp_gemm *g, float *out, float *att, const float *qkv, int B, int T,
                             int C, int NH, int causal);
void sp_attention_backward_ex(sp_gemm *g, float *dqkv, const float *dout, const float *qkv,
                              const float *att, float *scratch, int B, int T, int C, int NH,
                              int causal);

/* GELU, tanh approximation (as GPT-2 / PyTorch approximate="tanh"), elementwise on n values */
void sp_gelu_forward(float *out, const float *inp, size_t n);
/* dinp += dout * gelu'(inp) */
void sp_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* dinp = dout * gelu'(inp): overwrites, so dinp need not be zeroed */
void sp_gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t n);

/* out[i] = a[i] + b[i] */
void sp_residual_forward(float *out, const float *a, const float *b, size_t n);

/* Softmax cross-entropy over V classes.
 * logits [N,V] in, probs [N,V] out (may alias logits), losses [N] = -log p[target];
 * returns the mean loss over the N rows (computed in double). */
float sp_crossentropy_forward(float *probs, float *losses, const float *logits,
                              const int32_t *targets, int N, int V);
/* dlogits[N,V] = (probs - onehot(target)) * scale   (overwrites; scale is usually 1/N_total);
 * a row whose target is < 0 gets 0 (and its forward skipped it: loss 0, probs row unwritten) */
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

/* ---- LLaMA and BERT block kernels ---- */

/* RMSNorm (LLaMA): out[N,C] = inp / sqrt(mean(inp^2) + eps) * w;  saves rstd[N];  w [C].
 * out must not alias inp. Hugging Face's rms_norm_eps is usually 1e-5 or 1e-6. */
void sp_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                        float eps);
/* dinp[N,C] +=, dw[C] += */
void sp_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const float *rstd, int N, int C);
/* Masked RMSNorm for the fade-in of new channels (as sp_layernorm_masked_forward): weights
 * m_i = 1 for i < n_old, c for the others, W = sum m_i; out = m * inp * rstd * w with
 * rstd = 1/sqrt(sum m inp^2 / W + eps). At c = 0 the new channels are 0. */
void sp_rmsnorm_masked_forward(float *out, float *rstd, const float *inp, const float *w, int N,
                               int C, int n_old, float c, float eps);
/* dinp[N,C] +=, dw[C] += (the exact gradient of the weighted statistics) */
void sp_rmsnorm_masked_backward(float *dinp, float *dw, const float *dout, const float *inp,
                                const float *w, const float *rstd, int N, int C, int n_old,
                                float c);

/* Rotary position embedding, Hugging Face LLaMA convention (rotate_half: channel i of a head is
 * paired with i + hd/2, frequency theta^(-2i/hd), position = index in the sequence).
 * tab [T, hd] (T*hd floats): row t = cos(t f_i) for i < hd/2, then sin(t f_i); built once. */
void sp_rope_table(float *tab, int T, int hd, double theta);
/* in place on the q and k sections of qkv [B,T,3C] (the attention layout above); hd even */
void sp_rope_forward(float *qkv, const float *tab, int B, int T, int C, int NH);
/* in place on the q and k sections of dqkv [B,T,3C]: the inverse rotation. OVERWRITES (maps)
 * them: call it when dqkv's q, k sections hold just the gradient of the rotated q, k (after
 * sp_attention_backward into a zeroed dqkv), before the qkv matmul backward. v untouched. */
void sp_rope_backward(float *dqkv, const float *tab, int B, int T, int C, int NH);

/* SwiGLU (LLaMA MLP): h[N,F] = silu(a) * b, from ONE buffer ab [N, 2F] whose row n is a_n | b_n
 * (F values each): the output of a single matmul of x [N,C] with [W_gate | W_up] [C, 2F]. */
void sp_swiglu_forward(float *h, const float *ab, int N, int F);
/* dab[N,2F] += (da | db);  dh [N,F] */
void sp_swiglu_backward(float *dab, const float *dh, const float *ab, int N, int F);

/* LayerNorm with the epsilon chosen (BERT: Hugging Face's layer_norm_eps is 1e-12);
 * sp_layernorm_backward is the backward for any eps (it uses the saved rstd) */
void sp_layernorm_forward_eps(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int N, int C, float eps);
/* the masked LayerNorm with the epsilon chosen (sp_layernorm_masked_backward is its backward) */
void sp_layernorm_masked_forward_eps(float *out, float *mean, float *rstd, const float *inp,
                                     const float *w, const float *b, int N, int C, int n_old,
                                     float c, float eps);

/* GELU, exact erf form (BERT, PyTorch approximate="none"), elementwise on n values */
void sp_gelu_erf_forward(float *out, const float *inp, size_t n);
/* dinp += dout * gelu'(inp) */
void sp_gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* Masked-LM loss: the cross-entropy above over the rows whose target is >= 0 (the others are
 * skipped: loss 0, probs row unwritten, gradient 0), divided by norm, the caller's count of
 * selected positions over the whole optimizer step (every micro-batch and replica: the sum of
 * sp_mlm_count, all-reduced). Returns sum of losses / norm (0 when norm <= 0): the micro-batches'
 * returns add up to the step's mean loss. probs may alias logits. */
float sp_mlm_loss_forward(float *probs, float *losses, const float *logits, const int32_t *targets,
                          int N, int V, double norm);
/* dlogits[N,V] = (probs - onehot(target)) / norm on counted rows, 0 elsewhere (overwrites) */
void sp_mlm_loss_backward(float *dlogits, const float *probs, const int32_t *targets, double norm,
                          int N, int V);
/* the number of targets >= 0 among targets[0..n) */
int64_t sp_mlm_count(const int32_t *targets, size_t n);

#endif
