/* The width operators on the llama (untied and tied head) and bert block kinds, whose weights are
 * nn.Linear's [out, in]: the maps written out per tensor name (the consumed axis is the columns),
 * function preservation, the k = 2 round trip, layout independence, the appended channels of
 * widen_zero / widen_random with the fade-in mask (masked RMSNorm on llama, masked post-LN
 * LayerNorms on bert) and the table's claims.
 *
 * Tolerances:
 *   decoalesce_width and append maps, coalesce_width(decoalesce_width(M)) for k = 2, layout ...
 *     bitwise: every step is a copy, a constant, a division by 2 or 4, a sum/average of equal
 *     values, or one draw of the counter RNG
 *   widen_direct: entries a_J W[I mod r, J mod c] ... 1e-5 relative; group sums over the copies
 *     of a column ... 1e-6 |W| + 1e-9 (fp32 rounding of the coefficients and products)
 *   decoalesce_width / widen_direct logits, and widen_zero / widen_random logits at mask_c = 0,
 *     vs the small model ... 1e-5 relative (max |dlogit| over max |logit|): equal in exact
 *     arithmetic, but the wide matmuls and norms sum k times as many terms in another order (the
 *     test prints the measured value)
 *   coalesce_width on a non-symmetric model, the appended model without its mask ... the logits
 *     must move by more than 1e-3 relative
 *   masked path at mask_c = 1 - 2^-24 vs the plain path ... 1e-6 relative, logits and gradients
 *   gradients at mask_c = 0.5 vs central differences (step 1e-2) of the fp32 loss summed in
 *     double ... |fd - g| <= 2e-2 |g| + 2e-5, as in test_widen_mask.c */
#include "sprout/growth.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 8, NTOK = B * T };
#define SEED    11
#define EVENT   2
#define NOISE   0.05
#define FD_STEP 1e-2

/* V, T, C, H, F, L, kind, tie_head, norm_eps, rope_theta; the kind set by the case */
static const sp_spec k_spec_2 = {32, 8, 16, 4, 32, 2, 0, 0, 1e-5, 10000.0};
static const sp_spec k_spec_3 = {32, 8, 12, 3, 24, 2, 0, 0, 1e-5, 10000.0};

/* the cases: a kind, its head, and the names of its tensors whose columns are consumed (split)
 * and of the norm feeding the tied head (divided by k) */
typedef struct kind_case {
    const char *kind;
    int tie_head;
    const char *const *split, *const *tied;
} kind_case;

static const char *const k_llama_split[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                            "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                            "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                            "mlp.down_proj.weight",    NULL};
static const char *const k_llama_tied[] = {"model.norm.weight", NULL};
static const char *const k_bert_split[] = {"attention.self.query.weight",
                                           "attention.self.key.weight",
                                           "attention.self.value.weight",
                                           "attention.output.dense.weight",
                                           "intermediate.dense.weight",
                                           "output.dense.weight",
                                           "cls.predictions.transform.dense.weight",
                                           NULL};
static const char *const k_bert_tied[] = {"cls.predictions.transform.LayerNorm.weight",
                                          "cls.predictions.transform.LayerNorm.bias", NULL};

static const kind_case k_cases[] = {
    {"llama", 0, k_llama_split, k_llama_tied},
    {"llama", 1, k_llama_split, k_llama_tied},
    {"bert", 1, k_bert_split, k_bert_tied},
};
#define NCASES ((int)(sizeof k_cases / sizeof k_cases[0]))

static int32_t g_inp[NTOK];

/* ---- helpers ------------------------------------------------------------------------------- */

static int same(const float *a, const float *b, size_t n) {
    return !memcmp(a, b, n * sizeof(float));
}

static int listed(const char *const *names, const char *name) {
    for (; *names; names++)
        if (!strcmp(*names, name)) return 1;
    return 0;
}

static sp_spec case_spec(const kind_case *c, const sp_spec *base) {
    sp_spec s = *base;
    s.kind = sp_kind_find(c->kind);
    s.tie_head = c->tie_head;
    /* bert's F default is 4 C; any F works, but keep the kinds apart */
    if (!strcmp(c->kind, "bert")) s.d_ff = 4 * s.d_model;
    return s;
}

