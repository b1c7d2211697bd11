/* The GPT-2 byte-level BPE tokenizer (Radford et al. 2019; openai/gpt-2 src/encoder.py), from
 * its two files: encoder.json (token string -> id) and vocab.bpe (the merges, by rank).
 *
 * GPT-2 spells every byte as one printable code point (bytes_to_unicode: the printable Latin-1
 * bytes stand for themselves, the other 68 for U+0100 ...), so that token strings are text.
 * Here each token is turned back into the bytes it stands for once, at open, and the merges
 * become pairs of token ids: BPE then runs on ids, which is the same computation (a token
 * string and its id are in one-to-one correspondence) without building strings per word.
 *
 * Text is first cut into words by GPT-2's pattern, through PCRE2 in UTF + UCP mode (JIT when
 * the library has it). Invalid UTF-8 is not text the pattern can see: with
 * PCRE2_MATCH_INVALID_UTF an invalid byte is never part of a match (the pattern treats it as an
 * end of the text and starts again after it), and it becomes its own one-byte token, so that
 * decode(encode(x)) == x for any bytes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/data.h"
#include "sprout/json.h"
#include "sprout/tokenizer.h"

/* GPT-2's pattern, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+,
 * with one correction: PCRE2's \s (10.42) also matches U+180E MONGOLIAN VOWEL SEPARATOR, a
 * space before Unicode 6.3, which Python's `regex` (the reference) and JavaScript do not: the
 * spaces here are [^\S\x{180E}] and U+180E is punctuation, as it is for them. */
static const char k_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+"
                                "| ?(?:[^\\s\\p{L}\\p{N}]|\\x{180E})+"
                                "|[^\\S\\x{180E}]+(?![\\S\\x{180E}])|[^\\S\\x{180E}]+";

/* ---- a hash map from byte strings to two uint32 values, keys kept in an arena ---- */

typedef struct strmap {
    uint32_t *slot; /* index + 1 into the entries; 0 = empty */
    size_t cap;     /* power of two */
    struct ent {
        uint32_t off, len, a, b;
    } * e;
    size_t n, ecap;
    char *keys;
    size_t klen, kcap;
} strmap;

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ^ h >> 29;
}

/* the entry for key, or NULL */
static struct ent *sm_get(const strmap *m, const char *k, size_t n) {
    if (!m->cap) return NULL;
    for (size_t i = hash_bytes(k, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint32_t s = m->slot[i];
        if (!s) return NULL;
        struct ent *e = &m->e[s - 1];
        if (e->len == n && !memcmp(m->keys + e->off, k, n)) return e;
    }
}

static int sm_grow(strmap *m) {
    size_t cap = m->cap ? 2 * m->cap : 1 << 12;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t k = 0; k < m->n; k++) {
        size_t i = hash_bytes(m->keys + m->e[k].off, m->e[k].len) & (cap - 1);
        while (slot[i]) i = (i + 1) & (cap - 1);
        slot[i] = (uint32_t)k + 1;
    }
    free(m->slot);
    m->slot = slot, m->cap = cap;
    return 0;
}

/* adds key (absent) with values a, b; -1 when out of memory */
static int sm_put(strmap *m, const char *k, size_t n, uint32_t a, uint32_t b) {
    if (2 * (m->n + 1) > m->cap && sm_grow(m)) return -1;
    if (m->n == m->ecap) {
        size_t c = m->ecap ? 2 * m->ecap : 1 << 11;
        struct ent *e = realloc(m->e, c * sizeof *e);
        if (!e) return -1;
        m->e = e, m->ecap = c;
    }
    if (m->klen + n > m->kcap) {
        size_t c = m->kcap ? m->kcap : 1 << 16;
        while (c < m->klen + n) c *= 2;
        char *p = realloc(m->keys, c);
        if (!p) return -1;
        m->keys = p, m->kcap = c;
    }
    memcpy(m->keys + m->klen, k, n);
    m->e[m->n] = (struct ent){(uint32_t)m->klen, (uint32_t)n, a, b};
    m->klen += n;
    size_t i = hash_bytes(k, n) & (m->cap - 1);
    while (m->slot[i]) i = (i + 1) & (m->cap - 1);
    m->slot[i] = (uint32_t)++m->n;
    return 0;
}

