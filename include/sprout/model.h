/* sprout model: the GPT-2 spec, block slabs and named views, activations, and the
 * forward/backward of a stage (a contiguous block range plus the embedding and/or head).
 *
 * Slabs (design §1): every block's parameters live in one contiguous float array with the
 * fixed internal order of sp_block_tensor; gradients and both AdamW moments use the same
 * layout in parallel arenas. The globals (wte, wpe, ln_f) form one more slab. Moving,
 * copying or checkpointing a block is an operation on slabs. */
#ifndef SPROUT_MODEL_H
#define SPROUT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/core.h"

typedef struct sp_spec {
    int vocab, seq_len, d_model, n_head, d_ff, n_layer;
    int kind; /* the block kind: row of the kind table (src/model/kinds.c), 0 = gpt2 */
    /* hyper-parameters of the kinds that have them (sp_kind.hparams; 0 for the others):
     * model.tie_head, model.norm_eps, model.rope_theta (the int first: no padding bytes, the
     * struct is hashed whole) */
    int tie_head;
    double norm_eps, rope_theta;
} sp_spec;

/* The spec's integer fields as a table, for everything that lists them (checkpoint attributes,
 * comparisons, messages): name ("d_model") and place. The kind is not in it: it is a name
 * (sp_kind_name), stored and compared as one. */
typedef struct sp_spec_field {
    const char *name;
    size_t offset;
} sp_spec_field;
extern const sp_spec_field sp_spec_fields[];
extern const int sp_spec_nfields;
static inline int sp_spec_get(const sp_spec *s, int i) {
    return *(const int *)((const char *)s + sp_spec_fields[i].offset);
}
static inline void sp_spec_put(sp_spec *s, int i, int v) {
    *(int *)((char *)s + sp_spec_fields[i].offset) = v;
}
/* The kinds' hyper-parameters as a table too: name ("rope_theta"), 'i' (int) or 'f' (double),
 * place. Used only by kinds with sp_kind.hparams. */
typedef struct sp_spec_hparam {
    const char *name;
    char type;
    size_t offset;
} sp_spec_hparam;
extern const sp_spec_hparam sp_spec_hparams[];
extern const int sp_spec_nhparams;
/* the first field in which a and b differ (-1: none; the kind is compared apart) */
int sp_spec_diff(const sp_spec *a, const sp_spec *b);
/* 1 if every field, the kind and its hyper-parameters are equal */
int sp_spec_equal(const sp_spec *a, const sp_spec *b);
/* 1 if the kind's hyper-parameters (norm_eps, rope_theta, tie_head) differ */
int sp_spec_hparams_differ(const sp_spec *a, const sp_spec *b);
/* "block gpt2, vocab 256, seq_len 256, ..., n_layer 6" into buf */
void sp_spec_describe(const sp_spec *s, char *buf, size_t n);

/* GPT-2's tensors in the order of its block slab (its kind's table, src/model/kind_gpt2.c) */
typedef enum {
    SP_LN1_W,
    SP_LN1_B,
    SP_QKV_W, /* [C, 3C] */
    SP_QKV_B,
    SP_ATTPROJ_W, /* [C, C] */
    SP_ATTPROJ_B,
    SP_LN2_W,
    SP_LN2_B,
    SP_FC_W, /* [C, F] */
    SP_FC_B,
    SP_FCPROJ_W, /* [F, C] */
    SP_FCPROJ_B,
    SP_BLOCK_NT
} sp_block_tensor;

/* GPT-2's tensors in the order of its globals slab */
typedef enum { SP_WTE, SP_WPE, SP_LNF_W, SP_LNF_B, SP_GLOBAL_NT } sp_global_tensor;

/* room for the tensors of any kind's block or globals slab */
#define SP_MAX_TENSORS 16

/* Role of a tensor axis for the width operators (src/growth/width.c): which channel family it
 * runs over. FIXED: a token, position or length-1 axis, left alone; R: the residual width d;
 * QKV: q | k | v, three sections of d, each folded on its own; O: the attention output (heads,
 * head-major: folds like R); F: the MLP hidden width d_ff. */
typedef enum { SP_AX_FIXED, SP_AX_R, SP_AX_QKV, SP_AX_O, SP_AX_F } sp_axis_role;

