/* Small helpers shared by the C tests: checks that count failures, and max-relative error. */
#ifndef SPROUT_TESTUTIL_H
#define SPROUT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sprout/model.h"

typedef struct tu_ctx {
    int checks, failures;
} tu_ctx;

/* records a check; prints "FAIL: what" with the formatted detail when ok is false */
void tu_check(tu_ctx *t, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* max|a-b| / max(max|b|, tiny): the "max-abs difference over max-abs" measure */
double tu_rel_maxabs(const float *a, const float *b, size_t n);
double tu_rel_maxabs_d(const double *a, const double *b, size_t n);
/* max|a-b| (absolute) */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* A trained-looking full model of spec s (every block, embedding and head): init(seed), then
 * every parameter perturbed by U(-0.05, 0.05) so that gains and biases are not 1 and 0, moments
 * and step counts distinct, block 1's branch scale 0.75 when there is a block 1. Returns nonzero
 * (after a failed check) when the model cannot be created. */
int tu_model_trained(sp_model *m, const sp_spec *s, uint64_t seed, tu_ctx *t);
/* The raw logits [B*T, vocab] of a full model (embedding and head on the stage) on tokens inp
 * [B, T], malloc'd; NULL after a failed check. */
float *tu_logits(const sp_model *m, const int32_t *inp, int B, int T, tu_ctx *t);
/* dst = op(src) by the width engine (src/growth/width.c) on src's layout: dst is created with the
 * op's spec, then mapped. Returns nonzero after a failed check naming op and k. */
int tu_grow_width(const char *op, int k, const sp_model *src, sp_model *dst, int moments,
                  double noise, uint64_t seed, int event, tu_ctx *t);
/* What a pipeline rank holds: a stage of m's spec with blocks [lo, hi) and, with glob, the
 * embedding and the head, m's slabs (params, m, v), step counts and branch scales copied in.
 * Returns nonzero after a failed check. */
int tu_stage(sp_model *part, const sp_model *m, int lo, int hi, int glob, tu_ctx *t);
/* A full model's forward on tokens inp (a's B x T); with tgt the mean of the per-position losses
 * (summed in double), else 0 and the raw logits in a->probs. */
double tu_forward(const sp_model *m, sp_acts *a, const int32_t *inp, const int32_t *tgt);
/* m->grads = dL/dparams of that mean loss (every target counts); returns the loss */
double tu_grads(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp, const int32_t *tgt);
/* The central difference of the loss in the parameter *p (step h) against the analytic an:
 * |fd - an| <= 2e-2 |an| + 2e-5, the fp32 loss carrying ~1e-7 of rounding noise; a failure is
 * counted in *bad and printed with what. Returns error / tolerance. */
double tu_fd_check(sp_model *m, sp_acts *a, const int32_t *inp, const int32_t *tgt, float *p,
                   double an, double h, const char *what, int *bad);
/* The masked path of a widened model at mask_c just below 1 against the plain path (mask_c = 1):
 * the relative differences (tu_rel_maxabs) of the logits in *el and of every gradient in *eg.
 * Leaves mask_c = 1; returns nonzero after a failed check. */
int tu_mask_near_one(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp, const int32_t *tgt,
                     double *el, double *eg, tu_ctx *t);
/* prints "N passed, M failed" and returns the exit status */
int tu_finish(tu_ctx *t, const char *name);

#endif
