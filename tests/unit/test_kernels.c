/* Kernel tests: every forward against a naive double-precision reference, every backward against
 * central finite differences of that reference, plus the accuracy of the fast exp and GELU.
 *
 * Tolerances (max-abs difference over max-abs of the reference, see tu_rel_maxabs):
 *   forward vs double reference ............................... 1e-5  (float rounding of sums)
 *   analytic backward vs FD of the double reference ............ 1e-4  (FD step h = 1e-6 in
 *     double has truncation + cancellation error ~1e-10 relative; the rest is float rounding)
 *   AdamW (3 steps) vs double reference of the header formula .. 1e-6
 *   sp_fexp: relative 2.5e-7 where exp(x) is a normal float (the bound fastmath.h claims)
 *   GELU: |err| <= 2e-7 max(1,|x|) forward, 1e-6 max(1,|x|) for the derivative
 *   sp_fsqrt (AdamW's vectorisable sqrt): within 1 ulp of the correctly rounded root
 * Every backward is checked on gradient buffers pre-filled with random values, so the test also
 * pins the accumulate-into (+=) contract. The FD objective is L = sum(out * R), R fixed random. */
#include "sprout/core.h"
#include "sprout/kernels.h"
#include "kernel_fd.h"
#include "testutil.h"

#include "../../src/kernels/fastmath.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FWD       1e-5
#define TOL_BWD       1e-4
#define TOL_ADAM      1e-6
#define EXP_REL_BOUND 2.5e-7

/* ---- encoder ------------------------------------------------------------------------------- */

typedef struct {
    int B, T, C, V;
    const int32_t *inp;
    double *wte, *wpe, *out;
    const float *R;
} enc_ctx;

static void enc_ref(enc_ctx *c) {
    for (int n = 0; n < c->B * c->T; n++)
        for (int i = 0; i < c->C; i++)
            c->out[(size_t)n * c->C + i] =
                c->wte[(size_t)c->inp[n] * c->C + i] + c->wpe[(size_t)(n % c->T) * c->C + i];
}

