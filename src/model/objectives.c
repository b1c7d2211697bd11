/* The training objectives: one row per objective (train.objective). The masked-LM row comes with
 * the BERT block; it counts only the masked positions, see sp_objective in model.h. */
#include "sprout/kernels.h"
#include "sprout/model.h"

#include <string.h>

static int64_t count_every(const int32_t *targets, int N) {
    (void)targets;
    return N;
}

const sp_objective sp_objectives[] = {
    {"causal", sp_crossentropy_forward, sp_crossentropy_backward, 1, count_every,
     "mean next-token cross-entropy over every position of the held-out windows"},
};
const int sp_nobjectives = (int)(sizeof sp_objectives / sizeof sp_objectives[0]);

int sp_objective_find(const char *name) {
    for (int i = 0; name && i < sp_nobjectives; i++)
        if (!strcmp(sp_objectives[i].name, name)) return i;
    return -1;
}
