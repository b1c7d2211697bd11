/* sprout's logits on the first N evaluation windows of a token file, for the export round trip
 * (tests/torch/check_hf_export.py): the checkpoint's weights in one full stage, the windows of
 * `sprout eval` (window i = tokens [i*T, i*T+T)), raw float32 [N, T, vocab] little-endian. A
 * masked model's are its MLM head's on the unmasked window (the head without targets).
 * usage: sp_hf_logits CKPT TOKENS N OUT.bin */
#include "sprout/ckpt.h"
#include "sprout/data.h"
#include "testutil.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: sp_hf_logits CKPT TOKENS N OUT.bin\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    tu_ctx t = {0};
    sp_err err = {0};
    sp_spec s;
    sp_train_state st;
    sp_model m = {0};
    sp_tokens tok = {0};
    int n = atoi(argv[3]), rc = 1;
    float *logits = NULL;
    int32_t *inp = NULL, *tgt = NULL;
    if (sp_ckpt_read_header(argv[1], &s, &st, &err) ||
        sp_model_create_weights(&m, &s, 0, s.n_layer, 1, 1, &err) ||
        sp_ckpt_load(argv[1], &m, 0, &err) || sp_data_open(&tok, argv[2], &err)) {
        fprintf(stderr, "sp_hf_logits: %s\n", err.msg);
        goto out;
    }
    if (n < 1 || n > sp_data_num_windows(&tok, s.seq_len)) {
        fprintf(stderr, "sp_hf_logits: %d windows do not fit %s\n", n, argv[2]);
        goto out;
    }
    inp = malloc((size_t)n * s.seq_len * sizeof *inp);
    tgt = malloc((size_t)n * s.seq_len * sizeof *tgt);
    if (!inp || !tgt) goto out;
    for (int i = 0; i < n; i++)
        sp_data_eval_window(&tok, (uint64_t)i, s.seq_len, inp + (size_t)i * s.seq_len,
                            tgt + (size_t)i * s.seq_len);
    if (!(logits = tu_logits(&m, inp, n, s.seq_len, &t))) goto out;
    size_t cnt = (size_t)n * s.seq_len * s.vocab;
    FILE *f = fopen(argv[4], "wb");
    rc = !f || fwrite(logits, sizeof *logits, cnt, f) != cnt;
    if (f && fclose(f)) rc = 1;
out:
    free(logits), free(inp), free(tgt);
    sp_data_close(&tok);
    sp_model_free(&m);
    MPI_Finalize();
    return rc;
}
