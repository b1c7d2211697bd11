/* Tests of the LLaMA and BERT block kernels (RMSNorm, RoPE, SwiGLU, erf GELU, the masked-LM loss)
 * and of the masked-LM masking, in the manner of test_kernels.c: every forward against a naive
 * double-precision reference, every backward against central finite differences of it.
 *
 * Tolerances (max-abs difference over max-abs of the reference):
 *   forward vs double reference .................... 1e-5
 *   analytic backward vs FD of the double reference . 1e-4
 *   erf GELU: |err| <= 3e-7 max(1,|x|) forward, 1e-6 max(1,|x|) derivative, over a sweep
 *   masking statistics over 4M positions: selected 15%, and 80 / 10 / 10 of those, each within
 *     0.2 points (about 5 standard deviations of the selection rate, 4 of the branch rates)
 * Backwards that accumulate are checked on pre-filled gradient buffers (the += contract); the FD
 * objective is L = sum(out * R), R fixed random. */
#include "sprout/core.h"
#include "sprout/kernels.h"
#include "sprout/mlm.h"
#include "kernel_fd.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FWD 1e-5
#define TOL_BWD 1e-4

/* one gradient buffer's check: the increment a backward added against FD of the reference */
typedef struct {
    const char *name;
    double *x;
    float *got, *pre;
    size_t n;
} grad_case;

static void check_grads(tu_ctx *t, const char *what, grad_case *gc, int ng, objfn f, void *ctx) {
    for (int k = 0; k < ng; k++) {
        double *g = malloc(gc[k].n * sizeof *g);
        float *d = gc[k].pre ? delta(gc[k].got, gc[k].pre, gc[k].n) : fcopy(gc[k].got, gc[k].n);
        fd_grad(gc[k].x, gc[k].n, NULL, 0, f, ctx, g);
        double e = rel_fd(d, g, gc[k].n);
        tu_check(t, e <= TOL_BWD, "%s %s rel %.3g", what, gc[k].name, e);
        free(d), free(g);
    }
}

/* ---- rmsnorm ------------------------------------------------------------------------------- */

/* The reference is the masked RMSNorm (weights mk_i: 1 below n_old, mc from n_old on); the plain
 * one is n_old = C. */
typedef struct {
    int N, C, n_old;
    double eps, mc, *inp, *w, *out;
    const float *R;
} rms_ctx;

static double rms_obj(void *p) {
    rms_ctx *c = p;
    double W = c->n_old + c->mc * (c->C - c->n_old);
    for (int n = 0; n < c->N; n++) {
        const double *x = c->inp + (size_t)n * c->C;
        double ss = 0;
        for (int i = 0; i < c->C; i++) ss += (i < c->n_old ? 1 : c->mc) * x[i] * x[i];
        double s = 1 / sqrt(ss / W + c->eps);
        for (int i = 0; i < c->C; i++)
            c->out[(size_t)n * c->C + i] = (i < c->n_old ? 1 : c->mc) * x[i] * s * c->w[i];
    }
    return dot_d(c->out, c->R, (size_t)c->N * c->C);
}

/* the plain kernels with n_old = C (mc unused), else the masked pair with (n_old, mc) */
static void test_rmsnorm(tu_ctx *t, int N, int C, float eps, int n_old, float mc) {
    size_t NC = (size_t)N * C;
    float *inp = rnd(NC, 1), *w = rnd(C, 1), *R = rnd(NC, 1);
    for (int n = 0; n < N; n += 3) /* an offset: RMSNorm keeps the mean in, unlike LayerNorm */
        for (int i = 0; i < C; i++) inp[(size_t)n * C + i] += 5.0f;
    for (int i = 0; i < C; i++) inp[(size_t)C + i] *= 1e-3f; /* mean(x^2) ~ 1e-6: eps matters */
    float *out = nan_buf(NC), *rstd = nan_buf(N);
    float *di0 = rnd(NC, 0.5f), *dw0 = rnd(C, 0.5f), *di = fcopy(di0, NC), *dw = fcopy(dw0, C);
    int masked = n_old < C;
    rms_ctx c = {
        N, C, n_old, eps, masked ? mc : 1, to_d(inp, NC), to_d(w, C), malloc(NC * sizeof(double)),
        R};

    if (masked)
        sp_rmsnorm_masked_forward(out, rstd, inp, w, N, C, n_old, mc, eps);
    else
        sp_rmsnorm_forward(out, rstd, inp, w, N, C, eps);
    rms_obj(&c);
    double e = rel_fd(out, c.out, NC);
    tu_check(t, e <= TOL_FWD, "rmsnorm forward N=%d C=%d eps=%g n_old=%d c=%g rel %.3g", N, C, eps,
             n_old, mc, e);
    if (masked)
        sp_rmsnorm_masked_backward(di, dw, R, inp, w, rstd, N, C, n_old, mc);
    else
        sp_rmsnorm_backward(di, dw, R, inp, w, rstd, N, C);
    grad_case gc[2] = {{"dinp", c.inp, di, di0, NC}, {"dw", c.w, dw, dw0, C}};
    check_grads(t, "rmsnorm", gc, 2, rms_obj, &c);
    free(c.inp), free(c.w), free(c.out), free(inp), free(w), free(R), free(out), free(rstd);
    free(di0), free(dw0), free(di), free(dw);
}