static void sm_free(strmap *m) {
    free(m->slot), free(m->e), free(m->keys);
    memset(m, 0, sizeof *m);
}

/* ---- the tokenizer ---- */

#define CACHE_MAX_WORD    256     /* longer words are not cached */
#define CACHE_MAX_ENTRIES 1000000 /* a bound on the cache's memory (~40 MB of arbitrary text) */

typedef struct bpe {
    pcre2_code *re;
    pcre2_match_data *md;
    uint32_t nvocab;
    char *piece;   /* the bytes of every token, back to back */
    uint32_t *off; /* [nvocab + 1]: token i = piece[off[i] .. off[i+1]) */
    uint16_t byte_id[256];
    /* merges: open addressing on the pair key (a << 16 | b) + 1 (0 = empty) */
    uint32_t *mkey, *mrank;
    uint16_t *mto;
    size_t mcap;
    strmap cache; /* word bytes -> (offset into cached, count) */
    uint16_t *cached;
    size_t ncached, capcached;
    uint16_t *sym, *tmp; /* work arrays of one word */
    size_t symcap;
} bpe;

/* bytes_to_unicode: the code point GPT-2 spells byte b with */
static unsigned byte_cp(unsigned b, const unsigned char *shown) {
    if (shown[b]) return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++) n += !shown[x];
    return 256 + n;
}

static void byte_map(unsigned cp_of[256], int byte_of[324]) {
    unsigned char shown[256] = {0};
    for (unsigned b = '!'; b <= '~'; b++) shown[b] = 1;
    for (unsigned b = 0xA1; b <= 0xAC; b++) shown[b] = 1;
    for (unsigned b = 0xAE; b <= 0xFF; b++) shown[b] = 1;
    for (int i = 0; i < 324; i++) byte_of[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        cp_of[b] = byte_cp(b, shown);
        byte_of[cp_of[b]] = (int)b;
    }
}

/* a token string (UTF-8 of byte-map code points) to the bytes it stands for; -1 if some code
 * point is not one of the map's */
static int unmap(const char *s, size_t n, const int *byte_of, char *out, size_t *olen) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = (unsigned char)s[i], cp;
        if (c < 0x80)
            cp = c, i += 1;
        else if ((c & 0xE0) == 0xC0 && i + 1 < n)
            cp = (c & 31) << 6 | ((unsigned char)s[i + 1] & 63), i += 2;
        else
            return -1; /* every map code point is below U+0800 */
        if (cp >= 324 || byte_of[cp] < 0) return -1;
        out[o++] = (char)byte_of[cp];
    }
    *olen = o;
    return 0;
}

typedef struct load_ctx {
    bpe *b;
    strmap *ids; /* token bytes -> id */
    const int *byte_of;
    char *tmp;
    uint32_t max_id;
    size_t count;
    sp_err *err;
} load_ctx;

static int on_member(const char *key, size_t klen, int64_t v, void *arg) {
    load_ctx *c = arg;
    size_t n;
    if (v < 0 || v >= SP_TOK_MAX_VOCAB)
        return sp_err_set(c->err, SP_EINPUT, "token id %lld is outside 0..%d", (long long)v,
                          SP_TOK_MAX_VOCAB - 1);
    if (unmap(key, klen, c->byte_of, c->tmp, &n) || n == 0)
        return sp_err_set(c->err, SP_EINPUT, "token %lld is not a string of GPT-2 byte characters",
                          (long long)v);
    /* the reader refuses a repeated name, and distinct names stand for distinct bytes: this
     * only guards sm_put, which takes new keys */
    if (sm_get(c->ids, c->tmp, n))
        return sp_err_set(c->err, SP_EINPUT, "token %lld repeats an earlier token", (long long)v);
    if (sm_put(c->ids, c->tmp, n, (uint32_t)v, 0))
        return sp_err_set(c->err, SP_ERUNTIME, "out of memory");
    c->count++;
    if ((uint32_t)v > c->max_id) c->max_id = (uint32_t)v;
    return SP_OK;
}

