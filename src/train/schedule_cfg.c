/* The config half of the growth schedule: the `growth:` list (or `vcycle:`) resolved to events at
 * known steps (plain sp_grow_event structs, sprout/growth.h). Everything here is a pure function of
 * the config, so a restart on any layout recomputes the same schedule. */
#include "sprout/growth.h"
#include "sprout/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sp_train_target_spec(const sp_config *cfg, sp_spec *s, sp_err *err) {
    const char *src = cfg->source ? cfg->source : "config";
    int kind = sp_kind_find(cfg->model.block);
    const sp_kind *k = sp_kinds[kind < 0 ? 0 : kind];
    /* model.d_ff 0: the kind's default (4 d for gpt2, 8d/3 up to a multiple of 64 for llama) */
    int d_ff = cfg->model.d_ff ? (int)cfg->model.d_ff : k->default_d_ff((int)cfg->model.d_model);
    memset(s, 0, sizeof *s);
    s->vocab = (int)cfg->model.vocab, s->seq_len = (int)cfg->model.seq_len;
    s->d_model = (int)cfg->model.d_model, s->n_head = (int)cfg->model.n_head;
    s->d_ff = d_ff, s->n_layer = (int)cfg->model.n_layer, s->kind = kind < 0 ? 0 : kind;
    if (kind < 0)
        return sp_err_set(err, SP_EINPUT, "%s: model.block: '%s' is not a block kind (%s)", src,
                          cfg->model.block, sp_kind_names());
    const char *t = cfg->model.tie_head;
    int tie = !strcmp(t, "true") ? 1 : !strcmp(t, "false") ? 0 : -1;
    if (k->always_tied && tie == 0) {
        return sp_err_set(err, SP_EINPUT, "%s: model.tie_head: %s's head is always tied", src,
                          k->name);
    } else if (k->hparams) {
        /* norm_eps 0: the kind's (llama 1e-5, bert 1e-12, Hugging Face's defaults) */
        s->norm_eps = cfg->model.norm_eps > 0 ? cfg->model.norm_eps : k->default_norm_eps;
        s->rope_theta = cfg->model.rope_theta;
        /* auto: untied, LlamaForCausalLM's default, unless the kind is always tied */
        s->tie_head = k->always_tied ? 1 : tie >= 0 ? tie : 0;
    } else if (tie == 0) {
        return sp_err_set(err, SP_EINPUT, "%s: model.tie_head: %s's head is always tied", src,
                          k->name);
    }
    return SP_OK;
}

/* The largest share of the token budget `auto` gives the base: the grown model needs tokens of
 * its own to pay for the growth (docs/growth.md, "When"). */
#define AUTO_MAX_SHARE 0.7

/* at_tokens: auto. Within the range of G_stack's growth-timing fit (>= 1e20 FLOPs) the fit, on
 * the target's parameters; below it, base maturity: once the base has seen `maturity` tokens
 * per base parameter (growth-protocol §3: a base should be mature, ~20 tokens per parameter),
 * at most AUTO_MAX_SHARE of the budget. The rule that fired is written to `when`. */
static int64_t auto_at_tokens(double n_target, double n_base, double maturity, double total_tokens,
                              char *when, size_t nw) {
    int64_t d = sp_grow_timing_tokens(n_target, total_tokens);
    if (d >= 0) {
        snprintf(when, nw, "auto: G_stack's growth-timing fit, %.3g tokens", (double)d);
        return d;
    }
    double want = maturity * n_base, cap = AUTO_MAX_SHARE * total_tokens;
    if (want > cap) {
        snprintf(when, nw,
                 "auto: base maturity capped at %.0f%% of the budget (%.3g tokens, %.1f per base "
                 "parameter)",
                 100 * AUTO_MAX_SHARE, cap, cap / n_base);
        return sp_clamp_i64(cap, 0, INT64_MAX);
    }
    snprintf(
        when, nw,
        "auto: base maturity, %.3g tokens per base parameter (%.3g tokens, %.0f%% of the budget)",
        maturity, want, 100 * want / total_tokens);
    return sp_clamp_i64(want, 0, INT64_MAX);
}