static double enc_obj(void *p) {
    enc_ctx *c = p;
    enc_ref(c);
    return dot_d(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_encoder(tu_ctx *t) {
    int B = 2, T = 5, C = 8, V = 11;
    size_t N = (size_t)B * T;
    int32_t inp[10] = {3, 7, 3, 0, 10, 7, 7, 1, 3, 2}; /* repeats: scatter must add */
    float *wte = rnd((size_t)V * C, 1), *wpe = rnd((size_t)T * C, 1), *out = nan_buf(N * C);
    float *R = rnd(N * C, 1);
    float *dwte0 = rnd((size_t)V * C, 0.5f), *dwpe0 = rnd((size_t)T * C, 0.5f);
    float *dwte = fcopy(dwte0, (size_t)V * C), *dwpe = fcopy(dwpe0, (size_t)T * C);
    enc_ctx c = {B,
                 T,
                 C,
                 V,
                 inp,
                 to_d(wte, (size_t)V * C),
                 to_d(wpe, (size_t)T * C),
                 malloc(N * C * sizeof(double)),
                 R};

    sp_encoder_forward(out, inp, wte, wpe, B, T, C);
    enc_ref(&c);
    double e = rel_fd(out, c.out, N * C);
    tu_check(t, e <= TOL_FWD, "encoder forward rel %.3g", e);

    sp_encoder_backward(dwte, dwpe, R, inp, B, T, C);
    double *g = malloc((size_t)V * C * sizeof *g);
    float *d = delta(dwte, dwte0, (size_t)V * C);
    fd_grad(c.wte, (size_t)V * C, NULL, 0, enc_obj, &c, g);
    e = rel_fd(d, g, (size_t)V * C);
    tu_check(t, e <= TOL_BWD, "encoder dwte rel %.3g", e);
    free(d);
    d = delta(dwpe, dwpe0, (size_t)T * C);
    fd_grad(c.wpe, (size_t)T * C, NULL, 0, enc_obj, &c, g);
    e = rel_fd(d, g, (size_t)T * C);
    tu_check(t, e <= TOL_BWD, "encoder dwpe rel %.3g", e);

    free(d), free(g), free(c.wte), free(c.wpe), free(c.out);
    free(wte), free(wpe), free(out), free(R), free(dwte0), free(dwpe0), free(dwte), free(dwpe);
}

/* ---- layernorm ----------------------------------------------------------------------------- */

/* The reference is the masked LayerNorm (weights mk_i: 1 below n_old, mc from n_old on); the plain
 * one is n_old = C, where every weight is 1 and the double arithmetic is the plain formula's. */
typedef struct {
    int N, C, n_old;
    double mc;
    double *inp, *w, *b, *out;
    const float *R;
} ln_ctx;

static void ln_ref(ln_ctx *c) {
    for (int n = 0; n < c->N; n++) {
        const double *x = c->inp + (size_t)n * c->C;
        double m = 0, v = 0, W = 0;
        for (int i = 0; i < c->C; i++) {
            double mk = i < c->n_old ? 1 : c->mc;
            W += mk;
            m += mk * x[i];
        }
        m /= W;
        for (int i = 0; i < c->C; i++) v += (i < c->n_old ? 1 : c->mc) * (x[i] - m) * (x[i] - m);
        v /= W;
        double s = 1 / sqrt(v + 1e-5);
        for (int i = 0; i < c->C; i++)
            c->out[(size_t)n * c->C + i] =
                (i < c->n_old ? 1 : c->mc) * ((x[i] - m) * s * c->w[i] + c->b[i]);
    }
}

static double ln_obj(void *p) {
    ln_ctx *c = p;
    ln_ref(c);
    return dot_d(c->out, c->R, (size_t)c->N * c->C);
}

/* the plain kernels with n_old = C (mc unused), else the masked pair with (n_old, mc) */
static void test_layernorm(tu_ctx *t, int N, int C, int n_old, float mc) {
    size_t NC = (size_t)N * C;
    int masked = n_old < C;
    float *inp = rnd(NC, 1), *w = rnd(C, 1), *b = rnd(C, 1), *R = rnd(NC, 1);
    /* a large common offset: the variance must not be E[x^2] - E[x]^2 */
    for (int n = 0; n < N; n += 3)
        for (int i = 0; i < C; i++) inp[(size_t)n * C + i] += 50.0f;
    /* a row with variance ~1e-5, where eps = 1e-5 matters */
    for (int i = 0; i < C; i++) inp[(size_t)C + i] *= 0.003f;
    float *out = nan_buf(NC), *mean = nan_buf(N), *rstd = nan_buf(N);
    float *di0 = rnd(NC, 0.5f), *dw0 = rnd(C, 0.5f), *db0 = rnd(C, 0.5f);
    float *di = fcopy(di0, NC), *dw = fcopy(dw0, C), *db = fcopy(db0, C);
    ln_ctx c = {N,
                C,
                n_old,
                masked ? mc : 1,
                to_d(inp, NC),
                to_d(w, C),
                to_d(b, C),
                malloc(NC * sizeof(double)),
                R};

    if (masked)
        sp_layernorm_masked_forward(out, mean, rstd, inp, w, b, N, C, n_old, mc);
    else
        sp_layernorm_forward(out, mean, rstd, inp, w, b, N, C);
    ln_ref(&c);
    double e = rel_fd(out, c.out, NC);
    tu_check(t, e <= TOL_FWD, "layernorm forward N=%d C=%d n_old=%d c=%g rel %.3g", N, C, n_old, mc,
             e);

    if (masked)
        sp_layernorm_masked_backward(di, dw, db, R, inp, w, mean, rstd, N, C, n_old, mc);
    else
        sp_layernorm_backward(di, dw, db, R, inp, w, mean, rstd, N, C);
    double *g = malloc(NC * sizeof *g);
    struct {
        const char *name;
        double *x;
        float *got, *pre;
        size_t n;
    } in[3] = {{"dinp", c.inp, di, di0, NC}, {"dw", c.w, dw, dw0, C}, {"db", c.b, db, db0, C}};
    for (int k = 0; k < 3; k++) {
        float *d = delta(in[k].got, in[k].pre, in[k].n);
        fd_grad(in[k].x, in[k].n, NULL, 0, ln_obj, &c, g);
        e = rel_fd(d, g, in[k].n);
        tu_check(t, e <= TOL_BWD, "layernorm %s N=%d C=%d n_old=%d c=%g rel %.3g", in[k].name, N, C,
                 n_old, mc, e);
        free(d);
    }
    free(g), free(c.inp), free(c.w), free(c.b), free(c.out);
    free(inp), free(w), free(b), free(R), free(out), free(mean), free(rstd);
    free(di0), free(dw0), free(db0), free(di), free(dw), free(db);
}

/* The masked LayerNorm at c = 1 against the plain kernel on the same input: the same function,
 * only the sums are split in two, so within 1e-6 relative. At c = 0 the old channels equal the
 * plain LayerNorm of the first n_old channels bit for bit and the new ones are 0. */
static void test_layernorm_masked_ends(tu_ctx *t, int N, int C, int n_old) {
    size_t NC = (size_t)N * C;
    float *inp = rnd(NC, 1), *w = rnd(C, 1), *b = rnd(C, 1), *R = rnd(NC, 1);
    float *o1 = nan_buf(NC), *o2 = nan_buf(NC), *mean = nan_buf(N), *rstd = nan_buf(N);
    float *d1 = rnd(NC, 0.5f), *d2 = fcopy(d1, NC), *g1 = rnd(2 * C, 0.5f), *g2 = fcopy(g1, 2 * C);
    sp_layernorm_forward(o1, mean, rstd, inp, w, b, N, C);
    sp_layernorm_backward(d1, g1, g1 + C, R, inp, w, mean, rstd, N, C);
    sp_layernorm_masked_forward(o2, mean, rstd, inp, w, b, N, C, n_old, 1.0f);
    sp_layernorm_masked_backward(d2, g2, g2 + C, R, inp, w, mean, rstd, N, C, n_old, 1.0f);
    double e = fmax(tu_rel_maxabs(o2, o1, NC),
                    fmax(tu_rel_maxabs(d2, d1, NC), tu_rel_maxabs(g2, g1, 2 * C)));
    tu_check(t, e <= 1e-6, "masked layernorm at c = 1 vs plain: rel %.3g", e);

    /* c = 0: the rows of the first n_old channels alone through the plain kernel */
    float *small = malloc((size_t)N * n_old * sizeof(float)), *os = nan_buf((size_t)N * n_old);
    for (int n = 0; n < N; n++)
        memcpy(small + (size_t)n * n_old, inp + (size_t)n * C, (size_t)n_old * sizeof(float));
    sp_layernorm_forward(os, mean, rstd, small, w, b, N, n_old);
    sp_layernorm_masked_forward(o2, mean, rstd, inp, w, b, N, C, n_old, 0.0f);
    int bad = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < C; i++) {
            float want = i < n_old ? os[(size_t)n * n_old + i] : 0.0f;
            bad += !(o2[(size_t)n * C + i] == want); /* new channels may be -0 (c * negative) */
        }
    tu_check(t, bad == 0, "masked layernorm at c = 0: %d values differ from the old channels' LN",
             bad);
    free(inp), free(w), free(b), free(R), free(o1), free(o2), free(mean), free(rstd);
    free(d1), free(d2), free(g1), free(g2), free(small), free(os);
}

/* ---- column masks -------------------------------------------------------------------------- */

typedef struct {
    int N, OC, n_old, sections;
    double mc, *inp, *out;
    const float *R;
} mk_ctx;

static void mk_ref(mk_ctx *c) {
    int sec = c->OC / c->sections;
    for (size_t i = 0; i < (size_t)c->N * c->OC; i++)
        c->out[i] = ((int)(i % c->OC) % sec < c->n_old ? 1 : c->mc) * c->inp[i];
}

static double mk_obj(void *p) {
    mk_ctx *c = p;
    mk_ref(c);
    return dot_d(c->out, c->R, (size_t)c->N * c->OC);
}

static void test_mask_cols(tu_ctx *t, int N, int OC, int n_old, int sections, float mc) {
    size_t n = (size_t)N * OC;
    float *inp = rnd(n, 1), *out = fcopy(inp, n), *R = rnd(n, 1), *d = nan_buf(n);
    mk_ctx c = {N, OC, n_old, sections, mc, to_d(inp, n), malloc(n * sizeof(double)), R};
    sp_mask_cols_forward(out, N, OC, n_old, sections, mc);
    mk_ref(&c);
    double e = rel_fd(out, c.out, n);
    tu_check(t, e <= TOL_FWD, "mask_cols forward OC=%d sections=%d c=%g rel %.3g", OC, sections, mc,
             e);
    /* overwrites (d starts as NaN), and in place gives the same */
    sp_mask_cols_backward(d, R, N, OC, n_old, sections, mc);
    double *g = malloc(n * sizeof *g);
    fd_grad(c.inp, n, NULL, 0, mk_obj, &c, g);
    e = rel_fd(d, g, n);
    tu_check(t, e <= TOL_BWD, "mask_cols backward OC=%d sections=%d c=%g rel %.3g", OC, sections,
             mc, e);
    float *dr = fcopy(R, n);
    sp_mask_cols_backward(dr, dr, N, OC, n_old, sections, mc);
    tu_check(t, !memcmp(dr, d, n * sizeof(float)), "mask_cols backward in place differs");
    free(inp), free(out), free(R), free(d), free(c.inp), free(c.out), free(g), free(dr);
}

/* ---- matmul -------------------------------------------------------------------------------- */

typedef struct {
    int N, C, OC;
    double *inp, *w, *bias, *out; /* bias may be NULL */
    const float *R;
} mm_ctx;

static void mm_ref(mm_ctx *c) {
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->OC; o++) {
            double s = c->bias ? c->bias[o] : 0;
            for (int i = 0; i < c->C; i++)
                s += c->inp[(size_t)n * c->C + i] * c->w[(size_t)i * c->OC + o];
            c->out[(size_t)n * c->OC + o] = s;
        }
}

