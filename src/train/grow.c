/* Growth events on the live job: the one place that joins the growth operators (pure functions
 * on slabs) with the redistribution engine (slabs between ranks). An event runs between two
 * optimizer steps on every rank:
 *   1. the trainer's layout is rebuilt for the model after the event (pp may change);
 *   2. V-cycle saved models follow the grid; on the way down the current model is saved;
 *   3. a width operator rewrites every slab in place on the OLD layout (same block ranges);
 *   4. the blocks move to the new layout through the block map of the event's depth operator (a
 *      row of the table: coalescing has several sources per entry, averaged), else the identity;
 *   5. local transforms, V-cycle interpolation with the saved model, the optimizer policy;
 *   6. G_learn: the new blocks are mixes of the base blocks (every rank holds the base, gathered
 *      before the move), trained for the event's learn_steps data steps, then kept as slabs. */
#include "sprout/growth.h"
#include "sprout/kernels.h"
#include "sprout/redist.h"
#include "sprout/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An uninitialised stage of `spec` on the trainer's current grid; weights only for the saved
 * V-cycle levels (only their weights are ever read). */
static int stage_of(const sp_trainer *tr, const sp_spec *spec, int weights_only, sp_model *m,
                    sp_err *err) {
    const sp_grid *g = &tr->grid;
    int lo, hi;
    sp_grid_stage_range(spec->n_layer, g->pp, g->stage, &lo, &hi);
    int embed = g->stage == 0, head = g->stage == g->pp - 1;
    return weights_only ? sp_model_create_weights(m, spec, lo, hi, embed, head, err)
                        : sp_model_create(m, spec, lo, hi, embed, head, err);
}

/* The block map new j <- old stride*j + offset (n_new blocks), every block copied. */
static int strided_map(int n_old, int n_new, int stride, int offset, sp_block_map *map,
                       sp_err *err) {
    map->n_old = n_old, map->n_new = n_new;
    map->b = calloc((size_t)(n_new > 0 ? n_new : 1), sizeof *map->b);
    if (!map->b) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    for (int j = 0; j < n_new; j++) map->b[j] = sp_block_one(stride * j + offset, SP_XF_COPY);
    return SP_OK;
}

/* dst = the weights of src (laid out by *src_l) on the trainer's current grid: a weights-only
 * stage with src's spec, filled through the identity map. V-cycle levels are saved this way and
 * follow the grid this way when it changes. */
static int copy_to_grid(sp_trainer *tr, const sp_model *src, const sp_layout *src_l, sp_model *dst,
                        sp_err *err) {
    int n = src->spec.n_layer, rc = stage_of(tr, &src->spec, 1, dst, err);
    sp_block_map id = {0};
    sp_layout nl = {tr->grid.pp, tr->dp, n};
    if (!rc) rc = strided_map(n, n, 1, 0, &id, err);
    if (!rc) rc = sp_redist(src, src_l, dst, &nl, &id, tr->comm, &tr->grow_bytes_sent, err);
    sp_grow_map_free(&id);
    if (rc) sp_model_free(dst);
    return rc;
}

/* cur -> tr->model along map, one arena after the other, each new arena in the memory of an old
 * one that is no longer needed: the old gradients (dead between steps) hold the new params, the
 * old params once moved the new m, the old m the new v, the old v the new gradients, the old bf16
 * copy the new one. Fresh arenas would each pay a first touch of every page, which is 10-50x a
 * write here and was ~90% of an event at GPT-2-small width (docs/performance.md). Every rank runs
 * the same chain; the ranks agree on each recycling before the next collective. */
/* Every slab of this rank's new stage comes from the same place in its old stage: nothing is
 * received and nothing shifts (G_stack from pp 1 to pp 2, say), so the new stage can keep the old
 * arenas as they are, and the move only sends. */
static int stays_in_place(int me, const sp_model *cur, const sp_layout *old_l, const sp_model *nw,
                          const sp_block_map *map) {
    if (cur->numel != nw->numel || cur->global_numel != nw->global_numel) return 0;
    if (nw->global_numel && sp_redist_source(old_l, -1, me) != me) return 0;
    for (int j = nw->lo; j < nw->hi; j++) {
        int s = map->b[j].src;
        if (s >= 0 && (sp_redist_source(old_l, s, me) != me || s - cur->lo != j - nw->lo)) return 0;
    }
    return 1;
}

