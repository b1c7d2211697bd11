/* G_learn (LiGO's depth expansion): every position of the grown model a learned mix of the base
 * blocks, one coefficient per (position, base block, tensor). See sprout/growth.h. */
#include "sprout/growth.h"
#include "sprout/kernels.h"

#include <stdlib.h>
#include <string.h>

int sp_learn_init(sp_learn *g, const sp_grow_op *op, const sp_spec *s, int l, int factor,
                  sp_err *err) {
    memset(g, 0, sizeof *g);
    sp_tensor_info ti[SP_MAX_TENSORS];
    g->l = l, g->L = l * factor, g->nt = sp_spec_block_tensors(s, ti);
    g->block_numel = sp_spec_block_numel(s);
    for (int t = 0; t < g->nt; t++) g->off[t] = ti[t].offset, g->numel[t] = ti[t].numel;
    size_t nc = (size_t)g->L * (size_t)l * (size_t)g->nt;
    g->base = malloc((size_t)l * g->block_numel * sizeof(float));
    g->c = calloc(nc, sizeof(float)), g->dc = calloc(nc, sizeof(float));
    g->m = calloc(nc, sizeof(float)), g->v = calloc(nc, sizeof(float));
    if (!g->base || !g->c || !g->dc || !g->m || !g->v) {
        sp_learn_free(g);
        return sp_err_set(err, SP_ERUNTIME, "growth op %s: out of memory", op->name);
    }
    for (int p = 0; p < g->L; p++) {
        sp_block_src b = op->map(p, l, factor);
        if (b.src < 0 || b.src >= l || b.n_more) {
            sp_learn_free(g);
            return sp_err_set(err, SP_ERUNTIME, "growth op %s: its map has no single source",
                              op->name);
        }
        for (int t = 0; t < g->nt; t++) g->c[((size_t)p * l + b.src) * g->nt + t] = 1.0f;
    }
    return SP_OK;
}

void sp_learn_free(sp_learn *g) {
    free(g->base), free(g->c), free(g->dc), free(g->m), free(g->v);
    memset(g, 0, sizeof *g);
}

void sp_learn_materialize(const sp_learn *g, int p, float *slab) {
    const float *c = g->c + (size_t)p * g->l * g->nt;
    for (int t = 0; t < g->nt; t++) {
        float *w = slab + g->off[t];
        /* j in order, one term each, the first one assigned: a coefficient of exactly 1 and 0
         * for the others gives the source block bit for bit (the initial map is the op's own) */
        int first = 1;
        for (int j = 0; j < g->l; j++) {
            float a = c[(size_t)j * g->nt + t];
            const float *b = g->base + (size_t)j * g->block_numel + g->off[t];
            if (a == 0.0f) continue;
            if (first)
                for (size_t i = 0; i < g->numel[t]; i++) w[i] = a * b[i];
            else
                for (size_t i = 0; i < g->numel[t]; i++) w[i] += a * b[i];
            first = 0;
        }
        if (first) memset(w, 0, g->numel[t] * sizeof(float));
    }
}

void sp_learn_pullback(sp_learn *g, int p, const float *grad) {
    float *dc = g->dc + (size_t)p * g->l * g->nt;
    for (int j = 0; j < g->l; j++)
        for (int t = 0; t < g->nt; t++) {
            const float *b = g->base + (size_t)j * g->block_numel + g->off[t];
            const float *d = grad + g->off[t];
            double s = 0;
            for (size_t i = 0; i < g->numel[t]; i++) s += (double)d[i] * (double)b[i];
            dc[(size_t)j * g->nt + t] = (float)s;
        }
}

void sp_learn_update(sp_learn *g, float lr, float beta1, float beta2, float eps) {
    g->step++;
    sp_adamw_update(g->c, g->dc, g->m, g->v, (size_t)g->L * (size_t)g->l * (size_t)g->nt, lr, beta1,
                    beta2, eps, 0.0f, g->step);
}
