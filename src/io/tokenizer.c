/* The tokenizer table (include/sprout/tokenizer.h), the byte tokenizer, and what every row
 * shares: reading and writing vocabulary files, growable id arrays. */
#include "sprout/tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* GPT-2 byte-level BPE, src/io/bpe.c */
int sp_bpe_open(sp_tok *t, const sp_buf *files, const char *const *names, sp_err *err);
int sp_bpe_encode(sp_tok *t, const char *text, size_t n, sp_tok_ids *out, sp_err *err);
const char *sp_bpe_decode(const sp_tok *t, int id, size_t *len);
void sp_bpe_free(sp_tok *t);

/* ---- bytes: token = byte ---- */

/* impl: the 256 bytes in order, so that token b decodes to a pointer at byte b */
static int bytes_open(sp_tok *t, const sp_buf *files, const char *const *names, sp_err *err) {
    (void)files, (void)names;
    char *all = malloc(256);
    if (!all) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    for (int b = 0; b < 256; b++) all[b] = (char)b;
    t->impl = all;
    return SP_OK;
}

static int bytes_encode(sp_tok *t, const char *text, size_t n, sp_tok_ids *out, sp_err *err) {
    for (size_t i = 0; i < n; i++)
        if (sp_tok_ids_push(out, (unsigned char)text[i], err)) return err->code;
    return SP_OK;
}

static const char *bytes_decode(const sp_tok *t, int id, size_t *len) {
    if (id < 0 || id > 255) return *len = 0, NULL;
    *len = 1;
    return (const char *)t->impl + id;
}

static void bytes_free(sp_tok *t) {
    free(t->impl);
    t->impl = NULL;
}

static const sp_tok_kind k_kinds[] = {
    {0, "bytes", 256, -1, 0, {NULL, NULL}, bytes_open, bytes_encode, bytes_decode, bytes_free},
    {SP_TOKENIZER_GPT2,
     "gpt2",
     SP_GPT2_VOCAB,
     SP_GPT2_EOT,
     2,
     {"encoder.json", "vocab.bpe"},
     sp_bpe_open,
     sp_bpe_encode,
     sp_bpe_decode,
     sp_bpe_free},
};
#define NKINDS (sizeof k_kinds / sizeof k_kinds[0])

const sp_tok_kind *sp_tok_find(const char *name) {
    for (size_t i = 0; i < NKINDS; i++)
        if (!strcmp(k_kinds[i].name, name)) return &k_kinds[i];
    return NULL;
}

const sp_tok_kind *sp_tok_by_id(uint32_t id) {
    for (size_t i = 0; i < NKINDS; i++)
        if (k_kinds[i].id == id) return &k_kinds[i];
    return NULL;
}

const char *sp_tok_names(void) {
    static char names[64];
    if (!names[0])
        for (size_t i = 0; i < NKINDS; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? "|" : "",
                     k_kinds[i].name);
    return names;
}

const char *sp_tok_default_dir(void) {
    const char *e = getenv(SP_VOCAB_ENV);
    return e && *e ? e : SP_VOCAB_DEFAULT_DIR;
}

/* ---- vocabulary files ---- */

static int read_whole(const char *path, sp_buf *b, sp_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return sp_err_set(err, SP_EINPUT, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: not a regular file", path);
    }
    char *p = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    int rc = p ? SP_OK : sp_err_set(err, SP_ERUNTIME, "%s: out of memory", path);
    while (rc == SP_OK && got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = sp_err_set(err, SP_EINPUT, "%s: read failed: %s", path, strerror(errno));
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (rc) {
        free(p);
        return rc;
    }
    p[got] = '\0'; /* a terminator past the data, for parsers that like one */
    *b = (sp_buf){p, got};
    return SP_OK;
}

int sp_tok_files_read(sp_tok_files *f, const sp_tok_kind *kind, const char *dir, sp_err *err) {
    memset(f, 0, sizeof *f);
    f->kind = kind;
    for (int i = 0; i < kind->nfiles; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, kind->files[i]);
        if (read_whole(path, &f->file[i], err)) {
            sp_tok_files_free(f);
            return sp_err_wrap(err, "tokenizer %s needs %s and %s", kind->name, kind->files[0],
                               kind->files[1]);
        }
    }
    return SP_OK;
}

static const char *tok_label(uint32_t id, char *buf, size_t n) {
    const sp_tok_kind *k = sp_tok_by_id(id);
    snprintf(buf, n, "%s (tokenizer id %u)", k ? k->name : "unknown", id);
    return buf;
}

