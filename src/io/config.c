/* Run configuration: the key table, defaults, and YAML loading through libcyaml. --set,
 * validation and YAML output are in config_set.c.
 *
 * Design: every key is one row of sp_cfg_keys[] (or sp_cfg_ev_keys[] for a growth event). The row
 * gives the key's dotted path, type, place in the struct, default (as text, parsed like a --set
 * value) and range. From it we derive the defaults, the libcyaml schema (built on the stack per
 * load), the --set lookup and the per-key checks, so the four can never disagree.
 *
 * libcyaml loads into a "raw" document whose members are all pointers (NULL = key absent), so
 * absent keys keep their defaults; the values are then parsed, range-checked and copied into
 * sp_config.
 * libcyaml reports the key path and line only through its log callback, as several calls
 * (message, "Backtrace:", one line per nesting level); we collect them and rewrite them into
 * one line. */
#define SP_CFG_INTERNAL
#include "sprout/config.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INF HUGE_VAL
/* Every integer key has a finite upper bound, so that no value is silently truncated where it is
 * used as an int (d_model 4294967328 would otherwise train d_model 32): I32 for counts and sizes,
 * and wider only for keys counted in 64 bits everywhere (at_tokens). unit_config checks it. */
#define I32 2147483647.0
#define I62 4611686018427387904.0
/* path keys: PATH_MAX less room for the names sprout appends inside run.out */
#define PATHLEN ((double)SP_CFG_PATH_MAX)
#define ROW(s, n, off, t, d, lo, hi, lo_open, hi_open, ch)                                         \
    { #s, #n, t, lo_open, hi_open, off, d, lo, hi, ch }
#define KEY(s, n, t, d, lo, hi, lo_open, hi_open, ch)                                              \
    ROW(s, n, offsetof(sp_config, s.n), t, d, lo, hi, lo_open, hi_open, ch)
#define KINT(s, n, d, lo, hi) KEY(s, n, CFG_INT, d, lo, hi, 0, 0, NULL)
#define KU64(s, n, d)         KEY(s, n, CFG_U64, d, 0, INF, 0, 0, NULL)
#define KDBL(s, n, d, lo, hi, lo_open, hi_open)                                                    \
    KEY(s, n, CFG_DBL, d, lo, hi, lo_open, hi_open, NULL)
/* strings: [lo, hi] bounds the length in bytes */
#define KSTR(s, n, d, hi, ch) KEY(s, n, CFG_STR, d, 0, hi, 0, 0, ch)
#define KASTR(s, n, d, hi)    KEY(s, n, CFG_AUTOSTR, d, 1, hi, 0, 0, NULL)

/* Rows of one section must be adjacent: each section becomes one libcyaml mapping. */
const sp_cfg_key sp_cfg_keys[] = {
    KINT(model, vocab, "256", 1, 65536),
    KINT(model, seq_len, "256", 1, I32),
    KINT(model, d_model, "384", 1, I32),
    KINT(model, n_head, "6", 1, I32),
    KINT(model, d_ff, "0", 0, I32), /* 0 = 4*d_model */
    KINT(model, n_layer, "6", 1, I32),
    KSTR(model, block, "gpt2", 64, NULL),            /* the kind table: src/model/kinds.c */
    KDBL(model, norm_eps, "0", 0, 1, 0, 1),          /* 0: the kind's (llama 1e-5, bert 1e-12) */
    KDBL(model, rope_theta, "10000", 1, 1e30, 1, 1), /* llama: rotary base */
    KSTR(model, tie_head, "auto", 64, "auto|true|false"),
    KSTR(data, train, "data/brown/train.bin", PATHLEN, NULL),
    KSTR(data, val, "data/brown/val.bin", PATHLEN, NULL),
    KINT(train, steps, "1000", 1, I32),
    KINT(train, global_batch, "8", 1, I32),
    KINT(train, micro_batch, "8", 1, I32),
    KU64(train, seed, "1337"),
    KDBL(train, lr, "6.0e-4", 0, INF, 1, 0),
    KDBL(train, min_lr, "6.0e-5", 0, INF, 0, 0),
    KINT(train, warmup_steps, "100", 0, I32),
    KSTR(train, schedule, "cosine", 64, "cosine|constant|linear|wsd"),
    KDBL(train, decay_fraction, "0.2", 0, 1, 0, 0), /* wsd */
    KSTR(train, decay_shape, "linear", 64, "linear|sqrt"),
    KINT(train, decay_start, "-1", -1, I32), /* wsd: -1 = steps - decay_fraction * steps */
    KDBL(train, weight_decay, "0.1", 0, INF, 0, 0),
    KDBL(train, beta1, "0.9", 0, 1, 0, 1),
    KDBL(train, beta2, "0.95", 0, 1, 0, 1),
    KDBL(train, eps, "1.0e-8", 0, INF, 1, 0),
    KDBL(train, grad_clip, "1.0", 0, INF, 0, 0), /* 0 = off */
    KSTR(train, subnet, "none", 64, NULL),       /* the method table: src/growth/subnet.c */
    KSTR(train, objective, "causal", 64, NULL),  /* the objective table: src/model/objectives.c */
    KINT(eval, every, "100", 0, I32),            /* 0 = never */
    KINT(eval, windows, "128", 0, I32),          /* 0 = every whole window of data.val */
    KINT(eval, batches, "0", 0, I32),    /* legacy: > 0 means batches x micro_batch windows */
    KSTR(run, out, NULL, PATHLEN, NULL), /* default computed from the config's name: cfg_reset */
    KINT(run, threads, "1", 1, 256),
    KSTR(run, precision, "fp32", 64, "fp32|bf16"),
    KINT(run, log_every, "10", 1, I32),
    KASTR(parallel, pipeline, "auto", 65536),
    KSTR(parallel, schedule, "1f1b", 64, "1f1b|gpipe"),
    KINT(parallel, max_stage_mib, "1024", 1, I32),
    KINT(checkpoint, every, "0", 0, I32), /* 0 = only at the end */
    KINT(checkpoint, keep, "3", 1, I32),
    KINT(vcycle, levels, "0", 0, 8),           /* 0 or 1 = no V-cycle */
    KSTR(vcycle, coalesce, "both", 256, NULL), /* per level: width|depth|both, comma-separated */
    KINT(vcycle, down_steps, "0", 0, I32),     /* 0 = 5% of train.steps per level */
    KINT(vcycle, bottom_steps, "0", 0, I32),   /* 0 = 50% of train.steps */
    KDBL(vcycle, alpha, "0.5", 0, 1, 0, 0),
    KDBL(vcycle, lr_scale, "4.0", 0, INF, 1, 0), /* peak LR x lr_scale^(level - 1) */
    KSTR(apollo, unique, "auto", 256, NULL),     /* auto = 1, L/4, L/2, L */
    KSTR(apollo, boundaries, "auto", 256, NULL), /* auto = 0.05, 0.1, 0.25 */
    KSTR(apollo, sampler, "lvps", 256, NULL),
    KSTR(apollo, map, "extend", 256, NULL),
    KINT(apollo, depth, "0", 0, I32),
    KSTR(raptr, lengths, "auto", 256, NULL), /* auto = round(L/2 + s L/6), s = 0..3 */
    KSTR(raptr, boundaries, "auto", 256, NULL),
    KSTR(raptr, fixed, "auto", 256, NULL), /* auto = first and last block */
    KSTR(raptr, mode, "bernoulli", 256, NULL),
    KSTR(raptr, scale, "none", 256, NULL),
    KINT(raptr, full_warmup_steps, "0", 0, I32),
};
#define N_KEYS (sizeof sp_cfg_keys / sizeof sp_cfg_keys[0]) /* constant expressions, for */
const size_t sp_cfg_nkeys = N_KEYS;                         /* the raw structs below */

#define EROW(n, t, d, lo, hi, ch)                                                                  \
    ROW(growth, n, offsetof(sp_growth_event, n), t, d, lo, hi, 0, 0, ch)
const sp_cfg_key sp_cfg_ev_keys[] = {
    EROW(at_step, CFG_INT, "-1", -1, I32, NULL),      /* -1 = unset */
    EROW(at_tokens, CFG_TOKENS, "-1", -1, I62, NULL), /* -1 = unset, auto = -2, or a share */
    EROW(op, CFG_STR, "", 0, 64, NULL),               /* required: "" fails the check */
    /* auto = -2; 1 would be an event that changes nothing */
    EROW(factor, CFG_AUTOINT, "2", 2, 65536, NULL),
    EROW(optimizer, CFG_STR, "copy", 0, 64, "copy|reset"),
    EROW(lr, CFG_STR, "continue", 0, 64, "continue|rewarm"),
    EROW(rewarm_steps, CFG_STEPS, "0", 0, I32, NULL), /* or a share of train.steps */
    EROW(pipeline, CFG_AUTOSTR, "auto", 1, 65536, NULL),
    EROW(ramp_steps, CFG_INT, "100", 1, I32, NULL),  /* random: branch scale 0 -> 1 */
    EROW(noise, CFG_DBL, "0.01", 0, INF, NULL),      /* widen_direct: uneven split */
    EROW(maturity, CFG_DBL, "20", 0, INF, NULL),     /* at_tokens auto: tokens per base parameter */
    EROW(learn_steps, CFG_INT, "100", 1, I32, NULL), /* learn: data steps the map trains on */
    EROW(learn_lr, CFG_DBL, "0.001", 0, INF, NULL),  /* learn: Adam on the coefficients */
};
#define N_EV (sizeof sp_cfg_ev_keys / sizeof sp_cfg_ev_keys[0])
const size_t sp_cfg_nev = N_EV;

/* ---- values: parse, check, store ------------------------------------------------------------ */

const char *sp_cfg_type_desc(const sp_cfg_key *k) {
    switch (k->type) {
    case CFG_INT:
        return "an integer";
    case CFG_U64:
        return "a non-negative integer";
    case CFG_DBL:
        return "a number";
    case CFG_AUTOINT:
        return "an integer or auto";
    case CFG_AUTOSTR:
        return "auto or a positive integer";
    case CFG_TOKENS:
        return "a token count, a share of the budget (0.5 or 50%), or auto";
    case CFG_STEPS:
        return "a step count or a share of the run's steps (0.02 or 2%)";
    default:
        return "a string";
    }
}

static int parse_i64(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno) return -1;
    *v = x;
    return 0;
}

