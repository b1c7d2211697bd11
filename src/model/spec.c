/* The spec: its field table, checks, the slab layout of the kind's tensor tables, Hugging Face
 * names, parameter and FLOP counts. What a block holds comes from the kind (kind_<name>.c). */
#include "sprout/model.h"

#include <stddef.h>
#include <stdio.h>

/* Parameters above 2^40 (4 TiB of weights per arena) are refused, so that every slab size and
 * offset computed from a spec fits size_t with room to spare, whatever a config or a checkpoint
 * says. The sum is taken in double: it cannot overflow. */
#define MAX_PARAMS 0x1p40

#define FIELD(n)                                                                                   \
    { #n, offsetof(sp_spec, n) }
/* in the order checkpoints have always written them */
const sp_spec_field sp_spec_fields[] = {FIELD(vocab),  FIELD(seq_len), FIELD(d_model),
                                        FIELD(n_head), FIELD(d_ff),    FIELD(n_layer)};
const int sp_spec_nfields = (int)(sizeof sp_spec_fields / sizeof sp_spec_fields[0]);

const sp_spec_hparam sp_spec_hparams[] = {{"norm_eps", 'f', offsetof(sp_spec, norm_eps)},
                                          {"rope_theta", 'f', offsetof(sp_spec, rope_theta)},
                                          {"tie_head", 'i', offsetof(sp_spec, tie_head)}};
const int sp_spec_nhparams = (int)(sizeof sp_spec_hparams / sizeof sp_spec_hparams[0]);

int sp_spec_diff(const sp_spec *a, const sp_spec *b) {
    for (int i = 0; i < sp_spec_nfields; i++)
        if (sp_spec_get(a, i) != sp_spec_get(b, i)) return i;
    return -1;
}

int sp_spec_equal(const sp_spec *a, const sp_spec *b) {
    return sp_spec_diff(a, b) < 0 && a->kind == b->kind && !sp_spec_hparams_differ(a, b);
}

int sp_spec_hparams_differ(const sp_spec *a, const sp_spec *b) {
    return a->norm_eps != b->norm_eps || a->rope_theta != b->rope_theta ||
           a->tie_head != b->tie_head;
}

void sp_spec_describe(const sp_spec *s, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "block %s", sp_kind_of(s)->name);
    for (int i = 0; i < sp_spec_nfields && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, ", %s %d", sp_spec_fields[i].name, sp_spec_get(s, i));
    if (sp_kind_of(s)->hparams && k < n)
        snprintf(buf + k, n - k, ", norm_eps %g, rope_theta %g, tie_head %d", s->norm_eps,
                 s->rope_theta, s->tie_head);
}

/* the parameters of one slab of n tensors, in double */
static double params_of(const sp_tensor_info *t, int n) {
    double p = 0;
    for (int i = 0; i < n; i++)
        p += (double)t[i].dims[0] * (double)(t[i].ndim == 2 ? t[i].dims[1] : 1);
    return p;
}

