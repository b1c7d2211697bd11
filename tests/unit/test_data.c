/* Token files (write, open, validation), sampling, eval windows, and corpus preparation.
 * The real Brown corpus is checked only when SPROUT_BROWN_DIR names its directory. */
#define _GNU_SOURCE
#include "sprout/data.h"
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256]; /* the test's scratch directory */

static const char *tmp_path(const char *name) {
    static char bufs[8][1024];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, 1024, "%s/%s", g_tmp, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    if (len && fwrite(data, 1, len, f) != len) exit(2);
    fclose(f);
}

static void write_str(const char *path, const char *s) {
    write_file(path, s, strlen(s));
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* a token file by hand, so the bad ones can be made */
static void write_tok_raw(const char *path, const char *magic, uint32_t vocab, uint64_t count,
                          int reserved, const uint16_t *tok, size_t ntok) {
    unsigned char h[32] = {0};
    memcpy(h, magic, 8);
    put32(h + 8, vocab);
    put32(h + 12, (uint32_t)count);
    put32(h + 16, (uint32_t)(count >> 32));
    h[28] = (unsigned char)reserved;
    FILE *f = fopen(path, "wb");
    fwrite(h, 1, 32, f);
    if (ntok) fwrite(tok, 2, ntok, f);
    fclose(f);
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *ftw) {
    return remove(p);
}

static void rm_rf(const char *dir) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* rc is SP_EINPUT and the message names `path` (and contains `phrase` if given) */
static void expect_input_err(tu_ctx *t, const char *what, int rc, const sp_err *err,
                             const char *path, const char *phrase) {
    tu_check(t, rc == SP_EINPUT, "%s: rc %d, expected SP_EINPUT (%s)", what, rc, err->msg);
    tu_check(t, strstr(err->msg, path) != NULL, "%s: message does not name %s: %s", what, path,
             err->msg);
    if (phrase)
        tu_check(t, strstr(err->msg, phrase) != NULL, "%s: message lacks \"%s\": %s", what, phrase,
                 err->msg);
    tu_check(t, strchr(err->msg, '\n') == NULL, "%s: message is not one line", what);
}

/* the text of a byte-token file (malloc'd, NUL-terminated), or NULL */
static char *read_text(const char *path, size_t *len) {
    sp_tokens tk;
    sp_err err = {0};
    if (sp_data_open(&tk, path, &err) != SP_OK) {
        fprintf(stderr, "read_text: %s\n", err.msg);
        return NULL;
    }
    char *s = malloc(tk.n + 1);
    for (uint64_t i = 0; i < tk.n; i++) s[i] = (char)tk.tok[i];
    s[tk.n] = '\0';
    if (len) *len = tk.n;
    sp_data_close(&tk);
    return s;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t r = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[r] = '\0';
    if (len) *len = r;
    return s;
}

/* ---- token files ---- */

static void test_roundtrip(tu_ctx *t) {
    const uint64_t n = 12345;
    uint16_t *tok = malloc(n * sizeof *tok);
    for (uint64_t i = 0; i < n; i++) tok[i] = (uint16_t)(sp_rng_u64(7, SP_RNG_TEST, 0, i) % 1000);
    const char *path = tmp_path("rt.bin");
    sp_err err = {0};
    int rc = sp_data_write(path, tok, n, 1000, 0, &err);
    tu_check(t, rc == SP_OK, "write: %s", err.msg);
    tu_check(t, access(tmp_path("rt.bin.tmp"), F_OK) != 0, "write left rt.bin.tmp behind");

    size_t len = 0;
    unsigned char *raw = (unsigned char *)slurp(path, &len);
    tu_check(t, raw && len == 32 + 2 * n, "file size %zu, expected %llu", len,
             (unsigned long long)(32 + 2 * n));
    if (raw && len >= 34) {
        tu_check(t, memcmp(raw, "SPRTOK01", 8) == 0, "magic");
        tu_check(t, raw[8] == (1000 & 255) && raw[9] == (1000 >> 8) && !raw[10] && !raw[11],
                 "vocab field is not little-endian 1000");
        uint64_t cnt = 0;
        for (int i = 7; i >= 0; i--) cnt = cnt << 8 | raw[12 + i];
        tu_check(t, cnt == n, "count field %llu", (unsigned long long)cnt);
        int zero = 1;
        for (int i = 20; i < 32; i++) zero &= raw[i] == 0;
        tu_check(t, zero, "tokenizer and reserved bytes are not zero");
        tu_check(t, raw[32] == (tok[0] & 255) && raw[33] == tok[0] >> 8, "first token not LE");
    }
    free(raw);

    sp_tokens tk;
    rc = sp_data_open(&tk, path, &err);
    tu_check(t, rc == SP_OK, "open: %s", err.msg);
    if (rc == SP_OK) {
        tu_check(t, tk.n == n && tk.vocab == 1000 && tk.tokenizer == 0, "header n=%llu vocab=%u",
                 (unsigned long long)tk.n, tk.vocab);
        tu_check(t, memcmp(tk.tok, tok, n * 2) == 0, "tokens differ after round trip");
        tu_check(t, strcmp(tk.path, path) == 0, "path not kept");
        tu_check(t, sp_data_check_vocab(&tk, 1000, &err) == SP_OK, "vocab 1000 vs model 1000");
        rc = sp_data_check_vocab(&tk, 512, &err);
        expect_input_err(t, "check_vocab", rc, &err, path,
                         "vocab 1000 is larger than the model's vocab 512");
        tu_check(t, sp_data_check_context(&tk, 12344, &err) == SP_OK, "context n-1 fits");
        rc = sp_data_check_context(&tk, 12345, &err);
        expect_input_err(t, "check_context", rc, &err, path, NULL);
        sp_data_close(&tk);
        sp_data_close(&tk); /* twice is harmless */
    }

    /* overwrite in place with a different file, tokenizer id kept */
    rc = sp_data_write(path, tok, 100, 65536, 7, &err);
    tu_check(t, rc == SP_OK, "rewrite: %s", err.msg);
    rc = sp_data_open(&tk, path, &err);
    tu_check(t, rc == SP_OK && tk.n == 100 && tk.vocab == 65536 && tk.tokenizer == 7,
             "reopen after rewrite: %s", err.msg);
    if (rc == SP_OK) sp_data_close(&tk);

    /* the writer refuses what open would reject */
    rc = sp_data_write(tmp_path("w1.bin"), tok, n, 500, 0, &err);
    expect_input_err(t, "write token >= vocab", rc, &err, "w1.bin", ">= vocab 500");
    rc = sp_data_write(tmp_path("w2.bin"), tok, 1, 1000, 0, &err);
    expect_input_err(t, "write one token", rc, &err, "w2.bin", NULL);
    rc = sp_data_write(tmp_path("w3.bin"), tok, n, 0, 0, &err);
    expect_input_err(t, "write vocab 0", rc, &err, "w3.bin", NULL);
    tu_check(t, access(tmp_path("w1.bin"), F_OK) != 0, "refused write created a file");
    free(tok);
}

static void test_bad_files(tu_ctx *t) {
    uint16_t good[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    sp_tokens tk;
    sp_err err = {0};
    int rc;
    const char *p;

    p = tmp_path("missing.bin");
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "missing", rc, &err, p, "No such file");

    p = tmp_path("short.bin");
    write_str(p, "SPRTOK01abc");
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "short", rc, &err, p, "too short");

    p = tmp_path("magic.bin");
    write_tok_raw(p, "GPT2TOK1", 256, 8, 0, good, 8);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "magic", rc, &err, p, "not a sprout token file (bad magic)");

    p = tmp_path("reserved.bin");
    write_tok_raw(p, "SPRTOK01", 256, 8, 1, good, 8);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "reserved", rc, &err, p, "reserved");

    p = tmp_path("vocab0.bin");
    write_tok_raw(p, "SPRTOK01", 0, 8, 0, good, 8);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "vocab 0", rc, &err, p, "vocab 0");

    p = tmp_path("vocabbig.bin");
    write_tok_raw(p, "SPRTOK01", 65537, 8, 0, good, 8);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "vocab 65537", rc, &err, p, "vocab 65537");

    p = tmp_path("trunc.bin");
    write_tok_raw(p, "SPRTOK01", 256, 10, 0, good, 5);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "truncated", rc, &err, p, "truncated: header says 10 tokens, file holds 5");

    p = tmp_path("hugecount.bin");
    write_tok_raw(p, "SPRTOK01", 256, UINT64_MAX, 0, good, 8);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "count 2^64-1", rc, &err, p, "truncated");

    p = tmp_path("trailing.bin");
    write_tok_raw(p, "SPRTOK01", 256, 6, 0, good, 8);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "trailing", rc, &err, p, "header says 6 tokens");

    p = tmp_path("badtok.bin");
    uint16_t bad[8] = {1, 2, 3, 4, 300, 6, 7, 8};
    write_tok_raw(p, "SPRTOK01", 256, 8, 0, bad, 8);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "token >= vocab", rc, &err, p, "token 300 at position 4 is >= vocab 256");

    p = tmp_path("one.bin");
    write_tok_raw(p, "SPRTOK01", 256, 1, 0, good, 1);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "one token", rc, &err, p, "at least 2");

    p = tmp_path("empty.bin");
    write_tok_raw(p, "SPRTOK01", 256, 0, 0, good, 0);
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "no tokens", rc, &err, p, "at least 2");

    p = g_tmp; /* a directory */
    rc = sp_data_open(&tk, p, &err);
    expect_input_err(t, "directory", rc, &err, p, "not a regular file");
    tu_check(t, tk.buf == NULL, "failed open left a buffer");

    /* the boundary cases are accepted: 2 tokens, vocab 65536, token = vocab-1 */
    p = tmp_path("edge.bin");
    uint16_t edge[2] = {255, 0};
    write_tok_raw(p, "SPRTOK01", 256, 2, 0, edge, 2);
    rc = sp_data_open(&tk, p, &err);
    tu_check(t, rc == SP_OK && tk.n == 2 && tk.tok[0] == 255, "edge file: %s", err.msg);
    if (rc == SP_OK) sp_data_close(&tk);
}