static const char *case_name(const kind_case *c) {
    return !strcmp(c->kind, "llama") ? (c->tie_head ? "llama tied" : "llama untied") : c->kind;
}

/* the trained-looking model of testutil.h */
static int make_model(sp_model *m, const kind_case *c, const sp_spec *base, tu_ctx *t) {
    sp_spec s = case_spec(c, base);
    return tu_model_trained(m, &s, SEED, t);
}

static int apply(const char *op, int k, const sp_model *src, sp_model *dst, double noise,
                 tu_ctx *t) {
    return tu_grow_width(op, k, src, dst, 1, noise, SEED, EVENT, t);
}

static float *logits(const sp_model *m, tu_ctx *t) {
    return tu_logits(m, g_inp, B, T, t);
}

/* one slab's tensor table and base (block >= 0, or the globals) */
static const sp_tensor_info *table(const sp_model *m, int block, int *n) {
    *n = block < 0 ? m->ngt : m->nbt;
    return block < 0 ? m->gt : m->bt;
}

static const float *slab(const sp_model *m, const float *arena, int block) {
    return block < 0 ? sp_model_globals(m, (float *)arena)
                     : sp_model_block(m, (float *)arena, block);
}

/* ---- the map, written out ------------------------------------------------------------------ */

/* Every entry of every tensor of the widened model against docs/growth.md in the [out, in]
 * layout: W'[I, J] = W[I mod r, J mod c] (the strided fold, the same on rows and columns, the
 * token and position axes of the same size on both sides), divided by k where the columns are
 * consumed and again for the tied norm; m the same, v the squares. */
static void check_map(tu_ctx *t, const kind_case *c, const sp_model *s, const sp_model *w, int k) {
    const float *as[3] = {s->params, s->m, s->v}, *aw[3] = {w->params, w->m, w->v};
    int bad = 0, nsplit = 0, ntied = 0;
    for (int b = -1; b < s->hi; b++) {
        int n, nw;
        const sp_tensor_info *ts = table(s, b, &n), *tw = table(w, b, &nw);
        if (n != nw) bad++;
        for (int i = 0; i < n && n == nw; i++) {
            int split = listed(c->split, ts[i].name), tied = listed(c->tied, ts[i].name);
            nsplit += split && b <= 0, ntied += tied;
            size_t r = ts[i].ndim == 2 ? (size_t)ts[i].dims[0] : 1;
            size_t cs = (size_t)ts[i].dims[ts[i].ndim == 2];
            size_t R = tw[i].ndim == 2 ? (size_t)tw[i].dims[0] : 1;
            size_t Cw = (size_t)tw[i].dims[tw[i].ndim == 2];
            for (int ar = 0; ar < 3; ar++) {
                const float *x = slab(s, as[ar], b) + ts[i].offset;
                const float *y = slab(w, aw[ar], b) + tw[i].offset;
                float f = (float)((split ? k : 1) * (tied ? k : 1));
                if (ar == 2) f *= f;
                for (size_t I = 0; I < R; I++)
                    for (size_t J = 0; J < Cw; J++) {
                        float want = x[I % r * cs + J % cs];
                        if (f != 1.0f) want /= f;
                        bad += y[I * Cw + J] != want;
                    }
            }
        }
    }
    int want_split = 0, want_tied = 0;
    while (c->split[want_split]) want_split++;
    while (c->tied[want_tied]) want_tied++;
    tu_check(t, nsplit == want_split && ntied == want_tied,
             "%s: %d of %d split and %d of %d tied tensors found by name", case_name(c), nsplit,
             want_split, ntied, want_tied);
    tu_check(t, bad == 0, "%s decoalesce_width k = %d: %d entries off the map", case_name(c), k,
             bad);
}

/* widen_direct on tensor i of slab b: one coefficient a_J per consumed column J (the same on
 * every row), summing to 1 over the copies of a small column, not all 1/k */
