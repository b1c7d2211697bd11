/* sprout growth: depth and width operators as pure functions on (spec, slabs), one table of them
 * (src/growth/ops.c), and the growth schedule's per-step quantities over its events. No MPI and
 * no config in here: the redistribution engine (sprout/redist.h) moves slabs, the step loop
 * (src/train/) joins both and turns the config into events (src/train/schedule_cfg.c).
 *
 * The math of every operator is in docs/growth.md:
 *
 *   op            new block j of L = factor*l          transform            function-preserving
 *   stack/direct  old block j mod l (G_stack=G^direct) copy                 no
 *   learn         j mod l, then a learned mix of all   mix (sp_learn)       no
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

#include "sprout/core.h"
#include "sprout/model.h"

/* ---- the operator table (src/growth/ops.c) ---- */

typedef enum { SP_OP_DEPTH = 0, SP_OP_WIDTH = 1 } sp_op_dim;
/* the width engine's modes (src/growth/width.c) */
typedef enum {
    SP_W_DECOALESCE,
    SP_W_WIDEN_DIRECT,
    SP_W_COALESCE,
    SP_W_WIDEN_ZERO,
    SP_W_WIDEN_RANDOM
} sp_width_mode;

typedef struct sp_grow_op {
    const char *name;   /* growth[i].op */
    int dim;            /* sp_op_dim */
    int shrinks;        /* coalescing: the factor divides the depth or the widths */
    int ramps;          /* fades blocks (random) or channels (widen_zero, widen_random) in */
    unsigned applies;   /* bit k: its math holds on block kind k (sp_kinds[k]) */
    unsigned preserves; /* bit k: function-preserving at the event on block kind k */
    /* depth: new block j of the map from l old blocks with this factor */
    sp_block_src (*map)(int j, int l, int factor);
    int width;           /* width: sp_width_mode */
    const char *inverse; /* width: the operator undoing its widths */
    /* G_learn: the map starts as `map` and is then learned (sp_learn below) */
    int learns;
} sp_grow_op;

extern const sp_grow_op sp_grow_ops[];
extern const int sp_grow_nops;
/* the row named name, NULL if none */
const sp_grow_op *sp_grow_op_find(const char *name);
/* the names of the operators of one sp_op_dim (-1: all), comma-separated, for messages */
const char *sp_grow_op_names(int dim);
/* SP_OK, or SP_EINPUT naming the op and the block kind whose math it does not cover */
int sp_grow_op_applies(const sp_grow_op *r, const sp_spec *s, sp_err *err);

/* ---- depth operators ---- */

/* 1 if op names a depth operator (stack, direct, interpolate, decoalesce_depth, zero, random,
 * coalesce_depth) */
int sp_grow_is_depth_op(const char *op);
/* 1 if the operator preserves the network function of block kind `kind` at the event: on gpt2
 * exactly for zero and random (while its branch scale is 0), up to fp32 rounding for
 * decoalesce_width and widen_direct, and for widen_zero and widen_random while their new channels
 * are masked out (mask_c = 0; the wider matmuls reduce over more, zero, terms in another order) */
int sp_grow_preserves(const char *op, int kind);
/* The block map of op from n_old blocks to factor*n_old blocks (n_old/factor for coalesce_depth,
 * whose entries have factor sources each). Errors name the op. */
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

/* ---- G_learn (LiGO's depth expansion, docs/growth.md "G_learn") ----
 * Position p of the grown model (L blocks) is a learned linear mix of the l base blocks, per
 * tensor t of the block kind:  W[p][t] = sum_j c[p][j][t] * base[j][t], c initialised to the
 * op's map (G_stack: c[p][p mod l][t] = 1, else 0). The mix is linear, so materialising it into
 * ordinary slabs and pulling the slabs' gradient back, dc[p][j][t] = <dL/dW[p][t], base[j][t]>,
 * is exact: the forward and backward stay the kinds' own. c trains under Adam (no weight decay)
 * with the base and every other weight frozen; the growth event then keeps the materialised
 * slabs. Pure functions on flat arrays: the step that gives dL/dW is the caller's. */
