/* Subnetwork methods (src/growth/subnet.c): the plans they draw, checked against the formulas.
 *
 *   LVPS: 100k plans per (L = 8, U = 1, 2, 4); the empirical distribution of the executed depth
 *     against the closed form of growth-operators §4.2, written out here independently
 *     (P(depth >= k) = clip((m U / k - n - x_min) / (1 - x_min), 0, 1)), within 0.5 points;
 *     E[depth] and P(depth = U) against the table of §4.2; uniform: every depth of [U, L];
 *   Apollo plans: depth in [U, L]; positions increasing; position p runs a copy of unique block
 *     floor(p U / D) (groups are the extend map from U to L); each copy at most once; U = L and
 *     any stage expansion: the plain plan / nested groups; expansions as block maps leave every
 *     copy of new block i holding old block floor(i U_old / U_new), moving nothing when nested;
 *   RaPTr plans: fixed blocks always run; exact mode runs exactly the stage's path length;
 *     bernoulli's mean path length; skipped blocks untrained; inverse_p scales kept free blocks
 *     by 1/p; lengths = L gives the plain plan; warm-up steps run the full model;
 *   plans are pure functions of (config, step): drawn twice, in any order, equal;
 *   bad configs: each gives one error naming its key. */
#include "sprout/growth.h"
#include "sprout/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int make(sp_config *cfg, int L, const char **sets, int n, sp_subnet *sn, sp_err *err) {
    sp_cfg_defaults(cfg);
    cfg->model.n_layer = L;
    cfg->train.steps = 1000;
    for (int i = 0; i < n; i++)
        if (sp_cfg_set(cfg, sets[i], err)) return err->code;
    return sp_subnet_resolve(cfg, sn, err);
}

/* the method of `sets` on L blocks, resolved (the config is freed: sp_subnet is plain data);
 * nonzero after a failed check */
static int resolved(tu_ctx *t, int L, const char **sets, int n, sp_subnet *sn) {
    sp_config cfg;
    sp_err err = {0};
    int rc = make(&cfg, L, sets, n, sn, &err);
    tu_check(t, rc == 0, "%s on %d blocks: %s", sets[n - 1], L, err.msg);
    sp_cfg_free(&cfg);
    return rc;
}

static sp_plan plan_new(int L) {
    sp_plan p = {.n_layer = L};
    p.pos = calloc((size_t)L, sizeof *p.pos);
    p.group = calloc((size_t)L, sizeof *p.group);
    p.scale = calloc((size_t)L, sizeof *p.scale);
    p.train = calloc((size_t)L, 1);
    return p;
}

static void plan_free(sp_plan *p) {
    free(p->pos), free(p->group), free(p->scale), free(p->train);
}

static int is_full(const sp_plan *p) {
    int ok = p->depth == p->n_layer && !p->shared;
    for (int b = 0; b < p->n_layer; b++)
        ok &= p->pos[b] == b && p->group[b] == b && p->train[b] && p->scale[b] == 1.0f;
    return ok;
}

