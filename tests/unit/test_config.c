/* Config: defaults, loading, error messages, --set, validation, YAML round trip, shipped configs.
 * Temporary YAML files live in a mkdtemp directory under /tmp, removed at the end. */
#define SP_CFG_INTERNAL
#include "sprout/config.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

/* writes text to tmpdir/name and returns the path (static buffer) */
static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
    return path;
}

static int has(const char *msg, const char *part) {
    return strstr(msg, part) != NULL;
}

static int str_eq(const char *a, const char *b) {
    return a && b ? !strcmp(a, b) : a == b;
}

/* every key, field by field (not memcmp: strings are pointers) */
static int cfg_equal(const sp_config *a, const sp_config *b) {
    int eq = !memcmp(&a->model, &b->model, offsetof(__typeof__(a->model), block)) &&
             str_eq(a->model.block, b->model.block) &&
             str_eq(a->model.tie_head, b->model.tie_head) &&
             a->model.norm_eps == b->model.norm_eps && a->model.rope_theta == b->model.rope_theta &&
             str_eq(a->train.objective, b->train.objective) &&
             str_eq(a->data.train, b->data.train) && str_eq(a->data.val, b->data.val) &&
             a->train.steps == b->train.steps && a->train.global_batch == b->train.global_batch &&
             a->train.micro_batch == b->train.micro_batch && a->train.seed == b->train.seed &&
             a->train.lr == b->train.lr && a->train.min_lr == b->train.min_lr &&
             a->train.warmup_steps == b->train.warmup_steps &&
             str_eq(a->train.schedule, b->train.schedule) &&
             a->train.decay_fraction == b->train.decay_fraction &&
             str_eq(a->train.decay_shape, b->train.decay_shape) &&
             a->train.decay_start == b->train.decay_start &&
             a->train.weight_decay == b->train.weight_decay && a->train.beta1 == b->train.beta1 &&
             a->train.beta2 == b->train.beta2 && a->train.eps == b->train.eps &&
             a->train.grad_clip == b->train.grad_clip && a->eval.every == b->eval.every &&
             a->eval.batches == b->eval.batches && a->eval.windows == b->eval.windows &&
             str_eq(a->run.out, b->run.out) && a->run.threads == b->run.threads &&
             a->run.log_every == b->run.log_every && str_eq(a->run.precision, b->run.precision) &&
             str_eq(a->parallel.pipeline, b->parallel.pipeline) &&
             str_eq(a->parallel.schedule, b->parallel.schedule) &&
             a->parallel.max_stage_mib == b->parallel.max_stage_mib &&
             a->checkpoint.every == b->checkpoint.every &&
             a->checkpoint.keep == b->checkpoint.keep && a->growth_count == b->growth_count;
    for (unsigned i = 0; eq && i < a->growth_count; i++) {
        const sp_growth_event *x = &a->growth[i], *y = &b->growth[i];
        eq = x->at_step == y->at_step && x->at_tokens == y->at_tokens && str_eq(x->op, y->op) &&
             x->factor == y->factor && str_eq(x->optimizer, y->optimizer) && str_eq(x->lr, y->lr) &&
             x->rewarm_steps == y->rewarm_steps && str_eq(x->pipeline, y->pipeline) &&
             x->ramp_steps == y->ramp_steps;
    }
    return eq;
}

/* loads text as name; returns the code and leaves the message in err */
static int load(sp_config *cfg, const char *name, const char *text, sp_err *err) {
    memset(err, 0, sizeof *err);
    return sp_cfg_load_text(cfg, text, strlen(text), name, err);
}

/* expects text (named x.yaml) to fail loading with SP_EINPUT and a message containing all parts */
static void expect_load_error(tu_ctx *t, const char *text, const char *p1, const char *p2) {
    sp_config c;
    sp_err err;
    int rc = load(&c, "configs/x.yaml", text, &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, p1) && (!p2 || has(err.msg, p2)),
             "load of [%s]: rc %d, message '%s', wanted '%s' and '%s'", text, rc, err.msg, p1,
             p2 ? p2 : "");
    sp_cfg_free(&c);
}