static int move_recycled(sp_trainer *tr, sp_model *cur, const sp_layout *old_l,
                         const sp_layout *new_l, const sp_block_map *map, sp_err *err) {
    sp_model *nw = &tr->model;
    static const int chain[][2] = {{SP_ARENA_PARAMS, SP_ARENA_GRADS},
                                   {SP_ARENA_M, SP_ARENA_PARAMS},
                                   {SP_ARENA_V, SP_ARENA_M},
                                   {SP_ARENA_GRADS, SP_ARENA_V},
                                   {SP_ARENA_BF16, SP_ARENA_BF16}};
    int rc = SP_OK, n = (int)(sizeof chain / sizeof chain[0]);
    int keep = stays_in_place(tr->rank, cur, old_l, nw, map);
    /* in place: the moves go into the old arenas themselves (local copies onto themselves are
     * skipped), which the new stage takes over afterwards */
    sp_model view = *nw;
    if (keep) view.params = cur->params, view.m = cur->m, view.v = cur->v;
    /* the same collectives in the same order on every rank, whichever way each one recycles */
    for (int i = 0; i < n; i++) {
        int to = chain[i][0], bad;
        if (!keep) rc = sp_model_take_arena(nw, to, cur, chain[i][1], err);
        bad = rc != SP_OK;
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, tr->comm);
        if (bad)
            return rc ? rc
                      : sp_err_set(err, SP_ERUNTIME,
                                   "growth: another rank ran out of memory (its error says why)");
        if (to == SP_ARENA_PARAMS || to == SP_ARENA_M || to == SP_ARENA_V)
            rc = sp_redist_arena(cur, old_l, keep ? &view : nw, new_l, map, to, tr->comm,
                                 &tr->grow_bytes_sent, err);
        if (rc) return rc;
    }
    for (int a = 0; keep && a < SP_MODEL_ARENAS && !rc; a++)
        rc = sp_model_take_arena(nw, a, cur, a, err); /* same size: no copy, no resize */
    if (rc) return rc;
    /* recycled memory holds old values: what the move did not write must read as in a fresh
     * stage (zero); the bf16 copy is refreshed before the next forward anyway */
    if (nw->grads) memset(nw->grads, 0, nw->numel * sizeof(float));
    float *arenas[3] = {nw->params, nw->m, nw->v};
    for (int b = nw->lo; b < nw->hi; b++)
        for (int a = 0; a < 3 && map->b[b].src < 0; a++)
            if (arenas[a])
                memset(sp_model_block(nw, arenas[a], b), 0, nw->block_numel * sizeof(float));
    return SP_OK;
}

/* the checkpoint group of a saved V-cycle level */
static void level_group(char *buf, size_t n, int level) {
    snprintf(buf, n, "vcycle/level_%d", level);
}

/* theta = (1 - alpha) * saved + alpha * theta, weights only (the moments are reset) */
static int interpolate_saved(sp_model *m, const sp_model *saved, double alpha, sp_err *err) {
    if (saved->numel != m->numel || saved->lo != m->lo || saved->spec.d_model != m->spec.d_model)
        return sp_err_set(err, SP_ERUNTIME, "V-cycle: the saved model does not match the level");
    float a = (float)alpha, b = (float)(1.0 - alpha);
    for (size_t i = 0; i < m->numel; i++) m->params[i] = b * saved->params[i] + a * m->params[i];
    return SP_OK;
}

/* Rewrites cur in place with a width operator (same layout, new widths). */
static int widen(sp_trainer *tr, sp_model *cur, const char *op, int k, const sp_grow_event *ev,
                 int e, sp_err *err) {
    /* every width op is built on the kind's axis roles; a kind whose math the op does not
     * cover is refused by the table (checked at start-up too, this is the last line) */
    if (sp_grow_op_applies(sp_grow_op_find(op), &cur->spec, err)) return err->code;
    sp_spec ws;
    sp_model w;
    if (sp_grow_width_spec(op, &cur->spec, k, &ws, err)) return err->code;
    if (sp_model_create(&w, &ws, cur->lo, cur->hi, cur->has_embed, cur->has_head, err))
        return err->code;
    w.obj = cur->obj;
    if (sp_grow_width(op, k, cur, &w, !ev->reset_optim, ev->noise, tr->cfg->train.seed, e, err)) {
        sp_model_free(&w);
        return err->code;
    }
    sp_model_free(cur);
    *cur = w;
    return SP_OK;
}

