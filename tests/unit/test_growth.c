/* Depth operators: block maps, the local transforms on slabs, function preservation, and the
 * branch scale c of the forward/backward.
 *
 * A grown model is built here the way redistribution builds it on one rank (every new block's
 * source slab copied into place, params, m, v and step), then sp_grow_transform runs on it.
 *
 * Tolerances:
 *   maps, transforms, preservation, zero gradients, optimizer reset ... bitwise (memcmp / == 0)
 *   c = 0.5 vs the same model with its output projections halved and c = 1 ... 1e-6 (the two
 *     are equal in exact arithmetic and every factor 0.5 is exact in fp32, so this is expected to
 *     be exact; the margin only covers a BLAS that would change its blocking)
 *   analytic gradient at c = 0.5 vs central differences of the fp32 loss summed in double:
 *     |fd - g| <= 2e-2 |g| + 2e-5, step h = 1e-2. The forward is fp32, so the loss carries
 *     ~1e-7 of rounding noise, ~1e-5 in the difference quotient at this h; a smaller h would
 *     drown in it (see test_model.c). The worst error observed is under 0.1 of the tolerance
 *     (the test prints it), while a missing or doubled c is off by a factor 2. */
#include "sprout/growth.h"
#include "sprout/kernels.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* V, T, C, H, F, L; the kind and its settings (test_preservation_bert swaps them in) */
static sp_spec k_spec = {32, 8, 16, 2, 64, 2, 0, 0, 0, 0};
enum { B = 2, T = 8, NTOK = B * T };
#define SEED    5
#define EVENT   3
#define FD_STEP 1e-2

static const char *const k_ops[] = {"stack", "direct", "interpolate", "zero", "random"};
enum { N_OPS = sizeof k_ops / sizeof *k_ops };

static int32_t g_inp[NTOK], g_tgt[NTOK];

static sp_spec spec_with(int n_layer) {
    sp_spec s = k_spec;
    s.n_layer = n_layer;
    return s;
}

/* ---- the maps ------------------------------------------------------------------------------ */

/* the operator formulas written out independently of src/growth/depth.c */
static sp_block_src expect_src(const char *op, int j, int l, int factor) {
    sp_block_src s = sp_block_one(-1, SP_XF_COPY);
    if (!strcmp(op, "stack") || !strcmp(op, "direct")) s.src = j % l;
    if (!strcmp(op, "interpolate")) s.src = (int)floor((double)j * l / (double)(factor * l));
    if (!strcmp(op, "zero")) {
        s.src = j / factor;
        if (j != s.src * factor) s.xf = SP_XF_ZERO_OUT;
    }
    if (!strcmp(op, "random")) {
        s.src = j < l ? j : -1;
        s.xf = j < l ? SP_XF_COPY : SP_XF_RANDOM;
    }
    return s;
}