static void describe_range(const sp_cfg_key *k, char *buf, size_t n) {
    /* integer bounds print in full (2147483647, not 2.14748e+09) */
    int prec = k->type == CFG_DBL ? 6 : 19;
    int w = snprintf(buf, n, "must be %s %.*g", k->lo_open ? ">" : ">=", prec, k->lo);
    if (k->hi != INF && w > 0 && (size_t)w < n)
        snprintf(buf + w, n - (size_t)w, " and %s %.*g", k->hi_open ? "<" : "<=", prec, k->hi);
}

static int out_of_range(const sp_cfg_key *k, double x) {
    return !isfinite(x) || (k->lo_open ? x <= k->lo : x < k->lo) ||
           (k->hi_open ? x >= k->hi : x > k->hi);
}

/* A value as it may appear in a one-line message: at most 48 bytes of it, control characters
 * escaped, "..." when cut. A 10 MB value or one with a newline must not become the message. */
const char *sp_cfg_quote(const char *s, char *buf, size_t n) {
    size_t w = 0, i = 0;
    for (; s[i] && i < 48 && w + 5 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            w += (size_t)snprintf(buf + w, n - w, "\\x%02x", c);
        else
            buf[w++] = (char)c;
    }
    if (s[i] && w + 4 < n) memcpy(buf + w, "...", 3), w += 3;
    buf[w] = 0;
    return buf;
}