/* factor `auto`: 4, or the largest divisor of the depth after the event that is <= 4 */
static int auto_factor(int n_after) {
    for (int f = 4; f > 1; f--)
        if (n_after % f == 0) return f;
    return 1;
}

static sp_spec target_spec(const sp_config *cfg) {
    sp_spec s;
    sp_train_target_spec(cfg, &s, NULL); /* the kind was checked by sp_train_grow_schedule */
    return s;
}

static int list_schedule(const sp_config *cfg, sp_grow_sched *gs, const sp_log *log, sp_err *err) {
    const char *src = cfg->source ? cfg->source : "config";
    int n = gs->n;
    int64_t tok_per_step;
    if (sp_mul_i64(cfg->train.global_batch, cfg->model.seq_len, &tok_per_step) || tok_per_step < 1)
        return sp_err_set(err, SP_EINPUT,
                          "%s: train.global_batch x model.seq_len = %lld x %lld tokens per step is "
                          "out of range",
                          src, (long long)cfg->train.global_batch, (long long)cfg->model.seq_len);
    double total_tokens = (double)tok_per_step * (double)cfg->train.steps;
    sp_spec spec = target_spec(cfg);
    double n_target = (double)sp_spec_num_params(&spec);
    for (int e = n - 1; e >= 0; e--) { /* from the target backwards */
        const sp_growth_event *g = &cfg->growth[e];
        sp_grow_event *r = &gs->ev[e];
        r->op = g->op;
        const sp_grow_op *row = sp_grow_op_find(g->op);
        if (!row)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d].op: '%s' is not a growth operator (%s)", src, e,
                              g->op, sp_grow_op_names(-1));
        if (sp_grow_op_applies(row, &spec, err))
            return sp_err_wrap(err, "%s: growth[%d].op", src, e);
        r->kind = row->dim == SP_OP_WIDTH ? SP_GROW_WIDTH : SP_GROW_DEPTH;
        if (row->dim == SP_OP_WIDTH)
            r->wop = row;
        else
            r->dop = row;
        int grows_depth = row->dim == SP_OP_DEPTH && !row->shrinks;
        r->factor = g->factor != SP_CFG_AUTO ? (int)g->factor
                    : grows_depth            ? auto_factor(spec.n_layer)
                                             : 2;
        /* an event that changes nothing would still relay the model out and reset what its
         * policy says: refused, as factor 1 is by the config's range check */
        if (r->factor < 2)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d].factor: auto finds no factor 2..4 dividing the depth "
                              "%d it grows to",
                              src, e, spec.n_layer);
        r->after = spec;
        if (sp_grow_undo_spec(row, r->factor, &spec, &r->before, src, e, err)) return err->code;
        if (row->dim == SP_OP_DEPTH && row->shrinks && r->factor > SP_MAP_MAX_SRC)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d].factor: %s averages at most %d blocks into one, "
                              "not %d",
                              src, e, row->name, SP_MAP_MAX_SRC, r->factor);
        spec = r->before;
        r->n_before = r->before.n_layer, r->n_after = r->after.n_layer;
        r->wk = r->dk = 1;
        r->lr_mult = 1.0;
        r->noise = g->noise;
        r->pipeline = g->pipeline && strcmp(g->pipeline, "auto") ? atoi(g->pipeline) : 0;
        r->reset_optim = !strcmp(g->optimizer, "reset");
        r->ramp_steps = g->ramp_steps;
        r->learn_steps = row->learns ? g->learn_steps : 0;
        r->learn_lr = g->learn_lr;
        double share = sp_cfg_share(g->at_tokens);
        if (g->at_step >= 0) {
            r->step = g->at_step;
            snprintf(r->when, sizeof r->when, "at_step %lld", (long long)g->at_step);
        } else {
            int64_t tok;
            if (g->at_tokens == SP_CFG_AUTO) {
                tok = auto_at_tokens(n_target, (double)sp_spec_num_params(&r->before), g->maturity,
                                     total_tokens, r->when, sizeof r->when);
            } else if (share > 0) {
                tok = sp_clamp_i64(share * total_tokens, 0, INT64_MAX);
                snprintf(r->when, sizeof r->when, "at_tokens %.4g%% of the budget (%.3g tokens)",
                         100 * share, (double)tok);
            } else {
                tok = g->at_tokens;
                snprintf(r->when, sizeof r->when, "at_tokens %lld", (long long)tok);
            }
            /* (tok + tok_per_step - 1) / tok_per_step overflows for a huge at_tokens */
            r->step = sp_ceil_div_i64(tok, tok_per_step);
        }
        if (r->step > cfg->train.steps)
            sp_warn(log, "growth[%d] at step %lld comes after the last step (%lld): never applied",
                    e, (long long)r->step, (long long)cfg->train.steps);
    }
    gs->spec0 = spec;
    for (int e = 0; e < n; e++) {
        sp_grow_event *r = &gs->ev[e];
        const sp_growth_event *g = &cfg->growth[e];
        if (e > 0 && r->step < gs->ev[e - 1].step)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%d] (step %lld) comes before growth[%d] (step %lld)", src,
                              e, (long long)r->step, e - 1, (long long)gs->ev[e - 1].step);
        if (strcmp(g->lr, "rewarm")) continue;
        /* default re-warm-up: the run's own warm-up, at most 5% of the steps left */
        int64_t left = cfg->train.steps - r->step, cap = left / 20 > 0 ? left / 20 : 1;
        double share = sp_cfg_share(g->rewarm_steps);
        r->rewarm_steps = share > 0                       ? llround(share * cfg->train.steps)
                          : g->rewarm_steps > 0           ? g->rewarm_steps
                          : cfg->train.warmup_steps < cap ? cfg->train.warmup_steps
                                                          : cap;
        if (r->rewarm_steps < 1) r->rewarm_steps = 1;
    }
    return SP_OK;
}

