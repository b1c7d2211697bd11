/* Whole-model checks: gradient accumulation over micro-batches and layout-independent init.
 * The whole model's gradients are checked against central finite differences in double in
 * tests/torch/check_parity.py: an fp32 forward is too noisy (~1e-7 per token loss) for a sharp
 * finite-difference check of small gradients, so the float64 reference model provides the
 * function and sprout provides the gradients. */
#include "sprout/kernels.h"
#include "sprout/model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sp_spec k_spec = {17, 8, 16, 2, 64, 2, 0, 0, 0, 0};
enum { B = 2 };

typedef struct fixture {
    sp_model m;
    sp_acts a;
    sp_scratch s;
    int32_t inp[B * 8], tgt[B * 8];
} fixture;

static void setup(fixture *f, tu_ctx *t) {
    sp_err err = {0};
    int rc = sp_model_create(&f->m, &k_spec, 0, k_spec.n_layer, 1, 1, &err);
    rc |= sp_acts_create(&f->a, &f->m, B, k_spec.seq_len, &err);
    rc |= sp_scratch_create(&f->s, &f->m, B, k_spec.seq_len, &err);
    tu_check(t, rc == 0, "model set-up: %s", err.msg);
    sp_model_init(&f->m, 5);
    /* unit gains and zero biases would hide mistakes in their gradients */
    for (size_t i = 0; i < f->m.numel; i++)
        f->m.params[i] += 0.05f * (sp_rng_uniform(9, SP_RNG_TEST, 0, i) - 0.5f);
    for (int i = 0; i < B * k_spec.seq_len; i++) {
        f->inp[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 1, (uint64_t)i) % 17);
        f->tgt[i] = (int32_t)(sp_rng_u64(9, SP_RNG_TEST, 2, (uint64_t)i) % 17);
    }
}

static void teardown(fixture *f) {
    sp_model_free(&f->m);
    sp_acts_free(&f->a);
    sp_scratch_free(&f->s);
}

static double loss_of(fixture *f) {
    sp_model_embed_forward(&f->m, &f->a, f->inp);
    sp_model_blocks_forward(&f->m, &f->a);
    sp_model_head_forward(&f->m, &f->a, f->tgt);
    double s = 0;
    for (int i = 0; i < B * k_spec.seq_len; i++) s += f->a.losses[i];
    return s / (B * k_spec.seq_len);
}

static void backward(fixture *f) {
    memset(f->m.grads, 0, f->m.numel * sizeof(float));
    loss_of(f);
    sp_model_head_backward(&f->m, &f->a, &f->s, f->tgt, 1.0f / (B * k_spec.seq_len));
    sp_model_blocks_backward(&f->m, &f->a, &f->s, NULL, NULL);
    sp_model_embed_backward(&f->m, &f->a, &f->s, f->inp);
}

/* Two half-size micro-batches accumulate to the full batch's gradient. */
static void test_accumulation(tu_ctx *t) {
    fixture f;
    setup(&f, t);
    backward(&f);
    size_t n = f.m.numel;
    float *full = malloc(n * sizeof(float));
    memcpy(full, f.m.grads, n * sizeof(float));
    sp_acts half;
    sp_err err = {0};
    sp_acts_create(&half, &f.m, 1, k_spec.seq_len, &err);
    memset(f.m.grads, 0, n * sizeof(float));
    int T = k_spec.seq_len;
    for (int k = 0; k < B; k++) {
        sp_model_embed_forward(&f.m, &half, f.inp + k * T);
        sp_model_blocks_forward(&f.m, &half);
        sp_model_head_forward(&f.m, &half, f.tgt + k * T);
        sp_model_head_backward(&f.m, &half, &f.s, f.tgt + k * T, 1.0f / (B * T));
        sp_model_blocks_backward(&f.m, &half, &f.s, NULL, NULL);
        sp_model_embed_backward(&f.m, &half, &f.s, f.inp + k * T);
    }
    double rel = tu_rel_maxabs(f.m.grads, full, n);
    tu_check(t, rel < 1e-5, "accumulated micro-batch gradients differ: %.3g", rel);
    sp_acts_free(&half);
    free(full);
    teardown(&f);
}

