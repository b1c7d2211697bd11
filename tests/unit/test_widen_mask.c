/* widen_zero / widen_random and the fade-in mask: the appended-channel maps written out
 * independently of src/growth/width.c, function preservation at mask_c = 0 (and its failure
 * without the masked norm), the masked forward/backward through the whole model, the c -> 1 end,
 * layout independence, and the errors.
 *
 * Tolerances:
 *   maps, moments, determinism, layout ... bitwise (every entry is a copy, a constant or one
 *     draw of the counter RNG)
 *   logits at mask_c = 0 vs the small model ... max |dlogit| <= 1e-5: the masked norms give the
 *     old channels the small model's values bit for bit, but the wide matmuls reduce over k times
 *     as many terms (the new ones exactly 0) in another blocking (the test prints the value)
 *   plain norm (mask off) after widen_zero ... the logits must move by more than 1e-3
 *   mask_c just below 1 (masked path) vs the mask off (plain path) ... 1e-6 relative, logits and
 *     every gradient: the same function up to (1 - c) ~ 6e-8 and the split sums
 *   analytic gradient at mask_c = 0.5 vs central differences of the fp32 loss summed in double:
 *     |fd - g| <= 2e-2 |g| + 2e-5, step h = 1e-2, as in test_growth.c (the loss carries ~1e-7
 *     of rounding noise, ~1e-5 in the quotient at this h); a mask missing in the backward is off
 *     by a factor 2 (mask_c = 0.5) on the new channels (the test prints the worst ratio) */
#include "sprout/growth.h"
#include "sprout/kernels.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sp_spec k_spec_a = {32, 8, 16, 4, 64, 2, 0, 0, 0, 0}; /* V, T, C, H, F, L */
static const sp_spec k_spec_b = {32, 8, 12, 3, 40, 2, 0, 0, 0, 0}; /* d_ff not 4 C, H = 3 */
enum { B = 2, T = 8, NTOK = B * T };
#define SEED    11
#define EVENT   2
#define FD_STEP 1e-2

static const char *const k_ops[] = {"widen_zero", "widen_random"};

static int32_t g_inp[NTOK], g_tgt[NTOK];

/* ---- harness ------------------------------------------------------------------------------- */

static int same(const float *a, const float *b, size_t n) {
    return !memcmp(a, b, n * sizeof(float));
}

/* the trained-looking model of testutil.h (block 1's branch scale 0.75: the masks must compose
 * with it) */
static int make_model(sp_model *m, const sp_spec *s, tu_ctx *t) {
    return tu_model_trained(m, s, SEED, t);
}

/* dst = op(src) on src's layout */
static int apply(const char *op, int k, const sp_model *src, sp_model *dst, int moments,
                 tu_ctx *t) {
    return tu_grow_width(op, k, src, dst, moments, 0, SEED, EVENT, t);
}

static float *logits(const sp_model *m, tu_ctx *t) {
    return tu_logits(m, g_inp, B, T, t);
}

/* m->grads = dL/dparams of the mean loss; returns the loss */
static double grads(sp_model *m, sp_acts *a, sp_scratch *s) {
    return tu_grads(m, a, s, g_inp, g_tgt);
}

/* ---- the map, written out ------------------------------------------------------------------ */

/* column of large tensor j: old?, and its index in the small tensor (q|k|v per section) */
static int old_col(int j, int c, int d, int D, int f, int *cs) {
    if (j == SP_QKV_W || j == SP_QKV_B) {
        *cs = c / D * d + c % D;
        return c % D < d;
    }
    *cs = c;
    return c < (j == SP_FC_W || j == SP_FC_B ? f : d);
}

/* row of large tensor j (vectors and embeddings: one kind of row, always old) */
static int old_row(int block, int j, int r, int d, int f) {
    if (block < 0 || (j != SP_QKV_W && j != SP_ATTPROJ_W && j != SP_FC_W && j != SP_FCPROJ_W))
        return 1;
    return r < (j == SP_FCPROJ_W ? f : d);
}