/* "WHAT: line L, column C: " before the message of err, for a value at byte at of text */
static int at_value(sp_err *err, const char *what, const char *text, size_t n, size_t at) {
    size_t line, col;
    sp_json_where(text, n, at, &line, &col);
    return sp_err_wrap(err, "%s: line %zu, column %zu", what, line, col);
}

int sp_tok_json_object(const char *text, size_t n, const char *what,
                       int (*fn)(const char *key, size_t klen, int64_t value, void *ctx), void *ctx,
                       sp_err *err) {
    sp_json_value *j = NULL;
    if (sp_json_parse(text, n, &j, err)) return sp_err_wrap(err, "%s", what);
    int rc = SP_OK;
    if (j->type != SP_JSON_OBJECT) {
        sp_err_set(err, SP_EINPUT, "expected an object of tokens to ids, not %s",
                   sp_json_type_name(j->type));
        rc = at_value(err, what, text, n, j->at);
    }
    /* in document order: what the callback refuses first is the first bad member */
    for (size_t i = 0; !rc && i < j->n; i++) {
        const sp_json_value *v = &j->kids[i];
        if (v->type == SP_JSON_NUMBER && !v->is_int) {
            /* written as an integer but beyond int64, or with a fraction or an exponent */
            size_t e = v->at + (text[v->at] == '-');
            while (e < n && text[e] >= '0' && text[e] <= '9') e++;
            int frac = e < n && (text[e] == '.' || text[e] == 'e' || text[e] == 'E');
            sp_err_set(err, SP_EINPUT, "%s",
                       frac ? "expected an integer id, not a fraction or an exponent"
                            : "the id is out of the int64 range");
        } else if (v->type != SP_JSON_NUMBER)
            sp_err_set(err, SP_EINPUT, "expected an integer id, not %s",
                       sp_json_type_name(v->type));
        else if (!fn(v->key, v->key_len, v->i64, ctx))
            continue;
        rc = at_value(err, what, text, n, v->at);
    }
    sp_json_free(j);
    return rc;
}

static uint32_t pair_key(uint16_t a, uint16_t b) {
    return ((uint32_t)a << 16 | b) + 1;
}

static size_t pair_slot(const bpe *b, uint32_t key) {
    uint32_t h = key * 2654435761u;
    return (h ^ h >> 15) & (b->mcap - 1);
}

/* rank of the merge (a, b) and its result; UINT32_MAX when there is none */
static uint32_t merge_rank(const bpe *b, uint16_t x, uint16_t y, uint16_t *to) {
    uint32_t key = pair_key(x, y);
    for (size_t i = pair_slot(b, key);; i = (i + 1) & (b->mcap - 1)) {
        if (b->mkey[i] == key) return *to = b->mto[i], b->mrank[i];
        if (!b->mkey[i]) return UINT32_MAX;
    }
}