static void check_direct(tu_ctx *t, const kind_case *c, const sp_model *s, const sp_model *w, int b,
                         int i, int k) {
    int n, nw;
    const sp_tensor_info *ts = &table(s, b, &n)[i], *tw = &table(w, b, &nw)[i];
    const float *x = slab(s, s->params, b) + ts->offset, *y = slab(w, w->params, b) + tw->offset;
    size_t r = (size_t)ts->dims[0], cs = (size_t)ts->dims[1], R = (size_t)tw->dims[0],
           Cw = (size_t)tw->dims[1];
    int row_bad = 0, sum_bad = 0;
    double spread = 0;
    for (size_t J = 0; J < Cw; J++) {
        double a = (double)y[J] / x[J % cs]; /* read off row 0 */
        spread = fmax(spread, fabs(a - 1.0 / k));
        for (size_t I = 0; I < R; I++) {
            double want = a * x[I % r * cs + J % cs];
            row_bad += fabs(y[I * Cw + J] - want) > 1e-5 * fabs(want) + 1e-9;
        }
    }
    for (size_t I = 0; I < R; I++)
        for (size_t j = 0; j < cs; j++) {
            double sum = 0, want = x[I % r * cs + j];
            for (int tt = 0; tt < k; tt++) sum += y[I * Cw + j + (size_t)tt * cs];
            sum_bad += fabs(sum - want) > 1e-6 * fabs(want) + 1e-9;
        }
    tu_check(t, row_bad == 0, "%s widen_direct %s: %d entries not a_J times the weight",
             case_name(c), ts->name, row_bad);
    tu_check(t, sum_bad == 0, "%s widen_direct %s: %d group sums differ from the weight",
             case_name(c), ts->name, sum_bad);
    tu_check(t, spread > 1e-3, "%s widen_direct %s: a_J all 1/k (spread %.3g)", case_name(c),
             ts->name, spread);
}

static void test_maps(tu_ctx *t, const kind_case *c) {
    const sp_spec *bases[] = {&k_spec_2, &k_spec_3};
    for (int k = 2; k <= 3; k++) {
        sp_model s, w;
        if (make_model(&s, c, bases[k - 2], t)) return;
        if (apply("decoalesce_width", k, &s, &w, 0, t) == 0) {
            check_map(t, c, &s, &w, k);
            sp_model_free(&w);
        }
        if (apply("widen_direct", k, &s, &w, NOISE, t) == 0) {
            for (int b = -1; b < s.hi; b++) {
                int n;
                const sp_tensor_info *ts = table(&s, b, &n);
                for (int i = 0; i < n; i++)
                    if (listed(c->split, ts[i].name)) check_direct(t, c, &s, &w, b, i, k);
            }
            sp_model_free(&w);
        }
        sp_model_free(&s);
    }
}

/* ---- function ------------------------------------------------------------------------------ */

static void test_preservation(tu_ctx *t, const kind_case *c) {
    const char *ops[] = {"decoalesce_width", "widen_direct"};
    const sp_spec *bases[] = {&k_spec_2, &k_spec_3};
    for (int k = 2; k <= 3; k++)
        for (int o = 0; o < 2; o++) {
            sp_model s, w;
            if (make_model(&s, c, bases[k - 2], t)) return;
            if (apply(ops[o], k, &s, &w, NOISE, t)) {
                sp_model_free(&s);
                return;
            }
            float *ls = logits(&s, t), *lw = logits(&w, t);
            if (ls && lw) {
                double rel = tu_rel_maxabs(lw, ls, (size_t)NTOK * s.spec.vocab);
                printf("width_kinds: %-12s %-16s k = %d, C = %2d -> %2d: rel |dlogit| = %.3g\n",
                       case_name(c), ops[o], k, s.spec.d_model, w.spec.d_model, rel);
                tu_check(t, rel <= 1e-5, "%s %s k = %d: rel |dlogit| = %.3g > 1e-5", case_name(c),
                         ops[o], k, rel);
            }
            free(ls);
            free(lw);
            sp_model_free(&w);
            sp_model_free(&s);
        }

    /* coalescing a model whose copies are not symmetric is a projection: the function moves */
    sp_model l, s;
    if (make_model(&l, c, &k_spec_2, t)) return;
    if (apply("coalesce_width", 2, &l, &s, 0, t) == 0) {
        float *ll = logits(&l, t), *ls = logits(&s, t);
        if (ll && ls) {
            double rel = tu_rel_maxabs(ls, ll, (size_t)NTOK * l.spec.vocab);
            tu_check(t, rel > 1e-3, "%s coalesce_width kept the logits (rel %.3g)", case_name(c),
                     rel);
        }
        free(ll);
        free(ls);
        sp_model_free(&s);
    }
    sp_model_free(&l);
}