static double mm_obj(void *p) {
    mm_ctx *c = p;
    mm_ref(c);
    return dot_d(c->out, c->R, (size_t)c->N * c->OC);
}

static void test_matmul(tu_ctx *t, int N, int C, int OC, int with_bias) {
    size_t NC = (size_t)N * C, CO = (size_t)C * OC, NO = (size_t)N * OC;
    float *inp = rnd(NC, 1), *w = rnd(CO, 1), *bias = rnd(OC, 1), *R = rnd(NO, 1);
    float *out = nan_buf(NO);
    float *di0 = rnd(NC, 0.5f), *dw0 = rnd(CO, 0.5f), *db0 = rnd(OC, 0.5f);
    float *di = fcopy(di0, NC), *dw = fcopy(dw0, CO), *db = fcopy(db0, OC);
    mm_ctx c = {N,
                C,
                OC,
                to_d(inp, NC),
                to_d(w, CO),
                with_bias ? to_d(bias, OC) : NULL,
                malloc(NO * sizeof(double)),
                R};

    sp_matmul_forward(NULL, out, inp, w, NULL, with_bias ? bias : NULL, N, C, OC);
    mm_ref(&c);
    double e = rel_fd(out, c.out, NO);
    tu_check(t, e <= TOL_FWD, "matmul forward bias=%d rel %.3g", with_bias, e);

    sp_matmul_backward(NULL, di, dw, with_bias ? db : NULL, R, inp, w, NULL, N, C, OC);
    double *g = malloc((CO > NC ? CO : NC) * sizeof *g);
    struct {
        const char *name;
        double *x;
        float *got, *pre;
        size_t n;
    } in[3] = {
        {"dinp", c.inp, di, di0, NC}, {"dw", c.w, dw, dw0, CO}, {"dbias", c.bias, db, db0, OC}};
    for (int k = 0; k < (with_bias ? 3 : 2); k++) {
        float *d = delta(in[k].got, in[k].pre, in[k].n);
        fd_grad(in[k].x, in[k].n, NULL, 0, mm_obj, &c, g);
        e = rel_fd(d, g, in[k].n);
        tu_check(t, e <= TOL_BWD, "matmul %s bias=%d rel %.3g", in[k].name, with_bias, e);
        free(d);
    }
    if (!with_bias) {
        double e2 = tu_rel_maxabs(db, db0, OC);
        tu_check(t, e2 == 0, "matmul: dbias touched although NULL was passed for bias");
    }
    /* dinp = NULL skips the input gradient but still accumulates dw */
    float *dw2 = fcopy(dw0, CO);
    sp_matmul_backward(NULL, NULL, dw2, NULL, R, inp, w, NULL, N, C, OC);
    e = tu_rel_maxabs(dw2, dw, CO);
    tu_check(t, e <= 1e-6, "matmul dw with dinp=NULL differs rel %.3g", e);

    free(dw2), free(g), free(c.inp), free(c.w), free(c.bias), free(c.out);
    free(inp), free(w), free(bias), free(R), free(out), free(di0), free(dw0), free(db0), free(di);
    free(dw), free(db);
}

