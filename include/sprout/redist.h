/* sprout redistribution: moves block slabs (weights, AdamW m and v, step counts) and the globals
 * slab from one pp x dp layout to another over the same communicator, following a block map
 * (design §1). It serves growth (the map duplicates blocks) and pipeline re-balancing (the
 * identity map onto a new pp). It only copies: the transforms of the map are applied afterwards
 * by the growth module, so this module knows nothing about operators.
 *
 * A layout places rank r at stage r % pp of replica r / pp, stage s holding the blocks
 * sp_grid_stage_range(n_layer, pp, s) (sprout/grid.h); the first and the last stage of every
 * replica hold the globals slab (wte, wpe, ln_f), which every holder keeps identical. */
#ifndef SPROUT_REDIST_H
#define SPROUT_REDIST_H

#include <mpi.h>

#include "sprout/core.h"
#include "sprout/model.h"

typedef struct sp_layout {
    int pp, dp, n_layer;
} sp_layout;

/* The rank of comm that sends old block b (b = -1: the globals) to the new owner `dst`: dst
 * itself when it holds b in the old layout, otherwise one of b's old holders chosen so that the
 * replicas share the sending. Pure function of its arguments, identical on every rank. */
int sp_redist_source(const sp_layout *old_l, int b, int dst);

/* Collective over comm (world = old_l->pp * old_l->dp = new_l->pp * new_l->dp). `old` is this
 * rank's stage of the old layout, `dst` this rank's stage of the new layout, created with the new
 * spec (same widths as the old) and the new block range. For every new block j it holds with
 * map->b[j].src >= 0, dst receives the params, m, v and step count of old block src; blocks with
 * src < 0 are left as they are. The globals slab (and its step count) reaches every new holder.
 * Non-blocking point-to-point messages straight between the arenas; a rank that holds the source
 * itself copies it. When bytes_sent is not NULL, the bytes this rank sent to other ranks are
 * added to it (local copies do not count): what a growth event reports it moved. */
int sp_redist(const sp_model *old, const sp_layout *old_l, sp_model *dst, const sp_layout *new_l,
              const sp_block_map *map, MPI_Comm comm, uint64_t *bytes_sent, sp_err *err);
/* The same for one arena (SP_ARENA_PARAMS, _M or _V; the step counts travel every time): the
 * arenas move one after the other, so that an old arena's memory can become the next new one's
 * (sp_model_take_arena) as soon as it has been moved. */
int sp_redist_arena(const sp_model *old, const sp_layout *old_l, sp_model *dst,
                    const sp_layout *new_l, const sp_block_map *map, int arena, MPI_Comm comm,
                    uint64_t *bytes_sent, sp_err *err);

#endif
