/* The pp x dp rank grid and its communicators. */
#include "sprout/grid.h"

#include <math.h>

void sp_grid_stage_range(int n_layer, int pp, int s, int *lo, int *hi) {
    int base = n_layer / pp, rem = n_layer % pp;
    *lo = s * base + (s < rem ? s : rem);
    *hi = *lo + base + (s < rem ? 1 : 0);
}

double sp_grid_stage_mib(const sp_spec *spec, int pp) {
    int lo, hi;
    sp_grid_stage_range(spec->n_layer, pp, 0, &lo, &hi); /* stage 0 is the largest */
    double floats =
        (double)sp_spec_global_numel(spec) + (double)(hi - lo) * sp_spec_block_numel(spec);
    return floats * 4.0 * sizeof(float) / 1048576.0;
}

int sp_grid_choose_pp(const sp_spec *spec, int world, int requested, int64_t max_stage_mib,
                      sp_stage_mib_fn mib, const void *ctx, int *pp, sp_err *err) {
    if (requested > 0) {
        if (requested > spec->n_layer)
            return sp_err_set(err, SP_EINPUT,
                              "parallel.pipeline = %d is larger than model.n_layer = %d", requested,
                              spec->n_layer);
        if (world % requested)
            return sp_err_set(err, SP_EINPUT,
                              "parallel.pipeline = %d does not divide the %d MPI ranks", requested,
                              world);
        /* checked before anything is allocated: the alternative is an out-of-memory error in
         * the middle of start-up, or the kernel's OOM killer */
        double need = mib ? mib(spec, requested, ctx) : sp_grid_stage_mib(spec, requested);
        if (need > (double)max_stage_mib)
            return sp_err_set(err, SP_EINPUT,
                              "parallel.pipeline = %d: a stage needs %.0f MiB (weights, optimizer "
                              "state, activations), more than parallel.max_stage_mib = %lld",
                              requested, need, (long long)max_stage_mib);
        *pp = requested;
        return SP_OK;
    }
    double least = HUGE_VAL;
    int at = 1;
    for (int p = 1; p <= world && p <= (spec->n_layer > 0 ? spec->n_layer : 1); p++) {
        if (world % p) continue;
        double need = mib ? mib(spec, p, ctx) : sp_grid_stage_mib(spec, p);
        if (need <= (double)max_stage_mib) {
            *pp = p;
            return SP_OK;
        }
        if (need < least) least = need, at = p;
    }
    return sp_err_set(err, SP_EINPUT,
                      "parallel.pipeline = auto: no stage count dividing %d ranks keeps a stage "
                      "within parallel.max_stage_mib = %lld (the smallest needs %.0f MiB, at "
                      "pp = %d)",
                      world, (long long)max_stage_mib, least, at);
}

int sp_grid_create(sp_grid *g, MPI_Comm world, int pp, int n_layer, sp_err *err) {
    MPI_Comm_size(world, &g->world);
    MPI_Comm_rank(world, &g->rank);
    g->pp = pp;
    g->dp = g->world / pp;
    g->stage = g->rank % pp;
    g->dp_rank = g->rank / pp;
    sp_grid_stage_range(n_layer, pp, g->stage, &g->lo, &g->hi);
    g->pipe = g->dpc = g->tie = MPI_COMM_NULL;
    int rc = MPI_Comm_split(world, g->dp_rank, g->stage, &g->pipe);
    rc |= MPI_Comm_split(world, g->stage, g->dp_rank, &g->dpc);
    int ends = pp > 1 && (g->stage == 0 || g->stage == pp - 1);
    rc |= MPI_Comm_split(world, ends ? g->dp_rank : MPI_UNDEFINED, g->stage, &g->tie);
    if (rc != MPI_SUCCESS) return sp_err_set(err, SP_ERUNTIME, "MPI_Comm_split failed");
    return SP_OK;
}

void sp_grid_free(sp_grid *g) {
    if (g->pp <= 0) return; /* never created (a zeroed struct holds no communicators) */
    if (g->pipe != MPI_COMM_NULL) MPI_Comm_free(&g->pipe);
    if (g->dpc != MPI_COMM_NULL) MPI_Comm_free(&g->dpc);
    if (g->tie != MPI_COMM_NULL) MPI_Comm_free(&g->tie);
}
