/* Width operators: one engine that maps every tensor of a stage between a small spec (d, H, f)
 * and a large one (k*d, k*H, k*f), driven by the role of each tensor axis (docs/growth.md, "Width
 * operators"). Pure functions of the stage's own slabs: no MPI, so every rank applies them to
 * whatever blocks it holds, and the result does not depend on the layout.
 *
 * widen_zero and widen_random do not copy channels: the old channels keep their place at the
 * start of every family (of every q/k/v section) and new ones are appended. With the strided
 * fold below that is exactly "copy t = 0 of each old channel" on every axis, so they run through
 * the same roles and the same index map, with the other copies filled afresh.
 *
 * Every tensor is viewed as a matrix [rows, cols] with one in-axis and one out-axis:
 *   the out-axis holds produced channels: copied when widening, averaged when shrinking;
 *   the in-axis holds consumed channels of a weight matrix: split when widening, summed when
 *     shrinking; or it is a fixed axis (token, position, or the length-1 axis of a vector) that
 *     is left alone (as is a fixed out-axis: bert's decoder bias over the vocabulary).
 * The norm that feeds the head (the `tied` flag) is divided by k when splitting, since the head
 * then sums k copies of every channel.
 * In the Conv1D layout (y = x W + b, gpt2) the in-axis is rows and the out-axis cols; in
 * nn.Linear's [out, in] (y = x W^T + b, llama and bert; sp_tensor_info.in_cols) it is the other
 * way round. Only the strides differ: the arithmetic, and so gpt2's result, is the same.
 * A channel family (residual R, attention Q|K|V and O, MLP hidden F) of small size n is grouped
 * by the strided fold: small channel i <-> large channels i, i + n, ..., i + (k-1) n, per section
 * for the fused qkv. Because heads are contiguous runs of hd channels and H*hd = d, the fold of
 * heads (large head h -> small head h mod H, offset inside the head kept) is the same index map
 * as the fold of channels, so one formula serves every family. */
#include "sprout/growth.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef int width_op; /* sp_width_mode */
#define W_DECOALESCE   SP_W_DECOALESCE
#define W_WIDEN_DIRECT SP_W_WIDEN_DIRECT
#define W_COALESCE     SP_W_COALESCE
#define W_WIDEN_ZERO   SP_W_WIDEN_ZERO
#define W_WIDEN_RANDOM SP_W_WIDEN_RANDOM
#define W_NONE         (-1)

/* the width engine's mode of the operator named op (its row of the table), W_NONE if op is not a
 * width operator */
static width_op parse_width_op(const char *op) {
    const sp_grow_op *r = sp_grow_op_find(op);
    return r && r->dim == SP_OP_WIDTH ? r->width : W_NONE;
}

/* new channels appended and faded in by the masks, rather than copies of old ones */
static int is_append(width_op o) {
    return o == W_WIDEN_ZERO || o == W_WIDEN_RANDOM;
}

/* ---- specs ---- */

/* one scaled width field of the spec: multiplied by k (widen) or divided by k (shrink) */
static int scale_field(const char *op, int shrink, int k, const char *name, int from, int *to,
                       sp_err *err) {
    if (shrink) {
        if (from % k)
            return sp_err_set(err, SP_EINPUT, "%s: k = %d does not divide model.%s = %d", op, k,
                              name, from);
        *to = from / k;
    } else {
        if (from > INT_MAX / k)
            return sp_err_set(err, SP_EINPUT, "%s: k = %d makes model.%s = %d overflow", op, k,
                              name, from);
        *to = from * k;
    }
    return SP_OK;
}