/* A stage holding blocks [1, 2) initialises them exactly as the whole model does. */
static void test_init_layout(tu_ctx *t) {
    sp_model a, b;
    sp_err err = {0};
    sp_model_create(&a, &k_spec, 0, 2, 1, 1, &err);
    sp_model_create(&b, &k_spec, 1, 2, 0, 1, &err);
    sp_model_init(&a, 77);
    sp_model_init(&b, 77);
    tu_check(t,
             !memcmp(sp_model_block(&a, a.params, 1), sp_model_block(&b, b.params, 1),
                     a.block_numel * sizeof(float)),
             "block 1 init depends on the stage layout");
    tu_check(t, !memcmp(a.params, b.params, a.global_numel * sizeof(float)),
             "globals init depends on the stage layout");
    /* residual projections get the 1/sqrt(2 n_layer) scaled std */
    const sp_tensor_info *w = &a.bt[SP_ATTPROJ_W], *q = &a.bt[SP_QKV_W];
    float *s = sp_model_block(&a, a.params, 0);
    double sw = sqrt(sp_sumsq(s + w->offset, w->numel) / (double)w->numel);
    double sq = sqrt(sp_sumsq(s + q->offset, q->numel) / (double)q->numel);
    tu_check(t, fabs(sq - 0.02) < 0.002, "qkv init std %.4f, want 0.02", sq);
    tu_check(t, fabs(sw - 0.01) < 0.0015, "attn proj init std %.4f, want 0.02/sqrt(4)", sw);
    sp_model_free(&a);
    sp_model_free(&b);
}

/* A spec from a crafted checkpoint: each broken field is the one the message names. */
static void test_spec_check(tu_ctx *t) {
    struct {
        sp_spec s;
        const char *msg;
    } cases[] = {
        {{0, 8, 16, 2, 64, 2, 0, 0, 0, 0}, "model.vocab: 0 is out of range"},
        {{17, 0, 16, 2, 64, 2, 0, 0, 0, 0}, "model.seq_len: 0 must be positive"},
        {{17, 8, 0, 2, 64, 2, 0, 0, 0, 0}, "model.d_model: 0 must be positive"},
        {{17, 8, -16, 2, 64, 2, 0, 0, 0, 0}, "model.d_model: -16 must be positive"},
        {{17, 8, 16, 0, 64, 2, 0, 0, 0, 0}, "model.n_head: 0 must be positive"},
        {{17, 8, 16, 3, 64, 2, 0, 0, 0, 0}, "model.n_head: 3 does not divide model.d_model = 16"},
        {{17, 8, 16, 2, 0, 2, 0, 0, 0, 0}, "model.d_ff: 0 must be positive"},
        {{17, 8, 16, 2, 64, -1, 0, 0, 0, 0}, "model.n_layer: -1 must be >= 0"},
        {{17, 8, 2147483647, 1, 64, 2, 0, 0, 0, 0}, "parameters (d_model 2147483647"},
        {{17, 8, 16, 2, 64, 2, 99, 0, 0, 0}, "model.block: kind 99 is not one of gpt2"},
        {{17, 8, 16, 2, 64, 2, -1, 0, 0, 0}, "model.block: kind -1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sp_err err = {0};
        int rc = sp_spec_check(&cases[i].s, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, cases[i].msg), "spec %zu: '%s', want '%s'",
                 i, err.msg, cases[i].msg);
    }
    /* the bound uses the parameter count of the real layout */
    sp_err err = {0};
    double C = 16, F = 64;
    double n = 2 * (4 * C * C + 2 * C * F + 9 * C + F) + (17 + 8 + 2) * C;
    tu_check(t, sp_spec_check(&k_spec, &err) == SP_OK && n == (double)sp_spec_num_params(&k_spec),
             "parameter formula of sp_spec_check: %g vs %zu", n, sp_spec_num_params(&k_spec));
}

