/* Token files: validate once at open, then index freely; sampling is stateless. */
#define _GNU_SOURCE
#include "sprout/data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tokens are used straight from the file's bytes, which hold little-endian uint16. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sprout token files are little-endian and are read directly: big-endian hosts unsupported"
#endif

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

/* Checks the header and size against the file length; tokens are checked by the caller. */
static int check_header(const unsigned char *h, size_t len, const char *path, uint32_t *vocab,
                        uint64_t *count, uint32_t *tokenizer, sp_err *err) {
    if (memcmp(h, SP_TOK_MAGIC, 8) != 0)
        return sp_err_set(err, SP_EINPUT, "%s: not a sprout token file (bad magic)", path);
    for (int i = 24; i < 32; i++)
        if (h[i] != 0)
            return sp_err_set(err, SP_EINPUT, "%s: reserved header bytes 24..31 are not zero",
                              path);
    *vocab = get_u32(h + 8);
    *count = get_u64(h + 12);
    *tokenizer = get_u32(h + 20);
    if (*vocab == 0 || *vocab > SP_TOK_MAX_VOCAB)
        return sp_err_set(err, SP_EINPUT, "%s: vocab %u is out of range 1..%d", path, *vocab,
                          SP_TOK_MAX_VOCAB);
    /* compare in tokens so a huge header count cannot overflow 32 + 2*count */
    uint64_t held = (len - SP_TOK_HEADER) / 2;
    int odd = (len - SP_TOK_HEADER) % 2 != 0;
    if (*count > held)
        return sp_err_set(err, SP_EINPUT, "%s: truncated: header says %llu tokens, file holds %llu",
                          path, (unsigned long long)*count, (unsigned long long)held);
    if (*count < held || odd)
        return sp_err_set(err, SP_EINPUT,
                          "%s: trailing bytes: header says %llu tokens, file is %zu bytes "
                          "(expected %llu)",
                          path, (unsigned long long)*count, len,
                          (unsigned long long)(SP_TOK_HEADER + 2 * *count));
    if (*count < 2)
        return sp_err_set(err, SP_EINPUT,
                          "%s: holds %llu tokens; at least 2 are needed (an input and a target)",
                          path, (unsigned long long)*count);
    return SP_OK;
}

/* The file is read into private memory at open instead of being mapped. A mapping of a file
 * that is changed underneath is unsafe either way: truncate the file (or `cp` over it, which
 * truncates first) and the next window read is a SIGBUS; rewrite it in place and the tokens
 * change after the vocab check (MAP_PRIVATE copies only pages this process writes), so an
 * embedding row past the table would be read. A private copy is immune: the run goes on with
 * the tokens it validated, whatever happens to the file. It costs the file's size per rank
 * (2 bytes a token: 1 GiB holds 512M tokens, far above the corpora sprout targets), and the step
 * path reads it exactly as it read the mapping, with no page faults inside a step. */
static void *read_whole(int fd, size_t len, const char *path, sp_err *err) {
    size_t cap = len ? len : 1;
    void *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        sp_err_set(err, SP_ERUNTIME, "%s: out of memory reading %zu bytes", path, len);
        return NULL;
    }
    madvise(buf, cap, MADV_HUGEPAGE); /* windows are read at random: fewer TLB misses */
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r < 0)
                sp_err_set(err, SP_EINPUT, "%s: read failed: %s", path, strerror(errno));
            else /* shrunk between fstat and read */
                sp_err_set(err, SP_EINPUT, "%s: changed while being read (%zu of %zu bytes)", path,
                           got, len);
            munmap(buf, cap);
            return NULL;
        }
        got += (size_t)r;
    }
    return buf;
}

static const char *file_kind(mode_t m) {
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "something else";
}

int sp_data_open(sp_tokens *t, const char *path, sp_err *err) {
    memset(t, 0, sizeof *t);
    if (strlen(path) >= sizeof t->path)
        return sp_err_set(err, SP_EINPUT, "%.200s...: path is %zu bytes long (at most %zu)", path,
                          strlen(path), sizeof t->path - 1);
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; a
     * regular file ignores the flag */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return sp_err_set(err, SP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: is %s, not a regular file", path,
                          file_kind(st.st_mode));
    }
    size_t len = (size_t)st.st_size;
    if (len < SP_TOK_HEADER) {
        close(fd);
        return sp_err_set(err, SP_EINPUT,
                          "%s: too short for a token file (%zu bytes, the header alone is %d)",
                          path, len, SP_TOK_HEADER);
    }
    void *buf = read_whole(fd, len, path, err);
    close(fd);
    if (!buf) return err->code;

    uint32_t vocab = 0, tokenizer = 0;
    uint64_t count = 0;
    int rc = check_header(buf, len, path, &vocab, &count, &tokenizer, err);
    if (rc != SP_OK) {
        munmap(buf, len);
        return rc;
    }
    const uint16_t *tok = (const uint16_t *)((const unsigned char *)buf + SP_TOK_HEADER);
    /* one branch-free max pass (vectorises); locate the culprit only on failure */
    uint16_t mx = 0;
    for (uint64_t i = 0; i < count; i++) mx = tok[i] > mx ? tok[i] : mx;
    if ((uint32_t)mx >= vocab) {
        uint64_t i = 0;
        while ((uint32_t)tok[i] < vocab) i++;
        sp_err_set(err, SP_EINPUT, "%s: token %u at position %llu is >= vocab %u", path,
                   (unsigned)tok[i], (unsigned long long)i, vocab);
        munmap(buf, len);
        return SP_EINPUT;
    }
    t->tok = tok;
    t->n = count;
    t->vocab = vocab;
    t->tokenizer = tokenizer;
    t->buf = buf;
    t->buf_len = len;
    snprintf(t->path, sizeof t->path, "%s", path);
    t->dev = (uint64_t)st.st_dev, t->ino = (uint64_t)st.st_ino, t->size = (uint64_t)st.st_size;
    t->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return SP_OK;
}