/* ---- attention ----------------------------------------------------------------------------- */

typedef struct {
    int B, T, C, NH, causal;
    double *qkv, *out, *att, *row;
    const float *R;
} at_ctx;

static void at_ref(at_ctx *c) {
    int T = c->T, C = c->C, NH = c->NH, hd = C / NH;
    double scale = 1 / sqrt((double)hd);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const double *q = c->qkv + ((size_t)b * T + t) * 3 * C + h * hd;
                double *a = c->att + (((size_t)b * NH + h) * T + t) * T, m = -INFINITY, z = 0;
                int n = c->causal ? t + 1 : T; /* the keys row t sees */
                for (int t2 = 0; t2 < T; t2++) a[t2] = 0;
                for (int t2 = 0; t2 < n; t2++) {
                    const double *k = c->qkv + ((size_t)b * T + t2) * 3 * C + C + h * hd;
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += q[i] * k[i];
                    a[t2] = s * scale;
                    if (a[t2] > m) m = a[t2];
                }
                for (int t2 = 0; t2 < n; t2++) z += a[t2] = exp(a[t2] - m);
                for (int t2 = 0; t2 < n; t2++) a[t2] /= z;
                double *o = c->out + ((size_t)b * T + t) * C + h * hd;
                for (int i = 0; i < hd; i++) {
                    double s = 0;
                    for (int t2 = 0; t2 < n; t2++)
                        s += a[t2] * c->qkv[((size_t)b * T + t2) * 3 * C + 2 * C + h * hd + i];
                    o[i] = s;
                }
            }
}