/* The masked RMSNorm at its ends: at c = 1 the plain kernel's function (1e-6: the sums are split
 * in two), at c = 0 the old channels are the plain RMSNorm of the old channels alone bit for bit
 * and the new ones 0, with zero gradient into the new channels. */
static void test_rmsnorm_masked_ends(tu_ctx *t, int N, int C, int n_old) {
    size_t NC = (size_t)N * C;
    float *inp = rnd(NC, 1), *w = rnd(C, 1), *R = rnd(NC, 1), *rstd = nan_buf(N);
    float *o1 = nan_buf(NC), *o2 = nan_buf(NC), *d1 = calloc(NC, 4), *d2 = calloc(NC, 4);
    float *g1 = calloc(C, 4), *g2 = calloc(C, 4);
    sp_rmsnorm_forward(o1, rstd, inp, w, N, C, 1e-5f);
    sp_rmsnorm_backward(d1, g1, R, inp, w, rstd, N, C);
    sp_rmsnorm_masked_forward(o2, rstd, inp, w, N, C, n_old, 1.0f, 1e-5f);
    sp_rmsnorm_masked_backward(d2, g2, R, inp, w, rstd, N, C, n_old, 1.0f);
    double e = fmax(tu_rel_maxabs(o2, o1, NC), tu_rel_maxabs(d2, d1, NC));
    tu_check(t, e <= 1e-6, "masked rmsnorm at c = 1 vs plain: rel %.3g", e);
    float *old = malloc((size_t)N * n_old * 4), *oo = nan_buf((size_t)N * n_old);
    for (int n = 0; n < N; n++) memcpy(old + (size_t)n * n_old, inp + (size_t)n * C, n_old * 4);
    sp_rmsnorm_forward(oo, rstd, old, w, N, n_old, 1e-5f);
    sp_rmsnorm_masked_forward(o2, rstd, inp, w, N, C, n_old, 0.0f, 1e-5f);
    memset(d2, 0, NC * 4);
    sp_rmsnorm_masked_backward(d2, g2, R, inp, w, rstd, N, C, n_old, 0.0f);
    int bad = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C; i++) {
            size_t k = (size_t)n * C + i;
            bad += i < n_old ? o2[k] != oo[(size_t)n * n_old + i] : o2[k] != 0.0f || d2[k] != 0.0f;
        }
    tu_check(t, bad == 0, "masked rmsnorm at c = 0: %d values differ from the old channels' norm",
             bad);
    free(inp), free(w), free(R), free(rstd), free(o1), free(o2), free(d1), free(d2), free(g1);
    free(g2), free(old), free(oo);
}

/* sp_layernorm_forward_eps at 1e-5 is sp_layernorm_forward bit for bit, and so is the masked pair;
 * at BERT's 1e-12, on rows of variance 1e-8, rstd is 1/sqrt(var + 1e-12) (at 1e-5 it would be 30x
 * smaller); check_kernels2.py checks the outputs against torch */
static void test_layernorm_eps(tu_ctx *t, int N, int C) {
    size_t NC = (size_t)N * C;
    float *inp = rnd(NC, 1e-4f), *w = rnd(C, 1), *b = rnd(C, 1);
    float *o1 = nan_buf(NC), *o2 = nan_buf(NC), *m1 = nan_buf(N), *m2 = nan_buf(N);
    float *r1 = nan_buf(N), *r2 = nan_buf(N);
    sp_layernorm_forward(o1, m1, r1, inp, w, b, N, C);
    sp_layernorm_forward_eps(o2, m2, r2, inp, w, b, N, C, 1e-5f);
    tu_check(t, !memcmp(o1, o2, NC * 4) && !memcmp(m1, m2, N * 4) && !memcmp(r1, r2, N * 4),
             "layernorm_eps at 1e-5 differs from sp_layernorm_forward");
    sp_layernorm_masked_forward(o1, m1, r1, inp, w, b, N, C, C / 2, 0.25f);
    sp_layernorm_masked_forward_eps(o2, m2, r2, inp, w, b, N, C, C / 2, 0.25f, 1e-5f);
    tu_check(t, !memcmp(o1, o2, NC * 4) && !memcmp(m1, m2, N * 4) && !memcmp(r1, r2, N * 4),
             "masked layernorm_eps at 1e-5 differs from sp_layernorm_masked_forward");
    sp_layernorm_forward_eps(o2, m2, r2, inp, w, b, N, C, 1e-12f);
    double worst = 0; /* rstd against 1/sqrt(var + 1e-12) in double */
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += inp[(size_t)n * C + i] / (double)C;
        for (int i = 0; i < C; i++) v += pow(inp[(size_t)n * C + i] - m, 2) / C;
        worst = fmax(worst, fabs(r2[n] * sqrt(v + 1e-12) - 1));
    }
    tu_check(t, worst <= 1e-5, "layernorm_eps 1e-12: rstd off by %.3g relative", worst);
    free(inp), free(w), free(b), free(o1), free(o2), free(m1), free(m2), free(r1), free(r2);
}

