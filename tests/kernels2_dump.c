/* Runs the LLaMA / BERT kernels on counter-RNG inputs and writes inputs and results to an HDF5
 * file for tests/torch/check_kernels2.py, which recomputes each with the PyTorch references
 * (llama_ref.py, bert_ref.py) in float64 and compares.
 *
 * One group per case; inputs and outputs float32 (ids int32), sizes and parameters as int /
 * double attributes of the group. Gradient buffers start at zero, so a backward's output is its
 * gradient. Layouts are the kernels' (include/sprout/kernels.h):
 *   rmsnorm      x [N,C], w [C], dy [N,C]            -> y, dx, dw                 attrs eps
 *   layernorm    x, w, b, dy                         -> y, dx, dw, db             attrs eps
 *   rope         qkv [B,T,3C], dy [B,T,3C]           -> tab [T,hd], y, dx         attrs NH, theta
 *   swiglu       ab [N,2F] (a | b per row), dh [N,F] -> h, dab
 *   gelu_erf     x [n], dy [n]                       -> y, dx
 *   attn_bidir,  qkv [B,T,3C], dy [B,T,C]            -> y, att [B,NH,T,T], dx     attrs NH, causal
 *   attn_causal
 *   mlm_loss     logits [N,V], targets [N]           -> loss [1], losses [N], dlogits  attrs norm
 *   mlm_mask     tokens [G,T]                        -> inputs, targets [G,T]     attrs seed, step,
 *                                                                                 n_normal
 *   llama_block, x [B,T,C], dy, every weight W (flat,   -> y, dx, dW per weight      attrs NH, F,
 * eps bert_block   sprout's [in, out] layout)                                        (theta) The
 * two blocks are the kernels wired as a model would wire them (the functions below): one
 * LlamaDecoderLayer and one BertLayer.
 * usage: sp_kernels2_dump OUT.h5 */
#include "sprout/core.h"
#include "sprout/kernels.h"
#include "sprout/mlm.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 4242

static uint64_t g_stream = 1;

static float *rnd(size_t n, float std) {
    float *x = malloc(n * sizeof *x);
    sp_rng_normal_fill(x, n, std, SEED, SP_RNG_TEST, g_stream++, 0);
    return x;
}

/* dataset `name` of group g with dims d[0..nd) */
static void putf(hid_t g, const char *name, int nd, const hsize_t *d, const float *x) {
    H5LTmake_dataset_float(g, name, nd, d, x);
}

static void puti(hid_t g, const char *name, int nd, const hsize_t *d, const int32_t *x) {
    H5LTmake_dataset_int(g, name, nd, d, x);
}

static void attr_i(hid_t g, const char *k, int v) {
    H5LTset_attribute_int(g, ".", k, &v, 1);
}

static void attr_d(hid_t g, const char *k, double v) {
    H5LTset_attribute_double(g, ".", k, &v, 1);
}

static void case_rmsnorm(hid_t g) {
    int N = 6, C = 40;
    float eps = 1e-6f;
    float *x = rnd((size_t)N * C, 1), *w = rnd(C, 1), *dy = rnd((size_t)N * C, 1);
    for (int i = 0; i < C; i++) x[i] += 3.0f, x[C + i] *= 1e-3f;
    float *y = malloc((size_t)N * C * 4), *rs = malloc(N * 4);
    float *dx = calloc((size_t)N * C, 4), *dw = calloc(C, 4);
    sp_rmsnorm_forward(y, rs, x, w, N, C, eps);
    sp_rmsnorm_backward(dx, dw, dy, x, w, rs, N, C);
    hsize_t d2[2] = {N, C}, d1[1] = {C};
    putf(g, "x", 2, d2, x), putf(g, "w", 1, d1, w), putf(g, "dy", 2, d2, dy);
    putf(g, "y", 2, d2, y), putf(g, "dx", 2, d2, dx), putf(g, "dw", 1, d1, dw);
    attr_d(g, "eps", eps);
    free(x), free(w), free(dy), free(y), free(rs), free(dx), free(dw);
}

