/* Writes the PyTorch parity dump (format in tests/torch/check_parity.py): initial weights,
 * one batch with its logits, loss and every parameter gradient, then S AdamW steps with their
 * losses, all computed by sprout's own model and trainer code.
 * With a method (apollo | raptr) it writes the plan dump of tests/torch/check_plan.py instead:
 * the weights, one step's plan, the gradients of one batch through that plan (shared gradients
 * summed as the trainer sums them), and those of an unshared copy that runs every position on a
 * block of its own.
 * With llama or llama_tied it writes the parity dump of a LLaMA model (untied or tied head), with
 * bert that of a BERT model trained with the masked objective (the batches masked by the
 * trainer's own masking; targets -1 where not selected, the loss their mean over the rest).
 * usage: sp_parity_dump OUT.h5 [bf16|apollo|raptr|llama|llama_tied|bert] */
#include "sprout/train.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_attr_i(hid_t f, const char *k, long long v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, k, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a), H5Sclose(s);
}

static void put_attr_d(hid_t f, const char *k, double v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, k, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a), H5Sclose(s);
}

static void put(hid_t f, const char *name, int nd, const hsize_t *dims, int is_int,
                const void *data) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t s = H5Screate_simple(nd, dims, NULL);
    hid_t d = H5Dcreate2(f, name, is_int ? H5T_STD_I32LE : H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT,
                         H5P_DEFAULT);
    H5Dwrite(d, is_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d), H5Sclose(s), H5Pclose(lcpl);
}

/* every tensor of the model arena `arena` under group/<HF name> */
static void put_model(hid_t f, const char *group, const sp_model *m, float *arena) {
    char name[256], path[320];
    for (int b = -1; b < m->spec.n_layer; b++) {
        int nt = b < 0 ? m->ngt : m->nbt;
        const sp_tensor_info *ti = b < 0 ? m->gt : m->bt;
        float *slab = b < 0 ? sp_model_globals(m, arena) : sp_model_block(m, arena, b);
        for (int j = 0; j < nt; j++) {
            sp_spec_hf_name(name, sizeof name, &m->spec, b, &ti[j]);
            snprintf(path, sizeof path, "%s/%s", group, name);
            hsize_t dims[2] = {(hsize_t)ti[j].dims[0], (hsize_t)ti[j].dims[1]};
            put(f, path, ti[j].ndim, dims, 0, slab + ti[j].offset);
        }
    }
}

/* LayerNorm gains 1 and biases 0 would hide errors in their gradients: perturb them (a block
 * as its weight-sharing group's first block, so that copies stay equal) */
static void perturb_1d(sp_model *m) {
    for (int b = -1; b < m->spec.n_layer; b++) {
        int nt = b < 0 ? m->ngt : m->nbt, as = b < 0 ? b : m->plan.group[b];
        const sp_tensor_info *ti = b < 0 ? m->gt : m->bt;
        float *slab = b < 0 ? sp_model_globals(m, m->params) : sp_model_block(m, m->params, b);
        for (int j = 0; j < nt; j++) {
            if (ti[j].ndim != 1) continue;
            for (size_t i = 0; i < ti[j].numel; i++)
                slab[ti[j].offset + i] +=
                    0.1f * (sp_rng_uniform(3, SP_RNG_TEST, sp_model_tensor_id(as, j), i) - 0.5f);
        }
    }
}

static void put_spec(hid_t f, const sp_spec *s, int B) {
    put_attr_i(f, "vocab", s->vocab), put_attr_i(f, "seq_len", s->seq_len);
    put_attr_i(f, "d_model", s->d_model), put_attr_i(f, "n_head", s->n_head);
    put_attr_i(f, "d_ff", s->d_ff), put_attr_i(f, "n_layer", s->n_layer), put_attr_i(f, "batch", B);
    const char *block = sp_kind_of(s)->name;
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(block) + 1);
    hid_t a = H5Acreate2(f, "block", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, block);
    H5Aclose(a), H5Sclose(sp), H5Tclose(t);
    if (sp_kind_of(s)->hparams) {
        put_attr_d(f, "norm_eps", s->norm_eps), put_attr_d(f, "rope_theta", s->rope_theta);
        put_attr_i(f, "tie_head", s->tie_head);
    }
}

