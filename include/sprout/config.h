/* sprout run configuration: one YAML file, every key optional, plus --set overrides.
 *
 * Every key, its type, default and range live in ONE table in src/io/config.c; the libcyaml
 * schema, the --set lookup, the defaults and the per-key range checks are all derived from it,
 * so adding a key is one table row (plus the struct member). docs/config.md lists the keys.
 *
 * Lifecycle:
 *     sp_config cfg;
 *     if (sp_cfg_load(&cfg, "configs/tiny.yaml", &err)) ...   (defaults, then the file)
 *     if (sp_cfg_set(&cfg, "train.lr=3e-4", &err)) ...         (any number of overrides)
 *     if (sp_cfg_validate(&cfg, &err)) ...                     (cross-key checks)
 *     sp_cfg_free(&cfg);
 *
 * sp_cfg_load / sp_cfg_load_text / sp_cfg_defaults initialise the whole struct (the previous
 * contents are ignored, not freed), and leave it freeable even when they fail. Callers may
 * assign scalar fields directly afterwards; string fields are owned by the config (malloc'd)
 * and change only through sp_cfg_set.
 *
 * Errors are SP_EINPUT with a one-line message naming the source, the full key path and the
 * line when libcyaml reports it, e.g.
 *     configs/x.yaml:3: unknown key 'model.d_modle'
 *     configs/x.yaml:2: model.n_layer: invalid value 'many' (expected an integer)
 *     configs/x.yaml: model.n_head: 7 does not divide model.d_model = 384
 * Per-key range checks run as values arrive (load, set) and again in sp_cfg_validate, which
 * also checks the relations between keys. */
#ifndef SPROUT_CONFIG_H
#define SPROUT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/core.h"

/* One entry of the `growth:` list. Parsed and validated here; applied by the growth code. */
typedef struct sp_growth_event {
    int64_t at_step;      /* -1 = unset */
    int64_t at_tokens;    /* -1 = unset; `auto` -2; a share of the budget: sp_cfg_share() */
    char *op;             /* non-empty */
    int64_t factor;       /* default 2; `auto` maps to -2 */
    char *optimizer;      /* copy|reset, default copy */
    char *lr;             /* continue|rewarm, default continue */
    int64_t rewarm_steps; /* default 0; a share of train.steps: sp_cfg_share() */
    char *pipeline;       /* "auto" or a positive integer, default "auto" */
    int64_t ramp_steps;   /* op random: steps over which new blocks fade in, default 100 */
    double noise;         /* op widen_direct: std of the uneven split, default 0.01 */
    double maturity;     /* at_tokens auto below the growth-timing fit: tokens per base parameter */
    int64_t learn_steps; /* op learn: steps of data the expansion trains on, default 100 */
    double learn_lr;     /* op learn: Adam's learning rate on the coefficients, default 1e-3 */
} sp_growth_event;

#define SP_CFG_UNSET (-1) /* at_step / at_tokens not given */
/* At most this many growth events. Each one relays the model out, and real schedules have a
 * handful (G_stack: one or two; a V-cycle of 8 levels: 14); a list of thousands is a mistake
 * that would otherwise spend start-up in them. */
#define SP_CFG_MAX_EVENTS 64
/* Longest path value (data.*, run.out), in bytes: PATH_MAX (4096) less room for the names sprout
 * appends inside run.out (/ckpt/step_XXXXXXXX.h5.tmp: 26) and for the MPI-IO library (Open MPI
 * 4.1's ROMIO fails to open, then crashes on, a name of PATH_MAX - 1 characters; 64 spare). */
#define SP_CFG_PATH_MAX 4000
#define SP_CFG_AUTO     (-2) /* `auto` for at_tokens / factor */
/* at_tokens given as a share of the token budget ("0.5" or "50%") is kept in the same int64
 * field, in millionths below SP_CFG_SHARE0: every value there is a share, every value >= 0 a
 * token count. sp_cfg_share() gives the share (0 < x < 1), or -1 for anything else. */
#define SP_CFG_SHARE0 (-((int64_t)1 << 40))
double sp_cfg_share(int64_t at_tokens);