/* vcycle.coalesce: one entry for every level, or one per level; each width|depth|both.
 * Fills wk[k], dk[k] for k = 1 .. levels-1 (the coalescing from level k to k+1). */
static int parse_dims(const sp_config *cfg, int levels, int *wk, int *dk, sp_err *err) {
    const char *src = cfg->source ? cfg->source : "config", *p = cfg->vcycle.coalesce;
    int n = 0;
    char tok[16];
    while (p && *p) {
        size_t len = strcspn(p, ",");
        if (len >= sizeof tok || n >= levels - 1) break;
        memcpy(tok, p, len), tok[len] = 0;
        n++;
        wk[n] = !strcmp(tok, "width") || !strcmp(tok, "both") ? 2 : 1;
        dk[n] = !strcmp(tok, "depth") || !strcmp(tok, "both") ? 2 : 1;
        if (wk[n] == 1 && dk[n] == 1)
            return sp_err_set(err, SP_EINPUT,
                              "%s: vcycle.coalesce: '%s' is not width, depth or both", src, tok);
        p += len + (p[len] == ',');
    }
    if (n == 1)
        for (int k = 2; k < levels; k++) wk[k] = wk[1], dk[k] = dk[1];
    else if (n != levels - 1 || (p && *p))
        return sp_err_set(err, SP_EINPUT,
                          "%s: vcycle.coalesce: '%s' needs one entry, or one per level below "
                          "the top (%d)",
                          src, cfg->vcycle.coalesce, levels - 1);
    return SP_OK;
}

/* Levels 1..K, level 1 the target: down k = 1..K-1 (each after down_steps), the bottom level for
 * bottom_steps, then up k = K-1..1 sharing the rest; a fresh optimizer at every change and the
 * learning rate scaled by lr_scale^(level-1). */