typedef struct sp_tensor_info {
    const char *name; /* Hugging Face suffix: "attn.c_attn.weight" or "transformer.wte.weight" */
    int ndim;
    int64_t dims[2];
    size_t offset; /* in floats, inside the slab */
    size_t numel;
    int decay;      /* AdamW weight decay applies (2-D weights only) */
    int resid_proj; /* residual output projection: init std scaled by 1/sqrt(2*n_layer) */
    /* the kind's description of the tensor, beyond its shape: */
    unsigned char rows, cols; /* axis roles (sp_axis_role) of the [rows, cols] matrix view */
    /* the consumed axis of a weight is cols, not rows: nn.Linear's [out, in] (llama, bert)
     * rather than Conv1D's [in, out] (gpt2) */
    unsigned char in_cols;
    unsigned char gain; /* a norm gain: 1 at init and in appended channels; duplicated */
    /* feeds the head (ln_f, llama's model.norm, bert's transform LayerNorm): the width splits
     * compensate it */
    unsigned char tied;
    unsigned char zero_id; /* zeroed (w and b), the block is the identity (G_zero) */
    unsigned char lookup;  /* read by index, no matrix product (position table): no FLOPs */
} sp_tensor_info;

struct sp_model;
struct sp_acts;
struct sp_scratch;
typedef void (*sp_block_done_fn)(void *ctx, int block);

/* A block kind as data (docs/architecture.md, "Block kinds"): one descriptor per kind in its own
 * file (src/model/kind_<name>.c), listed in src/model/kinds.c. Everything that depends on what a
 * block is made of reads it: the slab layout, init, AdamW, checkpoints (names), the width and
 * depth operators (axis roles, zero_id), the FLOP count, and the forward/backward. */
typedef struct sp_kind {
    const char *name;     /* model.block */
    const char *hf_block; /* printf pattern of a block tensor's full name: (block, suffix) */
    /* the spec's norm_eps, rope_theta and tie_head are this kind's (config keys, /spec
     * attributes); 0: the kind has none of them and they stay 0 */
    int hparams;
    /* model.norm_eps = 0 gives this (kinds with hparams); always_tied: model.tie_head is fixed
     * to a tied head (auto or true only) */
    double default_norm_eps;
    int always_tied;
    /* the train.objective the kind trains with (a row of the objective table): a causal block
     * cannot learn a masked objective sensibly, nor a bidirectional one a causal objective */
    const char *objective;
    /* stored activations beyond the blocks': embed_ln, the embedding sum and its LayerNorm
     * statistics (sp_acts.emb*); head_transform, the head's dense output and its GELU
     * (sp_acts.hpre, hact) before the final norm */
    int embed_ln, head_transform;
    int ff_in;  /* sections of d_ff the MLP's first product writes (gate | up: 2) */
    int acts16; /* its forward writes sp_acts' ln1h, ln2h, fchgh, lnfh in a bf16 run */
    /* model.d_ff = 0 gives this */
    int (*default_d_ff)(int d_model);
    /* the tensor tables for a spec, in slab order (offsets are filled by the caller); the
     * number of entries */
    int (*block_tensors)(const sp_spec *s, sp_tensor_info *out);
    int (*global_tensors)(const sp_spec *s, sp_tensor_info *out);
    /* floats of a table the kind keeps per stage (the rotary cos/sin), and its fill; NULL: none */
    size_t (*aux_floats)(const sp_spec *s);
    void (*aux_fill)(const sp_spec *s, float *aux);
    /* attention FLOPs per token and executed block beyond the 6 N of the parameters */
    double (*attn_flops)(const sp_spec *s);
    /* the stage's forward and backward (model.h's sp_model_* entry points dispatch here) */
    void (*embed_forward)(const struct sp_model *m, struct sp_acts *a, const int32_t *inp);
    /* one executed block: stored block blk runs as the stage's i-th position (activation slot
     * i); sp_model_blocks_forward/backward walk the step's plan over them */
    void (*block_forward)(const struct sp_model *m, struct sp_acts *a, int i, int blk);
    float (*head_forward)(const struct sp_model *m, struct sp_acts *a, const int32_t *targets);
    void (*head_backward)(struct sp_model *m, struct sp_acts *a, struct sp_scratch *s,
                          const int32_t *targets, float scale);
    void (*block_backward)(struct sp_model *m, struct sp_acts *a, struct sp_scratch *s, int i,
                           int blk);
    void (*embed_backward)(struct sp_model *m, struct sp_acts *a, struct sp_scratch *s,
                           const int32_t *inp);
} sp_kind;