typedef struct sp_config {
    struct {
        int64_t vocab, seq_len, d_model, n_head, d_ff, n_layer; /* d_ff 0 = 4*d_model */
        char *block; /* the block kind: a row of the kind table (src/model/kinds.c) */
        double norm_eps, rope_theta; /* kinds with these settings (llama) */
        char *tie_head;              /* auto|true|false; auto: the kind's (gpt2 tied, llama not) */
    } model;
    struct {
        char *train, *val; /* token files (see docs/data.md) */
    } data;
    struct {
        int64_t steps, global_batch, micro_batch;
        uint64_t seed;
        double lr, min_lr;
        int64_t warmup_steps;
        char *schedule;        /* cosine|constant|linear|wsd */
        double decay_fraction; /* wsd: share of the steps spent decaying */
        char *decay_shape;     /* wsd: linear|sqrt */
        int64_t decay_start;   /* wsd: first decay step; -1 = from decay_fraction */
        double weight_decay, beta1, beta2, eps, grad_clip; /* grad_clip 0 = off */
        char *subnet;    /* none|apollo|raptr: the network each step runs (docs/growth.md) */
        char *objective; /* the loss: a row of the objective table (src/model/objectives.c) */
    } train;
    struct {
        int64_t every;   /* 0 = no evaluation */
        int64_t windows; /* the validation set: the first `windows` windows (0 = all) */
        int64_t batches; /* legacy configs: > 0 overrides windows with batches x micro_batch */
    } eval;
    struct {
        char *out; /* default "runs/" + the config's base name */
        int64_t threads, log_every;
        char *precision; /* fp32|bf16: the matrix products (sp_cfg_bf16) */
    } run;
    struct {
        char *pipeline; /* "auto" or a positive integer: see sp_cfg_pipeline() */
        char *schedule; /* 1f1b|gpipe */
        int64_t max_stage_mib;
    } parallel;
    struct {
        int64_t every, keep; /* every 0 = only at the end */
    } checkpoint;
    struct {
        int64_t levels;       /* 0 or 1 = off */
        char *coalesce;       /* per level, comma-separated: width|depth|both */
        int64_t down_steps;   /* steps of each level on the way down; 0 = 5% of train.steps */
        int64_t bottom_steps; /* steps of the smallest level; 0 = 50% of train.steps */
        double alpha;         /* interpolation weight of the de-coalesced model */
        double lr_scale;      /* learning rate of level k: x lr_scale^(k-1) */
    } vcycle;
    struct {
        char *unique;     /* unique-block counts per stage, comma-separated, or auto */
        char *boundaries; /* stage starts as fractions of train.steps, or auto */
        char *sampler;    /* lvps|uniform */
        char *map;        /* extend */
        int64_t depth;    /* > 0: every step at this depth (benchmarks); 0 = drawn */
    } apollo;
    struct {
        char *lengths;    /* path length per stage, comma-separated, or auto */
        char *boundaries; /* stage starts as fractions of train.steps, or auto (equal) */
        char *fixed;      /* blocks always kept: auto (first, last), none, or indices */
        char *mode;       /* bernoulli|exact */
        char *scale;      /* none|inverse_p */
        int64_t full_warmup_steps;
    } raptr;
    sp_growth_event *growth;
    unsigned growth_count;
    /* Where the values came from (the path or name given to load), used as the prefix of error
     * messages, including those of sp_cfg_validate; NULL after sp_cfg_defaults alone. Not a
     * config key: sp_cfg_to_yaml does not write it. */
    char *source;
} sp_config;

/* Fills every default from the schema table. cfg must be sp_cfg_free'd. run.out = runs/default */
void sp_cfg_defaults(sp_config *cfg);
/* Defaults, then the file at path. Missing keys keep their defaults; run.out defaults to
 * "runs/" + the file's base name without extension. */
int sp_cfg_load(sp_config *cfg, const char *path, sp_err *err);
/* As sp_cfg_load, from text (len bytes, need not be NUL-terminated); name is used for messages
 * and the run.out default. */
int sp_cfg_load_text(sp_config *cfg, const char *text, size_t len, const char *name, sp_err *err);
/* One override "dotted.key=value", the value parsed with the key's type and range-checked, e.g.
 * "train.lr=3e-4", "parallel.pipeline=2", "data.train=x.bin". Any scalar key can be set. For the
 * growth list only "growth=[]" (clear it) is supported; events are edited in the file. */