static void test_maps(tu_ctx *t) {
    const int cases[][2] = {{2, 4}, {3, 2}, {4, 2}, {1, 3}, {5, 1}}; /* l, factor */
    for (int o = 0; o < N_OPS; o++) {
        tu_check(t, sp_grow_is_depth_op(k_ops[o]), "%s is not a depth op", k_ops[o]);
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            int l = cases[c][0], f = cases[c][1];
            sp_block_map map;
            sp_err err = {0};
            int rc = sp_grow_plan(k_ops[o], l, f, &map, &err);
            tu_check(t, rc == 0, "plan %s %d x%d: %s", k_ops[o], l, f, err.msg);
            if (rc) continue;
            tu_check(t, map.n_old == l && map.n_new == f * l, "plan %s %d x%d: sizes %d -> %d",
                     k_ops[o], l, f, map.n_old, map.n_new);
            for (int j = 0; j < map.n_new; j++) {
                sp_block_src e = expect_src(k_ops[o], j, l, f);
                tu_check(t, map.b[j].src == e.src && map.b[j].xf == e.xf,
                         "plan %s %d x%d: block %d <- (%d, xf %d), want (%d, xf %d)", k_ops[o], l,
                         f, j, map.b[j].src, map.b[j].xf, e.src, e.xf);
            }
            sp_grow_map_free(&map);
        }
    }
    /* one case spelled out, so the formulas above cannot drift with the code */
    static const int want[N_OPS][8] = {{0, 1, 0, 1, 0, 1, 0, 1},
                                       {0, 1, 0, 1, 0, 1, 0, 1},
                                       {0, 0, 0, 0, 1, 1, 1, 1},
                                       {0, 0, 0, 0, 1, 1, 1, 1},
                                       {0, 1, -1, -1, -1, -1, -1, -1}};
    static const int want_xf[N_OPS][8] = {
        {0}, {0}, {0}, {0, 1, 1, 1, 0, 1, 1, 1}, {0, 0, 2, 2, 2, 2, 2, 2}};
    for (int o = 0; o < N_OPS; o++) {
        sp_block_map map;
        sp_err err = {0};
        sp_grow_plan(k_ops[o], 2, 4, &map, &err);
        int ok = map.n_new == 8;
        for (int j = 0; ok && j < 8; j++)
            ok = map.b[j].src == want[o][j] && map.b[j].xf == want_xf[o][j];
        tu_check(t, ok, "plan %s 2 -> 8 differs from the table", k_ops[o]);
        sp_grow_map_free(&map);
    }

    tu_check(t, sp_grow_preserves("zero", 0) && sp_grow_preserves("random", 0),
             "zero/random must claim function preservation");
    tu_check(t,
             !sp_grow_preserves("stack", 0) && !sp_grow_preserves("direct", 0) &&
                 !sp_grow_preserves("interpolate", 0) && !sp_grow_preserves("learn", 0) &&
                 !sp_grow_preserves("ligo", 0),
             "stack/direct/interpolate/learn/unknown must not claim function preservation");
    const char *bad[] = {"ligo", "Stack", "", "zero "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sp_block_map map;
        sp_err err = {0};
        int rc = sp_grow_plan(bad[i], 2, 2, &map, &err);
        char want_msg[64];
        snprintf(want_msg, sizeof want_msg, "growth op '%s' is not a depth operator", bad[i]);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, want_msg) && !map.b,
                 "plan '%s': rc %d, message \"%s\"", bad[i], rc, err.msg);
        tu_check(t, !sp_grow_is_depth_op(bad[i]), "'%s' taken for a depth op", bad[i]);
    }
    /* the table: every row found by its name, depth rows plan, width rows do not */
    for (int i = 0; i < sp_grow_nops; i++) {
        const sp_grow_op *r = &sp_grow_ops[i];
        sp_block_map map;
        sp_err err = {0};
        int depth = r->dim == SP_OP_DEPTH, rc = sp_grow_plan(r->name, 4, 2, &map, &err);
        tu_check(t,
                 sp_grow_op_find(r->name) == r && sp_grow_is_op(r->name) &&
                     sp_grow_is_depth_op(r->name) == depth &&
                     sp_grow_is_width_op(r->name) == !depth && (rc == SP_OK) == depth &&
                     (r->applies & 1u) && (depth ? r->map != NULL : r->inverse != NULL),
                 "op table row %s", r->name);
        if (!rc) sp_grow_map_free(&map);
    }
    /* coalesce_depth: the mean of `factor` adjacent blocks, as one entry with several sources */
    {
        sp_block_map map;
        sp_err err = {0};
        int rc = sp_grow_plan("coalesce_depth", 6, 3, &map, &err), ok = rc == 0 && map.n_new == 2;
        for (int j = 0; ok && j < 2; j++)
            ok = map.b[j].src == 3 * j && map.b[j].n_more == 2 && map.b[j].more[0] == 3 * j + 1 &&
                 map.b[j].more[1] == 3 * j + 2 && map.b[j].scale == 1.0f / 3.0f &&
                 map.b[j].xf == SP_XF_COPY;
        tu_check(t, ok, "coalesce_depth 6 / 3: rc %d (%s)", rc, err.msg);
        if (!rc) sp_grow_map_free(&map);
        rc = sp_grow_plan("coalesce_depth", 5, 2, &map, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, "factor 2 does not divide 5 blocks"),
                 "coalesce_depth 5 / 2: rc %d (%s)", rc, err.msg);
    }
    const int bad_lf[][2] = {{2, 0}, {2, -2}, {0, 2}, {1 << 20, 1 << 12}};
    for (size_t i = 0; i < sizeof bad_lf / sizeof *bad_lf; i++) {
        sp_block_map map;
        sp_err err = {0};
        int rc = sp_grow_plan("zero", bad_lf[i][0], bad_lf[i][1], &map, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, "'zero'") && !map.b,
                 "plan zero %d x%d: rc %d, message \"%s\"", bad_lf[i][0], bad_lf[i][1], rc,
                 err.msg);
    }
}