static void case_layernorm(hid_t g) {
    int N = 5, C = 48;
    float eps = 1e-12f;
    float *x = rnd((size_t)N * C, 1), *w = rnd(C, 1), *b = rnd(C, 1), *dy = rnd((size_t)N * C, 1);
    for (int i = 0; i < C; i++) x[C + i] *= 1e-4f; /* variance 1e-8: the eps is not 1e-5 */
    float *y = malloc((size_t)N * C * 4), *mu = malloc(N * 4), *rs = malloc(N * 4);
    float *dx = calloc((size_t)N * C, 4), *dw = calloc(C, 4), *db = calloc(C, 4);
    sp_layernorm_forward_eps(y, mu, rs, x, w, b, N, C, eps);
    sp_layernorm_backward(dx, dw, db, dy, x, w, mu, rs, N, C);
    hsize_t d2[2] = {N, C}, d1[1] = {C};
    putf(g, "x", 2, d2, x), putf(g, "w", 1, d1, w), putf(g, "b", 1, d1, b);
    putf(g, "dy", 2, d2, dy), putf(g, "y", 2, d2, y), putf(g, "dx", 2, d2, dx);
    putf(g, "dw", 1, d1, dw), putf(g, "db", 1, d1, db);
    attr_d(g, "eps", eps);
    free(x), free(w), free(b), free(dy), free(y), free(mu), free(rs), free(dx), free(dw), free(db);
}

static void case_rope(hid_t g) {
    int B = 2, T = 130, C = 48, NH = 3, hd = C / NH;
    double theta = 10000.0;
    size_t n = (size_t)B * T * 3 * C;
    float *qkv = rnd(n, 1), *dy = rnd(n, 1), *tab = malloc((size_t)T * hd * 4);
    float *y = malloc(n * 4), *dx = malloc(n * 4);
    memcpy(y, qkv, n * 4), memcpy(dx, dy, n * 4);
    sp_rope_table(tab, T, hd, theta);
    sp_rope_forward(y, tab, B, T, C, NH);
    sp_rope_backward(dx, tab, B, T, C, NH);
    hsize_t d3[3] = {B, T, 3 * C}, dt[2] = {T, hd};
    putf(g, "qkv", 3, d3, qkv), putf(g, "dy", 3, d3, dy), putf(g, "tab", 2, dt, tab);
    putf(g, "y", 3, d3, y), putf(g, "dx", 3, d3, dx);
    attr_i(g, "NH", NH), attr_d(g, "theta", theta);
    free(qkv), free(dy), free(tab), free(y), free(dx);
}

static void case_swiglu(hid_t g) {
    int N = 5, F = 24;
    float *ab = rnd((size_t)N * 2 * F, 3), *dh = rnd((size_t)N * F, 1);
    float *h = malloc((size_t)N * F * 4), *dab = calloc((size_t)N * 2 * F, 4);
    sp_swiglu_forward(h, ab, N, F);
    sp_swiglu_backward(dab, dh, ab, N, F);
    hsize_t d2[2] = {N, 2 * F}, d1[2] = {N, F};
    putf(g, "ab", 2, d2, ab), putf(g, "dh", 2, d1, dh), putf(g, "h", 2, d1, h);
    putf(g, "dab", 2, d2, dab);
    free(ab), free(dh), free(h), free(dab);
}

static void case_gelu_erf(hid_t g) {
    size_t n = 512;
    float *x = rnd(n, 3), *dy = rnd(n, 1), *y = malloc(n * 4), *dx = calloc(n, 4);
    sp_gelu_erf_forward(y, x, n);
    sp_gelu_erf_backward(dx, x, dy, n);
    hsize_t d[1] = {n};
    putf(g, "x", 1, d, x), putf(g, "dy", 1, d, dy), putf(g, "y", 1, d, y), putf(g, "dx", 1, d, dx);
    free(x), free(dy), free(y), free(dx);
}

