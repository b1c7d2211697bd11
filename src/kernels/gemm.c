/* Matrix products: OpenBLAS sgemm in fp32, or oneDNN matmul with bf16 inputs, fp32 accumulation
 * and fp32 output (run.precision: bf16).
 *
 * Why a context and a cache: a oneDNN primitive is compiled for one shape (a JIT kernel), which
 * costs far more than running it, so each distinct product of a run (a handful: the four linear
 * layers forward and backward, the head, attention's tiles) is created once, on first use, and
 * reused from then on. The cache is a short array searched linearly: a step makes a few dozen
 * products of 1-100 MFLOP each, against which the search is free.
 *
 * Operands arrive in fp32 and are rounded to bf16 (round to nearest even) into packed scratch
 * buffers; an operand that already has a bf16 copy (the weights, refreshed once per optimizer
 * step: sp_model_sync_bf16) is read from it directly. Transposes are expressed as strides of the
 * packed operand, so packing never transposes. */
#include "sprout/kernels.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SP_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#endif

/* Round to nearest even on the upper 16 bits; NaN stays NaN (quiet bit forced); fp32
 * subnormals become a signed zero, as the hardware instruction below makes them, so that the
 * rounding does not depend on the CPU. */
static void to_bf16_scalar(uint16_t *restrict dst, const float *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u)
                     : (u & 0x7f800000u) == 0        ? u & 0x80000000u
                                                     : u + 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(r >> 16);
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10 || defined(__clang__))
#include <immintrin.h>
#define SP_HAVE_CVT_BF16 1
/* the same rounding in one instruction per 32 values (vcvtne2ps2bf16: nearest even, NaN to a
 * quiet NaN): the operands of every bf16 product pass through here, so the scalar loop cost ~10%
 * of a bf16 step */
__attribute__((target("avx512f,avx512bf16"))) static void
to_bf16_avx512(uint16_t *restrict dst, const float *restrict src, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)r);
    }
    to_bf16_scalar(dst + i, src + i, n - i);
}
#endif

void sp_to_bf16(uint16_t *restrict dst, const float *restrict src, size_t n) {
#ifdef SP_HAVE_CVT_BF16
    if (__builtin_cpu_supports("avx512bf16")) {
        to_bf16_avx512(dst, src, n);
        return;
    }
#endif
    to_bf16_scalar(dst, src, n);
}

float sp_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void sgemm(int ta, int tb, int M, int N, int K, float alpha, sp_mat A, sp_mat B, float beta,
                  float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A.f, A.ld, B.f, B.ld, beta, C, ldc);
}

/* C[M,N] = bias broadcast over the rows: sgemm then accumulates onto it with beta = 1 (OpenBLAS
 * makes a pass over C for beta = 0 anyway, so the bias costs no extra pass there) */
static void broadcast(float *C, int ldc, const float *bias, int M, int N) {
    for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, bias, (size_t)N * sizeof(float));
}

#ifndef SP_HAVE_DNNL

struct sp_gemm {
    int unused;
};

int sp_gemm_create(sp_gemm **g, int threads, sp_err *err) {
    (void)threads;
    *g = NULL;
    return sp_err_set(err, SP_EINPUT,
                      "run.precision: bf16 needs oneDNN, and this sprout was built without it "
                      "(install libdnnl-dev and rebuild)");
}
void sp_gemm_free(sp_gemm *g) {
    (void)g;
}
const char *sp_gemm_isa(const sp_gemm *g) {
    (void)g;
    return "none";
}
uint16_t *sp_gemm_buf(sp_gemm *g, int slot, size_t n) {
    (void)g, (void)slot, (void)n;
    return NULL;
}
void sp_gemm_run(sp_gemm *g, int ta, int tb, int M, int N, int K, float alpha, sp_mat A, sp_mat B,
                 float beta, float *C, int ldc) {
    (void)g;
    sgemm(ta, tb, M, N, K, alpha, A, B, beta, C, ldc);
}
void sp_gemm_run_bias(sp_gemm *g, int ta, int tb, int M, int N, int K, sp_mat A, sp_mat B,
                      const float *bias, float *C, int ldc) {
    (void)g;
    broadcast(C, ldc, bias, M, N);
    sgemm(ta, tb, M, N, K, 1.0f, A, B, 1.0f, C, ldc);
}

#else

