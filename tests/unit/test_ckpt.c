/* Checkpoint round trip (weights, moments, steps, train state), extra weight-only models
 * (V-cycle levels), the tokenizer (/tokenizer), and corruption detection. */
#include "sprout/ckpt.h"
#include "sprout/tokenizer.h"
#include "testutil.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const sp_spec k_spec = {13, 6, 8, 2, 32, 3, 0, 0, 0, 0};

static void fill(sp_model *m) {
    sp_model_init(m, 3);
    for (size_t i = 0; i < m->numel; i++) {
        m->m[i] = sp_rng_uniform(4, SP_RNG_TEST, 0, i);
        m->v[i] = sp_rng_uniform(4, SP_RNG_TEST, 1, i);
    }
    for (int i = 0; i <= m->hi - m->lo; i++) m->steps[i] = 10 + (uint64_t)i;
}

/* flips one byte inside the named tensor's data (found by its float pattern in the file) */
static int flip_tensor_byte(const char *path, const float *data, size_t n) {
    int fd = open(path, O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) return -1;
    unsigned char *buf = malloc((size_t)st.st_size);
    if (read(fd, buf, (size_t)st.st_size) != st.st_size) return -1;
    size_t len = n * sizeof(float) < 64 ? n * sizeof(float) : 64;
    long at = -1;
    for (long i = 0; i + (long)len <= st.st_size; i++)
        if (!memcmp(buf + i, data, len)) {
            at = i;
            break;
        }
    int rc = -1;
    if (at >= 0) {
        unsigned char b = buf[at + 5] ^ 0x40;
        rc = pwrite(fd, &b, 1, at + 5) == 1 ? 0 : -1;
    }
    free(buf);
    close(fd);
    return rc;
}

/* flips one byte inside dataset dpath's data, found through its file offset (contiguous layout) */
static int flip_dataset_byte(const char *path, const char *dpath, long at) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
    haddr_t off = d < 0 ? HADDR_UNDEF : H5Dget_offset(d);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    if (off == HADDR_UNDEF) return -1;
    int fd = open(path, O_RDWR);
    unsigned char b;
    int rc = fd >= 0 && pread(fd, &b, 1, (off_t)off + at) == 1 ? 0 : -1;
    b ^= 0x40;
    if (rc == 0) rc = pwrite(fd, &b, 1, (off_t)off + at) == 1 ? 0 : -1;
    if (fd >= 0) close(fd);
    return rc;
}

static int copy_file(const char *from, const char *to) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp %s %s", from, to);
    return system(cmd);
}

/* Header attributes and the expected dataset list: a changed /train step or /spec field is
 * refused by every reader and by verify (naming the object), a deleted dataset is MISSING, an
 * added one UNEXPECTED, and the lineage attributes round-trip. */
static void test_header(tu_ctx *t, const char *dir, const char *good) {
    sp_err err = {0};
    sp_spec s;
    sp_train_state st;
    int rc = sp_ckpt_read_header(good, &s, &st, &err);
    tu_check(t,
             rc == 0 && !strcmp(st.run_id, "00c0ffee00c0ffee") && st.parent_step == 30 &&
                 !strcmp(st.parent_run, "0123456789abcdef"),
             "lineage round trip: %s", err.msg);
    static const struct {
        const char *obj, *attr, *named;
        int kind; /* 0: change an int64 attribute, 1: delete a dataset, 2: add one */
    } cases[] = {
        {"train", "step", "/train", 0},
        {"train", "data_cursor", "/train", 0},
        {"spec", "d_ff", "/spec", 0},
        {"optim/v/transformer.h.1.ln_2.bias", NULL, "optim/v/transformer.h.1.ln_2.bias", 1},
        {"model/extra", NULL, "model/extra", 2}};
    char bad[300];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(bad, sizeof bad, "%s/hdr%zu.h5", dir, i);
        tu_check(t, copy_file(good, bad) == 0, "cp");
        hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
        int64_t v = 7;
        if (cases[i].kind == 0) {
            /* through the group: HDF5 1.10 cannot write an attribute opened by path */
            hid_t g = H5Gopen2(f, cases[i].obj, H5P_DEFAULT);
            hid_t a = H5Aopen(g, cases[i].attr, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_INT64, &v);
            H5Aclose(a);
            H5Gclose(g);
        } else if (cases[i].kind == 1)
            H5Ldelete(f, cases[i].obj, H5P_DEFAULT);
        else {
            hsize_t n = 1;
            hid_t sp = H5Screate_simple(1, &n, NULL);
            H5Dclose(H5Dcreate2(f, cases[i].obj, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT));
            H5Sclose(sp);
        }
        H5Fclose(f);
        rc = sp_ckpt_verify(bad, NULL, &err);
        tu_check(t, rc == SP_EINPUT && strstr(err.msg, cases[i].named), "verify missed %s: %s",
                 cases[i].named, err.msg);
        if (cases[i].kind == 0) {
            rc = sp_ckpt_read_header(bad, &s, &st, &err);
            tu_check(t,
                     rc == SP_EINPUT && strstr(err.msg, cases[i].named) &&
                         strstr(err.msg, "CRC-MISMATCH"),
                     "read_header accepted a changed %s.%s: %s", cases[i].obj, cases[i].attr,
                     err.msg);
        }
    }
}