static double at_obj(void *p) {
    at_ctx *c = p;
    at_ref(c);
    return dot_d(c->out, c->R, (size_t)c->B * c->T * c->C);
}

/* fd_sample: 0 = FD over every qkv entry, else over that many random entries; causal 0 is the
 * bidirectional variant (sp_attention_*_ex) */
static void test_attention(tu_ctx *t, int B, int T, int C, int NH, size_t fd_sample, int causal) {
    size_t NQ = (size_t)B * T * 3 * C, NO = (size_t)B * T * C, NA = (size_t)B * NH * T * T;
    float *qkv = rnd(NQ, 1), *R = rnd(NO, 1), *out = nan_buf(NO), *att = nan_buf(NA);
    float *dq0 = rnd(NQ, 0.5f), *dq = fcopy(dq0, NQ), *scratch = nan_buf((size_t)T * T);
    at_ctx c = {B,
                T,
                C,
                NH,
                causal,
                to_d(qkv, NQ),
                malloc(NO * sizeof(double)),
                malloc(NA * sizeof(double)),
                NULL,
                R};

    if (causal)
        sp_attention_forward(NULL, out, att, qkv, B, T, C, NH);
    else
        sp_attention_forward_ex(NULL, out, att, qkv, B, T, C, NH, 0);
    at_ref(&c);
    double e = rel_fd(out, c.out, NO);
    tu_check(t, e <= TOL_FWD, "attention forward T=%d causal=%d rel %.3g", T, causal, e);
    e = rel_fd(att, c.att, NA);
    tu_check(t, e <= TOL_FWD, "attention att T=%d causal=%d rel %.3g", T, causal, e);
    int nonzero_above = 0, zero_above = 0;
    double sum_err = 0;
    for (size_t r = 0; r < (size_t)B * NH * T; r++) {
        int row = (int)(r % T);
        double s = 0;
        for (int t2 = 0; t2 < T; t2++) {
            float v = att[r * T + t2];
            if (t2 > row && v != 0.0f) nonzero_above++;
            if (t2 > row && v == 0.0f) zero_above++;
            s += v;
        }
        if (fabs(s - 1) > sum_err) sum_err = fabs(s - 1);
    }
    if (causal)
        tu_check(t, nonzero_above == 0, "attention T=%d: %d non-zero entries above the diagonal", T,
                 nonzero_above);
    else /* the softmax of finite scores has no exact zero: the mask was not applied */
        tu_check(t, zero_above == 0, "bidirectional attention T=%d: %d zeros above the diagonal", T,
                 zero_above);
    tu_check(t, sum_err <= 1e-5, "attention T=%d: att row sums off by %.3g", T, sum_err);

    /* scratch starts as NaN: the backward must not read it before writing it */
    sp_attention_backward_ex(NULL, dq, R, qkv, att, scratch, B, T, C, NH, causal);
    float *d = delta(dq, dq0, NQ);
    size_t m = fd_sample ? fd_sample : NQ, *idx = NULL;
    double *g = malloc(m * sizeof *g);
    float *dsel = malloc(m * sizeof *dsel);
    if (fd_sample) {
        idx = malloc(m * sizeof *idx);
        for (size_t j = 0; j < m; j++)
            idx[j] = (size_t)(sp_rng_uniform(SEED, SP_RNG_TEST, 999, j) * (float)NQ) % NQ;
    }
    fd_grad(c.qkv, NQ, idx, m, at_obj, &c, g);
    for (size_t j = 0; j < m; j++) dsel[j] = d[idx ? idx[j] : j];
    e = rel_fd(dsel, g, m);
    tu_check(t, e <= TOL_BWD, "attention dqkv T=%d causal=%d (%zu entries) rel %.3g", T, causal, m,
             e);

    free(idx), free(dsel), free(g), free(d), free(c.qkv), free(c.out), free(c.att);
    free(qkv), free(R), free(out), free(att), free(dq0), free(dq), free(scratch);
}

/* ---- gelu ---------------------------------------------------------------------------------- */