/* ---- models -------------------------------------------------------------------------------- */

/* The trained-looking source model: init, perturbed so that gains and biases are not 1 and 0
 * (zeroed biases must show), moments and step counts distinct everywhere. */
static int make_old(sp_model *m, int l, tu_ctx *t) {
    sp_err err = {0};
    sp_spec s = spec_with(l);
    if (sp_model_create(m, &s, 0, l, 1, 1, &err)) {
        tu_check(t, 0, "model set-up: %s", err.msg);
        return 1;
    }
    sp_model_init(m, SEED);
    for (size_t i = 0; i < m->numel; i++)
        m->params[i] += 0.05f * (sp_rng_uniform(9, SP_RNG_TEST, 0, i) - 0.5f);
    sp_rng_normal_fill(m->m, m->numel, 1e-3f, 9, SP_RNG_TEST, 1, 0);
    sp_rng_normal_fill(m->v, m->numel, 1e-6f, 9, SP_RNG_TEST, 2, 0);
    for (int i = 0; i <= l; i++) m->steps[i] = 100 + 7 * (uint64_t)i;
    return 0;
}

static void copy_slab(sp_model *dst, int bd, const sp_model *src, int bs) {
    size_t n = dst->block_numel * sizeof(float);
    memcpy(sp_model_block(dst, dst->params, bd), sp_model_block(src, src->params, bs), n);
    memcpy(sp_model_block(dst, dst->m, bd), sp_model_block(src, src->m, bs), n);
    memcpy(sp_model_block(dst, dst->v, bd), sp_model_block(src, src->v, bs), n);
    dst->steps[1 + bd - dst->lo] = src->steps[1 + bs - src->lo];
}

/* What redistribution does on a single rank: the new stage [lo, hi) of map->n_new blocks gets
 * every source slab, and the globals when glob. Fresh blocks (src -1) get stale junk, which the
 * transform must overwrite completely. */
static int make_grown(sp_model *g, int lo, int hi, int glob, const sp_model *old,
                      const sp_block_map *map, tu_ctx *t) {
    sp_err err = {0};
    sp_spec s = spec_with(map->n_new);
    if (sp_model_create(g, &s, lo, hi, glob, glob, &err)) {
        tu_check(t, 0, "grown model set-up: %s", err.msg);
        return 1;
    }
    size_t ng = g->global_numel * sizeof(float);
    memcpy(g->params, old->params, ng);
    memcpy(g->m, old->m, ng);
    memcpy(g->v, old->v, ng);
    g->steps[0] = old->steps[0];
    for (int j = lo; j < hi; j++) {
        if (map->b[j].src >= 0) {
            copy_slab(g, j, old, map->b[j].src);
            continue;
        }
        size_t n = g->block_numel;
        sp_rng_normal_fill(sp_model_block(g, g->params, j), n, 1.0f, 9, SP_RNG_TEST, 10, 0);
        sp_rng_normal_fill(sp_model_block(g, g->m, j), n, 1.0f, 9, SP_RNG_TEST, 11, 0);
        sp_rng_normal_fill(sp_model_block(g, g->v, j), n, 1.0f, 9, SP_RNG_TEST, 12, 0);
        g->steps[1 + j - lo] = 999;
    }
    return 0;
}

/* the GPT-2 init of block b under key (purpose, a_hi), written out from the spec */
static void expect_init(const sp_model *m, int b, uint32_t purpose, uint64_t a_hi, float *out) {
    for (int j = 0; j < SP_BLOCK_NT; j++) {
        const sp_tensor_info *ti = &m->bt[j];
        float *p = out + ti->offset;
        if (ti->ndim == 2) {
            int proj = j == SP_ATTPROJ_W || j == SP_FCPROJ_W;
            float std = proj ? 0.02f / sqrtf(2.0f * (float)m->spec.n_layer) : 0.02f;
            sp_rng_normal_fill(p, ti->numel, std, SEED, purpose, a_hi + 64u * (b + 1) + j, 0);
        } else {
            for (size_t i = 0; i < ti->numel; i++)
                p[i] = (j == SP_LN1_W || j == SP_LN2_W) ? 1.0f : 0.0f;
        }
    }
}

static int is_out_proj(int j) {
    return j == SP_ATTPROJ_W || j == SP_ATTPROJ_B || j == SP_FCPROJ_W || j == SP_FCPROJ_B;
}