/* The kind table and gpt2's descriptor: the facts the rest of sprout reads from it. */
static void test_kinds(tu_ctx *t) {
    tu_check(t,
             sp_nkinds >= 1 && sp_kind_find("gpt2") == 0 && sp_kind_find("GPT2") < 0 &&
                 sp_kind_find("") < 0 && sp_kind_find(NULL) < 0,
             "kind lookup");
    const sp_kind *k = sp_kind_of(&k_spec);
    sp_tensor_info bt[SP_MAX_TENSORS], gt[SP_MAX_TENSORS];
    int nb = sp_spec_block_tensors(&k_spec, bt), ng = sp_spec_global_tensors(&k_spec, gt);
    tu_check(t, k == sp_kinds[0] && nb == SP_BLOCK_NT && ng == SP_GLOBAL_NT,
             "gpt2 tables: %d block and %d global tensors", nb, ng);
    /* G_zero's identity tensors: the two output projections, weight and bias; the gains are
     * exactly the LayerNorm weights */
    for (int j = 0; j < nb; j++) {
        int zero = j == SP_ATTPROJ_W || j == SP_ATTPROJ_B || j == SP_FCPROJ_W || j == SP_FCPROJ_B;
        int gain = j == SP_LN1_W || j == SP_LN2_W;
        tu_check(t, bt[j].zero_id == zero && bt[j].gain == gain && !bt[j].lookup,
                 "%s: zero_id %d gain %d", bt[j].name, bt[j].zero_id, bt[j].gain);
    }
    tu_check(t,
             gt[SP_WPE].lookup && !gt[SP_WTE].lookup && gt[SP_LNF_W].gain && gt[SP_LNF_W].tied &&
                 gt[SP_LNF_B].tied && !gt[SP_LNF_B].gain,
             "gpt2 globals: wpe a lookup, ln_f tied, its weight a gain");
    /* the FLOP count against the closed form it replaced: 6 N_exec + 12 n_exec C T */
    double C = k_spec.d_model, T = k_spec.seq_len;
    double want = 6.0 * ((double)sp_spec_global_numel(&k_spec) - T * C +
                         3.0 * (double)sp_spec_block_numel(&k_spec)) +
                  12.0 * 3 * C * T;
    tu_check(t, sp_spec_flops_per_token(&k_spec, 3) == want, "flops %g, want %g",
             sp_spec_flops_per_token(&k_spec, 3), want);
    char name[96], desc[256];
    sp_spec_hf_name(name, sizeof name, &k_spec, 3, &bt[SP_FC_W]);
    sp_spec_describe(&k_spec, desc, sizeof desc);
    tu_check(t,
             !strcmp(name, "transformer.h.3.mlp.c_fc.weight") &&
                 !strcmp(desc, "block gpt2, vocab 17, seq_len 8, d_model 16, n_head 2, d_ff 64, "
                               "n_layer 2"),
             "names: '%s', '%s'", name, desc);
    sp_spec other = k_spec;
    other.d_ff = 32;
    tu_check(t,
             sp_spec_diff(&k_spec, &k_spec) < 0 && sp_spec_diff(&k_spec, &other) >= 0 &&
                 !strcmp(sp_spec_fields[sp_spec_diff(&k_spec, &other)].name, "d_ff"),
             "spec field table");
    /* llama: HF's names, zero_id on the projections onto the residual stream, the untied head
     * a global of its own and the embedding then a lookup; tied: two globals */
    int li = sp_kind_find("llama");
    sp_spec ls = {17, 8, 16, 2, 0, 2, li, 0, 1e-5, 10000};
    ls.d_ff = sp_kinds[li]->default_d_ff(ls.d_model);
    nb = sp_spec_block_tensors(&ls, bt), ng = sp_spec_global_tensors(&ls, gt);
    int zeros = 0, gains = 0;
    for (int j = 0; j < nb; j++) zeros += bt[j].zero_id, gains += bt[j].gain;
    sp_spec_hf_name(name, sizeof name, &ls, 1, &bt[6]);
    tu_check(t,
             li == 1 && nb == 9 && ng == 3 && zeros == 2 && gains == 2 && gt[0].lookup &&
                 !strcmp(gt[2].name, "lm_head.weight") && bt[1].dims[0] == 16 &&
                 !strcmp(name, "model.layers.1.mlp.gate_proj.weight") && bt[6].dims[0] == 64 &&
                 bt[6].dims[1] == 16 && sp_spec_check(&ls, NULL) == SP_OK,
             "llama tables: %d block, %d global tensors, '%s'", nb, ng, name);
    ls.tie_head = 1;
    ng = sp_spec_global_tensors(&ls, gt);
    tu_check(t, ng == 2 && !gt[0].lookup, "llama tied: %d globals", ng);
    tu_check(t,
             sp_kinds[li]->default_d_ff(384) == 1024 && sp_kinds[li]->default_d_ff(4096) == 10944 &&
                 sp_kinds[0]->default_d_ff(384) == 1536,
             "default d_ff");
    struct {
        sp_spec s;
        const char *msg;
    } bad[] = {
        {{17, 8, 18, 2, 64, 2, 1, 0, 1e-5, 10000}, "head size 9 must be even"},
        {{17, 8, 16, 2, 64, 2, 1, 0, 0, 10000}, "model.norm_eps: 0 is out of range"},
        {{17, 8, 16, 2, 64, 2, 1, 0, 1e-5, 1}, "model.rope_theta: 1 is out of range"},
        {{17, 8, 16, 2, 64, 2, 0, 0, 0, 10000}, "gpt2 has no norm_eps, rope_theta or tie_head"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp_err err = {0};
        int rc = sp_spec_check(&bad[i].s, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, bad[i].msg), "bad spec %zu: '%s', want '%s'",
                 i, err.msg, bad[i].msg);
    }
    tu_check(t,
             sp_objective_find("causal") == 0 && sp_objective_find("masked ") < 0 &&
                 sp_objectives[0].count_all,
             "objective table");
    /* bert: 16 block and 10 global tensors in HF's [out, in], the fused q|k|v weights then their
     * biases, the two output denses as G_zero's tensors, four gains per block, position and
     * token type lookups, the head tied to word_embeddings (not a lookup), the masked objective;
     * an odd head size is fine (no rotary table) */
    int bi = sp_kind_find("bert"), mi = sp_objective_find("masked");
    sp_spec bs = {17, 8, 18, 2, 0, 2, bi, 1, 1e-12, 10000};
    bs.d_ff = sp_kinds[bi]->default_d_ff(bs.d_model);
    nb = sp_spec_block_tensors(&bs, bt), ng = sp_spec_global_tensors(&bs, gt);
    zeros = gains = 0;
    for (int j = 0; j < nb; j++) zeros += bt[j].zero_id, gains += bt[j].gain;
    sp_spec_hf_name(name, sizeof name, &bs, 1, &bt[10]);
    char gname[128];
    sp_spec_hf_name(gname, sizeof gname, &bs, -1, &gt[9]);
    tu_check(t,
             bi == 2 && nb == 16 && ng == 10 && zeros == 4 && gains == 2 && bs.d_ff == 72 &&
                 !strcmp(name, "bert.encoder.layer.1.intermediate.dense.weight") &&
                 bt[10].dims[0] == 72 && bt[10].dims[1] == 18 && bt[1].offset == 18 * 18 &&
                 bt[3].offset == 3 * 18 * 18 && !gt[0].lookup && gt[1].lookup && gt[2].lookup &&
                 gt[2].dims[0] == 1 && !strcmp(gname, "cls.predictions.bias") &&
                 gt[9].numel == 17 && sp_spec_check(&bs, NULL) == SP_OK,
             "bert tables: %d block, %d global tensors, '%s', '%s'", nb, ng, name, gname);
    tu_check(t,
             mi == 1 && !sp_objectives[mi].count_all && sp_objectives[mi].prepare &&
                 !strcmp(sp_kinds[bi]->objective, "masked") &&
                 !strcmp(sp_kinds[0]->objective, "causal") &&
                 !strcmp(sp_kinds[li]->objective, "causal") && sp_kinds[bi]->always_tied &&
                 sp_kinds[bi]->default_norm_eps == 1e-12 && sp_kinds[li]->default_norm_eps == 1e-5,
             "bert: objective row and kind fields");
}

int main(void) {
    tu_ctx t = {0};
    test_kinds(&t);
    test_spec_check(&t);
    test_accumulation(&t);
    test_init_layout(&t);
    return tu_finish(&t, "model");
}
