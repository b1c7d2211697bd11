/* Depth operators: the block map of each operator and the local transforms that turn a copied
 * source slab into the new block (docs/growth.md). Pure functions of (op, l, factor) and of the
 * stage's own slabs: no MPI, so every rank applies them to whatever blocks it holds. */
#include "sprout/growth.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_STACK, OP_INTERPOLATE, OP_ZERO, OP_RANDOM, OP_NONE } depth_op;

static depth_op parse_op(const char *op) {
    if (!op) return OP_NONE;
    /* direct is G^direct of the operator study, which is the same map as G_stack */
    if (!strcmp(op, "stack") || !strcmp(op, "direct")) return OP_STACK;
    /* multi-level de-coalescing in depth copies block i to 2i and 2i+1: interpolation's map */
    if (!strcmp(op, "interpolate") || !strcmp(op, "decoalesce_depth")) return OP_INTERPOLATE;
    if (!strcmp(op, "zero")) return OP_ZERO;
    if (!strcmp(op, "random")) return OP_RANDOM;
    return OP_NONE;
}

int sp_grow_is_depth_op(const char *op) {
    return parse_op(op) != OP_NONE;
}

int sp_grow_preserves(const char *op) {
    depth_op o = parse_op(op);
    /* the width splits preserve the function up to fp32 rounding, and so do widen_zero and
     * widen_random while their new channels are masked out (docs/growth.md) */
    if (o == OP_ZERO || o == OP_RANDOM) return 1;
    if (!op) return 0;
    return !strcmp(op, "decoalesce_width") || !strcmp(op, "widen_direct") ||
           !strcmp(op, "widen_zero") || !strcmp(op, "widen_random");
}

/* new block j of L = factor * l blocks */
static sp_block_src map_one(depth_op o, int j, int l, int factor) {
    sp_block_src s = {0, SP_XF_COPY};
    long long L = (long long)factor * l;
    switch (o) {
    case OP_STACK:
        s.src = j % l;
        break;
    case OP_INTERPOLATE:
        s.src = (int)((long long)j * l / L);
        break;
    case OP_ZERO:
        /* interleaved: old block i, then its factor-1 identity copies */
        s.src = j / factor;
        s.xf = j % factor ? SP_XF_ZERO_OUT : SP_XF_COPY;
        break;
    case OP_RANDOM:
        /* old blocks keep their slots, fresh blocks are appended */
        if (j >= l)
            s.src = -1, s.xf = SP_XF_RANDOM;
        else
            s.src = j;
        break;
    case OP_NONE:
        break;
    }
    return s;
}

int sp_grow_plan(const char *op, int n_old, int factor, sp_block_map *map, sp_err *err) {
    memset(map, 0, sizeof *map);
    depth_op o = parse_op(op);
    if (o == OP_NONE)
        return sp_err_set(err, SP_EINPUT,
                          "growth op '%s' is not a depth operator (stack, direct, interpolate, "
                          "zero, random)",
                          op ? op : "(null)");
    if (n_old < 1)
        return sp_err_set(err, SP_EINPUT, "growth op '%s': %d blocks to grow from, need >= 1", op,
                          n_old);
    if (factor < 1 || factor > INT_MAX / n_old)
        return sp_err_set(err, SP_EINPUT, "growth op '%s': factor %d out of range for %d blocks",
                          op, factor, n_old);
    int L = factor * n_old;
    map->b = malloc((size_t)L * sizeof *map->b);
    if (!map->b) return sp_err_set(err, SP_ERUNTIME, "growth op '%s': out of memory", op);
    map->n_old = n_old, map->n_new = L;
    for (int j = 0; j < L; j++) map->b[j] = map_one(o, j, n_old, factor);
    return SP_OK;
}

void sp_grow_map_free(sp_block_map *map) {
    free(map->b);
    memset(map, 0, sizeof *map);
}

/* the four tensors whose zeroing makes a pre-LN block the identity (x + 0) */
static const int k_out_proj[] = {SP_ATTPROJ_W, SP_ATTPROJ_B, SP_FCPROJ_W, SP_FCPROJ_B};

static void zero_out_proj(sp_model *m, int b) {
    float *arenas[3] = {m->params, m->m, m->v};
    for (int a = 0; a < 3; a++) {
        float *slab = sp_model_block(m, arenas[a], b);
        for (size_t k = 0; k < sizeof k_out_proj / sizeof *k_out_proj; k++) {
            const sp_tensor_info *t = &m->bt[k_out_proj[k]];
            memset(slab + t->offset, 0, t->numel * sizeof(float));
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