/* every entry of one tensor of the widened model (params, m, v) against the formulas */
static int check_tensor(const char *op, const sp_model *s, const sp_model *w, int block, int j) {
    int zero = !strcmp(op, "widen_zero");
    int d = s->spec.d_model, D = w->spec.d_model, f = s->spec.d_ff;
    const sp_tensor_info *ts = block < 0 ? &s->gt[j] : &s->bt[j],
                         *tw = block < 0 ? &w->gt[j] : &w->bt[j];
    const float *arena_s[3] = {s->params, s->m, s->v}, *arena_w[3] = {w->params, w->m, w->v};
    int rows = tw->ndim == 2 ? (int)tw->dims[0] : 1, cols = (int)tw->dims[tw->ndim == 2];
    int cols_s = (int)ts->dims[ts->ndim == 2];
    int gain = block < 0 ? j == SP_LNF_W : (j == SP_LN1_W || j == SP_LN2_W);
    /* the documented key: (seed, GROW_INIT, ((event + 1) << 48) | (1 << 47) | id, element) */
    uint64_t id = block < 0 ? (uint64_t)j : 64u * (uint64_t)(block + 1) + (uint64_t)j;
    float std = (block >= 0 && (j == SP_ATTPROJ_W || j == SP_FCPROJ_W))
                    ? 0.02f / sqrtf(2.0f * (float)s->spec.n_layer)
                    : 0.02f;
    float *rng = malloc(tw->numel * sizeof(float));
    sp_rng_normal_fill(rng, tw->numel, std, SEED, SP_RNG_GROW_INIT,
                       ((uint64_t)(EVENT + 1) << 48) | (1ull << 47) | id, 0);
    int bad = 0;
    for (int ar = 0; ar < 3; ar++) {
        const float *x = (block < 0 ? sp_model_globals(s, (float *)arena_s[ar])
                                    : sp_model_block(s, (float *)arena_s[ar], block)) +
                         ts->offset;
        const float *y = (block < 0 ? sp_model_globals(w, (float *)arena_w[ar])
                                    : sp_model_block(w, (float *)arena_w[ar], block)) +
                         tw->offset;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                int cs, orow = old_row(block, j, r, d, f), ocol = old_col(j, c, d, D, f, &cs);
                size_t e = (size_t)r * cols + c;
                float want;
                if (orow && ocol)
                    want = x[(size_t)r * cols_s + cs];
                else if (ar > 0)
                    want = 0.0f;
                else if (tw->ndim == 1)
                    want = gain ? 1.0f : 0.0f;
                else
                    want = zero && orow ? 0.0f : rng[e];
                bad += memcmp(&y[e], &want, sizeof want) != 0;
            }
    }
    free(rng);
    return bad;
}

static void test_maps(tu_ctx *t) {
    const sp_spec *specs[] = {&k_spec_a, &k_spec_b};
    for (int o = 0; o < 2; o++)
        for (int sp = 0; sp < 2; sp++)
            for (int k = 2; k <= 3; k++) {
                sp_model s, w;
                if (make_model(&s, specs[sp], t)) return;
                if (apply(k_ops[o], k, &s, &w, 1, t)) return;
                int bad = 0;
                for (int j = 0; j < SP_GLOBAL_NT; j++) bad += check_tensor(k_ops[o], &s, &w, -1, j);
                for (int b = 0; b < s.hi; b++)
                    for (int j = 0; j < SP_BLOCK_NT; j++)
                        bad += check_tensor(k_ops[o], &s, &w, b, j);
                tu_check(t, bad == 0, "%s k = %d (C = %d): %d entries differ from the formulas",
                         k_ops[o], k, s.spec.d_model, bad);
                tu_check(t,
                         w.plan.mask_d == s.spec.d_model && w.plan.mask_f == s.spec.d_ff &&
                             w.plan.mask_c == 0.0f && w.plan.mask_out == (o == 1),
                         "%s: mask (%d, %d, %g, %d)", k_ops[o], w.plan.mask_d, w.plan.mask_f,
                         w.plan.mask_c, w.plan.mask_out);
                tu_check(t,
                         !memcmp(w.steps, s.steps, (size_t)(s.hi + 1) * sizeof *s.steps) &&
                             same(w.plan.scale, s.plan.scale, (size_t)s.hi),
                         "%s: step counts or branch scales not kept", k_ops[o]);
                sp_model_free(&w);
                if (apply(k_ops[o], k, &s, &w, 0, t) == 0) {
                    int z = 1;
                    for (size_t i = 0; i < w.numel; i++) z &= w.m[i] == 0.0f && w.v[i] == 0.0f;
                    for (int i = 0; i <= w.hi; i++) z &= w.steps[i] == 0;
                    tu_check(t, z, "%s moments = 0: m, v or step counts not zero", k_ops[o]);
                    sp_model_free(&w);
                }
                sp_model_free(&s);
            }
    for (int o = 0; o < 2; o++) {
        tu_check(t, sp_grow_is_width_op(k_ops[o]) && sp_grow_preserves(k_ops[o], 0),
                 "%s: not a width op or not claimed function-preserving", k_ops[o]);
        sp_spec s;
        sp_err err = {0};
        int rc = sp_grow_width_spec(k_ops[o], &k_spec_b, 3, &s, &err);
        tu_check(t, rc == 0 && s.d_model == 36 && s.n_head == 9 && s.d_ff == 120,
                 "%s k = 3 spec: rc %d (%s)", k_ops[o], rc, err.msg);
    }
}