int sp_grow_width_spec(const char *op, const sp_spec *from, int k, sp_spec *to, sp_err *err) {
    width_op o = parse_width_op(op);
    if (o == W_NONE)
        return sp_err_set(err, SP_EINPUT, "growth op '%s' is not a width operator (%s)",
                          op ? op : "(null)", sp_grow_op_names(SP_OP_WIDTH));
    if (k < 1) return sp_err_set(err, SP_EINPUT, "%s: k = %d, need k >= 1", op, k);
    if (sp_spec_check(from, err)) return sp_err_wrap(err, "%s", op);
    /* the operator table says on which kinds the math of the op holds (the axis roles alone do
     * not: appending channels also needs the kind's forward to mask them) */
    if (sp_grow_op_applies(sp_grow_op_find(op), from, err)) return err->code;
    sp_spec s = *from; /* vocab, seq_len and n_layer are not width */
    int shrink = o == W_COALESCE;
    if (scale_field(op, shrink, k, "d_model", from->d_model, &s.d_model, err) ||
        scale_field(op, shrink, k, "n_head", from->n_head, &s.n_head, err) ||
        scale_field(op, shrink, k, "d_ff", from->d_ff, &s.d_ff, err))
        return err->code;
    /* scaling d_model and n_head by the same k keeps hd; checked anyway, since a head that
     * changed size would make the head fold meaningless */
    if (s.d_model % s.n_head || s.d_model / s.n_head != from->d_model / from->n_head)
        return sp_err_set(err, SP_EINPUT, "%s: the head size would change from %d", op,
                          from->d_model / from->n_head);
    *to = s;
    return SP_OK;
}

/* ---- the engine ---- */

/* the channel families are the kind's axis roles (model.h, sp_axis_role) */
#define FAM_FIXED SP_AX_FIXED
#define FAM_QKV   SP_AX_QKV
#define FAM_F     SP_AX_F

/* one axis on the small side: n channels in sections of sec (the fold runs inside a section),
 * k copies of each on the large side (1 for a fixed axis) */
typedef struct width_axis {
    size_t n, sec;
    int k;
} width_axis;

static width_axis make_axis(int fam, const sp_spec *small, int k, size_t fixed_n) {
    size_t d = (size_t)small->d_model, f = (size_t)small->d_ff;
    width_axis a = {d, d, k};
    switch (fam) {
    case FAM_QKV:
        a.n = 3 * d; /* q | k | v, each folded on its own */
        break;
    case FAM_F:
        a.n = a.sec = f;
        break;
    case FAM_FIXED:
        a.n = a.sec = fixed_n, a.k = 1;
        break;
    default: /* R, and O, whose head-major layout folds like R (see the top of the file) */
        break;
    }
    return a;
}

/* large index of copy t of small channel i */
static size_t member(const width_axis *a, size_t i, int t) {
    return i / a->sec * ((size_t)a->k * a->sec) + i % a->sec + (size_t)t * a->sec;
}

/* One tensor as the engine walks it: its in-axis and out-axis, and the strides of both in the
 * small and the large tensor (large strides count large channels). */
typedef struct width_view {
    width_axis in, out;
    size_t s_in, s_out, l_in, l_out;
} width_view;

static width_view make_view(const sp_tensor_info *t, const sp_spec *small, int k) {
    size_t rows = t->ndim == 2 ? (size_t)t->dims[0] : 1;
    size_t cols = t->ndim == 2 ? (size_t)t->dims[1] : (size_t)t->dims[0];
    width_axis r = make_axis(t->rows, small, k, rows), c = make_axis(t->cols, small, k, cols);
    width_view v;
    v.in = t->in_cols ? c : r;
    v.out = t->in_cols ? r : c;
    if (t->in_cols) {
        v.s_in = v.l_in = 1;
        v.s_out = c.n, v.l_out = c.n * (size_t)c.k;
    } else {
        v.s_in = c.n, v.l_in = c.n * (size_t)c.k;
        v.s_out = v.l_out = 1;
    }
    return v;
}

/* How one arena is mapped. pw = 1 for params and m (the linear map), 2 for v (the coefficients
 * squared, see coalesce_tensor). a: the per-row split coefficients of widen_direct, NULL for the
 * even split, which divides by k (exactly rounded, and exact for k = 2). */
typedef struct width_xf {
    int k, pw;
    const float *a;
} width_xf;

