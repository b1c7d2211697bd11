/* One training step and evaluation on a rank: micro-batches, gradient accumulation, the
 * data-parallel gradient reduction, global-norm clipping and AdamW. */
#include "sprout/growth.h"
#include "sprout/kernels.h"
#include "sprout/mlm.h"
#include "sprout/redist.h"
#include "sprout/train.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Gradients are reduced in place in buckets of this size: one large MPI_Allreduce allocates a
 * temporary as big as the message and runs ~20x slower on these machines. */
#define REDUCE_BUCKET_FLOATS ((size_t)1 << 20)

void openblas_set_num_threads(int);

/* Frees what depends on the layout (grid, schedule, activations, buffers), not the model. */
void sp_trainer_layout_free(sp_trainer *tr) {
    /* sends complete; receives still posted (only after a failed step) are cancelled */
    for (int i = 0; tr->req && i < 4 * tr->nslots; i++) {
        if (tr->req[i] == MPI_REQUEST_NULL) continue;
        if (i >= 2 * tr->nslots) MPI_Cancel(&tr->req[i]);
        MPI_Wait(&tr->req[i], MPI_STATUS_IGNORE);
    }
    for (int i = 0; tr->acts && i < tr->nslots; i++) sp_acts_free(&tr->acts[i]);
    free(tr->acts);
    sp_scratch_free(&tr->scratch);
    sp_sched_free(&tr->sched);
    free(tr->inp);
    free(tr->tgt);
    free(tr->gsend);
    free(tr->grecv);
    free(tr->req);
    free(tr->red);
    free(tr->share);
    sp_grid_free(&tr->grid);
    tr->acts = NULL, tr->inp = tr->tgt = NULL, tr->gsend = tr->grecv = NULL;
    tr->req = tr->red = NULL;
    tr->share = NULL;
    tr->nslots = 0;
    memset(&tr->grid, 0, sizeof tr->grid);
    tr->grid.pipe = tr->grid.dpc = tr->grid.tie = MPI_COMM_NULL;
}

/* The pipeline stages requested for growth stage k: parallel.pipeline before the first event,
 * the event's own `pipeline` after it (0 = auto). Inference places every stage by
 * parallel.pipeline: a pipeline the training gave an event need not divide the ranks at hand
 * (an eval on one rank of a run grown onto pp 2). */
int sp_trainer_pipeline_at(const sp_trainer *tr, int k) {
    return k > 0 && !(tr->flags & SP_TRAINER_INFER) ? tr->gs.ev[k - 1].pipeline
                                                    : sp_cfg_pipeline(tr->cfg);
}

/* MiB of the largest stage of `spec` on pp stages, as sp_trainer_layout_create would allocate
 * it: the arenas (4, or 1 for inference), each activation slot the schedule holds at once, the
 * scratch, the message buffers and the schedule itself. Counted before anything is allocated,
 * so that parallel.max_stage_mib bounds what a rank really takes (activations dominate for long
 * sequences) and too large a model or sequence is refused as input, not met as an
 * out-of-memory error half-way through start-up. */
static double stage_mib(const sp_spec *spec, int pp, const void *ctx) {
    const sp_trainer *tr = ctx;
    int dp = tr->world / pp;
    int64_t per = (int64_t)dp * tr->mb, gb = tr->cfg->train.global_batch;
    double n_micro = (double)((gb + per - 1) / per); /* a remainder is refused later */
    double arenas = (tr->flags & SP_TRAINER_INFER) ? 1 : 4, worst = 0;
    double block = (double)sp_spec_block_numel(spec), global = (double)sp_spec_global_numel(spec);
    int gpipe = !strcmp(tr->cfg->parallel.schedule, "gpipe");
    for (int st = 0; st < pp; st++) {
        int lo, hi, head = st == pp - 1;
        sp_grid_stage_range(spec->n_layer, pp, st, &lo, &hi);
        /* the schedule's peak of live micro-batches (unit_schedule checks it): all of them for
         * GPipe, pp - stage for 1F1B */
        double slots = gpipe ? n_micro : fmin(n_micro, (double)(pp - st));
        double w = (st == 0 || head ? global : 0) + (hi - lo) * block;
        double bytes = arenas * 4.0 * w;
        bytes += slots * (double)sp_acts_bytes(spec, hi - lo, head, tr->mb, tr->T);
        bytes += (double)sp_scratch_bytes(spec, head, tr->mb, tr->T);
        /* inp, tgt (int32) and gsend, grecv (floats of [mb, T, C]) per slot */
        bytes += slots * (double)tr->mb * tr->T * (8.0 + 8.0 * spec->d_model);
        bytes += 6.0 * n_micro * sizeof(sp_action);
        if (bytes > worst) worst = bytes;
    }
    return worst / 1048576.0;
}