/* the kind table (src/model/kinds.c) */
extern const sp_kind *const sp_kinds[];
extern const int sp_nkinds;
/* the row named name, -1 if none */
int sp_kind_find(const char *name);
/* the spec's kind (its row checked by sp_spec_check) */
const sp_kind *sp_kind_of(const sp_spec *s);
/* "gpt2 | ..." for messages */
const char *sp_kind_names(void);

/* Objectives as data (src/model/objectives.c): the loss over the head's logits. train.objective
 * names a row. The gradient of a step is normalised by the number of counted positions of the
 * whole step (every micro-batch of every replica): with count_all every position counts and that
 * is global_batch * seq_len, known without looking at the data. For an objective that counts only
 * some positions (masked LM) the count follows from the data and prepare's keys alone: every rank
 * prepares all samples of the step and counts them before the first backward, which needs it as
 * the scale, with no message (docs/architecture.md, "Objectives"). */
typedef struct sp_objective {
    const char *name;
    /* logits [N,V] -> probs (softmax, may alias logits), per-position losses; the mean over the
     * counted positions */
    float (*loss_forward)(float *probs, float *losses, const float *logits, const int32_t *targets,
                          int N, int V);
    /* dlogits = (probs - onehot) * scale at counted positions, 0 elsewhere */
    void (*loss_backward)(float *dlogits, const float *probs, const int32_t *targets, float scale,
                          int N, int V);
    int count_all; /* every position counts */
    /* counted positions among targets[N] */
    int64_t (*count)(const int32_t *targets, int N);
    /* NULL, or what turns a window into the model's input and targets: inp[T] holds the window's
     * T tokens and is rewritten in place, tgt[T] is overwritten. (step, k) are the global step
     * (SP_MLM_EVAL_STEP for evaluation) and sample (or evaluation window) index, so the result
     * does not depend on the layout; vocab is the model's. Returns the counted positions. */
    int (*prepare)(uint64_t seed, uint64_t step, uint64_t k, int32_t *inp, int32_t *tgt, int T,
                   int vocab);
    const char *eval; /* what eval reports, for messages and docs */
} sp_objective;
extern const sp_objective sp_objectives[];
extern const int sp_nobjectives;
int sp_objective_find(const char *name); /* -1 if none */
const char *sp_objective_names(void);    /* "causal, masked" for messages */

int sp_spec_check(const sp_spec *s, sp_err *err);
/* the kind's tensor tables laid out for spec s: n = the kind's nbt or ngt entries */
int sp_spec_block_tensors(const sp_spec *s, sp_tensor_info out[SP_MAX_TENSORS]);
int sp_spec_global_tensors(const sp_spec *s, sp_tensor_info out[SP_MAX_TENSORS]);
size_t sp_spec_block_numel(const sp_spec *s);
size_t sp_spec_global_numel(const sp_spec *s);
size_t sp_spec_num_params(const sp_spec *s); /* all parameters, tied head counted once */
/* full HF name of a tensor: block >= 0 gives the kind's pattern, "transformer.h.<block>.<suffix>"
 * for gpt2 */
void sp_spec_hf_name(char *buf, size_t n, const sp_spec *s, int block, const sp_tensor_info *t);
/* Training FLOPs per token (forward + backward) when n_exec blocks run: 6 N_exec + 12 n_exec C T,
 * N_exec = parameters touched per token (position embeddings excluded, as a lookup). */
double sp_spec_flops_per_token(const sp_spec *s, int n_exec);

/* The block map (design §1): new block j of a depth change is made from old block src (or from
 * nothing, src = -1) by a local transform. Growth produces it; redistribution moves the source
 * slabs to the ranks that hold the new blocks; the growth module then applies the transform.
 * Plain data, so neither module needs the other. An entry may have several sources (depth
 * coalescing): new j = scale * (src + more[0] + ... + more[n_more - 1]), params and both moments,
 * summed in that order; redistribution moves every source slab. */
