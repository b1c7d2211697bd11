/* sprout growth: depth operators as pure functions on (spec, slabs), and the growth schedule
 * that turns the config's `growth:` list into events at known steps. No MPI in here: the
 * redistribution engine (sprout/redist.h) moves slabs, the step loop (src/train/) joins both.
 *
 * The math of every operator is in docs/growth.md:
 *
 *   op            new block j of L = factor*l          transform            function-preserving
 *   stack/direct  old block j mod l (G_stack=G^direct) copy                 no
 *   interpolate   old block floor(j*l/L)               copy                 no
 *   zero          old block floor(j/factor)            copies after the     yes, bitwise
 *                                                      first: output
 *                                                      projections zeroed
 *   random        j < l: old block j; else fresh       fresh init, branch   yes at scale 0,
 *                                                      scale ramps 0 -> 1   bitwise
 *
 * Lifecycle of one event on a rank (see src/train/grow.c):
 *     sp_grow_plan(op, l, factor, &map)         -> block map
 *     sp_redist(...)                            -> source slabs copied to new owners
 *     sp_grow_transform(model, &map, seed, e)   -> local transforms on the new stage
 *     optimizer: reset -> sp_grow_reset_optim(model)
 */
#ifndef SPROUT_GROWTH_H
#define SPROUT_GROWTH_H

#include <stdint.h>

#include "sprout/config.h"
#include "sprout/core.h"
#include "sprout/model.h"

/* ---- depth operators ---- */

/* 1 if op names a depth operator this module plans (stack, direct, interpolate, zero, random) */
int sp_grow_is_depth_op(const char *op);
/* 1 if the operator preserves the network function exactly at the event (zero; random while
 * its branch scale is 0), 0 otherwise */
int sp_grow_preserves(const char *op);
/* The block map of op from n_old blocks to factor*n_old blocks. Errors name the op. */
int sp_grow_plan(const char *op, int n_old, int factor, sp_block_map *map, sp_err *err);
void sp_grow_map_free(sp_block_map *map);

/* Applies the local transform of every block the stage holds, after redistribution has copied
 * each new block's source slab (params, m, v, step) into place:
 *  - SP_XF_ZERO_OUT: attproj_w/b and fcproj_w/b zeroed, and their m and v zeroed;
 *  - SP_XF_RANDOM: the block initialised as sp_model_init does for the new spec (so residual
 *    projections use the new n_layer); tensor j of block b draws from
 *    (seed, SP_RNG_GROW_INIT, a = (event << 32) | sp_model_tensor_id(b, j), element);
 *    m = v = 0 and its step count 0.
 * Layout-independent: the result for block j depends only on (map, j, seed, event). */
void sp_grow_transform(sp_model *m, const sp_block_map *map, uint64_t seed, int event);
/* optimizer: reset -- every slab's m, v and step count to 0 */
void sp_grow_reset_optim(sp_model *m);

/* ---- the growth schedule ----
 * model.n_layer in the config is the depth the run ends with (the target); the run starts at
 * n_layer divided by every event's factor. Each event is resolved to the step before which it
 * is applied (at_tokens rounds up to whole steps). */
typedef struct sp_grow_event {
    int64_t step; /* applied before 0-based step `step` runs (after step-1 finished) */
    int n_before, n_after, factor;
    int pipeline;         /* 0 = auto */
    int reset_optim;      /* optimizer: reset */
    int64_t rewarm_steps; /* > 0 when lr: rewarm (0 in the config resolved to the default) */
    int64_t ramp_steps;   /* random: steps over which new blocks' branch scale goes 0 -> 1 */
    const char *op;       /* points into the config */
} sp_grow_event;

typedef struct sp_grow_sched {
    int n;             /* events */
    int n_layer0;      /* depth at step 0 */
    sp_grow_event *ev; /* [n], in step order, malloc'd */
} sp_grow_sched;

/* Resolves cfg->growth against cfg->model and cfg->train (at_tokens/factor `auto` per
 * docs/growth.md; warnings go to log). Errors name the key, e.g. growth[1].at_step. */
int sp_grow_schedule(const sp_config *cfg, sp_grow_sched *gs, const sp_log *log, sp_err *err);
void sp_grow_sched_free(sp_grow_sched *gs);
/* the model spec after the first k events (k = growth_index) */
sp_spec sp_grow_spec_at(const sp_config *cfg, const sp_grow_sched *gs, int k);
/* Branch scale of every block of the model after the first k events, at 0-based step `step`
 * (c[n_layer after k events]): 1, except blocks made by `random` events (and copies of them)
 * whose ramp is not over: min(1, (step - event step) / ramp_steps). */
void sp_grow_block_scales(const sp_grow_sched *gs, int k, int64_t step, float *c);
/* Learning-rate multiplier at step after the first k events: the linear re-warm-up of the
 * newest event with lr: rewarm, min(1, (step - event step + 1) / rewarm_steps); 1 otherwise. */
double sp_grow_lr_factor(const sp_grow_sched *gs, int k, int64_t step);

#endif
