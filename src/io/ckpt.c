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

static hid_t make_groups(hid_t file) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    for (int g = 0; g < 3; g++) {
        hid_t id = H5Gcreate2(file, k_groups[g], lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (id < 0) {
            H5Pclose(lcpl);
            return -1;
        }
        H5Gclose(id);
    }
    H5Pclose(lcpl);
    return 0;
}

/* crc32 of the tensors this rank writes, on a helper thread so that it overlaps the collective
 * dataset creation and the data writes (the crc of ~200 MB costs about as much as writing it) */
typedef struct crc_job {
    const float *const *src;
    const size_t *bytes;
    uint32_t *crc;
    int n;
} crc_job;

static void *crc_run(void *arg) {
    crc_job *j = arg;
    for (int k = 0; k < j->n; k++)
        if (j->src[k]) j->crc[k] = sp_crc32(0, j->src[k], j->bytes[k]);
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
    int me, nranks;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &nranks);
    const sp_spec *s = &m->spec;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    /* who writes what: slot 0 = globals (first stage), 1 + b = block b */
    int nslot = s->n_layer + 1;
    int *mine = calloc((size_t)nslot, sizeof *mine),
        *writer = calloc((size_t)nslot, sizeof *writer);
    if (!mine || !writer) {
        free(mine), free(writer);
        return sp_err_set(err, SP_ERUNTIME, "%s: out of memory", path);
    }
    if (owner && m->has_embed) mine[0] = me + 1;
    for (int b = m->lo; b < m->hi && owner; b++) mine[1 + b] = me + 1;
    MPI_Allreduce(mine, writer, nslot, MPI_INT, MPI_MAX, comm);
    for (int i = 0; i < nslot; i++) writer[i] -= 1;
    int64_t *steps = calloc((size_t)nslot, sizeof *steps), *all_steps = calloc((size_t)nslot, 8);
    if (owner && m->has_embed) steps[0] = (int64_t)m->steps[0];
    for (int b = m->lo; b < m->hi && owner; b++) steps[1 + b] = (int64_t)m->steps[1 + b - m->lo];
    MPI_Allreduce(steps, all_steps, nslot, MPI_INT64_T, MPI_SUM, comm);

    int rc = 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        free(mine), free(writer), free(steps), free(all_steps);
        return sp_err_set(err, SP_ERUNTIME, "%s: cannot create checkpoint file", tmp);
    }
    rc |= attr_str(f, "format", CKPT_FORMAT);
    rc |= attr_i64(f, "version", CKPT_VERSION);
    hid_t g = H5Gcreate2(f, "spec", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= attr_i64(g, "vocab", s->vocab) | attr_i64(g, "seq_len", s->seq_len);
    rc |= attr_i64(g, "d_model", s->d_model) | attr_i64(g, "n_head", s->n_head);
    rc |= attr_i64(g, "d_ff", s->d_ff) | attr_i64(g, "n_layer", s->n_layer);
    rc |= attr_str(g, "block", "gpt2");
    H5Gclose(g);
    g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= attr_i64(g, "step", st->step) | attr_i64(g, "tokens", st->tokens);
    rc |= attr_f64(g, "flops", st->flops) | attr_i64(g, "growth_index", st->growth_index);
    rc |= attr_i64(g, "seed", (int64_t)st->seed) | attr_i64(g, "data_cursor", st->data_cursor);
    rc |= attr_f64(g, "lr", st->lr) | attr_f64(g, "wallclock", st->wallclock);
    H5Gclose(g);
    g = H5Gcreate2(f, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= attr_str(g, "yaml", config_yaml ? config_yaml : "");
    H5Gclose(g);
    rc |= make_groups(f);

    /* per-slab AdamW step counts, tiny: written by everyone identically through rank 0 */
    hsize_t n = (hsize_t)nslot;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d =
        H5Dcreate2(f, "optim/slab_steps", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    if (d < 0)
        rc = -1;
    else {
        if (me == 0 && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, all_steps) < 0)
            rc = -1;
        H5Dclose(d);
    }

    /* every tensor, in file order: k runs over slot, copy (a), tensor (j) */
    const float *arenas[3] = {m->params, m->m, m->v};
    int ntens = 0;
    for (int slot = 0; slot < nslot; slot++) ntens += 3 * (slot == 0 ? SP_GLOBAL_NT : SP_BLOCK_NT);
    const float **src = calloc((size_t)ntens, sizeof *src);
    size_t *bytes = calloc((size_t)ntens, sizeof *bytes);
    uint32_t *crc = calloc((size_t)ntens, sizeof *crc), *all_crc = calloc((size_t)ntens, 4);
    hid_t *dset = malloc((size_t)ntens * sizeof *dset);
    if (!src || !bytes || !crc || !all_crc || !dset) rc = -1;
    int mine_any = 0;
    for (int slot = 0, k = 0; slot < nslot && rc == 0; slot++) {
        int block = slot - 1, nt = block < 0 ? SP_GLOBAL_NT : SP_BLOCK_NT;
        const sp_tensor_info *ti = block < 0 ? m->gt : m->bt;
        for (int a = 0; a < 3; a++) {
            const float *slab = NULL;
            if (writer[slot] == me) {
                slab = block < 0 ? sp_model_globals(m, (float *)arenas[a])
                                 : sp_model_block(m, (float *)arenas[a], block);
            }
            for (int j = 0; j < nt; j++, k++) {
                src[k] = slab ? slab + ti[j].offset : NULL;
                bytes[k] = (size_t)ti[j].numel * sizeof(float);
                mine_any |= slab != NULL;
            }
        }
    }
    crc_job job = {src, bytes, crc, rc == 0 ? ntens : 0};
    pthread_t th;
    int threaded = mine_any && pthread_create(&th, NULL, crc_run, &job) == 0;
    if (!threaded) crc_run(&job);

    /* collective creation of every dataset; each owner writes its tensors (independent I/O) */
    char name[256], dpath[320];
    int ndset = 0;
    for (int slot = 0, k = 0; slot < nslot && rc == 0; slot++) {
        int block = slot - 1, nt = block < 0 ? SP_GLOBAL_NT : SP_BLOCK_NT;
        const sp_tensor_info *ti = block < 0 ? m->gt : m->bt;
        for (int a = 0; a < 3 && rc == 0; a++) {
            for (int j = 0; j < nt && rc == 0; j++, k++) {
                sp_spec_hf_name(name, sizeof name, block, &ti[j]);
                snprintf(dpath, sizeof dpath, "%s/%s", k_groups[a], name);
                hsize_t dims[2] = {(hsize_t)ti[j].dims[0], (hsize_t)ti[j].dims[1]};
                hid_t dsp = H5Screate_simple(ti[j].ndim, dims, NULL);
                hid_t did = H5Dcreate2(f, dpath, H5T_IEEE_F32LE, dsp, H5P_DEFAULT, H5P_DEFAULT,
                                       H5P_DEFAULT);
                H5Sclose(dsp);
                if (did < 0) {
                    rc = -1;
                    break;
                }
                dset[ndset++] = did;
                if (src[k] &&
                    H5Dwrite(did, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, src[k]) < 0)
                    rc = -1;
            }
        }
    }
    if (mine_any) start_writeback(tmp);
    if (threaded) pthread_join(th, NULL);
    /* the crc32 attributes: one reduction instead of a broadcast per tensor (exactly one rank
     * holds a non-zero crc, so the maximum is it) */
    if (all_crc) MPI_Allreduce(crc, all_crc, ntens, MPI_UINT32_T, MPI_MAX, comm);
    for (int k = 0; k < ndset; k++) {
        if (rc == 0 && attr_write(dset[k], "crc32", H5T_NATIVE_UINT32, H5T_STD_U32LE, &all_crc[k]))
            rc = -1;
        H5Dclose(dset[k]);
    }
    free(src), free(bytes), free(crc), free(all_crc), free(dset);
    free(mine), free(writer), free(steps), free(all_steps);
    /* fault injection for the crash tests (tests/cli/faults.sh): the last rank dies with the
     * temporary file half-written, exactly where a node failure would hurt most */
    const char *fault = getenv("SPROUT_FAULT_KILL_IN_CKPT");
    if (fault && atoll(fault) == st->step && me == nranks - 1) raise(SIGKILL);
    if (H5Fclose(f) < 0) rc = -1;
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
    int64_t v[6];
    const char *keys[6] = {"vocab", "seq_len", "d_model", "n_head", "d_ff", "n_layer"};
    int rc = 0;
    H5E_BEGIN_TRY {
        hid_t g = H5Gopen2(f, "spec", H5P_DEFAULT);
        for (int i = 0; i < 6 && g >= 0; i++) rc |= read_attr(g, keys[i], H5T_NATIVE_INT64, &v[i]);
        if (g < 0)
            rc = -1;
        else
            H5Gclose(g);
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
                H5Gclose(g);
            }
        }
    }
    H5E_END_TRY;
    H5Fclose(f);
    if (rc) return sp_err_set(err, SP_EINPUT, "%s: missing /spec or /train attributes", path);
    *spec = (sp_spec){(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5]};
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