/* ---- function ------------------------------------------------------------------------------ */

static void test_preservation(tu_ctx *t) {
    const sp_spec *specs[] = {&k_spec_a, &k_spec_b};
    double worst = 0;
    for (int o = 0; o < 2; o++)
        for (int sp = 0; sp < 2; sp++)
            for (int k = 2; k <= 3; k++) {
                sp_model s, w;
                if (make_model(&s, specs[sp], t)) return;
                if (apply(k_ops[o], k, &s, &w, 1, t)) return;
                size_t n = (size_t)NTOK * s.spec.vocab;
                float *ls = logits(&s, t), *lw = logits(&w, t);
                double dl = tu_max_abs_diff(ls, lw, n);
                worst = fmax(worst, dl);
                printf("widen_mask: %-12s k = %d, C = %2d -> %2d, mask_c = 0: max |dlogit| = "
                       "%.3g\n",
                       k_ops[o], k, s.spec.d_model, w.spec.d_model, dl);
                tu_check(t, dl <= 1e-5, "%s k = %d (C = %d): max |dlogit| = %.3g > 1e-5", k_ops[o],
                         k, s.spec.d_model, dl);
                if (o == 0) {
                    /* the plain LayerNorm averages over the zero channels too: not preserving */
                    w.plan.mask_d = 0;
                    float *lp = logits(&w, t);
                    double dp = tu_max_abs_diff(ls, lp, n);
                    printf("widen_mask: widen_zero   k = %d, C = %2d, plain norm: max |dlogit| = "
                           "%.3g\n",
                           k, s.spec.d_model, dp);
                    tu_check(t, dp > 1e-3,
                             "widen_zero with the plain norm kept the logits (%.3g): LayerNorm "
                             "should see the zero channels",
                             dp);
                    free(lp);
                }
                free(ls);
                free(lw);
                sp_model_free(&w);
                sp_model_free(&s);
            }
    printf("widen_mask: worst max |dlogit| at mask_c = 0: %.3g\n", worst);
}

/* logits and gradients of the masked path at mask_c just below 1 against the plain path */
static void test_c_one(tu_ctx *t) {
    for (int o = 0; o < 2; o++) {
        sp_model s, w;
        sp_acts a;
        sp_scratch sc;
        sp_err err = {0};
        if (make_model(&s, &k_spec_a, t) || apply(k_ops[o], 2, &s, &w, 1, t)) return;
        if (sp_acts_create(&a, &w, B, T, &err) || sp_scratch_create(&sc, &w, B, T, &err)) {
            tu_check(t, 0, "set-up: %s", err.msg);
            return;
        }
        double el = INFINITY, eg = INFINITY;
        tu_mask_near_one(&w, &a, &sc, g_inp, g_tgt, &el, &eg, t);
        printf("widen_mask: %-12s mask_c = 1 - 2^-24 vs plain: logits rel %.3g, grads rel %.3g\n",
               k_ops[o], el, eg);
        tu_check(t, el <= 1e-6 && eg <= 1e-6,
                 "%s: masked path at c -> 1 vs plain: logits rel %.3g, grads rel %.3g", k_ops[o],
                 el, eg);
        sp_scratch_free(&sc);
        sp_acts_free(&a);
        sp_model_free(&w);
        sp_model_free(&s);
    }
}

