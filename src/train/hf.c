/* Hugging Face interchange (docs/interop.md): `sprout export --format hf` and `sprout import`.
 * A sprout checkpoint's /model is already its kind's HF state dict by name and layout
 * (GPT2LMHeadModel, LlamaForCausalLM, BertForMaskedLM: src/model/kind_*.c), so both directions
 * copy tensors one to one; what this file adds is the safetensors container, config.json
 * (through the kind's row, hf_kind.h) and the tokenizer files. */
#define _GNU_SOURCE /* renameat2 */
#include "sprout/hf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sprout/ckpt.h"
#include "sprout/data.h"
#include "sprout/growth.h"
#include "sprout/json.h"
#include "sprout/kernels.h"
#include "sprout/model.h"
#include "sprout/tokenizer.h"
#include "sprout/train.h"
#include "hf_kind.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data are little-endian and are written from memory as they are"
#endif

/* safetensors' own reader refuses headers above 100 MB; so does sprout */
#define ST_MAX_HEADER 100000000ull
#define ST_MAX_DIMS   8
#define CONFIG_MAX    (1 << 20)
#define TOK_FILE_MAX  (64 << 20) /* GPT-2's vocab.json is 1 MB, merges.txt 0.5 MB */

/* ---- the model as a list of named tensors ---- */

typedef struct hf_tensor {
    char name[96]; /* "transformer.h.3.attn.c_attn.weight" */
    int ndim;
    int64_t dims[2];
    size_t numel;
    float *data; /* inside the model's params arena */
} hf_tensor;

/* every tensor of a full single-stage model, in sprout's slab order; malloc'd */
static hf_tensor *model_tensors(const sp_model *m, int *n_out) {
    int n = m->ngt + m->spec.n_layer * m->nbt, k = 0;
    hf_tensor *t = calloc((size_t)n, sizeof *t);
    if (!t) return NULL;
    for (int b = -1; b < m->spec.n_layer; b++) {
        int nt = b < 0 ? m->ngt : m->nbt;
        const sp_tensor_info *ti = b < 0 ? m->gt : m->bt;
        float *slab = b < 0 ? sp_model_globals(m, m->params) : sp_model_block(m, m->params, b);
        for (int j = 0; j < nt; j++, k++) {
            sp_spec_hf_name(t[k].name, sizeof t[k].name, &m->spec, b, &ti[j]);
            t[k].ndim = ti[j].ndim;
            t[k].dims[0] = ti[j].dims[0], t[k].dims[1] = ti[j].dims[1];
            t[k].numel = ti[j].numel;
            t[k].data = slab + ti[j].offset;
        }
    }
    *n_out = n;
    return t;
}

/* ---- tokenizers: what `export` writes for each tokenizer id ---- */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100 onward in byte order, so that every byte is a visible character of the vocabulary */
static int printable(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

static unsigned byte_char(unsigned b) {
    if (printable(b)) return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++) n += !printable(x);
    return 256 + n;
}

static int write_text(const char *dir, const char *name, const char *text, sp_err *err) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    const sp_buf b = {text, strlen(text)};
    return sp_write_atomic(p, &b, 1, err);
}

/* tokenizer_config.json of a GPT2Tokenizer; special: its bos/eos/unk token as JSON (null or a
 * string) */
static int write_tokenizer_config(const char *dir, const sp_spec *s, const char *special,
                                  sp_err *err) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\n  \"tokenizer_class\": \"GPT2Tokenizer\",\n  \"model_max_length\": %d,\n"
             "  \"add_prefix_space\": false,\n  \"add_bos_token\": false,\n"
             "  \"clean_up_tokenization_spaces\": false,\n  \"errors\": \"replace\",\n"
             "  \"bos_token\": %s,\n  \"eos_token\": %s,\n  \"unk_token\": %s,\n"
             "  \"pad_token\": null\n}\n",
             s->seq_len, special, special, special);
    return write_text(dir, "tokenizer_config.json", cfg, err);
}

typedef struct hf_tokenizer hf_tokenizer;

/* The byte tokenizer (id 0) as a byte-level BPE with no merges: vocab.json maps
 * bytes_to_unicode(b) to b, so GPT2Tokenizer splits any text into its UTF-8 bytes, token = byte,
 * exactly as sprout's data files do. No special tokens: every id is a byte. */
static int write_bytes_vocab(const char *dir, const hf_tokenizer *row, const sp_tok_files *tf,
                             sp_err *err) {
    (void)row, (void)tf;
    char vocab[256 * 16 + 8];
    size_t n = 0;
    vocab[n++] = '{';
    for (unsigned b = 0; b < 256; b++) {
        unsigned c = byte_char(b);
        char u[4];
        size_t k;
        if (c < 0x80)
            u[0] = (char)c, k = 1;
        else
            u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3f)), k = 2;
        n += (size_t)snprintf(vocab + n, sizeof vocab - n, "%s\"%s%.*s\": %u", b ? ", " : "",
                              c == '"' || c == '\\' ? "\\" : "", (int)k, u, b);
    }
    snprintf(vocab + n, sizeof vocab - n, "}\n");
    if (write_text(dir, "vocab.json", vocab, err) ||
        write_text(dir, "merges.txt", "#version: 0.2\n", err))
        return err->code;
    return SP_OK;
}

/* A tokenizer whose files HF reads as they are: GPT-2's BPE, whose GPT2Tokenizer takes the very
 * files of openai/gpt-2, encoder.json as vocab.json and vocab.bpe as merges.txt. The
 * checkpoint's copies are written byte for byte. */
static int write_stored_vocab(const char *dir, const hf_tokenizer *row, const sp_tok_files *tf,
                              sp_err *err);