static int vcycle_schedule(const sp_config *cfg, sp_grow_sched *gs, sp_err *err) {
    const char *src = cfg->source ? cfg->source : "config";
    int K = (int)cfg->vcycle.levels;
    int wk[9], dk[9];
    sp_spec spec[10];
    if (parse_dims(cfg, K, wk, dk, err)) return err->code;
    spec[1] = target_spec(cfg);
    for (int k = 1; k < K; k++) {
        spec[k + 1] = spec[k];
        if (wk[k] > 1 && sp_grow_width_spec("coalesce_width", &spec[k], 2, &spec[k + 1], err))
            return sp_err_wrap(err, "%s: vcycle level %d", src, k + 1);
        if (dk[k] > 1 && spec[k].n_layer % 2)
            return sp_err_set(err, SP_EINPUT,
                              "%s: vcycle level %d: %d blocks cannot be coalesced in pairs", src,
                              k + 1, spec[k].n_layer);
        spec[k + 1].n_layer = spec[k].n_layer / dk[k];
    }
    int64_t S = cfg->train.steps;
    int64_t D = cfg->vcycle.down_steps ? cfg->vcycle.down_steps : (S / 20 > 0 ? S / 20 : 1);
    int64_t B = cfg->vcycle.bottom_steps ? cfg->vcycle.bottom_steps : S / 2;
    int64_t rest = S - (int64_t)(K - 1) * D - B;
    if (rest < K - 1)
        return sp_err_set(err, SP_EINPUT,
                          "%s: vcycle: %d levels down of %lld steps and a bottom of %lld steps "
                          "leave %lld of train.steps = %lld for the way up",
                          src, K - 1, (long long)D, (long long)B, (long long)rest, (long long)S);
    int64_t U = rest / (K - 1);
    gs->spec0 = spec[1];
    for (int i = 0; i < gs->n; i++) {
        sp_grow_event *r = &gs->ev[i];
        int down = i < K - 1, k = down ? i + 1 : 2 * K - 2 - i; /* coalescing k -> k+1 */
        r->kind = down ? SP_GROW_VC_DOWN : SP_GROW_VC_UP;
        r->op = down ? "coalesce" : "decoalesce";
        /* the table's coalescing rows down, de-coalescing rows up, in each dimension that
         * changes */
        if (wk[k] > 1) r->wop = sp_grow_op_find(down ? "coalesce_width" : "decoalesce_width");
        if (dk[k] > 1) r->dop = sp_grow_op_find(down ? "coalesce_depth" : "decoalesce_depth");
        r->step = down ? (int64_t)k * D : (int64_t)(K - 1) * D + B + (int64_t)(K - 1 - k) * U;
        r->before = down ? spec[k] : spec[k + 1];
        r->after = down ? spec[k + 1] : spec[k];
        r->level = down ? k + 1 : k;
        r->wk = wk[k], r->dk = dk[k];
        r->factor = wk[k] > dk[k] ? wk[k] : dk[k];
        r->n_before = r->before.n_layer, r->n_after = r->after.n_layer;
        r->alpha = cfg->vcycle.alpha;
        r->lr_mult = pow(cfg->vcycle.lr_scale, r->level - 1);
        r->reset_optim = 1;
        r->ramp_steps = 1;
        /* parallel.pipeline holds for every level that has blocks enough for it */
        int pp = sp_cfg_pipeline(cfg);
        r->pipeline = pp <= r->after.n_layer ? pp : 0;
    }
    return SP_OK;
}

int sp_train_grow_schedule(const sp_config *cfg, sp_grow_sched *gs, const sp_log *log,
                           sp_err *err) {
    memset(gs, 0, sizeof *gs);
    const char *src = cfg->source ? cfg->source : "config";
    sp_spec target;
    if (sp_train_target_spec(cfg, &target, err)) return err->code;
    int K = cfg->vcycle.levels > 1 ? (int)cfg->vcycle.levels : 0;
    if (K && cfg->growth_count)
        return sp_err_set(err, SP_EINPUT,
                          "%s: vcycle.levels = %d and a growth list: use one or the other", src, K);
    gs->levels = K;
    gs->n = K ? 2 * (K - 1) : (int)cfg->growth_count;
    gs->spec0 = target_spec(cfg);
    if (gs->n) {
        gs->ev = calloc((size_t)gs->n, sizeof *gs->ev);
        if (!gs->ev) return sp_err_set(err, SP_ERUNTIME, "out of memory");
        int rc = K ? vcycle_schedule(cfg, gs, err) : list_schedule(cfg, gs, log, err);
        if (rc) return rc;
    }
    gs->n_layer0 = gs->spec0.n_layer;
    for (int e = 0; e < gs->n; e++)
        if (gs->ev[e].kind <= SP_GROW_WIDTH)
            gs->ramps |= (gs->ev[e].dop ? gs->ev[e].dop : gs->ev[e].wop)->ramps;
    return SP_OK;
}
