/* Run configuration: --set overrides, validation and YAML output, all driven by the key table
 * in config.c. */
#define SP_CFG_INTERNAL
#include "sprout/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- --set ---------------------------------------------------------------------------------- */

int sp_cfg_set(sp_config *cfg, const char *assignment, sp_err *err) {
    const char *eq = strchr(assignment, '=');
    char path[160], q[200];
    if (!eq || eq == assignment)
        return sp_err_set(err, SP_EINPUT, "expected key.path=value, got '%s'",
                          sp_cfg_quote(assignment, q, sizeof q));
    if ((size_t)(eq - assignment) >= sizeof path) /* longer than any key */
        return sp_err_set(err, SP_EINPUT, "unknown key '%s'",
                          sp_cfg_quote(assignment, q, sizeof q));
    memcpy(path, assignment, (size_t)(eq - assignment));
    path[eq - assignment] = 0;
    const char *value = eq + 1;
    void *base = cfg;
    if (!strcmp(path, "growth") || !strncmp(path, "growth[", 7) || !strncmp(path, "growth.", 7)) {
        if (!strcmp(path, "growth") && !strcmp(value, "[]")) {
            sp_cfg_free_growth(cfg);
            return SP_OK;
        }
        /* one key of an existing event: growth[1].pipeline=2 (events are added in the file) */
        char *end;
        long e = strtol(path + 7, &end, 10);
        if (strncmp(path, "growth[", 7) || end == path + 7 || strncmp(end, "].", 2))
            return sp_err_set(err, SP_EINPUT,
                              "%s: --set takes growth=[] (clear the list) or growth[i].key=value",
                              sp_cfg_quote(path, q, sizeof q));
        if (e < 0 || e >= (long)cfg->growth_count)
            return sp_err_set(err, SP_EINPUT, "%s: the config has %u growth event(s)", path,
                              cfg->growth_count);
        base = &cfg->growth[e];
    }
    const sp_cfg_key *k = sp_cfg_lookup(path);
    if (!k) return sp_err_set(err, SP_EINPUT, "unknown key '%s'", sp_cfg_quote(path, q, sizeof q));
    sp_cfg_val v;
    if (sp_cfg_parse_val(k, value, &v, path, err)) return err->code;
    return sp_cfg_put_val(base, k, &v, err);
}

/* ---- YAML output ---------------------------------------------------------------------------- */

/* shortest %g form that reads back to the same double */
static void put_double(FILE *f, double x) {
    char b[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, x);
        if (strtod(b, NULL) == x) break;
    }
    fputs(b, f);
}

/* double-quoted YAML scalar, so that paths with ':' or '#' survive */
static void put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_key(FILE *f, const void *base, const sp_cfg_key *k, const char *indent) {
    sp_cfg_val v;
    sp_cfg_get_val(base, k, &v);
    fprintf(f, "%s%s: ", indent, k->name);
    switch (k->type) {
    case CFG_INT:
        fprintf(f, "%lld", (long long)v.i);
        break;
    case CFG_AUTOINT:
        if (v.i == SP_CFG_AUTO)
            fputs("auto", f);
        else
            fprintf(f, "%lld", (long long)v.i);
        break;
    case CFG_TOKENS:
    case CFG_STEPS:
        if (v.i == SP_CFG_AUTO)
            fputs("auto", f);
        else if (sp_cfg_share(v.i) > 0)
            fprintf(f, "%.4f%%", 100.0 * sp_cfg_share(v.i)); /* millionths: exact in 4 decimals */
        else
            fprintf(f, "%lld", (long long)v.i);
        break;
    case CFG_U64:
        fprintf(f, "%llu", (unsigned long long)v.u);
        break;
    case CFG_DBL:
        put_double(f, v.d);
        break;
    default:
        put_string(f, v.s);
        break;
    }
    fputc('\n', f);
}

int sp_cfg_to_yaml(const sp_config *cfg, char **text, size_t *len, sp_err *err) {
    size_t n = 0;
    *text = NULL;
    FILE *f = open_memstream(text, &n);
    if (!f) return sp_err_set(err, SP_ERUNTIME, "to_yaml: %s", strerror(errno));
    fputs("# sprout config, resolved (every key; see docs/config.md)\n", f);
    for (size_t i = 0; i < sp_cfg_nkeys; i++) {
        if (i == 0 || strcmp(sp_cfg_keys[i].sect, sp_cfg_keys[i - 1].sect))
            fprintf(f, "%s:\n", sp_cfg_keys[i].sect);
        put_key(f, cfg, &sp_cfg_keys[i], "  ");
    }
    fputs(cfg->growth_count ? "growth:\n" : "growth: []\n", f);
    for (unsigned e = 0; e < cfg->growth_count; e++)
        for (size_t i = 0; i < sp_cfg_nev; i++)
            put_key(f, &cfg->growth[e], &sp_cfg_ev_keys[i], i ? "    " : "  - ");
    if (fclose(f) || !*text) {
        free(*text);
        *text = NULL;
        return sp_err_set(err, SP_ERUNTIME, "to_yaml: out of memory");
    }
    if (len) *len = n;
    return SP_OK;
}

/* ---- validation ---------------------------------------------------------------------------- */