/* ---- rope ---------------------------------------------------------------------------------- */

typedef struct {
    int B, T, C, NH;
    double theta, *qkv, *out;
    const float *R;
} rope_ctx;

/* q and k rotated pairwise (i, i + hd/2) by t theta^(-2i/hd), v copied */
static double rope_obj(void *p) {
    rope_ctx *c = p;
    int hd = c->C / c->NH, h2 = hd / 2;
    size_t n = (size_t)c->B * c->T * 3 * c->C;
    memcpy(c->out, c->qkv, n * sizeof(double));
    for (int r = 0; r < c->B * c->T; r++)
        for (int h = 0; h < 2 * c->NH; h++)
            for (int i = 0; i < h2; i++) {
                double a = (r % c->T) * pow(c->theta, -2.0 * i / hd);
                size_t j = (size_t)r * 3 * c->C + (size_t)h * hd + i;
                double x1 = c->qkv[j], x2 = c->qkv[j + h2];
                c->out[j] = x1 * cos(a) - x2 * sin(a);
                c->out[j + h2] = x2 * cos(a) + x1 * sin(a);
            }
    return dot_d(c->out, c->R, n);
}

static void test_rope(tu_ctx *t, int B, int T, int C, int NH, double theta) {
    int hd = C / NH;
    size_t NQ = (size_t)B * T * 3 * C;
    float *qkv = rnd(NQ, 1), *R = rnd(NQ, 1), *tab = nan_buf((size_t)T * hd);
    float *x = fcopy(qkv, NQ), *d = fcopy(R, NQ);
    rope_ctx c = {B, T, C, NH, theta, to_d(qkv, NQ), malloc(NQ * sizeof(double)), R};

    sp_rope_table(tab, T, hd, theta);
    sp_rope_forward(x, tab, B, T, C, NH);
    rope_obj(&c);
    double e = rel_fd(x, c.out, NQ);
    tu_check(t, e <= TOL_FWD, "rope forward T=%d hd=%d theta=%g rel %.3g", T, hd, theta, e);
    /* position 0 turns by 0 and v is untouched: bit for bit */
    int moved = 0;
    for (int b = 0; b < B; b++)
        moved += memcmp(x + (size_t)b * T * 3 * C, qkv + (size_t)b * T * 3 * C, 3 * C * 4) != 0;
    for (size_t r = 0; r < (size_t)B * T; r++)
        moved += memcmp(x + r * 3 * C + 2 * C, qkv + r * 3 * C + 2 * C, C * 4) != 0;
    tu_check(t, moved == 0, "rope: %d rows of position 0 or of v changed", moved);
    /* the gradient of L = sum(rope(qkv) R) is R turned back; it overwrites q, k and keeps v */
    sp_rope_backward(d, tab, B, T, C, NH);
    grad_case gc[1] = {{"dqkv", c.qkv, d, NULL, NQ}};
    check_grads(t, "rope", gc, 1, rope_obj, &c);
    /* forward then backward is the identity (the rotation is orthogonal) */
    sp_rope_backward(x, tab, B, T, C, NH);
    e = tu_rel_maxabs(x, qkv, NQ);
    tu_check(t, e <= 1e-6, "rope backward(forward(x)) differs from x: rel %.3g", e);
    free(c.qkv), free(c.out), free(qkv), free(R), free(tab), free(x), free(d);
}

/* ---- swiglu -------------------------------------------------------------------------------- */

typedef struct {
    int N, F;
    double *ab, *out;
    const float *R;
} sw_ctx;

static double sw_obj(void *p) {
    sw_ctx *c = p;
    for (int n = 0; n < c->N; n++)
        for (int i = 0; i < c->F; i++) {
            double a = c->ab[(size_t)n * 2 * c->F + i], b = c->ab[(size_t)n * 2 * c->F + c->F + i];
            c->out[(size_t)n * c->F + i] = a / (1 + exp(-a)) * b;
        }
    return dot_d(c->out, c->R, (size_t)c->N * c->F);
}