/* Checks up front that the layout of every growth stage exists (k = 0: before the first event),
 * so that a bad `pipeline` stops the run at start with the event's key named, not half-way
 * through training; each stage within `budget` MiB (INT64_MAX: the shapes only). */

/* the global batch does not split over the replicas of growth stage k's layout (pp stages) */
static int batch_error(const sp_trainer *tr, int k, int pp, sp_err *err) {
    char pre[32] = "";
    if (k) snprintf(pre, sizeof pre, "growth[%d]: ", k - 1);
    return sp_err_set(err, SP_EINPUT,
                      "%strain.global_batch = %lld is not divisible by data-parallel ranks (%d) x "
                      "train.micro_batch (%d) on pp %d%s: lower train.micro_batch, or choose a "
                      "pipeline (parallel.pipeline, growth[i].pipeline) that leaves fewer replicas",
                      pre, (long long)tr->cfg->train.global_batch, tr->world / pp, tr->mb, pp,
                      k ? " after the event" : "");
}

static int check_layouts(const sp_trainer *tr, int64_t budget, sp_err *err) {
    for (int k = 0; k <= tr->gs.n; k++) {
        sp_spec s = sp_grow_spec_at(&tr->gs, k);
        int req = sp_trainer_pipeline_at(tr, k), pp;
        if (sp_spec_check(&s, err))
            return k ? sp_err_wrap(err, "growth[%d]: the model after it", k - 1) : err->code;
        if (k > 0 && req > s.n_layer)
            return sp_err_set(err, SP_EINPUT,
                              "growth[%d].pipeline = %d is larger than the %d blocks after the "
                              "event",
                              k - 1, req, s.n_layer);
        if (k > 0 && req > 0 && tr->world % req)
            return sp_err_set(err, SP_EINPUT,
                              "growth[%d].pipeline = %d does not divide the %d MPI ranks", k - 1,
                              req, tr->world);
        if (sp_grid_choose_pp(&s, tr->world, req, budget, stage_mib, tr, &pp, err))
            return k ? sp_err_wrap(err, "growth[%d]", k - 1) : err->code;
        if (tr->cfg->train.global_batch % ((int64_t)(tr->world / pp) * tr->mb))
            return batch_error(tr, k, pp, err);
    }
    return SP_OK;
}

/* Lays the model of `spec` out on the ranks: grid, schedule, this rank's stage (created, not
 * initialised), activations and message buffers. Errors are the same on every rank. */
