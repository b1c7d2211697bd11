/* A stage's arenas (params, grads, AdamW m and v), slab addressing, init and the optimizer. */
#include "sprout/kernels.h"
#include "sprout/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the plan's arrays for n blocks, in one allocation */
static int plan_create(sp_plan *p, int n) {
    size_t k = (size_t)(n > 0 ? n : 1);
    char *buf = calloc(k, 2 * sizeof(int) + sizeof(float) + 1);
    if (!buf) return -1;
    p->n_layer = n;
    p->pos = (int *)buf;
    p->group = p->pos + k;
    p->scale = (float *)(p->group + k);
    p->train = (unsigned char *)(p->scale + k);
    return 0;
}

void sp_plan_full(sp_plan *p) {
    p->depth = p->n_layer;
    p->shared = 0;
    for (int b = 0; b < p->n_layer; b++) {
        p->pos[b] = p->group[b] = b;
        p->train[b] = 1;
        p->scale[b] = 1.0f;
    }
    p->mask_d = p->mask_f = p->mask_out = 0;
    p->mask_c = 1.0f;
}

void sp_plan_range(const sp_plan *p, int lo, int hi, int *p0, int *p1) {
    int a = 0;
    while (a < p->depth && p->pos[a] < lo) a++;
    int b = a;
    while (b < p->depth && p->pos[b] < hi) b++;
    *p0 = a, *p1 = b;
}

/* narenas 4: params, grads, m, v; 1: params only */
static int create(sp_model *m, const sp_spec *s, int lo, int hi, int has_embed, int has_head,
                  int narenas, sp_err *err) {
    memset(m, 0, sizeof *m);
    if (sp_spec_check(s, err)) return err->code;
    m->spec = *s;
    m->lo = lo, m->hi = hi;
    m->has_embed = has_embed, m->has_head = has_head;
    m->kind = sp_kind_of(s);
    m->obj = &sp_objectives[0];
    m->nbt = sp_spec_block_tensors(s, m->bt);
    m->ngt = sp_spec_global_tensors(s, m->gt);
    m->block_numel = sp_spec_block_numel(s);
    m->global_numel = (has_embed || has_head) ? sp_spec_global_numel(s) : 0;
    m->numel = m->global_numel + (size_t)(hi - lo) * m->block_numel;
    size_t bytes = m->numel * sizeof(float);
    float **arenas[4] = {&m->params, &m->grads, &m->m, &m->v};
    /* not touched here: sp_model_touch does it where the pages are not filled right away */
    for (int i = 0; i < narenas; i++) {
        *arenas[i] = sp_alloc_big_lazy(bytes, err);
        if (!*arenas[i]) {
            sp_model_free(m);
            return err->code;
        }
    }
    m->steps = calloc((size_t)(hi - lo) + 1, sizeof *m->steps);
    if (!m->steps || plan_create(&m->plan, s->n_layer)) {
        sp_model_free(m);
        return sp_err_set(err, SP_ERUNTIME, "out of memory");
    }
    sp_plan_full(&m->plan);
    if (m->kind->aux_floats) {
        m->aux = malloc(m->kind->aux_floats(s) * sizeof(float));
        if (!m->aux) {
            sp_model_free(m);
            return sp_err_set(err, SP_ERUNTIME, "out of memory");
        }
        m->kind->aux_fill(s, m->aux);
    }
    return SP_OK;
}

int sp_model_create(sp_model *m, const sp_spec *s, int lo, int hi, int has_embed, int has_head,
                    sp_err *err) {
    return create(m, s, lo, hi, has_embed, has_head, 4, err);
}

int sp_model_create_weights(sp_model *m, const sp_spec *s, int lo, int hi, int has_embed,
                            int has_head, sp_err *err) {
    return create(m, s, lo, hi, has_embed, has_head, 1, err);
}

void sp_model_free(sp_model *m) {
    size_t bytes = m->numel * sizeof(float);
    sp_free_big(m->params, bytes);
    sp_free_big(m->grads, bytes);
    sp_free_big(m->m, bytes);
    sp_free_big(m->v, bytes);
    free(m->steps);
    free(m->plan.pos); /* the plan's one allocation */
    free(m->aux);
    sp_free_big(m->params16, m->numel * sizeof(uint16_t));
    memset(m, 0, sizeof *m);
}

int sp_model_use_gemm(sp_model *m, struct sp_gemm *g, sp_err *err) {
    sp_free_big(m->params16, m->numel * sizeof(uint16_t));
    m->params16 = NULL;
    m->gemm = g;
    if (!g) return SP_OK;
    m->params16 = sp_alloc_big_lazy(m->numel * sizeof(uint16_t), err);
    return m->params16 ? SP_OK : err->code;
}