/* A live model plus two extra models of other specs (one wider, one deeper), as V-cycle saves
 * them: specs and weights round-trip bitwise, verify covers the extra groups and slab_steps,
 * and damage or absence is reported naming the tensor or group. */
static void test_extras(tu_ctx *t, const char *dir, const sp_model *a, const sp_train_state *st) {
    sp_err err = {0};
    char path[256], bad[256];
    snprintf(path, sizeof path, "%s/extra.h5", dir);
    const sp_spec wide = {13, 6, 16, 4, 64, 3, 0, 0, 0, 0}, deep = {13, 6, 8, 2, 32, 5, 0, 0, 0, 0};
    sp_model w, d;
    tu_check(t, !sp_model_create(&w, &wide, 0, wide.n_layer, 1, 1, &err), "create wide");
    tu_check(t, !sp_model_create(&d, &deep, 0, deep.n_layer, 1, 1, &err), "create deep");
    sp_model_init(&w, 7);
    sp_model_init(&d, 8);
    sp_ckpt_extra ex[2] = {{"vcycle/level_1", &w}, {"vcycle/level_2", &d}};
    int rc = sp_ckpt_save_ex(path, a, 1, st, "x: 1\n", ex, 2, MPI_COMM_WORLD, &err);
    tu_check(t, rc == 0, "save with extras: %s", err.msg);

    sp_spec s1, s2;
    rc = sp_ckpt_read_extra_spec(path, "vcycle/level_1", &s1, &err) |
         sp_ckpt_read_extra_spec(path, "vcycle/level_2", &s2, &err);
    tu_check(t, rc == 0 && !memcmp(&s1, &wide, sizeof s1) && !memcmp(&s2, &deep, sizeof s2),
             "extra specs round trip: %s", err.msg);
    sp_spec live;
    rc = sp_ckpt_read_header(path, &live, NULL, &err);
    tu_check(t, rc == 0 && !memcmp(&live, &a->spec, sizeof live), "live spec beside extras");

    /* whole stages read back bitwise */
    sp_model w2, d2, d3;
    sp_model_create(&w2, &s1, 0, s1.n_layer, 1, 1, &err);
    sp_model_create(&d2, &s2, 0, s2.n_layer, 1, 1, &err);
    rc = sp_ckpt_load_extra(path, "vcycle/level_1", &w2, &err);
    tu_check(t, rc == 0 && !memcmp(w.params, w2.params, w.numel * sizeof(float)),
             "wide extra params differ after load: %s", err.msg);
    rc = sp_ckpt_load_extra(path, "vcycle/level_2", &d2, &err);
    tu_check(t, rc == 0 && !memcmp(d.params, d2.params, d.numel * sizeof(float)),
             "deep extra params differ after load: %s", err.msg);
    /* a later stage of the deeper model (blocks [2,5), head only) reads exactly its slabs */
    sp_model_create(&d3, &s2, 2, 5, 0, 1, &err);
    rc = sp_ckpt_load_extra(path, "vcycle/level_2", &d3, &err);
    tu_check(t, rc == 0, "load a stage of the deep extra: %s", err.msg);
    for (int k = 2; k < 5; k++)
        tu_check(t,
                 !memcmp(sp_model_block(&d, d.params, k), sp_model_block(&d3, d3.params, k),
                         d.block_numel * sizeof(float)),
                 "deep extra block %d differs after a stage load", k);
    tu_check(t, !memcmp(d.params, d3.params, d.global_numel * sizeof(float)),
             "deep extra globals differ after a stage load");

    /* the live model is untouched by the extras (weights, moments, steps) */
    sp_model b;
    sp_model_create(&b, &a->spec, 0, a->spec.n_layer, 1, 1, &err);
    rc = sp_ckpt_load(path, &b, 1, &err);
    tu_check(t,
             rc == 0 && !memcmp(a->params, b.params, a->numel * sizeof(float)) &&
                 !memcmp(a->v, b.v, a->numel * sizeof(float)) &&
                 !memcmp(a->steps, b.steps, (size_t)(a->hi - a->lo + 1) * sizeof *a->steps),
             "live model differs when saved with extras: %s", err.msg);

    /* verify visits the extra groups and slab_steps and prints them with their group */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    rc = sp_ckpt_verify(path, mem, &err);
    fclose(mem);
    tu_check(t, rc == 0, "verify of a good file with extras: %s", err.msg);
    tu_check(t,
             text && strstr(text, "vcycle/level_1 transformer.h.2.attn.c_attn.weight") &&
                 strstr(text, "[16, 48]") && strstr(text, "transformer.h.4.mlp.c_proj.bias") &&
                 strstr(text, "slab_steps"),
             "verify output lacks the extra groups or slab_steps:\n%s", text ? text : "");
    free(text);

    /* a wrong spec, a missing group, invalid groups */
    rc = sp_ckpt_load_extra(path, "vcycle/level_1", &d2, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "spec") && strstr(err.msg, "d_model"),
             "extra spec mismatch accepted: %s", err.msg);
    rc = sp_ckpt_read_extra_spec(path, "vcycle/level_9", &s1, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "vcycle/level_9"), "missing group not named: %s",
             err.msg);
    rc = sp_ckpt_load_extra(path, "vcycle/level_9", &w2, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "vcycle/level_9"),
             "missing group not named by load: %s", err.msg);
    const char *invalid[4][2] = {{"model/x", "vcycle/a"},
                                 {"vcycle/a", "vcycle/a"},
                                 {"vcycle", "vcycle/a"},
                                 {"vcycle//a", "b"}};
    snprintf(bad, sizeof bad, "%s/invalid.h5", dir);
    for (int i = 0; i < 4; i++) {
        sp_ckpt_extra e2[2] = {{invalid[i][0], &w}, {invalid[i][1], &d}};
        rc = sp_ckpt_save_ex(bad, a, 1, st, "", e2, 2, MPI_COMM_WORLD, &err);
        tu_check(t, rc == SP_EINPUT && access(bad, F_OK) != 0, "invalid groups %s, %s accepted",
                 invalid[i][0], invalid[i][1]);
    }

    /* an extra with blocks no rank holds would be saved as zeros: refused, naming the block */
    sp_model part;
    sp_model_create(&part, &wide, 0, 1, 1, 0, &err);
    sp_ckpt_extra e3 = {"vcycle/part", &part};
    rc = sp_ckpt_save_ex(bad, a, 1, st, "", &e3, 1, MPI_COMM_WORLD, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "block 1 of /vcycle/part") && access(bad, F_OK),
             "an extra with unheld blocks was saved: %s", err.msg);
    sp_model_free(&part);

    /* a flipped byte in an extra tensor: verify names its path, load_extra refuses it */
    snprintf(bad, sizeof bad, "%s/extra_bad.h5", dir);
    tu_check(t, copy_file(path, bad) == 0, "cp");
    const char *victim = "vcycle/level_2/transformer.h.4.mlp.c_fc.weight";
    tu_check(t, flip_dataset_byte(bad, victim, 5) == 0, "flip a byte of %s", victim);
    rc = sp_ckpt_verify(bad, NULL, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, victim) && strstr(err.msg, "CRC-MISMATCH"),
             "verify missed the flipped extra tensor: %s", err.msg);
    rc = sp_ckpt_load_extra(bad, "vcycle/level_2", &d2, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, victim) && strstr(err.msg, "crc32"),
             "load_extra accepted a corrupt tensor: %s", err.msg);
    rc = sp_ckpt_load_extra(bad, "vcycle/level_1", &w2, &err);
    tu_check(t, rc == 0, "the intact extra no longer loads: %s", err.msg);

    /* a flipped byte in optim/slab_steps: verify and a load with moments catch it */
    snprintf(bad, sizeof bad, "%s/steps_bad.h5", dir);
    tu_check(t, copy_file(path, bad) == 0, "cp");
    tu_check(t, flip_dataset_byte(bad, "optim/slab_steps", 8) == 0, "flip a slab_steps byte");
    rc = sp_ckpt_verify(bad, NULL, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "optim/slab_steps"),
             "verify missed the slab_steps damage: %s", err.msg);
    rc = sp_ckpt_load(bad, &b, 1, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "optim/slab_steps") && strstr(err.msg, "crc32"),
             "load accepted corrupt slab_steps: %s", err.msg);
    rc = sp_ckpt_load(bad, &b, 0, &err);
    tu_check(t, rc == 0, "weights-only load reads slab_steps: %s", err.msg);

    sp_model_free(&w), sp_model_free(&d), sp_model_free(&w2), sp_model_free(&d2);
    sp_model_free(&d3), sp_model_free(&b);
}

