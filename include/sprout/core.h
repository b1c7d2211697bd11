/* sprout core: errors, logging, counter-based RNG, timers, aligned arenas.
 *
 * Errors travel as return codes. A function that can fail takes an `sp_err *` as its
 * last argument, fills it with sp_err_set() and returns the code; callers pass it up.
 * Only main() turns a code into an exit status. */
#ifndef SPROUT_CORE_H
#define SPROUT_CORE_H

#include <stddef.h>
#include <stdint.h>

/* exit-status compatible error codes (design §8) */
enum {
    SP_OK = 0,
    SP_ERUNTIME = 1, /* I/O failure, MPI failure, out of memory */
    SP_EINPUT = 2,   /* bad usage, config, or input file */
    SP_ESIGNAL = 3,  /* stopped on a signal after a checkpoint */
};

typedef struct sp_err {
    int code;
    char msg[512];
    /* set by a collective function whose ranks agreed on this error (every rank holds the same
     * message): main says it once and finalises instead of aborting the other ranks */
    int all_ranks;
} sp_err;

/* Sets err (if not NULL) and returns code. The message is one line, no trailing newline. */
int sp_err_set(sp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes an existing message: "ctx: old message". Returns err->code. */
int sp_err_wrap(sp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logging goes to stderr; verbosity and rank prefix are owned by main and passed in. */
typedef struct sp_log {
    int rank;  /* prints only when rank == 0 unless all_ranks */
    int quiet; /* suppress info */
} sp_log;
void sp_info(const sp_log *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sp_warn(const sp_log *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* main only: every line printed to stderr also goes to f (a FILE *; NULL stops the copy) */
void sp_log_tee(void *f);

/* ---- counter-based RNG (Philox4x32-10) ----
 * Every random number is a pure function of (seed, purpose, a, b): no generator state.
 * `a` and `b` are global indices (e.g. step and sample, or block and element). */
enum sp_rng_purpose {
    SP_RNG_INIT = 1,      /* a = tensor id, b = element */
    SP_RNG_DATA = 2,      /* a = step, b = global sample index */
    SP_RNG_SAMPLE = 3,    /* a = sample step, b = 0 */
    SP_RNG_GROW_INIT = 4, /* a = (event << 32) | tensor id, b = element */
    SP_RNG_LVPS = 5,
    SP_RNG_RAPTR = 6,
    SP_RNG_BOOTSTRAP = 7, /* a = resample, b = draw: the evaluation's standard error */
    SP_RNG_MLM = 8,       /* a = step, b = (global sample index << 32) | position */
    SP_RNG_TEST = 15,
};
/* Four independent 32-bit words for counter (a, b). */
void sp_rng4(uint64_t seed, uint32_t purpose, uint64_t a, uint64_t b, uint32_t out[4]);
uint64_t sp_rng_u64(uint64_t seed, uint32_t purpose, uint64_t a, uint64_t b);
/* uniform in [0,1) with 24 random bits */
float sp_rng_uniform(uint64_t seed, uint32_t purpose, uint64_t a, uint64_t b);
/* Fills x[i] = N(0, std) for global element indices base+i. Layout-independent: the value of
 * element e depends only on (seed, purpose, a, e). */
void sp_rng_normal_fill(float *x, size_t n, float std, uint64_t seed, uint32_t purpose, uint64_t a,
                        uint64_t base);

/* ---- checked integer arithmetic ----
 * For arithmetic on values that come from a config or a file (schedule steps, token counts,
 * sizes): signed overflow is undefined behaviour and, in practice, wraps a huge value into a
 * small or negative one. These return 1 on overflow, with *r left unspecified. */
static inline int sp_add_i64(int64_t a, int64_t b, int64_t *r) {
    return __builtin_add_overflow(a, b, r);
}
static inline int sp_mul_i64(int64_t a, int64_t b, int64_t *r) {
    return __builtin_mul_overflow(a, b, r);
}
static inline int sp_mul_int(int a, int b, int *r) {
    return __builtin_mul_overflow(a, b, r);
}
/* ceil(a / b) for a >= 0 and b > 0, without the overflow of (a + b - 1) / b */
static inline int64_t sp_ceil_div_i64(int64_t a, int64_t b) {
    return a / b + (a % b != 0);
}
/* x rounded toward zero and clamped to [lo, hi]; NaN gives lo. Casting a double outside the
 * range of int64_t is undefined, this is not. */
static inline int64_t sp_clamp_i64(double x, int64_t lo, int64_t hi) {
    if (!(x > (double)lo)) return lo;
    if (x >= (double)hi) return hi;
    return (int64_t)x;
}

/* ---- timers ---- */
double sp_now(void); /* monotonic seconds */

/* ---- big buffers ----
 * Allocated once, 2 MiB aligned, under MADV_HUGEPAGE, zeroed (touched) on allocation so that
 * page faults happen at start-up, not inside a step. */
void *sp_alloc_big(size_t bytes, sp_err *err);
void sp_free_big(void *p, size_t bytes);
/* The same without the touch: pages arrive (zeroed) on first use. For arenas that are filled
 * from elsewhere, or given recycled memory, before anything reads them. */
void *sp_alloc_big_lazy(size_t bytes, sp_err *err);
/* Faults every page of p in, keeping the contents. */
void sp_touch_big(void *p, size_t bytes);
/* Resizes the big buffer p (old_bytes) to new_bytes in its own pages where they exist: a first
 * touch costs 10-50x a write on these machines, so re-using touched memory beats a fresh buffer.
 * The first min(old, new) bytes keep p's contents, the rest is zero (and not touched yet). NULL
 * (p freed) when out of memory. */
void *sp_recycle_big(void *p, size_t old_bytes, size_t new_bytes, sp_err *err);

/* peak resident set size of this process, in MiB */
double sp_peak_rss_mib(void);

/* ---- files ---- */
typedef struct sp_buf {
    const void *p;
    size_t n;
} sp_buf;
/* The one safe write: the buffers in order to PATH.tmp, fsync, rename to PATH, fsync of the
 * directory, so PATH is either the old file or the complete new one. On failure PATH.tmp is
 * removed and the message names the file and the OS error (SP_ERUNTIME). */
int sp_write_atomic(const char *path, const sp_buf *bufs, int n, sp_err *err);
/* fsync of the directory holding PATH (which makes a rename in it durable); -1 with errno set */
int sp_fsync_dir_of(const char *path);

/* crc32 (IEEE, as zlib) */
uint32_t sp_crc32(uint32_t crc, const void *buf, size_t len);

#endif