static double gelu_d(double x) {
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

static double gelu_grad_d(double x) {
    double k = sqrt(2 / M_PI), u = k * (x + 0.044715 * x * x * x), th = tanh(u);
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * k * (1 + 3 * 0.044715 * x * x);
}

static void test_gelu(tu_ctx *t, size_t n) {
    test_elementwise(t, "gelu", gelu_d, sp_gelu_forward, sp_gelu_backward, n, TOL_FWD, TOL_BWD);
}

/* ---- residual ------------------------------------------------------------------------------ */

static void test_residual(tu_ctx *t) {
    size_t n = 1003;
    float *a = rnd(n, 1), *b = rnd(n, 1), *out = nan_buf(n), *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++) ref[i] = a[i] + b[i];
    sp_residual_forward(out, a, b, n);
    tu_check(t, memcmp(out, ref, n * sizeof *out) == 0, "residual forward");
    /* the model adds in place: out == a */
    float *a2 = fcopy(a, n);
    sp_residual_forward(a2, a2, b, n);
    tu_check(t, memcmp(a2, ref, n * sizeof *out) == 0, "residual forward in place");
    free(a), free(b), free(out), free(ref), free(a2);
}

/* ---- crossentropy -------------------------------------------------------------------------- */

typedef struct {
    int N, V;
    double *logits;
    const int32_t *tg;
} ce_ctx;

/* mean loss; probs/losses out if not NULL */
static double ce_ref(ce_ctx *c, double *probs, double *losses) {
    double total = 0;
    for (int n = 0; n < c->N; n++) {
        const double *x = c->logits + (size_t)n * c->V;
        double m = -INFINITY, z = 0;
        for (int i = 0; i < c->V; i++) m = x[i] > m ? x[i] : m;
        for (int i = 0; i < c->V; i++) z += exp(x[i] - m);
        double l = log(z) - (x[c->tg[n]] - m);
        if (probs)
            for (int i = 0; i < c->V; i++) probs[(size_t)n * c->V + i] = exp(x[i] - m) / z;
        if (losses) losses[n] = l;
        total += l;
    }
    return total / c->N;
}

static double ce_obj(void *p) {
    return ce_ref(p, NULL, NULL);
}

static void test_crossentropy(tu_ctx *t, int N, int V) {
    size_t NV = (size_t)N * V;
    float *logits = rnd(NV, 2), *probs = nan_buf(NV), *losses = nan_buf(N);
    int32_t *tg = malloc(N * sizeof *tg);
    for (int n = 0; n < N; n++) tg[n] = (int32_t)(sp_rng_u64(SEED, SP_RNG_TEST, 77, n) % V);
    /* a confidently wrong row: the loss must stay finite and exact */
    for (int i = 0; i < V; i++) logits[i] = 0;
    logits[(tg[0] + 1) % V] = 120.0f;
    ce_ctx c = {N, V, to_d(logits, NV), tg};
    double *rp = malloc(NV * sizeof *rp), *rl = malloc(N * sizeof *rl);
    double rmean = ce_ref(&c, rp, rl);

    float mean = sp_crossentropy_forward(probs, losses, logits, tg, N, V);
    double e = rel_fd(probs, rp, NV);
    tu_check(t, e <= TOL_FWD, "crossentropy probs V=%d rel %.3g", V, e);
    e = rel_fd(losses, rl, N);
    tu_check(t, e <= TOL_FWD, "crossentropy losses V=%d rel %.3g", V, e);
    tu_check(t, fabs(mean - rmean) <= TOL_FWD * fabs(rmean), "crossentropy mean %.9g vs %.9g", mean,
             rmean);

    /* in place, as the model calls it */
    float *inplace = fcopy(logits, NV), *losses2 = nan_buf(N);
    float mean2 = sp_crossentropy_forward(inplace, losses2, inplace, tg, N, V);
    tu_check(t,
             memcmp(inplace, probs, NV * sizeof *probs) == 0 &&
                 memcmp(losses2, losses, N * sizeof *losses) == 0 && mean2 == mean,
             "crossentropy in place differs from out of place");

    float *dl = rnd(NV, 1); /* garbage: the backward overwrites */
    sp_crossentropy_backward(dl, probs, tg, 1.0f / N, N, V);
    double *g = malloc(NV * sizeof *g);
    fd_grad(c.logits, NV, NULL, 0, ce_obj, &c, g);
    e = rel_fd(dl, g, NV);
    tu_check(t, e <= TOL_BWD, "crossentropy backward V=%d rel %.3g", V, e);

    free(g), free(dl), free(inplace), free(losses2), free(rp), free(rl), free(c.logits);
    free(logits), free(probs), free(losses), free(tg);
}

/* ---- adamw, sumsq, scale ------------------------------------------------------------------- */