static int all_zero(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

static int same(const float *a, const float *b, size_t n) {
    return !memcmp(a, b, n * sizeof(float));
}

/* ---- transforms ---------------------------------------------------------------------------- */

/* every new block of the stage equals what its map entry says, bit for bit */
static void check_blocks(tu_ctx *t, const char *op, const sp_model *g, const sp_model *old,
                         const sp_block_map *map) {
    size_t nb = g->block_numel;
    float *want = malloc(nb * sizeof(float));
    for (int j = g->lo; j < g->hi; j++) {
        const float *p = sp_model_block(g, g->params, j), *m = sp_model_block(g, g->m, j),
                    *v = sp_model_block(g, g->v, j);
        uint64_t step = g->steps[1 + j - g->lo];
        float c = g->plan.scale[j];
        int s = map->b[j].src;
        if (map->b[j].xf == SP_XF_RANDOM) {
            expect_init(g, j, SP_RNG_GROW_INIT, (uint64_t)EVENT << 32, want);
            tu_check(t, same(p, want, nb), "%s: fresh block %d is not the grow-init", op, j);
            tu_check(t, all_zero(m, nb) && all_zero(v, nb) && step == 0 && c == 0.0f,
                     "%s: fresh block %d: moments, step %llu or scale %g not reset", op, j,
                     (unsigned long long)step, c);
            for (int i = 0; i < old->hi; i++)
                tu_check(t, !same(p, sp_model_block(old, old->params, i), nb),
                         "%s: fresh block %d equals old block %d", op, j, i);
            for (int i = g->lo; i < j; i++)
                tu_check(t, !same(p, sp_model_block(g, g->params, i), nb),
                         "%s: fresh block %d equals new block %d", op, j, i);
            continue;
        }
        const float *sp = sp_model_block(old, old->params, s), *sm = sp_model_block(old, old->m, s),
                    *sv = sp_model_block(old, old->v, s);
        tu_check(t, step == old->steps[1 + s] && c == 1.0f,
                 "%s: block %d step %llu scale %g, want source's %llu and 1", op, j,
                 (unsigned long long)step, c, (unsigned long long)old->steps[1 + s]);
        if (map->b[j].xf == SP_XF_COPY) {
            tu_check(t, same(p, sp, nb) && same(m, sm, nb) && same(v, sv, nb),
                     "%s: copied block %d differs from old block %d", op, j, s);
            continue;
        }
        for (int k = 0; k < SP_BLOCK_NT; k++) {
            const sp_tensor_info *ti = &g->bt[k];
            size_t o = ti->offset, n = ti->numel;
            int ok = is_out_proj(k) ? all_zero(p + o, n) && all_zero(m + o, n) && all_zero(v + o, n)
                                    : same(p + o, sp + o, n) && same(m + o, sm + o, n) &&
                                          same(v + o, sv + o, n);
            tu_check(t, ok, "%s: zeroed block %d tensor %s wrong (params, m or v)", op, j,
                     ti->name);
        }
    }
    free(want);
}

static void test_transforms(tu_ctx *t) {
    const int cases[][2] = {{2, 4}, {3, 2}, {2, 3}};
    for (int o = 0; o < N_OPS; o++) {
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            int l = cases[c][0], f = cases[c][1];
            sp_model old, g, part;
            sp_block_map map;
            sp_err err = {0};
            if (make_old(&old, l, t)) return;
            sp_grow_plan(k_ops[o], l, f, &map, &err);
            if (make_grown(&g, 0, map.n_new, 1, &old, &map, t)) return;
            /* a stage holding only the upper half, without globals, as on a pipeline rank */
            int mid = map.n_new / 2;
            if (make_grown(&part, mid, map.n_new, 0, &old, &map, t)) return;
            sp_grow_transform(&g, &map, SEED, EVENT);
            sp_grow_transform(&part, &map, SEED, EVENT);
            check_blocks(t, k_ops[o], &g, &old, &map);
            tu_check(t,
                     same(g.params, old.params, old.global_numel) &&
                         same(g.m, old.m, old.global_numel) && g.steps[0] == old.steps[0],
                     "%s: globals changed", k_ops[o]);
            size_t nbytes = part.numel * sizeof(float);
            tu_check(t,
                     !memcmp(part.params, sp_model_block(&g, g.params, mid), nbytes) &&
                         !memcmp(part.m, sp_model_block(&g, g.m, mid), nbytes) &&
                         !memcmp(part.v, sp_model_block(&g, g.v, mid), nbytes) &&
                         !memcmp(part.plan.scale + part.lo, g.plan.scale + mid,
                                 (size_t)(part.hi - part.lo) * sizeof(float)),
                     "%s %d x%d: the transform depends on the stage layout", k_ops[o], l, f);
            sp_grow_map_free(&map);
            sp_model_free(&part);
            sp_model_free(&g);
            sp_model_free(&old);
        }
    }
}

