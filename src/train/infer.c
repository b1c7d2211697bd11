/* Inference from a checkpoint: `sprout sample` and `sprout eval`. */
#define _GNU_SOURCE /* qsort_r */
#include "sprout/train.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sp_trainer_from_ckpt(sp_trainer *tr, sp_config *cfg, const char *ckpt, int mb, MPI_Comm comm,
                         sp_err *err) {
    memset(tr, 0, sizeof *tr);
    char *yaml = NULL;
    if (sp_ckpt_read_config(ckpt, &yaml, err)) return err->code;
    int rc = sp_cfg_load_text(cfg, yaml, strlen(yaml), ckpt, err);
    free(yaml);
    if (rc) return sp_err_wrap(err, "%s: /config", ckpt);
    int world;
    MPI_Comm_size(comm, &world);
    /* inference places the model afresh on the ranks at hand, whatever layout trained it */
    if (sp_cfg_set(cfg, comm == MPI_COMM_SELF ? "parallel.pipeline=1" : "parallel.pipeline=auto",
                   err))
        return err->code;
    /* one process must hold the whole model, whatever budget the training's stages had */
    if (comm == MPI_COMM_SELF) cfg->parallel.max_stage_mib = INT32_MAX;
    if (mb > 0) cfg->train.micro_batch = mb;
    /* inference batches by the ranks at hand; the growth schedule keeps the training's steps:
     * an event given in tokens (at_tokens) resolves to a step through the training's global
     * batch, and its ramps and fade-in masks at the checkpoint's step must be the trained ones */
    int64_t train_gb = cfg->train.global_batch;
    cfg->train.global_batch = cfg->train.micro_batch * world;
    sp_spec fs;
    sp_train_state st;
    if (sp_ckpt_read_header(ckpt, &fs, &st, err)) return err->code;
    if (sp_trainer_init(tr, cfg, SP_TRAINER_NO_INIT | SP_TRAINER_QUIET | SP_TRAINER_INFER, comm,
                        err))
        return err->code;
    if (tr->gs.n && train_gb != cfg->train.global_batch) {
        int64_t infer_gb = cfg->train.global_batch;
        cfg->train.global_batch = train_gb;
        sp_grow_sched_free(&tr->gs);
        sp_log quiet = {.rank = 1}; /* said at training time already */
        rc = sp_train_grow_schedule(cfg, &tr->gs, &quiet, err);
        cfg->train.global_batch = infer_gb;
        if (rc) return err->code;
    }
    /* the config describes the whole run: take the model of the checkpoint's growth stage,
     * placed by pipeline = auto/1 (inference does not care where training put it) */
    if (st.growth_index > 0 && st.growth_index <= tr->gs.n) {
        tr->gs.ev[st.growth_index - 1].pipeline = sp_cfg_pipeline(cfg);
        if (sp_trainer_relayout(tr, (int)st.growth_index, err)) return err->code;
    }
    if (sp_ckpt_load(ckpt, &tr->model, 0, err)) return err->code;
    tr->st.step = st.step;
    sp_trainer_set_scales(tr, st.step);
    return SP_OK;
}

/* descending by probability, then by token id: the cut is the same on every machine */
static int by_prob_desc(const void *a, const void *b, void *prob) {
    const double *p = prob;
    int i = *(const int *)a, j = *(const int *)b;
    if (p[i] != p[j]) return p[i] < p[j] ? 1 : -1;
    return i - j;
}

/* Zeroes p[] outside the top-k / top-p set; returns the mass kept. p holds unnormalised
 * probabilities summing to sum. */