static void test_swiglu(tu_ctx *t, int N, int F) {
    size_t NF = (size_t)N * F;
    float *ab = rnd(2 * NF, 2), *R = rnd(NF, 1), *h = nan_buf(NF);
    float *d0 = rnd(2 * NF, 0.5f), *d = fcopy(d0, 2 * NF);
    sw_ctx c = {N, F, to_d(ab, 2 * NF), malloc(NF * sizeof(double)), R};
    sp_swiglu_forward(h, ab, N, F);
    sw_obj(&c);
    double e = rel_fd(h, c.out, NF);
    tu_check(t, e <= TOL_FWD, "swiglu forward N=%d F=%d rel %.3g", N, F, e);
    sp_swiglu_backward(d, R, ab, N, F);
    grad_case gc[1] = {{"dab", c.ab, d, d0, 2 * NF}};
    check_grads(t, "swiglu", gc, 1, sw_obj, &c);
    free(c.ab), free(c.out), free(ab), free(R), free(h), free(d0), free(d);
}

/* silu far out on both sides: finite, and the limits (silu(a) -> a or 0, silu' -> 1 or 0) */
static void test_swiglu_extremes(tu_ctx *t) {
    static const float as[] = {1e30f, -1e30f, 3e38f, -3e38f, 1000, -1000, 100, -100,
                               88.8f, -88.8f, 80,    -80,    20,   -20,   0,   -0.0f};
    enum { K = sizeof as / sizeof as[0] };
    float ab[2 * K], h[K], dh[K], dab[2 * K] = {0};
    for (int i = 0; i < K; i++) ab[i] = as[i], ab[K + i] = 0.5f, dh[i] = 1.0f;
    sp_swiglu_forward(h, ab, 1, K);
    sp_swiglu_backward(dab, dh, ab, 1, K);
    int bad = 0;
    for (int i = 0; i < K; i++) {
        double a = as[i], s = a >= 0 ? 1 / (1 + exp(-a)) : exp(a) / (1 + exp(a));
        double silu = a * s, dsilu = s * (1 + a * (1 - s));
        if (!isfinite(silu)) silu = a > 0 ? a : 0; /* a s with s = 1 or 0 */
        if (!isfinite(dsilu) || fabs(a) > 1e3) dsilu = a > 0 ? 1 : 0;
        double eh = fabs(h[i] - 0.5 * silu), eda = fabs(dab[i] - 0.5 * dsilu);
        double edb = fabs(dab[K + i] - silu);
        if (!isfinite(h[i]) || !isfinite(dab[i]) || !isfinite(dab[K + i]) ||
            eh > 1e-6 * fmax(1, fabs(silu)) || eda > 1e-6 || edb > 1e-6 * fmax(1, fabs(silu))) {
            bad++;
            printf("swiglu a=%g: h %g (want %g), da %g (want %g), db %g (want %g)\n", a, h[i],
                   0.5 * silu, dab[i], 0.5 * dsilu, dab[K + i], silu);
        }
    }
    tu_check(t, bad == 0, "swiglu: %d wrong or non-finite results at large |a|", bad);
}

/* ---- erf gelu ------------------------------------------------------------------------------ */

static double gelu_erf_d(double x) {
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

static double gelu_erf_grad_d(double x) {
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
}

static void test_gelu_erf(tu_ctx *t, size_t n) {
    test_elementwise(t, "gelu_erf", gelu_erf_d, sp_gelu_erf_forward, sp_gelu_erf_backward, n,
                     TOL_FWD, TOL_BWD);
}

/* accuracy over [-20, 20] and special values, against double erfc; and not the tanh form */
static void test_gelu_erf_sweep(tu_ctx *t) {
    enum { NS = 1000000 };
    static const float special[] = {0.0f, -0.0f, 1e30f, -1e30f, 3e38f,  -3e38f, INFINITY,
                                    30,   -30,   20.5f, -20.5f, 1e-30f, -1e-30f};
    size_t nsp = sizeof special / sizeof special[0], n = NS + nsp;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *yt = malloc(n * sizeof *yt);
    float *dg = calloc(n, sizeof *dg), *ones = malloc(n * sizeof *ones);
    for (size_t i = 0; i < NS; i++) x[i] = -20.0f + 40.0f * (float)i / (float)(NS - 1);
    memcpy(x + NS, special, sizeof special);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    sp_gelu_erf_forward(y, x, n);
    sp_gelu_erf_backward(dg, x, ones, n);
    sp_gelu_forward(yt, x, n);
    double gf = 0, gb = 0, vs_tanh = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double xi = x[i], w = fabs(xi) > 1 ? fabs(xi) : 1;
        double rf = isinf(xi) ? xi : gelu_erf_d(xi), rb = gelu_erf_grad_d(xi);
        if (fabs(xi) > 1e6) rf = xi > 0 ? xi : 0, rb = xi > 0 ? 1 : 0;
        bad += isnan(y[i]) || isnan(dg[i]) || isinf(dg[i]) || (isinf(y[i]) && !isinf(xi));
        double ef = isinf(xi) ? (y[i] == rf ? 0 : 1) : fabs(y[i] - rf) / w;
        double eb = fabs(dg[i] - rb) / w;
        if (!(ef <= gf)) gf = ef;
        if (!(eb <= gb)) gb = eb;
        if (fabs(xi) < 10) vs_tanh = fmax(vs_tanh, fabs(yt[i] - y[i]));
    }
    float nan_in = NAN, nan_out;
    sp_gelu_erf_forward(&nan_out, &nan_in, 1);
    tu_check(t, bad == 0 && isnan(nan_out), "gelu_erf: %d non-finite results, NaN -> %g", bad,
             nan_out);
    tu_check(t, gf <= 3e-7, "gelu_erf forward max err/max(1,|x|) %.3g", gf);
    tu_check(t, gb <= 1e-6, "gelu_erf derivative max err/max(1,|x|) %.3g", gb);
    /* the two GELUs differ by ~4.7e-4 at most (near |x| = 2): the erf form is not the tanh one */
    tu_check(t, vs_tanh > 1e-4, "gelu_erf vs tanh gelu: max difference only %.3g", vs_tanh);
    printf("gelu_erf max err/max(1,|x|): forward %.3g, derivative %.3g; vs tanh form %.3g\n", gf,
           gb, vs_tanh);
    free(x), free(y), free(yt), free(dg), free(ones);
}

