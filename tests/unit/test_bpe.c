/* The GPT-2 tokenizer's pieces on small handmade inputs: the strict JSON reader (escapes,
 * surrogate pairs, every refusal with its line and column), and BPE merges by rank on a vocabulary
 * of the 256 byte tokens plus five merges (lowest rank first wherever it is, all occurrences
 * left to right, later rank for a repeated pair; short and long words), pre-tokenisation, invalid
 * UTF-8 as byte tokens, decoding, and the vocabulary errors. */
#include "sprout/tokenizer.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON ---- */

typedef struct got {
    char keys[8][64];
    size_t klen[8];
    int64_t val[8];
    int n;
} got;

static int collect(const char *key, size_t klen, int64_t v, void *ctx) {
    got *g = ctx;
    if (g->n == 8 || klen >= 64) return SP_EINPUT;
    memcpy(g->keys[g->n], key, klen);
    g->klen[g->n] = klen;
    g->val[g->n++] = v;
    return SP_OK;
}

static void json_ok(tu_ctx *t) {
    const char *s =
        " {\"a\": 1, \"\\u00e9\" :-2,\n\"\\ud83d\\ude00\":3 ,\"\\\"\\\\\\/\\b\\f\\n\\r\\t\": 0,"
        "\"caf\xc3\xa9\": 12345678901} \n";
    got g = {0};
    sp_err err = {0};
    int rc = sp_tok_json_object(s, strlen(s), "t.json", collect, &g, &err);
    tu_check(t, rc == SP_OK && g.n == 5, "valid object: rc %d n %d (%s)", rc, g.n, err.msg);
    if (g.n != 5) return;
    tu_check(t, g.klen[0] == 1 && g.keys[0][0] == 'a' && g.val[0] == 1, "plain key");
    tu_check(t, g.klen[1] == 2 && !memcmp(g.keys[1], "\xc3\xa9", 2) && g.val[1] == -2,
             "\\u00e9 -> UTF-8, negative value");
    tu_check(t, g.klen[2] == 4 && !memcmp(g.keys[2], "\xf0\x9f\x98\x80", 4),
             "surrogate pair -> U+1F600");
    tu_check(t, g.klen[3] == 8 && !memcmp(g.keys[3], "\"\\/\b\f\n\r\t", 8), "short escapes");
    tu_check(t, g.klen[4] == 5 && g.val[4] == 12345678901LL, "raw UTF-8 key, 64-bit value");
    got e = {0};
    tu_check(t, sp_tok_json_object("{}", 2, "t", collect, &e, &err) == SP_OK && e.n == 0,
             "empty object");
}

/* each refused with the reason, the line and column, after the file's name */
static void json_bad(tu_ctx *t) {
    static const struct {
        const char *text, *why;
        int line, col;
    } k[] = {
        {"", "unexpected end of input", 1, 1},
        {"[1]", "expected an object of tokens to ids, not an array", 1, 1},
        {"{\"a\":1,}", "trailing comma", 1, 8},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'", 1, 8},
        {"{\"a\" 1}", "expected ':'", 1, 6},
        {"{\"a\":01}", "leading zero", 1, 7},
        {"{\"a\":1.5}", "not a fraction or an exponent", 1, 6},
        {"{\"a\":1e3}", "not a fraction or an exponent", 1, 6},
        {"{\"a\":\"1\"}", "expected an integer id, not a string", 1, 6},
        {"{\"a\":{}}", "expected an integer id, not an object", 1, 6},
        {"{\"a\":null}", "expected an integer id, not null", 1, 6},
        {"{\"\\ud83d\":1}", "high surrogate is not followed by a low one", 1, 9},
        {"{\"\\ud83d\\u0041\":1}", "high surrogate is not followed by a low one", 1, 15},
        {"{\"\\ude00\":1}", "lone low surrogate", 1, 9},
        {"{\"\\x\":1}", "unknown escape", 1, 4},
        {"{\"\\u12g4\":1}", "four hex digits", 1, 5},
        {"{\"a\tb\":1}", "control character", 1, 4},
        {"{\"\xff\":1}", "invalid UTF-8", 1, 3},
        {"{\"\xc0\xaf\":1}", "invalid UTF-8", 1, 3},
        {"{\"\xed\xa0\x80\":1}", "invalid UTF-8", 1, 3},
        {"{\"abc", "unterminated string", 1, 6},
        {"{\"a\":99999999999999999999}", "out of the int64 range", 1, 6},
        {"{} x", "text after the JSON value", 1, 4},
        {"{\"a\":1}{}", "text after the JSON value", 1, 8},
        {"{\"a\":1,\"a\":2}", "duplicate member name \"a\"", 1, 8},
        {"{\"a\": 1,\n \"b\": 2.5}", "not a fraction or an exponent", 2, 7},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        got g = {0};
        sp_err err = {0};
        int rc = sp_tok_json_object(k[i].text, strlen(k[i].text), "v.json", collect, &g, &err);
        char at[64];
        snprintf(at, sizeof at, "v.json: line %d, column %d: ", k[i].line, k[i].col);
        tu_check(t,
                 rc == SP_EINPUT && strstr(err.msg, k[i].why) &&
                     !strncmp(err.msg, at, strlen(at)) && !strchr(err.msg, '\n'),
                 "bad JSON #%zu refused as '%s%s': rc %d '%s'", i, at, k[i].why, rc, err.msg);
    }
}