int sp_trainer_layout_create(sp_trainer *tr, const sp_spec *spec, int requested_pp, sp_err *err) {
    const sp_config *cfg = tr->cfg;
    if (sp_spec_check(spec, err)) return err->code;
    int pp;
    if (sp_grid_choose_pp(spec, tr->world, requested_pp, cfg->parallel.max_stage_mib, stage_mib, tr,
                          &pp, err))
        return err->code;
    tr->dp = tr->world / pp;
    int64_t gb = cfg->train.global_batch;
    if (gb % ((int64_t)tr->dp * tr->mb)) return batch_error(tr, (int)tr->st.growth_index, pp, err);
    tr->n_micro = (int)(gb / ((int64_t)tr->dp * tr->mb));
    if (sp_grid_create(&tr->grid, tr->comm, pp, spec->n_layer, err)) return err->code;
    sp_grid *g = &tr->grid;
    tr->dp_rank = g->dp_rank;
    if (sp_sched_build(cfg->parallel.schedule, pp, g->stage, tr->n_micro, &tr->sched, err))
        return err->code;
    tr->nslots = sp_sched_peak_live(&tr->sched);
    for (int k = 0; k < tr->sched.n; k++)
        if (tr->sched.a[k].kind == SP_ACT_BWD) tr->last_bwd = k;

    int embed = g->stage == 0, head = g->stage == pp - 1;
    if ((tr->flags & SP_TRAINER_INFER)
            ? sp_model_create_weights(&tr->model, spec, g->lo, g->hi, embed, head, err)
            : sp_model_create(&tr->model, spec, g->lo, g->hi, embed, head, err))
        return err->code;
    if (tr->obj) tr->model.obj = tr->obj;
    if (sp_model_use_gemm(&tr->model, tr->gemm, err)) return err->code;
    size_t mbT = (size_t)tr->mb * tr->T;
    /* the requests first, and null at once: sp_trainer_layout_free waits for every one of them,
     * also after a later allocation here failed */
    tr->req = malloc(4 * (size_t)tr->nslots * sizeof *tr->req);
    if (!tr->req) {
        tr->nslots = 0;
        return sp_err_set(err, SP_ERUNTIME, "out of memory");
    }
    for (int i = 0; i < 4 * tr->nslots; i++) tr->req[i] = MPI_REQUEST_NULL;
    tr->acts = calloc((size_t)tr->nslots, sizeof *tr->acts);
    tr->inp = malloc((size_t)tr->nslots * mbT * sizeof(int32_t));
    tr->tgt = malloc((size_t)tr->nslots * mbT * sizeof(int32_t));
    tr->gsend = malloc((size_t)tr->nslots * mbT * (size_t)spec->d_model * sizeof(float));
    tr->grecv = malloc((size_t)tr->nslots * mbT * (size_t)spec->d_model * sizeof(float));
    if (!tr->acts || !tr->inp || !tr->tgt || !tr->gsend || !tr->grecv)
        return sp_err_set(
            err, SP_ERUNTIME, "out of memory for the message buffers of stage %d (%.0f MiB)",
            g->stage, (double)tr->nslots * (double)mbT * (8.0 + 8.0 * spec->d_model) / 1048576.0);
    size_t per_block = (tr->model.block_numel + REDUCE_BUCKET_FLOATS - 1) / REDUCE_BUCKET_FLOATS;
    tr->max_red = (int)(per_block * (size_t)(g->hi - g->lo)) + 1;
    tr->red = malloc((size_t)tr->max_red * sizeof *tr->red);
    if (!tr->red) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    for (int i = 0; i < tr->nslots; i++)
        if (sp_acts_create_in(&tr->acts[i], &tr->model, tr->mb, tr->T,
                              i < tr->n_spare ? &tr->spare_acts[i] : NULL, err))
            return err->code;
    if (sp_scratch_create_in(&tr->scratch, &tr->model, tr->mb, tr->T, &tr->spare_scratch, err))
        return err->code;
    if (!(tr->flags & SP_TRAINER_INFER) && sp_trainer_share_create(tr, err)) return err->code;
    tr->flops_per_token = sp_spec_flops_per_token(spec, spec->n_layer);
    return SP_OK;
}