static int load_vocab(bpe *b, const sp_buf *f, const char *name, const int *byte_of, strmap *ids,
                      sp_err *err) {
    char *tmp = malloc(f->n + 1); /* a token's bytes: never more than its key, nor the file */
    if (!tmp) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    load_ctx c = {b, ids, byte_of, tmp, 0, 0, err};
    int rc = sp_tok_json_object(f->p, f->n, name, on_member, &c, err);
    free(tmp);
    if (rc) return rc;
    /* ids 0 .. n-1, each once (no repeated string above; a repeated id leaves a hole) */
    if (c.count == 0 || c.max_id + 1 != c.count)
        return sp_err_set(err, SP_EINPUT,
                          "%s: %zu tokens but ids up to %u (each id 0..n-1 must be used once)",
                          name, c.count, c.max_id);
    b->nvocab = (uint32_t)c.count;
    b->off = calloc(b->nvocab + 1, sizeof *b->off);
    b->piece = malloc(ids->klen ? ids->klen : 1);
    if (!b->off || !b->piece) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    uint32_t *len = calloc(b->nvocab, sizeof *len), *src = calloc(b->nvocab, sizeof *src);
    if (!len || !src) {
        free(len), free(src);
        return sp_err_set(err, SP_ERUNTIME, "out of memory");
    }
    for (size_t k = 0; k < ids->n; k++)
        len[ids->e[k].a] = ids->e[k].len, src[ids->e[k].a] = ids->e[k].off;
    for (uint32_t i = 0; i < b->nvocab; i++) {
        b->off[i + 1] = b->off[i] + len[i];
        memcpy(b->piece + b->off[i], ids->keys + src[i], len[i]);
    }
    free(len), free(src);
    for (unsigned x = 0; x < 256; x++) {
        char ch = (char)x;
        struct ent *e = sm_get(ids, &ch, 1);
        if (!e)
            return sp_err_set(err, SP_EINPUT,
                              "%s: no token for byte 0x%02x (a byte-level BPE needs all 256)", name,
                              x);
        b->byte_id[x] = (uint16_t)e->a;
    }
    return SP_OK;
}

/* names: the merges file's, then the vocabulary's (for the tokens it lacks) */
static int load_merges(bpe *b, const sp_buf *f, const char *const *names, const int *byte_of,
                       const strmap *ids, sp_err *err) {
    const char *name = names[1];
    const char *p = f->p, *end = p + f->n;
    /* encoder.py: bpe_data.split("\n")[1:-1], the first line is "#version: ..." */
    const char *nl = memchr(p, '\n', f->n);
    if (!nl || strncmp(p, "#version", 8) != 0)
        return sp_err_set(err, SP_EINPUT, "%s: the first line is not '#version: ...'", name);
    size_t nlines = 0;
    for (const char *q = nl + 1; q < end; q++) nlines += *q == '\n';
    b->mcap = 16;
    while (b->mcap < 2 * nlines + 2) b->mcap *= 2;
    b->mkey = calloc(b->mcap, sizeof *b->mkey);
    b->mrank = calloc(b->mcap, sizeof *b->mrank);
    b->mto = calloc(b->mcap, sizeof *b->mto);
    char *ta = malloc(4096), *tb = malloc(8192);
    int rc = b->mkey && b->mrank && b->mto && ta && tb
                 ? SP_OK
                 : sp_err_set(err, SP_ERUNTIME, "out of memory");
    uint32_t rank = 0;
    /* the last line (after the final newline) is dropped, as encoder.py's [1:-1] does */
    for (const char *line = nl + 1; rc == SP_OK && line < end; rank++) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) break;
        const char *sp = memchr(line, ' ', (size_t)(eol - line));
        size_t la, lb;
        if (!sp || sp == line || sp + 1 == eol || memchr(sp + 1, ' ', (size_t)(eol - sp - 1)) ||
            (size_t)(eol - line) > 4000) {
            rc = sp_err_set(err, SP_EINPUT, "%s: line %u is not 'A B'", name, rank + 2);
            break;
        }
        if (unmap(line, (size_t)(sp - line), byte_of, ta, &la) ||
            unmap(sp + 1, (size_t)(eol - sp - 1), byte_of, tb, &lb)) {
            rc = sp_err_set(err, SP_EINPUT, "%s: line %u has a non-GPT-2 byte character", name,
                            rank + 2);
            break;
        }
        struct ent *ea = sm_get(ids, ta, la), *eb = sm_get(ids, tb, lb);
        memcpy(ta + la, tb, lb);
        struct ent *em = sm_get(ids, ta, la + lb);
        if (!ea || !eb || !em) {
            rc = sp_err_set(err, SP_EINPUT, "%s: line %u merges tokens that %s lacks (%s)", name,
                            rank + 2, names[0],
                            !ea   ? "first"
                            : !eb ? "second"
                                  : "the merged one");
            break;
        }
        uint32_t key = pair_key((uint16_t)ea->a, (uint16_t)eb->a);
        size_t i = pair_slot(b, key);
        while (b->mkey[i] && b->mkey[i] != key) i = (i + 1) & (b->mcap - 1);
        /* a repeated pair takes its later rank, as dict(zip(merges, range(n))) does */
        b->mkey[i] = key, b->mrank[i] = rank, b->mto[i] = (uint16_t)em->a;
        line = eol + 1;
    }
    free(ta), free(tb);
    return rc;
}