/* expects text to load but fail sp_cfg_validate, naming the key */
static void expect_invalid(tu_ctx *t, const char *text, const char *p1, const char *p2) {
    sp_config c;
    sp_err err;
    int rc = load(&c, "configs/x.yaml", text, &err);
    if (!rc) rc = sp_cfg_validate(&c, &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, p1) && (!p2 || has(err.msg, p2)),
             "[%s]: rc %d, message '%s', wanted '%s' and '%s'", text, rc, err.msg, p1,
             p2 ? p2 : "");
    sp_cfg_free(&c);
}

static void test_defaults(tu_ctx *t) {
    sp_config c;
    sp_err err = {0};
    sp_cfg_defaults(&c);
    tu_check(t,
             c.model.vocab == 256 && c.model.seq_len == 256 && c.model.d_model == 384 &&
                 c.model.n_head == 6 && c.model.d_ff == 0 && c.model.n_layer == 6,
             "model defaults");
    tu_check(t, sp_cfg_d_ff(&c) == 4 * 384, "d_ff 0 means 4*d_model, got %lld",
             (long long)sp_cfg_d_ff(&c));
    tu_check(t,
             !strcmp(c.data.train, "data/brown/train.bin") &&
                 !strcmp(c.data.val, "data/brown/val.bin"),
             "data defaults");
    tu_check(t,
             c.train.steps == 1000 && c.train.global_batch == 8 && c.train.micro_batch == 8 &&
                 c.train.seed == 1337 && c.train.lr == 6.0e-4 && c.train.min_lr == 6.0e-5 &&
                 c.train.warmup_steps == 100 && !strcmp(c.train.schedule, "cosine") &&
                 c.train.weight_decay == 0.1 && c.train.beta1 == 0.9 && c.train.beta2 == 0.95 &&
                 c.train.eps == 1.0e-8 && c.train.grad_clip == 1.0,
             "train defaults");
    tu_check(t, c.eval.every == 100 && c.eval.windows == 128 && c.eval.batches == 0,
             "eval defaults");
    tu_check(t, !strcmp(c.run.out, "runs/default") && c.run.threads == 1 && c.run.log_every == 10,
             "run defaults (out '%s')", c.run.out);
    tu_check(t,
             !strcmp(c.parallel.pipeline, "auto") && sp_cfg_pipeline(&c) == 0 &&
                 !strcmp(c.parallel.schedule, "1f1b") && c.parallel.max_stage_mib == 1024,
             "parallel defaults");
    tu_check(t, c.checkpoint.every == 0 && c.checkpoint.keep == 3, "checkpoint defaults");
    tu_check(t, c.growth == NULL && c.growth_count == 0, "growth default empty");
    tu_check(t, sp_cfg_validate(&c, &err) == SP_OK, "defaults validate: %s", err.msg);
    sp_cfg_free(&c);
    sp_cfg_free(&c); /* twice is safe */
    sp_config z;
    memset(&z, 0, sizeof z);
    sp_cfg_free(&z); /* a zeroed struct is safe */
}