int sp_trainer_init(sp_trainer *tr, const sp_config *cfg, int flags, MPI_Comm comm, sp_err *err) {
    memset(tr, 0, sizeof *tr);
    tr->cfg = cfg;
    tr->comm = comm;
    tr->flags = flags;
    tr->grid.pipe = tr->grid.dpc = tr->grid.tie = MPI_COMM_NULL;
    MPI_Comm_rank(comm, &tr->rank);
    MPI_Comm_size(comm, &tr->world);
    tr->T = (int)cfg->model.seq_len;
    tr->mb = (int)cfg->train.micro_batch;
    /* before the first stage is made: every stage of the run computes in this context */
    if (sp_cfg_bf16(cfg) && sp_gemm_create(&tr->gemm, (int)cfg->run.threads, err)) return err->code;
    /* the schedule's warnings (at_tokens: auto on a small budget) are printed by rank 0 only */
    sp_log quiet = {(flags & SP_TRAINER_QUIET) ? 1 : tr->rank, 1};
    if (sp_train_grow_schedule(cfg, &tr->gs, &quiet, err) || sp_subnet_resolve(cfg, &tr->sn, err))
        return err->code;
    int obj = sp_objective_find(cfg->train.objective);
    const char *src = cfg->source ? cfg->source : "config";
    if (obj < 0)
        return sp_err_set(err, SP_EINPUT, "%s: train.objective: '%s' is not an objective (%s)", src,
                          cfg->train.objective, sp_objective_names());
    tr->obj = &sp_objectives[obj];
    int kind = sp_kind_find(cfg->model.block);
    /* a causal block cannot be trained to fill in masked tokens it sees the future of, and a
     * bidirectional one would read the next token it is asked to predict */
    if (kind >= 0 && strcmp(sp_kinds[kind]->objective, tr->obj->name))
        return sp_err_set(err, SP_EINPUT,
                          "%s: train.objective: '%s' does not apply to model.block %s, which "
                          "trains with '%s'",
                          src, tr->obj->name, sp_kinds[kind]->name, sp_kinds[kind]->objective);
    if (tr->obj->prepare && cfg->model.vocab < SP_MLM_NSPECIAL + 1)
        return sp_err_set(
            err, SP_EINPUT,
            "%s: model.vocab: %lld leaves no ordinary token beside the %d special ids "
            "of train.objective %s",
            src, (long long)cfg->model.vocab, SP_MLM_NSPECIAL, tr->obj->name);
    tr->st.subnet_stage = tr->st.plan_step = tr->sn.method ? 0 : -1;
    /* In this order, each before anything large is allocated: the shapes of every layout; the
     * data (a file that cannot serve the config, too few tokens for seq_len or a larger vocab,
     * is a data error whatever the model would cost; growth changes neither); the memory of
     * every stage, activations included. */
    if (check_layouts(tr, INT64_MAX, err)) return err->code;
    if (flags & SP_TRAINER_DATA) {
        if (sp_data_open(&tr->train, cfg->data.train, err)) return sp_err_wrap(err, "data.train");
        tr->have_train = 1;
        if (sp_data_check_vocab(&tr->train, cfg->model.vocab, err)) return err->code;
        if (tr->obj->prepare && (int64_t)tr->train.vocab + SP_MLM_NSPECIAL > cfg->model.vocab)
            return sp_err_set(err, SP_EINPUT,
                              "%s: model.vocab: %lld is too small for train.objective %s: the "
                              "data's %u token ids and the %d special ids [MASK] [CLS] [SEP] [PAD] "
                              "after them need %lld",
                              src, (long long)cfg->model.vocab, tr->obj->name, tr->train.vocab,
                              SP_MLM_NSPECIAL, (long long)tr->train.vocab + SP_MLM_NSPECIAL);
        if (sp_data_open(&tr->val, cfg->data.val, err)) return sp_err_wrap(err, "data.val");
        tr->have_val = 1;
        if (sp_data_check_vocab(&tr->val, cfg->model.vocab, err) ||
            sp_data_check_context(&tr->train, tr->T, err) ||
            sp_data_check_context(&tr->val, tr->T, err))
            return err->code;
        if (sp_tok_files_for_data(&tr->tok, "data.train", tr->train.path, tr->train.tokenizer,
                                  "data.val", tr->val.path, tr->val.tokenizer, err))
            return err->code;
    }
    if (check_layouts(tr, cfg->parallel.max_stage_mib, err)) return err->code;
    sp_spec spec = sp_grow_spec_at(&tr->gs, 0);
    if (sp_trainer_layout_create(tr, &spec, sp_trainer_pipeline_at(tr, 0), err)) return err->code;
    sp_model_touch(&tr->model); /* page faults at start-up, not in the first step */
    if (!(flags & SP_TRAINER_NO_INIT)) sp_trainer_init_weights(tr);

    openblas_set_num_threads((int)cfg->run.threads);
    tr->st.seed = cfg->train.seed;
    return SP_OK;
}

void sp_trainer_spare_free(sp_trainer *tr) {
    for (int i = 0; i < tr->n_spare; i++) sp_acts_free(&tr->spare_acts[i]);
    free(tr->spare_acts);
    sp_scratch_free(&tr->spare_scratch);
    tr->spare_acts = NULL, tr->n_spare = 0;
}

void sp_trainer_free(sp_trainer *tr) {
    sp_trainer_spare_free(tr);
    sp_trainer_layout_free(tr);
    sp_model_free(&tr->model);
    for (int k = 0; k < SP_MAX_LEVELS; k++) sp_model_free(&tr->saved[k]);
    sp_gemm_free(tr->gemm);
    if (tr->have_train) sp_data_close(&tr->train);
    if (tr->have_val) sp_data_close(&tr->val);
    sp_tok_files_free(&tr->tok);
    sp_grow_sched_free(&tr->gs);
    memset(tr, 0, sizeof *tr);
}