/* ---- masked-LM loss ------------------------------------------------------------------------ */

typedef struct {
    int N, V;
    double norm, *logits;
    const int32_t *tg;
} mlm_ctx;

/* sum over rows with a target >= 0 of -log softmax(x)[target], / norm; losses out if not NULL */
static double mlm_ref(mlm_ctx *c, double *losses) {
    double total = 0;
    for (int n = 0; n < c->N; n++) {
        const double *x = c->logits + (size_t)n * c->V;
        double m = -INFINITY, z = 0, l = 0;
        if (c->tg[n] >= 0) {
            for (int i = 0; i < c->V; i++) m = x[i] > m ? x[i] : m;
            for (int i = 0; i < c->V; i++) z += exp(x[i] - m);
            l = log(z) - (x[c->tg[n]] - m);
        }
        if (losses) losses[n] = l;
        total += l;
    }
    return total / c->norm;
}

static double mlm_obj(void *p) {
    return mlm_ref(p, NULL);
}

static void test_mlm_loss(tu_ctx *t, int N, int V) {
    size_t NV = (size_t)N * V;
    float *logits = rnd(NV, 2), *probs = nan_buf(NV), *losses = nan_buf(N);
    int32_t *tg = malloc(N * sizeof *tg);
    for (int n = 0; n < N; n++)
        tg[n] = n % 3 == 1 ? (int32_t)(sp_rng_u64(SEED, SP_RNG_TEST, 78, n) % V) : -1;
    int64_t cnt = sp_mlm_count(tg, N);
    /* the caller's normaliser counts the whole step (here: as if other micro-batches held as
     * many selected positions again) */
    double norm = 2.0 * (double)cnt;
    mlm_ctx c = {N, V, norm, to_d(logits, NV), tg};
    double *rl = malloc(N * sizeof *rl), rloss = mlm_ref(&c, rl);
    float loss = sp_mlm_loss_forward(probs, losses, logits, tg, N, V, norm);
    tu_check(t, cnt == (N + 1) / 3, "sp_mlm_count %lld, want %d", (long long)cnt, (N + 1) / 3);
    tu_check(t, fabs(loss - rloss) <= TOL_FWD * fabs(rloss), "mlm loss %.9g vs %.9g", loss, rloss);
    double e = rel_fd(losses, rl, N);
    tu_check(t, e <= TOL_FWD, "mlm losses V=%d rel %.3g", V, e);

    float *dl = rnd(NV, 1); /* garbage: the backward overwrites, ignored rows with 0 */
    sp_mlm_loss_backward(dl, probs, tg, norm, N, V);
    double *g = malloc(NV * sizeof *g);
    fd_grad(c.logits, NV, NULL, 0, mlm_obj, &c, g);
    e = rel_fd(dl, g, NV);
    tu_check(t, e <= TOL_BWD, "mlm loss backward V=%d rel %.3g", V, e);
    int nonzero = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < V && tg[n] < 0; i++) nonzero += dl[(size_t)n * V + i] != 0.0f;
    tu_check(t, nonzero == 0, "mlm loss: %d non-zero gradients on ignored rows", nonzero);

    /* in place (probs = logits, as the model calls it): the counted rows' probabilities, the
     * losses and the gradient are the same bits */
    float *ip = fcopy(logits, NV), *l2 = nan_buf(N), *dl2 = rnd(NV, 1);
    float loss2 = sp_mlm_loss_forward(ip, l2, ip, tg, N, V, norm);
    sp_mlm_loss_backward(dl2, ip, tg, norm, N, V);
    int same =
        loss2 == loss && !memcmp(l2, losses, N * sizeof *l2) && !memcmp(dl2, dl, NV * sizeof *dl);
    for (int n = 0; n < N; n++)
        if (tg[n] >= 0) same &= !memcmp(ip + (size_t)n * V, probs + (size_t)n * V, V * 4);
    tu_check(t, same, "mlm loss in place differs from out of place");

    /* two micro-batches with the step's normaliser add up to the whole batch's loss; every row's
     * gradient is the same bits */
    int h = N / 2;
    float *pa = nan_buf(NV), *la = nan_buf(N), *da = nan_buf(NV);
    float sum = sp_mlm_loss_forward(pa, la, logits, tg, h, V, norm) +
                sp_mlm_loss_forward(pa + (size_t)h * V, la + h, logits + (size_t)h * V, tg + h,
                                    N - h, V, norm);
    sp_mlm_loss_backward(da, pa, tg, norm, h, V);
    sp_mlm_loss_backward(da + (size_t)h * V, pa + (size_t)h * V, tg + h, norm, N - h, V);
    tu_check(t, fabs(sum - loss) <= 1e-6 * fabs(loss) && !memcmp(da, dl, NV * sizeof *da),
             "mlm loss split in two micro-batches: %.9g vs %.9g, gradients %s", sum, loss,
             memcmp(da, dl, NV * sizeof *da) ? "differ" : "equal");

    /* every target counted and norm = N: the language-model loss, bit for bit */
    int32_t *all = malloc(N * sizeof *all);
    for (int n = 0; n < N; n++) all[n] = (int32_t)(sp_rng_u64(SEED, SP_RNG_TEST, 79, n) % V);
    float *pc = nan_buf(NV), *lc = nan_buf(N), *dc = nan_buf(NV), *dm = nan_buf(NV);
    float lm = sp_crossentropy_forward(pc, lc, logits, all, N, V);
    float ml = sp_mlm_loss_forward(pa, la, logits, all, N, V, N);
    sp_crossentropy_backward(dc, pc, all, 1.0f / N, N, V);
    sp_mlm_loss_backward(dm, pa, all, N, N, V);
    tu_check(t, lm == ml && !memcmp(dc, dm, NV * sizeof *dc),
             "mlm loss with every target and norm N differs from crossentropy: %.9g vs %.9g", ml,
             lm);
    /* nothing selected anywhere (norm 0): loss 0, gradient 0, no division by zero */
    for (int n = 0; n < N; n++) all[n] = -1;
    float l0 = sp_mlm_loss_forward(pa, la, logits, all, N, V, 0);
    sp_mlm_loss_backward(dm, pa, all, 0, N, V);
    int nz = 0;
    for (size_t i = 0; i < NV; i++) nz += dm[i] != 0.0f;
    tu_check(t, l0 == 0.0f && nz == 0, "mlm loss with nothing selected: %g, %d non-zero grads", l0,
             nz);

    free(all), free(pc), free(lc), free(dc), free(dm), free(pa), free(la), free(da);
    free(ip), free(l2), free(dl2), free(g), free(dl), free(rl), free(c.logits);
    free(logits), free(probs), free(losses), free(tg);
}

