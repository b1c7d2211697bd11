/* Inside the model module: the forward and backward of each kind, which its descriptor
 * (kind_<name>.c) points to. */
#ifndef SPROUT_MODEL_FORWARD_H
#define SPROUT_MODEL_FORWARD_H

#include "sprout/model.h"

void sp_gpt2_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
void sp_gpt2_blocks_forward(const sp_model *m, sp_acts *a);
float sp_gpt2_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
void sp_gpt2_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                           float scale);
void sp_gpt2_blocks_backward(sp_model *m, sp_acts *a, sp_scratch *s, sp_block_done_fn done,
                             void *ctx);
void sp_gpt2_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

#endif