/* A product as oneDNN sees it: A [.., M, K], B [.., K, N], C [.., M, N] with any strides (a
 * transpose is a stride), nd = 2 or 3 (batched: one leading batch dimension). */
typedef struct pkey {
    int nd;
    dnnl_dims_t ad, as, bd, bs, cd, cs;
    float alpha, beta;
    int bias; /* C = op(A) op(B) + bias[N] broadcast over the rows (nd 2, beta 0) */
} pkey;

typedef struct prim {
    pkey k;
    dnnl_primitive_t p;
    dnnl_memory_t a, b, c, bias; /* their data handles are set at every call; bias may be NULL */
} prim;

#define NBUF 7 /* bf16 buffers: 0, 1 pack sp_gemm_run's operands; the rest: sp_gemm_buf */

struct sp_gemm {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    prim *cache;
    int n, cap;
    uint16_t *buf[NBUF];
    size_t cap_buf[NBUF];
    char isa[64];
};

static int isa_name(dnnl_cpu_isa_t isa, char *buf, size_t n) {
    static const struct {
        dnnl_cpu_isa_t isa;
        const char *name;
    } k_isas[] = {
        {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
        {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
        {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
        {dnnl_cpu_isa_avx512_core, "avx512_core"},
        {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
        {dnnl_cpu_isa_avx2, "avx2"},
        {dnnl_cpu_isa_avx, "avx"},
        {dnnl_cpu_isa_sse41, "sse41"},
    };
    for (size_t i = 0; i < sizeof k_isas / sizeof k_isas[0]; i++)
        if ((isa & k_isas[i].isa) == k_isas[i].isa) {
            snprintf(buf, n, "%s", k_isas[i].name);
            return (k_isas[i].isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
        }
    snprintf(buf, n, "unknown (0x%x)", (unsigned)isa);
    return 0;
}

int sp_gemm_create(sp_gemm **out, int threads, sp_err *err) {
    *out = NULL;
    char isa[64];
    /* oneDNN also has a bf16 path emulated on plain AVX-512, several times slower than fp32
     * sgemm: refusing is clearer than a bf16 run that is slower than the fp32 one */
    if (!isa_name(dnnl_get_effective_cpu_isa(), isa, sizeof isa))
        return sp_err_set(err, SP_EINPUT,
                          "run.precision: bf16 needs a CPU with native bf16 products "
                          "(avx512_core_bf16 or amx); oneDNN finds only %s here: use fp32",
                          isa);
    sp_gemm *g = calloc(1, sizeof *g);
    if (!g) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    snprintf(g->isa, sizeof g->isa, "%s", isa);
    /* oneDNN runs on OpenMP; its pool gets run.threads like OpenBLAS's */
    omp_set_num_threads(threads);
    if (dnnl_engine_create(&g->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&g->stream, g->eng, dnnl_stream_default_flags) != dnnl_success) {
        sp_gemm_free(g);
        return sp_err_set(err, SP_ERUNTIME, "oneDNN: cannot create a CPU engine");
    }
    *out = g;
    return SP_OK;
}

void sp_gemm_free(sp_gemm *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        dnnl_primitive_destroy(g->cache[i].p);
        dnnl_memory_destroy(g->cache[i].a);
        dnnl_memory_destroy(g->cache[i].b);
        dnnl_memory_destroy(g->cache[i].c);
        if (g->cache[i].bias) dnnl_memory_destroy(g->cache[i].bias);
    }
    free(g->cache);
    for (int i = 0; i < NBUF; i++) free(g->buf[i]);
    if (g->stream) dnnl_stream_destroy(g->stream);
    if (g->eng) dnnl_engine_destroy(g->eng);
    free(g);
}

const char *sp_gemm_isa(const sp_gemm *g) {
    return g ? g->isa : "none";
}

uint16_t *sp_gemm_buf(sp_gemm *g, int slot, size_t n) {
    if (slot < 0 || slot >= NBUF) return NULL;
    if (n > g->cap_buf[slot]) {
        free(g->buf[slot]);
        g->buf[slot] = aligned_alloc(64, (n * 2 + 63) & ~(size_t)63);
        g->cap_buf[slot] = g->buf[slot] ? n : 0;
    }
    return g->buf[slot];
}

/* The compiled primitive of product k, created on first use. NULL on failure. */
static prim *get_prim(sp_gemm *g, const pkey *k) {
    for (int i = 0; i < g->n; i++)
        if (!memcmp(&g->cache[i].k, k, sizeof *k)) return &g->cache[i];
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 32;
        prim *grown = realloc(g->cache, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        g->cache = grown, g->cap = cap;
    }
    dnnl_memory_desc_t ad, bd, cd, biasd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_matmul_desc_t md;
    prim q = {*k, NULL, NULL, NULL, NULL, NULL};
    dnnl_dims_t bias_dims = {1, k->cd[1]};
    float alpha = k->alpha;
    int ok =
        dnnl_memory_desc_init_by_strides(&ad, k->nd, k->ad, dnnl_bf16, k->as) == dnnl_success &&
        dnnl_memory_desc_init_by_strides(&bd, k->nd, k->bd, dnnl_bf16, k->bs) == dnnl_success &&
        dnnl_memory_desc_init_by_strides(&cd, k->nd, k->cd, dnnl_f32, k->cs) == dnnl_success &&
        (!k->bias ||
         dnnl_memory_desc_init_by_tag(&biasd, 2, bias_dims, dnnl_f32, dnnl_ab) == dnnl_success) &&
        dnnl_matmul_desc_init(&md, &ad, &bd, k->bias ? &biasd : NULL, &cd) == dnnl_success &&
        dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && alpha != 1.0f)
        ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha) == dnnl_success;
    if (ok && k->beta != 0.0f) /* beta is 0 or 1 in sprout: C += op(A) op(B) */
        ok = dnnl_post_ops_create(&po) == dnnl_success &&
             dnnl_post_ops_append_sum(po, k->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    ok =
        ok && dnnl_primitive_desc_create(&pd, &md, attr, g->eng, NULL) == dnnl_success &&
        dnnl_primitive_create(&q.p, pd) == dnnl_success &&
        dnnl_memory_create(&q.a, &ad, g->eng, DNNL_MEMORY_NONE) == dnnl_success &&
        dnnl_memory_create(&q.b, &bd, g->eng, DNNL_MEMORY_NONE) == dnnl_success &&
        dnnl_memory_create(&q.c, &cd, g->eng, DNNL_MEMORY_NONE) == dnnl_success &&
        (!k->bias || dnnl_memory_create(&q.bias, &biasd, g->eng, DNNL_MEMORY_NONE) == dnnl_success);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        if (q.p) dnnl_primitive_destroy(q.p);
        if (q.a) dnnl_memory_destroy(q.a);
        if (q.b) dnnl_memory_destroy(q.b);
        if (q.c) dnnl_memory_destroy(q.c);
        return NULL;
    }
    g->cache[g->n] = q;
    return &g->cache[g->n++];
}

static int execute(sp_gemm *g, const pkey *k, const uint16_t *a, const uint16_t *b,
                   const float *bias, float *c) {
    prim *q = get_prim(g, k);
    if (!q) return -1;
    dnnl_memory_set_data_handle(q->a, (void *)a);
    dnnl_memory_set_data_handle(q->b, (void *)b);
    dnnl_memory_set_data_handle(q->c, c);
    if (q->bias) dnnl_memory_set_data_handle(q->bias, (void *)bias);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, q->a},
                               {DNNL_ARG_WEIGHTS, q->b},
                               {DNNL_ARG_DST, q->c},
                               {DNNL_ARG_BIAS, q->bias}};
    if (dnnl_primitive_execute(q->p, g->stream, q->bias ? 4 : 3, args) != dnnl_success) return -1;
    return dnnl_stream_wait(g->stream) == dnnl_success ? 0 : -1;
}

