/* The growth schedule: G_stack's timing fit against the published table, the depths and widths
 * of every stage worked backwards from the target, at_tokens rounding, factor auto, the
 * re-warm-up and level learning rates, the fade-in ramps of random blocks through later events,
 * the V-cycle expansion, and the errors that name the key. Pure functions: no MPI. */
#include "sprout/growth.h"
#include "sprout/train.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has(const char *msg, const char *part) {
    return strstr(msg, part) != NULL;
}

/* a config from YAML text (defaults for everything not given) */
static int load(sp_config *c, const char *text, sp_err *err) {
    return sp_cfg_load_text(c, text, strlen(text), "g.yaml", err) || sp_cfg_validate(c, err);
}

static const sp_log k_quiet = {1, 1};

static void test_timing_fit(tu_ctx *t) {
    /* P1 Table 4: target parameters, planned tokens -> base tokens (the fit at C = 6 N D) */
    const struct {
        double n, d, want;
    } rows[] = {
        {7e9, 2e12, 11.11e9}, {8e9, 15e12, 6.58e9}, {13e9, 2e12, 15.84e9}, {70e9, 2e12, 42.48e9}};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        double got = (double)sp_grow_timing_tokens(rows[i].n, rows[i].d);
        tu_check(t, fabs(got / rows[i].want - 1) < 5e-3, "timing fit N %.0e D %.0e: %.4e vs %.4e",
                 rows[i].n, rows[i].d, got, rows[i].want);
    }
    tu_check(t, sp_grow_timing_tokens(1e7, 2e8) == -1, "below 1e20 FLOPs the fit is not used");
}