typedef struct sp_learn {
    int l, L, nt;       /* base blocks, grown blocks, tensors of a block */
    size_t block_numel; /* floats of a block slab */
    size_t off[SP_MAX_TENSORS], numel[SP_MAX_TENSORS];
    float *base;           /* [l][block_numel], every base block */
    float *c, *dc, *m, *v; /* [L][l][nt] */
    uint64_t step;         /* Adam steps taken */
} sp_learn;
/* c from the depth map of op (each new block's source gets 1); base allocated, to be filled */
int sp_learn_init(sp_learn *g, const sp_grow_op *op, const sp_spec *s, int l, int factor,
                  sp_err *err);
void sp_learn_free(sp_learn *g);
/* slab = the mix of position p (0 <= p < L) */
void sp_learn_materialize(const sp_learn *g, int p, float *slab);
/* dc[p] = the pullback of position p's slab gradient (dot products in double, in element order) */
void sp_learn_pullback(sp_learn *g, int p, const float *grad);
/* one Adam step of c on dc (dc of every position must be complete) */
void sp_learn_update(sp_learn *g, float lr, float beta1, float beta2, float eps);

/* ---- width operators (docs/growth.md, "Width operators") ----
 * A width change maps every slab of the old spec to a slab of the new spec, block by block, on
 * one rank's stage: dst holds the same block range and the same globals as src, with the new
 * widths. The pipeline layout then changes through redistribution like after any event. Channel
 * groups of factor k use the strided fold: small channel c <-> large channels c, c + d_small, ...
 * (heads h, h + H_small, ...; MLP units u, u + f_small, ...), so a channel keeps its index.
 * widen_zero / widen_random keep only copy 0 (the old channel, in place) and fill the appended
 * channels afresh; the plan's fade-in mask (sp_plan.mask_*) hides them until mask_c ramps up.
 *
 *   op                to widths        function-preserving          coalesce(decoalesce(M)) == M
 *   decoalesce_width  k*d, k*H, k*f    yes (fp32 rounding)          bit for bit for k = 2
 *   widen_direct      k*d, k*H, k*f    yes (fp32 rounding)          -
 *   widen_zero        k*d, k*H, k*f    at mask_c = 0 (fp32 round.)  -
 *   widen_random      k*d, k*H, k*f    at mask_c = 0 (fp32 round.)  -
 *   coalesce_width    d/k, H/k, f/k    no (lossy)                   -
 */
/* 1 if op names a width operator (decoalesce_width, coalesce_width, widen_direct, widen_zero,
 * widen_random) */
int sp_grow_is_width_op(const char *op);
/* The spec after op with factor k; errors (k does not divide d_model, n_head, d_ff, or the head
 * size would change) name the op and the field. */
int sp_grow_width_spec(const char *op, const sp_spec *from, int k, sp_spec *to, sp_err *err);
/* dst = op(src) on every block slab src holds and on its globals. dst must be created with the
 * spec sp_grow_width_spec gives, on the same block range, with the same globals.
 *  - decoalesce_width: out-axes copied, in-axes split evenly (1/k), ln_f weight and bias / k
 *    (the head is tied to wte);
 *  - widen_direct: as decoalesce_width but the in-axis split is uneven, a_j = 1/k + e_j -
 *    mean(e over the copies), e_j ~ N(0, noise^2) from (seed, SP_RNG_GROW_INIT, event, ...):
 *    still function-preserving, and the copies are no longer symmetric, so they can diverge;
 *  - coalesce_width: out-axes averaged over each group, in-axes summed, ln_f weight and bias * k;
 *  - widen_zero: old entries in place; in [in, out] layout, new columns of old rows 0, new rows
 *    from the init distribution (0.02, residual projections 0.02/sqrt(2 n_layer)); new bias
 *    entries 0, new LayerNorm gains 1; new wte/wpe columns 0;
 *  - widen_random: old entries in place, every other matrix entry (wte/wpe included) from the
 *    init distribution, new biases 0, new LayerNorm gains 1.
 *  The fills of both draw element e of the NEW tensor id from
 *  (seed, SP_RNG_GROW_INIT, ((event + 1) << 48) | (1 << 47) | id, e), and both leave dst with
 *  mask_d = d, mask_f = f, mask_c = 0 and mask_out = 1 for widen_random only; every other op
 *  leaves the mask off. A src whose own mask is still active (mask_d > 0, mask_c < 1) is an error.
 * moments = 1: m goes through the same map as the weights, v through the map with squared
 * coefficients (an approximation for averaging; for widen_zero / widen_random the old entries'
 * m, v are kept and new ones are 0); the step counts are kept. moments = 0: m, v and the step
 * counts of dst are 0. */