static void test_adamw(tu_ctx *t, float wd) {
    size_t n = 1001;
    float lr = 3e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f;
    /* without decay p starts at 0, so that p holds the bare update (see below) */
    float *p = rnd(n, wd == 0 ? 0.0f : 1.0f), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    float *p0 = fcopy(p, n);
    double *pd = to_d(p, n), *md = calloc(n, sizeof *md), *vd = calloc(n, sizeof *vd);
    for (uint64_t step = 1; step <= 3; step++) {
        float *g = rnd(n, step == 2 ? 1e-3f : 1.0f);
        g[0] = 0; /* v may stay 0: eps guards the division */
        sp_adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, step);
        double bc1 = 1 - pow(b1, (double)step), bc2 = 1 - pow(b2, (double)step);
        for (size_t i = 0; i < n; i++) {
            pd[i] *= 1 - (double)lr * wd;
            md[i] = b1 * md[i] + (1 - (double)b1) * g[i];
            vd[i] = b2 * vd[i] + (1 - (double)b2) * g[i] * (double)g[i];
            pd[i] -= lr / bc1 * md[i] / (sqrt(vd[i]) / sqrt(bc2) + eps);
        }
        free(g);
    }
    double ep = rel_fd(p, pd, n), em = rel_fd(m, md, n), ev = rel_fd(v, vd, n);
    tu_check(t, ep <= TOL_ADAM && em <= TOL_ADAM && ev <= TOL_ADAM,
             "adamw wd=%g 3 steps rel p %.3g m %.3g v %.3g", wd, ep, em, ev);
    /* Without decay and from p0 = 0, p is the sum of the updates alone, whose error the
     * parameter-relative measure above would hide (storing p ~ 1 in float rounds by ~6e-8 per
     * step, as large as a tiny update's whole error budget). */
    if (wd == 0) {
        float *up = delta(p, p0, n);
        for (size_t i = 0; i < n; i++) pd[i] -= p0[i];
        double eu = rel_fd(up, pd, n);
        tu_check(t, eu <= TOL_ADAM, "adamw update p - p0 rel %.3g", eu);
        free(up);
    }
    free(p0), free(p), free(m), free(v), free(pd), free(md), free(vd);
}

static void test_sumsq_scale(tu_ctx *t) {
    size_t ns = 1000003;
    float *x = rnd(ns, 3);
    double ref = 0;
    for (size_t i = 0; i < ns; i++) ref += (double)x[i] * x[i];
    double s = sp_sumsq(x, ns);
    tu_check(t, fabs(s - ref) <= 1e-6 * ref, "sumsq %.12g vs %.12g", s, ref);
    double s1 = sp_sumsq(x, 1), r1 = (double)x[0] * x[0];
    tu_check(t, sp_sumsq(x, 0) == 0 && fabs(s1 - r1) <= 1e-6 * r1, "sumsq small n");
    float *y = fcopy(x, ns);
    sp_scale(y, ns, 0.37f);
    int bad = 0;
    for (size_t i = 0; i < ns; i++) bad += y[i] != x[i] * 0.37f;
    tu_check(t, bad == 0, "scale: %d mismatches", bad);
    free(x), free(y);
}

/* ---- fast exp and GELU accuracy sweeps ----------------------------------------------------- */

