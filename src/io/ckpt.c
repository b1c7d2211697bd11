/* Parallel-HDF5 checkpoints (design §6). The file names tensors by their Hugging Face GPT-2
 * names, so it maps 1:1 onto a GPT2LMHeadModel state dict and does not depend on the layout. */
#define _GNU_SOURCE
#include "sprout/ckpt.h"
#include "sprout/tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_FORMAT  "sprout-ckpt"
#define CKPT_VERSION 2 /* 2: crc32 of the root, /spec, /train and /config attributes; lineage */

static const char *const k_groups[3] = {"model", "optim/m", "optim/v"};
/* top-level names of the live model's data: an extra group may not live under them, or it
 * would mix its tensors into /model (which PyTorch loads as a state dict) or the optimizer */
static const char *const k_reserved[6] = {"model", "optim", "spec", "train", "config", "tokenizer"};

/* The attributes of each header object, in the order their crc32 covers them: kind 'i' int64,
 * 'f' float64, 's' string. A changed step or data_cursor would silently rewind or reorder the
 * run, so every attribute a reader acts on is under a checksum, like the tensors. */
typedef struct attr_def {
    const char *name;
    char kind;
} attr_def;
static const attr_def k_root_attrs[] = {{"format", 's'}, {"version", 'i'}, {"extras", 's'}};
/* /spec's attributes, in the order their crc32 covers them: the spec's field table
 * (sp_spec_fields), the block kind by name, then the hyper-parameter table (sp_spec_hparams)
 * for the kinds that have them, so a gpt2 file keeps the attributes it always had. Built from
 * the two tables on first use. */
static attr_def g_spec_attrs[32];
static int g_spec_base, g_spec_all;
static const attr_def *spec_attrs(void) {
    if (!g_spec_all) {
        int n = 0;
        for (int i = 0; i < sp_spec_nfields; i++)
            g_spec_attrs[n++] = (attr_def){sp_spec_fields[i].name, 'i'};
        g_spec_attrs[n++] = (attr_def){"block", 's'};
        g_spec_base = n;
        for (int i = 0; i < sp_spec_nhparams; i++)
            g_spec_attrs[n++] = (attr_def){sp_spec_hparams[i].name, sp_spec_hparams[i].type};
        g_spec_all = n;
    }
    return g_spec_attrs;
}
static int spec_count(int hparams) {
    spec_attrs();
    return hparams ? g_spec_all : g_spec_base;
}
static const attr_def k_train_attrs[] = {
    {"step", 'i'},     {"tokens", 'i'},      {"flops", 'f'},       {"growth_index", 'i'},
    {"seed", 'i'},     {"data_cursor", 'i'}, {"lr", 'f'},          {"wallclock", 'f'},
    {"run_id", 's'},   {"parent_run", 's'},  {"parent_step", 'i'}, {"subnet_stage", 'i'},
    {"plan_step", 'i'}};
static const attr_def k_config_attrs[] = {{"yaml", 's'}};
/* /tokenizer (absent in checkpoints written before it: those are byte models), with one uint8
 * dataset per vocabulary file of the tokenizer, named as the file */
static const attr_def k_tok_attrs[] = {{"id", 'i'}, {"name", 's'}};
#define NDEF(t) ((int)(sizeof(t) / sizeof(t)[0]))

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

/* rewrites an existing attribute in place (no new file space) */
static int attr_update_u32(hid_t obj, const char *name, uint32_t v) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_UINT32, &v);
    if (a >= 0) H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

static int read_attr(hid_t obj, const char *name, hid_t mtype, void *val) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t rc = H5Aread(a, mtype, val);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

