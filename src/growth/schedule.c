/* The growth schedule: the config's `growth:` list resolved to events at known steps, the spec
 * of every growth stage, and the per-step quantities that follow from the events (branch scales
 * of fading-in blocks, the learning-rate re-warm-up). Everything here is a pure function of the
 * config, so a restart on any layout recomputes the same schedule. */
#include "sprout/growth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* G_stack's growth-timing fit (docs/growth.md, "Growth schedule"): tokens for the base model, from the
 * target's parameters N and the planned compute C = 6 N D. The fit was made for 1e20..1e21
 * FLOPs and explodes below; there the base gets 10% of the token budget. */
static int64_t auto_at_tokens(double n_params, double total_tokens, const sp_log *log, int e) {
    double c = 6.0 * n_params * total_tokens;
    if (c >= 1e20) {
        double lg = 0.88 * log10(n_params) + 163.27 / log10(c) - 5.74;
        return (int64_t)pow(10.0, lg);
    }
    sp_warn(log,
            "growth[%d].at_tokens = auto: the planned %.2e FLOPs are below the 1e20 the "
            "growth-timing fit covers; using 10%% of the token budget",
            e, c);
    return (int64_t)(0.1 * total_tokens);
}

/* factor `auto`: 4, or the largest divisor of the depth after the event that is <= 4 */
static int auto_factor(int n_after) {
    for (int f = 4; f > 1; f--)
        if (n_after % f == 0) return f;
    return 1;
}

int sp_grow_schedule(const sp_config *cfg, sp_grow_sched *gs, const sp_log *log, sp_err *err) {
    memset(gs, 0, sizeof *gs);
    const char *src = cfg->source ? cfg->source : "config";
    int n = (int)cfg->growth_count;
    gs->n = n;
    gs->n_layer0 = (int)cfg->model.n_layer;
    if (!n) return SP_OK;
    gs->ev = calloc((size_t)n, sizeof *gs->ev);
    if (!gs->ev) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    int64_t tok_per_step = cfg->train.global_batch * cfg->model.seq_len;
    double total_tokens = (double)tok_per_step * (double)cfg->train.steps;
    sp_spec target = {(int)cfg->model.vocab,  (int)cfg->model.seq_len, (int)cfg->model.d_model,
                      (int)cfg->model.n_head, (int)sp_cfg_d_ff(cfg),   (int)cfg->model.n_layer};
    /* depths from the target backwards: every event divides the depth after it by its factor */
    int depth = (int)cfg->model.n_layer;
    for (int e = n - 1; e >= 0; e--) {
        const sp_growth_event *g = &cfg->growth[e];
        sp_grow_event *r = &gs->ev[e];
        r->op = g->op;
        if (!sp_grow_is_depth_op(g->op))
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d].op: '%s' is not a growth operator (stack, direct, "
                              "interpolate, zero, random)",
                              src, e, g->op);
        r->factor = g->factor == SP_CFG_AUTO ? auto_factor(depth) : (int)g->factor;
        if (depth % r->factor)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d].factor: %d does not divide the depth %d it grows to "
                              "(model.n_layer is the depth after the last event)",
                              src, e, r->factor, depth);
        r->n_after = depth;
        r->n_before = depth / r->factor;
        depth = r->n_before;
        r->pipeline = g->pipeline && strcmp(g->pipeline, "auto") ? atoi(g->pipeline) : 0;
        r->reset_optim = !strcmp(g->optimizer, "reset");
        r->ramp_steps = g->ramp_steps;
        if (g->at_step >= 0)
            r->step = g->at_step;
        else {
            int64_t tok =
                g->at_tokens == SP_CFG_AUTO
                    ? auto_at_tokens((double)sp_spec_num_params(&target), total_tokens, log, e)
                    : g->at_tokens;
            r->step = (tok + tok_per_step - 1) / tok_per_step;
        }
        if (r->step > cfg->train.steps)
            sp_warn(log, "growth[%d] at step %lld comes after the last step (%lld): never applied",
                    e, (long long)r->step, (long long)cfg->train.steps);
    }
    gs->n_layer0 = depth;
    for (int e = 0; e < n; e++) {
        sp_grow_event *r = &gs->ev[e];
        const sp_growth_event *g = &cfg->growth[e];
        if (e > 0 && r->step < gs->ev[e - 1].step)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d] (step %lld) comes before growth[%d] (step %lld)", src,
                              e, (long long)r->step, e - 1, (long long)gs->ev[e - 1].step);
        if (strcmp(g->lr, "rewarm")) continue;
        /* default re-warm-up: the run's own warm-up, at most 5% of the steps left (§2.13) */
        int64_t left = cfg->train.steps - r->step, cap = left / 20 > 0 ? left / 20 : 1;
        r->rewarm_steps = g->rewarm_steps > 0             ? g->rewarm_steps
                          : cfg->train.warmup_steps < cap ? cfg->train.warmup_steps
                                                          : cap;
        if (r->rewarm_steps < 1) r->rewarm_steps = 1;
    }
    return SP_OK;
}

void sp_grow_sched_free(sp_grow_sched *gs) {
    free(gs->ev);
    memset(gs, 0, sizeof *gs);
}

sp_spec sp_grow_spec_at(const sp_config *cfg, const sp_grow_sched *gs, int k) {
    sp_spec s = {(int)cfg->model.vocab,  (int)cfg->model.seq_len, (int)cfg->model.d_model,
                 (int)cfg->model.n_head, (int)sp_cfg_d_ff(cfg),   gs->n_layer0};
    if (k > 0) s.n_layer = gs->ev[k - 1].n_after;
    return s;
}

void sp_grow_block_scales(const sp_grow_sched *gs, int k, int64_t step, float *c) {
    /* origin[b]: the event whose `random` op created block b (or its source), -1 for none;
     * followed through every event's block map, as the blocks themselves were */
    int cap = gs->n_layer0;
    for (int e = 0; e < k; e++)
        if (gs->ev[e].n_after > cap) cap = gs->ev[e].n_after;
    int *origin = malloc((size_t)cap * sizeof *origin), *next = malloc((size_t)cap * sizeof *next);
    int n = gs->n_layer0;
    for (int b = 0; b < n; b++) origin[b] = -1;
    for (int e = 0; e < k; e++) {
        const sp_grow_event *r = &gs->ev[e];
        sp_block_map map;
        if (sp_grow_plan(r->op, r->n_before, r->factor, &map, NULL)) break; /* checked earlier */
        for (int j = 0; j < map.n_new; j++)
            next[j] = map.b[j].xf == SP_XF_RANDOM ? e
                      : map.b[j].src >= 0         ? origin[map.b[j].src]
                                                  : -1;
        n = map.n_new;
        memcpy(origin, next, (size_t)n * sizeof *origin);
        sp_grow_map_free(&map);
    }
    for (int b = 0; b < n; b++) {
        c[b] = 1.0f;
        if (origin[b] < 0) continue;
        const sp_grow_event *r = &gs->ev[origin[b]];
        double x = (double)(step - r->step) / (double)r->ramp_steps;
        if (x < 1.0) c[b] = x > 0.0 ? (float)x : 0.0f;
    }
    free(origin);
    free(next);
}

double sp_grow_lr_factor(const sp_grow_sched *gs, int k, int64_t step) {
    for (int e = k - 1; e >= 0; e--) {
        const sp_grow_event *r = &gs->ev[e];
        if (r->rewarm_steps <= 0) continue;
        double x = (double)(step - r->step + 1) / (double)r->rewarm_steps;
        return x < 1.0 ? (x > 0.0 ? x : 0.0) : 1.0;
    }
    return 1.0;
}
