/* The growth schedule over its events (plain data; src/train/schedule_cfg.c makes them from the
 * config): the spec of every growth stage, and the per-step quantities that follow from the
 * events (branch scales of fading-in blocks, the learning rate, the channel mask). Everything
 * here is a pure function of the events, so a restart on any layout recomputes the same. */
#include "sprout/growth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* G_stack's growth-timing fit (docs/growth.md, "When"): the fit was made for 1e20..1e21 FLOPs
 * and its second term explodes below. */
int64_t sp_grow_timing_tokens(double n_params, double total_tokens) {
    double c = 6.0 * n_params * total_tokens;
    if (!(c >= 1e20)) return -1;
    /* the fit passes 2^63 tokens for models above ~1e20 parameters: clamp, do not wrap */
    return sp_clamp_i64(pow(10.0, 0.88 * log10(n_params) + 163.27 / log10(c) - 5.74), 0, INT64_MAX);
}

int sp_grow_undo_spec(const sp_grow_op *r, int factor, const sp_spec *after, sp_spec *before,
                      const char *src, int e, sp_err *err) {
    *before = *after;
    if (r->dim == SP_OP_DEPTH && r->shrinks) {
        /* groups of `factor` blocks averaged */
        if (sp_mul_int(after->n_layer, factor, &before->n_layer))
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d].factor: %d x the %d blocks after the event overflows "
                              "the depth before it",
                              src, e, factor, after->n_layer);
        return SP_OK;
    }
    if (r->dim == SP_OP_DEPTH) {
        if (after->n_layer % factor)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d].factor: %d does not divide the depth %d it grows to "
                              "(model.n_layer is the depth after the last event)",
                              src, e, factor, after->n_layer);
        before->n_layer = after->n_layer / factor;
        return SP_OK;
    }
    sp_spec again;
    if (sp_grow_width_spec(r->inverse, after, factor, before, err) ||
        sp_grow_width_spec(r->name, before, factor, &again, err))
        return sp_err_wrap(err,
                           "%s: growth[%d] (the model after it: d_model %d, n_head %d, d_ff %d)",
                           src, e, after->d_model, after->n_head, after->d_ff);
    if (sp_spec_diff(&again, after) >= 0)
        return sp_err_set(err, SP_EINPUT, "%s: growth[%d]: %s x%d cannot reach model.*", src, e,
                          r->name, factor);
    return SP_OK;
}

void sp_grow_sched_free(sp_grow_sched *gs) {
    free(gs->ev);
    memset(gs, 0, sizeof *gs);
}

sp_spec sp_grow_spec_at(const sp_grow_sched *gs, int k) {
    return k > 0 ? gs->ev[k - 1].after : gs->spec0;
}

void sp_grow_block_scales(const sp_grow_sched *gs, int k, int64_t step, float *c) {
    /* origin[b]: the event whose `random` op created block b (or its source), -1 for none;
     * followed through every event's block map, as the blocks themselves were */
    int cap = gs->n_layer0;
    for (int e = 0; e < k; e++)
        if (gs->ev[e].n_after > cap) cap = gs->ev[e].n_after;
    int *origin = malloc((size_t)cap * sizeof *origin), *next = malloc((size_t)cap * sizeof *next);
    int n = gs->n_layer0;
    for (int e = 0; origin && next && e < k; e++) {
        const sp_grow_event *r = &gs->ev[e];
        if (e == 0)
            for (int b = 0; b < n; b++) origin[b] = -1;
        sp_block_map map;
        if (r->kind != SP_GROW_DEPTH || r->dop->shrinks) {
            /* width: blocks keep their places; averaged blocks and V-cycles: no ramps */
            if (r->n_after != n)
                for (int b = 0; b < r->n_after; b++) origin[b] = -1;
            n = r->n_after;
            continue;
        }
        if (sp_grow_plan(r->dop->name, r->n_before, r->factor, &map, NULL)) break; /* checked */
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
        if (k == 0 || !origin || origin[b] < 0) continue;
        const sp_grow_event *r = &gs->ev[origin[b]];
        double x = (double)(step - r->step) / (double)r->ramp_steps;
        if (x < 1.0) c[b] = x > 0.0 ? (float)x : 0.0f;
    }
    free(origin);
    free(next);
}

double sp_grow_lr_factor(const sp_grow_sched *gs, int k, int64_t step) {
    double f = k > 0 ? gs->ev[k - 1].lr_mult : 1.0;
    for (int e = k - 1; e >= 0; e--) {
        const sp_grow_event *r = &gs->ev[e];
        if (r->rewarm_steps <= 0) continue;
        double x = (double)(step - r->step + 1) / (double)r->rewarm_steps;
        return f * (x < 1.0 ? (x > 0.0 ? x : 0.0) : 1.0);
    }
    return f;
}

void sp_grow_width_mask(const sp_grow_sched *gs, int k, int64_t step, sp_plan *m) {
    m->mask_d = m->mask_f = m->mask_out = 0;
    m->mask_c = 1.0f;
    if (k == 0) return;
    /* only the newest event can be fading in: any later event ends a ramp */
    const sp_grow_event *r = &gs->ev[k - 1];
    int fades = r->kind == SP_GROW_WIDTH && r->wop->ramps;
    double x = (double)(step - r->step) / (double)r->ramp_steps;
    if (!fades || x >= 1.0) return;
    m->mask_d = r->before.d_model;
    m->mask_f = r->before.d_ff;
    m->mask_out = r->wop->width == SP_W_WIDEN_RANDOM; /* the outputs too, see sp_plan */
    m->mask_c = x > 0.0 ? (float)x : 0.0f;
}
