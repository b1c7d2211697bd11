/* `sprout train`: the run loop with progress lines, evaluation, metrics and the final
 * checkpoint. */
#include "sprout/kernels.h"
#include "sprout/metrics.h"
#include "sprout/testpoint.h"
#include "sprout/train.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

/* Set by a stop signal (SIGUSR1, SIGTERM, SIGINT); read where the ranks agree to stop. A signal
 * handler can only talk through a static sig_atomic_t, so this is the module's one piece of
 * mutable global state. It is never reset: a signal that came during start-up still counts. */
static volatile sig_atomic_t g_stop_signal;

/* the first signal is the one reported; later ones change nothing (the stop is under way) */
static void on_stop_signal(int sig) {
    if (!g_stop_signal) g_stop_signal = sig;
}

void sp_train_catch_signals(void) {
    static const int sigs[] = {SIGUSR1, SIGTERM, SIGINT};
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    /* a signal in the middle of a checkpoint's I/O must not fail it with EINTR */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

#ifdef SP_TEST_POINTS
int sp_test_stop_signal(void) {
    return g_stop_signal;
}
#endif

/* The stop signal any rank has seen (0: none), the same on every rank: a signal may reach only
 * some of them. */
static int stop_agreed(MPI_Comm comm) {
    int stop = g_stop_signal;
    MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, comm);
    return stop;
}

static void fmt_eta(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Writes OUT/ckpt/step_XXXXXXXX.h5 and points OUT/ckpt/latest at it. Collective; a failure is
 * agreed by all ranks and leaves the directory as it was: the older checkpoints, `latest`, and
 * no new file (a checkpoint that `latest` cannot name is taken back). */
static int save_checkpoint(sp_trainer *tr, const char *yaml, const sp_log *log, sp_err *err) {
    const char *out = tr->cfg->run.out;
    char dir[4096], path[4200], latest[4200];
    snprintf(dir, sizeof dir, "%s/ckpt", out);
    snprintf(path, sizeof path, "%s/step_%08lld.h5", dir, (long long)tr->st.step);
    double t0 = sp_now();
    sp_ckpt_extra extra[SP_MAX_LEVELS];
    char names[SP_MAX_LEVELS][32];
    int n_extra = sp_trainer_saved_extras(tr, extra, names);
    if (tr->rank == 0) sp_resume_supersede(dir, &tr->st, log);
    if (sp_ckpt_save_tok(path, &tr->model, tr->dp_rank == 0, &tr->st, yaml, extra, n_extra,
                         tr->tok.kind ? &tr->tok : NULL, tr->comm, err))
        return err->code;
    sp_err e = {0};
    if (tr->rank == 0) {
        snprintf(latest, sizeof latest, "%s/latest", dir);
        const char *base = strrchr(path, '/') + 1;
        char line[64];
        snprintf(line, sizeof line, "%s\n", base);
        const sp_buf buf = {line, strlen(line)};
        if (sp_write_atomic(latest, &buf, 1, &e)) {
            unlink(path);
            (void)sp_fsync_dir_of(path);
        }
    }
    /* rank 0's answer is everyone's: the ranks stop together, and the message is said once */
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, 0, tr->comm);
    if (e.code) {
        *err = e;
        err->all_ranks = 1;
        return err->code;
    }
    sp_info(log, "checkpoint %s (%.2f s)", path, sp_now() - t0);
    if (tr->rank == 0) sp_resume_prune(dir, (int)tr->cfg->checkpoint.keep, &tr->st, log);
    /* the next checkpoint continues this one */
    memcpy(tr->st.parent_run, tr->st.run_id, sizeof tr->st.parent_run);
    tr->st.parent_step = tr->st.step;
    return SP_OK;
}

/* The name of the validation set a loss was measured on: a number means nothing without it. */
static const char *val_set(char *buf, size_t n, int64_t windows) {
    if (windows > 0)
        snprintf(buf, n, "val[%lld windows]", (long long)windows);
    else
        snprintf(buf, n, "val[all]");
    return buf;
}

/* One progress line on the log and one metrics line (rank 0). val is NaN when not evaluated;
 * val_se is its bootstrap standard error over windows. */