static void test_load(tu_ctx *t) {
    sp_config c, d;
    sp_err err = {0};
    /* a full file, every section */
    const char *full = "model: {vocab: 100, seq_len: 64, d_model: 96, n_head: 3, d_ff: 200, "
                       "n_layer: 2}\n"
                       "data:\n  train: a/t.bin\n  val: \"a/v.bin\"\n"
                       "train:\n  steps: 50\n  global_batch: 16\n  micro_batch: 4\n  seed: 9\n"
                       "  lr: 1e-3\n  min_lr: 0\n  warmup_steps: 5\n  schedule: linear\n"
                       "  weight_decay: 0\n  beta1: 0.8\n  beta2: 0.99\n  eps: 1e-6\n"
                       "  grad_clip: 0\n"
                       "eval: {every: 0, batches: 2}\n"
                       "run: {out: /tmp/o, threads: 4, log_every: 1}\n"
                       "parallel: {pipeline: 2, schedule: gpipe, max_stage_mib: 64}\n"
                       "checkpoint: {every: 10, keep: 1}\n"
                       "growth: []\n";
    const char *path = write_file("full.yaml", full);
    int rc = sp_cfg_load(&c, path, &err);
    tu_check(t, rc == SP_OK, "full file loads: %s", err.msg);
    tu_check(t,
             c.model.vocab == 100 && c.model.d_ff == 200 && sp_cfg_d_ff(&c) == 200 &&
                 !strcmp(c.data.val, "a/v.bin") && c.train.lr == 1e-3 && c.train.min_lr == 0 &&
                 !strcmp(c.train.schedule, "linear") && c.train.seed == 9 && c.eval.every == 0 &&
                 !strcmp(c.run.out, "/tmp/o") && sp_cfg_pipeline(&c) == 2 &&
                 !strcmp(c.parallel.schedule, "gpipe") && c.checkpoint.keep == 1 &&
                 c.growth_count == 0,
             "full file values");
    tu_check(t, sp_cfg_validate(&c, &err) == SP_OK, "full file validates: %s", err.msg);
    sp_cfg_free(&c);

    /* partial mappings keep the other defaults; run.out follows the file name */
    path = write_file("part.yaml", "# only two keys\nmodel:\n  n_layer: 3\ntrain:\n  lr: 2e-4\n");
    rc = sp_cfg_load(&c, path, &err);
    sp_cfg_defaults(&d);
    d.model.n_layer = 3, d.train.lr = 2e-4;
    tu_check(t, rc == SP_OK && c.model.n_layer == 3 && c.train.lr == 2e-4, "partial file loads");
    tu_check(t,
             c.model.d_model == 384 && c.train.min_lr == 6e-5 && c.eval.windows == 128 &&
                 !strcmp(c.train.schedule, "cosine"),
             "partial file keeps defaults");
    tu_check(t, !strcmp(c.run.out, "runs/part"), "run.out from the file name: '%s'", c.run.out);
    free(d.run.out), d.run.out = strdup("runs/part");
    tu_check(t, cfg_equal(&c, &d), "partial file = defaults + two keys");
    sp_cfg_free(&c), sp_cfg_free(&d);

    /* an empty file is all defaults */
    rc = load(&c, "e.yaml", "# nothing\n", &err);
    tu_check(t, rc == SP_OK && c.model.d_model == 384 && !strcmp(c.run.out, "runs/e"),
             "empty file: %s", err.msg);
    sp_cfg_free(&c);

    /* missing file */
    snprintf(err.msg, sizeof err.msg, "-");
    rc = sp_cfg_load(&c, "/nonexistent/dir/cfg.yaml", &err);
    tu_check(t,
             rc == SP_EINPUT && !strcmp(err.msg, "/nonexistent/dir/cfg.yaml: No such file or "
                                                 "directory"),
             "missing file: rc %d '%s'", rc, err.msg);
    sp_cfg_free(&c);
}