/* A FIFO is refused at once (opening it for reading used to wait for a writer forever: the
 * alarm turns a hang into a failure), and a file changed after open does not reach the tokens:
 * they are a private copy (truncating a mapped file made the next read a SIGBUS). */
static void test_hostile_files(tu_ctx *t) {
    sp_tokens tk;
    sp_err err = {0};
    const char *p = tmp_path("fifo");
    tu_check(t, mkfifo(p, 0600) == 0, "mkfifo");
    alarm(30);
    int rc = sp_data_open(&tk, p, &err);
    alarm(0);
    expect_input_err(t, "FIFO", rc, &err, p, "is a FIFO, not a regular file");
    rc = sp_data_open(&tk, "/dev/null", &err);
    expect_input_err(t, "device", rc, &err, "/dev/null", "is a character device");

    p = tmp_path("live.bin");
    enum { N = 20000 };
    uint16_t *tok = malloc(N * sizeof *tok);
    for (int i = 0; i < N; i++) tok[i] = (uint16_t)(i % 251);
    rc = sp_data_write(p, tok, N, 256, 0, &err);
    rc = rc ? rc : sp_data_open(&tk, p, &err);
    tu_check(t, rc == SP_OK, "open live.bin: %s", err.msg);
    if (rc == SP_OK) {
        tu_check(t, !sp_data_changed(&tk), "sp_data_changed on the file as read");
        tu_check(t, truncate(p, 40) == 0, "truncate");
        tu_check(t, sp_data_changed(&tk), "sp_data_changed misses a truncation");
        uint16_t junk[64];
        for (int i = 0; i < 64; i++) junk[i] = 65535;
        FILE *f = fopen(p, "r+b");
        if (f) fseek(f, 32, SEEK_SET), fwrite(junk, 2, 64, f), fclose(f);
        int same = tk.n == N;
        for (int i = 0; same && i < N; i++) same = tk.tok[i] == tok[i];
        int32_t inp[64], tgt[64];
        sp_data_train_sample(&tk, 1, 0, 0, 64, inp, tgt); /* reads the truncated range too */
        tu_check(t, same, "tokens changed with the file under them");
        sp_data_close(&tk);
    }
    free(tok);
}