/* Offset of the first byte that is not part of well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), or -1 when s is well-formed. */
static long utf8_error(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; s[i];) {
        unsigned c = s[i];
        int len = c < 0x80             ? 1
                  : (c & 0xe0) == 0xc0 ? 2
                  : (c & 0xf0) == 0xe0 ? 3
                  : (c & 0xf8) == 0xf0 ? 4
                                       : 0;
        if (!len || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4)) return (long)i;
        for (int j = 1; j < len; j++)
            if ((s[i + j] & 0xc0) != 0x80) return (long)i;
        if (len == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0)))
            return (long)i;
        if (len == 4 && ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90)))
            return (long)i;
        i += (size_t)len;
    }
    return -1;
}

static int bad_value(const sp_cfg_key *k, const char *path, const char *text, sp_err *err) {
    char q[200];
    sp_cfg_quote(text, q, sizeof q);
    if (k->choices) {
        char ch[128];
        size_t w = 0;
        for (const char *p = k->choices; *p && w + 3 < sizeof ch; p++)
            if (*p == '|')
                ch[w++] = ',', ch[w++] = ' ';
            else
                ch[w++] = *p;
        ch[w] = 0;
        return sp_err_set(err, SP_EINPUT, "%s: invalid value '%s' (expected one of %s)", path, q,
                          ch);
    }
    return sp_err_set(err, SP_EINPUT, "%s: invalid value '%s' (expected %s)", path, q,
                      sp_cfg_type_desc(k));
}

/* Strings are stored in every checkpoint as YAML, which must be UTF-8 (a checkpoint whose config
 * does not parse cannot be sampled or evaluated), and are printed in one-line messages: both
 * are checked here, with the length, so that no key takes a value sprout would truncate. */
static int check_text(const sp_cfg_key *k, const char *s, const char *path, sp_err *err) {
    size_t n = strlen(s);
    if ((double)n > k->hi)
        return sp_err_set(err, SP_EINPUT, "%s: the value is %zu bytes long (at most %.0f)", path, n,
                          k->hi);
    long bad = utf8_error(s);
    if (bad >= 0)
        return sp_err_set(err, SP_EINPUT,
                          "%s: byte 0x%02x at offset %ld is not valid UTF-8 (the config is stored "
                          "as YAML text in every checkpoint)",
                          path, (unsigned char)s[bad], bad);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return sp_err_set(err, SP_EINPUT, "%s: control character 0x%02x at offset %zu", path,
                              (unsigned char)s[i], i);
    return SP_OK;
}