/* ---- round trip and layout ----------------------------------------------------------------- */

static void test_roundtrip(tu_ctx *t, const kind_case *c) {
    sp_model s, w, back;
    if (make_model(&s, c, &k_spec_2, t)) return;
    if (apply("decoalesce_width", 2, &s, &w, 0, t) == 0) {
        if (apply("coalesce_width", 2, &w, &back, 0, t) == 0) {
            size_t n = s.numel;
            tu_check(t, sp_spec_equal(&back.spec, &s.spec), "%s: spec did not come back",
                     case_name(c));
            tu_check(t,
                     back.numel == n && same(back.params, s.params, n) && same(back.m, s.m, n) &&
                         same(back.v, s.v, n),
                     "%s k = 2 round trip: params, m or v differ (params %.3g)", case_name(c),
                     tu_max_abs_diff(back.params, s.params, n));
            sp_model_free(&back);
        }
        sp_model_free(&w);
    }
    sp_model_free(&s);
}

/* a stage holding block 1 alone, without globals, as on a pipeline rank, and one holding the
 * globals alone (the head norm's compensation among them) map their slabs as the whole model
 * does */
static void test_layout(tu_ctx *t, const kind_case *c) {
    const char *ops[] = {"decoalesce_width", "widen_direct", "coalesce_width", "widen_zero",
                         "widen_random"};
    sp_model s, part, glob;
    if (make_model(&s, c, &k_spec_2, t)) return;
    if (tu_stage(&part, &s, 1, 2, 0, t) || tu_stage(&glob, &s, 0, 0, 1, t)) {
        sp_model_free(&s);
        return;
    }
    for (int o = 0; o < 5; o++) {
        sp_model w, pw, gw;
        if (apply(ops[o], 2, &s, &w, NOISE, t)) break;
        if (apply(ops[o], 2, &part, &pw, NOISE, t) == 0) {
            size_t n = pw.block_numel;
            tu_check(t,
                     pw.numel == n && same(pw.params, sp_model_block(&w, w.params, 1), n) &&
                         same(pw.m, sp_model_block(&w, w.m, 1), n) &&
                         same(pw.v, sp_model_block(&w, w.v, 1), n) && pw.steps[1] == w.steps[2],
                     "%s %s: a block depends on the stage layout", case_name(c), ops[o]);
            sp_model_free(&pw);
        }
        if (apply(ops[o], 2, &glob, &gw, NOISE, t) == 0) {
            size_t n = gw.global_numel;
            tu_check(t,
                     gw.numel == n && same(gw.params, w.params, n) && same(gw.m, w.m, n) &&
                         same(gw.v, w.v, n),
                     "%s %s: the globals depend on the stage layout", case_name(c), ops[o]);
            sp_model_free(&gw);
        }
        sp_model_free(&w);
    }
    sp_model_free(&glob);
    sp_model_free(&part);
    sp_model_free(&s);
}

/* ---- appended channels: widen_zero, widen_random ---------------------------------------- */

static int32_t g_tgt[NTOK];

/* m->grads = dL/dparams of the mean loss (every target counts); returns the loss */
static double grads(sp_model *m, sp_acts *a, sp_scratch *s) {
    return tu_grads(m, a, s, g_inp, g_tgt);
}

/* entry e of tensor i of slab b of the widened model holds an old channel on every axis: its
 * indices lie inside the small tensor (copy 0 of the fold; fixed axes are the same size) */
static int old_entry(const sp_tensor_info *ts, const sp_tensor_info *tw, size_t e) {
    size_t cw = (size_t)tw->dims[tw->ndim == 2], cs = (size_t)ts->dims[ts->ndim == 2];
    size_t rs = ts->ndim == 2 ? (size_t)ts->dims[0] : 1;
    return e / cw < rs && e % cw < cs;
}

/* the old entries in place (params, m, v, bit for bit), new moments 0, new vector entries 1 for
 * norm gains and 0 otherwise; widen_zero: old inputs reach new outputs through 0 */