/* FD of one parameter; returns error / tolerance */
static double fd_one(sp_model *m, sp_acts *a, float *p, double an, const char *what, int *bad) {
    return tu_fd_check(m, a, g_inp, g_tgt, p, an, FD_STEP, what, bad);
}

/* Whole-model gradient at mask_c = 0.5: for every tensor of both blocks and the globals, the
 * largest gradient entry among its old entries and among its new ones (the classification of the
 * map check), so that every mask of the backward is on some checked path. */
static void test_fd(tu_ctx *t) {
    for (int o = 0; o < 2; o++) {
        sp_model s, w;
        sp_acts a;
        sp_scratch sc;
        sp_err err = {0};
        if (make_model(&s, &k_spec_a, t) || apply(k_ops[o], 2, &s, &w, 1, t)) return;
        if (sp_acts_create(&a, &w, B, T, &err) || sp_scratch_create(&sc, &w, B, T, &err)) {
            tu_check(t, 0, "set-up: %s", err.msg);
            return;
        }
        /* move the new parameters away from their special values, so that every path carries
         * gradient (widen_zero's zero blocks and embedding columns included) */
        for (size_t i = 0; i < w.numel; i++)
            w.params[i] += 0.05f * (sp_rng_uniform(9, SP_RNG_TEST, 5, i) - 0.5f);
        w.plan.mask_c = 0.5f;
        grads(&w, &a, &sc);
        float *g = malloc(w.numel * sizeof(float));
        memcpy(g, w.grads, w.numel * sizeof(float));
        int checked = 0, bad = 0, d = s.spec.d_model, D = w.spec.d_model, f = s.spec.d_ff;
        double worst = 0;
        for (int blk = -1; blk < w.hi; blk++) {
            int nt = blk < 0 ? SP_GLOBAL_NT : SP_BLOCK_NT;
            const sp_tensor_info *tab = blk < 0 ? w.gt : w.bt;
            size_t base = blk < 0 ? 0 : (size_t)(sp_model_block(&w, w.params, blk) - w.params);
            for (int j = 0; j < nt; j++) {
                const sp_tensor_info *ti = &tab[j];
                size_t cols = ti->ndim == 2 ? (size_t)ti->dims[1] : ti->numel, best[2] = {0, 0};
                const float *gt = g + base + ti->offset;
                for (size_t e = 0; e < ti->numel; e++) {
                    int cs, r = (int)(e / cols), c = (int)(e % cols);
                    int old = old_row(blk, j, r, d, f) && old_col(j, c, d, D, f, &cs);
                    if (fabsf(gt[e]) > fabsf(gt[best[old]])) best[old] = e;
                }
                for (int old = 0; old < 2; old++) {
                    size_t e = best[old];
                    char what[96];
                    snprintf(what, sizeof what, "%s block %d %s[%zu] (%s)", k_ops[o], blk, ti->name,
                             e, old ? "old" : "new");
                    worst = fmax(
                        worst, fd_one(&w, &a, w.params + base + ti->offset + e, gt[e], what, &bad));
                    checked++;
                }
            }
        }
        tu_check(t, bad == 0, "%s mask_c = 0.5: %d of %d gradients disagree with FD", k_ops[o], bad,
                 checked);
        printf("widen_mask: %-12s mask_c = 0.5 FD check of %d gradients, worst error / tolerance "
               "%.3f\n",
               k_ops[o], checked, worst);
        free(g);
        sp_scratch_free(&sc);
        sp_acts_free(&a);
        sp_model_free(&w);
        sp_model_free(&s);
    }
}

/* ---- layout, determinism, errors ----------------------------------------------------------- */

/* a stage holding block 1 alone (no globals), and one holding only the globals, as on pipeline
 * ranks, give the full model's slabs bit for bit */
