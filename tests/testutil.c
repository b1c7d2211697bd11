#include "testutil.h"

#include "sprout/growth.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void tu_check(tu_ctx *t, int ok, const char *fmt, ...) {
    t->checks++;
    if (ok) return;
    t->failures++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

double tu_rel_maxabs(const float *a, const float *b, size_t n) {
    double dmax = 0, bmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > dmax || isnan(d)) dmax = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > bmax) bmax = fabs((double)b[i]);
    }
    return dmax / (bmax > 1e-30 ? bmax : 1e-30);
}

double tu_rel_maxabs_d(const double *a, const double *b, size_t n) {
    double dmax = 0, bmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > dmax || isnan(d)) dmax = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > bmax) bmax = fabs(b[i]);
    }
    return dmax / (bmax > 1e-30 ? bmax : 1e-30);
}

double tu_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

int tu_model_trained(sp_model *m, const sp_spec *s, uint64_t seed, tu_ctx *t) {
    sp_err err = {0};
    if (sp_model_create(m, s, 0, s->n_layer, 1, 1, &err)) {
        tu_check(t, 0, "model set-up: %s", err.msg);
        return 1;
    }
    sp_model_init(m, seed);
    for (size_t i = 0; i < m->numel; i++)
        m->params[i] += 0.1f * (sp_rng_uniform(9, SP_RNG_TEST, 0, i) - 0.5f);
    sp_rng_normal_fill(m->m, m->numel, 1e-3f, 9, SP_RNG_TEST, 1, 0);
    sp_rng_normal_fill(m->v, m->numel, 1e-6f, 9, SP_RNG_TEST, 2, 0);
    for (size_t i = 0; i < m->numel; i++) m->v[i] = fabsf(m->v[i]);
    for (int i = 0; i <= s->n_layer; i++) m->steps[i] = 100 + 7 * (uint64_t)i;
    if (s->n_layer > 1) m->plan.scale[1] = 0.75f;
    return 0;
}

int tu_grow_width(const char *op, int k, const sp_model *src, sp_model *dst, int moments,
                  double noise, uint64_t seed, int event, tu_ctx *t) {
    sp_err err = {0};
    sp_spec s;
    memset(dst, 0, sizeof *dst);
    int rc = sp_grow_width_spec(op, &src->spec, k, &s, &err);
    rc = rc ? rc : sp_model_create(dst, &s, src->lo, src->hi, src->has_embed, src->has_head, &err);
    rc = rc ? rc : sp_grow_width(op, k, src, dst, moments, noise, seed, event, &err);
    tu_check(t, rc == 0, "%s k = %d: %s", op, k, err.msg);
    return rc;
}

int tu_stage(sp_model *part, const sp_model *m, int lo, int hi, int glob, tu_ctx *t) {
    sp_err err = {0};
    if (sp_model_create(part, &m->spec, lo, hi, glob, glob, &err)) {
        tu_check(t, 0, "stage set-up: %s", err.msg);
        return 1;
    }
    float *const from[3] = {m->params, m->m, m->v}, *const to[3] = {part->params, part->m, part->v};
    for (int ar = 0; ar < 3; ar++) {
        if (glob)
            memcpy(sp_model_globals(part, to[ar]), sp_model_globals(m, from[ar]),
                   m->global_numel * sizeof(float));
        for (int b = lo; b < hi; b++)
            memcpy(sp_model_block(part, to[ar], b), sp_model_block(m, from[ar], b),
                   m->block_numel * sizeof(float));
    }
    part->steps[0] = m->steps[0];
    for (int b = lo; b < hi; b++) {
        part->steps[1 + b - lo] = m->steps[1 + b - m->lo];
        part->plan.scale[b] = m->plan.scale[b];
    }
    return 0;
}

double tu_forward(const sp_model *m, sp_acts *a, const int32_t *inp, const int32_t *tgt) {
    sp_model_embed_forward(m, a, inp);
    sp_model_blocks_forward(m, a);
    sp_model_head_forward(m, a, tgt);
    if (!tgt) return 0;
    int n = a->B * a->T;
    double l = 0;
    for (int i = 0; i < n; i++) l += a->losses[i];
    return l / n;
}

double tu_grads(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp, const int32_t *tgt) {
    double l = tu_forward(m, a, inp, tgt);
    memset(m->grads, 0, m->numel * sizeof(float));
    sp_model_head_backward(m, a, s, tgt, 1.0f / (float)(a->B * a->T));
    sp_model_blocks_backward(m, a, s, NULL, NULL);
    sp_model_embed_backward(m, a, s, inp);
    return l;
}

double tu_fd_check(sp_model *m, sp_acts *a, const int32_t *inp, const int32_t *tgt, float *p,
                   double an, double h, const char *what, int *bad) {
    float x0 = *p;
    *p = x0 + (float)h;
    double hp = *p, lp = tu_forward(m, a, inp, tgt);
    *p = x0 - (float)h;
    double hm = *p, lm = tu_forward(m, a, inp, tgt);
    *p = x0;
    double fd = (lp - lm) / (hp - hm), err = fabs(fd - an), tol = 2e-2 * fabs(an) + 2e-5;
    if (err > tol) {
        (*bad)++;
        fprintf(stderr, "  %s: fd %.6g analytic %.6g\n", what, fd, an);
    }
    return err / tol;
}

int tu_mask_near_one(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp, const int32_t *tgt,
                     double *el, double *eg, tu_ctx *t) {
    size_t nl = (size_t)a->B * a->T * m->spec.vocab;
    float *g1 = malloc(m->numel * sizeof(float)), *l1 = malloc(nl * sizeof(float));
    tu_check(t, g1 && l1, "mask near 1: out of memory");
    if (!g1 || !l1) {
        free(g1);
        free(l1);
        return 1;
    }
    m->plan.mask_c = nextafterf(1.0f, 0.0f); /* the masked path runs below 1 */
    tu_grads(m, a, s, inp, tgt);
    memcpy(g1, m->grads, m->numel * sizeof(float));
    tu_forward(m, a, inp, NULL);
    memcpy(l1, a->probs, nl * sizeof(float));
    m->plan.mask_c = 1.0f;
    tu_grads(m, a, s, inp, tgt);
    *eg = tu_rel_maxabs(g1, m->grads, m->numel);
    tu_forward(m, a, inp, NULL);
    *el = tu_rel_maxabs(l1, a->probs, nl);
    free(g1);
    free(l1);
    return 0;
}

int tu_finish(tu_ctx *t, const char *name) {
    printf("%s: %d passed, %d failed\n", name, t->checks - t->failures, t->failures);
    return t->failures ? 1 : 0;
}

float *tu_logits(const sp_model *m, const int32_t *inp, int B, int T, tu_ctx *t) {
    sp_acts a;
    sp_err err = {0};
    if (sp_acts_create(&a, m, B, T, &err)) {
        tu_check(t, 0, "activations: %s", err.msg);
        return NULL;
    }
    sp_model_embed_forward(m, &a, inp);
    sp_model_blocks_forward(m, &a);
    sp_model_head_forward(m, &a, NULL); /* no targets: probs holds the raw logits */
    size_t n = (size_t)B * T * m->spec.vocab;
    float *out = malloc(n * sizeof(float));
    if (out) memcpy(out, a.probs, n * sizeof(float));
    sp_acts_free(&a);
    tu_check(t, out != NULL, "logits: out of memory");
    return out;
}
