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
#include "sprout/tokenizer.h"

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
    /* during a growth event: the old layout's activation sets, re-used by the new layout's */
    sp_acts *spare_acts; /* [n_spare] */
    int n_spare;
    sp_scratch spare_scratch;
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
    sp_tok_files
        tok; /* the data's tokenizer and its files (SP_TRAINER_DATA): checkpoints keep it */
    sp_train_state st; /* st.growth_index = growth events applied */
    double flops_per_token;
    sp_grow_sched gs; /* the config's growth events, resolved */
    int flags;        /* SP_TRAINER_* given to sp_trainer_init */
    /* V-cycle: the weights of level k saved on the way down (saved[k].numel == 0: none), on
     * the current grid with their own block ranges, until the way up interpolates with them */
    sp_model saved[SP_MAX_LEVELS];
    struct sp_gemm *gemm;     /* run.precision: bf16, else NULL (fp32) */
    uint64_t grow_bytes_sent; /* bytes this rank sent to others in the last growth event */
    sp_subnet sn;             /* train.subnet resolved: the method drawing each step's plan */
    const sp_objective *obj;  /* train.objective: the loss of every stage's head */
    float *share;             /* [block_numel] Apollo: a group's gradient summed across stages */
    int exec_depth;           /* positions the last step ran */
    double exec_flops;        /* training FLOPs of the last step (executed blocks only) */
    double learn_loss[2];     /* G_learn: the loss of the last event's first and last data step */
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
/* frees what the last layout_create left of the spare activation sets */
void sp_trainer_spare_free(sp_trainer *tr);
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
/* The gradients of the next data step (st.data_cursor) under the model's current plan, reduced
 * over replicas, tied copies and shared blocks, and nothing updated: the step's first half, and
 * what G_learn's event trains its coefficients on. Spends the data step (data_cursor, tokens,
 * FLOPs advance; st.step does not). Returns the global mean loss, *grad_norm the global norm. */
float sp_trainer_grads(sp_trainer *tr, double *grad_norm);
/* Mean loss over the first n windows of tokens (n = 0: every whole window), in batches of the
 * trainer's micro-batch; windows are split across data-parallel ranks and the result reduced. */
double sp_trainer_eval(sp_trainer *tr, const sp_tokens *tok, int64_t n_windows, double *se);

/* learning rate at step (0-based) for the config's schedule (src/train/lr.c) */
double sp_lr_at(const sp_config *cfg, int64_t step);
/* The model the config ends with (model.*, the kind from model.block); an unknown kind is
 * SP_EINPUT naming model.block (err may be NULL when the config was checked already). */
int sp_train_target_spec(const sp_config *cfg, sp_spec *s, sp_err *err);
/* Resolves cfg->growth (or cfg->vcycle) against cfg->model and cfg->train into events
 * (src/train/schedule_cfg.c; at_tokens/factor `auto` per docs/growth.md; warnings go to log).
 * Errors name the key, e.g. growth[1].at_step. */
int sp_train_grow_schedule(const sp_config *cfg, sp_grow_sched *gs, const sp_log *log, sp_err *err);
/* The config's train.subnet with its section (apollo.*, raptr.*) as plain data. Errors name the
 * key. Counts in apollo.unique must let every depth fit its copies (docs/growth.md). */
int sp_subnet_resolve(const sp_config *cfg, sp_subnet *sn, sp_err *err);
/* wsd: the first step of the decay (train.decay_start, else steps - decay_fraction * steps, never
 * inside the warm-up) */
int64_t sp_lr_decay_start(const sp_config *cfg);

/* Catches SIGUSR1, SIGTERM and SIGINT as a request to stop sp_train_run, from now until the
 * process exits (the handlers are never removed, so a second signal is ignored). Call it first
 * thing in main, before MPI_Init, so that no moment of start-up is left to the default action. */
void sp_train_catch_signals(void);

/* `sprout train`: the whole run. Rank 0 logs and writes OUT/metrics.jsonl; checkpoints go to
 * OUT/ckpt/step_XXXXXXXX.h5 every checkpoint.every steps and at the end. resume is NULL (fresh
 * run), "auto" (OUT/ckpt/latest, falling back along its line of history; see sp_resume) or a
 * file. OUT is locked for the run (sp_rundir_lock); without resume, a directory that already
 * holds a run is refused, or with force started over (sp_run_check_dir).
 * A stop signal (sp_train_catch_signals): all ranks stop at the next step boundary after a
 * checkpoint, SP_ESIGNAL; one that came during start-up (before or while a checkpoint is verified
 * and loaded) stops before the first step, SP_ESIGNAL, with nothing written. */
int sp_train_run(const sp_config *cfg, const char *config_yaml, const char *resume, int force,
                 MPI_Comm comm, const sp_log *log, sp_err *err);