static void decoalesce_tensor(const width_xf *x, const width_view *g, int tied, const float *src,
                              float *dst) {
    const width_axis *r = &g->in, *c = &g->out;
    float kk = x->pw == 2 ? (float)x->k * (float)x->k : (float)x->k;
    int split = r->k > 1;
    for (size_t i0 = 0; i0 < r->n; i0++)
        for (int t0 = 0; t0 < r->k; t0++) {
            size_t J0 = member(r, i0, t0);
            float aj = split && x->a ? (x->pw == 2 ? x->a[J0] * x->a[J0] : x->a[J0]) : 0.0f;
            for (size_t i1 = 0; i1 < c->n; i1++) {
                float v = src[i0 * g->s_in + i1 * g->s_out];
                if (split) v = x->a ? v * aj : v / kk;
                /* the norm that feeds the head (gpt2's ln_f, llama's model.norm, bert's
                 * transform LayerNorm): the head sums over k times as many copies */
                if (tied) v = v / kk;
                for (int t1 = 0; t1 < c->k; t1++)
                    dst[J0 * g->l_in + member(c, i1, t1) * g->l_out] = v;
            }
        }
}

/* Out-axes average, in-axes sum (in double, then rounded once). For v the coefficients are those
 * of (sum of the copies' sqrt(v))^2 when the copies are equal: an average stays an average, a sum
 * of k becomes k times the sum, ln_f's factor k becomes k^2. That is the exact inverse of the
 * widening's squared coefficients, and only an approximation on copies that differ. */
static void coalesce_tensor(const width_xf *x, const width_view *g, int tied, const float *src,
                            float *dst) {
    const width_axis *r = &g->in, *c = &g->out;
    double kk = x->pw == 2 ? (double)x->k * x->k : x->k;
    for (size_t i0 = 0; i0 < r->n; i0++)
        for (size_t i1 = 0; i1 < c->n; i1++) {
            double in = 0;
            for (int t0 = 0; t0 < r->k; t0++) {
                const float *row = src + member(r, i0, t0) * g->l_in;
                double out = 0;
                for (int t1 = 0; t1 < c->k; t1++) out += row[member(c, i1, t1) * g->l_out];
                in += out / c->k;
            }
            if (r->k > 1 && x->pw == 2) in *= r->k;
            if (tied) in *= kk;
            dst[i0 * g->s_in + i1 * g->s_out] = (float)in;
        }
}

/* RNG key `a` (under SP_RNG_GROW_INIT) of the width operators for tensor id: event + 1 above bit
 * 48 keeps them above the depth keys (event << 32 | id); widen_direct uses sub-space 0, the fill
 * of widen_zero / widen_random sub-space 1 (bit 47), so the two never draw the same numbers. */
static uint64_t width_key(int event, int sub, uint64_t id) {
    return ((uint64_t)(uint32_t)(event + 1) << 48) | ((uint64_t)sub << 47) | id;
}

/* widen_direct's coefficients of the large rows of one tensor: a_j = 1/k + e_j - mean of e over
 * the copies of the same small channel, so every group still sums to 1. e_j is keyed by the
 * tensor id and the large channel alone, hence the same on every layout. */
static void split_coeffs(const width_axis *r, double noise, uint64_t seed, int event, uint64_t id,
                         float *e, float *a) {
    size_t nl = r->n * (size_t)r->k;
    sp_rng_normal_fill(e, nl, (float)noise, seed, SP_RNG_GROW_INIT, width_key(event, 0, id), 0);
    for (size_t i = 0; i < r->n; i++) {
        double mean = 0;
        for (int t = 0; t < r->k; t++) mean += e[member(r, i, t)];
        mean /= r->k;
        for (int t = 0; t < r->k; t++) {
            size_t j = member(r, i, t);
            a[j] = (float)(1.0 / r->k + (double)e[j] - mean);
        }
    }
}

/* what one call maps: the arenas of both models, and the scratch of widen_direct */
typedef struct width_job {
    width_op op;
    int k, narena;
    const sp_model *small, *large, *src;
    float *const *src_arena, *const *dst_arena; /* params, m, v of src and dst */
    double noise;
    uint64_t seed;
    int event;
    float *e, *a; /* [largest in-axis of the large spec] or NULL */
} width_job;