/* Reads one dataset into dst after checking its shape, then its crc32. */
static int read_tensor(hid_t f, const char *path, const char *dpath, const sp_tensor_info *t,
                       float *dst, sp_err *err) {
    int rc = SP_OK;
    H5E_BEGIN_TRY {
        hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
        if (d < 0) {
            rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s is missing", path, dpath);
        } else {
            hid_t sp = H5Dget_space(d);
            hsize_t dims[2] = {0, 0};
            int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
            H5Sclose(sp);
            uint32_t want = 0;
            if (nd != t->ndim || dims[0] != (hsize_t)t->dims[0] ||
                (nd == 2 && dims[1] != (hsize_t)t->dims[1]))
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s has the wrong shape", path, dpath);
            else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s cannot be read", path, dpath);
            else if (read_attr(d, "crc32", H5T_NATIVE_UINT32, &want) != 0)
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s has no crc32", path, dpath);
            else if (sp_crc32(0, dst, t->numel * sizeof(float)) != want)
                rc = sp_err_set(err, SP_EINPUT, "%s: tensor %s fails its crc32 check", path, dpath);
            H5Dclose(d);
        }
    }
    H5E_END_TRY;
    return rc;
}

int sp_ckpt_load(const char *path, sp_model *m, int with_optim, sp_err *err) {
    sp_spec fs;
    if (sp_ckpt_read_header(path, &fs, NULL, err)) return err->code;
    const sp_spec *s = &m->spec;
    if (fs.vocab != s->vocab || fs.seq_len != s->seq_len || fs.d_model != s->d_model ||
        fs.n_head != s->n_head || fs.d_ff != s->d_ff || fs.n_layer != s->n_layer)
        return sp_err_set(err, SP_EINPUT, "%s: spec does not match the model", path);
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    float *arenas[3] = {m->params, m->m, m->v};
    char name[256], dpath[320];
    int rc = SP_OK;
    for (int a = 0; a < (with_optim ? 3 : 1) && !rc; a++) {
        float *g = sp_model_globals(m, arenas[a]);
        for (int j = 0; g && j < SP_GLOBAL_NT && !rc; j++) {
            sp_spec_hf_name(name, sizeof name, -1, &m->gt[j]);
            snprintf(dpath, sizeof dpath, "%s/%s", k_groups[a], name);
            rc = read_tensor(f, path, dpath, &m->gt[j], g + m->gt[j].offset, err);
        }
        for (int b = m->lo; b < m->hi && !rc; b++) {
            float *slab = sp_model_block(m, arenas[a], b);
            for (int j = 0; j < SP_BLOCK_NT && !rc; j++) {
                sp_spec_hf_name(name, sizeof name, b, &m->bt[j]);
                snprintf(dpath, sizeof dpath, "%s/%s", k_groups[a], name);
                rc = read_tensor(f, path, dpath, &m->bt[j], slab + m->bt[j].offset, err);
            }
        }
    }
    if (!rc && with_optim) {
        int64_t *steps = calloc((size_t)s->n_layer + 1, sizeof *steps);
        H5E_BEGIN_TRY {
            hid_t d = H5Dopen2(f, "optim/slab_steps", H5P_DEFAULT);
            if (d < 0 || !steps ||
                H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps) < 0)
                rc = sp_err_set(err, SP_EINPUT, "%s: optim/slab_steps cannot be read", path);
            if (d >= 0) H5Dclose(d);
        }
        H5E_END_TRY;
        if (!rc) {
            if (m->global_numel) m->steps[0] = (uint64_t)steps[0];
            for (int b = m->lo; b < m->hi; b++) m->steps[1 + b - m->lo] = (uint64_t)steps[1 + b];
        }
        free(steps);
    }
    H5Fclose(f);
    return rc;
}