struct hf_tokenizer {
    uint32_t id;
    const char *bos_eos; /* config.json's bos_token_id / eos_token_id */
    const char *special; /* tokenizer_config.json's bos/eos/unk token */
    /* writes vocab.json and merges.txt from the checkpoint's tokenizer files */
    int (*write)(const char *dir, const hf_tokenizer *row, const sp_tok_files *tf, sp_err *err);
    /* HF's names of the tokenizer's vocabulary files (sp_tok_kind.files, in that order), for a
     * tokenizer whose files are HF's: what import reads them from */
    const char *hf_files[SP_TOK_MAX_FILES];
};

static const hf_tokenizer k_tokenizers[] = {
    {SP_TOKENIZER_BYTES, "null", "null", write_bytes_vocab, {NULL}},
    /* <|endoftext|> is bos, eos and unk, as in the Hub's gpt2 */
    {SP_TOKENIZER_GPT2,
     "50256",
     "\"<|endoftext|>\"",
     write_stored_vocab,
     {"vocab.json", "merges.txt"}},
};

static int write_stored_vocab(const char *dir, const hf_tokenizer *row, const sp_tok_files *tf,
                              sp_err *err) {
    char p[4400];
    for (int i = 0; i < tf->kind->nfiles; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, row->hf_files[i]);
        if (sp_write_atomic(p, &tf->file[i], 1, err)) return err->code;
    }
    return SP_OK;
}

/* The row of the tokenizer the checkpoint records (sp_ckpt_read_tokenizer: by id; a file from
 * before /tokenizer is a byte model); NULL when there is none, or when the model's vocabulary
 * is not the tokenizer's and the kind's special ids (HF would take token ids the model does not
 * have, or the reverse). */
static const hf_tokenizer *ckpt_tokenizer(const sp_hf_kind *hk, const sp_spec *s,
                                          const sp_tok_files *tf) {
    for (size_t i = 0; i < sizeof k_tokenizers / sizeof k_tokenizers[0]; i++)
        if (k_tokenizers[i].id == tf->kind->id && (int)tf->kind->vocab + hk->n_special == s->vocab)
            return &k_tokenizers[i];
    return NULL;
}

/* ---- export ---- */

/* config.json: the fields every kind has around its own (hk->write_config) */
static int write_config_json(const char *dir, const sp_hf_kind *hk, const sp_spec *s, int bf16,
                             const char *bos_eos, sp_err *err) {
    char body[2048], cfg[2560];
    hk->write_config(body, sizeof body, s);
    snprintf(cfg, sizeof cfg,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n"
             "  \"vocab_size\": %d,\n%s  \"bos_token_id\": %s,\n  \"eos_token_id\": %s,\n"
             "  \"torch_dtype\": \"%s\"\n}\n",
             hk->arch, hk->model_type, s->vocab, body, bos_eos, bos_eos,
             bf16 ? "bfloat16" : "float32");
    return write_text(dir, "config.json", cfg, err);
}

/* model.safetensors: the 8-byte header length, the JSON header padded with spaces to a multiple
 * of 8 (safetensors' alignment), then every tensor's little-endian bytes in table order */
static int write_safetensors(const char *dir, const hf_tensor *t, int n, int bf16,
                             const sp_train_state *st, sp_err *err) {
    size_t cap = 256 + (size_t)n * 256, len = 0; /* an entry is under 200 bytes */
    size_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].numel;
    char *head = malloc(cap + 8);
    sp_buf *bufs = calloc((size_t)n + 2, sizeof *bufs);
    uint16_t *half = bf16 ? malloc(total * sizeof *half) : NULL;
    int rc = SP_OK;
    if (!head || !bufs || (bf16 && !half)) {
        rc = sp_err_set(err, SP_ERUNTIME, "out of memory for the safetensors header");
        goto out;
    }
    len += (size_t)snprintf(head + len, cap - len,
                            "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"sprout\","
                            "\"sprout_step\":\"%lld\"}",
                            (long long)st->step);
    size_t off = 0, esz = bf16 ? 2 : 4;
    for (int i = 0; i < n; i++) {
        char shape[48];
        if (t[i].ndim == 2)
            snprintf(shape, sizeof shape, "%lld,%lld", (long long)t[i].dims[0],
                     (long long)t[i].dims[1]);
        else
            snprintf(shape, sizeof shape, "%lld", (long long)t[i].dims[0]);
        size_t bytes = t[i].numel * esz;
        len +=
            (size_t)snprintf(head + len, cap - len,
                             ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                             t[i].name, bf16 ? "BF16" : "F32", shape, off, off + bytes);
        if (bf16) {
            /* sprout's converter: round to nearest even, as torch's .to(torch.bfloat16) */
            sp_to_bf16(half + off / 2, t[i].data, t[i].numel);
            bufs[2 + i] = (sp_buf){half + off / 2, bytes};
        } else
            bufs[2 + i] = (sp_buf){t[i].data, bytes};
        off += bytes;
    }
    len += (size_t)snprintf(head + len, cap - len, "}");
    while (len % 8) head[len++] = ' ';
    unsigned char n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (unsigned char)((uint64_t)len >> (8 * i));
    bufs[0] = (sp_buf){n8, 8};
    bufs[1] = (sp_buf){head, len};
    char p[4400];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    rc = sp_write_atomic(p, bufs, n + 2, err);
out:
    free(head), free(bufs), free(half);
    return rc;
}

/* A checkpoint whose growth ramp is still running is not a plain HF model: new blocks' branches are
 * scaled (random) or new channels masked (widen_zero, widen_random) at its step. */