static void case_attention(hid_t g, int causal) {
    int B = 2, T = 70, C = 32, NH = 4; /* T crosses a query tile */
    size_t n3 = (size_t)B * T * 3 * C, n1 = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *qkv = rnd(n3, 1), *dy = rnd(n1, 1), *y = malloc(n1 * 4), *att = malloc(na * 4);
    float *dx = calloc(n3, 4), *scr = malloc(sp_attention_scratch_floats(T, NH) * 4);
    sp_attention_forward_ex(NULL, y, att, qkv, B, T, C, NH, causal);
    sp_attention_backward_ex(NULL, dx, dy, qkv, att, scr, B, T, C, NH, causal);
    hsize_t d3[3] = {B, T, 3 * C}, d1[3] = {B, T, C}, da[4] = {B, NH, T, T};
    putf(g, "qkv", 3, d3, qkv), putf(g, "dy", 3, d1, dy), putf(g, "y", 3, d1, y);
    putf(g, "att", 4, da, att), putf(g, "dx", 3, d3, dx);
    attr_i(g, "NH", NH), attr_i(g, "causal", causal);
    free(qkv), free(dy), free(y), free(att), free(dx), free(scr);
}

static void case_mlm(hid_t gl, hid_t gm) {
    enum { G = 8, T = 64, NORMAL = 256, V = NORMAL + SP_MLM_NSPECIAL };
    uint64_t seed = 77, step = 3;
    int32_t *tok = malloc(G * T * 4), *inp = malloc(G * T * 4), *tgt = malloc(G * T * 4);
    for (int i = 0; i < G * T; i++)
        tok[i] = (int32_t)(sp_rng_u64(SEED, SP_RNG_TEST, 5, i) % NORMAL);
    tok[0] = NORMAL + SP_MLM_CLS, tok[T - 1] = NORMAL + SP_MLM_SEP; /* never selected */
    for (int k = 0; k < G; k++)
        sp_mlm_mask(seed, step, k, tok + k * T, T, NORMAL, inp + k * T, tgt + k * T);
    hsize_t dg[2] = {G, T};
    puti(gm, "tokens", 2, dg, tok), puti(gm, "inputs", 2, dg, inp), puti(gm, "targets", 2, dg, tgt);
    attr_i(gm, "seed", (int)seed), attr_i(gm, "step", (int)step), attr_i(gm, "n_normal", NORMAL);

    /* the loss on the first two sequences' targets, normalised as if a second micro-batch held
     * as many selected positions again */
    int N = 2 * T;
    double norm = 2.0 * (double)sp_mlm_count(tgt, N);
    float *logits = rnd((size_t)N * V, 2), *probs = malloc((size_t)N * V * 4);
    float *losses = malloc(N * 4), *dl = malloc((size_t)N * V * 4);
    float loss = sp_mlm_loss_forward(probs, losses, logits, tgt, N, V, norm);
    sp_mlm_loss_backward(dl, probs, tgt, norm, N, V);
    hsize_t d2[2] = {N, V}, d1[1] = {N}, ds[1] = {1};
    putf(gl, "logits", 2, d2, logits), puti(gl, "targets", 1, d1, tgt);
    putf(gl, "loss", 1, ds, &loss), putf(gl, "losses", 1, d1, losses);
    putf(gl, "dlogits", 2, d2, dl);
    attr_d(gl, "norm", norm);
    free(tok), free(inp), free(tgt), free(logits), free(probs), free(losses), free(dl);
}

/* ---- whole blocks from the kernels: how the model wires them (weights [in, out]) ---- */

enum { BB = 2, BT = 70, BC = 32, BNH = 4, BN = BB * BT };

typedef struct {
    const char *name;
    size_t n;
    float *p, *d; /* parameter, its gradient (zeroed) */
} tensor;

static void put_tensors(hid_t g, tensor *ts, int nt) {
    char dn[64];
    for (int i = 0; i < nt; i++) {
        hsize_t d[1] = {ts[i].n};
        snprintf(dn, sizeof dn, "d%s", ts[i].name);
        putf(g, ts[i].name, 1, d, ts[i].p), putf(g, dn, 1, d, ts[i].d);
    }
}