/* /tokenizer: absent (a file from before it) reads as bytes; bytes and gpt2 round-trip, the
 * files byte for byte; verify checks them; a flipped byte in a file is named. */
static void test_tokenizer(tu_ctx *t, const char *dir, const char *legacy, const sp_model *a,
                           const sp_train_state *st) {
    sp_err err = {0};
    sp_tok_files f;
    int rc = sp_ckpt_read_tokenizer(legacy, &f, &err);
    tu_check(t, rc == SP_OK && f.kind == sp_tok_find("bytes") && !f.file[0].p,
             "a file without /tokenizer reads as bytes: %s", err.msg);
    char path[300];
    snprintf(path, sizeof path, "%s/tok_bytes.h5", dir);
    sp_tok_files bytes = {.kind = sp_tok_find("bytes")};
    rc = sp_ckpt_save_tok(path, a, 1, st, "", NULL, 0, &bytes, MPI_COMM_WORLD, &err);
    rc = rc ? rc : sp_ckpt_read_tokenizer(path, &f, &err);
    tu_check(t, rc == SP_OK && f.kind == bytes.kind, "bytes round trip: %s", err.msg);
    tu_check(t, sp_ckpt_verify(path, NULL, &err) == SP_OK, "verify (bytes): %s", err.msg);

    /* the files are kept as bytes, whatever they hold (here not a vocabulary at all) */
    static const char enc[] = "{\"a\": 0}", bpe[] = "#version: 0.2\n\x00\xff binary\n";
    sp_tok_files g = {.kind = sp_tok_find("gpt2"),
                      .file = {{enc, sizeof enc - 1}, {bpe, sizeof bpe - 1}}};
    snprintf(path, sizeof path, "%s/tok_gpt2.h5", dir);
    rc = sp_ckpt_save_tok(path, a, 1, st, "", NULL, 0, &g, MPI_COMM_WORLD, &err);
    rc = rc ? rc : sp_ckpt_read_tokenizer(path, &f, &err);
    tu_check(t, rc == SP_OK && sp_tok_files_equal(&f, &g), "gpt2 files round trip: %s", err.msg);
    if (!rc) sp_tok_files_free(&f);
    tu_check(t, sp_ckpt_verify(path, NULL, &err) == SP_OK, "verify (gpt2): %s", err.msg);
    tu_check(t, flip_dataset_byte(path, "tokenizer/vocab.bpe", 16) == 0, "flip a byte");
    rc = sp_ckpt_read_tokenizer(path, &f, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "tokenizer/vocab.bpe fails its crc32"),
             "a damaged vocabulary file is named: %s", err.msg);
    rc = sp_ckpt_verify(path, NULL, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "vocab.bpe: CRC-MISMATCH"),
             "verify names the damaged file: %s", err.msg);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    tu_ctx t = {0};
    char dir[] = "/tmp/sp_ckpt_XXXXXX", path[256];
    tu_check(&t, mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/a.h5", dir);

    sp_err err = {0};
    sp_model a, b;
    sp_model_create(&a, &k_spec, 0, k_spec.n_layer, 1, 1, &err);
    fill(&a);
    sp_train_state st = {.step = 42,
                         .tokens = 4200,
                         .flops = 1.5e12,
                         .growth_index = 1,
                         .seed = 99,
                         .data_cursor = 42,
                         .lr = 3e-4,
                         .wallclock = 12.5,
                         .run_id = "00c0ffee00c0ffee",
                         .parent_run = "0123456789abcdef",
                         .parent_step = 30};
    int rc = sp_ckpt_save(path, &a, 1, &st, "model: {n_layer: 3}\n", MPI_COMM_WORLD, &err);
    tu_check(&t, rc == 0, "save: %s", err.msg);
    tu_check(&t, access(path, F_OK) == 0, "checkpoint file missing after save");
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    tu_check(&t, access(tmp, F_OK) != 0, "temporary file left behind");

    sp_spec s2;
    sp_train_state st2;
    rc = sp_ckpt_read_header(path, &s2, &st2, &err);
    tu_check(&t, rc == 0 && !memcmp(&s2, &k_spec, sizeof s2), "spec round trip: %s", err.msg);
    tu_check(&t,
             st2.step == 42 && st2.tokens == 4200 && st2.seed == 99 && st2.lr == 3e-4 &&
                 st2.growth_index == 1 && st2.flops == 1.5e12,
             "train state round trip");
    char *yaml = NULL;
    rc = sp_ckpt_read_config(path, &yaml, &err);
    tu_check(&t, rc == 0 && yaml && !strcmp(yaml, "model: {n_layer: 3}\n"), "config round trip");
    free(yaml);

    /* a stage holding blocks [1,3) reads exactly its slabs and their moments */
    sp_model_create(&b, &k_spec, 1, 3, 0, 1, &err);
    rc = sp_ckpt_load(path, &b, 1, &err);
    tu_check(&t, rc == 0, "load: %s", err.msg);
    for (int k = 1; k < 3; k++) {
        size_t n = a.block_numel * sizeof(float);
        tu_check(&t, !memcmp(sp_model_block(&a, a.params, k), sp_model_block(&b, b.params, k), n),
                 "block %d weights differ after load", k);
        tu_check(&t, !memcmp(sp_model_block(&a, a.v, k), sp_model_block(&b, b.v, k), n),
                 "block %d AdamW v differs after load", k);
        tu_check(&t, b.steps[1 + k - 1] == a.steps[1 + k], "block %d step count", k);
    }
    tu_check(&t, !memcmp(a.m, b.m, a.global_numel * sizeof(float)), "globals m differ");
    tu_check(&t, sp_ckpt_verify(path, NULL, &err) == 0, "verify of a good file: %s", err.msg);

    /* a spec mismatch is refused */
    sp_spec other = k_spec;
    other.vocab = 14;
    sp_model c;
    sp_model_create(&c, &other, 0, 3, 1, 1, &err);
    rc = sp_ckpt_load(path, &c, 0, &err);
    tu_check(&t, rc == SP_EINPUT && strstr(err.msg, "spec"), "spec mismatch accepted: %s", err.msg);
    sp_model_free(&c);

    /* flipped bytes in one tensor: verify and load both name it */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/bad.h5", dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp %s %s", path, bad);
    tu_check(&t, system(cmd) == 0, "cp");
    const float *victim = sp_model_block(&a, a.params, 2) + a.bt[SP_FC_W].offset;
    tu_check(&t, flip_tensor_byte(bad, victim, a.bt[SP_FC_W].numel) == 0, "flip a byte");
    rc = sp_ckpt_verify(bad, NULL, &err);
    tu_check(&t, rc == SP_EINPUT && strstr(err.msg, "transformer.h.2.mlp.c_fc.weight"),
             "verify missed the flipped tensor: %s", err.msg);
    rc = sp_ckpt_load(bad, &b, 0, &err);
    tu_check(&t, rc == SP_EINPUT && strstr(err.msg, "crc32"), "load accepted a corrupt tensor: %s",
             err.msg);

    test_extras(&t, dir, &a, &st);
    test_header(&t, dir, path);
    test_tokenizer(&t, dir, path, &a, &st);

    /* a truncated file is refused with its name */
    snprintf(cmd, sizeof cmd, "head -c 3000 %s > %s/trunc.h5", path, dir);
    tu_check(&t, system(cmd) == 0, "truncate");
    snprintf(bad, sizeof bad, "%s/trunc.h5", dir);
    rc = sp_ckpt_read_header(bad, &s2, &st2, &err);
    int rc2 = sp_ckpt_verify(bad, NULL, &err);
    tu_check(&t, (rc == SP_EINPUT || rc2 == SP_EINPUT) && strstr(err.msg, "trunc.h5"),
             "truncated file accepted: %s", err.msg);

    sp_model_free(&a);
    sp_model_free(&b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    tu_check(&t, system(cmd) == 0, "cleanup");
    int res = tu_finish(&t, "ckpt");
    MPI_Finalize();
    return res;
}
