/* Clocks, big allocations, RSS and crc32. */
#define _GNU_SOURCE
#include "sprout/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

double sp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define HUGE_ALIGN ((size_t)2 << 20)

static size_t big_len(size_t bytes) {
    if (bytes == 0) bytes = 64;
    return (bytes + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
}

void *sp_alloc_big_lazy(size_t bytes, sp_err *err) {
    size_t len = big_len(bytes);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        sp_err_set(err, SP_ERUNTIME, "out of memory allocating %.1f MiB", (double)len / 1048576.0);
        return NULL;
    }
    /* THP is in madvise mode on these machines; huge pages make first touch ~500x cheaper */
    madvise(p, len, MADV_HUGEPAGE);
    return p;
}

void *sp_alloc_big(size_t bytes, sp_err *err) {
    void *p = sp_alloc_big_lazy(bytes, err);
    if (p) memset(p, 0, big_len(bytes));
    return p;
}

void sp_touch_big(void *p, size_t bytes) {
    if (!p) return;
    size_t len = big_len(bytes);
#ifdef MADV_POPULATE_WRITE
    if (madvise(p, len, MADV_POPULATE_WRITE) == 0) return;
#endif
    /* older kernels: one write per page, of the value already there */
    volatile unsigned char *c = p;
    for (size_t i = 0; i < len; i += 4096) c[i] = c[i];
}

void *sp_recycle_big(void *p, size_t old_bytes, size_t new_bytes, sp_err *err) {
    size_t ol = big_len(old_bytes), nl = big_len(new_bytes);
    void *q = ol == nl ? p : mremap(p, ol, nl, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
        munmap(p, ol);
        sp_err_set(err, SP_ERUNTIME, "out of memory allocating %.1f MiB", (double)nl / 1048576.0);
        return NULL;
    }
    if (nl > ol) madvise((char *)q + ol, nl - ol, MADV_HUGEPAGE);
    return q;
}

void sp_free_big(void *p, size_t bytes) {
    if (p) munmap(p, big_len(bytes));
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

static int write_all(int fd, const void *buf, size_t len) {
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int sp_fsync_dir_of(const char *path) {
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir)
        return errno = ENAMETOOLONG, -1;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int sp_write_atomic(const char *path, const sp_buf *bufs, int n, sp_err *err) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return sp_err_set(err, SP_EINPUT, "%.200s...: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return sp_err_set(err, SP_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
    int bad = 0;
    for (int i = 0; i < n && !bad; i++) bad = write_all(fd, bufs[i].p, bufs[i].n) != 0;
    if (bad || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return sp_err_set(err, SP_ERUNTIME, "%s: write failed: %s", tmp, strerror(e));
    }
    /* a file system may report a failed write-back only at close */
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return sp_err_set(err, SP_ERUNTIME, "%s: close failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return sp_err_set(err, SP_ERUNTIME, "%s: cannot rename %s: %s", path, tmp, strerror(e));
    }
    /* makes the rename durable; PATH is already the new file, so a failure here is not one of
     * the write (the caller could not undo it without losing the old file too) */
    (void)sp_fsync_dir_of(path);
    return SP_OK;
}
