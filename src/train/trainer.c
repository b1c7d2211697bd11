/* One training step and evaluation on a rank: micro-batches, gradient accumulation, the
 * data-parallel gradient reduction, global-norm clipping and AdamW. */
#include "sprout/kernels.h"
#include "sprout/train.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Gradients are reduced in place in buckets of this size: one large MPI_Allreduce allocates a
 * temporary as big as the message and runs ~20x slower on these machines. */
#define REDUCE_BUCKET_FLOATS ((size_t)1 << 20)

void openblas_set_num_threads(int);

int sp_trainer_init(sp_trainer *tr, const sp_config *cfg, int need_data, MPI_Comm comm,
                    sp_err *err) {
    memset(tr, 0, sizeof *tr);
    tr->cfg = cfg;
    tr->comm = comm;
    MPI_Comm_rank(comm, &tr->rank);
    MPI_Comm_size(comm, &tr->world);
    int pp = sp_cfg_pipeline(cfg);
    if (pp > 1)
        return sp_err_set(err, SP_EINPUT,
                          "parallel.pipeline = %d: pipeline stages are not supported yet (use 1 "
                          "or auto)",
                          pp);
    tr->dp = tr->world;
    tr->dp_rank = tr->rank;
    tr->T = (int)cfg->model.seq_len;
    tr->mb = (int)cfg->train.micro_batch;
    int64_t gb = cfg->train.global_batch;
    if (gb % ((int64_t)tr->dp * tr->mb))
        return sp_err_set(err, SP_EINPUT,
                          "train.global_batch = %lld is not divisible by data-parallel ranks (%d) "
                          "x train.micro_batch (%d)",
                          (long long)gb, tr->dp, tr->mb);
    tr->n_micro = (int)(gb / ((int64_t)tr->dp * tr->mb));

    sp_spec spec = {(int)cfg->model.vocab,  (int)cfg->model.seq_len, (int)cfg->model.d_model,
                    (int)cfg->model.n_head, (int)sp_cfg_d_ff(cfg),   (int)cfg->model.n_layer};
    if (sp_model_create(&tr->model, &spec, 0, spec.n_layer, 1, 1, err)) return err->code;
    sp_model_init(&tr->model, cfg->train.seed);
    if (sp_acts_create(&tr->acts, &tr->model, tr->mb, tr->T, err) ||
        sp_scratch_create(&tr->scratch, &tr->model, tr->mb, tr->T, err))
        return err->code;
    tr->inp = malloc((size_t)tr->mb * tr->T * sizeof(int32_t));
    tr->tgt = malloc((size_t)tr->mb * tr->T * sizeof(int32_t));
    if (!tr->inp || !tr->tgt) return sp_err_set(err, SP_ERUNTIME, "out of memory");

    if (need_data) {
        if (sp_data_open(&tr->train, cfg->data.train, err) ||
            sp_data_check_vocab(&tr->train, spec.vocab, err))
            return err->code;
        tr->have_train = 1;
        if (sp_data_open(&tr->val, cfg->data.val, err) ||
            sp_data_check_vocab(&tr->val, spec.vocab, err))
            return err->code;
        tr->have_val = 1;
        if (sp_data_check_context(&tr->train, tr->T, err) ||
            sp_data_check_context(&tr->val, tr->T, err))
            return err->code;
    }
    openblas_set_num_threads((int)cfg->run.threads);
    tr->st.seed = cfg->train.seed;
    tr->flops_per_token = sp_spec_flops_per_token(&spec, spec.n_layer);
    return SP_OK;
}

void sp_trainer_free(sp_trainer *tr) {
    sp_model_free(&tr->model);
    sp_acts_free(&tr->acts);
    sp_scratch_free(&tr->scratch);
    free(tr->inp);
    free(tr->tgt);
    if (tr->have_train) sp_data_close(&tr->train);
    if (tr->have_val) sp_data_close(&tr->val);
    memset(tr, 0, sizeof *tr);
}

/* Fills the micro-batch whose first global sample index is s0 for data step t. Without data
 * the tokens are synthetic but still a pure function of (seed, t, sample). */
static void fill_batch(sp_trainer *tr, int64_t t, int64_t s0) {
    int T = tr->T, V = (int)tr->model.spec.vocab;
    for (int i = 0; i < tr->mb; i++) {
        int32_t *inp = tr->inp + (size_t)i * T, *tgt = tr->tgt + (size_t)i * T;
        uint64_t k = (uint64_t)(s0 + i);
        if (tr->have_train) {
            sp_data_train_sample(&tr->train, tr->st.seed, (uint64_t)t, k, T, inp, tgt);
            continue;
        }
        for (int j = 0; j <= T; j++) {
            int32_t tok = (int32_t)(sp_rng_u64(tr->st.seed, SP_RNG_DATA, (uint64_t)t,
                                               k * (uint64_t)(T + 1) + (uint64_t)j) %
                                    (uint64_t)V);
            if (j < T) inp[j] = tok;
            if (j > 0) tgt[j - 1] = tok;
        }
    }
}

