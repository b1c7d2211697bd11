/* Parallel-HDF5 checkpoints (design §6). The file names tensors by their Hugging Face GPT-2
 * names, so it maps 1:1 onto a GPT2LMHeadModel state dict and does not depend on the layout. */
#define _GNU_SOURCE
#include "sprout/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_FORMAT  "sprout-ckpt"
#define CKPT_VERSION 1

static const char *const k_groups[3] = {"model", "optim/m", "optim/v"};
static const char *const k_spec_keys[6] = {"vocab",  "seq_len", "d_model",
                                           "n_head", "d_ff",    "n_layer"};
/* top-level names of the live model's data: an extra group may not live under them, or it
 * would mix its tensors into /model (which PyTorch loads as a state dict) or the optimizer */
static const char *const k_reserved[5] = {"model", "optim", "spec", "train", "config"};

/* ---- small attribute helpers (HDF5 attributes are collective metadata in parallel files:
 * every rank calls them with the same value) ---- */

static int attr_write(hid_t obj, const char *name, hid_t mtype, hid_t ftype, const void *val) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mtype, val);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

static int attr_i64(hid_t obj, const char *name, int64_t v) {
    return attr_write(obj, name, H5T_NATIVE_INT64, H5T_STD_I64LE, &v);
}

static int attr_f64(hid_t obj, const char *name, double v) {
    return attr_write(obj, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, &v);
}

static int attr_str(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    int rc = attr_write(obj, name, t, t, s);
    H5Tclose(t);
    return rc;
}

static int read_attr(hid_t obj, const char *name, hid_t mtype, void *val) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t rc = H5Aread(a, mtype, val);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

/* /spec and every extra group carry the six integers of a spec plus the block kind */
static int write_spec(hid_t g, const sp_spec *s) {
    const int v[6] = {s->vocab, s->seq_len, s->d_model, s->n_head, s->d_ff, s->n_layer};
    int rc = 0;
    for (int i = 0; i < 6; i++) rc |= attr_i64(g, k_spec_keys[i], v[i]);
    return rc | attr_str(g, "block", "gpt2");
}

/* Called inside H5E_BEGIN_TRY: a missing attribute is an answer, not a stack to print. */
static int read_spec(hid_t g, sp_spec *s) {
    int64_t v[6];
    for (int i = 0; i < 6; i++)
        if (read_attr(g, k_spec_keys[i], H5T_NATIVE_INT64, &v[i])) return -1;
    *s = (sp_spec){(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5]};
    return 0;
}

/* The first field in which the specs differ (NULL if none), with both values. */
static const char *spec_diff(const sp_spec *a, const sp_spec *b, int *va, int *vb) {
    const int x[6] = {a->vocab, a->seq_len, a->d_model, a->n_head, a->d_ff, a->n_layer};
    const int y[6] = {b->vocab, b->seq_len, b->d_model, b->n_head, b->d_ff, b->n_layer};
    for (int i = 0; i < 6; i++)
        if (x[i] != y[i]) {
            *va = x[i], *vb = y[i];
            return k_spec_keys[i];
        }
    return NULL;
}

/* ---- writing ---- */

/* One model in the file: the live one (weights and both AdamW moments, under k_groups) or an
 * extra weight-only one (its params under its own group). Every loop over the file's tensors runs
 * over (part, slot, arena, tensor), so the live model and the extras share one code path. */
typedef struct ckpt_part {
    const sp_model *m;
    int narena;
    const float *arena[3];
    const char *dir[3]; /* HDF5 group of each arena's datasets */
    int slot0;          /* the part's first slot in the all-parts writer table */
} ckpt_part;

/* one dataset of the file; src is set on the one rank that writes its data */
typedef struct ckpt_item {
    const char *dir;
    int block; /* -1 = globals */
    const sp_tensor_info *ti;
    const float *src;
} ckpt_item;

static int make_groups(hid_t file, const ckpt_part *parts, int nparts) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    int rc = 0;
    for (int p = 0; p < nparts && rc == 0; p++)
        for (int a = 0; a < parts[p].narena && rc == 0; a++) {
            hid_t id = H5Gcreate2(file, parts[p].dir[a], lcpl, H5P_DEFAULT, H5P_DEFAULT);
            if (id < 0) {
                rc = -1;
                break;
            }
            /* an extra's spec is what a reader needs to create the model that loads it */
            if (p > 0) rc |= write_spec(id, &parts[p].m->spec);
            H5Gclose(id);
        }
    H5Pclose(lcpl);
    return rc;
}