/* Every rank gets every block of the old model cur (laid out by *old_l): the first replica's
 * stages each give their own blocks and the others zeros, so the sum is each block exactly. */
static void gather_base(sp_trainer *tr, const sp_model *cur, const sp_layout *old_l, sp_learn *g) {
    size_t n = (size_t)g->l * g->block_numel;
    memset(g->base, 0, n * sizeof(float));
    if (tr->rank / old_l->pp == 0) /* rank r is stage r % pp of replica r / pp */
        for (int b = cur->lo; b < cur->hi; b++)
            memcpy(g->base + (size_t)b * g->block_numel, sp_model_block(cur, cur->params, b),
                   g->block_numel * sizeof(float));
    sp_trainer_allreduce(g->base, n, tr->comm);
    tr->grow_bytes_sent += n * sizeof(float); /* the payload each rank puts into the sum */
}

/* G_learn's training: the new stage's blocks are materialised from the coefficients, a data
 * step gives their gradients (nothing else is updated: the base and the globals stay frozen),
 * the gradients are pulled back to the coefficients, and Adam takes a step on them. Each
 * position lives on one stage, and its replicas agree, so summing the first replica's pullbacks
 * (zeros elsewhere) over every rank gives every rank the same coefficients on any layout. */
static void learn_map(sp_trainer *tr, const sp_grow_event *ev, sp_learn *g) {
    sp_model *m = &tr->model;
    const sp_config *cfg = tr->cfg;
    size_t nc = (size_t)g->L * (size_t)g->l * (size_t)g->nt;
    sp_trainer_set_scales(tr, ev->step);
    tr->learn_loss[0] = tr->learn_loss[1] = NAN;
    for (int64_t k = 0; k < ev->learn_steps; k++) {
        for (int b = m->lo; b < m->hi; b++)
            sp_learn_materialize(g, b, sp_model_block(m, m->params, b));
        double norm;
        tr->learn_loss[1] = sp_trainer_grads(tr, &norm);
        if (!k) tr->learn_loss[0] = tr->learn_loss[1];
        memset(g->dc, 0, nc * sizeof(float));
        if (tr->dp_rank == 0)
            for (int b = m->lo; b < m->hi; b++)
                sp_learn_pullback(g, b, sp_model_block(m, m->grads, b));
        sp_trainer_allreduce(g->dc, nc, tr->comm);
        tr->grow_bytes_sent += nc * sizeof(float);
        sp_learn_update(g, (float)ev->learn_lr, (float)cfg->train.beta1, (float)cfg->train.beta2,
                        (float)cfg->train.eps);
    }
    for (int b = m->lo; b < m->hi; b++) sp_learn_materialize(g, b, sp_model_block(m, m->params, b));
    memset(m->grads, 0, m->numel * sizeof(float));
}

/* The levels whose model a checkpoint at growth stage k holds: saved on the way down and not
 * yet used on the way up. */
static int saved_levels(const sp_grow_sched *gs, int k, int *levels) {
    int have[SP_MAX_LEVELS] = {0}, n = 0;
    for (int e = 0; e < k; e++) {
        const sp_grow_event *r = &gs->ev[e];
        if (r->kind == SP_GROW_VC_DOWN) have[r->level - 1] = 1;
        if (r->kind == SP_GROW_VC_UP) have[r->level] = 0;
    }
    for (int l = 0; l < SP_MAX_LEVELS; l++)
        if (have[l]) levels[n++] = l;
    return n;
}