static void allreduce_inplace(float *x, size_t n, MPI_Comm comm) {
    for (size_t o = 0; o < n; o += REDUCE_BUCKET_FLOATS) {
        size_t c = n - o < REDUCE_BUCKET_FLOATS ? n - o : REDUCE_BUCKET_FLOATS;
        MPI_Allreduce(MPI_IN_PLACE, x + o, (int)c, MPI_FLOAT, MPI_SUM, comm);
    }
}

float sp_trainer_step(sp_trainer *tr, float lr, double *grad_norm) {
    const sp_config *cfg = tr->cfg;
    sp_model *m = &tr->model;
    int64_t t = tr->st.data_cursor;
    int64_t gb = cfg->train.global_batch;
    float scale = 1.0f / (float)(gb * tr->T);
    memset(m->grads, 0, m->numel * sizeof(float));
    double loss_sum = 0;
    for (int j = 0; j < tr->n_micro; j++) {
        int64_t s0 = ((int64_t)tr->dp_rank * tr->n_micro + j) * tr->mb;
        fill_batch(tr, t, s0);
        sp_model_embed_forward(m, &tr->acts, tr->inp);
        sp_model_blocks_forward(m, &tr->acts);
        loss_sum += (double)sp_model_head_forward(m, &tr->acts, tr->tgt) * tr->mb * tr->T;
        sp_model_head_backward(m, &tr->acts, &tr->scratch, tr->tgt, scale);
        sp_model_blocks_backward(m, &tr->acts, &tr->scratch);
        sp_model_embed_backward(m, &tr->acts, &tr->scratch, tr->inp);
    }
    if (tr->dp > 1) {
        allreduce_inplace(m->grads, m->numel, tr->comm);
        MPI_Allreduce(MPI_IN_PLACE, &loss_sum, 1, MPI_DOUBLE, MPI_SUM, tr->comm);
    }
    double norm = sqrt(sp_sumsq(m->grads, m->numel));
    *grad_norm = norm;
    /* torch.nn.utils.clip_grad_norm_ semantics, so the PyTorch reference matches */
    if (cfg->train.grad_clip > 0) {
        double coef = cfg->train.grad_clip / (norm + 1e-6);
        if (coef < 1.0) sp_scale(m->grads, m->numel, (float)coef);
    }
    sp_adamw h = {lr, (float)cfg->train.beta1, (float)cfg->train.beta2, (float)cfg->train.eps,
                  (float)cfg->train.weight_decay};
    sp_model_adamw(m, &h);
    tr->st.step++;
    tr->st.data_cursor++;
    tr->st.tokens += gb * tr->T;
    tr->st.flops += tr->flops_per_token * (double)(gb * tr->T);
    tr->st.lr = lr;
    return (float)(loss_sum / (double)(gb * tr->T));
}

double sp_trainer_eval(sp_trainer *tr, const sp_tokens *tok, int64_t n_windows) {
    sp_model *m = &tr->model;
    int T = tr->T;
    int64_t avail = sp_data_num_windows(tok, T);
    if (n_windows <= 0 || n_windows > avail) n_windows = avail;
    int64_t nbatch = (n_windows + tr->mb - 1) / tr->mb;
    double sum = 0;
    int B0 = tr->acts.B;
    for (int64_t b = tr->dp_rank; b < nbatch; b += tr->dp) {
        int64_t w0 = b * tr->mb;
        int B = (int)(n_windows - w0 < tr->mb ? n_windows - w0 : tr->mb);
        for (int i = 0; i < B; i++)
            sp_data_eval_window(tok, (uint64_t)(w0 + i), T, tr->inp + (size_t)i * T,
                                tr->tgt + (size_t)i * T);
        /* a short last batch: the activation strides shrink with B and still fit */
        tr->acts.B = B;
        sp_model_embed_forward(m, &tr->acts, tr->inp);
        sp_model_blocks_forward(m, &tr->acts);
        sum += (double)sp_model_head_forward(m, &tr->acts, tr->tgt) * B * T;
        tr->acts.B = B0;
    }
    if (tr->dp > 1) MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, tr->comm);
    return n_windows > 0 ? sum / ((double)n_windows * T) : NAN;
}

double sp_lr_at(const sp_config *cfg, int64_t step) {
    double lr = cfg->train.lr, lo = cfg->train.min_lr;
    int64_t warm = cfg->train.warmup_steps, total = cfg->train.steps;
    if (step < warm) return lr * (double)(step + 1) / (double)warm;
    if (!strcmp(cfg->train.schedule, "constant")) return lr;
    double r = total > warm ? (double)(step - warm) / (double)(total - warm) : 1.0;
    if (r > 1.0) r = 1.0;
    if (!strcmp(cfg->train.schedule, "linear")) return lo + (1.0 - r) * (lr - lo);
    return lo + 0.5 * (1.0 + cos(M_PI * r)) * (lr - lo);
}
