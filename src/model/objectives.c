/* The training objectives: one row per objective (train.objective). `masked` is BERT's masked LM:
 * each window is masked by sp_mlm_mask (include/sprout/mlm.h) and only the selected positions
 * count; see sp_objective in model.h. */
#include "sprout/kernels.h"
#include "sprout/mlm.h"
#include "sprout/model.h"

#include <string.h>

static int64_t count_every(const int32_t *targets, int N) {
    (void)targets;
    return N;
}

static int64_t count_masked(const int32_t *targets, int N) {
    return sp_mlm_count(targets, (size_t)N);
}

/* the mean over the selected positions of these N rows (the trainer weighs it by their count) */
static float masked_forward(float *probs, float *losses, const float *logits,
                            const int32_t *targets, int N, int V) {
    return sp_mlm_loss_forward(probs, losses, logits, targets, N, V,
                               (double)sp_mlm_count(targets, (size_t)N));
}

/* the specials are the vocabulary's last SP_MLM_NSPECIAL ids: n_normal = vocab - 4 (256 for the
 * byte tokenizer's 260) */
static int masked_prepare(uint64_t seed, uint64_t step, uint64_t k, int32_t *inp, int32_t *tgt,
                          int T, int vocab) {
    return sp_mlm_mask(seed, step, k, inp, T, vocab - SP_MLM_NSPECIAL, inp, tgt);
}

const sp_objective sp_objectives[] = {
    {"causal", sp_crossentropy_forward, sp_crossentropy_backward, 1, count_every, NULL,
     "mean next-token cross-entropy over every position of the held-out windows"},
    /* the backward is the cross-entropy's: rows with target -1 get 0, the others
     * (probs - onehot) * scale with scale = 1 / the step's count of selected positions */
    {"masked", masked_forward, sp_crossentropy_backward, 0, count_masked, masked_prepare,
     "mean masked-LM cross-entropy over the selected positions of the held-out windows, masked "
     "once for all evaluations"},
};
const int sp_nobjectives = (int)(sizeof sp_objectives / sizeof sp_objectives[0]);

int sp_objective_find(const char *name) {
    for (int i = 0; name && i < sp_nobjectives; i++)
        if (!strcmp(sp_objectives[i].name, name)) return i;
    return -1;
}

const char *sp_objective_names(void) {
    static char buf[128];
    if (!buf[0])
        for (int i = 0; i < sp_nobjectives; i++) {
            if (i) strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
            strncat(buf, sp_objectives[i].name, sizeof buf - strlen(buf) - 1);
        }
    return buf;
}