static void init_tensors(tensor *ts, int nt) {
    for (int i = 0; i < nt; i++) {
        int gain = strstr(ts[i].name, "ln") && strstr(ts[i].name, "_w");
        ts[i].p = rnd(ts[i].n, gain ? 0.1f : 0.2f);
        if (gain)
            for (size_t j = 0; j < ts[i].n; j++) ts[i].p[j] += 1.0f;
        ts[i].d = calloc(ts[i].n, 4);
    }
}

static float *zeros(size_t n) {
    return calloc(n, 4);
}

/* LLaMA decoder layer: y = x2 + down(swiglu(rmsnorm(x2) Wgu)), x2 = x + attn(rope(rmsnorm(x) Wqkv))
 * Wo with Wqkv = [q_proj^T | k_proj^T | v_proj^T] [C, 3C], Wgu = [gate_proj^T | up_proj^T] [C, 2F]
 */
static void case_llama_block(hid_t g) {
    const int F = 48, C = BC, N = BN, hd = BC / BNH;
    const float eps = 1e-6f;
    enum { LN1, QKV, O, LN2, GU, DN, NT };
    tensor ts[NT] = {{.name = "ln1_w", .n = C},
                     {.name = "Wqkv", .n = (size_t)C * 3 * C},
                     {.name = "Wo", .n = (size_t)C * C},
                     {.name = "ln2_w", .n = C},
                     {.name = "Wgu", .n = (size_t)C * 2 * F},
                     {.name = "Wd", .n = (size_t)F * C}};
    init_tensors(ts, NT);
    size_t nc = (size_t)N * C, na = (size_t)BB * BNH * BT * BT;
    float *x = rnd(nc, 1), *dy = rnd(nc, 1), *tab = malloc((size_t)BT * hd * 4);
    float *h1 = zeros(nc), *r1 = zeros(N), *qkv = zeros(3 * nc), *ao = zeros(nc), *att = zeros(na);
    float *x2 = zeros(nc), *h2 = zeros(nc), *r2 = zeros(N), *ab = zeros((size_t)N * 2 * F);
    float *hg = zeros((size_t)N * F), *y = zeros(nc);
    sp_rope_table(tab, BT, hd, 10000.0);
    /* forward */
    sp_rmsnorm_forward(h1, r1, x, ts[LN1].p, N, C, eps);
    sp_matmul_forward(NULL, qkv, h1, ts[QKV].p, NULL, NULL, N, C, 3 * C);
    sp_rope_forward(qkv, tab, BB, BT, C, BNH);
    sp_attention_forward(NULL, ao, att, qkv, BB, BT, C, BNH);
    sp_matmul_forward(NULL, x2, ao, ts[O].p, NULL, NULL, N, C, C);
    sp_residual_forward(x2, x2, x, nc);
    sp_rmsnorm_forward(h2, r2, x2, ts[LN2].p, N, C, eps);
    sp_matmul_forward(NULL, ab, h2, ts[GU].p, NULL, NULL, N, C, 2 * F);
    sp_swiglu_forward(hg, ab, N, F);
    sp_matmul_forward(NULL, y, hg, ts[DN].p, NULL, NULL, N, F, C);
    sp_residual_forward(y, y, x2, nc);
    /* backward: dx2 starts as dy (the residual), each branch adds into it */
    float *dx2 = malloc(nc * 4), *dhg = zeros((size_t)N * F), *dab = zeros((size_t)N * 2 * F);
    float *dh2 = zeros(nc), *dao = zeros(nc), *dqkv = zeros(3 * nc), *dh1 = zeros(nc);
    float *dx = malloc(nc * 4), *scr = malloc(sp_attention_scratch_floats(BT, BNH) * 4);
    memcpy(dx2, dy, nc * 4);
    sp_matmul_backward(NULL, dhg, ts[DN].d, NULL, dy, hg, ts[DN].p, NULL, N, F, C);
    sp_swiglu_backward(dab, dhg, ab, N, F);
    sp_matmul_backward(NULL, dh2, ts[GU].d, NULL, dab, h2, ts[GU].p, NULL, N, C, 2 * F);
    sp_rmsnorm_backward(dx2, ts[LN2].d, dh2, x2, ts[LN2].p, r2, N, C);
    memcpy(dx, dx2, nc * 4);
    sp_matmul_backward(NULL, dao, ts[O].d, NULL, dx2, ao, ts[O].p, NULL, N, C, C);
    sp_attention_backward(NULL, dqkv, dao, qkv, att, scr, BB, BT, C, BNH); /* dqkv zeroed */
    sp_rope_backward(dqkv, tab, BB, BT, C, BNH); /* gradient of the unrotated q, k */
    sp_matmul_backward(NULL, dh1, ts[QKV].d, NULL, dqkv, h1, ts[QKV].p, NULL, N, C, 3 * C);
    sp_rmsnorm_backward(dx, ts[LN1].d, dh1, x, ts[LN1].p, r1, N, C);
    hsize_t d3[3] = {BB, BT, C};
    putf(g, "x", 3, d3, x), putf(g, "dy", 3, d3, dy), putf(g, "y", 3, d3, y);
    putf(g, "dx", 3, d3, dx);
    put_tensors(g, ts, NT);
    attr_i(g, "NH", BNH), attr_i(g, "F", F), attr_d(g, "eps", eps), attr_d(g, "theta", 10000.0);
    for (int i = 0; i < NT; i++) free(ts[i].p), free(ts[i].d);
    free(x), free(dy), free(tab), free(h1), free(r1), free(qkv), free(ao), free(att), free(x2);
    free(h2), free(r2), free(ab), free(hg), free(y), free(dx2), free(dhg), free(dab), free(dh2);
    free(dao), free(dqkv), free(dh1), free(dx), free(scr);
}

