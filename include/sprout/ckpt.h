/* sprout checkpoints: one parallel-HDF5 file per checkpoint describing the global model
 * (design §6), never the rank layout. Every rank calls the collective functions; each tensor
 * is written by its owner (the rank that holds its slab with data-parallel rank 0). */
#ifndef SPROUT_CKPT_H
#define SPROUT_CKPT_H

#include <mpi.h>
#include <stdint.h>

#include "sprout/core.h"
#include "sprout/model.h"

#define SP_RUN_ID_LEN 17 /* 16 hex digits and the NUL */

typedef struct sp_train_state {
    int64_t step;         /* optimizer steps done */
    int64_t tokens;       /* training tokens seen */
    double flops;         /* training FLOPs spent */
    int64_t growth_index; /* growth events applied */
    uint64_t seed;
    int64_t data_cursor; /* next data step index: sample k of step t = f(seed, t, k) */
    double lr;           /* last learning rate used */
    double wallclock;    /* seconds of training so far */
    /* lineage (docs/checkpoints.md): the id of the line of history this checkpoint belongs to,
     * and the checkpoint it continues (parent_step -1: none, a fresh start). A resume that is
     * not from the head of its line starts a new line whose parent is the file resumed from. */
    char run_id[SP_RUN_ID_LEN];
    char parent_run[SP_RUN_ID_LEN];
    int64_t parent_step;
    /* subnetwork methods (train.subnet): the method's stage and the step the next plan is drawn
     * for (the counter of its RNG); plans are pure functions of the step, so nothing else is
     * needed. -1 in checkpoints written before they existed. */
    int64_t subnet_stage, plan_step;
} sp_train_state;

/* A weight-only model stored beside the live one, under /<group>/<HF name> (e.g. group
 * "vcycle/level_1"), with its spec as attributes of /<group>. V-cycle training keeps there the
 * larger models saved on the way down, to interpolate with them on the way up. The group is a
 * relative path of plain components, not under /model, /optim, /spec, /train or /config, and
 * neither equal to nor nested in another extra's group. */
typedef struct sp_ckpt_extra {
    const char *group;
    const sp_model *m; /* this rank's stage of it (params only; its m/v are not written) */
} sp_ckpt_extra;

/* Writes PATH atomically: PATH.tmp collectively, fsync, rename by rank 0.
 * `owner` says whether this rank writes the stage's tensors (dp rank 0); the same flag covers
 * the extras: an owner writes the blocks of each extra stage it holds, and that extra's globals
 * if its stage holds the embedding. Collective: every rank passes the same n_extra, groups (in
 * the same order) and extra specs; a mismatch or an invalid group is refused with SP_EINPUT on
 * every rank before the file is created. */
int sp_ckpt_save_ex(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                    const char *config_yaml, const sp_ckpt_extra *extra, int n_extra, MPI_Comm comm,
                    sp_err *err);
/* sp_ckpt_save_ex that also records the tokenizer (tok not NULL): /tokenizer holds its id and
 * name and the bytes of its vocabulary files, so that sample, eval and an export need nothing
 * but the checkpoint. Every rank passes the same files. */
struct sp_tok_files; /* include/sprout/tokenizer.h */
int sp_ckpt_save_tok(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                     const char *config_yaml, const sp_ckpt_extra *extra, int n_extra,
                     const struct sp_tok_files *tok, MPI_Comm comm, sp_err *err);
/* The tokenizer a checkpoint records, files included (checked against their crc32); a file
 * without /tokenizer (written before it existed) reads as bytes. */
int sp_ckpt_read_tokenizer(const char *path, struct sp_tok_files *tok, sp_err *err);
/* sp_ckpt_save_ex with no extra models. */
int sp_ckpt_save(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                 const char *config_yaml, MPI_Comm comm, sp_err *err);

/* Reads the spec and the training state (any rank, independent), checking the crc32 of the
 * root, /spec, /config and /train attributes. */
int sp_ckpt_read_header(const char *path, sp_spec *spec, sp_train_state *st, sp_err *err);
/* Reads the resolved config text (malloc'd, NUL-terminated). */
int sp_ckpt_read_config(const char *path, char **yaml, sp_err *err);
/* Fills the stage's slabs (weights, and the AdamW moments and steps if with_optim) from the file,
 * verifying each tensor's crc32. The model must be created with the file's spec. */
int sp_ckpt_load(const char *path, sp_model *m, int with_optim, sp_err *err);

/* Reads the spec stored for an extra group (any rank, independent); SP_EINPUT naming the group
 * if it is absent. */
int sp_ckpt_read_extra_spec(const char *path, const char *group, sp_spec *spec, sp_err *err);
/* Fills the params of this rank's stage of an extra model (created with that spec) from
 * /<group>, checking shapes and crc32 as sp_ckpt_load does. */
int sp_ckpt_load_extra(const char *path, const char *group, sp_model *m, sp_err *err);

/* Checks the file's whole expected content: the crc32 of the root, /spec, /train and /config
 * attributes, and every dataset the spec and the recorded extra groups imply (present, of the
 * right type and shape, its crc32), and that no other dataset is there. Prints one line per
 * object to `out` when out is not NULL. Returns SP_OK when all verify, SP_EINPUT naming the
 * first bad object otherwise. */
int sp_ckpt_verify(const char *path, void *out /* FILE* */, sp_err *err);

#endif
