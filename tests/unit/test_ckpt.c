/* Checkpoint round trip (weights, moments, steps, train state) and corruption detection. */
#include "sprout/ckpt.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const sp_spec k_spec = {13, 6, 8, 2, 32, 3};

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
                         .wallclock = 12.5};
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
