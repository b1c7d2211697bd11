/* Inside the model module: the forward and backward of each kind, which its descriptor
 * (kind_<name>.c) points to. */
#ifndef SPROUT_MODEL_FORWARD_H
#define SPROUT_MODEL_FORWARD_H

#include "sprout/kernels.h"
#include "sprout/model.h"

/* the bf16 copy of weight w (a pointer into the params arena), NULL in fp32 */
static inline const uint16_t *w16(const sp_model *m, const float *w) {
    return m->params16 ? m->params16 + (w - m->params) : NULL;
}

/* y[n] = x[n] + c * y[n]: a residual branch (y holds its output) added onto the stream x. c = 1
 * is the plain residual add, bit for bit; c = 0 gives x + 0 = x for any finite branch output, so
 * a block whose branches are scaled to 0 is the identity. */
static inline void add_branch(float *y, const float *x, float c, size_t n) {
    if (c == 1.0f) {
        sp_residual_forward(y, y, x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) y[i] = x[i] + c * y[i];
}

void sp_gpt2_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
void sp_gpt2_blocks_forward(const sp_model *m, sp_acts *a);
float sp_gpt2_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
void sp_gpt2_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                           float scale);
void sp_gpt2_blocks_backward(sp_model *m, sp_acts *a, sp_scratch *s, sp_block_done_fn done,
                             void *ctx);
void sp_gpt2_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

/* LLaMA's tensors in the order of its block slab and of its globals slab (kind_llama.c) */
enum {
    SP_L_LN1,
    SP_L_Q,
    SP_L_K,
    SP_L_V,
    SP_L_O,
    SP_L_LN2,
    SP_L_GATE,
    SP_L_UP,
    SP_L_DOWN,
    SP_LLAMA_NT
};
enum { SP_L_EMBED, SP_L_NORM, SP_L_HEAD };

void sp_llama_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
void sp_llama_blocks_forward(const sp_model *m, sp_acts *a);
float sp_llama_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
void sp_llama_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                            float scale);
void sp_llama_blocks_backward(sp_model *m, sp_acts *a, sp_scratch *s, sp_block_done_fn done,
                              void *ctx);
void sp_llama_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

/* BERT's tensors in the order of its block slab and of its globals slab (kind_bert.c) */
enum {
    SP_B_Q,
    SP_B_K,
    SP_B_V,
    SP_B_QB,
    SP_B_KB,
    SP_B_VB,
    SP_B_O,
    SP_B_OB,
    SP_B_LN1W,
    SP_B_LN1B,
    SP_B_FC,
    SP_B_FCB,
    SP_B_PROJ,
    SP_B_PROJB,
    SP_B_LN2W,
    SP_B_LN2B,
    SP_BERT_NT
};
enum {
    SP_B_WTE,
    SP_B_WPE,
    SP_B_TTE,
    SP_B_ELNW,
    SP_B_ELNB,
    SP_B_HD,
    SP_B_HDB,
    SP_B_HLNW,
    SP_B_HLNB,
    SP_B_HB,
    SP_BERT_NG
};

void sp_bert_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
void sp_bert_blocks_forward(const sp_model *m, sp_acts *a);
float sp_bert_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
void sp_bert_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                           float scale);
void sp_bert_blocks_backward(sp_model *m, sp_acts *a, sp_scratch *s, sp_block_done_fn done,
                             void *ctx);
void sp_bert_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

#endif