/* A string attribute into buf (n bytes, NUL-terminated); -1 if absent, not a string or longer. */
static int read_str(hid_t obj, const char *name, char *buf, size_t n) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    size_t size = H5Tget_size(t);
    int rc = -1;
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0 && size <= n) {
        memset(buf, 0, n);
        rc = H5Aread(a, t, buf) < 0 || buf[n - 1] ? -1 : 0;
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

/* crc32 over each listed attribute's name and value as stored (numbers as their 8 native
 * bytes, strings up to their NUL). Returns NULL, or the name of the first attribute that is
 * absent or of another kind. Called inside H5E_BEGIN_TRY. */
static const char *attrs_crc(hid_t obj, const attr_def *d, int n, uint32_t *crc) {
    uint32_t c = 0;
    for (int i = 0; i < n; i++) {
        c = sp_crc32(c, d[i].name, strlen(d[i].name) + 1);
        if (H5Aexists(obj, d[i].name) <= 0) return d[i].name;
        hid_t a = H5Aopen(obj, d[i].name, H5P_DEFAULT);
        if (a < 0) return d[i].name;
        hid_t t = H5Aget_type(a);
        H5T_class_t cls = H5Tget_class(t);
        size_t size = H5Tget_size(t);
        int ok = 0;
        if (d[i].kind == 's' && cls == H5T_STRING && H5Tis_variable_str(t) > 0) {
            /* sprout writes fixed-size strings; an edit by h5py writes variable-length ones,
             * which must still reach the checksum rather than read as absent */
            char *v = NULL;
            if (H5Aread(a, t, &v) >= 0 && v) ok = 1, c = sp_crc32(c, v, strlen(v));
            if (v) H5free_memory(v);
        } else if (d[i].kind == 's' && cls == H5T_STRING) {
            char *buf = calloc(size + 1, 1);
            if (buf && H5Aread(a, t, buf) >= 0) ok = 1, c = sp_crc32(c, buf, strlen(buf));
            free(buf);
        } else if ((d[i].kind == 'i' && cls == H5T_INTEGER) ||
                   (d[i].kind == 'f' && cls == H5T_FLOAT)) {
            char v[8];
            ok = H5Aread(a, d[i].kind == 'i' ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, v) >= 0;
            c = sp_crc32(c, v, sizeof v);
        }
        H5Tclose(t);
        H5Aclose(a);
        if (!ok) return d[i].name;
    }
    *crc = c;
    return NULL;
}

/* Writes the crc32 attribute over obj's listed attributes, as they read back from the file. */
static int seal_attrs(hid_t obj, const attr_def *d, int n) {
    uint32_t c = 0;
    const char *bad = NULL;
    H5E_BEGIN_TRY {
        bad = attrs_crc(obj, d, n, &c);
    }
    H5E_END_TRY;
    return bad ? -1 : attr_write(obj, "crc32", H5T_NATIVE_UINT32, H5T_STD_U32LE, &c);
}

/* Checks the crc32 of the header object at opath ("/" for the root); the verdict names the
 * attribute at fault. Returns NULL when it verifies. Called inside H5E_BEGIN_TRY. */
static const char *check_attrs(hid_t f, const char *opath, const attr_def *d, int n, char *why,
                               size_t nwhy) {
    hid_t o = strcmp(opath, "/") && H5Lexists(f, opath, H5P_DEFAULT) <= 0
                  ? -1
                  : H5Oopen(f, opath, H5P_DEFAULT);
    if (o < 0) return "MISSING";
    uint32_t c = 0, want = 0;
    const char *bad = attrs_crc(o, d, n, &c), *verdict = NULL;
    if (bad) {
        snprintf(why, nwhy, "attribute %s missing or of the wrong type", bad);
        verdict = why;
    } else if (read_attr(o, "crc32", H5T_NATIVE_UINT32, &want) != 0)
        verdict = "NO-CRC";
    else if (c != want)
        verdict = "CRC-MISMATCH (attributes)";
    H5Oclose(o);
    return verdict;
}

/* /spec and every extra group carry the integers of the spec's field table plus the block kind
 * by name, sealed. Every version-2 file has the block attribute (it came with the version), so a
 * file without it fails the checksum like any other missing attribute. */
static int write_spec(hid_t g, const sp_spec *s) {
    int rc = 0, h = sp_kind_of(s)->hparams;
    for (int i = 0; i < sp_spec_nfields; i++)
        rc |= attr_i64(g, sp_spec_fields[i].name, sp_spec_get(s, i));
    rc |= attr_str(g, "block", sp_kind_of(s)->name);
    for (int i = 0; h && i < sp_spec_nhparams; i++) {
        const void *v = (const char *)s + sp_spec_hparams[i].offset;
        rc |= sp_spec_hparams[i].type == 'f'
                  ? attr_f64(g, sp_spec_hparams[i].name, *(const double *)v)
                  : attr_i64(g, sp_spec_hparams[i].name, *(const int *)v);
    }
    return rc | seal_attrs(g, spec_attrs(), spec_count(h));
}

/* The spec attributes object opath must have: as many as its block kind says (an unknown or
 * missing kind: the base ones, whose check then names what is wrong). Inside H5E_BEGIN_TRY. */
static int spec_nattrs(hid_t f, const char *opath) {
    char name[64] = "";
    hid_t o = H5Lexists(f, opath, H5P_DEFAULT) > 0 ? H5Oopen(f, opath, H5P_DEFAULT) : -1;
    if (o >= 0) {
        if (read_str(o, "block", name, sizeof name)) name[0] = 0;
        H5Oclose(o);
    }
    int k = sp_kind_find(name);
    return spec_count(k >= 0 && sp_kinds[k]->hparams);
}

/* Called inside H5E_BEGIN_TRY: a missing attribute is an answer, not a stack to print. A block
 * kind this sprout does not know reads as kind -1, which sp_spec_check refuses by name, and
 * *block gets the name for that message. */
static int read_spec(hid_t g, sp_spec *s, char *block, size_t nblock) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < sp_spec_nfields; i++) {
        int64_t v;
        if (read_attr(g, sp_spec_fields[i].name, H5T_NATIVE_INT64, &v)) return -1;
        /* saturated, not truncated: 2^32 + 32 must not read as 32 (sp_spec_check names it) */
        sp_spec_put(s, i, (int)(v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : v));
    }
    char name[64] = "";
    if (read_str(g, "block", name, sizeof name)) return -1;
    if (block) snprintf(block, nblock, "%s", name);
    s->kind = sp_kind_find(name);
    for (int i = 0; s->kind >= 0 && sp_kinds[s->kind]->hparams && i < sp_spec_nhparams; i++) {
        void *v = (char *)s + sp_spec_hparams[i].offset;
        int64_t x;
        if (sp_spec_hparams[i].type == 'f') {
            if (read_attr(g, sp_spec_hparams[i].name, H5T_NATIVE_DOUBLE, v)) return -1;
        } else {
            if (read_attr(g, sp_spec_hparams[i].name, H5T_NATIVE_INT64, &x)) return -1;
            *(int *)v = (int)(x > INT_MAX ? INT_MAX : x < INT_MIN ? INT_MIN : x);
        }
    }
    return 0;
}

/* A spec read from group `what` of path checked, an unknown block kind named. */
static int check_read_spec(const sp_spec *s, const char *block, const char *path, const char *what,
                           sp_err *err) {
    if (s->kind < 0)
        return sp_err_set(err, SP_EINPUT,
                          "%s: %s: block '%s' is not a block kind of this sprout (%s)", path, what,
                          block, sp_kind_names());
    return sp_spec_check(s, err) ? sp_err_wrap(err, "%s: %s", path, what) : SP_OK;
}

/* The first field in which the specs differ (NULL if none), as a line: the kind by name. */
static const char *spec_diff(const sp_spec *a, const sp_spec *b, char *buf, size_t n) {
    if (a->kind != b->kind) {
        snprintf(buf, n, "block %s in the file, %s in the model", sp_kind_of(a)->name,
                 sp_kind_of(b)->name);
        return buf;
    }
    if (sp_spec_hparams_differ(a, b)) {
        snprintf(buf, n,
                 "norm_eps %g, rope_theta %g, tie_head %d in the file; %g, %g, %d in the model",
                 a->norm_eps, a->rope_theta, a->tie_head, b->norm_eps, b->rope_theta, b->tie_head);
        return buf;
    }
    int i = sp_spec_diff(a, b);
    if (i < 0) return NULL;
    snprintf(buf, n, "%s %d in the file, %d in the model", sp_spec_fields[i].name,
             sp_spec_get(a, i), sp_spec_get(b, i));
    return buf;
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
    const sp_spec *spec; /* its model's: the kind names the tensor */
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
            for (int r = 0; r < 6 && first; r++)
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

/* ---- failures during a save ----
 * A write error happens on one rank, but HDF5's metadata calls are collective: a rank that
 * returned early would leave the others waiting forever in the next barrier. So every phase of
 * a save ends with ranks_agree(), and after a failure the ranks make no collective call but the
 * ones of abandon(). */

/* Whether any rank failed in this phase; if one did, every rank returns the first failing
 * rank's message, marked as held by all ranks. */
static int ranks_agree(const sp_err *mine, sp_err *err, MPI_Comm comm) {
    int me, first = INT_MAX;
    MPI_Comm_rank(comm, &me);
    int who = mine->code ? me : INT_MAX;
    MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == INT_MAX) return SP_OK;
    sp_err e = *mine;
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, comm);
    e.all_ranks = 1;
    if (err) *err = e;
    return e.code;
}

