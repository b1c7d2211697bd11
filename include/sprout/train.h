/* sprout training: the step loop, LR schedule, evaluation, sampling and the benchmark.
 * This is the one module that joins model, data, checkpoint and (later) parallel and growth. */
#ifndef SPROUT_TRAIN_H
#define SPROUT_TRAIN_H

#include <mpi.h>
#include <stdint.h>

#include "sprout/ckpt.h"
#include "sprout/config.h"
#include "sprout/core.h"
#include "sprout/data.h"
#include "sprout/grid.h"
#include "sprout/growth.h"
#include "sprout/model.h"
#include "sprout/schedule.h"

/* The state of a training run on one rank. */
#define SP_MAX_LEVELS 9 /* V-cycle levels, vcycle.levels <= 8 */

typedef struct sp_trainer {
    const sp_config *cfg;
    MPI_Comm comm;
    sp_grid grid;
    int rank, world, dp, dp_rank; /* copies of grid fields, for brevity */
    int T, mb, n_micro;           /* micro-batches per step on this replica */
    sp_model model;
    sp_schedule sched;
    int nslots;    /* activation sets held at once (the schedule's peak) */
    sp_acts *acts; /* [nslots] */
    sp_scratch scratch;
    int32_t *inp, *tgt; /* [nslots][mb, T] */
    float *gsend;       /* [nslots][mb*T*C] gradients in flight to the previous stage */
    float *grecv;       /* [nslots][mb*T*C] gradients arriving from the next stage */
    MPI_Request *req;   /* [4*nslots]: activation and gradient send of each slot, then the
                           activation and gradient receive of each slot */
    MPI_Request *red;   /* gradient buckets being all-reduced across replicas */
    int n_red, max_red;
    int last_bwd; /* index in the schedule of the step's last backward */
    sp_tokens train, val;
    int have_train, have_val;
    sp_train_state st; /* st.growth_index = growth events applied */
    double flops_per_token;
    sp_grow_sched gs; /* the config's growth events, resolved */
    int flags;        /* SP_TRAINER_* given to sp_trainer_init */
    /* V-cycle: the weights of level k saved on the way down (saved[k].numel == 0: none), on
     * the current grid with their own block ranges, until the way up interpolates with them */
    sp_model saved[SP_MAX_LEVELS];
    uint64_t grow_bytes_sent; /* bytes this rank sent to others in the last growth event */
    sp_subnet sn;             /* train.subnet resolved: the method drawing each step's plan */
    float *share;             /* [block_numel] Apollo: a group's gradient summed across stages */
    int exec_depth;           /* positions the last step ran */
    double exec_flops;        /* training FLOPs of the last step (executed blocks only) */
} sp_trainer;

/* flags: SP_TRAINER_DATA opens the token files (without it steps run on synthetic tokens, for
 * benchmarks); SP_TRAINER_NO_INIT leaves the weights uninitialised, for a caller that loads
 * them (a checkpoint) or calls sp_model_init itself: drawing 50 M normals costs seconds;
 * SP_TRAINER_QUIET keeps the growth schedule's warnings (about training) to itself;
 * SP_TRAINER_INFER allocates the weights only (no gradients, no moments): the trainer can then
 * evaluate and sample but not step. */
enum { SP_TRAINER_DATA = 1, SP_TRAINER_NO_INIT = 2, SP_TRAINER_QUIET = 4, SP_TRAINER_INFER = 8 };
int sp_trainer_init(sp_trainer *tr, const sp_config *cfg, int flags, MPI_Comm comm, sp_err *err);
void sp_trainer_free(sp_trainer *tr);
/* Re-creates the layout and an uninitialised model for growth stage k (the spec after the first
 * k events), e.g. before loading a checkpoint written at that stage. Collective. */
int sp_trainer_relayout(sp_trainer *tr, int k, sp_err *err);
/* Applies the next growth event (index st.growth_index) on the live job: the new layout is laid
 * out, the slabs move through the redistribution engine, the operator's transforms and the
 * optimizer policy are applied. Collective; errors are the same on every rank. */
int sp_trainer_grow(sp_trainer *tr, sp_err *err);
/* V-cycle: loads the saved level models the checkpoint at path must hold for the trainer's
 * growth stage. Collective. */
int sp_trainer_load_saved(sp_trainer *tr, const char *path, sp_err *err);
/* The saved level models as checkpoint extras (group "vcycle/level_K"); returns how many were
 * written to extra[] (at most SP_MAX_LEVELS); groups point into `names` (SP_MAX_LEVELS x 32). */
int sp_trainer_saved_extras(const sp_trainer *tr, sp_ckpt_extra *extra, char names[][32]);

/* ---- internal to src/train: the layout of the trainer's current model ---- */
void sp_trainer_layout_free(sp_trainer *tr);
int sp_trainer_layout_create(sp_trainer *tr, const sp_spec *spec, int requested_pp, sp_err *err);
int sp_trainer_pipeline_at(const sp_trainer *tr, int k);

/* The model's plan for 0-based step `step`: the full network with the step's branch scales and
 * channel mask (growth ramps), and with train = 1 the network the subnetwork method draws for
 * the step (src/train/plan.c). sp_trainer_step draws its own plan and leaves the full one. */
void sp_trainer_plan(sp_trainer *tr, int64_t step, int train);
/* sp_trainer_plan(tr, step, 0): what evaluation at step runs */
void sp_trainer_set_scales(sp_trainer *tr, int64_t step);
/* The initial weights (sp_model_init under the first step's plan, so that the copies of an Apollo
 * group start equal). */