/* text -> value with k's type, no range check (defaults like op "" are placeholders) */
static int parse_raw(const sp_cfg_key *k, const char *s, sp_cfg_val *v, const char *path,
                     sp_err *err) {
    memset(v, 0, sizeof *v);
    char *end;
    switch (k->type) {
    case CFG_INT:
        if (parse_i64(s, &v->i)) return bad_value(k, path, s, err);
        break;
    case CFG_AUTOINT:
        if (!strcmp(s, "auto"))
            v->i = SP_CFG_AUTO;
        else if (parse_i64(s, &v->i))
            return bad_value(k, path, s, err);
        break;
    case CFG_TOKENS:
    case CFG_STEPS:
        if (k->type == CFG_TOKENS && !strcmp(s, "auto")) {
            v->i = SP_CFG_AUTO;
        } else if (strpbrk(s, ".%eE")) { /* a share: 0 < x < 1, or 0% < x < 100% */
            errno = 0;
            double x = strtod(s, &end);
            int pct = *end == '%';
            if (pct) x /= 100.0, end++;
            if (!*s || *end || errno || !(x > 0.0 && x < 1.0))
                return sp_err_set(err, SP_EINPUT,
                                  "%s: invalid value '%s' (a share of the %s is above 0 and below "
                                  "1, or above 0%% and below 100%%)",
                                  path, s, k->type == CFG_STEPS ? "run's steps" : "token budget");
            int64_t ppm = (int64_t)llround(x * 1e6);
            v->i = SP_CFG_SHARE0 - (ppm < 1 ? 1 : ppm > 999999 ? 999999 : ppm);
        } else if (parse_i64(s, &v->i)) {
            return bad_value(k, path, s, err);
        }
        break;
    case CFG_U64:
        errno = 0;
        v->u = strtoull(s, &end, 10);
        if (!*s || *end || errno || strchr(s, '-')) return bad_value(k, path, s, err);
        break;
    case CFG_DBL:
        errno = 0;
        v->d = strtod(s, &end);
        if (!*s || *end || errno == ERANGE) return bad_value(k, path, s, err);
        break;
    default:
        v->s = s;
        break;
    }
    return SP_OK;
}

int sp_cfg_parse_val(const sp_cfg_key *k, const char *s, sp_cfg_val *v, const char *path,
                     sp_err *err) {
    return parse_raw(k, s, v, path, err) ? err->code : sp_cfg_check_val(k, v, path, err);
}

int sp_cfg_check_val(const sp_cfg_key *k, const sp_cfg_val *v, const char *path, sp_err *err) {
    char range[96];
    describe_range(k, range, sizeof range);
    switch (k->type) {
    case CFG_INT:
    case CFG_AUTOINT:
    case CFG_TOKENS:
    case CFG_STEPS:
        if ((k->type == CFG_AUTOINT || k->type == CFG_TOKENS) && v->i == SP_CFG_AUTO) return SP_OK;
        if (k->type != CFG_INT && k->type != CFG_AUTOINT && sp_cfg_share(v->i) > 0) return SP_OK;
        if (out_of_range(k, (double)v->i))
            return sp_err_set(err, SP_EINPUT, "%s: %lld is out of range (%s)", path,
                              (long long)v->i, range);
        return SP_OK;
    case CFG_U64:
        return SP_OK;
    case CFG_DBL:
        if (!isfinite(v->d))
            return sp_err_set(err, SP_EINPUT, "%s: %g is not a finite number", path, v->d);
        if (out_of_range(k, v->d))
            return sp_err_set(err, SP_EINPUT, "%s: %g is out of range (%s)", path, v->d, range);
        return SP_OK;
    case CFG_AUTOSTR: {
        int64_t x;
        if (v->s && !strcmp(v->s, "auto")) return SP_OK;
        if (!v->s || parse_i64(v->s, &x) || out_of_range(k, (double)x))
            return bad_value(k, path, v->s ? v->s : "", err);
        return SP_OK;
    }
    default:
        if (!v->s || !*v->s) return sp_err_set(err, SP_EINPUT, "%s: must not be empty", path);
        if (check_text(k, v->s, path, err)) return err->code;
        if (k->choices) {
            size_t n = strlen(v->s);
            for (const char *c = k->choices; c;) {
                const char *bar = strchr(c, '|');
                size_t m = bar ? (size_t)(bar - c) : strlen(c);
                if (m == n && !memcmp(c, v->s, n)) return SP_OK;
                c = bar ? bar + 1 : NULL;
            }
            return bad_value(k, path, v->s, err);
        }
        return SP_OK;
    }
}

void sp_cfg_get_val(const void *base, const sp_cfg_key *k, sp_cfg_val *v) {
    const char *p = (const char *)base + k->off;
    memset(v, 0, sizeof *v);
    switch (k->type) {
    case CFG_INT:
    case CFG_AUTOINT:
    case CFG_TOKENS:
    case CFG_STEPS:
        memcpy(&v->i, p, sizeof v->i);
        break;
    case CFG_U64:
        memcpy(&v->u, p, sizeof v->u);
        break;
    case CFG_DBL:
        memcpy(&v->d, p, sizeof v->d);
        break;
    default:
        memcpy(&v->s, p, sizeof v->s);
        break;
    }
}