static void test_errors(tu_ctx *t) {
    /* unknown key: full path and the key's own line (libcyaml reports the previous event's) */
    expect_load_error(t, "model:\n  n_layer: 2\n  d_modle: 3\n",
                      "configs/x.yaml:3: unknown key 'model.d_modle'", NULL);
    expect_load_error(t, "train: {lr: 1}\nmodle: {}\n", "configs/x.yaml:2: unknown key 'modle'",
                      NULL);
    expect_load_error(t, "growth:\n  - op: widen\n    at_step: 1\n    bogus: 1\n",
                      "x.yaml:4: unknown key 'growth[0].bogus'", NULL);
    /* wrong types name the key, the value and the expected type */
    expect_load_error(t, "model:\n  n_layer: many\n",
                      "configs/x.yaml:2: model.n_layer: invalid value 'many' (expected an integer)",
                      NULL);
    expect_load_error(t, "train:\n  seed: 1\n  lr: fast\n", "x.yaml:3: train.lr: invalid value",
                      "expected a number");
    expect_load_error(t, "train:\n  seed: -3\n",
                      "x.yaml:2: train.seed: invalid value '-3' (expected a non-negative integer)",
                      NULL);
    /* values libcyaml's own parsers would truncate or misread are rejected */
    expect_load_error(t, "model:\n  d_model: 12abc\n",
                      "x.yaml:2: model.d_model: invalid value '12abc'", NULL);
    expect_load_error(t, "model: {d_model: 1.5}\n", "model.d_model: invalid value '1.5'", NULL);
    expect_load_error(t, "model: {d_model: 0x20}\n", "model.d_model: invalid value '0x20'", NULL);
    expect_load_error(t, "train:\n  seed: 1\n\n  lr: 0.1abc\n", "x.yaml:4: train.lr: invalid value",
                      NULL);
    expect_load_error(t, "eval: [1, 2]\n", "x.yaml:1: eval: expected a mapping, got a list", NULL);
    expect_load_error(t, "model:\n  vocab: [1]\n", "model.vocab: expected an integer", NULL);
    expect_load_error(t, "model: {n_layer: 1\n", "x.yaml", "YAML syntax error");
    expect_load_error(t, "model:\n  vocab: 1\nmodel:\n  vocab: 2\n", "duplicate key 'model'", NULL);
    expect_load_error(t, "- 1\n", "x.yaml: expected a mapping of sections", NULL);
    /* per-key ranges at load, with the line found in the text */
    expect_load_error(t, "train:\n  steps: 10\n  lr: 0\n",
                      "configs/x.yaml:3: train.lr: 0 is out of range (must be > 0)", NULL);
    expect_load_error(t, "model:\n  vocab: 70000\n", "x.yaml:2: model.vocab: 70000 is out of range",
                      "<= 65536");
    expect_load_error(t, "train: {schedule: cosin}\n",
                      "x.yaml:1: train.schedule: invalid value 'cosin' (expected one of cosine, "
                      "constant, linear, wsd)",
                      NULL);
    expect_load_error(t, "parallel: {pipeline: many}\n", "parallel.pipeline: invalid value 'many'",
                      "auto or a positive integer");
    expect_load_error(t, "run: {threads: 300}\n", "run.threads: 300 is out of range", NULL);
    expect_load_error(t, "train: {beta2: 1.0}\n", "train.beta2: 1 is out of range", "< 1");
    expect_load_error(t, "data: {train: \"\"}\n", "data.train: must not be empty", NULL);
    /* relations between keys: sp_cfg_validate, prefixed with the source */
    expect_invalid(t, "model: {n_head: 7}\n",
                   "configs/x.yaml: model.n_head: 7 does not divide model.d_model = 384", NULL);
    expect_invalid(t, "train: {lr: 1e-4, min_lr: 1e-3}\n", "configs/x.yaml: train.min_lr",
                   "train.lr");
    expect_invalid(t, "train: {steps: 10, warmup_steps: 20}\n", "train.warmup_steps: 20", NULL);
    expect_invalid(t, "train: {global_batch: 12, micro_batch: 8}\n", "train.global_batch: 12",
                   "train.micro_batch");
    /* validate also rechecks ranges of fields assigned directly */
    sp_config c;
    sp_err err = {0};
    sp_cfg_defaults(&c);
    c.train.lr = -1;
    int rc = sp_cfg_validate(&c, &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "train.lr: -1 is out of range"),
             "direct lr = -1: '%s'", err.msg);
    c.train.lr = 1e-3, c.model.n_head = 0;
    rc = sp_cfg_validate(&c, &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "model.n_head: 0 is out of range"),
             "direct n_head = 0 (no division by zero): '%s'", err.msg);
    sp_cfg_free(&c);
    /* a failed load leaves a freeable config (ASan checks the leak) */
    rc = load(&c, "y.yaml", "data: {train: x.bin}\nmodel: {vocab: zz}\n", &err);
    tu_check(t, rc == SP_EINPUT && c.run.out, "failed load leaves defaults");
    sp_cfg_free(&c);
}

/* Values that used to be truncated, wrapped or echoed whole: every integer key is bounded (so a
 * value above 2^31 is refused, not cut to its low bits), strings are bounded, UTF-8 and free of
 * control characters, floats finite, growth lists short and without no-op events. */