/* arena i of m: 0 params, 1 grads, 2 m, 3 v, 4 params16, with its size in bytes */
static void **arena(sp_model *m, int i, size_t *bytes) {
    *bytes = m->numel * (i == 4 ? sizeof(uint16_t) : sizeof(float));
    switch (i) {
    case 0:
        return (void **)&m->params;
    case 1:
        return (void **)&m->grads;
    case 2:
        return (void **)&m->m;
    case 3:
        return (void **)&m->v;
    default:
        return (void **)&m->params16;
    }
}

void sp_model_touch(sp_model *m) {
    for (int i = 0; i < SP_MODEL_ARENAS; i++) {
        size_t bytes;
        void **p = arena(m, i, &bytes);
        sp_touch_big(*p, bytes);
    }
}

int sp_model_take_arena(sp_model *m, int to, sp_model *donor, int from, sp_err *err) {
    size_t nb, ob;
    void **dst = arena(m, to, &nb), **src = arena(donor, from, &ob);
    if (!*dst || !*src) return SP_OK;
    sp_free_big(*dst, nb);
    *dst = sp_recycle_big(*src, ob, nb, err);
    *src = NULL;
    return *dst ? SP_OK : err->code;
}

void sp_model_sync_bf16(sp_model *m) {
    if (m->params16) sp_to_bf16(m->params16, m->params, m->numel);
}

float *sp_model_block(const sp_model *m, float *arena, int b) {
    return arena + m->global_numel + (size_t)(b - m->lo) * m->block_numel;
}

float *sp_model_globals(const sp_model *m, float *arena) {
    return m->global_numel ? arena : NULL;
}

uint64_t sp_model_tensor_id(int block, int j) {
    return block < 0 ? (uint64_t)j : 64u * (uint64_t)(block + 1) + (uint64_t)j;
}

float sp_model_init_std(const sp_spec *s, const sp_tensor_info *t) {
    return t->resid_proj ? 0.02f / sqrtf(2.0f * (float)s->n_layer) : 0.02f;
}

/* block b drawn as block `as` would be: the copies of a weight-sharing group start equal */
static void init_block_as(sp_model *m, int b, int as, uint64_t seed, uint32_t purpose,
                          uint64_t a_hi) {
    const sp_spec *s = &m->spec;
    float *slab = sp_model_block(m, m->params, b);
    for (int j = 0; j < m->nbt; j++) {
        const sp_tensor_info *t = &m->bt[j];
        float *p = slab + t->offset;
        if (t->ndim == 2) {
            sp_rng_normal_fill(p, t->numel, sp_model_init_std(s, t), seed, purpose,
                               a_hi | sp_model_tensor_id(as, j), 0);
        } else {
            float v = t->gain ? 1.0f : 0.0f; /* norm gains 1, biases 0 */
            for (size_t i = 0; i < t->numel; i++) p[i] = v;
        }
    }
}

void sp_model_init_block(sp_model *m, int b, uint64_t seed, uint32_t purpose, uint64_t a_hi) {
    init_block_as(m, b, b, seed, purpose, a_hi);
}

void sp_model_init(sp_model *m, uint64_t seed) {
    for (int b = m->lo; b < m->hi; b++) init_block_as(m, b, m->plan.group[b], seed, SP_RNG_INIT, 0);
    float *g = sp_model_globals(m, m->params);
    if (!g) return;
    for (int j = 0; j < m->ngt; j++) {
        const sp_tensor_info *t = &m->gt[j];
        float *p = g + t->offset;
        if (t->ndim == 2)
            sp_rng_normal_fill(p, t->numel, sp_model_init_std(&m->spec, t), seed, SP_RNG_INIT,
                               sp_model_tensor_id(-1, j), 0);
        else
            for (size_t i = 0; i < t->numel; i++) p[i] = t->gain ? 1.0f : 0.0f;
    }
}

static void adamw_slab(sp_model *m, size_t base, const sp_tensor_info *t, int nt, uint64_t step,
                       const sp_adamw *h) {
    for (int j = 0; j < nt; j++) {
        size_t o = base + t[j].offset;
        sp_adamw_update(m->params + o, m->grads + o, m->m + o, m->v + o, t[j].numel, h->lr,
                        h->beta1, h->beta2, h->eps, t[j].decay ? h->weight_decay : 0.0f, step);
    }
}

void sp_model_adamw(sp_model *m, const sp_adamw *h) {
    if (m->global_numel) adamw_slab(m, 0, m->gt, m->ngt, ++m->steps[0], h);
    for (int b = m->lo; b < m->hi; b++) {
        if (!m->plan.train[b]) continue; /* skipped this step: not even decayed */
        size_t base = m->global_numel + (size_t)(b - m->lo) * m->block_numel;
        adamw_slab(m, base, m->bt, m->nbt, ++m->steps[1 + b - m->lo], h);
    }
}