/* ---- sampling and windows ---- */

/* tokens 0..n-1 (vocab 65536), so a window's first input is its start */
static int open_iota(sp_tokens *tk, const char *name, uint64_t n) {
    uint16_t *tok = malloc(n * sizeof *tok);
    for (uint64_t i = 0; i < n; i++) tok[i] = (uint16_t)i;
    sp_err err = {0};
    int rc = sp_data_write(tmp_path(name), tok, n, 65536, 0, &err);
    free(tok);
    if (rc == SP_OK) rc = sp_data_open(tk, tmp_path(name), &err);
    if (rc != SP_OK) fprintf(stderr, "open_iota: %s\n", err.msg);
    return rc;
}

static void test_sampling(tu_ctx *t) {
    enum { T = 16 };
    int32_t a[T], b[T], a2[T], b2[T];
    sp_tokens tk;
    if (open_iota(&tk, "iota.bin", 5000) != SP_OK) {
        tu_check(t, 0, "cannot make iota.bin");
        return;
    }
    int bad_shape = 0, bad_range = 0, distinct = 0, same_steps = 0;
    int64_t prev = -1;
    for (uint64_t k = 0; k < 200; k++) {
        sp_data_train_sample(&tk, 42, 3, k, T, a, b);
        sp_data_train_sample(&tk, 42, 3, k, T, a2, b2);
        tu_check(t, memcmp(a, a2, sizeof a) == 0 && memcmp(b, b2, sizeof b) == 0,
                 "sample (42,3,%llu) not deterministic", (unsigned long long)k);
        int64_t s = a[0];
        if (s < 0 || s > 5000 - T - 1) bad_range++;
        for (int i = 0; i < T; i++) bad_shape += a[i] != s + i || b[i] != s + i + 1;
        distinct += s != prev;
        prev = s;
        sp_data_train_sample(&tk, 42, 4, k, T, a2, b2);
        same_steps += a2[0] == a[0];
    }
    tu_check(t, bad_shape == 0, "%d positions break inp=tok[s+i], tgt=tok[s+i+1]", bad_shape);
    tu_check(t, bad_range == 0, "%d starts outside [0, n-T-1]", bad_range);
    tu_check(t, distinct >= 190, "only %d of 200 consecutive k gave a new window", distinct);
    tu_check(t, same_steps <= 5, "%d of 200 windows equal across steps 3 and 4", same_steps);
    sp_data_train_sample(&tk, 43, 3, 0, T, a2, b2);
    sp_data_train_sample(&tk, 42, 3, 0, T, a, b);
    tu_check(t, a[0] != a2[0], "seed 42 and 43 give the same window");
    sp_data_close(&tk);

    /* a small range: all starts reached, roughly uniformly, never past the end */
    if (open_iota(&tk, "small.bin", T + 10) == SP_OK) {
        int hist[10] = {0}, out = 0;
        for (uint64_t k = 0; k < 20000; k++) {
            sp_data_train_sample(&tk, 1, 0, k, T, a, b);
            if (a[0] < 0 || a[0] > 9 || b[T - 1] > T + 9)
                out++;
            else
                hist[a[0]]++;
        }
        int lo = hist[0], hi = hist[0];
        for (int i = 1; i < 10; i++)
            lo = hist[i] < lo ? hist[i] : lo, hi = hist[i] > hi ? hist[i] : hi;
        tu_check(t, out == 0, "%d windows out of range (n = T+10)", out);
        tu_check(t, lo > 1700 && hi < 2300, "starts not uniform: min %d max %d of 2000", lo, hi);
        sp_data_close(&tk);
    }

    /* n = T+1: the only window starts at 0 */
    if (open_iota(&tk, "tiny.bin", T + 1) == SP_OK) {
        int nonzero = 0;
        for (uint64_t k = 0; k < 1000; k++) {
            sp_data_train_sample(&tk, k * 7919, k, k, T, a, b);
            nonzero += a[0] != 0 || b[T - 1] != T;
        }
        tu_check(t, nonzero == 0, "n = T+1: %d windows not at start 0", nonzero);
        sp_err err = {0};
        tu_check(t, sp_data_check_context(&tk, T, &err) == SP_OK, "n = T+1 fits context T");
        tu_check(t, sp_data_check_context(&tk, T + 1, &err) == SP_EINPUT, "n = T+1, ctx T+1");
        tu_check(t, sp_data_num_windows(&tk, T) == 1, "n = T+1 has one eval window");
        sp_data_close(&tk);
    }
}