static void test_hostile(tu_ctx *t) {
    const sp_cfg_key *tabs[2] = {sp_cfg_keys, sp_cfg_ev_keys};
    size_t ns[2] = {sp_cfg_nkeys, sp_cfg_nev};
    for (int q = 0; q < 2; q++)
        for (size_t i = 0; i < ns[q]; i++) {
            const sp_cfg_key *k = &tabs[q][i];
            if (k->type == CFG_INT || k->type == CFG_AUTOINT || k->type == CFG_TOKENS ||
                k->type == CFG_STR || k->type == CFG_AUTOSTR)
                tu_check(t, k->hi <= 0x1p62, "%s.%s has no finite upper bound", k->sect, k->name);
            if (k->type == CFG_INT || k->type == CFG_AUTOINT || k->type == CFG_TOKENS) {
                char a[200], path[64];
                sp_config c;
                sp_err err = {0};
                int rc = load(&c, "h.yaml", "growth:\n  - {at_step: 1, op: stack}\n", &err);
                snprintf(path, sizeof path, q ? "growth[0].%s" : "%s.%s", q ? k->name : k->sect,
                         k->name);
                snprintf(a, sizeof a, "%s=%s", path,
                         k->hi < 4294967328.0 ? "4294967328" : "9223372036854775807");
                rc = rc ? rc : sp_cfg_set(&c, a, &err);
                tu_check(t, rc == SP_EINPUT && has(err.msg, path) && has(err.msg, "out of range"),
                         "%s: '%s'", a, err.msg);
                sp_cfg_free(&c);
            }
        }
    sp_config c;
    sp_err err = {0};
    sp_cfg_defaults(&c);
    int rc = sp_cfg_set(&c, "run.out=runs/\xc3\xa9t\xc3\xa9", &err);
    tu_check(t, rc == SP_OK, "UTF-8 run.out: %s", err.msg);
    const char *bad_utf8[] = {"run.out=a\xff", "run.out=\xc0\xaf", "run.out=\xed\xa0\x80",
                              "run.out=\xe2\x82", "data.val=\xf4\x90\x80\x80"};
    for (int i = 0; i < 5; i++) {
        rc = sp_cfg_set(&c, bad_utf8[i], &err);
        tu_check(t, rc == SP_EINPUT && has(err.msg, "is not valid UTF-8"), "%d: '%s'", i, err.msg);
    }
    rc = sp_cfg_set(&c, "run.out=a\nb", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "run.out: control character 0x0a at offset 1"),
             "newline: '%s'", err.msg);
    const char *nonfinite[] = {"train.lr=nan", "train.lr=inf", "train.eps=-inf",
                               "vcycle.alpha=nan"};
    for (int i = 0; i < 4; i++) {
        rc = sp_cfg_set(&c, nonfinite[i], &err);
        tu_check(t, rc == SP_EINPUT && has(err.msg, "is not a finite number"), "%s: '%s'",
                 nonfinite[i], err.msg);
    }
    rc = sp_cfg_set(&c, "train.lr=1e999", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "train.lr: invalid value '1e999'"), "1e999: '%s'",
             err.msg);
    /* a 10 MB value: named by key and length, not echoed */
    size_t n = 10u << 20;
    char *big = malloc(n + 32);
    memcpy(big, "data.train=", 11);
    memset(big + 11, 'x', n);
    big[11 + n] = 0;
    rc = sp_cfg_set(&c, big, &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "data.train: the value is 10485760 bytes long"),
             "10 MB path: '%s'", err.msg);
    memcpy(big, "train.schedule=", 15);
    rc = sp_cfg_set(&c, big, &err);
    tu_check(t, rc == SP_EINPUT && strlen(err.msg) < 200, "10 MB choice: '%.300s'", err.msg);
    free(big);
    rc = sp_cfg_set(&c, "model.n_layer=1\n2", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "invalid value '1\\x0a2'"), "quoted value: '%s'",
             err.msg);
    /* steps x tokens per step beyond 2^63 */
    c.train.steps = c.train.global_batch = c.train.micro_batch = c.model.seq_len = 2000000000;
    rc = sp_cfg_validate(&c, &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "exceed 2^63 tokens"), "token overflow: '%s'",
             err.msg);
    sp_cfg_free(&c);
    /* growth lists: factor 1 changes nothing; more than SP_CFG_MAX_EVENTS is refused */
    expect_load_error(t, "growth:\n  - {at_step: 1, op: stack, factor: 1}\n",
                      "x.yaml:2: growth[0].factor: 1 is out of range (must be >= 2", NULL);
    char *many = malloc(80 * (SP_CFG_MAX_EVENTS + 1) + 16);
    size_t w = (size_t)sprintf(many, "growth:\n");
    for (int e = 0; e <= SP_CFG_MAX_EVENTS; e++)
        w += (size_t)sprintf(many + w, "  - {at_step: %d, op: stack}\n", e);
    expect_load_error(
        t, many, "configs/x.yaml: growth: more than 64 events; at most 64 are supported", NULL);
    free(many);
}