static void test_fastmath(tu_ctx *t) {
    enum { NS = 1000000 };
    static const float special[] = {0.0f,    -0.0f,    88.0f,   -88.0f,  1e4f,    -1e4f,
                                    1e-45f,  -1e-45f,  1e-40f,  -1e-40f, FLT_MIN, -FLT_MIN,
                                    88.72f,  -87.3f,   -103.9f, -110.0f, 1e30f,   -1e30f,
                                    FLT_MAX, -FLT_MAX, 30.0f,   -30.0f,  10.0f,   -10.0f};
    size_t nsp = sizeof special / sizeof special[0], n = NS + nsp;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *dg = calloc(n, sizeof *dg);
    float *ones = malloc(n * sizeof *ones);
    for (size_t i = 0; i < NS; i++) x[i] = -20.0f + 40.0f * (float)i / (float)(NS - 1);
    memcpy(x + NS, special, sizeof special);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;

    /* exp: relative error where the result is normal; inf only on true overflow, 0/denormal
     * only on true underflow; never NaN */
    double exp_err = 0;
    int exp_bad = 0;
    for (size_t i = 0; i < n; i++) {
        float f = sp_fexp(x[i]);
        double r = exp((double)x[i]);
        if (isnan(f))
            exp_bad++;
        else if (r > FLT_MAX)
            exp_bad += !isinf(f);
        else if (r >= FLT_MIN) {
            double e = fabs(f - r) / r;
            if (!(e <= exp_err)) exp_err = e;
        } else
            exp_bad += !(f >= 0 && f <= 2 * FLT_MIN && fabs(f - r) <= 1e-3 * FLT_MIN + 2e-45);
    }
    /* the softmax range [-88, 0] densely, on top of the sweep */
    for (int i = 0; i <= NS; i++) {
        float xi = -88.0f * (float)i / NS;
        double r = exp((double)xi), e = fabs(sp_fexp(xi) - r) / r;
        if (r >= FLT_MIN && !(e <= exp_err)) exp_err = e;
    }
    tu_check(t, exp_err <= EXP_REL_BOUND, "sp_fexp max rel err %.3g > %.3g", exp_err,
             EXP_REL_BOUND);
    tu_check(t, exp_bad == 0, "sp_fexp: %d wrong overflow/underflow/NaN results", exp_bad);
    printf("sp_fexp max rel err %.3g\n", exp_err);

    /* GELU forward and derivative vs double libm */
    sp_gelu_forward(y, x, n);
    sp_gelu_backward(dg, x, ones, n);
    double gf = 0, gb = 0;
    int nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        double xi = x[i], w = fabs(xi) > 1 ? fabs(xi) : 1;
        nonfinite += !isfinite(y[i]) + !isfinite(dg[i]);
        double ef = fabs(y[i] - gelu_d(xi)) / w, eb = fabs(dg[i] - gelu_grad_d(xi)) / w;
        if (fabs(xi) > 1e6) { /* x^3 overflows double's usefulness: the limits are x or 0 */
            ef = fabs(y[i] - (xi > 0 ? xi : 0)) / w;
            eb = fabs(dg[i] - (xi > 0 ? 1 : 0));
        }
        if (!(ef <= gf)) gf = ef;
        if (!(eb <= gb)) gb = eb;
    }
    tu_check(t, nonfinite == 0, "gelu: %d non-finite results for finite input", nonfinite);
    tu_check(t, gf <= 2e-7, "gelu forward max err/max(1,|x|) %.3g", gf);
    tu_check(t, gb <= 1e-6, "gelu derivative max err/max(1,|x|) %.3g", gb);
    printf("gelu max err/max(1,|x|): forward %.3g, derivative %.3g\n", gf, gb);

    /* sqrt: log-uniform over the normal floats (Adam's v spans ~1e-20 .. 1e4), plus 0 */
    double sq_ulp = 0;
    for (int i = 0; i <= NS; i++) {
        float xi = (float)ldexp(1.0 + (double)i / NS, -126 + (int)((252.0 * i) / NS));
        float f = sp_fsqrt(xi), r = sqrtf(xi);
        double e = fabs((double)f - r) / (nextafterf(r, INFINITY) - r);
        if (!(e <= sq_ulp)) sq_ulp = e;
    }
    tu_check(t, sq_ulp <= 1.0, "sp_fsqrt max err %.3g ulp", sq_ulp);
    tu_check(t, sp_fsqrt(0.0f) == 0.0f, "sp_fsqrt(0) = %g", sp_fsqrt(0.0f));
    printf("sp_fsqrt max err %.3g ulp\n", sq_ulp);
    free(x), free(y), free(dg), free(ones);
}

int main(void) {
    tu_ctx t = {0};
    test_encoder(&t);
    test_layernorm(&t, 10, 8, 8, 1);
    test_layernorm(&t, 6, 37, 37, 1); /* C not a multiple of the vector width */
    const float mcs[] = {0.0f, 0.3f, 1.0f};
    for (int i = 0; i < 3; i++) {
        test_layernorm(&t, 10, 8, 4, mcs[i]);
        test_layernorm(&t, 6, 37, 19, mcs[i]);
        test_layernorm(&t, 5, 48, 16, mcs[i]);   /* the old segment a whole vector block */
        test_mask_cols(&t, 6, 24, 3, 3, mcs[i]); /* q|k|v of 8, 3 old each */
        test_mask_cols(&t, 5, 16, 8, 1, mcs[i]);
    }
    test_layernorm_masked_ends(&t, 7, 48, 16);
    test_layernorm_masked_ends(&t, 7, 37, 19);
    test_matmul(&t, 10, 8, 32, 1);
    test_matmul(&t, 10, 8, 32, 0);
    test_matmul(&t, 33, 2, 1030, 1); /* dbias crosses its 32-row and 1024-channel blocks */
    for (int causal = 1; causal >= 0; causal--) {
        test_attention(&t, 2, 5, 8, 2, 0, causal);
        test_attention(&t, 1, 7, 24, 3, 0, causal);
        test_attention(&t, 1, 130, 8, 2, 400, causal); /* query tiles cross their boundaries */
    }
    test_gelu(&t, 320);
    test_gelu(&t, 37);
    test_residual(&t);
    test_crossentropy(&t, 10, 11);
    test_crossentropy(&t, 6, 256);
    test_adamw(&t, 0.1f);
    test_adamw(&t, 0.0f);
    test_sumsq_scale(&t);
    test_fastmath(&t);
    return tu_finish(&t, "kernels");
}