int sp_cfg_put_val(void *base, const sp_cfg_key *k, const sp_cfg_val *v, sp_err *err) {
    char *p = (char *)base + k->off;
    switch (k->type) {
    case CFG_INT:
    case CFG_AUTOINT:
    case CFG_TOKENS:
    case CFG_STEPS:
        memcpy(p, &v->i, sizeof v->i);
        break;
    case CFG_U64:
        memcpy(p, &v->u, sizeof v->u);
        break;
    case CFG_DBL:
        memcpy(p, &v->d, sizeof v->d);
        break;
    default: {
        char *s = strdup(v->s ? v->s : ""), *old;
        if (!s) return sp_err_set(err, SP_ERUNTIME, "out of memory");
        memcpy(&old, p, sizeof old);
        free(old);
        memcpy(p, &s, sizeof s);
    }
    }
    return SP_OK;
}

static void free_strings(void *base, const sp_cfg_key *tab, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (tab[i].type != CFG_STR && tab[i].type != CFG_AUTOSTR) continue;
        char *s;
        memcpy(&s, (char *)base + tab[i].off, sizeof s);
        free(s);
    }
}

/* the table's defaults into base; the defaults are constants, so this fails only on OOM */
static int put_defaults(void *base, const sp_cfg_key *tab, size_t n, sp_err *err) {
    for (size_t i = 0; i < n; i++) {
        sp_cfg_val v;
        if (!tab[i].def) continue;
        if (parse_raw(&tab[i], tab[i].def, &v, tab[i].name, err) ||
            sp_cfg_put_val(base, &tab[i], &v, err))
            return err->code;
    }
    return SP_OK;
}

void sp_cfg_free_growth(sp_config *cfg) {
    for (unsigned i = 0; i < cfg->growth_count; i++)
        free_strings(&cfg->growth[i], sp_cfg_ev_keys, sp_cfg_nev);
    free(cfg->growth);
    cfg->growth = NULL;
    cfg->growth_count = 0;
}

void sp_cfg_free(sp_config *cfg) {
    if (!cfg) return;
    free_strings(cfg, sp_cfg_keys, sp_cfg_nkeys);
    sp_cfg_free_growth(cfg);
    free(cfg->source);
    memset(cfg, 0, sizeof *cfg);
}

/* Defaults, with run.out = "runs/" + name's base name without extension and source = name.
 * Ignores (does not free) the previous contents: callers pass uninitialised structs. */
static int cfg_reset(sp_config *cfg, const char *name, sp_err *err) {
    sp_err tmp;
    if (!err) err = &tmp;
    memset(cfg, 0, sizeof *cfg);
    if (put_defaults(cfg, sp_cfg_keys, sp_cfg_nkeys, err)) return err->code;
    const char *base = "default";
    size_t n = strlen(base);
    if (name) {
        const char *slash = strrchr(name, '/'), *dot;
        base = slash ? slash + 1 : name;
        dot = strrchr(base, '.');
        n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
        if (!(cfg->source = strdup(name))) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    }
    if (!(cfg->run.out = malloc(n + 6))) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    snprintf(cfg->run.out, n + 6, "runs/%.*s", (int)n, base);
    return SP_OK;
}

void sp_cfg_defaults(sp_config *cfg) {
    cfg_reset(cfg, NULL, NULL);
}

/* ---- libcyaml schema from the table ------------------------------------------------------- */

#define MAX_SECTIONS 16
typedef struct raw_event {
    void *slot[N_EV];
} raw_event;
typedef struct raw_doc {
    void *slot[N_KEYS]; /* sections are runs of slots */
    raw_event *growth;
    unsigned growth_count;
} raw_doc;

typedef struct schema {
    cyaml_schema_field_t key_fields[N_KEYS + MAX_SECTIONS];
    cyaml_schema_field_t top_fields[MAX_SECTIONS + 2];
    cyaml_schema_field_t ev_fields[N_EV + 1];
    cyaml_schema_value_t ev_value, top;
} schema;

/* Every key is an optional pointer (absent = NULL) to a string: libcyaml 1.3.1's INT and FLOAT
 * parsers accept trailing junk ("12abc" = 12, "1.5" = 1, "0.1x" = 0.1) and octal ("010" = 8),
 * and its 8-byte UINT takes "-3", so values are parsed here, by the code that parses --set. */
static cyaml_schema_field_t key_field(const sp_cfg_key *k, size_t slot) {
    cyaml_schema_field_t f = {.key = k->name, .data_offset = (uint32_t)(slot * sizeof(void *))};
    f.value.type = CYAML_STRING;
    f.value.flags = CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER;
    f.value.data_size = 1;
    f.value.string.max = CYAML_UNLIMITED;
    return f;
}

