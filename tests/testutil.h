/* Small helpers shared by the C tests: checks that count failures, and max-relative error. */
#ifndef SPROUT_TESTUTIL_H
#define SPROUT_TESTUTIL_H

#include <stddef.h>
#include <stdio.h>

typedef struct tu_ctx {
    int checks, failures;
} tu_ctx;

/* records a check; prints "FAIL: what" with the formatted detail when ok is false */
void tu_check(tu_ctx *t, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* max|a-b| / max(max|b|, tiny): the "max-abs difference over max-abs" measure */
double tu_rel_maxabs(const float *a, const float *b, size_t n);
double tu_rel_maxabs_d(const double *a, const double *b, size_t n);
/* prints "N passed, M failed" and returns the exit status */
int tu_finish(tu_ctx *t, const char *name);

#endif
