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

/* Tokens are used straight from the mapping, which holds little-endian uint16. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sprout token files are little-endian and are mapped directly: big-endian hosts unsupported"
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

int sp_data_open(sp_tokens *t, const char *path, sp_err *err) {
    memset(t, 0, sizeof *t);
    if (strlen(path) >= sizeof t->path)
        return sp_err_set(err, SP_EINPUT, "%.200s...: path too long", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sp_err_set(err, SP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < SP_TOK_HEADER) {
        close(fd);
        return sp_err_set(err, SP_EINPUT,
                          "%s: too short for a token file (%zu bytes, the header alone is %d)",
                          path, len, SP_TOK_HEADER);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED)
        return sp_err_set(err, SP_EINPUT, "%s: cannot map: %s", path, strerror(e));

    uint32_t vocab = 0, tokenizer = 0;
    uint64_t count = 0;
    int rc = check_header(map, len, path, &vocab, &count, &tokenizer, err);
    if (rc != SP_OK) {
        munmap(map, len);
        return rc;
    }
    const uint16_t *tok = (const uint16_t *)((const unsigned char *)map + SP_TOK_HEADER);
    /* one branch-free max pass (vectorises); locate the culprit only on failure */
    uint16_t mx = 0;
    for (uint64_t i = 0; i < count; i++) mx = tok[i] > mx ? tok[i] : mx;
    if ((uint32_t)mx >= vocab) {
        uint64_t i = 0;
        while ((uint32_t)tok[i] < vocab) i++;
        sp_err_set(err, SP_EINPUT, "%s: token %u at position %llu is >= vocab %u", path,
                   (unsigned)tok[i], (unsigned long long)i, vocab);
        munmap(map, len);
        return SP_EINPUT;
    }
    /* training reads windows at random: tell the kernel not to read ahead sequentially */
    madvise(map, len, MADV_RANDOM);
    t->tok = tok;
    t->n = count;
    t->vocab = vocab;
    t->tokenizer = tokenizer;
    t->map = map;
    t->map_len = len;
    snprintf(t->path, sizeof t->path, "%s", path);
    return SP_OK;
}

void sp_data_close(sp_tokens *t) {
    if (t->map) munmap(t->map, t->map_len);
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
                          "%s: %llu tokens are too few for context %d (need at least %lld)",
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

void sp_data_eval_window(const sp_tokens *t, uint64_t i, int T, int32_t *inp, int32_t *tgt) {
    const uint16_t *p = t->tok + i * (uint64_t)T;
    for (int j = 0; j < T; j++) {
        inp[j] = p[j];
        tgt[j] = p[j + 1];
    }
}
