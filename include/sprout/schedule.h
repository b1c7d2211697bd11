/* sprout schedules: a pipeline schedule is data. For each stage, the ordered list of actions it
 * performs in one optimizer step; an interpreter (src/train/trainer.c) runs it with MPI, where a
 * SEND never blocks (MPI_Isend) and a RECV blocks until its message has arrived. */
#ifndef SPROUT_SCHEDULE_H
#define SPROUT_SCHEDULE_H

#include "sprout/core.h"

typedef enum {
    SP_ACT_RECV_ACT,  /* activation of mb from stage - 1 */
    SP_ACT_FWD,       /* forward of mb (the last stage computes the loss inside) */
    SP_ACT_SEND_ACT,  /* activation of mb to stage + 1 */
    SP_ACT_RECV_GRAD, /* gradient of mb from stage + 1 */
    SP_ACT_BWD,       /* backward of mb (the last stage starts from the loss) */
    SP_ACT_SEND_GRAD, /* gradient of mb to stage - 1 */
} sp_action_kind;

typedef struct sp_action {
    sp_action_kind kind;
    int mb;
} sp_action;

typedef struct sp_schedule {
    int stage, pp, m;
    int n;
    sp_action *a;
} sp_schedule;

/* kind "gpipe": all forwards, then all backwards, both in micro-batch order.
 * kind "1f1b": warm-up of min(pp - 1 - stage, m) forwards, then forward/backward pairs, then
 * the remaining backwards (PipeDream-flush). Backwards run in micro-batch order in both, so the
 * gradients accumulate in the same order and the two schedules give identical numbers. */
int sp_sched_build(const char *kind, int pp, int stage, int m, sp_schedule *out, sp_err *err);
void sp_sched_free(sp_schedule *s);
/* The most micro-batches whose forward has run on this stage and whose backward has not: the
 * activation slots the stage needs. Forwards and backwards both run in micro-batch order, so the
 * live micro-batches are always a contiguous range and mb % peak is a collision-free slot. */
int sp_sched_peak_live(const sp_schedule *s);
/* Runs all stages' schedules together, with buffered sends and blocking receives, and checks
 * that every stage finishes and every dependency is met in order. The makespan is computed in
 * ticks with FWD = 1, BWD = 2 and free messages. A stuck run gives SP_ERUNTIME with
 * "deadlock: stage S waits for ..."; a broken dependency gives SP_ERUNTIME naming it; stages that
 * do not match pp and m give SP_EINPUT. makespan may be NULL. */
int sp_sched_simulate(const sp_schedule *stages, int pp, int m, double *makespan, sp_err *err);

#endif
