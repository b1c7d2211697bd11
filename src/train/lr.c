/* Learning-rate schedules: one row per schedule, looked up by the config's train.schedule.
 *
 * Every schedule is a pure function of (config, step): a restart continues it exactly, and a
 * run resumed with a new end step (train.steps, train.decay_start) follows the schedule it would
 * have had from the start with those values. That is what makes a WSD cooldown branched from a
 * stable-phase checkpoint equal, bit for bit, to the same run configured with that end from
 * step 0 (the baseline frontier of docs/growth.md). */
#include "sprout/train.h"

#include <math.h>
#include <string.h>

/* Each function gets the step after warm-up: s in [warm, total), and the span after warm-up. */
typedef double (*lr_fn)(const sp_config *cfg, int64_t step);

static double lr_constant(const sp_config *cfg, int64_t step) {
    (void)step;
    return cfg->train.lr;
}

/* progress through the post-warm-up part, in [0, 1] */
static double progress(const sp_config *cfg, int64_t step) {
    int64_t warm = cfg->train.warmup_steps, total = cfg->train.steps;
    double r = total > warm ? (double)(step - warm) / (double)(total - warm) : 1.0;
    return r > 1.0 ? 1.0 : r;
}

static double lr_linear(const sp_config *cfg, int64_t step) {
    double lr = cfg->train.lr, lo = cfg->train.min_lr;
    return lo + (1.0 - progress(cfg, step)) * (lr - lo);
}

static double lr_cosine(const sp_config *cfg, int64_t step) {
    double lr = cfg->train.lr, lo = cfg->train.min_lr;
    return lo + 0.5 * (1.0 + cos(M_PI * progress(cfg, step))) * (lr - lo);
}

int64_t sp_lr_decay_start(const sp_config *cfg) {
    const __typeof__(cfg->train) *t = &cfg->train;
    if (t->decay_start >= 0) return t->decay_start;
    int64_t d = (int64_t)llround(t->decay_fraction * (double)t->steps);
    int64_t start = t->steps - d;
    return start > t->warmup_steps ? start : t->warmup_steps;
}

/* The decay shapes of WSD: the share of (lr - min_lr) kept at decay progress r in (0, 1]. */
static double keep_linear(double r) {
    return 1.0 - r;
}
static double keep_sqrt(double r) {
    return 1.0 - sqrt(r);
}

static const struct {
    const char *name;
    double (*keep)(double r);
} k_decay_shapes[] = {
    {"linear", keep_linear},
    {"sqrt", keep_sqrt},
};

static double decay_keep(const char *shape, double r) {
    for (size_t i = 0; i < sizeof k_decay_shapes / sizeof k_decay_shapes[0]; i++)
        if (!strcmp(shape, k_decay_shapes[i].name)) return k_decay_shapes[i].keep(r);
    return NAN; /* unreachable: the config's choice list is this table's names */
}

/* Warm-up, stable at the peak, then a decay to min_lr that reaches it on the last step: with
 * r = (s + 1 - D) / (T - D) over the decay steps s in [D, T), linear gives 1 - r and sqrt gives
 * 1 - sqrt(r) (the "1 - sqrt" cooldown of Hägele et al. 2024). */
static double lr_wsd(const sp_config *cfg, int64_t step) {
    const __typeof__(cfg->train) *t = &cfg->train;
    int64_t d0 = sp_lr_decay_start(cfg);
    if (step < d0) return t->lr;
    double r = t->steps > d0 ? (double)(step + 1 - d0) / (double)(t->steps - d0) : 1.0;
    if (r > 1.0) r = 1.0;
    return t->min_lr + decay_keep(t->decay_shape, r) * (t->lr - t->min_lr);
}

static const struct {
    const char *name;
    lr_fn fn;
} k_schedules[] = {
    {"cosine", lr_cosine},
    {"constant", lr_constant},
    {"linear", lr_linear},
    {"wsd", lr_wsd},
};

double sp_lr_at(const sp_config *cfg, int64_t step) {
    int64_t warm = cfg->train.warmup_steps;
    if (step < warm) return cfg->train.lr * (double)(step + 1) / (double)warm;
    for (size_t i = 0; i < sizeof k_schedules / sizeof k_schedules[0]; i++)
        if (!strcmp(cfg->train.schedule, k_schedules[i].name)) return k_schedules[i].fn(cfg, step);
    return NAN; /* unreachable: the config's choice list is this table's names */
}