/* widen_zero / widen_random on one tensor of arena ar (0 params, 1 m, 2 v); lt is the large
 * tensor. Old entries land on copy 0 of the fold, i.e. in place. New entries of the params:
 * LayerNorm gains 1, other vectors 0; a matrix is first filled from the init distribution, keyed
 * by the element index in the large tensor (layout-independent), then widen_zero zeroes the new
 * columns of the old rows (old inputs reach new outputs through 0, so new channels stay 0 at
 * first; docs/growth.md), widen_random keeps them random. New moments are 0. */
static void append_tensor(const width_job *j, const sp_tensor_info *ro, const sp_tensor_info *lt,
                          uint64_t id, int ar, const width_view *g, const float *src, float *dst) {
    const width_axis *r = &g->in, *c = &g->out;
    size_t ncl = c->n * (size_t)c->k; /* large out-axis length */
    int zero_rows = 0;
    if (ar > 0 || lt->ndim == 1) {
        float v = ar == 0 && ro->gain ? 1.0f : 0.0f;
        for (size_t i = 0; i < lt->numel; i++) dst[i] = v;
    } else {
        sp_rng_normal_fill(dst, lt->numel, sp_model_init_std(&j->large->spec, lt), j->seed,
                           SP_RNG_GROW_INIT, width_key(j->event, 1, id), 0);
        zero_rows = j->op == W_WIDEN_ZERO;
    }
    for (size_t i0 = 0; i0 < r->n; i0++) {
        float *row = dst + member(r, i0, 0) * g->l_in; /* old input i0 to every output */
        if (zero_rows)
            for (size_t J1 = 0; J1 < ncl; J1++) row[J1 * g->l_out] = 0.0f;
        for (size_t i1 = 0; i1 < c->n; i1++)
            row[member(c, i1, 0) * g->l_out] = src[i0 * g->s_in + i1 * g->s_out];
    }
}

/* Maps one slab (block >= 0, or the globals) in every arena. The small model's tensor table gives
 * the geometry; offsets come from each side's own table. */
static void map_slab(const width_job *j, int block, int nt, const sp_tensor_info *st,
                     const sp_tensor_info *lt) {
    int shrink = j->op == W_COALESCE;
    for (int ti = 0; ti < nt; ti++) {
        const sp_tensor_info *ro = &st[ti]; /* the axis roles, gain and tied flags */
        width_view g = make_view(ro, &j->small->spec, j->k);
        const float *a = NULL;
        if (j->op == W_WIDEN_DIRECT && j->a && g.in.k > 1) {
            split_coeffs(&g.in, j->noise, j->seed, j->event, sp_model_tensor_id(block, ti), j->e,
                         j->a);
            a = j->a;
        }
        const sp_tensor_info *ts = shrink ? &lt[ti] : &st[ti], *td = shrink ? &st[ti] : &lt[ti];
        const sp_model *dm = shrink ? j->small : j->large;
        for (int ar = 0; ar < j->narena; ar++) {
            const float *s = block < 0 ? sp_model_globals(j->src, j->src_arena[ar])
                                       : sp_model_block(j->src, j->src_arena[ar], block);
            float *d = block < 0 ? sp_model_globals(dm, j->dst_arena[ar])
                                 : sp_model_block(dm, j->dst_arena[ar], block);
            width_xf x = {j->k, ar == 2 ? 2 : 1, a};
            if (shrink)
                coalesce_tensor(&x, &g, ro->tied, s + ts->offset, d + td->offset);
            else if (is_append(j->op))
                append_tensor(j, ro, td, sp_model_tensor_id(block, ti), ar, &g, s + ts->offset,
                              d + td->offset);
            else
                decoalesce_tensor(&x, &g, ro->tied, s + ts->offset, d + td->offset);
        }
    }
}