static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    if (e->desc && *e->desc) snprintf(data, 160, "%s", e->desc);
    return 0;
}

/* Records this rank's first failure: "FILE: what: reason". The reason is the OS error when the
 * call left one in errno, else the innermost message of HDF5's error stack (for an MPI-IO
 * failure, the MPI error string). */
static void h5_fail(sp_err *mine, const char *file, const char *what, int os_errno) {
    if (mine->code) return;
    char reason[160] = "HDF5 error";
    if (os_errno)
        snprintf(reason, sizeof reason, "%s", strerror(os_errno));
    else
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost_cb, reason);
    sp_err_set(mine, SP_ERUNTIME, "%s: %s: %s", file, what, reason);
}

/* Reserves bytes [0, len) of FILE (rank 0): creating it first (a check, before HDF5 has the
 * file, that its metadata will fit), or in the open checkpoint (a reservation: the data and
 * metadata writes then cannot meet a full disk or quota). posix_fallocate returns the OS error
 * itself, which MPI-IO would reduce to a generic I/O error. */
static void reserve(const char *file, off_t len, int create, sp_err *mine) {
    int fd = open(file, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0644);
    int e = fd < 0 ? errno : posix_fallocate(fd, 0, len);
    if (!e && create && ftruncate(fd, 0) != 0) e = errno;
    if (fd >= 0) close(fd);
    if (e && create) unlink(file);
    if (e)
        sp_err_set(mine, SP_ERUNTIME, "%s: %s (%s %.2f MiB for the checkpoint%s)", file,
                   strerror(e), create ? "checking for" : "reserving", (double)len / 1048576.0,
                   create ? "'s metadata" : "");
}

/* An upper bound of the metadata of a file of ntens tensors (measured: about 0.6 KiB a tensor,
 * with its crc32 attribute and link; tmpfs and most file systems allocate it in 4 KiB pages) */
static off_t meta_bound(int ntens) {
    return (off_t)(64 + 4 * (ntens + 16)) << 10;
}

/* Gives up FILE after an agreed failure. HDF5 1.10 cannot drop a file's unwritten metadata: its
 * close writes it, and when that fails the cache stays broken and the handle dangles, so that
 * the library crashes closing it again in MPI_Finalize. Rank 0 therefore first cuts the file to
 * zero length, which frees the space of the tensors written so far (what is in it is abandoned
 * anyway), and the close finds room for the metadata; then the file is removed. */
static void abandon(hid_t f, const hid_t *dset, int ndset, hid_t steps_d, const char *file, int me,
                    MPI_Comm comm) {
    if (f >= 0) {
        if (me == 0) (void)truncate(file, 0);
        MPI_Barrier(comm); /* before any rank's close writes metadata */
        for (int k = 0; k < ndset; k++) H5Dclose(dset[k]);
        if (steps_d >= 0) H5Dclose(steps_d);
        H5Fclose(f);
    }
    if (me == 0) unlink(file);
}

int sp_ckpt_save(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                 const char *config_yaml, MPI_Comm comm, sp_err *err) {
    return sp_ckpt_save_ex(path, m, owner, st, config_yaml, NULL, 0, comm, err);
}

int sp_ckpt_save_ex(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                    const char *config_yaml, const sp_ckpt_extra *extra, int n_extra, MPI_Comm comm,
                    sp_err *err) {
    return sp_ckpt_save_tok(path, m, owner, st, config_yaml, extra, n_extra, NULL, comm, err);
}

/* /tokenizer: id and name, sealed, and a dataset per vocabulary file (created here, written by
 * rank 0 with the tensors; every rank holds the bytes, so each computes the same crc32) */