/* X (rows x cols, leading dimension ld) in bf16, contiguous: its own copy when it has one,
 * else rounded into buffer `slot` */
static const uint16_t *packed(sp_gemm *g, int slot, sp_mat X, int rows, int cols) {
    if (X.h && X.ld == cols) return X.h;
    uint16_t *d = sp_gemm_buf(g, slot, (size_t)rows * cols);
    if (!d) return NULL;
    for (int r = 0; r < rows; r++)
        sp_to_bf16(d + (size_t)r * cols, X.f + (size_t)r * X.ld, (size_t)cols);
    return d;
}

/* element (r, c) of a stored operand [rows, cols]: from its bf16 copy x when it has one */
static float elem(sp_mat X, const uint16_t *x, int r, int c, int cols) {
    return x ? sp_bf16_to_f32(x[(size_t)r * cols + c]) : X.f[(size_t)r * X.ld + c];
}

/* the product by plain loops, for an operand stored only in bf16 when oneDNN failed (out of memory
 * for a primitive): never on a normal run, so simplicity over speed */
static void gemm_loops(int ta, int tb, int M, int N, int K, float alpha, sp_mat A,
                       const uint16_t *a, sp_mat B, const uint16_t *b, float beta, float *C,
                       int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s += (ta ? elem(A, a, k, i, M) : elem(A, a, i, k, K)) *
                     (tb ? elem(B, b, j, k, K) : elem(B, b, k, j, N));
            float *c = &C[(size_t)i * ldc + j];
            *c = alpha * s + (beta != 0.0f ? *c : 0.0f);
        }
}

