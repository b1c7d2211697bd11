/* Activation and scratch buffers: sized once per (stage, micro-batch shape), carved out of one
 * big allocation so that no step ever allocates. */
#include "sprout/kernels.h"
#include "sprout/model.h"

#include <stdint.h>
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

/* n bf16 values */
static uint16_t *take16(carve *c, size_t n) {
    return (uint16_t *)take(c, (n + 1) / 2);
}

/* an operand-only activation of n values: fp32 in *f, or with half bf16 only in *h */
static void take_operand(carve *c, int half, size_t n, float **f, uint16_t **h) {
    *f = half ? NULL : take(c, n);
    *h = half ? take16(c, n) : NULL;
}

/* Run twice: once with base NULL to size, once to assign. half: store the operand-only
 * activations in bf16 (sp_acts). */
static void carve_acts(sp_acts *a, const sp_spec *s, int has_head, int half, carve *c) {
    size_t N = (size_t)a->B * a->T, C = s->d_model, F = s->d_ff, nb = (size_t)a->nb;
    a->x = take(c, (nb + 1) * N * C);
    take_operand(c, half, nb * N * C, &a->ln1, &a->ln1h);
    a->ln1_mean = take(c, nb * N);
    a->ln1_rstd = take(c, nb * N);
    a->qkv = take(c, nb * N * 3 * C);
    a->att = take(c, nb * (size_t)a->B * s->n_head * a->T * a->T);
    a->atty = take(c, nb * N * C);
    a->x2 = take(c, nb * N * C);
    take_operand(c, half, nb * N * C, &a->ln2, &a->ln2h);
    a->ln2_mean = take(c, nb * N);
    a->ln2_rstd = take(c, nb * N);
    a->fch = take(c, nb * N * F * (size_t)sp_kind_of(s)->ff_in); /* gate | up for llama */
    take_operand(c, half, nb * N * F, &a->fchg, &a->fchgh);
    size_t nh = has_head ? 1 : 0;
    take_operand(c, half, nh * N * C, &a->lnf, &a->lnfh);
    a->lnf_mean = take(c, nh * N);
    a->lnf_rstd = take(c, nh * N);
    a->probs = take(c, nh * N * s->vocab);
    a->losses = take(c, nh * N);
    const sp_kind *k = sp_kind_of(s);
    size_t ne = k->embed_ln ? 1 : 0, nt = k->head_transform ? nh : 0;
    a->emb = take(c, ne * N * C);
    a->emb_mean = take(c, ne * N);
    a->emb_rstd = take(c, ne * N);
    a->hpre = take(c, nt * N * C);
    a->hact = take(c, nt * N * C);
    /* a norm tile is whole rows of C, a SwiGLU tile whole rows of F: at least one of each */
    size_t w = C > F ? C : F;
    a->stage_n = half ? (w > SP_ACTS_STAGE ? w : SP_ACTS_STAGE) : 0;
    a->stage = half ? take(c, a->stage_n) : NULL;
}

/* a zeroed big buffer of `bytes`, in the memory of spare (spare_bytes; NULL: fresh) */
static float *buffer(size_t bytes, float *spare, size_t spare_bytes, sp_err *err) {
    if (!spare) return sp_alloc_big(bytes, err);
    float *p = sp_recycle_big(spare, spare_bytes, bytes, err);
    if (p) memset(p, 0, bytes);
    return p;
}

int sp_acts_create_in(sp_acts *a, const sp_model *m, int B, int T, sp_acts *spare, sp_err *err) {
    memset(a, 0, sizeof *a);
    a->B = B, a->T = T, a->nb = a->n_exec = m->hi - m->lo;
    int half = m->gemm && sp_kind_of(&m->spec)->acts16;
    carve c = {0};
    carve_acts(a, &m->spec, m->has_head, half, &c);
    a->bytes = c.used * sizeof(float);
    c.base = buffer(a->bytes, spare ? spare->x : NULL, spare ? spare->bytes : 0, err);
    if (spare) memset(spare, 0, sizeof *spare);
    if (!c.base) return err->code;
    c.used = 0;
    carve_acts(a, &m->spec, m->has_head, half, &c);
    return SP_OK;
}

/* Every buffer carved for a stage is at most (nb + 1) x B x T x the widest per-token row (3C, F,
 * the vocab, or n_head x T attention scores), and there are fewer than 32 of them. When that bound
 * passes 2^60 bytes the size_t products would overflow: the answer is then SIZE_MAX. */
static int sizes_overflow(const sp_spec *s, int nb, int B, int T) {
    double w = 3.0 * s->d_model;
    if (2.0 * s->d_ff > w) w = 2.0 * s->d_ff;
    if (s->vocab > w) w = s->vocab;
    if ((double)s->n_head * T > w) w = (double)s->n_head * T;
    return 32.0 * 4.0 * ((double)nb + 1) * B * (double)T * w >= 0x1p60;
}

size_t sp_acts_bytes(const sp_spec *s, int nb, int has_head, int B, int T) {
    if (sizes_overflow(s, nb, B, T)) return SIZE_MAX;
    sp_acts a = {.B = B, .T = T, .nb = nb};
    carve c = {0};
    carve_acts(&a, s, has_head, 0, &c); /* fp32: a bound for bf16 too */
    return c.used * sizeof(float);
}

int sp_acts_create(sp_acts *a, const sp_model *m, int B, int T, sp_err *err) {
    return sp_acts_create_in(a, m, B, T, NULL, err);
}

void sp_acts_free(sp_acts *a) {
    sp_free_big(a->x, a->bytes);
    memset(a, 0, sizeof *a);
}

static void carve_scratch(sp_scratch *s, const sp_spec *sp, int has_head, int B, int T, carve *c) {
    size_t N = (size_t)B * T, C = sp->d_model, F = sp->d_ff;
    s->dres = take(c, N * C);
    s->dln = take(c, N * C);
    s->dqkv = take(c, N * 3 * C);
    s->datty = take(c, N * C);
    s->dfch = take(c, N * F * (size_t)sp_kind_of(sp)->ff_in);
    s->dfchg = take(c, N * F);
    s->datt = take(c, sp_attention_scratch_floats(T, sp->n_head));
    s->dprobs = take(c, has_head ? N * sp->vocab : 0);
}

int sp_scratch_create_in(sp_scratch *s, const sp_model *m, int B, int T, sp_scratch *spare,
                         sp_err *err) {
    memset(s, 0, sizeof *s);
    carve c = {0};
    carve_scratch(s, &m->spec, m->has_head, B, T, &c);
    s->bytes = c.used * sizeof(float);
    c.base = buffer(s->bytes, spare ? spare->dres : NULL, spare ? spare->bytes : 0, err);
    if (spare) memset(spare, 0, sizeof *spare);
    if (!c.base) return err->code;
    c.used = 0;
    carve_scratch(s, &m->spec, m->has_head, B, T, &c);
    return SP_OK;
}

size_t sp_scratch_bytes(const sp_spec *s, int has_head, int B, int T) {
    if (sizes_overflow(s, 1, B, T)) return SIZE_MAX;
    sp_scratch x;
    carve c = {0};
    carve_scratch(&x, s, has_head, B, T, &c);
    return c.used * sizeof(float);
}

int sp_scratch_create(sp_scratch *s, const sp_model *m, int B, int T, sp_err *err) {
    return sp_scratch_create_in(s, m, B, T, NULL, err);
}

void sp_scratch_free(sp_scratch *s) {
    sp_free_big(s->dres, s->bytes);
    memset(s, 0, sizeof *s);
}