static void test_eval_windows(tu_ctx *t) {
    enum { T = 8 };
    int32_t a[T], b[T];
    sp_tokens tk;
    if (open_iota(&tk, "eval.bin", 100) != SP_OK) {
        tu_check(t, 0, "cannot make eval.bin");
        return;
    }
    tu_check(t, sp_data_num_windows(&tk, T) == 12, "num_windows(100, 8) = %lld, expected 12",
             (long long)sp_data_num_windows(&tk, T));
    tu_check(t, sp_data_num_windows(&tk, 99) == 1 && sp_data_num_windows(&tk, 100) == 0,
             "num_windows at T = n-1, n");
    tu_check(t, sp_data_num_windows(&tk, 0) == 0, "num_windows(T=0)");
    int bad = 0;
    for (uint64_t w = 0; w < 12; w++) {
        sp_data_eval_window(&tk, w, T, a, b);
        for (int j = 0; j < T; j++)
            bad += a[j] != (int32_t)(w * T + j) || b[j] != (int32_t)(w * T + j + 1);
    }
    tu_check(t, bad == 0, "%d eval positions break inp = tok[iT+j], tgt = tok[iT+j+1]", bad);
    sp_data_close(&tk);
    if (open_iota(&tk, "eval97.bin", 97) == SP_OK) {
        /* (97-1)/8 = 12: the last window's last target is token 96, the file's last */
        tu_check(t, sp_data_num_windows(&tk, T) == 12, "num_windows(97, 8)");
        sp_data_eval_window(&tk, 11, T, a, b);
        tu_check(t, b[T - 1] == 96, "last target %d, expected 96", b[T - 1]);
        sp_data_close(&tk);
    }
}

/* ---- Brown preparation on a synthetic corpus ----
 * It mimics the package's format: tab-indented paragraph starts, continuation sentences on
 * the next line, headlines (-hl), and its doubled ? ! ; : and inch marks. */

static const char *k_doc1 =
    "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd ``/`` no/at "
    "evidence/nn ''/'' was/bedz found/vbn ./.\n\n\n"
    "\tIt/pps urged/vbd (/( 1/cd )/) reforms/nns ;/. Atlanta's/np$ mayor/nn agreed/vbd ./.\n"
    "He/pps did/dod n't/* object/vb ,/, and/cc neither/cc did/dod the/at jury/nn ./.\n\n\n\n"
    "Merger/nn-hl proposed/vbn-hl \n"
    "However/wrb ,/, the/at jury/nn said/vbd :/: ``/`` these/dts two/cd offices/nns should/md "
    "be/be combined/vbn ''/'' ./.\n\n\n"
    "\tThe/at table/nn shows/vbz \n\n\n./.\n";