int sp_grow_width(const char *op, int k, const sp_model *src, sp_model *dst, int moments,
                  double noise, uint64_t seed, int event, sp_err *err);

/* ---- the growth schedule ----
 * The model.* keys of the config describe the model the run ENDS with (the target); the run
 * starts with that spec undone by every event, last to first. Events come from the `growth:`
 * list, or from `vcycle:` (a V-cycle: coalesce down level by level, then de-coalesce and
 * interpolate back up). Each event is resolved to the step before which it is applied
 * (at_tokens rounds up to whole steps). */
typedef enum {
    SP_GROW_DEPTH = 0,   /* a depth operator of the growth list (block map) */
    SP_GROW_WIDTH = 1,   /* a width operator of the growth list */
    SP_GROW_VC_DOWN = 2, /* V-cycle: save the level's model, coalesce width and/or depth */
    SP_GROW_VC_UP = 3,   /* V-cycle: de-coalesce, then interpolate with the saved model */
} sp_grow_kind;

typedef struct sp_grow_event {
    int64_t step; /* applied before 0-based step `step` runs (after step-1 finished) */
    int kind;     /* sp_grow_kind */
    sp_spec before, after;
    int n_before, n_after, factor; /* depth before/after; the operator's factor */
    int wk, dk;           /* V-cycle: width and depth factors (1 = that dimension unchanged) */
    int level;            /* V-cycle: the level after the event (1 = full size) */
    double alpha;         /* V-cycle up: weight of the de-coalesced model */
    double lr_mult;       /* learning-rate multiplier from this event on */
    double noise;         /* widen_direct */
    int pipeline;         /* 0 = auto */
    int reset_optim;      /* optimizer: reset */
    int64_t rewarm_steps; /* > 0 when lr: rewarm (0 in the config resolved to the default) */
    int64_t ramp_steps;   /* random: steps over which new blocks' branch scale goes 0 -> 1 */
    int64_t learn_steps;  /* learn: data steps the expansion trains on at the event */
    double learn_lr;      /* learn: Adam's learning rate on the coefficients */
    const char *op;       /* the operator's name (points into the config or a literal) */
    const sp_grow_op *dop, *wop; /* the depth and the width operator it runs (NULL: none) */
    char when[96]; /* which rule placed the event (at_step, a token count, a share, auto) */
} sp_grow_event;

typedef struct sp_grow_sched {
    int n;             /* events */
    int n_layer0;      /* depth at step 0 */
    sp_spec spec0;     /* model at step 0 */
    int levels;        /* V-cycle levels (0 = none) */
    int ramps;         /* some event fades blocks or channels in (random, widen_zero/random) */
    sp_grow_event *ev; /* [n], in step order, malloc'd */
} sp_grow_sched;

/* The schedule is built from the config by sp_train_grow_schedule (sprout/train.h). */
void sp_grow_sched_free(sp_grow_sched *gs);
/* the model spec after the first k events (k = growth_index) */
sp_spec sp_grow_spec_at(const sp_grow_sched *gs, int k);
/* Branch scale of every block of the model after the first k events, at 0-based step `step`
 * (c[n_layer after k events]): 1, except blocks made by `random` events (and copies of them)
 * whose ramp is not over: min(1, (step - event step) / ramp_steps). */
void sp_grow_block_scales(const sp_grow_sched *gs, int k, int64_t step, float *c);
/* Learning-rate multiplier at step after the first k events: the newest event's lr_mult (the
 * V-cycle level's scale), times the linear re-warm-up of the newest event with lr: rewarm,
 * min(1, (step - event step + 1) / rewarm_steps). */
double sp_grow_lr_factor(const sp_grow_sched *gs, int k, int64_t step);
/* G_stack's growth timing: tokens to train the base model for a target of n_params parameters
 * and a planned budget of total_tokens, log10(d) = 0.88 log10(N) + 163.27 / log10(C) - 5.74 with
 * C = 6 N D; -1 when C < 1e20, outside the range the fit was made on. */
