/* Width operators: specs, the channel maps written out independently of src/growth/width.c,
 * round trips, function preservation, widen_direct's uneven split, layout independence, errors.
 *
 * Tolerances:
 *   coalesce_width(decoalesce_width(M)) for k = 2, maps, determinism, layout ... bitwise: every
 *     step is a copy, a division by 2 or 4, or a sum/average of equal values, all exact in fp32
 *   decoalesce_width / widen_direct logits vs the small model ... max |dlogit| <= 1e-5: equal in
 *     exact arithmetic, but the wide matmuls and LayerNorm sum k times as many terms in another
 *     order, and uneven coefficients are rounded to fp32 (the test prints the measured value)
 *   widen_direct group sums sum_t W'[j_t, c] vs W[i, c] ... 1e-6 |W| + 1e-9 (fp32 rounding of the
 *     coefficients and of the products)
 *   coalesce_width on a non-symmetric model ... the logits must move by more than 1e-3 */
#include "sprout/growth.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sp_spec k_spec_a = {32, 8, 16, 4, 64, 2, 0, 0, 0, 0}; /* V, T, C, H, F, L */
static const sp_spec k_spec_b = {32, 8, 12, 3, 40, 2, 0, 0, 0, 0}; /* d_ff not 4 C, H = 3 */
enum { B = 2, T = 8, NTOK = B * T };
#define SEED  11
#define EVENT 2
#define NOISE 0.05

static int32_t g_inp[NTOK];

/* ---- helpers ------------------------------------------------------------------------------- */