typedef enum {
    SP_XF_COPY = 0,     /* the source slab unchanged */
    SP_XF_ZERO_OUT = 1, /* the source slab with both output projections (w and b) zeroed */
    SP_XF_RANDOM = 2,   /* fresh init (src = -1), its branches ramped in by a scale 0 -> 1 */
} sp_block_xf;

#define SP_MAP_MAX_SRC 8
typedef struct sp_block_src {
    int src;                      /* old block index, -1 = none */
    int xf;                       /* sp_block_xf */
    int n_more;                   /* further sources (0: src alone, copied) */
    int more[SP_MAP_MAX_SRC - 1]; /* their old block indices */
    float scale;                  /* with n_more > 0: the sum's factor (1/(n_more+1): a mean) */
} sp_block_src;

/* an entry with one source */
static inline sp_block_src sp_block_one(int src, int xf) {
    sp_block_src b = {.src = src, .xf = xf, .n_more = 0, .scale = 1.0f};
    return b;
}

typedef struct sp_block_map {
    int n_old, n_new;
    sp_block_src *b; /* [n_new], malloc'd */
} sp_block_map;

/* The execution plan of one step (design §10): what the network that runs is made of. Position
 * p < depth of the executed network runs stored block pos[p]; stored blocks that no position
 * names are skipped (the identity: no compute, no gradient). pos is increasing, so the positions a
 * stage runs are the contiguous run naming its blocks. Stored blocks may share weights: group[b]
 * is the first block of b's group (b itself when unshared); a group's blocks hold the same weights
 * and moments, get the sum of their gradients, and are counted once in the norm. train[b] = 0:
 * AdamW leaves block b alone this step (moments, decay and step count). The per-step modifiers
 * live here too: branch scales and the channel fade-in mask. Every array is [n_layer], indexed
 * by global block; all ranks hold the same plan. Built in src/growth/subnet.c and
 * src/train/trainer.c (sp_trainer_plan); read by the forward and backward, the pipeline
 * interpreter, the gradient reduction, AdamW and the FLOP count. */
typedef struct sp_plan {
    int n_layer, depth;
    int *pos;             /* [n_layer], depth entries used */
    int *group;           /* [n_layer] */
    unsigned char *train; /* [n_layer] */
    int shared;           /* some group has more than one block */
    /* scale of both residual branches of each block, 1 by default: x += c*attn(ln1(x)),
     * x += c*mlp(ln2(x)). G_random ramps new blocks' c from 0 (identity) to 1; RaPTr's
     * inverse_p scales kept blocks by 1/p. */
    float *scale; /* [n_layer] */
    /* Fade-in of channels added by widen_zero / widen_random (docs/growth.md): channels
     * c >= mask_d (residual, q/k/v/attention output) and u >= mask_f (MLP) are new. While
     * mask_c < 1, every LayerNorm uses statistics weighted by m_i (1 on old channels, mask_c on
     * new ones) and multiplies its output by m_i; with mask_out, the embedding output and the
     * output of every linear layer (qkv, attn proj, fc, mlp proj) are multiplied by m_i too.
     * mask_d = 0 (the default) or mask_c = 1: off, the plain path. */
    int mask_d, mask_f, mask_out;
    float mask_c;
} sp_plan;

/* the plain network: every block once, in order, unshared, trained, scale 1, no mask */
void sp_plan_full(sp_plan *p);
/* the positions [*p0, *p1) of the plan that run on stored blocks [lo, hi) */
void sp_plan_range(const sp_plan *p, int lo, int hi, int *p0, int *p1);