int sp_tok_files_for_data(sp_tok_files *f, const char *name1, const char *path1, uint32_t id1,
                          const char *name2, const char *path2, uint32_t id2, sp_err *err) {
    memset(f, 0, sizeof *f);
    char a[64], b[64];
    if (id1 != id2)
        return sp_err_set(err, SP_EINPUT, "%s: %s holds %s tokens but %s: %s holds %s tokens",
                          name1, path1, tok_label(id1, a, sizeof a), name2, path2,
                          tok_label(id2, b, sizeof b));
    const sp_tok_kind *k = sp_tok_by_id(id1);
    if (!k)
        return sp_err_set(err, SP_EINPUT, "%s: %s: tokenizer id %u is none of %s", name1, path1,
                          id1, sp_tok_names());
    char dir[4096];
    const char *slash = strrchr(path1, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path1) : 1, slash ? path1 : ".");
    sp_err first = {0};
    if (sp_tok_files_read(f, k, dir, &first) && sp_tok_files_read(f, k, sp_tok_default_dir(), err))
        return sp_err_set(err, SP_EINPUT,
                          "%s: %s holds %s tokens, and its vocabulary is neither beside it nor in "
                          "%s ($%s): %s",
                          name1, path1, k->name, sp_tok_default_dir(), SP_VOCAB_ENV, first.msg);
    sp_tok t;
    if (sp_tok_open(&t, f, err)) {
        sp_tok_files_free(f);
        return sp_err_wrap(err, "%s: %s", name1, path1);
    }
    sp_tok_close(&t);
    return SP_OK;
}

int sp_tok_files_equal(const sp_tok_files *a, const sp_tok_files *b) {
    if (a->kind != b->kind) return 0;
    for (int i = 0; i < a->kind->nfiles; i++)
        if (a->file[i].n != b->file[i].n || memcmp(a->file[i].p, b->file[i].p, a->file[i].n))
            return 0;
    return 1;
}

int sp_tok_files_write(const sp_tok_files *f, const char *dir, sp_err *err) {
    for (int i = 0; i < f->kind->nfiles; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, f->kind->files[i]);
        if (sp_write_atomic(path, &f->file[i], 1, err)) return err->code;
    }
    return SP_OK;
}

void sp_tok_files_free(sp_tok_files *f) {
    for (int i = 0; i < SP_TOK_MAX_FILES; i++) free((void *)f->file[i].p);
    memset(f->file, 0, sizeof f->file);
}

/* ---- open tokenizers ---- */

int sp_tok_open(sp_tok *t, const sp_tok_files *f, sp_err *err) {
    memset(t, 0, sizeof *t);
    t->kind = f->kind;
    const char *names[SP_TOK_MAX_FILES];
    for (int i = 0; i < SP_TOK_MAX_FILES; i++)
        names[i] = f->name[i] ? f->name[i] : f->kind->files[i];
    if (f->kind->open(t, f->file, names, err)) return err->code;
    /* the vocabulary must be the row's: a token file says only the id */
    size_t len;
    if (!sp_tok_piece(t, (int)f->kind->vocab - 1, &len) ||
        sp_tok_piece(t, (int)f->kind->vocab, &len)) {
        sp_tok_close(t);
        return sp_err_set(err, SP_EINPUT,
                          "tokenizer %s: the vocabulary files do not hold %u tokens", f->kind->name,
                          f->kind->vocab);
    }
    return SP_OK;
}

void sp_tok_close(sp_tok *t) {
    if (t->kind) t->kind->free(t);
    memset(t, 0, sizeof *t);
}

int sp_tok_encode(sp_tok *t, const char *text, size_t n, sp_tok_ids *out, sp_err *err) {
    return t->kind->encode(t, text, n, out, err);
}

const char *sp_tok_piece(const sp_tok *t, int id, size_t *len) {
    *len = 0;
    return t->kind->decode(t, id, len);
}

int sp_tok_ids_push(sp_tok_ids *out, uint16_t id, sp_err *err) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 4096;
        uint16_t *v = realloc(out->v, cap * sizeof *v);
        if (!v)
            return sp_err_set(err, SP_ERUNTIME, "out of memory (%.1f MiB of token ids)",
                              (double)cap * 2 / 1048576.0);
        out->v = v, out->cap = cap;
    }
    out->v[out->n++] = id;
    return SP_OK;
}

void sp_tok_ids_free(sp_tok_ids *ids) {
    free(ids->v);
    memset(ids, 0, sizeof *ids);
}