/* Checks the extra groups: relative paths of plain components, none under the live model's
 * names, no two equal or nested (a group's spec attributes must describe exactly its datasets).
 * Every rank passes the same list, so every rank reaches the same answer. */
static int check_extras(const sp_ckpt_extra *x, int n, char *why, size_t nwhy) {
    for (int i = 0; i < n; i++) {
        const char *g = x[i].group;
        size_t len = g ? strlen(g) : 0;
        if (!x[i].m || !len || len > 200) {
            snprintf(why, nwhy, "extra model %d has no model or a bad group name", i);
            return -1;
        }
        for (const char *c = g; c <= g + len;) {
            size_t cl = strcspn(c, "/");
            int first = c == g;
            if (!cl || (cl == 1 && c[0] == '.') || (cl == 2 && !strncmp(c, "..", 2))) {
                snprintf(why, nwhy, "extra group \"%s\": empty or dot path component", g);
                return -1;
            }
            for (int r = 0; r < 5 && first; r++)
                if (strlen(k_reserved[r]) == cl && !strncmp(c, k_reserved[r], cl)) {
                    snprintf(why, nwhy, "extra group \"%s\" is under the reserved /%s", g,
                             k_reserved[r]);
                    return -1;
                }
            c += cl + 1;
        }
        for (int j = 0; j < i; j++) {
            const char *h = x[j].group;
            size_t lh = strlen(h), l = len < lh ? len : lh;
            if (!strncmp(g, h, l) && (len == lh || (len > lh ? g : h)[l] == '/')) {
                snprintf(why, nwhy, "extra groups \"%s\" and \"%s\" are equal or nested", h, g);
                return -1;
            }
        }
    }
    return 0;
}

/* What every rank must agree on (the specs and the extra groups): a rank passing a different
 * list would create other datasets and hang the collective metadata writes. */
static uint32_t parts_hash(const sp_model *m, const sp_ckpt_extra *x, int n) {
    uint32_t h = sp_crc32(0, &n, sizeof n);
    h = sp_crc32(h, &m->spec, sizeof m->spec);
    for (int i = 0; i < n; i++) {
        h = sp_crc32(h, x[i].group, strlen(x[i].group) + 1);
        h = sp_crc32(h, &x[i].m->spec, sizeof x[i].m->spec);
    }
    return h;
}

/* crc32 of the tensors this rank writes, on a helper thread so that it overlaps the collective
 * dataset creation and the data writes (the crc of ~200 MB costs about as much as writing it) */
typedef struct crc_job {
    const ckpt_item *it;
    uint32_t *crc;
    int n;
} crc_job;

static void *crc_run(void *arg) {
    crc_job *j = arg;
    for (int k = 0; k < j->n; k++)
        if (j->it[k].src) j->crc[k] = sp_crc32(0, j->it[k].src, j->it[k].ti->numel * sizeof(float));
    return NULL;
}

/* Starts the kernel's write-back of what this rank wrote, so that the disk works while the crc32
 * attributes and the metadata are written; rank 0's fsync then finds most of it on disk. */