/* sp_model_init must still be the spec'd GPT-2 init (the parity test pins it against PyTorch) */
static void test_init_key(tu_ctx *t) {
    sp_model m;
    sp_err err = {0};
    sp_spec s = spec_with(3);
    sp_model_create(&m, &s, 1, 3, 0, 1, &err);
    sp_model_init(&m, SEED);
    float *want = malloc(m.block_numel * sizeof(float));
    for (int b = 1; b < 3; b++) {
        expect_init(&m, b, SP_RNG_INIT, 0, want);
        tu_check(t, same(sp_model_block(&m, m.params, b), want, m.block_numel),
                 "sp_model_init block %d is not the documented init", b);
    }
    free(want);
    sp_model_free(&m);
}

/* ---- forward / backward -------------------------------------------------------------------- */

typedef struct run {
    sp_acts a;
    sp_scratch s;
} run;

static int run_create(run *r, const sp_model *m, tu_ctx *t) {
    sp_err err = {0};
    int rc = sp_acts_create(&r->a, m, B, T, &err);
    rc = rc ? rc : sp_scratch_create(&r->s, m, B, T, &err);
    tu_check(t, rc == 0, "activations: %s", err.msg);
    return rc;
}

static void run_free(run *r) {
    sp_acts_free(&r->a);
    sp_scratch_free(&r->s);
}

/* raw logits [NTOK, V] of m into out */
static void logits(const sp_model *m, run *r, float *out) {
    sp_model_embed_forward(m, &r->a, g_inp);
    sp_model_blocks_forward(m, &r->a);
    sp_model_head_forward(m, &r->a, NULL);
    memcpy(out, r->a.probs, (size_t)NTOK * m->spec.vocab * sizeof(float));
}

/* the mean loss, summed in double from the per-token fp32 losses */
static double loss(const sp_model *m, run *r) {
    sp_model_embed_forward(m, &r->a, g_inp);
    sp_model_blocks_forward(m, &r->a);
    sp_model_head_forward(m, &r->a, g_tgt);
    double s = 0;
    for (int i = 0; i < NTOK; i++) s += r->a.losses[i];
    return s / NTOK;
}

static void backward(sp_model *m, run *r) {
    memset(m->grads, 0, m->numel * sizeof(float));
    loss(m, r);
    sp_model_head_backward(m, &r->a, &r->s, g_tgt, 1.0f / NTOK);
    sp_model_blocks_backward(m, &r->a, &r->s, NULL, NULL);
    sp_model_embed_backward(m, &r->a, &r->s, g_inp);
}

/* every op is held to its own claim: preserving ops give bit-identical logits, the others not */
static void test_preservation(tu_ctx *t) {
    size_t nl = (size_t)NTOK * k_spec.vocab;
    float *before = malloc(nl * sizeof(float)), *after = malloc(nl * sizeof(float));
    for (int o = 0; o < N_OPS; o++) {
        for (int f = 2; f <= 3; f++) {
            sp_model old, g;
            sp_block_map map;
            run r0, r1;
            sp_err err = {0};
            if (make_old(&old, 2, t) || run_create(&r0, &old, t)) return;
            sp_grow_plan(k_ops[o], 2, f, &map, &err);
            if (make_grown(&g, 0, map.n_new, 1, &old, &map, t) || run_create(&r1, &g, t)) return;
            sp_grow_transform(&g, &map, SEED, EVENT);
            logits(&old, &r0, before);
            logits(&g, &r1, after);
            int eq = same(before, after, nl);
            if (sp_grow_preserves(k_ops[o], 0))
                tu_check(t, eq, "%s x%d: logits changed (rel %.3g), it claims to preserve them",
                         k_ops[o], f, tu_rel_maxabs(after, before, nl));
            else
                tu_check(t, !eq, "%s x%d: logits unchanged, it claims not to preserve them",
                         k_ops[o], f);

            /* at the growth step: fresh blocks at c = 0 get exactly zero gradient; zeroed
             * blocks get gradient only in their output projections (w and b): everything
             * upstream of them inside the block sees a zero weight */
            backward(&g, &r1);
            for (int j = 0; j < g.hi; j++) {
                const float *dw = sp_model_block(&g, g.grads, j);
                if (map.b[j].xf == SP_XF_RANDOM)
                    tu_check(t, all_zero(dw, g.block_numel),
                             "%s: fresh block %d has a nonzero gradient at c = 0", k_ops[o], j);
                if (map.b[j].xf != SP_XF_ZERO_OUT) continue;
                int ok = 1;
                for (int k = 0; k < SP_BLOCK_NT; k++) {
                    const sp_tensor_info *ti = &g.bt[k];
                    int z = all_zero(dw + ti->offset, ti->numel);
                    ok &= is_out_proj(k) ? !z : z;
                }
                tu_check(t, ok, "%s: zeroed block %d: gradient pattern wrong", k_ops[o], j);
            }
            run_free(&r0);
            run_free(&r1);
            sp_grow_map_free(&map);
            sp_model_free(&g);
            sp_model_free(&old);
        }
    }
    free(before);
    free(after);
}