/* ---- masked-LM masking --------------------------------------------------------------------- */

#define MLM_SEED 20240601u
#define NORMAL   256 /* the byte vocabulary */

static int32_t tok_at(uint64_t step, uint64_t k, int t) {
    return (int32_t)(sp_rng_u64(SEED, SP_RNG_TEST, 1000 + step, (k << 32) | (uint64_t)t) % NORMAL);
}

/* sequence k of step `step` masked into inp, tgt */
static int mask_seq(uint64_t step, uint64_t k, int T, int32_t *inp, int32_t *tgt) {
    int32_t *tok = malloc(T * sizeof *tok);
    for (int i = 0; i < T; i++) tok[i] = tok_at(step, k, i);
    int n = sp_mlm_mask(MLM_SEED, step, k, tok, T, NORMAL, inp, tgt);
    free(tok);
    return n;
}

/* The same global sequences computed in different orders and splits (in order, in reverse, dealt
 * round robin to 4 "ranks", as 2 micro-batches of 3 replicas): the same bits. Another step or
 * seed masks differently. */
static void test_mlm_layouts(tu_ctx *t) {
    enum { G = 48, T = 96 };
    size_t n = (size_t)G * T;
    int32_t *in[4], *tg[4];
    for (int v = 0; v < 4; v++) in[v] = malloc(n * 4), tg[v] = malloc(n * 4);
    for (int k = 0; k < G; k++) mask_seq(7, k, T, in[0] + (size_t)k * T, tg[0] + (size_t)k * T);
    for (int k = G - 1; k >= 0; k--)
        mask_seq(7, k, T, in[1] + (size_t)k * T, tg[1] + (size_t)k * T);
    for (int r = 0; r < 4; r++)
        for (int k = r; k < G; k += 4)
            mask_seq(7, k, T, in[2] + (size_t)k * T, tg[2] + (size_t)k * T);
    for (int mb = 0; mb < 2; mb++) /* replica q, micro-batch mb: k = q * G/3 + mb * G/6 + j */
        for (int q = 2; q >= 0; q--)
            for (int j = 0; j < G / 6; j++) {
                int k = q * (G / 3) + mb * (G / 6) + j;
                mask_seq(7, k, T, in[3] + (size_t)k * T, tg[3] + (size_t)k * T);
            }
    int diff = 0;
    for (int v = 1; v < 4; v++) diff += memcmp(in[v], in[0], n * 4) || memcmp(tg[v], tg[0], n * 4);
    tu_check(t, diff == 0, "mlm masking: %d of 3 layouts differ from the in-order one", diff);

    /* in place gives the same */
    int32_t *ip = malloc(T * 4), *tt = malloc(T * 4);
    for (int i = 0; i < T; i++) ip[i] = tok_at(7, 5, i);
    sp_mlm_mask(MLM_SEED, 7, 5, ip, T, NORMAL, ip, tt);
    tu_check(t, !memcmp(ip, in[0] + 5 * T, T * 4) && !memcmp(tt, tg[0] + 5 * T, T * 4),
             "mlm masking in place differs");
    /* another step, another seed: other masks (same tokens) */
    int32_t *tok = malloc(T * 4), *o1 = malloc(T * 4), *o2 = malloc(T * 4);
    for (int i = 0; i < T; i++) tok[i] = tok_at(7, 5, i);
    sp_mlm_mask(MLM_SEED, 8, 5, tok, T, NORMAL, o1, tt);
    int same_step = !memcmp(tt, tg[0] + 5 * T, T * 4);
    sp_mlm_mask(MLM_SEED + 1, 7, 5, tok, T, NORMAL, o2, tt);
    int same_seed = !memcmp(tt, tg[0] + 5 * T, T * 4);
    tu_check(t, !same_step && !same_seed, "mlm masking ignores the step (%d) or the seed (%d)",
             same_step, same_seed);
    for (int v = 0; v < 4; v++) free(in[v]), free(tg[v]);
    free(ip), free(tt), free(tok), free(o1), free(o2);
}