int sp_cfg_set(sp_config *cfg, const char *assignment, sp_err *err);
/* Every per-key range and the relations between keys (see docs/config.md). */
int sp_cfg_validate(const sp_config *cfg, sp_err *err);
/* The full resolved config (every key, growth included) as YAML: malloc'd, NUL-terminated, *len
 * excludes the NUL. sp_cfg_load_text of it gives back an equal config. */
int sp_cfg_to_yaml(const sp_config *cfg, char **text, size_t *len, sp_err *err);
/* parallel.pipeline as an int; 0 = auto */
int sp_cfg_pipeline(const sp_config *cfg);
/* run.precision is bf16 */
int sp_cfg_bf16(const sp_config *cfg);
/* model.d_ff, or 4*d_model when it is 0 */
int64_t sp_cfg_d_ff(const sp_config *cfg);
/* the validation set's size in windows (0 = the whole file): eval.windows, or for configs
 * written before it existed eval.batches x train.micro_batch */
int64_t sp_cfg_eval_windows(const sp_config *cfg);
/* s as it may appear in a one-line message: cut to 48 bytes ("..." appended), control characters
 * escaped as \xNN; written to buf (n >= 200 holds any result), returned. */
const char *sp_cfg_quote(const char *s, char *buf, size_t n);
/* Frees the strings and the growth list and zeroes cfg. Safe on a zeroed struct, twice, and after
 * a failed load. */
void sp_cfg_free(sp_config *cfg);

#ifdef SP_CFG_INTERNAL
/* ---- Internal: the key table shared by src/io/config.c (table, defaults, load) and
 * src/io/config_set.c (--set, validation, YAML output). Not for other callers. ---- */
/* key value types; all numbers are 64-bit in sp_config */
enum sp_cfg_type {
    CFG_INT,     /* int64_t */
    CFG_U64,     /* uint64_t */
    CFG_DBL,     /* double, finite */
    CFG_STR,     /* char *, non-empty, optionally one of `choices` */
    CFG_AUTOINT, /* int64_t; `auto` = SP_CFG_AUTO (YAML string, parsed here) */
    CFG_AUTOSTR, /* char *: "auto" or an integer in [lo, hi] */
    CFG_TOKENS,  /* int64_t: a token count in [lo, hi], `auto`, or a share of the budget */
    CFG_STEPS,   /* int64_t: a step count in [lo, hi] or a share of the run's steps */
};

/* One config key. Numeric ranges are [lo, hi] (open ends by flag); hi = HUGE_VAL = no bound,
 * which only doubles and uint64 may have. For strings, hi is the longest value in bytes. */
typedef struct sp_cfg_key {
    const char *sect, *name;
    unsigned char type, lo_open, hi_open;
    size_t off;      /* in sp_config, or in sp_growth_event for sp_cfg_ev_keys */
    const char *def; /* default as text, parsed like a --set value; NULL = computed */
    double lo, hi;
    const char *choices; /* "a|b|c" for strings restricted to a set, else NULL */
} sp_cfg_key;

/* a value in flight between text / libcyaml and the struct */
typedef struct sp_cfg_val {
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
} sp_cfg_val;

extern const sp_cfg_key sp_cfg_keys[], sp_cfg_ev_keys[]; /* config keys; growth event keys */
extern const size_t sp_cfg_nkeys, sp_cfg_nev;
/* the row of "sect.name" or "growth[i].name"; NULL when unknown */
const sp_cfg_key *sp_cfg_lookup(const char *path);
/* text -> value with k's type, range-checked; messages start with path */
int sp_cfg_parse_val(const sp_cfg_key *k, const char *text, sp_cfg_val *v, const char *path,
                     sp_err *err);
int sp_cfg_check_val(const sp_cfg_key *k, const sp_cfg_val *v, const char *path, sp_err *err);
/* struct member <-> value; put copies strings (freeing the old one) */
void sp_cfg_get_val(const void *base, const sp_cfg_key *k, sp_cfg_val *v);
int sp_cfg_put_val(void *base, const sp_cfg_key *k, const sp_cfg_val *v, sp_err *err);
const char *sp_cfg_type_desc(const sp_cfg_key *k);

void sp_cfg_free_growth(sp_config *cfg);
#endif

#endif