static void check_append_map(tu_ctx *t, const kind_case *c, const char *op, const sp_model *s,
                             const sp_model *w) {
    const float *as[3] = {s->params, s->m, s->v}, *aw[3] = {w->params, w->m, w->v};
    int bad = 0, zero = !strcmp(op, "widen_zero");
    for (int b = -1; b < s->hi; b++) {
        int n, nw;
        const sp_tensor_info *ts = table(s, b, &n), *tw = table(w, b, &nw);
        for (int i = 0; i < n; i++) {
            size_t cw = (size_t)tw[i].dims[tw[i].ndim == 2],
                   cs = (size_t)ts[i].dims[ts[i].ndim == 2];
            int split = listed(c->split, ts[i].name);
            for (int ar = 0; ar < 3; ar++) {
                const float *x = slab(s, as[ar], b) + ts[i].offset;
                const float *y = slab(w, aw[ar], b) + tw[i].offset;
                for (size_t e = 0; e < tw[i].numel; e++) {
                    size_t I = e / cw, J = e % cw;
                    if (old_entry(&ts[i], &tw[i], e))
                        bad += y[e] != x[I * cs + J];
                    else if (ar > 0)
                        bad += y[e] != 0.0f;
                    else if (tw[i].ndim == 1)
                        bad += y[e] != (ts[i].gain ? 1.0f : 0.0f);
                    /* [out, in]: an old column (input) into a new row (output) */
                    else if (zero && split && J < cs)
                        bad += y[e] != 0.0f;
                }
            }
        }
    }
    tu_check(t, bad == 0, "%s %s: %d entries off the append map", case_name(c), op, bad);
}

static const char *const k_append[] = {"widen_zero", "widen_random"};

static void test_append(tu_ctx *t, const kind_case *c) {
    const sp_spec *bases[] = {&k_spec_2, &k_spec_3};
    for (int o = 0; o < 2; o++)
        for (int k = 2; k <= 3; k++) {
            sp_model s, w;
            if (make_model(&s, c, bases[k - 2], t)) return;
            if (apply(k_append[o], k, &s, &w, 0, t)) {
                sp_model_free(&s);
                return;
            }
            tu_check(t,
                     w.plan.mask_d == s.spec.d_model && w.plan.mask_f == s.spec.d_ff &&
                         w.plan.mask_c == 0.0f && w.plan.mask_out == (o == 1),
                     "%s %s: the mask is not set", case_name(c), k_append[o]);
            check_append_map(t, c, k_append[o], &s, &w);
            size_t nl = (size_t)NTOK * s.spec.vocab;
            float *ls = logits(&s, t), *lw = logits(&w, t);
            if (ls && lw) {
                double rel = tu_rel_maxabs(lw, ls, nl);
                printf("width_kinds: %-12s %-16s k = %d, mask_c = 0: rel |dlogit| = %.3g\n",
                       case_name(c), k_append[o], k, rel);
                tu_check(t, rel <= 1e-5, "%s %s k = %d, mask_c = 0: rel |dlogit| = %.3g > 1e-5",
                         case_name(c), k_append[o], k, rel);
                /* the plain norm sees the zero (or random) channels: the function moves */
                w.plan.mask_d = 0;
                float *lp = logits(&w, t);
                double dp = lp ? tu_rel_maxabs(lp, ls, nl) : 0;
                tu_check(t, dp > 1e-3, "%s %s k = %d: the logits without the mask kept (%.3g)",
                         case_name(c), k_append[o], k, dp);
                free(lp);
            }
            free(ls);
            free(lw);
            sp_model_free(&w);
            sp_model_free(&s);
        }
}

/* FD of one parameter (testutil.h); returns error / tolerance */
static double fd_one(sp_model *m, sp_acts *a, float *p, double an, const char *what, int *bad) {
    return tu_fd_check(m, a, g_inp, g_tgt, p, an, FD_STEP, what, bad);
}

/* The masked path through the whole model: at mask_c just below 1 it agrees with the plain path
 * (logits and every gradient, 1e-6 relative); at mask_c = 0.5 the largest old and the largest new
 * gradient entry of every tensor agree with central differences of the loss, so every mask of
 * the backward lies on a checked path. */