static void start_writeback(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    close(fd);
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void dir_of(const char *path, char *dir, size_t n) {
    snprintf(dir, n, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, n, ".");
}

int sp_ckpt_save(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                 const char *config_yaml, MPI_Comm comm, sp_err *err) {
    return sp_ckpt_save_ex(path, m, owner, st, config_yaml, NULL, 0, comm, err);
}

int sp_ckpt_save_ex(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                    const char *config_yaml, const sp_ckpt_extra *extra, int n_extra, MPI_Comm comm,
                    sp_err *err) {
    double t_start = MPI_Wtime();
    int me, nranks;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &nranks);
    const sp_spec *s = &m->spec;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    /* the extras must be valid and the same on every rank before anything collective depends on
     * them: one tiny reduction (the hash's maximum and minus its minimum, and any rank's veto) */
    char why[320] = "";
    int bad = 0;
    if (n_extra < 0 || (n_extra > 0 && !extra))
        bad = 1, snprintf(why, sizeof why, "bad extra model list (%d)", n_extra);
    else
        bad = check_extras(extra, n_extra, why, sizeof why) != 0;
    if (bad) n_extra = 0;
    uint32_t h = parts_hash(m, extra, n_extra) >> 1;
    int agree[3] = {(int)h, -(int)h, bad}, all[3];
    MPI_Allreduce(agree, all, 3, MPI_INT, MPI_MAX, comm);
    if (all[2])
        return sp_err_set(err, SP_EINPUT, "%s: %s", path,
                          bad ? why : "another rank passed invalid extra models");
    if (all[0] != -all[1])
        return sp_err_set(err, SP_EINPUT,
                          "%s: the ranks pass different specs or extra groups (the save is "
                          "collective)",
                          path);

    int nparts = 1 + n_extra, nslot = s->n_layer + 1, nslot_all = nslot;
    ckpt_part *parts = calloc((size_t)nparts, sizeof *parts);
    if (!parts) return sp_err_set(err, SP_ERUNTIME, "%s: out of memory", path);
    parts[0] =
        (ckpt_part){m, 3, {m->params, m->m, m->v}, {k_groups[0], k_groups[1], k_groups[2]}, 0};
    for (int i = 0; i < n_extra; i++) {
        const sp_model *x = extra[i].m;
        parts[1 + i] = (ckpt_part){x, 1, {x->params}, {extra[i].group}, nslot_all};
        nslot_all += x->spec.n_layer + 1;
    }

    /* who writes what: per part, slot 0 = globals (the stage holding the embedding), 1 + b =
     * block b */
    int *mine = calloc((size_t)nslot_all, sizeof *mine),
        *writer = calloc((size_t)nslot_all, sizeof *writer);
    int64_t *steps = calloc((size_t)nslot, sizeof *steps), *all_steps = calloc((size_t)nslot, 8);
    if (!mine || !writer || !steps || !all_steps) {
        free(parts), free(mine), free(writer), free(steps), free(all_steps);
        return sp_err_set(err, SP_ERUNTIME, "%s: out of memory", path);
    }
    for (int p = 0; p < nparts && owner; p++) {
        const sp_model *pm = parts[p].m;
        int *w = mine + parts[p].slot0;
        if (pm->has_embed) w[0] = me + 1;
        for (int b = pm->lo; b < pm->hi; b++) w[1 + b] = me + 1;
    }
    MPI_Allreduce(mine, writer, nslot_all, MPI_INT, MPI_MAX, comm);
    for (int i = 0; i < nslot_all; i++) writer[i] -= 1;
    /* a slot nobody holds would be left unwritten and fail its crc on every later load */
    for (int p = 0; p < nparts; p++)
        for (int slot = 0; slot <= parts[p].m->spec.n_layer; slot++)
            if (writer[parts[p].slot0 + slot] < 0) {
                char what[32] = "the globals";
                if (slot) snprintf(what, sizeof what, "block %d", slot - 1);
                sp_err_set(err, SP_EINPUT, "%s: no rank writes %s of /%s", path, what,
                           parts[p].dir[0]);
                free(parts), free(mine), free(writer), free(steps), free(all_steps);
                return err->code;
            }
    if (owner && m->has_embed) steps[0] = (int64_t)m->steps[0];
    for (int b = m->lo; b < m->hi && owner; b++) steps[1 + b] = (int64_t)m->steps[1 + b - m->lo];
    MPI_Allreduce(steps, all_steps, nslot, MPI_INT64_T, MPI_SUM, comm);

    int rc = 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        free(parts), free(mine), free(writer), free(steps), free(all_steps);
        return sp_err_set(err, SP_ERUNTIME, "%s: cannot create checkpoint file", tmp);
    }
    rc |= attr_str(f, "format", CKPT_FORMAT);
    rc |= attr_i64(f, "version", CKPT_VERSION);
    hid_t g = H5Gcreate2(f, "spec", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= write_spec(g, s);
    H5Gclose(g);
    g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= attr_i64(g, "step", st->step) | attr_i64(g, "tokens", st->tokens);
    rc |= attr_f64(g, "flops", st->flops) | attr_i64(g, "growth_index", st->growth_index);
    rc |= attr_i64(g, "seed", (int64_t)st->seed) | attr_i64(g, "data_cursor", st->data_cursor);
    rc |= attr_f64(g, "lr", st->lr) | attr_f64(g, "wallclock", st->wallclock);
    rc |= attr_i64(g, "subnet_stage", st->subnet_stage) | attr_i64(g, "plan_step", st->plan_step);
    H5Gclose(g);
    g = H5Gcreate2(f, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= attr_str(g, "yaml", config_yaml ? config_yaml : "");
    H5Gclose(g);
    rc |= make_groups(f, parts, nparts);

    /* per-slab AdamW step counts, tiny: written through rank 0; every rank holds the reduced
     * array, so every rank computes the same crc32 for the collective attribute */
    hsize_t n = (hsize_t)nslot;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d =
        H5Dcreate2(f, "optim/slab_steps", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    if (d < 0)
        rc = -1;
    else {
        uint32_t c = sp_crc32(0, all_steps, (size_t)nslot * sizeof *all_steps);
        if (me == 0 && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, all_steps) < 0)
            rc = -1;
        if (attr_write(d, "crc32", H5T_NATIVE_UINT32, H5T_STD_U32LE, &c)) rc = -1;
        H5Dclose(d);
    }

    /* every tensor, in file order: part, slot, arena, tensor */
    int ntens = 0;
    for (int p = 0; p < nparts; p++)
        ntens += parts[p].narena * (SP_GLOBAL_NT + parts[p].m->spec.n_layer * SP_BLOCK_NT);
    ckpt_item *items = calloc((size_t)ntens, sizeof *items);
    uint32_t *crc = calloc((size_t)ntens, sizeof *crc), *all_crc = calloc((size_t)ntens, 4);
    hid_t *dset = malloc((size_t)ntens * sizeof *dset);
    if (!items || !crc || !all_crc || !dset) rc = -1;
    int mine_any = 0;
    for (int p = 0, k = 0; p < nparts && rc == 0; p++) {
        const ckpt_part *pt = &parts[p];
        const sp_model *pm = pt->m;
        for (int slot = 0; slot <= pm->spec.n_layer; slot++) {
            int block = slot - 1, nt = block < 0 ? SP_GLOBAL_NT : SP_BLOCK_NT;
            const sp_tensor_info *ti = block < 0 ? pm->gt : pm->bt;
            for (int a = 0; a < pt->narena; a++) {
                const float *slab = NULL;
                if (writer[pt->slot0 + slot] == me) {
                    float *ar = (float *)pt->arena[a];
                    slab = block < 0 ? sp_model_globals(pm, ar) : sp_model_block(pm, ar, block);
                }
                for (int j = 0; j < nt; j++, k++)
                    items[k] =
                        (ckpt_item){pt->dir[a], block, &ti[j], slab ? slab + ti[j].offset : NULL};
                mine_any |= slab != NULL;
            }
        }
    }
    double t_setup = MPI_Wtime();
    crc_job job = {items, crc, rc == 0 ? ntens : 0};
    pthread_t th;
    int threaded = mine_any && pthread_create(&th, NULL, crc_run, &job) == 0;
    if (!threaded) crc_run(&job);

    /* collective creation of every dataset; each owner writes its tensors (independent I/O).
     * Parallel HDF5 allocates a dataset's space when it is created; with the default fill
     * settings it may also write zeros there first, which would double the bytes written. */
    char name[256], dpath[512];
    int ndset = 0;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    for (int k = 0; k < ntens && rc == 0; k++) {
        const ckpt_item *it = &items[k];
        sp_spec_hf_name(name, sizeof name, it->block, it->ti);
        snprintf(dpath, sizeof dpath, "%s/%s", it->dir, name);
        hsize_t dims[2] = {(hsize_t)it->ti->dims[0], (hsize_t)it->ti->dims[1]};
        hid_t dsp = H5Screate_simple(it->ti->ndim, dims, NULL);
        hid_t did = H5Dcreate2(f, dpath, H5T_IEEE_F32LE, dsp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Sclose(dsp);
        if (did < 0) {
            rc = -1;
            break;
        }
        dset[ndset++] = did;
        if (it->src && H5Dwrite(did, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, it->src) < 0)
            rc = -1;
    }
    H5Pclose(dcpl);
    double t_write = MPI_Wtime();
    if (mine_any) start_writeback(tmp);
    if (threaded) pthread_join(th, NULL);
    double t_crc = MPI_Wtime();
    /* the crc32 attributes: one reduction instead of a broadcast per tensor (exactly one rank
     * holds a non-zero crc, so the maximum is it) */
    if (all_crc) MPI_Allreduce(crc, all_crc, ntens, MPI_UINT32_T, MPI_MAX, comm);
    for (int k = 0; k < ndset; k++) {
        if (rc == 0 && attr_write(dset[k], "crc32", H5T_NATIVE_UINT32, H5T_STD_U32LE, &all_crc[k]))
            rc = -1;
        H5Dclose(dset[k]);
    }
    free(items), free(crc), free(all_crc), free(dset);
    free(parts), free(mine), free(writer), free(steps), free(all_steps);
    /* fault injection for the crash tests (tests/cli/faults.sh): the last rank dies with the
     * temporary file half-written, exactly where a node failure would hurt most */
    const char *fault = getenv("SPROUT_FAULT_KILL_IN_CKPT");
    if (fault && atoll(fault) == st->step && me == nranks - 1) raise(SIGKILL);
    /* collective flush: the MPI-IO driver calls MPI_File_sync, so what every rank wrote is on
     * stable storage before the commit, also when writers sit on other nodes of a parallel file
     * system (rank 0's fsync below covers only its own node's cache) */
    double t_attr = MPI_Wtime();
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) rc = -1;
    double t_flush = MPI_Wtime();
    if (H5Fclose(f) < 0) rc = -1;
    double t_close = MPI_Wtime();
    int ok = rc == 0, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, comm);
    if (!all_ok) {
        if (me == 0) unlink(tmp);
        return sp_err_set(err, SP_ERUNTIME, "%s: writing the checkpoint failed", tmp);
    }
    int commit = 0;
    if (me == 0) {
        char dir[4096];
        dir_of(path, dir, sizeof dir);
        if (fsync_path(tmp) == 0 && rename(tmp, path) == 0 && fsync_path(dir) == 0)
            commit = 1;
        else
            unlink(tmp);
    }
    MPI_Bcast(&commit, 1, MPI_INT, 0, comm);
    if (getenv("SPROUT_CKPT_PROFILE") && me == 0) /* where a save spends its time */
        fprintf(stderr,
                "ckpt profile: set-up %.3f s, create+write %.3f, crc wait %.3f, attributes %.3f, "
                "flush %.3f, close %.3f, commit %.3f\n",
                t_setup - t_start, t_write - t_setup, t_crc - t_write, t_attr - t_crc,
                t_flush - t_attr, t_close - t_flush, MPI_Wtime() - t_close);
    if (!commit) return sp_err_set(err, SP_ERUNTIME, "%s: cannot commit checkpoint", path);
    return SP_OK;
}