/* §4.2's closed form, independently of the code under test */
static double tail(int L, int U, int k) {
    double r = (double)L / U, b = r + 0.4, e = 0.6, xm = 1e-6;
    double n = (b * xm - e) / (e - b), m = e * (n + 1);
    if (k <= U) return 1;
    if (k > L) return 0;
    double p = (m * U / k - n - xm) / (1 - xm);
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

static void test_lvps(tu_ctx *t) {
    /* E[depth] and P(depth = U) from the table of growth-operators §4.2 (L = 8) */
    const int us[3] = {1, 2, 4};
    const double mean_tab[3] = {1.57, 2.75, 4.70}, pu_tab[3] = {0.754, 0.695, 0.693};
    const int N = 100000, L = 8;
    for (int i = 0; i < 3; i++) {
        int U = us[i];
        char su[32];
        snprintf(su, sizeof su, "apollo.unique=%d", U);
        const char *sets[] = {"train.subnet=apollo", su};
        sp_subnet sn;
        if (resolved(t, L, sets, 2, &sn)) continue;
        sp_plan p = plan_new(L);
        long hist[9] = {0};
        int range_ok = 1;
        for (int s = 0; s < N; s++) {
            sp_plan_full(&p);
            sp_subnet_draw(&sn, s, &p);
            range_ok &= p.depth >= U && p.depth <= L;
            if (p.depth >= 0 && p.depth <= L) hist[p.depth]++;
        }
        tu_check(t, range_ok, "LVPS U = %d: a depth outside [U, L]", U);
        double worst = 0, mean = 0, cf_mean = 0;
        for (int k = U; k <= L; k++) {
            double pk = tail(L, U, k) - tail(L, U, k + 1), emp = (double)hist[k] / N;
            worst = fabs(emp - pk) > worst ? fabs(emp - pk) : worst;
            mean += k * emp, cf_mean += k * pk;
            double code = sp_lvps_tail(L, U, k) - sp_lvps_tail(L, U, k + 1);
            tu_check(t, fabs(code - pk) < 1e-12, "sp_lvps_tail L = 8 U = %d k = %d: %g vs %g", U, k,
                     code, pk);
        }
        printf("subnet: LVPS L = 8, U = %d: %d draws, worst |empirical - closed form| = %.2f "
               "points, E[depth] %.3f (closed form %.3f, table %.2f)\n",
               U, N, 100 * worst, mean, cf_mean, mean_tab[i]);
        tu_check(t, worst <= 0.005, "LVPS U = %d: empirical PMF off by %.2f points", U,
                 100 * worst);
        tu_check(t,
                 fabs(cf_mean - mean_tab[i]) < 0.006 &&
                     fabs(tail(L, U, U) - tail(L, U, U + 1) - pu_tab[i]) < 0.0006,
                 "closed form U = %d: E %.3f, P(U) %.4f against the table", U, cf_mean,
                 tail(L, U, U) - tail(L, U, U + 1));
        plan_free(&p);
    }
    /* uniform: every depth of [U, L] about equally often */
    const char *sets[] = {"train.subnet=apollo", "apollo.unique=2", "apollo.sampler=uniform"};
    sp_subnet sn;
    if (resolved(t, L, sets, 3, &sn) == 0) {
        sp_plan p = plan_new(L);
        long hist[9] = {0};
        for (int s = 0; s < 70000; s++) {
            sp_plan_full(&p);
            sp_subnet_draw(&sn, s, &p);
            if (p.depth >= 2 && p.depth <= L) hist[p.depth]++;
        }
        int ok = 1;
        for (int k = 2; k <= L; k++) ok &= fabs(hist[k] / 70000.0 - 1.0 / 7) < 0.005;
        tu_check(t, ok, "uniform sampler: depths not uniform over [2, 8]");
        plan_free(&p);
    }
}

/* every plan Apollo draws on L blocks with the default stages, for many steps */
static void test_apollo_plans(tu_ctx *t, int L) {
    const char *sets[] = {"train.subnet=apollo"};
    sp_subnet sn;
    if (resolved(t, L, sets, 1, &sn)) return;
    sp_plan p = plan_new(L), q = plan_new(L);
    int bad = 0, full_bad = 0, nested_bad = 0;
    for (int64_t s = 0; s < 1000; s++) {
        int st = sp_subnet_stage(&sn, s), U = sn.k[st];
        sp_plan_full(&p);
        sp_subnet_draw(&sn, s, &p);
        if (U == L) {
            full_bad += !is_full(&p);
            continue;
        }
        int D = p.depth, ok = D >= U && D <= L && p.shared;
        for (int j = 0; j < L; j++) ok &= p.group[j] == (int)(((j * U / L) * L + U - 1) / U);
        for (int i = 0; i < D && ok; i++) {
            ok &= i == 0 || p.pos[i] > p.pos[i - 1];                  /* each copy at most once */
            ok &= p.pos[i] * U / L == i * U / D && p.train[p.pos[i]]; /* the extend map */
        }
        bad += !ok;
        if (st > 0 && s == sn.start[st]) { /* expansion: the new groups split the old ones */
            sp_plan_full(&q);
            sp_subnet_draw(&sn, s - 1, &q);
            for (int j = 0; j < L; j++) nested_bad += q.group[p.group[j]] != q.group[j];
        }
    }
    tu_check(t, bad == 0, "apollo L = %d: %d plans break the extend map", L, bad);
    tu_check(t, full_bad == 0, "apollo L = %d: %d plans at U = L are not the plain plan", L,
             full_bad);
    tu_check(t, nested_bad == 0, "apollo L = %d: expansions do not nest", L);
    printf("subnet: apollo L = %d: %d stages (", L, sn.n_stages);
    for (int s = 0; s < sn.n_stages; s++)
        printf("%sU %d from step %lld", s ? ", " : "", sn.k[s], (long long)sn.start[s]);
    printf(")\n");
    plan_free(&p), plan_free(&q);
}

static void test_raptr_plans(tu_ctx *t) {
    const int L = 8;
    const char *modes[2] = {"raptr.mode=bernoulli", "raptr.mode=exact"};
    for (int mo = 0; mo < 2; mo++) {
        const char *sets[] = {"train.subnet=raptr", modes[mo], "raptr.scale=inverse_p"};
        sp_subnet sn;
        if (resolved(t, L, sets, 3, &sn)) continue;
        tu_check(t,
                 sn.n_stages == 4 && sn.k[0] == 4 && sn.k[1] == 5 && sn.k[2] == 7 && sn.k[3] == 8,
                 "raptr defaults on 8 blocks: %d stages, %d-%d-%d-%d", sn.n_stages, sn.k[0],
                 sn.k[1], sn.k[2], sn.k[3]);
        sp_plan p = plan_new(L);
        double sum[4] = {0};
        long cnt[4] = {0};
        int bad = 0;
        for (int64_t s = 0; s < 1000; s++) {
            int st = sp_subnet_stage(&sn, s), k = sn.k[st];
            sp_plan_full(&p);
            sp_subnet_draw(&sn, s, &p);
            if (k == L) {
                bad += !is_full(&p);
                continue;
            }
            double pk = (double)(k - 2) / (L - 2);
            int ok = p.train[0] && p.train[L - 1] && p.pos[0] == 0 && p.pos[p.depth - 1] == L - 1 &&
                     !p.shared && (mo == 0 || p.depth == k);
            for (int i = 1; i < p.depth; i++) ok &= p.pos[i] > p.pos[i - 1];
            int kept = 0;
            for (int b = 0; b < L; b++) {
                kept += p.train[b];
                float want = !p.train[b] || b == 0 || b == L - 1 ? 1.0f : (float)(1.0 / pk);
                ok &= p.scale[b] == want;
            }
            ok &= kept == p.depth;
            bad += !ok;
            sum[st] += p.depth, cnt[st]++;
        }
        tu_check(t, bad == 0, "raptr %s: %d plans wrong", modes[mo], bad);
        for (int st = 0; st < 3; st++) {
            double mean = sum[st] / (double)cnt[st];
            printf("subnet: raptr %s stage %d: mean path %.3f (target %d, %ld steps)\n", modes[mo],
                   st, mean, sn.k[st], cnt[st]);
            tu_check(t, fabs(mean - sn.k[st]) < (mo ? 1e-12 : 0.25),
                     "raptr %s stage %d: mean path %.3f, target %d", modes[mo], st, mean, sn.k[st]);
        }
        /* drawn again in reverse order: the same plans */
        sp_plan q = plan_new(L);
        int diff = 0;
        for (int64_t s = 999; s >= 0; s--) {
            sp_plan_full(&p), sp_plan_full(&q);
            sp_subnet_draw(&sn, s, &p);
            sp_subnet_draw(&sn, s, &q);
            diff += p.depth != q.depth || memcmp(p.pos, q.pos, (size_t)p.depth * sizeof(int)) ||
                    memcmp(p.scale, q.scale, L * sizeof(float));
        }
        tu_check(t, diff == 0, "raptr: plans are not a function of the step");
        plan_free(&q);
        plan_free(&p);
    }
    /* every block kept, and a warm-up: the plain plan */
    const char *sets[] = {"train.subnet=raptr", "raptr.lengths=8,4", "raptr.full_warmup_steps=600"};
    sp_subnet sn;
    if (resolved(t, L, sets, 3, &sn) == 0) {
        sp_plan p = plan_new(L);
        int bad = 0;
        for (int64_t s = 0; s < 600; s++) {
            sp_plan_full(&p);
            sp_subnet_draw(&sn, s, &p);
            bad += !is_full(&p);
        }
        sp_plan_full(&p);
        sp_subnet_draw(&sn, 700, &p);
        tu_check(t, bad == 0 && p.depth < L, "raptr: full-model warm-up / stage 0 at length 8");
        plan_free(&p);
    }
}

/* Apollo's expansions as block maps: simulate which old unique block every copy holds, apply the
 * map, and check that every copy of new block i holds old block floor(i U_old / U_new) (§4.4);
 * nested counts move nothing */
static void test_expand(tu_ctx *t, int L, const char *unique, int want_moves) {
    char su[64];
    snprintf(su, sizeof su, "apollo.unique=%s", unique);
    const char *sets[] = {"train.subnet=apollo", su};
    sp_subnet sn;
    if (resolved(t, L, sets, 2, &sn)) return;
    int moves = 0, bad = 0, calls = 0;
    sp_err err = {0};
    for (int64_t s = 0; s < 1000; s++) {
        sp_block_map map;
        int n = sp_subnet_expand_map(&sn, s, &map, &err);
        int st = sp_subnet_stage(&sn, s);
        if (n < 0 || (n > 0 && s != sn.start[st])) bad++;
        if (n <= 0) continue;
        calls++, moves += n;
        int Uo = sn.k[st - 1], U = sn.k[st];
        for (int j = 0; j < L; j++) {
            int src = map.b[j].src, holds = src * Uo / L; /* what src holds before */
            bad += holds != (j * U / L) * Uo / U;
        }
        sp_grow_map_free(&map);
    }
    printf("subnet: apollo %s on %d blocks: %d block(s) moved at %d expansion(s)\n", unique, L,
           moves, calls);
    tu_check(t, bad == 0 && (want_moves ? moves > 0 : moves == 0),
             "apollo %s on %d: %d wrong copies, %d moves", unique, L, bad, moves);
}

static void test_bad(tu_ctx *t) {
    struct {
        const char *sets[3];
        int L;
        const char *key;
    } cases[] = {
        {{"train.subnet=dropout"}, 8, "train.subnet"},
        {{"train.subnet=apollo", "apollo.unique=1,4,2"}, 8, "apollo.unique"},
        {{"train.subnet=apollo", "apollo.unique=5,8"}, 8, "apollo.unique"}, /* fits */
        {{"train.subnet=apollo", "apollo.unique=1,x"}, 8, "apollo.unique"},
        {{"train.subnet=apollo", "apollo.boundaries=0.5,0.2"}, 8, "apollo.boundaries"},
        {{"train.subnet=apollo", "apollo.sampler=sigmoid"}, 8, "apollo.sampler"},
        {{"train.subnet=apollo", "apollo.map=stack"}, 8, "apollo.map"},
        {{"train.subnet=raptr", "raptr.lengths=1,8"}, 8, "raptr.lengths"},
        {{"train.subnet=raptr", "raptr.fixed=9"}, 8, "raptr.fixed"},
        {{"train.subnet=raptr", "raptr.mode=top"}, 8, "raptr.mode"},
        {{"train.subnet=raptr", "raptr.scale=p"}, 8, "raptr.scale"},
        {{"train.subnet=raptr", "raptr.lengths=4,8", "raptr.boundaries=0.1,0.2"},
         8,
         "raptr.boundaries"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int n = 0;
        while (n < 3 && cases[i].sets[n]) n++;
        sp_config cfg;
        sp_subnet sn;
        sp_err err = {0};
        int rc = make(&cfg, cases[i].L, cases[i].sets, n, &sn, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, cases[i].key) && !strchr(err.msg, '\n'),
                 "bad config %zu: rc %d, '%s' should name %s", i, rc, err.msg, cases[i].key);
        sp_cfg_free(&cfg);
    }
    /* growth events cannot be combined */
    sp_config cfg;
    sp_cfg_defaults(&cfg);
    sp_err err = {0};
    sp_subnet sn;
    sp_cfg_set(&cfg, "train.subnet=raptr", &err);
    cfg.vcycle.levels = 2;
    tu_check(t, sp_subnet_resolve(&cfg, &sn, &err) == SP_EINPUT && strstr(err.msg, "V-cycle"),
             "raptr with a V-cycle: '%s'", err.msg);
    sp_cfg_free(&cfg);
}

int main(void) {
    tu_ctx t = {0};
    test_lvps(&t);
    test_apollo_plans(&t, 8);
    test_apollo_plans(&t, 12);
    test_apollo_plans(&t, 6);
    test_raptr_plans(&t);
    test_expand(&t, 8, "auto", 0);
    test_expand(&t, 12, "auto", 0);
    test_expand(&t, 10, "auto", 1); /* 1, 2, 5, 10: 2 -> 5 does not nest */
    test_expand(&t, 6, "2,3,6", 1);
    test_bad(&t);
    return tu_finish(&t, "subnet");
}