static void test_set(tu_ctx *t) {
    sp_config c;
    sp_err err = {0};
    sp_cfg_defaults(&c);
    int rc = sp_cfg_set(&c, "train.lr=3e-4", &err) || sp_cfg_set(&c, "model.n_layer=12", &err) ||
             sp_cfg_set(&c, "data.train=/x/y:z.bin", &err) ||
             sp_cfg_set(&c, "parallel.pipeline=4", &err) ||
             sp_cfg_set(&c, "train.seed=18446744073709551615", &err) ||
             sp_cfg_set(&c, "train.schedule=constant", &err);
    tu_check(t, rc == SP_OK, "--set of valid values: %s", err.msg);
    tu_check(t,
             c.train.lr == 3e-4 && c.model.n_layer == 12 && !strcmp(c.data.train, "/x/y:z.bin") &&
                 sp_cfg_pipeline(&c) == 4 && c.train.seed == UINT64_MAX &&
                 !strcmp(c.train.schedule, "constant"),
             "--set values applied");
    rc = sp_cfg_set(&c, "model.d_modle=3", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "unknown key 'model.d_modle'"),
             "--set unknown path: '%s'", err.msg);
    rc = sp_cfg_set(&c, "model.n_layer=many", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "model.n_layer: invalid value 'many'"),
             "--set bad int: '%s'", err.msg);
    rc = sp_cfg_set(&c, "train.lr=1e-3x", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "train.lr: invalid value '1e-3x'"),
             "--set bad double: '%s'", err.msg);
    rc = sp_cfg_set(&c, "train.lr=0", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "train.lr: 0 is out of range"),
             "--set out of range: '%s'", err.msg);
    tu_check(t, c.train.lr == 3e-4, "a rejected --set keeps the old value");
    rc = sp_cfg_set(&c, "train.schedule=step", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "train.schedule: invalid value 'step'"),
             "--set bad choice: '%s'", err.msg);
    rc = sp_cfg_set(&c, "train.seed=-1", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "train.seed"), "--set negative seed: '%s'",
             err.msg);
    rc = sp_cfg_set(&c, "model", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "key.path=value"), "--set without '=': '%s'",
             err.msg);
    rc = sp_cfg_set(&c, "growth[0].op=widen", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "growth[0].op: the config has 0 growth event"),
             "--set growth edit without events: '%s'", err.msg);
    sp_cfg_free(&c);

    rc = load(&c, "g.yaml", "growth:\n  - {at_step: 5, op: widen}\n", &err);
    tu_check(t, rc == SP_OK && c.growth_count == 1, "one growth event: %s", err.msg);
    rc = sp_cfg_set(&c, "growth[0].pipeline=4", &err);
    tu_check(t, rc == SP_OK && !strcmp(c.growth[0].pipeline, "4"), "--set growth[0].pipeline: %s",
             err.msg);
    rc = sp_cfg_set(&c, "growth[0].at_step=7", &err);
    tu_check(t, rc == SP_OK && c.growth[0].at_step == 7, "--set growth[0].at_step: %s", err.msg);
    rc = sp_cfg_set(&c, "growth[1].op=zero", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "1 growth event"),
             "--set growth[1] out of range: '%s'", err.msg);
    rc = sp_cfg_set(&c, "growth[0].optimizer=keep", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "growth[0].optimizer"),
             "--set bad event value: '%s'", err.msg);
    rc = sp_cfg_set(&c, "growth.op=zero", &err);
    tu_check(t, rc == SP_EINPUT && has(err.msg, "growth[i].key=value"), "--set growth.op: '%s'",
             err.msg);
    rc = sp_cfg_set(&c, "growth=[]", &err);
    tu_check(t, rc == SP_OK && c.growth_count == 0 && !c.growth, "--set growth=[] clears");
    sp_cfg_free(&c);
}

