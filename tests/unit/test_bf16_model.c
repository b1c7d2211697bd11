/* run.precision: bf16 on a whole model against sprout's own fp32 on identical weights: one full
 * stage (embedding, every block, tied head) runs forward and backward once with gemm NULL and
 * once in a bf16 context. The loss must agree within 0.5% relative and every parameter tensor's
 * gradient must have cosine similarity >= 0.999 with the fp32 gradient; the two must also differ
 * (else the bf16 path did not run). Skips (with the reason) where oneDNN refuses the context. */
#include "sprout/kernels.h"
#include "sprout/model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* wide enough that bf16 products round visibly, small enough for a unit test: a gpt2, a llama
 * model (untied head) and a bert model of one shape (bert's loss here is the next-token one over
 * every position: the same function in both precisions is all this compares) */
static const sp_spec k_specs[] = {{96, 32, 64, 4, 256, 3, 0, 0, 0, 0},
                                  {96, 32, 64, 4, 256, 3, 1, 0, 1e-5, 10000},
                                  {96, 32, 64, 4, 256, 3, 2, 1, 1e-12, 10000}};
enum { B = 4, T_ = 32 };

/* loss of one batch, gradients of the mean loss left in m->grads */
static double loss_and_grads(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp,
                             const int32_t *tgt) {
    int N = B * T_;
    memset(m->grads, 0, m->numel * sizeof(float));
    sp_model_embed_forward(m, a, inp);
    sp_model_blocks_forward(m, a);
    sp_model_head_forward(m, a, tgt);
    double loss = 0;
    for (int i = 0; i < N; i++) loss += a->losses[i];
    sp_model_head_backward(m, a, s, tgt, 1.0f / (float)N);
    sp_model_blocks_backward(m, a, s, NULL, NULL);
    sp_model_embed_backward(m, a, s, inp);
    return loss / N;
}

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++)
        ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

/* runs the batch on m (in m's context) and returns the loss; NAN when set-up fails */
static double run(sp_model *m, const int32_t *inp, const int32_t *tgt, tu_ctx *t) {
    sp_acts a;
    sp_scratch s;
    sp_err err = {0};
    int rc = sp_acts_create(&a, m, B, T_, &err);
    if (!rc) rc = sp_scratch_create(&s, m, B, T_, &err);
    tu_check(t, rc == 0, "activations: %s", err.msg);
    if (rc) return NAN;
    double loss = loss_and_grads(m, &a, &s, inp, tgt);
    sp_acts_free(&a);
    sp_scratch_free(&s);
    return loss;
}

static void check_kind(tu_ctx *t, sp_gemm *g, const sp_spec *spec) {
    sp_err err = {0};
    sp_model m;
    if (tu_model_trained(&m, spec, 21, t)) return;
    int N = B * T_;
    int32_t *inp = malloc(N * sizeof *inp), *tgt = malloc(N * sizeof *tgt);
    for (int i = 0; i < N; i++) {
        inp[i] = (int32_t)(sp_rng_u64(4, SP_RNG_TEST, 1, (uint64_t)i) % (uint64_t)spec->vocab);
        tgt[i] = (int32_t)(sp_rng_u64(4, SP_RNG_TEST, 2, (uint64_t)i) % (uint64_t)spec->vocab);
    }
    const char *kind = sp_kind_of(spec)->name;
    double l32 = run(&m, inp, tgt, t);
    float *g32 = malloc(m.numel * sizeof(float));
    memcpy(g32, m.grads, m.numel * sizeof(float));
    int rc = sp_model_use_gemm(&m, g, &err);
    tu_check(t, rc == 0, "sp_model_use_gemm: %s", err.msg);
    sp_model_sync_bf16(&m);
    double l16 = rc ? NAN : run(&m, inp, tgt, t);
    double rel = fabs(l16 - l32) / fabs(l32);
    printf("%s: loss fp32 %.6f bf16 %.6f (rel %.2e)\n", kind, l32, l16, rel);
    tu_check(t, rel <= 5e-3, "%s: bf16 loss %.6f vs fp32 %.6f: rel %.3g > 0.5%%", kind, l16, l32,
             rel);
    tu_check(t, l16 != l32, "%s: bf16 loss equals fp32 bit for bit: the bf16 path did not run",
             kind);
    double worst = 1;
    char worst_name[96] = "";
    for (int b = -1; b < spec->n_layer; b++) {
        int nt = b < 0 ? m.ngt : m.nbt;
        const sp_tensor_info *ti = b < 0 ? m.gt : m.bt;
        size_t base = b < 0 ? 0 : (size_t)(sp_model_block(&m, m.grads, b) - m.grads);
        for (int j = 0; j < nt; j++) {
            size_t o = base + ti[j].offset;
            char name[96];
            sp_spec_hf_name(name, sizeof name, &m.spec, b, &ti[j]);
            /* bert's attention key bias has gradient 0 in exact arithmetic (softmax ignores a
             * shift of every key): in fp32 and bf16 alike it is rounding noise, with no direction
             * to compare */
            if (strstr(name, "attention.self.key.bias")) continue;
            double c = cosine(m.grads + o, g32 + o, ti[j].numel);
            tu_check(t, c >= 0.999, "%s: gradient cosine %.6f < 0.999", name, c);
            if (c < worst) worst = c, snprintf(worst_name, sizeof worst_name, "%s", name);
        }
    }
    printf("%s: worst gradient cosine %.6f (%s)\n", kind, worst, worst_name);
    free(g32), free(inp), free(tgt);
    sp_model_free(&m);
}

int main(void) {
    tu_ctx t = {0};
    sp_err err = {0};
    sp_gemm *g = NULL;
    if (sp_gemm_create(&g, 1, &err)) {
        printf("skipped: %s\n", err.msg);
        return 0;
    }
    printf("bf16 on %s\n", sp_gemm_isa(g));
    for (size_t i = 0; i < sizeof k_specs / sizeof k_specs[0]; i++) check_kind(&t, g, &k_specs[i]);
    sp_gemm_free(g);
    return tu_finish(&t, "bf16_model");
}