int sp_trainer_grow(sp_trainer *tr, sp_err *err) {
    int e = (int)tr->st.growth_index;
    if (e >= tr->gs.n) return sp_err_set(err, SP_ERUNTIME, "no growth event left to apply");
    const sp_grow_event *ev = &tr->gs.ev[e];
    sp_layout old_l = {tr->grid.pp, tr->dp, ev->n_before};
    sp_model cur = tr->model;
    memset(&tr->model, 0, sizeof tr->model);
    tr->grow_bytes_sent = 0;
    /* the old activation sets become the new layout's, in the pages they already have */
    tr->spare_acts = tr->acts, tr->n_spare = tr->nslots, tr->spare_scratch = tr->scratch;
    tr->acts = NULL;
    memset(&tr->scratch, 0, sizeof tr->scratch);
    sp_trainer_layout_free(tr);
    /* layout errors (a pipeline that does not fit the new model) are the same on every rank */
    int rc = sp_trainer_layout_create(tr, &ev->after, sp_trainer_pipeline_at(tr, e + 1), err);
    sp_trainer_spare_free(tr);
    int levels[SP_MAX_LEVELS], nsaved = saved_levels(&tr->gs, e, levels);
    for (int i = 0; i < nsaved && !rc && tr->grid.pp != old_l.pp; i++) {
        sp_model *s = &tr->saved[levels[i]], moved;
        sp_layout sl = {old_l.pp, old_l.dp, s->spec.n_layer};
        if (!(rc = copy_to_grid(tr, s, &sl, &moved, err))) {
            sp_model_free(s);
            *s = moved;
        }
    }
    if (!rc && ev->kind == SP_GROW_VC_DOWN) { /* keep this level's weights for the way up */
        sp_model_free(&tr->saved[ev->level - 1]);
        rc = copy_to_grid(tr, &cur, &old_l, &tr->saved[ev->level - 1], err);
    }
    /* the event's operators are rows of the table: a width one rewrites the slabs on the old
     * layout, a depth one gives the block map (several sources per entry when coalescing) */
    int wk = ev->kind == SP_GROW_WIDTH ? ev->factor : ev->wk;
    int dk = ev->kind == SP_GROW_DEPTH ? ev->factor : ev->dk;
    if (!rc && ev->wop) rc = widen(tr, &cur, ev->wop->name, wk, ev, e, err);
    sp_layout new_l = {tr->grid.pp, tr->dp, ev->n_after};
    sp_learn lg = {0};
    if (!rc && ev->dop && ev->dop->learns) {
        rc = sp_learn_init(&lg, ev->dop, &cur.spec, ev->n_before, dk, err);
        if (!rc) gather_base(tr, &cur, &old_l, &lg);
    }
    if (!rc) {
        sp_block_map map;
        int moved_sum = 0;
        if (ev->dop)
            rc = sp_grow_plan(ev->dop->name, ev->n_before, dk, &map, err);
        else
            rc = strided_map(ev->n_before, ev->n_after, 1, 0, &map, err);
        for (int j = 0; !rc && j < map.n_new; j++) moved_sum |= map.b[j].n_more > 0;
        /* summed sources need a second stage at once: the plain move, not the recycling one */
        if (!rc && moved_sum)
            rc = sp_redist(&cur, &old_l, &tr->model, &new_l, &map, tr->comm, &tr->grow_bytes_sent,
                           err);
        else if (!rc)
            rc = move_recycled(tr, &cur, &old_l, &new_l, &map, err);
        if (!rc && ev->dop) sp_grow_transform(&tr->model, &map, tr->cfg->train.seed, e);
        if (map.b) sp_grow_map_free(&map);
    }
    if (!rc && ev->kind == SP_GROW_VC_UP) {
        sp_model *s = &tr->saved[ev->level];
        rc = interpolate_saved(&tr->model, s, ev->alpha, err);
        sp_model_free(s);
    }
    if (!rc && lg.c) learn_map(tr, ev, &lg);
    sp_learn_free(&lg);
    if (!rc && ev->reset_optim) sp_grow_reset_optim(&tr->model);
    if (!rc) tr->st.growth_index = e + 1;
    sp_model_free(&cur);
    /* what was not recycled (V-cycle and coalescing paths) is faulted in now, not in a step */
    if (!rc) sp_model_touch(&tr->model);
    return rc;
}

int sp_trainer_saved_extras(const sp_trainer *tr, sp_ckpt_extra *extra, char names[][32]) {
    int levels[SP_MAX_LEVELS];
    int n = saved_levels(&tr->gs, (int)tr->st.growth_index, levels);
    for (int i = 0; i < n; i++) {
        level_group(names[i], 32, levels[i]);
        extra[i] = (sp_ckpt_extra){names[i], &tr->saved[levels[i]]};
    }
    return n;
}

int sp_trainer_load_saved(sp_trainer *tr, const char *path, sp_err *err) {
    int levels[SP_MAX_LEVELS];
    int n = saved_levels(&tr->gs, (int)tr->st.growth_index, levels);
    for (int i = 0; i < n; i++) {
        char group[32];
        level_group(group, sizeof group, levels[i]);
        sp_spec spec;
        sp_model *s = &tr->saved[levels[i]];
        sp_model_free(s);
        if (sp_ckpt_read_extra_spec(path, group, &spec, err) || stage_of(tr, &spec, 1, s, err) ||
            sp_ckpt_load_extra(path, group, s, err))
            return err->code;
    }
    return SP_OK;
}