static void one_batch(sp_trainer *tr, sp_model *m) {
    size_t N = (size_t)tr->mb * tr->T;
    memset(m->grads, 0, m->numel * sizeof(float));
    sp_model_embed_forward(m, &tr->acts[0], tr->inp);
    sp_model_blocks_forward(m, &tr->acts[0]);
    sp_model_head_forward(m, &tr->acts[0], tr->tgt);
    sp_model_head_backward(m, &tr->acts[0], &tr->scratch, tr->tgt, 1.0f / (float)N);
    sp_model_blocks_backward(m, &tr->acts[0], &tr->scratch, NULL, NULL);
    sp_model_embed_backward(m, &tr->acts[0], &tr->scratch, tr->inp);
}

/* the plan dump: 4 stored blocks; Apollo with U = 1 at depth 3 (one block at three positions),
 * RaPTr with paths of 3 (first and last fixed, one of the middle two kept, scaled by 1/p) */
static int plan_dump(const char *out, const char *method) {
    sp_config cfg;
    sp_cfg_defaults(&cfg);
    cfg.model.vocab = 64, cfg.model.seq_len = 16, cfg.model.d_model = 32;
    cfg.model.n_head = 4, cfg.model.n_layer = 4, cfg.model.d_ff = 0;
    cfg.train.global_batch = 4, cfg.train.micro_batch = 4, cfg.train.seed = 7;
    sp_err err = {0};
    int rc = 0;
    char set[64];
    snprintf(set, sizeof set, "train.subnet=%s", method);
    const char *sets[] = {set,
                          "apollo.unique=1",
                          "apollo.depth=3",
                          "raptr.lengths=3",
                          "raptr.mode=exact",
                          "raptr.scale=inverse_p"};
    for (size_t i = 0; !rc && i < sizeof sets / sizeof *sets; i++)
        rc = sp_cfg_set(&cfg, sets[i], &err);
    sp_trainer tr, un;
    memset(&un, 0, sizeof un);
    if (rc || sp_trainer_init(&tr, &cfg, 0, MPI_COMM_SELF, &err)) {
        fprintf(stderr, "sp_parity_dump: %s\n", err.msg);
        return 1;
    }
    sp_model *m = &tr.model;
    sp_trainer_plan(&tr, 0, 1);
    perturb_1d(m);
    const sp_plan *p = &m->plan;
    int B = tr.mb, T = tr.T, L = m->spec.n_layer, D = p->depth;
    size_t N = (size_t)B * T;
    for (size_t i = 0; i < N; i++) {
        tr.inp[i] = (int32_t)(sp_rng_u64(11, SP_RNG_TEST, 0, i) % (uint64_t)m->spec.vocab);
        tr.tgt[i] = (int32_t)(sp_rng_u64(11, SP_RNG_TEST, 1, i) % (uint64_t)m->spec.vocab);
    }
    hid_t f = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_spec(f, &m->spec, B);
    put_model(f, "model", m, m->params);
    hsize_t bt[2] = {(hsize_t)B, (hsize_t)T}, hd = (hsize_t)D, hl = (hsize_t)L;
    put(f, "batch/inputs", 2, bt, 1, tr.inp);
    put(f, "batch/targets", 2, bt, 1, tr.tgt);
    int32_t group[SP_SUBNET_MAX_LAYER], train[SP_SUBNET_MAX_LAYER];
    for (int b = 0; b < L; b++) group[b] = p->group[b], train[b] = p->train[b];
    put(f, "plan/pos", 1, &hd, 1, p->pos);
    put(f, "plan/group", 1, &hl, 1, group);
    put(f, "plan/train", 1, &hl, 1, train);
    put(f, "plan/scale", 1, &hl, 0, p->scale);
    one_batch(&tr, m);
    sp_trainer_share_grads(&tr);
    put_model(f, "grad", m, m->grads);

    /* the unshared copy: D blocks, block q a copy of the block position q runs */
    cfg.model.n_layer = D;
    sp_cfg_set(&cfg, "train.subnet=none", &err);
    rc = sp_trainer_init(&un, &cfg, 0, MPI_COMM_SELF, &err);
    if (!rc) {
        sp_model *u = &un.model;
        memcpy(u->params, m->params, m->global_numel * sizeof(float));
        for (int q = 0; q < D; q++) {
            memcpy(sp_model_block(u, u->params, q), sp_model_block(m, m->params, p->pos[q]),
                   m->block_numel * sizeof(float));
            u->plan.scale[q] = p->scale[p->pos[q]];
        }
        memcpy(un.inp, tr.inp, N * sizeof *un.inp);
        memcpy(un.tgt, tr.tgt, N * sizeof *un.tgt);
        one_batch(&un, u);
        put_model(f, "unshared", u, u->grads);
    } else {
        fprintf(stderr, "sp_parity_dump: %s\n", err.msg);
    }
    H5Fclose(f);
    sp_trainer_free(&un);
    sp_trainer_free(&tr);
    sp_cfg_free(&cfg);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int bf16 = argc == 3 && !strcmp(argv[2], "bf16");
    const char *kind =
        argc == 3 && (!strncmp(argv[2], "llama", 5) || !strcmp(argv[2], "bert")) ? argv[2] : NULL;
    int bert = kind && !strcmp(kind, "bert");
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: sp_parity_dump OUT.h5 [bf16|apollo|raptr|llama|llama_tied|bert]\n");
        return 2;
    }
    if (argc == 3 && !bf16 && !kind) {
        int rc = plan_dump(argv[1], argv[2]);
        MPI_Finalize();
        return rc;
    }
    const int S = 20;
    sp_config cfg;
    sp_cfg_defaults(&cfg);
    cfg.model.vocab = 64, cfg.model.seq_len = 16, cfg.model.d_model = 32;
    cfg.model.n_head = 4, cfg.model.n_layer = 2, cfg.model.d_ff = 0;
    cfg.train.global_batch = 4, cfg.train.micro_batch = 4, cfg.train.seed = 7;
    cfg.train.lr = 1e-3, cfg.train.warmup_steps = 0, cfg.train.grad_clip = 0.5;
    cfg.train.weight_decay = 0.1;
    sp_err err = {0};
    /* llama: d_ff 0 is 8d/3 rounded up to a multiple of 64 (128 here); a rope_theta other than the
     * default so a wrong base shows */
    /* bert: an eps other than the default so that a wrong one shows */
    if (bert && (sp_cfg_set(&cfg, "model.block=bert", &err) ||
                 sp_cfg_set(&cfg, "train.objective=masked", &err) ||
                 sp_cfg_set(&cfg, "model.norm_eps=1e-6", &err))) {
        fprintf(stderr, "sp_parity_dump: %s\n", err.msg);
        return 1;
    }
    if (kind && !bert &&
        (sp_cfg_set(&cfg, "model.block=llama", &err) ||
         sp_cfg_set(&cfg, "model.rope_theta=500", &err) ||
         sp_cfg_set(&cfg, "model.norm_eps=1e-6", &err) ||
         sp_cfg_set(&cfg,
                    strcmp(kind, "llama_tied") ? "model.tie_head=false" : "model.tie_head=true",
                    &err))) {
        fprintf(stderr, "sp_parity_dump: %s\n", err.msg);
        return 1;
    }
    if (bf16 && sp_cfg_set(&cfg, "run.precision=bf16", &err)) {
        fprintf(stderr, "sp_parity_dump: %s\n", err.msg);
        return 1;
    }
    sp_trainer tr;
    if (sp_trainer_init(&tr, &cfg, 0, MPI_COMM_SELF, &err)) {
        fprintf(stderr, "sp_parity_dump: %s\n", err.msg);
        return bf16 && err.code == SP_EINPUT ? 77 : 1;
    }
    sp_model *m = &tr.model;
    const sp_spec *s = &m->spec;
    perturb_1d(m);
    sp_model_sync_bf16(m); /* the trainer syncs in its steps; the batch below runs outside them */
    int B = tr.mb, T = tr.T, V = s->vocab;
    size_t N = (size_t)B * T;
    hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    put_spec(f, s, B);
    put_attr_i(f, "steps", S);
    put_attr_d(f, "lr", cfg.train.lr), put_attr_d(f, "beta1", cfg.train.beta1);
    put_attr_d(f, "beta2", cfg.train.beta2), put_attr_d(f, "eps", cfg.train.eps);
    put_attr_d(f, "weight_decay", cfg.train.weight_decay);
    put_attr_d(f, "grad_clip", cfg.train.grad_clip);
    put_attr_i(f, "bf16", bf16);
    put_model(f, "model", m, m->params);

    /* one batch: logits, loss and raw gradients (no clipping) */
    for (size_t i = 0; i < N; i++) {
        tr.inp[i] = (int32_t)(sp_rng_u64(11, SP_RNG_TEST, 0, i) % (uint64_t)V);
        tr.tgt[i] = (int32_t)(sp_rng_u64(11, SP_RNG_TEST, 1, i) % (uint64_t)V);
    }
    /* a masked objective: the inputs masked, the targets their selected originals */
    for (int b = 0; m->obj->prepare && b < B; b++)
        m->obj->prepare(11, 0, (uint64_t)b, tr.inp + (size_t)b * T, tr.tgt + (size_t)b * T, T, V);
    float norm = (float)m->obj->count(tr.tgt, (int)N);
    hsize_t bt[2] = {(hsize_t)B, (hsize_t)T}, btv[3] = {(hsize_t)B, (hsize_t)T, (hsize_t)V};
    put(f, "batch/inputs", 2, bt, 1, tr.inp);
    put(f, "batch/targets", 2, bt, 1, tr.tgt);
    sp_model_embed_forward(m, &tr.acts[0], tr.inp);
    sp_model_blocks_forward(m, &tr.acts[0]);
    sp_model_head_forward(m, &tr.acts[0], NULL);
    put(f, "out/logits", 3, btv, 0, tr.acts[0].probs);
    float loss = sp_model_head_forward(m, &tr.acts[0], tr.tgt);
    hsize_t one = 1;
    put(f, "out/loss", 1, &one, 0, &loss);
    memset(m->grads, 0, m->numel * sizeof(float));
    sp_model_head_backward(m, &tr.acts[0], &tr.scratch, tr.tgt, 1.0f / norm);
    sp_model_blocks_backward(m, &tr.acts[0], &tr.scratch, NULL, NULL);
    sp_model_embed_backward(m, &tr.acts[0], &tr.scratch, tr.inp);
    put_model(f, "grad", m, m->grads);

    /* S optimizer steps through the trainer; with one micro-batch per step, tr.inp/tgt hold
     * the step's batch afterwards */
    int32_t *ins = malloc((size_t)S * N * sizeof *ins), *tgs = malloc((size_t)S * N * sizeof *tgs);
    float *losses = malloc((size_t)S * sizeof *losses);
    for (int k = 0; k < S; k++) {
        double gn;
        losses[k] = sp_trainer_step(&tr, (float)cfg.train.lr, &gn);
        memcpy(ins + (size_t)k * N, tr.inp, N * sizeof *ins);
        memcpy(tgs + (size_t)k * N, tr.tgt, N * sizeof *tgs);
    }
    hsize_t sbt[3] = {(hsize_t)S, (hsize_t)B, (hsize_t)T}, sd = (hsize_t)S;
    put(f, "train/inputs", 3, sbt, 1, ins);
    put(f, "train/targets", 3, sbt, 1, tgs);
    put(f, "train/losses", 1, &sd, 0, losses);
    H5Fclose(f);
    free(ins), free(tgs), free(losses);
    sp_trainer_free(&tr);
    sp_cfg_free(&cfg);
    MPI_Finalize();
    return 0;
}