void sp_bpe_free(sp_tok *t);

int sp_bpe_open(sp_tok *t, const sp_buf *files, const char *const *names, sp_err *err) {
    bpe *b = calloc(1, sizeof *b);
    if (!b) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    t->impl = b;
    unsigned cp_of[256];
    int byte_of[324];
    byte_map(cp_of, byte_of);
    strmap ids = {0};
    int rc = load_vocab(b, &files[0], names[0], byte_of, &ids, err);
    if (!rc) rc = load_merges(b, &files[1], names, byte_of, &ids, err);
    sm_free(&ids);
    if (!rc) {
        int code;
        PCRE2_SIZE at;
        b->re = pcre2_compile((PCRE2_SPTR)k_pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
        if (!b->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            rc = sp_err_set(err, SP_ERUNTIME, "PCRE2 rejects the GPT-2 pattern at %zu: %s",
                            (size_t)at, (const char *)msg);
        } else {
            (void)pcre2_jit_compile(b->re, PCRE2_JIT_COMPLETE); /* the interpreter otherwise */
            b->md = pcre2_match_data_create_from_pattern(b->re, NULL);
            if (!b->md) rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
        }
    }
    if (rc) sp_bpe_free(t);
    return rc;
}

void sp_bpe_free(sp_tok *t) {
    bpe *b = t->impl;
    if (!b) return;
    if (b->md) pcre2_match_data_free(b->md);
    if (b->re) pcre2_code_free(b->re);
    free(b->piece), free(b->off), free(b->mkey), free(b->mrank), free(b->mto);
    sm_free(&b->cache);
    free(b->cached), free(b->sym), free(b->tmp);
    free(b);
    t->impl = NULL;
}

const char *sp_bpe_decode(const sp_tok *t, int id, size_t *len) {
    const bpe *b = t->impl;
    if (id < 0 || (uint32_t)id >= b->nvocab) return *len = 0, NULL;
    *len = b->off[id + 1] - b->off[id];
    return b->piece + b->off[id];
}

/* Words longer than this take merge_long. A compile-time test hook: tests build a copy with
 * SP_BPE_LONG_WORD=1, so that every word of the comparison corpora goes that way too. */
#ifndef SP_BPE_LONG_WORD
#define SP_BPE_LONG_WORD 64
#endif

/* encoder.py's loop, literally: find the pair of lowest rank, merge every occurrence left to
 * right; O(m) per merge, the fastest for the short words that are nearly all of a text. */
static size_t merge_short(const bpe *b, uint16_t *s, uint16_t *tmp, size_t m) {
    while (m > 1) {
        uint32_t best = UINT32_MAX;
        uint16_t x = 0, y = 0, to = 0, t;
        for (size_t i = 0; i + 1 < m; i++) {
            uint32_t r = merge_rank(b, s[i], s[i + 1], &t);
            if (r < best) best = r, x = s[i], y = s[i + 1], to = t;
        }
        if (best == UINT32_MAX) break;
        size_t j = 0;
        for (size_t i = 0; i < m;) {
            if (i + 1 < m && s[i] == x && s[i + 1] == y)
                tmp[j++] = to, i += 2;
            else
                tmp[j++] = s[i++];
        }
        memcpy(s, tmp, j * sizeof *s);
        m = j;
    }
    return m;
}

/* ---- the same merges in O(m log m), for long words (a megabyte without a space must not take
 * hours): the symbols form a linked list over their first byte's position, and a heap holds
 * (rank, position) of the pairs. All entries of the lowest rank are taken at once and merged in
 * position order, skipping those an earlier merge of the batch changed, and only then are the
 * new pairs pushed: exactly encoder.py's "every occurrence of the best pair, left to right",
 * whatever the merge list (a rank names one pair, so an entry whose pair changed is stale). */

typedef struct hent {
    uint32_t rank;
    size_t pos;
} hent;

static int hless(const hent *a, const hent *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void hpush(hent *h, size_t *n, hent e) {
    size_t i = (*n)++;
    for (; i > 0 && hless(&e, &h[(i - 1) / 2]); i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = e;
}

static hent hpop(hent *h, size_t *n) {
    hent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && hless(&h[c + 1], &h[c])) c++;
        if (!hless(&h[c], &last)) break;
        h[i] = h[c], i = c;
    }
    if (*n) h[i] = last;
    return top;
}

#define NONE SIZE_MAX

static int merge_long(const bpe *b, uint16_t *s, size_t n, size_t *m_out, sp_err *err) {
    size_t *nxt = malloc(n * sizeof *nxt), *prv = malloc(n * sizeof *prv);
    size_t *batch = malloc(n * sizeof *batch), cap = 3 * n, nh = 0;
    hent *h = malloc(cap * sizeof *h);
    int rc = nxt && prv && batch && h
                 ? SP_OK
                 : sp_err_set(err, SP_ERUNTIME, "out of memory (a word of %zu bytes)", n);
    uint16_t to;
    for (size_t i = 0; rc == SP_OK && i < n; i++) {
        nxt[i] = i + 1 < n ? i + 1 : NONE, prv[i] = i ? i - 1 : NONE;
        uint32_t r = i + 1 < n ? merge_rank(b, s[i], s[i + 1], &to) : UINT32_MAX;
        if (r != UINT32_MAX) hpush(h, &nh, (hent){r, i});
    }
    size_t m = n;
    while (rc == SP_OK && nh > 0) {
        uint32_t r = h[0].rank;
        size_t nb = 0, merged = 0;
        while (nh > 0 && h[0].rank == r) batch[nb++] = hpop(h, &nh).pos;
        for (size_t k = 0; k < nb; k++) {
            size_t p = batch[k], q = nxt[p];
            /* stale: p was merged away (prv[p] points past it), or its pair changed */
            if (q == NONE || (prv[p] != NONE && nxt[prv[p]] != p) ||
                merge_rank(b, s[p], s[q], &to) != r)
                continue;
            s[p] = to;
            nxt[p] = nxt[q];
            if (nxt[q] != NONE) prv[nxt[q]] = p;
            nxt[q] = NONE, prv[q] = p; /* q is gone: prv[q] no longer leads back to it */
            batch[merged++] = p;
            m--;
        }
        for (size_t k = 0; k < merged; k++) {
            size_t p = batch[k];
            uint32_t rl = prv[p] != NONE ? merge_rank(b, s[prv[p]], s[p], &to) : UINT32_MAX;
            uint32_t rr = nxt[p] != NONE ? merge_rank(b, s[p], s[nxt[p]], &to) : UINT32_MAX;
            if (nh + 2 > cap) { /* duplicates of a pair are possible: grow rather than refuse */
                hent *g = realloc(h, 2 * cap * sizeof *h);
                if (!g) {
                    rc = sp_err_set(err, SP_ERUNTIME, "out of memory (a word of %zu bytes)", n);
                    break;
                }
                h = g, cap *= 2;
            }
            if (rl != UINT32_MAX) hpush(h, &nh, (hent){rl, prv[p]});
            if (rr != UINT32_MAX) hpush(h, &nh, (hent){rr, p});
        }
    }
    /* the surviving symbols, in order, to the front of s */
    size_t j = 0;
    for (size_t p = 0; rc == SP_OK && p != NONE; p = nxt[p]) s[j++] = s[p];
    *m_out = j;
    free(nxt), free(prv), free(batch), free(h);
    return rc;
}

/* BPE of one word (bytes w[0..n)): the pair of lowest rank is merged everywhere, left to
 * right, until no pair has a rank (encoder.py's bpe()). Appends the ids to out. */
static int bpe_word(bpe *b, const char *w, size_t n, sp_tok_ids *out, sp_err *err) {
    struct ent *hit = n <= CACHE_MAX_WORD ? sm_get(&b->cache, w, n) : NULL;
    if (hit) {
        for (uint32_t k = 0; k < hit->b; k++)
            if (sp_tok_ids_push(out, b->cached[hit->a + k], err)) return err->code;
        return SP_OK;
    }
    if (n > b->symcap) {
        free(b->sym), free(b->tmp);
        b->symcap = n;
        b->sym = malloc(n * sizeof *b->sym), b->tmp = malloc(n * sizeof *b->tmp);
        if (!b->sym || !b->tmp) {
            b->symcap = 0;
            return sp_err_set(err, SP_ERUNTIME, "out of memory (a word of %zu bytes)", n);
        }
    }
    uint16_t *s = b->sym;
    size_t m = n;
    for (size_t i = 0; i < n; i++) s[i] = b->byte_id[(unsigned char)w[i]];
    if (n <= SP_BPE_LONG_WORD)
        m = merge_short(b, s, b->tmp, n);
    else if (merge_long(b, s, n, &m, err))
        return err->code;
    for (size_t i = 0; i < m; i++)
        if (sp_tok_ids_push(out, s[i], err)) return err->code;
    if (n <= CACHE_MAX_WORD && b->cache.n < CACHE_MAX_ENTRIES) {
        if (b->ncached + m > b->capcached) {
            size_t c = b->capcached ? 2 * b->capcached : 1 << 14;
            while (c < b->ncached + m) c *= 2;
            uint16_t *p = realloc(b->cached, c * sizeof *p);
            if (!p) return SP_OK; /* the cache is an optimisation: go on without it */
            b->cached = p, b->capcached = c;
        }
        if (sm_put(&b->cache, w, n, (uint32_t)b->ncached, (uint32_t)m) == 0) {
            memcpy(b->cached + b->ncached, s, m * sizeof *s);
            b->ncached += m;
        }
    }
    return SP_OK;
}

int sp_bpe_encode(sp_tok *t, const char *text, size_t n, sp_tok_ids *out, sp_err *err) {
    bpe *b = t->impl;
    size_t at = 0;
    while (at < n) {
        int rc = pcre2_match(b->re, (PCRE2_SPTR)text, n, at, 0, b->md, NULL);
        size_t s = n, e = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(b->md);
            s = ov[0], e = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return sp_err_set(err, SP_ERUNTIME, "PCRE2 match at byte %zu: %s", at,
                              (const char *)msg);
        }
        /* what the pattern skipped is invalid UTF-8: one token per byte */
        for (; at < s; at++)
            if (sp_tok_ids_push(out, b->byte_id[(unsigned char)text[at]], err)) return err->code;
        if (e == s) { /* no match (or an empty one, which the pattern cannot give) */
            if (s < n && sp_tok_ids_push(out, b->byte_id[(unsigned char)text[at++]], err))
                return err->code;
            continue;
        }
        if (bpe_word(b, text + s, e - s, out, err)) return err->code;
        at = e;
    }
    return SP_OK;
}
