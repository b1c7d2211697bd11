/* `sprout bench`: full training steps on synthetic tokens, and the matrix-product peak (sgemm,
 * and oneDNN bf16 in bf16) on the same model's matrix shapes, so that a run reports its own
 * ceiling. */
#include "sprout/kernels.h"
#include "sprout/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *openblas_get_corename(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The GEMMs of one block's forward and backward pass at the bench shape, with the transposes
 * the kernels use: (transA, transB, M, N, K). */
typedef struct gemm_shape {
    int ta, tb, M, N, K;
} gemm_shape;

double sp_bench_gemm(const sp_config *cfg, sp_gemm *gm, int reps) {
    openblas_set_num_threads((int)cfg->run.threads);
    int N = (int)(cfg->train.micro_batch * cfg->model.seq_len), C = (int)cfg->model.d_model;
    sp_spec spec; /* d_ff as the kind resolves model.d_ff = 0; an unknown kind is gpt2's */
    sp_train_target_spec(cfg, &spec, NULL);
    int F = spec.d_ff;
    gemm_shape sh[] = {
        {0, 0, N, 3 * C, C}, {0, 0, N, C, C},     {0, 0, N, F, C}, {0, 0, N, C, F},
        {0, 1, N, C, 3 * C}, {1, 0, C, 3 * C, N}, {0, 1, N, C, C}, {1, 0, C, C, N},
        {0, 1, N, C, F},     {1, 0, C, F, N},     {0, 1, N, F, C}, {1, 0, F, C, N},
    };
    int ns = (int)(sizeof sh / sizeof sh[0]);
    size_t big = (size_t)N * (size_t)(F > 3 * C ? F : 3 * C);
    float *a = malloc(big * sizeof(float)), *b = malloc(big * sizeof(float)),
          *c = malloc(big * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < big; i++) a[i] = b[i] = 0.001f * (float)(i % 97), c[i] = 0;
    /* as in the model: one operand of each product is a weight, whose bf16 copy exists already
     * (the one with a dimension other than N); the activations are rounded at every call */
    uint16_t *b16 = gm ? malloc(big * sizeof(uint16_t)) : NULL;
    if (b16) sp_to_bf16(b16, b, big);
    double *rates = malloc((size_t)reps * sizeof *rates);
    for (int r = -1; r < reps; r++) {
        double flops = 0, t0 = sp_now();
        for (int i = 0; i < ns; i++) {
            gemm_shape g = sh[i];
            int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
            int weight_b = g.K != N; /* dW = X^T dY reads two activations */
            sp_gemm_run(gm, g.ta, g.tb, g.M, g.N, g.K, 1.0f, SP_MAT(a, lda),
                        (sp_mat){b, weight_b ? b16 : NULL, ldb}, 0.0f, c, g.N);
            flops += 2.0 * g.M * g.N * g.K;
        }
        if (r >= 0) rates[r] = flops / (sp_now() - t0) / 1e9;
    }
    /* the best repetition: on a shared machine that is the closest to what the cores reach */
    double best = 0;
    for (int r = 0; r < reps; r++) best = rates[r] > best ? rates[r] : best;
    free(rates), free(a), free(b), free(c), free(b16);
    return best;
}

int sp_bench_run(const sp_config *cfg, int steps, MPI_Comm comm, const sp_log *log, sp_err *err) {
    sp_trainer tr;
    if (sp_trainer_init(&tr, cfg, 0, comm, err)) {
        sp_trainer_free(&tr);
        return err->code;
    }
    int warm = 2;
    double *ms = malloc((size_t)(steps > 0 ? steps : 1) * sizeof *ms), depth = 0, xflops = 0;
    for (int i = -warm; i < steps; i++) {
        double g = 0;
        MPI_Barrier(comm);
        double t0 = sp_now();
        sp_trainer_step(&tr, (float)cfg->train.lr, &g);
        MPI_Barrier(comm);
        if (i >= 0) ms[i] = (sp_now() - t0) * 1e3, depth += tr.exec_depth, xflops += tr.exec_flops;
    }
    depth /= steps > 0 ? steps : 1; /* a subnetwork method's executed depth, mean of the steps */
    xflops /= steps > 0 ? steps : 1;
    double med = median(ms, steps);
    double toks = (double)(cfg->train.global_batch * cfg->model.seq_len);
    double tps = toks / (med / 1e3);
    double gflops = tr.flops_per_token * tps / 1e9;
    double rss = sp_peak_rss_mib();
    MPI_Allreduce(MPI_IN_PLACE, &rss, 1, MPI_DOUBLE, MPI_MAX, comm);
    if (tr.rank == 0) {
        sp_info(log,
                "bench: %d steps, median %.1f ms/step, %.0f tok/s, %.1f GFLOP/s, %s, OpenBLAS %s "
                "x %d thread(s), %d rank(s)",
                steps, med, tps, gflops, cfg->run.precision, openblas_get_corename(),
                openblas_get_num_threads(), tr.world);
        printf("{\"impl\":\"sprout\",\"precision\":\"%s\",\"ranks\":%d,\"threads\":%d,"
               "\"tok_per_s\":%.1f,\"gflops\":%.2f,\"ms_per_step\":%.2f,\"peak_rss_mib\":%.1f,"
               "\"openblas_core\":\"%s\",\"gemm_isa\":\"%s\",\"exec_depth\":%.2f,"
               "\"exec_flops\":%.4g}\n",
               cfg->run.precision, tr.world, openblas_get_num_threads(), tps, gflops, med, rss,
               openblas_get_corename(), sp_gemm_isa(tr.gemm), depth, xflops);
        fflush(stdout);
    }
    free(ms);
    sp_trainer_free(&tr);
    return SP_OK;
}