static const char *k_text1 =
    "The Fulton County Grand Jury said \"no evidence\" was found.\n\n"
    "It urged (1) reforms; Atlanta's mayor agreed. He didn't object, and neither did the jury.\n\n"
    "Merger proposed\n\n"
    "However, the jury said: \"these two offices should be combined\".\n\n"
    "The table shows.\n\n";
static const char *k_doc2 =
    "\tMix/vb 1/2/cd cup/nn of/in flour/nn and/or/cc sugar/nn --/-- slowly/rb !/.\n\n\n"
    "\t``/`` We're/ppss+ber getting/vbg more/ap '/' pro/jj '/' letters/nns ''/'' ,/, he/pps "
    "said/vbd ./.\nWho/wps ca/md n't/* ?/. ?/.\nHe/pps lives/vbz in/in Opelika/np ,/, Ala./np "
    "./.\nCut/vb a/at 10''/nns ''/'' board/nn ;/. ;/. fine/jj !/. !/.\n\n\n"
    "``/`` Must/md-hl solve/vb-hl problem/nn-hl ''/'' \n"
    "\tAnd/cc so/rb the/at story/nn ends/vbz ./.\n\n\n"
    "Robby/np-hl could/md-hl be/be-hl better/jjr-hl \n./.-hl\nBrooks/np is/bez great/jj ./.\n";
static const char *k_text2 =
    "Mix 1/2 cup of flour and/or sugar -- slowly!\n\n"
    "\"We're getting more 'pro' letters\", he said. Who can't? He lives in "
    "Opelika, Ala. Cut a 10'' board; fine!\n\n"
    "\"Must solve problem\"\n\n"
    "And so the story ends.\n\n"
    "Robby could be better.\n\n"
    "Brooks is great.\n\n";

static void check_split_text(tu_ctx *t, const char *what, const char *out, const char *train,
                             const char *val) {
    char p[1024];
    snprintf(p, sizeof p, "%s/train.bin", out);
    char *tr = read_text(p, NULL);
    snprintf(p, sizeof p, "%s/val.bin", out);
    char *va = read_text(p, NULL);
    tu_check(t, tr && strcmp(tr, train) == 0, "%s: train text\n--- got ---\n%s--- expected ---\n%s",
             what, tr ? tr : "(none)", train);
    tu_check(t, va && strcmp(va, val) == 0, "%s: val text\n--- got ---\n%s--- expected ---\n%s",
             what, va ? va : "(none)", val);
    free(tr);
    free(va);
}

static void test_brown_synthetic(tu_ctx *t) {
    const char *dir = tmp_path("brown");
    char p[1024];
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/ca01", dir), write_str(p, k_doc1);
    snprintf(p, sizeof p, "%s/ca02", dir), write_str(p, k_doc2);
    /* not documents: ignored */
    snprintf(p, sizeof p, "%s/README", dir), write_str(p, "BROWN CORPUS/nn\n");
    snprintf(p, sizeof p, "%s/CONTENTS", dir), write_str(p, "x/y\n");
    snprintf(p, sizeof p, "%s/cs01", dir), write_str(p, "genre/nn s/nn\n");
    snprintf(p, sizeof p, "%s/ca1x", dir), write_str(p, "junk/nn\n");

    sp_log quiet = {0, 1};
    sp_err err = {0};
    sp_prepare_stats st;
    const char *out = tmp_path("brown_out/nested");
    /* F = 0.5: document 0 to train, document 1 to val */
    int rc = sp_prepare_brown_ex(dir, out, 0.5, NULL, &quiet, &st, &err);
    tu_check(t, rc == SP_OK, "prepare brown: %s", err.msg);
    tu_check(t, st.docs == 2 && st.train_docs == 1 && st.val_docs == 1,
             "documents %lld (%lld train, %lld val), expected 2 (1, 1)", (long long)st.docs,
             (long long)st.train_docs, (long long)st.val_docs);
    tu_check(t, st.train_bytes == strlen(k_text1) && st.val_bytes == strlen(k_text2),
             "byte counts %llu/%llu", (unsigned long long)st.train_bytes,
             (unsigned long long)st.val_bytes);
    check_split_text(t, "brown", out, k_text1, k_text2);

    /* with cats.txt, its list wins over the directory scan (cb01 is not listed) */
    snprintf(p, sizeof p, "%s/cb01", dir), write_str(p, "Unlisted/np ./.\n");
    snprintf(p, sizeof p, "%s/cats.txt", dir), write_str(p, "ca02 news\nca01 news\n");
    rc = sp_prepare_brown_ex(dir, out, 0.5, NULL, &quiet, &st, &err);
    tu_check(t, rc == SP_OK && st.docs == 2, "prepare with cats.txt: %s (docs %lld)", err.msg,
             (long long)st.docs);
    check_split_text(t, "brown cats.txt", out, k_text1, k_text2);

    /* errors name DIR */
    const char *missing = tmp_path("no_such_dir");
    rc = sp_prepare_brown(missing, out, 0.05, &quiet, &err);
    expect_input_err(t, "brown missing dir", rc, &err, missing, NULL);
    const char *nodocs = tmp_path("nodocs");
    mkdir(nodocs, 0755);
    snprintf(p, sizeof p, "%s/README", nodocs), write_str(p, "nothing here\n");
    rc = sp_prepare_brown(nodocs, out, 0.05, &quiet, &err);
    expect_input_err(t, "brown no documents", rc, &err, nodocs, "no Brown documents");
    const char *empty = tmp_path("emptydocs");
    mkdir(empty, 0755);
    snprintf(p, sizeof p, "%s/ca01", empty), write_str(p, "\n\n\n");
    snprintf(p, sizeof p, "%s/ca02", empty), write_str(p, "");
    rc = sp_prepare_brown(empty, out, 0.05, &quiet, &err);
    expect_input_err(t, "brown empty corpus", rc, &err, empty, "empty");
    rc = sp_prepare_brown(dir, out, 0.0, &quiet, &err);
    tu_check(t, rc == SP_EINPUT, "val fraction 0 accepted");
    rc = sp_prepare_brown(dir, out, 0.6, &quiet, &err);
    tu_check(t, rc == SP_EINPUT, "val fraction 0.6 accepted");
}