static int build_schema(schema *s, sp_err *err) {
    memset(s, 0, sizeof *s);
    size_t nf = 0, nsec = 0;
    for (size_t i = 0; i < sp_cfg_nkeys;) {
        size_t j = i;
        while (j < sp_cfg_nkeys && !strcmp(sp_cfg_keys[j].sect, sp_cfg_keys[i].sect)) j++;
        for (size_t q = 0; q <= nsec; q++)
            if (q == MAX_SECTIONS ||
                (q < nsec && !strcmp(s->top_fields[q].key, sp_cfg_keys[i].sect)))
                return sp_err_set(err, SP_ERUNTIME,
                                  "config table: too many sections, or section '%s' split",
                                  sp_cfg_keys[i].sect);
        cyaml_schema_field_t *sec = &s->top_fields[nsec++];
        sec->key = sp_cfg_keys[i].sect;
        sec->data_offset = (uint32_t)(i * sizeof(void *));
        sec->value.type = CYAML_MAPPING;
        sec->value.flags = CYAML_FLAG_OPTIONAL;
        sec->value.data_size = (uint32_t)((j - i) * sizeof(void *));
        sec->value.mapping.fields = &s->key_fields[nf];
        for (size_t q = i; q < j; q++) s->key_fields[nf++] = key_field(&sp_cfg_keys[q], q - i);
        nf++; /* zeroed terminator */
        i = j;
    }
    for (size_t q = 0; q < sp_cfg_nev; q++) s->ev_fields[q] = key_field(&sp_cfg_ev_keys[q], q);
    s->ev_value.type = CYAML_MAPPING;
    s->ev_value.data_size = sizeof(raw_event);
    s->ev_value.mapping.fields = s->ev_fields;
    cyaml_schema_field_t *g = &s->top_fields[nsec];
    g->key = "growth";
    g->data_offset = offsetof(raw_doc, growth);
    g->count_offset = offsetof(raw_doc, growth_count);
    g->count_size = sizeof(unsigned);
    g->value.type = CYAML_SEQUENCE;
    g->value.flags = CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL; /* `growth:` = empty */
    g->value.data_size = sizeof(raw_event);
    g->value.sequence.entry = &s->ev_value;
    g->value.sequence.max = SP_CFG_MAX_EVENTS; /* libcyaml stops at once on a longer list */
    s->top.type = CYAML_MAPPING;
    s->top.flags = CYAML_FLAG_POINTER;
    s->top.data_size = sizeof(raw_doc);
    s->top.mapping.fields = s->top_fields;
    return SP_OK;
}

/* The row of a dotted key path: "train.lr", or "growth[3].op" for an event key. */
const sp_cfg_key *sp_cfg_lookup(const char *path) {
    const char *dot = strchr(path, '.');
    if (!dot) return NULL;
    size_t n = (size_t)(dot - path);
    if (!strncmp(path, "growth[", 7) && path[n - 1] == ']') {
        for (size_t i = 0; i < sp_cfg_nev; i++)
            if (!strcmp(dot + 1, sp_cfg_ev_keys[i].name)) return &sp_cfg_ev_keys[i];
        return NULL;
    }
    for (size_t i = 0; i < sp_cfg_nkeys; i++)
        if (strlen(sp_cfg_keys[i].sect) == n && !strncmp(path, sp_cfg_keys[i].sect, n) &&
            !strcmp(dot + 1, sp_cfg_keys[i].name))
            return &sp_cfg_keys[i];
    return NULL;
}

/* ---- libcyaml error messages ------------------------------------------------------------- */

typedef struct ylog {
    char line[16][200];
    int n;
} ylog;

static void ylog_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list ap) {
    ylog *l = ctx;
    if (level < CYAML_LOG_ERROR || l->n >= 16) return;
    char *s = l->line[l->n++];
    vsnprintf(s, sizeof l->line[0], fmt, ap);
    s[strcspn(s, "\n")] = 0;
}

/* Best-effort 1-based line of the key path `parts` in text, searching from line `from`, for
 * errors libcyaml gives no position for: each part must appear as a token followed by ':',
 * outside comments, after the previous part. 0 = not found. */
static int key_line(const char *t, size_t n, const char *const *parts, int nparts, int from) {
    size_t p = 0;
    int line = 1, found = 0;
    for (; p < n && line < from; p++)
        if (t[p] == '\n') line++;
    for (int k = 0; k < nparts; k++) {
        size_t m = strlen(parts[k]);
        for (found = 0; p < n && !found; p++) {
            if (t[p] == '\n')
                line++;
            else if (t[p] == '#' && (p == 0 || t[p - 1] == ' ' || t[p - 1] == '\n'))
                while (p + 1 < n && t[p + 1] != '\n') p++;
            else if (p + m <= n && !memcmp(t + p, parts[k], m) &&
                     (p == 0 || (t[p - 1] && strchr(" \t\n{,", t[p - 1])))) {
                size_t q = p + m;
                while (q < n && (t[q] == ' ' || t[q] == '\t')) q++;
                if (q < n && t[q] == ':') found = 1, p = q;
            }
        }
        if (!found) return 0;
    }
    return line;
}

/* the key path named by libcyaml's backtrace ("model.n_layer", "growth[1].op") and its line */
static void backtrace_path(const ylog *l, char *path, size_t n, int *line) {
    path[0] = 0;
    *line = 0;
    for (int i = l->n - 1; i >= 1; i--) {
        char name[128];
        unsigned entry;
        int ln = 0;
        size_t w = strlen(path);
        if (sscanf(l->line[i], " in mapping field '%127[^']' (line: %d", name, &ln) == 2)
            snprintf(path + w, n - w, "%s%s", w ? "." : "", name);
        else if (sscanf(l->line[i], " in sequence entry '%u' (line: %d", &entry, &ln) == 2)
            snprintf(path + w, n - w, "[%u]", entry ? entry - 1 : 0); /* libcyaml counts from 1 */
        else if (sscanf(l->line[i], " in mapping (line: %d", &ln) != 1)
            continue;
        *line = ln; /* ends as the innermost level's line */
    }
}

