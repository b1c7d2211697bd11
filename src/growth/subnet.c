/* Subnetwork methods: the network a step executes is drawn per step, as a plan (sp_plan,
 * model.h), from the counter RNG keyed by (seed, purpose, step): Apollo (LVPS depth over U
 * shared blocks, the extend map) and RaPTr (a random path with a fixed set). The config's
 * `apollo:` / `raptr:` settings are resolved here once into an sp_subnet; drawing a plan is a
 * pure function of (sp_subnet, step), so every rank and every restart draws the same one. The
 * settings come as plain data (sp_subnet_settings; src/train/subnet_cfg.c reads the config).
 *
 * Apollo's storage: the model keeps its n_layer = L stored blocks all the time. While a stage
 * has U unique blocks, stored block j is a copy of unique block floor(j U / L) (the extend map
 * from U to L): the copies of a unique block form a contiguous group that starts equal, gets the
 * sum of its gradients and therefore stays equal bit for bit. A step at depth D runs position p
 * (unique block floor(p U / D)) on one copy of that block, chosen so that the positions of a
 * unique block spread evenly over its copies, and so over the pipeline stages. Expanding U to
 * U' (interpolation, new unique i <- old floor(i U / U')) is a block map on the stored blocks:
 * copy j takes the weights, moments and step count of a copy of old block floor(i U / U') (the
 * `copy` moments policy), which is copy j itself whenever the extend maps nest (each count
 * dividing the next and L: the defaults for L divisible by 4), so usually nothing moves.
 * docs/growth.md has the derivation. */
#include "sprout/growth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing the comma-separated lists of the config ---- */

/* "auto" -> 0 values (the caller fills its default); else up to max numbers into v */
static int parse_list(const char *key, const char *text, double *v, int max, int *n, sp_err *err) {
    *n = 0;
    if (!strcmp(text, "auto")) return SP_OK;
    const char *p = text;
    while (*p) {
        char *end;
        if (*n == max)
            return sp_err_set(err, SP_EINPUT, "%s: more than %d values in '%s'", key, max, text);
        double x = strtod(p, &end);
        if (end == p || !isfinite(x))
            return sp_err_set(err, SP_EINPUT,
                              "%s: '%s' is not auto or a comma-separated list of "
                              "numbers",
                              key, text);
        v[(*n)++] = x;
        while (*end == ' ') end++;
        if (*end == ',')
            end++;
        else if (*end)
            return sp_err_set(err, SP_EINPUT,
                              "%s: '%s' is not auto or a comma-separated list of "
                              "numbers",
                              key, text);
        while (*end == ' ') end++;
        p = end;
    }
    if (*n == 0) return sp_err_set(err, SP_EINPUT, "%s: empty list", key);
    return SP_OK;
}

static int is_int(double x) {
    return x == floor(x) && fabs(x) < 1e9;
}

/* stage starts from fractions of the budget: start[0] = 0, start[s] = floor(b[s-1] * steps) */
static int stage_starts(const char *key, const double *b, int nb, int n_stages, int64_t steps,
                        int64_t *start, sp_err *err) {
    if (nb != n_stages - 1)
        return sp_err_set(err, SP_EINPUT, "%s: %d boundaries for %d stages (need %d)", key, nb,
                          n_stages, n_stages - 1);
    start[0] = 0;
    for (int s = 1; s < n_stages; s++) {
        if (!(b[s - 1] > 0 && b[s - 1] < 1) || (s > 1 && !(b[s - 1] > b[s - 2])))
            return sp_err_set(err, SP_EINPUT,
                              "%s: boundaries must increase strictly inside (0, 1), got %g", key,
                              b[s - 1]);
        start[s] = (int64_t)(b[s - 1] * (double)steps);
    }
    return SP_OK;
}

/* ---- Apollo ---- */

/* LVPS (growth-operators §4.2): x ~ U(x_min, 1), y = m / (x + n) clipped to [1, r], depth =
 * floor(y U). u in [0, 1). */
#define LVPS_XMIN 1e-6
static void lvps_coeffs(int L, int U, double *m, double *n) {
    double r = (double)L / U, b = r + 0.4, e = 0.6;
    *n = (b * LVPS_XMIN - e) / (e - b);
    *m = e * (*n + 1.0);
}