static int same(const float *a, const float *b, size_t n) {
    return !memcmp(a, b, n * sizeof(float));
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* A trained-looking model (testutil): gains, biases and copies of nothing symmetric, moments and
 * step counts distinct, one branch scale not 1. */
static int make_model(sp_model *m, const sp_spec *s, tu_ctx *t) {
    return tu_model_trained(m, s, SEED, t);
}

/* dst = op(src) on src's layout; reports failures */
static int apply(const char *op, int k, const sp_model *src, sp_model *dst, int moments,
                 double noise, tu_ctx *t) {
    return tu_grow_width(op, k, src, dst, moments, noise, SEED, EVENT, t);
}

/* raw logits [NTOK, V] of a full model */
static float *logits(const sp_model *m, tu_ctx *t) {
    return tu_logits(m, g_inp, B, T, t);
}

static const float *tensor(const sp_model *m, const float *arena, int block, int j) {
    if (block < 0) return sp_model_globals(m, (float *)arena) + m->gt[j].offset;
    return sp_model_block(m, (float *)arena, block) + m->bt[j].offset;
}

/* ---- specs --------------------------------------------------------------------------------- */

static void test_specs(tu_ctx *t) {
    const char *grow[] = {"decoalesce_width", "widen_direct"};
    for (int o = 0; o < 2; o++) {
        sp_spec s;
        sp_err err = {0};
        int rc = sp_grow_width_spec(grow[o], &k_spec_b, 3, &s, &err);
        tu_check(t,
                 rc == 0 && s.d_model == 36 && s.n_head == 9 && s.d_ff == 120 && s.vocab == 32 &&
                     s.seq_len == 8 && s.n_layer == 2,
                 "%s k = 3 spec: rc %d (%s)", grow[o], rc, err.msg);
        tu_check(t, sp_grow_is_width_op(grow[o]), "%s is not a width op", grow[o]);
    }
    sp_spec s;
    sp_err err = {0};
    int rc = sp_grow_width_spec("coalesce_width", &k_spec_a, 2, &s, &err);
    tu_check(t, rc == 0 && s.d_model == 8 && s.n_head == 2 && s.d_ff == 32 && s.n_layer == 2,
             "coalesce_width k = 2 spec: rc %d (%s)", rc, err.msg);
    tu_check(t, sp_grow_is_width_op("coalesce_width"), "coalesce_width is not a width op");

    const struct {
        const char *op;
        const sp_spec *s;
        int k;
        const char *msg;
    } bad[] = {
        {"coalesce_width", &k_spec_b, 2, "coalesce_width: k = 2 does not divide model.n_head = 3"},
        {"coalesce_width", &k_spec_a, 3,
         "coalesce_width: k = 3 does not divide model.d_model = 16"},
        {"coalesce_width", &k_spec_a, 8, "coalesce_width: k = 8 does not divide model.n_head = 4"},
        {"coalesce_width", &k_spec_b, 3, "coalesce_width: k = 3 does not divide model.d_ff = 40"},
        {"decoalesce_width", &k_spec_a, 0, "decoalesce_width: k = 0"},
        {"widen_direct", &k_spec_a, -2, "widen_direct: k = -2"},
        {"decoalesce_width", &k_spec_a, 1 << 28, "decoalesce_width: k = 268435456 makes"},
        {"zero", &k_spec_a, 2, "growth op 'zero' is not a width operator"},
        {"Decoalesce_width", &k_spec_a, 2, "is not a width operator"},
        {NULL, &k_spec_a, 2, "growth op '(null)' is not a width operator"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err = (sp_err){0};
        rc = sp_grow_width_spec(bad[i].op, bad[i].s, bad[i].k, &s, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, bad[i].msg),
                 "spec %s k = %d: rc %d, message \"%s\"", bad[i].op ? bad[i].op : "(null)",
                 bad[i].k, rc, err.msg);
    }
    /* k = 3 divides (12, 3, 36) but the head size check must still hold */
    sp_spec c3 = {32, 8, 12, 3, 36, 2, 0, 0, 0, 0};
    rc = sp_grow_width_spec("coalesce_width", &c3, 3, &s, &err);
    tu_check(t, rc == 0 && s.d_model == 4 && s.n_head == 1 && s.d_ff == 12,
             "coalesce_width k = 3 of (12, 3, 36): rc %d", rc);
    const char *not_width[] = {"stack", "random", "", "coalesce", NULL};
    for (size_t i = 0; i < sizeof not_width / sizeof *not_width; i++)
        tu_check(t, !sp_grow_is_width_op(not_width[i]), "'%s' taken for a width op",
                 not_width[i] ? not_width[i] : "(null)");
}

/* ---- the map, written out per tensor ------------------------------------------------------ */

/* small channel of large residual / MLP / in-section attention channel j: the strided fold */
static int fold(int j, int n) {
    return j % n;
}

/* every entry of the wide model against the formulas of docs/growth.md, by heads and sections */
static void check_decoalesce_map(tu_ctx *t, const sp_model *s, const sp_model *w, int k) {
    int d = s->spec.d_model, D = w->spec.d_model, H = s->spec.n_head, Hl = w->spec.n_head;
    int hd = d / H, f = s->spec.d_ff, Fl = w->spec.d_ff, V = s->spec.vocab, Tn = s->spec.seq_len;
    float fk = (float)k, fk2 = (float)(k * k);
    int bad = 0;
    for (int b = 0; b < s->hi; b++) {
        const float *qs = tensor(s, s->params, b, SP_QKV_W),
                    *qw = tensor(w, w->params, b, SP_QKV_W);
        const float *qms = tensor(s, s->m, b, SP_QKV_W), *qmw = tensor(w, w->m, b, SP_QKV_W);
        const float *qvs = tensor(s, s->v, b, SP_QKV_W), *qvw = tensor(w, w->v, b, SP_QKV_W);
        const float *bs = tensor(s, s->params, b, SP_QKV_B),
                    *bw = tensor(w, w->params, b, SP_QKV_B);
        for (int i = 0; i < D; i++)
            for (int sec = 0; sec < 3; sec++)
                for (int h = 0; h < Hl; h++)
                    for (int r = 0; r < hd; r++) {
                        size_t jw = (size_t)i * 3 * D + sec * D + h * hd + r;
                        size_t js = (size_t)fold(i, d) * 3 * d + sec * d + (h % H) * hd + r;
                        bad += qw[jw] != qs[js] / fk;
                        bad += qmw[jw] != qms[js] / fk;
                        bad += qvw[jw] != qvs[js] / fk2;
                        if (i == 0)
                            bad += bw[sec * D + h * hd + r] != bs[sec * d + (h % H) * hd + r];
                    }
        /* attention output: rows are heads (O-in, split), columns residual (copied) */
        const float *as = tensor(s, s->params, b, SP_ATTPROJ_W),
                    *aw = tensor(w, w->params, b, SP_ATTPROJ_W);
        for (int h = 0; h < Hl; h++)
            for (int r = 0; r < hd; r++)
                for (int c = 0; c < D; c++)
                    bad += aw[(size_t)(h * hd + r) * D + c] !=
                           as[(size_t)((h % H) * hd + r) * d + fold(c, d)] / fk;
        const float *fs = tensor(s, s->params, b, SP_FC_W), *fw = tensor(w, w->params, b, SP_FC_W);
        const float *ps = tensor(s, s->params, b, SP_FCPROJ_W),
                    *pw = tensor(w, w->params, b, SP_FCPROJ_W);
        for (int i = 0; i < D; i++)
            for (int u = 0; u < Fl; u++) {
                bad += fw[(size_t)i * Fl + u] != fs[(size_t)fold(i, d) * f + fold(u, f)] / fk;
                bad += pw[(size_t)u * D + i] != ps[(size_t)fold(u, f) * d + fold(i, d)] / fk;
            }
        const int vec_r[] = {SP_LN1_W, SP_LN1_B, SP_ATTPROJ_B, SP_LN2_W, SP_LN2_B, SP_FCPROJ_B};
        for (size_t q = 0; q < sizeof vec_r / sizeof *vec_r; q++) {
            const float *x = tensor(s, s->params, b, vec_r[q]),
                        *y = tensor(w, w->params, b, vec_r[q]);
            for (int c = 0; c < D; c++) bad += y[c] != x[fold(c, d)];
        }
        const float *cs = tensor(s, s->params, b, SP_FC_B), *cw = tensor(w, w->params, b, SP_FC_B);
        for (int u = 0; u < Fl; u++) bad += cw[u] != cs[fold(u, f)];
    }
    tu_check(t, bad == 0, "decoalesce_width k = %d: %d block entries off the map", k, bad);
    bad = 0;
    const float *es = tensor(s, s->params, -1, SP_WTE), *ew = tensor(w, w->params, -1, SP_WTE);
    for (int v = 0; v < V; v++)
        for (int c = 0; c < D; c++) bad += ew[(size_t)v * D + c] != es[(size_t)v * d + fold(c, d)];
    const float *ps = tensor(s, s->params, -1, SP_WPE), *pw = tensor(w, w->params, -1, SP_WPE);
    for (int p = 0; p < Tn; p++)
        for (int c = 0; c < D; c++) bad += pw[(size_t)p * D + c] != ps[(size_t)p * d + fold(c, d)];
    tu_check(t, bad == 0, "decoalesce_width k = %d: %d embedding entries not copied", k, bad);
    bad = 0;
    for (int j = SP_LNF_W; j <= SP_LNF_B; j++)
        for (int c = 0; c < D; c++) {
            bad += tensor(w, w->params, -1, j)[c] != tensor(s, s->params, -1, j)[fold(c, d)] / fk;
            bad += tensor(w, w->m, -1, j)[c] != tensor(s, s->m, -1, j)[fold(c, d)] / fk;
            bad += tensor(w, w->v, -1, j)[c] != tensor(s, s->v, -1, j)[fold(c, d)] / fk2;
        }
    tu_check(t, bad == 0, "decoalesce_width k = %d: %d ln_f entries are not small / k", k, bad);
    int steps_ok = 1;
    for (int i = 0; i <= s->hi; i++) steps_ok &= w->steps[i] == s->steps[i];
    tu_check(
        t, steps_ok && w->plan.scale[1] == s->plan.scale[1] && w->plan.scale[0] == s->plan.scale[0],
        "decoalesce_width k = %d: step counts or branch scales not copied", k);
}

static void test_maps(tu_ctx *t) {
    const sp_spec *specs[] = {&k_spec_a, &k_spec_b};
    for (int si = 0; si < 2; si++)
        for (int k = 2; k <= 3; k++) {
            sp_model s, w;
            if (make_model(&s, specs[si], t)) return;
            if (apply("decoalesce_width", k, &s, &w, 1, 0, t) == 0) {
                check_decoalesce_map(t, &s, &w, k);
                sp_model_free(&w);
            }
            sp_model_free(&s);
        }
}

/* coalesce_width on a non-symmetric model against the group formulas: out-axes averaged, in-axes
 * summed (v: k times the sum), ln_f times k (v: k^2) */
static void test_coalesce_map(tu_ctx *t) {
    sp_model l, s;
    if (make_model(&l, &k_spec_a, t)) return;
    if (apply("coalesce_width", 2, &l, &s, 1, 0, t)) {
        sp_model_free(&l);
        return;
    }
    const int k = 2, D = l.spec.d_model, d = s.spec.d_model, H = s.spec.n_head, hd = d / H;
    const int f = s.spec.d_ff, V = l.spec.vocab;
    int bad = 0;
#define NEAR(got, want) (fabs((double)(got) - (want)) > 1e-6 * fabs(want) + 1e-12)
    for (int b = 0; b < l.hi; b++) {
        const float *ql = tensor(&l, l.params, b, SP_QKV_W),
                    *qs = tensor(&s, s.params, b, SP_QKV_W);
        const float *vl = tensor(&l, l.v, b, SP_QKV_W), *vs = tensor(&s, s.v, b, SP_QKV_W);
        for (int i = 0; i < d; i++)
            for (int sec = 0; sec < 3; sec++)
                for (int h = 0; h < H; h++)
                    for (int r = 0; r < hd; r++) {
                        double w = 0, v = 0;
                        for (int ti = 0; ti < k; ti++)
                            for (int to = 0; to < k; to++) {
                                size_t j =
                                    (size_t)(i + ti * d) * 3 * D + sec * D + (h + to * H) * hd + r;
                                w += ql[j] / k, v += vl[j] / k;
                            }
                        size_t js = (size_t)i * 3 * d + sec * d + h * hd + r;
                        bad += NEAR(qs[js], w) + NEAR(vs[js], k * v);
                    }
        const float *pl = tensor(&l, l.params, b, SP_FCPROJ_W),
                    *ps = tensor(&s, s.params, b, SP_FCPROJ_W);
        for (int u = 0; u < f; u++)
            for (int c = 0; c < d; c++) {
                double w = 0;
                for (int ti = 0; ti < k; ti++)
                    for (int to = 0; to < k; to++)
                        w += pl[(size_t)(u + ti * f) * D + c + to * d] / k;
                bad += NEAR(ps[(size_t)u * d + c], w);
            }
        const float *bl = tensor(&l, l.m, b, SP_FC_B), *bs = tensor(&s, s.m, b, SP_FC_B);
        for (int u = 0; u < f; u++) bad += NEAR(bs[u], (bl[u] + (double)bl[u + f]) / 2);
    }
    const float *el = tensor(&l, l.params, -1, SP_WTE), *es = tensor(&s, s.params, -1, SP_WTE);
    for (int v = 0; v < V; v++)
        for (int c = 0; c < d; c++)
            bad += NEAR(es[(size_t)v * d + c],
                        (el[(size_t)v * D + c] + (double)el[(size_t)v * D + c + d]) / 2);
    const float *nl = tensor(&l, l.params, -1, SP_LNF_B), *ns = tensor(&s, s.params, -1, SP_LNF_B);
    const float *nvl = tensor(&l, l.v, -1, SP_LNF_W), *nvs = tensor(&s, s.v, -1, SP_LNF_W);
    for (int c = 0; c < d; c++) {
        bad += NEAR(ns[c], (double)nl[c] + nl[c + d]);            /* k * average */
        bad += NEAR(nvs[c], 2.0 * ((double)nvl[c] + nvl[c + d])); /* k^2 * average */
    }
#undef NEAR
    tu_check(t, bad == 0, "coalesce_width: %d entries off the group formulas", bad);
    sp_model_free(&s);
    sp_model_free(&l);
}

/* ---- round trips --------------------------------------------------------------------------- */

static void test_roundtrip(tu_ctx *t) {
    const sp_spec *specs[] = {&k_spec_a, &k_spec_b};
    const char *grow[] = {"decoalesce_width", "widen_direct"};
    for (int si = 0; si < 2; si++)
        for (int o = 0; o < 2; o++) {
            sp_model s, w, back;
            if (make_model(&s, specs[si], t)) return;
            if (apply(grow[o], 2, &s, &w, 1, 0, t) ||
                apply("coalesce_width", 2, &w, &back, 1, 0, t))
                return;
            tu_check(t, !memcmp(&back.spec, &s.spec, sizeof s.spec), "%s: spec did not come back",
                     grow[o]);
            size_t n = s.numel;
            tu_check(t, same(back.params, s.params, n), "%s k = 2 round trip: params differ (%.3g)",
                     grow[o], max_abs_diff(back.params, s.params, n));
            tu_check(t, same(back.m, s.m, n), "%s k = 2 round trip: m differs (%.3g)", grow[o],
                     max_abs_diff(back.m, s.m, n));
            tu_check(t, same(back.v, s.v, n), "%s k = 2 round trip: v differs (%.3g)", grow[o],
                     max_abs_diff(back.v, s.v, n));
            tu_check(t,
                     !memcmp(back.steps, s.steps, (size_t)(s.hi + 1) * sizeof *s.steps) &&
                         same(back.plan.scale, s.plan.scale, (size_t)s.hi),
                     "%s k = 2 round trip: step counts or branch scales differ", grow[o]);
            sp_model_free(&back);
            sp_model_free(&w);
            sp_model_free(&s);
        }
    /* k = 3: x/3 summed three times is x up to rounding only */
    sp_model s, w, back;
    if (make_model(&s, &k_spec_b, t)) return;
    if (apply("decoalesce_width", 3, &s, &w, 1, 0, t) ||
        apply("coalesce_width", 3, &w, &back, 1, 0, t))
        return;
    double rel = tu_rel_maxabs(back.params, s.params, s.numel);
    tu_check(t, rel <= 1e-6, "decoalesce_width k = 3 round trip: params rel %.3g", rel);
    sp_model_free(&back);
    sp_model_free(&w);

    /* moments = 0: a fresh optimizer state on the new widths */
    if (apply("decoalesce_width", 2, &s, &w, 0, 0, t) == 0) {
        int zero = 1;
        for (size_t i = 0; i < w.numel; i++) zero &= w.m[i] == 0.0f && w.v[i] == 0.0f;
        for (int i = 0; i <= w.hi; i++) zero &= w.steps[i] == 0;
        tu_check(t, zero, "moments = 0: m, v or step counts not zero");
        sp_model full;
        if (apply("decoalesce_width", 2, &s, &full, 1, 0, t) == 0) {
            tu_check(t, same(w.params, full.params, w.numel), "moments = 0 changed the parameters");
            sp_model_free(&full);
        }
        sp_model_free(&w);
    }
    sp_model_free(&s);
}

/* ---- function ------------------------------------------------------------------------------ */

static void test_preservation(tu_ctx *t) {
    const struct {
        const sp_spec *s;
        const char *op;
        int k;
    } cases[] = {
        {&k_spec_a, "decoalesce_width", 2}, {&k_spec_a, "widen_direct", 2},
        {&k_spec_b, "decoalesce_width", 2}, {&k_spec_b, "widen_direct", 2},
        {&k_spec_b, "decoalesce_width", 3}, {&k_spec_b, "widen_direct", 3},
        {&k_spec_a, "decoalesce_width", 4},
    };
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        sp_model s, w;
        if (make_model(&s, cases[c].s, t)) return;
        if (apply(cases[c].op, cases[c].k, &s, &w, 1, NOISE, t)) return;
        float *ls = logits(&s, t), *lw = logits(&w, t);
        if (ls && lw) {
            double d = max_abs_diff(ls, lw, (size_t)NTOK * s.spec.vocab);
            worst = fmax(worst, d);
            printf("width: %-16s k = %d, C = %2d -> %2d: max |dlogit| = %.3g\n", cases[c].op,
                   cases[c].k, s.spec.d_model, w.spec.d_model, d);
            tu_check(t, d <= 1e-5, "%s k = %d (C = %d): max |dlogit| = %.3g > 1e-5", cases[c].op,
                     cases[c].k, s.spec.d_model, d);
        }
        free(ls);
        free(lw);
        sp_model_free(&w);
        sp_model_free(&s);
    }
    printf("width: worst max |dlogit| over the preserving cases %.3g\n", worst);

    /* coalescing a model whose copies are not symmetric is a projection: the function moves */
    sp_model l, s;
    if (make_model(&l, &k_spec_a, t)) return;
    if (apply("coalesce_width", 2, &l, &s, 1, 0, t)) return;
    float *ll = logits(&l, t), *ls = logits(&s, t);
    if (ll && ls) {
        double d = max_abs_diff(ll, ls, (size_t)NTOK * l.spec.vocab);
        printf("width: coalesce_width k = 2 on a non-symmetric model: max |dlogit| = %.3g\n", d);
        tu_check(t, d > 1e-3, "coalesce_width on a non-symmetric model kept the logits (%.3g)", d);
    }
    free(ll);
    free(ls);
    sp_model_free(&s);
    sp_model_free(&l);
}