int sp_trainer_relayout(sp_trainer *tr, int k, sp_err *err) {
    if (k < 0 || k > tr->gs.n)
        return sp_err_set(err, SP_EINPUT, "growth stage %d: the config has %d growth event(s)", k,
                          tr->gs.n);
    sp_trainer_layout_free(tr);
    sp_model_free(&tr->model);
    sp_spec spec = sp_grow_spec_at(&tr->gs, k);
    tr->st.growth_index = k;
    if (sp_trainer_layout_create(tr, &spec, sp_trainer_pipeline_at(tr, k), err)) return err->code;
    sp_model_touch(&tr->model);
    return SP_OK;
}

double sp_trainer_lr(const sp_trainer *tr, int64_t step) {
    return sp_lr_at(tr->cfg, step) * sp_grow_lr_factor(&tr->gs, (int)tr->st.growth_index, step);
}

/* Fills the micro-batch whose first global sample index is s0 for data step t. Without data
 * the tokens are synthetic but still a pure function of (seed, t, sample). */
static void fill_batch(sp_trainer *tr, int64_t t, int64_t s0, int32_t *inp0, int32_t *tgt0) {
    int T = tr->T, V = (int)tr->model.spec.vocab;
    for (int i = 0; i < tr->mb; i++) {
        int32_t *inp = inp0 + (size_t)i * T, *tgt = tgt0 + (size_t)i * T;
        uint64_t k = (uint64_t)(s0 + i);
        if (tr->have_train) {
            sp_data_train_sample(&tr->train, tr->st.seed, (uint64_t)t, k, T, inp, tgt);
        } else {
            for (int j = 0; j <= T; j++) {
                int32_t tok = (int32_t)(sp_rng_u64(tr->st.seed, SP_RNG_DATA, (uint64_t)t,
                                                   k * (uint64_t)(T + 1) + (uint64_t)j) %
                                        (uint64_t)V);
                if (j < T) inp[j] = tok;
                if (j > 0) tgt[j - 1] = tok;
            }
        }
        /* the masking is keyed by the same global (step, sample): layout-free, restart-exact */
        if (tr->obj->prepare) tr->obj->prepare(tr->st.seed, (uint64_t)t, k, inp, tgt, T, V);
    }
}

/* The counted positions of step t over all its global_batch samples. Every rank masks every
 * sample of the step itself: the count follows from the data and the masking keys alone, so it is
 * the same on every layout without a message, and costs one token read and one counter draw per
 * position, small beside the step. The step's slot 0 buffers are free before its schedule runs. */
static int64_t step_count(sp_trainer *tr, int64_t t) {
    int64_t gb = tr->cfg->train.global_batch, n = 0;
    if (tr->obj->count_all) return gb * tr->T;
    int32_t *inp = tr->inp, *tgt = tr->tgt;
    for (int64_t k0 = 0; k0 < gb; k0 += tr->mb) {
        fill_batch(tr, t, k0, inp, tgt);
        n += tr->obj->count(tgt, tr->mb * tr->T);
    }
    return n;
}

void sp_trainer_allreduce(float *x, size_t n, MPI_Comm comm) {
    for (size_t o = 0; o < n; o += REDUCE_BUCKET_FLOATS) {
        size_t c = n - o < REDUCE_BUCKET_FLOATS ? n - o : REDUCE_BUCKET_FLOATS;
        MPI_Allreduce(MPI_IN_PLACE, x + o, (int)c, MPI_FLOAT, MPI_SUM, comm);
    }
}

enum { TAG_ACT = 0, TAG_GRAD = 1 };

/* Called after each block's last backward of the step: its gradient is final, so its
 * reduction across replicas starts now and overlaps the backward of the blocks below. */
static void reduce_block(void *ctx, int b) {
    sp_trainer *tr = ctx;
    sp_model *m = &tr->model;
    float *g = sp_model_block(m, m->grads, b);
    for (size_t o = 0; o < m->block_numel && tr->n_red < tr->max_red; o += REDUCE_BUCKET_FLOATS) {
        size_t c =
            m->block_numel - o < REDUCE_BUCKET_FLOATS ? m->block_numel - o : REDUCE_BUCKET_FLOATS;
        MPI_Iallreduce(MPI_IN_PLACE, g + o, (int)c, MPI_FLOAT, MPI_SUM, tr->grid.dpc,
                       &tr->red[tr->n_red++]);
    }
    /* non-blocking collectives advance only inside MPI calls: give the earlier buckets a turn */
    int flag;
    MPI_Testall(tr->n_red, tr->red, &flag, MPI_STATUSES_IGNORE);
}