static void log_step(const sp_trainer *tr, sp_metrics *mx, const sp_log *log, int64_t done,
                     float loss, float lr, double gnorm, double dt, double val, double val_se,
                     double tps, double eta) {
    const sp_spec *s = &tr->model.spec;
    char etas[32], vals[64] = "";
    fmt_eta(etas, sizeof etas, eta);
    int64_t vw = sp_cfg_eval_windows(tr->cfg);
    char set[48];
    if (isfinite(val)) snprintf(vals, sizeof vals, " | %s %.4f", val_set(set, sizeof set, vw), val);
    sp_info(log, "step %6lld/%lld | loss %.4f%s | lr %.2e | norm %.3f | %.0f tok/s | ETA %s",
            (long long)done, (long long)tr->cfg->train.steps, loss, vals, lr, gnorm, tps, etas);
    if (tr->rank != 0) return;
    sp_json j;
    sp_json_begin(&j);
    sp_json_int(&j, "step", done);
    sp_json_int(&j, "tokens", tr->st.tokens);
    sp_json_num(&j, "flops", tr->st.flops);
    sp_json_num(&j, "loss", loss);
    sp_json_num(&j, "lr", lr);
    sp_json_num(&j, "grad_norm", gnorm);
    sp_json_int(&j, "n_layer", s->n_layer);
    sp_json_int(&j, "d_model", s->d_model);
    sp_json_int(&j, "pp", tr->grid.pp);
    sp_json_int(&j, "dp", tr->dp);
    sp_json_num(&j, "ms", dt * 1e3);
    sp_json_num(&j, "tok_per_s", tps);
    if (tr->sn.method) { /* the network the step ran */
        sp_json_int(&j, "subnet_stage", sp_subnet_stage(&tr->sn, done - 1));
        sp_json_int(&j, "exec_depth", tr->exec_depth);
        sp_json_num(&j, "exec_flops", tr->exec_flops);
    }
    if (isfinite(val)) sp_json_num(&j, "val_loss", val);
    if (isfinite(val) && isfinite(val_se)) sp_json_num(&j, "val_loss_se", val_se);
    if (isfinite(val)) sp_json_int(&j, "val_windows", vw); /* 0: the whole file */
    sp_metrics_write(mx, &j);
}

/* Which rank holds which blocks (printed at start and after every growth event). */
static void log_layout(const sp_trainer *tr, const sp_log *log) {
    const sp_grid *g = &tr->grid;
    const sp_spec *s = &tr->model.spec;
    sp_info(log,
            "layout: pp %d x dp %d, %s schedule, %d micro-batch(es) of %d per replica per step",
            g->pp, g->dp, tr->cfg->parallel.schedule, tr->n_micro, tr->mb);
    for (int st = 0; st < g->pp; st++) {
        int lo, hi;
        sp_grid_stage_range(s->n_layer, g->pp, st, &lo, &hi);
        char ranks[256] = "";
        size_t n = 0;
        for (int r = 0; r < g->dp && n + 16 < sizeof ranks; r++)
            n +=
                (size_t)snprintf(ranks + n, sizeof ranks - n, "%s%d", r ? "," : "", r * g->pp + st);
        /* gpt2's words kept as they were; llama has RMSNorm and a head of its own unless tied */
        const char *head = !sp_kind_of(s)->hparams ? " + final LN and tied head"
                           : s->tie_head           ? " + final norm and tied head"
                                                   : " + final norm and head";
        sp_info(log, "  stage %d: blocks %d..%d%s%s on rank(s) %s", st, lo, hi - 1,
                st == 0 ? " + embedding" : "", st == g->pp - 1 ? head : "", ranks);
    }
    /* with one micro-batch a pipeline has nothing to overlap: each stage idles while the others
     * work */
    if (g->pp > 1 && tr->n_micro == 1)
        sp_warn(log,
                "pp %d with 1 micro-batch per step: the stages run one at a time; raise "
                "train.global_batch or lower train.micro_batch to fill the pipeline",
                g->pp);
}

/* Applies the next growth event before 0-based step `step`: the held-out loss just before and
 * just after (equal for function-preserving operators), the new layout, a metrics line. */