void sp_trainer_init_weights(sp_trainer *tr);
/* Before 0-based step `step`: moves stored blocks when the subnetwork method's storage changes
 * at that step (Apollo's expansion where the extend maps do not nest), through the
 * redistribution engine on the current layout. Collective; a no-op on other steps. */
int sp_trainer_subnet_expand(sp_trainer *tr, int64_t step, sp_err *err);
/* internal to src/train: Apollo's shared gradients (plan.c) */
int sp_trainer_share_create(sp_trainer *tr, sp_err *err);
void sp_trainer_share_grads(sp_trainer *tr);
double sp_trainer_grad_sumsq(const sp_trainer *tr);
void sp_trainer_allreduce(float *x, size_t n, MPI_Comm comm);
/* Learning rate of 0-based step `step`: the config's schedule times the growth re-warm-up. */
double sp_trainer_lr(const sp_trainer *tr, int64_t step);
/* One optimizer step at learning rate lr: returns the global mean loss; *grad_norm is the
 * global norm before clipping. */
float sp_trainer_step(sp_trainer *tr, float lr, double *grad_norm);
/* Mean loss over the first n windows of tokens (n = 0: every whole window), in batches of the
 * trainer's micro-batch; windows are split across data-parallel ranks and the result reduced. */
double sp_trainer_eval(sp_trainer *tr, const sp_tokens *tok, int64_t n_windows);

/* learning rate at step (0-based) for the config's schedule (src/train/lr.c) */
double sp_lr_at(const sp_config *cfg, int64_t step);
/* wsd: the first step of the decay (train.decay_start, else steps - decay_fraction * steps, never
 * inside the warm-up) */
int64_t sp_lr_decay_start(const sp_config *cfg);

/* `sprout train`: the whole run. Rank 0 logs and writes OUT/metrics.jsonl; checkpoints go to
 * OUT/ckpt/step_XXXXXXXX.h5 every checkpoint.every steps and at the end. resume is NULL (fresh
 * run), "auto" (the newest checkpoint in OUT/ckpt that verifies, else fresh) or a file.
 * SIGUSR1 or SIGTERM: all ranks stop at the next step boundary after a checkpoint, SP_ESIGNAL. */
int sp_train_run(const sp_config *cfg, const char *config_yaml, const char *resume, MPI_Comm comm,
                 const sp_log *log, sp_err *err);

/* Rank 0: the checkpoint to resume from. "auto" takes the newest OUT/ckpt/step_*.h5 that
 * verifies and logs each one it skips and why; path is "" when there is none. */
int sp_resume_pick(const char *arg, const char *out, char *path, size_t n, const sp_log *log,
                   sp_err *err);
/* All ranks: weights, AdamW moments and steps, and the training state from path, whatever
 * layout wrote it. A spec that differs from the config's is refused naming the field. */
int sp_resume_load(sp_trainer *tr, const char *path, sp_err *err);
/* Rank 0: deletes all but the newest keep checkpoints in dir. */
void sp_ckpt_prune(const char *dir, int keep, const sp_log *log);

/* `sprout bench`: times `steps` training steps on synthetic data; prints the progress to the
 * log and the result JSON line on stdout (rank 0). */
int sp_bench_run(const sp_config *cfg, int steps, MPI_Comm comm, const sp_log *log, sp_err *err);
/* `sprout bench --vs-plain`: steps of the config (a subnetwork method) alternated with plain steps
 * of the same model (train.subnet: none) in one process; the result JSON line (rank 0) holds both
 * medians (ms_subnet, ms_plain), ms_subnet / ms_plain and the mean executed depth. */
int sp_bench_vs_plain(const sp_config *cfg, int steps, MPI_Comm comm, const sp_log *log,
                      sp_err *err);
/* `sprout bench --comm` (>= 2 ranks): ping-pong of one micro-batch's activations between ranks
 * 0 and 1 (one-way GB/s) and of 8 bytes (latency), and the in-place all-reduce of the whole
 * model's gradients in the trainer's buckets over every rank (bus GB/s = 2 (n-1)/n bytes / t);
 * medians of reps repetitions; the result JSON line on stdout (rank 0). */
int sp_bench_comm(const sp_config *cfg, int reps, MPI_Comm comm, const sp_log *log, sp_err *err);
/* sgemm GFLOP/s over the transformer's matrix shapes (forward and backward) at run.threads,
 * the best of reps repetitions */
double sp_bench_sgemm(const sp_config *cfg, int reps);

/* Builds a one-rank trainer (on comm) from a checkpoint's own config and loads its weights;
 * overrides micro_batch (and global_batch) when mb > 0. */
int sp_trainer_from_ckpt(sp_trainer *tr, sp_config *cfg, const char *ckpt, int mb, MPI_Comm comm,
                         sp_err *err);
/* `sprout sample`: continues prompt by n tokens; writes prompt + continuation to out. */
int sp_sample_run(const char *ckpt, const char *prompt, int n, double temperature, uint64_t seed,
                  void *out /* FILE* */, sp_err *err);
/* `sprout eval`: mean loss over the first batches*micro_batch windows of data (0 = all). */
int sp_eval_run(const char *ckpt, const char *data, int64_t batches, double *loss, MPI_Comm comm,
                sp_err *err);

#endif