int64_t sp_grow_timing_tokens(double n_params, double total_tokens);
/* The fade-in mask of channels added by widen_zero / widen_random (sp_plan.mask_*) after the
 * first k events at 0-based step `step`: on while the newest event is one of those and its
 * ramp_steps are not over, mask_c = (step - event step) / ramp_steps; off otherwise. */
void sp_grow_width_mask(const sp_grow_sched *gs, int k, int64_t step, sp_plan *m);
/* 1 if op names an operator the growth list accepts (a row of the table) */
int sp_grow_is_op(const char *op);
/* the spec before a growth-list event of operator r and factor from the spec after it; errors
 * name growth[e] of src */
int sp_grow_undo_spec(const sp_grow_op *r, int factor, const sp_spec *after, sp_spec *before,
                      const char *src, int e, sp_err *err);

/* ---- subnetwork methods (src/growth/subnet.c, docs/growth.md "Subnetwork methods") ----
 * train.subnet: none | apollo | raptr. The network a step runs is a plan drawn per step from
 * (seed, purpose, step): Apollo's LVPS depth over U shared blocks (SP_RNG_LVPS, a = step) or
 * RaPTr's random path (SP_RNG_RAPTR, a = step, b = block). Stages of the method start at
 * fractions of train.steps. */
#define SP_SUBNET_MAX_STAGES 16
#define SP_SUBNET_MAX_LAYER  256
typedef struct sp_subnet {
    int method;  /* row of the method table: 0 none, then apollo, raptr */
    int n_layer; /* stored blocks */
    uint64_t seed;
    int n_stages;
    int64_t start[SP_SUBNET_MAX_STAGES]; /* first step of each stage */
    int k[SP_SUBNET_MAX_STAGES];         /* Apollo: unique blocks U; RaPTr: path length */
    int row;                             /* Apollo: sampler row; RaPTr: mode row */
    int depth;                           /* Apollo: fixed depth (0 = drawn) */
    int scale;                           /* RaPTr: 1 = inverse_p */
    int nfixed;                          /* RaPTr: blocks always kept */
    unsigned char fixed[SP_SUBNET_MAX_LAYER];
    double pk;      /* RaPTr: keep probability while drawing */
    int64_t warmup; /* RaPTr: full-model steps first */
} sp_subnet;

/* the settings of train.subnet and its section (apollo.*, raptr.*), as plain data */
typedef struct sp_subnet_settings {
    const char *method; /* train.subnet */
    int n_layer;
    uint64_t seed;
    int64_t steps;
    int grows; /* the run has growth events or a V-cycle */
    const char *apollo_unique, *apollo_boundaries, *apollo_sampler, *apollo_map;
    int64_t apollo_depth;
    const char *raptr_lengths, *raptr_boundaries, *raptr_fixed, *raptr_mode, *raptr_scale;
    int64_t raptr_full_warmup_steps;
} sp_subnet_settings;
/* The settings resolved. Errors name the key. Counts in apollo.unique must let every depth fit
 * its copies (docs/growth.md). */
int sp_subnet_setup(const sp_subnet_settings *c, sp_subnet *sn, sp_err *err);
const char *sp_subnet_name(const sp_subnet *sn);
/* the method's stage of 0-based step `step` (0 without a method) */
int sp_subnet_stage(const sp_subnet *sn, int64_t step);
/* Draws step's network into p, which holds the full plan of the step (scales, masks) on entry:
 * positions, groups, trained blocks and RaPTr's scale factors. Pure function of (sn, step). */
void sp_subnet_draw(const sp_subnet *sn, int64_t step, sp_plan *p);
/* The block map that must run before 0-based step `step` (the first of a stage whose storage
 * differs: Apollo's expansion of the unique blocks when the extend maps do not nest). Returns the
 * number of blocks that move (map filled, to be freed) or 0 (nothing to do, map empty), or a
 * negative code on failure. */
int sp_subnet_expand_map(const sp_subnet *sn, int64_t step, sp_block_map *map, sp_err *err);
/* one line describing stage `stage`, for the start-up printout */
void sp_subnet_describe(const sp_subnet *sn, int stage, char *buf, size_t n);
/* LVPS depth for uniform u in [0, 1) on L blocks with U unique (growth-operators §4.2), and its
 * closed form P(depth >= k) */
int sp_lvps_depth(int L, int U, double u);
double sp_lvps_tail(int L, int U, int k);

#endif