static int check_plain(const char *ckpt, const sp_spec *s, const sp_train_state *st, sp_err *err) {
    char *yaml = NULL;
    sp_config cfg;
    sp_grow_sched gs;
    memset(&cfg, 0, sizeof cfg);
    memset(&gs, 0, sizeof gs);
    sp_log quiet = {.rank = 1};
    int rc = sp_ckpt_read_config(ckpt, &yaml, err);
    if (!rc) rc = sp_cfg_load_text(&cfg, yaml, strlen(yaml), ckpt, err);
    if (!rc) rc = sp_train_grow_schedule(&cfg, &gs, &quiet, err);
    if (rc) {
        rc = sp_err_wrap(err, "%s: /config", ckpt);
        goto out;
    }
    if (gs.ramps && st->growth_index > 0 && st->growth_index <= gs.n) {
        int k = (int)st->growth_index;
        float *c = calloc((size_t)s->n_layer + 1, sizeof *c);
        sp_plan mask = {0};
        if (!c) {
            rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
            goto out;
        }
        sp_grow_block_scales(&gs, k, st->step, c);
        for (int b = 0; b < s->n_layer && !rc; b++)
            if (c[b] != 1.0f)
                rc = sp_err_set(err, SP_EINPUT,
                                "%s: block %d has branch scale %g at step %lld (the %s ramp of "
                                "growth event %d is running); a Hugging Face model has no branch "
                                "scales: export a checkpoint from after the ramp",
                                ckpt, b, (double)c[b], (long long)st->step, gs.ev[k - 1].op, k - 1);
        free(c);
        sp_grow_width_mask(&gs, k, st->step, &mask);
        if (!rc && mask.mask_d > 0 && mask.mask_c < 1)
            rc = sp_err_set(err, SP_EINPUT,
                            "%s: new channels are faded in at step %lld (the %s ramp of growth "
                            "event %d is running); export a checkpoint from after the ramp",
                            ckpt, (long long)st->step, gs.ev[k - 1].op, k - 1);
    }
out:
    sp_grow_sched_free(&gs);
    sp_cfg_free(&cfg);
    free(yaml);
    return rc;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb, (void)flag, (void)f;
    return remove(p) ? -1 : 0;
}

static void remove_tree(const char *dir) {
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* DIR without trailing slashes, and the directory that holds it */
static int split_dir(const char *dir, char *clean, size_t n, char *parent, size_t pn, sp_err *err) {
    if (!dir[0] || (size_t)snprintf(clean, n, "%s", dir) >= n)
        return sp_err_set(err, SP_EINPUT, "export: the output directory path is empty or too long");
    size_t l = strlen(clean);
    while (l > 1 && clean[l - 1] == '/') clean[--l] = 0;
    snprintf(parent, pn, "%s", clean);
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, pn, ".");
    else if (slash == parent)
        parent[1] = 0;
    else
        *slash = 0;
    return SP_OK;
}

/* 1 when dir exists and holds anything, 0 when empty or absent (*exists says which); -1 (err
 * set) when it is not a directory */
static int dir_state(const char *dir, int *exists, sp_err *err) {
    struct stat sb;
    *exists = 0;
    if (lstat(dir, &sb)) {
        if (errno == ENOENT) return 0;
        return sp_err_set(err, SP_EINPUT, "%s: %s", dir, strerror(errno)), -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return sp_err_set(err, SP_EINPUT, "%s: exists and is not a directory", dir), -1;
    *exists = 1;
    DIR *d = opendir(dir);
    if (!d) return sp_err_set(err, SP_EINPUT, "%s: %s", dir, strerror(errno)), -1;
    int full = 0;
    for (struct dirent *de; !full && (de = readdir(d));)
        full = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return full;
}

int sp_hf_export(const char *ckpt, const char *dir, int bf16, int force, const sp_log *log,
                 sp_err *err) {
    char clean[4096], parent[4096], tmp[4400] = "", old[4400] = "";
    sp_spec s;
    sp_train_state st;
    sp_model m;
    memset(&m, 0, sizeof m);
    sp_tok_files tf = {0};
    hf_tensor *t = NULL;
    int n = 0, rc, exists;
    if ((rc = split_dir(dir, clean, sizeof clean, parent, sizeof parent, err))) return rc;
    if ((rc = sp_ckpt_read_header(ckpt, &s, &st, err))) return rc;
    const sp_hf_kind *hk = sp_hf_kind_of(&s);
    if (!hk)
        return sp_err_set(err, SP_EINPUT,
                          "%s: model.block is %s, which has no Hugging Face layout in sprout "
                          "(export --format hf writes %s)",
                          ckpt, sp_kind_of(&s)->name, sp_hf_kind_types());
    if ((rc = check_plain(ckpt, &s, &st, err))) return rc;
    if ((rc = sp_ckpt_read_tokenizer(ckpt, &tf, err))) return rc;
    int full = dir_state(clean, &exists, err);
    if (full < 0) {
        rc = err->code;
        goto out;
    }
    if (full && !force) {
        rc = sp_err_set(err, SP_EINPUT,
                        "%s: exists and is not empty (use --force to replace it, or another "
                        "directory)",
                        clean);
        goto out;
    }
    /* the model first: nothing is created for a checkpoint that does not load */
    if ((rc = sp_model_create_weights(&m, &s, 0, s.n_layer, 1, 1, err))) goto out;
    if ((rc = sp_ckpt_load(ckpt, &m, 0, err))) goto out;
    if (!(t = model_tensors(&m, &n))) {
        rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
        goto out;
    }
    const char *base = strrchr(clean, '/') ? strrchr(clean, '/') + 1 : clean;
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", parent, base);
    if (!mkdtemp(tmp)) {
        int e = errno;
        rc = sp_err_set(err, e == ENOENT || e == EACCES || e == ENOTDIR ? SP_EINPUT : SP_ERUNTIME,
                        "%s: cannot create a directory beside it: %s", clean, strerror(e));
        tmp[0] = 0;
        goto out;
    }
    /* mkdtemp makes it 0700: give it the mode a plain mkdir would */
    mode_t um = umask(0);
    umask(um);
    (void)chmod(tmp, 0777 & ~um);
    const hf_tokenizer *tok = ckpt_tokenizer(hk, &s, &tf);
    if (!tok)
        sp_warn(log,
                "%s: the model's vocab %d is not the %u of its tokenizer %s%s: no tokenizer "
                "files written",
                ckpt, s.vocab, tf.kind->vocab, tf.kind->name,
                hk->n_special ? " and the kind's special ids" : "");
    if ((rc = write_config_json(tmp, hk, &s, bf16, tok ? tok->bos_eos : "null", err)) ||
        (rc = write_safetensors(tmp, t, n, bf16, &st, err)) ||
        (tok && ((rc = tok->write(tmp, tok, &tf, err)) ||
                 (rc = write_tokenizer_config(tmp, &s, tok->special, err)))))
        goto out;
    if (exists) {
        /* swap the finished directory with the old one in one step, then delete the old */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, clean, RENAME_EXCHANGE) == 0) {
            snprintf(old, sizeof old, "%s", tmp);
            tmp[0] = 0;
        } else {
            rc = sp_err_set(err, SP_ERUNTIME, "%s: cannot replace it with %s: %s", clean, tmp,
                            strerror(errno));
            goto out;
        }
    } else if (rename(tmp, clean) == 0)
        tmp[0] = 0;
    else {
        rc = sp_err_set(err, SP_ERUNTIME, "%s: cannot rename %s to it: %s", clean, tmp,
                        strerror(errno));
        goto out;
    }
    (void)sp_fsync_dir_of(clean);
    if (old[0]) remove_tree(old);
