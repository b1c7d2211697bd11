/* Activation and scratch buffers: sized once per (stage, micro-batch shape), carved out of one
 * big allocation so that no step ever allocates. */
#include "sprout/model.h"

#include <string.h>

typedef struct carve {
    float *base;
    size_t used;
} carve;

static float *take(carve *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15; /* 64-byte alignment for every buffer */
    return p;
}

/* Run twice: once with base NULL to size, once to assign. */
static void carve_acts(sp_acts *a, const sp_model *m, carve *c) {
    const sp_spec *s = &m->spec;
    size_t N = (size_t)a->B * a->T, C = s->d_model, F = s->d_ff, nb = (size_t)a->nb;
    a->x = take(c, (nb + 1) * N * C);
    a->ln1 = take(c, nb * N * C);
    a->ln1_mean = take(c, nb * N);
    a->ln1_rstd = take(c, nb * N);
    a->qkv = take(c, nb * N * 3 * C);
    a->att = take(c, nb * (size_t)a->B * s->n_head * a->T * a->T);
    a->atty = take(c, nb * N * C);
    a->x2 = take(c, nb * N * C);
    a->ln2 = take(c, nb * N * C);
    a->ln2_mean = take(c, nb * N);
    a->ln2_rstd = take(c, nb * N);
    a->fch = take(c, nb * N * F);
    a->fchg = take(c, nb * N * F);
    size_t nh = m->has_head ? 1 : 0;
    a->lnf = take(c, nh * N * C);
    a->lnf_mean = take(c, nh * N);
    a->lnf_rstd = take(c, nh * N);
    a->probs = take(c, nh * N * s->vocab);
    a->losses = take(c, nh * N);
}

int sp_acts_create(sp_acts *a, const sp_model *m, int B, int T, sp_err *err) {
    memset(a, 0, sizeof *a);
    a->B = B, a->T = T, a->nb = a->n_exec = m->hi - m->lo;
    carve c = {0};
    carve_acts(a, m, &c);
    a->bytes = c.used * sizeof(float);
    c.base = sp_alloc_big(a->bytes, err);
    if (!c.base) return err->code;
    c.used = 0;
    carve_acts(a, m, &c);
    return SP_OK;
}

void sp_acts_free(sp_acts *a) {
    sp_free_big(a->x, a->bytes);
    memset(a, 0, sizeof *a);
}

static void carve_scratch(sp_scratch *s, const sp_model *m, int B, int T, carve *c) {
    const sp_spec *sp = &m->spec;
    size_t N = (size_t)B * T, C = sp->d_model, F = sp->d_ff;
    s->dres = take(c, N * C);
    s->dln = take(c, N * C);
    s->dqkv = take(c, N * 3 * C);
    s->datty = take(c, N * C);
    s->dfch = take(c, N * F);
    s->dfchg = take(c, N * F);
    s->datt = take(c, (size_t)T * T);
    s->dprobs = take(c, m->has_head ? N * sp->vocab : 0);
}

int sp_scratch_create(sp_scratch *s, const sp_model *m, int B, int T, sp_err *err) {
    memset(s, 0, sizeof *s);
    carve c = {0};
    carve_scratch(s, m, B, T, &c);
    s->bytes = c.used * sizeof(float);
    c.base = sp_alloc_big(s->bytes, err);
    if (!c.base) return err->code;
    c.used = 0;
    carve_scratch(s, m, B, T, &c);
    return SP_OK;
}

void sp_scratch_free(sp_scratch *s) {
    sp_free_big(s->dres, s->bytes);
    memset(s, 0, sizeof *s);
}