static double sample_cut(double *p, int *idx, int V, double sum, int top_k, double top_p) {
    if ((top_k <= 0 || top_k >= V) && top_p >= 1) return sum;
    for (int v = 0; v < V; v++) idx[v] = v;
    qsort_r(idx, (size_t)V, sizeof *idx, by_prob_desc, p);
    int keep = top_k > 0 && top_k < V ? top_k : V;
    double c = 0;
    for (int r = 0; r < keep; r++) {
        c += p[idx[r]];
        if (c >= top_p * sum) { /* the token that crosses p is kept: never an empty set */
            keep = r + 1;
            break;
        }
    }
    double kept = 0;
    for (int r = 0; r < V; r++) {
        if (r < keep)
            kept += p[idx[r]];
        else
            p[idx[r]] = 0;
    }
    return kept;
}

int sp_sample_run(const char *ckpt, const char *prompt, const sp_sample_opts *o, void *out,
                  sp_err *err) {
    int n = o->n;
    double temperature = o->temperature;
    uint64_t seed = o->seed;
    sp_config cfg;
    sp_trainer tr;
    sp_tok_files tf = {0};
    sp_tok tk = {0};
    sp_tok_ids ids = {0};
    memset(&cfg, 0, sizeof cfg);
    int rc = sp_trainer_from_ckpt(&tr, &cfg, ckpt, 1, MPI_COMM_SELF, err);
    if (rc) goto done;
    /* generation continues text left to right: a masked model fills in positions instead */
    if (!tr.obj->count_all) {
        rc = sp_err_set(err, SP_EINPUT,
                        "%s: sample does not apply to a masked-LM model (model.block %s, "
                        "train.objective %s): it generates from causal models only",
                        ckpt, tr.model.kind->name, tr.obj->name);
        goto done;
    }
    int T = tr.T, V = tr.model.spec.vocab;
    size_t plen = strlen(prompt);
    /* the prompt is encoded and the continuation decoded by the checkpoint's own tokenizer */
    if ((rc = sp_ckpt_read_tokenizer(ckpt, &tf, err)) || (rc = sp_tok_open(&tk, &tf, err)))
        goto done;
    if ((rc = sp_tok_encode(&tk, prompt, plen, &ids, err))) goto done;
    /* no prompt: the corpus' paragraph separator, or the end-of-text token that starts every
     * document */
    if (ids.n == 0 &&
        (rc = sp_tok_ids_push(&ids, (uint16_t)(tk.kind->eot >= 0 ? tk.kind->eot : '\n'), err)))
        goto done;
    int32_t *ctx = malloc((ids.n + (size_t)n + 1) * sizeof *ctx);
    double *p = malloc((size_t)V * sizeof *p);
    int *idx = malloc((size_t)V * sizeof *idx);
    if (!ctx || !p || !idx) {
        free(ctx), free(p), free(idx);
        rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
        goto done;
    }
    size_t len = 0;
    for (size_t i = 0; i < ids.n; i++) ctx[len++] = ids.v[i];
    for (size_t i = 0; i < len; i++)
        if (ctx[i] >= V) {
            rc = sp_err_set(err, SP_EINPUT, "prompt token %d is outside the model's vocab %d",
                            ctx[i], V);
            free(ctx), free(p), free(idx);
            goto done;
        }
    FILE *f = out;
    fwrite(prompt, 1, plen, f);
    for (int k = 0; k < n; k++) {
        /* causal attention: padding after the last real position cannot change its logits */
        size_t w0 = len > (size_t)T ? len - (size_t)T : 0, wl = len - w0;
        for (int i = 0; i < T; i++) tr.inp[i] = (size_t)i < wl ? ctx[w0 + (size_t)i] : 0;
        sp_model_embed_forward(&tr.model, &tr.acts[0], tr.inp);
        sp_model_blocks_forward(&tr.model, &tr.acts[0]);
        sp_model_head_forward(&tr.model, &tr.acts[0], NULL);
        const float *logit = tr.acts[0].probs + (wl - 1) * (size_t)V;
        int next = 0;
        if (temperature <= 0) {
            for (int v = 1; v < V; v++)
                if (logit[v] > logit[next]) next = v;
        } else {
            double mx = logit[0], sum = 0;
            for (int v = 1; v < V; v++) mx = logit[v] > mx ? logit[v] : mx;
            for (int v = 0; v < V; v++) sum += p[v] = exp((logit[v] - mx) / temperature);
            sum = sample_cut(p, idx, V, sum, o->top_k, o->top_p);
            double u = sp_rng_uniform(seed, SP_RNG_SAMPLE, (uint64_t)k, 0) * sum, c = 0;
            next = V - 1;
            for (int v = 0; v < V; v++)
                if ((c += p[v]) > u) {
                    next = v;
                    break;
                }
        }
        ctx[len++] = next;
        size_t pl;
        const char *piece = sp_tok_piece(&tk, next, &pl);
        if (piece) fwrite(piece, 1, pl, f);
    }
    fputc('\n', f);
    fflush(f);
    free(ctx), free(p), free(idx);
done:
    sp_tok_ids_free(&ids);
    sp_tok_close(&tk);
    sp_tok_files_free(&tf);
    sp_trainer_free(&tr);
    if (cfg.run.out) sp_cfg_free(&cfg);
    return rc;
}