out:
    if (tmp[0]) remove_tree(tmp);
    free(t);
    sp_model_free(&m);
    sp_tok_files_free(&tf);
    return rc;
}

/* ---- import ---- */

/* a whole small file (at most max bytes), NUL-terminated */
static int read_small(const char *path, size_t max, char **out, size_t *len, sp_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return sp_err_set(err, SP_EINPUT, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return sp_err_set(err, SP_EINPUT, "%s: %lld bytes is more than the %zu sprout reads in it",
                          path, (long long)sb.st_size, max);
    }
    char *b = malloc((size_t)sb.st_size + 1);
    ssize_t r = b ? pread(fd, b, (size_t)sb.st_size, 0) : -1;
    close(fd);
    if (r != sb.st_size) {
        free(b);
        return sp_err_set(err, SP_EINPUT, "%s: read failed", path);
    }
    b[r] = 0;
    *out = b;
    *len = (size_t)r;
    return SP_OK;
}

/* config.json into s, by the row of its model_type (absent: the first row, gpt2, as transformers
 * saved before model_type) */
static int read_config_json(const char *dir, sp_spec *s, const sp_hf_kind **row, sp_err *err) {
    char path[4400], *text = NULL;
    size_t len = 0;
    memset(s, 0, sizeof *s); /* none of the other kinds' settings */
    snprintf(path, sizeof path, "%s/config.json", dir);
    sp_json_value *j = NULL;
    int rc = read_small(path, CONFIG_MAX, &text, &len, err);
    if (!rc && (rc = sp_json_parse(text, len, &j, err))) sp_err_wrap(err, "%s", path);
    free(text);
    if (rc) return rc;
    if (j->type != SP_JSON_OBJECT) {
        rc = sp_err_set(err, SP_EINPUT, "%s: not a JSON object", path);
        goto out;
    }
    const sp_json_value *mt = sp_json_get(j, "model_type");
    const sp_hf_kind *hk = sp_hf_kinds[0];
    if (mt && mt->type != SP_JSON_NULL) {
        char q[200];
        if (mt->type != SP_JSON_STRING || !(hk = sp_hf_kind_by_type(mt->str))) {
            int str = mt->type == SP_JSON_STRING;
            rc = sp_err_set(err, SP_EINPUT, "%s: model_type: %s%s%s is not one sprout reads (%s)",
                            path, str ? "'" : "",
                            str ? sp_cfg_quote(mt->str, q, sizeof q) : sp_json_type_name(mt->type),
                            str ? "'" : "", sp_hf_kind_types());
            goto out;
        }
    }
    *row = hk;
    s->kind = sp_kind_find(hk->kind);
    for (int i = 0; i < hk->nrules; i++) {
        const sp_hf_rule *r = &hk->rules[i];
        const sp_json_value *v = sp_json_get(j, r->key);
        if (!v || v->type == SP_JSON_NULL) continue;
        int ok = r->type == SP_JSON_NULL ? 0
                 : r->type == SP_JSON_STRING
                     ? v->type == SP_JSON_STRING &&
                           (!strcmp(v->str, r->str1) || (r->str2 && !strcmp(v->str, r->str2)))
                     : (v->type == SP_JSON_TRUE || v->type == SP_JSON_FALSE) &&
                           (v->type == SP_JSON_TRUE) != r->bad_bool;
        if (!ok) {
            rc = sp_err_set(err, SP_EINPUT, "%s: %s: %s%s%s (%s)", path, r->key,
                            v->type == SP_JSON_STRING ? "\"" : "",
                            v->type == SP_JSON_STRING ? v->str : sp_json_type_name(v->type),
                            v->type == SP_JSON_STRING ? "\" is not supported" : " is not supported",
                            r->why);
            goto out;
        }
    }
    int *dst[6] = {&s->vocab, &s->seq_len, &s->d_model, &s->n_head, &s->d_ff, &s->n_layer};
    for (int i = 0; i < 6; i++)
        if ((rc = sp_hf_cfg_int(path, j, hk->field[i],
                                dst[i] == &s->d_ff && hk->ff_optional ? 0 : -1, dst[i], err)))
            goto out;
    if (!s->d_ff) s->d_ff = sp_kind_of(s)->default_d_ff(s->d_model);
    if ((rc = hk->read_config(path, j, s, err))) goto out;
    if ((rc = sp_spec_check(s, err))) sp_err_wrap(err, "%s", path);
out:
    sp_json_free(j);
    return rc;
}

/* ---- safetensors ---- */