/* Receives are posted as soon as their buffer is free, not when the schedule reaches them, so
 * that a message can be matched (and a large one pulled) while this rank still computes:
 * micro-batch mb's activations go to its slot's input x[0] (free once the slot's previous
 * micro-batch finished its backward), its gradient to the slot's grecv buffer (posted when its
 * activations leave). Requests: [0, 2n) sends (activation, gradient per slot), [2n, 4n) the
 * matching receives. */
static void post_act_recv(sp_trainer *tr, int mb) {
    const sp_grid *g = &tr->grid;
    int slot = mb % tr->nslots;
    size_t NC = (size_t)tr->mb * tr->T * (size_t)tr->model.spec.d_model;
    MPI_Irecv(tr->acts[slot].x, (int)NC, MPI_FLOAT, g->stage - 1, 2 * mb + TAG_ACT, g->pipe,
              &tr->req[2 * tr->nslots + 2 * slot]);
}

/* Runs this stage's schedule for one step: forward and backward of every micro-batch of the
 * replica, activations and their gradients exchanged with the neighbouring stages. Returns the
 * summed token loss of the micro-batches whose loss this stage computed (last stage). */
static double run_schedule(sp_trainer *tr, int64_t t, float scale) {
    sp_model *m = &tr->model;
    const sp_grid *g = &tr->grid;
    int first = g->stage == 0, last = g->stage == g->pp - 1, n = tr->nslots;
    size_t mbT = (size_t)tr->mb * tr->T, NC = mbT * (size_t)m->spec.d_model;
    double loss_sum = 0;
    for (int mb = 0; !first && mb < n && mb < tr->n_micro; mb++) post_act_recv(tr, mb);
    for (int k = 0; k < tr->sched.n; k++) {
        sp_action a = tr->sched.a[k];
        int slot = a.mb % n;
        sp_acts *acts = &tr->acts[slot];
        int32_t *inp = tr->inp + (size_t)slot * mbT, *tgt = tr->tgt + (size_t)slot * mbT;
        float *grecv = tr->grecv + (size_t)slot * NC;
        int tag = 2 * a.mb;
        switch (a.kind) {
        case SP_ACT_RECV_ACT:
            MPI_Wait(&tr->req[2 * n + 2 * slot], MPI_STATUS_IGNORE);
            break;
        case SP_ACT_FWD:
            /* the slot's previous activation send must be done before x is overwritten */
            MPI_Wait(&tr->req[2 * slot], MPI_STATUS_IGNORE);
            if (first || last)
                fill_batch(tr, t, ((int64_t)tr->dp_rank * tr->n_micro + a.mb) * tr->mb, inp, tgt);
            if (first) sp_model_embed_forward(m, acts, inp);
            sp_model_blocks_forward(m, acts);
            if (last)
                loss_sum += (double)sp_model_head_forward(m, acts, tgt) *
                            (double)m->obj->count(tgt, (int)mbT);
            break;
        case SP_ACT_SEND_ACT:
            /* the stage's output: x[0] itself when the plan runs none of its blocks */
            MPI_Isend(acts->x + (size_t)acts->n_exec * NC, (int)NC, MPI_FLOAT, g->stage + 1,
                      tag + TAG_ACT, g->pipe, &tr->req[2 * slot]);
            MPI_Irecv(grecv, (int)NC, MPI_FLOAT, g->stage + 1, tag + TAG_GRAD, g->pipe,
                      &tr->req[2 * n + 2 * slot + 1]);
            break;
        case SP_ACT_RECV_GRAD:
            MPI_Wait(&tr->req[2 * n + 2 * slot + 1], MPI_STATUS_IGNORE);
            memcpy(tr->scratch.dres, grecv, NC * sizeof(float));
            break;
        case SP_ACT_BWD:
            if (last) sp_model_head_backward(m, acts, &tr->scratch, tgt, scale);
            sp_model_blocks_backward(m, acts, &tr->scratch,
                                     tr->dp > 1 && k == tr->last_bwd ? reduce_block : NULL, tr);
            if (first) sp_model_embed_backward(m, acts, &tr->scratch, inp);
            /* the slot is free: its next micro-batch's activations may arrive */
            if (!first && a.mb + n < tr->n_micro) post_act_recv(tr, a.mb + n);
            break;
        case SP_ACT_SEND_GRAD: {
            float *buf = tr->gsend + (size_t)slot * NC;
            MPI_Wait(&tr->req[2 * slot + 1], MPI_STATUS_IGNORE);
            memcpy(buf, tr->scratch.dres, NC * sizeof(float));
            MPI_Isend(buf, (int)NC, MPI_FLOAT, g->stage - 1, tag + TAG_GRAD, g->pipe,
                      &tr->req[2 * slot + 1]);
            break;
        }
        }
    }
    MPI_Waitall(4 * n, tr->req, MPI_STATUSES_IGNORE);
    return loss_sum;
}

