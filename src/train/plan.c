/* The step's execution plan on the live job: built here in one place (the growth schedule's
 * ramps and masks, then the subnetwork method's draw), and the part of the step that only
 * weight sharing needs: summing an Apollo group's gradients over its copies, within a stage and
 * across the stages its copies span, and counting each group once in the gradient norm. */
#include "sprout/growth.h"
#include "sprout/kernels.h"
#include "sprout/redist.h"
#include "sprout/train.h"

#include <stdlib.h>
#include <string.h>

void sp_trainer_plan(sp_trainer *tr, int64_t step, int train) {
    sp_plan *p = &tr->model.plan;
    sp_plan_full(p);
    if (tr->gs.ramps) {
        sp_grow_block_scales(&tr->gs, (int)tr->st.growth_index, step, p->scale);
        sp_grow_width_mask(&tr->gs, (int)tr->st.growth_index, step, p);
    }
    if (train) sp_subnet_draw(&tr->sn, step, p);
}

void sp_trainer_set_scales(sp_trainer *tr, int64_t step) {
    sp_trainer_plan(tr, step, 0);
}

void sp_trainer_init_weights(sp_trainer *tr) {
    sp_trainer_plan(tr, tr->st.step, 1);
    sp_model_init(&tr->model, tr->cfg->train.seed);
    sp_trainer_plan(tr, tr->st.step, 0);
}

int sp_trainer_subnet_expand(sp_trainer *tr, int64_t step, sp_err *err) {
    sp_block_map map;
    int moves = sp_subnet_expand_map(&tr->sn, step, &map, err);
    if (moves <= 0) return moves < 0 ? err->code : SP_OK;
    /* the copies take their new weights, moments and step counts into a second stage of the
     * same range, as a growth event does; the layout stays */
    sp_model *m = &tr->model, dst;
    sp_layout l = {tr->grid.pp, tr->dp, m->spec.n_layer};
    int rc = sp_model_create(&dst, &m->spec, m->lo, m->hi, m->has_embed, m->has_head, err);
    if (!rc) rc = sp_redist(m, &l, &dst, &l, &map, tr->comm, NULL, err);
    sp_grow_map_free(&map);
    if (rc) {
        sp_model_free(&dst);
        return rc;
    }
    sp_model_free(m);
    *m = dst;
    return SP_OK;
}

/* A group spanning several stages needs a buffer to sum across them; only Apollo shares. */
int sp_trainer_share_create(sp_trainer *tr, sp_err *err) {
    free(tr->share);
    tr->share = NULL;
    if (!tr->sn.method || tr->grid.pp < 2) return SP_OK;
    tr->share = malloc(tr->model.block_numel * sizeof(float));
    return tr->share ? SP_OK : sp_err_set(err, SP_ERUNTIME, "out of memory");
}

static int stage_of(const sp_grid *g, int n_layer, int b) {
    for (int s = 0; s < g->pp; s++) {
        int lo, hi;
        sp_grid_stage_range(n_layer, g->pp, s, &lo, &hi);
        if (b < hi) return s;
    }
    return g->pp - 1;
}

/* Every group [a, e) of copies: the stage's copies add into its first one here, the stages the
 * group spans sum that partial gradient (every stage of the pipeline takes part, in group order,
 * with zeros where it holds no copy), and every copy gets the total, so the copies' AdamW
 * updates stay equal bit for bit. Runs after the data-parallel reduction. */
void sp_trainer_share_grads(sp_trainer *tr) {
    sp_model *m = &tr->model;
    const sp_plan *p = &m->plan;
    if (!p->shared) return;
    size_t n = m->block_numel;
    for (int a = 0, e; a < p->n_layer; a = e) {
        for (e = a + 1; e < p->n_layer && p->group[e] == a;) e++;
        int lo = a > m->lo ? a : m->lo, hi = e < m->hi ? e : m->hi;
        float *rep = lo < hi ? sp_model_block(m, m->grads, lo) : NULL;
        for (int b = lo + 1; b < hi; b++)
            sp_residual_forward(rep, rep, sp_model_block(m, m->grads, b), n);
        if (stage_of(&tr->grid, p->n_layer, a) != stage_of(&tr->grid, p->n_layer, e - 1)) {
            if (rep)
                memcpy(tr->share, rep, n * sizeof(float));
            else
                memset(tr->share, 0, n * sizeof(float));
            sp_trainer_allreduce(tr->share, n, tr->grid.pipe);
            if (rep) memcpy(rep, tr->share, n * sizeof(float));
        }
        for (int b = lo + 1; b < hi; b++)
            memcpy(sp_model_block(m, m->grads, b), rep, n * sizeof(float));
    }
}

/* Squared gradient norm of the stage: the globals once (the last stage leaves them to the first),
 * and a shared group only at its first block. Without sharing one pass over the arena. */
double sp_trainer_grad_sumsq(const sp_trainer *tr) {
    const sp_model *m = &tr->model;
    const sp_grid *g = &tr->grid;
    size_t skip = (g->pp > 1 && g->stage == g->pp - 1) ? m->global_numel : 0;
    if (!m->plan.shared) return sp_sumsq(m->grads + skip, m->numel - skip);
    double sq = sp_sumsq(m->grads + skip, m->global_numel - skip);
    for (int b = m->lo; b < m->hi; b++)
        if (m->plan.group[b] == b) sq += sp_sumsq(sp_model_block(m, m->grads, b), m->block_numel);
    return sq;
}