/* one line from libcyaml's logged error, e.g. "x.yaml:3: unknown key 'model.d_modle'" */
static int yaml_error(const ylog *l, cyaml_err_t rc, const char *text, size_t len, const char *src,
                      sp_err *err) {
    char path[256], pre[300], what[160], got[64];
    int line;
    if (rc == CYAML_ERR_OOM) return sp_err_set(err, SP_ERUNTIME, "%s: out of memory", src);
    const char *msg = l->n ? l->line[0] : cyaml_strerror(rc);
    if (!strncmp(msg, "Load: ", 6)) msg += 6;
    backtrace_path(l, path, sizeof path, &line);
    if (sscanf(msg, "Unexpected key: %159[^\n]", what) == 1) {
        /* libcyaml's position is that of the event before the key: find the key itself */
        const char *parts[1] = {what};
        int kl = key_line(text, len, parts, 1, line);
        if (kl) line = kl;
        snprintf(pre, sizeof pre, "%s%s%s", path, *path ? "." : "", what);
        msg = NULL;
    }
    char loc[300];
    if (line)
        snprintf(loc, sizeof loc, "%s:%d", src, line);
    else
        snprintf(loc, sizeof loc, "%s", src);
    if (!msg) return sp_err_set(err, SP_EINPUT, "%s: unknown key '%s'", loc, pre);
    const sp_cfg_key *k = sp_cfg_lookup(path);
    if (sscanf(msg, "Invalid %*s value: %159[^\n]", what) == 1) {
        size_t w = strlen(what);
        if (w >= 2 && what[0] == '\'' && what[w - 1] == '\'')
            memmove(what, what + 1, w -= 2), what[w] = 0;
        return sp_err_set(err, SP_EINPUT, "%s: %s: invalid value '%s' (expected %s)", loc, path,
                          what, k ? sp_cfg_type_desc(k) : "another type");
    }
    if (sscanf(msg, "Expecting %*s got event: %63s", got) == 1) {
        const char *g = !strncmp(got, "SEQ", 3)   ? "a list"
                        : !strncmp(got, "MAP", 3) ? "a mapping"
                                                  : "a scalar";
        if (!*path)
            return sp_err_set(err, SP_EINPUT, "%s: expected a mapping of sections, got %s", loc, g);
        return sp_err_set(err, SP_EINPUT, "%s: %s: expected %s, got %s", loc, path,
                          k                         ? sp_cfg_type_desc(k)
                          : !strcmp(path, "growth") ? "a list of events"
                                                    : "a mapping",
                          g);
    }
    unsigned most;
    if (sscanf(msg, "Excessive entries (%u max)", &most) == 1)
        return sp_err_set(err, SP_EINPUT,
                          "%s: growth: more than %u events; at most %u are supported", src, most,
                          most);
    if (sscanf(msg, "Mapping field already seen: %159[^\n]", what) == 1)
        return sp_err_set(err, SP_EINPUT, "%s: duplicate key '%s'", loc, *path ? path : what);
    if (!strncmp(msg, "libyaml: ", 9))
        return sp_err_set(err, SP_EINPUT, "%s: YAML syntax error: %s", loc, msg + 9);
    return sp_err_set(err, SP_EINPUT, "%s: %s%s%s", loc, path, *path ? ": " : "", msg);
}

/* ---- loading ------------------------------------------------------------------------------- */

/* One load in progress: the text, and libcyaml's view of it. */
typedef struct loader {
    const char *text, *src;
    size_t len;
    schema s;
    cyaml_config_t cc;
    ylog log;
    raw_doc *doc;
} loader;

/* The line of a value that libcyaml accepted (as a string) and we rejected: libcyaml reports
 * positions only for its own errors, so load the text again with that key typed as a strict
 * enum of the values the earlier growth events (all accepted) had for it. It then fails exactly
 * at our value, and its backtrace has the line. 0 = not found. */