static void test_growth(tu_ctx *t) {
    sp_config c;
    sp_err err = {0};
    const char *g = "growth:\n"
                    "  - at_step: 100\n"
                    "    op: widen\n"
                    "  - at_tokens: auto\n"
                    "    op: deepen\n"
                    "    factor: auto\n"
                    "    optimizer: reset\n"
                    "    lr: rewarm\n"
                    "    rewarm_steps: 20\n"
                    "    pipeline: 2\n";
    int rc = load(&c, "g.yaml", g, &err);
    tu_check(t, rc == SP_OK && c.growth_count == 2, "two growth events: %s", err.msg);
    if (c.growth_count == 2) {
        const sp_growth_event *a = &c.growth[0], *b = &c.growth[1];
        tu_check(t,
                 a->at_step == 100 && a->at_tokens == SP_CFG_UNSET && !strcmp(a->op, "widen") &&
                     a->factor == 2 && !strcmp(a->optimizer, "copy") &&
                     !strcmp(a->lr, "continue") && a->rewarm_steps == 0 &&
                     !strcmp(a->pipeline, "auto"),
                 "event 0 with defaults");
        tu_check(t,
                 b->at_step == SP_CFG_UNSET && b->at_tokens == SP_CFG_AUTO &&
                     b->factor == SP_CFG_AUTO && !strcmp(b->optimizer, "reset") &&
                     !strcmp(b->lr, "rewarm") && b->rewarm_steps == 20 && !strcmp(b->pipeline, "2"),
                 "event 1: auto maps to -2");
    }
    tu_check(t, sp_cfg_validate(&c, &err) == SP_OK, "growth validates: %s", err.msg);
    sp_cfg_free(&c);
    expect_invalid(t, "growth:\n  - {op: widen}\n",
                   "growth[0]: exactly one of at_step and at_tokens", NULL);
    expect_invalid(t, "growth:\n  - {op: widen, at_step: 5, at_tokens: 100}\n",
                   "growth[0]: exactly one", NULL);
    expect_invalid(t, "growth:\n  - {at_step: 5}\n", "growth[0].op: must not be empty", NULL);
    expect_invalid(t, "growth:\n  - {at_step: 50, op: a}\n  - {at_step: 10, op: b}\n",
                   "growth[1].at_step: 10 comes before growth[0].at_step = 50", NULL);
    expect_load_error(
        t, "growth:\n  - {at_step: 5, op: a}\n  - {at_step: 6, op: b, lr: warm}\n",
        "x.yaml:3: growth[1].lr: invalid value 'warm' (expected one of continue, rewarm)", NULL);
    /* the line of a bad value in a later event, when earlier events have the key too */
    expect_load_error(
        t,
        "growth:\n  - at_step: 5\n    op: a\n    rewarm_steps: 1\n"
        "  - at_step: 6\n    op: b\n    rewarm_steps: 1\n"
        "  - at_step: 7\n    op: c\n    rewarm_steps: -1\n",
        "x.yaml:10: growth[2].rewarm_steps: -1 is out of range (must be >= 0 and <= 2147483647)",
        NULL);
    expect_load_error(t, "growth:\n  - at_step: 5\n    op: a\n    factor: big\n",
                      "growth[0].factor: invalid value 'big' (expected an integer or auto)", NULL);
    expect_load_error(t, "growth:\n  - at_step: x\n",
                      "x.yaml:2: growth[0].at_step: invalid value 'x'", NULL);
}

