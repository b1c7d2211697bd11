/* G_learn (src/growth/learn.c) on every block kind: the initial coefficients are G_stack's map and
 * materialise its blocks bit for bit; the pullback of the slab gradient is the gradient of the
 * loss in the coefficients (central differences of the materialised model's loss); an Adam step
 * moves the coefficients only, against the sign of their gradient; the table row is a depth
 * operator that learns.
 *
 * Tolerances:
 *   the initial materialisation vs the stack copies ... bitwise (1 * x, the other terms skipped)
 *   dL/dc vs central differences (step 1e-2) of the fp32 loss summed in double ...
 *     |fd - g| <= 2e-2 |g| + 2e-5, as tu_fd_check (the loss is linear in each coefficient up to
 *     the network, so the step is not the limit; fp32 rounding of the loss is) */
#include "sprout/growth.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 8, NTOK = B * T, L_BASE = 2, FACTOR = 2 };
#define SEED    13
#define FD_STEP 1e-2

/* V, T, C, H, F, L, kind, tie_head, norm_eps, rope_theta; kind and L set per case */
static const sp_spec k_spec = {32, 8, 16, 4, 32, 0, 0, 0, 1e-5, 10000.0};
static const struct {
    const char *kind;
    int tie_head;
} k_cases[] = {{"gpt2", 1}, {"llama", 0}, {"bert", 1}};
#define NCASES ((int)(sizeof k_cases / sizeof k_cases[0]))

static int32_t g_inp[NTOK], g_tgt[NTOK];

static sp_spec case_spec(int c, int n_layer) {
    sp_spec s = k_spec;
    s.kind = sp_kind_find(k_cases[c].kind);
    s.tie_head = k_cases[c].tie_head;
    s.n_layer = n_layer;
    if (!sp_kind_of(&s)->hparams) s.norm_eps = 0, s.rope_theta = 0, s.tie_head = 0;
    return s;
}

/* every position of the grown model m materialised from g */
static void materialize_all(const sp_learn *g, sp_model *m) {
    for (int p = 0; p < g->L; p++) sp_learn_materialize(g, p, sp_model_block(m, m->params, p));
}

/* the grown model with the base's globals, and g with the base's blocks */
static int setup(int c, sp_model *base, sp_model *big, sp_learn *g, tu_ctx *t) {
    sp_spec sb = case_spec(c, L_BASE), sg = case_spec(c, L_BASE * FACTOR);
    sp_err err = {0};
    if (tu_model_trained(base, &sb, SEED, t)) return 1;
    base->plan.scale[1] = 1.0f;
    if (tu_model_trained(big, &sg, SEED + 1, t)) return 1;
    for (int p = 0; p < sg.n_layer; p++) big->plan.scale[p] = 1.0f;
    memcpy(sp_model_globals(big, big->params), sp_model_globals(base, base->params),
           base->global_numel * sizeof(float));
    if (sp_learn_init(g, sp_grow_op_find("learn"), &sb, L_BASE, FACTOR, &err)) {
        tu_check(t, 0, "%s: sp_learn_init: %s", k_cases[c].kind, err.msg);
        return 1;
    }
    for (int j = 0; j < L_BASE; j++)
        memcpy(g->base + (size_t)j * g->block_numel, sp_model_block(base, base->params, j),
               g->block_numel * sizeof(float));
    return 0;
}

/* c = G_stack's map, materialised: the stack copies bit for bit */
static void test_init(tu_ctx *t, int c) {
    sp_model base, big;
    sp_learn g;
    if (setup(c, &base, &big, &g, t)) return;
    materialize_all(&g, &big);
    int ok = 1;
    for (int p = 0; p < g.L; p++)
        ok &=
            !memcmp(sp_model_block(&big, big.params, p),
                    sp_model_block(&base, base.params, p % L_BASE), g.block_numel * sizeof(float));
    tu_check(t, ok, "%s: the initial map is not G_stack's bit for bit", k_cases[c].kind);
    int ones = 0;
    size_t nc = (size_t)g.L * g.l * g.nt;
    for (size_t i = 0; i < nc; i++) ones += g.c[i] == 1.0f;
    tu_check(t, ones == g.L * g.nt, "%s: %d coefficients are 1, not %d", k_cases[c].kind, ones,
             g.L * g.nt);
    sp_learn_free(&g);
    sp_model_free(&base);
    sp_model_free(&big);
}

/* away from the stack map (every base block in every position), the pullback of the slab
 * gradient is dL/dc: every tensor's coefficient for each base block at two positions, against
 * central differences of the loss of the materialised model */