static void test_layout(tu_ctx *t) {
    for (int o = 0; o < 2; o++) {
        sp_model s, w, w2, part, pw, glob, gw;
        sp_err err = {0};
        if (make_model(&s, &k_spec_a, t) || apply(k_ops[o], 2, &s, &w, 1, t) ||
            apply(k_ops[o], 2, &s, &w2, 1, t))
            return;
        tu_check(t,
                 same(w.params, w2.params, w.numel) && same(w.m, w2.m, w.numel) &&
                     same(w.v, w2.v, w.numel),
                 "%s is not deterministic", k_ops[o]);
        if (sp_model_create(&part, &s.spec, 1, 2, 0, 0, &err) ||
            sp_model_create(&glob, &s.spec, 0, 0, 1, 1, &err)) {
            tu_check(t, 0, "stage set-up: %s", err.msg);
            return;
        }
        size_t nb = s.block_numel * sizeof(float), ng = s.global_numel * sizeof(float);
        memcpy(part.params, sp_model_block(&s, s.params, 1), nb);
        memcpy(part.m, sp_model_block(&s, s.m, 1), nb);
        memcpy(part.v, sp_model_block(&s, s.v, 1), nb);
        memcpy(glob.params, s.params, ng);
        memcpy(glob.m, s.m, ng);
        memcpy(glob.v, s.v, ng);
        if (apply(k_ops[o], 2, &part, &pw, 1, t) == 0) {
            size_t n = pw.block_numel;
            tu_check(t,
                     pw.numel == n && same(pw.params, sp_model_block(&w, w.params, 1), n) &&
                         same(pw.m, sp_model_block(&w, w.m, 1), n) &&
                         same(pw.v, sp_model_block(&w, w.v, 1), n),
                     "%s: block 1 depends on the stage layout", k_ops[o]);
            sp_model_free(&pw);
        }
        if (apply(k_ops[o], 2, &glob, &gw, 1, t) == 0) {
            size_t n = gw.global_numel;
            tu_check(t,
                     gw.numel == n && same(gw.params, w.params, n) && same(gw.m, w.m, n) &&
                         same(gw.v, w.v, n),
                     "%s: the globals depend on the stage layout", k_ops[o]);
            sp_model_free(&gw);
        }
        /* another event draws other values */
        sp_model e3;
        sp_model_create(&e3, &w.spec, 0, s.hi, 1, 1, &err);
        sp_grow_width(k_ops[o], 2, &s, &e3, 1, 0, SEED, EVENT + 1, &err);
        tu_check(t, !same(e3.params, w.params, e3.numel), "%s ignores the event", k_ops[o]);

        /* a src whose own fade-in is still running cannot be widened again */
        sp_model ww;
        sp_spec s2;
        sp_grow_width_spec("decoalesce_width", &w.spec, 2, &s2, &err);
        sp_model_create(&ww, &s2, 0, s.hi, 1, 1, &err);
        err = (sp_err){0};
        w.plan.mask_c = 0.5f;
        int rc = sp_grow_width("decoalesce_width", 2, &w, &ww, 1, 0, SEED, EVENT, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, "decoalesce_width: the channels of an"),
                 "widening a model with an active mask: rc %d (%s)", rc, err.msg);
        w.plan.mask_c = 1.0f; /* ramp over: allowed, and the other ops leave the mask off */
        rc = sp_grow_width("decoalesce_width", 2, &w, &ww, 1, 0, SEED, EVENT, &err);
        tu_check(t, rc == 0 && ww.plan.mask_d == 0 && ww.plan.mask_c == 1.0f && !ww.plan.mask_out,
                 "decoalesce_width after a finished ramp: rc %d, mask (%d, %g)", rc, ww.plan.mask_d,
                 ww.plan.mask_c);
        sp_model_free(&ww);
        sp_model_free(&e3);
        sp_model_free(&glob);
        sp_model_free(&part);
        sp_model_free(&w2);
        sp_model_free(&w);
        sp_model_free(&s);
    }
}

int main(void) {
    tu_ctx t = {0};
    for (int i = 0; i < NTOK; i++) {
        g_inp[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 3, (uint64_t)i) % k_spec_a.vocab);
        g_tgt[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 4, (uint64_t)i) % k_spec_a.vocab);
    }
    test_maps(&t);
    test_preservation(&t);
    test_c_one(&t);
    test_fd(&t);
    test_layout(&t);
    return tu_finish(&t, "widen_mask");
}