/* All ranks: resumes from what --resume names (NULL: a fresh start) and sets the line of
 * history the run's checkpoints belong to (docs/checkpoints.md). "auto" tries OUT/ckpt/latest,
 * then its parents, then older checkpoints of its line, each loaded and checked on every rank,
 * and logs one line saying what it chose and why; none there: a fresh start. A FILE is strict:
 * its failure is the error, with every failing rank's reason. *loaded says whether the weights
 * came from a file. config_yaml names a new line (a fresh start or a branch). */
int sp_resume(sp_trainer *tr, const char *arg, const char *config_yaml, int *loaded,
              const sp_log *log, sp_err *err);
/* Rank 0: creates the run directory OUT (every missing component) and takes the advisory lock
 * OUT/.lock for the run's lifetime (*fd; sp_rundir_unlock releases it). SP_EINPUT naming run.out
 * when a component is not a directory, the path cannot be written, or another run (named by
 * pid and host) holds the lock. */
int sp_rundir_lock(const char *out, int *fd, sp_err *err);
void sp_rundir_unlock(int fd); /* safe on -1 */
/* All ranks: weights, AdamW moments and steps, and the training state from path, whatever
 * layout wrote it. A spec that differs from the config's is refused naming the field. */
int sp_resume_load(sp_trainer *tr, const char *path, sp_err *err);
/* Rank 0, before writing the checkpoint of st: moves aside (to dir/superseded/<line>/, never
 * deleting) a file of another line or an unreadable one under the name about to be written,
 * and, on a line's first checkpoint, the other lines' checkpoints past its branch point. */
void sp_resume_supersede(const char *dir, const sp_train_state *st, const sp_log *log);
/* Rank 0: deletes all but the newest keep checkpoints of head's line of history (head and its
 * parents); files of other lines or that sprout did not write are never touched. */
void sp_resume_prune(const char *dir, int keep, const sp_train_state *head, const sp_log *log);

/* ---- the run directory (src/train/rundir.c) ---- */
/* Rank 0, before a fresh (not resumed) run: refuses with SP_EINPUT, naming out, when out already
 * holds a run (checkpoints or metrics), unless force, which deletes its checkpoints. */
int sp_run_check_dir(const char *out, int force, const sp_log *log, sp_err *err);
/* Creates out/ckpt and its parents. */
int sp_run_mkdirs(const char *out, sp_err *err);
/* Writes out/config.yaml: the resolved config (temp + rename). */
int sp_run_save_config(const char *out, const char *yaml, sp_err *err);
/* A checkpoint argument: a run directory stands for the checkpoint its ckpt/latest names;
 * anything else is copied as it is. */
int sp_run_resolve_ckpt(const char *arg, char *path, size_t n, sp_err *err);
/* All ranks, after resuming from path: refuses a train.steps below the checkpoint's step; rank 0
 * says what a changed train.steps moves (the schedule's end, growth events) and when the run is
 * already complete. */
int sp_run_check_steps(const sp_trainer *tr, const char *path, const sp_log *log, sp_err *err);

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
double sp_bench_gemm(const sp_config *cfg, struct sp_gemm *g, int reps);

/* Builds a one-rank trainer (on comm) from a checkpoint's own config and loads its weights;
 * overrides micro_batch (and global_batch) when mb > 0. */
int sp_trainer_from_ckpt(sp_trainer *tr, sp_config *cfg, const char *ckpt, int mb, MPI_Comm comm,
                         sp_err *err);
/* Sampling options: temperature 0 = greedy; top_k 0 = every token; top_p 1 = no nucleus cut. */
typedef struct sp_sample_opts {
    int n;              /* tokens to generate */
    double temperature; /* 0: greedy */
    int top_k;          /* keep the k most likely tokens (0 = all) */
    double top_p;       /* keep the fewest most likely tokens whose mass reaches p (1 = all) */
    uint64_t seed;
} sp_sample_opts;
/* `sprout sample`: continues prompt; writes prompt + continuation to out. */
int sp_sample_run(const char *ckpt, const char *prompt, const sp_sample_opts *o,
                  void *out /* FILE* */, sp_err *err);
/* What `sprout eval` measured: the mean loss over `windows` windows of `tokens` targets. */
typedef struct sp_eval_result {
    double loss, se; /* se: bootstrap over windows (NaN for a single window) */
    int64_t windows, tokens;
    int all; /* the windows are every whole window of the file */
    int vocab;
    /* the UTF-8 bytes the scored targets decode to, and loss * tokens / bytes: nats per byte,
     * comparable between tokenizers */
    int64_t bytes;
    double loss_per_byte;
} sp_eval_result;
/* `sprout eval`: mean loss over the first `windows` windows of data (0 = all); batches > 0 (the
 * legacy option) means batches x the checkpoint's micro_batch windows instead. */
int sp_eval_run(const char *ckpt, const char *data, int64_t windows, int64_t batches,
                sp_eval_result *res, MPI_Comm comm, sp_err *err);

#endif