static int value_line(loader *ld, const sp_cfg_key *k, unsigned event, const char *path) {
    schema s;
    sp_err err;
    raw_doc *doc = NULL;
    int line = 0, ev = k >= sp_cfg_ev_keys && k < sp_cfg_ev_keys + N_EV;
    cyaml_strval_t *ok = calloc(event + 1, sizeof *ok);
    if (!ok || build_schema(&s, &err)) {
        free(ok);
        return 0;
    }
    unsigned nok = 0;
    for (unsigned e = 0; ev && e < event; e++)
        if (ld->doc->growth[e].slot[k - sp_cfg_ev_keys])
            ok[nok].str = ld->doc->growth[e].slot[k - sp_cfg_ev_keys], ok[nok].val = nok, nok++;
    cyaml_schema_field_t *f = ev ? &s.ev_fields[k - sp_cfg_ev_keys] : NULL;
    for (size_t q = 0; !ev && s.top_fields[q].key; q++)
        if (!strcmp(s.top_fields[q].key, k->sect))
            for (f = &s.key_fields[s.top_fields[q].value.mapping.fields - s.key_fields];
                 f->key && strcmp(f->key, k->name);)
                f++;
    if (f && f->key) {
        memset(&f->value, 0, sizeof f->value);
        f->value.type = CYAML_ENUM;
        f->value.flags = CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER | CYAML_FLAG_STRICT;
        f->value.data_size = sizeof(int);
        f->value.enumeration.strings = ok;
        f->value.enumeration.count = nok;
        ylog log = {.n = 0};
        cyaml_config_t cc = ld->cc;
        cc.log_ctx = &log;
        char where[256];
        if (cyaml_load_data((const uint8_t *)ld->text, ld->len, &cc, &s.top, (void **)&doc, NULL)) {
            backtrace_path(&log, where, sizeof where, &line);
            if (strcmp(where, path)) line = 0; /* not our value after all */
        } else {
            cyaml_free(&cc, &s.top, doc, 0);
        }
    }
    free(ok);
    return line;
}

/* Copies the present slots (event = -1: the sections; else growth[event]) into base, each parsed
 * and range-checked; messages get "src:line: ". */
static int apply_slots(loader *ld, void *base, void *const *slot, const sp_cfg_key *tab, size_t n,
                       int event, sp_err *err) {
    for (size_t i = 0; i < n; i++) {
        if (!slot[i]) continue;
        const sp_cfg_key *k = &tab[i];
        char path[160];
        if (event < 0)
            snprintf(path, sizeof path, "%s.%s", k->sect, k->name);
        else
            snprintf(path, sizeof path, "growth[%d].%s", event, k->name);
        sp_cfg_val v;
        if (sp_cfg_parse_val(k, (const char *)slot[i], &v, path, err)) {
            int line = value_line(ld, k, event < 0 ? 0 : (unsigned)event, path);
            return line ? sp_err_wrap(err, "%s:%d", ld->src, line)
                        : sp_err_wrap(err, "%s", ld->src);
        }
        if (sp_cfg_put_val(base, k, &v, err)) return err->code;
    }
    return SP_OK;
}

int sp_cfg_load_text(sp_config *cfg, const char *text, size_t len, const char *name, sp_err *err) {
    if (cfg_reset(cfg, name, err)) return err->code; /* name NULL: runs/default */
    if (!name) name = "config";
    loader *ld = calloc(1, sizeof *ld);
    if (!ld) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    ld->text = text, ld->len = len, ld->src = name;
    ld->cc = (cyaml_config_t){.log_fn = ylog_fn,
                              .log_ctx = &ld->log,
                              .mem_fn = cyaml_mem,
                              .log_level = CYAML_LOG_ERROR,
                              .flags = CYAML_CFG_DEFAULT};
    int ret = build_schema(&ld->s, err);
    if (!ret) {
        cyaml_err_t rc = cyaml_load_data((const uint8_t *)text, len, &ld->cc, &ld->s.top,
                                         (void **)&ld->doc, NULL);
        if (rc != CYAML_OK) ret = yaml_error(&ld->log, rc, text, len, name, err);
    }
    raw_doc *doc = ld->doc; /* NULL for an empty document: all defaults */
    if (!ret && doc) ret = apply_slots(ld, cfg, doc->slot, sp_cfg_keys, N_KEYS, -1, err);
    if (!ret && doc && doc->growth_count) {
        cfg->growth = calloc(doc->growth_count, sizeof *cfg->growth);
        if (!cfg->growth) ret = sp_err_set(err, SP_ERUNTIME, "out of memory");
    }
    for (unsigned e = 0; !ret && doc && e < doc->growth_count; e++) {
        cfg->growth_count = e + 1; /* count what must be freed */
        ret = put_defaults(&cfg->growth[e], sp_cfg_ev_keys, N_EV, err);
        if (!ret)
            ret = apply_slots(ld, &cfg->growth[e], doc->growth[e].slot, sp_cfg_ev_keys, N_EV,
                              (int)e, err);
    }
    if (doc) cyaml_free(&ld->cc, &ld->s.top, doc, 0);
    free(ld);
    return ret;
}

int sp_cfg_load(sp_config *cfg, const char *path, sp_err *err) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int e = 0;
    if (!f) e = errno;
    while (f && !e) {
        if (n == cap) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 4096);
            if (!nb) {
                e = ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) e = errno ? errno : EIO;
            break;
        }
    }
    if (f) fclose(f);
    if (e) {
        free(buf);
        cfg_reset(cfg, path, NULL);
        return sp_err_set(err, e == ENOMEM ? SP_ERUNTIME : SP_EINPUT, "%s: %s", path, strerror(e));
    }
    int rc = sp_cfg_load_text(cfg, buf ? buf : "", n, path, err);
    free(buf);
    return rc;
}