/* A stage: blocks [lo, hi) plus the globals slab when it holds the embedding or the head. */
typedef struct sp_model {
    sp_spec spec;
    int lo, hi;
    int has_embed, has_head;
    const sp_kind *kind;
    const sp_objective *obj; /* the head's loss: sp_objectives[0] (causal) unless set */
    int nbt, ngt;            /* entries of bt and gt: the kind's */
    sp_tensor_info bt[SP_MAX_TENSORS], gt[SP_MAX_TENSORS];
    size_t block_numel, global_numel; /* global_numel is 0 if the stage holds no globals */
    size_t numel;                     /* floats in each arena */
    float *params, *grads, *m, *v;    /* arenas: [globals][block lo]...[block hi-1] */
    uint64_t *steps;                  /* AdamW step per slab: [0] globals, [1 + b - lo] blocks */
    sp_plan plan; /* what the next forward/backward/AdamW runs (the full network by default) */
    /* run.precision: bf16: the context the stage's matrix products run in, and a bf16 copy of
     * the params arena (same layout) that they read; sp_model_sync_bf16 refreshes it from the
     * fp32 params, which stay the master copy. Both NULL: fp32. */
    struct sp_gemm *gemm;
    uint16_t *params16;
    float *aux; /* the kind's table (sp_kind.aux_floats), NULL without one */
} sp_model;

int sp_model_create(sp_model *m, const sp_spec *s, int lo, int hi, int has_embed, int has_head,
                    sp_err *err);
/* The same stage with the params arena only (grads, m and v NULL): for models that are only read
 * or moved, never trained (inference, V-cycle levels saved for the way up). */
int sp_model_create_weights(sp_model *m, const sp_spec *s, int lo, int hi, int has_embed,
                            int has_head, sp_err *err);
void sp_model_free(sp_model *m);
/* Runs the stage's products in g (NULL: fp32), allocating the bf16 copy of the weights; the
 * copy is valid after the next sp_model_sync_bf16. */
int sp_model_use_gemm(sp_model *m, struct sp_gemm *g, sp_err *err);
/* params16 = bf16(params): after every change of the weights (an optimizer step, a load, a
 * growth event) and before the next forward. No-op in fp32. */
void sp_model_sync_bf16(sp_model *m);
/* The arenas of a stage (params, grads, m, v, params16) are created untouched: this faults them
 * in (contents kept) so that no page fault happens inside a step. */
void sp_model_touch(sp_model *m);
enum { SP_ARENA_PARAMS, SP_ARENA_GRADS, SP_ARENA_M, SP_ARENA_V, SP_ARENA_BF16, SP_MODEL_ARENAS };
/* Arena `to` of m gets the memory of arena `from` of donor, resized, with donor's old contents
 * (donor's pointer becomes NULL; the caller overwrites or zeroes it): a growth event recycles the
 * old stage's touched pages instead of faulting in fresh ones. No-op when either is absent. */
int sp_model_take_arena(sp_model *m, int to, sp_model *donor, int from, sp_err *err);
/* slab of block b (global index, lo <= b < hi) inside one of the arenas */
float *sp_model_block(const sp_model *m, float *arena, int b);
float *sp_model_globals(const sp_model *m, float *arena);
/* std of the GPT-2 init of a 2-D tensor: 0.02, residual output projections 0.02/sqrt(2 n_layer) */
float sp_model_init_std(const sp_spec *s, const sp_tensor_info *t);
/* GPT-2 init, layout-independent: element e of tensor id k is N(0,std)(seed, INIT, k, e); a
 * block of a weight-sharing group (plan.group) draws as its group's first block */
void sp_model_init(sp_model *m, uint64_t seed);
/* The init of one block (global index b) alone: tensor j draws from
 * (seed, purpose, a_hi | sp_model_tensor_id(b, j), element), residual projections scaled by the
 * spec's n_layer. sp_model_init uses (SP_RNG_INIT, 0); growth's fresh blocks (SP_RNG_GROW_INIT,
 * event << 32). */
void sp_model_init_block(sp_model *m, int b, uint64_t seed, uint32_t purpose, uint64_t a_hi);
/* tensor id used by the init RNG and by checkpoints: globals 0..3, block b tensor j = 64(b+1)+j */
uint64_t sp_model_tensor_id(int block, int j);

/* AdamW over the globals and every block of the stage the plan trains; decay only on 2-D
 * weights. Each updated slab's step count is advanced first (t starts at 1). */
typedef struct sp_adamw {
    float lr, beta1, beta2, eps, weight_decay;
} sp_adamw;
void sp_model_adamw(sp_model *m, const sp_adamw *h);