static void test_masked_grads(tu_ctx *t, const kind_case *c) {
    for (int o = 0; o < 2; o++) {
        sp_model s, w;
        sp_acts a;
        sp_scratch sc;
        sp_err err = {0};
        if (make_model(&s, c, &k_spec_2, t)) return;
        if (apply(k_append[o], 2, &s, &w, 0, t)) {
            sp_model_free(&s);
            return;
        }
        if (sp_acts_create(&a, &w, B, T, &err) || sp_scratch_create(&sc, &w, B, T, &err)) {
            tu_check(t, 0, "set-up: %s", err.msg);
            return;
        }
        /* away from the special values of the new entries, so that every path carries gradient */
        for (size_t i = 0; i < w.numel; i++)
            w.params[i] += 0.05f * (sp_rng_uniform(9, SP_RNG_TEST, 5, i) - 0.5f);
        double el = INFINITY, eg = INFINITY;
        tu_mask_near_one(&w, &a, &sc, g_inp, g_tgt, &el, &eg, t);
        tu_check(t, el <= 1e-6 && eg <= 1e-6,
                 "%s %s: masked path at c -> 1 vs plain: logits rel %.3g, grads rel %.3g",
                 case_name(c), k_append[o], el, eg);

        w.plan.mask_c = 0.5f;
        grads(&w, &a, &sc);
        float *g = malloc(w.numel * sizeof(float));
        memcpy(g, w.grads, w.numel * sizeof(float));
        int checked = 0, bad = 0;
        double worst = 0;
        for (int b = -1; b < w.hi; b++) {
            int n, nw;
            const sp_tensor_info *ts = table(&s, b, &n), *tw = table(&w, b, &nw);
            size_t base = (size_t)(slab(&w, w.params, b) - w.params);
            for (int i = 0; i < n; i++) {
                size_t best[2] = {0, 0};
                int seen[2] = {0, 0};
                const float *gt = g + base + tw[i].offset;
                for (size_t e = 0; e < tw[i].numel; e++) {
                    int old = old_entry(&ts[i], &tw[i], e);
                    if (!seen[old] || fabsf(gt[e]) > fabsf(gt[best[old]])) best[old] = e;
                    seen[old] = 1;
                }
                for (int old = 0; old < 2; old++) {
                    if (!seen[old]) continue; /* the decoder bias has no new entries */
                    char what[160];
                    snprintf(what, sizeof what, "%s %s block %d %s[%zu] (%s)", case_name(c),
                             k_append[o], b, tw[i].name, best[old], old ? "old" : "new");
                    worst = fmax(worst, fd_one(&w, &a, w.params + base + tw[i].offset + best[old],
                                               gt[best[old]], what, &bad));
                    checked++;
                }
            }
        }
        tu_check(t, bad == 0, "%s %s mask_c = 0.5: %d of %d gradients disagree with FD",
                 case_name(c), k_append[o], bad, checked);
        printf("width_kinds: %-12s %-16s mask_c = 1 - 2^-24 vs plain: logits rel %.3g, grads rel "
               "%.3g; mask_c = 0.5: FD of %d gradients, worst error / tolerance %.3f\n",
               case_name(c), k_append[o], el, eg, checked, worst);
        free(g);
        sp_scratch_free(&sc);
        sp_acts_free(&a);
        sp_model_free(&w);
        sp_model_free(&s);
    }
}

/* ---- the table's claims -------------------------------------------------------------------- */

static void test_table(tu_ctx *t, const kind_case *c) {
    int kind = sp_kind_find(c->kind);
    const char *keep[] = {"decoalesce_width", "widen_direct", "widen_zero", "widen_random"};
    int ok = !sp_grow_preserves("coalesce_width", kind);
    for (int o = 0; o < 4; o++) ok &= sp_grow_preserves(keep[o], kind);
    tu_check(t, ok, "%s: the table's preserves bits of the width operators", case_name(c));
}

int main(void) {
    tu_ctx t = {0};
    for (int i = 0; i < NTOK; i++)
        g_inp[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 3, (uint64_t)i) % k_spec_2.vocab);
    for (int i = 0; i < NTOK; i++)
        g_tgt[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 4, (uint64_t)i) % k_spec_2.vocab);
    for (int c = 0; c < NCASES; c++) {
        test_table(&t, &k_cases[c]);
        test_maps(&t, &k_cases[c]);
        test_preservation(&t, &k_cases[c]);
        test_roundtrip(&t, &k_cases[c]);
        test_layout(&t, &k_cases[c]);
        test_append(&t, &k_cases[c]);
        test_masked_grads(&t, &k_cases[c]);
    }
    return tu_finish(&t, "width_kinds");
}