static int apply_growth(sp_trainer *tr, sp_metrics *mx, const sp_log *log, int64_t step,
                        int64_t eval_windows, sp_err *err) {
    int e = (int)tr->st.growth_index;
    const sp_grow_event *ev = &tr->gs.ev[e];
    sp_spec before = tr->model.spec;
    int pp0 = tr->grid.pp, dp0 = tr->dp;
    double t0 = sp_now();
    sp_trainer_set_scales(tr, step); /* before and after at the same step's ramps */
    double loss0 = sp_trainer_eval(tr, &tr->val, eval_windows, NULL);
    double g0 = sp_now();
    if (sp_trainer_grow(tr, err)) return sp_err_wrap(err, "growth[%d] (%s)", e, ev->op);
    /* the event's own cost, without the two evaluations around it: the slowest rank's time and
     * the bytes every rank sent */
    double cost[2] = {1e3 * (sp_now() - g0), 0};
    uint64_t moved = tr->grow_bytes_sent;
    MPI_Allreduce(MPI_IN_PLACE, &cost[0], 1, MPI_DOUBLE, MPI_MAX, tr->comm);
    MPI_Allreduce(MPI_IN_PLACE, &moved, 1, MPI_UINT64_T, MPI_SUM, tr->comm);
    sp_trainer_set_scales(tr, step);
    double loss1 = sp_trainer_eval(tr, &tr->val, eval_windows, NULL);
    const sp_spec *s = &tr->model.spec;
    char set[48];
    sp_info(log,
            "growth[%d] before step %lld: %s x%d, %d -> %d blocks, d_model %d -> %d, pp %d x dp "
            "%d -> pp %d x dp %d, held-out loss (%s) %.4f -> %.4f, %.1f MFLOP/token (event "
            "%.1f ms, %.1f MB moved; %.2f s with the evaluations)",
            e, (long long)step, ev->op, ev->factor, before.n_layer, s->n_layer, before.d_model,
            s->d_model, pp0, dp0, tr->grid.pp, tr->dp, val_set(set, sizeof set, eval_windows),
            loss0, loss1, tr->flops_per_token / 1e6, cost[0], (double)moved / 1e6, sp_now() - t0);
    if (ev->learn_steps)
        sp_info(log, "growth[%d]: learned its map over %lld data steps, train loss %.4f -> %.4f", e,
                (long long)ev->learn_steps, tr->learn_loss[0], tr->learn_loss[1]);
    /* reduction order can change with the layout: equal to float rounding, not bit for bit */
    if (ev->kind <= SP_GROW_WIDTH && sp_grow_preserves(ev->op, s->kind) &&
        fabs(loss1 - loss0) > 1e-5 * fabs(loss0))
        sp_warn(log, "growth[%d]: %s should preserve the function but the loss moved by %.3g", e,
                ev->op, loss1 - loss0);
    log_layout(tr, log);
    if (tr->rank != 0) return SP_OK;
    sp_json j;
    sp_json_begin(&j);
    sp_json_str(&j, "event", "growth");
    sp_json_int(&j, "step", step);
    sp_json_int(&j, "growth_index", e);
    sp_json_str(&j, "op", ev->op);
    sp_json_int(&j, "factor", ev->factor);
    if (tr->gs.levels) sp_json_int(&j, "level", ev->level);
    sp_json_int(&j, "tokens", tr->st.tokens);
    sp_json_num(&j, "flops", tr->st.flops);
    sp_json_int(&j, "n_layer_before", before.n_layer);
    sp_json_int(&j, "n_layer_after", s->n_layer);
    sp_json_int(&j, "d_model_before", before.d_model);
    sp_json_int(&j, "d_model_after", s->d_model);
    sp_json_num(&j, "loss_before", loss0);
    sp_json_num(&j, "loss_after", loss1);
    sp_json_int(&j, "pp_before", pp0);
    sp_json_int(&j, "dp_before", dp0);
    sp_json_int(&j, "pp", tr->grid.pp);
    sp_json_int(&j, "dp", tr->dp);
    sp_json_num(&j, "flops_per_token", tr->flops_per_token);
    sp_json_num(&j, "event_ms", cost[0]);
    sp_json_int(&j, "bytes_moved", (int64_t)moved);
    if (ev->learn_steps) {
        sp_json_int(&j, "learn_steps", ev->learn_steps);
        sp_json_num(&j, "learn_loss_first", tr->learn_loss[0]);
        sp_json_num(&j, "learn_loss_last", tr->learn_loss[1]);
    }
    sp_metrics_write(mx, &j);
    return SP_OK;
}

