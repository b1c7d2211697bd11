/* Depth operators: the block map of each operator and the local transforms that turn a copied
 * source slab into the new block (docs/growth.md). Pure functions of (op, l, factor) and of the
 * stage's own slabs: no MPI, so every rank applies them to whatever blocks it holds. The maps
 * themselves are the rows of the operator table (ops.c). */
#include "sprout/growth.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int sp_grow_plan(const char *op, int n_old, int factor, sp_block_map *map, sp_err *err) {
    memset(map, 0, sizeof *map);
    const sp_grow_op *r = sp_grow_op_find(op);
    if (!r || r->dim != SP_OP_DEPTH)
        return sp_err_set(err, SP_EINPUT, "growth op '%s' is not a depth operator (%s)",
                          op ? op : "(null)", sp_grow_op_names(SP_OP_DEPTH));
    if (n_old < 1)
        return sp_err_set(err, SP_EINPUT, "growth op '%s': %d blocks to grow from, need >= 1", op,
                          n_old);
    if (factor < 1 || factor > INT_MAX / n_old || (r->shrinks && factor > SP_MAP_MAX_SRC))
        return sp_err_set(err, SP_EINPUT, "growth op '%s': factor %d out of range for %d blocks",
                          op, factor, n_old);
    if (r->shrinks && n_old % factor)
        return sp_err_set(err, SP_EINPUT, "growth op '%s': factor %d does not divide %d blocks", op,
                          factor, n_old);
    int L = r->shrinks ? n_old / factor : factor * n_old;
    map->b = malloc((size_t)L * sizeof *map->b);
    if (!map->b) return sp_err_set(err, SP_ERUNTIME, "growth op '%s': out of memory", op);
    map->n_old = n_old, map->n_new = L;
    for (int j = 0; j < L; j++) map->b[j] = r->map(j, n_old, factor);
    return SP_OK;
}

void sp_grow_map_free(sp_block_map *map) {
    free(map->b);
    memset(map, 0, sizeof *map);
}

/* the tensors the kind marks zero_id: zeroed, they make a pre-norm block the identity (x + 0) */
static void zero_out_proj(sp_model *m, int b) {
    float *arenas[3] = {m->params, m->m, m->v};
    for (int a = 0; a < 3; a++) {
        float *slab = sp_model_block(m, arenas[a], b);
        for (int k = 0; k < m->nbt; k++) {
            const sp_tensor_info *t = &m->bt[k];
            if (t->zero_id) memset(slab + t->offset, 0, t->numel * sizeof(float));
        }
    }
}

static void fresh_block(sp_model *m, int b, uint64_t seed, int event) {
    sp_model_init_block(m, b, seed, SP_RNG_GROW_INIT, (uint64_t)(uint32_t)event << 32);
    memset(sp_model_block(m, m->m, b), 0, m->block_numel * sizeof(float));
    memset(sp_model_block(m, m->v, b), 0, m->block_numel * sizeof(float));
    m->steps[1 + b - m->lo] = 0;
    /* the block starts as the identity; the schedule ramps its scale up */
    m->plan.scale[b] = 0.0f;
}

void sp_grow_transform(sp_model *m, const sp_block_map *map, uint64_t seed, int event) {
    /* the map is for m's depth (map->n_new == m->spec.n_layer); the bound only keeps a
     * mismatched map from being read past its end */
    for (int b = m->lo; b < m->hi && b < map->n_new; b++) {
        switch (map->b[b].xf) {
        case SP_XF_ZERO_OUT:
            zero_out_proj(m, b);
            break;
        case SP_XF_RANDOM:
            fresh_block(m, b, seed, event);
            break;
        default:
            break; /* SP_XF_COPY: redistribution already placed the source slab */
        }
    }
}

void sp_grow_reset_optim(sp_model *m) {
    memset(m->m, 0, m->numel * sizeof(float));
    memset(m->v, 0, m->numel * sizeof(float));
    memset(m->steps, 0, ((size_t)(m->hi - m->lo) + 1) * sizeof *m->steps);
}