/* ---- a handmade byte-level BPE ---- */

/* GPT-2's bytes_to_unicode, written out independently of src/io/bpe.c */
static unsigned byte_cp(unsigned b) {
    int shown = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (shown) return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++)
        n += !((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF));
    return 256 + n;
}

/* appends the token string of bytes s[0..n) as UTF-8 (for vocab.bpe) or as \uXXXX (JSON) */
static void put_token(char **o, const char *s, size_t n, int json) {
    for (size_t i = 0; i < n; i++) {
        unsigned cp = byte_cp((unsigned char)s[i]);
        if (json)
            *o += sprintf(*o, "\\u%04x", cp);
        else if (cp < 0x80)
            *(*o)++ = (char)cp;
        else
            *(*o)++ = (char)(0xC0 | cp >> 6), *(*o)++ = (char)(0x80 | (cp & 63));
    }
}

/* the vocabulary: byte b is token b; then "ab" 256, "abc" 257, "bc" 258, " a" 259, "cc" 260 */
static const char *k_merges[][3] = {
    {"a", "b", "ab"}, {"ab", "c", "abc"}, {"b", "c", "bc"}, {" ", "a", " a"}, {"c", "c", "cc"}};
#define NMERGE 5

static void make_files(char *json, char *bpe, int drop_byte, int extra_merge) {
    char *o = json;
    *o++ = '{';
    int first = 1;
    for (unsigned b = 0; b < 256; b++) {
        if ((int)b == drop_byte) continue;
        if (!first) *o++ = ',';
        first = 0;
        *o++ = '"';
        char c = (char)b;
        put_token(&o, &c, 1, 1);
        o += sprintf(o, "\": %u", drop_byte >= 0 && b > (unsigned)drop_byte ? b - 1 : b);
    }
    for (int m = 0; m < NMERGE; m++) {
        *o++ = ',', *o++ = '"';
        put_token(&o, k_merges[m][2], strlen(k_merges[m][2]), 1);
        o += sprintf(o, "\": %d", 256 + m - (drop_byte >= 0));
    }
    strcpy(o, "}");
    o = bpe;
    o += sprintf(o, "#version: 0.2\n");
    for (int m = 0; m < NMERGE; m++) {
        put_token(&o, k_merges[m][0], strlen(k_merges[m][0]), 0);
        *o++ = ' ';
        put_token(&o, k_merges[m][1], strlen(k_merges[m][1]), 0);
        *o++ = '\n';
    }
    if (extra_merge == 1) o += sprintf(o, "x zzz\n"); /* zzz and xzzz are no tokens */
    if (extra_merge == 2) o += sprintf(o, "c c\n");   /* a repeat: now the lowest priority */
    *o = 0;
}

static int open_small(sp_tok *tk, int drop_byte, int extra_merge, sp_err *err) {
    static char json[65536], bpe[4096];
    make_files(json, bpe, drop_byte, extra_merge);
    sp_buf f[2] = {{json, strlen(json)}, {bpe, strlen(bpe)}};
    tk->kind = sp_tok_find("gpt2");
    tk->impl = NULL;
    return tk->kind->open(tk, f, tk->kind->files, err);
}