/* ---- verification for `sprout inspect` ---- */

typedef struct verify_ctx {
    const char *path, *group;
    FILE *out;
    int bad;
    sp_err *err;
} verify_ctx;

static herr_t verify_one(hid_t grp, const char *name, const H5L_info_t *info, void *op) {
    verify_ctx *c = op;
    hid_t d = -1;
    H5E_BEGIN_TRY {
        d = H5Dopen2(grp, name, H5P_DEFAULT); /* fails on sub-groups, which are skipped */
    }
    H5E_END_TRY;
    if (d < 0) return 0;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {1, 1};
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    hid_t ty = H5Dget_type(d);
    int is_float = H5Tget_class(ty) == H5T_FLOAT;
    H5Tclose(ty);
    if (!is_float) {
        H5Dclose(d);
        return 0;
    }
    size_t n = (size_t)dims[0] * (nd == 2 ? (size_t)dims[1] : 1);
    float *buf = malloc(n ? n * sizeof(float) : 4);
    uint32_t want = 0;
    const char *verdict = "ok";
    if (!buf || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        verdict = "UNREADABLE";
    else if (read_attr(d, "crc32", H5T_NATIVE_UINT32, &want) != 0)
        verdict = "NO-CRC";
    else if (sp_crc32(0, buf, n * sizeof(float)) != want)
        verdict = "CRC-MISMATCH";
    if (strcmp(verdict, "ok")) {
        if (!c->bad)
            sp_err_set(c->err, SP_EINPUT, "%s: tensor %s/%s: %s", c->path, c->group, name, verdict);
        c->bad++;
    }
    if (c->out) {
        char shape[64];
        if (nd == 2)
            snprintf(shape, sizeof shape, "[%llu, %llu]", dims[0], dims[1]);
        else
            snprintf(shape, sizeof shape, "[%llu]", dims[0]);
        fprintf(c->out, "  %-8s %-44s %-14s %s\n", c->group, name, shape, verdict);
    }
    free(buf);
    H5Dclose(d);
    return 0;
}

int sp_ckpt_verify(const char *path, void *out, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    verify_ctx c = {path, NULL, out, 0, err};
    for (int g = 0; g < 3; g++) {
        c.group = k_groups[g];
        H5E_BEGIN_TRY {
            hid_t grp = H5Gopen2(f, k_groups[g], H5P_DEFAULT);
            if (grp >= 0) {
                hsize_t idx = 0;
                H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, &idx, verify_one, &c);
                H5Gclose(grp);
            } else {
                if (!c.bad) sp_err_set(err, SP_EINPUT, "%s: group /%s missing", path, c.group);
                c.bad++;
            }
        }
        H5E_END_TRY;
    }
    H5Fclose(f);
    return c.bad ? SP_EINPUT : SP_OK;
}
