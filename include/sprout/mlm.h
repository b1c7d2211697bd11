/* Masked-LM data (BERT): which positions of a sequence are masked, and how (docs/data.md).
 *
 * Special tokens. A vocabulary of n_normal ordinary tokens (256 for the byte tokenizer) is
 * followed by SP_MLM_NSPECIAL reserved ids: n_normal + SP_MLM_MASK is [MASK], + SP_MLM_CLS
 * [CLS], + SP_MLM_SEP [SEP], + SP_MLM_PAD [PAD]; the model's vocab is n_normal + SP_MLM_NSPECIAL
 * at least (260 for bytes). Token files hold ordinary tokens only; any id >= n_normal in a
 * sequence is special and is never selected for masking.
 *
 * Masking follows Hugging Face's DataCollatorForLanguageModeling (mlm_probability 0.15): each
 * ordinary position is selected independently with probability 0.15 (Bernoulli, so a sequence's
 * count varies around 0.15 T); a selected position becomes [MASK] with probability 0.8, a token
 * drawn uniformly from the n_normal ordinary ones with probability 0.1 (it may draw the original
 * token, as in Hugging Face, whose draw also spans the special ids), and stays unchanged with
 * probability 0.1. Its target is the original token; every other target is -1 (Hugging Face's
 * -100), which sp_mlm_loss_* ignore.
 *
 * Every draw is one Philox call at (seed, SP_RNG_MLM, step, (k << 32) | t) for sample k of step
 * `step` (the data sampler's global index, sp_data_train_sample) and position t: the masks
 * depend on the global indices only, so they are the same on every rank layout, micro-batch
 * split and order, and after a restart. Evaluation window i uses step SP_MLM_EVAL_STEP and
 * k = i, so every evaluation scores the same masked positions. */
#ifndef SPROUT_MLM_H
#define SPROUT_MLM_H

#include <stdint.h>

enum {
    SP_MLM_MASK = 0,
    SP_MLM_CLS = 1,
    SP_MLM_SEP = 2,
    SP_MLM_PAD = 3,
    SP_MLM_NSPECIAL = 4,
};

#define SP_MLM_EVAL_STEP UINT64_MAX

/* inp[T], tgt[T] from the sequence tok[T] (inp may be tok: in place): see above. k and T must be
 * below 2^32. Returns the number of selected positions (targets >= 0). */
int sp_mlm_mask(uint64_t seed, uint64_t step, uint64_t k, const int32_t *tok, int T,
                int32_t n_normal, int32_t *inp, int32_t *tgt);

#endif
