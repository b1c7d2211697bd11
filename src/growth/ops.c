/* The growth operators as a table: one row per operator, the one place an operator's name is
 * read. A row says whether it changes depth (a block map) or width (the width engine's mode), in
 * which direction, whether it fades something in, on which block kinds its math holds and is
 * function-preserving at the event (docs/growth.md has the table in prose). Adding an operator is
 * one row here plus its map or width mode. */
#include "sprout/growth.h"

#include <stdio.h>
#include <string.h>

/* block kinds by row of the kind table (src/model/kinds.c) */
#define K_GPT2  (1u << 0)
#define K_LLAMA (1u << 1)
#define K_BERT  (1u << 2)
/* every kind: the depth maps move whole blocks, the width splits hold on each kind's axis roles */
#define K_ALL (K_GPT2 | K_LLAMA | K_BERT)
/* the kinds on which an identity-initialised block is the identity: pre-norm ones. A post-LN
 * block (bert) ends in a LayerNorm, and LN(x + 0) != x. */
#define K_PRENORM (K_GPT2 | K_LLAMA)

/* ---- depth maps: new block j of L from l old blocks ---- */

/* G_stack (and G^direct of the operator study, the same map): old block j mod l */
static sp_block_src map_stack(int j, int l, int factor) {
    (void)factor;
    return sp_block_one(j % l, SP_XF_COPY);
}

/* interpolation (and multi-level de-coalescing in depth, 0,0,1,1,..): old block floor(j l / L) */
static sp_block_src map_interpolate(int j, int l, int factor) {
    long long L = (long long)factor * l;
    return sp_block_one((int)((long long)j * l / L), SP_XF_COPY);
}

/* interleaved: old block i, then its factor-1 identity copies */
static sp_block_src map_zero(int j, int l, int factor) {
    (void)l;
    return sp_block_one(j / factor, j % factor ? SP_XF_ZERO_OUT : SP_XF_COPY);
}

/* old blocks keep their slots, fresh blocks are appended */
static sp_block_src map_random(int j, int l, int factor) {
    (void)factor;
    return j >= l ? sp_block_one(-1, SP_XF_RANDOM) : sp_block_one(j, SP_XF_COPY);
}

/* coalescing in depth: new block j = mean of old blocks factor*j .. factor*j + factor-1. For
 * factor 2, (a + a) * 0.5 == a, so coalescing a de-coalesced model gives it back bit for bit. */
static sp_block_src map_coalesce(int j, int l, int factor) {
    (void)l;
    sp_block_src s = {factor * j, SP_XF_COPY, factor - 1, {0}, 1.0f / (float)factor};
    for (int p = 1; p < factor; p++) s.more[p - 1] = factor * j + p;
    return s;
}

const sp_grow_op sp_grow_ops[] = {
    /* name, dim, shrinks, ramps, applies, preserves, map, width mode, inverse, learns */
    {"stack", SP_OP_DEPTH, 0, 0, K_ALL, 0, map_stack, 0, NULL, 0},
    {"direct", SP_OP_DEPTH, 0, 0, K_ALL, 0, map_stack, 0, NULL, 0},
    /* G_learn: G_stack's map, then learned (sp_learn) */
    {"learn", SP_OP_DEPTH, 0, 0, K_ALL, 0, map_stack, 0, NULL, 1},
    {"interpolate", SP_OP_DEPTH, 0, 0, K_ALL, 0, map_interpolate, 0, NULL, 0},
    {"decoalesce_depth", SP_OP_DEPTH, 0, 0, K_ALL, 0, map_interpolate, 0, NULL, 0},
    /* zero: exactly, the copies' projections onto the residual stream being 0 (gpt2: c_proj w
     * and b of both branches; llama: o_proj and down_proj); random: exactly while its branch
     * scale is 0; on bert both run (bert zeroes its two output denses) without preserving */
    {"zero", SP_OP_DEPTH, 0, 0, K_ALL, K_PRENORM, map_zero, 0, NULL, 0},
    {"random", SP_OP_DEPTH, 0, 1, K_ALL, K_PRENORM, map_random, 0, NULL, 0},
    {"coalesce_depth", SP_OP_DEPTH, 1, 0, K_ALL, 0, map_coalesce, 0, NULL, 0},
    /* the width splits preserve the function up to fp32 rounding on every kind: a norm
     * (LayerNorm, pre- or post-LN, or RMSNorm) over k exact copies has the same statistics, heads
     * (with their rotary pairs) are copied whole, SwiGLU and GELU are elementwise, and the norm
     * feeding the head is divided by k (the kinds' axis roles, docs/growth.md). widen_zero and
     * widen_random preserve it while their new channels are masked out: every kind's forward has
     * the masked norms (LayerNorm or RMSNorm) and the output masks */
    {"decoalesce_width", SP_OP_WIDTH, 0, 0, K_ALL, K_ALL, NULL, SP_W_DECOALESCE, "coalesce_width",
     0},
    {"widen_direct", SP_OP_WIDTH, 0, 0, K_ALL, K_ALL, NULL, SP_W_WIDEN_DIRECT, "coalesce_width", 0},
    {"widen_zero", SP_OP_WIDTH, 0, 1, K_ALL, K_ALL, NULL, SP_W_WIDEN_ZERO, "coalesce_width", 0},
    {"widen_random", SP_OP_WIDTH, 0, 1, K_ALL, K_ALL, NULL, SP_W_WIDEN_RANDOM, "coalesce_width", 0},
    {"coalesce_width", SP_OP_WIDTH, 1, 0, K_ALL, 0, NULL, SP_W_COALESCE, "decoalesce_width", 0},
};
const int sp_grow_nops = (int)(sizeof sp_grow_ops / sizeof sp_grow_ops[0]);

const sp_grow_op *sp_grow_op_find(const char *name) {
    for (int i = 0; name && i < sp_grow_nops; i++)
        if (!strcmp(sp_grow_ops[i].name, name)) return &sp_grow_ops[i];
    return NULL;
}

const char *sp_grow_op_names(int dim) {
    static char buf[3][512];
    char *b = buf[dim < 0 ? 2 : dim];
    if (!b[0])
        for (int i = 0; i < sp_grow_nops; i++) {
            if (dim >= 0 && sp_grow_ops[i].dim != dim) continue;
            size_t n = strlen(b);
            snprintf(b + n, 512 - n, "%s%s", n ? ", " : "", sp_grow_ops[i].name);
        }
    return b;
}

int sp_grow_is_depth_op(const char *op) {
    const sp_grow_op *r = sp_grow_op_find(op);
    return r && r->dim == SP_OP_DEPTH;
}

int sp_grow_is_width_op(const char *op) {
    const sp_grow_op *r = sp_grow_op_find(op);
    return r && r->dim == SP_OP_WIDTH;
}

int sp_grow_is_op(const char *op) {
    return sp_grow_op_find(op) != NULL;
}

int sp_grow_preserves(const char *op, int kind) {
    const sp_grow_op *r = sp_grow_op_find(op);
    return r && kind >= 0 && kind < 32 && (r->preserves >> kind & 1u);
}

int sp_grow_op_applies(const sp_grow_op *r, const sp_spec *s, sp_err *err) {
    if (s->kind >= 0 && s->kind < 32 && (r->applies >> s->kind & 1u)) return SP_OK;
    return sp_err_set(err, SP_EINPUT, "growth op '%s' is not defined for model.block %s (yet)",
                      r->name, sp_kind_of(s)->name);
}
