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
