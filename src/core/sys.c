/* Clocks, big allocations, RSS and crc32. */
#define _GNU_SOURCE
#include "sprout/core.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <zlib.h>

double sp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define HUGE_ALIGN ((size_t)2 << 20)

void *sp_alloc_big(size_t bytes, sp_err *err) {
    if (bytes == 0) bytes = 64;
    size_t len = (bytes + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        sp_err_set(err, SP_ERUNTIME, "out of memory allocating %.1f MiB", (double)len / 1048576.0);
        return NULL;
    }
    /* THP is in madvise mode on these machines; huge pages make first touch ~500x cheaper */
    madvise(p, len, MADV_HUGEPAGE);
    memset(p, 0, len);
    return p;
}

void sp_free_big(void *p, size_t bytes) {
    if (!p) return;
    if (bytes == 0) bytes = 64;
    size_t len = (bytes + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
    munmap(p, len);
}

double sp_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

uint32_t sp_crc32(uint32_t crc, const void *buf, size_t len) {
    /* zlib's crc32 is table-driven and fast; feed it in chunks that fit its uInt length */
    const unsigned char *p = buf;
    uLong c = crc;
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        c = crc32(c, p, n);
        p += n, len -= n;
    }
    return (uint32_t)c;
}