static void expect_ids(tu_ctx *t, sp_tok *tk, const char *text, size_t n, const int *want,
                       size_t nwant) {
    sp_tok_ids ids = {0};
    sp_err err = {0};
    int rc = sp_tok_encode(tk, text, n, &ids, &err);
    int ok = rc == SP_OK && ids.n == nwant;
    for (size_t i = 0; ok && i < nwant; i++) ok = ids.v[i] == want[i];
    char seen[256] = "";
    for (size_t i = 0; i < ids.n && strlen(seen) < 200; i++)
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %u", ids.v[i]);
    tu_check(t, ok, "encode '%.*s': got%s", (int)n, text, seen);
    /* decode(encode(x)) == x */
    char back[256];
    size_t bn = 0;
    for (size_t i = 0; i < ids.n; i++) {
        size_t pl;
        const char *p = sp_tok_piece(tk, ids.v[i], &pl);
        if (p && bn + pl < sizeof back) memcpy(back + bn, p, pl);
        bn += pl;
    }
    tu_check(t, bn == n && !memcmp(back, text, n), "decode(encode('%.*s'))", (int)n, text);
    sp_tok_ids_free(&ids);
}

#define IDS(...) (const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int)

static void merges(tu_ctx *t) {
    sp_tok tk;
    sp_err err = {0};
    int rc = open_small(&tk, -1, 0, &err);
    tu_check(t, rc == SP_OK, "small vocabulary opens: %s", err.msg);
    if (rc) return;
    expect_ids(t, &tk, "abc", 3, IDS(257));                  /* ab (rank 0), then abc (rank 1) */
    expect_ids(t, &tk, "bcab", 4, IDS(258, 256));            /* ab first though bc comes first */
    expect_ids(t, &tk, "cccc", 4, IDS(260, 260));            /* every occurrence, left to right */
    expect_ids(t, &tk, "ccc", 3, IDS(260, 'c'));             /* ... without overlap */
    expect_ids(t, &tk, " abc", 4, IDS(' ', 257));            /* ab beats " a": Ġ ab c -> Ġ abc */
    expect_ids(t, &tk, " a", 2, IDS(259));                   /* " a" when nothing ranks lower */
    expect_ids(t, &tk, "abc abc", 7, IDS(257, ' ', 257));    /* words: "abc", " abc" */
    expect_ids(t, &tk, "it's", 4, IDS('i', 't', '\'', 's')); /* "it", "'s" */
    expect_ids(t, &tk,
               "a\xff"
               "b",
               3, IDS('a', 0xff, 'b'));                        /* an invalid byte: its token */
    expect_ids(t, &tk, "ab\xc3", 3, IDS(256, 0xc3));           /* a cut sequence */
    expect_ids(t, &tk, "ab\xc3\xa9", 4, IDS(256, 0xc3, 0xa9)); /* é: two byte tokens */
    expect_ids(t, &tk, "", 0, NULL, 0);
    size_t pl;
    const char *p = sp_tok_piece(&tk, 259, &pl);
    tu_check(t, p && pl == 2 && !memcmp(p, " a", 2), "token 259 decodes to ' a'");
    tu_check(t, !sp_tok_piece(&tk, 261, &pl) && pl == 0 && !sp_tok_piece(&tk, -1, &pl),
             "ids outside the vocabulary decode to nothing");
    /* words longer than 64 bytes take the O(m log m) path: the same merges */
    char lw[256];
    int want[256];
    for (int i = 0; i < 70; i++) memcpy(lw + 3 * i, "abc", 3), want[i] = 257;
    expect_ids(t, &tk, lw, 210, want, 70);
    memset(lw, 'c', 201);
    for (int i = 0; i < 100; i++) want[i] = 260;
    want[100] = 'c';
    expect_ids(t, &tk, lw, 201, want, 101); /* every occurrence, left to right, no overlap */
    for (int i = 0; i < 20; i++)
        memcpy(lw + 4 * i, "bcab", 4), want[2 * i] = 258, want[2 * i + 1] = 256;
    expect_ids(t, &tk, lw, 80, want, 40); /* ab first everywhere, then bc */
    /* the cache: a word seen before gives the same ids */
    expect_ids(t, &tk, "bcab bcab", 9, IDS(258, 256, ' ', 258, 256));
    tk.kind->free(&tk);

    /* a repeated pair takes its later rank (dict(zip(merges, range(n)))): "c c" is now the
     * last merge, but still the only one that applies to "cc" */
    rc = open_small(&tk, -1, 2, &err);
    tu_check(t, rc == SP_OK, "repeated pair accepted: %s", err.msg);
    if (!rc) {
        expect_ids(t, &tk, "cc", 2, IDS(260));
        tk.kind->free(&tk);
    }
}