static void test_list(tu_ctx *t) {
    sp_config c;
    sp_err err = {0};
    sp_grow_sched gs;
    /* 8 blocks at the end; factor auto of the last event is 4 (the largest divisor of 8 that is
     * <= 4), so the depths are 1 -> 2 -> 8 */
    int rc = load(&c,
                  "model: {n_layer: 8, d_model: 32, n_head: 4, seq_len: 16}\n"
                  "train: {steps: 100, global_batch: 4, micro_batch: 4, warmup_steps: 10}\n"
                  "growth:\n"
                  "  - {at_step: 10, op: stack, factor: 2, lr: rewarm}\n"
                  "  - {at_tokens: 1000, op: random, factor: auto, ramp_steps: 8}\n",
                  &err);
    tu_check(t, rc == 0, "load: %s", err.msg);
    rc = sp_train_grow_schedule(&c, &gs, &k_quiet, &err);
    tu_check(t, rc == 0 && gs.n == 2, "schedule: %s", err.msg);
    if (rc == 0 && gs.n == 2) {
        /* at_tokens 1000 with 64 tokens a step: ceil(1000/64) = 16 */
        tu_check(t, gs.n_layer0 == 1 && gs.ev[0].n_before == 1 && gs.ev[0].n_after == 2,
                 "depths: start %d, event 0 %d -> %d", gs.n_layer0, gs.ev[0].n_before,
                 gs.ev[0].n_after);
        tu_check(t, gs.ev[1].factor == 4 && gs.ev[1].n_before == 2 && gs.ev[1].n_after == 8,
                 "factor auto: x%d, %d -> %d", gs.ev[1].factor, gs.ev[1].n_before,
                 gs.ev[1].n_after);
        tu_check(t, gs.ev[0].step == 10 && gs.ev[1].step == 16, "steps %lld %lld",
                 (long long)gs.ev[0].step, (long long)gs.ev[1].step);
        sp_spec s0 = sp_grow_spec_at(&gs, 0), s2 = sp_grow_spec_at(&gs, 2);
        tu_check(t, s0.n_layer == 1 && s2.n_layer == 8 && s2.d_model == 32, "spec_at");
        /* re-warm-up: default = warmup_steps 10, capped at 5% of the 90 steps left = 4 */
        tu_check(t, gs.ev[0].rewarm_steps == 4, "rewarm default %lld",
                 (long long)gs.ev[0].rewarm_steps);
        tu_check(t,
                 sp_grow_lr_factor(&gs, 1, 10) == 0.25 && sp_grow_lr_factor(&gs, 1, 13) == 1.0 &&
                     sp_grow_lr_factor(&gs, 0, 5) == 1.0,
                 "lr factor");
        /* random x4 after stack: blocks 2..7 fresh, ramped over 8 steps from step 16 */
        float cs[8];
        sp_grow_block_scales(&gs, 2, 20, cs);
        int ok = 1;
        for (int b = 0; b < 8; b++) ok &= cs[b] == (b < 2 ? 1.0f : 0.5f);
        tu_check(t, ok, "block scales at step 20: %g %g", cs[0], cs[7]);
        sp_grow_block_scales(&gs, 2, 30, cs);
        tu_check(t, cs[7] == 1.0f, "ramp over");
    }
    sp_grow_sched_free(&gs);
    sp_cfg_free(&c);

    /* a re-warm-up given as a share of the run's steps: 2% and 0.05 of 400 steps; an explicit
     * count is kept as it is; the share is printed back as a share */
    rc = load(&c,
              "model: {n_layer: 8, d_model: 32, n_head: 4, seq_len: 16}\n"
              "train: {steps: 400, global_batch: 4, micro_batch: 4, warmup_steps: 10}\n"
              "growth:\n"
              "  - {at_step: 10, op: stack, factor: 2, lr: rewarm, rewarm_steps: 2%}\n"
              "  - {at_step: 20, op: stack, factor: 2, lr: rewarm, rewarm_steps: 0.05}\n"
              "  - {at_step: 30, op: stack, factor: 2, lr: rewarm, rewarm_steps: 7}\n",
              &err);
    tu_check(t, rc == 0, "load shares: %s", err.msg);
    if (rc == 0) {
        rc = sp_train_grow_schedule(&c, &gs, &k_quiet, &err);
        tu_check(t, rc == 0 && gs.n == 3, "schedule shares: %s", err.msg);
        if (rc == 0 && gs.n == 3)
            tu_check(t,
                     gs.ev[0].rewarm_steps == 8 && gs.ev[1].rewarm_steps == 20 &&
                         gs.ev[2].rewarm_steps == 7,
                     "rewarm shares: %lld %lld %lld", (long long)gs.ev[0].rewarm_steps,
                     (long long)gs.ev[1].rewarm_steps, (long long)gs.ev[2].rewarm_steps);
        sp_grow_sched_free(&gs);
        sp_cfg_free(&c);
    }
    {
        sp_err e2 = {0};
        rc =
            load(&c, "growth:\n  - {at_step: 1, op: stack, lr: rewarm, rewarm_steps: auto}\n", &e2);
        tu_check(t, rc && e2.code == SP_EINPUT && has(e2.msg, "growth[0].rewarm_steps"),
                 "rewarm_steps: auto is refused by name: '%s'", e2.msg);
        sp_cfg_free(&c);
        rc =
            load(&c, "growth:\n  - {at_step: 1, op: stack, lr: rewarm, rewarm_steps: 150%}\n", &e2);
        tu_check(t, rc && e2.code == SP_EINPUT && has(e2.msg, "share of the run's steps"),
                 "rewarm_steps 150%% refused: '%s'", e2.msg);
        sp_cfg_free(&c);
    }

    /* errors name the key */
    const struct {
        const char *yaml, *msg;
    } bad[] = {
        {"model: {n_layer: 6}\ngrowth:\n  - {at_step: 1, op: stack, factor: 4}\n",
         "growth[0].factor: 4 does not divide the depth 6"},
        {"model: {n_layer: 6}\ngrowth:\n  - {at_step: 1, op: sideways}\n",
         "growth[0].op: 'sideways' is not a growth operator"},
        {"model: {n_layer: 8}\ngrowth:\n  - {at_tokens: 100000, op: stack}\n"
         "  - {at_step: 1, op: stack}\n",
         "growth[1] (step 1) comes before growth[0]"},
        {"model: {d_model: 48, n_head: 3}\ngrowth:\n  - {at_step: 1, op: decoalesce_width}\n",
         "growth[0]"},
        {"vcycle: {levels: 2}\ngrowth:\n  - {at_step: 1, op: stack}\n", "use one or the other"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sp_err e2 = {0};
        rc = load(&c, bad[i].yaml, &e2);
        if (!rc) rc = sp_train_grow_schedule(&c, &gs, &k_quiet, &e2);
        tu_check(t, rc == SP_EINPUT && has(e2.msg, bad[i].msg), "bad %zu: '%s'", i, e2.msg);
        sp_grow_sched_free(&gs);
        sp_cfg_free(&c);
    }
}

static void test_vcycle(tu_ctx *t) {
    sp_config c;
    sp_err err = {0};
    sp_grow_sched gs;
    int rc = load(&c,
                  "model: {n_layer: 8, d_model: 64, n_head: 8, seq_len: 16}\n"
                  "train: {steps: 200, global_batch: 4, micro_batch: 4, warmup_steps: 10}\n"
                  "vcycle: {levels: 3, coalesce: 'both,depth', alpha: 0.25, lr_scale: 3}\n",
                  &err);
    tu_check(t, rc == 0, "load: %s", err.msg);
    rc = sp_train_grow_schedule(&c, &gs, &k_quiet, &err);
    tu_check(t, rc == 0 && gs.n == 4, "vcycle schedule: %s", err.msg);
    if (rc == 0 && gs.n == 4) {
        /* down 5% = 10 steps per level, bottom 50% = 100, the rest 80 split in 2 ups of 40 */
        int64_t want_step[4] = {10, 20, 120, 160};
        int want_d[4] = {32, 32, 32, 64}, want_l[4] = {4, 2, 4, 8}, want_level[4] = {2, 3, 2, 1};
        int ok = 1;
        for (int e = 0; e < 4; e++)
            ok &= gs.ev[e].step == want_step[e] && gs.ev[e].after.d_model == want_d[e] &&
                  gs.ev[e].after.n_layer == want_l[e] && gs.ev[e].level == want_level[e] &&
                  gs.ev[e].reset_optim && gs.ev[e].after.n_head * 8 == gs.ev[e].after.d_model;
        tu_check(t, ok, "V-cycle events (step, d_model, n_layer, level)");
        tu_check(t,
                 gs.ev[0].kind == SP_GROW_VC_DOWN && gs.ev[3].kind == SP_GROW_VC_UP &&
                     gs.ev[0].wk == 2 && gs.ev[1].wk == 1 && gs.ev[1].dk == 2 &&
                     gs.ev[3].alpha == 0.25,
                 "V-cycle kinds and factors");
        tu_check(t,
                 sp_grow_lr_factor(&gs, 2, 30) == 9.0 && sp_grow_lr_factor(&gs, 3, 130) == 3.0 &&
                     sp_grow_lr_factor(&gs, 4, 190) == 1.0,
                 "level learning rates");
        sp_spec s0 = sp_grow_spec_at(&gs, 0);
        tu_check(t, s0.d_model == 64 && s0.n_layer == 8, "a V-cycle starts at the target");
    }
    sp_grow_sched_free(&gs);
    sp_cfg_free(&c);
}

/* The schedule of a config from YAML text; gs is freeable whatever the result. The events' op
 * strings point into the freed config: only their numbers may be read. */
static int schedule_of(const char *yaml, sp_grow_sched *gs, sp_err *err) {
    sp_config c;
    memset(gs, 0, sizeof *gs);
    int rc = load(&c, yaml, err);
    if (!rc) rc = sp_train_grow_schedule(&c, gs, &k_quiet, err);
    sp_cfg_free(&c);
    return rc;
}

/* Schedule arithmetic on the largest values the config allows: no signed overflow (UBSan in
 * the Asan build), no event wrapped to step 0, no factor that changes nothing. */
static void test_extremes(tu_ctx *t) {
    sp_err err = {0};
    sp_grow_sched gs;
    /* (at_tokens + tokens_per_step - 1) used to wrap negative: the event then grew at step 0 */
    int rc = schedule_of("model: {n_layer: 4, d_model: 32, n_head: 4, seq_len: 1073741824}\n"
                         "train: {steps: 2, global_batch: 2, micro_batch: 1, warmup_steps: 1}\n"
                         "growth:\n  - {at_tokens: 4611686018427387904, op: stack}\n",
                         &gs, &err);
    tu_check(t, rc == 0 && gs.ev[0].step == 2147483648LL, "huge at_tokens: step %lld (%s)",
             rc ? -1LL : (long long)gs.ev[0].step, err.msg);
    sp_grow_sched_free(&gs);
    /* the checked helpers at the edges of int64_t */
    int64_t r;
    tu_check(t,
             sp_ceil_div_i64(INT64_MAX, 2) == (int64_t)1 << 62 && sp_ceil_div_i64(0, 7) == 0 &&
                 sp_ceil_div_i64(7, 7) == 1 && sp_ceil_div_i64(8, 7) == 2,
             "sp_ceil_div_i64");
    tu_check(t,
             sp_add_i64(INT64_MAX, 1, &r) && sp_mul_i64((int64_t)1 << 32, (int64_t)1 << 31, &r) &&
                 !sp_mul_i64((int64_t)1 << 31, (int64_t)1 << 31, &r) && r == (int64_t)1 << 62,
             "sp_add_i64 / sp_mul_i64 overflow flags");
    tu_check(t,
             sp_clamp_i64(NAN, 0, 9) == 0 && sp_clamp_i64(1e300, 0, INT64_MAX) == INT64_MAX &&
                 sp_clamp_i64(-1e300, -5, 5) == -5 && sp_clamp_i64(3.7, 0, 9) == 3,
             "sp_clamp_i64");
    /* the timing fit far beyond its range: clamped, not a double cast out of range */
    tu_check(t, sp_grow_timing_tokens(1e30, 1e30) == INT64_MAX, "timing fit clamps");
    const struct {
        const char *yaml, *msg;
    } bad[] = {
        /* coalesce_depth: factor x depth beyond int */
        {"model: {n_layer: 65536}\ngrowth:\n  - {at_step: 1, op: coalesce_depth, factor: 65536}\n",
         "growth[0].factor: 65536 x the 65536 blocks"},
        /* averaging more blocks than a map entry has sources */
        {"model: {n_layer: 2}\ngrowth:\n  - {at_step: 1, op: coalesce_depth, factor: 9}\n",
         "growth[0].factor: coalesce_depth averages at most 8 blocks into one, not 9"},
        /* the block kind and the operator's table row */
        {"model: {block: t5}\n", "model.block: 't5' is not a block kind (gpt2, llama, bert)"},
        {"growth:\n  - {at_step: 1, op: Stack}\n",
         "growth[0].op: 'Stack' is not a growth operator (stack, direct"},
        /* factor auto with nothing dividing the depth: an event that would change nothing */
        {"model: {n_layer: 7}\ngrowth:\n  - {at_step: 1, op: stack, factor: auto}\n",
         "growth[0].factor: auto finds no factor 2..4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = schedule_of(bad[i].yaml, &gs, &err);
        tu_check(t, rc == SP_EINPUT && has(err.msg, bad[i].msg), "'%s', want '%s'", err.msg,
                 bad[i].msg);
        sp_grow_sched_free(&gs);
    }
}

/* at_tokens as a share of the budget, and `auto` below the timing fit: base maturity, capped */
static void test_when(tu_ctx *t) {
    /* the budget: 100 steps x 4 sequences x 16 tokens = 6400 tokens, 64 a step */
    const char *base = "model: {n_layer: 8, d_model: 32, n_head: 4, seq_len: 16}\n"
                       "train: {steps: 100, global_batch: 4, micro_batch: 4, warmup_steps: 10}\n";
    struct {
        const char *at;
        int64_t step;
        const char *rule;
    } rows[] = {
        {"0.5", 50, "50% of the budget"},     /* 3200 tokens */
        {"25%", 25, "25% of the budget"},     /* 1600 */
        {"0.333", 34, "33.3% of the budget"}, /* 2131.2 -> 2131 tokens, ceil(2131 / 64) = 34 */
        {"1000", 16, "at_tokens 1000"},
    };
    for (int i = 0; i < 4; i++) {
        char text[512];
        snprintf(text, sizeof text, "%sgrowth:\n  - {at_tokens: %s, op: stack, factor: 2}\n", base,
                 rows[i].at);
        sp_config c;
        sp_err err = {0};
        sp_grow_sched gs;
        int rc = load(&c, text, &err);
        rc = rc ? rc : sp_train_grow_schedule(&c, &gs, &k_quiet, &err);
        tu_check(t, rc == 0 && gs.ev[0].step == rows[i].step && strstr(gs.ev[0].when, rows[i].rule),
                 "at_tokens %s: rc %d step %lld (want %lld), '%s' %s", rows[i].at, rc,
                 rc ? -1LL : (long long)gs.ev[0].step, (long long)rows[i].step,
                 rc ? "" : gs.ev[0].when, err.msg);
        /* the share survives the YAML round trip */
        char *y = NULL;
        size_t n = 0;
        if (!rc && !sp_cfg_to_yaml(&c, &y, &n, &err)) {
            sp_config c2;
            int rc2 = sp_cfg_load_text(&c2, y, n, "round.yaml", &err);
            tu_check(t, rc2 == 0 && c2.growth[0].at_tokens == c.growth[0].at_tokens,
                     "at_tokens %s: YAML round trip (%s)", rows[i].at, err.msg);
            if (!rc2) sp_cfg_free(&c2);
        }
        free(y);
        if (!rc) sp_grow_sched_free(&gs);
        sp_cfg_free(&c);
    }
    /* auto, below 1e20 FLOPs: maturity x the base's parameters, at most 70% of the budget */
    for (int cap = 0; cap < 2; cap++) {
        char text[512];
        snprintf(text, sizeof text,
                 "%sgrowth:\n  - {at_tokens: auto, op: stack, factor: 2, maturity: %s}\n", base,
                 cap ? "20" : "0.01");
        sp_config c;
        sp_err err = {0};
        sp_grow_sched gs;
        int rc = load(&c, text, &err);
        rc = rc ? rc : sp_train_grow_schedule(&c, &gs, &k_quiet, &err);
        if (rc) {
            tu_check(t, 0, "auto (cap %d): %s", cap, err.msg);
            sp_cfg_free(&c);
            continue;
        }
        double nb = (double)sp_spec_num_params(&gs.ev[0].before);
        int64_t tok = cap ? (int64_t)(0.7 * 6400) : (int64_t)(0.01 * nb);
        int64_t want = (tok + 63) / 64;
        tu_check(t,
                 gs.ev[0].step == want &&
                     strstr(gs.ev[0].when, cap ? "capped at 70% of the budget" : "base maturity"),
                 "auto (cap %d): step %lld, want %lld; '%s'", cap, (long long)gs.ev[0].step,
                 (long long)want, gs.ev[0].when);
        sp_grow_sched_free(&gs);
        sp_cfg_free(&c);
    }
    /* shares outside (0, 1), and other text, are refused naming the key */
    const char *bad[] = {"1.5", "0.0", "100%", "-0.5", "0%", "5x%"};
    for (int i = 0; i < 6; i++) {
        char text[512];
        snprintf(text, sizeof text, "%sgrowth:\n  - {at_tokens: '%s', op: stack}\n", base, bad[i]);
        sp_config c;
        sp_err err = {0};
        int rc = load(&c, text, &err);
        tu_check(t, rc && err.code == SP_EINPUT && strstr(err.msg, "growth[0].at_tokens"),
                 "at_tokens %s: %s", bad[i], err.msg);
        sp_cfg_free(&c); /* a failed load leaves the struct initialised, to be freed */
    }
}

int main(void) {
    tu_ctx t = {0};
    test_extremes(&t);
    test_timing_fit(&t);
    test_list(&t);
    test_when(&t);
    test_vcycle(&t);
    return tu_finish(&t, "grow_schedule");
}