/* random bytes in the corpus' alphabet: prepare must not overrun its buffers (ASan build) */
static void test_brown_garbage(tu_ctx *t) {
    static const char alpha[] = "ab/ /\t\n\n-hl.,;?`'()x";
    const char *dir = tmp_path("garbage");
    mkdir(dir, 0755);
    char p[1024], *doc = malloc(20000);
    for (int d = 0; d < 4; d++) {
        for (int i = 0; i < 20000; i++)
            doc[i] = alpha[sp_rng_u64(d, SP_RNG_TEST, 1, i) % (sizeof alpha - 1)];
        snprintf(p, sizeof p, "%s/cb%02d", dir, d);
        write_file(p, doc, 20000);
    }
    free(doc);
    sp_log quiet = {0, 1};
    sp_err err = {0};
    sp_prepare_stats st;
    int rc = sp_prepare_brown_ex(dir, tmp_path("garbage_out"), 0.5, NULL, &quiet, &st, &err);
    tu_check(t, rc == SP_OK && st.docs == 4, "garbage corpus: %s", err.msg);
    tu_check(t, st.train_bytes + st.val_bytes < 4 * 20000 * 4, "garbage output too large");
}

static void test_split(tu_ctx *t) {
    /* the formula: F = 0.05 over 500 documents puts 19, 39, ..., 499 in val */
    int nval = 0, wrong = 0;
    for (uint64_t i = 0; i < 500; i++) {
        int v = sp_prepare_is_val(i, 0.05);
        nval += v;
        wrong += v != (i % 20 == 19);
    }
    tu_check(t, nval == 25 && wrong == 0, "F=0.05: %d val documents, %d misplaced", nval, wrong);
    wrong = 0;
    for (uint64_t i = 0; i < 100; i++) wrong += sp_prepare_is_val(i, 0.5) != (int)(i % 2);
    tu_check(t, wrong == 0, "F=0.5: %d misplaced", wrong);

    /* through prepare: ten one-word documents, F = 0.2 -> ca05 and ca10 in val */
    const char *dir = tmp_path("split");
    mkdir(dir, 0755);
    char p[1024], word[64];
    for (int d = 1; d <= 10; d++) {
        snprintf(p, sizeof p, "%s/ca%02d", dir, d);
        snprintf(word, sizeof word, "\tDoc%d/np ./.\n", d);
        write_str(p, word);
    }
    sp_log quiet = {0, 1};
    sp_err err = {0};
    sp_prepare_stats st;
    const char *out = tmp_path("split_out");
    int rc = sp_prepare_brown_ex(dir, out, 0.2, NULL, &quiet, &st, &err);
    tu_check(t, rc == SP_OK && st.val_docs == 2, "split prepare: %s", err.msg);
    check_split_text(t, "split", out,
                     "Doc1.\n\nDoc2.\n\nDoc3.\n\nDoc4.\n\nDoc6.\n\nDoc7.\n\nDoc8.\n\nDoc9.\n\n",
                     "Doc5.\n\nDoc10.\n\n");
    /* too few documents for a val split */
    rc = sp_prepare_brown(dir, out, 0.05, &quiet, &err);
    expect_input_err(t, "val split empty", rc, &err, dir, NULL);
}