static float half_to_f32(uint16_t h);

static float get_f32(const void *p, size_t k) {
    return ((const float *)p)[k];
}
static float get_bf16(const void *p, size_t k) {
    return sp_bf16_to_f32(((const uint16_t *)p)[k]);
}
static float get_f16(const void *p, size_t k) {
    return half_to_f32(((const uint16_t *)p)[k]);
}

/* the dtypes sprout reads, each with its exact conversion to fp32 */
typedef struct st_dtype {
    const char *name;
    int bytes;
    float (*get)(const void *p, size_t k);
} st_dtype;

static const st_dtype k_dtypes[] = {
    {"F32", 4, get_f32}, {"BF16", 2, get_bf16}, {"F16", 2, get_f16}};

typedef struct st_entry {
    const char *name; /* points into the parsed header */
    const st_dtype *dt;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;
    int want; /* index into the expected tensors; -1 ignored (a legacy attention buffer) */
} st_entry;

static float half_to_f32(uint16_t h) {
    uint32_t sgn = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0x1f)
        u = sgn | 0x7f800000u | m << 13;
    else if (e)
        u = sgn | (e + 112) << 23 | m << 13;
    else if (!m)
        u = sgn;
    else { /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400)) m <<= 1, e--;
        u = sgn | e << 23 | (m & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static const char *shape_str(const int64_t *d, int nd, char *buf, size_t n) {
    size_t l = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && l < n; i++)
        l += (size_t)snprintf(buf + l, n - l, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (l < n) snprintf(buf + l, n - l, "]");
    return buf;
}

/* a name less the kind's prefix, which transformers writes from the causal-LM model
 * (GPT2LMHeadModel, LlamaForCausalLM) and leaves off from the bare one (GPT2Model, LlamaModel) */
static const char *bare_name(const sp_hf_kind *hk, const char *name) {
    size_t n = strlen(hk->prefix);
    return !strncmp(name, hk->prefix, n) ? name + n : name;
}

/* the name a header entry stands for among the expected ones, with or without the prefix */
static int match_name(const sp_hf_kind *hk, const char *name, const hf_tensor *t, int n) {
    const char *bare = bare_name(hk, name);
    for (int i = 0; i < n; i++)
        if (!strcmp(bare_name(hk, t[i].name), bare)) return i;
    return -1;
}

/* the per-block buffers older transformers saved (GPT-2's causal masks h.N.attn.bias, LLaMA's
 * rotary inv_freq): not parameters, rebuilt by every loader */
static int legacy_buffer(const sp_hf_kind *hk, const char *name) {
    const char *p = bare_name(hk, name);
    for (const char *const *b = hk->global_buffers; b && *b; b++)
        if (!strcmp(p, *b)) return 1;
    size_t n = strlen(hk->block);
    if (strncmp(p, hk->block, n)) return 0;
    p += n;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    for (const char *const *b = hk->buffers; b && *b; b++)
        if (!strcmp(p, *b)) return 1;
    return 0;
}

static int by_begin(const void *a, const void *b) {
    const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* one header entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]} */
static int parse_entry(const char *path, const sp_json_value *v, uint64_t data_len, st_entry *e,
                       sp_err *err) {
    e->name = v->key;
    if (v->type != SP_JSON_OBJECT)
        return sp_err_set(err, SP_EINPUT, "%s: tensor %s: the header entry is %s, not an object",
                          path, e->name, sp_json_type_name(v->type));
    const sp_json_value *dt = sp_json_get(v, "dtype"), *sh = sp_json_get(v, "shape"),
                        *of = sp_json_get(v, "data_offsets");
    if (!dt || dt->type != SP_JSON_STRING)
        return sp_err_set(err, SP_EINPUT, "%s: tensor %s: no dtype string", path, e->name);
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (!strcmp(dt->str, k_dtypes[i].name)) e->dt = &k_dtypes[i];
    if (!e->dt) {
        char q[200];
        return sp_err_set(err, SP_EINPUT,
                          "%s: tensor %s: dtype '%s' is not one sprout reads (F32, BF16, F16)",
                          path, e->name, sp_cfg_quote(dt->str, q, sizeof q));
    }
    if (!sh || sh->type != SP_JSON_ARRAY || sh->n > ST_MAX_DIMS)
        return sp_err_set(err, SP_EINPUT,
                          "%s: tensor %s: shape is not an array of at most %d sizes", path, e->name,
                          ST_MAX_DIMS);
    e->ndim = (int)sh->n;
    uint64_t numel = 1;
    for (size_t i = 0; i < sh->n; i++) {
        const sp_json_value *d = &sh->kids[i];
        if (d->type != SP_JSON_NUMBER || !d->is_int || d->i64 < 0 || d->i64 > (1ll << 40))
            return sp_err_set(err, SP_EINPUT, "%s: tensor %s: shape[%zu] is not a size", path,
                              e->name, i);
        e->shape[i] = d->i64;
        if (__builtin_mul_overflow(numel, (uint64_t)d->i64, &numel) || numel > (1ull << 40))
            return sp_err_set(err, SP_EINPUT, "%s: tensor %s: the shape is too large", path,
                              e->name);
    }
    if (!of || of->type != SP_JSON_ARRAY || of->n != 2 || of->kids[0].type != SP_JSON_NUMBER ||
        !of->kids[0].is_int || of->kids[1].type != SP_JSON_NUMBER || !of->kids[1].is_int ||
        of->kids[0].i64 < 0 || of->kids[1].i64 < of->kids[0].i64)
        return sp_err_set(err, SP_EINPUT,
                          "%s: tensor %s: data_offsets is not [begin, end] with 0 <= begin <= end",
                          path, e->name);
    e->begin = (uint64_t)of->kids[0].i64, e->end = (uint64_t)of->kids[1].i64;
    if (e->end > data_len)
        return sp_err_set(err, SP_EINPUT,
                          "%s: tensor %s: data_offsets [%llu, %llu] run past the %llu data bytes "
                          "of the file",
                          path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                          (unsigned long long)data_len);
    if (e->end - e->begin != numel * (uint64_t)e->dt->bytes)
        return sp_err_set(err, SP_EINPUT,
                          "%s: tensor %s: data_offsets span %llu bytes but %llu %s values take "
                          "%llu",
                          path, e->name, (unsigned long long)(e->end - e->begin),
                          (unsigned long long)numel, e->dt->name,
                          (unsigned long long)(numel * (uint64_t)e->dt->bytes));
    return SP_OK;
}