int sp_bench_vs_plain(const sp_config *cfg, int steps, MPI_Comm comm, const sp_log *log,
                      sp_err *err) {
    sp_config pc = *cfg; /* shares cfg's strings; only read, never freed */
    pc.train.subnet = (char *)"none";
    sp_trainer tr[2];
    int rc = sp_trainer_init(&tr[0], cfg, 0, comm, err), inited = 1;
    if (!rc) rc = sp_trainer_init(&tr[1], &pc, 0, comm, err), inited = 2;
    double *ms = malloc(2 * (size_t)(steps > 0 ? steps : 1) * sizeof *ms), depth = 0;
    if (!rc && !ms) rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
    for (int i = -2; !rc && i < steps; i++) /* two warm-up rounds */
        for (int k = 0; k < 2; k++) {
            double g = 0;
            MPI_Barrier(comm);
            double t0 = sp_now();
            sp_trainer_step(&tr[k], (float)cfg->train.lr, &g);
            MPI_Barrier(comm);
            if (i >= 0) ms[k * steps + i] = (sp_now() - t0) * 1e3;
            if (i >= 0 && k == 0) depth += tr[0].exec_depth;
        }
    if (!rc) {
        double sub = median(ms, steps), plain = median(ms + steps, steps);
        depth /= steps;
        int L = tr[1].model.spec.n_layer;
        sp_info(log,
                "bench: %s %d steps alternated with plain ones: median %.1f ms vs %.1f ms "
                "(ratio %.3f) at mean depth %.2f of %d (%.3f)",
                cfg->train.subnet, steps, sub, plain, sub / plain, depth, L, depth / L);
        if (tr[0].rank == 0) {
            printf("{\"impl\":\"sprout\",\"ranks\":%d,\"subnet\":\"%s\",\"ms_subnet\":%.2f,"
                   "\"ms_plain\":%.2f,\"ratio\":%.4f,\"exec_depth\":%.2f,\"n_layer\":%d}\n",
                   tr[0].world, cfg->train.subnet, sub, plain, sub / plain, depth, L);
            fflush(stdout);
        }
    }
    free(ms);
    while (inited > 0) sp_trainer_free(&tr[--inited]);
    return rc;
}

/* median seconds of one ping-pong round trip of n floats between ranks 0 and 1 */
static double pingpong(float *buf, int n, int reps, int rank, MPI_Comm comm) {
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = -2; r < reps; r++) { /* two untimed rounds: connection set-up */
        MPI_Barrier(comm);
        double t0 = sp_now();
        if (rank == 0) {
            MPI_Send(buf, n, MPI_FLOAT, 1, 7, comm);
            MPI_Recv(buf, n, MPI_FLOAT, 1, 7, comm, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
            MPI_Recv(buf, n, MPI_FLOAT, 0, 7, comm, MPI_STATUS_IGNORE);
            MPI_Send(buf, n, MPI_FLOAT, 0, 7, comm);
        }
        if (r >= 0) t[r] = sp_now() - t0;
    }
    double m = median(t, reps);
    free(t);
    return m;
}

int sp_bench_comm(const sp_config *cfg, int reps, MPI_Comm comm, const sp_log *log, sp_err *err) {
    int rank, world;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    if (world < 2) return sp_err_set(err, SP_EINPUT, "bench --comm needs at least 2 ranks");
    sp_spec s;
    if (sp_train_target_spec(cfg, &s, err)) return err->code;
    size_t act = (size_t)cfg->train.micro_batch * (size_t)s.seq_len * (size_t)s.d_model;
    size_t grad = sp_spec_num_params(&s), bucket = (size_t)1 << 20; /* the trainer's bucket */
    float *buf = sp_alloc_big((act > grad ? act : grad) * sizeof(float), err);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!buf || !t) {
        free(t);
        return err->code ? err->code : sp_err_set(err, SP_ERUNTIME, "out of memory");
    }
    double rt_act = pingpong(buf, (int)act, reps, rank, comm);
    double rt_lat = pingpong(buf, 2, reps, rank, comm);
    for (int r = -1; r < reps; r++) {
        MPI_Barrier(comm);
        double t0 = sp_now();
        for (size_t o = 0; o < grad; o += bucket) {
            size_t c = grad - o < bucket ? grad - o : bucket;
            MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)c, MPI_FLOAT, MPI_SUM, comm);
        }
        if (r >= 0) t[r] = sp_now() - t0;
    }
    double t_ar = median(t, reps);
    double p2p = 2.0 * (double)act * 4 / rt_act / 1e9, lat = rt_lat / 2 * 1e6;
    double bus = 2.0 * (world - 1) / world * (double)grad * 4 / t_ar / 1e9;
    if (rank == 0) {
        sp_info(log,
                "comm: p2p %.2f MB activations %.2f GB/s one way, latency %.2f us; all-reduce of "
                "%.1f MB gradients over %d ranks in %zu-float buckets: %.1f ms, bus %.2f GB/s",
                (double)act * 4 / 1e6, p2p, lat, (double)grad * 4 / 1e6, world, bucket, t_ar * 1e3,
                bus);
        printf("{\"impl\":\"comm\",\"ranks\":%d,\"act_bytes\":%zu,\"p2p_gbs\":%.3f,"
               "\"p2p_lat_us\":%.3f,\"grad_bytes\":%zu,\"allreduce_ms\":%.3f,"
               "\"allreduce_bus_gbs\":%.3f}\n",
               world, act * 4, p2p, lat, grad * 4, t_ar * 1e3, bus);
        fflush(stdout);
    }
    sp_free_big(buf, (act > grad ? act : grad) * sizeof(float));
    free(t);
    return SP_OK;
}