/* ---- reading ---- */

static hid_t open_ro(const char *path, sp_err *err) {
    if (access(path, R_OK) != 0) {
        sp_err_set(err, SP_EINPUT, "%s: %s", path, strerror(errno));
        return -1;
    }
    hid_t f = -1;
    H5E_BEGIN_TRY {
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (f < 0) {
        sp_err_set(err, SP_EINPUT, "%s: not a readable HDF5 file (truncated or corrupt?)", path);
        return -1;
    }
    char fmt[32] = {0};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, sizeof fmt);
    int bad = 0;
    H5E_BEGIN_TRY {
        bad = read_attr(f, "format", t, fmt) != 0 || strcmp(fmt, CKPT_FORMAT) != 0;
    }
    H5E_END_TRY;
    H5Tclose(t);
    if (bad) {
        H5Fclose(f);
        sp_err_set(err, SP_EINPUT, "%s: not a sprout checkpoint (format attribute)", path);
        return -1;
    }
    return f;
}

int sp_ckpt_read_header(const char *path, sp_spec *spec, sp_train_state *st, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    int rc = 0;
    H5E_BEGIN_TRY {
        hid_t g = H5Gopen2(f, "spec", H5P_DEFAULT);
        if (g < 0)
            rc = -1;
        else {
            rc = read_spec(g, spec);
            H5Gclose(g);
        }
        if (st && rc == 0) {
            memset(st, 0, sizeof *st);
            g = H5Gopen2(f, "train", H5P_DEFAULT);
            if (g < 0)
                rc = -1;
            else {
                int64_t seed = 0;
                rc |= read_attr(g, "step", H5T_NATIVE_INT64, &st->step);
                rc |= read_attr(g, "tokens", H5T_NATIVE_INT64, &st->tokens);
                rc |= read_attr(g, "flops", H5T_NATIVE_DOUBLE, &st->flops);
                rc |= read_attr(g, "growth_index", H5T_NATIVE_INT64, &st->growth_index);
                rc |= read_attr(g, "seed", H5T_NATIVE_INT64, &seed);
                rc |= read_attr(g, "data_cursor", H5T_NATIVE_INT64, &st->data_cursor);
                rc |= read_attr(g, "lr", H5T_NATIVE_DOUBLE, &st->lr);
                rc |= read_attr(g, "wallclock", H5T_NATIVE_DOUBLE, &st->wallclock);
                st->seed = (uint64_t)seed;
                /* optional: absent from checkpoints older than the subnetwork methods */
                st->subnet_stage = st->plan_step = -1;
                read_attr(g, "subnet_stage", H5T_NATIVE_INT64, &st->subnet_stage);
                read_attr(g, "plan_step", H5T_NATIVE_INT64, &st->plan_step);
                H5Gclose(g);
            }
        }
    }
    H5E_END_TRY;
    H5Fclose(f);
    if (rc) return sp_err_set(err, SP_EINPUT, "%s: missing /spec or /train attributes", path);
    return sp_spec_check(spec, err) ? sp_err_wrap(err, "%s: /spec", path) : SP_OK;
}