int sp_lvps_depth(int L, int U, double u) {
    double m, n;
    lvps_coeffs(L, U, &m, &n);
    double x = LVPS_XMIN + (1.0 - LVPS_XMIN) * u, y = m / (x + n), r = (double)L / U;
    y = y < 1.0 ? 1.0 : y > r ? r : y;
    int d = (int)floor(y * U);
    return d < U ? U : d > L ? L : d;
}

double sp_lvps_tail(int L, int U, int k) {
    if (k <= U) return 1.0;
    if (k > L) return 0.0;
    double m, n;
    lvps_coeffs(L, U, &m, &n);
    double p = (m * U / k - n - LVPS_XMIN) / (1.0 - LVPS_XMIN);
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

static int uniform_depth(int L, int U, double u) {
    int d = U + (int)(u * (double)(L - U + 1));
    return d > L ? L : d;
}

typedef struct sampler_row {
    const char *name;
    int (*depth)(int L, int U, double u);
} sampler_row;
static const sampler_row k_samplers[] = {{"lvps", sp_lvps_depth}, {"uniform", uniform_depth}};

/* first position (or stored block) of unique block u when n positions share U blocks: the
 * smallest p with floor(p U / n) = u */
static int first_of(int u, int n, int U) {
    return (int)(((int64_t)u * n + U - 1) / U);
}

/* 1 if depth D on U unique blocks of L stored ones gives every position its own copy */
static int fits(int L, int U, int D) {
    for (int u = 0; u < U; u++)
        if (first_of(u + 1, D, U) - first_of(u, D, U) > first_of(u + 1, L, U) - first_of(u, L, U))
            return 0;
    return 1;
}

static int apollo_resolve(const sp_subnet_settings *cfg, sp_subnet *sn, sp_err *err) {
    int L = sn->n_layer, nu, nb;
    double u[SP_SUBNET_MAX_STAGES], b[SP_SUBNET_MAX_STAGES];
    if (parse_list("apollo.unique", cfg->apollo_unique, u, SP_SUBNET_MAX_STAGES, &nu, err) ||
        parse_list("apollo.boundaries", cfg->apollo_boundaries, b, SP_SUBNET_MAX_STAGES, &nb, err))
        return err->code;
    if (nu == 0) { /* U = 1, L/4, L/2, L at 5%, 10%, 25%; repeated counts merge their stages */
        const double du[4] = {1, L / 4 > 1 ? L / 4 : 1, L / 2 > 1 ? L / 2 : 1, L};
        const double db[3] = {0.05, 0.10, 0.25};
        int auto_b = nb == 0;
        for (int s = 0; s < 4; s++) {
            if (nu > 0 && du[s] == u[nu - 1]) {
                if (auto_b && nu > 1) b[nu - 2] = db[s - 1]; /* the merged stage ends later */
                continue;
            }
            if (auto_b && nu > 0) b[nu - 1] = db[s - 1];
            u[nu++] = du[s];
        }
        if (auto_b) nb = nu - 1;
    } else if (nb == 0) { /* boundaries auto with explicit counts: equal stages */
        for (int s = 1; s < nu; s++) b[nb++] = (double)s / nu;
    }
    for (int s = 0; s < nu; s++) {
        if (!is_int(u[s]) || u[s] < 1 || u[s] > L || (s > 0 && !(u[s] > u[s - 1])))
            return sp_err_set(err, SP_EINPUT,
                              "apollo.unique: unique-block counts must increase strictly within "
                              "1..model.n_layer = %d, got %g",
                              L, u[s]);
        int U = (int)u[s];
        sn->k[s] = U;
        for (int D = U; D <= L; D++)
            if (!fits(L, U, D))
                return sp_err_set(err, SP_EINPUT,
                                  "apollo.unique: U = %d on %d blocks: at depth %d some unique "
                                  "block would run at more positions than it has copies (use "
                                  "counts that divide model.n_layer)",
                                  U, L, D);
    }
    sn->n_stages = nu;
    if (stage_starts("apollo.boundaries", b, nb, nu, cfg->steps, sn->start, err)) return err->code;
    sn->row = -1;
    for (size_t i = 0; i < sizeof k_samplers / sizeof *k_samplers; i++)
        if (!strcmp(k_samplers[i].name, cfg->apollo_sampler)) sn->row = (int)i;
    if (sn->row < 0)
        return sp_err_set(err, SP_EINPUT,
                          "apollo.sampler: unknown '%s' (expected lvps or "
                          "uniform)",
                          cfg->apollo_sampler);
    if (strcmp(cfg->apollo_map, "extend"))
        return sp_err_set(err, SP_EINPUT, "apollo.map: unknown '%s' (expected extend)",
                          cfg->apollo_map);
    sn->depth = (int)cfg->apollo_depth;
    return SP_OK;
}

static void apollo_draw(const sp_subnet *sn, int64_t step, int stage, sp_plan *p) {
    int L = sn->n_layer, U = sn->k[stage];
    if (U >= L) return; /* every block its own: the plain network */
    double u = (double)(sp_rng_u64(sn->seed, SP_RNG_LVPS, (uint64_t)step, 0) >> 11) * 0x1p-53;
    int D = sn->depth > 0 ? sn->depth : k_samplers[sn->row].depth(L, U, u);
    D = D < U ? U : D > L ? L : D;
    for (int j = 0; j < L; j++) p->group[j] = first_of(j * U / L, L, U);
    for (int q = 0; q < D; q++) {
        int v = (int)((int64_t)q * U / D), f = first_of(v, D, U), d = first_of(v + 1, D, U) - f;
        int a = first_of(v, L, U), c = first_of(v + 1, L, U) - a;
        p->pos[q] = a + (q - f) * c / d;
    }
    p->depth = D;
    p->shared = 1;
}

/* the expansion before `stage`: copy j of new unique block i = floor(j U / L) takes old unique
 * block v = floor(i U_old / U), from itself when it holds v already, else from v's nearest copy */
static int apollo_expand(const sp_subnet *sn, int stage, sp_block_map *map, sp_err *err) {
    int L = sn->n_layer, U = sn->k[stage], Uo = sn->k[stage - 1], moves = 0;
    map->n_old = map->n_new = L;
    map->b = calloc((size_t)L, sizeof *map->b);
    if (!map->b) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    for (int j = 0; j < L; j++) {
        int v = (j * U / L) * Uo / U, a = first_of(v, L, Uo), e = first_of(v + 1, L, Uo);
        int src = j < a ? a : j >= e ? e - 1 : j;
        map->b[j] = sp_block_one(src, SP_XF_COPY);
        moves += src != j;
    }
    return moves;
}

static void apollo_describe(const sp_subnet *sn, int stage, char *buf, size_t n) {
    int k = sn->k[stage];
    if (sn->depth > 0)
        snprintf(buf, n, "U = %d unique block(s), depth fixed at %d", k,
                 sn->depth < k             ? k
                 : sn->depth > sn->n_layer ? sn->n_layer
                                           : sn->depth);
    else
        snprintf(buf, n, "U = %d unique block(s), depth %s in [%d, %d]", k,
                 k_samplers[sn->row].name, k, sn->n_layer);
}

/* ---- RaPTr ---- */

/* keep[l] for the non-fixed blocks: each with probability p (bernoulli), or the m with the
 * smallest keys (exact: a uniformly random subset of m) */
static void keep_bernoulli(const sp_subnet *sn, int64_t step, int m, unsigned char *keep) {
    (void)m;
    for (int l = 0; l < sn->n_layer; l++) {
        double u = (double)(sp_rng_u64(sn->seed, SP_RNG_RAPTR, (uint64_t)step, (uint64_t)l) >> 11) *
                   0x1p-53;
        keep[l] = sn->fixed[l] || u < sn->pk;
    }
}

static void keep_exact(const sp_subnet *sn, int64_t step, int m, unsigned char *keep) {
    int L = sn->n_layer;
    for (int l = 0; l < L; l++) {
        keep[l] = sn->fixed[l];
        if (keep[l]) continue;
        uint64_t k = sp_rng_u64(sn->seed, SP_RNG_RAPTR, (uint64_t)step, (uint64_t)l);
        int rank = 0;
        for (int o = 0; o < L; o++) {
            if (sn->fixed[o] || o == l) continue;
            uint64_t ko = sp_rng_u64(sn->seed, SP_RNG_RAPTR, (uint64_t)step, (uint64_t)o);
            rank += ko < k || (ko == k && o < l);
        }
        keep[l] = rank < m;
    }
}

typedef struct mode_row {
    const char *name;
    void (*keep)(const sp_subnet *sn, int64_t step, int m, unsigned char *keep);
} mode_row;
static const mode_row k_modes[] = {{"bernoulli", keep_bernoulli}, {"exact", keep_exact}};

typedef struct scale_row {
    const char *name;
    int inverse_p;
} scale_row;
static const scale_row k_scales[] = {{"none", 0}, {"inverse_p", 1}};

static int raptr_resolve(const sp_subnet_settings *cfg, sp_subnet *sn, sp_err *err) {
    int L = sn->n_layer, nk, nb, nf;
    double k[SP_SUBNET_MAX_STAGES], b[SP_SUBNET_MAX_STAGES], f[SP_SUBNET_MAX_LAYER];
    if (parse_list("raptr.lengths", cfg->raptr_lengths, k, SP_SUBNET_MAX_STAGES, &nk, err) ||
        parse_list("raptr.boundaries", cfg->raptr_boundaries, b, SP_SUBNET_MAX_STAGES, &nb, err))
        return err->code;
    nf = 0;
    if (!strcmp(cfg->raptr_fixed, "auto")) {
        f[nf++] = 0;
        if (L > 1) f[nf++] = L - 1;
    } else if (strcmp(cfg->raptr_fixed, "none") &&
               parse_list("raptr.fixed", cfg->raptr_fixed, f, SP_SUBNET_MAX_LAYER, &nf, err)) {
        return err->code;
    }
    for (int i = 0; i < nf; i++) {
        if (!is_int(f[i]) || f[i] < 0 || f[i] >= L)
            return sp_err_set(err, SP_EINPUT, "raptr.fixed: %g is not a block index in 0..%d", f[i],
                              L - 1);
        sn->fixed[(int)f[i]] = 1;
    }
    int nfix = 0;
    for (int l = 0; l < L; l++) nfix += sn->fixed[l];
    if (nk == 0) /* round(L/2 + s L/6), s = 0..3: 4-5-7-8 on 8 blocks, 6-8-10-12 on 12 */
        for (int s = 0; s < 4; s++) k[nk++] = floor(L / 2.0 + s * L / 6.0 + 0.5);
    if (nb == 0)
        for (int s = 1; s < nk; s++) b[nb++] = (double)s / nk;
    for (int s = 0; s < nk; s++) {
        if (!is_int(k[s]) || k[s] < nfix || k[s] > L)
            return sp_err_set(err, SP_EINPUT,
                              "raptr.lengths: %g is not a path length between the %d fixed "
                              "block(s) and model.n_layer = %d",
                              k[s], nfix, L);
        sn->k[s] = (int)k[s];
    }
    sn->n_stages = nk;
    if (stage_starts("raptr.boundaries", b, nb, nk, cfg->steps, sn->start, err)) return err->code;
    sn->nfixed = nfix;
    sn->row = sn->scale = -1;
    for (size_t i = 0; i < sizeof k_modes / sizeof *k_modes; i++)
        if (!strcmp(k_modes[i].name, cfg->raptr_mode)) sn->row = (int)i;
    for (size_t i = 0; i < sizeof k_scales / sizeof *k_scales; i++)
        if (!strcmp(k_scales[i].name, cfg->raptr_scale)) sn->scale = k_scales[i].inverse_p;
    if (sn->row < 0)
        return sp_err_set(err, SP_EINPUT, "raptr.mode: unknown '%s' (expected bernoulli or exact)",
                          cfg->raptr_mode);
    if (sn->scale < 0)
        return sp_err_set(err, SP_EINPUT, "raptr.scale: unknown '%s' (expected none or inverse_p)",
                          cfg->raptr_scale);
    sn->warmup = cfg->raptr_full_warmup_steps;
    return SP_OK;
}

static void raptr_draw(const sp_subnet *sn, int64_t step, int stage, sp_plan *p) {
    int L = sn->n_layer, free_blocks = L - sn->nfixed, m = sn->k[stage] - sn->nfixed;
    if (step < sn->warmup || m >= free_blocks) return; /* the full model */
    sp_subnet tmp = *sn;                               /* the stage's keep probability */
    tmp.pk = (double)m / free_blocks;
    unsigned char keep[SP_SUBNET_MAX_LAYER];
    k_modes[sn->row].keep(&tmp, step, m, keep);
    int d = 0;
    for (int l = 0; l < L; l++) {
        p->train[l] = keep[l];
        if (!keep[l]) continue;
        p->pos[d++] = l;
        if (sn->scale && !sn->fixed[l] && tmp.pk > 0) p->scale[l] *= (float)(1.0 / tmp.pk);
    }
    p->depth = d;
}

static void raptr_describe(const sp_subnet *sn, int stage, char *buf, size_t n) {
    int L = sn->n_layer, k = sn->k[stage];
    snprintf(buf, n, "path length %d of %d (%s, keep p = %.3f, %d fixed, scale %s)", k, L,
             k_modes[sn->row].name,
             L > sn->nfixed ? (double)(k - sn->nfixed) / (L - sn->nfixed) : 1.0, sn->nfixed,
             sn->scale ? "inverse_p" : "none");
}

/* ---- the method table ---- */

typedef struct method_row {
    const char *name;
    int (*resolve)(const sp_subnet_settings *cfg, sp_subnet *sn, sp_err *err);
    void (*draw)(const sp_subnet *sn, int64_t step, int stage, sp_plan *p);
    void (*describe)(const sp_subnet *sn, int stage, char *buf, size_t n);
    /* the block map applied before a stage starts; returns the blocks that move */
    int (*expand)(const sp_subnet *sn, int stage, sp_block_map *map, sp_err *err);
} method_row;
static const method_row k_methods[] = {
    {"none", NULL, NULL, NULL, NULL},
    {"apollo", apollo_resolve, apollo_draw, apollo_describe, apollo_expand},
    {"raptr", raptr_resolve, raptr_draw, raptr_describe, NULL},
};

int sp_subnet_setup(const sp_subnet_settings *cfg, sp_subnet *sn, sp_err *err) {
    memset(sn, 0, sizeof *sn);
    sn->method = -1;
    for (size_t i = 0; i < sizeof k_methods / sizeof *k_methods; i++)
        if (!strcmp(k_methods[i].name, cfg->method)) sn->method = (int)i;
    if (sn->method < 0)
        return sp_err_set(err, SP_EINPUT,
                          "train.subnet: unknown method '%s' (expected none, apollo or raptr)",
                          cfg->method);
    sn->n_layer = (int)cfg->n_layer;
    sn->seed = cfg->seed;
    sn->n_stages = 1;
    if (!k_methods[sn->method].resolve) return SP_OK;
    if (cfg->grows)
        return sp_err_set(err, SP_EINPUT,
                          "train.subnet: %s trains a fixed stored depth; it cannot be combined "
                          "with growth events or a V-cycle",
                          cfg->method);
    if (sn->n_layer > SP_SUBNET_MAX_LAYER)
        return sp_err_set(err, SP_EINPUT, "train.subnet: %s supports up to %d blocks, not %d",
                          cfg->method, SP_SUBNET_MAX_LAYER, sn->n_layer);
    return k_methods[sn->method].resolve(cfg, sn, err);
}

const char *sp_subnet_name(const sp_subnet *sn) {
    return k_methods[sn->method].name;
}

int sp_subnet_expand_map(const sp_subnet *sn, int64_t step, sp_block_map *map, sp_err *err) {
    memset(map, 0, sizeof *map);
    int s = sp_subnet_stage(sn, step);
    if (step <= 0 || !k_methods[sn->method].expand || sp_subnet_stage(sn, step - 1) == s) return 0;
    int moves = k_methods[sn->method].expand(sn, s, map, err);
    if (moves <= 0) sp_grow_map_free(map);
    return moves;
}

int sp_subnet_stage(const sp_subnet *sn, int64_t step) {
    int s = 0;
    while (s + 1 < sn->n_stages && step >= sn->start[s + 1]) s++;
    return s;
}

void sp_subnet_draw(const sp_subnet *sn, int64_t step, sp_plan *p) {
    if (k_methods[sn->method].draw)
        k_methods[sn->method].draw(sn, step, sp_subnet_stage(sn, step), p);
}

void sp_subnet_describe(const sp_subnet *sn, int stage, char *buf, size_t n) {
    if (k_methods[sn->method].describe)
        k_methods[sn->method].describe(sn, stage, buf, n);
    else
        snprintf(buf, n, "the full network");
}