/* Over 4M positions: selected 15%, of which 80% [MASK], 10% a random ordinary token (which is
 * the original one 1 time in 256), 10% unchanged; targets the original at selected positions
 * and -1 elsewhere; the random tokens uniform (chi-square); special ids never selected. */
static void test_mlm_stats(tu_ctx *t) {
    enum { T = 1024, G = 4096 };
    int32_t *tok = malloc(T * 4), *inp = malloc(T * 4), *tgt = malloc(T * 4);
    int64_t pos = 0, sel = 0, masked = 0, changed = 0, same = 0, bad = 0, hist[NORMAL] = {0};
    for (int k = 0; k < G; k++) {
        uint64_t step = (uint64_t)k / 1024, kk = (uint64_t)k % 1024;
        for (int i = 0; i < T; i++) tok[i] = tok_at(step, kk, i);
        int ns = sp_mlm_mask(MLM_SEED, step, kk, tok, T, NORMAL, inp, tgt);
        bad += ns != sp_mlm_count(tgt, T);
        for (int i = 0; i < T; i++) {
            pos++;
            if (tgt[i] < 0) {
                bad += tgt[i] != -1 || inp[i] != tok[i];
                continue;
            }
            sel++;
            bad += tgt[i] != tok[i];
            if (inp[i] == NORMAL + SP_MLM_MASK)
                masked++;
            else if (inp[i] == tok[i])
                same++;
            else {
                changed++;
                bad += inp[i] < 0 || inp[i] >= NORMAL;
                if (inp[i] >= 0 && inp[i] < NORMAL) hist[inp[i]]++;
            }
        }
    }
    double fs = (double)sel / pos, fm = (double)masked / sel, fc = (double)changed / sel;
    double fu = (double)same / sel;
    /* expected: random draws that hit the original (1/256 of them) count as unchanged */
    double wc = 0.1 * (1 - 1.0 / NORMAL), wu = 0.1 + 0.1 / NORMAL;
    tu_check(t, bad == 0, "mlm masking: %lld inconsistent positions", (long long)bad);
    tu_check(t, fabs(fs - 0.15) <= 0.002, "mlm selected %.4f of %lld positions, want 0.15", fs,
             (long long)pos);
    tu_check(t, fabs(fm - 0.8) <= 0.002 && fabs(fc - wc) <= 0.002 && fabs(fu - wu) <= 0.002,
             "mlm branches: mask %.4f (0.8), random %.4f (%.4f), unchanged %.4f (%.4f)", fm, fc, wc,
             fu, wu);
    /* chi-square of the random tokens over 256 bins (255 dof): 5 standard deviations */
    double chi = 0, e = (double)changed / NORMAL;
    for (int i = 0; i < NORMAL; i++) chi += (hist[i] - e) * (hist[i] - e) / e;
    /* the random draw excludes the original token only in how it is counted (above), which
     * skews each bin by at most 1/256 of its share: far inside the bound */
    tu_check(t, chi <= 255 + 5 * sqrt(2 * 255.0), "mlm random tokens chi-square %.1f", chi);
    printf("mlm masking over %lld positions: selected %.4f; mask %.4f, random %.4f, unchanged "
           "%.4f; chi-square %.1f (255 dof)\n",
           (long long)pos, fs, fm, fc, fu, chi);

    /* special ids (>= NORMAL) and out-of-range ids pass through unselected */
    for (int i = 0; i < T; i++) tok[i] = NORMAL + i % SP_MLM_NSPECIAL;
    int ns = sp_mlm_mask(MLM_SEED, 0, 0, tok, T, NORMAL, inp, tgt);
    int moved = ns != 0 || sp_mlm_count(tgt, T) != 0 || memcmp(inp, tok, T * 4);
    tu_check(t, !moved, "mlm masking selected %d special tokens", ns);
    free(tok), free(inp), free(tgt);
}

