/* Test points: a build with -DSP_TEST_POINTS (the tests' sprout_points binary, see
 * tests/testpoint.c) can hold a process at a named point of its start-up, its step loop or its
 * exit, so that a test delivers a signal exactly there. In every other build they are nothing. */
#ifndef SPROUT_TESTPOINT_H
#define SPROUT_TESTPOINT_H

#include <stdint.h>

#ifdef SP_TEST_POINTS
/* point `name` (with a step number, or -1) */
void sp_test_point(const char *name, int64_t n);
/* the stop signal the process has caught so far, 0 if none (src/train/run.c) */
int sp_test_stop_signal(void);
#else
#define sp_test_point(name, n) ((void)0)
#endif

#endif