/* The bytes the targets of windows 0 .. w-1 decode to. */
static int64_t target_bytes(const sp_tok *tk, const sp_tokens *t, int64_t w, int T) {
    int64_t bytes = 0;
    for (int64_t i = 0; i < w; i++)
        for (int j = 1; j <= T; j++) {
            size_t n;
            sp_tok_piece(tk, t->tok[(uint64_t)i * (uint64_t)T + (uint64_t)j], &n);
            bytes += (int64_t)n;
        }
    return bytes;
}

int sp_eval_run(const char *ckpt, const char *data, int64_t windows, int64_t batches,
                sp_eval_result *res, MPI_Comm comm, sp_err *err) {
    sp_config cfg;
    sp_trainer tr;
    sp_tokens tok;
    memset(&cfg, 0, sizeof cfg);
    memset(res, 0, sizeof *res);
    sp_tok_files tf = {0};
    sp_tok tk = {0};
    int rc = sp_trainer_from_ckpt(&tr, &cfg, ckpt, 0, comm, err);
    if (!rc) rc = sp_ckpt_read_tokenizer(ckpt, &tf, err);
    if (!rc) rc = sp_tok_open(&tk, &tf, err);
    if (!rc) rc = sp_data_open(&tok, data, err);
    if (!rc) {
        rc = sp_data_check_vocab(&tok, tr.model.spec.vocab, err);
        const sp_tok_kind *dk = sp_tok_by_id(tok.tokenizer);
        if (!rc && dk != tf.kind)
            rc = sp_err_set(err, SP_EINPUT,
                            "--data %s holds %s tokens but the checkpoint %s was trained on %s "
                            "tokens",
                            data, dk ? dk->name : "unknown", ckpt, tf.kind->name);
        if (!rc) rc = sp_data_check_context(&tok, tr.T, err);
        if (!rc) {
            int64_t avail = sp_data_num_windows(&tok, tr.T);
            int64_t w = batches > 0 ? batches * tr.mb : windows;
            if (w <= 0 || w >= avail) w = avail;
            res->windows = w;
            res->all = w == avail;
            res->tokens = w * tr.T;
            res->vocab = tr.model.spec.vocab;
            res->loss = sp_trainer_eval(&tr, &tok, w, &res->se);
            res->bytes = target_bytes(&tk, &tok, w, tr.T);
            /* a masked loss is a mean over the selected positions, not over the windows' bytes */
            res->loss_per_byte = res->bytes > 0 && tr.obj->count_all
                                     ? res->loss * (double)res->tokens / (double)res->bytes
                                     : NAN;
        }
        sp_data_close(&tok);
    }
    sp_tok_close(&tk);
    sp_tok_files_free(&tf);
    sp_trainer_free(&tr);
    if (cfg.run.out) sp_cfg_free(&cfg);
    return rc;
}