/* Stored activations of one micro-batch on one stage; one allocation. */
typedef struct sp_acts {
    int B, T, nb; /* nb = hi - lo: room for every block of the stage */
    int n_exec;   /* positions the last forward ran (the plan's share of this stage) */
    float *x;     /* [nb+1][N,C] residual at each position's input; x[n_exec] = stage output */
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *x2, *ln2, *ln2_mean, *ln2_rstd, *fch,
        *fchg;                                         /* per block, strided by the sizes below */
    float *lnf, *lnf_mean, *lnf_rstd, *probs, *losses; /* head only */
    float *emb, *emb_mean, *emb_rstd; /* sp_kind.embed_ln: the summed embeddings, their stats */
    float *hpre, *hact;               /* sp_kind.head_transform, head only: dense out, its GELU */
    /* A bf16 run of a kind with acts16: the activations read only as product operands (ln1,
     * ln2, fchg, lnf) are written in bf16 by their producer and stored only so (their fp32
     * pointers are then NULL): half their memory, and no rounding pass before each product.
     * stage: the producer's fp32 tile before rounding, stage_n floats: SP_ACTS_STAGE, or one row
     * of the widest width a producer tiles by whole rows (d_model, d_ff) when that is wider. */
    uint16_t *ln1h, *ln2h, *fchgh, *lnfh;
    float *stage;
    size_t stage_n;
    size_t bytes;
} sp_acts;
/* fp32 values a producer writes per tile before rounding them to bf16: ~32 KiB, cache-resident */
#define SP_ACTS_STAGE 8192

/* Backward scratch shared by all micro-batches of a stage. */
typedef struct sp_scratch {
    float *dres, *dln, *dqkv, *datty, *dfch, *dfchg, *datt, *dprobs;
    size_t bytes;
} sp_scratch;

int sp_acts_create(sp_acts *a, const sp_model *m, int B, int T, sp_err *err);
void sp_acts_free(sp_acts *a);
int sp_scratch_create(sp_scratch *s, const sp_model *m, int B, int T, sp_err *err);
void sp_scratch_free(sp_scratch *s);
/* the bytes sp_acts_create / sp_scratch_create would allocate for a stage of nb blocks (with the
 * head when has_head), without allocating: for memory budgets checked before anything is */
size_t sp_acts_bytes(const sp_spec *s, int nb, int has_head, int B, int T);
size_t sp_scratch_bytes(const sp_spec *s, int has_head, int B, int T);
/* The same in the memory of spare (a set no longer needed, emptied; NULL or empty: fresh), so
 * that a layout change re-uses touched pages (sp_recycle_big). */
int sp_acts_create_in(sp_acts *a, const sp_model *m, int B, int T, sp_acts *spare, sp_err *err);
int sp_scratch_create_in(sp_scratch *s, const sp_model *m, int B, int T, sp_scratch *spare,
                         sp_err *err);

/* inp [B,T] -> a->x[0] */
void sp_model_embed_forward(const sp_model *m, sp_acts *a, const int32_t *inp);
/* a->x[0] -> a->x[n_exec] through the plan's positions on this stage (n_exec = 0: x[0] is
 * passed on as it is) */
void sp_model_blocks_forward(const sp_model *m, sp_acts *a);
/* a->x[n_exec] -> probs; returns the mean loss over the B*T tokens. With targets NULL, probs hold
 * the raw logits instead and 0 is returned (for sampling). */
float sp_model_head_forward(const sp_model *m, sp_acts *a, const int32_t *targets);
/* head backward with dlogits = (probs - onehot) * scale; writes the gradient at x[n_exec] to
 * s->dres (overwritten) and accumulates into the globals' grads */
void sp_model_head_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *targets,
                            float scale);
/* done (sp_block_done_fn) is called after each block's backward with its global index, so that
 * its gradient reduction can start while earlier blocks are still being differentiated */
/* The plan's positions on this stage in reverse (the plan of the forward). s->dres holds
 * dL/dx[n_exec] on entry and dL/dx[0] on return; block grads accumulate. done may be
 * NULL. */
void sp_model_blocks_backward(sp_model *m, sp_acts *a, sp_scratch *s, sp_block_done_fn done,
                              void *ctx);
/* accumulates s->dres (dL/dx[0]) into the wte/wpe grads */
void sp_model_embed_backward(sp_model *m, sp_acts *a, sp_scratch *s, const int32_t *inp);

#endif