static void test_fd(tu_ctx *t, int c) {
    sp_model base, big;
    sp_learn g;
    sp_acts a;
    sp_scratch sc;
    sp_err err = {0};
    if (setup(c, &base, &big, &g, t)) return;
    size_t nc = (size_t)g.L * g.l * g.nt;
    for (size_t i = 0; i < nc; i++)
        g.c[i] += 0.6f * (sp_rng_uniform(SEED, SP_RNG_TEST, 7, i) - 0.5f);
    if (sp_acts_create(&a, &big, B, T, &err) || sp_scratch_create(&sc, &big, B, T, &err)) {
        tu_check(t, 0, "set-up: %s", err.msg);
        return;
    }
    materialize_all(&g, &big);
    tu_grads(&big, &a, &sc, g_inp, g_tgt);
    for (int p = 0; p < g.L; p++) sp_learn_pullback(&g, p, sp_model_block(&big, big.grads, p));
    int bad = 0, checked = 0;
    double worst = 0;
    for (int p = 0; p < g.L; p += g.L - 1)
        for (int j = 0; j < g.l; j++)
            for (int k = 0; k < g.nt; k++) {
                size_t i = ((size_t)p * g.l + j) * g.nt + k;
                float x0 = g.c[i];
                double l[2], h[2];
                for (int s = 0; s < 2; s++) {
                    g.c[i] = x0 + (s ? -1.0f : 1.0f) * (float)FD_STEP;
                    h[s] = g.c[i];
                    materialize_all(&g, &big);
                    l[s] = tu_forward(&big, &a, g_inp, g_tgt);
                }
                g.c[i] = x0;
                double fd = (l[0] - l[1]) / (h[0] - h[1]), an = g.dc[i];
                double e = fabs(fd - an) / (2e-2 * fabs(an) + 2e-5);
                if (e > 1) {
                    bad++;
                    fprintf(stderr, "  %s c[%d][%d][%d]: fd %.6g analytic %.6g\n", k_cases[c].kind,
                            p, j, k, fd, an);
                }
                worst = e > worst ? e : worst;
                checked++;
            }
    printf("%s: %d coefficient gradients vs finite differences, worst error/tolerance %.3g\n",
           k_cases[c].kind, checked, worst);
    tu_check(t, bad == 0 && checked == 2 * g.l * g.nt,
             "%s: %d of %d coefficient gradients "
             "disagree with finite differences",
             k_cases[c].kind, bad, checked);
    /* one Adam step: every coefficient with a gradient moves against it (by ~lr: a gradient
     * near Adam's eps or one far below a coefficient's ulp moves it by less), the base stays */
    float *c0 = malloc(nc * sizeof(float)), *b0 = malloc((size_t)g.l * g.block_numel * 4);
    memcpy(c0, g.c, nc * sizeof(float));
    memcpy(b0, g.base, (size_t)g.l * g.block_numel * sizeof(float));
    sp_learn_update(&g, 1e-3f, 0.9f, 0.95f, 1e-8f);
    int wrong = 0;
    for (size_t i = 0; i < nc; i++)
        if (fabsf(g.dc[i]) > 1e-6f && !((g.c[i] - c0[i]) * g.dc[i] < 0)) wrong++;
    tu_check(t, wrong == 0 && g.step == 1,
             "%s: %d coefficients did not move against their "
             "gradient",
             k_cases[c].kind, wrong);
    tu_check(t, !memcmp(b0, g.base, (size_t)g.l * g.block_numel * sizeof(float)),
             "%s: the update changed the base", k_cases[c].kind);
    free(c0), free(b0);
    sp_acts_free(&a);
    sp_scratch_free(&sc);
    sp_learn_free(&g);
    sp_model_free(&base);
    sp_model_free(&big);
}

int main(void) {
    tu_ctx t = {0};
    for (int i = 0; i < NTOK; i++) {
        g_inp[i] = (int32_t)(sp_rng_u64(SEED, SP_RNG_TEST, 1, (uint64_t)i) % k_spec.vocab);
        g_tgt[i] = (int32_t)(sp_rng_u64(SEED, SP_RNG_TEST, 2, (uint64_t)i) % k_spec.vocab);
    }
    const sp_grow_op *r = sp_grow_op_find("learn");
    tu_check(&t, r && r->learns && r->dim == SP_OP_DEPTH && sp_grow_is_depth_op("learn"),
             "the table has no depth operator 'learn' that learns");
    for (int c = 0; c < NCASES; c++) {
        test_init(&t, c);
        test_fd(&t, c);
    }
    return tu_finish(&t, "learn");
}