float sp_trainer_grads(sp_trainer *tr, double *grad_norm) {
    const sp_grid *g = &tr->grid;
    sp_model *m = &tr->model;
    /* the loss is normalised by the step's counted positions, before the first backward uses
     * the scale: with count_all (causal) every position; otherwise (masked LM) every rank counts
     * the whole step's masks itself (step_count) */
    int64_t count = step_count(tr, tr->st.data_cursor);
    float scale = count > 0 ? 1.0f / (float)count : 0.0f;
    memset(m->grads, 0, m->numel * sizeof(float));
    /* the weights changed since the last step (optimizer, load, growth): one refresh of their
     * bf16 copy serves every micro-batch of this step */
    sp_model_sync_bf16(m);
    tr->n_red = 0;
    double loss_sum = run_schedule(tr, tr->st.data_cursor, scale);
    /* the tied embedding (and the rest of the globals slab) lives on the first and the last
     * stage; summing their gradients keeps both copies identical bit for bit */
    if (g->tie != MPI_COMM_NULL) sp_trainer_allreduce(m->grads, m->global_numel, g->tie);
    if (tr->dp > 1) {
        sp_trainer_allreduce(m->grads, m->global_numel, g->dpc);
        MPI_Waitall(tr->n_red, tr->red, MPI_STATUSES_IGNORE);
    }
    sp_trainer_share_grads(tr);
    /* global norm: every parameter once */
    double sq = sp_trainer_grad_sumsq(tr);
    double red[2] = {sq, loss_sum};
    if (g->pp > 1) MPI_Allreduce(MPI_IN_PLACE, &red[0], 1, MPI_DOUBLE, MPI_SUM, g->pipe);
    /* each replica's last stage holds its share of the loss */
    MPI_Allreduce(MPI_IN_PLACE, &red[1], 1, MPI_DOUBLE, MPI_SUM, tr->comm);
    *grad_norm = sqrt(red[0]);
    /* the step's data, tokens and FLOPs are spent, whatever is updated with the gradients */
    int64_t gb = tr->cfg->train.global_batch;
    tr->st.data_cursor++;
    tr->st.tokens += gb * tr->T;
    tr->exec_depth = m->plan.depth;
    tr->exec_flops = sp_spec_flops_per_token(&m->spec, m->plan.depth) * (double)(gb * tr->T);
    tr->st.flops += tr->exec_flops;
    return count > 0 ? (float)(red[1] / (double)count) : 0.0f;
}

float sp_trainer_step(sp_trainer *tr, float lr, double *grad_norm) {
    const sp_config *cfg = tr->cfg;
    sp_model *m = &tr->model;
    int64_t t = tr->st.step;
    if (tr->sn.method) sp_trainer_plan(tr, t, 1); /* the network this step runs */
    float loss = sp_trainer_grads(tr, grad_norm);
    double norm = *grad_norm;
    /* torch.nn.utils.clip_grad_norm_ semantics, so the PyTorch reference matches */
    if (cfg->train.grad_clip > 0) {
        double coef = cfg->train.grad_clip / (norm + 1e-6);
        if (coef < 1.0) sp_scale(m->grads, m->numel, (float)coef);
    }
    sp_adamw h = {lr, (float)cfg->train.beta1, (float)cfg->train.beta2, (float)cfg->train.eps,
                  (float)cfg->train.weight_decay};
    sp_model_adamw(m, &h);
    tr->st.step++;
    tr->st.lr = lr;
    if (tr->sn.method) {
        tr->st.subnet_stage = sp_subnet_stage(&tr->sn, tr->st.step);
        tr->st.plan_step = tr->st.step;
        sp_trainer_plan(tr, t, 0); /* evaluation after the step runs the full network */
    }
    return loss;
}

/* Bootstrap over windows: the standard deviation of the mean loss of R resamples of the n window
 * losses wl (with replacement). The resampled indices come from the counter RNG keyed by
 * (resample, draw), so the figure is the same on any layout and on every rerun. */