/* On bert's post-LN blocks every depth operator runs and none preserves the function, as its
 * table row says: zero leaves LN2(LN1(x)), random at c = 0 the same, stack and interpolate copy
 * blocks. Each operator is held to that claim on the logits. */
static void test_preservation_bert(tu_ctx *t) {
    const sp_spec saved = k_spec;
    int kind = sp_kind_find("bert");
    k_spec.kind = kind, k_spec.norm_eps = 1e-12, k_spec.rope_theta = 10000, k_spec.tie_head = 1;
    size_t nl = (size_t)NTOK * k_spec.vocab;
    float *before = malloc(nl * sizeof(float)), *after = malloc(nl * sizeof(float));
    for (int o = 0; kind >= 0 && o < N_OPS; o++) {
        sp_model old, g;
        sp_block_map map;
        run r0, r1;
        sp_err err = {0};
        tu_check(t, !sp_grow_preserves(k_ops[o], kind), "%s claims to preserve bert", k_ops[o]);
        if (make_old(&old, 2, t) || run_create(&r0, &old, t)) break;
        sp_grow_plan(k_ops[o], 2, 2, &map, &err);
        if (make_grown(&g, 0, map.n_new, 1, &old, &map, t) || run_create(&r1, &g, t)) break;
        sp_grow_transform(&g, &map, SEED, EVENT);
        logits(&old, &r0, before);
        logits(&g, &r1, after);
        int finite = 1;
        for (size_t i = 0; i < nl; i++) finite &= isfinite(after[i]) != 0;
        tu_check(t, finite && !same(before, after, nl),
                 "bert %s x2: logits unchanged or not finite, the op claims not to preserve them",
                 k_ops[o]);
        run_free(&r0);
        run_free(&r1);
        sp_grow_map_free(&map);
        sp_model_free(&g);
        sp_model_free(&old);
    }
    tu_check(t, kind >= 0, "no bert kind");
    free(before);
    free(after);
    k_spec = saved;
}

/* c = 0.5 on block 1 against the same function written with halved output projections and
 * c = 1: logits equal, gradients equal except the projections' own, which are half */
static void test_scale_equivalence(tu_ctx *t) {
    sp_model a, b;
    run ra, rb;
    if (make_old(&a, 2, t) || make_old(&b, 2, t)) return;
    if (run_create(&ra, &a, t) || run_create(&rb, &b, t)) return;
    a.plan.scale[1] = 0.5f;
    float *w = sp_model_block(&b, b.params, 1);
    for (int k = 0; k < SP_BLOCK_NT; k++)
        if (is_out_proj(k)) sp_scale(w + b.bt[k].offset, b.bt[k].numel, 0.5f);
    size_t nl = (size_t)NTOK * k_spec.vocab;
    float *la = malloc(nl * sizeof(float)), *lb = malloc(nl * sizeof(float));
    logits(&a, &ra, la);
    logits(&b, &rb, lb);
    double rel = tu_rel_maxabs(la, lb, nl);
    tu_check(t, rel <= 1e-6, "c = 0.5 logits vs halved projections: %.3g", rel);
    backward(&a, &ra);
    backward(&b, &rb);
    float *gb = sp_model_block(&b, b.grads, 1);
    for (int k = 0; k < SP_BLOCK_NT; k++)
        if (is_out_proj(k)) sp_scale(gb + b.bt[k].offset, b.bt[k].numel, 0.5f);
    rel = tu_rel_maxabs(a.grads, b.grads, a.numel);
    tu_check(t, rel <= 1e-6, "c = 0.5 gradients vs halved projections: %.3g", rel);
    free(la);
    free(lb);
    run_free(&ra);
    run_free(&rb);
    sp_model_free(&a);
    sp_model_free(&b);
}