static void test_roundtrip(tu_ctx *t) {
    sp_config c, d;
    sp_err err = {0};
    char *y1 = NULL, *y2 = NULL;
    size_t n1 = 0, n2 = 0;
    int rc = load(&c, "r.yaml",
                  "growth:\n  - {at_step: 10, op: widen, factor: 4}\n"
                  "  - {at_tokens: auto, op: deepen, factor: auto, pipeline: 3}\n",
                  &err);
    /* awkward values: non-round doubles, the largest seed, strings YAML would misread */
    rc = rc || sp_cfg_set(&c, "train.lr=0.1", &err) ||
         sp_cfg_set(&c, "train.min_lr=1e-300", &err) ||
         sp_cfg_set(&c, "train.beta2=0.99999999999999989", &err) ||
         sp_cfg_set(&c, "train.seed=18446744073709551615", &err) ||
         sp_cfg_set(&c, "data.train=a: b #c \"q\" \\x", &err) ||
         sp_cfg_set(&c, "run.out=yes", &err) || sp_cfg_set(&c, "data.val=123", &err);
    tu_check(t, rc == SP_OK, "round-trip setup: %s", err.msg);
    c.train.eps = 1.0 / 3.0;
    rc = sp_cfg_to_yaml(&c, &y1, &n1, &err);
    tu_check(t, rc == SP_OK && y1 && n1 == strlen(y1), "to_yaml: %s", err.msg);
    rc = y1 ? load(&d, "r.yaml", y1, &err) : -1;
    tu_check(t, rc == SP_OK, "to_yaml output loads: %s\n%s", err.msg, y1 ? y1 : "");
    tu_check(t, rc == SP_OK && cfg_equal(&c, &d), "load(to_yaml(cfg)) == cfg\n%s", y1 ? y1 : "");
    if (rc == SP_OK) {
        rc = sp_cfg_to_yaml(&d, &y2, &n2, &err);
        tu_check(t, rc == SP_OK && n1 == n2 && !strcmp(y1, y2), "to_yaml is a fixed point");
    }
    if (y1) sp_cfg_free(&d);
    tu_check(t,
             y1 && has(y1, "lr: 0.1\n") && has(y1, "at_tokens: auto") &&
                 has(y1, "checkpoint:\n  every: 0\n  keep: 3\n"),
             "to_yaml writes every key, shortest doubles, auto");
    free(y1), free(y2);
    sp_cfg_free(&c);

    /* the default config, empty growth list */
    sp_cfg_defaults(&c);
    y1 = NULL;
    rc = sp_cfg_to_yaml(&c, &y1, &n1, &err);
    memset(&d, 0, sizeof d);
    rc = rc ? rc : load(&d, "default.yaml", y1, &err);
    tu_check(t, rc == SP_OK && cfg_equal(&c, &d) && has(y1, "growth: []"),
             "defaults round-trip: %s", err.msg);
    free(y1);
    sp_cfg_free(&c), sp_cfg_free(&d);
}

static void test_shipped(tu_ctx *t) {
    const char *src = getenv("SPROUT_SOURCE_DIR");
    if (!src) {
        printf("config: SPROUT_SOURCE_DIR unset, skipping configs/*.yaml\n");
        return;
    }
    const char *names[] = {"tiny", "bench"};
    for (int i = 0; i < 2; i++) {
        char path[512];
        sp_config c;
        sp_err err = {0};
        snprintf(path, sizeof path, "%s/configs/%s.yaml", src, names[i]);
        int rc = sp_cfg_load(&c, path, &err);
        if (!rc) rc = sp_cfg_validate(&c, &err);
        tu_check(t, rc == SP_OK, "%s loads and validates: %s", path, err.msg);
        if (i == 0)
            tu_check(t,
                     c.model.seq_len == 128 && c.model.d_model == 128 && c.model.n_head == 4 &&
                         c.model.n_layer == 4 && c.train.global_batch == 32 &&
                         c.train.micro_batch == 16 && c.train.steps == 1200 && c.train.lr == 2e-3 &&
                         c.train.min_lr == 2e-4 && c.train.warmup_steps == 100 &&
                         !strcmp(c.run.out, "runs/tiny"),
                     "tiny.yaml values");
        else
            tu_check(t,
                     c.model.d_model == 384 && c.model.n_layer == 6 && c.train.steps == 20 &&
                         c.train.warmup_steps == 2 && c.eval.every == 0 &&
                         !strcmp(c.run.out, "runs/bench"),
                     "bench.yaml values");
        sp_cfg_free(&c);
    }
}

int main(void) {
    tu_ctx t = {0};
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sp_test_config_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults(&t);
    test_load(&t);
    test_errors(&t);
    test_set(&t);
    test_hostile(&t);
    test_growth(&t);
    test_roundtrip(&t);
    test_shipped(&t);
    const char *files[] = {"full.yaml", "part.yaml"};
    for (int i = 0; i < 2; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return tu_finish(&t, "config");
}
