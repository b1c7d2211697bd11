/* Helpers of the kernel tests (test_kernels.c, test_kernels2.c): random fills from the counter
 * RNG, double copies, the max-abs measure against a double reference, and central finite
 * differences in double (step FD_H) of an objective L(ctx). */
#ifndef SPROUT_TEST_KERNEL_FD_H
#define SPROUT_TEST_KERNEL_FD_H

#include "sprout/core.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SEED 1234
#define FD_H 1e-6

static uint64_t g_stream = 1; /* distinct `a` for each random fill */

static inline float *rnd(size_t n, float std) {
    float *x = malloc(n * sizeof *x);
    sp_rng_normal_fill(x, n, std, SEED, SP_RNG_TEST, g_stream++, 0);
    return x;
}

static inline float *fcopy(const float *x, size_t n) {
    float *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static inline double *to_d(const float *x, size_t n) {
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static inline float *nan_buf(size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* max|out - ref| / max|ref| with out in float, ref in double */
static inline double rel_fd(const float *out, const double *ref, size_t n) {
    double dmax = 0, rmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)out[i] - ref[i]);
        if (!(d <= dmax)) dmax = isnan(d) ? INFINITY : d;
        if (fabs(ref[i]) > rmax) rmax = fabs(ref[i]);
    }
    return dmax / (rmax > 1e-30 ? rmax : 1e-30);
}

/* the increment a backward added on top of its pre-filled buffer */
static inline float *delta(const float *after, const float *before, size_t n) {
    float *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = (float)((double)after[i] - (double)before[i]);
    return d;
}

/* ---- finite differences ------------------------------------------------------------------ */

typedef double (*objfn)(void *ctx);

/* g[i] = dL/dx[i] by central differences, for the indices idx[0..m) (all of x when idx NULL) */
static inline void fd_grad(double *x, size_t n, const size_t *idx, size_t m, objfn f, void *ctx,
                           double *g) {
    if (!idx) m = n;
    for (size_t j = 0; j < m; j++) {
        size_t i = idx ? idx[j] : j;
        double x0 = x[i];
        x[i] = x0 + FD_H;
        double lp = f(ctx);
        x[i] = x0 - FD_H;
        double lm = f(ctx);
        x[i] = x0;
        g[j] = (lp - lm) / (2 * FD_H);
    }
}

static inline double dot_d(const double *a, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * r[i];
    return s;
}

/* ---- elementwise kernel pairs ---- */

typedef void (*ew_forward)(float *out, const float *inp, size_t n);
typedef void (*ew_backward)(float *dinp, const float *inp, const float *dout, size_t n);

typedef struct {
    size_t n;
    double (*f)(double);
    double *x;
    const float *R;
} ew_ctx;

static inline double ew_obj(void *p) {
    ew_ctx *c = p;
    double s = 0;
    for (size_t i = 0; i < c->n; i++) s += c->f(c->x[i]) * c->R[i];
    return s;
}

/* out = f(x) elementwise on n N(0, 2) inputs against the double reference f (<= tol_fwd), and
 * the backward's increment (+=, on a pre-filled buffer) against central differences of
 * sum f(x) R (<= tol_bwd) */
static inline void test_elementwise(tu_ctx *t, const char *name, double (*f)(double),
                                    ew_forward fwd, ew_backward bwd, size_t n, double tol_fwd,
                                    double tol_bwd) {
    float *x = rnd(n, 2), *R = rnd(n, 1), *out = nan_buf(n), *d0 = rnd(n, 0.5f);
    float *d = fcopy(d0, n);
    ew_ctx c = {n, f, to_d(x, n), R};
    double *ref = calloc(n, sizeof *ref);
    fwd(out, x, n);
    for (size_t i = 0; i < n; i++) ref[i] = f(c.x[i]);
    double e = rel_fd(out, ref, n);
    tu_check(t, e <= tol_fwd, "%s forward n=%zu rel %.3g", name, n, e);
    bwd(d, x, R, n);
    float *dd = delta(d, d0, n);
    fd_grad(c.x, n, NULL, 0, ew_obj, &c, ref);
    e = rel_fd(dd, ref, n);
    tu_check(t, e <= tol_bwd, "%s backward n=%zu rel %.3g", name, n, e);
    free(dd), free(ref), free(c.x), free(x), free(R), free(out), free(d0), free(d);
}

#endif