/* ---- widen_direct -------------------------------------------------------------------------- */

/* small column of large column c of a weight: the fold, per section for qkv */
static int small_col(const sp_model *s, const sp_model *w, int ti, int c) {
    int d = s->spec.d_model, D = w->spec.d_model;
    if (ti == SP_QKV_W) return c / D * d + c % D % d;
    return c % (int)s->bt[ti].dims[1];
}

/* W'[j, c] = a_j W[g(j), c] for the in-axis of tensor ti of block b: one a_j per row, summing to
 * 1 over each group, not all 1/k */
static void check_split(tu_ctx *t, const sp_model *s, const sp_model *w, int b, int ti, int k) {
    const sp_tensor_info *st = &s->bt[ti], *wt = &w->bt[ti];
    int n = (int)st->dims[0], nc = (int)st->dims[1], ncw = (int)wt->dims[1];
    const float *x = tensor(s, s->params, b, ti), *y = tensor(w, w->params, b, ti);
    int sum_bad = 0, row_bad = 0;
    double spread = 0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * nc;
        for (int tt = 0; tt < k; tt++) {
            const float *yj = y + (size_t)(i + tt * n) * ncw;
            double a = (double)yj[0] / xi[0]; /* the coefficient, read off the first column */
            spread = fmax(spread, fabs(a - 1.0 / k));
            for (int c = 0; c < ncw; c++) {
                double want = a * xi[small_col(s, w, ti, c)];
                row_bad += fabs(yj[c] - want) > 1e-5 * fabs(want) + 1e-9;
            }
        }
        for (int c = 0; c < ncw; c++) {
            double sum = 0, want = xi[small_col(s, w, ti, c)];
            for (int tt = 0; tt < k; tt++) sum += y[(size_t)(i + tt * n) * ncw + c];
            sum_bad += fabs(sum - want) > 1e-6 * fabs(want) + 1e-9;
        }
    }
    tu_check(t, sum_bad == 0, "widen_direct %s block %d: %d group sums differ from the weight",
             st->name, b, sum_bad);
    tu_check(t, row_bad == 0, "widen_direct %s block %d: %d entries not a_j times the weight",
             st->name, b, row_bad);
    tu_check(t, spread > 1e-3, "widen_direct %s block %d: a_j all 1/k (spread %.3g)", st->name, b,
             spread);
}

