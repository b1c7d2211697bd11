/* sprout grid: the pp x dp rank layout. Rank r is stage (r % pp) of replica (r / pp), so the
 * stages of one replica are neighbouring ranks (point-to-point stays inside a node when ranks
 * are packed by node), and the replicas of a stage form the data-parallel communicator. */
#ifndef SPROUT_GRID_H
#define SPROUT_GRID_H

#include <mpi.h>
#include <stdint.h>

#include "sprout/core.h"
#include "sprout/model.h"

typedef struct sp_grid {
    int world, rank;
    int pp, dp, stage, dp_rank;
    int lo, hi;    /* blocks of this rank's stage */
    MPI_Comm pipe; /* the stages of this replica, rank = stage */
    MPI_Comm dpc;  /* the replicas of this stage, rank = dp_rank */
    MPI_Comm tie;  /* first and last stage of this replica (pp > 1), else MPI_COMM_NULL */
} sp_grid;

/* balanced contiguous block range of stage s: the first n_layer % pp stages get one more */
void sp_grid_stage_range(int n_layer, int pp, int s, int *lo, int *hi);
/* bytes of parameters + gradients + AdamW m and v on the largest stage */
double sp_grid_stage_mib(const sp_spec *spec, int pp);
/* MiB of the largest stage of spec laid out on pp stages, everything counted (the trainer adds
 * activations and buffers to sp_grid_stage_mib) */
typedef double (*sp_stage_mib_fn)(const sp_spec *spec, int pp, const void *ctx);
/* requested = 0 means auto: the smallest pp that divides the world, is <= n_layer and keeps
 * every stage within max_stage_mib; a requested pp must fit it too. mib(spec, pp, ctx) measures
 * a stage (NULL: sp_grid_stage_mib). Errors name parallel.pipeline. */
int sp_grid_choose_pp(const sp_spec *spec, int world, int requested, int64_t max_stage_mib,
                      sp_stage_mib_fn mib, const void *ctx, int *pp, sp_err *err);
int sp_grid_create(sp_grid *g, MPI_Comm world, int pp, int n_layer, sp_err *err);
/* safe on a zeroed struct */
void sp_grid_free(sp_grid *g);

#endif