/* analytic gradient with c = 0.5 on block 1 against central differences of the loss */
static void test_scale_fd(tu_ctx *t) {
    sp_model m;
    run r;
    if (make_old(&m, 2, t) || run_create(&r, &m, t)) return;
    m.plan.scale[1] = 0.5f;
    backward(&m, &r);
    /* the largest gradient entry of every tensor of the scaled block and of the block below it,
     * whose gradient flows back through the scaled branches */
    int checked = 0, bad = 0;
    double worst = 0;
    for (int blk = 0; blk < 2; blk++) {
        float *p = sp_model_block(&m, m.params, blk), *g = sp_model_block(&m, m.grads, blk);
        for (int k = 0; k < m.nbt; k++) {
            const sp_tensor_info *ti = &m.bt[k];
            /* bert's key bias: gradient 0 in exact arithmetic, nothing to difference */
            if (strstr(ti->name, "key.bias")) continue;
            size_t best = ti->offset;
            for (size_t i = ti->offset; i < ti->offset + ti->numel; i++)
                if (fabsf(g[i]) > fabsf(g[best])) best = i;
            float x0 = p[best];
            p[best] = x0 + (float)FD_STEP;
            double hp = p[best], lp = loss(&m, &r);
            p[best] = x0 - (float)FD_STEP;
            double hm = p[best], lm = loss(&m, &r);
            p[best] = x0;
            double fd = (lp - lm) / (hp - hm), an = g[best];
            double err = fabs(fd - an), tol = 2e-2 * fabs(an) + 2e-5;
            worst = fmax(worst, err / tol);
            checked++;
            if (err > tol) {
                bad++;
                fprintf(stderr, "  block %d %s[%zu]: fd %.6g analytic %.6g\n", blk, ti->name,
                        best - ti->offset, fd, an);
            }
        }
    }
    tu_check(t, bad == 0, "c = 0.5: %d of %d gradients disagree with finite differences", bad,
             checked);
    printf("growth: %s c = 0.5 FD check, worst error / tolerance %.3f\n", sp_kind_of(&k_spec)->name,
           worst);
    run_free(&r);
    sp_model_free(&m);
}

/* the same on bert's post-LN blocks (G_random ramps its new blocks' c too) */
static void test_scale_fd_bert(tu_ctx *t) {
    const sp_spec saved = k_spec;
    k_spec.kind = sp_kind_find("bert"), k_spec.norm_eps = 1e-12, k_spec.rope_theta = 10000;
    k_spec.tie_head = 1;
    test_scale_fd(t);
    k_spec = saved;
}

static void test_reset_optim(tu_ctx *t) {
    sp_model m;
    if (make_old(&m, 3, t)) return;
    float *p = malloc(m.numel * sizeof(float));
    memcpy(p, m.params, m.numel * sizeof(float));
    sp_grow_reset_optim(&m);
    int steps = 0;
    for (int i = 0; i <= m.hi - m.lo; i++) steps |= m.steps[i] != 0;
    tu_check(t, all_zero(m.m, m.numel) && all_zero(m.v, m.numel) && !steps,
             "reset_optim left moments or step counts");
    tu_check(t, same(p, m.params, m.numel), "reset_optim changed the parameters");
    free(p);
    sp_model_free(&m);
}

int main(void) {
    tu_ctx t = {0};
    for (int i = 0; i < NTOK; i++) {
        g_inp[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 3, (uint64_t)i) % k_spec.vocab);
        g_tgt[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 4, (uint64_t)i) % k_spec.vocab);
    }
    test_maps(&t);
    test_init_key(&t);
    test_transforms(&t);
    test_preservation(&t);
    test_preservation_bert(&t);
    test_scale_equivalence(&t);
    test_scale_fd(&t);
    test_scale_fd_bert(&t);
    test_reset_optim(&t);
    return tu_finish(&t, "growth");
}
