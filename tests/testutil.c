#include "testutil.h"

#include <math.h>
#include <stdarg.h>

void tu_check(tu_ctx *t, int ok, const char *fmt, ...) {
    t->checks++;
    if (ok) return;
    t->failures++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

double tu_rel_maxabs(const float *a, const float *b, size_t n) {
    double dmax = 0, bmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > dmax || isnan(d)) dmax = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > bmax) bmax = fabs((double)b[i]);
    }
    return dmax / (bmax > 1e-30 ? bmax : 1e-30);
}

double tu_rel_maxabs_d(const double *a, const double *b, size_t n) {
    double dmax = 0, bmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > dmax || isnan(d)) dmax = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > bmax) bmax = fabs(b[i]);
    }
    return dmax / (bmax > 1e-30 ? bmax : 1e-30);
}

int tu_finish(tu_ctx *t, const char *name) {
    printf("%s: %d passed, %d failed\n", name, t->checks - t->failures, t->failures);
    return t->failures ? 1 : 0;
}