static int make_tokenizer(hid_t f, const sp_tok_files *tok, hid_t *ds) {
    hid_t g = H5Gcreate2(f, "tokenizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    int bad = attr_i64(g, "id", tok->kind->id) | attr_str(g, "name", tok->kind->name);
    bad |= seal_attrs(g, k_tok_attrs, NDEF(k_tok_attrs));
    for (int i = 0; i < tok->kind->nfiles && !bad; i++) {
        hsize_t n = tok->file[i].n;
        hid_t sp = H5Screate_simple(1, &n, NULL);
        ds[i] = H5Dcreate2(g, tok->kind->files[i], H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                           H5P_DEFAULT);
        H5Sclose(sp);
        uint32_t crc = sp_crc32(0, tok->file[i].p, tok->file[i].n);
        bad |= ds[i] < 0 || attr_write(ds[i], "crc32", H5T_NATIVE_UINT32, H5T_STD_U32LE, &crc);
    }
    H5Gclose(g);
    return bad;
}

int sp_ckpt_save_tok(const char *path, const sp_model *m, int owner, const sp_train_state *st,
                     const char *config_yaml, const sp_ckpt_extra *extra, int n_extra,
                     const sp_tok_files *tok, MPI_Comm comm, sp_err *err) {
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

    /* every tensor, in file order: part, slot, arena, tensor */
    int ntens = 0;
    for (int p = 0; p < nparts; p++)
        ntens += parts[p].narena * (parts[p].m->ngt + parts[p].m->spec.n_layer * parts[p].m->nbt);
    ckpt_item *items = calloc((size_t)ntens, sizeof *items);
    uint32_t *crc = calloc((size_t)ntens, sizeof *crc), *all_crc = calloc((size_t)ntens, 4);
    hid_t *dset = malloc((size_t)ntens * sizeof *dset);
    sp_err mine_err = {0}; /* this rank's first failure in the current phase */
    if (!items || !crc || !all_crc || !dset)
        sp_err_set(&mine_err, SP_ERUNTIME, "%s: out of memory", path);
    int mine_any = 0;
    for (int p = 0, k = 0; p < nparts && !mine_err.code; p++) {
        const ckpt_part *pt = &parts[p];
        const sp_model *pm = pt->m;
        for (int slot = 0; slot <= pm->spec.n_layer; slot++) {
            int block = slot - 1, nt = block < 0 ? pm->ngt : pm->nbt;
            const sp_tensor_info *ti = block < 0 ? pm->gt : pm->bt;
            for (int a = 0; a < pt->narena; a++) {
                const float *slab = NULL;
                if (writer[pt->slot0 + slot] == me) {
                    float *ar = (float *)pt->arena[a];
                    slab = block < 0 ? sp_model_globals(pm, ar) : sp_model_block(pm, ar, block);
                }
                for (int j = 0; j < nt; j++, k++)
                    items[k] = (ckpt_item){&pm->spec, pt->dir[a], block, &ti[j],
                                           slab ? slab + ti[j].offset : NULL};
                mine_any |= slab != NULL;
            }
        }
    }
    /* HDF5 would print its error stack; the failure is reported as one line instead */
    H5E_auto2_t old_func;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = -1, steps_d = -1, tok_d[SP_TOK_MAX_FILES] = {-1, -1};
    int ndset = 0, threaded = 0, rc;
    pthread_t th;
    crc_job job = {items, crc, 0};
    double t_setup = MPI_Wtime(), t_write = t_setup, t_crc = t_setup, t_attr = t_setup,
           t_flush = t_setup, t_close = t_setup;
    /* room for the file's metadata, before HDF5 holds anything (see abandon()) */
    if (me == 0 && !mine_err.code)
        reserve(tmp, meta_bound(ntens + (tok ? tok->kind->nfiles : 0)), 1, &mine_err);
    if ((rc = ranks_agree(&mine_err, err, comm))) goto out;

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    errno = 0;
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) h5_fail(&mine_err, tmp, "cannot create it", errno);
    /* MPI_File_open is collective and taken to fail on every rank alike (a rank left holding the
     * file would wait in abandon()'s collective close) */
    if ((rc = ranks_agree(&mine_err, err, comm))) goto out;

    /* phase 1, collective metadata (no file I/O yet): the attributes, groups and datasets, the
     * crc32 attributes with a placeholder (rewritten in place once known), so that the file's
     * final size is known before any data is written */
    bad = 0;
    bad |= attr_str(f, "format", CKPT_FORMAT);
    bad |= attr_i64(f, "version", CKPT_VERSION);
    /* the extra groups, one per line: what verification expects besides the live model */
    size_t xlen = 1;
    for (int i = 0; i < n_extra; i++) xlen += strlen(extra[i].group) + 1;
    char *xlist = calloc(xlen, 1);
    for (int i = 0; i < n_extra && xlist; i++)
        strcat(strcat(xlist, extra[i].group), i + 1 < n_extra ? "\n" : "");
    bad |= xlist ? attr_str(f, "extras", xlist) : -1;
    free(xlist);
    bad |= seal_attrs(f, k_root_attrs, NDEF(k_root_attrs));
    hid_t g = H5Gcreate2(f, "spec", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= write_spec(g, s);
    H5Gclose(g);
    g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= attr_i64(g, "step", st->step) | attr_i64(g, "tokens", st->tokens);
    bad |= attr_f64(g, "flops", st->flops) | attr_i64(g, "growth_index", st->growth_index);
    bad |= attr_i64(g, "seed", (int64_t)st->seed) | attr_i64(g, "data_cursor", st->data_cursor);
    bad |= attr_f64(g, "lr", st->lr) | attr_f64(g, "wallclock", st->wallclock);
    bad |= attr_str(g, "run_id", st->run_id) | attr_str(g, "parent_run", st->parent_run);
    bad |= attr_i64(g, "parent_step", st->parent_step);
    bad |= attr_i64(g, "subnet_stage", st->subnet_stage) | attr_i64(g, "plan_step", st->plan_step);
    bad |= seal_attrs(g, k_train_attrs, NDEF(k_train_attrs));
    H5Gclose(g);
    g = H5Gcreate2(f, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= attr_str(g, "yaml", config_yaml ? config_yaml : "");
    bad |= seal_attrs(g, k_config_attrs, NDEF(k_config_attrs));
    H5Gclose(g);
    bad |= make_groups(f, parts, nparts);
    if (tok) bad |= make_tokenizer(f, tok, tok_d);

    /* per-slab AdamW step counts, tiny: written through rank 0; every rank holds the reduced
     * array, so every rank computes the same crc32 for the collective attribute */
    hsize_t n = (hsize_t)nslot;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    steps_d =
        H5Dcreate2(f, "optim/slab_steps", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    uint32_t steps_crc = sp_crc32(0, all_steps, (size_t)nslot * sizeof *all_steps);
    bad |=
        steps_d < 0 || attr_write(steps_d, "crc32", H5T_NATIVE_UINT32, H5T_STD_U32LE, &steps_crc);

    /* Parallel HDF5 allocates a dataset's space when it is created; with the default fill
     * settings it may also write zeros there first, which would double the bytes written. */
    char name[256], dpath[512];
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    const uint32_t placeholder = 0;
    for (int k = 0; k < ntens && !bad; k++) {
        const ckpt_item *it = &items[k];
        sp_spec_hf_name(name, sizeof name, it->spec, it->block, it->ti);
        snprintf(dpath, sizeof dpath, "%s/%s", it->dir, name);
        hsize_t dims[2] = {(hsize_t)it->ti->dims[0], (hsize_t)it->ti->dims[1]};
        hid_t dsp = H5Screate_simple(it->ti->ndim, dims, NULL);
        hid_t did = H5Dcreate2(f, dpath, H5T_IEEE_F32LE, dsp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Sclose(dsp);
        if (did < 0) {
            bad = 1;
            break;
        }
        dset[ndset++] = did;
        bad |= attr_write(did, "crc32", H5T_NATIVE_UINT32, H5T_STD_U32LE, &placeholder);
    }
    H5Pclose(dcpl);
    if (bad) h5_fail(&mine_err, tmp, "cannot create its datasets", 0);
    if ((rc = ranks_agree(&mine_err, err, comm))) goto out;

    /* phase 2: the whole file's space, so that neither the tensors nor (above all) the metadata
     * that the flush writes can meet a full disk or quota half-way */
    hsize_t size = 0; /* the larger of the end of its allocated space and of the file */
    if (H5Fget_filesize(f, &size) < 0) h5_fail(&mine_err, tmp, "cannot get its size", 0);
#ifndef SP_CKPT_NO_RESERVE /* test hook: lets a full disk reach the tensor writes */
    if (me == 0 && !mine_err.code) reserve(tmp, (off_t)size, 0, &mine_err);
#endif
    if ((rc = ranks_agree(&mine_err, err, comm))) goto out;

    /* phase 3: each owner writes its tensors (independent I/O) while a helper thread computes
     * their crc32 */
    job.n = ntens;
    threaded = mine_any && pthread_create(&th, NULL, crc_run, &job) == 0;
    if (!threaded) crc_run(&job);
    errno = 0;
    if (me == 0 &&
        H5Dwrite(steps_d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, all_steps) < 0)
        h5_fail(&mine_err, tmp, "writing optim/slab_steps failed", errno);
    for (int i = 0; tok && i < tok->kind->nfiles && me == 0 && !mine_err.code; i++)
        if (H5Dwrite(tok_d[i], H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, tok->file[i].p) < 0)
            h5_fail(&mine_err, tmp, "writing the tokenizer's files failed", errno);
    for (int k = 0; k < ndset && !mine_err.code; k++) {
        const ckpt_item *it = &items[k];
        errno = 0;
        if (it->src &&
            H5Dwrite(dset[k], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, it->src) < 0) {
            int e = errno;
            sp_spec_hf_name(name, sizeof name, it->spec, it->block, it->ti);
            snprintf(dpath, sizeof dpath, "writing %s/%s failed", it->dir, name);
            h5_fail(&mine_err, tmp, dpath, e);
        }
    }
    t_write = MPI_Wtime();
    if (mine_any && !mine_err.code) start_writeback(tmp);
    if (threaded) pthread_join(th, NULL);
    threaded = 0;
    t_crc = MPI_Wtime();
    if ((rc = ranks_agree(&mine_err, err, comm))) goto out;

    /* phase 4: the crc32 attributes: one reduction instead of a broadcast per tensor (exactly one
     * rank holds a non-zero crc, so the maximum is it) */
    MPI_Allreduce(crc, all_crc, ntens, MPI_UINT32_T, MPI_MAX, comm);
    bad = 0;
    for (int k = 0; k < ndset; k++) bad |= attr_update_u32(dset[k], "crc32", all_crc[k]);
    if (bad) h5_fail(&mine_err, tmp, "cannot write the crc32 attributes", 0);
    if ((rc = ranks_agree(&mine_err, err, comm))) goto out;

    /* fault injection for the crash tests (tests/cli/faults.sh): the last rank dies with the
     * temporary file half-written, exactly where a node failure would hurt most */
    const char *fault = getenv("SPROUT_FAULT_KILL_IN_CKPT");
    if (fault && atoll(fault) == st->step && me == nranks - 1) raise(SIGKILL);
    for (int k = 0; k < ndset; k++) H5Dclose(dset[k]);
    H5Dclose(steps_d);
    for (int i = 0; i < SP_TOK_MAX_FILES; i++)
        if (tok_d[i] >= 0) H5Dclose(tok_d[i]), tok_d[i] = -1;
    ndset = 0, steps_d = -1;
    /* phase 5: collective flush: the MPI-IO driver calls MPI_File_sync, so what every rank wrote
     * is on stable storage before the commit, also when writers sit on other nodes of a parallel
     * file system (rank 0's fsync below covers only its own node's cache). After a failed flush
     * HDF5 1.10 cannot close the file cleanly: the reservation above is what keeps it from
     * failing for want of space. */
    t_attr = MPI_Wtime();
    errno = 0;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) h5_fail(&mine_err, tmp, "flushing it failed", errno);
    t_flush = MPI_Wtime();
    errno = 0;
    if (H5Fclose(f) < 0) h5_fail(&mine_err, tmp, "closing it failed", errno);
    f = -1; /* closed, or (after a failure) no longer safe to touch */
    t_close = MPI_Wtime();
    if ((rc = ranks_agree(&mine_err, err, comm))) goto out;

    /* phase 6: the commit, by rank 0 */
    if (me == 0) {
        if (fsync_path(tmp) != 0)
            sp_err_set(&mine_err, SP_ERUNTIME, "%s: fsync failed: %s", tmp, strerror(errno));
        else if (rename(tmp, path) != 0)
            sp_err_set(&mine_err, SP_ERUNTIME, "%s: cannot rename %s: %s", path, tmp,
                       strerror(errno));
        else if (sp_fsync_dir_of(path) != 0) {
            /* the new name may not survive a crash: take it back, the old files stay valid */
            sp_err_set(&mine_err, SP_ERUNTIME, "%s: syncing its directory failed: %s", path,
                       strerror(errno));
            unlink(path);
        }
        if (mine_err.code) unlink(tmp);
    }
    rc = ranks_agree(&mine_err, err, comm);
    if (getenv("SPROUT_CKPT_PROFILE") && me == 0) /* where a save spends its time */
        fprintf(stderr,
                "ckpt profile: set-up %.3f s, create+write %.3f, crc wait %.3f, attributes %.3f, "
                "flush %.3f, close %.3f, commit %.3f\n",
                t_setup - t_start, t_write - t_setup, t_crc - t_write, t_attr - t_crc,
                t_flush - t_attr, t_close - t_flush, MPI_Wtime() - t_close);
out:
    if (threaded) pthread_join(th, NULL);
    if (rc) abandon(f, dset, ndset, steps_d, tmp, me, comm);
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    free(items), free(crc), free(all_crc), free(dset);
    free(parts), free(mine), free(writer), free(steps), free(all_steps);
    return rc;
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
    char fmt[32] = {0}, why[128], msg[160];
    int64_t version = 0;
    const char *bad = NULL;
    H5E_BEGIN_TRY {
        if (read_str(f, "format", fmt, sizeof fmt) != 0 || strcmp(fmt, CKPT_FORMAT) != 0)
            bad = "not a sprout checkpoint (format attribute)";
        else if (read_attr(f, "version", H5T_NATIVE_INT64, &version) != 0 ||
                 version != CKPT_VERSION) {
            snprintf(why, sizeof why,
                     "format version %lld, this sprout reads version %d (written by another "
                     "sprout?)",
                     (long long)version, CKPT_VERSION);
            bad = why;
        } else if ((bad = check_attrs(f, "/", k_root_attrs, NDEF(k_root_attrs), why, sizeof why))) {
            snprintf(msg, sizeof msg, "/ (root attributes): %s", bad);
            bad = msg;
        }
    }
    H5E_END_TRY;
    if (bad) {
        H5Fclose(f);
        sp_err_set(err, SP_EINPUT, "%s: %s", path, bad);
        return -1;
    }
    return f;
}

/* /spec and (if st) /train of an open file, their crc32 and that of /config checked first. */
static int read_header_f(hid_t f, const char *path, sp_spec *spec, sp_train_state *st,
                         sp_err *err) {
    char why[128], block[64] = "";
    const char *bad = NULL, *obj = "spec";
    int rc = 0;
    H5E_BEGIN_TRY {
        bad = check_attrs(f, "spec", spec_attrs(), spec_nattrs(f, "spec"), why, sizeof why);
        hid_t g = bad ? -1 : H5Gopen2(f, "spec", H5P_DEFAULT);
        if (g >= 0) {
            rc = read_spec(g, spec, block, sizeof block);
            H5Gclose(g);
        }
        if (!bad && !rc) { /* the config is read by eval, sample and a resume's checks */
            obj = "config";
            bad = check_attrs(f, "config", k_config_attrs, NDEF(k_config_attrs), why, sizeof why);
        }
        if (st && !bad && !rc) {
            memset(st, 0, sizeof *st);
            obj = "train";
            bad = check_attrs(f, "train", k_train_attrs, NDEF(k_train_attrs), why, sizeof why);
            g = bad ? -1 : H5Gopen2(f, "train", H5P_DEFAULT);
            if (g >= 0) {
                int64_t seed = 0;
                rc |= read_attr(g, "step", H5T_NATIVE_INT64, &st->step);
                rc |= read_attr(g, "tokens", H5T_NATIVE_INT64, &st->tokens);
                rc |= read_attr(g, "flops", H5T_NATIVE_DOUBLE, &st->flops);
                rc |= read_attr(g, "growth_index", H5T_NATIVE_INT64, &st->growth_index);
                rc |= read_attr(g, "seed", H5T_NATIVE_INT64, &seed);
                rc |= read_attr(g, "data_cursor", H5T_NATIVE_INT64, &st->data_cursor);
                rc |= read_attr(g, "lr", H5T_NATIVE_DOUBLE, &st->lr);
                rc |= read_attr(g, "wallclock", H5T_NATIVE_DOUBLE, &st->wallclock);
                rc |= read_str(g, "run_id", st->run_id, sizeof st->run_id);
                rc |= read_str(g, "parent_run", st->parent_run, sizeof st->parent_run);
                rc |= read_attr(g, "parent_step", H5T_NATIVE_INT64, &st->parent_step);
                rc |= read_attr(g, "subnet_stage", H5T_NATIVE_INT64, &st->subnet_stage);
                rc |= read_attr(g, "plan_step", H5T_NATIVE_INT64, &st->plan_step);
                st->seed = (uint64_t)seed;
                H5Gclose(g);
            }
        }
    }
    H5E_END_TRY;
    if (bad) return sp_err_set(err, SP_EINPUT, "%s: /%s: %s", path, obj, bad);
    if (rc) return sp_err_set(err, SP_EINPUT, "%s: /%s attributes do not read", path, obj);
    return check_read_spec(spec, block, path, "/spec", err);
}

int sp_ckpt_read_header(const char *path, sp_spec *spec, sp_train_state *st, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    int rc = read_header_f(f, path, spec, st, err);
    H5Fclose(f);
    return rc;
}

int sp_ckpt_read_config(const char *path, char **yaml, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    int rc = -1;
    *yaml = NULL;
    char why[128];
    const char *bad = NULL;
    H5E_BEGIN_TRY {
        bad = check_attrs(f, "config", k_config_attrs, NDEF(k_config_attrs), why, sizeof why);
        hid_t a = bad ? -1 : H5Aopen_by_name(f, "config", "yaml", H5P_DEFAULT, H5P_DEFAULT);
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
        if (bad) return sp_err_set(err, SP_EINPUT, "%s: /config: %s", path, bad);
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

int sp_ckpt_read_tokenizer(const char *path, sp_tok_files *tf, sp_err *err) {
    memset(tf, 0, sizeof *tf);
    tf->kind = sp_tok_by_id(SP_TOKENIZER_BYTES);
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    char why[128], name[32] = "";
    int64_t id = -1;
    int rc = SP_OK;
    H5E_BEGIN_TRY {
        if (H5Lexists(f, "tokenizer", H5P_DEFAULT) > 0) {
            const char *bad =
                check_attrs(f, "tokenizer", k_tok_attrs, NDEF(k_tok_attrs), why, sizeof why);
            hid_t g = bad ? -1 : H5Gopen2(f, "tokenizer", H5P_DEFAULT);
            if (bad)
                rc = sp_err_set(err, SP_EINPUT, "%s: /tokenizer: %s", path, bad);
            else if (g < 0 || read_attr(g, "id", H5T_NATIVE_INT64, &id) ||
                     read_str(g, "name", name, sizeof name))
                rc = sp_err_set(err, SP_EINPUT, "%s: /tokenizer attributes do not read", path);
            if (g >= 0) H5Gclose(g);
        }
    }
    H5E_END_TRY;
    const sp_tok_kind *k = id >= 0 && id <= UINT32_MAX ? sp_tok_by_id((uint32_t)id) : NULL;
    if (!rc && id >= 0 && (!k || sp_tok_find(name) != k))
        rc = sp_err_set(err, SP_EINPUT,
                        "%s: /tokenizer: id %lld, name '%s' is not a tokenizer "
                        "of this sprout (%s)",
                        path, (long long)id, name, sp_tok_names());
    if (!rc && k) tf->kind = k;
    for (int i = 0; !rc && k && i < k->nfiles; i++) {
        char dpath[96];
        snprintf(dpath, sizeof dpath, "tokenizer/%s", k->files[i]);
        hssize_t n = -1;
        H5E_BEGIN_TRY {
            hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
            if (sp >= 0) n = H5Sget_simple_extent_npoints(sp), H5Sclose(sp);
            if (d >= 0) H5Dclose(d);
        }
        H5E_END_TRY;
        int64_t want = n;
        char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (n < 0)
            rc = sp_err_set(err, SP_EINPUT, "%s: /%s is missing", path, dpath);
        else if (!buf)
            rc = sp_err_set(err, SP_ERUNTIME, "%s: out of memory", path);
        else
            rc = read_checked(f, path, dpath, H5T_NATIVE_UINT8, 1, &want, buf, (size_t)n, err);
        if (buf) buf[n] = '\0';
        tf->file[i] = (sp_buf){buf, (size_t)(n > 0 ? n : 0)};
    }
    H5Fclose(f);
    if (rc) sp_tok_files_free(tf);
    return rc;
}

/* Reads one arena of the stage (its globals if it holds them, then its blocks) from
 * <dir>/<HF name>. */
static int read_stage(hid_t f, const char *path, const char *dir, const sp_model *m, float *arena,
                      sp_err *err) {
    char name[256], dpath[512];
    int rc = SP_OK;
    float *g = sp_model_globals(m, arena);
    for (int j = 0; g && j < m->ngt && !rc; j++) {
        const sp_tensor_info *t = &m->gt[j];
        sp_spec_hf_name(name, sizeof name, &m->spec, -1, t);
        snprintf(dpath, sizeof dpath, "%s/%s", dir, name);
        rc = read_checked(f, path, dpath, H5T_NATIVE_FLOAT, t->ndim, t->dims, g + t->offset,
                          t->numel * sizeof(float), err);
    }
    for (int b = m->lo; b < m->hi && !rc; b++) {
        float *slab = sp_model_block(m, arena, b);
        for (int j = 0; j < m->nbt && !rc; j++) {
            const sp_tensor_info *t = &m->bt[j];
            sp_spec_hf_name(name, sizeof name, &m->spec, b, t);
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
    char diff[160];
    if (spec_diff(&fs, s, diff, sizeof diff))
        return sp_err_set(err, SP_EINPUT, "%s: spec does not match the model (%s)", path, diff);
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
    char why[128], block[64] = "", what[300];
    const char *bad = NULL;
    H5E_BEGIN_TRY {
        if (group && *group) g = H5Gopen2(f, group, H5P_DEFAULT);
        if (g >= 0) {
            H5Gclose(g);
            bad = check_attrs(f, group, spec_attrs(), spec_nattrs(f, group), why, sizeof why);
            g = bad ? -1 : H5Gopen2(f, group, H5P_DEFAULT);
            if (g >= 0) rc = read_spec(g, spec, block, sizeof block), H5Gclose(g);
        }
    }
    H5E_END_TRY;
    if (bad) return sp_err_set(err, SP_EINPUT, "%s: /%s: %s", path, group, bad);
    if (g < 0)
        return sp_err_set(err, SP_EINPUT, "%s: no extra model group /%s in the checkpoint", path,
                          group ? group : "(null)");
    if (rc) return sp_err_set(err, SP_EINPUT, "%s: group /%s has no spec attributes", path, group);
    snprintf(what, sizeof what, "/%s", group);
    return check_read_spec(spec, block, path, what, err);
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
    int rc = extra_spec(f, path, group, &fs, err);
    char diff[160];
    if (!rc && spec_diff(&fs, &m->spec, diff, sizeof diff))
        rc = sp_err_set(err, SP_EINPUT, "%s: /%s: spec does not match the model (%s)", path, group,
                        diff);
    if (!rc) rc = read_stage(f, path, group, m, m->params, err);
    H5Fclose(f);
    return rc;
}

/* ---- verification for `sprout inspect` ---- */

/* Every group of the file is walked, and each dataset found is matched against the list the
 * spec and the recorded extra groups imply: one damaged metadata byte can hide or rename
 * datasets, which then show up as MISSING (and UNEXPECTED) instead of passing unseen. A depth
 * bound keeps a crafted file's hard-link cycle from recursing forever. */
#define VERIFY_MAX_DEPTH 32

typedef struct want_ds {
    char path[192];
    int nd, is_int, seen, is_u8; /* is_int: int64, is_u8: bytes (the tokenizer's files) */
    hsize_t dims[2];
} want_ds;

typedef struct verify_ctx {
    const char *path;
    char group[1024]; /* path of the group being iterated, "" at the root */
    int depth;
    FILE *out;
    int bad;
    sp_err *err;
    want_ds *want; /* sorted by path; NULL when the spec does not read */
    int nwant, cap;
} verify_ctx;

static void verify_report(verify_ctx *c, const char *name, const char *shape, const char *verdict) {
    if (strcmp(verdict, "ok")) {
        if (!c->bad)
            sp_err_set(c->err, SP_EINPUT, "%s: %s%s%s%s: %s", c->path,
                       strcmp(shape, "attributes") ? "tensor " : "", c->group,
                       c->group[0] ? "/" : "", name, verdict);
        c->bad++;
    }
    if (c->out) fprintf(c->out, "  %-8s %-44s %-14s %s\n", c->group, name, shape, verdict);
}

static int want_cmp(const void *a, const void *b) {
    return strcmp(((const want_ds *)a)->path, ((const want_ds *)b)->path);
}

static int want_add(verify_ctx *c, const char *dir, const sp_spec *s, int block,
                    const sp_tensor_info *t) {
    if (c->nwant == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        want_ds *w = realloc(c->want, (size_t)c->cap * sizeof *w);
        if (!w) return -1;
        c->want = w;
    }
    want_ds *w = &c->want[c->nwant++];
    char name[160];
    sp_spec_hf_name(name, sizeof name, s, block, t);
    *w = (want_ds){.nd = t->ndim, .dims = {(hsize_t)t->dims[0], (hsize_t)t->dims[1]}};
    snprintf(w->path, sizeof w->path, "%s/%s", dir, name);
    return 0;
}

/* every tensor of a model with spec s under dir */
static int want_model(verify_ctx *c, const char *dir, const sp_spec *s) {
    sp_tensor_info gt[SP_MAX_TENSORS], bt[SP_MAX_TENSORS];
    int ng = sp_spec_global_tensors(s, gt), nb = sp_spec_block_tensors(s, bt), rc = 0;
    for (int j = 0; j < ng; j++) rc |= want_add(c, dir, s, -1, &gt[j]);
    for (int b = 0; b < s->n_layer; b++)
        for (int j = 0; j < nb; j++) rc |= want_add(c, dir, s, b, &bt[j]);
    return rc;
}

/* One dataset: its type and shape against the expected ones, then its data read in its native
 * numeric type and the crc32 of those bytes compared (float32 tensors and int64 step counts). */
static void verify_dataset(verify_ctx *c, hid_t d, const char *name) {
    char full[1200];
    snprintf(full, sizeof full, "%s%s%s", c->group, c->group[0] ? "/" : "", name);
    want_ds key, *w = NULL;
    snprintf(key.path, sizeof key.path, "%s", full);
    if (c->want) w = bsearch(&key, c->want, (size_t)c->nwant, sizeof key, want_cmp);
    if (w) w->seen++;
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
    size_t es = nt >= 0 ? H5Tget_size(nt) : 0, fs = H5Tget_size(ty);
    H5Tclose(ty);
    size_t bytes = n * es;
    int shape_ok = w && nd == w->nd && dims[0] == w->dims[0] && (nd < 2 || dims[1] == w->dims[1]);
    void *buf = nd >= 0 && es ? malloc(bytes ? bytes : 1) : NULL;
    uint32_t want = 0;
    const char *verdict = "ok";
    if (c->want && !w)
        verdict = "UNEXPECTED";
    else if (w && w->seen > 1)
        verdict = "DUPLICATE";
    else if (w &&
             (!shape_ok || cls != (w->is_int || w->is_u8 ? H5T_INTEGER : H5T_FLOAT) || fs != es ||
              es != (w->is_u8    ? 1
                     : w->is_int ? 8
                                 : 4)))
        verdict = "WRONG-SHAPE-OR-TYPE";
    else if (nd < 0 || nt < 0)
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
        /* a damaged group index stops the iteration: say so, besides what goes missing */
        if (H5Literate(o, H5_INDEX_NAME, H5_ITER_INC, &idx, verify_link, c) < 0) {
            c->group[len] = 0;
            verify_report(c, name, "(group)", "UNREADABLE");
        }
        c->depth--;
        c->group[len] = 0;
    }
    H5Oclose(o);
    return 0;
}

/* /tokenizer, when the file has one: its attributes, and its files' datasets as expected */
static int want_tokenizer(verify_ctx *c, hid_t f) {
    if (H5Lexists(f, "tokenizer", H5P_DEFAULT) <= 0) return 0;
    char why[128], name[32] = "";
    const char *bad = check_attrs(f, "tokenizer", k_tok_attrs, NDEF(k_tok_attrs), why, sizeof why);
    verify_report(c, "/tokenizer", "attributes", bad ? bad : "ok");
    hid_t g = bad ? -1 : H5Gopen2(f, "tokenizer", H5P_DEFAULT);
    int64_t id = -1;
    if (g >= 0)
        (void)(read_attr(g, "id", H5T_NATIVE_INT64, &id) || read_str(g, "name", name, sizeof name));
    const sp_tok_kind *k = id >= 0 && id <= UINT32_MAX ? sp_tok_by_id((uint32_t)id) : NULL;
    for (int i = 0; k && i < k->nfiles; i++) {
        hid_t d = H5Dopen2(g, k->files[i], H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : 0;
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
        /* the size is the file's own: what is checked is the type and the crc32 */
        sp_tensor_info t = {.name = k->files[i], .ndim = 1, .dims = {(int64_t)n, 1}};
        if (want_add(c, "tokenizer", NULL, -1, &t)) return -1;
        c->want[c->nwant - 1].is_u8 = 1;
    }
    if (g >= 0) H5Gclose(g);
    return 0;
}

/* The header objects, and from /spec and the root's extras list the datasets to expect. */
static void verify_header(verify_ctx *c, hid_t f) {
    const struct {
        const char *obj;
        const attr_def *d;
        int n;
    } hdr[3] = {{"spec", spec_attrs(), spec_nattrs(f, "spec")},
                {"train", k_train_attrs, NDEF(k_train_attrs)},
                {"config", k_config_attrs, NDEF(k_config_attrs)}};
    char why[128];
    verify_report(c, "/", "attributes", "ok"); /* open_ro checked the root */
    int spec_ok = 0;
    for (int i = 0; i < 3; i++) {
        const char *bad = check_attrs(f, hdr[i].obj, hdr[i].d, hdr[i].n, why, sizeof why);
        char name[16];
        snprintf(name, sizeof name, "/%s", hdr[i].obj);
        verify_report(c, name, "attributes", bad ? bad : "ok");
        spec_ok |= i == 0 && !bad;
    }
    sp_spec s;
    hid_t g = spec_ok ? H5Gopen2(f, "spec", H5P_DEFAULT) : -1;
    int rc = g < 0 || read_spec(g, &s, NULL, 0) || sp_spec_check(&s, NULL);
    if (g >= 0) H5Gclose(g);
    if (rc) return; /* no expectations: the walk still checks each dataset's crc32 */
    for (int a = 0; a < 3; a++) rc |= want_model(c, k_groups[a], &s);
    sp_tensor_info steps = {.name = "slab_steps", .ndim = 1, .dims = {s.n_layer + 1, 1}};
    rc |= want_add(c, "optim", &s, -1, &steps);
    if (!rc) c->want[c->nwant - 1].is_int = 1;
    rc |= want_tokenizer(c, f);
    char list[4096] = "";
    if (read_str(f, "extras", list, sizeof list)) rc = -1;
    char *save = NULL;
    for (char *grp = strtok_r(list, "\n", &save); grp && !rc; grp = strtok_r(NULL, "\n", &save)) {
        sp_spec xs;
        const char *bad = check_attrs(f, grp, spec_attrs(), spec_nattrs(f, grp), why, sizeof why);
        char name[260];
        snprintf(name, sizeof name, "/%s", grp);
        verify_report(c, name, "attributes", bad ? bad : "ok");
        g = bad ? -1 : H5Gopen2(f, grp, H5P_DEFAULT);
        if (g >= 0 && !read_spec(g, &xs, NULL, 0) && !sp_spec_check(&xs, NULL))
            rc |= want_model(c, grp, &xs);
        if (g >= 0) H5Gclose(g);
    }
    if (rc) {
        free(c->want);
        c->want = NULL;
        c->nwant = 0;
        return;
    }
    qsort(c->want, (size_t)c->nwant, sizeof *c->want, want_cmp);
}

int sp_ckpt_verify(const char *path, void *out, sp_err *err) {
    hid_t f = open_ro(path, err);
    if (f < 0) return err->code;
    verify_ctx c = {.path = path, .out = out, .err = err};
    H5E_BEGIN_TRY {
        verify_header(&c, f);
        hsize_t idx = 0;
        if (H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, verify_link, &c) < 0)
            verify_report(&c, "/", "(group)", "UNREADABLE");
        for (int i = 0; i < c.nwant; i++)
            if (!c.want[i].seen) verify_report(&c, c.want[i].path, "-", "MISSING");
    }
    H5E_END_TRY;
    free(c.want);
    H5Fclose(f);
    return c.bad ? SP_EINPUT : SP_OK;
}
