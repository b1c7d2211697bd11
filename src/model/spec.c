/* The GPT-2 spec: tensor tables, Hugging Face names, parameter and FLOP counts. */
#include "sprout/model.h"

#include <stdio.h>

/* Parameters above 2^40 (4 TiB of weights per arena) are refused, so that every slab size and
 * offset computed from a spec fits size_t with room to spare, whatever a config or a checkpoint
 * says. The sum is taken in double: it cannot overflow. */
#define MAX_PARAMS 0x1p40

int sp_spec_check(const sp_spec *s, sp_err *err) {
    /* each check names the field it is about: a crafted checkpoint may break any one of them */
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
    double C = s->d_model, F = s->d_ff;
    double n = (double)s->n_layer * (4 * C * C + 2 * C * F + 9 * C + F) +
               ((double)s->vocab + s->seq_len + 2) * C;
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

void sp_spec_block_tensors(const sp_spec *s, sp_tensor_info out[SP_BLOCK_NT]) {
    int64_t C = s->d_model, F = s->d_ff;
    const sp_tensor_info tab[SP_BLOCK_NT] = {
        [SP_LN1_W] = {"ln_1.weight", 1, {C, 0}, 0, 0, 0, 0},
        [SP_LN1_B] = {"ln_1.bias", 1, {C, 0}, 0, 0, 0, 0},
        [SP_QKV_W] = {"attn.c_attn.weight", 2, {C, 3 * C}, 0, 0, 0, 0},
        [SP_QKV_B] = {"attn.c_attn.bias", 1, {3 * C, 0}, 0, 0, 0, 0},
        [SP_ATTPROJ_W] = {"attn.c_proj.weight", 2, {C, C}, 0, 0, 0, 1},
        [SP_ATTPROJ_B] = {"attn.c_proj.bias", 1, {C, 0}, 0, 0, 0, 0},
        [SP_LN2_W] = {"ln_2.weight", 1, {C, 0}, 0, 0, 0, 0},
        [SP_LN2_B] = {"ln_2.bias", 1, {C, 0}, 0, 0, 0, 0},
        [SP_FC_W] = {"mlp.c_fc.weight", 2, {C, F}, 0, 0, 0, 0},
        [SP_FC_B] = {"mlp.c_fc.bias", 1, {F, 0}, 0, 0, 0, 0},
        [SP_FCPROJ_W] = {"mlp.c_proj.weight", 2, {F, C}, 0, 0, 0, 1},
        [SP_FCPROJ_B] = {"mlp.c_proj.bias", 1, {C, 0}, 0, 0, 0, 0},
    };
    for (int i = 0; i < SP_BLOCK_NT; i++) out[i] = tab[i];
    lay_out(out, SP_BLOCK_NT);
}

void sp_spec_global_tensors(const sp_spec *s, sp_tensor_info out[SP_GLOBAL_NT]) {
    int64_t C = s->d_model;
    const sp_tensor_info tab[SP_GLOBAL_NT] = {
        [SP_WTE] = {"transformer.wte.weight", 2, {s->vocab, C}, 0, 0, 0, 0},
        [SP_WPE] = {"transformer.wpe.weight", 2, {s->seq_len, C}, 0, 0, 0, 0},
        [SP_LNF_W] = {"transformer.ln_f.weight", 1, {C, 0}, 0, 0, 0, 0},
        [SP_LNF_B] = {"transformer.ln_f.bias", 1, {C, 0}, 0, 0, 0, 0},
    };
    for (int i = 0; i < SP_GLOBAL_NT; i++) out[i] = tab[i];
    lay_out(out, SP_GLOBAL_NT);
}

size_t sp_spec_block_numel(const sp_spec *s) {
    sp_tensor_info t[SP_BLOCK_NT];
    sp_spec_block_tensors(s, t);
    return t[SP_BLOCK_NT - 1].offset + t[SP_BLOCK_NT - 1].numel;
}

size_t sp_spec_global_numel(const sp_spec *s) {
    sp_tensor_info t[SP_GLOBAL_NT];
    sp_spec_global_tensors(s, t);
    return t[SP_GLOBAL_NT - 1].offset + t[SP_GLOBAL_NT - 1].numel;
}

size_t sp_spec_num_params(const sp_spec *s) {
    return sp_spec_global_numel(s) + (size_t)s->n_layer * sp_spec_block_numel(s);
}

void sp_spec_hf_name(char *buf, size_t n, int block, const sp_tensor_info *t) {
    if (block < 0)
        snprintf(buf, n, "%s", t->name);
    else
        snprintf(buf, n, "transformer.h.%d.%s", block, t->name);
}

double sp_spec_flops_per_token(const sp_spec *s, int n_exec) {
    double n = (double)sp_spec_global_numel(s) - (double)s->seq_len * s->d_model;
    n += (double)n_exec * (double)sp_spec_block_numel(s);
    return 6.0 * n + 12.0 * n_exec * (double)s->d_model * s->seq_len;
}