static void vocab_errors(tu_ctx *t) {
    sp_tok tk;
    sp_err err = {0};
    int rc = open_small(&tk, 'q', 0, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "no token for byte 0x71"),
             "a missing byte token is named: %s", err.msg);
    rc = open_small(&tk, -1, 1, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "vocab.bpe: line 7 merges tokens that"),
             "a merge of unknown tokens names its line: %s", err.msg);
    /* the row's vocabulary size is checked by sp_tok_open */
    static char json[65536], bpe[4096];
    make_files(json, bpe, -1, 0);
    sp_tok_files f = {.kind = sp_tok_find("gpt2"),
                      .file = {{json, strlen(json)}, {bpe, strlen(bpe)}}};
    rc = sp_tok_open(&tk, &f, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "do not hold 50257 tokens"),
             "a 261-token vocabulary is not gpt2's: %s", err.msg);
    /* a file opened under another name (an imported model's) is named so in the messages */
    const char *cut = "{\"a\": 0,";
    sp_tok_files named = {.kind = sp_tok_find("gpt2"),
                          .file = {{cut, strlen(cut)}, {bpe, strlen(bpe)}},
                          .name = {"m/vocab.json", "m/merges.txt"}};
    rc = sp_tok_open(&tk, &named, &err);
    tu_check(t, rc == SP_EINPUT && !strncmp(err.msg, "m/vocab.json: line 1", 20),
             "a named file's message: %s", err.msg);
    named.file[0] = (sp_buf){json, strlen(json)};
    named.file[1] = (sp_buf){"no version\n", 11};
    rc = sp_tok_open(&tk, &named, &err);
    tu_check(t, rc == SP_EINPUT && !strncmp(err.msg, "m/merges.txt: the first line", 28),
             "a named merges file's message: %s", err.msg);
    const char *holes = "{\"a\": 0, \"b\": 2}";
    sp_buf hf[2] = {{holes, strlen(holes)}, {bpe, strlen(bpe)}};
    tk.kind = sp_tok_find("gpt2");
    rc = tk.kind->open(&tk, hf, tk.kind->files, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "each id 0..n-1"), "ids with a hole: %s",
             err.msg);
    /* a repeated token string is a repeated name: the reader refuses it where it repeats */
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"a\": 0, \"a\": 1}", "encoder.json: line 1, column 10: duplicate member name \"a\""},
        {"{\"a\": 70000}", "encoder.json: line 1, column 7: token id 70000 is outside 0..65535"},
        {"{\"a\": 0,\n\"\\u0000\": 1}",
         "encoder.json: line 2, column 11: token 1 is not a string of GPT-2 byte characters"},
        {"{\"a\": 0, \"b\": 1.0}", "encoder.json: line 1, column 15: expected an integer id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp_buf bf[2] = {{bad[i].json, strlen(bad[i].json)}, {bpe, strlen(bpe)}};
        rc = tk.kind->open(&tk, bf, tk.kind->files, &err);
        tu_check(t, rc == SP_EINPUT && !strncmp(err.msg, bad[i].want, strlen(bad[i].want)),
                 "vocabulary #%zu refused as '%s': %s", i, bad[i].want, err.msg);
    }
}

static void table(tu_ctx *t) {
    const sp_tok_kind *b = sp_tok_find("bytes"), *g = sp_tok_find("gpt2");
    tu_check(t, b && b->id == 0 && b->vocab == 256 && b->eot < 0 && sp_tok_by_id(0) == b,
             "bytes row");
    tu_check(t, g && g->id == 1 && g->vocab == 50257 && g->eot == 50256 && sp_tok_by_id(1) == g,
             "gpt2 row");
    tu_check(t, !sp_tok_find("gpt3") && !sp_tok_by_id(7), "no other rows");
    tu_check(t, !strcmp(sp_tok_names(), "bytes|gpt2"), "names: %s", sp_tok_names());
    sp_tok_files f = {.kind = b};
    sp_tok tk;
    sp_err err = {0};
    tu_check(t, sp_tok_open(&tk, &f, &err) == SP_OK, "bytes opens without files");
    sp_tok_ids ids = {0};
    tu_check(t,
             sp_tok_encode(&tk, "h\xc3\xa9", 3, &ids, &err) == SP_OK && ids.n == 3 &&
                 ids.v[0] == 'h' && ids.v[1] == 0xc3 && ids.v[2] == 0xa9,
             "bytes: token = byte");
    sp_tok_ids_free(&ids);
    sp_tok_close(&tk);
}

int main(void) {
    tu_ctx t = {0};
    json_ok(&t);
    json_bad(&t);
    merges(&t);
    vocab_errors(&t);
    table(&t);
    return tu_finish(&t, "bpe");
}