int sp_spec_check(const sp_spec *s, sp_err *err) {
    /* each check names the field it is about: a crafted checkpoint may break any one of them */
    if (s->kind < 0 || s->kind >= sp_nkinds)
        return sp_err_set(err, SP_EINPUT, "model.block: kind %d is not one of %s", s->kind,
                          sp_kind_names());
    if (s->vocab < 1 || s->vocab > 65536)
        return sp_err_set(err, SP_EINPUT, "model.vocab: %d is out of range 1..65536", s->vocab);
    if (s->seq_len < 1)
        return sp_err_set(err, SP_EINPUT, "model.seq_len: %d must be positive", s->seq_len);
    if (s->d_model < 1)
        return sp_err_set(err, SP_EINPUT, "model.d_model: %d must be positive", s->d_model);
    if (s->n_head < 1)
        return sp_err_set(err, SP_EINPUT, "model.n_head: %d must be positive", s->n_head);
    if (s->d_model % s->n_head)
        return sp_err_set(err, SP_EINPUT, "model.n_head: %d does not divide model.d_model = %d",
                          s->n_head, s->d_model);
    if (s->d_ff < 1) return sp_err_set(err, SP_EINPUT, "model.d_ff: %d must be positive", s->d_ff);
    if (s->n_layer < 0)
        return sp_err_set(err, SP_EINPUT, "model.n_layer: %d must be >= 0", s->n_layer);
    const sp_kind *k = sp_kind_of(s);
    if (k->hparams && !(s->norm_eps > 0 && s->norm_eps < 1))
        return sp_err_set(err, SP_EINPUT, "model.norm_eps: %g is out of range (0, 1)", s->norm_eps);
    if (k->hparams && !(s->rope_theta > 1 && s->rope_theta < 1e30))
        return sp_err_set(err, SP_EINPUT, "model.rope_theta: %g is out of range (1, 1e30)",
                          s->rope_theta);
    if (k->hparams && s->tie_head != 0 && s->tie_head != 1)
        return sp_err_set(err, SP_EINPUT, "model.tie_head: %d is not 0 or 1", s->tie_head);
    if (k->aux_floats && (s->d_model / s->n_head) % 2)
        return sp_err_set(err, SP_EINPUT,
                          "model.n_head: the head size %d must be even for rotary embeddings",
                          s->d_model / s->n_head);
    if (!k->hparams && (s->norm_eps != 0 || s->rope_theta != 0 || s->tie_head != 0))
        return sp_err_set(err, SP_EINPUT,
                          "model.block: %s has no norm_eps, rope_theta or tie_head setting",
                          k->name);
    sp_tensor_info bt[SP_MAX_TENSORS], gt[SP_MAX_TENSORS];
    int nb = k->block_tensors(s, bt), ng = k->global_tensors(s, gt);
    double n = (double)s->n_layer * params_of(bt, nb) + params_of(gt, ng);
    if (n > MAX_PARAMS)
        return sp_err_set(err, SP_EINPUT,
                          "model: %.3g parameters (d_model %d, d_ff %d, n_layer %d) is more than "
                          "the 2^40 sprout supports",
                          n, s->d_model, s->d_ff, s->n_layer);
    return SP_OK;
}

/* Fills offsets from the shapes in table order so that the slab layout is defined in one place. */
static void lay_out(sp_tensor_info *t, int n) {
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        t[i].numel = (size_t)t[i].dims[0] * (size_t)(t[i].ndim == 2 ? t[i].dims[1] : 1);
        t[i].offset = off;
        t[i].decay = t[i].ndim == 2;
        off += t[i].numel;
    }
}

int sp_spec_block_tensors(const sp_spec *s, sp_tensor_info out[SP_MAX_TENSORS]) {
    int n = sp_kind_of(s)->block_tensors(s, out);
    lay_out(out, n);
    return n;
}

int sp_spec_global_tensors(const sp_spec *s, sp_tensor_info out[SP_MAX_TENSORS]) {
    int n = sp_kind_of(s)->global_tensors(s, out);
    lay_out(out, n);
    return n;
}

static size_t slab_numel(const sp_tensor_info *t, int n) {
    return n ? t[n - 1].offset + t[n - 1].numel : 0;
}

size_t sp_spec_block_numel(const sp_spec *s) {
    sp_tensor_info t[SP_MAX_TENSORS];
    return slab_numel(t, sp_spec_block_tensors(s, t));
}

size_t sp_spec_global_numel(const sp_spec *s) {
    sp_tensor_info t[SP_MAX_TENSORS];
    return slab_numel(t, sp_spec_global_tensors(s, t));
}

size_t sp_spec_num_params(const sp_spec *s) {
    return sp_spec_global_numel(s) + (size_t)s->n_layer * sp_spec_block_numel(s);
}

void sp_spec_hf_name(char *buf, size_t n, const sp_spec *s, int block, const sp_tensor_info *t) {
    if (block < 0)
        snprintf(buf, n, "%s", t->name);
    else
        snprintf(buf, n, sp_kind_of(s)->hf_block, block, t->name);
}

double sp_spec_flops_per_token(const sp_spec *s, int n_exec) {
    /* the parameters a token touches through a matrix product: lookups (positions) excluded */
    sp_tensor_info gt[SP_MAX_TENSORS];
    int ng = sp_spec_global_tensors(s, gt);
    double n = (double)sp_spec_global_numel(s);
    for (int i = 0; i < ng; i++)
        if (gt[i].lookup) n -= (double)gt[i].numel;
    n += (double)n_exec * (double)sp_spec_block_numel(s);
    return 6.0 * n + (double)n_exec * sp_kind_of(s)->attn_flops(s);
}