/* Reads path into the expected tensors t[0..n) (their data pointers), checking the header
 * against them. When the head is tied (not among t), hk->head may be present (a model saved
 * untied) and must then equal the embedding, t[0]. */
static int read_safetensors(const char *path, const sp_hf_kind *hk, hf_tensor *t, int n,
                            uint32_t *hash, sp_err *err) {
    sp_json_value *j = NULL;
    st_entry *e = NULL, **order = NULL;
    char *head = NULL;
    int *seen = NULL, rc = SP_OK, ne = 0;
    void *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return sp_err_set(err, SP_EINPUT, "%s: %s", path, strerror(errno));
    struct stat sb;
    unsigned char n8[8];
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        rc = sp_err_set(err, SP_EINPUT, "%s: not a regular file", path);
        goto out;
    }
    uint64_t size = (uint64_t)sb.st_size, hlen = 0;
    if (size < 8 || pread(fd, n8, 8, 0) != 8) {
        rc = sp_err_set(err, SP_EINPUT, "%s: truncated: %llu bytes, shorter than the header length",
                        path, (unsigned long long)size);
        goto out;
    }
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)n8[i] << (8 * i);
    if (hlen > ST_MAX_HEADER) {
        rc = sp_err_set(err, SP_EINPUT, "%s: header length %llu is absurd (at most %llu)", path,
                        (unsigned long long)hlen, ST_MAX_HEADER);
        goto out;
    }
    if (hlen > size - 8) {
        rc =
            sp_err_set(err, SP_EINPUT,
                       "%s: truncated header: its length is %llu bytes, the file has %llu after it",
                       path, (unsigned long long)hlen, (unsigned long long)(size - 8));
        goto out;
    }
    if (!(head = malloc(hlen + 1)) || pread(fd, head, hlen, 8) != (ssize_t)hlen) {
        rc = sp_err_set(err, head ? SP_EINPUT : SP_ERUNTIME, "%s: cannot read the header", path);
        goto out;
    }
    *hash = sp_crc32(0, head, hlen);
    if (sp_json_parse(head, hlen, &j, err)) {
        rc = sp_err_wrap(err, "%s: the header is not JSON", path);
        goto out;
    }
    if (j->type != SP_JSON_OBJECT) {
        rc = sp_err_set(err, SP_EINPUT, "%s: the header is %s, not an object", path,
                        sp_json_type_name(j->type));
        goto out;
    }
    uint64_t data_len = size - 8 - hlen;
    e = calloc(j->n ? j->n : 1, sizeof *e);
    order = calloc(j->n ? j->n : 1, sizeof *order);
    seen = calloc((size_t)n, sizeof *seen);
    if (!e || !order || !seen) {
        rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
        goto out;
    }
    /* second names of expected tensors, read last and compared with them: the tied head (of
     * the embedding, t[0]) and the kind's alias */
    int copy[2] = {-1, -1};
    for (size_t i = 0; i < j->n; i++) {
        const sp_json_value *v = &j->kids[i];
        if (!strcmp(v->key, "__metadata__")) {
            if (v->type != SP_JSON_OBJECT) {
                rc = sp_err_set(err, SP_EINPUT, "%s: __metadata__ is not an object", path);
                goto out;
            }
            continue;
        }
        /* whatever their dtype: they are never read */
        if (legacy_buffer(hk, v->key)) continue;
        st_entry *x = &e[ne];
        if ((rc = parse_entry(path, v, data_len, x, err))) goto out;
        order[ne++] = x;
        int want = match_name(hk, x->name, t, n);
        if (want < 0 && !strcmp(x->name, hk->head)) want = 0, copy[0] = ne - 1;
        if (want < 0 && hk->alias[0] && !strcmp(bare_name(hk, x->name), hk->alias[0]) &&
            (want = match_name(hk, hk->alias[1], t, n)) >= 0)
            copy[1] = ne - 1;
        x->want = want;
        if (want < 0) {
            char q[200];
            rc = sp_err_set(err, SP_EINPUT,
                            "%s: tensor %s: unexpected (not in a %s of this config.json)", path,
                            sp_cfg_quote(x->name, q, sizeof q), hk->arch);
            goto out;
        }
        char a[96], b[96];
        if (x->ndim != t[want].ndim || x->shape[0] != t[want].dims[0] ||
            (x->ndim == 2 && x->shape[1] != t[want].dims[1])) {
            rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s: shape %s but config.json implies %s",
                            path, x->name, shape_str(x->shape, x->ndim, a, sizeof a),
                            shape_str(t[want].dims, t[want].ndim, b, sizeof b));
            goto out;
        }
        if (copy[0] == ne - 1 || copy[1] == ne - 1) continue;
        if (seen[want]) {
            rc = sp_err_set(err, SP_EINPUT,
                            "%s: tensor %s: given twice (with and without the %s prefix)", path,
                            t[want].name, hk->prefix);
            goto out;
        }
        seen[want] = 1;
    }
    for (int i = 0; i < n; i++)
        if (!seen[i]) {
            rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s: missing", path, t[i].name);
            goto out;
        }
    qsort(order, (size_t)ne, sizeof *order, by_begin);
    for (int i = 1; i < ne; i++)
        if (order[i]->begin < order[i - 1]->end) {
            rc = sp_err_set(err, SP_EINPUT,
                            "%s: tensor %s: data_offsets [%llu, %llu] overlap those of %s", path,
                            order[i]->name, (unsigned long long)order[i]->begin,
                            (unsigned long long)order[i]->end, order[i - 1]->name);
            goto out;
        }
    /* the data: each tensor converted to fp32 into the slab */
    uint64_t most = 0;
    for (int i = 0; i < ne; i++)
        if (order[i]->end - order[i]->begin > most) most = order[i]->end - order[i]->begin;
    if (!(buf = malloc(most ? most : 1))) {
        rc = sp_err_set(err, SP_ERUNTIME, "out of memory reading %s", path);
        goto out;
    }
    /* every tensor into its slab; the copies at the end (i >= ne), to be compared with the
     * tensors they name, which are read by then */
    for (int i = 0; i < ne + 2; i++) {
        int at = i < ne ? i : copy[i - ne];
        if (at < 0 || (i < ne && (i == copy[0] || i == copy[1]))) continue;
        st_entry *x = &e[at];
        size_t bytes = (size_t)(x->end - x->begin), cnt = bytes / (size_t)x->dt->bytes;
        if (pread(fd, buf, bytes, (off_t)(8 + hlen + x->begin)) != (ssize_t)bytes) {
            rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s: read failed", path, x->name);
            goto out;
        }
        float *dst = t[x->want].data;
        for (size_t k = 0; i < ne && k < cnt; k++) dst[k] = x->dt->get(buf, k);
        /* an untied save of a tied model: the head is the embedding, so it must equal it */
        for (size_t k = 0; i >= ne && k < cnt; k++) {
            float v = x->dt->get(buf, k);
            if (memcmp(&v, &dst[k], 4)) {
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s: differs from %s (element %zu); %s",
                                path, x->name, t[x->want].name, k,
                                i == ne ? "the model's head is tied to the embedding"
                                        : "both names are one tensor");
                goto out;
            }
        }
    }