static int check_pair(const char *op, int k, const sp_model *src, const sp_model *dst,
                      sp_err *err) {
    sp_spec want;
    if (sp_grow_width_spec(op, &src->spec, k, &want, err)) return err->code;
    if (src == dst) return sp_err_set(err, SP_EINPUT, "%s: src and dst are the same model", op);
    if (src->lo != dst->lo || src->hi != dst->hi || src->has_embed != dst->has_embed ||
        src->has_head != dst->has_head)
        return sp_err_set(err, SP_EINPUT,
                          "%s: dst holds blocks [%d, %d) (embed %d, head %d), src holds [%d, %d) "
                          "(embed %d, head %d)",
                          op, dst->lo, dst->hi, dst->has_embed, dst->has_head, src->lo, src->hi,
                          src->has_embed, src->has_head);
    const sp_spec *h = &dst->spec;
    if (!sp_spec_equal(h, &want))
        return sp_err_set(err, SP_EINPUT,
                          "%s: dst spec (d_model %d, n_head %d, d_ff %d, vocab %d, seq_len %d, "
                          "n_layer %d) is not the spec after k = %d (d_model %d, n_head %d, d_ff "
                          "%d, vocab %d, seq_len %d, n_layer %d)",
                          op, h->d_model, h->n_head, h->d_ff, h->vocab, h->seq_len, h->n_layer, k,
                          want.d_model, want.n_head, want.d_ff, want.vocab, want.seq_len,
                          want.n_layer);
    return SP_OK;
}

int sp_grow_width(const char *op, int k, const sp_model *src, sp_model *dst, int moments,
                  double noise, uint64_t seed, int event, sp_err *err) {
    width_op o = parse_width_op(op);
    if (check_pair(op, k, src, dst, err)) return err->code;
    /* a fade-in still running has no place in the new channel order (and two cannot be stacked) */
    if (src->plan.mask_d > 0 && src->plan.mask_c < 1.0f)
        return sp_err_set(err, SP_EINPUT,
                          "%s: the channels of an earlier widening are still fading in (mask_c = "
                          "%g < 1)",
                          op, src->plan.mask_c);
    if (o == W_WIDEN_DIRECT && !(noise >= 0 && isfinite(noise)))
        return sp_err_set(err, SP_EINPUT, "widen_direct: noise = %g, need a finite value >= 0",
                          noise);
    float *const src_ar[3] = {src->params, src->m, src->v};
    float *const dst_ar[3] = {dst->params, dst->m, dst->v};
    width_job j = {.op = o,
                   .k = k,
                   .narena = moments ? 3 : 1,
                   .small = o == W_COALESCE ? dst : src,
                   .large = o == W_COALESCE ? src : dst,
                   .src = src,
                   .src_arena = src_ar,
                   .dst_arena = dst_ar,
                   .noise = noise,
                   .seed = seed,
                   .event = event};
    if (o == W_WIDEN_DIRECT && noise > 0) {
        /* noise 0 takes the even split's path, so it gives decoalesce_width bit for bit */
        const sp_spec *ls = &dst->spec;
        size_t n = (size_t)(ls->d_model > ls->d_ff ? ls->d_model : ls->d_ff);
        j.e = malloc(2 * n * sizeof(float));
        if (!j.e) return sp_err_set(err, SP_ERUNTIME, "%s: out of memory", op);
        j.a = j.e + n;
    }
    if (src->global_numel) map_slab(&j, -1, j.small->ngt, j.small->gt, j.large->gt);
    for (int b = src->lo; b < src->hi; b++) map_slab(&j, b, j.small->nbt, j.small->bt, j.large->bt);
    free(j.e);

    memset(dst->grads, 0, dst->numel * sizeof(float));
    size_t ns = (size_t)(src->hi - src->lo) + 1;
    if (moments) {
        memcpy(dst->steps, src->steps, ns * sizeof *dst->steps);
    } else {
        memset(dst->m, 0, dst->numel * sizeof(float));
        memset(dst->v, 0, dst->numel * sizeof(float));
        memset(dst->steps, 0, ns * sizeof *dst->steps);
    }
    memcpy(dst->plan.scale, src->plan.scale, (size_t)src->spec.n_layer * sizeof *dst->plan.scale);
    /* the appended channels start masked out (the model is the small one), the ramp of mask_c is
     * the trainer's; the other operators leave no mask */
    int app = is_append(o);
    dst->plan.mask_d = app ? src->spec.d_model : 0;
    dst->plan.mask_f = app ? src->spec.d_ff : 0;
    dst->plan.mask_out = o == W_WIDEN_RANDOM;
    dst->plan.mask_c = app ? 0.0f : 1.0f;
    return SP_OK;
}