int sp_ckpt_read_config(const char *path, char **yaml, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    int rc = -1;
    *yaml = NULL;
    H5E_BEGIN_TRY {
        hid_t a = H5Aopen_by_name(f, "config", "yaml", H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            hid_t t = H5Aget_type(a);
            size_t n = H5Tget_size(t);
            *yaml = calloc(n + 1, 1);
            if (*yaml && H5Aread(a, t, *yaml) >= 0) rc = 0;
            H5Tclose(t);
            H5Aclose(a);
        }
    }
    H5E_END_TRY;
    H5Fclose(f);
    if (rc) {
        free(*yaml);
        *yaml = NULL;
        return sp_err_set(err, SP_EINPUT, "%s: missing /config yaml attribute", path);
    }
    return SP_OK;
}

/* Reads one dataset into dst (bytes long) after checking its shape (want[0..nd)), then its crc32.
 * Float tensors and the int64 step counts go through here alike. */
static int read_checked(hid_t f, const char *path, const char *dpath, hid_t mtype, int nd_want,
                        const int64_t *want, void *dst, size_t bytes, sp_err *err) {
    int rc = SP_OK;
    H5E_BEGIN_TRY {
        hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
        if (d < 0) {
            rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s is missing", path, dpath);
        } else {
            hid_t sp = H5Dget_space(d);
            hsize_t dims[2] = {0, 0};
            int nd = H5Sget_simple_extent_ndims(sp);
            if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
            H5Sclose(sp);
            uint32_t crc = 0;
            if (nd != nd_want || dims[0] != (hsize_t)want[0] ||
                (nd == 2 && dims[1] != (hsize_t)want[1]))
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s has the wrong shape", path, dpath);
            else if (H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s cannot be read", path, dpath);
            else if (read_attr(d, "crc32", H5T_NATIVE_UINT32, &crc) != 0)
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s has no crc32", path, dpath);
            else if (sp_crc32(0, dst, bytes) != crc)
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s fails its crc32 check", path, dpath);
            H5Dclose(d);
        }
    }
    H5E_END_TRY;
    return rc;
}

/* Reads one arena of the stage (its globals if it holds them, then its blocks) from
 * <dir>/<HF name>. */
static int read_stage(hid_t f, const char *path, const char *dir, const sp_model *m, float *arena,
                      sp_err *err) {
    char name[256], dpath[512];
    int rc = SP_OK;
    float *g = sp_model_globals(m, arena);
    for (int j = 0; g && j < SP_GLOBAL_NT && !rc; j++) {
        const sp_tensor_info *t = &m->gt[j];
        sp_spec_hf_name(name, sizeof name, -1, t);
        snprintf(dpath, sizeof dpath, "%s/%s", dir, name);
        rc = read_checked(f, path, dpath, H5T_NATIVE_FLOAT, t->ndim, t->dims, g + t->offset,
                          t->numel * sizeof(float), err);
    }
    for (int b = m->lo; b < m->hi && !rc; b++) {
        float *slab = sp_model_block(m, arena, b);
        for (int j = 0; j < SP_BLOCK_NT && !rc; j++) {
            const sp_tensor_info *t = &m->bt[j];
            sp_spec_hf_name(name, sizeof name, b, t);
            snprintf(dpath, sizeof dpath, "%s/%s", dir, name);
            rc = read_checked(f, path, dpath, H5T_NATIVE_FLOAT, t->ndim, t->dims, slab + t->offset,
                              t->numel * sizeof(float), err);
        }
    }
    return rc;
}

int sp_ckpt_load(const char *path, sp_model *m, int with_optim, sp_err *err) {
    sp_spec fs;
    if (sp_ckpt_read_header(path, &fs, NULL, err)) return err->code;
    const sp_spec *s = &m->spec;
    int vf, vm;
    const char *field = spec_diff(&fs, s, &vf, &vm);
    if (field)
        return sp_err_set(err, SP_EINPUT,
                          "%s: spec does not match the model (%s %d in the file, %d in the model)",
                          path, field, vf, vm);
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    float *arenas[3] = {m->params, m->m, m->v};
    int rc = SP_OK;
    for (int a = 0; a < (with_optim ? 3 : 1) && !rc; a++)
        rc = read_stage(f, path, k_groups[a], m, arenas[a], err);
    if (!rc && with_optim) {
        int64_t n = s->n_layer + 1;
        int64_t *steps = calloc((size_t)n, sizeof *steps);
        if (!steps)
            rc = sp_err_set(err, SP_ERUNTIME, "%s: out of memory", path);
        else
            rc = read_checked(f, path, "optim/slab_steps", H5T_NATIVE_INT64, 1, &n, steps,
                              (size_t)n * sizeof *steps, err);
        if (!rc) {
            if (m->global_numel) m->steps[0] = (uint64_t)steps[0];
            for (int b = m->lo; b < m->hi; b++) m->steps[1 + b - m->lo] = (uint64_t)steps[1 + b];
        }
        free(steps);
    }
    H5Fclose(f);
    return rc;
}

/* ---- extra weight-only models ---- */

/* Reads the spec attributes of /<group>; the error names the group when it is absent. */
static int extra_spec(hid_t f, const char *path, const char *group, sp_spec *spec, sp_err *err) {
    hid_t g = -1;
    int rc = -1;
    H5E_BEGIN_TRY {
        if (group && *group) g = H5Gopen2(f, group, H5P_DEFAULT);
        if (g >= 0) {
            rc = read_spec(g, spec);
            H5Gclose(g);
        }
    }
    H5E_END_TRY;
    if (g < 0)
        return sp_err_set(err, SP_EINPUT, "%s: no extra model group /%s in the checkpoint", path,
                          group ? group : "(null)");
    if (rc) return sp_err_set(err, SP_EINPUT, "%s: group /%s has no spec attributes", path, group);
    return sp_spec_check(spec, err) ? sp_err_wrap(err, "%s: /%s", path, group) : SP_OK;
}

int sp_ckpt_read_extra_spec(const char *path, const char *group, sp_spec *spec, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    int rc = extra_spec(f, path, group, spec, err);
    H5Fclose(f);
    return rc;
}

int sp_ckpt_load_extra(const char *path, const char *group, sp_model *m, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    sp_spec fs;
    int rc = extra_spec(f, path, group, &fs, err), vf, vm;
    const char *field = rc ? NULL : spec_diff(&fs, &m->spec, &vf, &vm);
    if (field)
        rc = sp_err_set(err, SP_EINPUT,
                        "%s: /%s: spec does not match the model (%s %d in the file, %d in the "
                        "model)",
                        path, group, field, vf, vm);
    if (!rc) rc = read_stage(f, path, group, m, m->params, err);
    H5Fclose(f);
    return rc;
}

/* ---- verification for `sprout inspect` and `--resume auto` ---- */

/* every group of the file is visited, so the extra models' groups are checked as well as the
 * live model's; a depth bound keeps a crafted file's hard-link cycle from recursing forever */
#define VERIFY_MAX_DEPTH 32

typedef struct verify_ctx {
    const char *path;
    char group[1024]; /* path of the group being iterated, "" at the root */
    int depth;
    FILE *out;
    int bad;
    sp_err *err;
} verify_ctx;

static void verify_report(verify_ctx *c, const char *name, const char *shape, const char *verdict) {
    if (strcmp(verdict, "ok")) {
        if (!c->bad)
            sp_err_set(c->err, SP_EINPUT, "%s: tensor %s/%s: %s", c->path, c->group, name, verdict);
        c->bad++;
    }
    if (c->out) fprintf(c->out, "  %-8s %-44s %-14s %s\n", c->group, name, shape, verdict);
}

/* One dataset: read in its native numeric type and compare the crc32 of those bytes (float32
 * tensors and the int64 step counts alike). */
static void verify_dataset(verify_ctx *c, hid_t d, const char *name) {
    hid_t sp = H5Dget_space(d);
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    char shape[128] = "[";
    size_t n = 1;
    for (int i = 0; i < nd; i++) {
        n *= (size_t)dims[i];
        size_t len = strlen(shape);
        snprintf(shape + len, sizeof shape - len, "%s%llu", i ? ", " : "",
                 (unsigned long long)dims[i]);
    }
    strncat(shape, "]", sizeof shape - strlen(shape) - 1);
    hid_t ty = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ty);
    hid_t nt = cls == H5T_FLOAT || cls == H5T_INTEGER ? H5Tget_native_type(ty, H5T_DIR_ASCEND) : -1;
    H5Tclose(ty);
    size_t es = nt >= 0 ? H5Tget_size(nt) : 0;
    size_t bytes = n * es;
    void *buf = nd >= 0 && es ? malloc(bytes ? bytes : 1) : NULL;
    uint32_t want = 0;
    const char *verdict = "ok";
    if (nd < 0 || nt < 0)
        verdict = "UNSUPPORTED";
    else if (!buf || H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        verdict = "UNREADABLE";
    else if (read_attr(d, "crc32", H5T_NATIVE_UINT32, &want) != 0)
        verdict = "NO-CRC";
    else if (sp_crc32(0, buf, bytes) != want)
        verdict = "CRC-MISMATCH";
    if (nt >= 0) H5Tclose(nt);
    free(buf);
    verify_report(c, name, shape, verdict);
}

static herr_t verify_link(hid_t grp, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    verify_ctx *c = op;
    hid_t o = H5Oopen(grp, name, H5P_DEFAULT);
    if (o < 0) {
        verify_report(c, name, "-", "UNREADABLE");
        return 0;
    }
    H5I_type_t type = H5Iget_type(o);
    if (type == H5I_DATASET)
        verify_dataset(c, o, name);
    else if (type == H5I_GROUP && c->depth < VERIFY_MAX_DEPTH) {
        size_t len = strlen(c->group);
        snprintf(c->group + len, sizeof c->group - len, "%s%s", len ? "/" : "", name);
        hsize_t idx = 0;
        c->depth++;
        H5Literate(o, H5_INDEX_NAME, H5_ITER_INC, &idx, verify_link, c);
        c->depth--;
        c->group[len] = 0;
    }
    H5Oclose(o);
    return 0;
}

int sp_ckpt_verify(const char *path, void *out, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    verify_ctx c = {.path = path, .out = out, .err = err};
    /* what the live model needs must be there, besides whatever verifies */
    static const char *const required[4] = {"model", "optim/m", "optim/v", "optim/slab_steps"};
    H5E_BEGIN_TRY {
        hsize_t idx = 0;
        H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, verify_link, &c);
        for (int i = 0; i < 4; i++) {
            /* H5Lexists fails rather than answers when an intermediate group is missing */
            int there = (i == 0 || H5Lexists(f, "optim", H5P_DEFAULT) > 0) &&
                        H5Lexists(f, required[i], H5P_DEFAULT) > 0;
            if (!there) {
                if (!c.bad) sp_err_set(err, SP_EINPUT, "%s: /%s missing", path, required[i]);
                c.bad++;
            }
        }
    }
    H5E_END_TRY;
    H5Fclose(f);
    return c.bad ? SP_EINPUT : SP_OK;
}