/* ---- bf16 bidirectional attention ---------------------------------------------------------- */

/* bf16 against fp32 on the same inputs, both bidirectional (the bf16 rounding of q, k, v, P, dO,
 * dS bounds the difference, as in test_gemm.c) */
static void test_attention_bidir_bf16(tu_ctx *t, int B, int T, int C, int NH) {
    sp_gemm *g = NULL;
    sp_err err = {0};
    if (sp_gemm_create(&g, 1, &err)) {
        printf("bf16 bidirectional attention skipped: %s\n", err.msg);
        return;
    }
    size_t n3 = (size_t)B * T * 3 * C, n1 = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    size_t ns = sp_attention_scratch_floats(T, NH);
    float *qkv = rnd(n3, 2), *dout = rnd(n1, 1), *o32 = nan_buf(n1), *o16 = nan_buf(n1);
    float *a32 = nan_buf(na), *a16 = nan_buf(na), *scr = nan_buf(ns);
    float *d32 = calloc(n3, 4), *d16 = calloc(n3, 4);
    sp_attention_forward_ex(NULL, o32, a32, qkv, B, T, C, NH, 0);
    sp_attention_forward_ex(g, o16, a16, qkv, B, T, C, NH, 0);
    sp_attention_backward_ex(NULL, d32, dout, qkv, a32, scr, B, T, C, NH, 0);
    sp_attention_backward_ex(g, d16, dout, qkv, a16, scr, B, T, C, NH, 0);
    double eo = tu_rel_maxabs(o16, o32, n1), ea = tu_rel_maxabs(a16, a32, na);
    double ed = tu_rel_maxabs(d16, d32, n3);
    int zeros = 0;
    for (size_t i = 0; i < na; i++) zeros += a16[i] == 0.0f;
    tu_check(t, eo <= 2e-2 && ea <= 2e-2 && ed <= 2e-2 && eo > 0 && ed > 0 && zeros == 0,
             "bf16 bidirectional attention T %d: out %.2e, probs %.2e, dqkv %.2e, %d zero probs", T,
             eo, ea, ed, zeros);
    printf("bf16 bidirectional attention T %d: out %.2e, probs %.2e, dqkv %.2e relative to fp32\n",
           T, eo, ea, ed);
    free(qkv), free(dout), free(o32), free(o16), free(a32), free(a16), free(scr), free(d32);
    free(d16);
    sp_gemm_free(g);
}

int main(void) {
    tu_ctx t = {0};
    test_rmsnorm(&t, 10, 8, 1e-5f, 8, 1.0f);
    test_rmsnorm(&t, 6, 37, 1e-6f, 37, 1.0f); /* C not a multiple of the vector width */
    test_rmsnorm(&t, 10, 8, 1e-5f, 4, 0.5f);  /* masked: the fade-in of widen_zero / random */
    test_rmsnorm(&t, 6, 37, 1e-6f, 19, 0.3f);
    test_rmsnorm_masked_ends(&t, 7, 48, 16);
    test_rmsnorm_masked_ends(&t, 7, 37, 19);
    test_layernorm_eps(&t, 4, 48);
    test_rope(&t, 2, 9, 24, 3, 10000.0);
    test_rope(&t, 1, 130, 32, 2, 500000.0);
    test_swiglu(&t, 7, 37);
    test_swiglu(&t, 3, 64);
    test_swiglu_extremes(&t);
    test_gelu_erf(&t, 320);
    test_gelu_erf(&t, 37);
    test_gelu_erf_sweep(&t);
    test_mlm_loss(&t, 12, 11);
    test_mlm_loss(&t, 9, 260);
    test_mlm_layouts(&t);
    test_mlm_stats(&t);
    test_attention_bidir_bf16(&t, 2, 130, 64, 4);
    return tu_finish(&t, "kernels2");
}
