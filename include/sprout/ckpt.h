/* sprout checkpoints: one parallel-HDF5 file per checkpoint describing the global model
 * (design §6), never the rank layout. Every rank calls the collective functions; each tensor
 * is written by its owner (the rank that holds its slab with data-parallel rank 0). */
#ifndef SPROUT_CKPT_H
#define SPROUT_CKPT_H

#include <mpi.h>
#include <stdint.h>

#include "sprout/core.h"
#include "sprout/model.h"

typedef struct sp_train_state {
    int64_t step;         /* optimizer steps done */
    int64_t tokens;       /* training tokens seen */
    double flops;         /* training FLOPs spent */
    int64_t growth_index; /* growth events applied */
    uint64_t seed;
    int64_t data_cursor; /* next data step index: sample k of step t = f(seed, t, k) */
    double lr;           /* last learning rate used */
    double wallclock;    /* seconds of training so far */
} sp_train_state;

/* Writes PATH atomically: PATH.tmp collectively, fsync, rename by rank 0.
 * `owner` says whether this rank writes the stage's tensors (dp rank 0). */
int sp_ckpt_save(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                 const char *config_yaml, MPI_Comm comm, sp_err *err);

/* Reads the spec and the training state (any rank, independent). */
int sp_ckpt_read_header(const char *path, sp_spec *spec, sp_train_state *st, sp_err *err);
/* Reads the resolved config text (malloc'd, NUL-terminated). */
int sp_ckpt_read_config(const char *path, char **yaml, sp_err *err);
/* Fills the stage's slabs (weights, and the AdamW moments and steps if with_optim) from the file,
 * verifying each tensor's crc32. The model must be created with the file's spec. */
int sp_ckpt_load(const char *path, sp_model *m, int with_optim, sp_err *err);

/* Checks every dataset's crc32; prints one line per tensor to `out` when out is not NULL.
 * Returns SP_OK when all verify, SP_EINPUT naming the first bad tensor otherwise. */
int sp_ckpt_verify(const char *path, void *out /* FILE* */, sp_err *err);

#endif