out:
    close(fd);
    free(buf), free(seen), free(order), free(e), free(head);
    sp_json_free(j);
    return rc;
}

/* the /config of an imported checkpoint: cfg, or the defaults with spec s and no growth; cfg's
 * model before its first growth event must be s */
static int import_config(const char *dir, const sp_hf_kind *hk, const sp_spec *s,
                         const sp_config *cfg, char **yaml, uint64_t *seed, int *subnet,
                         sp_err *err) {
    sp_config def;
    sp_grow_sched gs;
    memset(&def, 0, sizeof def);
    memset(&gs, 0, sizeof gs);
    sp_log quiet = {.rank = 1};
    int rc = SP_OK;
    if (!cfg) {
        sp_cfg_defaults(&def);
        def.model.vocab = s->vocab, def.model.seq_len = s->seq_len;
        def.model.d_model = s->d_model, def.model.n_head = s->n_head;
        def.model.d_ff = s->d_ff, def.model.n_layer = s->n_layer;
        /* the kind and its hyper-parameters as the config keys (model.block, model.norm_eps...)
         * that give them: through sp_cfg_set, which owns the config's strings */
        char set[160];
        snprintf(set, sizeof set, "model.block=%s", sp_kind_of(s)->name);
        rc = sp_cfg_set(&def, set, err);
        for (int i = 0; !rc && sp_kind_of(s)->hparams && i < sp_spec_nhparams; i++) {
            const sp_spec_hparam *h = &sp_spec_hparams[i];
            const char *at = (const char *)s + h->offset;
            char v[40];
            if (h->type == 'i')
                snprintf(v, sizeof v, "%s", *(const int *)at ? "true" : "false");
            else
                sp_hf_num(*(const double *)at, v, sizeof v);
            snprintf(set, sizeof set, "model.%s=%s", h->name, v);
            rc = sp_cfg_set(&def, set, err);
        }
        if (rc || (rc = sp_cfg_validate(&def, err))) {
            rc = sp_err_wrap(err, "%s/config.json as a sprout config", dir);
            goto out;
        }
        cfg = &def;
    }
    if ((rc = sp_train_grow_schedule(cfg, &gs, &quiet, err))) goto out;
    sp_spec c0 = sp_grow_spec_at(&gs, 0);
    const char *when = gs.n ? " before its first growth event" : "";
    if (c0.kind != s->kind) {
        rc = sp_err_set(err, SP_EINPUT,
                        "%s/config.json: model_type %s is a %s model but the config's "
                        "model.block is %s",
                        dir, hk->model_type, sp_kind_of(s)->name, sp_kind_of(&c0)->name);
        goto out;
    }
    const char *keys[6] = {"vocab", "seq_len", "d_model", "n_head", "d_ff", "n_layer"};
    int a[6] = {s->vocab, s->seq_len, s->d_model, s->n_head, s->d_ff, s->n_layer};
    int b[6] = {c0.vocab, c0.seq_len, c0.d_model, c0.n_head, c0.d_ff, c0.n_layer};
    for (int i = 0; i < 6; i++)
        if (a[i] != b[i]) {
            rc = sp_err_set(err, SP_EINPUT,
                            "%s/config.json: %s = %d but the config's model.%s is %d%s", dir,
                            hk->field[i], a[i], keys[i], b[i], when);
            goto out;
        }
    for (int i = 0; hk->hparam[0] && i < sp_spec_nhparams; i++) {
        const sp_spec_hparam *h = &sp_spec_hparams[i];
        const char *x = (const char *)s + h->offset, *y = (const char *)&c0 + h->offset;
        char u[40], v[40];
        if (h->type == 'i' ? *(const int *)x == *(const int *)y
                           : *(const double *)x == *(const double *)y)
            continue;
        if (h->type == 'i')
            snprintf(u, sizeof u, "%s", *(const int *)x ? "true" : "false"),
                snprintf(v, sizeof v, "%s", *(const int *)y ? "true" : "false");
        else
            sp_hf_num(*(const double *)x, u, sizeof u), sp_hf_num(*(const double *)y, v, sizeof v);
        rc = sp_err_set(err, SP_EINPUT, "%s/config.json: %s = %s but the config's model.%s is %s%s",
                        dir, hk->hparam[i], u, h->name, v, when);
        goto out;
    }
    size_t len;
    if ((rc = sp_cfg_to_yaml(cfg, yaml, &len, err))) goto out;
    *seed = cfg->train.seed;
    *subnet = cfg->train.subnet && strcmp(cfg->train.subnet, "none");
out:
    sp_grow_sched_free(&gs);
    if (cfg == &def || def.run.out) sp_cfg_free(&def);
    return rc;
}