#define BOOTSTRAP_R 1000
static double bootstrap_se(const double *wl, int64_t n) {
    if (n < 2) return NAN;
    double s = 0, s2 = 0;
    for (int r = 0; r < BOOTSTRAP_R; r++) {
        double mean = 0;
        for (int64_t j = 0; j < n; j++)
            mean +=
                wl[sp_rng_u64(0x5eed, SP_RNG_BOOTSTRAP, (uint64_t)r, (uint64_t)j) % (uint64_t)n];
        mean /= (double)n;
        s += mean, s2 += mean * mean;
    }
    double m = s / BOOTSTRAP_R, var = s2 / BOOTSTRAP_R - m * m;
    return var > 0 ? sqrt(var * BOOTSTRAP_R / (BOOTSTRAP_R - 1)) : 0.0;
}

double sp_trainer_eval(sp_trainer *tr, const sp_tokens *tok, int64_t n_windows, double *se) {
    sp_model *m = &tr->model;
    sp_model_sync_bf16(m);
    const sp_grid *g = &tr->grid;
    int T = tr->T, first = g->stage == 0, last = g->stage == g->pp - 1;
    int64_t avail = sp_data_num_windows(tok, T);
    if (n_windows <= 0 || n_windows > avail) n_windows = avail;
    int64_t nbatch = (n_windows + tr->mb - 1) / tr->mb;
    double sum = 0;
    int64_t counted = 0;
    /* each window's mean loss, for the standard error: filled on the last stage of each replica
     * for its own windows, summed over the ranks */
    double *wl = se ? calloc((size_t)(n_windows > 0 ? n_windows : 1), sizeof *wl) : NULL;
    sp_acts *a = &tr->acts[0];
    int B0 = a->B;
    for (int64_t b = tr->dp_rank; b < nbatch; b += tr->dp) {
        int64_t w0 = b * tr->mb;
        int B = (int)(n_windows - w0 < tr->mb ? n_windows - w0 : tr->mb);
        size_t NC = (size_t)B * T * (size_t)m->spec.d_model;
        for (int i = 0; (first || last) && i < B; i++) {
            int32_t *inp = tr->inp + (size_t)i * T, *tgt = tr->tgt + (size_t)i * T;
            sp_data_eval_window(tok, sp_data_eval_pick(avail, n_windows, w0 + i), T, inp, tgt);
            /* window i is masked the same way for every evaluation (mlm.h) */
            if (tr->obj->prepare)
                tr->obj->prepare(tr->st.seed, SP_MLM_EVAL_STEP, (uint64_t)(w0 + i), inp, tgt, T,
                                 m->spec.vocab);
        }
        /* a short last batch: the activation strides shrink with B and still fit */
        a->B = B;
        if (first)
            sp_model_embed_forward(m, a, tr->inp);
        else
            MPI_Recv(a->x, (int)NC, MPI_FLOAT, g->stage - 1, 0, g->pipe, MPI_STATUS_IGNORE);
        sp_model_blocks_forward(m, a);
        if (last) {
            int64_t nc = m->obj->count(tr->tgt, B * T);
            sum += (double)sp_model_head_forward(m, a, tr->tgt) * (double)nc;
            counted += nc;
            for (int i = 0; wl && i < B; i++) {
                double ws = 0;
                int64_t wc = m->obj->count(tr->tgt + (size_t)i * T, T);
                /* rows that do not count hold loss 0 */
                for (int t = 0; t < T; t++) ws += a->losses[(size_t)i * T + t];
                wl[w0 + i] = wc > 0 ? ws / (double)wc : 0.0;
            }
        } else
            MPI_Send(a->x + (size_t)a->n_exec * NC, (int)NC, MPI_FLOAT, g->stage + 1, 0, g->pipe);
        a->B = B0;
    }
    double red[2] = {sum, (double)counted};
    MPI_Allreduce(MPI_IN_PLACE, red, 2, MPI_DOUBLE, MPI_SUM, tr->comm);
    if (se) {
        *se = NAN;
        if (wl && MPI_Allreduce(MPI_IN_PLACE, wl, (int)n_windows, MPI_DOUBLE, MPI_SUM, tr->comm) ==
                      MPI_SUCCESS)
            *se = bootstrap_se(wl, n_windows);
        free(wl);
    }
    return n_windows > 0 && red[1] > 0 ? red[0] / red[1] : NAN;
}