/* the product with bias (NULL: none; then alpha and beta as given, else 1 and 0) */
static void run(sp_gemm *g, int ta, int tb, int M, int N, int K, float alpha, sp_mat A, sp_mat B,
                float beta, const float *bias, float *C, int ldc) {
    if (!g || M == 0 || N == 0 || K == 0) {
        if (bias) broadcast(C, ldc, bias, M, N), beta = 1.0f;
        sgemm(ta, tb, M, N, K, alpha, A, B, beta, C, ldc);
        return;
    }
    const uint16_t *a = packed(g, 0, A, ta ? K : M, ta ? M : K);
    const uint16_t *b = packed(g, 1, B, tb ? N : K, tb ? K : N);
    pkey k;
    memset(&k, 0, sizeof k); /* the key is compared as bytes */
    k.nd = 2, k.alpha = alpha, k.beta = beta, k.bias = bias != NULL;
    k.ad[0] = M, k.ad[1] = K, k.as[0] = ta ? 1 : K, k.as[1] = ta ? M : 1;
    k.bd[0] = K, k.bd[1] = N, k.bs[0] = tb ? 1 : N, k.bs[1] = tb ? K : 1;
    k.cd[0] = M, k.cd[1] = N, k.cs[0] = ldc, k.cs[1] = 1;
    if (a && b && !execute(g, &k, a, b, bias, C)) return;
    /* out of memory for scratch or a primitive: the product is still computed, in fp32 */
    if (bias) broadcast(C, ldc, bias, M, N), beta = 1.0f;
    if (A.f && B.f)
        sgemm(ta, tb, M, N, K, alpha, A, B, beta, C, ldc);
    else
        gemm_loops(ta, tb, M, N, K, alpha, A, A.f ? NULL : a, B, B.f ? NULL : b, beta, C, ldc);
}

void sp_gemm_run(sp_gemm *g, int ta, int tb, int M, int N, int K, float alpha, sp_mat A, sp_mat B,
                 float beta, float *C, int ldc) {
    run(g, ta, tb, M, N, K, alpha, A, B, beta, NULL, C, ldc);
}

/* bf16: oneDNN adds the bias to the fp32 accumulator as it writes C, which spares the pass that
 * broadcasts it into C first (the same single fp32 add of the same two values) */
void sp_gemm_run_bias(sp_gemm *g, int ta, int tb, int M, int N, int K, sp_mat A, sp_mat B,
                      const float *bias, float *C, int ldc) {
    run(g, ta, tb, M, N, K, 1.0f, A, B, 0.0f, bias, C, ldc);
}

int sp_gemm_batched(sp_gemm *g, int batch, int M, int N, int K, float alpha, const uint16_t *A,
                    const int64_t as[3], const uint16_t *B, const int64_t bs[3], float beta,
                    float *C, const int64_t cs[3]) {
    pkey k;
    memset(&k, 0, sizeof k);
    k.nd = 3, k.alpha = alpha, k.beta = beta;
    int64_t ad[3] = {batch, M, K}, bd[3] = {batch, K, N}, cd[3] = {batch, M, N};
    for (int i = 0; i < 3; i++) {
        k.ad[i] = ad[i], k.bd[i] = bd[i], k.cd[i] = cd[i];
        k.as[i] = as[i], k.bs[i] = bs[i], k.cs[i] = cs[i];
    }
    return execute(g, &k, A, B, NULL, C);
}

#endif