/* The tokenizer of an imported model, by config.json's vocab_size: a row of k_tokenizers whose
 * tokenizer has that vocabulary, its files read from DIR under HF's names and checked by opening
 * them. Any other vocabulary has no tokenizer sprout could sample or evaluate with. */
static int import_tokenizer(const char *dir, const sp_hf_kind *hk, const sp_spec *s,
                            sp_tok_files *tf, sp_err *err) {
    memset(tf, 0, sizeof *tf);
    const hf_tokenizer *row = NULL;
    for (size_t i = 0; i < sizeof k_tokenizers / sizeof k_tokenizers[0]; i++)
        if ((int)sp_tok_by_id(k_tokenizers[i].id)->vocab + hk->n_special == s->vocab)
            row = &k_tokenizers[i];
    if (!row)
        return sp_err_set(err, SP_EINPUT,
                          "%s/config.json: vocab_size %d is no tokenizer sprout has: it imports "
                          "%d (its byte tokenizer) or %d (GPT-2's BPE, with vocab.json and "
                          "merges.txt)%s",
                          dir, s->vocab, 256 + hk->n_special, 50257 + hk->n_special,
                          hk->n_special ? ", the kind's special ids included" : "");
    tf->kind = sp_tok_by_id(row->id);
    char path[4400];
    for (int i = 0; i < tf->kind->nfiles; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, row->hf_files[i]);
        char *b = NULL;
        size_t len = 0;
        sp_err e = {0};
        if (read_small(path, TOK_FILE_MAX, &b, &len, &e)) {
            sp_err_set(err, SP_EINPUT,
                       "%s (vocab_size %d is the %s tokenizer: sprout imports it with its %s and "
                       "%s)",
                       e.msg, s->vocab, tf->kind->name, row->hf_files[0], row->hf_files[1]);
            sp_tok_files_free(tf);
            return err->code;
        }
        tf->file[i] = (sp_buf){b, len};
    }
    /* opened under HF's names, so that a message names the file in DIR */
    char names[SP_TOK_MAX_FILES][4400];
    for (int i = 0; i < tf->kind->nfiles; i++) {
        snprintf(names[i], sizeof names[i], "%s/%s", dir, row->hf_files[i]);
        tf->name[i] = names[i];
    }
    sp_tok tk;
    int rc = sp_tok_open(&tk, tf, err);
    for (int i = 0; i < tf->kind->nfiles; i++) tf->name[i] = NULL;
    if (!rc) {
        sp_tok_close(&tk);
        return SP_OK;
    }
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    sp_err_set(err, err->code, "%s (sprout reads %s and %s as %s's %s and %s)", msg,
               row->hf_files[0], row->hf_files[1], tf->kind->name, tf->kind->files[0],
               tf->kind->files[1]);
    sp_tok_files_free(tf);
    return err->code;
}

int sp_hf_import(const char *dir, const char *out, const sp_config *cfg, int force, sp_err *err) {
    sp_spec s;
    sp_model m;
    memset(&m, 0, sizeof m);
    hf_tensor *t = NULL;
    char *yaml = NULL, path[4400];
    int n = 0, rc, subnet = 0;
    uint64_t seed = 0;
    uint32_t hash = 0;
    struct stat sb;
    if (!force && stat(out, &sb) == 0)
        return sp_err_set(err, SP_EINPUT, "%s: exists (use --force to replace it)", out);
    sp_tok_files tf = {0};
    const sp_hf_kind *hk = NULL;
    if ((rc = read_config_json(dir, &s, &hk, err))) return rc;
    if ((rc = import_tokenizer(dir, hk, &s, &tf, err))) return rc;
    if ((rc = import_config(dir, hk, &s, cfg, &yaml, &seed, &subnet, err))) goto out;
    if ((rc = sp_model_create(&m, &s, 0, s.n_layer, 1, 1, err))) goto out;
    if (!(t = model_tensors(&m, &n))) {
        rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
        goto out;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = read_safetensors(path, hk, t, n, &hash, err))) goto out;
    /* fresh AdamW state: zero moments (the arenas start zeroed) and step counts */
    memset(m.m, 0, m.numel * sizeof *m.m);
    memset(m.v, 0, m.numel * sizeof *m.v);
    memset(m.steps, 0, (size_t)(m.hi - m.lo + 1) * sizeof *m.steps);
    sp_train_state st;
    memset(&st, 0, sizeof st);
    st.seed = seed;
    st.parent_step = -1;
    st.subnet_stage = st.plan_step = subnet ? 0 : -1;
    /* a line of history of its own, named by the weights' header and the config */
    uint32_t h2 = sp_crc32(hash, yaml, strlen(yaml));
    snprintf(st.run_id, sizeof st.run_id, "%08x%08x", hash, h2);
    /* the tokenizer as a trained checkpoint records it: sample and eval need nothing else */
    rc = sp_ckpt_save_tok(out, &m, 1, &st, yaml, NULL, 0, &tf, MPI_COMM_SELF, err);
out:
    free(t);
    free(yaml);
    sp_model_free(&m);
    sp_tok_files_free(&tf);
    return rc;
}