/* ---- text preparation ---- */

static void test_text(tu_ctx *t) {
    char a[200 * 32 + 1] = "", b[1000];
    for (int i = 0; i < 200; i++) {
        char line[40];
        snprintf(line, sizeof line, "line %03d of the first file%s\n", i, i % 3 ? "" : "!");
        strcat(a, line);
    }
    for (int i = 0; i < 1000; i++) b[i] = (char)('a' + i % 26);
    const char *fa = tmp_path("a.txt"), *fb = tmp_path("b.txt");
    write_str(fa, a);
    write_file(fb, b, sizeof b);
    size_t na = strlen(a);

    const char *files[2] = {fa, fb};
    sp_log quiet = {0, 1};
    sp_err err = {0};
    sp_prepare_stats st;
    const char *out = tmp_path("text_out");
    int rc = sp_prepare_text_ex(files, 2, out, 0.1, NULL, &quiet, &st, &err);
    tu_check(t, rc == SP_OK, "prepare text: %s", err.msg);
    char path[1024];
    size_t ntr = 0, nva = 0;
    snprintf(path, sizeof path, "%s/train.bin", out);
    char *tr = read_text(path, &ntr);
    snprintf(path, sizeof path, "%s/val.bin", out);
    char *va = read_text(path, &nva);
    if (tr && va) {
        /* file a: cut just after a newline at or before na - floor(0.1 na), within 1% */
        size_t nominal = na - (size_t)(na * 0.1), cut = ntr - 900;
        tu_check(t, ntr + nva == na + 1000, "bytes %zu + %zu, expected %zu", ntr, nva, na + 1000);
        tu_check(t, cut <= nominal && nominal - cut < na / 100, "cut %zu, nominal %zu", cut,
                 nominal);
        tu_check(t, a[cut - 1] == '\n', "file a not cut after a newline");
        tu_check(t, memcmp(tr, a, cut) == 0 && memcmp(va, a + cut, na - cut) == 0,
                 "file a split differs");
        /* file b has no newline: the last 100 bytes exactly */
        tu_check(t, memcmp(tr + cut, b, 900) == 0 && memcmp(va + (na - cut), b + 900, 100) == 0,
                 "file b split is not its last 10%% exactly");
    } else {
        tu_check(t, 0, "text output unreadable");
    }
    free(tr);
    free(va);

    const char *missing = tmp_path("missing.txt");
    const char *f2[2] = {fa, missing};
    rc = sp_prepare_text(f2, 2, out, 0.1, &quiet, &err);
    expect_input_err(t, "text missing file", rc, &err, missing, NULL);
    const char *empty = tmp_path("empty.txt");
    write_str(empty, "");
    const char *f3[2] = {empty, fa};
    rc = sp_prepare_text(f3, 2, out, 0.1, &quiet, &err);
    expect_input_err(t, "text empty file", rc, &err, empty, "empty");
    rc = sp_prepare_text(files, 2, out, 0.51, &quiet, &err);
    tu_check(t, rc == SP_EINPUT, "text: val fraction 0.51 accepted");
}

/* ---- the real corpus ---- */

static int looks_like_tag_left(const char *s, size_t n) {
    static const char *const tags[] = {"at", "nn", "nns", "in", "jj",    "vbd",   "vb", "np", "cc",
                                       "rb", "cs", "pps", "dt", "nn-tl", "np-tl", "md", "be"};
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '/') continue;
        for (size_t k = 0; k < sizeof tags / sizeof tags[0]; k++) {
            size_t L = strlen(tags[k]);
            if (i + 1 + L < n && strncmp(s + i + 1, tags[k], L) == 0 &&
                (s[i + 1 + L] == ' ' || s[i + 1 + L] == '\n'))
                return 1;
        }
    }
    return 0;
}