/* BERT layer (post-LN): h = LN1(x + attn(x Wqkv + bqkv) Wo + bo), y = LN2(h + gelu(h Wfc + bfc) Wpr
 * + bpr), bidirectional, erf GELU, LayerNorm eps 1e-12; Wqkv = [query^T | key^T | value^T] */
static void case_bert_block(hid_t g) {
    const int F = 64, C = BC, N = BN;
    const float eps = 1e-12f;
    enum { QKV, BQKV, O, BO, LN1W, LN1B, FC, BFC, PR, BPR, LN2W, LN2B, NT };
    tensor ts[NT] = {{.name = "Wqkv", .n = (size_t)C * 3 * C},
                     {.name = "bqkv", .n = 3 * (size_t)C},
                     {.name = "Wo", .n = (size_t)C * C},
                     {.name = "bo", .n = C},
                     {.name = "ln1_w", .n = C},
                     {.name = "ln1_b", .n = C},
                     {.name = "Wfc", .n = (size_t)C * F},
                     {.name = "bfc", .n = F},
                     {.name = "Wpr", .n = (size_t)F * C},
                     {.name = "bpr", .n = C},
                     {.name = "ln2_w", .n = C},
                     {.name = "ln2_b", .n = C}};
    init_tensors(ts, NT);
    size_t nc = (size_t)N * C, nf = (size_t)N * F, na = (size_t)BB * BNH * BT * BT;
    float *x = rnd(nc, 1), *dy = rnd(nc, 1);
    float *qkv = zeros(3 * nc), *ao = zeros(nc), *att = zeros(na), *r1 = zeros(nc), *h = zeros(nc);
    float *m1 = zeros(N), *s1 = zeros(N), *f = zeros(nf), *ge = zeros(nf), *r2 = zeros(nc);
    float *m2 = zeros(N), *s2 = zeros(N), *y = zeros(nc);
    sp_matmul_forward(NULL, qkv, x, ts[QKV].p, NULL, ts[BQKV].p, N, C, 3 * C);
    sp_attention_forward_ex(NULL, ao, att, qkv, BB, BT, C, BNH, 0);
    sp_matmul_forward(NULL, r1, ao, ts[O].p, NULL, ts[BO].p, N, C, C);
    sp_residual_forward(r1, r1, x, nc);
    sp_layernorm_forward_eps(h, m1, s1, r1, ts[LN1W].p, ts[LN1B].p, N, C, eps);
    sp_matmul_forward(NULL, f, h, ts[FC].p, NULL, ts[BFC].p, N, C, F);
    sp_gelu_erf_forward(ge, f, nf);
    sp_matmul_forward(NULL, r2, ge, ts[PR].p, NULL, ts[BPR].p, N, F, C);
    sp_residual_forward(r2, r2, h, nc);
    sp_layernorm_forward_eps(y, m2, s2, r2, ts[LN2W].p, ts[LN2B].p, N, C, eps);
    /* backward */
    float *dr2 = zeros(nc), *dge = zeros(nf), *df = zeros(nf), *dh = malloc(nc * 4);
    float *dr1 = zeros(nc), *dx = malloc(nc * 4), *dao = zeros(nc), *dqkv = zeros(3 * nc);
    float *scr = malloc(sp_attention_scratch_floats(BT, BNH) * 4);
    sp_layernorm_backward(dr2, ts[LN2W].d, ts[LN2B].d, dy, r2, ts[LN2W].p, m2, s2, N, C);
    memcpy(dh, dr2, nc * 4);
    sp_matmul_backward(NULL, dge, ts[PR].d, ts[BPR].d, dr2, ge, ts[PR].p, NULL, N, F, C);
    sp_gelu_erf_backward(df, f, dge, nf);
    sp_matmul_backward(NULL, dh, ts[FC].d, ts[BFC].d, df, h, ts[FC].p, NULL, N, C, F);
    sp_layernorm_backward(dr1, ts[LN1W].d, ts[LN1B].d, dh, r1, ts[LN1W].p, m1, s1, N, C);
    memcpy(dx, dr1, nc * 4);
    sp_matmul_backward(NULL, dao, ts[O].d, ts[BO].d, dr1, ao, ts[O].p, NULL, N, C, C);
    sp_attention_backward_ex(NULL, dqkv, dao, qkv, att, scr, BB, BT, C, BNH, 0);
    sp_matmul_backward(NULL, dx, ts[QKV].d, ts[BQKV].d, dqkv, x, ts[QKV].p, NULL, N, C, 3 * C);
    hsize_t d3[3] = {BB, BT, C};
    putf(g, "x", 3, d3, x), putf(g, "dy", 3, d3, dy), putf(g, "y", 3, d3, y);
    putf(g, "dx", 3, d3, dx);
    put_tensors(g, ts, NT);
    attr_i(g, "NH", BNH), attr_i(g, "F", F), attr_d(g, "eps", eps);
    for (int i = 0; i < NT; i++) free(ts[i].p), free(ts[i].d);
    free(x), free(dy), free(qkv), free(ao), free(att), free(r1), free(h), free(m1), free(s1);
    free(f), free(ge), free(r2), free(m2), free(s2), free(y), free(dr2), free(dge), free(df);
    free(dh), free(dr1), free(dx), free(dao), free(dqkv), free(scr);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.h5\n", argv[0]);
        return 2;
    }
    hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "%s: cannot create\n", argv[1]);
        return 1;
    }
    static const char *names[] = {"rmsnorm",  "layernorm",   "rope",        "swiglu",
                                  "gelu_erf", "attn_bidir",  "attn_causal", "mlm_loss",
                                  "mlm_mask", "llama_block", "bert_block"};
    enum { NG = sizeof names / sizeof names[0] };
    hid_t g[NG];
    for (int i = 0; i < NG; i++)
        g[i] = H5Gcreate2(f, names[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    case_rmsnorm(g[0]);
    case_layernorm(g[1]);
    case_rope(g[2]);
    case_swiglu(g[3]);
    case_gelu_erf(g[4]);
    case_attention(g[5], 0);
    case_attention(g[6], 1);
    case_mlm(g[7], g[8]);
    case_llama_block(g[9]);
    case_bert_block(g[10]);
    for (int i = 0; i < NG; i++) H5Gclose(g[i]);
    return H5Fclose(f) < 0;
}