int sp_cfg_validate(const sp_config *cfg, sp_err *err) {
    const char *src = cfg->source ? cfg->source : "config";
    char path[160];
    sp_cfg_val v;
    for (size_t i = 0; i < sp_cfg_nkeys; i++) {
        const sp_cfg_key *k = &sp_cfg_keys[i];
        snprintf(path, sizeof path, "%s.%s", k->sect, k->name);
        sp_cfg_get_val(cfg, k, &v);
        if (sp_cfg_check_val(k, &v, path, err)) return sp_err_wrap(err, "%s", src);
    }
    const __typeof__(cfg->train) *t = &cfg->train;
    if (cfg->model.d_model % cfg->model.n_head)
        return sp_err_set(err, SP_EINPUT,
                          "%s: model.n_head: %lld does not divide model.d_model = %lld", src,
                          (long long)cfg->model.n_head, (long long)cfg->model.d_model);
    if (t->min_lr > t->lr)
        return sp_err_set(err, SP_EINPUT, "%s: train.min_lr: %g is greater than train.lr = %g", src,
                          t->min_lr, t->lr);
    if (t->warmup_steps > t->steps)
        return sp_err_set(err, SP_EINPUT,
                          "%s: train.warmup_steps: %lld is greater than train.steps = %lld", src,
                          (long long)t->warmup_steps, (long long)t->steps);
    if (t->decay_start >= 0 && (t->decay_start < t->warmup_steps || t->decay_start > t->steps))
        return sp_err_set(err, SP_EINPUT,
                          "%s: train.decay_start: %lld is outside [train.warmup_steps, "
                          "train.steps] = [%lld, %lld]",
                          src, (long long)t->decay_start, (long long)t->warmup_steps,
                          (long long)t->steps);
    if (t->global_batch % t->micro_batch)
        return sp_err_set(
            err, SP_EINPUT,
            "%s: train.global_batch: %lld is not a multiple of train.micro_batch = %lld", src,
            (long long)t->global_batch, (long long)t->micro_batch);
    /* the run's token count is int64_t arithmetic everywhere (schedule, train state) */
    int64_t tokens;
    if (sp_mul_i64(t->global_batch, cfg->model.seq_len, &tokens) ||
        sp_mul_i64(tokens, t->steps, &tokens))
        return sp_err_set(err, SP_EINPUT,
                          "%s: train.steps: %lld steps of train.global_batch x model.seq_len = "
                          "%lld x %lld tokens exceed 2^63 tokens",
                          src, (long long)t->steps, (long long)t->global_batch,
                          (long long)cfg->model.seq_len);
    if (cfg->growth_count > SP_CFG_MAX_EVENTS)
        return sp_err_set(err, SP_EINPUT, "%s: growth: %u events; at most %d are supported", src,
                          cfg->growth_count, SP_CFG_MAX_EVENTS);
    int all_steps = 1;
    for (unsigned e = 0; e < cfg->growth_count; e++) {
        const sp_growth_event *g = &cfg->growth[e];
        for (size_t i = 0; i < sp_cfg_nev; i++) {
            snprintf(path, sizeof path, "growth[%u].%s", e, sp_cfg_ev_keys[i].name);
            sp_cfg_get_val(g, &sp_cfg_ev_keys[i], &v);
            if (sp_cfg_check_val(&sp_cfg_ev_keys[i], &v, path, err))
                return sp_err_wrap(err, "%s", src);
        }
        if ((g->at_step >= 0) == (g->at_tokens != SP_CFG_UNSET))
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%u]: exactly one of at_step and at_tokens "
                              "must be set",
                              src, e);
        all_steps &= g->at_step >= 0;
    }
    for (unsigned e = 1; all_steps && e < cfg->growth_count; e++)
        if (cfg->growth[e].at_step < cfg->growth[e - 1].at_step)
            return sp_err_set(err, SP_EINPUT,
                              "%s: growth[%u].at_step: %lld comes before growth[%u].at_step = %lld",
                              src, e, (long long)cfg->growth[e].at_step, e - 1,
                              (long long)cfg->growth[e - 1].at_step);
    return SP_OK;
}

int sp_cfg_pipeline(const sp_config *cfg) {
    /* the value was checked on the way in: "auto" or 1..65536 */
    if (!cfg->parallel.pipeline || !strcmp(cfg->parallel.pipeline, "auto")) return 0;
    long long x = strtoll(cfg->parallel.pipeline, NULL, 10);
    return x < 1 ? 0 : x > 65536 ? 65536 : (int)x;
}

double sp_cfg_share(int64_t at_tokens) {
    /* compared before subtracting: a token count near INT64_MAX must not overflow */
    if (at_tokens > SP_CFG_SHARE0 - 1 || at_tokens < SP_CFG_SHARE0 - 999999) return -1.0;
    return (double)(SP_CFG_SHARE0 - at_tokens) / 1e6;
}

int sp_cfg_bf16(const sp_config *cfg) {
    return cfg->run.precision && !strcmp(cfg->run.precision, "bf16");
}

int64_t sp_cfg_d_ff(const sp_config *cfg) {
    return cfg->model.d_ff ? cfg->model.d_ff : 4 * cfg->model.d_model;
}

int64_t sp_cfg_eval_windows(const sp_config *cfg) {
    return cfg->eval.batches > 0 ? cfg->eval.batches * cfg->train.micro_batch : cfg->eval.windows;
}