static void test_widen_direct(tu_ctx *t) {
    sp_model s, w1, w2, dec;
    if (make_model(&s, &k_spec_a, t)) return;
    for (int k = 2; k <= 3; k++) {
        if (apply("widen_direct", k, &s, &w1, 1, NOISE, t)) return;
        const int split[] = {SP_QKV_W, SP_ATTPROJ_W, SP_FC_W, SP_FCPROJ_W};
        for (int b = 0; b < s.hi; b++)
            for (int q = 0; q < 4; q++) check_split(t, &s, &w1, b, split[q], k);
        sp_model_free(&w1);
    }

    if (apply("widen_direct", 2, &s, &w1, 1, NOISE, t) ||
        apply("widen_direct", 2, &s, &w2, 1, NOISE, t) ||
        apply("decoalesce_width", 2, &s, &dec, 1, 0, t))
        return;
    tu_check(t,
             same(w1.params, w2.params, w1.numel) && same(w1.m, w2.m, w1.numel) &&
                 same(w1.v, w2.v, w1.numel),
             "widen_direct is not deterministic");
    /* out-axes and everything without an in-axis are exactly decoalesce_width's */
    tu_check(t,
             same(w1.params, dec.params, w1.global_numel) &&
                 same(tensor(&w1, w1.params, 0, SP_QKV_B), tensor(&dec, dec.params, 0, SP_QKV_B),
                      w1.bt[SP_QKV_B].numel),
             "widen_direct changed tensors without an in-axis");
    tu_check(t, !same(w1.params, dec.params, w1.numel), "widen_direct at noise > 0 is even");
    /* the moments see the same coefficients: m = a m_small, v = a^2 v_small */
    const float *p = tensor(&w1, w1.params, 1, SP_FCPROJ_W), *m = tensor(&w1, w1.m, 1, SP_FCPROJ_W),
                *v = tensor(&w1, w1.v, 1, SP_FCPROJ_W);
    const float *ps = tensor(&s, s.params, 1, SP_FCPROJ_W), *ms = tensor(&s, s.m, 1, SP_FCPROJ_W),
                *vs = tensor(&s, s.v, 1, SP_FCPROJ_W);
    int mbad = 0, D = w1.spec.d_model, d = s.spec.d_model, f = s.spec.d_ff, Fl = w1.spec.d_ff;
    for (int u = 0; u < Fl; u++) {
        double a = (double)p[(size_t)u * D] / ps[(size_t)(u % f) * d];
        for (int c = 0; c < D; c++) {
            double wm = a * ms[(size_t)(u % f) * d + c % d],
                   wv = a * a * vs[(size_t)(u % f) * d + c % d];
            mbad += fabs(m[(size_t)u * D + c] - wm) > 1e-5 * fabs(wm) + 1e-12;
            mbad += fabs(v[(size_t)u * D + c] - wv) > 1e-5 * fabs(wv) + 1e-15;
        }
    }
    tu_check(t, mbad == 0, "widen_direct: %d moments not a m / a^2 v", mbad);

    /* noise 0 is decoalesce_width bit for bit */
    sp_model z;
    if (apply("widen_direct", 2, &s, &z, 1, 0, t) == 0) {
        tu_check(t,
                 same(z.params, dec.params, z.numel) && same(z.m, dec.m, z.numel) &&
                     same(z.v, dec.v, z.numel),
                 "widen_direct at noise 0 differs from decoalesce_width");
        sp_model_free(&z);
    }

    /* layout: a stage holding block 1 alone, without globals, as on a pipeline rank */
    sp_model part, pw;
    sp_err err = {0};
    if (tu_stage(&part, &s, 1, 2, 0, t)) return;
    if (apply("widen_direct", 2, &part, &pw, 1, NOISE, t) == 0) {
        size_t n = pw.block_numel;
        tu_check(t,
                 pw.numel == n && same(pw.params, sp_model_block(&w1, w1.params, 1), n) &&
                     same(pw.m, sp_model_block(&w1, w1.m, 1), n) &&
                     same(pw.v, sp_model_block(&w1, w1.v, 1), n) && pw.steps[1] == w1.steps[2] &&
                     pw.plan.scale[1] == w1.plan.scale[1],
                 "widen_direct depends on the stage layout");
        sp_model_free(&pw);
    }
    /* another event or seed draws other coefficients */
    sp_model e3;
    sp_spec ws = w1.spec;
    sp_model_create(&e3, &ws, 0, s.hi, 1, 1, &err);
    sp_grow_width("widen_direct", 2, &s, &e3, 1, NOISE, SEED, EVENT + 1, &err);
    tu_check(t, !same(e3.params, w1.params, e3.numel), "widen_direct ignores the event");
    sp_model_free(&e3);
    sp_model_free(&part);
    sp_model_free(&dec);
    sp_model_free(&w2);
    sp_model_free(&w1);
    sp_model_free(&s);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_errors(tu_ctx *t) {
    sp_model s, w;
    sp_err err = {0};
    if (make_model(&s, &k_spec_a, t)) return;
    sp_spec ws;
    sp_grow_width_spec("decoalesce_width", &s.spec, 2, &ws, &err);
    if (sp_model_create(&w, &ws, 0, s.hi, 1, 1, &err)) {
        tu_check(t, 0, "set-up: %s", err.msg);
        return;
    }
    const struct {
        const char *op;
        int k;
        double noise;
        const char *msg;
    } bad[] = {
        {"decoalesce_width", 3, 0, "decoalesce_width: dst spec (d_model 32"},
        {"decoalesce_width", 0, 0, "decoalesce_width: k = 0"},
        {"widen_direct", 2, -0.1, "widen_direct: noise = -0.1"},
        {"widen_direct", 2, NAN, "widen_direct: noise = nan"},
        {"coalesce_width", 2, 0, "coalesce_width: dst spec"},
        {"interpolate", 2, 0, "growth op 'interpolate' is not a width operator"},
        {NULL, 2, 0, "is not a width operator"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err = (sp_err){0};
        int rc = sp_grow_width(bad[i].op, bad[i].k, &s, &w, 1, bad[i].noise, SEED, EVENT, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, bad[i].msg),
                 "width %s k = %d: rc %d, message \"%s\"", bad[i].op ? bad[i].op : "(null)",
                 bad[i].k, rc, err.msg);
    }
    /* same widths, other layout */
    const int lay[][4] = {{0, 1, 1, 1}, {1, 2, 1, 1}, {0, 2, 0, 1}, {0, 2, 1, 0}};
    for (size_t i = 0; i < sizeof lay / sizeof *lay; i++) {
        sp_model o;
        sp_model_create(&o, &ws, lay[i][0], lay[i][1], lay[i][2], lay[i][3], &err);
        err = (sp_err){0};
        int rc = sp_grow_width("decoalesce_width", 2, &s, &o, 1, 0, SEED, EVENT, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, "decoalesce_width: dst holds blocks"),
                 "layout mismatch %zu: rc %d, message \"%s\"", i, rc, err.msg);
        sp_model_free(&o);
    }
    err = (sp_err){0};
    int rc = sp_grow_width("coalesce_width", 1, &s, &s, 1, 0, SEED, EVENT, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "same model"), "src == dst: rc %d (%s)", rc,
             err.msg);
    sp_model_free(&w);
    sp_model_free(&s);
}

int main(void) {
    tu_ctx t = {0};
    for (int i = 0; i < NTOK; i++)
        g_inp[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 3, (uint64_t)i) % k_spec_a.vocab);
    test_specs(&t);
    test_maps(&t);
    test_coalesce_map(&t);
    test_roundtrip(&t);
    test_preservation(&t);
    test_widen_direct(&t);
    test_errors(&t);
    return tu_finish(&t, "width");
}