static void test_brown_real(tu_ctx *t) {
    const char *dir = getenv("SPROUT_BROWN_DIR");
    if (!dir || !*dir) {
        printf("note: SPROUT_BROWN_DIR is not set; skipping the real Brown corpus checks\n");
        return;
    }
    sp_log log = {0, 0};
    sp_err err = {0};
    sp_prepare_stats st;
    const char *out = tmp_path("real");
    double t0 = sp_now();
    int rc = sp_prepare_brown_ex(dir, out, 0.05, NULL, &log, &st, &err);
    double dt = sp_now() - t0;
    tu_check(t, rc == SP_OK, "prepare real brown: %s", err.msg);
    if (rc != SP_OK) return;
    printf("brown: prepared in %.3f s\n", dt);
    tu_check(t, dt < 10.0, "prepare took %.1f s", dt);
    tu_check(t, st.docs == 500 && st.val_docs == 25, "documents %lld (val %lld), expected 500 (25)",
             (long long)st.docs, (long long)st.val_docs);
    double frac = (double)st.val_bytes / (double)(st.train_bytes + st.val_bytes);
    tu_check(t, frac >= 0.03 && frac <= 0.08, "val byte fraction %.4f outside [0.03, 0.08]", frac);

    char path[1024];
    size_t ntr = 0, nva = 0;
    snprintf(path, sizeof path, "%s/train.bin", out);
    char *tr = read_text(path, &ntr);
    snprintf(path, sizeof path, "%s/val.bin", out);
    char *va = read_text(path, &nva);
    if (!tr || !va) {
        tu_check(t, 0, "real output unreadable");
        free(tr);
        free(va);
        return;
    }
    tu_check(t, strstr(tr, "The Fulton County Grand Jury said Friday") != NULL,
             "train lacks the first sentence of ca01");
    tu_check(t, !looks_like_tag_left(tr, ntr) && !looks_like_tag_left(va, nva),
             "a /tag is left in the text");
    tu_check(t, !strstr(tr, "``") && !strstr(va, "``"), "a `` quote is left in the text");
    /* every '/' in the output is one a word had in the corpus: count them on both sides */
    uint64_t src_slashes = 0, out_slashes = 0;
    for (int d = 0; d < 18; d++)
        for (int k = 0; k < 100; k++) {
            snprintf(path, sizeof path, "%s/c%c%02d", dir, 'a' + d, k);
            char *s = slurp(path, NULL);
            if (!s) continue;
            for (char *tk = strtok(s, " \t\r\n"); tk; tk = strtok(NULL, " \t\r\n")) {
                int c = 0;
                for (char *q = tk; *q; q++) c += *q == '/';
                src_slashes += c > 0 ? (uint64_t)(c - 1) : 0;
            }
            free(s);
        }
    int bad_chars = 0;
    for (size_t i = 0; i < ntr; i++) {
        out_slashes += tr[i] == '/';
        bad_chars += (tr[i] < 32 || tr[i] > 126) && tr[i] != '\n';
    }
    for (size_t i = 0; i < nva; i++) out_slashes += va[i] == '/';
    tu_check(t, src_slashes == out_slashes, "output has %llu '/', the corpus words have %llu",
             (unsigned long long)out_slashes, (unsigned long long)src_slashes);
    tu_check(t, bad_chars == 0, "%d tabs or control characters in the text", bad_chars);
    tu_check(t, !strstr(tr, "\n\n\n") && !strstr(tr, "  "), "triple newline or double space");
    tu_check(t, ntr >= 2 && tr[ntr - 1] == '\n' && tr[ntr - 2] == '\n',
             "train does not end \\n\\n");
    printf("brown sample:\n%.600s\n", tr);
    free(tr);
    free(va);
}

/* The stratified subset: n distinct windows, the j-th inside the j-th of n equal strata, the
 * identity for the whole file, and independent of everything but (avail, n). */
static void test_eval_pick(tu_ctx *t) {
    static const int64_t avails[] = {1, 7, 128, 1000, 12345, 40000000000LL};
    for (size_t a = 0; a < sizeof avails / sizeof avails[0]; a++) {
        int64_t avail = avails[a];
        int64_t ns[] = {1, 2, 3, avail < 128 ? avail : 128, avail < 999 ? avail : 999, avail};
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            int64_t n = ns[k], bad = 0;
            if (n > avail) n = avail;   /* callers never ask for more windows than there are */
            if (n > 100000) n = 100000; /* the big file: a large subset, not all of it */
            uint64_t prev = 0;
            for (int64_t j = 0; j < n; j++) {
                uint64_t w = sp_data_eval_pick(avail, n, j);
                /* stratum j is [j*avail/n, (j+1)*avail/n) in real numbers */
                long double lo = (long double)j * avail / n, hi = (long double)(j + 1) * avail / n;
                if ((long double)w < lo - 1 || (long double)w >= hi || w >= (uint64_t)avail ||
                    (j > 0 && w <= prev))
                    bad++;
                if (n == avail && w != (uint64_t)j) bad++;
                prev = w;
            }
            tu_check(t, bad == 0,
                     "eval pick: avail %lld n %lld: %lld windows out of their stratum, "
                     "repeated or not the identity",
                     (long long)avail, (long long)n, (long long)bad);
        }
    }
    /* 128 of Brown's ~9000 validation windows reach its last document, not just its first */
    tu_check(t, sp_data_eval_pick(9000, 128, 127) > 8900, "the subset does not reach the end");
}

int main(void) {
    tu_ctx t = {0};
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sprout_data_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_roundtrip(&t);
    test_bad_files(&t);
    test_hostile_files(&t);
    test_sampling(&t);
    test_eval_windows(&t);
    test_eval_pick(&t);
    test_brown_synthetic(&t);
    test_brown_garbage(&t);
    test_split(&t);
    test_text(&t);
    test_brown_real(&t);
    rm_rf(g_tmp);
    return tu_finish(&t, "data");
}