int sp_data_changed(const sp_tokens *t) {
    struct stat st;
    if (stat(t->path, &st) != 0) return 1;
    return (uint64_t)st.st_dev != t->dev || (uint64_t)st.st_ino != t->ino ||
           (uint64_t)st.st_size != t->size ||
           (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != t->mtime_ns;
}

void sp_data_close(sp_tokens *t) {
    if (t->buf) munmap(t->buf, t->buf_len);
    memset(t, 0, sizeof *t);
}

int sp_data_check_vocab(const sp_tokens *t, int64_t model_vocab, sp_err *err) {
    if ((int64_t)t->vocab > model_vocab)
        return sp_err_set(err, SP_EINPUT, "%s: vocab %u is larger than the model's vocab %lld",
                          t->path, t->vocab, (long long)model_vocab);
    return SP_OK;
}

int sp_data_check_context(const sp_tokens *t, int T, sp_err *err) {
    if (T < 1 || t->n < (uint64_t)T + 1)
        return sp_err_set(err, SP_EINPUT,
                          "%s: %llu tokens are too few for model.seq_len = %d (need at least %lld)",
                          t->path, (unsigned long long)t->n, T, (long long)T + 1);
    return SP_OK;
}

int sp_data_write(const char *path, const uint16_t *tok, uint64_t n, uint32_t vocab,
                  uint32_t tokenizer, sp_err *err) {
    if (vocab == 0 || vocab > SP_TOK_MAX_VOCAB)
        return sp_err_set(err, SP_EINPUT, "%s: vocab %u is out of range 1..%d", path, vocab,
                          SP_TOK_MAX_VOCAB);
    if (n < 2)
        return sp_err_set(err, SP_EINPUT, "%s: %llu tokens; at least 2 are needed", path,
                          (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        if ((uint32_t)tok[i] >= vocab)
            return sp_err_set(err, SP_EINPUT, "%s: token %u at position %llu is >= vocab %u", path,
                              (unsigned)tok[i], (unsigned long long)i, vocab);

    unsigned char h[SP_TOK_HEADER] = {0};
    memcpy(h, SP_TOK_MAGIC, 8);
    put_u32(h + 8, vocab);
    put_u64(h + 12, n);
    put_u32(h + 20, tokenizer);
    /* the host is little-endian (checked above), so the tokens go out as they are */
    const sp_buf bufs[2] = {{h, sizeof h}, {tok, (size_t)n * sizeof *tok}};
    return sp_write_atomic(path, bufs, 2, err);
}

void sp_data_train_sample(const sp_tokens *t, uint64_t seed, uint64_t step, uint64_t k, int T,
                          int32_t *inp, int32_t *tgt) {
    if (T < 1) return;
    if (t->n < (uint64_t)T + 1) {
        memset(inp, 0, (size_t)T * sizeof *inp);
        memset(tgt, 0, (size_t)T * sizeof *tgt);
        return;
    }
    uint64_t range = t->n - (uint64_t)T; /* starts 0 .. n-T-1 */
    uint64_t u = sp_rng_u64(seed, SP_RNG_DATA, step, k);
    uint64_t s = (uint64_t)(((unsigned __int128)u * range) >> 64);
    const uint16_t *p = t->tok + s;
    for (int i = 0; i < T; i++) {
        inp[i] = p[i];
        tgt[i] = p[i + 1];
    }
}

int64_t sp_data_num_windows(const sp_tokens *t, int T) {
    if (T < 1 || t->n < 2) return 0;
    return (int64_t)((t->n - 1) / (uint64_t)T);
}

/* A subset for curves during training must be cheap and fixed, but the first N windows of a
 * corpus of concatenated documents are one or two documents: a curve on them follows those
 * documents' style, not the validation set's. Systematic sampling with one window in the middle
 * of each of n equal strata spreads the subset over every document in proportion to its length,
 * stays deterministic, and is the identity for the whole file. The middles are at least one
 * window apart when n <= avail, so no window is taken twice. */
uint64_t sp_data_eval_pick(int64_t avail, int64_t n, int64_t j) {
    return (uint64_t)(((2 * (unsigned __int128)j + 1) * (unsigned __int128)avail) /
                      (2 * (unsigned __int128)n));
}

void sp_data_eval_window(const sp_tokens *t, uint64_t i, int T, int32_t *inp, int32_t *tgt) {
    const uint16_t *p = t->tok + i * (uint64_t)T;
    for (int j = 0; j < T; j++) {
        inp[j] = p[j];
        tgt[j] = p[j + 1];
    }
}
