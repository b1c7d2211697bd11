/* Philox4x32-10 (Salmon et al., SC'11): a keyed bijection on 128-bit counters. Every random
 * number in sprout is philox(key = seed ^ purpose, counter = (a, b)), so a value depends on
 * global indices only, never on which rank asks or in what order. */
#include "sprout/core.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void sp_rng4(uint64_t seed, uint32_t purpose, uint64_t a, uint64_t b, uint32_t out[4]) {
    /* purpose goes into the key's upper half so streams of different purposes never meet */
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32) ^ (purpose * 0x85EBCA6Bu);
    uint32_t c0 = (uint32_t)b, c1 = (uint32_t)(b >> 32), c2 = (uint32_t)a, c3 = (uint32_t)(a >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0, k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

uint64_t sp_rng_u64(uint64_t seed, uint32_t purpose, uint64_t a, uint64_t b) {
    uint32_t r[4];
    sp_rng4(seed, purpose, a, b, r);
    return ((uint64_t)r[0] << 32) | r[1];
}

float sp_rng_uniform(uint64_t seed, uint32_t purpose, uint64_t a, uint64_t b) {
    uint32_t r[4];
    sp_rng4(seed, purpose, a, b, r);
    return (float)(r[0] >> 8) * (1.0f / 16777216.0f);
}

/* Box-Muller on two 32-bit words; one philox call gives two normals, so element e uses
 * counter e/2 and takes the cosine or sine half by parity. */
void sp_rng_normal_fill(float *x, size_t n, float std, uint64_t seed, uint32_t purpose, uint64_t a,
                        uint64_t base) {
    for (size_t i = 0; i < n; i++) {
        uint64_t e = base + i;
        uint32_t r[4];
        sp_rng4(seed, purpose, a, e >> 1, r);
        double u1 = ((double)r[0] + 1.0) * (1.0 / 4294967296.0); /* (0,1] */
        double u2 = (double)r[1] * (1.0 / 4294967296.0);
        double rad = sqrt(-2.0 * log(u1));
        double z = (e & 1) ? rad * sin(2.0 * M_PI * u2) : rad * cos(2.0 * M_PI * u2);
        x[i] = (float)(z * std);
    }
}