int sp_train_run(const sp_config *cfg, const char *config_yaml, const char *resume_arg, int force,
                 MPI_Comm comm, const sp_log *log, sp_err *err) {
    sp_train_catch_signals(); /* main did already, before MPI_Init; other callers may not have */
    sp_trainer tr;
    /* the run directory is locked before anything in it is read (a checkpoint to resume from)
     * or written; rank 0 holds the lock for the whole run */
    int rank, lock_fd = -1, rc = SP_OK;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) rc = sp_rundir_lock(cfg->run.out, &lock_fd, err);
    /* an existing run is continued (--resume) or started over (--force), never overwritten by
     * accident; checked under the lock, so that --force cannot remove a running run's files */
    if (!rc && rank == 0 && !resume_arg) rc = sp_run_check_dir(cfg->run.out, force, log, err);
    if (rc && rank == 0) sp_rundir_unlock(lock_fd);
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    if (rc) return rank == 0 ? rc : sp_err_set(err, rc, "run.out refused on rank 0");
    /* the weights are drawn only when no checkpoint provides them */
    rc = sp_trainer_init(&tr, cfg, SP_TRAINER_DATA | SP_TRAINER_NO_INIT, comm, err);
    /* every rank enters resume() when init succeeded everywhere (init errors are symmetric);
     * a stop asked for during start-up skips verifying and loading */
    int loaded = 0, stop = 0;
    if (!rc && !(stop = stop_agreed(comm)))
        rc = sp_resume(&tr, resume_arg, config_yaml, &loaded, log, err);
    if (!rc && !stop && !loaded) sp_trainer_init_weights(&tr);
    sp_metrics mx = {0};
    char path[4200];
    if (!rc && !stop && tr.rank == 0) {
        rc = sp_run_mkdirs(cfg->run.out, err);
        snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->run.out);
        if (!rc) rc = sp_metrics_open(&mx, path, tr.st.step > 0, err);
        if (!rc) rc = sp_run_save_config(cfg->run.out, config_yaml, err);
    }
    /* every rank must agree before the loop, or a rank-0 failure would leave others waiting */
    int ok = rc == 0;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, comm);
    if (!ok) {
        if (!rc) rc = sp_err_set(err, SP_ERUNTIME, "set-up failed on another rank");
    } else if (stop || (stop = stop_agreed(comm))) {
        /* no step was taken: what is on disk (the checkpoint resumed from, if any) is the state */
        rc = sp_err_set(err, SP_ESIGNAL,
                        "stopped by signal %d during start-up, before the first step: nothing new "
                        "to checkpoint",
                        stop);
    }
    if (rc) {
        sp_metrics_close(&mx);
        sp_trainer_free(&tr);
        sp_rundir_unlock(lock_fd);
        return rc;
    }

    const sp_spec *s = &tr.model.spec;
    int64_t gb = cfg->train.global_batch, steps = cfg->train.steps;
    double tok_per_step = (double)(gb * tr.T);
    sp_info(log,
            "sprout: %s %d layers, d_model %d, %d heads, d_ff %d, vocab %d, seq %d: %.2fM "
            "parameters, %.1f MFLOP/token",
            sp_kind_of(s)->name, s->n_layer, s->d_model, s->n_head, s->d_ff, s->vocab, s->seq_len,
            (double)sp_spec_num_params(s) / 1e6, tr.flops_per_token / 1e6);
    log_layout(&tr, log);
    for (int e = 0; e < tr.gs.n; e++) {
        const sp_grow_event *ev = &tr.gs.ev[e];
        sp_info(log,
                "growth[%d]%s: before step %lld, %s x%d: %d -> %d blocks, d_model %d -> %d, "
                "optimizer %s, %s%s%s",
                e, e < tr.st.growth_index ? " (done)" : "", (long long)ev->step, ev->op, ev->factor,
                ev->n_before, ev->n_after, ev->before.d_model, ev->after.d_model,
                ev->reset_optim ? "reset" : "copy",
                ev->rewarm_steps ? "lr re-warm-up" : "lr continues", ev->when[0] ? "; " : "",
                ev->when);
        if (ev->learn_steps)
            sp_info(log,
                    "growth[%d]: learns its map for %lld data steps (%.3g tokens, %.3g FLOPs on "
                    "top of the steps) at lr %g, the base and the globals frozen",
                    e, (long long)ev->learn_steps, (double)ev->learn_steps * tok_per_step,
                    (double)ev->learn_steps * tok_per_step *
                        sp_spec_flops_per_token(&ev->after, ev->after.n_layer),
                    ev->learn_lr);
    }
    for (int k = 0; tr.sn.method && k < tr.sn.n_stages; k++) {
        char what[160];
        sp_subnet_describe(&tr.sn, k, what, sizeof what);
        sp_info(log, "%s stage %d%s: from step %lld, %s", sp_subnet_name(&tr.sn), k,
                k < sp_subnet_stage(&tr.sn, tr.st.step) ? " (done)" : "", (long long)tr.sn.start[k],
                what);
    }
    if (tr.sn.warmup > 0) /* RaPTr's full-model warm-up */
        sp_info(log, "raptr: the full model for the first %lld step(s)", (long long)tr.sn.warmup);
    sp_info(log, "OpenBLAS core %s, %d thread(s) per rank", openblas_get_corename(),
            openblas_get_num_threads());
    if (tr.gemm)
        sp_info(log,
                "precision bf16: matrix products through oneDNN on %s (bf16 inputs, fp32 "
                "accumulation); weights, gradients, moments and checkpoints fp32",
                sp_gemm_isa(tr.gemm));
    sp_info(log, "data: %s (%llu tokens), %s (%llu tokens); out: %s", cfg->data.train,
            (unsigned long long)tr.train.n, cfg->data.val, (unsigned long long)tr.val.n,
            cfg->run.out);

    if (tr.st.step > 0 && tr.rank == 0) {
        sp_json j;
        sp_json_begin(&j);
        sp_json_str(&j, "event", "restart");
        sp_json_int(&j, "step", tr.st.step);
        sp_json_int(&j, "tokens", tr.st.tokens);
        sp_json_int(&j, "growth_index", tr.st.growth_index);
        sp_json_int(&j, "n_layer", s->n_layer);
        sp_json_int(&j, "pp", tr.grid.pp);
        sp_json_int(&j, "dp", tr.dp);
        sp_metrics_write(&mx, &j);
    }
    int64_t eval_windows = sp_cfg_eval_windows(cfg);
    double t_start = sp_now(), t_window = t_start, wall0 = tr.st.wallclock;
    int64_t window_steps = 0, first = tr.st.step, saved_at = -1;
    double last_val = NAN;
    for (int64_t step = tr.st.step; step < steps; step++) {
        while (tr.st.growth_index < tr.gs.n && tr.gs.ev[tr.st.growth_index].step <= step)
            if ((rc = apply_growth(&tr, &mx, log, step, eval_windows, err))) break;
        if (rc || (rc = sp_trainer_subnet_expand(&tr, step, err))) break;
        sp_trainer_set_scales(&tr, step);
        float lr = (float)sp_trainer_lr(&tr, step);
        double t0 = sp_now(), gnorm = 0;
        float loss = sp_trainer_step(&tr, lr, &gnorm);
        double dt = sp_now() - t0;
        window_steps++;
        int64_t done = step + 1;
        int do_eval = cfg->eval.every > 0 && (done % cfg->eval.every == 0 || done == steps);
        double val = NAN, val_se = NAN;
        if (do_eval) val = last_val = sp_trainer_eval(&tr, &tr.val, eval_windows, &val_se);
        int do_log = done == 1 || done % cfg->run.log_every == 0 || done == steps || do_eval;
        if (!isfinite(loss)) {
            rc = sp_err_set(err, SP_ERUNTIME, "loss is %f at step %lld: diverged", loss,
                            (long long)done);
            break;
        }
        if (do_log)
            log_step(&tr, &mx, log, done, loss, lr, gnorm, dt, do_eval ? val : NAN, val_se,
                     tok_per_step * (double)window_steps / (sp_now() - t_window),
                     (sp_now() - t_start) / (double)(done - first) * (double)(steps - done));
        if (do_log) t_window = sp_now(), window_steps = 0;
        sp_test_point("step", done);
        /* after the last step the run is complete: a signal then changes nothing */
        stop = done < steps ? stop_agreed(comm) : 0;
        int every = cfg->checkpoint.every > 0 && done % cfg->checkpoint.every == 0;
        if (every || stop || done == steps) {
            tr.st.wallclock = wall0 + (sp_now() - t_start);
            if ((rc = save_checkpoint(&tr, config_yaml, log, err))) break;
            saved_at = done;
        }
        if (stop) {
            rc = sp_err_set(err, SP_ESIGNAL, "stopped by signal %d at step %lld after a checkpoint",
                            stop, (long long)done);
            break;
        }
    }
    if (!rc && saved_at != tr.st.step && tr.st.step != first) {
        tr.st.wallclock = wall0 + (sp_now() - t_start);
        rc = save_checkpoint(&tr, config_yaml, log, err);
    }
    /* the run read its data into memory at start: say so if the files changed since */
    for (int f = 0; f < 2; f++)
        if (sp_data_changed(f ? &tr.val : &tr.train))
            sp_warn(log,
                    "%s: %s changed on disk during the run; the run used the tokens it read at "
                    "start, a resume will read the file as it is now",
                    f ? "data.val" : "data.train", f ? cfg->data.val : cfg->data.train);
    if (!rc) {
        if (isfinite(last_val))
            sp_info(log, "done: %lld steps, val loss %.4f, %.1f s", (long long)tr.st.step, last_val,
                    tr.st.wallclock);
        else
            sp_info(log, "done: %lld steps, %.1f s", (long long)tr.st.step, tr.st.wallclock);
    }
    sp_metrics_close(&mx);
    sp_trainer_free(&tr);
    sp_rundir_unlock(lock_fd);
    return rc;
}
